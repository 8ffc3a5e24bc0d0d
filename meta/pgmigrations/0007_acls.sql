-- 0007_acls: the authorizer's access control lists (PostgreSQL).
--
-- The twin of migrations/0007_acls.sql: same table, columns and
-- constraints. One row per ACL binding: a resource pattern (resource_type,
-- resource_name, pattern_type) and an access control entry (principal,
-- host, operation, permission), numbered with Kafka's wire codes. The
-- whole row is the key. Text columns use the "C" collation so rows sort
-- by bytes, as on SQLite.

CREATE TABLE acls (
    resource_type INTEGER NOT NULL CHECK (resource_type BETWEEN 2 AND 7),
    resource_name TEXT COLLATE "C" NOT NULL CHECK (resource_name <> ''),
    pattern_type  INTEGER NOT NULL CHECK (pattern_type IN (3, 4)),
    principal     TEXT COLLATE "C" NOT NULL CHECK (principal <> ''),
    host          TEXT COLLATE "C" NOT NULL CHECK (host <> ''),
    operation     INTEGER NOT NULL CHECK (operation BETWEEN 2 AND 15),
    permission    INTEGER NOT NULL CHECK (permission IN (2, 3)),
    PRIMARY KEY (resource_type, resource_name, pattern_type, principal, host, operation, permission)
);
