package meta

import (
	"context"
	"database/sql"
	"embed"
	"fmt"
	"io/fs"
	"log/slog"
	"sort"
	"strconv"
	"strings"
	"time"
)

// migrationFiles holds the SQLite schema migrations, named NNNN_what.sql.
// Versions are numbered from 1 without gaps; a shipped file never changes.
//
//go:embed migrations/*.sql
var migrationFiles embed.FS

// migration is one numbered schema change.
type migration struct {
	version int
	name    string
	sql     string
}

// loadMigrations reads the embedded SQLite migrations sorted by version
// and checks they are numbered 1, 2, 3, ... .
func loadMigrations() ([]migration, error) {
	return readMigrations(migrationFiles, "migrations")
}

// readMigrations reads dir/*.sql from fsys sorted by version and checks
// they are numbered 1, 2, 3, ... .
func readMigrations(fsys fs.FS, dir string) ([]migration, error) {
	names, err := fs.Glob(fsys, dir+"/*.sql")
	if err != nil {
		return nil, err
	}
	ms := make([]migration, 0, len(names))
	for _, name := range names {
		base := strings.TrimPrefix(name, dir+"/")
		num, _, ok := strings.Cut(base, "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || v < 1 {
			return nil, fmt.Errorf("migration file %s: name must be NNNN_what.sql", base)
		}
		body, err := fs.ReadFile(fsys, name)
		if err != nil {
			return nil, err
		}
		ms = append(ms, migration{version: v, name: base, sql: string(body)})
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].version < ms[j].version })
	for i, m := range ms {
		if m.version != i+1 {
			return nil, fmt.Errorf("migration %s: expected version %d", m.name, i+1)
		}
	}
	return ms, nil
}

// migrate brings db's schema up to date in one transaction: either every
// pending migration is applied and recorded in schema_migrations, or none
// is. A database carrying a version this binary does not know (written by
// a newer StreamHouse) is refused rather than used with a schema we do not
// understand.
func migrate(ctx context.Context, db *sql.DB, now func() time.Time, logger *slog.Logger) error {
	ms, err := loadMigrations()
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	return applyMigrations(ctx, db, ms, now, logger)
}

// applyMigrations is migrate with the migrations given: ms must be a
// prefix of what loadMigrations returns. Tests pass a shorter prefix to
// build the database an older binary left behind.
func applyMigrations(ctx context.Context, db *sql.DB, ms []migration, now func() time.Time, logger *slog.Logger) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	defer func() { _ = tx.Rollback() }() // no-op after Commit
	if _, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version    INTEGER NOT NULL PRIMARY KEY,
		applied_at INTEGER NOT NULL
	) STRICT`); err != nil {
		return fmt.Errorf("migrate: create schema_migrations: %w", err)
	}
	if err := applyPending(ctx, sqlDB{tx}, ms, now, logger); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("migrate: commit: %w", err)
	}
	return nil
}

// applyPending applies, in the transaction q, each migration of ms not yet
// recorded in schema_migrations, and records it. Both backends use it;
// they differ only in how they open that transaction.
func applyPending(ctx context.Context, q db, ms []migration, now func() time.Time, logger *slog.Logger) error {
	applied, err := appliedVersions(ctx, q)
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	latest := len(ms)
	for v := range applied {
		if v > latest {
			return fmt.Errorf("migrate: database schema version %d is newer than this binary supports (latest %d); run a newer StreamHouse", v, latest)
		}
		if v < 1 {
			return fmt.Errorf("migrate: database records unknown schema version %d", v)
		}
	}
	for _, m := range ms {
		if applied[m.version] {
			continue
		}
		// No arguments: the file goes to the driver as written, and pgx
		// sends it with the simple protocol, which runs several statements.
		if _, err := q.exec(ctx, m.sql); err != nil {
			return fmt.Errorf("migrate: apply %s: %w", m.name, err)
		}
		if _, err := q.exec(ctx,
			`INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)`,
			m.version, millis(now())); err != nil {
			return fmt.Errorf("migrate: record %s: %w", m.name, err)
		}
		logger.Info("meta: applied schema migration", "version", m.version, "name", m.name)
	}
	return nil
}

// appliedVersions returns the versions recorded in schema_migrations.
func appliedVersions(ctx context.Context, q db) (map[int]bool, error) {
	rows, err := q.query(ctx, `SELECT version FROM schema_migrations`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	applied := make(map[int]bool)
	for rows.Next() {
		var v int
		if err := rows.Scan(&v); err != nil {
			return nil, err
		}
		applied[v] = true
	}
	return applied, rows.Err()
}
