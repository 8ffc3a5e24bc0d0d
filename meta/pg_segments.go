package meta

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// This file is segments.go's twin for PostgreSQL.

// AddSegment implements Store. CreatedAt is set from the store's clock if
// zero. A partition that does not exist is ErrTopicNotFound or
// ErrPartitionRange.
func (s *Postgres) AddSegment(ctx context.Context, sg Segment) error {
	if err := validateSegment(sg); err != nil {
		return fmt.Errorf("meta: add segment %s/%d@%d: %w", sg.TopicID, sg.Partition, sg.BaseOffset, err)
	}
	created := millis(s.stamp(sg.CreatedAt))
	err := s.writeTx(ctx, func(tx pgx.Tx) error {
		// Check the partition first: a foreign key violation would abort
		// the transaction before we could say which of the two it is.
		var one int
		err := tx.QueryRow(ctx,
			`SELECT 1 FROM partitions WHERE topic_id = $1 AND partition = $2`,
			sg.TopicID, sg.Partition).Scan(&one)
		if errors.Is(err, pgx.ErrNoRows) {
			return pgMissingPartition(ctx, tx, sg.TopicID, sg.Partition)
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
	var segs []Segment
	err := s.readTx(ctx, func(tx pgx.Tx) error {
		var err error
		segs, err = pgQuerySegments(ctx, tx,
			`WHERE topic_id = $1 AND partition = $2 ORDER BY base_offset`, topicID, partition)
		if err != nil || len(segs) > 0 {
			return err
		}
		// Distinguish an empty partition from a missing one.
		var one int
		err = tx.QueryRow(ctx,
			`SELECT 1 FROM partitions WHERE topic_id = $1 AND partition = $2`,
			topicID, partition).Scan(&one)
		if errors.Is(err, pgx.ErrNoRows) {
			return pgMissingPartition(ctx, tx, topicID, partition)
		}
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("meta: list segments of %s/%d: %w", topicID, partition, err)
	}
	return segs, nil
}

// pgQuerySegments selects segment rows; where is a constant clause (never
// caller input) with args as its parameters. The result is never nil.
func pgQuerySegments(ctx context.Context, q pgQuerier, where string, args ...any) ([]Segment, error) {
	rows, err := q.Query(ctx, `SELECT topic_id, partition, base_offset, last_offset,
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
func (s *Postgres) DeleteSegments(ctx context.Context, topicID string, partition int32, baseOffsets []int64, logStart int64) error {
	if logStart < 0 {
		return fmt.Errorf("meta: delete segments of %s/%d: %w: negative log start offset %d",
			topicID, partition, ErrInvalid, logStart)
	}
	err := s.writeTx(ctx, func(tx pgx.Tx) error {
		// First, because it also reports a missing partition.
		if err := pgRaiseLogStart(ctx, tx, topicID, partition, logStart); err != nil {
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
