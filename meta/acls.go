package meta

import (
	"cmp"
	"context"
	"fmt"
	"strconv"
	"strings"
)

// This file holds the authorizer's access control lists (the table of
// migration 0007), modelled as Kafka models them: an AclBinding is a
// resource pattern (type, name, literal or prefixed) and an access control
// entry (principal, host, operation, allow or deny). AclFilter selects
// bindings with Kafka's filter semantics (AclBindingFilter). The types use
// Kafka's wire codes, so the Kafka handlers convert nothing. The query code
// is shared by both backends; filters are applied in Go, the same on both.

// AclResourceType is the type of resource an ACL applies to, numbered as
// Kafka numbers it (ResourceType). Never change the numbers: they are in
// the acls table.
type AclResourceType int8

// The resource types. AclResourceAny is for filters only.
const (
	AclResourceAny     AclResourceType = 1
	AclTopic           AclResourceType = 2
	AclGroup           AclResourceType = 3
	AclCluster         AclResourceType = 4
	AclTransactionalID AclResourceType = 5
	AclDelegationToken AclResourceType = 6
	AclUser            AclResourceType = 7
)

// AclPatternType says how an ACL's resource name matches resources,
// numbered as Kafka numbers it (PatternType). Never change the numbers.
type AclPatternType int8

// The pattern types. AclPatternAny and AclPatternMatch are for filters only.
const (
	// AclPatternAny in a filter matches bindings of any pattern type whose
	// name equals the filter's.
	AclPatternAny AclPatternType = 1
	// AclPatternMatch in a filter matches the bindings that would apply to
	// a resource of the filter's name: a literal one of that name, the
	// wildcard literal "*", and every prefixed one that is a prefix of it.
	AclPatternMatch AclPatternType = 2
	// AclLiteral names one resource, or every resource with the name "*".
	AclLiteral AclPatternType = 3
	// AclPrefixed names every resource whose name starts with it.
	AclPrefixed AclPatternType = 4
)

// AclOperation is an operation an ACL allows or denies, numbered as Kafka
// numbers it (AclOperation). Never change the numbers.
type AclOperation int8

// The operations. AclOpAny is for filters only.
const (
	AclOpAny             AclOperation = 1
	AclOpAll             AclOperation = 2
	AclOpRead            AclOperation = 3
	AclOpWrite           AclOperation = 4
	AclOpCreate          AclOperation = 5
	AclOpDelete          AclOperation = 6
	AclOpAlter           AclOperation = 7
	AclOpDescribe        AclOperation = 8
	AclOpClusterAction   AclOperation = 9
	AclOpDescribeConfigs AclOperation = 10
	AclOpAlterConfigs    AclOperation = 11
	AclOpIdempotentWrite AclOperation = 12
	AclOpCreateTokens    AclOperation = 13
	AclOpDescribeTokens  AclOperation = 14
	AclOpTwoPhaseCommit  AclOperation = 15
)

// AclPermission is whether an ACL allows or denies, numbered as Kafka
// numbers it (AclPermissionType). Never change the numbers.
type AclPermission int8

// The permissions. AclPermissionAny is for filters only.
const (
	AclPermissionAny AclPermission = 1
	AclDeny          AclPermission = 2
	AclAllow         AclPermission = 3
)

// Wildcards of ACL bindings, as Kafka spells them.
const (
	// AclWildcardResource as the name of a literal binding matches every
	// resource of its type.
	AclWildcardResource = "*"
	// AclWildcardPrincipal as a binding's principal matches every principal.
	AclWildcardPrincipal = "User:*"
	// AclWildcardHost as a binding's host matches every host.
	AclWildcardHost = "*"
)

// Kafka's names, indexed by code; "" marks a code that is not one.
var (
	aclResourceNames = [...]string{"", "ANY", "TOPIC", "GROUP", "CLUSTER", "TRANSACTIONAL_ID", "DELEGATION_TOKEN", "USER"}
	aclPatternNames  = [...]string{"", "ANY", "MATCH", "LITERAL", "PREFIXED"}
	aclOpNames       = [...]string{"", "ANY", "ALL", "READ", "WRITE", "CREATE", "DELETE", "ALTER", "DESCRIBE",
		"CLUSTER_ACTION", "DESCRIBE_CONFIGS", "ALTER_CONFIGS", "IDEMPOTENT_WRITE", "CREATE_TOKENS",
		"DESCRIBE_TOKENS", "TWO_PHASE_COMMIT"}
	aclPermissionNames = [...]string{"", "ANY", "DENY", "ALLOW"}
)

// aclName returns names[code], or what(N) for a code outside it.
func aclName(names []string, what string, code int8) string {
	if code >= 0 && int(code) < len(names) && names[code] != "" {
		return names[code]
	}
	return what + "(" + strconv.Itoa(int(code)) + ")"
}

// String returns Kafka's name, e.g. "TOPIC"; an unknown code prints as "AclResourceType(N)".
func (t AclResourceType) String() string {
	return aclName(aclResourceNames[:], "AclResourceType", int8(t))
}

// String returns Kafka's name, e.g. "PREFIXED"; an unknown code prints as "AclPatternType(N)".
func (p AclPatternType) String() string {
	return aclName(aclPatternNames[:], "AclPatternType", int8(p))
}

// String returns Kafka's name, e.g. "DESCRIBE_CONFIGS"; an unknown code prints as "AclOperation(N)".
func (o AclOperation) String() string { return aclName(aclOpNames[:], "AclOperation", int8(o)) }

// String returns Kafka's name, "ALLOW" or "DENY" (or "ANY"); an unknown code prints as "AclPermission(N)".
func (p AclPermission) String() string {
	return aclName(aclPermissionNames[:], "AclPermission", int8(p))
}

// Valid reports whether t is a concrete resource type (not ANY).
func (t AclResourceType) Valid() bool { return t >= AclTopic && t <= AclUser }

// Valid reports whether o is a concrete operation (not ANY).
func (o AclOperation) Valid() bool { return o >= AclOpAll && o <= AclOpTwoPhaseCommit }

// AclBinding is one ACL: a resource pattern and an access control entry.
type AclBinding struct {
	ResourceType AclResourceType
	ResourceName string // AclWildcardResource with AclLiteral: every resource of the type
	PatternType  AclPatternType
	Principal    string // "Type:name", e.g. "User:alice"; AclWildcardPrincipal for all
	Host         string // the client's address, or AclWildcardHost for all
	Operation    AclOperation
	Permission   AclPermission
}

// String renders b for messages, e.g.
// "TOPIC:LITERAL:orders User:alice@* READ ALLOW".
func (b AclBinding) String() string {
	return b.ResourceType.String() + ":" + b.PatternType.String() + ":" + b.ResourceName + " " +
		b.Principal + "@" + b.Host + " " + b.Operation.String() + " " + b.Permission.String()
}

// Validate reports, wrapping ErrInvalid, why b cannot be stored: a resource
// type, pattern type, operation or permission that is a filter value (ANY,
// MATCH) or unknown; an empty resource name or host; a principal without
// the colon of "Type:name". Kafka's handlers may call it to answer each
// binding of a CreateAcls request on its own.
func (b AclBinding) Validate() error {
	switch {
	case !b.ResourceType.Valid():
		return fmt.Errorf("%w: acl resource type %v", ErrInvalid, b.ResourceType)
	case b.PatternType != AclLiteral && b.PatternType != AclPrefixed:
		return fmt.Errorf("%w: acl pattern type %v", ErrInvalid, b.PatternType)
	case b.ResourceName == "":
		return fmt.Errorf("%w: empty acl resource name", ErrInvalid)
	case !strings.Contains(b.Principal, ":"):
		return fmt.Errorf("%w: acl principal %q is not Type:name", ErrInvalid, b.Principal)
	case b.Host == "":
		return fmt.Errorf("%w: empty acl host", ErrInvalid)
	case !b.Operation.Valid():
		return fmt.Errorf("%w: acl operation %v", ErrInvalid, b.Operation)
	case b.Permission != AclAllow && b.Permission != AclDeny:
		return fmt.Errorf("%w: acl permission %v", ErrInvalid, b.Permission)
	}
	return nil
}

// AclFilter selects ACL bindings as Kafka's AclBindingFilter does. The
// empty string in ResourceName, Principal or Host matches anything (Kafka's
// null); the ANY codes match any value; PatternType is described at
// AclPatternAny and AclPatternMatch, and any other value matches only
// bindings of that pattern type and (if set) name. The zero AclFilter is
// invalid (Kafka's code 0 is UNKNOWN): start from AnyAclFilter.
type AclFilter struct {
	ResourceType AclResourceType
	ResourceName string
	PatternType  AclPatternType
	Principal    string
	Host         string
	Operation    AclOperation
	Permission   AclPermission
}

// AnyAclFilter returns the filter that matches every binding.
func AnyAclFilter() AclFilter {
	return AclFilter{ResourceType: AclResourceAny, PatternType: AclPatternAny,
		Operation: AclOpAny, Permission: AclPermissionAny}
}

// Filter returns the filter that matches exactly b.
func (b AclBinding) Filter() AclFilter { return AclFilter(b) }

// Validate reports, wrapping ErrInvalid, a field of f that is no known
// code (Kafka's UNKNOWN, or beyond the codes).
func (f AclFilter) Validate() error {
	switch {
	case f.ResourceType != AclResourceAny && !f.ResourceType.Valid():
		return fmt.Errorf("%w: acl filter resource type %v", ErrInvalid, f.ResourceType)
	case f.PatternType < AclPatternAny || f.PatternType > AclPrefixed:
		return fmt.Errorf("%w: acl filter pattern type %v", ErrInvalid, f.PatternType)
	case f.Operation != AclOpAny && !f.Operation.Valid():
		return fmt.Errorf("%w: acl filter operation %v", ErrInvalid, f.Operation)
	case f.Permission != AclPermissionAny && f.Permission != AclAllow && f.Permission != AclDeny:
		return fmt.Errorf("%w: acl filter permission %v", ErrInvalid, f.Permission)
	}
	return nil
}

// Matches reports whether f selects b (Kafka's AclBindingFilter.matches).
func (f AclFilter) Matches(b AclBinding) bool {
	return f.matchesPattern(b) &&
		(f.Principal == "" || f.Principal == b.Principal) &&
		(f.Host == "" || f.Host == b.Host) &&
		(f.Operation == AclOpAny || f.Operation == b.Operation) &&
		(f.Permission == AclPermissionAny || f.Permission == b.Permission)
}

// matchesPattern is Kafka's ResourcePatternFilter.matches.
func (f AclFilter) matchesPattern(b AclBinding) bool {
	if f.ResourceType != AclResourceAny && f.ResourceType != b.ResourceType {
		return false
	}
	if f.PatternType != AclPatternAny && f.PatternType != AclPatternMatch && f.PatternType != b.PatternType {
		return false
	}
	if f.ResourceName == "" {
		return true
	}
	if f.PatternType != AclPatternMatch {
		return f.ResourceName == b.ResourceName
	}
	switch b.PatternType {
	case AclLiteral:
		return f.ResourceName == b.ResourceName || b.ResourceName == AclWildcardResource
	case AclPrefixed:
		return strings.HasPrefix(f.ResourceName, b.ResourceName)
	}
	return false
}

// compareAcls orders bindings as ListAcls returns them: by resource type,
// name, pattern type, principal, host, operation, then permission.
func compareAcls(a, b AclBinding) int {
	return cmp.Or(
		cmp.Compare(a.ResourceType, b.ResourceType),
		strings.Compare(a.ResourceName, b.ResourceName),
		cmp.Compare(a.PatternType, b.PatternType),
		strings.Compare(a.Principal, b.Principal),
		strings.Compare(a.Host, b.Host),
		cmp.Compare(a.Operation, b.Operation),
		cmp.Compare(a.Permission, b.Permission),
	)
}

// CreateAcls implements Store.
func (s *SQLite) CreateAcls(ctx context.Context, acls []AclBinding) error {
	return createAcls(ctx, s, acls)
}

// CreateAcls implements Store.
func (s *Postgres) CreateAcls(ctx context.Context, acls []AclBinding) error {
	return createAcls(ctx, s, acls)
}

// createAcls is CreateAcls for either backend.
func createAcls(ctx context.Context, r txRunner, acls []AclBinding) error {
	for _, b := range acls {
		if err := b.Validate(); err != nil {
			return fmt.Errorf("meta: create acl %v: %w", b, err)
		}
	}
	if len(acls) == 0 {
		return nil
	}
	err := r.write(ctx, func(q db) error {
		for _, b := range acls {
			if _, err := q.exec(ctx, `INSERT INTO acls
					(resource_type, resource_name, pattern_type, principal, host, operation, permission)
				VALUES (?, ?, ?, ?, ?, ?, ?)
				ON CONFLICT DO NOTHING`,
				int64(b.ResourceType), b.ResourceName, int64(b.PatternType), b.Principal, b.Host,
				int64(b.Operation), int64(b.Permission)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("meta: create %d acls: %w", len(acls), err)
	}
	return nil
}

// ListAcls implements Store. The result is never nil.
func (s *SQLite) ListAcls(ctx context.Context, f AclFilter) ([]AclBinding, error) {
	return listAcls(ctx, s, f)
}

// ListAcls implements Store. The result is never nil.
func (s *Postgres) ListAcls(ctx context.Context, f AclFilter) ([]AclBinding, error) {
	return listAcls(ctx, s, f)
}

// listAcls is ListAcls for either backend.
func listAcls(ctx context.Context, r txRunner, f AclFilter) ([]AclBinding, error) {
	if err := f.Validate(); err != nil {
		return nil, fmt.Errorf("meta: list acls: %w", err)
	}
	var out []AclBinding
	err := r.read(ctx, func(q db) error {
		all, err := queryAcls(ctx, q, f.ResourceType)
		out = all[:0]
		for _, b := range all {
			if f.Matches(b) {
				out = append(out, b)
			}
		}
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("meta: list acls: %w", err)
	}
	return out, nil
}

// queryAcls returns the stored bindings of resource type t (every type
// for AclResourceAny), sorted as compareAcls sorts; never nil.
func queryAcls(ctx context.Context, q db, t AclResourceType) ([]AclBinding, error) {
	where, args := ``, []any(nil)
	if t != AclResourceAny {
		where, args = `WHERE resource_type = ?`, []any{int64(t)}
	}
	out := []AclBinding{}
	err := scanEach(ctx, q, `SELECT resource_type, resource_name, pattern_type, principal, host, operation, permission
		FROM acls `+where+`
		ORDER BY resource_type, resource_name, pattern_type, principal, host, operation, permission`,
		args, func(sc dbRow) error {
			var (
				b                      AclBinding
				rt, pt, op, permission int64
			)
			if err := sc.Scan(&rt, &b.ResourceName, &pt, &b.Principal, &b.Host, &op, &permission); err != nil {
				return err
			}
			b.ResourceType, b.PatternType = AclResourceType(rt), AclPatternType(pt)
			b.Operation, b.Permission = AclOperation(op), AclPermission(permission)
			out = append(out, b)
			return nil
		})
	return out, err
}

// DeleteAcls implements Store.
func (s *SQLite) DeleteAcls(ctx context.Context, filters []AclFilter) ([][]AclBinding, error) {
	return deleteAcls(ctx, s, filters)
}

// DeleteAcls implements Store.
func (s *Postgres) DeleteAcls(ctx context.Context, filters []AclFilter) ([][]AclBinding, error) {
	return deleteAcls(ctx, s, filters)
}

// deleteAcls is DeleteAcls for either backend: it reads every binding,
// matches the filters in Go (so MATCH means the same on both backends)
// and deletes the union, in one transaction.
func deleteAcls(ctx context.Context, r txRunner, filters []AclFilter) ([][]AclBinding, error) {
	for _, f := range filters {
		if err := f.Validate(); err != nil {
			return nil, fmt.Errorf("meta: delete acls: %w", err)
		}
	}
	var out [][]AclBinding
	err := r.write(ctx, func(q db) error {
		out = make([][]AclBinding, len(filters))
		all, err := queryAcls(ctx, q, AclResourceAny)
		if err != nil {
			return err
		}
		for _, b := range all {
			hit := false
			for i, f := range filters {
				if f.Matches(b) {
					out[i] = append(out[i], b)
					hit = true
				}
			}
			if !hit {
				continue
			}
			if _, err := q.exec(ctx, `DELETE FROM acls WHERE resource_type = ? AND resource_name = ?
					AND pattern_type = ? AND principal = ? AND host = ? AND operation = ? AND permission = ?`,
				int64(b.ResourceType), b.ResourceName, int64(b.PatternType), b.Principal, b.Host,
				int64(b.Operation), int64(b.Permission)); err != nil {
				return err
			}
		}
		for i := range out {
			if out[i] == nil {
				out[i] = []AclBinding{}
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("meta: delete acls: %w", err)
	}
	return out, nil
}
