-- 0007_acls: the authorizer's access control lists, as Kafka models them.
--
-- One row per ACL binding: a resource pattern (resource_type,
-- resource_name, pattern_type) and an access control entry (principal,
-- host, operation, permission). The numbers are Kafka's wire codes
-- (meta.AclResourceType: 2 TOPIC .. 7 USER; meta.AclPatternType: 3
-- LITERAL, 4 PREFIXED; meta.AclOperation: 2 ALL .. 15 TWO_PHASE_COMMIT;
-- meta.AclPermission: 2 DENY, 3 ALLOW); the filter-only codes (UNKNOWN,
-- ANY, MATCH) are never stored. The whole row is the key: a binding is
-- there or not, and creating it again changes nothing.

CREATE TABLE acls (
    resource_type INTEGER NOT NULL CHECK (resource_type BETWEEN 2 AND 7),
    resource_name TEXT    NOT NULL CHECK (resource_name <> ''),
    pattern_type  INTEGER NOT NULL CHECK (pattern_type IN (3, 4)),
    principal     TEXT    NOT NULL CHECK (principal <> ''),
    host          TEXT    NOT NULL CHECK (host <> ''),
    operation     INTEGER NOT NULL CHECK (operation BETWEEN 2 AND 15),
    permission    INTEGER NOT NULL CHECK (permission IN (2, 3)),
    PRIMARY KEY (resource_type, resource_name, pattern_type, principal, host, operation, permission)
) STRICT, WITHOUT ROWID;
