package meta

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
)

// newTopic fills in what CreateTopic assigns (an ID if empty, CreatedAt
// from now if zero, both as stored; a private, non-nil Configs) and
// validates the result.
func newTopic(t Topic, now func() time.Time) (Topic, error) {
	if t.ID == "" {
		t.ID = uuid.NewString()
	}
	t.CreatedAt = stamp(now, t.CreatedAt)
	t.Configs = cloneConfigs(t.Configs)
	if err := validateTopic(t); err != nil {
		return Topic{}, fmt.Errorf("meta: create topic %q: %w", t.Name, err)
	}
	return t, nil
}

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
	t, err := newTopic(t, s.now)
	if err != nil {
		return Topic{}, err
	}
	err = s.writeTx(ctx, func(tx *sql.Tx) error {
		q := sqlDB{tx}
		if err := checkTopicFree(ctx, q, t); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx,
			`INSERT INTO topics (id, name, partition_count, created_at) VALUES (?, ?, ?, ?)`,
			t.ID, t.Name, t.PartitionCount, millis(t.CreatedAt))
		if isUnique(err) { // the name is free, so the ID is taken
			return fmt.Errorf("%w: topic id %s already in use", ErrTopicExists, t.ID)
		}
		if err != nil {
			return err
		}
		if err := q.insertPartitions(ctx, t.ID, 0, t.PartitionCount); err != nil {
			return err
		}
		return q.insertConfigs(ctx, t.ID, t.Configs)
	})
	if err != nil {
		return Topic{}, fmt.Errorf("meta: create topic %q: %w", t.Name, err)
	}
	return t, nil
}

// checkTopicFree returns ErrTopicExists if t's name is taken or its ID
// belongs to a deleted topic not yet forgotten.
func checkTopicFree(ctx context.Context, q db, t Topic) error {
	var exists int
	err := q.queryRow(ctx, `SELECT 1 FROM topics WHERE name = ?`, t.Name).Scan(&exists)
	if err == nil {
		return ErrTopicExists
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return err
	}
	// A deleted topic's files and objects are found by its ID, so the
	// ID stays taken until ForgetDeletedTopic: a new topic under it
	// would lose its data to the old one's cleanup.
	err = q.queryRow(ctx, `SELECT 1 FROM deleted_topics WHERE id = ?`, t.ID).Scan(&exists)
	if err == nil {
		return fmt.Errorf("%w: topic id %s belongs to a deleted topic not yet cleaned up", ErrTopicExists, t.ID)
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return err
	}
	return nil
}

// insertPartitions implements db.
func (d sqlDB) insertPartitions(ctx context.Context, topicID string, from, to int32) error {
	stmt, err := d.q.PrepareContext(ctx,
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

// insertConfigs implements db.
func (d sqlDB) insertConfigs(ctx context.Context, topicID string, configs map[string]string) error {
	if len(configs) == 0 {
		return nil
	}
	stmt, err := d.q.PrepareContext(ctx,
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
	return getTopicIn(ctx, s, "name", name)
}

// GetTopicByID implements Store.
func (s *SQLite) GetTopicByID(ctx context.Context, id string) (Topic, error) {
	return getTopicIn(ctx, s, "id", id)
}

// getTopicIn is GetTopic (col "name") and GetTopicByID (col "id") for
// either backend: it loads the topic and its configs in one snapshot.
func getTopicIn(ctx context.Context, r txRunner, col, val string) (Topic, error) {
	var t Topic
	err := r.read(ctx, func(q db) error {
		var err error
		t, err = getTopic(ctx, q, col, val)
		return err
	})
	if err != nil {
		if col == "id" {
			return Topic{}, fmt.Errorf("meta: get topic id %s: %w", val, err)
		}
		return Topic{}, fmt.Errorf("meta: get topic %q: %w", val, err)
	}
	return t, nil
}

// getTopic loads one topic with its configs, looked up by column col
// ("name" or "id", never caller input). A missing topic is ErrTopicNotFound.
func getTopic(ctx context.Context, q db, col string, val string) (Topic, error) {
	var (
		t       Topic
		created int64
	)
	err := q.queryRow(ctx,
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
func loadConfigs(ctx context.Context, q db, topicID string) (map[string]map[string]string, error) {
	query, args := `SELECT topic_id, key, value FROM topic_configs`, []any(nil)
	if topicID != "" {
		query, args = query+` WHERE topic_id = ?`, []any{topicID}
	}
	rows, err := q.query(ctx, query, args...)
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
	return listTopics(ctx, s)
}

// listTopics is ListTopics for either backend.
func listTopics(ctx context.Context, r txRunner) ([]Topic, error) {
	var topics []Topic
	err := r.read(ctx, func(q db) error {
		topics = []Topic{}
		rows, err := q.query(ctx,
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
		configs, err := loadConfigs(ctx, q, "")
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
	return deleteTopic(ctx, s, name, s.now)
}

// deleteTopic is DeleteTopic for either backend; now stamps the
// deleted-topics row.
func deleteTopic(ctx context.Context, r txRunner, name string, now func() time.Time) (Topic, []Segment, error) {
	var (
		t    Topic
		segs []Segment
	)
	err := r.write(ctx, func(q db) error {
		var err error
		if t, err = getTopic(ctx, q, "name", name); err != nil {
			return err
		}
		if segs, err = querySegments(ctx, q,
			`WHERE topic_id = ? ORDER BY partition, base_offset`, t.ID); err != nil {
			return err
		}
		if _, err := q.exec(ctx, `DELETE FROM committed_offsets WHERE topic = ?`, name); err != nil {
			return err
		}
		if _, err := q.exec(ctx, `DELETE FROM txn_offsets WHERE topic = ?`, name); err != nil {
			return err
		}
		// ON DELETE CASCADE removes configs, partitions and segments.
		if _, err := q.exec(ctx, `DELETE FROM topics WHERE id = ?`, t.ID); err != nil {
			return err
		}
		// Recorded in the same transaction, so no crash can lose track of
		// the local files and objects the caller is about to remove.
		_, err = q.exec(ctx,
			`INSERT INTO deleted_topics (id, name, partition_count, deleted_at) VALUES (?, ?, ?, ?)`,
			t.ID, t.Name, t.PartitionCount, millis(now()))
		return err
	})
	if err != nil {
		return Topic{}, nil, fmt.Errorf("meta: delete topic %q: %w", name, err)
	}
	return t, segs, nil
}

// DeletedTopics implements Store. The result is never nil.
func (s *SQLite) DeletedTopics(ctx context.Context) ([]Topic, error) {
	return deletedTopics(ctx, s.rq)
}

// deletedTopics is DeletedTopics for either backend.
func deletedTopics(ctx context.Context, q db) ([]Topic, error) {
	topics := []Topic{}
	rows, err := q.query(ctx,
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
	return setTopicConfigs(ctx, s, name, configs)
}

// setTopicConfigs is SetTopicConfigs for either backend.
func setTopicConfigs(ctx context.Context, r txRunner, name string, configs map[string]string) error {
	if err := validateConfigs(configs); err != nil {
		return fmt.Errorf("meta: set configs of topic %q: %w", name, err)
	}
	err := r.write(ctx, func(q db) error {
		id, _, err := topicIDByName(ctx, q, name)
		if err != nil {
			return err
		}
		if _, err := q.exec(ctx, `DELETE FROM topic_configs WHERE topic_id = ?`, id); err != nil {
			return err
		}
		return q.insertConfigs(ctx, id, configs)
	})
	if err != nil {
		return fmt.Errorf("meta: set configs of topic %q: %w", name, err)
	}
	return nil
}

// AddPartitions implements Store. A newCount not larger than the current
// count is ErrInvalid.
func (s *SQLite) AddPartitions(ctx context.Context, name string, newCount int32) error {
	return addPartitions(ctx, s, name, newCount)
}

// addPartitions is AddPartitions for either backend.
func addPartitions(ctx context.Context, r txRunner, name string, newCount int32) error {
	err := r.write(ctx, func(q db) error {
		id, count, err := topicIDByName(ctx, q, name)
		if err != nil {
			return err
		}
		if newCount <= count {
			return fmt.Errorf("%w: new partition count %d must exceed current %d", ErrInvalid, newCount, count)
		}
		if _, err := q.exec(ctx,
			`UPDATE topics SET partition_count = ? WHERE id = ?`, newCount, id); err != nil {
			return err
		}
		return q.insertPartitions(ctx, id, count, newCount)
	})
	if err != nil {
		return fmt.Errorf("meta: add partitions to topic %q: %w", name, err)
	}
	return nil
}

// topicIDByName returns the ID and partition count of the named topic.
func topicIDByName(ctx context.Context, q db, name string) (string, int32, error) {
	var (
		id    string
		count int32
	)
	err := q.queryRow(ctx,
		`SELECT id, partition_count FROM topics WHERE name = ?`, name).Scan(&id, &count)
	if errors.Is(err, sql.ErrNoRows) {
		return "", 0, ErrTopicNotFound
	}
	return id, count, err
}

// GetPartition implements Store. The two lookups need no common snapshot:
// the second only explains a missing row.
func (s *SQLite) GetPartition(ctx context.Context, topicID string, partition int32) (Partition, error) {
	p, err := getPartition(ctx, s.rq, topicID, partition)
	if err != nil {
		return Partition{}, fmt.Errorf("meta: get partition %s/%d: %w", topicID, partition, err)
	}
	return p, nil
}

// getPartition is GetPartition for either backend, without the error's
// context.
func getPartition(ctx context.Context, q db, topicID string, partition int32) (Partition, error) {
	p := Partition{TopicID: topicID, Partition: partition}
	err := q.queryRow(ctx,
		`SELECT log_start_offset FROM partitions WHERE topic_id = ? AND partition = ?`,
		topicID, partition).Scan(&p.LogStartOffset)
	if errors.Is(err, sql.ErrNoRows) {
		err = missingPartition(ctx, q, topicID, partition)
	}
	return p, err
}

// SetLogStartOffset implements Store. A negative offset is ErrInvalid.
func (s *SQLite) SetLogStartOffset(ctx context.Context, topicID string, partition int32, offset int64) error {
	return setLogStartOffset(ctx, s, topicID, partition, offset)
}

// setLogStartOffset is SetLogStartOffset for either backend.
func setLogStartOffset(ctx context.Context, r txRunner, topicID string, partition int32, offset int64) error {
	if offset < 0 {
		return fmt.Errorf("meta: set log start offset of %s/%d: %w: negative offset %d",
			topicID, partition, ErrInvalid, offset)
	}
	err := r.write(ctx, func(q db) error {
		return raiseLogStart(ctx, q, topicID, partition, offset)
	})
	if err != nil {
		return fmt.Errorf("meta: set log start offset of %s/%d: %w", topicID, partition, err)
	}
	return nil
}

// raiseLogStart sets the partition's log start offset to offset unless it
// is already at or past it.
func raiseLogStart(ctx context.Context, q db, topicID string, partition int32, offset int64) error {
	n, err := q.exec(ctx,
		`UPDATE partitions SET log_start_offset = `+q.greatest()+`(log_start_offset, ?)
		 WHERE topic_id = ? AND partition = ?`, offset, topicID, partition)
	if err != nil {
		return err
	}
	if n == 0 {
		return missingPartition(ctx, q, topicID, partition)
	}
	return nil
}

// missingPartition explains why (topicID, partition) has no row: the topic
// does not exist (ErrTopicNotFound) or the partition is out of its range
// (ErrPartitionRange).
func missingPartition(ctx context.Context, q db, topicID string, partition int32) error {
	var count int32
	err := q.queryRow(ctx,
		`SELECT partition_count FROM topics WHERE id = ?`, topicID).Scan(&count)
	if errors.Is(err, sql.ErrNoRows) {
		return ErrTopicNotFound
	}
	if err != nil {
		return err
	}
	return fmt.Errorf("%w: partition %d, topic has %d", ErrPartitionRange, partition, count)
}
