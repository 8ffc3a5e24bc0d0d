package meta

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mattn/go-sqlite3"
	"go.uber.org/goleak"

	"github.com/streamhouse/streamhouse/meta/pgtest"
)

// TestMain checks for leaked goroutines after the tests, and stops the
// PostgreSQL server pgtest started (before goleak looks).
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(pgtest.Main(m))
}

// openTestSQLite opens a store at path and closes it when t ends.
func openTestSQLite(t testing.TB, path string) *SQLite {
	t.Helper()
	s, err := OpenSQLite(context.Background(), path)
	if err != nil {
		t.Fatalf("OpenSQLite(%s): %v", path, err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

func TestSQLiteReopenPreservesData(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "meta.db")
	s, err := OpenSQLite(ctx, path)
	wantErr(t, err, nil)
	tp := mustCreate(t, s, Topic{Name: "t", PartitionCount: 2, Configs: map[string]string{"k": "v"}})
	mustAddSegments(t, s, seg(tp.ID, 1, 0), seg(tp.ID, 1, 10))
	wantErr(t, s.SetLogStartOffset(ctx, tp.ID, 1, 10), nil)
	mustCommit(t, s, off("g", "t", 1, 15))
	txn, err := s.AllocateProducerID(ctx, "tx")
	wantErr(t, err, nil)
	plain, err := s.AllocateProducerID(ctx, "")
	wantErr(t, err, nil)
	gone := mustCreate(t, s, Topic{Name: "gone", PartitionCount: 3})
	mustDelete(t, s, "gone")
	wantErr(t, s.Close(), nil)

	s = openTestSQLite(t, path)
	got, err := s.GetTopic(ctx, "t")
	wantErr(t, err, nil)
	wantEqual(t, "topic", got, tp)
	segs, err := s.ListSegments(ctx, tp.ID, 1)
	wantErr(t, err, nil)
	wantEqual(t, "segments", segs, []Segment{seg(tp.ID, 1, 0), seg(tp.ID, 1, 10)})
	if ls := logStart(t, s, tp.ID, 1); ls != 10 {
		t.Fatalf("log start = %d, want 10", ls)
	}
	offs, err := s.FetchOffsets(ctx, "g")
	wantErr(t, err, nil)
	wantEqual(t, "offsets", offs, []CommittedOffset{off("g", "t", 1, 15)})
	txn2, err := s.AllocateProducerID(ctx, "tx")
	wantErr(t, err, nil)
	wantEqual(t, "transactional id after reopen", txn2, ProducerID{ID: txn.ID, Epoch: 1, TransactionalID: "tx"})
	plain2, err := s.AllocateProducerID(ctx, "")
	wantErr(t, err, nil)
	if plain2.ID <= plain.ID || plain2.ID == txn.ID {
		t.Fatalf("producer id %d after reopen reuses or precedes %d", plain2.ID, plain.ID)
	}
	wantDeleted(t, s, deletedEntry(gone))
}

// TestSQLiteDeleteTopicAtomic makes recording the deleted topic fail and
// checks the whole deletion rolled back: the topic, its segments and its
// offsets are all still there.
func TestSQLiteDeleteTopicAtomic(t *testing.T) {
	ctx := t.Context()
	s := openTestSQLite(t, filepath.Join(t.TempDir(), "meta.db"))
	tp := mustCreate(t, s, Topic{Name: "t", PartitionCount: 1})
	mustAddSegments(t, s, seg(tp.ID, 0, 0))
	mustCommit(t, s, off("g", "t", 0, 5))
	// A row the store never writes itself: CreateTopic refuses an ID
	// listed as deleted, so only raw SQL can make the insert collide.
	_, err := s.w.ExecContext(ctx,
		`INSERT INTO deleted_topics (id, name, partition_count, deleted_at) VALUES (?, 'x', 1, 0)`, tp.ID)
	wantErr(t, err, nil)

	if _, _, err := s.DeleteTopic(ctx, "t"); err == nil {
		t.Fatal("DeleteTopic succeeded although recording the deletion failed")
	}
	got, err := s.GetTopic(ctx, "t")
	wantErr(t, err, nil)
	wantEqual(t, "topic", normTopic(got), normTopic(tp))
	segs, err := s.ListSegments(ctx, tp.ID, 0)
	wantErr(t, err, nil)
	wantEqual(t, "segments", normSegments(segs), []Segment{seg(tp.ID, 0, 0)})
	if _, found, err := s.FetchOffset(ctx, "g", "t", 0); err != nil || !found {
		t.Fatalf("offset after failed delete: found=%v err=%v", found, err)
	}
	wantDeleted(t, s, Topic{ID: tp.ID, Name: "x", PartitionCount: 1})
}

// TestSQLiteCompleteTxnAtomic makes writing the txn's new state fail
// after the pending offsets were applied and deleted, and checks the whole
// CompleteTxn rolled back: no offset committed, the pending ones and the
// old state still there.
func TestSQLiteCompleteTxnAtomic(t *testing.T) {
	s := openTestSQLite(t, filepath.Join(t.TempDir(), "meta.db"))
	testCompleteTxnAtomic(t, s, func() {
		_, err := s.w.ExecContext(t.Context(), `CREATE TRIGGER refuse_txn BEFORE UPDATE ON txns
			BEGIN SELECT RAISE(ABORT, 'refused by test'); END`)
		wantErr(t, err, nil)
	})
}

// testCompleteTxnAtomic runs CompleteTxn (commit, then abort) on s after
// refuse made every later update of a txns row fail, and checks that
// nothing changed.
func testCompleteTxnAtomic(t *testing.T, s Store, refuse func()) {
	ctx := t.Context()
	mustCommit(t, s, off("g", "t", 0, 1))
	mustPutTxn(t, s, txnAt("a", 1, []TopicPartition{{"t", 0}, {"t", 1}}, "g"))
	pending := []TxnOffset{txnOff("a", "g", "t", 0, 50), txnOff("a", "g", "t", 1, 60)}
	mustAddTxnOffsets(t, s, pending...)
	before := txnAt("a", 1, []TopicPartition{{"t", 0}, {"t", 1}}, "g")
	refuse()
	for _, commit := range []bool{true, false} {
		x := txnAt("a", 1, nil)
		x.State, x.StartedAt = TxnCompleteCommit, time.Time{}
		err := s.CompleteTxn(ctx, x, commit)
		t.Logf("CompleteTxn(commit %t): %v", commit, err)
		if err == nil {
			t.Fatalf("CompleteTxn(commit %t) succeeded although writing the state failed", commit)
		}
		wantCommitted(t, s, "g", off("g", "t", 0, 1))
		wantPending(t, s, "g", pending...)
		wantTxn(t, s, "a", &before)
	}
}

// TestSQLiteMigratesV1 opens a database left by a binary that knew only
// migration 1, with a topic in it, and checks it is brought to the latest
// version with its data intact and deletions recorded.
func TestSQLiteMigratesV1(t *testing.T) {
	ctx := t.Context()
	ms, err := loadMigrations()
	wantErr(t, err, nil)
	if len(ms) < 2 {
		t.Fatalf("%d embedded migrations, want at least 2", len(ms))
	}
	path := filepath.Join(t.TempDir(), "meta.db")
	db, err := sql.Open("sqlite3", sqliteDSN(path, true))
	wantErr(t, err, nil)
	v1At := t0.Add(-time.Hour)
	wantErr(t, applyMigrations(ctx, db, ms[:1], func() time.Time { return v1At }, slog.New(slog.DiscardHandler)), nil)
	const id = "00000000-0000-4000-8000-0000000000aa"
	for _, q := range []string{
		`INSERT INTO topics (id, name, partition_count, created_at) VALUES ('` + id + `', 'old', 2, 0)`,
		`INSERT INTO partitions (topic_id, partition) VALUES ('` + id + `', 0), ('` + id + `', 1)`,
	} {
		_, err := db.ExecContext(ctx, q)
		wantErr(t, err, nil)
	}
	wantErr(t, db.Close(), nil)

	s, err := OpenSQLite(ctx, path, WithClock(func() time.Time { return t0 }))
	wantErr(t, err, nil)
	t.Cleanup(func() { _ = s.Close() })
	want := [][2]int64{{1, v1At.UnixMilli()}}
	for _, m := range ms[1:] {
		want = append(want, [2]int64{int64(m.version), t0.UnixMilli()})
	}
	wantEqual(t, "schema_migrations", schemaMigrations(t, s), want)
	got, err := s.GetTopic(ctx, "old")
	wantErr(t, err, nil)
	wantEqual(t, "topic", got, Topic{ID: id, Name: "old", PartitionCount: 2,
		Configs: map[string]string{}, CreatedAt: fromMillis(0)})
	wantDeleted(t, s)
	mustDelete(t, s, "old")
	wantDeleted(t, s, Topic{ID: id, Name: "old", PartitionCount: 2})
	// The old database got a cluster ID at this open, stamped with its
	// clock, and keeps it.
	cid, err := s.ClusterID(ctx)
	wantErr(t, err, nil)
	wantClusterIDForm(t, cid)
	var createdAt int64
	wantErr(t, s.r.QueryRowContext(ctx, `SELECT created_at FROM cluster`).Scan(&createdAt), nil)
	wantEqual(t, "cluster created_at", createdAt, t0.UnixMilli())
	wantErr(t, s.Close(), nil)
	again, err := openTestSQLite(t, path).ClusterID(ctx)
	wantErr(t, err, nil)
	wantEqual(t, "cluster id after reopen", again, cid)
}

func TestSQLiteMigrationsAppliedOnce(t *testing.T) {
	ms, err := loadMigrations()
	wantErr(t, err, nil)
	if len(ms) == 0 {
		t.Fatal("no embedded migrations")
	}
	path := filepath.Join(t.TempDir(), "meta.db")
	var first [][2]int64
	for i := range 3 {
		s, err := OpenSQLite(t.Context(), path)
		wantErr(t, err, nil)
		rows := schemaMigrations(t, s)
		wantErr(t, s.Close(), nil)
		if len(rows) != len(ms) {
			t.Fatalf("open %d: %d schema_migrations rows, want %d", i, len(rows), len(ms))
		}
		for j, r := range rows {
			if r[0] != int64(j+1) {
				t.Fatalf("open %d: row %d has version %d", i, j, r[0])
			}
		}
		if i == 0 {
			first = rows
		}
		wantEqual(t, "schema_migrations after reopen", rows, first)
	}
}

// schemaMigrations returns the (version, applied_at) rows in version order.
func schemaMigrations(t *testing.T, s *SQLite) [][2]int64 {
	t.Helper()
	rows, err := s.r.QueryContext(t.Context(), `SELECT version, applied_at FROM schema_migrations ORDER BY version`)
	wantErr(t, err, nil)
	defer rows.Close()
	var out [][2]int64
	for rows.Next() {
		var r [2]int64
		wantErr(t, rows.Scan(&r[0], &r[1]), nil)
		out = append(out, r)
	}
	wantErr(t, rows.Err(), nil)
	return out
}

func TestSQLiteFutureSchemaFailsOpen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "meta.db")
	s, err := OpenSQLite(t.Context(), path)
	wantErr(t, err, nil)
	_, err = s.w.ExecContext(t.Context(),
		`INSERT INTO schema_migrations (version, applied_at) VALUES (9999, 0)`)
	wantErr(t, err, nil)
	wantErr(t, s.Close(), nil)

	s, err = OpenSQLite(t.Context(), path)
	if err == nil {
		_ = s.Close()
		t.Fatal("OpenSQLite succeeded on a database from the future")
	}
	if !strings.Contains(err.Error(), "schema version 9999 is newer") {
		t.Fatalf("error %q does not name the future version", err)
	}
}

func TestSQLitePragmas(t *testing.T) {
	s := openTestSQLite(t, filepath.Join(t.TempDir(), "meta.db"))
	for _, pool := range []struct {
		name      string
		db        *sql.DB
		queryOnly string
	}{{"write", s.w, "0"}, {"read", s.r, "1"}} {
		for _, c := range []struct{ pragma, want string }{
			{"journal_mode", "wal"},
			{"foreign_keys", "1"},
			{"synchronous", "2"}, // FULL
			{"busy_timeout", "5000"},
			{"query_only", pool.queryOnly},
		} {
			t.Run(pool.name+"/"+c.pragma, func(t *testing.T) {
				var got string
				wantErr(t, pool.db.QueryRowContext(t.Context(), "PRAGMA "+c.pragma).Scan(&got), nil)
				if !strings.EqualFold(got, c.want) {
					t.Fatalf("PRAGMA %s = %q, want %q", c.pragma, got, c.want)
				}
			})
		}
	}
}

func TestSQLiteConcurrentCommitOffsets(t *testing.T) {
	s := openTestSQLite(t, filepath.Join(t.TempDir(), "meta.db"))
	const workers, commits, batch = 8, 25, 20
	var wg sync.WaitGroup
	errs := make(chan error, 3*workers*commits)
	for w := range workers {
		group := fmt.Sprintf("g%d", w)
		wg.Go(func() {
			for c := range commits {
				offs := make([]CommittedOffset, batch)
				for p := range offs {
					offs[p] = off(group, "t", int32(p), int64(c))
				}
				errs <- s.CommitOffsets(context.Background(), offs)
			}
		})
		wg.Go(func() { // readers run alongside the writers
			for range commits {
				_, err := s.FetchOffsets(context.Background(), group)
				errs <- err
			}
		})
		wg.Go(func() { // and read-then-write transactions
			for range commits {
				_, err := s.AllocateProducerID(context.Background(), group)
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		var se sqlite3.Error
		if errors.As(err, &se) && se.Code == sqlite3.ErrBusy {
			t.Fatalf("SQLITE_BUSY under concurrency: %v", err)
		}
		wantErr(t, err, nil)
	}
	for w := range workers {
		got, err := s.FetchOffsets(t.Context(), fmt.Sprintf("g%d", w))
		wantErr(t, err, nil)
		if len(got) != batch || got[0].Offset != commits-1 {
			t.Fatalf("group g%d: %d offsets, first %+v", w, len(got), got[0])
		}
	}
}

func TestSQLiteProducerEpochOverflow(t *testing.T) {
	s := openTestSQLite(t, filepath.Join(t.TempDir(), "meta.db"))
	ctx := t.Context()
	first, err := s.AllocateProducerID(ctx, "tx")
	wantErr(t, err, nil)
	// Fast-forward instead of 32767 fsynced allocations.
	_, err = s.w.ExecContext(ctx, `UPDATE producer_ids SET epoch = ? WHERE id = ?`, math.MaxInt16-1, first.ID)
	wantErr(t, err, nil)

	last, err := s.AllocateProducerID(ctx, "tx")
	wantErr(t, err, nil)
	wantEqual(t, "last epoch", last, ProducerID{ID: first.ID, Epoch: math.MaxInt16, TransactionalID: "tx"})
	fresh, err := s.AllocateProducerID(ctx, "tx")
	wantErr(t, err, nil)
	if fresh.ID == first.ID || fresh.Epoch != 0 || fresh.TransactionalID != "tx" {
		t.Fatalf("after epoch overflow got %+v, want a new id with epoch 0", fresh)
	}
	next, err := s.AllocateProducerID(ctx, "tx")
	wantErr(t, err, nil)
	wantEqual(t, "after overflow", next, ProducerID{ID: fresh.ID, Epoch: 1, TransactionalID: "tx"})
}

func TestSQLiteOpenErrors(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct {
		name, path string
		want       error
	}{
		{"EmptyPath", "", ErrInvalid},
		{"QuestionMark", filepath.Join(dir, "a?b.db"), ErrInvalid},
		{"MissingDirectory", filepath.Join(dir, "no", "such", "meta.db"), nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			s, err := OpenSQLite(t.Context(), c.path)
			if err == nil {
				_ = s.Close()
				t.Fatalf("OpenSQLite(%q) succeeded", c.path)
			}
			if c.want != nil {
				wantErr(t, err, c.want)
			}
		})
	}
}

// BenchmarkCommitOffsets measures one CommitOffsets call of 100 offsets:
// one group, the same 100 partitions upserted each call, fsynced commit.
func BenchmarkCommitOffsets(b *testing.B) {
	s := openTestSQLite(b, filepath.Join(b.TempDir(), "meta.db"))
	offs := make([]CommittedOffset, 100)
	for p := range offs {
		offs[p] = CommittedOffset{Group: "bench", Topic: "t", Partition: int32(p), LeaderEpoch: -1}
	}
	ctx := context.Background()
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		for p := range offs {
			offs[p].Offset = int64(n)
		}
		if err := s.CommitOffsets(ctx, offs); err != nil {
			b.Fatal(err)
		}
		n++
	}
	b.ReportMetric(float64(n*len(offs))/b.Elapsed().Seconds(), "offsets/s")
}

func TestSQLiteOptions(t *testing.T) {
	var logs strings.Builder
	logger := slog.New(slog.NewTextHandler(&logs, nil))
	path := filepath.Join(t.TempDir(), "meta.db")
	s, err := OpenSQLite(t.Context(), path, WithClock(func() time.Time { return t0 }), WithLogger(logger))
	wantErr(t, err, nil)
	t.Cleanup(func() { _ = s.Close() })
	if !strings.Contains(logs.String(), "applied schema migration") {
		t.Fatalf("no migration logged; logs:\n%s", logs.String())
	}
	if rows := schemaMigrations(t, s); rows[0][1] != t0.UnixMilli() {
		t.Fatalf("applied_at = %d, want the injected clock %d", rows[0][1], t0.UnixMilli())
	}
	tp := mustCreate(t, s, Topic{Name: "t", PartitionCount: 1})
	o := off("g", "t", 0, 1)
	o.CommitTime = time.Time{}
	mustCommit(t, s, o)
	got, _, err := s.FetchOffset(t.Context(), "g", "t", 0)
	wantErr(t, err, nil)
	if !tp.CreatedAt.Equal(t0) || !got.CommitTime.Equal(t0) {
		t.Fatalf("CreatedAt %v, CommitTime %v; want the injected clock %v", tp.CreatedAt, got.CommitTime, t0)
	}
}
