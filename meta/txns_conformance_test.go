package meta

import (
	"testing"
	"time"
)

// This file holds the conformance cases for the transaction coordinator's
// state (txns.go); runConformance runs them against every backend.

// txnAt builds a txn of id, Ongoing since t0 minus a second, updated at
// t0, with the given partitions and groups.
func txnAt(id string, pid int64, parts []TopicPartition, groups ...string) Txn {
	return Txn{
		TransactionalID: id, ProducerID: pid, ProducerEpoch: 3,
		LastProducerID: -1, LastProducerEpoch: -1,
		State: TxnOngoing, TimeoutMs: 60_000, TxnVersion: 2,
		StartedAt: t0.Add(-time.Second), UpdatedAt: t0,
		Partitions: parts, Groups: groups,
	}
}

// txnOff builds a pending offset of id for group at t0 + offset ms.
func txnOff(id, group, topic string, p int32, offset int64) TxnOffset {
	return TxnOffset{TransactionalID: id, Group: group, Topic: topic, Partition: p,
		Offset: offset, LeaderEpoch: 4, Metadata: "meta-" + id, ProducerID: 9, ProducerEpoch: 3,
		CommittedAt: t0.Add(time.Duration(offset) * time.Millisecond)}
}

// committedFrom is the committed offset CompleteTxn makes of o.
func committedFrom(o TxnOffset) CommittedOffset {
	return CommittedOffset{Group: o.Group, Topic: o.Topic, Partition: o.Partition,
		Offset: o.Offset, LeaderEpoch: o.LeaderEpoch, Metadata: o.Metadata, CommitTime: o.CommittedAt}
}

func normTxn(x Txn) Txn {
	x.UpdatedAt = x.UpdatedAt.UTC()
	if !x.StartedAt.IsZero() {
		x.StartedAt = x.StartedAt.UTC()
	}
	return x
}

func normTxns(xs []Txn) []Txn {
	out := make([]Txn, len(xs))
	for i, x := range xs {
		out[i] = normTxn(x)
	}
	return out
}

func normTxnOffsets(os []TxnOffset) []TxnOffset {
	out := make([]TxnOffset, len(os))
	for i, o := range os {
		o.CommittedAt = o.CommittedAt.UTC()
		out[i] = o
	}
	return out
}

// mustPutTxn stores x or fails the test.
func mustPutTxn(t *testing.T, s Store, x Txn) {
	t.Helper()
	if err := s.PutTxn(t.Context(), x); err != nil {
		t.Fatalf("PutTxn(%q): %v", x.TransactionalID, err)
	}
}

// mustAddTxnOffsets stores pending offsets or fails the test.
func mustAddTxnOffsets(t *testing.T, s Store, offsets ...TxnOffset) {
	t.Helper()
	if err := s.AddTxnOffsets(t.Context(), offsets); err != nil {
		t.Fatalf("AddTxnOffsets: %v", err)
	}
}

// wantTxn fails t unless the stored txn of id is want (or absent, if want
// is nil).
func wantTxn(t *testing.T, s Store, id string, want *Txn) {
	t.Helper()
	got, found, err := s.GetTxn(t.Context(), id)
	wantErr(t, err, nil)
	if want == nil {
		if found {
			t.Fatalf("GetTxn(%q) = %+v, want none", id, got)
		}
		return
	}
	if !found {
		t.Fatalf("GetTxn(%q): not found", id)
	}
	wantEqual(t, "txn "+id, normTxn(got), *want)
}

// wantPending fails t unless the group's pending offsets are want.
func wantPending(t *testing.T, s Store, group string, want ...TxnOffset) {
	t.Helper()
	got, err := s.PendingTxnOffsets(t.Context(), group)
	wantErr(t, err, nil)
	if got == nil {
		t.Fatal("PendingTxnOffsets returned nil, want a non-nil slice")
	}
	if want == nil {
		want = []TxnOffset{}
	}
	wantEqual(t, "pending offsets of "+group, normTxnOffsets(got), want)
}

// wantCommitted fails t unless the group's committed offsets are want.
func wantCommitted(t *testing.T, s Store, group string, want ...CommittedOffset) {
	t.Helper()
	got, err := s.FetchOffsets(t.Context(), group)
	wantErr(t, err, nil)
	if want == nil {
		want = []CommittedOffset{}
	}
	wantEqual(t, "committed offsets of "+group, normOffsets(got), want)
}

func testTxnState(t *testing.T, _ func(t *testing.T) Store) {
	names := map[TxnState]string{
		TxnEmpty: "Empty", TxnOngoing: "Ongoing", TxnPrepareCommit: "PrepareCommit",
		TxnPrepareAbort: "PrepareAbort", TxnCompleteCommit: "CompleteCommit",
		TxnCompleteAbort: "CompleteAbort", TxnDead: "Dead", TxnPrepareEpochFence: "PrepareEpochFence",
		8: "TxnState(8)", -1: "TxnState(-1)",
	}
	for s, want := range names {
		if got := s.String(); got != want {
			t.Errorf("TxnState(%d).String() = %q, want %q", int8(s), got, want)
		}
	}
}

func testPutGetListTxns(t *testing.T, open func(t *testing.T) Store) {
	t.Run("RoundTrip", func(t *testing.T) {
		s := open(t)
		ctx := t.Context()
		got, err := s.ListTxns(ctx)
		wantErr(t, err, nil)
		if got == nil || len(got) != 0 {
			t.Fatalf("ListTxns on an empty store = %#v, want an empty non-nil slice", got)
		}
		wantTxn(t, s, "a", nil)

		// Sets go in unsorted and come back sorted.
		a := txnAt("a", 7, []TopicPartition{{"t2", 0}, {"t1", 5}, {"t1", 1}}, "g2", "g1")
		a.LastProducerID, a.LastProducerEpoch = 6, 32767
		b := txnAt("b", 8, nil)
		b.State, b.StartedAt, b.TxnVersion, b.ProducerEpoch = TxnEmpty, time.Time{}, 0, -1
		c := txnAt("c", 0, []TopicPartition{{"t1", 0}}, "g1")
		c.State = TxnPrepareEpochFence
		for _, x := range []Txn{c, a, b} {
			mustPutTxn(t, s, x)
		}
		wantA := a
		wantA.Partitions = []TopicPartition{{"t1", 1}, {"t1", 5}, {"t2", 0}}
		wantA.Groups = []string{"g1", "g2"}
		wantTxn(t, s, "a", &wantA)
		wantTxn(t, s, "b", &b)
		got, err = s.ListTxns(ctx)
		wantErr(t, err, nil)
		wantEqual(t, "txns", normTxns(got), []Txn{wantA, b, c})
	})
	t.Run("UpdatedAtDefaulted", func(t *testing.T) {
		s := open(t)
		x := txnAt("a", 1, nil)
		x.UpdatedAt = time.Time{}
		before := time.Now().Truncate(time.Millisecond)
		mustPutTxn(t, s, x)
		got, _, err := s.GetTxn(t.Context(), "a")
		wantErr(t, err, nil)
		if got.UpdatedAt.Before(before) || got.UpdatedAt.After(time.Now()) {
			t.Fatalf("UpdatedAt = %v, want the store's clock (>= %v)", got.UpdatedAt, before)
		}
	})
	t.Run("ReplacesSets", func(t *testing.T) {
		s := open(t)
		mustPutTxn(t, s, txnAt("a", 1, []TopicPartition{{"t", 0}, {"t", 1}}, "g1", "g2"))
		other := txnAt("b", 2, []TopicPartition{{"t", 0}}, "g1")
		mustPutTxn(t, s, other)

		next := txnAt("a", 1, []TopicPartition{{"t", 1}, {"u", 3}}, "g3")
		next.State, next.ProducerEpoch, next.UpdatedAt = TxnPrepareCommit, 4, t0.Add(time.Second)
		mustPutTxn(t, s, next)
		wantTxn(t, s, "a", &next)

		empty := txnAt("a", 1, nil)
		empty.State, empty.StartedAt = TxnCompleteCommit, time.Time{}
		mustPutTxn(t, s, empty)
		wantTxn(t, s, "a", &empty)
		wantTxn(t, s, "b", &other)
	})
	t.Run("Invalid", func(t *testing.T) { testPutTxnInvalid(t, open(t)) })
}

// invalidTxns are the Txns PutTxn and CompleteTxn must refuse: each is a
// valid txn of "a" changed in one way.
var invalidTxns = []struct {
	name   string
	change func(x *Txn)
}{
	{"EmptyTransactionalID", func(x *Txn) { x.TransactionalID = "" }},
	{"NegativeProducerID", func(x *Txn) { x.ProducerID = -1 }},
	{"LastProducerIDBelowMinusOne", func(x *Txn) { x.LastProducerID = -2 }},
	{"NegativeTimeout", func(x *Txn) { x.TimeoutMs = -1 }},
	{"StateTooLarge", func(x *Txn) { x.State = TxnPrepareEpochFence + 1 }},
	{"StateNegative", func(x *Txn) { x.State = -1 }},
	{"DuplicatePartition", func(x *Txn) { x.Partitions = []TopicPartition{{"t", 1}, {"u", 0}, {"t", 1}} }},
	{"DuplicateGroup", func(x *Txn) { x.Groups = []string{"g", "h", "g"} }},
	{"EmptyTopic", func(x *Txn) { x.Partitions = []TopicPartition{{"", 0}} }},
	{"NegativePartition", func(x *Txn) { x.Partitions = []TopicPartition{{"t", -1}} }},
	{"EmptyGroup", func(x *Txn) { x.Groups = []string{""} }},
}

func testPutTxnInvalid(t *testing.T, s Store) {
	stored := txnAt("a", 1, []TopicPartition{{"t", 0}}, "g")
	mustPutTxn(t, s, stored)
	for _, c := range invalidTxns {
		t.Run(c.name, func(t *testing.T) {
			// Over the stored txn, and as a new one.
			for _, id := range []string{"a", "new"} {
				x := txnAt(id, 1, []TopicPartition{{"t", 9}}, "h")
				x.State = TxnPrepareAbort
				c.change(&x)
				wantErr(t, s.PutTxn(t.Context(), x), ErrInvalid)
			}
		})
	}
	got, err := s.ListTxns(t.Context())
	wantErr(t, err, nil)
	wantEqual(t, "txns after invalid puts", normTxns(got), []Txn{stored})
}

func testDeleteTxn(t *testing.T, open func(t *testing.T) Store) {
	s := open(t)
	ctx := t.Context()
	mustPutTxn(t, s, txnAt("a", 1, []TopicPartition{{"t", 0}}, "g"))
	keep := txnAt("b", 2, []TopicPartition{{"t", 0}}, "g")
	mustPutTxn(t, s, keep)
	mustAddTxnOffsets(t, s, txnOff("a", "g", "t", 0, 5), txnOff("b", "g", "t", 0, 6))

	wantErr(t, s.DeleteTxn(ctx, "a"), nil)
	wantTxn(t, s, "a", nil)
	wantTxn(t, s, "b", &keep)
	wantPending(t, s, "g", txnOff("b", "g", "t", 0, 6))
	wantErr(t, s.DeleteTxn(ctx, "a"), nil)
	wantErr(t, s.DeleteTxn(ctx, "never"), nil)

	// A new txn under the old ID starts without the old sets.
	fresh := txnAt("a", 3, nil)
	mustPutTxn(t, s, fresh)
	wantTxn(t, s, "a", &fresh)
	wantErr(t, s.AddTxnOffsets(ctx, []TxnOffset{txnOff("gone", "g", "t", 0, 1)}), ErrInvalid)
}

func testAddTxnOffsets(t *testing.T, open func(t *testing.T) Store) {
	s := open(t)
	ctx := t.Context()
	mustPutTxn(t, s, txnAt("a", 1, nil, "g"))
	mustPutTxn(t, s, txnAt("b", 2, nil, "g"))
	first := txnOff("a", "g", "t", 0, 5)
	mustAddTxnOffsets(t, s, first, txnOff("a", "g", "t", 1, 7))
	t.Run("Upserts", func(t *testing.T) {
		again := txnOff("a", "g", "t", 1, 8)
		again.Metadata, again.LeaderEpoch, again.ProducerEpoch = "second", -1, 4
		mustAddTxnOffsets(t, s, again)
		wantPending(t, s, "g", first, again)
	})
	t.Run("MissingTxnWritesNothing", func(t *testing.T) {
		err := s.AddTxnOffsets(ctx, []TxnOffset{txnOff("b", "g", "t", 2, 1), txnOff("nope", "g", "t", 3, 1)})
		wantErr(t, err, ErrInvalid)
		wantPending(t, s, "g", first, func() TxnOffset {
			o := txnOff("a", "g", "t", 1, 8)
			o.Metadata, o.LeaderEpoch, o.ProducerEpoch = "second", -1, 4
			return o
		}())
	})
	for _, c := range []struct {
		name   string
		change func(o *TxnOffset)
	}{
		{"EmptyTransactionalID", func(o *TxnOffset) { o.TransactionalID = "" }},
		{"EmptyGroup", func(o *TxnOffset) { o.Group = "" }},
		{"EmptyTopic", func(o *TxnOffset) { o.Topic = "" }},
		{"NegativePartition", func(o *TxnOffset) { o.Partition = -1 }},
	} {
		t.Run("Invalid"+c.name, func(t *testing.T) {
			bad := txnOff("b", "h", "t", 0, 1)
			c.change(&bad)
			err := s.AddTxnOffsets(ctx, []TxnOffset{txnOff("b", "h", "t", 1, 1), bad})
			wantErr(t, err, ErrInvalid)
			wantPending(t, s, "h")
		})
	}
	t.Run("EmptyIsNoOp", func(t *testing.T) { wantErr(t, s.AddTxnOffsets(ctx, nil), nil) })
	t.Run("CommittedAtDefaulted", func(t *testing.T) {
		o := txnOff("b", "d", "t", 0, 1)
		o.CommittedAt = time.Time{}
		before := time.Now().Truncate(time.Millisecond)
		mustAddTxnOffsets(t, s, o)
		got, err := s.PendingTxnOffsets(ctx, "d")
		wantErr(t, err, nil)
		if len(got) != 1 || got[0].CommittedAt.Before(before) || got[0].CommittedAt.After(time.Now()) {
			t.Fatalf("pending = %+v, want one with CommittedAt >= %v", got, before)
		}
	})
}

func testPendingTxnOffsets(t *testing.T, open func(t *testing.T) Store) {
	s := open(t)
	for _, id := range []string{"a", "b", "c"} {
		mustPutTxn(t, s, txnAt(id, 1, nil, "g"))
	}
	mustAddTxnOffsets(t, s,
		txnOff("c", "g", "u", 0, 1), txnOff("b", "g", "t", 1, 2), txnOff("a", "g", "t", 1, 3))
	mustAddTxnOffsets(t, s, txnOff("a", "g", "t", 0, 4), txnOff("a", "other", "t", 0, 5))
	wantPending(t, s, "g",
		txnOff("a", "g", "t", 0, 4), txnOff("a", "g", "t", 1, 3), txnOff("b", "g", "t", 1, 2),
		txnOff("c", "g", "u", 0, 1))
	wantPending(t, s, "other", txnOff("a", "other", "t", 0, 5))
	wantPending(t, s, "unknown")
	// Pending offsets are not committed ones.
	wantCommitted(t, s, "g")
}

func testCompleteTxn(t *testing.T, open func(t *testing.T) Store) {
	// Every case starts with group g holding a committed offset on t/0
	// and t/9, txn a holding pending offsets on t/0 and t/1 of g and u/0
	// of h, and txn b one on t/2 of g.
	setup := func(t *testing.T) (Store, []TxnOffset) {
		s := open(t)
		mustCommit(t, s, off("g", "t", 0, 1), off("g", "t", 9, 1))
		mustPutTxn(t, s, txnAt("a", 1, []TopicPartition{{"t", 0}, {"t", 1}, {"u", 0}}, "g", "h"))
		mustPutTxn(t, s, txnAt("b", 2, nil, "g"))
		pending := []TxnOffset{txnOff("a", "g", "t", 0, 50), txnOff("a", "g", "t", 1, 60), txnOff("a", "h", "u", 0, 70)}
		mustAddTxnOffsets(t, s, pending...)
		mustAddTxnOffsets(t, s, txnOff("b", "g", "t", 2, 80))
		return s, pending
	}
	done := func(state TxnState) Txn {
		x := txnAt("a", 1, nil)
		x.State, x.StartedAt, x.UpdatedAt = state, time.Time{}, t0.Add(time.Minute)
		return x
	}
	t.Run("Commit", func(t *testing.T) {
		s, pending := setup(t)
		want := done(TxnCompleteCommit)
		wantErr(t, s.CompleteTxn(t.Context(), want, true), nil)
		wantCommitted(t, s, "g", committedFrom(pending[0]), committedFrom(pending[1]), off("g", "t", 9, 1))
		wantCommitted(t, s, "h", committedFrom(pending[2]))
		o, found, err := s.FetchOffset(t.Context(), "h", "u", 0)
		wantErr(t, err, nil)
		if !found || o.Offset != 70 || !o.CommitTime.Equal(pending[2].CommittedAt) {
			t.Fatalf("FetchOffset(h, u, 0) = %+v, %v; want offset 70 committed at %v", o, found, pending[2].CommittedAt)
		}
		groups, err := s.ListGroups(t.Context())
		wantErr(t, err, nil)
		wantEqual(t, "groups", groups, []string{"g", "h"})
		wantPending(t, s, "g", txnOff("b", "g", "t", 2, 80))
		wantPending(t, s, "h")
		wantTxn(t, s, "a", &want)
	})
	t.Run("Abort", func(t *testing.T) {
		s, _ := setup(t)
		want := done(TxnCompleteAbort)
		wantErr(t, s.CompleteTxn(t.Context(), want, false), nil)
		wantCommitted(t, s, "g", off("g", "t", 0, 1), off("g", "t", 9, 1))
		wantCommitted(t, s, "h")
		wantPending(t, s, "g", txnOff("b", "g", "t", 2, 80))
		wantPending(t, s, "h")
		wantTxn(t, s, "a", &want)
	})
	t.Run("NothingPending", func(t *testing.T) {
		s, _ := setup(t)
		x := txnAt("new", 5, nil)
		x.State = TxnCompleteCommit
		wantErr(t, s.CompleteTxn(t.Context(), x, true), nil)
		wantTxn(t, s, "new", &x)
		wantCommitted(t, s, "g", off("g", "t", 0, 1), off("g", "t", 9, 1))
	})
	for _, c := range invalidTxns {
		t.Run("Invalid"+c.name, func(t *testing.T) {
			s, pending := setup(t)
			before, _, err := s.GetTxn(t.Context(), "a")
			wantErr(t, err, nil)
			for _, commit := range []bool{true, false} {
				x := done(TxnCompleteCommit)
				c.change(&x)
				wantErr(t, s.CompleteTxn(t.Context(), x, commit), ErrInvalid)
			}
			wantCommitted(t, s, "g", off("g", "t", 0, 1), off("g", "t", 9, 1))
			wantCommitted(t, s, "h")
			wantPending(t, s, "g", pending[0], pending[1], txnOff("b", "g", "t", 2, 80))
			wantPending(t, s, "h", pending[2])
			wantBefore := normTxn(before)
			wantTxn(t, s, "a", &wantBefore)
		})
	}
}

// testTxnOffsetsFollowDeletes: DeleteGroup drops the group's pending
// offsets and DeleteTopic the topic's, across transactions; the txn rows
// and other pending offsets stay.
func testTxnOffsetsFollowDeletes(t *testing.T, open func(t *testing.T) Store) {
	s := open(t)
	ctx := t.Context()
	mustCreate(t, s, Topic{Name: "t", PartitionCount: 2})
	mustCreate(t, s, Topic{Name: "u", PartitionCount: 1})
	a := txnAt("a", 1, []TopicPartition{{"t", 0}}, "g", "h")
	b := txnAt("b", 2, nil, "g")
	mustPutTxn(t, s, a)
	mustPutTxn(t, s, b)
	mustAddTxnOffsets(t, s, txnOff("a", "g", "t", 0, 1), txnOff("a", "g", "u", 0, 2),
		txnOff("a", "h", "t", 1, 3), txnOff("a", "h", "u", 0, 4))
	mustAddTxnOffsets(t, s, txnOff("b", "g", "t", 1, 5))

	wantErr(t, s.DeleteGroup(ctx, "g"), nil)
	wantPending(t, s, "g")
	wantPending(t, s, "h", txnOff("a", "h", "t", 1, 3), txnOff("a", "h", "u", 0, 4))

	mustDelete(t, s, "t")
	wantPending(t, s, "h", txnOff("a", "h", "u", 0, 4))
	wantTxn(t, s, "a", &a)
	wantTxn(t, s, "b", &b)

	// A pending offset may name its group again after the delete.
	mustAddTxnOffsets(t, s, txnOff("b", "g", "u", 0, 6))
	wantErr(t, s.CompleteTxn(ctx, b, true), nil)
	wantCommitted(t, s, "g", committedFrom(txnOff("b", "g", "u", 0, 6)))
}
