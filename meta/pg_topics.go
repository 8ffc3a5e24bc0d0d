package meta

import (
	"context"
	"errors"
	"fmt"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// This file is topics.go's twin for PostgreSQL: topics, their configs,
// partitions, and the deleted-topics list.

// CreateTopic implements Store. It returns the topic as stored: ID and
// CreatedAt filled in (CreatedAt at millisecond precision, UTC) and
// Configs never nil.
func (s *Postgres) CreateTopic(ctx context.Context, t Topic) (Topic, error) {
	if t.ID == "" {
		t.ID = uuid.NewString()
	}
	t.CreatedAt = s.stamp(t.CreatedAt)
	t.Configs = cloneConfigs(t.Configs)
	if err := validateTopic(t); err != nil {
		return Topic{}, fmt.Errorf("meta: create topic %q: %w", t.Name, err)
	}
	err := s.writeTx(ctx, func(tx pgx.Tx) error {
		var exists int
		err := tx.QueryRow(ctx, `SELECT 1 FROM topics WHERE name = $1`, t.Name).Scan(&exists)
		if err == nil {
			return ErrTopicExists
		}
		if !errors.Is(err, pgx.ErrNoRows) {
			return err
		}
		// A deleted topic's files and objects are found by its ID, so the
		// ID stays taken until ForgetDeletedTopic: a new topic under it
		// would lose its data to the old one's cleanup.
		err = tx.QueryRow(ctx, `SELECT 1 FROM deleted_topics WHERE id = $1`, t.ID).Scan(&exists)
		if err == nil {
			return fmt.Errorf("%w: topic id %s belongs to a deleted topic not yet cleaned up", ErrTopicExists, t.ID)
		}
		if !errors.Is(err, pgx.ErrNoRows) {
			return err
		}
		// ON CONFLICT DO NOTHING rather than catching the unique
		// violation, which would abort the transaction.
		tag, err := tx.Exec(ctx,
			`INSERT INTO topics (id, name, partition_count, created_at) VALUES ($1, $2, $3, $4)
			 ON CONFLICT DO NOTHING`,
			t.ID, t.Name, t.PartitionCount, millis(t.CreatedAt))
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 { // the name was free in our snapshot
			return fmt.Errorf("%w: topic id %s or name already in use", ErrTopicExists, t.ID)
		}
		if err := pgInsertPartitions(ctx, tx, t.ID, 0, t.PartitionCount); err != nil {
			return err
		}
		return pgInsertConfigs(ctx, tx, t.ID, t.Configs)
	})
	if pgCode(err) == pgUniqueViolation { // a concurrent create won the name
		err = fmt.Errorf("%w: %w", ErrTopicExists, err)
	}
	if err != nil {
		return Topic{}, fmt.Errorf("meta: create topic %q: %w", t.Name, err)
	}
	return t, nil
}

// pgInsertPartitions adds partition rows [from, to) with log start offset 0.
func pgInsertPartitions(ctx context.Context, tx pgx.Tx, topicID string, from, to int32) error {
	_, err := tx.Exec(ctx,
		`INSERT INTO partitions (topic_id, partition, log_start_offset)
		 SELECT $1, p, 0 FROM generate_series($2::integer, $3::integer - 1) AS p`,
		topicID, from, to)
	if err != nil {
		return fmt.Errorf("partitions [%d, %d): %w", from, to, err)
	}
	return nil
}

// pgInsertConfigs adds the config rows of a topic that has none.
func pgInsertConfigs(ctx context.Context, tx pgx.Tx, topicID string, configs map[string]string) error {
	if len(configs) == 0 {
		return nil
	}
	keys := make([]string, 0, len(configs))
	values := make([]string, 0, len(configs))
	for k, v := range configs {
		keys, values = append(keys, k), append(values, v)
	}
	_, err := tx.Exec(ctx,
		`INSERT INTO topic_configs (topic_id, key, value)
		 SELECT $1, k, v FROM unnest($2::text[], $3::text[]) AS c(k, v)`,
		topicID, keys, values)
	if err != nil {
		return fmt.Errorf("configs: %w", err)
	}
	return nil
}

// GetTopic implements Store.
func (s *Postgres) GetTopic(ctx context.Context, name string) (Topic, error) {
	var t Topic
	err := s.readTx(ctx, func(tx pgx.Tx) error {
		var err error
		t, err = pgGetTopic(ctx, tx, "name", name)
		return err
	})
	if err != nil {
		return Topic{}, fmt.Errorf("meta: get topic %q: %w", name, err)
	}
	return t, nil
}

// GetTopicByID implements Store.
func (s *Postgres) GetTopicByID(ctx context.Context, id string) (Topic, error) {
	var t Topic
	err := s.readTx(ctx, func(tx pgx.Tx) error {
		var err error
		t, err = pgGetTopic(ctx, tx, "id", id)
		return err
	})
	if err != nil {
		return Topic{}, fmt.Errorf("meta: get topic id %s: %w", id, err)
	}
	return t, nil
}

// pgGetTopic loads one topic with its configs, looked up by column col
// ("name" or "id", never caller input). A missing topic is ErrTopicNotFound.
func pgGetTopic(ctx context.Context, q pgQuerier, col string, val string) (Topic, error) {
	var (
		t       Topic
		created int64
	)
	err := q.QueryRow(ctx,
		`SELECT id, name, partition_count, created_at FROM topics WHERE `+col+` = $1`, val).
		Scan(&t.ID, &t.Name, &t.PartitionCount, &created)
	if errors.Is(err, pgx.ErrNoRows) {
		return Topic{}, ErrTopicNotFound
	}
	if err != nil {
		return Topic{}, err
	}
	t.CreatedAt = fromMillis(created)
	all, err := pgLoadConfigs(ctx, q, t.ID)
	if err != nil {
		return Topic{}, err
	}
	t.Configs = all[t.ID]
	if t.Configs == nil {
		t.Configs = map[string]string{}
	}
	return t, nil
}

// pgLoadConfigs returns topic configs keyed by topic ID: one topic's if
// topicID is non-empty, else every topic's.
func pgLoadConfigs(ctx context.Context, q pgQuerier, topicID string) (map[string]map[string]string, error) {
	query, args := `SELECT topic_id, key, value FROM topic_configs`, []any(nil)
	if topicID != "" {
		query, args = query+` WHERE topic_id = $1`, []any{topicID}
	}
	rows, err := q.Query(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := make(map[string]map[string]string)
	for rows.Next() {
		var id, k, v string
		if err := rows.Scan(&id, &k, &v); err != nil {
			return nil, err
		}
		if out[id] == nil {
			out[id] = make(map[string]string)
		}
		out[id][k] = v
	}
	return out, rows.Err()
}

// ListTopics implements Store. The result is never nil.
func (s *Postgres) ListTopics(ctx context.Context) ([]Topic, error) {
	var topics []Topic
	err := s.readTx(ctx, func(tx pgx.Tx) error {
		topics = []Topic{}
		rows, err := tx.Query(ctx,
			`SELECT id, name, partition_count, created_at FROM topics ORDER BY name`)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var (
				t       Topic
				created int64
			)
			if err := rows.Scan(&t.ID, &t.Name, &t.PartitionCount, &created); err != nil {
				return err
			}
			t.CreatedAt = fromMillis(created)
			topics = append(topics, t)
		}
		if err := rows.Err(); err != nil {
			return err
		}
		configs, err := pgLoadConfigs(ctx, tx, "")
		if err != nil {
			return err
		}
		for i := range topics {
			topics[i].Configs = configs[topics[i].ID]
			if topics[i].Configs == nil {
				topics[i].Configs = map[string]string{}
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("meta: list topics: %w", err)
	}
	return topics, nil
}

// DeleteTopic implements Store. The segments come back sorted by partition
// then base offset.
func (s *Postgres) DeleteTopic(ctx context.Context, name string) (Topic, []Segment, error) {
	var (
		t    Topic
		segs []Segment
	)
	err := s.writeTx(ctx, func(tx pgx.Tx) error {
		var err error
		if t, err = pgGetTopic(ctx, tx, "name", name); err != nil {
			return err
		}
		if segs, err = pgQuerySegments(ctx, tx,
			`WHERE topic_id = $1 ORDER BY partition, base_offset`, t.ID); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `DELETE FROM committed_offsets WHERE topic = $1`, name); err != nil {
			return err
		}
		// ON DELETE CASCADE removes configs, partitions and segments.
		if _, err := tx.Exec(ctx, `DELETE FROM topics WHERE id = $1`, t.ID); err != nil {
			return err
		}
		// Recorded in the same transaction, so no crash can lose track of
		// the local files and objects the caller is about to remove.
		_, err = tx.Exec(ctx,
			`INSERT INTO deleted_topics (id, name, partition_count, deleted_at) VALUES ($1, $2, $3, $4)`,
			t.ID, t.Name, t.PartitionCount, millis(s.now()))
		return err
	})
	if err != nil {
		return Topic{}, nil, fmt.Errorf("meta: delete topic %q: %w", name, err)
	}
	return t, segs, nil
}

// DeletedTopics implements Store. The result is never nil.
func (s *Postgres) DeletedTopics(ctx context.Context) ([]Topic, error) {
	rows, err := s.pool.Query(ctx,
		`SELECT id, name, partition_count FROM deleted_topics ORDER BY name, id`)
	if err != nil {
		return nil, fmt.Errorf("meta: list deleted topics: %w", err)
	}
	topics, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (Topic, error) {
		var t Topic
		err := row.Scan(&t.ID, &t.Name, &t.PartitionCount)
		return t, err
	})
	if err != nil {
		return nil, fmt.Errorf("meta: list deleted topics: %w", err)
	}
	if topics == nil {
		topics = []Topic{}
	}
	return topics, nil
}

// ForgetDeletedTopic implements Store.
func (s *Postgres) ForgetDeletedTopic(ctx context.Context, id string) error {
	if _, err := s.pool.Exec(ctx, `DELETE FROM deleted_topics WHERE id = $1`, id); err != nil {
		return fmt.Errorf("meta: forget deleted topic %s: %w", id, err)
	}
	return nil
}

// SetTopicConfigs implements Store. A nil or empty map clears every override.
func (s *Postgres) SetTopicConfigs(ctx context.Context, name string, configs map[string]string) error {
	if err := validateConfigs(configs); err != nil {
		return fmt.Errorf("meta: set configs of topic %q: %w", name, err)
	}
	err := s.writeTx(ctx, func(tx pgx.Tx) error {
		id, _, err := pgTopicIDByName(ctx, tx, name)
		if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `DELETE FROM topic_configs WHERE topic_id = $1`, id); err != nil {
			return err
		}
		return pgInsertConfigs(ctx, tx, id, configs)
	})
	if err != nil {
		return fmt.Errorf("meta: set configs of topic %q: %w", name, err)
	}
	return nil
}

// AddPartitions implements Store. A newCount not larger than the current
// count is ErrInvalid.
func (s *Postgres) AddPartitions(ctx context.Context, name string, newCount int32) error {
	err := s.writeTx(ctx, func(tx pgx.Tx) error {
		id, count, err := pgTopicIDByName(ctx, tx, name)
		if err != nil {
			return err
		}
		if newCount <= count {
			return fmt.Errorf("%w: new partition count %d must exceed current %d", ErrInvalid, newCount, count)
		}
		if _, err := tx.Exec(ctx,
			`UPDATE topics SET partition_count = $1 WHERE id = $2`, newCount, id); err != nil {
			return err
		}
		return pgInsertPartitions(ctx, tx, id, count, newCount)
	})
	if err != nil {
		return fmt.Errorf("meta: add partitions to topic %q: %w", name, err)
	}
	return nil
}

// pgTopicIDByName returns the ID and partition count of the named topic.
func pgTopicIDByName(ctx context.Context, q pgQuerier, name string) (string, int32, error) {
	var (
		id    string
		count int32
	)
	err := q.QueryRow(ctx,
		`SELECT id, partition_count FROM topics WHERE name = $1`, name).Scan(&id, &count)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", 0, ErrTopicNotFound
	}
	return id, count, err
}

// GetPartition implements Store.
func (s *Postgres) GetPartition(ctx context.Context, topicID string, partition int32) (Partition, error) {
	p := Partition{TopicID: topicID, Partition: partition}
	err := s.readTx(ctx, func(tx pgx.Tx) error {
		err := tx.QueryRow(ctx,
			`SELECT log_start_offset FROM partitions WHERE topic_id = $1 AND partition = $2`,
			topicID, partition).Scan(&p.LogStartOffset)
		if errors.Is(err, pgx.ErrNoRows) {
			return pgMissingPartition(ctx, tx, topicID, partition)
		}
		return err
	})
	if err != nil {
		return Partition{}, fmt.Errorf("meta: get partition %s/%d: %w", topicID, partition, err)
	}
	return p, nil
}

// SetLogStartOffset implements Store. A negative offset is ErrInvalid.
func (s *Postgres) SetLogStartOffset(ctx context.Context, topicID string, partition int32, offset int64) error {
	if offset < 0 {
		return fmt.Errorf("meta: set log start offset of %s/%d: %w: negative offset %d",
			topicID, partition, ErrInvalid, offset)
	}
	err := s.writeTx(ctx, func(tx pgx.Tx) error {
		return pgRaiseLogStart(ctx, tx, topicID, partition, offset)
	})
	if err != nil {
		return fmt.Errorf("meta: set log start offset of %s/%d: %w", topicID, partition, err)
	}
	return nil
}

// pgRaiseLogStart sets the partition's log start offset to offset unless
// it is already at or past it.
func pgRaiseLogStart(ctx context.Context, tx pgx.Tx, topicID string, partition int32, offset int64) error {
	tag, err := tx.Exec(ctx,
		`UPDATE partitions SET log_start_offset = GREATEST(log_start_offset, $1)
		 WHERE topic_id = $2 AND partition = $3`, offset, topicID, partition)
	if err != nil {
		return err
	}
	if tag.RowsAffected() == 0 {
		return pgMissingPartition(ctx, tx, topicID, partition)
	}
	return nil
}

// pgMissingPartition explains why (topicID, partition) has no row: the
// topic does not exist (ErrTopicNotFound) or the partition is out of its
// range (ErrPartitionRange).
func pgMissingPartition(ctx context.Context, q pgQuerier, topicID string, partition int32) error {
	var count int32
	err := q.QueryRow(ctx,
		`SELECT partition_count FROM topics WHERE id = $1`, topicID).Scan(&count)
	if errors.Is(err, pgx.ErrNoRows) {
		return ErrTopicNotFound
	}
	if err != nil {
		return err
	}
	return fmt.Errorf("%w: partition %d, topic has %d", ErrPartitionRange, partition, count)
}
