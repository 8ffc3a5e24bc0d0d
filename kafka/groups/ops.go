package groups

// The coordinator's requests other than JoinGroup: SyncGroup,
// Heartbeat, LeaveGroup, the admin views (DescribeGroups, ListGroups,
// DeleteGroups) and the group checks of OffsetCommit and OffsetDelete.

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/streamhouse/streamhouse/meta"
)

// errorCode maps a coordinator error to a Kafka error code: ErrClosed is
// COORDINATOR_NOT_AVAILABLE, a meta error what package kafka's mapping
// (New's errorCode) says.
func (c *Coordinator) errorCode(err error) int16 {
	if errors.Is(err, ErrClosed) {
		return kerr.CoordinatorNotAvailable.Code
	}
	return c.metaCode(err)
}

// syncError is a SyncGroup answer carrying only an error.
func syncError(req *kmsg.SyncGroupRequest, code int16) *kmsg.SyncGroupResponse {
	resp := req.ResponseKind().(*kmsg.SyncGroupResponse)
	resp.ErrorCode = code
	return resp
}

// Sync serves SyncGroup. reply is called exactly once, possibly only
// when the leader's assignment arrives.
func (c *Coordinator) Sync(ctx context.Context, req *kmsg.SyncGroupRequest, reply func(*kmsg.SyncGroupResponse)) {
	if req.Group == "" {
		reply(syncError(req, kerr.InvalidGroupID.Code))
		return
	}
	g, err := c.lockGroup(ctx, req.Group, lookupMemory)
	if err != nil {
		reply(syncError(req, c.errorCode(err)))
		return
	}
	if g == nil {
		reply(syncError(req, kerr.UnknownMemberID.Code))
		return
	}
	defer g.mu.Unlock()
	g.syncLocked(req, reply)
}

func (g *group) syncLocked(req *kmsg.SyncGroupRequest, reply func(*kmsg.SyncGroupResponse)) {
	m, code := g.checkMemberLocked(req.MemberID, req.InstanceID)
	switch {
	case code != 0:
	case req.Generation != g.generation:
		code = kerr.IllegalGeneration.Code
	case req.ProtocolType != nil && *req.ProtocolType != g.protocolType,
		req.Protocol != nil && *req.Protocol != g.protocol:
		code = kerr.InconsistentGroupProtocol.Code
	case g.state == statePreparingRebalance:
		code = kerr.RebalanceInProgress.Code
	case g.state == stateCompletingRebalance:
		delete(g.pendingSync, m.id)
		if m.sync != nil {
			m.sync.reply(syncError(m.sync.req, kerr.RebalanceInProgress.Code))
		}
		m.sync = &syncWaiter{req: req, reply: reply}
		m.session.stop()
		if m.id == g.leader {
			g.assignLocked(req.GroupAssignment)
		}
		g.maybeStopSyncTimerLocked()
		return
	case g.state == stateStable:
		delete(g.pendingSync, m.id)
		reply(g.syncResponseLocked(m, req))
		g.touchLocked(m)
		g.maybeStopSyncTimerLocked()
		return
	default:
		code = kerr.UnknownMemberID.Code
	}
	reply(syncError(req, code))
}

func (g *group) maybeStopSyncTimerLocked() {
	if len(g.pendingSync) == 0 {
		g.syncTimer.stop()
	}
}

// assignLocked takes the leader's assignment: the group is Stable and
// every waiting SyncGroup is answered. Members the leader left out get an
// empty assignment.
func (g *group) assignLocked(as []kmsg.SyncGroupRequestGroupAssignment) {
	for _, m := range g.members {
		m.assignment = nil
	}
	for _, a := range as {
		if m := g.members[a.MemberID]; m != nil {
			m.assignment = a.MemberAssignment
		}
	}
	g.setStateLocked(stateStable)
	for _, m := range g.sortedMembersLocked() {
		if w := m.sync; w != nil {
			m.sync = nil
			w.reply(g.syncResponseLocked(m, w.req))
			g.touchLocked(m)
		}
	}
}

func (g *group) syncResponseLocked(m *member, req *kmsg.SyncGroupRequest) *kmsg.SyncGroupResponse {
	resp := req.ResponseKind().(*kmsg.SyncGroupResponse)
	resp.ProtocolType = kmsg.StringPtr(g.protocolType)
	resp.Protocol = kmsg.StringPtr(g.protocol)
	resp.MemberAssignment = m.assignment
	if resp.MemberAssignment == nil {
		resp.MemberAssignment = []byte{}
	}
	return resp
}

// Heartbeat serves Heartbeat.
func (c *Coordinator) Heartbeat(ctx context.Context, req *kmsg.HeartbeatRequest) int16 {
	if req.Group == "" {
		return kerr.InvalidGroupID.Code
	}
	g, err := c.lockGroup(ctx, req.Group, lookupMemory)
	if err != nil {
		return c.errorCode(err)
	}
	if g == nil {
		return kerr.UnknownMemberID.Code
	}
	defer g.mu.Unlock()
	m, code := g.checkMemberLocked(req.MemberID, req.InstanceID)
	switch {
	case code != 0:
		return code
	case req.Generation != g.generation:
		return kerr.IllegalGeneration.Code
	case g.state == statePreparingRebalance:
		g.touchLocked(m)
		return kerr.RebalanceInProgress.Code
	case g.state == stateCompletingRebalance, g.state == stateStable:
		g.touchLocked(m)
		return 0
	}
	return kerr.UnknownMemberID.Code
}

// Leave serves LeaveGroup; v0-v2's single member is handled as a batch of
// one.
func (c *Coordinator) Leave(ctx context.Context, req *kmsg.LeaveGroupRequest) *kmsg.LeaveGroupResponse {
	resp := req.ResponseKind().(*kmsg.LeaveGroupResponse)
	members := req.Members
	if req.Version < 3 {
		members = []kmsg.LeaveGroupRequestMember{{MemberID: req.MemberID}}
	}
	if req.Group == "" {
		resp.ErrorCode = kerr.InvalidGroupID.Code
		return resp
	}
	g, err := c.lockGroup(ctx, req.Group, lookupMemory)
	if err != nil {
		resp.ErrorCode = c.errorCode(err)
		return resp
	}
	for _, rm := range members {
		out := kmsg.NewLeaveGroupResponseMember()
		out.MemberID, out.InstanceID, out.ErrorCode = rm.MemberID, rm.InstanceID, kerr.UnknownMemberID.Code
		if g != nil {
			out.ErrorCode = g.leaveLocked(rm)
		}
		resp.Members = append(resp.Members, out)
	}
	if g != nil {
		g.mu.Unlock()
	}
	if req.Version < 3 {
		resp.ErrorCode, resp.Members = resp.Members[0].ErrorCode, nil
	}
	return resp
}

// leaveLocked removes one member (by member ID, or by instance ID for
// static members) and rebalances.
func (g *group) leaveLocked(rm kmsg.LeaveGroupRequestMember) int16 {
	id := rm.MemberID
	if rm.InstanceID != nil {
		known, ok := g.static[*rm.InstanceID]
		switch {
		case !ok:
			return kerr.UnknownMemberID.Code
		case id != "" && id != known:
			return kerr.FencedInstanceID.Code
		}
		id = known
	}
	if t, ok := g.pending[id]; ok {
		t.stop()
		delete(g.pending, id)
		if g.state == statePreparingRebalance {
			g.tryCompleteJoinLocked()
		}
		return 0
	}
	m := g.members[id]
	if m == nil {
		return kerr.UnknownMemberID.Code
	}
	g.c.logger.Debug("group member left", "group", g.name, "member", id)
	g.memberGoneLocked(m)
	return 0
}

// Describe serves one group of DescribeGroups. Members' metadata and
// assignments are reported only when the group is Stable, as Kafka does.
func (c *Coordinator) Describe(ctx context.Context, name string, version int16) kmsg.DescribeGroupsResponseGroup {
	sg := kmsg.NewDescribeGroupsResponseGroup()
	sg.Group = name
	g, err := c.lockGroup(ctx, name, lookupStored)
	if err != nil {
		sg.ErrorCode = c.errorCode(err)
		return sg
	}
	if g != nil && g.cg != nil {
		// A KIP-848 group is not a classic group: Kafka answers as for
		// a group that does not exist.
		g.mu.Unlock()
		g = nil
	}
	if g == nil {
		sg.State = stateDead.String()
		if version >= 6 {
			sg.ErrorCode = kerr.GroupIDNotFound.Code
			sg.ErrorMessage = kmsg.StringPtr(fmt.Sprintf("group %q does not exist", name))
		}
		return sg
	}
	defer g.mu.Unlock()
	sg.State, sg.ProtocolType = g.state.String(), g.protocolType
	stable := g.state == stateStable
	if stable {
		sg.Protocol = g.protocol
	}
	for _, m := range g.sortedMembersLocked() {
		sm := kmsg.NewDescribeGroupsResponseGroupMember()
		sm.MemberID, sm.InstanceID, sm.ClientID, sm.ClientHost = m.id, m.instanceID, m.clientID, m.clientHost
		if stable {
			for _, p := range m.protocols {
				if p.Name == g.protocol {
					sm.ProtocolMetadata = p.Metadata
				}
			}
			sm.MemberAssignment = m.assignment
		}
		sg.Members = append(sg.Members, sm)
	}
	return sg
}

// Summary is one ListGroups entry.
type Summary struct {
	Name, ProtocolType string
	// State is Kafka's name of the state; Type is TypeClassic or
	// TypeConsumer (KIP-848).
	State, Type string
}

// List returns every group: those in memory with their state, and those
// known only from committed offsets in meta as Empty.
func (c *Coordinator) List(ctx context.Context) ([]Summary, error) {
	names, err := c.groupNames(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]Summary, 0, len(names))
	for _, name := range names {
		g, err := c.lockGroup(ctx, name, lookupMemory)
		if err != nil {
			return nil, err
		}
		if g == nil {
			out = append(out, Summary{Name: name, State: stateEmpty.String(), Type: TypeClassic})
			continue
		}
		s := Summary{Name: name, ProtocolType: g.protocolType, State: g.state.String(), Type: TypeClassic}
		if g.cg != nil {
			s.State, s.Type = g.cg.stateName(), TypeConsumer
		}
		out = append(out, s)
		g.mu.Unlock()
	}
	return out, nil
}

// DeleteGroup serves one group of DeleteGroups: only a group without
// members can go; its committed offsets go with it.
func (c *Coordinator) DeleteGroup(ctx context.Context, name string) (int16, error) {
	g, err := c.lockGroup(ctx, name, lookupStored)
	if err != nil {
		return c.errorCode(err), err
	}
	if g == nil {
		return kerr.GroupIDNotFound.Code, fmt.Errorf("group %q does not exist", name)
	}
	if g.state != stateEmpty {
		g.mu.Unlock()
		return kerr.NonEmptyGroup.Code, fmt.Errorf("group %q has members", name)
	}
	if err := c.meta.DeleteGroup(ctx, name); err != nil {
		g.mu.Unlock()
		return c.errorCode(err), err
	}
	g.shutdownLocked()
	for id, t := range g.pending {
		t.stop()
		delete(g.pending, id)
	}
	g.setStateLocked(stateDead)
	g.mu.Unlock()
	c.forget(g)
	return 0, nil
}

// Commit checks an OffsetCommit against the group (Kafka's
// validateOffsetCommit) and, if it passes, stores offsets. It returns the
// group-level error code, or a storage error.
//
// A commit with generation -1, no member ID and no instance ID is a
// "simple" commit: accepted when the group has no members, creating the
// group if needed. Any other commit must come from a current member of
// the current generation, and not while the group completes a rebalance.
// KIP-848 consumer groups check member epochs instead
// (checkConsumerCommitLocked); the partitions in stale are not written
// and get STALE_MEMBER_EPOCH.
func (c *Coordinator) Commit(ctx context.Context, req *kmsg.OffsetCommitRequest, offsets []meta.CommittedOffset) (code int16, stale map[meta.TopicPartition]bool, err error) {
	mode := lookupStored
	if req.Generation < 0 {
		mode = lookupCreate
	}
	g, err := c.lockGroup(ctx, req.Group, mode)
	if err != nil {
		return c.errorCode(err), nil, nil
	}
	if g == nil {
		if req.Version >= 9 {
			return kerr.GroupIDNotFound.Code, nil, nil
		}
		return kerr.IllegalGeneration.Code, nil, nil
	}
	defer g.mu.Unlock()
	if g.cg != nil {
		if code, stale = g.checkConsumerCommitLocked(req, offsets); code != 0 {
			return code, nil, nil
		}
		if len(stale) > 0 {
			offsets = slices.DeleteFunc(slices.Clone(offsets), func(o meta.CommittedOffset) bool {
				return stale[meta.TopicPartition{Topic: o.Topic, Partition: o.Partition}]
			})
		}
		if len(offsets) == 0 {
			return 0, stale, nil
		}
		return 0, stale, c.meta.CommitOffsets(ctx, offsets)
	}
	m, code := g.checkCommitLocked(req)
	if code != 0 {
		return code, nil, nil
	}
	if err := c.meta.CommitOffsets(ctx, offsets); err != nil {
		return 0, nil, err
	}
	if m != nil {
		g.touchLocked(m)
	}
	return 0, nil, nil
}

func (g *group) checkCommitLocked(req *kmsg.OffsetCommitRequest) (*member, int16) {
	if req.Generation < 0 && g.state == stateEmpty {
		return nil, 0
	}
	var m *member
	if req.Generation >= 0 || req.MemberID != "" || req.InstanceID != nil {
		var code int16
		if m, code = g.checkMemberLocked(req.MemberID, req.InstanceID); code != 0 {
			return nil, code
		}
		if req.Generation != g.generation {
			return nil, kerr.IllegalGeneration.Code
		}
	} else if g.state != stateEmpty {
		return nil, kerr.UnknownMemberID.Code
	}
	if g.state == stateCompletingRebalance {
		return nil, kerr.RebalanceInProgress.Code
	}
	return m, 0
}

// DeleteOffsets serves OffsetDelete for partitions that exist: a group
// without members loses them all; a consumer group with members keeps
// those of topics it subscribes to (GROUP_SUBSCRIBED_TO_TOPIC, reported
// in refused); any other group with members refuses (NON_EMPTY_GROUP).
func (c *Coordinator) DeleteOffsets(ctx context.Context, name string, parts []meta.TopicPartition) (code int16, refused map[meta.TopicPartition]bool, err error) {
	g, err := c.lockGroup(ctx, name, lookupStored)
	if err != nil {
		return c.errorCode(err), nil, nil
	}
	if g == nil {
		return kerr.GroupIDNotFound.Code, nil, nil
	}
	defer g.mu.Unlock()
	if g.state != stateEmpty && g.protocolType != consumerProtocolType {
		return kerr.NonEmptyGroup.Code, nil, nil
	}
	refused = make(map[meta.TopicPartition]bool)
	del := make([]meta.TopicPartition, 0, len(parts))
	for _, tp := range parts {
		if g.state != stateEmpty && g.subscribed[tp.Topic] {
			refused[tp] = true
			continue
		}
		del = append(del, tp)
	}
	return 0, refused, c.meta.DeleteOffsets(ctx, name, del)
}

// CheckTxnCommit is the group check of TxnOffsetCommit (Kafka's
// validateTransactionalOffsetCommit); it returns 0 or the error code for
// every partition. A commit without member ID, instance ID and generation
// (generation -1; all of TxnOffsetCommit v0-v2) is accepted in any state,
// since the transaction coordinator has checked the producer; so is one
// with generation -1 to a group without members or that does not exist.
// Otherwise the member and generation must be current (UNKNOWN_MEMBER_ID,
// FENCED_INSTANCE_ID, ILLEGAL_GENERATION, also for a generation given to a
// group that does not exist); a KIP-848 group checks the member epoch
// (ILLEGAL_GENERATION when it is not the member's, as Kafka answers
// here). A rebalance in progress does not refuse a transactional commit.
func (c *Coordinator) CheckTxnCommit(ctx context.Context, name, memberID string, instanceID *string, generation int32) int16 {
	g, err := c.lockGroup(ctx, name, lookupStored)
	if err != nil {
		return c.errorCode(err)
	}
	if g == nil {
		if generation < 0 {
			return 0
		}
		return kerr.IllegalGeneration.Code
	}
	defer g.mu.Unlock()
	anonymous := generation < 0 && memberID == "" && instanceID == nil
	if cg := g.cg; cg != nil {
		if anonymous || generation < 0 && len(cg.members) == 0 {
			return 0
		}
		m := cg.members[memberID]
		switch {
		case m == nil:
			return kerr.UnknownMemberID.Code
		case generation != m.epoch:
			return kerr.IllegalGeneration.Code
		}
		return 0
	}
	if anonymous || generation < 0 && g.state == stateEmpty {
		return 0
	}
	if _, code := g.checkMemberLocked(memberID, instanceID); code != 0 {
		return code
	}
	if generation != g.generation {
		return kerr.IllegalGeneration.Code
	}
	return 0
}
