package meta

import (
	"context"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
)

// The query code both backends share (lookups of topics, partitions,
// segments and offsets; DeleteTopic, SetTopicConfigs, AddPartitions,
// SetLogStartOffset, ReplaceSegments, AllocateProducerID; the transaction
// coordinator's state; migration bookkeeping) runs on db, the little the two drivers have in common,
// inside a txRunner's transactions. Queries are written with ?
// placeholders; the PostgreSQL side rewrites them to $N. What really
// differs between the backends (CreateTopic's and AddSegment's handling of
// constraint violations, which abort a PostgreSQL transaction;
// prepared-statement loops against array statements; the pipelined offset
// batch; isolation levels and retries) stays in each backend's own methods.

// txRunner runs fn in a transaction of the backend: read for a snapshot
// of several SELECTs, write for a transaction that commits if fn succeeds.
// fn may run more than once (PostgreSQL retries serialization failures),
// so it must set every result it reports afresh.
type txRunner interface {
	read(ctx context.Context, fn func(q db) error) error
	write(ctx context.Context, fn func(q db) error) error
}

// db runs queries with ? placeholders on a connection pool or transaction.
type db interface {
	queryRow(ctx context.Context, query string, args ...any) dbRow
	query(ctx context.Context, query string, args ...any) (dbRows, error)
	// exec returns the number of rows affected.
	exec(ctx context.Context, query string, args ...any) (int64, error)
	// greatest names the SQL function returning the larger of its
	// arguments (SQLite's scalar max, PostgreSQL's GREATEST).
	greatest() string
	// insertPartitions adds partition rows [from, to) with log start
	// offset 0 (a prepared statement per row on SQLite, one
	// generate_series INSERT on PostgreSQL).
	insertPartitions(ctx context.Context, topicID string, from, to int32) error
	// insertConfigs adds the config rows of a topic that has none.
	insertConfigs(ctx context.Context, topicID string, configs map[string]string) error
	// insertTxnMembers adds the partition and group rows of a txn that
	// has none (a statement per row on SQLite, one array INSERT per table
	// on PostgreSQL).
	insertTxnMembers(ctx context.Context, transactionalID string, partitions []TopicPartition, groups []string) error
}

// dbRow is one result row; Scan reports a missing row as an error for which
// errors.Is(err, sql.ErrNoRows) holds (pgx.ErrNoRows wraps it).
type dbRow interface {
	Scan(dest ...any) error
}

// dbRows is a result set, read as database/sql's *sql.Rows is.
type dbRows interface {
	Next() bool
	Scan(dest ...any) error
	Err() error
	Close() error
}

// sqlDB is db over database/sql (*sql.DB or *sql.Tx), for SQLite.
type sqlDB struct{ q querier }

func (d sqlDB) queryRow(ctx context.Context, query string, args ...any) dbRow {
	return d.q.QueryRowContext(ctx, query, args...)
}

func (d sqlDB) query(ctx context.Context, query string, args ...any) (dbRows, error) {
	r, err := d.q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	return r, nil
}

func (d sqlDB) exec(ctx context.Context, query string, args ...any) (int64, error) {
	res, err := d.q.ExecContext(ctx, query, args...)
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

func (sqlDB) greatest() string { return "max" }

// pgDB is db over pgx (*pgxpool.Pool or pgx.Tx), for PostgreSQL.
type pgDB struct{ q pgQuerier }

func (d pgDB) queryRow(ctx context.Context, query string, args ...any) dbRow {
	return d.q.QueryRow(ctx, pgPlaceholders(query, args), args...)
}

func (d pgDB) query(ctx context.Context, query string, args ...any) (dbRows, error) {
	r, err := d.q.Query(ctx, pgPlaceholders(query, args), args...)
	if err != nil {
		return nil, err
	}
	return pgRows{r}, nil
}

func (d pgDB) exec(ctx context.Context, query string, args ...any) (int64, error) {
	tag, err := d.q.Exec(ctx, pgPlaceholders(query, args), args...)
	if err != nil {
		return 0, err
	}
	return tag.RowsAffected(), nil
}

func (pgDB) greatest() string { return "GREATEST" }

// pgRows gives pgx.Rows the Close of *sql.Rows.
type pgRows struct{ pgx.Rows }

func (r pgRows) Close() error {
	r.Rows.Close()
	return nil
}

// pgPlaceholders rewrites the ? placeholders of query to PostgreSQL's $1,
// $2, ... when it has arguments; without arguments it is sent as written
// (a migration file may hold several statements and any text). The shared
// queries hold no ? inside literals or identifiers.
func pgPlaceholders(query string, args []any) string {
	if len(args) == 0 || !strings.Contains(query, "?") {
		return query
	}
	var b strings.Builder
	b.Grow(len(query) + 8)
	n := 0
	for i := 0; i < len(query); i++ {
		if query[i] != '?' {
			b.WriteByte(query[i])
			continue
		}
		n++
		b.WriteByte('$')
		b.WriteString(strconv.Itoa(n))
	}
	return b.String()
}

// Compile-time checks that both adapters implement db.
var (
	_ db = sqlDB{}
	_ db = pgDB{}
)
