package auth

import (
	"net/netip"
	"slices"
	"strings"

	"github.com/streamhouse/streamhouse/meta"
)

// The cached ACLs, indexed for Authorize: per resource type, literal
// patterns by name in a map (the wildcard "*" among them), and prefixed
// patterns in a sorted slice where each prefix points to the longest other
// prefix of the set that is a prefix of it (its parent). The prefixes that
// cover a name are then found without scanning: binary-search the largest
// prefix p <= name; every covering prefix is p or an ancestor of p (a
// string between a prefix of name and name in byte order starts with that
// prefix), and an ancestor covers the name iff it is no longer than the
// common prefix of p and name. Under a pattern the entries are grouped by
// principal and host and folded into two operation masks, what they allow
// and what they deny, so an answer costs a few map lookups, a binary
// search and bit tests, whatever the number of ACLs.

// opMask has bit n set for the operation with Kafka code n.
type opMask uint32

// opBit returns op's bit.
func opBit(op Operation) opMask { return 1 << uint(op) }

// allOps has the bit of every concrete operation, ALL (2) to
// TWO_PHASE_COMMIT (15).
const allOps = opMask(1)<<(uint(meta.AclOpTwoPhaseCommit)+1) - opMask(1)<<uint(meta.AclOpAll)

// masks are what the entries of one principal and host allow and deny;
// exact is allow without the implied operations (for AuthorizeAny).
type masks struct{ allow, deny, exact opMask }

// add folds b's operation into m: a DENY denies its operation (ALL: every
// one); an ALLOW allows its operation and the ones it implies.
func (m *masks) add(b meta.AclBinding) {
	bit := opBit(b.Operation)
	if b.Operation == meta.AclOpAll {
		bit = allOps
	}
	if b.Permission == meta.AclDeny {
		m.deny |= bit
		return
	}
	m.exact |= bit
	switch b.Operation {
	case meta.AclOpRead, meta.AclOpWrite, meta.AclOpDelete, meta.AclOpAlter:
		bit |= opBit(meta.AclOpDescribe)
	case meta.AclOpAlterConfigs:
		bit |= opBit(meta.AclOpDescribeConfigs)
	}
	m.allow |= bit
}

// entries are one principal's entries under one pattern.
type entries struct {
	anyHost masks            // host "*"
	byHost  map[string]masks // other hosts; nil when none
}

// pattern is one resource pattern's entries, by principal. A pattern in
// the index has at least one entry.
type pattern struct {
	byPrincipal map[string]*entries // principals other than the wildcard
	wild        *entries            // the wildcard principal's, or nil
}

// collect ORs into allow and deny what p's entries for principal and for
// the wildcard principal say to a client from host.
func (p *pattern) collect(principal, host string, allow, deny *opMask) {
	if e := p.byPrincipal[principal]; e != nil {
		e.collect(host, allow, deny)
	}
	if p.wild != nil {
		p.wild.collect(host, allow, deny)
	}
}

// exact returns what p's entries for principal and the wildcard
// principal allow (without implied operations) and deny a client from
// host.
func (p *pattern) exact(principal, host string) (allow, deny opMask) {
	for _, e := range [2]*entries{p.byPrincipal[principal], p.wild} {
		if e == nil {
			continue
		}
		allow |= e.anyHost.exact
		deny |= e.anyHost.deny
		if e.byHost != nil {
			m := e.byHost[host]
			allow |= m.exact
			deny |= m.deny
		}
	}
	return allow, deny
}

// collect ORs into allow and deny what e says to a client from host.
func (e *entries) collect(host string, allow, deny *opMask) {
	*allow |= e.anyHost.allow
	*deny |= e.anyHost.deny
	if e.byHost != nil {
		m := e.byHost[host]
		*allow |= m.allow
		*deny |= m.deny
	}
}

// typeIndex holds the patterns of one resource type.
type typeIndex struct {
	literal  map[string]*pattern // by name, "*" included
	wildcard *pattern            // literal["*"], or nil
	// prefixes are the prefixed patterns' names, sorted; prefixPats[i]
	// is the pattern of prefixes[i], and parent[i] the index of the
	// longest other prefix that is a prefix of prefixes[i], or -1.
	prefixes   []string
	prefixPats []*pattern
	parent     []int32
	// prefixed collects the prefixed patterns while the index is built.
	prefixed map[string]*pattern
}

// index is an immutable snapshot of every ACL.
type index struct {
	types [meta.AclUser + 1]typeIndex
}

// buildIndex indexes acls; bindings that fail Validate are skipped.
func buildIndex(acls []meta.AclBinding) *index {
	ix := &index{}
	for _, b := range acls {
		if b.Validate() != nil {
			continue
		}
		ti := &ix.types[b.ResourceType]
		byName := &ti.literal
		if b.PatternType == meta.AclPrefixed {
			byName = &ti.prefixed
		}
		if *byName == nil {
			*byName = make(map[string]*pattern)
		}
		p := (*byName)[b.ResourceName]
		if p == nil {
			p = &pattern{byPrincipal: make(map[string]*entries)}
			(*byName)[b.ResourceName] = p
		}
		e := p.entriesOf(b.Principal)
		host := canonicalHost(b.Host)
		if host == meta.AclWildcardHost {
			e.anyHost.add(b)
			continue
		}
		if e.byHost == nil {
			e.byHost = make(map[string]masks)
		}
		m := e.byHost[host]
		m.add(b)
		e.byHost[host] = m
	}
	for i := range ix.types {
		ti := &ix.types[i]
		ti.wildcard = ti.literal[meta.AclWildcardResource]
		ti.sortPrefixes()
	}
	return ix
}

// sortPrefixes fills prefixes, prefixPats and parent from prefixed. In
// sorted order a prefix's extensions follow it, so a stack of the current
// chain of prefixes finds each one's parent.
func (ti *typeIndex) sortPrefixes() {
	ti.prefixes = make([]string, 0, len(ti.prefixed))
	for name := range ti.prefixed {
		ti.prefixes = append(ti.prefixes, name)
	}
	slices.Sort(ti.prefixes)
	ti.prefixPats = make([]*pattern, len(ti.prefixes))
	ti.parent = make([]int32, len(ti.prefixes))
	var chain []int32
	for i, name := range ti.prefixes {
		ti.prefixPats[i] = ti.prefixed[name]
		for len(chain) > 0 && !strings.HasPrefix(name, ti.prefixes[chain[len(chain)-1]]) {
			chain = chain[:len(chain)-1]
		}
		ti.parent[i] = -1
		if len(chain) > 0 {
			ti.parent[i] = chain[len(chain)-1]
		}
		chain = append(chain, int32(i))
	}
	ti.prefixed = nil
}

// commonPrefixLen returns the length of the longest common prefix of a and b.
func commonPrefixLen(a, b string) int {
	n := min(len(a), len(b))
	for i := range n {
		if a[i] != b[i] {
			return i
		}
	}
	return n
}

// entriesOf returns principal's entries under p, adding them if new.
func (p *pattern) entriesOf(principal string) *entries {
	if principal == meta.AclWildcardPrincipal {
		if p.wild == nil {
			p.wild = &entries{}
		}
		return p.wild
	}
	e := p.byPrincipal[principal]
	if e == nil {
		e = &entries{}
		p.byPrincipal[principal] = e
	}
	return e
}

// canonicalHost returns an IP address host as netip prints it (IPv4-mapped
// IPv6 addresses as IPv4, as Java does), any other host unchanged.
func canonicalHost(h string) string {
	if a, err := netip.ParseAddr(h); err == nil {
		return a.Unmap().String()
	}
	return h
}

// lookup returns what the ACLs covering res allow and deny principal from
// host, and whether any ACL (of any principal, host or operation) covers
// res at all.
func (ix *index) lookup(principal, host string, res Resource) (allow, deny opMask, found bool) {
	ti := &ix.types[res.Type]
	if p := ti.literal[res.Name]; p != nil {
		found = true
		p.collect(principal, host, &allow, &deny)
	}
	if ti.wildcard != nil && res.Name != meta.AclWildcardResource {
		found = true
		ti.wildcard.collect(principal, host, &allow, &deny)
	}
	// The largest prefix <= name, by a binary search written out so that
	// it takes no closure.
	lo, hi := 0, len(ti.prefixes)
	for lo < hi {
		mid := int(uint(lo+hi) >> 1)
		if ti.prefixes[mid] <= res.Name {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	if i := lo - 1; i >= 0 {
		covered := commonPrefixLen(ti.prefixes[i], res.Name)
		for j := int32(i); j >= 0; j = ti.parent[j] {
			if len(ti.prefixes[j]) <= covered {
				found = true
				ti.prefixPats[j].collect(principal, host, &allow, &deny)
			}
		}
	}
	return allow, deny, found
}

// anyAllowed is the ACL part of Kafka's authorizeByResourceType: whether
// some resource of type t could be allowed op for principal from host by
// an ALLOW of op or ALL (no implied operations) that no DENY dominates: a
// wildcard ALLOW wins unless a wildcard DENY exists; a literal ALLOW is
// dominated by a literal DENY of the same name or a prefixed DENY of a
// prefix of it; a prefixed ALLOW by a prefixed DENY of a prefix of it.
func (ix *index) anyAllowed(principal, host string, op Operation, t ResourceType) bool {
	ti := &ix.types[t]
	bit := opBit(op)
	var allowLiteral, allowPrefixed []string
	denyLiteral, denyPrefixed := map[string]bool{}, map[string]bool{}
	wildcardAllow := false
	for name, p := range ti.literal {
		allow, deny := p.exact(principal, host)
		switch {
		case deny&bit != 0 && name == meta.AclWildcardResource:
			return false
		case deny&bit != 0:
			denyLiteral[name] = true
		}
		switch {
		case allow&bit != 0 && name == meta.AclWildcardResource:
			wildcardAllow = true
		case allow&bit != 0:
			allowLiteral = append(allowLiteral, name)
		}
	}
	for i, name := range ti.prefixes {
		allow, deny := ti.prefixPats[i].exact(principal, host)
		if deny&bit != 0 {
			denyPrefixed[name] = true
		}
		if allow&bit != 0 {
			allowPrefixed = append(allowPrefixed, name)
		}
	}
	if wildcardAllow {
		return true
	}
	dominated := func(name string) bool {
		for n := 1; n <= len(name); n++ {
			if denyPrefixed[name[:n]] {
				return true
			}
		}
		return false
	}
	for _, name := range allowLiteral {
		if !denyLiteral[name] && !dominated(name) {
			return true
		}
	}
	for _, name := range allowPrefixed {
		if !dominated(name) {
			return true
		}
	}
	return false
}
