-- 0003_cluster: the cluster's identity.
--
-- The twin of migrations/0003_cluster.sql. One row: the cluster ID every
-- front of every broker sharing this database reports (Kafka's Metadata
-- and DescribeCluster, /metrics). The migration only creates the table;
-- the store generates the ID in Go and inserts it if absent when it opens
-- (INSERT ... ON CONFLICT DO NOTHING, then read), so brokers opening the
-- database at once all end with the row the first one wrote. The ID never
-- changes once written.

CREATE TABLE cluster (
    singleton  INTEGER NOT NULL PRIMARY KEY CHECK (singleton = 1),
    id         TEXT COLLATE "C" NOT NULL CHECK (id <> ''),
    created_at BIGINT  NOT NULL                   -- unix milliseconds (UTC)
);
