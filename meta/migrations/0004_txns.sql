-- 0004_txns: the transaction coordinator's durable state.
--
-- One txns row per transactional ID: its producer identity, the state of
-- its current transaction (meta.TxnState: 0 Empty .. 7 PrepareEpochFence)
-- and when that transaction began. txn_partitions and txn_groups are the
-- partitions and consumer groups the current transaction touched
-- (AddPartitionsToTxn, AddOffsetsToTxn); txn_offsets the offsets it
-- committed (TxnOffsetCommit), pending until the transaction ends: on
-- commit they are copied into committed_offsets, either way deleted, in
-- the same database transaction that records the new state.
--
-- Deleting a txns row cascades to its partitions, groups and pending
-- offsets. A pending offset also references its group, like a committed
-- one, so deleting the group drops it; DeleteTopic deletes a topic's
-- pending offsets by name, as it does its committed ones.

CREATE TABLE txns (
    transactional_id    TEXT    NOT NULL PRIMARY KEY CHECK (transactional_id <> ''),
    producer_id         INTEGER NOT NULL CHECK (producer_id >= 0),
    producer_epoch      INTEGER NOT NULL,
    last_producer_id    INTEGER NOT NULL CHECK (last_producer_id >= -1), -- -1: none
    last_producer_epoch INTEGER NOT NULL,                                -- -1: none
    state               INTEGER NOT NULL CHECK (state BETWEEN 0 AND 7),
    timeout_ms          INTEGER NOT NULL CHECK (timeout_ms >= 0),
    txn_version         INTEGER NOT NULL,
    started_at          INTEGER,          -- NULL when no transaction is running
    updated_at          INTEGER NOT NULL
) STRICT;

CREATE TABLE txn_partitions (
    transactional_id TEXT    NOT NULL REFERENCES txns (transactional_id) ON DELETE CASCADE,
    topic            TEXT    NOT NULL CHECK (topic <> ''),
    partition        INTEGER NOT NULL CHECK (partition >= 0),
    PRIMARY KEY (transactional_id, topic, partition)
) STRICT, WITHOUT ROWID;

CREATE TABLE txn_groups (
    transactional_id TEXT NOT NULL REFERENCES txns (transactional_id) ON DELETE CASCADE,
    group_name       TEXT NOT NULL CHECK (group_name <> ''),
    PRIMARY KEY (transactional_id, group_name)
) STRICT, WITHOUT ROWID;

CREATE TABLE txn_offsets (
    transactional_id TEXT    NOT NULL REFERENCES txns (transactional_id) ON DELETE CASCADE,
    group_name       TEXT    NOT NULL REFERENCES groups (name) ON DELETE CASCADE,
    topic            TEXT    NOT NULL CHECK (topic <> ''),
    partition        INTEGER NOT NULL CHECK (partition >= 0),
    committed_offset INTEGER NOT NULL,
    leader_epoch     INTEGER NOT NULL,
    metadata         TEXT    NOT NULL,
    producer_id      INTEGER NOT NULL,
    producer_epoch   INTEGER NOT NULL,
    committed_at     INTEGER NOT NULL,
    PRIMARY KEY (transactional_id, group_name, topic, partition)
) STRICT, WITHOUT ROWID;

-- PendingTxnOffsets reads a group's pending offsets in this order, and
-- deleting a group finds them here.
CREATE INDEX txn_offsets_group ON txn_offsets (group_name, topic, partition, transactional_id);
-- DeleteTopic finds a topic's pending offsets by name across all groups.
CREATE INDEX txn_offsets_topic ON txn_offsets (topic);
