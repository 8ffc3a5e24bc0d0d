package txn

// Adding to a transaction: AddPartitionsToTxn (and its v4+ VerifyOnly
// form), AddOffsetsToTxn, TxnOffsetCommit, and the check of a
// transactional Produce.

import (
	"cmp"
	"context"
	"fmt"
	"slices"

	"github.com/streamhouse/streamhouse/meta"
)

// AddPartitions adds parts to the transaction of txnID, starting one
// (Ongoing, started now) if none runs. Partitions already in the running
// transaction are accepted without a write. The caller checks that the
// partitions exist. Errors: ErrInvalidProducerIDMapping (unknown
// transactional ID or other producer ID), ErrProducerFenced,
// ErrConcurrentTransactions, ErrNotAvailable.
func (c *Coordinator) AddPartitions(ctx context.Context, txnID string, producerID int64, epoch int16, parts []meta.TopicPartition) error {
	e, err := c.lockProducer(txnID, producerID, epoch, ErrProducerFenced)
	if err != nil {
		return err
	}
	defer e.mu.Unlock()
	if e.t.State == meta.TxnOngoing && e.holds(parts) {
		return nil
	}
	return c.addLocked(ctx, e, parts, "", 0)
}

// VerifyPartitions answers AddPartitionsToTxn v4+ with VerifyOnly (KIP-890
// part 1): whether each of parts is in the running transaction of txnID,
// changing nothing. Errors that apply to every partition:
// ErrInvalidProducerIDMapping, ErrProducerFenced,
// ErrConcurrentTransactions, ErrNotAvailable.
func (c *Coordinator) VerifyPartitions(ctx context.Context, txnID string, producerID int64, epoch int16, parts []meta.TopicPartition) ([]bool, error) {
	e, err := c.lockProducer(txnID, producerID, epoch, ErrProducerFenced)
	if err != nil {
		return nil, err
	}
	defer e.mu.Unlock()
	in := make([]bool, len(parts))
	for i, tp := range parts {
		_, in[i] = e.parts[tp]
	}
	return in, nil
}

// AddOffsets adds group to the transaction of txnID (AddOffsetsToTxn),
// starting one if none runs, so that TxnOffsetCommit may commit the
// group's offsets in it. Errors as AddPartitions.
func (c *Coordinator) AddOffsets(ctx context.Context, txnID string, producerID int64, epoch int16, group string) error {
	e, err := c.lockProducer(txnID, producerID, epoch, ErrProducerFenced)
	if err != nil {
		return err
	}
	defer e.mu.Unlock()
	if e.t.State == meta.TxnOngoing && slices.Contains(e.t.Groups, group) {
		return nil
	}
	return c.addLocked(ctx, e, nil, group, 0)
}

// TxnOffsetCommit stores offsets as pending offsets of group in the
// transaction of txnID: they become the group's committed offsets if the
// transaction commits, and are dropped if it aborts. Each offset needs
// Topic, Partition, Offset, LeaderEpoch and Metadata; the rest is filled
// in. The group must have been added to the running transaction
// (AddOffsets), unless implicitAdd (TxnOffsetCommit v5+, transaction
// version 2), which adds it. The caller checks the group's generation and
// member, and that the partitions exist.
//
// Errors: ErrInvalidProducerIDMapping, ErrInvalidProducerEpoch (the epoch
// is not current: what Kafka answers here), ErrNotInTransaction,
// ErrConcurrentTransactions, ErrNotAvailable.
func (c *Coordinator) TxnOffsetCommit(ctx context.Context, txnID string, producerID int64, epoch int16, group string, implicitAdd bool, offsets []meta.TxnOffset) error {
	e, err := c.lockProducer(txnID, producerID, epoch, ErrInvalidProducerEpoch)
	if err != nil {
		return err
	}
	defer e.mu.Unlock()
	if e.t.State != meta.TxnOngoing || !slices.Contains(e.t.Groups, group) {
		if !implicitAdd {
			return fmt.Errorf("%w: group %q was not added to the transaction of %q", ErrNotInTransaction, group, txnID)
		}
		if err := c.addLocked(ctx, e, nil, group, 2); err != nil {
			return err
		}
	}
	now, out := c.nowMs(), make([]meta.TxnOffset, len(offsets))
	for i, o := range offsets {
		o.TransactionalID, o.Group, o.ProducerID, o.ProducerEpoch, o.CommittedAt = txnID, group, producerID, epoch, now
		out[i] = o
	}
	if err := c.store.AddTxnOffsets(ctx, out); err != nil {
		return storeErr("store pending offsets", err)
	}
	return nil
}

// ProduceGuard keeps a transactional ID's state still while a Produce
// request checks and appends its transactional batches: an EndTxn, a
// fencing InitProducerId or a timeout abort of that ID waits for Release,
// so no marker can land between the check of a partition and the append
// it allows (which would open a transaction there that no marker ever
// ends). Appends do not wait for their fsync, so the hold is short.
type ProduceGuard struct {
	c          *Coordinator
	e          *entry
	producerID int64
	epoch      int16
	// adds are the partitions Check accepted for an implicit add; Add
	// stores them in one write.
	adds []meta.TopicPartition
}

// GuardProduce checks that txnID is at (producerID, epoch) with no
// transaction being completed, and returns the guard under which the
// request's partitions are checked (Check) and appended; the caller must
// Release it. Errors: ErrInvalidProducerIDMapping (unknown transactional
// ID or other producer ID), ErrInvalidProducerEpoch (not the current
// epoch: fenced), ErrConcurrentTransactions, ErrNotAvailable.
func (c *Coordinator) GuardProduce(txnID string, producerID int64, epoch int16) (*ProduceGuard, error) {
	e, err := c.lockProducer(txnID, producerID, epoch, ErrInvalidProducerEpoch)
	if err != nil {
		return nil, err
	}
	return &ProduceGuard{c: c, e: e, producerID: producerID, epoch: epoch}, nil
}

// Check returns nil if (topic, partition) is in the running transaction,
// for a batch of (producerID, epoch): two uncontended map lookups. With
// implicitAdd (Produce v12+, transaction version 2) a partition not yet
// in the transaction is accepted and noted: Add then stores every such
// partition of the request in one write (starting the transaction if
// none runs), before any batch is appended.
// Errors: those of GuardProduce for a batch of another producer or
// epoch, and ErrNotInTransaction (the partition was not added;
// TRANSACTION_ABORTABLE from Produce v11, INVALID_TXN_STATE before).
func (g *ProduceGuard) Check(ctx context.Context, producerID int64, epoch int16, topic string, partition int32, implicitAdd bool) error {
	t := g.e.t
	switch {
	case producerID != g.producerID:
		return mappingErr(t, producerID)
	case epoch != g.epoch:
		return fmt.Errorf("%w: transactional ID %q is at epoch %d, not %d", ErrInvalidProducerEpoch, g.e.id, t.ProducerEpoch, epoch)
	}
	tp := meta.TopicPartition{Topic: topic, Partition: partition}
	if _, ok := g.e.parts[tp]; ok {
		return nil
	}
	if !implicitAdd {
		return fmt.Errorf("%w: %s-%d was not added to the transaction of %q", ErrNotInTransaction, topic, partition, g.e.id)
	}
	if !slices.Contains(g.adds, tp) {
		g.adds = append(g.adds, tp)
	}
	return nil
}

// Add stores the partitions Check accepted for an implicit add, in one
// write; the request's batches may be appended only once it returned nil.
// On an error none of them was added.
func (g *ProduceGuard) Add(ctx context.Context) error {
	if len(g.adds) == 0 {
		return nil
	}
	err := g.c.addLocked(ctx, g.e, g.adds, "", 2)
	g.adds = nil
	return err
}

// Release lets the transactional ID's state change again.
func (g *ProduceGuard) Release() { g.e.mu.Unlock() }

// CheckProduce is GuardProduce, Check and Release for one partition.
func (c *Coordinator) CheckProduce(ctx context.Context, txnID string, producerID int64, epoch int16, topic string, partition int32, implicitAdd bool) error {
	g, err := c.GuardProduce(txnID, producerID, epoch)
	if err != nil {
		return err
	}
	defer g.Release()
	if err := g.Check(ctx, producerID, epoch, topic, partition, implicitAdd); err != nil {
		return err
	}
	return g.Add(ctx)
}

// lockProducer returns the entry of txnID locked, after the checks every
// operation of a producer inside a transaction starts with: the ID is
// known, has producerID and is at epoch (else fenced is returned), and no
// transaction is being completed.
func (c *Coordinator) lockProducer(txnID string, producerID int64, epoch int16, fenced error) (*entry, error) {
	e, err := c.lockEntry(txnID, false)
	if err != nil {
		return nil, err
	}
	if e == nil {
		return nil, fmt.Errorf("%w: unknown transactional ID %q", ErrInvalidProducerIDMapping, txnID)
	}
	t := e.t
	switch {
	case t.ProducerID != producerID:
		err = mappingErr(t, producerID)
	case t.ProducerEpoch != epoch:
		err = fmt.Errorf("%w: transactional ID %q is at epoch %d, not %d", fenced, txnID, t.ProducerEpoch, epoch)
	case decided(t.State):
		err = concurrentErr(t)
	}
	if err != nil {
		e.mu.Unlock()
		return nil, err
	}
	return e, nil
}

// holds reports whether every one of parts is in e's transaction.
func (e *entry) holds(parts []meta.TopicPartition) bool {
	for _, tp := range parts {
		if _, ok := e.parts[tp]; !ok {
			return false
		}
	}
	return true
}

// addLocked stores e's transaction with parts and group (if not empty)
// added, Ongoing: one that was not running starts now, at transaction
// version tv.
func (c *Coordinator) addLocked(ctx context.Context, e *entry, parts []meta.TopicPartition, group string, tv int16) error {
	n := c.transition(e.t)
	if e.t.State != meta.TxnOngoing {
		n.State, n.StartedAt, n.TxnVersion = meta.TxnOngoing, n.UpdatedAt, tv
		n.Partitions, n.Groups = nil, nil
	}
	n.Partitions = mergePartitions(n.Partitions, parts)
	if group != "" && !slices.Contains(n.Groups, group) {
		n.Groups = append(slices.Clone(n.Groups), group)
		slices.Sort(n.Groups)
	}
	if err := c.store.PutTxn(ctx, n); err != nil {
		return storeErr("add to transaction", err)
	}
	c.set(e, n)
	return nil
}

// mergePartitions returns a new sorted slice of the partitions of have and
// add, without duplicates.
func mergePartitions(have, add []meta.TopicPartition) []meta.TopicPartition {
	out := make([]meta.TopicPartition, 0, len(have)+len(add))
	out = append(append(out, have...), add...)
	slices.SortFunc(out, func(a, b meta.TopicPartition) int {
		return cmp.Or(cmp.Compare(a.Topic, b.Topic), cmp.Compare(a.Partition, b.Partition))
	})
	return slices.Compact(out)
}
