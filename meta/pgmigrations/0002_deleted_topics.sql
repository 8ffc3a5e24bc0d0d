-- 0002_deleted_topics: remember deleted topics until their leftovers are gone.
--
-- The twin of migrations/0002_deleted_topics.sql. DeleteTopic removes a
-- topic's rows and inserts one row here in the same transaction; the
-- broker then removes the topic's local files and objects (both found by
-- topic ID) and calls ForgetDeletedTopic. A crash in between leaves the
-- row, so the next start can finish the job. There is no foreign key to
-- topics: the topic row is gone, and a new topic may take the same name
-- (never the same ID) while the old one is listed here.

CREATE TABLE deleted_topics (
    id              TEXT COLLATE "C" NOT NULL PRIMARY KEY, -- the deleted topic's UUID
    name            TEXT COLLATE "C" NOT NULL,
    partition_count INTEGER NOT NULL CHECK (partition_count >= 1),
    deleted_at      BIGINT  NOT NULL                       -- unix milliseconds (UTC)
);
