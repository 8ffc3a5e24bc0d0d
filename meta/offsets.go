package meta

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
)

// validateOffset checks one CommittedOffset before anything is written.
func validateOffset(o CommittedOffset) error {
	switch {
	case o.Group == "":
		return fmt.Errorf("%w: empty group", ErrInvalid)
	case o.Topic == "":
		return fmt.Errorf("%w: empty topic", ErrInvalid)
	case o.Partition < 0:
		return fmt.Errorf("%w: negative partition %d", ErrInvalid, o.Partition)
	}
	return nil
}

// validateOffsets checks every entry of a CommitOffsets batch.
func validateOffsets(offsets []CommittedOffset) error {
	for _, o := range offsets {
		if err := validateOffset(o); err != nil {
			return fmt.Errorf("meta: commit offsets of group %q: %w", o.Group, err)
		}
	}
	return nil
}

// CommitOffsets implements Store. Rows with a zero CommitTime get the
// store's clock. If any entry is invalid (ErrInvalid) nothing is written.
// Topics are not checked for existence: that is the protocol layer's call.
//
// This is the hot path of every consumer: one BEGIN IMMEDIATE, one cached
// prepared upsert executed per entry, one fsync at COMMIT, no reads.
func (s *SQLite) CommitOffsets(ctx context.Context, offsets []CommittedOffset) error {
	if err := validateOffsets(offsets); err != nil || len(offsets) == 0 {
		return err
	}
	now := millis(s.now())
	err := s.writeTx(ctx, func(tx *sql.Tx) error {
		group, err := tx.PrepareContext(ctx,
			`INSERT INTO groups (name, created_at) VALUES (?, ?) ON CONFLICT (name) DO NOTHING`)
		if err != nil {
			return err
		}
		defer group.Close()
		upsert, err := tx.PrepareContext(ctx, `INSERT INTO committed_offsets
			(group_name, topic, partition, committed_offset, leader_epoch, metadata, commit_time)
			VALUES (?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (group_name, topic, partition) DO UPDATE SET
				committed_offset = excluded.committed_offset,
				leader_epoch     = excluded.leader_epoch,
				metadata         = excluded.metadata,
				commit_time      = excluded.commit_time`)
		if err != nil {
			return err
		}
		defer upsert.Close()
		lastGroup := ""
		for _, o := range offsets {
			if o.Group != lastGroup { // a batch is almost always one group
				if _, err := group.ExecContext(ctx, o.Group, now); err != nil {
					return fmt.Errorf("group %q: %w", o.Group, err)
				}
				lastGroup = o.Group
			}
			ct := now
			if !o.CommitTime.IsZero() {
				ct = millis(o.CommitTime)
			}
			if _, err := upsert.ExecContext(ctx, o.Group, o.Topic, o.Partition,
				o.Offset, o.LeaderEpoch, o.Metadata, ct); err != nil {
				return fmt.Errorf("%s/%d: %w", o.Topic, o.Partition, err)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("meta: commit offsets of group %q: %w", offsets[0].Group, err)
	}
	return nil
}

// offsetCols is the column list scanOffset expects.
const offsetCols = `group_name, topic, partition, committed_offset, leader_epoch, metadata, commit_time`

// scanOffset scans one row selected with offsetCols.
func scanOffset(sc dbRow) (CommittedOffset, error) {
	var (
		o  CommittedOffset
		ct int64
	)
	err := sc.Scan(&o.Group, &o.Topic, &o.Partition, &o.Offset, &o.LeaderEpoch, &o.Metadata, &ct)
	o.CommitTime = fromMillis(ct)
	return o, err
}

// FetchOffsets implements Store. The result is never nil.
func (s *SQLite) FetchOffsets(ctx context.Context, group string) ([]CommittedOffset, error) {
	return fetchOffsets(ctx, s.rq, group)
}

// fetchOffsets is FetchOffsets for either backend.
func fetchOffsets(ctx context.Context, q db, group string) ([]CommittedOffset, error) {
	rows, err := q.query(ctx, `SELECT `+offsetCols+` FROM committed_offsets
		WHERE group_name = ? ORDER BY topic, partition`, group)
	if err != nil {
		return nil, fmt.Errorf("meta: fetch offsets of group %q: %w", group, err)
	}
	defer rows.Close()
	out := []CommittedOffset{}
	for rows.Next() {
		o, err := scanOffset(rows)
		if err != nil {
			return nil, fmt.Errorf("meta: fetch offsets of group %q: %w", group, err)
		}
		out = append(out, o)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("meta: fetch offsets of group %q: %w", group, err)
	}
	return out, nil
}

// FetchOffset implements Store.
func (s *SQLite) FetchOffset(ctx context.Context, group, topic string, partition int32) (CommittedOffset, bool, error) {
	return fetchOffset(ctx, s.rq, group, topic, partition)
}

// fetchOffset is FetchOffset for either backend.
func fetchOffset(ctx context.Context, q db, group, topic string, partition int32) (CommittedOffset, bool, error) {
	o, err := scanOffset(q.queryRow(ctx, `SELECT `+offsetCols+` FROM committed_offsets
		WHERE group_name = ? AND topic = ? AND partition = ?`, group, topic, partition))
	if errors.Is(err, sql.ErrNoRows) {
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
func (s *SQLite) ListGroups(ctx context.Context) ([]string, error) {
	return listGroups(ctx, s.rq)
}

// listGroups is ListGroups for either backend.
func listGroups(ctx context.Context, q db) ([]string, error) {
	rows, err := q.query(ctx, `SELECT name FROM groups g
		WHERE EXISTS (SELECT 1 FROM committed_offsets c WHERE c.group_name = g.name)
		ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("meta: list groups: %w", err)
	}
	defer rows.Close()
	groups := []string{}
	for rows.Next() {
		var g string
		if err := rows.Scan(&g); err != nil {
			return nil, fmt.Errorf("meta: list groups: %w", err)
		}
		groups = append(groups, g)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("meta: list groups: %w", err)
	}
	return groups, nil
}

// DeleteGroup implements Store. Deleting an unknown group is not an error.
// Pending transactional offsets reference the group, so they go too.
func (s *SQLite) DeleteGroup(ctx context.Context, group string) error {
	err := s.writeTx(ctx, func(tx *sql.Tx) error {
		// ON DELETE CASCADE removes the group's committed and pending
		// transactional offsets.
		_, err := tx.ExecContext(ctx, `DELETE FROM groups WHERE name = ?`, group)
		return err
	})
	if err != nil {
		return fmt.Errorf("meta: delete group %q: %w", group, err)
	}
	return nil
}

// validateDeleteOffsets checks DeleteOffsets' arguments before anything
// is deleted.
func validateDeleteOffsets(group string, partitions []TopicPartition) error {
	if group == "" {
		return fmt.Errorf("meta: delete offsets: %w: empty group", ErrInvalid)
	}
	for _, tp := range partitions {
		if tp.Topic == "" {
			return fmt.Errorf("meta: delete offsets of group %q: %w: empty topic", group, ErrInvalid)
		}
	}
	return nil
}

// DeleteOffsets implements Store. The group's row stays (ListGroups skips
// groups without offsets).
func (s *SQLite) DeleteOffsets(ctx context.Context, group string, partitions []TopicPartition) error {
	if err := validateDeleteOffsets(group, partitions); err != nil || len(partitions) == 0 {
		return err
	}
	err := s.writeTx(ctx, func(tx *sql.Tx) error {
		del, err := tx.PrepareContext(ctx,
			`DELETE FROM committed_offsets WHERE group_name = ? AND topic = ? AND partition = ?`)
		if err != nil {
			return err
		}
		defer del.Close()
		for _, tp := range partitions {
			if _, err := del.ExecContext(ctx, group, tp.Topic, tp.Partition); err != nil {
				return fmt.Errorf("%s/%d: %w", tp.Topic, tp.Partition, err)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("meta: delete offsets of group %q: %w", group, err)
	}
	return nil
}
