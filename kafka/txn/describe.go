package txn

// The admin views: DescribeTransactions, ListTransactions, and the pending
// offsets OffsetFetch's RequireStable asks about.

import (
	"context"
	"fmt"
	"regexp"
	"slices"

	"github.com/streamhouse/streamhouse/meta"
)

// Describe returns the state of txnID (DescribeTransactions), or
// ErrTransactionalIDNotFound. The result shares nothing with the
// coordinator.
func (c *Coordinator) Describe(txnID string) (meta.Txn, error) {
	e, err := c.lockEntry(txnID, false)
	if err != nil {
		return meta.Txn{}, err
	}
	if e == nil {
		return meta.Txn{}, fmt.Errorf("%w: %q", ErrTransactionalIDNotFound, txnID)
	}
	defer e.mu.Unlock()
	return clone(e.t), nil
}

// Filter selects the transactional IDs List returns; zero fields select
// all.
type Filter struct {
	// States keeps only IDs in one of these states.
	States []meta.TxnState
	// ProducerIDs keeps only IDs with one of these producer IDs.
	ProducerIDs []int64
	// MinDurationMs, when not negative, keeps only IDs whose current
	// transaction started more than this many milliseconds ago, or that
	// run none (Kafka counts their start time as -1).
	MinDurationMs int64
	// Pattern, when set, keeps only IDs it matches.
	Pattern *regexp.Regexp
}

// List returns the transactional IDs filter selects, sorted by ID
// (ListTransactions).
func (c *Coordinator) List(filter Filter) []meta.Txn {
	now := c.clock.Now().UnixMilli()
	var out []meta.Txn
	for _, e := range c.entries() {
		e.mu.Lock()
		t, ok := e.t, e.stored && !e.gone
		e.mu.Unlock()
		switch {
		case !ok,
			len(filter.States) > 0 && !slices.Contains(filter.States, t.State),
			len(filter.ProducerIDs) > 0 && !slices.Contains(filter.ProducerIDs, t.ProducerID),
			filter.MinDurationMs >= 0 && now-StartMs(t) <= filter.MinDurationMs,
			filter.Pattern != nil && !filter.Pattern.MatchString(t.TransactionalID):
			continue
		}
		out = append(out, clone(t))
	}
	return out
}

// StartMs is when t's current transaction started, in milliseconds since
// the epoch, or -1 if none runs (Kafka's txnStartTimestamp).
func StartMs(t meta.Txn) int64 {
	if t.StartedAt.IsZero() {
		return -1
	}
	return t.StartedAt.UnixMilli()
}

// PendingOffsets returns the offsets of group committed by running
// transactions and not yet committed or dropped (OffsetFetch's
// RequireStable answers UNSTABLE_OFFSET_COMMIT for their partitions).
func (c *Coordinator) PendingOffsets(ctx context.Context, group string) ([]meta.TxnOffset, error) {
	offsets, err := c.store.PendingTxnOffsets(ctx, group)
	if err != nil {
		return nil, storeErr("read pending offsets", err)
	}
	return offsets, nil
}

// clone copies t's slices.
func clone(t meta.Txn) meta.Txn {
	t.Partitions = slices.Clone(t.Partitions)
	t.Groups = slices.Clone(t.Groups)
	return t
}
