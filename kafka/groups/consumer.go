package groups

// KIP-848 consumer groups: the state behind ConsumerGroupHeartbeat (68)
// and ConsumerGroupDescribe (69), modelled on Kafka's ConsumerGroup,
// GroupMetadataManager and CurrentAssignmentBuilder.
//
// A consumer group is a group (group.go) whose cg field is set: the same
// map entry, lock, offsets in meta and admin views as a classic group,
// but no JoinGroup/SyncGroup. While a consumer group has members, the
// classic state field says Stable (Empty without members), so DeleteGroups
// and offset expiry treat it like any group with members; the KIP-848
// state (Empty, Assigning, Reconciling, Stable) is derived from cg.
//
// Epochs. The group epoch moves whenever what the assignment depends on
// changes: a member joins, leaves, is fenced or changes its subscription,
// or a subscribed topic appears or gains partitions. Each move recomputes
// the target assignment at once (so the target assignment epoch equals the
// group epoch after every request, and Assigning is never observed). Each
// member then converges to its target on its own heartbeats:
//
//   - partitions it holds that its target does not are revoked first: the
//     member keeps its epoch (state unrevoked) until a heartbeat's
//     TopicPartitions no longer lists them, or its rebalance timeout
//     fences it;
//   - then it takes the target epoch and the target partitions no other
//     member holds (assigned or still being revoked); the others follow
//     on later heartbeats once released (state unreleased).
//
// A partition therefore never has two owners. A member that misses its
// session timeout (Config.ConsumerSessionTimeout) is removed and its
// partitions are free at once. Static members (InstanceID) that leave with
// epoch -2 keep their partitions until the session timeout, and a new
// member with the same instance ID takes them over with the same epoch.

import (
	"fmt"
	"regexp"
	"slices"
	"sort"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/streamhouse/streamhouse/meta"
)

// Member epochs with a meaning of their own (KIP-848).
const (
	leaveEpoch       = -1 // a member leaving
	leaveStaticEpoch = -2 // a static member leaving for now
)

// memberState is where a member is in converging to its target.
type memberState int8

const (
	memberStable     memberState = iota // holds its target, at the target epoch
	memberUnrevoked                     // must revoke partitions first
	memberUnreleased                    // waits for partitions others hold
)

// consumerGroup is the KIP-848 state of a group; its group's mu guards
// it.
type consumerGroup struct {
	epoch           int32  // group epoch
	assignmentEpoch int32  // target assignment epoch
	assignor        string // assignor of the current target
	members         map[string]*cmember
	static          map[string]string  // instance ID -> member ID
	target          map[string]partSet // member ID -> target partitions
	// parts is the subscription metadata: every subscribed topic that
	// exists, with its partition count, as of the last epoch move.
	parts map[string]int32
	// partsFrom is the topic snapshot parts was last resolved against.
	// Snapshots are shared and replaced when topics change, so while a
	// heartbeat brings the same one and no subscription changed, parts
	// stands: resolving means matching every member's regex against
	// every topic.
	partsFrom *Topics
	// ids and byID map topic names and IDs, as of the last request (a
	// shared Topics' maps: never modified).
	ids  map[string][16]byte
	byID map[[16]byte]meta.Topic
}

// cmember is one member of a consumer group.
type cmember struct {
	id                   string
	instanceID, rackID   *string
	clientID, clientHost string
	epoch, prevEpoch     int32
	state                memberState
	rebalanceTimeout     time.Duration
	topics               []string       // SubscribedTopicNames, sorted
	regex                string         // SubscribedTopicRegex; "" for none
	re                   *regexp.Regexp // regex anchored at both ends
	assignor             string         // ServerAssignor; "" for the default
	// assigned maps each partition the member holds to the epoch at which
	// it got it (commits at older epochs are stale, KIP-1251); revoking
	// holds the partitions it must give up.
	assigned    map[tp]int32
	revoking    partSet
	session     gtimer
	revokeTimer gtimer
}

func newConsumerGroup() *consumerGroup {
	return &consumerGroup{members: make(map[string]*cmember), static: make(map[string]string),
		target: make(map[string]partSet), parts: make(map[string]int32), assignor: assignorUniform}
}

// learnTopics records the broker's topics (names and IDs): a shared
// snapshot, rebuilt only when topics change.
func (cg *consumerGroup) learnTopics(topics *Topics) {
	cg.ids, cg.byID = topics.IDs, topics.ByID
}

// stateName is Kafka's name of the group's state.
func (cg *consumerGroup) stateName() string {
	switch {
	case len(cg.members) == 0:
		return "Empty"
	case cg.epoch > cg.assignmentEpoch:
		return "Assigning"
	}
	for _, m := range cg.members {
		if m.epoch != leaveStaticEpoch && (m.state != memberStable || m.epoch != cg.assignmentEpoch) {
			return "Reconciling"
		}
	}
	return "Stable"
}

// sortedMembers returns the members ordered by ID.
func (cg *consumerGroup) sortedMembers() []*cmember {
	ms := make([]*cmember, 0, len(cg.members))
	for _, m := range cg.members {
		ms = append(ms, m)
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].id < ms[j].id })
	return ms
}

// subscription resolves a member's subscription: its topic names (even
// those not created yet) and every existing topic its regex matches.
func (cg *consumerGroup) subscription(m *cmember) map[string]bool {
	out := make(map[string]bool, len(m.topics))
	for _, t := range m.topics {
		out[t] = true
	}
	if m.re != nil {
		for t := range cg.ids {
			if m.re.MatchString(t) {
				out[t] = true
			}
		}
	}
	return out
}

// subscribedTopics is the union of the members' subscriptions.
func (cg *consumerGroup) subscribedTopics() map[string]bool {
	out := make(map[string]bool)
	for _, m := range cg.members {
		for t := range cg.subscription(m) {
			out[t] = true
		}
	}
	return out
}

// refreshParts recomputes the subscription metadata from counts (topic ->
// partition count of every existing topic) and reports whether it
// changed.
func (cg *consumerGroup) refreshParts(counts map[string]int32) bool {
	parts := make(map[string]int32)
	for t := range cg.subscribedTopics() {
		if n, ok := counts[t]; ok {
			parts[t] = n
		}
	}
	if len(parts) == len(cg.parts) {
		same := true
		for t, n := range parts {
			if cg.parts[t] != n {
				same = false
				break
			}
		}
		if same {
			return false
		}
	}
	cg.parts = parts
	return true
}

// preferredAssignor is the assignor most members ask for (ties by name);
// uniform when none asks.
func (cg *consumerGroup) preferredAssignor() string {
	votes := make(map[string]int)
	for _, m := range cg.members {
		if m.assignor != "" {
			votes[m.assignor]++
		}
	}
	best := ""
	for name, n := range votes {
		if best == "" || n > votes[best] || (n == votes[best] && name < best) {
			best = name
		}
	}
	if best == "" {
		return assignorUniform
	}
	return best
}

// bump moves the group epoch and computes the new target assignment.
func (cg *consumerGroup) bump() {
	cg.epoch++
	in := assignInput{subs: make(map[string]map[string]bool, len(cg.members)), parts: cg.parts, target: cg.target}
	for id, m := range cg.members {
		in.subs[id] = cg.subscription(m)
	}
	cg.assignor = cg.preferredAssignor()
	cg.target = assign(cg.assignor, in)
	cg.assignmentEpoch = cg.epoch
}

// heldByOthers returns the partitions members other than m hold, as
// assigned or still being revoked.
func (cg *consumerGroup) heldByOthers(m *cmember) partSet {
	held := make(partSet)
	for _, o := range cg.members {
		if o == m {
			continue
		}
		for p := range o.assigned {
			held[p] = struct{}{}
		}
		for p := range o.revoking {
			held[p] = struct{}{}
		}
	}
	return held
}

// owned converts a heartbeat's TopicPartitions; nil stays nil (the
// member's partitions did not change). Unknown topic IDs are dropped.
func (cg *consumerGroup) owned(topics []kmsg.ConsumerGroupHeartbeatRequestTopic) partSet {
	if topics == nil {
		return nil
	}
	out := make(partSet)
	for _, t := range topics {
		topic, ok := cg.byID[t.TopicID]
		if !ok {
			continue
		}
		name := topic.Name
		for _, p := range t.Partitions {
			out[tp{name, p}] = struct{}{}
		}
	}
	return out
}

// assignedSet returns the member's assigned partitions as a set.
func (m *cmember) assignedSet() partSet {
	out := make(partSet, len(m.assigned))
	for p := range m.assigned {
		out[p] = struct{}{}
	}
	return out
}

// checkEpoch is Kafka's member epoch check of a heartbeat with epoch > 0:
// a newer epoch than the member's is fenced; an older one is accepted
// only if it is the previous epoch and the member owns no more than its
// current assignment (its last answer was lost).
func (m *cmember) checkEpoch(epoch int32, owned partSet) int16 {
	switch {
	case epoch == m.epoch:
		return 0
	case epoch > m.epoch:
		return kerr.FencedMemberEpoch.Code
	case epoch != m.prevEpoch || owned == nil:
		return kerr.FencedMemberEpoch.Code
	}
	for p := range owned {
		if _, ok := m.assigned[p]; !ok {
			return kerr.FencedMemberEpoch.Code
		}
	}
	return 0
}

// sameAs reports whether the member has this epoch, state and
// assignment.
func (m *cmember) sameAs(epoch int32, st memberState, assigned partSet) bool {
	return m.epoch == epoch && m.state == st && m.assignedSet().equal(assigned)
}

// hbError fills a ConsumerGroupHeartbeat error answer.
func hbError(resp *kmsg.ConsumerGroupHeartbeatResponse, code int16, msg string) *kmsg.ConsumerGroupHeartbeatResponse {
	resp.ErrorCode = code
	if msg != "" {
		resp.ErrorMessage = kmsg.StringPtr(msg)
	}
	return resp
}

// assignmentTopics converts partitions to the heartbeat answer's form,
// sorted by topic name.
func (cg *consumerGroup) assignmentTopics(ps partSet) []kmsg.ConsumerGroupHeartbeatResponseAssignmentTopic {
	out := []kmsg.ConsumerGroupHeartbeatResponseAssignmentTopic{}
	for _, p := range ps.sorted() {
		id, ok := cg.ids[p.topic]
		if !ok {
			continue // deleted since; never handed out
		}
		if n := len(out); n == 0 || out[n-1].TopicID != id {
			t := kmsg.NewConsumerGroupHeartbeatResponseAssignmentTopic()
			t.TopicID = id
			out = append(out, t)
		}
		last := &out[len(out)-1]
		last.Partitions = append(last.Partitions, p.part)
	}
	return out
}

// describeAssignment converts partitions to ConsumerGroupDescribe's form.
func (cg *consumerGroup) describeAssignment(ps partSet) kmsg.Assignment {
	a := kmsg.NewAssignment()
	a.TopicPartitions = []kmsg.AssignmentTopicPartition{}
	for _, p := range ps.sorted() {
		if n := len(a.TopicPartitions); n == 0 || a.TopicPartitions[n-1].Topic != p.topic {
			a.TopicPartitions = append(a.TopicPartitions, kmsg.AssignmentTopicPartition{TopicID: cg.ids[p.topic], Topic: p.topic})
		}
		last := &a.TopicPartitions[len(a.TopicPartitions)-1]
		last.Partitions = append(last.Partitions, p.part)
	}
	return a
}

// describeConsumerLocked fills one ConsumerGroupDescribe group.
func (g *group) describeConsumerLocked(sg *kmsg.ConsumerGroupDescribeResponseGroup, version int16) {
	cg := g.cg
	sg.State, sg.Epoch, sg.AssignmentEpoch, sg.AssignorName = cg.stateName(), cg.epoch, cg.assignmentEpoch, cg.assignor
	for _, m := range cg.sortedMembers() {
		sm := kmsg.NewConsumerGroupDescribeResponseGroupMember()
		sm.MemberID, sm.InstanceID, sm.RackID, sm.MemberEpoch = m.id, m.instanceID, m.rackID, m.epoch
		sm.ClientID, sm.ClientHost = m.clientID, m.clientHost
		sm.SubscribedTopics = slices.Clone(m.topics)
		if sm.SubscribedTopics == nil {
			sm.SubscribedTopics = []string{}
		}
		if m.regex != "" {
			sm.SubscribedTopicRegex = kmsg.StringPtr(m.regex)
		}
		sm.Assignment = cg.describeAssignment(m.assignedSet())
		sm.TargetAssignment = cg.describeAssignment(cg.target[m.id])
		if version >= 1 {
			sm.MemberType = 1 // consumer protocol (0 would be classic)
		}
		sg.Members = append(sg.Members, sm)
	}
}

// compileSubscription compiles a subscription regex as Kafka matches it:
// against the whole topic name (RE2 syntax, like Kafka's re2j).
func compileSubscription(regex string) (*regexp.Regexp, error) {
	re, err := regexp.Compile("^(?:" + regex + ")$")
	if err != nil {
		return nil, fmt.Errorf("invalid regular expression %q: %w", regex, err)
	}
	return re, nil
}
