-- 0001_init: the initial StreamHouse metadata schema.
--
-- Never edit a migration that has shipped; add a new numbered file instead.
-- All times are unix milliseconds (UTC). Tables are STRICT so a Go bug that
-- binds the wrong type fails loudly instead of being silently coerced.

CREATE TABLE topics (
    id              TEXT    NOT NULL PRIMARY KEY, -- UUID, RFC 4122 text form
    name            TEXT    NOT NULL UNIQUE,
    partition_count INTEGER NOT NULL CHECK (partition_count >= 1),
    created_at      INTEGER NOT NULL
) STRICT;

CREATE TABLE topic_configs (
    topic_id TEXT NOT NULL REFERENCES topics (id) ON DELETE CASCADE,
    key      TEXT NOT NULL CHECK (key <> ''),
    value    TEXT NOT NULL,
    PRIMARY KEY (topic_id, key)
) STRICT, WITHOUT ROWID;

CREATE TABLE partitions (
    topic_id         TEXT    NOT NULL REFERENCES topics (id) ON DELETE CASCADE,
    partition        INTEGER NOT NULL CHECK (partition >= 0),
    log_start_offset INTEGER NOT NULL DEFAULT 0 CHECK (log_start_offset >= 0),
    PRIMARY KEY (topic_id, partition)
) STRICT, WITHOUT ROWID;

-- A segment row references its partition row, so a segment can never be
-- recorded for a partition that does not exist, and deleting a topic
-- cascades topics -> partitions -> segments.
CREATE TABLE segments (
    topic_id      TEXT    NOT NULL,
    partition     INTEGER NOT NULL,
    base_offset   INTEGER NOT NULL CHECK (base_offset >= 0),
    last_offset   INTEGER NOT NULL CHECK (last_offset >= base_offset),
    max_timestamp INTEGER NOT NULL,
    object_key    TEXT    NOT NULL CHECK (object_key <> ''),
    size          INTEGER NOT NULL CHECK (size >= 0),
    record_count  INTEGER NOT NULL CHECK (record_count >= 0),
    created_at    INTEGER NOT NULL,
    PRIMARY KEY (topic_id, partition, base_offset),
    FOREIGN KEY (topic_id, partition)
        REFERENCES partitions (topic_id, partition) ON DELETE CASCADE
) STRICT, WITHOUT ROWID;

-- groups holds one row per consumer group. Today it only anchors
-- committed_offsets; group coordinator state can grow here later.
CREATE TABLE groups (
    name       TEXT    NOT NULL PRIMARY KEY CHECK (name <> ''),
    created_at INTEGER NOT NULL
) STRICT;

-- Offsets are keyed by topic NAME, as Kafka's OffsetCommit is; DeleteTopic
-- removes them explicitly so a re-created topic starts clean.
CREATE TABLE committed_offsets (
    group_name       TEXT    NOT NULL REFERENCES groups (name) ON DELETE CASCADE,
    topic            TEXT    NOT NULL CHECK (topic <> ''),
    partition        INTEGER NOT NULL CHECK (partition >= 0),
    committed_offset INTEGER NOT NULL,
    leader_epoch     INTEGER NOT NULL,
    metadata         TEXT    NOT NULL,
    commit_time      INTEGER NOT NULL,
    PRIMARY KEY (group_name, topic, partition)
) STRICT, WITHOUT ROWID;

-- DeleteTopic finds a topic's offsets by name across all groups.
CREATE INDEX committed_offsets_topic ON committed_offsets (topic);

-- Producer IDs come from a single-row sequence so that plain idempotent
-- producers (one per client start) leave no row behind; only transactional
-- IDs, whose epoch must survive restarts, get a row in producer_ids.
CREATE TABLE producer_id_sequence (
    singleton INTEGER NOT NULL PRIMARY KEY CHECK (singleton = 1),
    next_id   INTEGER NOT NULL CHECK (next_id >= 1)
) STRICT;
INSERT INTO producer_id_sequence (singleton, next_id) VALUES (1, 1);

CREATE TABLE producer_ids (
    id               INTEGER NOT NULL PRIMARY KEY,
    epoch            INTEGER NOT NULL CHECK (epoch BETWEEN 0 AND 32767),
    transactional_id TEXT    NOT NULL UNIQUE CHECK (transactional_id <> '')
) STRICT;
