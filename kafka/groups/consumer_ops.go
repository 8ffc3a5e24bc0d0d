package groups

// The coordinator's KIP-848 requests: ConsumerGroupHeartbeat (join,
// heartbeat, leave), ConsumerGroupDescribe, and the consumer-group checks
// of OffsetCommit and OffsetFetch. See consumer.go for the model.

import (
	"context"
	"fmt"
	"slices"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/streamhouse/streamhouse/meta"
)

// CheckHeartbeat is Kafka's request validation of ConsumerGroupHeartbeat:
// the error code and message to answer with, or 0 for a request that
// ConsumerHeartbeat may serve.
func CheckHeartbeat(req *kmsg.ConsumerGroupHeartbeatRequest) (int16, string) {
	bad := kerr.InvalidRequest.Code
	switch {
	case req.Group == "":
		return bad, "GroupId can't be empty."
	case req.MemberID == "":
		return bad, "MemberId can't be empty."
	case req.InstanceID != nil && *req.InstanceID == "":
		return bad, "InstanceId can't be empty."
	case req.RackID != nil && *req.RackID == "":
		return bad, "RackId can't be empty."
	case req.MemberEpoch < leaveStaticEpoch:
		return bad, "MemberEpoch is invalid."
	case req.MemberEpoch == 0 && req.RebalanceTimeoutMillis <= 0:
		return bad, "RebalanceTimeoutMs must be provided in first request."
	case req.MemberEpoch == 0 && req.SubscribedTopicNames == nil && req.SubscribedTopicRegex == nil:
		return bad, "SubscribedTopicNames or SubscribedTopicRegex must be set in first request."
	case req.MemberEpoch == 0 && (req.Topics == nil || len(req.Topics) > 0):
		return bad, "TopicPartitions must be empty when (re-)joining."
	case req.ServerAssignor != nil && !knownAssignor(*req.ServerAssignor):
		return kerr.UnsupportedAssignor.Code, "ServerAssignor " + *req.ServerAssignor + " is not supported."
	}
	if req.SubscribedTopicRegex != nil && *req.SubscribedTopicRegex != "" {
		if _, err := compileSubscription(*req.SubscribedTopicRegex); err != nil {
			return kerr.InvalidRegularExpression.Code, err.Error()
		}
	}
	return 0, ""
}

// ConsumerHeartbeat serves a ConsumerGroupHeartbeat that passed
// CheckHeartbeat; topics is the broker's current topic list.
func (c *Coordinator) ConsumerHeartbeat(ctx context.Context, req *kmsg.ConsumerGroupHeartbeatRequest, cl Client, topics *Topics) *kmsg.ConsumerGroupHeartbeatResponse {
	resp := req.ResponseKind().(*kmsg.ConsumerGroupHeartbeatResponse)
	mode := lookupStored
	if req.MemberEpoch == 0 {
		mode = lookupCreate
	}
	g, err := c.lockGroup(ctx, req.Group, mode)
	if err != nil {
		return hbError(resp, c.errorCode(err), "")
	}
	if g == nil {
		return hbError(resp, kerr.GroupIDNotFound.Code, fmt.Sprintf("group %q does not exist", req.Group))
	}
	defer g.mu.Unlock()
	if g.cg == nil {
		switch {
		case len(g.members) > 0 || len(g.pending) > 0:
			return hbError(resp, kerr.GroupIDNotFound.Code, fmt.Sprintf("group %q is not a consumer group", req.Group))
		case req.MemberEpoch != 0:
			return hbError(resp, kerr.UnknownMemberID.Code, "")
		}
		// An empty classic group (or one known only from its
		// offsets) becomes a consumer group, as in Kafka.
		g.cg = newConsumerGroup()
		g.protocolType, g.protocol, g.leader = consumerProtocolType, "", ""
	}
	g.cg.learnTopics(topics)
	if req.MemberEpoch < 0 {
		return g.consumerLeaveLocked(req, resp)
	}
	return g.consumerHeartbeatLocked(req, cl, topics, resp)
}

// consumerHeartbeatLocked serves a join (epoch 0) or a heartbeat.
func (g *group) consumerHeartbeatLocked(req *kmsg.ConsumerGroupHeartbeatRequest, cl Client, topics *Topics, resp *kmsg.ConsumerGroupHeartbeatResponse) *kmsg.ConsumerGroupHeartbeatResponse {
	cg := g.cg
	owned := cg.owned(req.Topics)
	m, joined, code := g.consumerMemberLocked(req, owned)
	if code != 0 {
		return hbError(resp, code, "")
	}
	before := struct {
		epoch    int32
		state    memberState
		assigned partSet
	}{m.epoch, m.state, m.assignedSet()}
	changed := m.update(req, cl) || joined
	refreshed := false
	if topics != cg.partsFrom || changed {
		refreshed, cg.partsFrom = cg.refreshParts(topics.Counts), topics
	}
	if refreshed || changed {
		cg.bump()
	}
	g.reconcileLocked(m, owned)
	g.touchConsumerLocked(m)
	g.syncConsumerStateLocked()
	resp.MemberID = kmsg.StringPtr(m.id)
	resp.MemberEpoch = m.epoch
	resp.HeartbeatIntervalMillis = int32(g.c.cfg.ConsumerHeartbeatInterval.Milliseconds())
	assigned := m.assignedSet()
	if req.MemberEpoch == 0 || !m.sameAs(before.epoch, before.state, before.assigned) ||
		(owned != nil && !owned.equal(assigned)) {
		resp.Assignment = &kmsg.ConsumerGroupHeartbeatResponseAssignment{Topics: cg.assignmentTopics(assigned)}
	}
	return resp
}

// consumerMemberLocked finds (or, joining, creates) the member a
// heartbeat is from and checks its instance ID and epoch. joined is set
// for a member new to the group.
func (g *group) consumerMemberLocked(req *kmsg.ConsumerGroupHeartbeatRequest, owned partSet) (m *cmember, joined bool, code int16) {
	cg := g.cg
	if req.InstanceID != nil {
		old := cg.members[cg.static[*req.InstanceID]]
		if req.MemberEpoch == 0 {
			switch {
			case old == nil:
				return g.newConsumerMemberLocked(req.MemberID, req.InstanceID), true, 0
			case old.id == req.MemberID:
				return old, false, 0
			case old.epoch != leaveStaticEpoch:
				return nil, false, kerr.UnreleasedInstanceID.Code
			}
			// Same epoch and partitions: not a change by itself.
			return g.replaceStaticMemberLocked(old, req.MemberID), false, 0
		}
		switch {
		case old == nil:
			return nil, false, kerr.UnknownMemberID.Code
		case old.id != req.MemberID:
			return nil, false, kerr.FencedInstanceID.Code
		}
		m = old
	} else {
		m = cg.members[req.MemberID]
		if req.MemberEpoch == 0 {
			if m == nil {
				return g.newConsumerMemberLocked(req.MemberID, nil), true, 0
			}
			return m, false, 0
		}
		if m == nil {
			return nil, false, kerr.UnknownMemberID.Code
		}
	}
	if code := m.checkEpoch(req.MemberEpoch, owned); code != 0 {
		return nil, false, code
	}
	return m, false, 0
}

func (g *group) newConsumerMemberLocked(id string, instanceID *string) *cmember {
	m := &cmember{id: id, assigned: make(map[tp]int32)}
	if instanceID != nil {
		m.instanceID = kmsg.StringPtr(*instanceID)
		g.cg.static[*instanceID] = id
	}
	g.cg.members[id] = m
	g.c.logger.Debug("consumer group member joined", "group", g.name, "member", id)
	return m
}

// replaceStaticMemberLocked hands a static member that left with epoch -2
// over to the new member ID of its instance: same epoch, same partitions.
func (g *group) replaceStaticMemberLocked(old *cmember, id string) *cmember {
	cg := g.cg
	old.session.stop()
	old.revokeTimer.stop()
	delete(cg.members, old.id)
	m := &cmember{id: id, instanceID: old.instanceID, rackID: old.rackID, epoch: old.prevEpoch,
		prevEpoch: old.prevEpoch, state: old.state, rebalanceTimeout: old.rebalanceTimeout,
		topics: old.topics, regex: old.regex, re: old.re, assignor: old.assignor,
		assigned: old.assigned, revoking: old.revoking}
	cg.members[id] = m
	cg.static[*m.instanceID] = id
	if t, ok := cg.target[old.id]; ok {
		delete(cg.target, old.id)
		cg.target[id] = t
	}
	g.c.logger.Debug("static consumer group member replaced", "group", g.name, "old", old.id, "member", id)
	return m
}

// update applies a heartbeat's member fields (absent ones keep their
// value) and reports whether the subscription or assignor changed.
func (m *cmember) update(req *kmsg.ConsumerGroupHeartbeatRequest, cl Client) bool {
	m.clientID, m.clientHost = cl.ID, cl.Host
	if req.RackID != nil {
		m.rackID = kmsg.StringPtr(*req.RackID)
	}
	if req.RebalanceTimeoutMillis > 0 {
		m.rebalanceTimeout = millis(req.RebalanceTimeoutMillis)
	}
	changed := false
	if req.SubscribedTopicNames != nil {
		topics := slices.Clone(req.SubscribedTopicNames)
		slices.Sort(topics)
		topics = slices.Compact(topics)
		if !slices.Equal(topics, m.topics) {
			m.topics, changed = topics, true
		}
	}
	if req.SubscribedTopicRegex != nil && *req.SubscribedTopicRegex != m.regex {
		m.regex, m.re, changed = *req.SubscribedTopicRegex, nil, true
		if m.regex != "" {
			m.re, _ = compileSubscription(m.regex) // checked by CheckHeartbeat
		}
	}
	if req.ServerAssignor != nil && *req.ServerAssignor != m.assignor {
		m.assignor, changed = *req.ServerAssignor, true
	}
	return changed
}

// reconcileLocked moves a member towards its target assignment (Kafka's
// CurrentAssignmentBuilder); owned is what its heartbeat says it holds,
// nil if unchanged.
func (g *group) reconcileLocked(m *cmember, owned partSet) {
	cg := g.cg
	switch m.state {
	case memberUnrevoked:
		if owned == nil {
			return
		}
		for p := range m.revoking {
			if _, ok := owned[p]; ok {
				return // not revoked yet
			}
		}
		m.revoking = nil
		m.revokeTimer.stop()
	case memberStable:
		if m.epoch == cg.assignmentEpoch {
			return
		}
	}
	target := cg.target[m.id]
	keep := make(map[tp]int32, len(target))
	revoke := make(partSet)
	for p, e := range m.assigned {
		if _, ok := target[p]; ok {
			keep[p] = e
		} else {
			revoke[p] = struct{}{}
		}
	}
	if len(revoke) > 0 {
		m.assigned, m.revoking, m.state = keep, revoke, memberUnrevoked
		g.armRevokeTimerLocked(m)
		return
	}
	held := cg.heldByOthers(m)
	m.state = memberStable
	for p := range target {
		if _, ok := keep[p]; ok {
			continue
		}
		if _, ok := held[p]; ok {
			m.state = memberUnreleased
			continue
		}
		keep[p] = cg.assignmentEpoch
	}
	if m.epoch != cg.assignmentEpoch {
		m.prevEpoch, m.epoch = m.epoch, cg.assignmentEpoch
	}
	m.assigned = keep
}

// armRevokeTimerLocked fences a member that does not revoke its
// partitions within its rebalance timeout, as Kafka does.
func (g *group) armRevokeTimerLocked(m *cmember) {
	d := m.rebalanceTimeout
	if d <= 0 {
		d = g.c.cfg.ConsumerSessionTimeout
	}
	g.c.armLocked(g, &m.revokeTimer, d, func() {
		if g.cg != nil && g.cg.members[m.id] == m && m.state == memberUnrevoked {
			g.c.logger.Info("consumer group member did not revoke in time", "group", g.name, "member", m.id)
			g.removeConsumerMemberLocked(m)
		}
	})
}

// touchConsumerLocked restarts a member's session timer.
func (g *group) touchConsumerLocked(m *cmember) {
	g.c.armLocked(g, &m.session, g.c.cfg.ConsumerSessionTimeout, func() {
		if g.cg != nil && g.cg.members[m.id] == m {
			g.c.logger.Info("consumer group member session expired", "group", g.name, "member", m.id)
			g.removeConsumerMemberLocked(m)
		}
	})
}

// removeConsumerMemberLocked drops a member (left, expired or fenced):
// its partitions are free at once and the group epoch moves.
func (g *group) removeConsumerMemberLocked(m *cmember) {
	cg := g.cg
	m.session.stop()
	m.revokeTimer.stop()
	delete(cg.members, m.id)
	delete(cg.target, m.id)
	if m.instanceID != nil && cg.static[*m.instanceID] == m.id {
		delete(cg.static, *m.instanceID)
	}
	counts := make(map[string]int32, len(cg.parts))
	for t, n := range cg.parts {
		counts[t] = n
	}
	cg.refreshParts(counts)
	cg.bump()
	g.syncConsumerStateLocked()
}

// syncConsumerStateLocked mirrors the consumer group in the classic
// fields other code reads: Empty or Stable, and the subscribed topics
// (OffsetDelete's GROUP_SUBSCRIBED_TO_TOPIC).
func (g *group) syncConsumerStateLocked() {
	cg := g.cg
	switch {
	case len(cg.members) == 0 && g.state != stateEmpty:
		g.setStateLocked(stateEmpty)
	case len(cg.members) > 0 && g.state != stateStable:
		g.setStateLocked(stateStable)
	}
	g.subscribed = cg.subscribedTopics()
}

// consumerLeaveLocked serves a heartbeat with epoch -1 (leave) or -2
// (a static member leaving for now: it keeps its partitions until its
// session times out or its instance rejoins).
func (g *group) consumerLeaveLocked(req *kmsg.ConsumerGroupHeartbeatRequest, resp *kmsg.ConsumerGroupHeartbeatResponse) *kmsg.ConsumerGroupHeartbeatResponse {
	cg := g.cg
	m := cg.members[req.MemberID]
	if req.InstanceID != nil {
		m = cg.members[cg.static[*req.InstanceID]]
		if m != nil && m.id != req.MemberID {
			return hbError(resp, kerr.FencedInstanceID.Code, "")
		}
	}
	if m == nil {
		return hbError(resp, kerr.UnknownMemberID.Code, "")
	}
	resp.MemberID, resp.MemberEpoch = kmsg.StringPtr(m.id), req.MemberEpoch
	if req.MemberEpoch == leaveStaticEpoch && m.instanceID != nil {
		if m.epoch != leaveStaticEpoch {
			m.prevEpoch, m.epoch = m.epoch, leaveStaticEpoch
		}
		m.revokeTimer.stop()
		g.c.logger.Debug("static consumer group member left for now", "group", g.name, "member", m.id)
		return resp
	}
	g.c.logger.Debug("consumer group member left", "group", g.name, "member", m.id)
	g.removeConsumerMemberLocked(m)
	return resp
}

// shutdownConsumerLocked stops the members' timers.
func (g *group) shutdownConsumerLocked() {
	if g.cg == nil {
		return
	}
	for _, m := range g.cg.members {
		m.session.stop()
		m.revokeTimer.stop()
	}
}

// ConsumerDescribe serves one group of ConsumerGroupDescribe.
func (c *Coordinator) ConsumerDescribe(ctx context.Context, name string, version int16, topics *Topics) kmsg.ConsumerGroupDescribeResponseGroup {
	sg := kmsg.NewConsumerGroupDescribeResponseGroup()
	sg.Group = name
	g, err := c.lockGroup(ctx, name, lookupMemory)
	if err != nil {
		sg.ErrorCode = c.errorCode(err)
		return sg
	}
	if g == nil {
		sg.ErrorCode = kerr.GroupIDNotFound.Code
		sg.ErrorMessage = kmsg.StringPtr(fmt.Sprintf("group %q does not exist", name))
		return sg
	}
	defer g.mu.Unlock()
	if g.cg == nil {
		sg.ErrorCode = kerr.GroupIDNotFound.Code
		sg.ErrorMessage = kmsg.StringPtr(fmt.Sprintf("group %q is not a consumer group", name))
		return sg
	}
	g.cg.learnTopics(topics)
	g.describeConsumerLocked(&sg, version)
	return sg
}

// checkConsumerCommitLocked is OffsetCommit's check for a consumer
// group (Kafka's ConsumerGroup.validateOffsetCommit, with KIP-1251's
// per-partition assignment epochs). A commit without member epoch to a
// group without members is accepted. Otherwise the member must exist and
// the request's epoch (GenerationIdOrMemberEpoch) must not be newer than
// the member's; an older epoch is accepted for the partitions the member
// held since that epoch, the others get STALE_MEMBER_EPOCH (in stale).
func (g *group) checkConsumerCommitLocked(req *kmsg.OffsetCommitRequest, offsets []meta.CommittedOffset) (code int16, stale map[meta.TopicPartition]bool) {
	cg := g.cg
	if req.Generation < 0 && len(cg.members) == 0 {
		return 0, nil
	}
	if req.Version < 9 {
		return kerr.UnsupportedVersion.Code, nil
	}
	m := cg.members[req.MemberID]
	switch {
	case m == nil:
		return kerr.UnknownMemberID.Code, nil
	case req.Generation > m.epoch:
		return kerr.StaleMemberEpoch.Code, nil
	case req.Generation == m.epoch:
		return 0, nil
	}
	stale = make(map[meta.TopicPartition]bool)
	for _, o := range offsets {
		if e, ok := m.assigned[tp{o.Topic, o.Partition}]; !ok || req.Generation < e {
			stale[meta.TopicPartition{Topic: o.Topic, Partition: o.Partition}] = true
		}
	}
	return 0, stale
}

// CheckOffsetFetch is OffsetFetch's member check (v9+): a fetch naming a
// member of a consumer group must carry its current epoch
// (UNKNOWN_MEMBER_ID, STALE_MEMBER_EPOCH). Fetches without member ID and
// fetches from other groups are not checked.
func (c *Coordinator) CheckOffsetFetch(ctx context.Context, name string, memberID *string, epoch int32) int16 {
	if memberID == nil {
		return 0
	}
	g, err := c.lockGroup(ctx, name, lookupMemory)
	if err != nil || g == nil {
		return 0
	}
	defer g.mu.Unlock()
	if g.cg == nil {
		return 0
	}
	m := g.cg.members[*memberID]
	switch {
	case m == nil:
		return kerr.UnknownMemberID.Code
	case m.epoch != epoch:
		return kerr.StaleMemberEpoch.Code
	}
	return 0
}
