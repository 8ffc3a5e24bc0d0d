package txn

// InitProducerId for a transactional ID: epochs, KIP-360 bumps, fencing
// and producer ID rotation.

import (
	"context"
	"fmt"
	"time"

	"github.com/streamhouse/streamhouse/meta"
)

// InitProducerID gives the producer of txnID its producer ID and epoch,
// and sets the transaction timeout (timeoutMs) of its transactions.
//
// A new transactional ID gets a fresh producer ID with epoch 0. A known
// one gets its epoch bumped, which fences the previous producer; when the
// epoch is exhausted it moves to a fresh producer ID with epoch 0. A
// transaction still Ongoing is aborted first with a bumped epoch (its
// markers fence the old producer in every partition), then the epoch is
// bumped again for the caller, all in this call.
//
// producerID and epoch are -1, or (KIP-360, InitProducerId v3+) the
// identity of a producer asking to continue after an error: it gets its
// epoch bumped if it is the current one, the current epoch again if it is
// retrying a bump whose answer it lost (it gives the epoch before), and
// ErrProducerFenced otherwise, or if producerID is neither the current
// producer ID nor, with an exhausted epoch, the one before a rotation.
//
// Errors: ErrInvalidTxnTimeout (timeoutMs not in (0,
// TransactionMaxTimeout]), ErrProducerFenced, ErrConcurrentTransactions
// (a transaction is being completed, or the fencing abort could not be
// completed yet: retry), ErrNotAvailable.
func (c *Coordinator) InitProducerID(ctx context.Context, txnID string, timeoutMs int32, producerID int64, epoch int16) (int64, int16, error) {
	if timeoutMs <= 0 || time.Duration(timeoutMs)*time.Millisecond > c.cfg.TransactionMaxTimeout {
		return -1, -1, fmt.Errorf("%w: %d ms (at most %d ms)", ErrInvalidTxnTimeout,
			timeoutMs, c.cfg.TransactionMaxTimeout.Milliseconds())
	}
	e, err := c.lockEntry(txnID, true)
	if err != nil {
		return -1, -1, err
	}
	defer e.mu.Unlock()
	t := e.t
	if !e.stored {
		pid, err := c.store.AllocateProducerID(ctx, "")
		if err != nil {
			c.forget(e)
			return -1, -1, storeErr("allocate producer ID", err)
		}
		t = meta.Txn{TransactionalID: txnID, ProducerID: pid.ID, ProducerEpoch: -1,
			LastProducerID: -1, LastProducerEpoch: -1, State: meta.TxnEmpty, TimeoutMs: timeoutMs}
	}
	expected := producerID >= 0
	if expected && !validProducerID(t, producerID, epoch) {
		c.forgetUnstored(e)
		return -1, -1, fmt.Errorf("%w: transactional ID %q has producer ID %d, not %d",
			ErrProducerFenced, txnID, t.ProducerID, producerID)
	}
	switch t.State {
	case meta.TxnPrepareCommit, meta.TxnPrepareAbort, meta.TxnPrepareEpochFence:
		return -1, -1, concurrentErr(t)
	case meta.TxnOngoing:
		if err := c.fenceLocked(ctx, e); err != nil {
			return -1, -1, err
		}
		t = e.t
	}
	n, err := c.nextIdentity(ctx, t, timeoutMs, expected, epoch)
	if err != nil {
		c.forgetUnstored(e)
		return -1, -1, err
	}
	if err := c.store.PutTxn(ctx, n); err != nil {
		c.forgetUnstored(e)
		return -1, -1, storeErr("record producer epoch", err)
	}
	c.set(e, n)
	c.logger.Debug("transactional producer initialized", "transactional_id", txnID,
		"producer_id", n.ProducerID, "epoch", n.ProducerEpoch)
	return n.ProducerID, n.ProducerEpoch, nil
}

// validProducerID is KIP-360's producer ID check: a just-created ID (epoch
// -1) accepts any, otherwise it must be the current producer ID, or the
// previous one with an exhausted epoch (a retry of the InitProducerId that
// rotated it).
func validProducerID(t meta.Txn, producerID int64, epoch int16) bool {
	return t.ProducerEpoch == -1 || producerID == t.ProducerID ||
		(producerID == t.LastProducerID && exhausted(epoch))
}

// nextIdentity returns the Empty state InitProducerId moves t (Empty or
// Complete*) to: the epoch bumped, the same one for a KIP-360 retry, or a
// new producer ID once the epoch is exhausted.
func (c *Coordinator) nextIdentity(ctx context.Context, t meta.Txn, timeoutMs int32, expected bool, epoch int16) (meta.Txn, error) {
	n := c.transition(t)
	n.State, n.TimeoutMs, n.TxnVersion = meta.TxnEmpty, timeoutMs, 0
	n.Partitions, n.Groups, n.StartedAt = nil, nil, time.Time{}
	switch {
	case expected && t.ProducerEpoch != -1 && epoch != t.ProducerEpoch:
		if epoch != t.LastProducerEpoch {
			return meta.Txn{}, fmt.Errorf("%w: transactional ID %q is at epoch %d, not %d",
				ErrProducerFenced, t.TransactionalID, t.ProducerEpoch, epoch)
		}
		// A retry of a bump whose answer was lost: the same epoch again.
	case exhausted(t.ProducerEpoch):
		pid, err := c.store.AllocateProducerID(ctx, "")
		if err != nil {
			return meta.Txn{}, storeErr("allocate producer ID", err)
		}
		n.ProducerID, n.ProducerEpoch, n.LastProducerEpoch = pid.ID, 0, -1
		if expected {
			n.LastProducerEpoch = t.ProducerEpoch
		}
	default:
		n.ProducerEpoch, n.LastProducerEpoch = t.ProducerEpoch+1, -1
		if expected {
			n.LastProducerEpoch = t.ProducerEpoch
		}
	}
	return n, nil
}

// forgetUnstored drops an entry InitProducerID created but did not store.
// e.mu must be held.
func (c *Coordinator) forgetUnstored(e *entry) {
	if !e.stored {
		c.forget(e)
	}
}
