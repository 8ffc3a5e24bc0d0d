package meta

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/mattn/go-sqlite3"
)

// validateSegment checks the fields AddSegment stores.
func validateSegment(sg Segment) error {
	switch {
	case sg.BaseOffset < 0:
		return fmt.Errorf("%w: negative base offset %d", ErrInvalid, sg.BaseOffset)
	case sg.LastOffset < sg.BaseOffset:
		return fmt.Errorf("%w: last offset %d before base offset %d", ErrInvalid, sg.LastOffset, sg.BaseOffset)
	case sg.ObjectKey == "":
		return fmt.Errorf("%w: empty object key", ErrInvalid)
	case sg.Size < 0 || sg.RecordCount < 0:
		return fmt.Errorf("%w: negative size %d or record count %d", ErrInvalid, sg.Size, sg.RecordCount)
	}
	return nil
}

// AddSegment implements Store. CreatedAt is set from the store's clock if
// zero. A partition that does not exist is ErrTopicNotFound or
// ErrPartitionRange.
func (s *SQLite) AddSegment(ctx context.Context, sg Segment) error {
	if err := validateSegment(sg); err != nil {
		return fmt.Errorf("meta: add segment %s/%d@%d: %w", sg.TopicID, sg.Partition, sg.BaseOffset, err)
	}
	err := s.writeTx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO segments
			(topic_id, partition, base_offset, last_offset, max_timestamp,
			 object_key, size, record_count, created_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			sg.TopicID, sg.Partition, sg.BaseOffset, sg.LastOffset, sg.MaxTimestamp,
			sg.ObjectKey, sg.Size, sg.RecordCount, millis(stamp(s.now, sg.CreatedAt)))
		switch {
		case isUnique(err):
			return ErrSegmentExists
		case isConstraint(err, sqlite3.ErrConstraintForeignKey):
			return missingPartition(ctx, sqlDB{tx}, sg.TopicID, sg.Partition)
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("meta: add segment %s/%d@%d: %w", sg.TopicID, sg.Partition, sg.BaseOffset, err)
	}
	return nil
}

// ListSegments implements Store. The result is never nil; a partition that
// does not exist is ErrTopicNotFound or ErrPartitionRange.
func (s *SQLite) ListSegments(ctx context.Context, topicID string, partition int32) ([]Segment, error) {
	return listSegments(ctx, s, topicID, partition)
}

// listSegments is ListSegments for either backend.
func listSegments(ctx context.Context, r txRunner, topicID string, partition int32) ([]Segment, error) {
	var segs []Segment
	err := r.read(ctx, func(q db) error {
		var err error
		segs, err = querySegments(ctx, q,
			`WHERE topic_id = ? AND partition = ? ORDER BY base_offset`, topicID, partition)
		if err != nil || len(segs) > 0 {
			return err
		}
		// Distinguish an empty partition from a missing one.
		var one int
		err = q.queryRow(ctx,
			`SELECT 1 FROM partitions WHERE topic_id = ? AND partition = ?`,
			topicID, partition).Scan(&one)
		if errors.Is(err, sql.ErrNoRows) {
			return missingPartition(ctx, q, topicID, partition)
		}
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("meta: list segments of %s/%d: %w", topicID, partition, err)
	}
	return segs, nil
}

// querySegments selects segment rows; where is a constant clause (never
// caller input, ? placeholders) with args as its parameters. The result is
// never nil.
func querySegments(ctx context.Context, q db, where string, args ...any) ([]Segment, error) {
	rows, err := q.query(ctx, `SELECT topic_id, partition, base_offset, last_offset,
		max_timestamp, object_key, size, record_count, created_at FROM segments `+where, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	segs := []Segment{}
	for rows.Next() {
		var (
			sg      Segment
			created int64
		)
		if err := rows.Scan(&sg.TopicID, &sg.Partition, &sg.BaseOffset, &sg.LastOffset,
			&sg.MaxTimestamp, &sg.ObjectKey, &sg.Size, &sg.RecordCount, &created); err != nil {
			return nil, err
		}
		sg.CreatedAt = fromMillis(created)
		segs = append(segs, sg)
	}
	return segs, rows.Err()
}

// DeleteSegments implements Store. Base offsets with no row are ignored, so
// a retried retention pass is harmless. A negative logStart is ErrInvalid.
func (s *SQLite) DeleteSegments(ctx context.Context, topicID string, partition int32, baseOffsets []int64, logStart int64) error {
	if logStart < 0 {
		return fmt.Errorf("meta: delete segments of %s/%d: %w: negative log start offset %d",
			topicID, partition, ErrInvalid, logStart)
	}
	err := s.writeTx(ctx, func(tx *sql.Tx) error {
		// First, because it also reports a missing partition.
		if err := raiseLogStart(ctx, sqlDB{tx}, topicID, partition, logStart); err != nil {
			return err
		}
		if len(baseOffsets) == 0 {
			return nil
		}
		stmt, err := tx.PrepareContext(ctx,
			`DELETE FROM segments WHERE topic_id = ? AND partition = ? AND base_offset = ?`)
		if err != nil {
			return err
		}
		defer stmt.Close()
		for _, base := range baseOffsets {
			if _, err := stmt.ExecContext(ctx, topicID, partition, base); err != nil {
				return fmt.Errorf("segment %d: %w", base, err)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("meta: delete segments of %s/%d: %w", topicID, partition, err)
	}
	return nil
}

// ReplaceSegments implements Store.
func (s *SQLite) ReplaceSegments(ctx context.Context, topicID string, partition int32, old, new []Segment) error {
	return replaceSegments(ctx, s, s.now, topicID, partition, old, new)
}

// replaceSegments is ReplaceSegments for either backend. The old rows are
// deleted one by one, each only if its object key still matches, before
// the new rows go in, so a new row may take the base offset of an old one.
// Against a concurrent DeleteSegments it relies on the backend's write
// transaction: SQLite has one writer at a time, and PostgreSQL's
// SERIALIZABLE transaction fails one of two that delete the same row and
// reruns it, which then finds the row gone (ErrSegmentChanged).
func replaceSegments(ctx context.Context, r txRunner, now func() time.Time, topicID string, partition int32, old, new []Segment) error {
	wrap := func(err error) error {
		return fmt.Errorf("meta: replace segments of %s/%d: %w", topicID, partition, err)
	}
	if err := validateReplace(topicID, partition, old, new); err != nil {
		return wrap(err)
	}
	// Stamped once, outside the transaction, so a rerun stores the same times.
	created := make([]int64, len(new))
	for i, sg := range new {
		created[i] = millis(stamp(now, sg.CreatedAt))
	}
	err := r.write(ctx, func(q db) error {
		var one int
		err := q.queryRow(ctx,
			`SELECT 1 FROM partitions WHERE topic_id = ? AND partition = ?`,
			topicID, partition).Scan(&one)
		if errors.Is(err, sql.ErrNoRows) {
			return missingPartition(ctx, q, topicID, partition)
		}
		if err != nil {
			return err
		}
		for _, sg := range old {
			n, err := q.exec(ctx, `DELETE FROM segments
				WHERE topic_id = ? AND partition = ? AND base_offset = ? AND object_key = ?`,
				topicID, partition, sg.BaseOffset, sg.ObjectKey)
			if err != nil {
				return fmt.Errorf("delete segment %d: %w", sg.BaseOffset, err)
			}
			if n == 0 {
				return fmt.Errorf("%w: segment %d with object key %q is no longer recorded",
					ErrSegmentChanged, sg.BaseOffset, sg.ObjectKey)
			}
		}
		for i, sg := range new {
			// DO NOTHING rather than a unique violation, which would abort
			// a PostgreSQL transaction before we could name the cause.
			n, err := q.exec(ctx, `INSERT INTO segments
				(topic_id, partition, base_offset, last_offset, max_timestamp,
				 object_key, size, record_count, created_at)
				VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
				ON CONFLICT (topic_id, partition, base_offset) DO NOTHING`,
				topicID, partition, sg.BaseOffset, sg.LastOffset, sg.MaxTimestamp,
				sg.ObjectKey, sg.Size, sg.RecordCount, created[i])
			if err != nil {
				return fmt.Errorf("insert segment %d: %w", sg.BaseOffset, err)
			}
			if n == 0 {
				return fmt.Errorf("%w: segment %d", ErrSegmentExists, sg.BaseOffset)
			}
		}
		return nil
	})
	if err != nil {
		return wrap(err)
	}
	return nil
}

// validateReplace checks ReplaceSegments' arguments before any query: old
// is not empty, every row names (topicID, partition), no base offset
// repeats within old or within new, and every new row passes
// validateSegment.
func validateReplace(topicID string, partition int32, old, new []Segment) error {
	if len(old) == 0 {
		return fmt.Errorf("%w: no segments to replace", ErrInvalid)
	}
	for _, set := range []struct {
		name string
		segs []Segment
	}{{"old", old}, {"new", new}} {
		seen := make(map[int64]bool, len(set.segs))
		for _, sg := range set.segs {
			if sg.TopicID != topicID || sg.Partition != partition {
				return fmt.Errorf("%w: %s segment %d belongs to %s/%d",
					ErrInvalid, set.name, sg.BaseOffset, sg.TopicID, sg.Partition)
			}
			if seen[sg.BaseOffset] {
				return fmt.Errorf("%w: %s segment %d listed twice", ErrInvalid, set.name, sg.BaseOffset)
			}
			seen[sg.BaseOffset] = true
		}
	}
	for _, sg := range new {
		if err := validateSegment(sg); err != nil {
			return fmt.Errorf("new segment %d: %w", sg.BaseOffset, err)
		}
	}
	return nil
}
