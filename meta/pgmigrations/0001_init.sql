-- 0001_init: the initial StreamHouse metadata schema (PostgreSQL).
--
-- The twin of migrations/0001_init.sql: same tables, columns and
-- constraints. Never edit a migration that has shipped; add a new numbered
-- file instead. All times are unix milliseconds (UTC) in BIGINT, as in
-- SQLite. Text columns that are sorted or compared use the "C" collation,
-- so ORDER BY is bytewise, as in SQLite, whatever the server's locale.

CREATE TABLE topics (
    id              TEXT COLLATE "C" NOT NULL PRIMARY KEY, -- UUID, RFC 4122 text form
    name            TEXT COLLATE "C" NOT NULL UNIQUE,
    partition_count INTEGER NOT NULL CHECK (partition_count >= 1),
    created_at      BIGINT  NOT NULL
);

CREATE TABLE topic_configs (
    topic_id TEXT COLLATE "C" NOT NULL REFERENCES topics (id) ON DELETE CASCADE,
    key      TEXT COLLATE "C" NOT NULL CHECK (key <> ''),
    value    TEXT NOT NULL,
    PRIMARY KEY (topic_id, key)
);

CREATE TABLE partitions (
    topic_id         TEXT COLLATE "C" NOT NULL REFERENCES topics (id) ON DELETE CASCADE,
    partition        INTEGER NOT NULL CHECK (partition >= 0),
    log_start_offset BIGINT  NOT NULL DEFAULT 0 CHECK (log_start_offset >= 0),
    PRIMARY KEY (topic_id, partition)
);

-- A segment row references its partition row, so a segment can never be
-- recorded for a partition that does not exist, and deleting a topic
-- cascades topics -> partitions -> segments.
CREATE TABLE segments (
    topic_id      TEXT COLLATE "C" NOT NULL,
    partition     INTEGER NOT NULL,
    base_offset   BIGINT  NOT NULL CHECK (base_offset >= 0),
    last_offset   BIGINT  NOT NULL CHECK (last_offset >= base_offset),
    max_timestamp BIGINT  NOT NULL,
    object_key    TEXT    NOT NULL CHECK (object_key <> ''),
    size          BIGINT  NOT NULL CHECK (size >= 0),
    record_count  BIGINT  NOT NULL CHECK (record_count >= 0),
    created_at    BIGINT  NOT NULL,
    PRIMARY KEY (topic_id, partition, base_offset),
    FOREIGN KEY (topic_id, partition)
        REFERENCES partitions (topic_id, partition) ON DELETE CASCADE
);

-- groups holds one row per consumer group. Today it only anchors
-- committed_offsets; group coordinator state can grow here later.
CREATE TABLE groups (
    name       TEXT COLLATE "C" NOT NULL PRIMARY KEY CHECK (name <> ''),
    created_at BIGINT NOT NULL
);

-- Offsets are keyed by topic NAME, as Kafka's OffsetCommit is; DeleteTopic
-- removes them explicitly so a re-created topic starts clean.
CREATE TABLE committed_offsets (
    group_name       TEXT COLLATE "C" NOT NULL REFERENCES groups (name) ON DELETE CASCADE,
    topic            TEXT COLLATE "C" NOT NULL CHECK (topic <> ''),
    partition        INTEGER NOT NULL CHECK (partition >= 0),
    committed_offset BIGINT  NOT NULL,
    leader_epoch     INTEGER NOT NULL,
    metadata         TEXT    NOT NULL,
    commit_time      BIGINT  NOT NULL,
    PRIMARY KEY (group_name, topic, partition)
);

-- DeleteTopic finds a topic's offsets by name across all groups.
CREATE INDEX committed_offsets_topic ON committed_offsets (topic);

-- Producer IDs come from a single-row sequence so that plain idempotent
-- producers (one per client start) leave no row behind; only transactional
-- IDs, whose epoch must survive restarts, get a row in producer_ids. (A
-- PostgreSQL SEQUENCE would do, but is not transactional: a rolled-back
-- allocation would still consume a value. The row behaves as SQLite's.)
CREATE TABLE producer_id_sequence (
    singleton INTEGER NOT NULL PRIMARY KEY CHECK (singleton = 1),
    next_id   BIGINT  NOT NULL CHECK (next_id >= 1)
);
INSERT INTO producer_id_sequence (singleton, next_id) VALUES (1, 1);

CREATE TABLE producer_ids (
    id               BIGINT  NOT NULL PRIMARY KEY,
    epoch            INTEGER NOT NULL CHECK (epoch BETWEEN 0 AND 32767),
    transactional_id TEXT COLLATE "C" NOT NULL UNIQUE CHECK (transactional_id <> '')
);
