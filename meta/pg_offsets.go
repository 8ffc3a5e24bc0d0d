package meta

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// This file holds what PostgreSQL does its own way for committed
// consumer-group offsets and producer IDs; the lookups and
// AllocateProducerID are shared with SQLite (offsets.go, producers.go).

// CommitOffsets implements Store. Rows with a zero CommitTime get the
// store's clock. If any entry is invalid (ErrInvalid) nothing is written.
// Topics are not checked for existence: that is the protocol layer's call.
//
// This is the hot path of every consumer: one READ COMMITTED transaction
// (upserts need no snapshot), one pipelined batch of upserts, one commit.
func (s *Postgres) CommitOffsets(ctx context.Context, offsets []CommittedOffset) error {
	if err := validateOffsets(offsets); err != nil || len(offsets) == 0 {
		return err
	}
	now := millis(s.now())
	var b pgx.Batch
	lastGroup := ""
	for _, o := range offsets {
		if o.Group != lastGroup { // a batch is almost always one group
			b.Queue(`INSERT INTO groups (name, created_at) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING`,
				o.Group, now)
			lastGroup = o.Group
		}
		ct := now
		if !o.CommitTime.IsZero() {
			ct = millis(o.CommitTime)
		}
		b.Queue(`INSERT INTO committed_offsets
			(group_name, topic, partition, committed_offset, leader_epoch, metadata, commit_time)
			VALUES ($1, $2, $3, $4, $5, $6, $7)
			ON CONFLICT (group_name, topic, partition) DO UPDATE SET
				committed_offset = excluded.committed_offset,
				leader_epoch     = excluded.leader_epoch,
				metadata         = excluded.metadata,
				commit_time      = excluded.commit_time`,
			o.Group, o.Topic, o.Partition, o.Offset, o.LeaderEpoch, o.Metadata, ct)
	}
	err := s.runTx(ctx, pgReadCommitted, func(tx pgx.Tx) error {
		return tx.SendBatch(ctx, &b).Close()
	})
	if err != nil {
		return fmt.Errorf("meta: commit offsets of group %q: %w", offsets[0].Group, err)
	}
	return nil
}

// FetchOffsets implements Store. The result is never nil.
func (s *Postgres) FetchOffsets(ctx context.Context, group string) ([]CommittedOffset, error) {
	return fetchOffsets(ctx, pgDB{s.pool}, group)
}

// FetchOffset implements Store.
func (s *Postgres) FetchOffset(ctx context.Context, group, topic string, partition int32) (CommittedOffset, bool, error) {
	return fetchOffset(ctx, pgDB{s.pool}, group, topic, partition)
}

// ListGroups implements Store. A group whose offsets all went away (its
// topics were deleted) is not listed. The result is never nil.
func (s *Postgres) ListGroups(ctx context.Context) ([]string, error) {
	return listGroups(ctx, pgDB{s.pool})
}

// DeleteGroup implements Store. Deleting an unknown group is not an error.
// Pending transactional offsets reference the group, so they go too.
func (s *Postgres) DeleteGroup(ctx context.Context, group string) error {
	// ON DELETE CASCADE removes the group's committed and pending
	// transactional offsets.
	if _, err := s.pool.Exec(ctx, `DELETE FROM groups WHERE name = $1`, group); err != nil {
		return fmt.Errorf("meta: delete group %q: %w", group, err)
	}
	return nil
}

// DeleteOffsets implements Store. The group's row stays (ListGroups skips
// groups without offsets).
func (s *Postgres) DeleteOffsets(ctx context.Context, group string, partitions []TopicPartition) error {
	if err := validateDeleteOffsets(group, partitions); err != nil || len(partitions) == 0 {
		return err
	}
	topics := make([]string, len(partitions))
	parts := make([]int32, len(partitions))
	for i, tp := range partitions {
		topics[i], parts[i] = tp.Topic, tp.Partition
	}
	// One statement, so one implicit transaction.
	_, err := s.pool.Exec(ctx, `DELETE FROM committed_offsets c
		USING unnest($2::text[], $3::integer[]) AS d(topic, partition)
		WHERE c.group_name = $1 AND c.topic = d.topic AND c.partition = d.partition`,
		group, topics, parts)
	if err != nil {
		return fmt.Errorf("meta: delete offsets of group %q: %w", group, err)
	}
	return nil
}

// AllocateProducerID implements Store, with the semantics of
// SQLite.AllocateProducerID (see allocateProducerID).
func (s *Postgres) AllocateProducerID(ctx context.Context, transactionalID string) (ProducerID, error) {
	return allocateProducerID(ctx, s, transactionalID)
}
