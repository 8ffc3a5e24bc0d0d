package meta

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Postgres is a Store backed by a PostgreSQL database, for brokers that
// share their metadata (cluster mode). It holds the same rows as SQLite
// (pgmigrations/*.sql mirror migrations/*.sql) and keeps the same
// contract: the shared conformance suite runs against both.
//
// Connections come from one pgxpool.Pool. Every method that reads and then
// writes runs in a SERIALIZABLE transaction, retried a few times when
// PostgreSQL reports a serialization failure or a deadlock, so concurrent
// brokers get the same answers a single SQLite writer gives. Pure upserts
// and deletes (CommitOffsets, DeleteOffsets, DeleteGroup,
// ForgetDeletedTopic) run at READ COMMITTED, which is enough for them.
// Reads of several statements run in a REPEATABLE READ, READ ONLY
// transaction so they see one snapshot.
type Postgres struct {
	pool *pgxpool.Pool
	now  func() time.Time
	// leaseNow is the lease clock set by WithLeaseClock; nil means the
	// database server's clock (see WithLeaseClock).
	leaseNow func() time.Time
	logger   *slog.Logger
}

// Compile-time check that *Postgres implements Store.
var _ Store = (*Postgres)(nil)

// pgMigrationFiles holds the PostgreSQL schema migrations, named
// NNNN_what.sql. Versions are numbered from 1 without gaps; a shipped file
// never changes.
//
//go:embed pgmigrations/*.sql
var pgMigrationFiles embed.FS

// pgMigrateLockKey is the key of the advisory lock migrations hold, so two
// brokers opening the same database at once apply each migration once.
// Never change: brokers of different versions must agree on it.
const pgMigrateLockKey int64 = 0x5354_484f_5553_4531 // "STHOUSE1"

// pgTxAttempts bounds how often a transaction is run when PostgreSQL
// aborts it with a serialization failure or a deadlock.
const pgTxAttempts = 10

// OpenPostgres connects to the PostgreSQL database at url (a libpq URL or
// key=value string, e.g. "postgres://user:pass@host:5432/db"), applies
// pending schema migrations, makes sure the database has a cluster ID (see
// Store.ClusterID), and returns the store. The database must exist.
// Migrations run in one transaction under an advisory lock, so brokers
// opening the same database at once do not race. Opening a database whose
// schema is newer than this binary knows fails with an error saying so.
// WithClock and WithLogger apply as for OpenSQLite.
func OpenPostgres(ctx context.Context, url string, opts ...Option) (*Postgres, error) {
	cfg := newConfig(opts)
	pcfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		// The parse error may quote the URL; it can hold a password.
		return nil, fmt.Errorf("meta: open postgres: %w: cannot parse connection string", ErrInvalid)
	}
	pool, err := pgxpool.NewWithConfig(ctx, pcfg)
	if err != nil {
		return nil, fmt.Errorf("meta: open postgres: %w", err)
	}
	s := &Postgres{pool: pool, now: cfg.now, leaseNow: cfg.leaseNow, logger: cfg.logger}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("meta: open postgres %s:%d/%s: %w",
			pcfg.ConnConfig.Host, pcfg.ConnConfig.Port, pcfg.ConnConfig.Database, err)
	}
	ms, err := readMigrations(pgMigrationFiles, "pgmigrations")
	if err == nil {
		err = pgApplyMigrations(ctx, pool, ms, s.now, s.logger)
	}
	if err == nil {
		// A database without a cluster ID (new, or written before
		// migration 0003) gets one now.
		_, err = s.ClusterID(ctx)
	}
	if err != nil {
		pool.Close()
		return nil, fmt.Errorf("meta: open postgres %s:%d/%s: %w",
			pcfg.ConnConfig.Host, pcfg.ConnConfig.Port, pcfg.ConnConfig.Database, err)
	}
	return s, nil
}

// Close closes the connection pool, waiting for connections in use to be
// returned.
func (s *Postgres) Close() error {
	s.pool.Close()
	return nil
}

// Transaction modes the store uses; see the type comment.
var (
	pgSerializable  = pgx.TxOptions{IsoLevel: pgx.Serializable}
	pgReadCommitted = pgx.TxOptions{IsoLevel: pgx.ReadCommitted}
	pgSnapshot      = pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}
)

// writeTx runs fn in a SERIALIZABLE transaction and commits if fn
// succeeds, running it again (up to pgTxAttempts times in all) when
// PostgreSQL aborts it for a conflict with a concurrent transaction. fn
// must be safe to rerun: it sets every result it reports afresh.
func (s *Postgres) writeTx(ctx context.Context, fn func(tx pgx.Tx) error) error {
	return s.runTx(ctx, pgSerializable, fn)
}

// readTx runs fn in a read-only transaction, so that several SELECTs see
// one consistent snapshot.
func (s *Postgres) readTx(ctx context.Context, fn func(tx pgx.Tx) error) error {
	return s.runTx(ctx, pgSnapshot, fn)
}

// read is readTx for the query code both backends share.
func (s *Postgres) read(ctx context.Context, fn func(q db) error) error {
	return s.readTx(ctx, func(tx pgx.Tx) error { return fn(pgDB{tx}) })
}

// write is writeTx for the query code both backends share.
func (s *Postgres) write(ctx context.Context, fn func(q db) error) error {
	return s.writeTx(ctx, func(tx pgx.Tx) error { return fn(pgDB{tx}) })
}

// runTx runs fn in a transaction with opts, retrying on serialization
// failures and deadlocks with a short jittered backoff.
func (s *Postgres) runTx(ctx context.Context, opts pgx.TxOptions, fn func(tx pgx.Tx) error) error {
	backoff := time.Millisecond
	for attempt := 1; ; attempt++ {
		err := pgx.BeginTxFunc(ctx, s.pool, opts, fn)
		if err == nil || !pgRetryable(err) || attempt == pgTxAttempts {
			return err
		}
		timer := time.NewTimer(backoff/2 + rand.N(backoff))
		select {
		case <-ctx.Done():
			timer.Stop()
			return errors.Join(err, ctx.Err())
		case <-timer.C:
		}
		backoff = min(2*backoff, 100*time.Millisecond)
	}
}

// pgQuerier is what *pgxpool.Pool and pgx.Tx have in common.
type pgQuerier interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// PostgreSQL error codes (SQLSTATE) the store tells apart.
const (
	pgUniqueViolation      = "23505"
	pgSerializationFailure = "40001"
	pgDeadlockDetected     = "40P01"
)

// pgCode returns err's SQLSTATE, or "" if err is not a PostgreSQL error.
func pgCode(err error) string {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code
	}
	return ""
}

// pgRetryable reports whether the transaction that failed with err may
// succeed if run again.
func pgRetryable(err error) bool {
	c := pgCode(err)
	return c == pgSerializationFailure || c == pgDeadlockDetected
}

// pgApplyMigrations brings the database's schema up to date with ms in
// one transaction, as applyMigrations does for SQLite, holding the
// advisory lock pgMigrateLockKey so concurrent opens wait for each other.
func pgApplyMigrations(ctx context.Context, pool *pgxpool.Pool, ms []migration, now func() time.Time, logger *slog.Logger) error {
	tx, err := pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	defer func() { _ = tx.Rollback(ctx) }() // no-op after Commit
	// Released at commit or rollback.
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, pgMigrateLockKey); err != nil {
		return fmt.Errorf("migrate: advisory lock: %w", err)
	}
	if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version    INTEGER NOT NULL PRIMARY KEY,
		applied_at BIGINT  NOT NULL
	)`); err != nil {
		return fmt.Errorf("migrate: create schema_migrations: %w", err)
	}
	if err := applyPending(ctx, pgDB{tx}, ms, now, logger.With("backend", "postgres")); err != nil {
		return err
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("migrate: commit: %w", err)
	}
	return nil
}
