package meta

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/mattn/go-sqlite3"
)

// SQLite is the default Store, backed by one SQLite database file.
//
// Connections come from two pools over the same file:
//
//   - w, the write pool, holds exactly one connection. Every write goes
//     through it, so writers queue in database/sql (in Go, cheaply, honouring
//     ctx) instead of contending for SQLite's file lock, and this process can
//     never see SQLITE_BUSY from its own writers. Write transactions start
//     with BEGIN IMMEDIATE (_txlock=immediate): the write lock is taken up
//     front, so a transaction never has to upgrade a read lock to a write
//     lock midway, the one case where SQLite gives up with SQLITE_BUSY
//     without consulting busy_timeout. That matters if another process (an
//     operator's sqlite3 shell, a backup) opens the file.
//   - r, the read pool, holds several query_only connections. In WAL mode
//     readers never block the writer and the writer never blocks readers, so
//     lookups (GetTopic, ListSegments, FetchOffsets) proceed in parallel with
//     commits.
//
// For ":memory:" both fields point at the same single-connection pool,
// because every connection to ":memory:" would otherwise be its own
// empty database.
type SQLite struct {
	w   *sql.DB // single-connection write pool; see the type comment
	r   *sql.DB // read pool; == w for ":memory:"
	rq  db      // sqlDB{r}, built once so reads on r box nothing
	now func() time.Time
	// leaseNow is the lease clock (see WithLeaseClock): WithLeaseClock's
	// function, else now.
	leaseNow func() time.Time
	logger   *slog.Logger
}

// Compile-time check that *SQLite implements Store.
var _ Store = (*SQLite)(nil)

// config collects what Options set.
type config struct {
	now      func() time.Time
	leaseNow func() time.Time // nil unless WithLeaseClock; see there
	logger   *slog.Logger
}

// Option configures OpenSQLite and OpenPostgres.
type Option func(*config)

// SQLiteOption is the former name of Option, kept so existing callers
// compile unchanged.
type SQLiteOption = Option

// newConfig applies opts over the defaults: time.Now and a logger that
// discards.
func newConfig(opts []Option) config {
	cfg := config{
		now:    time.Now,
		logger: slog.New(slog.DiscardHandler),
	}
	for _, o := range opts {
		o(&cfg)
	}
	return cfg
}

// WithClock sets the clock used for CreatedAt and CommitTime when the
// caller leaves them zero, and for schema_migrations.applied_at and the
// cluster ID's created_at.
// The default is time.Now.
func WithClock(now func() time.Time) Option {
	return func(c *config) { c.now = now }
}

// WithLogger sets the logger that reports applied migrations and a newly
// generated cluster ID. The default discards.
func WithLogger(l *slog.Logger) Option {
	return func(c *config) { c.logger = l }
}

// busyTimeout bounds how long a connection waits for a lock held by
// another connection (in practice: another process, or a reader waiting
// out a WAL checkpoint) before failing with SQLITE_BUSY.
const busyTimeout = 5 * time.Second

// stmtCacheSize is how many compiled statements each connection keeps, so
// the store's fixed set of queries (and the per-transaction Prepare in
// CommitOffsets) skip SQL compilation after first use.
const stmtCacheSize = 32

// OpenSQLite opens (creating if needed) the SQLite database at path,
// applies pending schema migrations, makes sure the database has a cluster
// ID (see Store.ClusterID), and returns the store. path is a file
// system path; ":memory:" gives a private in-memory database for tests.
// The directory holding path must exist. Opening a database whose schema is
// newer than this binary knows fails with an error saying so.
func OpenSQLite(ctx context.Context, path string, opts ...Option) (*SQLite, error) {
	cfg := newConfig(opts)
	if path == "" || strings.ContainsRune(path, '?') {
		return nil, fmt.Errorf("meta: open sqlite %q: %w: path must be non-empty and contain no '?'", path, ErrInvalid)
	}
	s, err := openPools(ctx, path, cfg)
	if err != nil {
		return nil, fmt.Errorf("meta: open sqlite %q: %w", path, err)
	}
	if err := migrate(ctx, s.w, s.now, s.logger); err != nil {
		_ = s.Close()
		return nil, fmt.Errorf("meta: open sqlite %q: %w", path, err)
	}
	// A database without a cluster ID (new, or written before migration
	// 0003) gets one now.
	if _, err := s.ClusterID(ctx); err != nil {
		_ = s.Close()
		return nil, fmt.Errorf("meta: open sqlite %q: %w", path, err)
	}
	return s, nil
}

// openPools opens the write and read pools and checks that the write
// connection really runs in WAL mode.
func openPools(ctx context.Context, path string, cfg config) (*SQLite, error) {
	memory := path == ":memory:"
	w, err := sql.Open("sqlite3", sqliteDSN(path, true))
	if err != nil {
		return nil, err
	}
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	w.SetConnMaxLifetime(0)
	w.SetConnMaxIdleTime(0)
	s := &SQLite{w: w, r: w, now: cfg.now, leaseNow: cfg.leaseNow, logger: cfg.logger}
	if s.leaseNow == nil {
		s.leaseNow = cfg.now
	}
	var mode string
	if err := w.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode); err != nil {
		_ = w.Close()
		return nil, err
	}
	if memory {
		s.rq = sqlDB{s.r}
		return s, nil
	}
	// PRAGMA journal_mode=WAL silently keeps the old mode where WAL is
	// impossible (e.g. some network file systems); refuse rather than run
	// with weaker concurrency and durability than documented.
	if !strings.EqualFold(mode, "wal") {
		_ = w.Close()
		return nil, fmt.Errorf("journal_mode is %q, want wal", mode)
	}
	r, err := sql.Open("sqlite3", sqliteDSN(path, false))
	if err != nil {
		_ = w.Close()
		return nil, err
	}
	readConns := max(4, runtime.GOMAXPROCS(0))
	r.SetMaxOpenConns(readConns)
	r.SetMaxIdleConns(readConns)
	s.r, s.rq = r, sqlDB{r}
	return s, nil
}

// sqliteDSN builds the mattn/go-sqlite3 DSN. The driver runs these pragmas
// on every new connection, so a connection the pool replaces gets them too.
//
// synchronous=FULL: in WAL mode the driver's default (NORMAL) survives a
// process crash but may lose the last commits on power loss or an OS
// crash. The log deletes a segment's local copy once AddSegment returns,
// so a rolled-back segment row would lose acknowledged records. FULL
// fsyncs the WAL at every commit, which makes a returned write durable.
//
// foreign_keys=on: SQLite leaves foreign keys off by default, and the
// ON DELETE CASCADE clauses (topic -> partitions -> segments, group ->
// offsets, txn -> its partitions, groups and pending offsets) depend on
// them.
func sqliteDSN(path string, write bool) string {
	v := url.Values{}
	v.Set("_busy_timeout", strconv.FormatInt(busyTimeout.Milliseconds(), 10))
	v.Set("_foreign_keys", "on")
	v.Set("_synchronous", "FULL")
	v.Set("_stmt_cache_size", strconv.Itoa(stmtCacheSize))
	if write {
		v.Set("_journal_mode", "WAL") // persistent in the file; readers inherit it
		v.Set("_txlock", "immediate")
	} else {
		v.Set("_query_only", "on")
	}
	return path + "?" + v.Encode()
}

// Close closes both connection pools. The last connection to close
// checkpoints the WAL into the main database file.
func (s *SQLite) Close() error {
	var err error
	if s.r != s.w {
		err = s.r.Close()
	}
	return errors.Join(err, s.w.Close())
}

// writeTx runs fn in a BEGIN IMMEDIATE transaction on the write connection
// and commits if fn succeeds. fn must use only tx: the write pool has one
// connection, so touching s.w inside fn would deadlock.
func (s *SQLite) writeTx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		_ = tx.Rollback()
		return err
	}
	return tx.Commit()
}

// readTx runs fn in a read transaction, so that several SELECTs see one
// consistent snapshot.
func (s *SQLite) readTx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	tx, err := s.r.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer func() { _ = tx.Rollback() }() // read-only: nothing to commit
	return fn(tx)
}

// read is readTx for the query code both backends share.
func (s *SQLite) read(ctx context.Context, fn func(q db) error) error {
	return s.readTx(ctx, func(tx *sql.Tx) error { return fn(sqlDB{tx}) })
}

// write is writeTx for the query code both backends share.
func (s *SQLite) write(ctx context.Context, fn func(q db) error) error {
	return s.writeTx(ctx, func(tx *sql.Tx) error { return fn(sqlDB{tx}) })
}

// querier is what *sql.DB and *sql.Tx have in common.
type querier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
	PrepareContext(ctx context.Context, query string) (*sql.Stmt, error)
}

// isConstraint reports whether err is the SQLite constraint violation code.
func isConstraint(err error, code sqlite3.ErrNoExtended) bool {
	var se sqlite3.Error
	return errors.As(err, &se) && se.ExtendedCode == code
}

// isUnique reports whether err is a UNIQUE or PRIMARY KEY violation.
func isUnique(err error) bool {
	return isConstraint(err, sqlite3.ErrConstraintUnique) ||
		isConstraint(err, sqlite3.ErrConstraintPrimaryKey)
}

// millis converts t to the stored form, unix milliseconds.
func millis(t time.Time) int64 { return t.UnixMilli() }

// fromMillis converts a stored time back. Times come back in UTC with
// millisecond precision.
func fromMillis(ms int64) time.Time { return time.UnixMilli(ms).UTC() }

// stamp returns t, or now() if t is zero, rounded to what the stores
// keep, so a returned value equals what a later read returns.
func stamp(now func() time.Time, t time.Time) time.Time {
	if t.IsZero() {
		t = now()
	}
	return fromMillis(millis(t))
}
