package txn

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/streamhouse/streamhouse/meta"
)

// TestRestartOnSQLite runs a commit whose markers fail against the real
// metadata store, restarts the coordinator, and checks that Start
// completes it: markers written, offsets committed, pending offsets gone.
// An Ongoing transaction keeps its partitions, groups and start time.
func TestRestartOnSQLite(t *testing.T) {
	ctx := context.Background()
	db, err := meta.OpenSQLite(ctx, filepath.Join(t.TempDir(), "meta.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	clock, marks := newFakeClock(), &fakeMarkers{}
	c := New(Config{}, clock, db, marks, nil, nil)
	if err := c.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer func() { c.Close() }()
	pid, epoch, err := c.InitProducerID(ctx, "decided", 60_000, -1, -1)
	if err != nil {
		t.Fatal(err)
	}
	a := tp("out", 0)
	if err := c.AddPartitions(ctx, "decided", pid, epoch, []meta.TopicPartition{a}); err != nil {
		t.Fatal(err)
	}
	if err := c.AddOffsets(ctx, "decided", pid, epoch, "g"); err != nil {
		t.Fatal(err)
	}
	offs := []meta.TxnOffset{{Topic: "in", Partition: 1, Offset: 77, LeaderEpoch: -1, Metadata: "md"}}
	if err := c.TxnOffsetCommit(ctx, "decided", pid, epoch, "g", false, offs); err != nil {
		t.Fatal(err)
	}
	p2, e2, err := c.InitProducerID(ctx, "ongoing", 60_000, -1, -1)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.AddPartitions(ctx, "ongoing", p2, e2, []meta.TopicPartition{tp("out", 1), tp("out", 2)}); err != nil {
		t.Fatal(err)
	}
	before, _ := c.Describe("ongoing")
	marks.setFail(true)
	if _, _, err := c.EndTxn(ctx, "decided", pid, epoch, true, false); err != nil {
		t.Fatal(err)
	}
	if p, err := c.PendingOffsets(ctx, "g"); err != nil || len(p) != 1 {
		t.Fatalf("pending %v, %v", p, err)
	}
	c.Close()

	marks.setFail(false)
	c = New(Config{}, clock, db, marks, nil, nil)
	if err := c.Start(ctx); err != nil {
		t.Fatal(err)
	}
	wantMarkers(t, marks.take(), true, pid, epoch, a)
	st, err := c.Describe("decided")
	if err != nil || st.State != meta.TxnCompleteCommit {
		t.Fatalf("decided: %+v, %v", st, err)
	}
	got, found, err := db.FetchOffset(ctx, "g", "in", 1)
	if err != nil || !found || got.Offset != 77 || got.Metadata != "md" {
		t.Fatalf("committed offset %+v found %t: %v", got, found, err)
	}
	if p, err := c.PendingOffsets(ctx, "g"); err != nil || len(p) != 0 {
		t.Fatalf("pending after completion %v, %v", p, err)
	}
	after, err := c.Describe("ongoing")
	if err != nil || after.State != meta.TxnOngoing || !after.StartedAt.Equal(before.StartedAt) || len(after.Partitions) != 2 {
		t.Fatalf("ongoing after restart %+v (before %+v): %v", after, before, err)
	}
	if err := c.CheckProduce(ctx, "ongoing", p2, e2, "out", 2, false); err != nil {
		t.Fatal(err)
	}
}
