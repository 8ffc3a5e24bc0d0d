-- 0005_scram_credentials: users' SASL/SCRAM credentials (RFC 5802).
--
-- One row per user and mechanism (meta.ScramMechanism: 1 SCRAM-SHA-256,
-- 2 SCRAM-SHA-512, Kafka's numbers). A user exists while it has at least
-- one row. The password is never stored: only the salt, the iteration
-- count and the two keys derived from the salted password, StoredKey =
-- H(HMAC(SaltedPassword, "Client Key")) and ServerKey =
-- HMAC(SaltedPassword, "Server Key"), which let the broker check a proof
-- (SCRAM) or a password (PLAIN) but not recover the password.

CREATE TABLE scram_credentials (
    user_name  TEXT    NOT NULL CHECK (user_name <> ''),
    mechanism  INTEGER NOT NULL CHECK (mechanism IN (1, 2)),
    salt       BLOB    NOT NULL CHECK (length(salt) > 0),
    iterations INTEGER NOT NULL CHECK (iterations > 0),
    stored_key BLOB    NOT NULL,
    server_key BLOB    NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (user_name, mechanism)
) STRICT, WITHOUT ROWID;
