package meta

import (
	"context"
	"fmt"
)

// This file holds what PostgreSQL does its own way for the transaction
// coordinator's state (inserting a Txn's partition and group sets as one
// array statement each); the rest is shared with SQLite (txns.go).

// PutTxn implements Store.
func (s *Postgres) PutTxn(ctx context.Context, t Txn) error {
	return putTxn(ctx, s, t, s.now)
}

// GetTxn implements Store.
func (s *Postgres) GetTxn(ctx context.Context, transactionalID string) (Txn, bool, error) {
	return getTxn(ctx, s, transactionalID)
}

// ListTxns implements Store. The result is never nil.
func (s *Postgres) ListTxns(ctx context.Context) ([]Txn, error) {
	return listTxns(ctx, s)
}

// DeleteTxn implements Store.
func (s *Postgres) DeleteTxn(ctx context.Context, transactionalID string) error {
	return deleteTxn(ctx, s, transactionalID)
}

// AddTxnOffsets implements Store, with the semantics of
// SQLite.AddTxnOffsets.
func (s *Postgres) AddTxnOffsets(ctx context.Context, offsets []TxnOffset) error {
	return addTxnOffsets(ctx, s, offsets, s.now)
}

// PendingTxnOffsets implements Store. The result is never nil.
func (s *Postgres) PendingTxnOffsets(ctx context.Context, group string) ([]TxnOffset, error) {
	return pendingTxnOffsets(ctx, pgDB{s.pool}, group)
}

// CompleteTxn implements Store, with the semantics of SQLite.CompleteTxn
// (see completeTxn).
func (s *Postgres) CompleteTxn(ctx context.Context, t Txn, commit bool) error {
	return completeTxn(ctx, s, t, commit, s.now)
}

// insertTxnMembers implements db.
func (d pgDB) insertTxnMembers(ctx context.Context, transactionalID string, partitions []TopicPartition, groups []string) error {
	if len(partitions) > 0 {
		topics := make([]string, len(partitions))
		parts := make([]int32, len(partitions))
		for i, tp := range partitions {
			topics[i], parts[i] = tp.Topic, tp.Partition
		}
		if _, err := d.q.Exec(ctx,
			`INSERT INTO txn_partitions (transactional_id, topic, partition)
			 SELECT $1, t, p FROM unnest($2::text[], $3::integer[]) AS m(t, p)`,
			transactionalID, topics, parts); err != nil {
			return fmt.Errorf("partitions: %w", err)
		}
	}
	if len(groups) > 0 {
		if _, err := d.q.Exec(ctx,
			`INSERT INTO txn_groups (transactional_id, group_name)
			 SELECT $1, g FROM unnest($2::text[]) AS m(g)`,
			transactionalID, groups); err != nil {
			return fmt.Errorf("groups: %w", err)
		}
	}
	return nil
}
