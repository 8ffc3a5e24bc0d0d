package auth

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/streamhouse/streamhouse/internal/clock"
	"github.com/streamhouse/streamhouse/meta"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// memStore is an in-memory Store with meta's filter semantics.
type memStore struct {
	// mu guards acls and fail.
	mu   sync.Mutex
	acls []meta.AclBinding
	fail error // returned by ListAcls when set
}

func (s *memStore) CreateAcls(_ context.Context, acls []meta.AclBinding) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, b := range acls {
		if err := b.Validate(); err != nil {
			return err
		}
	}
next:
	for _, b := range acls {
		for _, have := range s.acls {
			if have == b {
				continue next
			}
		}
		s.acls = append(s.acls, b)
	}
	return nil
}

func (s *memStore) ListAcls(_ context.Context, f meta.AclFilter) ([]meta.AclBinding, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fail != nil {
		return nil, s.fail
	}
	out := []meta.AclBinding{}
	for _, b := range s.acls {
		if f.Matches(b) {
			out = append(out, b)
		}
	}
	return out, nil
}

func (s *memStore) DeleteAcls(_ context.Context, filters []meta.AclFilter) ([][]meta.AclBinding, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([][]meta.AclBinding, len(filters))
	keep := s.acls[:0]
	for _, b := range s.acls {
		hit := false
		for i, f := range filters {
			if f.Matches(b) {
				out[i], hit = append(out[i], b), true
			}
		}
		if !hit {
			keep = append(keep, b)
		}
	}
	s.acls = keep
	return out, nil
}

// newTest returns an Authorizer over acls with cfg's other settings,
// closed when t ends.
func newTest(t testing.TB, cfg Config, acls ...meta.AclBinding) *Authorizer {
	t.Helper()
	if cfg.Store == nil {
		st := &memStore{}
		if err := st.CreateAcls(context.Background(), acls); err != nil {
			t.Fatal(err)
		}
		cfg.Store = st
	}
	a, err := New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = a.Close() })
	return a
}

// ace builds a binding on a topic pattern.
func ace(pt meta.AclPatternType, name, principal, host string, op Operation, perm meta.AclPermission) meta.AclBinding {
	return meta.AclBinding{ResourceType: Topic, ResourceName: name, PatternType: pt,
		Principal: principal, Host: host, Operation: op, Permission: perm}
}

func allow(name, principal string, op Operation) meta.AclBinding {
	return ace(meta.AclLiteral, name, principal, "*", op, meta.AclAllow)
}

func deny(name, principal string, op Operation) meta.AclBinding {
	return ace(meta.AclLiteral, name, principal, "*", op, meta.AclDeny)
}

func onType(b meta.AclBinding, t ResourceType) meta.AclBinding { b.ResourceType = t; return b }

func atHost(b meta.AclBinding, h string) meta.AclBinding { b.Host = h; return b }

func prefixed(b meta.AclBinding) meta.AclBinding { b.PatternType = meta.AclPrefixed; return b }

// check is one question and its expected answer.
type check struct {
	principal, host string
	op              Operation
	res             Resource
	want            bool
}

func topic(name string) Resource { return Resource{Type: Topic, Name: name} }

// TestAuthorize mirrors the cases of Kafka's AuthorizerTest and
// StandardAuthorizerTest.
func TestAuthorize(t *testing.T) {
	const alice, bob, admin = "User:alice", "User:bob", "User:admin"
	const h1, h2 = "192.168.1.1", "192.168.1.2"
	for _, c := range []struct {
		name   string
		cfg    Config
		acls   []meta.AclBinding
		checks []check
	}{
		{"NoAclFoundDenies", Config{}, nil, []check{
			{alice, h1, Read, topic("t"), false},
			{alice, h1, Describe, Resource{Cluster, ClusterName}, false},
		}},
		{"NoAclFoundOverride", Config{AllowEveryoneIfNoACLFound: true}, nil, []check{
			{alice, h1, Read, topic("t"), true},
			{alice, h1, Alter, Resource{Group, "g"}, true},
		}},
		{"AllowEveryoneIgnoredWhenResourceHasAcls", Config{AllowEveryoneIfNoACLFound: true},
			[]meta.AclBinding{allow("t", bob, Read)}, []check{
				{alice, h1, Read, topic("t"), false},
				{bob, h1, Read, topic("t"), true},
				{alice, h1, Read, topic("other"), true},
			}},
		{"AllowEveryoneCountsDenyAndPrefixedAcls", Config{AllowEveryoneIfNoACLFound: true},
			[]meta.AclBinding{prefixed(deny("pay", bob, Write))}, []check{
				{alice, h1, Read, topic("payments"), false},
				{alice, h1, Read, topic("pa"), true},
			}},
		{"SuperUserHasAccess", Config{SuperUsers: []string{admin, "User:ops"}},
			[]meta.AclBinding{deny("t", admin, All), deny("*", "User:*", All)}, []check{
				{admin, h1, Write, topic("t"), true},
				{"User:ops", h2, ClusterAction, Resource{Cluster, ClusterName}, true},
				{alice, h1, Read, topic("t"), false},
			}},
		{"SuperUserIsExactPrincipal", Config{SuperUsers: []string{admin}}, nil, []check{
			{"User:Admin", h1, Read, topic("t"), false},
			{"Group:admin", h1, Read, topic("t"), false},
		}},
		{"AllowAndDenyOnOneResource", Config{}, []meta.AclBinding{allow("t", alice, Read), deny("t", alice, Write)}, []check{
			{alice, h1, Read, topic("t"), true},
			{alice, h1, Write, topic("t"), false},
			{alice, h1, Create, topic("t"), false},
		}},
		{"DenyTakesPrecedence", Config{}, []meta.AclBinding{
			allow("t", alice, All), atHost(deny("t", alice, Read), h1)}, []check{
			{alice, h1, Read, topic("t"), false},
			{alice, h2, Read, topic("t"), true},
			{alice, h1, Write, topic("t"), true},
		}},
		{"DenyOnWildcardPrincipalBeatsUserAllow", Config{}, []meta.AclBinding{
			allow("t", alice, Read), deny("t", "User:*", Read)}, []check{
			{alice, h1, Read, topic("t"), false},
		}},
		{"DenyAllDeniesEverything", Config{}, []meta.AclBinding{allow("t", alice, All), deny("t", alice, All)}, []check{
			{alice, h1, Describe, topic("t"), false},
			{alice, h1, IdempotentWrite, topic("t"), false},
		}},
		{"AllowAllAccess", Config{}, []meta.AclBinding{allow("*", "User:*", All)}, []check{
			{alice, h1, Read, topic("t"), true},
			{"User:ANONYMOUS", h2, Delete, topic("x"), true},
			{alice, h1, Read, Resource{Group, "g"}, false},
		}},
		{"WildcardPrincipalMatchesAnyPrincipalType", Config{}, []meta.AclBinding{allow("t", "User:*", Read)}, []check{
			{"Group:x", h1, Read, topic("t"), true},
		}},
		{"HostAcl", Config{}, []meta.AclBinding{atHost(allow("t", alice, Read), h1)}, []check{
			{alice, h1, Read, topic("t"), true},
			{alice, h2, Read, topic("t"), false},
			{alice, "", Read, topic("t"), false},
		}},
		{"HostAclCanonical", Config{}, []meta.AclBinding{
			atHost(allow("t", alice, Read), "::ffff:10.0.0.1"), atHost(allow("t", alice, Write), "2001:DB8::0001")}, []check{
			{alice, "10.0.0.1", Read, topic("t"), true},
			{alice, "2001:db8::1", Write, topic("t"), true},
		}},
		{"TopicAcl", Config{}, []meta.AclBinding{
			atHost(allow("t", alice, Read), h1), atHost(allow("t", alice, Read), h2),
			atHost(deny("t", alice, Read), h2), atHost(allow("t", alice, Write), h1),
			allow("t", bob, Describe), atHost(deny("t", "User:*", Describe), h2)}, []check{
			{alice, h1, Read, topic("t"), true},
			{alice, h2, Read, topic("t"), false},
			{alice, h1, Write, topic("t"), true},
			{alice, h2, Write, topic("t"), false},
			{alice, h1, Describe, topic("t"), true},
			{alice, h2, Describe, topic("t"), false},
			{bob, h1, Describe, topic("t"), true},
			{bob, h2, Describe, topic("t"), false},
			{bob, h1, Read, topic("t"), false},
			{"User:carol", h1, Describe, topic("t"), false},
		}},
		{"AccessAllowedIfAllowAclExistsOnWildcardResource", Config{}, []meta.AclBinding{allow("*", alice, Read)}, []check{
			{alice, h1, Read, topic("anything"), true},
			{alice, h1, Read, topic("*"), true},
		}},
		{"AccessDeniedIfDenyAclExistsOnWildcardResource", Config{}, []meta.AclBinding{
			allow("t", alice, Read), deny("*", alice, Read)}, []check{
			{alice, h1, Read, topic("t"), false},
		}},
		{"AccessAllowedIfAllowAclExistsOnPrefixedResource", Config{}, []meta.AclBinding{prefixed(allow("foo", alice, Read))}, []check{
			{alice, h1, Read, topic("foo"), true},
			{alice, h1, Read, topic("foobar"), true},
			{alice, h1, Read, topic("fo"), false},
			{alice, h1, Read, topic("afoo"), false},
		}},
		{"AccessDeniedIfDenyAclExistsOnPrefixedResource", Config{}, []meta.AclBinding{
			allow("foobar", alice, Read), prefixed(deny("foo", alice, Read))}, []check{
			{alice, h1, Read, topic("foobar"), false},
		}},
		{"LiteralIsNotAPrefix", Config{}, []meta.AclBinding{allow("foo", alice, Read)}, []check{
			{alice, h1, Read, topic("foobar"), false},
			{alice, h1, Read, topic("foo"), true},
		}},
		{"PrefixedStarIsNotAWildcard", Config{}, []meta.AclBinding{prefixed(allow("*", alice, Read))}, []check{
			{alice, h1, Read, topic("t"), false},
			{alice, h1, Read, topic("*t"), true},
		}},
		{"PrefixScanFindsEveryLevel", Config{}, []meta.AclBinding{
			// The example of Kafka's StandardAuthorizerData.findAclRule.
			prefixed(allow("gar", alice, Read)), prefixed(allow("foobar", alice, Write)),
			allow("foob", alice, Alter), prefixed(allow("foo", alice, Delete)),
			prefixed(allow("fb", alice, Create)), prefixed(allow("fa", alice, Create)),
			prefixed(allow("f", alice, DescribeConfigs)), allow("eeee", alice, All)}, []check{
			{alice, h1, Write, topic("foobar"), true},
			{alice, h1, Alter, topic("foobar"), false},
			{alice, h1, Delete, topic("foobar"), true},
			{alice, h1, DescribeConfigs, topic("foobar"), true},
			{alice, h1, Create, topic("foobar"), false},
			{alice, h1, Read, topic("foobar"), false},
			{alice, h1, Alter, topic("foob"), true},
		}},
		{"ResourceTypesAreSeparate", Config{}, []meta.AclBinding{allow("orders", alice, Read)}, []check{
			{alice, h1, Read, Resource{Group, "orders"}, false},
			{alice, h1, Read, Resource{TransactionalID, "orders"}, false},
		}},
		{"GroupAndTransactionalIDAcls", Config{}, []meta.AclBinding{
			onType(allow("g", alice, Read), Group), prefixed(onType(allow("tx-", alice, Write), TransactionalID)),
			onType(allow(ClusterName, alice, IdempotentWrite), Cluster)}, []check{
			{alice, h1, Read, Resource{Group, "g"}, true},
			{alice, h1, Describe, Resource{Group, "g"}, true},
			{alice, h1, Write, Resource{TransactionalID, "tx-1"}, true},
			{alice, h1, IdempotentWrite, Resource{Cluster, ClusterName}, true},
			{alice, h1, ClusterAction, Resource{Cluster, ClusterName}, false},
		}},
		{"NamesAreCaseSensitive", Config{}, []meta.AclBinding{allow("Orders", "User:Alice", Read)}, []check{
			{"User:Alice", h1, Read, topic("Orders"), true},
			{"User:Alice", h1, Read, topic("orders"), false},
			{"User:alice", h1, Read, topic("Orders"), false},
		}},
		{"DenyDoesNotImply", Config{}, []meta.AclBinding{allow("t", alice, All), deny("t", alice, Read), deny("t", alice, AlterConfigs)}, []check{
			{alice, h1, Describe, topic("t"), true},
			{alice, h1, DescribeConfigs, topic("t"), true},
			{alice, h1, Read, topic("t"), false},
		}},
		{"InvalidQuestionsDenied", Config{}, []meta.AclBinding{allow("*", "User:*", All)}, []check{
			{alice, h1, meta.AclOpAny, topic("t"), false},
			{alice, h1, 0, topic("t"), false},
			{alice, h1, Read, Resource{meta.AclResourceAny, "t"}, false},
			{alice, h1, Read, Resource{9, "t"}, false},
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			a := newTest(t, c.cfg, c.acls...)
			for _, q := range c.checks {
				if got := a.Authorize(t.Context(), q.principal, q.host, q.op, q.res); got != q.want {
					t.Errorf("Authorize(%s from %s, %v, %v %q) = %v, want %v", q.principal, q.host, q.op, q.res.Type, q.res.Name, got, q.want)
				}
			}
		})
	}
}

// TestAuthorizeAny mirrors the authorizeByResourceType cases of Kafka's
// AuthorizerTest.
func TestAuthorizeAny(t *testing.T) {
	const alice, bob = "User:alice", "User:bob"
	for _, c := range []struct {
		name string
		cfg  Config
		acls []meta.AclBinding
		op   Operation
		want bool
	}{
		{"NoAclFound", Config{}, nil, Write, false},
		{"NoAclFoundOverride", Config{AllowEveryoneIfNoACLFound: true}, nil, Write, true},
		{"SuperUser", Config{SuperUsers: []string{alice}}, []meta.AclBinding{deny("*", alice, All)}, Write, true},
		{"LiteralAllow", Config{}, []meta.AclBinding{allow("t", alice, Write)}, Write, true},
		{"AllOperationAce", Config{}, []meta.AclBinding{allow("t", alice, All)}, Write, true},
		{"AllPrincipalAce", Config{}, []meta.AclBinding{allow("t", "User:*", Write)}, Write, true},
		{"AllHostAce", Config{}, []meta.AclBinding{atHost(allow("t", alice, Write), "h1")}, Write, true},
		{"OtherHost", Config{}, []meta.AclBinding{atHost(allow("t", alice, Write), "h2")}, Write, false},
		{"ImpliedOperationsDoNotCount", Config{}, []meta.AclBinding{allow("t", alice, Write)}, Describe, false},
		{"DenyTakesPrecedence", Config{}, []meta.AclBinding{allow("t", alice, Write), deny("t", alice, Write)}, Write, false},
		{"WildcardResourceDenyDominates", Config{}, []meta.AclBinding{
			allow("t", alice, Write), prefixed(allow("t", alice, Write)), deny("*", alice, Write)}, Write, false},
		{"WildcardAllowWins", Config{}, []meta.AclBinding{allow("*", alice, Write), deny("t", alice, Write)}, Write, true},
		{"PrefixedDenyDominatesLiteral", Config{}, []meta.AclBinding{
			allow("abc", alice, Write), prefixed(deny("a", alice, Write))}, Write, false},
		{"PrefixedDenyDominatesLongerPrefix", Config{}, []meta.AclBinding{
			prefixed(allow("abc", alice, Write)), prefixed(deny("ab", alice, Write))}, Write, false},
		{"LongerPrefixedDenyDoesNotDominate", Config{}, []meta.AclBinding{
			prefixed(allow("ab", alice, Write)), prefixed(deny("abc", alice, Write))}, Write, true},
		{"LiteralDenyDoesNotDominatePrefixed", Config{}, []meta.AclBinding{
			prefixed(allow("ab", alice, Write)), deny("ab", alice, Write)}, Write, true},
		{"OneUndominatedAllowSuffices", Config{}, []meta.AclBinding{
			allow("a", alice, Write), deny("a", alice, Write), allow("b", alice, Write)}, Write, true},
		{"UnrelatedDenyWontDominateAllow", Config{}, []meta.AclBinding{
			allow("t", alice, Write), deny("t", bob, Write), atHost(deny("t", alice, Write), "h2"),
			deny("t", alice, Read), onType(deny("t", alice, Write), Group)}, Write, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			a := newTest(t, c.cfg, c.acls...)
			if got := a.AuthorizeAny(t.Context(), alice, "h1", c.op, Topic); got != c.want {
				t.Errorf("AuthorizeAny(%v, TOPIC) = %v, want %v", c.op, got, c.want)
			}
		})
	}
}

// TestImpliedOperations checks, for an ALLOW of every operation, which
// operations it allows (Kafka's StandardAuthorizerTest
// testFindResultImplication).
func TestImpliedOperations(t *testing.T) {
	implied := map[Operation][]Operation{
		Read:         {Describe},
		Write:        {Describe},
		Delete:       {Describe},
		Alter:        {Describe},
		AlterConfigs: {DescribeConfigs},
	}
	for granted := All; granted <= TwoPhaseCommit; granted++ {
		t.Run(granted.String(), func(t *testing.T) {
			a := newTest(t, Config{}, allow("t", "User:a", granted))
			for asked := All; asked <= TwoPhaseCommit; asked++ {
				want := granted == All || asked == granted
				for _, i := range implied[granted] {
					want = want || asked == i
				}
				if got := a.Authorize(t.Context(), "User:a", "h", asked, topic("t")); got != want {
					t.Errorf("ALLOW %v: %v = %v, want %v", granted, asked, got, want)
				}
			}
		})
	}
}

// reference is the naive authorizer the index is checked against: every
// binding tested against the question, straight from Kafka's rules.
func reference(acls []meta.AclBinding, superUsers []string, allowIfNone bool, principal, host string, op Operation, res Resource) bool {
	for _, u := range superUsers {
		if u == principal {
			return true
		}
	}
	if !op.Valid() || !res.Type.Valid() {
		return false
	}
	var found, allowed, denied bool
	for _, b := range acls {
		covers := b.ResourceType == res.Type && (b.PatternType == meta.AclLiteral && (b.ResourceName == res.Name || b.ResourceName == "*") ||
			b.PatternType == meta.AclPrefixed && strings.HasPrefix(res.Name, b.ResourceName))
		if !covers {
			continue
		}
		found = true
		if b.Principal != principal && b.Principal != "User:*" || b.Host != host && b.Host != "*" {
			continue
		}
		if b.Permission == meta.AclDeny {
			denied = denied || b.Operation == All || b.Operation == op
			continue
		}
		allowed = allowed || b.Operation == All || b.Operation == op ||
			op == Describe && (b.Operation == Read || b.Operation == Write || b.Operation == Delete || b.Operation == Alter) ||
			op == DescribeConfigs && b.Operation == AlterConfigs
	}
	switch {
	case denied:
		return false
	case allowed:
		return true
	}
	return !found && allowIfNone
}

// referenceAny is Kafka's authorizeByResourceType written naively.
func referenceAny(acls []meta.AclBinding, superUsers []string, allowIfNone bool, principal, host string, op Operation, t ResourceType) bool {
	if reference(acls, superUsers, allowIfNone, principal, host, op, Resource{t, "hardcode"}) {
		return true
	}
	denyLit, denyPre := map[string]bool{}, map[string]bool{}
	var allowLit, allowPre []string
	for _, b := range acls {
		if b.ResourceType != t || b.Host != host && b.Host != "*" || b.Principal != principal && b.Principal != "User:*" ||
			b.Operation != op && b.Operation != All {
			continue
		}
		switch {
		case b.Permission == meta.AclDeny && b.PatternType == meta.AclLiteral && b.ResourceName == "*":
			return false
		case b.Permission == meta.AclDeny && b.PatternType == meta.AclLiteral:
			denyLit[b.ResourceName] = true
		case b.Permission == meta.AclDeny:
			denyPre[b.ResourceName] = true
		case b.PatternType == meta.AclLiteral:
			allowLit = append(allowLit, b.ResourceName)
		default:
			allowPre = append(allowPre, b.ResourceName)
		}
	}
	if slices.Contains(allowLit, "*") {
		return true
	}
	undominated := func(name string) bool {
		for pre := range denyPre {
			if strings.HasPrefix(name, pre) {
				return false
			}
		}
		return true
	}
	for _, n := range allowLit {
		if !denyLit[n] && undominated(n) {
			return true
		}
	}
	for _, n := range allowPre {
		if undominated(n) {
			return true
		}
	}
	return false
}

// TestAuthorizeMatchesReference checks random ACL sets and questions,
// drawn from small alphabets so they collide often, against reference.
func TestAuthorizeMatchesReference(t *testing.T) {
	// Every string of length 1 to 4 over {a, b}, so that prefixes nest
	// and branch, plus the wildcard, a name starting with it, and the
	// empty name (asked about, never stored).
	names := []string{"*", "*a"}
	for n := 1; n <= 4; n++ {
		for bits := range 1 << n {
			var sb strings.Builder
			for i := range n {
				sb.WriteByte("ab"[bits>>i&1])
			}
			names = append(names, sb.String())
		}
	}
	names = append(names, "")
	principals := []string{"User:x", "User:y", "User:*", "Group:x"}
	hosts := []string{"*", "h1", "h2"}
	types := []ResourceType{Topic, Group, TransactionalID, Cluster}
	for seed := range uint64(500) {
		r := rand.New(rand.NewPCG(seed, 0x5157))
		pickS := func(s []string) string { return s[r.IntN(len(s))] }
		acls := make([]meta.AclBinding, r.IntN(40))
		for i := range acls {
			pt := meta.AclLiteral
			if r.IntN(3) == 0 {
				pt = meta.AclPrefixed
			}
			perm := meta.AclAllow
			if r.IntN(4) == 0 {
				perm = meta.AclDeny
			}
			name := pickS(names[:len(names)-1])
			acls[i] = meta.AclBinding{ResourceType: types[r.IntN(len(types))], ResourceName: name, PatternType: pt,
				Principal: pickS(principals), Host: pickS(hosts), Operation: All + Operation(r.IntN(14)), Permission: perm}
		}
		cfg := Config{AllowEveryoneIfNoACLFound: r.IntN(2) == 0}
		if r.IntN(3) == 0 {
			cfg.SuperUsers = []string{"User:y"}
		}
		a := newTest(t, cfg, acls...)
		for range 200 {
			p, h := pickS(principals[:2]), pickS(hosts[1:])
			op := All + Operation(r.IntN(14))
			res := Resource{types[r.IntN(len(types))], pickS(names)}
			want := reference(acls, cfg.SuperUsers, cfg.AllowEveryoneIfNoACLFound, p, h, op, res)
			if got := a.Authorize(t.Context(), p, h, op, res); got != want {
				t.Fatalf("seed %d: Authorize(%s, %s, %v, %v %q) = %v, reference %v; acls:\n%v",
					seed, p, h, op, res.Type, res.Name, got, want, acls)
			}
			want = referenceAny(acls, cfg.SuperUsers, cfg.AllowEveryoneIfNoACLFound, p, h, op, res.Type)
			if got := a.AuthorizeAny(t.Context(), p, h, op, res.Type); got != want {
				t.Fatalf("seed %d: AuthorizeAny(%s, %s, %v, %v) = %v, reference %v; acls:\n%v",
					seed, p, h, op, res.Type, got, want, acls)
			}
		}
	}
}

// TestReload checks that changes through the Authorizer show at once,
// changes made elsewhere after the next periodic reload, and that a failed
// reload keeps the previous copy.
func TestReload(t *testing.T) {
	ctx := t.Context()
	st := &memStore{}
	clk := clock.NewFake(time.Unix(1_700_000_000, 0))
	a := newTest(t, Config{Store: st, Clock: clk, ReloadInterval: time.Minute})
	q := func() bool { return a.Authorize(ctx, "User:a", "h", Read, topic("t")) }

	if err := a.CreateAcls(ctx, []meta.AclBinding{allow("t", "User:a", Read)}); err != nil {
		t.Fatal(err)
	}
	if !q() {
		t.Fatal("an ACL created through the authorizer does not apply at once")
	}
	// Another broker denies it in the shared store.
	if err := st.CreateAcls(ctx, []meta.AclBinding{deny("t", "User:a", Read)}); err != nil {
		t.Fatal(err)
	}
	clk.Advance(59 * time.Second)
	if !q() {
		t.Fatal("reloaded before the interval")
	}
	clk.Advance(time.Second)
	if q() {
		t.Fatal("another broker's DENY did not arrive with the periodic reload")
	}
	deleted, err := a.DeleteAcls(ctx, []meta.AclFilter{deny("t", "User:a", Read).Filter()})
	if err != nil || len(deleted) != 1 || len(deleted[0]) != 1 {
		t.Fatalf("DeleteAcls = %v, %v", deleted, err)
	}
	if !q() {
		t.Fatal("an ACL deleted through the authorizer still applies")
	}

	// A failing store: the periodic reload keeps the last copy, and the
	// one after the store recovers picks up its changes.
	st.mu.Lock()
	st.fail = errors.New("store down")
	st.acls = nil
	st.mu.Unlock()
	clk.Advance(time.Minute)
	if !q() {
		t.Fatal("a failed reload dropped the cached ACLs")
	}
	st.mu.Lock()
	st.fail = nil
	st.mu.Unlock()
	clk.Advance(time.Minute)
	if q() {
		t.Fatal("the reload after the store recovered did not apply")
	}

	// After Close no reload runs.
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	_ = st.CreateAcls(ctx, []meta.AclBinding{allow("t", "User:a", Read)})
	clk.Advance(time.Hour)
	if q() {
		t.Fatal("reloaded after Close")
	}
}

// TestConcurrentAuthorizeAndChanges runs answers beside changes and
// reloads, for the race detector: an answer sees one whole copy.
func TestConcurrentAuthorizeAndChanges(t *testing.T) {
	ctx := t.Context()
	clk := clock.NewFake(time.Unix(0, 0))
	a := newTest(t, Config{Clock: clk, ReloadInterval: time.Second}, allow("t", "User:a", Read))
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				a.Authorize(ctx, "User:a", "h", Read, topic("t"))
				a.Authorize(ctx, "User:b", "h", Write, topic("t-1"))
			}
		})
	}
	for i := range 50 {
		b := prefixed(allow(fmt.Sprintf("t-%d", i), "User:b", Write))
		if err := a.CreateAcls(ctx, []meta.AclBinding{b}); err != nil {
			t.Fatal(err)
		}
		clk.Advance(time.Second)
		if _, err := a.DeleteAcls(ctx, []meta.AclFilter{b.Filter()}); err != nil {
			t.Fatal(err)
		}
	}
	close(stop)
	wg.Wait()
	if !a.Authorize(ctx, "User:a", "h", Read, topic("t")) || a.Authorize(ctx, "User:b", "h", Write, topic("t-1")) {
		t.Fatal("wrong answers after the changes")
	}
}

// TestStaleCacheAfterChange checks that a change stored but not reloaded
// says so.
func TestStaleCacheAfterChange(t *testing.T) {
	st := &memStore{}
	a := newTest(t, Config{Store: st, Clock: clock.NewFake(time.Unix(0, 0))})
	st.mu.Lock()
	st.fail = errors.New("store down")
	st.mu.Unlock()
	if err := a.CreateAcls(t.Context(), []meta.AclBinding{allow("t", "User:a", Read)}); !errors.Is(err, ErrStaleCache) {
		t.Fatalf("CreateAcls with a failing reload: %v, want ErrStaleCache", err)
	}
	if _, err := a.DeleteAcls(t.Context(), []meta.AclFilter{meta.AnyAclFilter()}); !errors.Is(err, ErrStaleCache) {
		t.Fatalf("DeleteAcls with a failing reload: %v, want ErrStaleCache", err)
	}
}

// TestNewFailsWithoutAcls checks that an authorizer never answers without
// its ACLs.
func TestNewFailsWithoutAcls(t *testing.T) {
	st := &memStore{fail: errors.New("store down")}
	if _, err := New(t.Context(), Config{Store: st}); err == nil {
		t.Fatal("New with a failing store succeeded")
	}
	if _, err := New(t.Context(), Config{}); err == nil {
		t.Fatal("New without a store succeeded")
	}
}

// TestRealClockAndSQLite runs the authorizer over a real SQLite store and
// the wall clock: an ACL another store handle writes arrives by the
// periodic reload, and Close stops its goroutine (goleak checks).
func TestRealClockAndSQLite(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "meta.db")
	st, err := meta.OpenSQLite(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	a := newTest(t, Config{Store: st, ReloadInterval: 5 * time.Millisecond})
	if err := a.CreateAcls(ctx, []meta.AclBinding{prefixed(allow("orders", "User:a", Write))}); err != nil {
		t.Fatal(err)
	}
	if !a.Authorize(ctx, "User:a", "h", Describe, topic("orders-eu")) {
		t.Fatal("prefixed WRITE does not imply DESCRIBE")
	}
	other, err := meta.OpenSQLite(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if err := other.CreateAcls(ctx, []meta.AclBinding{deny("orders-eu", "User:*", Write)}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for a.Authorize(ctx, "User:a", "h", Write, topic("orders-eu")) {
		if time.Now().After(deadline) {
			t.Fatal("the other handle's DENY never arrived")
		}
		time.Sleep(time.Millisecond)
	}
	got, err := a.ListAcls(ctx, meta.AnyAclFilter())
	if err != nil || len(got) != 2 {
		t.Fatalf("ListAcls = %v, %v", got, err)
	}
	if err := a.CreateAcls(ctx, []meta.AclBinding{{ResourceType: Topic}}); !errors.Is(err, meta.ErrInvalid) {
		t.Fatalf("CreateAcls of an invalid binding: %v, want ErrInvalid", err)
	}
}

// benchAcls builds n ACLs shaped like a busy cluster's: per-topic literal
// grants to many users, prefixed grants of many lengths (team and app
// prefixes, so names are covered by two or three), group ACLs, host
// denies, and a few wildcards.
func benchAcls(n int) []meta.AclBinding {
	acls := make([]meta.AclBinding, 0, n)
	for i := 0; len(acls) < n; i++ {
		user := fmt.Sprintf("User:svc-%d", i%500)
		switch i % 10 {
		case 0:
			acls = append(acls, prefixed(allow(fmt.Sprintf("team-%d.", i), user, Read)))
		case 1:
			acls = append(acls, prefixed(allow(fmt.Sprintf("team-%d.app-%s.", i-1, strings.Repeat("x", i%17)), user, Write)))
		case 2:
			acls = append(acls, onType(allow(fmt.Sprintf("group-%d", i), user, Read), Group))
		case 3:
			acls = append(acls, atHost(deny(fmt.Sprintf("topic-%d", i), user, Write), fmt.Sprintf("10.0.%d.%d", i%256, i%200)))
		default:
			acls = append(acls, allow(fmt.Sprintf("topic-%d", i), user, Operation(3+i%3)))
		}
	}
	return append(acls, allow("*", "User:monitor", Describe), prefixed(deny("secret.", "User:*", All)))
}

// nestedAcls builds n ACLs of which 16 are nested prefixes of one name,
// Kafka's worst case for prefixed lookups.
func nestedAcls(n int) []meta.AclBinding {
	acls := benchAcls(n - 16)
	for i := range 16 {
		acls = append(acls, prefixed(allow("deep."+strings.Repeat("d", i), "User:svc-1", Operation(3+i%3))))
	}
	return acls
}

// BenchmarkAuthorize measures one answer with 10,000 ACLs in the cache.
func BenchmarkAuthorize(b *testing.B) {
	ctx := context.Background()
	for _, c := range []struct {
		name string
		acls []meta.AclBinding
		q    check
	}{
		{"LiteralAllowed", benchAcls(10_000), check{"User:svc-6", "10.0.0.1", Read, topic("topic-6"), true}},
		{"PrefixedAllowed", benchAcls(10_000), check{"User:svc-11", "10.0.0.1", Describe, topic("team-10.app-xxxxxxxxxxx.orders"), true}},
		{"Denied", benchAcls(10_000), check{"User:nobody", "10.0.0.1", Write, topic("topic-6"), false}},
		{"NoAcl", benchAcls(10_000), check{"User:svc-4", "10.0.0.1", Read, topic("unknown-topic-name"), false}},
		{"SixteenNestedPrefixes", nestedAcls(10_000), check{"User:svc-1", "10.0.0.1", Write, topic("deep.dddddddddddddddd"), true}},
	} {
		b.Run(c.name, func(b *testing.B) {
			a := newTest(b, Config{}, c.acls...)
			if got := a.Authorize(ctx, c.q.principal, c.q.host, c.q.op, c.q.res); got != c.q.want {
				b.Fatalf("Authorize = %v, want %v", got, c.q.want)
			}
			b.ReportAllocs()
			for b.Loop() {
				a.Authorize(ctx, c.q.principal, c.q.host, c.q.op, c.q.res)
			}
		})
	}
}
