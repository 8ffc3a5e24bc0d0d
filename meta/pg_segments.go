package meta

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// This file holds what PostgreSQL does its own way for segments; the rest
// is shared with SQLite (segments.go).

// AddSegment implements Store. CreatedAt is set from the store's clock if
// zero. A partition that does not exist is ErrTopicNotFound or
// ErrPartitionRange.
func (s *Postgres) AddSegment(ctx context.Context, sg Segment) error {
	if err := validateSegment(sg); err != nil {
		return fmt.Errorf("meta: add segment %s/%d@%d: %w", sg.TopicID, sg.Partition, sg.BaseOffset, err)
	}
	created := millis(stamp(s.now, sg.CreatedAt))
	err := s.writeTx(ctx, func(tx pgx.Tx) error {
		// Check the partition first: a foreign key violation would abort
		// the transaction before we could say which of the two it is.
		var one int
		err := tx.QueryRow(ctx,
			`SELECT 1 FROM partitions WHERE topic_id = $1 AND partition = $2`,
			sg.TopicID, sg.Partition).Scan(&one)
		if errors.Is(err, pgx.ErrNoRows) {
			return missingPartition(ctx, pgDB{tx}, sg.TopicID, sg.Partition)
		}
		if err != nil {
			return err
		}
		tag, err := tx.Exec(ctx, `INSERT INTO segments
			(topic_id, partition, base_offset, last_offset, max_timestamp,
			 object_key, size, record_count, created_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
			ON CONFLICT (topic_id, partition, base_offset) DO NOTHING`,
			sg.TopicID, sg.Partition, sg.BaseOffset, sg.LastOffset, sg.MaxTimestamp,
			sg.ObjectKey, sg.Size, sg.RecordCount, created)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return ErrSegmentExists
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("meta: add segment %s/%d@%d: %w", sg.TopicID, sg.Partition, sg.BaseOffset, err)
	}
	return nil
}

// ListSegments implements Store. The result is never nil; a partition that
// does not exist is ErrTopicNotFound or ErrPartitionRange.
func (s *Postgres) ListSegments(ctx context.Context, topicID string, partition int32) ([]Segment, error) {
	return listSegments(ctx, s, topicID, partition)
}

// ReplaceSegments implements Store; it runs the shared replaceSegments in
// a SERIALIZABLE transaction, retried on conflicts (see writeTx).
func (s *Postgres) ReplaceSegments(ctx context.Context, topicID string, partition int32, old, new []Segment) error {
	return replaceSegments(ctx, s, s.now, topicID, partition, old, new)
}

// DeleteSegments implements Store. Base offsets with no row are ignored, so
// a retried retention pass is harmless. A negative logStart is ErrInvalid.
func (s *Postgres) DeleteSegments(ctx context.Context, topicID string, partition int32, baseOffsets []int64, logStart int64) error {
	if logStart < 0 {
		return fmt.Errorf("meta: delete segments of %s/%d: %w: negative log start offset %d",
			topicID, partition, ErrInvalid, logStart)
	}
	err := s.writeTx(ctx, func(tx pgx.Tx) error {
		// First, because it also reports a missing partition.
		if err := raiseLogStart(ctx, pgDB{tx}, topicID, partition, logStart); err != nil {
			return err
		}
		if len(baseOffsets) == 0 {
			return nil
		}
		_, err := tx.Exec(ctx,
			`DELETE FROM segments WHERE topic_id = $1 AND partition = $2 AND base_offset = ANY($3::bigint[])`,
			topicID, partition, baseOffsets)
		return err
	})
	if err != nil {
		return fmt.Errorf("meta: delete segments of %s/%d: %w", topicID, partition, err)
	}
	return nil
}
