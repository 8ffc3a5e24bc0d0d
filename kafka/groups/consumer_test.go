package groups

import (
	"context"
	"encoding/hex"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/streamhouse/streamhouse/meta"
)

// KIP-848 state-machine tests: the coordinator alone over SQLite, driven
// by a fake clock; each cgClient plays a well-behaved consumer that
// revokes at once whatever its assignment no longer lists.

type cgHarness struct {
	*groupHarness
	topics []meta.Topic
	snap   *Topics // reused until the topics change, as the server does
}

func newCGHarness(t *testing.T, topics map[string]int32) *cgHarness {
	h := &cgHarness{groupHarness: newGroupHarness(t, nil)}
	for name, n := range topics {
		h.setTopic(name, n)
	}
	return h
}

// setTopic creates a topic or changes its partition count.
func (h *cgHarness) setTopic(name string, parts int32) {
	h.snap = nil
	for i := range h.topics {
		if h.topics[i].Name == name {
			h.topics[i].PartitionCount = parts
			return
		}
	}
	id := fmt.Sprintf("00000000-0000-0000-0000-%012d", len(h.topics)+1)
	h.topics = append(h.topics, meta.Topic{ID: id, Name: name, PartitionCount: parts})
}

// snapshot is the harness's topics as the server hands them to the
// coordinator.
func (h *cgHarness) snapshot() *Topics {
	if h.snap == nil {
		s := &Topics{ByID: make(map[[16]byte]meta.Topic), IDs: make(map[string][16]byte), Counts: make(map[string]int32)}
		for _, t := range h.topics {
			id := topicID(t)
			s.ByID[id], s.IDs[t.Name], s.Counts[t.Name] = t, id, t.PartitionCount
		}
		h.snap = s
	}
	return h.snap
}

// topicID is the 16 bytes of a harness topic's UUID text, as package
// kafka converts meta.Topic.ID.
func topicID(t meta.Topic) [16]byte {
	var id [16]byte
	if _, err := hex.Decode(id[:], []byte(strings.ReplaceAll(t.ID, "-", ""))); err != nil {
		panic(err)
	}
	return id
}

func (h *cgHarness) idOf(name string) [16]byte {
	for _, t := range h.topics {
		if t.Name == name {
			return topicID(t)
		}
	}
	h.t.Fatalf("no topic %q", name)
	return [16]byte{}
}

func (h *cgHarness) nameOf(id [16]byte) string {
	for _, t := range h.topics {
		if topicID(t) == id {
			return t.Name
		}
	}
	h.t.Fatalf("no topic ID %x", id)
	return ""
}

// settledPair starts a group of two members, a and b, subscribed to topic
// t of the given partition count, and settles their assignment.
func settledPair(t *testing.T, partitions int32) (*cgHarness, *cgClient, *cgClient) {
	t.Helper()
	h := newCGHarness(t, map[string]int32{"t": partitions})
	a, b := h.client("a", "t"), h.client("b", "t")
	a.hb()
	b.hb()
	h.settle(a, b)
	return h, a, b
}

// cgClient is one simulated KIP-848 consumer.
type cgClient struct {
	h        *cgHarness
	id       string
	instance *string
	topics   []string
	regex    *string
	assignor *string
	epoch    int32
	owned    partSet
}

func (h *cgHarness) client(id string, topics ...string) *cgClient {
	return &cgClient{h: h, id: id, topics: topics, owned: make(partSet)}
}

// send sends one heartbeat: a full one (owned partitions, subscription)
// or, if !full, a keepalive with only the group, member and epoch.
func (c *cgClient) send(full bool) *kmsg.ConsumerGroupHeartbeatResponse {
	c.h.t.Helper()
	req := kmsg.NewPtrConsumerGroupHeartbeatRequest()
	req.Version, req.Group, req.MemberID, req.MemberEpoch = 1, "g", c.id, c.epoch
	req.RebalanceTimeoutMillis = -1
	if full || c.epoch == 0 {
		req.InstanceID, req.ServerAssignor = c.instance, c.assignor
		req.RebalanceTimeoutMillis = int32(testRebalance / time.Millisecond)
		req.SubscribedTopicNames, req.SubscribedTopicRegex = c.topics, c.regex
		if c.regex == nil && c.topics == nil {
			req.SubscribedTopicNames = []string{}
		}
		req.Topics = []kmsg.ConsumerGroupHeartbeatRequestTopic{}
		for _, p := range c.owned.sorted() {
			id := c.h.idOf(p.topic)
			if n := len(req.Topics); n == 0 || req.Topics[n-1].TopicID != id {
				req.Topics = append(req.Topics, kmsg.ConsumerGroupHeartbeatRequestTopic{TopicID: id})
			}
			last := &req.Topics[len(req.Topics)-1]
			last.Partitions = append(last.Partitions, p.part)
		}
	}
	if code, msg := CheckHeartbeat(req); code != 0 {
		c.h.t.Fatalf("invalid test request: %s", msg)
	}
	resp := c.h.c.ConsumerHeartbeat(context.Background(), req, Client{ID: c.id, Host: "/127.0.0.1"}, c.h.snapshot())
	if resp.ErrorCode != 0 {
		return resp
	}
	c.epoch = resp.MemberEpoch
	if resp.Assignment != nil {
		c.owned = make(partSet)
		for _, t := range resp.Assignment.Topics {
			for _, p := range t.Partitions {
				c.owned[tp{c.h.nameOf(t.TopicID), p}] = struct{}{}
			}
		}
	}
	return resp
}

// hb sends a full heartbeat that must succeed.
func (c *cgClient) hb() *kmsg.ConsumerGroupHeartbeatResponse {
	c.h.t.Helper()
	resp := c.send(true)
	if resp.ErrorCode != 0 {
		c.h.t.Fatalf("%s heartbeat: %v", c.id, kerr.ErrorForCode(resp.ErrorCode))
	}
	return resp
}

// wantErr sends a full heartbeat that must fail with code.
func (c *cgClient) wantErr(code int16) {
	c.h.t.Helper()
	if resp := c.send(true); resp.ErrorCode != code {
		c.h.t.Fatalf("%s heartbeat: %v, want %v", c.id, kerr.ErrorForCode(resp.ErrorCode), kerr.ErrorForCode(code))
	}
}

func (c *cgClient) leave(epoch int32) *kmsg.ConsumerGroupHeartbeatResponse {
	req := kmsg.NewPtrConsumerGroupHeartbeatRequest()
	req.Version, req.Group, req.MemberID, req.MemberEpoch = 1, "g", c.id, epoch
	resp := c.h.c.ConsumerHeartbeat(context.Background(), req, Client{ID: c.id}, c.h.snapshot())
	if resp.ErrorCode == 0 {
		c.owned, c.epoch = make(partSet), 0
	}
	return resp
}

// parts lists the partitions a client owns, as "topic/partition".
func (c *cgClient) parts() []string {
	var out []string
	for _, p := range c.owned.sorted() {
		out = append(out, fmt.Sprintf("%s/%d", p.topic, p.part))
	}
	return out
}

// settle heartbeats every client round-robin until a round changes
// nothing, failing if no partition ever has two owners is violated.
func (h *cgHarness) settle(cs ...*cgClient) {
	h.t.Helper()
	for round := 0; round < 20; round++ {
		changed := false
		for _, c := range cs {
			before, epoch := c.parts(), c.epoch
			c.hb()
			changed = changed || !slices.Equal(before, c.parts()) || epoch != c.epoch
			h.checkDisjoint(cs...)
		}
		if !changed {
			return
		}
	}
	h.t.Fatal("group did not settle in 20 rounds")
}

// checkDisjoint fails if two clients own the same partition.
func (h *cgHarness) checkDisjoint(cs ...*cgClient) {
	h.t.Helper()
	seen := make(map[tp]string)
	for _, c := range cs {
		for p := range c.owned {
			if o, ok := seen[p]; ok {
				h.t.Fatalf("%v owned by %s and %s", p, o, c.id)
			}
			seen[p] = c.id
		}
	}
}

// prevEpoch is a member's previous epoch.
func (h *cgHarness) prevEpoch(id string) int32 {
	h.t.Helper()
	g, err := h.c.lockGroup(context.Background(), "g", lookupMemory)
	if err != nil || g == nil || g.cg == nil || g.cg.members[id] == nil {
		h.t.Fatalf("no member %q: %v", id, err)
	}
	defer g.mu.Unlock()
	return g.cg.members[id].prevEpoch
}

func (h *cgHarness) describe() kmsg.ConsumerGroupDescribeResponseGroup {
	return h.c.ConsumerDescribe(context.Background(), "g", 1, h.snapshot())
}

func (h *cgHarness) wantState(state string) {
	h.t.Helper()
	if d := h.describe(); d.State != state {
		h.t.Fatalf("state %s, want %s", d.State, state)
	}
}

func TestConsumerGroupJoinAssigns(t *testing.T) {
	for _, c := range []struct {
		assignor string
		want     [][]string
	}{
		{assignorRange, [][]string{{"a/0", "a/1", "b/0", "b/1"}, {"a/2", "a/3", "b/2", "b/3"}}},
		{assignorUniform, [][]string{{"b/0", "b/1", "b/2", "b/3"}, {"a/0", "a/1", "a/2", "a/3"}}},
	} {
		t.Run(c.assignor, func(t *testing.T) {
			h := newCGHarness(t, map[string]int32{"a": 4, "b": 4})
			m1, m2 := h.client("m1", "a", "b"), h.client("m2", "a", "b")
			m1.assignor, m2.assignor = &c.assignor, &c.assignor
			resp := m1.hb()
			if resp.MemberEpoch != 1 || len(m1.owned) != 8 || resp.HeartbeatIntervalMillis != 5000 {
				t.Fatalf("first join: epoch %d, owned %v, interval %d", resp.MemberEpoch, m1.parts(), resp.HeartbeatIntervalMillis)
			}
			h.wantState("Stable")
			m2.hb()
			h.wantState("Reconciling")
			h.settle(m1, m2)
			h.wantState("Stable")
			if !slices.Equal(m1.parts(), c.want[0]) || !slices.Equal(m2.parts(), c.want[1]) {
				t.Fatalf("assignment %v %v, want %v", m1.parts(), m2.parts(), c.want)
			}
			d := h.describe()
			if d.Epoch != 2 || d.AssignmentEpoch != 2 || d.AssignorName != c.assignor || len(d.Members) != 2 ||
				d.Members[0].MemberEpoch != 2 || d.Members[0].MemberType != 1 {
				t.Fatalf("described %+v", d)
			}
		})
	}
}

func TestConsumerGroupRevocationBeforeReassignment(t *testing.T) {
	h := newCGHarness(t, map[string]int32{"t": 6})
	a, b := h.client("a", "t"), h.client("b", "t")
	a.hb()
	if len(a.owned) != 6 {
		t.Fatalf("a owns %v", a.parts())
	}
	// b joins: the group epoch moves, but a still holds everything, so
	// b gets the new epoch and nothing yet.
	if resp := b.hb(); resp.MemberEpoch != 2 || len(b.owned) != 0 {
		t.Fatalf("b joined at epoch %d owning %v", resp.MemberEpoch, b.parts())
	}
	// a's next heartbeat (even a keepalive) tells it to keep three
	// partitions, still at epoch 1.
	aOld := maps.Clone(a.owned)
	if resp := a.send(false); resp.ErrorCode != 0 || resp.MemberEpoch != 1 || resp.Assignment == nil || len(a.owned) != 3 {
		t.Fatalf("a told %v at epoch %d", a.parts(), resp.MemberEpoch)
	}
	// Until a reports that it revoked the others, b waits.
	kept := a.owned
	a.owned = aOld
	if a.send(false); a.epoch != 1 {
		t.Fatalf("a advanced to epoch %d on a keepalive", a.epoch)
	}
	a.owned = aOld
	if a.hb(); a.epoch != 1 {
		t.Fatalf("a advanced to epoch %d before revoking", a.epoch)
	}
	a.owned = aOld
	b.hb()
	if len(b.owned) != 0 {
		t.Fatalf("b got %v before a revoked", b.parts())
	}
	h.wantState("Reconciling")
	a.owned = kept // revoked
	a.hb()
	if a.epoch != 2 || len(a.owned) != 3 {
		t.Fatalf("a after revoking: epoch %d owns %v", a.epoch, a.parts())
	}
	b.hb()
	if len(b.owned) != 3 {
		t.Fatalf("b after a revoked: %v", b.parts())
	}
	h.checkDisjoint(a, b)
	h.wantState("Stable")
}

func TestConsumerGroupSessionTimeout(t *testing.T) {
	h, a, b := settledPair(t, 4)
	for elapsed := time.Duration(0); elapsed < DefaultConsumerSessionTimeout; elapsed += 5 * time.Second {
		h.clock.Advance(5 * time.Second)
		a.send(false)
	}
	if d := h.describe(); len(d.Members) != 1 || d.Members[0].MemberID != "a" {
		t.Fatalf("after b's session timeout: %+v", d.Members)
	}
	b.wantErr(kerr.UnknownMemberID.Code)
	a.hb()
	if len(a.owned) != 4 {
		t.Fatalf("a owns %v after b expired", a.parts())
	}
	// Without heartbeats, a goes too and the group is Empty.
	h.clock.Advance(DefaultConsumerSessionTimeout)
	h.wantState("Empty")
}

func TestConsumerGroupFencing(t *testing.T) {
	h := newCGHarness(t, map[string]int32{"t": 3})
	a, b, c3 := h.client("a", "t"), h.client("b", "t"), h.client("c", "t")
	a.hb()
	b.hb()
	c3.hb()
	h.settle(a, b, c3)
	epoch, prev := a.epoch, h.prevEpoch("a")
	if prev+1 >= epoch {
		t.Fatalf("a went from epoch %d to %d; the test needs a gap", prev, epoch)
	}
	for _, c := range []struct {
		name  string
		epoch int32
		owned partSet
		want  int16
	}{
		{"newer epoch", epoch + 1, a.owned, kerr.FencedMemberEpoch.Code},
		{"older epoch than the previous", prev + 1, a.owned, kerr.FencedMemberEpoch.Code},
		{"previous epoch owning more", prev, partSet{{"t", 0}: {}, {"t", 1}: {}}, kerr.FencedMemberEpoch.Code},
		{"previous epoch, lost answer", prev, a.owned, 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			fake := &cgClient{h: h, id: "a", topics: []string{"t"}, epoch: c.epoch, owned: c.owned}
			if resp := fake.send(true); resp.ErrorCode != c.want {
				t.Fatalf("got %v, want %v", kerr.ErrorForCode(resp.ErrorCode), kerr.ErrorForCode(c.want))
			}
		})
	}
	ghost := h.client("ghost", "t")
	ghost.epoch = 3
	ghost.wantErr(kerr.UnknownMemberID.Code)
	// A fenced member rejoins with epoch 0 and the same ID.
	a.epoch, a.owned = 0, make(partSet)
	a.hb()
	h.settle(a, b, c3)
	if a.epoch != h.describe().AssignmentEpoch || len(a.owned) != 1 {
		t.Fatalf("rejoined: epoch %d owns %v", a.epoch, a.parts())
	}
}

func TestConsumerGroupStaticMember(t *testing.T) {
	h := newCGHarness(t, map[string]int32{"t": 4})
	inst := "instance-1"
	s1, d := h.client("s1", "t"), h.client("d", "t")
	s1.instance = &inst
	s1.hb()
	d.hb()
	h.settle(s1, d)
	had, epoch := s1.parts(), s1.epoch
	// A second member claiming the instance while s1 is active.
	s2 := h.client("s2", "t")
	s2.instance = &inst
	s2.wantErr(kerr.UnreleasedInstanceID.Code)
	// s1 leaves for now (-2): it keeps its partitions.
	if resp := s1.leave(leaveStaticEpoch); resp.ErrorCode != 0 || resp.MemberEpoch != leaveStaticEpoch {
		t.Fatalf("static leave: %v epoch %d", kerr.ErrorForCode(resp.ErrorCode), resp.MemberEpoch)
	}
	d.hb()
	if len(d.owned) != 2 {
		t.Fatalf("d took a left static member's partitions: %v", d.parts())
	}
	// The restarted instance takes over with the same epoch and
	// partitions, and the group epoch does not move.
	groupEpoch := h.describe().Epoch
	s2.hb()
	if s2.epoch != epoch || !slices.Equal(s2.parts(), had) || h.describe().Epoch != groupEpoch {
		t.Fatalf("rejoined static member: epoch %d owns %v (had %d %v), group epoch %d -> %d",
			s2.epoch, s2.parts(), epoch, had, groupEpoch, h.describe().Epoch)
	}
	s1.epoch = epoch
	s1.wantErr(kerr.FencedInstanceID.Code)
	// A static member that stays away past the session timeout is gone.
	s2.leave(leaveStaticEpoch)
	for elapsed := time.Duration(0); elapsed < DefaultConsumerSessionTimeout; elapsed += 5 * time.Second {
		h.clock.Advance(5 * time.Second)
		d.send(false)
	}
	h.settle(d)
	if len(d.owned) != 4 {
		t.Fatalf("d after the static member expired: %v", d.parts())
	}
}

func TestConsumerGroupRegexAndNewPartitions(t *testing.T) {
	h := newCGHarness(t, map[string]int32{"orders-eu": 2, "other": 2})
	re := "orders-.*"
	c := h.client("c")
	c.topics, c.regex = nil, &re
	c.hb()
	if !slices.Equal(c.parts(), []string{"orders-eu/0", "orders-eu/1"}) {
		t.Fatalf("regex assignment %v", c.parts())
	}
	epoch := c.epoch
	h.setTopic("orders-us", 1) // a new topic matching the regex
	c.send(false)
	if !slices.Equal(c.parts(), []string{"orders-eu/0", "orders-eu/1", "orders-us/0"}) || c.epoch != epoch+1 {
		t.Fatalf("after a new matching topic: %v at epoch %d", c.parts(), c.epoch)
	}
	h.setTopic("orders-eu", 3) // CreatePartitions
	c.send(false)
	if len(c.owned) != 4 || c.epoch != epoch+2 {
		t.Fatalf("after new partitions: %v at epoch %d", c.parts(), c.epoch)
	}
	h.setTopic("orders", 1) // the regex matches whole names only
	c.send(false)
	if len(c.owned) != 4 {
		t.Fatalf("partial match assigned: %v", c.parts())
	}
	if d := h.describe(); d.Members[0].SubscribedTopicRegex == nil || *d.Members[0].SubscribedTopicRegex != re {
		t.Fatalf("described %+v", d.Members[0])
	}
}

func TestConsumerGroupLeave(t *testing.T) {
	h, a, b := settledPair(t, 4)
	if resp := b.leave(leaveEpoch); resp.ErrorCode != 0 || resp.MemberEpoch != leaveEpoch {
		t.Fatalf("leave: %v epoch %d", kerr.ErrorForCode(resp.ErrorCode), resp.MemberEpoch)
	}
	if resp := b.leave(leaveEpoch); resp.ErrorCode != kerr.UnknownMemberID.Code {
		t.Fatalf("second leave: %v", kerr.ErrorForCode(resp.ErrorCode))
	}
	a.hb()
	if len(a.owned) != 4 {
		t.Fatalf("a after b left: %v", a.parts())
	}
	a.leave(leaveEpoch)
	h.wantState("Empty")
	list, err := h.c.List(context.Background())
	if err != nil || len(list) != 1 || list[0].Type != TypeConsumer || list[0].State != "Empty" {
		t.Fatalf("list %+v %v", list, err)
	}
	// An empty consumer group can be deleted, or taken over by a
	// classic member.
	h.join(joinReq(9, "")).answered(t, kerr.MemberIDRequired.Code)
	if h.describe().ErrorCode != kerr.GroupIDNotFound.Code {
		t.Fatal("group still a consumer group after a classic join")
	}
}

func TestConsumerGroupProtocolConflicts(t *testing.T) {
	h := newCGHarness(t, map[string]int32{"t": 1})
	a := h.client("a", "t")
	a.hb()
	h.join(joinReq(9, "")).answered(t, kerr.InconsistentGroupProtocol.Code)
	if d := h.c.Describe(context.Background(), "g", 6); d.ErrorCode != kerr.GroupIDNotFound.Code || d.State != "Dead" {
		t.Fatalf("classic describe of a consumer group: %+v", d)
	}
	if code, _ := h.c.DeleteGroup(context.Background(), "g"); code != kerr.NonEmptyGroup.Code {
		t.Fatalf("delete: %v", kerr.ErrorForCode(code))
	}
	// A classic group with members refuses consumer members.
	h2 := newCGHarness(t, map[string]int32{"t": 1})
	h2.stableGroup(h2.newMemberID())
	h2.client("x", "t").wantErr(kerr.GroupIDNotFound.Code)
}

func TestConsumerGroupCommitChecks(t *testing.T) {
	h, a, b := settledPair(t, 2)
	owner, other := a, b
	if _, ok := a.owned[tp{"t", 0}]; !ok {
		owner, other = b, a
	}
	ctx := context.Background()
	commit := func(version int16, member string, epoch int32) (int16, bool) {
		t.Helper()
		code, stale, err := h.c.Commit(ctx, commitReq(version, member, epoch, 5), []meta.CommittedOffset{testOffset(5)})
		if err != nil {
			t.Fatal(err)
		}
		return code, stale[meta.TopicPartition{Topic: "t", Partition: 0}]
	}
	for _, c := range []struct {
		name      string
		version   int16
		member    string
		epoch     int32
		want      int16
		wantStale bool
	}{
		{"v8", 8, owner.id, owner.epoch, kerr.UnsupportedVersion.Code, false},
		{"unknown member", 9, "nobody", 1, kerr.UnknownMemberID.Code, false},
		{"newer epoch", 9, owner.id, owner.epoch + 1, kerr.StaleMemberEpoch.Code, false},
		{"simple commit to a group with members", 9, "", -1, kerr.UnknownMemberID.Code, false},
		{"older epoch, partition held since before", 9, owner.id, owner.epoch - 1, 0, true},
		{"other member's partition at an old epoch", 9, other.id, other.epoch - 1, 0, true},
		{"current epoch", 9, owner.id, owner.epoch, 0, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			code, stale := commit(c.version, c.member, c.epoch)
			if code != c.want || stale != c.wantStale {
				t.Fatalf("got %v stale=%v, want %v stale=%v", kerr.ErrorForCode(code), stale, kerr.ErrorForCode(c.want), c.wantStale)
			}
		})
	}
	if code := h.c.CheckOffsetFetch(ctx, "g", &owner.id, owner.epoch-1); code != kerr.StaleMemberEpoch.Code {
		t.Fatalf("offset fetch at an old epoch: %v", kerr.ErrorForCode(code))
	}
	if code := h.c.CheckOffsetFetch(ctx, "g", &owner.id, owner.epoch); code != 0 {
		t.Fatalf("offset fetch: %v", kerr.ErrorForCode(code))
	}
}

func TestConsumerGroupHeartbeatValidation(t *testing.T) {
	str := kmsg.StringPtr
	for _, c := range []struct {
		name string
		mod  func(*kmsg.ConsumerGroupHeartbeatRequest)
		want int16
	}{
		{"valid", func(*kmsg.ConsumerGroupHeartbeatRequest) {}, 0},
		{"empty group", func(r *kmsg.ConsumerGroupHeartbeatRequest) { r.Group = "" }, kerr.InvalidRequest.Code},
		{"empty member", func(r *kmsg.ConsumerGroupHeartbeatRequest) { r.MemberID = "" }, kerr.InvalidRequest.Code},
		{"empty instance", func(r *kmsg.ConsumerGroupHeartbeatRequest) { r.InstanceID = str("") }, kerr.InvalidRequest.Code},
		{"epoch -3", func(r *kmsg.ConsumerGroupHeartbeatRequest) { r.MemberEpoch = -3 }, kerr.InvalidRequest.Code},
		{"join without rebalance timeout", func(r *kmsg.ConsumerGroupHeartbeatRequest) { r.RebalanceTimeoutMillis = -1 }, kerr.InvalidRequest.Code},
		{"join without subscription", func(r *kmsg.ConsumerGroupHeartbeatRequest) { r.SubscribedTopicNames = nil }, kerr.InvalidRequest.Code},
		{"join owning partitions", func(r *kmsg.ConsumerGroupHeartbeatRequest) {
			r.Topics = []kmsg.ConsumerGroupHeartbeatRequestTopic{{Partitions: []int32{0}}}
		}, kerr.InvalidRequest.Code},
		{"unknown assignor", func(r *kmsg.ConsumerGroupHeartbeatRequest) { r.ServerAssignor = str("sticky") }, kerr.UnsupportedAssignor.Code},
		{"bad regex", func(r *kmsg.ConsumerGroupHeartbeatRequest) { r.SubscribedTopicRegex = str("(") }, kerr.InvalidRegularExpression.Code},
		{"heartbeat with nulls", func(r *kmsg.ConsumerGroupHeartbeatRequest) {
			r.MemberEpoch, r.RebalanceTimeoutMillis, r.SubscribedTopicNames, r.Topics = 3, -1, nil, nil
		}, 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			req := kmsg.NewPtrConsumerGroupHeartbeatRequest()
			req.Version, req.Group, req.MemberID, req.RebalanceTimeoutMillis = 1, "g", "m", 1000
			req.SubscribedTopicNames, req.Topics = []string{"t"}, []kmsg.ConsumerGroupHeartbeatRequestTopic{}
			c.mod(req)
			if code, _ := CheckHeartbeat(req); code != c.want {
				t.Fatalf("got %v, want %v", kerr.ErrorForCode(code), kerr.ErrorForCode(c.want))
			}
		})
	}
}

func TestConsumerGroupAssignorsBalance(t *testing.T) {
	subs := map[string]map[string]bool{
		"m1": {"a": true, "b": true},
		"m2": {"a": true},
		"m3": {"b": true},
	}
	in := assignInput{subs: subs, parts: map[string]int32{"a": 5, "b": 4}}
	for _, name := range []string{assignorUniform, assignorRange} {
		out := assign(name, in)
		seen := make(partSet)
		for id, ps := range out {
			for p := range ps {
				if !subs[id][p.topic] {
					t.Fatalf("%s gave %v to %s, not subscribed", name, p, id)
				}
				if _, dup := seen[p]; dup {
					t.Fatalf("%s gave %v twice", name, p)
				}
				seen[p] = struct{}{}
			}
		}
		if len(seen) != 9 {
			t.Fatalf("%s assigned %d of 9 partitions", name, len(seen))
		}
		if name == assignorUniform {
			for id, ps := range out {
				if len(ps) != 3 {
					t.Fatalf("uniform gave %s %d partitions, want 3", id, len(ps))
				}
			}
			// Sticky: the same input with this target changes nothing.
			again := assign(name, assignInput{subs: subs, parts: in.parts, target: out})
			for id := range out {
				if !again[id].equal(out[id]) {
					t.Fatalf("uniform moved partitions of %s: %v -> %v", id, out[id].sorted(), again[id].sorted())
				}
			}
		}
	}
}

func TestConsumerGroupSnapshot(t *testing.T) {
	h, _, _ := settledPair(t, 2)
	snap := h.c.Snapshot()
	if len(snap) != 1 || snap[0].Type != TypeConsumer || snap[0].State != "Stable" || snap[0].Members != 2 || snap[0].Rebalances != 2 {
		t.Fatalf("snapshot %+v", snap)
	}
}

func TestConsumerGroupRevocationTimeoutFences(t *testing.T) {
	h := newCGHarness(t, map[string]int32{"t": 4})
	a, b := h.client("a", "t"), h.client("b", "t")
	a.hb()
	b.hb()
	all := maps.Clone(a.owned)
	a.hb() // told to revoke two partitions; it never does
	for elapsed := time.Duration(0); elapsed < testRebalance; elapsed += 5 * time.Second {
		a.owned = all
		a.hb()
		b.send(false)
		h.clock.Advance(5 * time.Second)
	}
	a.owned = all
	a.wantErr(kerr.UnknownMemberID.Code)
	b.hb()
	if len(b.owned) != 4 {
		t.Fatalf("b after a was fenced: %v", b.parts())
	}
}
