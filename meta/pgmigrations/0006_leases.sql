-- 0006_leases: the broker registry and leases of cluster mode (PostgreSQL).
--
-- The twin of migrations/0006_leases.sql: same tables, columns and
-- constraints.
--
-- brokers: one row per broker ID ever registered. epoch counts the
-- registrations of that ID (the broker's incarnation): RegisterBroker
-- bumps it, so a restarted broker is told apart from the one it replaced,
-- whose heartbeats then fail. A row is never deleted (UnregisterBroker
-- only ends its deadline), so an epoch is never handed out twice.
-- expires_at is the registration's liveness deadline, by the store's
-- lease clock (the database server's clock); the broker is live while it
-- is in the future.
--
-- leases: one row per leased thing, named by (kind, lease_key): a
-- partition ("partition", "<topic id>/<partition>") or a coordinator shard
-- ("coordinator", "group/<n>", "txn/<n>"). holder is the broker ID
-- holding it, -1 once released; epoch grows by one at every acquisition
-- and is never reused (a row is never deleted), so for a partition it is
-- Kafka's leader epoch. expires_at is when the holder's lease ends unless
-- renewed, by the store's lease clock.

CREATE TABLE brokers (
    broker_id     INTEGER NOT NULL PRIMARY KEY CHECK (broker_id >= 0),
    epoch         BIGINT  NOT NULL CHECK (epoch >= 1),
    host          TEXT    NOT NULL,
    port          INTEGER NOT NULL CHECK (port BETWEEN 0 AND 65535),
    rack          TEXT    NOT NULL,
    grpc_addr     TEXT    NOT NULL,
    registered_at BIGINT  NOT NULL,                -- unix milliseconds
    expires_at    BIGINT  NOT NULL                 -- unix milliseconds
);

CREATE TABLE leases (
    kind        TEXT COLLATE "C" NOT NULL CHECK (kind <> ''),
    lease_key   TEXT COLLATE "C" NOT NULL CHECK (lease_key <> ''),
    holder      INTEGER NOT NULL CHECK (holder >= -1),   -- broker ID; -1: released
    epoch       INTEGER NOT NULL CHECK (epoch >= 1),
    acquired_at BIGINT  NOT NULL,                         -- unix milliseconds
    expires_at  BIGINT  NOT NULL,                         -- unix milliseconds
    PRIMARY KEY (kind, lease_key)
);
