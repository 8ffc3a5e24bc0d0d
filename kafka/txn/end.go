package txn

// Ending transactions: EndTxn (transaction versions 1 and 2), fencing (an
// InitProducerId or a timeout aborting a running transaction), and the
// completion of a decided transaction (markers, then the completed state
// with the fate of its pending offsets).

import (
	"context"
	"fmt"
	"math"
	"time"

	"github.com/streamhouse/streamhouse/log"
	"github.com/streamhouse/streamhouse/meta"
)

// EndTxn commits or aborts the running transaction of txnID for the
// producer (producerID, epoch), and answers the producer ID and epoch the
// producer uses next (only transaction version 2 changes them). tv2 is the
// client's transaction version (EndTxn v5+, KIP-890 part 2): the epoch is
// bumped by every commit and abort, to a new producer ID when it runs out,
// an abort of an empty or completed transaction is accepted (and bumps),
// and a retry is recognized by the epoch before the bump.
//
// The decision (PrepareCommit or PrepareAbort) is stored first; then the
// markers are written and the completion stored. If that second step
// fails the decision stands: EndTxn succeeds and the background retry
// finishes the transaction. Errors: ErrInvalidProducerIDMapping,
// ErrProducerFenced, ErrInvalidTxnState (e.g. commit after abort, or any
// end of an Empty transaction at version 1), ErrConcurrentTransactions
// (the transaction is being completed), ErrNotAvailable.
func (c *Coordinator) EndTxn(ctx context.Context, txnID string, producerID int64, epoch int16, commit, tv2 bool) (int64, int16, error) {
	e, err := c.lockEntry(txnID, false)
	if err != nil {
		return -1, -1, err
	}
	if e == nil {
		return -1, -1, fmt.Errorf("%w: unknown transactional ID %q", ErrInvalidProducerIDMapping, txnID)
	}
	defer e.mu.Unlock()
	if tv2 {
		return c.endV2Locked(ctx, e, producerID, epoch, commit)
	}
	return c.endV1Locked(ctx, e, producerID, epoch, commit)
}

// endV1Locked is EndTxn at transaction version 1: the epoch must be the
// current one; a retry after completion is recognized by the state.
func (c *Coordinator) endV1Locked(ctx context.Context, e *entry, producerID int64, epoch int16, commit bool) (int64, int16, error) {
	t := e.t
	switch {
	case t.ProducerID != producerID:
		return -1, -1, mappingErr(t, producerID)
	case t.ProducerEpoch != epoch:
		return -1, -1, fencedErr(t, epoch)
	}
	switch t.State {
	case meta.TxnOngoing:
		return c.endLocked(ctx, e, commit, false)
	case meta.TxnCompleteCommit, meta.TxnCompleteAbort:
		if commit == (t.State == meta.TxnCompleteCommit) {
			return t.ProducerID, t.ProducerEpoch, nil
		}
	case meta.TxnPrepareCommit, meta.TxnPrepareAbort, meta.TxnPrepareEpochFence:
		if commit == (t.State == meta.TxnPrepareCommit) {
			return -1, -1, concurrentErr(t)
		}
	}
	return -1, -1, endStateErr(t, commit)
}

// endV2Locked is EndTxn at transaction version 2 (Kafka's table above
// TransactionCoordinator.endTransaction): a request with the epoch before
// the current one is a retry of an EndTxn that bumped it.
func (c *Coordinator) endV2Locked(ctx context.Context, e *entry, producerID int64, epoch int16, commit bool) (int64, int16, error) {
	t := e.t
	overflowRetry := t.LastProducerID == producerID && epoch == math.MaxInt16-1 && t.ProducerEpoch == 0
	bumpRetry := int32(t.ProducerEpoch) == int32(epoch)+1
	retry := bumpRetry || overflowRetry
	var valid bool
	switch t.State {
	case meta.TxnOngoing, meta.TxnEmpty:
		valid = epoch == t.ProducerEpoch
	case meta.TxnPrepareCommit, meta.TxnPrepareAbort, meta.TxnPrepareEpochFence:
		valid = bumpRetry
	case meta.TxnCompleteCommit, meta.TxnCompleteAbort:
		valid = retry || epoch == t.ProducerEpoch
	}
	switch {
	case t.ProducerID != producerID && !overflowRetry:
		return -1, -1, mappingErr(t, producerID)
	case !valid:
		return -1, -1, fencedErr(t, epoch)
	}
	switch t.State {
	case meta.TxnOngoing:
		return c.endLocked(ctx, e, commit, true)
	case meta.TxnEmpty:
		if !commit {
			return c.abortEmptyLocked(ctx, e)
		}
	case meta.TxnCompleteCommit:
		switch {
		case commit && retry:
			return t.ProducerID, t.ProducerEpoch, nil
		case !commit && !retry:
			return c.abortEmptyLocked(ctx, e)
		}
	case meta.TxnCompleteAbort:
		switch {
		case !commit && retry:
			return t.ProducerID, t.ProducerEpoch, nil
		case !commit:
			return c.abortEmptyLocked(ctx, e)
		}
	case meta.TxnPrepareCommit, meta.TxnPrepareAbort, meta.TxnPrepareEpochFence:
		if commit == (t.State == meta.TxnPrepareCommit) {
			return -1, -1, concurrentErr(t)
		}
	}
	return -1, -1, endStateErr(t, commit)
}

// endLocked decides e's Ongoing transaction and completes it. At version
// 2 the decision bumps the epoch (the markers carry the bumped one).
func (c *Coordinator) endLocked(ctx context.Context, e *entry, commit, tv2 bool) (int64, int16, error) {
	n := c.transition(e.t)
	n.State, n.TxnVersion = meta.TxnPrepareAbort, 0
	if commit {
		n.State = meta.TxnPrepareCommit
	}
	if tv2 {
		n.TxnVersion = 2
		n.LastProducerEpoch = e.t.ProducerEpoch
		if n.ProducerEpoch < math.MaxInt16 {
			n.ProducerEpoch++
		}
	}
	if err := c.store.PutTxn(ctx, n); err != nil {
		return -1, -1, storeErr("record decision", err)
	}
	c.set(e, n)
	if err := c.completeLocked(ctx, e); err != nil {
		c.logger.Warn("transaction decided but not completed; will retry",
			"transactional_id", n.TransactionalID, "state", n.State.String(), "err", err)
		c.scheduleRetry()
		if rotates(n) {
			// The producer ID of the next transaction is chosen by the
			// completion: the client retries until it is.
			return -1, -1, fmt.Errorf("%w: decided, not completed yet: %v", ErrConcurrentTransactions, err)
		}
		return n.ProducerID, n.ProducerEpoch, nil
	}
	return e.t.ProducerID, e.t.ProducerEpoch, nil
}

// abortEmptyLocked is version 2's abort of a transaction that added
// nothing (from Empty, CompleteCommit or CompleteAbort): no marker to
// write, the epoch bumped (to a new producer ID when it runs out).
func (c *Coordinator) abortEmptyLocked(ctx context.Context, e *entry) (int64, int16, error) {
	n := c.transition(e.t)
	n.State, n.TxnVersion = meta.TxnCompleteAbort, 2
	n.LastProducerEpoch = e.t.ProducerEpoch
	n.Partitions, n.Groups, n.StartedAt = nil, nil, time.Time{}
	if exhausted(e.t.ProducerEpoch) {
		pid, err := c.store.AllocateProducerID(ctx, "")
		if err != nil {
			return -1, -1, storeErr("allocate producer ID", err)
		}
		n.ProducerID, n.ProducerEpoch = pid.ID, 0
	} else {
		n.ProducerEpoch++
	}
	if err := c.store.CompleteTxn(ctx, n, false); err != nil {
		return -1, -1, storeErr("record abort", err)
	}
	c.set(e, n)
	c.metrics.aborts.Inc()
	return n.ProducerID, n.ProducerEpoch, nil
}

// fenceLocked aborts e's Ongoing transaction on the broker's behalf (a new
// producer took the transactional ID, or the transaction timed out): the
// epoch is bumped, which fences the old producer, and the abort is
// decided and completed with the bumped epoch. If the decision is stored
// but not completed, the error wraps ErrConcurrentTransactions and the
// background retry completes it.
func (c *Coordinator) fenceLocked(ctx context.Context, e *entry) error {
	n := c.transition(e.t)
	if n.ProducerEpoch < math.MaxInt16 {
		n.ProducerEpoch++
	}
	n.LastProducerEpoch = -1
	n.State, n.TxnVersion = meta.TxnPrepareAbort, 0
	if err := c.store.PutTxn(ctx, n); err != nil {
		return storeErr("record fencing abort", err)
	}
	c.set(e, n)
	if err := c.completeLocked(ctx, e); err != nil {
		c.scheduleRetry()
		return fmt.Errorf("%w: fencing abort of %q not completed yet: %v", ErrConcurrentTransactions, n.TransactionalID, err)
	}
	return nil
}

// completeLocked finishes e's decided transaction: one marker to every
// partition (with the decided producer ID and epoch), then the completed
// state, stored together with the fate of the pending offsets (committed
// or dropped). Calling it again after a failure is safe: markers are
// idempotent and nothing changed in memory.
func (c *Coordinator) completeLocked(ctx context.Context, e *entry) error {
	t := e.t
	commit := t.State == meta.TxnPrepareCommit
	if len(t.Partitions) > 0 {
		markers := make([]log.TxnMarker, len(t.Partitions))
		for i, tp := range t.Partitions {
			markers[i] = log.TxnMarker{Topic: tp.Topic, Partition: tp.Partition,
				ProducerID: t.ProducerID, ProducerEpoch: t.ProducerEpoch, Commit: commit}
		}
		if err := c.markers.WriteTxnMarkers(ctx, markers); err != nil {
			return fmt.Errorf("write markers: %w", err)
		}
	}
	n := c.transition(t)
	n.State = meta.TxnCompleteAbort
	if commit {
		n.State = meta.TxnCompleteCommit
	}
	n.Partitions, n.Groups, n.StartedAt = nil, nil, time.Time{}
	if rotates(t) {
		pid, err := c.store.AllocateProducerID(ctx, "")
		if err != nil {
			return storeErr("allocate producer ID", err)
		}
		n.ProducerID, n.ProducerEpoch = pid.ID, 0
	}
	if err := c.store.CompleteTxn(ctx, n, commit); err != nil {
		return storeErr("record completion", err)
	}
	c.set(e, n)
	if commit {
		c.metrics.commits.Inc()
	} else {
		c.metrics.aborts.Inc()
	}
	return nil
}

// rotates reports whether completing the decided t moves the
// transactional ID to a new producer ID: a version 2 decision that bumped
// the epoch to its maximum.
func rotates(t meta.Txn) bool {
	return t.TxnVersion >= 2 && t.ProducerEpoch == math.MaxInt16
}

// exhausted reports whether an epoch leaves no room for the bumps a
// transactional ID needs: Kafka never hands out math.MaxInt16, so that
// the coordinator can always fence.
func exhausted(epoch int16) bool { return epoch >= math.MaxInt16-1 }

// transition returns a copy of t to build the next state from: its
// LastProducerID is t's producer ID (Kafka's previous producer ID) and its
// UpdatedAt now.
func (c *Coordinator) transition(t meta.Txn) meta.Txn {
	n := t
	n.LastProducerID = t.ProducerID
	n.UpdatedAt = c.nowMs()
	return n
}

func mappingErr(t meta.Txn, producerID int64) error {
	return fmt.Errorf("%w: transactional ID %q has producer ID %d, not %d",
		ErrInvalidProducerIDMapping, t.TransactionalID, t.ProducerID, producerID)
}

func fencedErr(t meta.Txn, epoch int16) error {
	return fmt.Errorf("%w: transactional ID %q is at epoch %d, not %d",
		ErrProducerFenced, t.TransactionalID, t.ProducerEpoch, epoch)
}

func concurrentErr(t meta.Txn) error {
	return fmt.Errorf("%w: transactional ID %q is %s", ErrConcurrentTransactions, t.TransactionalID, t.State)
}

func endStateErr(t meta.Txn, commit bool) error {
	what := "abort"
	if commit {
		what = "commit"
	}
	return fmt.Errorf("%w: cannot %s transactional ID %q in state %s", ErrInvalidTxnState, what, t.TransactionalID, t.State)
}
