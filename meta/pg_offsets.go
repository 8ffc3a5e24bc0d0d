package meta

import (
	"context"
	"errors"
	"fmt"
	"math"

	"github.com/jackc/pgx/v5"
)

// This file is offsets.go's and producers.go's twin for PostgreSQL:
// committed consumer-group offsets and producer IDs.

// CommitOffsets implements Store. Rows with a zero CommitTime get the
// store's clock. If any entry is invalid (ErrInvalid) nothing is written.
// Topics are not checked for existence: that is the protocol layer's call.
//
// This is the hot path of every consumer: one READ COMMITTED transaction
// (upserts need no snapshot), one pipelined batch of upserts, one commit.
func (s *Postgres) CommitOffsets(ctx context.Context, offsets []CommittedOffset) error {
	if len(offsets) == 0 {
		return nil
	}
	for _, o := range offsets {
		if err := validateOffset(o); err != nil {
			return fmt.Errorf("meta: commit offsets of group %q: %w", o.Group, err)
		}
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

// pgScanOffset scans one row selected with offsetCols.
func pgScanOffset(row pgx.Row) (CommittedOffset, error) {
	var (
		o  CommittedOffset
		ct int64
	)
	err := row.Scan(&o.Group, &o.Topic, &o.Partition, &o.Offset, &o.LeaderEpoch, &o.Metadata, &ct)
	o.CommitTime = fromMillis(ct)
	return o, err
}

// FetchOffsets implements Store. The result is never nil.
func (s *Postgres) FetchOffsets(ctx context.Context, group string) ([]CommittedOffset, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+offsetCols+` FROM committed_offsets
		WHERE group_name = $1 ORDER BY topic, partition`, group)
	if err != nil {
		return nil, fmt.Errorf("meta: fetch offsets of group %q: %w", group, err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (CommittedOffset, error) {
		return pgScanOffset(row)
	})
	if err != nil {
		return nil, fmt.Errorf("meta: fetch offsets of group %q: %w", group, err)
	}
	if out == nil {
		out = []CommittedOffset{}
	}
	return out, nil
}

// FetchOffset implements Store.
func (s *Postgres) FetchOffset(ctx context.Context, group, topic string, partition int32) (CommittedOffset, bool, error) {
	o, err := pgScanOffset(s.pool.QueryRow(ctx, `SELECT `+offsetCols+` FROM committed_offsets
		WHERE group_name = $1 AND topic = $2 AND partition = $3`, group, topic, partition))
	if errors.Is(err, pgx.ErrNoRows) {
		return CommittedOffset{}, false, nil
	}
	if err != nil {
		return CommittedOffset{}, false, fmt.Errorf("meta: fetch offset of group %q %s/%d: %w",
			group, topic, partition, err)
	}
	return o, true, nil
}

// ListGroups implements Store. A group whose offsets all went away (its
// topics were deleted) is not listed. The result is never nil.
func (s *Postgres) ListGroups(ctx context.Context) ([]string, error) {
	rows, err := s.pool.Query(ctx, `SELECT name FROM groups g
		WHERE EXISTS (SELECT 1 FROM committed_offsets c WHERE c.group_name = g.name)
		ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("meta: list groups: %w", err)
	}
	groups, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("meta: list groups: %w", err)
	}
	if groups == nil {
		groups = []string{}
	}
	return groups, nil
}

// DeleteGroup implements Store. Deleting an unknown group is not an error.
func (s *Postgres) DeleteGroup(ctx context.Context, group string) error {
	// ON DELETE CASCADE removes the group's committed offsets.
	if _, err := s.pool.Exec(ctx, `DELETE FROM groups WHERE name = $1`, group); err != nil {
		return fmt.Errorf("meta: delete group %q: %w", group, err)
	}
	return nil
}

// DeleteOffsets implements Store. The group's row stays (ListGroups skips
// groups without offsets).
func (s *Postgres) DeleteOffsets(ctx context.Context, group string, partitions []TopicPartition) error {
	if group == "" {
		return fmt.Errorf("meta: delete offsets: %w: empty group", ErrInvalid)
	}
	for _, tp := range partitions {
		if tp.Topic == "" {
			return fmt.Errorf("meta: delete offsets of group %q: %w: empty topic", group, ErrInvalid)
		}
	}
	if len(partitions) == 0 {
		return nil
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
// SQLite.AllocateProducerID: IDs start at 1 and are never reused; a
// transactional ID keeps one row whose epoch each call bumps, and moves to
// a fresh ID with epoch 0 when the epoch would overflow int16. The
// SERIALIZABLE transaction makes concurrent calls for one transactional ID
// bump its epoch once each.
func (s *Postgres) AllocateProducerID(ctx context.Context, transactionalID string) (ProducerID, error) {
	var pid ProducerID
	err := s.writeTx(ctx, func(tx pgx.Tx) error {
		pid = ProducerID{TransactionalID: transactionalID}
		if transactionalID == "" {
			var err error
			pid.ID, err = pgNextProducerID(ctx, tx)
			return err
		}
		var epoch int64
		err := tx.QueryRow(ctx,
			`SELECT id, epoch FROM producer_ids WHERE transactional_id = $1`,
			transactionalID).Scan(&pid.ID, &epoch)
		switch {
		case errors.Is(err, pgx.ErrNoRows):
			return pgInsertTransactional(ctx, tx, &pid)
		case err != nil:
			return err
		case epoch >= math.MaxInt16:
			if _, err := tx.Exec(ctx,
				`DELETE FROM producer_ids WHERE id = $1`, pid.ID); err != nil {
				return err
			}
			return pgInsertTransactional(ctx, tx, &pid)
		}
		pid.Epoch = int16(epoch + 1)
		_, err = tx.Exec(ctx,
			`UPDATE producer_ids SET epoch = $1 WHERE id = $2`, pid.Epoch, pid.ID)
		return err
	})
	if err != nil {
		return ProducerID{}, fmt.Errorf("meta: allocate producer id (transactional id %q): %w", transactionalID, err)
	}
	return pid, nil
}

// pgInsertTransactional gives pid.TransactionalID a new producer ID with
// epoch 0.
func pgInsertTransactional(ctx context.Context, tx pgx.Tx, pid *ProducerID) error {
	id, err := pgNextProducerID(ctx, tx)
	if err != nil {
		return err
	}
	pid.ID, pid.Epoch = id, 0
	_, err = tx.Exec(ctx,
		`INSERT INTO producer_ids (id, epoch, transactional_id) VALUES ($1, 0, $2)`,
		pid.ID, pid.TransactionalID)
	return err
}

// pgNextProducerID takes the next value of the producer ID sequence.
func pgNextProducerID(ctx context.Context, tx pgx.Tx) (int64, error) {
	var id int64
	err := tx.QueryRow(ctx, `UPDATE producer_id_sequence SET next_id = next_id + 1
		WHERE singleton = 1 RETURNING next_id - 1`).Scan(&id)
	if err != nil {
		return 0, fmt.Errorf("next producer id: %w", err)
	}
	return id, nil
}
