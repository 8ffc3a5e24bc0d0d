package groups

// The classic group state machine (Kafka's ClassicGroup), for one group:
//
//	Empty ──join──▶ PreparingRebalance ──all joined / timeout──▶ CompletingRebalance
//	  ▲                 ▲        │ (no member left: Empty)             │ leader's SyncGroup
//	  │                 │        ▼                                     ▼
//	  └──── last member gone ◀── rebalance: join, leave, expiry ◀── Stable
//	Dead: deleted (DeleteGroups) or expired; a dead group is never reused.
//
// A rebalance starts (PreparingRebalance) when a member joins, leaves,
// changes its protocols, misses its session timeout, or, from
// CompletingRebalance, fails to send SyncGroup within the rebalance
// timeout. It completes once every member (and every member ID handed out
// with MEMBER_ID_REQUIRED) has joined, or when the largest rebalance
// timeout passes; members that did not join are then removed. The first
// rebalance of an Empty group waits group.initial.rebalance.delay.ms
// (extended while members keep arriving) so that a starting group
// rebalances once. Completion bumps the generation, chooses the protocol
// (among those every member supports, the one most members prefer) and
// answers every JoinGroup; the leader's answer lists the members. The
// leader's SyncGroup carries the assignments, which every SyncGroup then
// gets, and the group is Stable.

import (
	"bytes"
	"context"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// groupState is a classic group's state.
type groupState int8

const (
	stateEmpty groupState = iota
	statePreparingRebalance
	stateCompletingRebalance
	stateStable
	stateDead
)

// String is Kafka's name for the state, reported by DescribeGroups and
// ListGroups.
func (s groupState) String() string {
	switch s {
	case stateEmpty:
		return "Empty"
	case statePreparingRebalance:
		return "PreparingRebalance"
	case stateCompletingRebalance:
		return "CompletingRebalance"
	case stateStable:
		return "Stable"
	default:
		return "Dead"
	}
}

// consumerProtocolType is the protocol type of Kafka consumers, whose
// member metadata lists their subscribed topics.
const consumerProtocolType = "consumer"

// Group types, as ListGroups (GroupType) and Snapshot report them.
const (
	// TypeClassic is the type of classic groups (JoinGroup, SyncGroup).
	TypeClassic = "classic"
	// TypeConsumer is the type of KIP-848 consumer groups.
	TypeConsumer = "consumer"
)

// group is one classic group.
type group struct {
	c    *Coordinator
	name string

	// mu guards every field below and the group's members.
	mu         sync.Mutex
	state      groupState
	stateSince time.Time // when state last changed
	generation int32
	// protocolType is set by the first member to join an Empty group.
	protocolType string
	protocol     string // chosen for the current generation
	leader       string
	members      map[string]*member
	// pending holds the member IDs handed out with MEMBER_ID_REQUIRED,
	// each expiring after the session timeout unless it joins.
	pending map[string]*gtimer
	// static maps instance IDs (KIP-345) to member IDs.
	static map[string]string
	// pendingSync holds the members that got this generation's JoinGroup
	// answer and have not sent SyncGroup yet.
	pendingSync map[string]bool
	// subscribed is the topics a consumer-protocol group subscribes to
	// (from the members' metadata); nil when unknown.
	subscribed map[string]bool
	joinTimer  gtimer // rebalance (or initial delay) timeout
	syncTimer  gtimer // pending-sync timeout
	// delaying is set during group.initial.rebalance.delay.ms; delayLeft
	// is the rebalance timeout not yet spent and delayJoined whether a
	// member joined during the current delay.
	delaying    bool
	delayLeft   time.Duration
	delayJoined bool
	// cg is set while the group is a KIP-848 consumer group
	// (consumer.go); it then has no classic members.
	cg *consumerGroup
}

// member is one member of a group; its group's mu guards it.
type member struct {
	id         string
	instanceID *string
	clientID   string
	clientHost string
	// sessionTimeout and rebalanceTimeout come from the latest JoinGroup.
	sessionTimeout   time.Duration
	rebalanceTimeout time.Duration
	protocols        []kmsg.JoinGroupRequestProtocol
	assignment       []byte
	// join and sync are set while the member's JoinGroup or SyncGroup
	// waits for the rebalance; its session timer is stopped meanwhile.
	join    *joinWaiter
	sync    *syncWaiter
	session gtimer
}

// joinWaiter is a JoinGroup waiting for the rebalance to complete.
type joinWaiter struct {
	req   *kmsg.JoinGroupRequest
	reply func(*kmsg.JoinGroupResponse)
}

// syncWaiter is a SyncGroup waiting for the leader's assignment.
type syncWaiter struct {
	req   *kmsg.SyncGroupRequest
	reply func(*kmsg.SyncGroupResponse)
}

// Client identifies the client behind a request, as DescribeGroups and
// ConsumerGroupDescribe report it.
type Client struct {
	// ID is the request header's client ID.
	ID string
	// Host is the client's address, in Kafka's form (a leading slash).
	Host string
}

func (g *group) setStateLocked(s groupState) {
	g.state = s
	g.stateSince = g.c.clock.Now()
}

// millis converts a request's millisecond field.
func millis(ms int32) time.Duration { return time.Duration(ms) * time.Millisecond }

// joinError is a JoinGroup answer carrying only an error.
func joinError(req *kmsg.JoinGroupRequest, memberID string, code int16) *kmsg.JoinGroupResponse {
	resp := req.ResponseKind().(*kmsg.JoinGroupResponse)
	resp.ErrorCode, resp.MemberID = code, memberID
	return resp
}

// Join serves JoinGroup. reply is called exactly once (see the lock notes
// in coordinator.go), possibly only after a rebalance.
func (c *Coordinator) Join(ctx context.Context, req *kmsg.JoinGroupRequest, cl Client, reply func(*kmsg.JoinGroupResponse)) {
	st := millis(req.SessionTimeoutMillis)
	switch {
	case req.Group == "":
		reply(joinError(req, req.MemberID, kerr.InvalidGroupID.Code))
		return
	case st < c.cfg.MinSessionTimeout || st > c.cfg.MaxSessionTimeout:
		reply(joinError(req, req.MemberID, kerr.InvalidSessionTimeout.Code))
		return
	case req.ProtocolType == "" || len(req.Protocols) == 0:
		reply(joinError(req, req.MemberID, kerr.InconsistentGroupProtocol.Code))
		return
	}
	mode := lookupMemory
	if req.MemberID == "" {
		mode = lookupCreate
	}
	g, err := c.lockGroup(ctx, req.Group, mode)
	if err != nil {
		reply(joinError(req, req.MemberID, c.errorCode(err)))
		return
	}
	if g == nil {
		reply(joinError(req, req.MemberID, kerr.UnknownMemberID.Code))
		return
	}
	defer g.mu.Unlock()
	g.joinLocked(req, cl, reply)
}

func (g *group) joinLocked(req *kmsg.JoinGroupRequest, cl Client, reply func(*kmsg.JoinGroupResponse)) {
	if g.cg != nil {
		// Classic members cannot join a consumer group with members;
		// an empty one becomes classic again, as in Kafka.
		if len(g.cg.members) > 0 {
			reply(joinError(req, req.MemberID, kerr.InconsistentGroupProtocol.Code))
			return
		}
		g.cg = nil
	}
	if !g.supportsLocked(req.ProtocolType, req.Protocols) {
		reply(joinError(req, req.MemberID, kerr.InconsistentGroupProtocol.Code))
		return
	}
	w := &joinWaiter{req: req, reply: reply}
	if req.MemberID == "" {
		g.joinNewLocked(w, cl)
		return
	}
	if code := g.checkInstanceLocked(req.InstanceID, req.MemberID); code != 0 {
		reply(joinError(req, req.MemberID, code))
		return
	}
	if t, ok := g.pending[req.MemberID]; ok {
		t.stop()
		delete(g.pending, req.MemberID)
		g.addMemberLocked(g.newMember(req.MemberID, w, cl), w)
		return
	}
	m := g.members[req.MemberID]
	if m == nil {
		reply(joinError(req, req.MemberID, kerr.UnknownMemberID.Code))
		return
	}
	same := sameProtocols(m.protocols, req.Protocols)
	switch {
	case g.state == stateCompletingRebalance && same,
		g.state == stateStable && same && m.id != g.leader:
		// A retry of a JoinGroup whose answer was lost: answer again.
		reply(g.joinResponseLocked(m, req))
	default:
		g.updateMemberLocked(m, w, cl)
		g.rebalanceLocked()
	}
}

// joinNewLocked serves a JoinGroup without a member ID.
func (g *group) joinNewLocked(w *joinWaiter, cl Client) {
	req := w.req
	if req.InstanceID != nil {
		if old, ok := g.static[*req.InstanceID]; ok && g.members[old] != nil {
			g.replaceStaticLocked(g.members[old], w, cl)
			return
		}
		// A new static member joins at once (no MEMBER_ID_REQUIRED).
		g.addMemberLocked(g.newMember(newMemberID(*req.InstanceID), w, cl), w)
		return
	}
	id := newMemberID(cl.ID)
	if req.Version >= 4 {
		// KIP-394: hand out the ID; the member joins with it.
		t := &gtimer{}
		g.pending[id] = t
		g.c.armLocked(g, t, millis(req.SessionTimeoutMillis), func() {
			delete(g.pending, id)
			if g.state == statePreparingRebalance {
				g.tryCompleteJoinLocked()
			}
		})
		w.reply(joinError(req, id, kerr.MemberIDRequired.Code))
		return
	}
	g.addMemberLocked(g.newMember(id, w, cl), w)
}

func (g *group) newMember(id string, w *joinWaiter, cl Client) *member {
	m := &member{id: id, instanceID: w.req.InstanceID}
	g.updateMemberLocked(m, w, cl)
	return m
}

// updateMemberLocked records a member's JoinGroup and parks its answer.
func (g *group) updateMemberLocked(m *member, w *joinWaiter, cl Client) {
	req := w.req
	m.clientID, m.clientHost = cl.ID, cl.Host
	m.sessionTimeout = millis(req.SessionTimeoutMillis)
	m.rebalanceTimeout = millis(req.RebalanceTimeoutMillis)
	if req.Version == 0 || req.RebalanceTimeoutMillis <= 0 {
		m.rebalanceTimeout = m.sessionTimeout
	}
	m.protocols = req.Protocols
	if m.join != nil && m.join != w {
		// A second JoinGroup replaces the first, which is told to retry.
		m.join.reply(joinError(m.join.req, m.id, kerr.RebalanceInProgress.Code))
	}
	m.join = w
	m.session.stop()
}

// addMemberLocked adds a member that just joined and rebalances.
func (g *group) addMemberLocked(m *member, w *joinWaiter) {
	if len(g.members) == 0 {
		g.protocolType = w.req.ProtocolType
	}
	g.members[m.id] = m
	if g.leader == "" {
		g.leader = m.id
	}
	if m.instanceID != nil {
		g.static[*m.instanceID] = m.id
	}
	if g.delaying {
		g.delayJoined = true
	}
	g.rebalanceLocked()
}

// replaceStaticLocked serves a JoinGroup without member ID from a known
// instance ID (KIP-345): the instance gets a new member ID, keeps its
// assignment, and the old member ID is fenced. A Stable group skips the
// rebalance when the member's protocols and metadata are unchanged (Kafka
// only asks that the chosen protocol stays; a changed subscription then
// goes unassigned until some later rebalance, so we rebalance), and, for
// the leader, when it can be told to skip the assignment (v9+).
func (g *group) replaceStaticLocked(old *member, w *joinWaiter, cl Client) {
	req := w.req
	unchanged := sameProtocols(old.protocols, req.Protocols)
	g.fenceLocked(old)
	m := &member{id: newMemberID(*req.InstanceID), instanceID: req.InstanceID, assignment: old.assignment}
	delete(g.members, old.id)
	g.members[m.id] = m
	g.static[*req.InstanceID] = m.id
	if g.leader == old.id {
		g.leader = m.id
	}
	if g.pendingSync[old.id] {
		delete(g.pendingSync, old.id)
		g.pendingSync[m.id] = true
	}
	g.updateMemberLocked(m, w, cl)
	isLeader := g.leader == m.id
	if g.state == stateStable && unchanged && (!isLeader || req.Version >= 9) {
		m.join = nil
		resp := g.joinResponseLocked(m, req)
		resp.SkipAssignment = isLeader
		g.touchLocked(m)
		w.reply(resp)
		return
	}
	g.rebalanceLocked()
}

// fenceLocked answers a replaced static member's waiting requests with
// FENCED_INSTANCE_ID and stops its session timer.
func (g *group) fenceLocked(m *member) {
	if m.join != nil {
		m.join.reply(joinError(m.join.req, m.id, kerr.FencedInstanceID.Code))
		m.join = nil
	}
	if m.sync != nil {
		m.sync.reply(syncError(m.sync.req, kerr.FencedInstanceID.Code))
		m.sync = nil
	}
	m.session.stop()
}

// checkInstanceLocked checks a request's instance ID against its member
// ID: FENCED_INSTANCE_ID when the instance now has another member ID.
func (g *group) checkInstanceLocked(instanceID *string, memberID string) int16 {
	if instanceID == nil {
		return 0
	}
	if id, ok := g.static[*instanceID]; ok && id != memberID {
		return kerr.FencedInstanceID.Code
	}
	return 0
}

// checkMemberLocked is the member check of SyncGroup, Heartbeat and
// OffsetCommit.
func (g *group) checkMemberLocked(memberID string, instanceID *string) (*member, int16) {
	if code := g.checkInstanceLocked(instanceID, memberID); code != 0 {
		return nil, code
	}
	m := g.members[memberID]
	if m == nil {
		return nil, kerr.UnknownMemberID.Code
	}
	return m, 0
}

// supportsLocked reports whether a joining member fits the group: an
// Empty group takes any protocol type; otherwise the type must match and
// one of the member's protocols must be supported by every member.
func (g *group) supportsLocked(protocolType string, protocols []kmsg.JoinGroupRequestProtocol) bool {
	if len(g.members) == 0 {
		return true
	}
	if protocolType != g.protocolType {
		return false
	}
	for _, p := range protocols {
		if g.supportedByAllLocked(p.Name) {
			return true
		}
	}
	return false
}

func (g *group) supportedByAllLocked(name string) bool {
	for _, m := range g.members {
		if !slices.ContainsFunc(m.protocols, func(p kmsg.JoinGroupRequestProtocol) bool { return p.Name == name }) {
			return false
		}
	}
	return true
}

func sameProtocols(a, b []kmsg.JoinGroupRequestProtocol) bool {
	return slices.EqualFunc(a, b, func(x, y kmsg.JoinGroupRequestProtocol) bool {
		return x.Name == y.Name && bytes.Equal(x.Metadata, y.Metadata)
	})
}

// selectProtocolLocked picks the protocol for the next generation: among
// the protocols every member supports, each member votes for its most
// preferred; most votes wins, ties by name.
func (g *group) selectProtocolLocked() string {
	votes := make(map[string]int)
	for _, m := range g.members {
		for _, p := range m.protocols {
			if g.supportedByAllLocked(p.Name) {
				votes[p.Name]++
				break
			}
		}
	}
	best := ""
	for name, n := range votes {
		if best == "" || n > votes[best] || (n == votes[best] && name < best) {
			best = name
		}
	}
	return best
}

// sortedMembersLocked returns the members ordered by ID (deterministic
// answers and leader choice).
func (g *group) sortedMembersLocked() []*member {
	ms := make([]*member, 0, len(g.members))
	for _, m := range g.members {
		ms = append(ms, m)
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].id < ms[j].id })
	return ms
}

// joinResponseLocked is the current generation's JoinGroup answer for m.
func (g *group) joinResponseLocked(m *member, req *kmsg.JoinGroupRequest) *kmsg.JoinGroupResponse {
	resp := req.ResponseKind().(*kmsg.JoinGroupResponse)
	resp.Generation = g.generation
	resp.ProtocolType = kmsg.StringPtr(g.protocolType)
	resp.Protocol = kmsg.StringPtr(g.protocol)
	resp.LeaderID, resp.MemberID = g.leader, m.id
	if m.id != g.leader {
		return resp
	}
	for _, o := range g.sortedMembersLocked() {
		for _, p := range o.protocols {
			if p.Name == g.protocol {
				resp.Members = append(resp.Members, kmsg.JoinGroupResponseMember{
					MemberID: o.id, InstanceID: o.instanceID, ProtocolMetadata: p.Metadata})
				break
			}
		}
	}
	return resp
}

// touchLocked restarts m's session timer (a heartbeat, commit or answer).
// A member whose JoinGroup or SyncGroup waits has no session timer.
func (g *group) touchLocked(m *member) {
	if m.join != nil || m.sync != nil {
		return
	}
	g.c.armLocked(g, &m.session, m.sessionTimeout, func() {
		if g.members[m.id] == m {
			g.c.logger.Info("group member session expired", "group", g.name, "member", m.id)
			g.memberGoneLocked(m)
		}
	})
}

// rebalanceLocked starts a rebalance, or, if one is under way, checks
// whether it can complete.
func (g *group) rebalanceLocked() {
	switch g.state {
	case stateEmpty, stateStable, stateCompletingRebalance:
		g.prepareRebalanceLocked()
	case statePreparingRebalance:
		g.tryCompleteJoinLocked()
	}
}

// prepareRebalanceLocked moves to PreparingRebalance: waiting SyncGroups
// get REBALANCE_IN_PROGRESS, and the join timer starts.
func (g *group) prepareRebalanceLocked() {
	if g.state == stateCompletingRebalance {
		for _, m := range g.members {
			m.assignment = nil
			if m.sync != nil {
				m.sync.reply(syncError(m.sync.req, kerr.RebalanceInProgress.Code))
				m.sync = nil
				g.touchLocked(m)
			}
		}
	}
	g.syncTimer.stop()
	g.pendingSync = nil
	wasEmpty := g.state == stateEmpty
	g.setStateLocked(statePreparingRebalance)
	timeout := g.rebalanceTimeoutLocked()
	if delay := g.c.cfg.InitialRebalanceDelay; wasEmpty && delay > 0 {
		d := min(delay, timeout)
		g.delaying, g.delayLeft, g.delayJoined = true, timeout-d, false
		g.c.armLocked(g, &g.joinTimer, d, g.initialDelayExpiredLocked)
		return
	}
	g.delaying = false
	g.c.armLocked(g, &g.joinTimer, timeout, g.completeJoinLocked)
	g.tryCompleteJoinLocked()
}

// initialDelayExpiredLocked extends the initial delay while members keep
// arriving and rebalance time is left; otherwise the join completes.
func (g *group) initialDelayExpiredLocked() {
	if g.delayJoined && g.delayLeft > 0 {
		d := min(g.c.cfg.InitialRebalanceDelay, g.delayLeft)
		g.delayLeft -= d
		g.delayJoined = false
		g.c.armLocked(g, &g.joinTimer, d, g.initialDelayExpiredLocked)
		return
	}
	g.completeJoinLocked()
}

// rebalanceTimeoutLocked is the largest rebalance timeout of the members.
func (g *group) rebalanceTimeoutLocked() time.Duration {
	var d time.Duration
	for _, m := range g.members {
		d = max(d, m.rebalanceTimeout)
	}
	return d
}

// tryCompleteJoinLocked completes the join phase once every member and
// every handed-out member ID has joined (never during the initial delay).
func (g *group) tryCompleteJoinLocked() {
	if g.delaying || len(g.pending) > 0 {
		return
	}
	for _, m := range g.members {
		if m.join == nil {
			return
		}
	}
	g.completeJoinLocked()
}

// completeJoinLocked ends the join phase: members that did not join are
// removed, the generation advances, and every joined member is answered.
func (g *group) completeJoinLocked() {
	g.joinTimer.stop()
	g.delaying = false
	for _, m := range g.sortedMembersLocked() {
		if m.join == nil {
			g.removeMemberLocked(m, kerr.UnknownMemberID.Code)
		}
	}
	g.generation++
	if len(g.members) == 0 {
		g.protocol, g.subscribed = "", nil
		g.setStateLocked(stateEmpty)
		return
	}
	g.protocol = g.selectProtocolLocked()
	g.subscribed = g.subscriptionsLocked()
	if g.members[g.leader] == nil {
		g.leader = g.sortedMembersLocked()[0].id
	}
	g.setStateLocked(stateCompletingRebalance)
	g.pendingSync = make(map[string]bool, len(g.members))
	for _, m := range g.sortedMembersLocked() {
		g.pendingSync[m.id] = true
		w := m.join
		m.join = nil
		w.reply(g.joinResponseLocked(m, w.req))
		g.touchLocked(m)
	}
	g.c.armLocked(g, &g.syncTimer, g.rebalanceTimeoutLocked(), g.syncExpiredLocked)
}

// syncExpiredLocked removes the members that got their JoinGroup answer
// but sent no SyncGroup within the rebalance timeout, and rebalances.
func (g *group) syncExpiredLocked() {
	if len(g.pendingSync) == 0 || (g.state != stateCompletingRebalance && g.state != stateStable) {
		return
	}
	for _, m := range g.sortedMembersLocked() {
		if g.pendingSync[m.id] {
			g.removeMemberLocked(m, kerr.UnknownMemberID.Code)
		}
	}
	g.pendingSync = nil
	g.prepareRebalanceLocked()
}

// subscriptionsLocked decodes the consumer-protocol members' subscribed
// topics; nil if the group is not a consumer group or any metadata does
// not decode.
func (g *group) subscriptionsLocked() map[string]bool {
	if g.protocolType != consumerProtocolType {
		return nil
	}
	topics := make(map[string]bool)
	for _, m := range g.members {
		for _, p := range m.protocols {
			if p.Name != g.protocol {
				continue
			}
			var md kmsg.ConsumerMemberMetadata
			if err := md.ReadFrom(p.Metadata); err != nil {
				return nil
			}
			for _, t := range md.Topics {
				topics[t] = true
			}
		}
	}
	return topics
}

// removeMemberLocked drops m, answering its waiting requests with code.
// It does not rebalance.
func (g *group) removeMemberLocked(m *member, code int16) {
	if m.join != nil {
		m.join.reply(joinError(m.join.req, m.id, code))
		m.join = nil
	}
	if m.sync != nil {
		m.sync.reply(syncError(m.sync.req, code))
		m.sync = nil
	}
	m.session.stop()
	delete(g.members, m.id)
	delete(g.pendingSync, m.id)
	if m.instanceID != nil && g.static[*m.instanceID] == m.id {
		delete(g.static, *m.instanceID)
	}
	if g.leader == m.id {
		g.leader = ""
		if ms := g.sortedMembersLocked(); len(ms) > 0 {
			g.leader = ms[0].id
		}
	}
}

// memberGoneLocked removes a member that left or expired and rebalances.
func (g *group) memberGoneLocked(m *member) {
	g.removeMemberLocked(m, kerr.UnknownMemberID.Code)
	g.rebalanceLocked()
}

// shutdownLocked stops the group's timers and answers its waiting
// requests with COORDINATOR_NOT_AVAILABLE (the broker is stopping).
func (g *group) shutdownLocked() {
	g.shutdownConsumerLocked()
	g.joinTimer.stop()
	g.syncTimer.stop()
	for _, t := range g.pending {
		t.stop()
	}
	for _, m := range g.members {
		if m.join != nil {
			m.join.reply(joinError(m.join.req, m.id, kerr.CoordinatorNotAvailable.Code))
			m.join = nil
		}
		if m.sync != nil {
			m.sync.reply(syncError(m.sync.req, kerr.CoordinatorNotAvailable.Code))
			m.sync = nil
		}
		m.session.stop()
	}
}
