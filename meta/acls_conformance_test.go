package meta

import (
	"slices"
	"testing"
)

// This file holds the conformance cases for ACLs (acls.go);
// runConformance runs them against every backend.

// acl builds an ALLOW binding of principal for op on a topic pattern, any host.
func acl(name string, pt AclPatternType, principal string, op AclOperation) AclBinding {
	return AclBinding{ResourceType: AclTopic, ResourceName: name, PatternType: pt,
		Principal: principal, Host: AclWildcardHost, Operation: op, Permission: AclAllow}
}

// withAcl returns b changed by f.
func withAcl(b AclBinding, f func(*AclBinding)) AclBinding { f(&b); return b }

// sortedAcls returns a sorted copy of bs, never nil.
func sortedAcls(bs ...AclBinding) []AclBinding {
	out := append([]AclBinding{}, bs...)
	slices.SortFunc(out, compareAcls)
	return out
}

// aclFixture is the set of bindings the filter cases run against.
func aclFixture() []AclBinding {
	return []AclBinding{
		acl("orders", AclLiteral, "User:alice", AclOpRead),
		acl("orders", AclLiteral, "User:bob", AclOpWrite),
		acl("orders-eu", AclLiteral, "User:alice", AclOpRead),
		acl("ord", AclPrefixed, "User:carol", AclOpAll),
		acl("orders", AclPrefixed, "User:*", AclOpDescribe),
		acl("pay", AclPrefixed, "User:alice", AclOpRead),
		acl("*", AclLiteral, "User:admin", AclOpAll),
		withAcl(acl("orders", AclLiteral, "User:mallory", AclOpRead), func(b *AclBinding) {
			b.Permission, b.Host = AclDeny, "10.0.0.9"
		}),
		withAcl(acl("orders", AclLiteral, "User:alice", AclOpRead), func(b *AclBinding) { b.ResourceType = AclGroup }),
		{ResourceType: AclCluster, ResourceName: "kafka-cluster", PatternType: AclLiteral,
			Principal: "User:ops", Host: "*", Operation: AclOpClusterAction, Permission: AclAllow},
		{ResourceType: AclTransactionalID, ResourceName: "tx-", PatternType: AclPrefixed,
			Principal: "User:bob", Host: "*", Operation: AclOpWrite, Permission: AclAllow},
	}
}

// aclFilterCases are named filters with the indexes of aclFixture they match.
func aclFilterCases() []struct {
	name string
	f    AclFilter
	want []int
} {
	with := func(f func(*AclFilter)) AclFilter { g := AnyAclFilter(); f(&g); return g }
	return []struct {
		name string
		f    AclFilter
		want []int
	}{
		{"any", AnyAclFilter(), []int{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10}},
		{"topic", with(func(f *AclFilter) { f.ResourceType = AclTopic }), []int{0, 1, 2, 3, 4, 5, 6, 7}},
		{"any pattern named orders", with(func(f *AclFilter) { f.ResourceName = "orders" }), []int{0, 1, 4, 7, 8}},
		{"literal orders", with(func(f *AclFilter) {
			f.ResourceType, f.ResourceName, f.PatternType = AclTopic, "orders", AclLiteral
		}), []int{0, 1, 7}},
		{"prefixed orders", with(func(f *AclFilter) {
			f.ResourceType, f.ResourceName, f.PatternType = AclTopic, "orders", AclPrefixed
		}), []int{4}},
		{"match topic orders", with(func(f *AclFilter) {
			f.ResourceType, f.ResourceName, f.PatternType = AclTopic, "orders", AclPatternMatch
		}), []int{0, 1, 3, 4, 6, 7}},
		{"match topic orders-eu", with(func(f *AclFilter) {
			f.ResourceType, f.ResourceName, f.PatternType = AclTopic, "orders-eu", AclPatternMatch
		}), []int{2, 3, 4, 6}},
		{"match any type orders", with(func(f *AclFilter) {
			f.ResourceName, f.PatternType = "orders", AclPatternMatch
		}), []int{0, 1, 3, 4, 6, 7, 8}},
		{"match without name is any", with(func(f *AclFilter) {
			f.ResourceType, f.PatternType = AclTransactionalID, AclPatternMatch
		}), []int{10}},
		{"literal wildcard name matches only the wildcard", with(func(f *AclFilter) {
			f.ResourceName, f.PatternType = "*", AclLiteral
		}), []int{6}},
		{"prefixed only", with(func(f *AclFilter) { f.PatternType = AclPrefixed }), []int{3, 4, 5, 10}},
		{"principal", with(func(f *AclFilter) { f.Principal = "User:alice" }), []int{0, 2, 5, 8}},
		{"wildcard principal is literal in filters", with(func(f *AclFilter) { f.Principal = "User:*" }), []int{4}},
		{"host", with(func(f *AclFilter) { f.Host = "10.0.0.9" }), []int{7}},
		{"operation", with(func(f *AclFilter) { f.Operation = AclOpAll }), []int{3, 6}},
		{"deny", with(func(f *AclFilter) { f.Permission = AclDeny }), []int{7}},
		{"nothing", with(func(f *AclFilter) { f.ResourceName = "nope" }), []int{}},
	}
}

func pick(bs []AclBinding, idx []int) []AclBinding {
	out := make([]AclBinding, 0, len(idx))
	for _, i := range idx {
		out = append(out, bs[i])
	}
	return sortedAcls(out...)
}

func testAcls(t *testing.T, open func(t *testing.T) Store) {
	ctx := t.Context()
	s := open(t)
	list, err := s.ListAcls(ctx, AnyAclFilter())
	wantErr(t, err, nil)
	if list == nil || len(list) != 0 {
		t.Fatalf("ListAcls on an empty store = %#v, want an empty non-nil slice", list)
	}

	fix := aclFixture()
	wantErr(t, s.CreateAcls(ctx, fix), nil)
	// Idempotent: the same bindings again, and one twice in a batch.
	wantErr(t, s.CreateAcls(ctx, append(fix[:2:2], fix[0], fix[5])), nil)
	wantErr(t, s.CreateAcls(ctx, nil), nil)
	list, err = s.ListAcls(ctx, AnyAclFilter())
	wantErr(t, err, nil)
	wantEqual(t, "all acls", list, sortedAcls(fix...))

	for _, c := range aclFilterCases() {
		t.Run("List/"+c.name, func(t *testing.T) {
			got, err := s.ListAcls(ctx, c.f)
			wantErr(t, err, nil)
			wantEqual(t, c.name, got, pick(fix, c.want))
		})
	}

	t.Run("Invalid", func(t *testing.T) {
		for _, c := range []struct {
			name string
			mod  func(*AclBinding)
		}{
			{"unknown resource type", func(b *AclBinding) { b.ResourceType = 0 }},
			{"any resource type", func(b *AclBinding) { b.ResourceType = AclResourceAny }},
			{"resource type 8", func(b *AclBinding) { b.ResourceType = 8 }},
			{"empty name", func(b *AclBinding) { b.ResourceName = "" }},
			{"match pattern", func(b *AclBinding) { b.PatternType = AclPatternMatch }},
			{"any pattern", func(b *AclBinding) { b.PatternType = AclPatternAny }},
			{"principal without type", func(b *AclBinding) { b.Principal = "alice" }},
			{"empty host", func(b *AclBinding) { b.Host = "" }},
			{"any operation", func(b *AclBinding) { b.Operation = AclOpAny }},
			{"operation 16", func(b *AclBinding) { b.Operation = 16 }},
			{"any permission", func(b *AclBinding) { b.Permission = AclPermissionAny }},
			{"unknown permission", func(b *AclBinding) { b.Permission = 0 }},
		} {
			t.Run(c.name, func(t *testing.T) {
				good := acl("fresh", AclLiteral, "User:zed", AclOpRead)
				bad := withAcl(good, c.mod)
				wantErr(t, s.CreateAcls(ctx, []AclBinding{good, bad}), ErrInvalid)
				got, err := s.ListAcls(ctx, withFilter(func(f *AclFilter) { f.Principal = "User:zed" }))
				wantErr(t, err, nil)
				if len(got) != 0 {
					t.Fatalf("a batch with an invalid binding stored %v", got)
				}
			})
		}
		for _, f := range []AclFilter{{}, withFilter(func(f *AclFilter) { f.PatternType = 5 }),
			withFilter(func(f *AclFilter) { f.Operation = 0 }), withFilter(func(f *AclFilter) { f.Permission = 4 }),
			withFilter(func(f *AclFilter) { f.ResourceType = 9 })} {
			_, err := s.ListAcls(ctx, f)
			wantErr(t, err, ErrInvalid)
			_, err = s.DeleteAcls(ctx, []AclFilter{AnyAclFilter(), f})
			wantErr(t, err, ErrInvalid)
		}
		got, err := s.ListAcls(ctx, AnyAclFilter())
		wantErr(t, err, nil)
		wantEqual(t, "after invalid calls", got, sortedAcls(fix...))
	})

	t.Run("Delete", func(t *testing.T) {
		cases := aclFilterCases()
		byName := func(name string) (AclFilter, []int) {
			for _, c := range cases {
				if c.name == name {
					return c.f, c.want
				}
			}
			t.Fatalf("no filter case %q", name)
			return AclFilter{}, nil
		}
		match, matchWant := byName("match topic orders")
		alice, aliceWant := byName("principal")
		none, _ := byName("nothing")
		got, err := s.DeleteAcls(ctx, []AclFilter{match, alice, none})
		wantErr(t, err, nil)
		wantEqual(t, "deleted per filter", got,
			[][]AclBinding{pick(fix, matchWant), pick(fix, aliceWant), {}})
		gone := map[int]bool{}
		for _, i := range append(matchWant, aliceWant...) {
			gone[i] = true
		}
		var left []AclBinding
		for i, b := range fix {
			if !gone[i] {
				left = append(left, b)
			}
		}
		list, err := s.ListAcls(ctx, AnyAclFilter())
		wantErr(t, err, nil)
		wantEqual(t, "left after delete", list, sortedAcls(left...))

		// Deleting again finds nothing; an exact filter deletes one binding.
		got, err = s.DeleteAcls(ctx, []AclFilter{match})
		wantErr(t, err, nil)
		wantEqual(t, "deleted again", got, [][]AclBinding{{}})
		got, err = s.DeleteAcls(ctx, []AclFilter{fix[9].Filter()})
		wantErr(t, err, nil)
		wantEqual(t, "exact delete", got, [][]AclBinding{{fix[9]}})
		got, err = s.DeleteAcls(ctx, nil)
		wantErr(t, err, nil)
		if len(got) != 0 {
			t.Fatalf("DeleteAcls(nil) = %v", got)
		}
	})
}

// withFilter returns AnyAclFilter changed by f.
func withFilter(f func(*AclFilter)) AclFilter { g := AnyAclFilter(); f(&g); return g }

// TestAclFilterMatches checks the filter semantics without a backend.
func TestAclFilterMatches(t *testing.T) {
	fix := aclFixture()
	for _, c := range aclFilterCases() {
		t.Run(c.name, func(t *testing.T) {
			var got []AclBinding
			for _, b := range fix {
				if c.f.Matches(b) {
					got = append(got, b)
				}
			}
			wantEqual(t, c.name, sortedAcls(got...), pick(fix, c.want))
		})
	}
}

func TestAclNames(t *testing.T) {
	for _, c := range []struct{ got, want string }{
		{AclTransactionalID.String(), "TRANSACTIONAL_ID"},
		{AclResourceType(0).String(), "AclResourceType(0)"},
		{AclPrefixed.String(), "PREFIXED"},
		{AclOpDescribeConfigs.String(), "DESCRIBE_CONFIGS"},
		{AclOpTwoPhaseCommit.String(), "TWO_PHASE_COMMIT"},
		{AclOperation(16).String(), "AclOperation(16)"},
		{AclDeny.String(), "DENY"},
		{AclPermission(-1).String(), "AclPermission(-1)"},
		{aclFixture()[7].String(), "TOPIC:LITERAL:orders User:mallory@10.0.0.9 READ DENY"},
	} {
		if c.got != c.want {
			t.Errorf("got %q, want %q", c.got, c.want)
		}
	}
}
