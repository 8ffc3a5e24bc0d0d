package meta

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// This file holds what PostgreSQL does its own way for topics, their
// configs, partitions and the deleted-topics list; the rest is shared with
// SQLite (topics.go).

// CreateTopic implements Store. It returns the topic as stored: ID and
// CreatedAt filled in (CreatedAt at millisecond precision, UTC) and
// Configs never nil.
func (s *Postgres) CreateTopic(ctx context.Context, t Topic) (Topic, error) {
	t, err := newTopic(t, s.now)
	if err != nil {
		return Topic{}, err
	}
	err = s.writeTx(ctx, func(tx pgx.Tx) error {
		q := pgDB{tx}
		if err := checkTopicFree(ctx, q, t); err != nil {
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
		if err := q.insertPartitions(ctx, t.ID, 0, t.PartitionCount); err != nil {
			return err
		}
		return q.insertConfigs(ctx, t.ID, t.Configs)
	})
	if pgCode(err) == pgUniqueViolation { // a concurrent create won the name
		err = fmt.Errorf("%w: %w", ErrTopicExists, err)
	}
	if err != nil {
		return Topic{}, fmt.Errorf("meta: create topic %q: %w", t.Name, err)
	}
	return t, nil
}

// insertPartitions implements db.
func (d pgDB) insertPartitions(ctx context.Context, topicID string, from, to int32) error {
	_, err := d.q.Exec(ctx,
		`INSERT INTO partitions (topic_id, partition, log_start_offset)
		 SELECT $1, p, 0 FROM generate_series($2::integer, $3::integer - 1) AS p`,
		topicID, from, to)
	if err != nil {
		return fmt.Errorf("partitions [%d, %d): %w", from, to, err)
	}
	return nil
}

// insertConfigs implements db.
func (d pgDB) insertConfigs(ctx context.Context, topicID string, configs map[string]string) error {
	if len(configs) == 0 {
		return nil
	}
	keys := make([]string, 0, len(configs))
	values := make([]string, 0, len(configs))
	for k, v := range configs {
		keys, values = append(keys, k), append(values, v)
	}
	_, err := d.q.Exec(ctx,
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
	return getTopicIn(ctx, s, "name", name)
}

// GetTopicByID implements Store.
func (s *Postgres) GetTopicByID(ctx context.Context, id string) (Topic, error) {
	return getTopicIn(ctx, s, "id", id)
}

// ListTopics implements Store. The result is never nil.
func (s *Postgres) ListTopics(ctx context.Context) ([]Topic, error) {
	return listTopics(ctx, s)
}

// DeleteTopic implements Store. The segments come back sorted by partition
// then base offset.
func (s *Postgres) DeleteTopic(ctx context.Context, name string) (Topic, []Segment, error) {
	return deleteTopic(ctx, s, name, s.now)
}

// DeletedTopics implements Store. The result is never nil.
func (s *Postgres) DeletedTopics(ctx context.Context) ([]Topic, error) {
	return deletedTopics(ctx, pgDB{s.pool})
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
	return setTopicConfigs(ctx, s, name, configs)
}

// AddPartitions implements Store. A newCount not larger than the current
// count is ErrInvalid.
func (s *Postgres) AddPartitions(ctx context.Context, name string, newCount int32) error {
	return addPartitions(ctx, s, name, newCount)
}

// GetPartition implements Store. Both lookups see one snapshot.
func (s *Postgres) GetPartition(ctx context.Context, topicID string, partition int32) (Partition, error) {
	var p Partition
	err := s.read(ctx, func(q db) error {
		var err error
		p, err = getPartition(ctx, q, topicID, partition)
		return err
	})
	if err != nil {
		return Partition{}, fmt.Errorf("meta: get partition %s/%d: %w", topicID, partition, err)
	}
	return p, nil
}

// SetLogStartOffset implements Store. A negative offset is ErrInvalid.
func (s *Postgres) SetLogStartOffset(ctx context.Context, topicID string, partition int32, offset int64) error {
	return setLogStartOffset(ctx, s, topicID, partition, offset)
}
