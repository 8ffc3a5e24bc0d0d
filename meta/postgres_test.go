package meta

import (
	"context"
	"errors"
	"log/slog"
	"math"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/streamhouse/streamhouse/meta/pgtest"
)

// openTestPostgres opens a store on a fresh database and closes it when t
// ends.
func openTestPostgres(t testing.TB, opts ...Option) *Postgres {
	t.Helper()
	return openPostgresURL(t, pgtest.DB(t), opts...)
}

// openPostgresURL opens a store at url and closes it when t ends.
func openPostgresURL(t testing.TB, url string, opts ...Option) *Postgres {
	t.Helper()
	s, err := OpenPostgres(context.Background(), url, opts...)
	if err != nil {
		t.Fatalf("OpenPostgres: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

// pgExec runs one statement on the database at url.
func pgExec(t *testing.T, url, stmt string, args ...any) {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), url)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(t.Context(), stmt, args...); err != nil {
		t.Fatalf("%s: %v", stmt, err)
	}
}

// pgVersions returns the versions recorded in schema_migrations.
func pgVersions(t *testing.T, s *Postgres) []int32 {
	t.Helper()
	rows, err := s.pool.Query(t.Context(), `SELECT version FROM schema_migrations ORDER BY version`)
	if err != nil {
		t.Fatal(err)
	}
	vs, err := pgx.CollectRows(rows, pgx.RowTo[int32])
	if err != nil {
		t.Fatal(err)
	}
	return vs
}

// pgAllVersions returns 1, 2, ... up to the latest embedded migration.
func pgAllVersions(t *testing.T) []int32 {
	t.Helper()
	ms, err := readMigrations(pgMigrationFiles, "pgmigrations")
	if err != nil {
		t.Fatal(err)
	}
	vs := make([]int32, len(ms))
	for i, m := range ms {
		vs[i] = int32(m.version)
	}
	return vs
}

func TestPostgresReopenPreservesData(t *testing.T) {
	url := pgtest.DB(t)
	s1, err := OpenPostgres(t.Context(), url)
	if err != nil {
		t.Fatal(err)
	}
	tp := mustCreate(t, s1, Topic{Name: "keep", PartitionCount: 2, Configs: map[string]string{"retention.ms": "1"}})
	mustAddSegments(t, s1, seg(tp.ID, 1, 0))
	mustCommit(t, s1, off("g", "keep", 1, 7))
	if err := s1.Close(); err != nil {
		t.Fatal(err)
	}
	s2 := openPostgresURL(t, url)
	got, err := s2.GetTopic(t.Context(), "keep")
	wantErr(t, err, nil)
	wantEqual(t, "topic", normTopic(got), normTopic(tp))
	segs, err := s2.ListSegments(t.Context(), tp.ID, 1)
	wantErr(t, err, nil)
	wantEqual(t, "segments", len(segs), 1)
	o, found, err := s2.FetchOffset(t.Context(), "g", "keep", 1)
	wantErr(t, err, nil)
	if !found || o.Offset != 7 {
		t.Fatalf("offset = %+v, %v; want 7", o, found)
	}
	wantEqual(t, "versions", pgVersions(t, s2), pgAllVersions(t))
}

// TestPostgresConcurrentOpen opens one new database from several stores at
// once: the advisory lock must let exactly one apply each migration.
func TestPostgresConcurrentOpen(t *testing.T) {
	url := pgtest.DB(t)
	const n = 6
	stores := make([]*Postgres, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { stores[i], errs[i] = OpenPostgres(context.Background(), url) })
	}
	wg.Wait()
	for i := range n {
		if errs[i] != nil {
			t.Errorf("open %d: %v", i, errs[i])
			continue
		}
		t.Cleanup(func() { _ = stores[i].Close() })
	}
	if t.Failed() {
		t.FailNow()
	}
	wantEqual(t, "versions", pgVersions(t, stores[0]), pgAllVersions(t))
}

func TestPostgresMigratesV1(t *testing.T) {
	url := pgtest.DB(t)
	ms, err := readMigrations(pgMigrationFiles, "pgmigrations")
	if err != nil {
		t.Fatal(err)
	}
	first, err := OpenPostgres(t.Context(), url) // fully migrated; then back to v1 by hand
	if err != nil {
		t.Fatal(err)
	}
	_ = first.Close()
	pgExec(t, url, `DROP TABLE deleted_topics`)
	pgExec(t, url, `DROP TABLE cluster`)
	pgExec(t, url, `DROP TABLE txn_offsets, txn_groups, txn_partitions, txns`)
	pgExec(t, url, `DROP TABLE scram_credentials`)
	pgExec(t, url, `DROP TABLE leases, brokers`)
	pgExec(t, url, `DROP TABLE acls`)
	pgExec(t, url, `DELETE FROM schema_migrations WHERE version > 1`)
	var logs strings.Builder
	s := openPostgresURL(t, url, WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))
	wantEqual(t, "versions", pgVersions(t, s), pgAllVersions(t))
	for _, m := range ms[1:] {
		if !strings.Contains(logs.String(), m.name) {
			t.Fatalf("log does not mention %s:\n%s", m.name, logs.String())
		}
	}
	tp := mustCreate(t, s, Topic{Name: "a", PartitionCount: 1})
	mustDelete(t, s, "a")
	wantDeleted(t, s, deletedEntry(tp))
	// The old database got a cluster ID at this open, and keeps it.
	id, err := s.ClusterID(t.Context())
	wantErr(t, err, nil)
	wantClusterIDForm(t, id)
	if !strings.Contains(logs.String(), "cluster_id="+id) {
		t.Fatalf("log does not report the generated cluster id %s:\n%s", id, logs.String())
	}
	again, err := openPostgresURL(t, url).ClusterID(t.Context())
	wantErr(t, err, nil)
	wantEqual(t, "cluster id after reopen", again, id)
}

func TestPostgresFutureSchemaFailsOpen(t *testing.T) {
	url := pgtest.DB(t)
	s, err := OpenPostgres(t.Context(), url)
	if err != nil {
		t.Fatal(err)
	}
	_ = s.Close()
	pgExec(t, url, `INSERT INTO schema_migrations (version, applied_at) VALUES (99, 0)`)
	_, err = OpenPostgres(t.Context(), url)
	if err == nil || !strings.Contains(err.Error(), "newer than this binary") {
		t.Fatalf("OpenPostgres = %v, want a newer-schema error", err)
	}
}

func TestPostgresOpenErrors(t *testing.T) {
	_, err := OpenPostgres(t.Context(), "postgres://u:secret@127.0.0.1:1/x?sslmode=bogus")
	if !errors.Is(err, ErrInvalid) || strings.Contains(err.Error(), "secret") {
		t.Fatalf("bad URL: err = %v, want ErrInvalid without the password", err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	_, err = OpenPostgres(ctx, "postgres://u:secret@127.0.0.1:1/x?sslmode=disable&connect_timeout=2")
	if err == nil || strings.Contains(err.Error(), "secret") {
		t.Fatalf("unreachable server: err = %v, want an error without the password", err)
	}
}

func TestPostgresConcurrentAllocateProducerID(t *testing.T) {
	s := openTestPostgres(t)
	const n = 8
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() { _, errs[i] = s.AllocateProducerID(context.Background(), "txn") })
	}
	wg.Wait()
	for _, err := range errs {
		wantErr(t, err, nil)
	}
	pid, err := s.AllocateProducerID(t.Context(), "txn")
	wantErr(t, err, nil)
	if pid.Epoch != n {
		t.Fatalf("epoch after %d concurrent bumps = %d, want %d", n, pid.Epoch, n)
	}
}

func TestPostgresProducerEpochOverflow(t *testing.T) {
	url := pgtest.DB(t)
	s := openPostgresURL(t, url)
	first, err := s.AllocateProducerID(t.Context(), "txn")
	wantErr(t, err, nil)
	pgExec(t, url, `UPDATE producer_ids SET epoch = $1 WHERE id = $2`, math.MaxInt16, first.ID)
	next, err := s.AllocateProducerID(t.Context(), "txn")
	wantErr(t, err, nil)
	if next.ID == first.ID || next.Epoch != 0 {
		t.Fatalf("after overflow got %+v, want a new ID with epoch 0 (old %d)", next, first.ID)
	}
}

// TestPostgresConcurrentClusterID races the first ClusterID calls of
// several stores on one database that has no cluster ID yet (as brokers
// of an older version, upgraded at once, would): every round, all of them
// must return the one ID that was stored.
func TestPostgresConcurrentClusterID(t *testing.T) {
	url := pgtest.DB(t)
	const n = 6
	stores := make([]*Postgres, n)
	for i := range stores {
		stores[i] = openPostgresURL(t, url)
	}
	for round := range 5 {
		pgExec(t, url, `DELETE FROM cluster`)
		ids := make([]string, n)
		errs := make([]error, n)
		start := make(chan struct{})
		var wg sync.WaitGroup
		for i, s := range stores {
			wg.Go(func() {
				<-start
				ids[i], errs[i] = s.ClusterID(context.Background())
			})
		}
		close(start)
		wg.Wait()
		var stored string
		if err := stores[0].pool.QueryRow(t.Context(), `SELECT id FROM cluster`).Scan(&stored); err != nil {
			t.Fatal(err)
		}
		for i := range n {
			if errs[i] != nil {
				t.Fatalf("round %d, store %d: %v", round, i, errs[i])
			}
			if ids[i] != stored {
				t.Fatalf("round %d: ClusterID calls returned %q, stored %q", round, ids, stored)
			}
		}
		wantClusterIDForm(t, stored)
	}
}

// TestPostgresCompleteTxnAtomic makes writing the txn's new state fail
// after the pending offsets were applied and deleted, and checks the whole
// CompleteTxn rolled back: no offset committed, the pending ones and the
// old state still there.
func TestPostgresCompleteTxnAtomic(t *testing.T) {
	url := pgtest.DB(t)
	s := openPostgresURL(t, url)
	testCompleteTxnAtomic(t, s, func() {
		pgExec(t, url, `CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS
			$$ BEGIN RAISE EXCEPTION 'refused by test'; END $$`)
		pgExec(t, url, `CREATE TRIGGER refuse_txn BEFORE UPDATE ON txns FOR EACH ROW EXECUTE FUNCTION refuse()`)
	})
}
