-- 0003_cluster: the cluster's identity.
--
-- One row: the cluster ID every front reports (Kafka's Metadata and
-- DescribeCluster, /metrics). The migration only creates the table; the
-- store generates the ID in Go (a random UUID in Kafka's base64url text
-- form) and inserts it if absent when it opens, so a database written
-- before this migration gets an ID at its first open under this binary.
-- The ID never changes once written.

CREATE TABLE cluster (
    singleton  INTEGER NOT NULL PRIMARY KEY CHECK (singleton = 1),
    id         TEXT    NOT NULL CHECK (id <> ''),
    created_at INTEGER NOT NULL                   -- unix milliseconds (UTC)
) STRICT;
