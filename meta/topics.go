package meta

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/google/uuid"
)

// validateTopic checks t as CreateTopic receives it (after ID assignment).
func validateTopic(t Topic) error {
	if t.Name == "" {
		return fmt.Errorf("%w: empty topic name", ErrInvalid)
	}
	if t.PartitionCount < 1 {
		return fmt.Errorf("%w: partition count %d, want >= 1", ErrInvalid, t.PartitionCount)
	}
	// Require the canonical lower-case form so that an ID compares equal
	// to itself everywhere; reject the nil UUID, which Kafka uses to mean
	// "no topic ID".
	u, err := uuid.Parse(t.ID)
	if err != nil || u.String() != t.ID || u == uuid.Nil {
		return fmt.Errorf("%w: topic id %q is not a canonical non-nil UUID", ErrInvalid, t.ID)
	}
	return validateConfigs(t.Configs)
}

// validateConfigs rejects empty config keys.
func validateConfigs(configs map[string]string) error {
	if _, ok := configs[""]; ok {
		return fmt.Errorf("%w: empty config key", ErrInvalid)
	}
	return nil
}

// CreateTopic implements Store. It returns the topic as stored: ID and
// CreatedAt filled in (CreatedAt at millisecond precision, UTC) and
// Configs never nil.
func (s *SQLite) CreateTopic(ctx context.Context, t Topic) (Topic, error) {
	if t.ID == "" {
		t.ID = uuid.NewString()
	}
	t.CreatedAt = s.stamp(t.CreatedAt)
	t.Configs = cloneConfigs(t.Configs)
	if err := validateTopic(t); err != nil {
		return Topic{}, fmt.Errorf("meta: create topic %q: %w", t.Name, err)
	}
	err := s.writeTx(ctx, func(tx *sql.Tx) error {
		var exists int
		err := tx.QueryRowContext(ctx, `SELECT 1 FROM topics WHERE name = ?`, t.Name).Scan(&exists)
		if err == nil {
			return ErrTopicExists
		}
		if !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		// A deleted topic's files and objects are found by its ID, so the
		// ID stays taken until ForgetDeletedTopic: a new topic under it
		// would lose its data to the old one's cleanup.
		err = tx.QueryRowContext(ctx, `SELECT 1 FROM deleted_topics WHERE id = ?`, t.ID).Scan(&exists)
		if err == nil {
			return fmt.Errorf("%w: topic id %s belongs to a deleted topic not yet cleaned up", ErrTopicExists, t.ID)
		}
		if !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		_, err = tx.ExecContext(ctx,
			`INSERT INTO topics (id, name, partition_count, created_at) VALUES (?, ?, ?, ?)`,
			t.ID, t.Name, t.PartitionCount, millis(t.CreatedAt))
		if isUnique(err) { // the name is free, so the ID is taken
			return fmt.Errorf("%w: topic id %s already in use", ErrTopicExists, t.ID)
		}
		if err != nil {
			return err
		}
		if err := insertPartitions(ctx, tx, t.ID, 0, t.PartitionCount); err != nil {
			return err
		}
		return insertConfigs(ctx, tx, t.ID, t.Configs)
	})
	if err != nil {
		return Topic{}, fmt.Errorf("meta: create topic %q: %w", t.Name, err)
	}
	return t, nil
}

// insertPartitions adds partition rows [from, to) with log start offset 0.
func insertPartitions(ctx context.Context, tx *sql.Tx, topicID string, from, to int32) error {
	stmt, err := tx.PrepareContext(ctx,
		`INSERT INTO partitions (topic_id, partition, log_start_offset) VALUES (?, ?, 0)`)
	if err != nil {
		return err
	}
	defer stmt.Close()
	for p := from; p < to; p++ {
		if _, err := stmt.ExecContext(ctx, topicID, p); err != nil {
			return fmt.Errorf("partition %d: %w", p, err)
		}
	}
	return nil
}

// insertConfigs adds the config rows of a topic that has none.
func insertConfigs(ctx context.Context, tx *sql.Tx, topicID string, configs map[string]string) error {
	if len(configs) == 0 {
		return nil
	}
	stmt, err := tx.PrepareContext(ctx,
		`INSERT INTO topic_configs (topic_id, key, value) VALUES (?, ?, ?)`)
	if err != nil {
		return err
	}
	defer stmt.Close()
	for k, v := range configs {
		if _, err := stmt.ExecContext(ctx, topicID, k, v); err != nil {
			return fmt.Errorf("config %q: %w", k, err)
		}
	}
	return nil
}

// cloneConfigs copies m so the caller's map and the store's never alias;
// the result is never nil.
func cloneConfigs(m map[string]string) map[string]string {
	c := make(map[string]string, len(m))
	for k, v := range m {
		c[k] = v
	}
	return c
}

// GetTopic implements Store.
func (s *SQLite) GetTopic(ctx context.Context, name string) (Topic, error) {
	var t Topic
	err := s.readTx(ctx, func(tx *sql.Tx) error {
		var err error
		t, err = getTopic(ctx, tx, "name", name)
		return err
	})
	if err != nil {
		return Topic{}, fmt.Errorf("meta: get topic %q: %w", name, err)
	}
	return t, nil
}

// GetTopicByID implements Store.
func (s *SQLite) GetTopicByID(ctx context.Context, id string) (Topic, error) {
	var t Topic
	err := s.readTx(ctx, func(tx *sql.Tx) error {
		var err error
		t, err = getTopic(ctx, tx, "id", id)
		return err
	})
	if err != nil {
		return Topic{}, fmt.Errorf("meta: get topic id %s: %w", id, err)
	}
	return t, nil
}

// getTopic loads one topic with its configs, looked up by column col
// ("name" or "id", never caller input). A missing topic is ErrTopicNotFound.
func getTopic(ctx context.Context, q querier, col string, val string) (Topic, error) {
	var (
		t       Topic
		created int64
	)
	err := q.QueryRowContext(ctx,
		`SELECT id, name, partition_count, created_at FROM topics WHERE `+col+` = ?`, val).
		Scan(&t.ID, &t.Name, &t.PartitionCount, &created)
	if errors.Is(err, sql.ErrNoRows) {
		return Topic{}, ErrTopicNotFound
	}
	if err != nil {
		return Topic{}, err
	}
	t.CreatedAt = fromMillis(created)
	all, err := loadConfigs(ctx, q, t.ID)
	if err != nil {
		return Topic{}, err
	}
	t.Configs = all[t.ID]
	if t.Configs == nil {
		t.Configs = map[string]string{}
	}
	return t, nil
}

// loadConfigs returns topic configs keyed by topic ID: one topic's if
// topicID is non-empty, else every topic's.
func loadConfigs(ctx context.Context, q querier, topicID string) (map[string]map[string]string, error) {
	query, args := `SELECT topic_id, key, value FROM topic_configs`, []any(nil)
	if topicID != "" {
		query, args = query+` WHERE topic_id = ?`, []any{topicID}
	}
	rows, err := q.QueryContext(ctx, query, args...)
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
func (s *SQLite) ListTopics(ctx context.Context) ([]Topic, error) {
	topics := []Topic{}
	err := s.readTx(ctx, func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx,
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
		configs, err := loadConfigs(ctx, tx, "")
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
func (s *SQLite) DeleteTopic(ctx context.Context, name string) (Topic, []Segment, error) {
	var (
		t    Topic
		segs []Segment
	)
	err := s.writeTx(ctx, func(tx *sql.Tx) error {
		var err error
		if t, err = getTopic(ctx, tx, "name", name); err != nil {
			return err
		}
		if segs, err = querySegments(ctx, tx,
			`WHERE topic_id = ? ORDER BY partition, base_offset`, t.ID); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM committed_offsets WHERE topic = ?`, name); err != nil {
			return err
		}
		// ON DELETE CASCADE removes configs, partitions and segments.
		if _, err := tx.ExecContext(ctx, `DELETE FROM topics WHERE id = ?`, t.ID); err != nil {
			return err
		}
		// Recorded in the same transaction, so no crash can lose track of
		// the local files and objects the caller is about to remove.
		_, err = tx.ExecContext(ctx,
			`INSERT INTO deleted_topics (id, name, partition_count, deleted_at) VALUES (?, ?, ?, ?)`,
			t.ID, t.Name, t.PartitionCount, millis(s.now()))
		return err
	})
	if err != nil {
		return Topic{}, nil, fmt.Errorf("meta: delete topic %q: %w", name, err)
	}
	return t, segs, nil
}

// DeletedTopics implements Store. The result is never nil.
func (s *SQLite) DeletedTopics(ctx context.Context) ([]Topic, error) {
	topics := []Topic{}
	rows, err := s.r.QueryContext(ctx,
		`SELECT id, name, partition_count FROM deleted_topics ORDER BY name, id`)
	if err != nil {
		return nil, fmt.Errorf("meta: list deleted topics: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var t Topic
		if err := rows.Scan(&t.ID, &t.Name, &t.PartitionCount); err != nil {
			return nil, fmt.Errorf("meta: list deleted topics: %w", err)
		}
		topics = append(topics, t)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("meta: list deleted topics: %w", err)
	}
	return topics, nil
}

// ForgetDeletedTopic implements Store.
func (s *SQLite) ForgetDeletedTopic(ctx context.Context, id string) error {
	err := s.writeTx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `DELETE FROM deleted_topics WHERE id = ?`, id)
		return err
	})
	if err != nil {
		return fmt.Errorf("meta: forget deleted topic %s: %w", id, err)
	}
	return nil
}

// SetTopicConfigs implements Store. A nil or empty map clears every override.
func (s *SQLite) SetTopicConfigs(ctx context.Context, name string, configs map[string]string) error {
	if err := validateConfigs(configs); err != nil {
		return fmt.Errorf("meta: set configs of topic %q: %w", name, err)
	}
	err := s.writeTx(ctx, func(tx *sql.Tx) error {
		id, _, err := topicIDByName(ctx, tx, name)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM topic_configs WHERE topic_id = ?`, id); err != nil {
			return err
		}
		return insertConfigs(ctx, tx, id, configs)
	})
	if err != nil {
		return fmt.Errorf("meta: set configs of topic %q: %w", name, err)
	}
	return nil
}

// AddPartitions implements Store. A newCount not larger than the current
// count is ErrInvalid.
func (s *SQLite) AddPartitions(ctx context.Context, name string, newCount int32) error {
	err := s.writeTx(ctx, func(tx *sql.Tx) error {
		id, count, err := topicIDByName(ctx, tx, name)
		if err != nil {
			return err
		}
		if newCount <= count {
			return fmt.Errorf("%w: new partition count %d must exceed current %d", ErrInvalid, newCount, count)
		}
		if _, err := tx.ExecContext(ctx,
			`UPDATE topics SET partition_count = ? WHERE id = ?`, newCount, id); err != nil {
			return err
		}
		return insertPartitions(ctx, tx, id, count, newCount)
	})
	if err != nil {
		return fmt.Errorf("meta: add partitions to topic %q: %w", name, err)
	}
	return nil
}

// topicIDByName returns the ID and partition count of the named topic.
func topicIDByName(ctx context.Context, q querier, name string) (string, int32, error) {
	var (
		id    string
		count int32
	)
	err := q.QueryRowContext(ctx,
		`SELECT id, partition_count FROM topics WHERE name = ?`, name).Scan(&id, &count)
	if errors.Is(err, sql.ErrNoRows) {
		return "", 0, ErrTopicNotFound
	}
	return id, count, err
}

// GetPartition implements Store.
func (s *SQLite) GetPartition(ctx context.Context, topicID string, partition int32) (Partition, error) {
	p := Partition{TopicID: topicID, Partition: partition}
	err := s.r.QueryRowContext(ctx,
		`SELECT log_start_offset FROM partitions WHERE topic_id = ? AND partition = ?`,
		topicID, partition).Scan(&p.LogStartOffset)
	if errors.Is(err, sql.ErrNoRows) {
		err = missingPartition(ctx, s.r, topicID, partition)
	}
	if err != nil {
		return Partition{}, fmt.Errorf("meta: get partition %s/%d: %w", topicID, partition, err)
	}
	return p, nil
}

// SetLogStartOffset implements Store. A negative offset is ErrInvalid.
func (s *SQLite) SetLogStartOffset(ctx context.Context, topicID string, partition int32, offset int64) error {
	if offset < 0 {
		return fmt.Errorf("meta: set log start offset of %s/%d: %w: negative offset %d",
			topicID, partition, ErrInvalid, offset)
	}
	err := s.writeTx(ctx, func(tx *sql.Tx) error {
		return raiseLogStart(ctx, tx, topicID, partition, offset)
	})
	if err != nil {
		return fmt.Errorf("meta: set log start offset of %s/%d: %w", topicID, partition, err)
	}
	return nil
}

// raiseLogStart sets the partition's log start offset to offset unless it
// is already at or past it.
func raiseLogStart(ctx context.Context, tx *sql.Tx, topicID string, partition int32, offset int64) error {
	res, err := tx.ExecContext(ctx,
		`UPDATE partitions SET log_start_offset = max(log_start_offset, ?)
		 WHERE topic_id = ? AND partition = ?`, offset, topicID, partition)
	if err != nil {
		return err
	}
	n, err := res.RowsAffected()
	if err != nil {
		return err
	}
	if n == 0 {
		return missingPartition(ctx, tx, topicID, partition)
	}
	return nil
}

// missingPartition explains why (topicID, partition) has no row: the topic
// does not exist (ErrTopicNotFound) or the partition is out of its range
// (ErrPartitionRange).
func missingPartition(ctx context.Context, q querier, topicID string, partition int32) error {
	var count int32
	err := q.QueryRowContext(ctx,
		`SELECT partition_count FROM topics WHERE id = ?`, topicID).Scan(&count)
	if errors.Is(err, sql.ErrNoRows) {
		return ErrTopicNotFound
	}
	if err != nil {
		return err
	}
	return fmt.Errorf("%w: partition %d, topic has %d", ErrPartitionRange, partition, count)
}
