-- 0005_scram_credentials: users' SASL/SCRAM credentials (PostgreSQL).
--
-- The twin of migrations/0005_scram_credentials.sql: same table, columns
-- and constraints. One row per user and mechanism (meta.ScramMechanism:
-- 1 SCRAM-SHA-256, 2 SCRAM-SHA-512, Kafka's numbers). A user exists while
-- it has at least one row. The password is never stored: only the salt,
-- the iteration count and the two keys derived from the salted password,
-- StoredKey = H(HMAC(SaltedPassword, "Client Key")) and ServerKey =
-- HMAC(SaltedPassword, "Server Key").

CREATE TABLE scram_credentials (
    user_name  TEXT COLLATE "C" NOT NULL CHECK (user_name <> ''),
    mechanism  INTEGER NOT NULL CHECK (mechanism IN (1, 2)),
    salt       BYTEA   NOT NULL CHECK (length(salt) > 0),
    iterations INTEGER NOT NULL CHECK (iterations > 0),
    stored_key BYTEA   NOT NULL,
    server_key BYTEA   NOT NULL,
    updated_at BIGINT  NOT NULL,
    PRIMARY KEY (user_name, mechanism)
);
