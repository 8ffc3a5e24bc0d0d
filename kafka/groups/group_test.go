package groups

import (
	"context"
	"log/slog"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/streamhouse/streamhouse/meta"
)

// State-machine tests: the coordinator alone over SQLite, driven by a fake
// clock. JoinGroup and SyncGroup answers arrive through reply callbacks,
// synchronously (from the call or from fakeClock.Advance), so no test
// needs a goroutine or a sleep.

const (
	testSession   = 10 * time.Second
	testRebalance = 30 * time.Second
)

type groupHarness struct {
	t     *testing.T
	c     *Coordinator
	clock *fakeClock
	meta  *meta.SQLite
}

func newGroupHarness(t *testing.T, tweak func(*Config)) *groupHarness {
	t.Helper()
	cfg := Config{InitialRebalanceDelay: -1, MinSessionTimeout: time.Second}
	if tweak != nil {
		tweak(&cfg)
	}
	db, err := meta.OpenSQLite(context.Background(), filepath.Join(t.TempDir(), "meta.db"))
	if err != nil {
		t.Fatal(err)
	}
	clock := newFakeClock()
	h := &groupHarness{t: t, c: New(cfg, clock, db, slog.New(slog.DiscardHandler), nil), clock: clock, meta: db}
	t.Cleanup(func() {
		h.c.Close()
		db.Close()
	})
	return h
}

// consumerMeta is a consumer protocol's member metadata subscribing to
// topics.
func consumerMeta(topics ...string) []byte {
	md := kmsg.NewConsumerMemberMetadata()
	md.Topics = topics
	return md.AppendTo(nil)
}

func joinReq(version int16, memberID string, protocols ...string) *kmsg.JoinGroupRequest {
	req := kmsg.NewPtrJoinGroupRequest()
	req.Version, req.Group, req.MemberID, req.ProtocolType = version, "g", memberID, consumerProtocolType
	req.SessionTimeoutMillis, req.RebalanceTimeoutMillis = int32(testSession/time.Millisecond), int32(testRebalance/time.Millisecond)
	if len(protocols) == 0 {
		protocols = []string{"range"}
	}
	for _, p := range protocols {
		req.Protocols = append(req.Protocols, kmsg.JoinGroupRequestProtocol{Name: p, Metadata: consumerMeta("t")})
	}
	return req
}

func staticJoinReq(version int16, memberID, instance string) *kmsg.JoinGroupRequest {
	req := joinReq(version, memberID)
	req.InstanceID = &instance
	return req
}

// joinCall is a JoinGroup in flight; resp is set when it is answered.
type joinCall struct{ resp *kmsg.JoinGroupResponse }

func (h *groupHarness) join(req *kmsg.JoinGroupRequest) *joinCall {
	h.t.Helper()
	call := &joinCall{}
	h.c.Join(context.Background(), req, Client{ID: "client", Host: "/127.0.0.1"}, func(r *kmsg.JoinGroupResponse) {
		if call.resp != nil {
			h.t.Errorf("JoinGroup of %q answered twice", req.MemberID)
		}
		call.resp = r
	})
	return call
}

// answered fails the test unless the call was answered with code.
func (c *joinCall) answered(t *testing.T, code int16) *kmsg.JoinGroupResponse {
	t.Helper()
	if c.resp == nil {
		t.Fatalf("JoinGroup not answered, want %v", kerr.ErrorForCode(code))
	}
	if c.resp.ErrorCode != code {
		t.Fatalf("JoinGroup error %v, want %v", kerr.ErrorForCode(c.resp.ErrorCode), kerr.ErrorForCode(code))
	}
	return c.resp
}

func (c *joinCall) waiting(t *testing.T) {
	t.Helper()
	if c.resp != nil {
		t.Fatalf("JoinGroup answered (%v), want it waiting", kerr.ErrorForCode(c.resp.ErrorCode))
	}
}

type syncCall struct{ resp *kmsg.SyncGroupResponse }

func syncReq(memberID string, generation int32, assign map[string]string) *kmsg.SyncGroupRequest {
	req := kmsg.NewPtrSyncGroupRequest()
	req.Version, req.Group, req.MemberID, req.Generation = 5, "g", memberID, generation
	for id, a := range assign {
		req.GroupAssignment = append(req.GroupAssignment, kmsg.SyncGroupRequestGroupAssignment{MemberID: id, MemberAssignment: []byte(a)})
	}
	return req
}

func (h *groupHarness) sync(req *kmsg.SyncGroupRequest) *syncCall {
	call := &syncCall{}
	h.c.Sync(context.Background(), req, func(r *kmsg.SyncGroupResponse) {
		if call.resp != nil {
			h.t.Errorf("SyncGroup of %q answered twice", req.MemberID)
		}
		call.resp = r
	})
	return call
}

func (c *syncCall) answered(t *testing.T, code int16) *kmsg.SyncGroupResponse {
	t.Helper()
	if c.resp == nil {
		t.Fatalf("SyncGroup not answered, want %v", kerr.ErrorForCode(code))
	}
	if c.resp.ErrorCode != code {
		t.Fatalf("SyncGroup error %v, want %v", kerr.ErrorForCode(c.resp.ErrorCode), kerr.ErrorForCode(code))
	}
	return c.resp
}

func (h *groupHarness) heartbeat(memberID string, generation int32, instance *string) int16 {
	req := kmsg.NewPtrHeartbeatRequest()
	req.Version, req.Group, req.MemberID, req.Generation, req.InstanceID = 4, "g", memberID, generation, instance
	return h.c.Heartbeat(context.Background(), req)
}

// newMemberID does the KIP-394 first join and returns the ID handed out.
func (h *groupHarness) newMemberID() string {
	h.t.Helper()
	return h.join(joinReq(4, "")).answered(h.t, kerr.MemberIDRequired.Code).MemberID
}

// wantState checks the group's state and generation.
func (h *groupHarness) wantState(state groupState, generation int32) {
	h.t.Helper()
	g, err := h.c.lockGroup(context.Background(), "g", lookupMemory)
	if err != nil {
		h.t.Fatal(err)
	}
	got, gen := stateDead, int32(-1)
	if g != nil {
		got, gen = g.state, g.generation
		g.mu.Unlock()
	}
	if got != state || gen != generation {
		h.t.Fatalf("group %v generation %d, want %v generation %d", got, gen, state, generation)
	}
}

// stableGroup has the members with the given IDs (from newMemberID)
// join and sync; it returns the generation and leader.
func (h *groupHarness) stableGroup(ids ...string) (int32, string) {
	h.t.Helper()
	calls := make([]*joinCall, len(ids))
	for i, id := range ids {
		calls[i] = h.join(joinReq(4, id))
	}
	var gen int32
	leader := ""
	for _, c := range calls {
		resp := c.answered(h.t, 0)
		gen, leader = resp.Generation, resp.LeaderID
	}
	assign := make(map[string]string)
	for _, id := range ids {
		assign[id] = "assignment-of-" + id
	}
	h.sync(syncReq(leader, gen, assign)).answered(h.t, 0)
	for _, id := range ids {
		if id != leader {
			got := h.sync(syncReq(id, gen, nil)).answered(h.t, 0)
			if string(got.MemberAssignment) != assign[id] {
				h.t.Fatalf("assignment of %s = %q", id, got.MemberAssignment)
			}
		}
	}
	h.wantState(stateStable, gen)
	return gen, leader
}

func TestGroupJoinSyncHeartbeat(t *testing.T) {
	h := newGroupHarness(t, nil)
	id := h.newMemberID()
	h.wantState(stateEmpty, 0)
	resp := h.join(joinReq(4, id)).answered(t, 0)
	if resp.Generation != 1 || resp.LeaderID != id || resp.MemberID != id || *resp.Protocol != "range" || len(resp.Members) != 1 {
		t.Fatalf("join answer %+v", resp)
	}
	h.wantState(stateCompletingRebalance, 1)
	if code := h.heartbeat(id, 1, nil); code != 0 {
		t.Fatalf("heartbeat in CompletingRebalance: %v", kerr.ErrorForCode(code))
	}
	got := h.sync(syncReq(id, 1, map[string]string{id: "a"})).answered(t, 0)
	if string(got.MemberAssignment) != "a" || *got.Protocol != "range" || *got.ProtocolType != "consumer" {
		t.Fatalf("sync answer %+v", got)
	}
	h.wantState(stateStable, 1)
	for _, c := range []struct {
		name     string
		member   string
		gen      int32
		instance *string
		want     int16
	}{
		{"OK", id, 1, nil, 0},
		{"WrongGeneration", id, 2, nil, kerr.IllegalGeneration.Code},
		{"UnknownMember", "nobody", 1, nil, kerr.UnknownMemberID.Code},
	} {
		t.Run(c.name, func(t *testing.T) {
			if code := h.heartbeat(c.member, c.gen, c.instance); code != c.want {
				t.Fatalf("heartbeat: %v, want %v", kerr.ErrorForCode(code), kerr.ErrorForCode(c.want))
			}
		})
	}
	// A stable follower-less leader's sync again just returns its assignment.
	if got := h.sync(syncReq(id, 1, nil)).answered(t, 0); string(got.MemberAssignment) != "a" {
		t.Fatalf("second sync: %q", got.MemberAssignment)
	}
}

func TestGroupJoinErrors(t *testing.T) {
	h := newGroupHarness(t, func(c *Config) { c.MaxSessionTimeout = time.Minute })
	id := h.newMemberID()
	h.stableGroup(id)
	for _, c := range []struct {
		name string
		req  func() *kmsg.JoinGroupRequest
		want int16
	}{
		{"EmptyGroup", func() *kmsg.JoinGroupRequest { r := joinReq(4, ""); r.Group = ""; return r }, kerr.InvalidGroupID.Code},
		{"SessionTooShort", func() *kmsg.JoinGroupRequest { r := joinReq(4, ""); r.SessionTimeoutMillis = 10; return r }, kerr.InvalidSessionTimeout.Code},
		{"SessionTooLong", func() *kmsg.JoinGroupRequest { r := joinReq(4, ""); r.SessionTimeoutMillis = 3_600_000; return r }, kerr.InvalidSessionTimeout.Code},
		{"NoProtocols", func() *kmsg.JoinGroupRequest { r := joinReq(4, ""); r.Protocols = nil; return r }, kerr.InconsistentGroupProtocol.Code},
		{"OtherProtocolType", func() *kmsg.JoinGroupRequest { r := joinReq(4, ""); r.ProtocolType = "connect"; return r }, kerr.InconsistentGroupProtocol.Code},
		{"NoCommonProtocol", func() *kmsg.JoinGroupRequest { return joinReq(4, "", "sticky") }, kerr.InconsistentGroupProtocol.Code},
		{"UnknownMember", func() *kmsg.JoinGroupRequest { return joinReq(4, "nobody") }, kerr.UnknownMemberID.Code},
		{"UnknownGroupWithMember", func() *kmsg.JoinGroupRequest { r := joinReq(4, "x"); r.Group = "other"; return r }, kerr.UnknownMemberID.Code},
	} {
		t.Run(c.name, func(t *testing.T) {
			h.join(c.req()).answered(t, c.want)
			h.wantState(stateStable, 1)
		})
	}
}

func TestGroupOldJoinHasNoMemberIDRequired(t *testing.T) {
	h := newGroupHarness(t, nil)
	resp := h.join(joinReq(3, "")).answered(t, 0)
	if resp.MemberID == "" || resp.LeaderID != resp.MemberID || resp.Generation != 1 {
		t.Fatalf("v3 join answer %+v", resp)
	}
	// v0 has no rebalance timeout: the session timeout stands in.
	resp0 := h.join(joinReq(0, ""))
	resp0.waiting(t)
	h.wantState(statePreparingRebalance, 1)
	h.clock.Advance(testSession)
	resp0.answered(t, 0)
	h.wantState(stateCompletingRebalance, 2)
}

func TestGroupRebalanceOnJoin(t *testing.T) {
	h := newGroupHarness(t, nil)
	a := h.newMemberID()
	gen, _ := h.stableGroup(a)
	b := h.newMemberID()
	h.wantState(stateStable, gen) // a handed-out ID alone does not rebalance
	jb := h.join(joinReq(4, b))
	jb.waiting(t)
	h.wantState(statePreparingRebalance, gen)
	if code := h.heartbeat(a, gen, nil); code != kerr.RebalanceInProgress.Code {
		t.Fatalf("heartbeat during rebalance: %v", kerr.ErrorForCode(code))
	}
	h.sync(syncReq(a, gen, nil)).answered(t, kerr.RebalanceInProgress.Code)
	ja := h.join(joinReq(4, a))
	ra, rb := ja.answered(t, 0), jb.answered(t, 0)
	if ra.Generation != gen+1 || rb.Generation != gen+1 || ra.LeaderID != a || len(ra.Members) != 2 || len(rb.Members) != 0 {
		t.Fatalf("answers: leader %+v follower %+v", ra, rb)
	}
	// The follower syncs first and waits for the leader.
	sb := h.sync(syncReq(b, gen+1, nil))
	if sb.resp != nil {
		t.Fatal("follower SyncGroup answered before the leader's")
	}
	h.sync(syncReq(a, gen+1, map[string]string{a: "A", b: "B"})).answered(t, 0)
	if got := sb.answered(t, 0); string(got.MemberAssignment) != "B" {
		t.Fatalf("follower assignment %q", got.MemberAssignment)
	}
	h.wantState(stateStable, gen+1)
}

func TestGroupRejoinWithoutChange(t *testing.T) {
	h := newGroupHarness(t, nil)
	a, b := h.newMemberID(), h.newMemberID()
	gen, leader := h.stableGroup(a, b)
	follower := a
	if leader == a {
		follower = b
	}
	t.Run("FollowerInStable", func(t *testing.T) {
		resp := h.join(joinReq(4, follower)).answered(t, 0)
		if resp.Generation != gen || len(resp.Members) != 0 {
			t.Fatalf("answer %+v", resp)
		}
		h.wantState(stateStable, gen)
	})
	t.Run("ChangedProtocolsRebalance", func(t *testing.T) {
		j := h.join(joinReq(4, follower, "range", "roundrobin"))
		j.waiting(t)
		h.wantState(statePreparingRebalance, gen)
		h.join(joinReq(4, leader)).answered(t, 0)
		j.answered(t, 0)
		h.wantState(stateCompletingRebalance, gen+1)
	})
	t.Run("RetryInCompletingRebalance", func(t *testing.T) {
		resp := h.join(joinReq(4, leader)).answered(t, 0)
		if resp.Generation != gen+1 || len(resp.Members) != 2 {
			t.Fatalf("answer %+v", resp)
		}
		h.wantState(stateCompletingRebalance, gen+1)
	})
	t.Run("LeaderInStableRebalances", func(t *testing.T) {
		h.sync(syncReq(leader, gen+1, nil)).answered(t, 0)
		h.wantState(stateStable, gen+1)
		j := h.join(joinReq(4, leader))
		j.waiting(t)
		h.wantState(statePreparingRebalance, gen+1)
	})
}

func TestGroupRebalanceTimeoutRemovesLaggards(t *testing.T) {
	h := newGroupHarness(t, nil)
	a, b := h.newMemberID(), h.newMemberID()
	gen, _ := h.stableGroup(a, b)
	c := h.newMemberID()
	jc := h.join(joinReq(4, c))
	ja := h.join(joinReq(4, a))
	// b heartbeats (so its session lives) but never rejoins.
	for elapsed := time.Duration(0); elapsed < testRebalance-time.Second; elapsed += time.Second {
		h.clock.Advance(time.Second)
		if code := h.heartbeat(b, gen, nil); code != kerr.RebalanceInProgress.Code {
			t.Fatalf("laggard's heartbeat: %v", kerr.ErrorForCode(code))
		}
	}
	h.clock.Advance(time.Second - time.Millisecond)
	ja.waiting(t)
	h.clock.Advance(time.Millisecond)
	ra := ja.answered(t, 0)
	jc.answered(t, 0)
	if ra.Generation != gen+1 || (ra.LeaderID == a && len(ra.Members) != 2) {
		t.Fatalf("answer %+v", ra)
	}
	if code := h.heartbeat(b, gen, nil); code != kerr.UnknownMemberID.Code {
		t.Fatalf("removed member's heartbeat: %v", kerr.ErrorForCode(code))
	}
}

func TestGroupSessionTimeout(t *testing.T) {
	h := newGroupHarness(t, nil)
	a, b := h.newMemberID(), h.newMemberID()
	gen, _ := h.stableGroup(a, b)
	// a heartbeats, b does not.
	h.clock.Advance(testSession / 2)
	if code := h.heartbeat(a, gen, nil); code != 0 {
		t.Fatalf("heartbeat of a: %v", kerr.ErrorForCode(code))
	}
	h.clock.Advance(testSession/2 - time.Millisecond)
	h.wantState(stateStable, gen)
	h.clock.Advance(time.Millisecond)
	h.wantState(statePreparingRebalance, gen)
	if code := h.heartbeat(b, gen, nil); code != kerr.UnknownMemberID.Code {
		t.Fatalf("expired member's heartbeat: %v", kerr.ErrorForCode(code))
	}
	if code := h.heartbeat(a, gen, nil); code != kerr.RebalanceInProgress.Code {
		t.Fatalf("survivor's heartbeat: %v", kerr.ErrorForCode(code))
	}
	resp := h.join(joinReq(4, a)).answered(t, 0)
	if resp.Generation != gen+1 || len(resp.Members) != 1 || resp.LeaderID != a {
		t.Fatalf("answer %+v", resp)
	}
	// The last member expiring empties the group.
	h.clock.Advance(testSession)
	h.wantState(stateEmpty, gen+2)
}

func TestGroupPendingMemberExpires(t *testing.T) {
	h := newGroupHarness(t, nil)
	a := h.newMemberID()
	gen, _ := h.stableGroup(a)
	h.newMemberID() // never rejoins
	b := h.newMemberID()
	jb := h.join(joinReq(4, b))
	ja := h.join(joinReq(4, a))
	ja.waiting(t) // waits for the handed-out ID that has not joined
	h.clock.Advance(testSession)
	ja.answered(t, 0)
	jb.answered(t, 0)
	h.wantState(stateCompletingRebalance, gen+1)
}

func TestGroupSyncTimeout(t *testing.T) {
	h := newGroupHarness(t, nil)
	a, b := h.newMemberID(), h.newMemberID()
	ja, jb := h.join(joinReq(4, a)), h.join(joinReq(4, b))
	ra, rb := ja.answered(t, 0), jb.answered(t, 0)
	gen := ra.Generation
	leader, follower := a, b
	if ra.LeaderID == b {
		leader, follower = b, a
	}
	_ = rb
	// The follower syncs; the leader heartbeats but never syncs.
	sf := h.sync(syncReq(follower, gen, nil))
	for elapsed := time.Duration(0); elapsed < testRebalance-time.Second; elapsed += time.Second {
		h.clock.Advance(time.Second)
		if code := h.heartbeat(leader, gen, nil); code != 0 {
			t.Fatalf("leader's heartbeat: %v", kerr.ErrorForCode(code))
		}
	}
	if sf.resp != nil {
		t.Fatal("follower answered before the sync timeout")
	}
	h.clock.Advance(time.Second)
	sf.answered(t, kerr.RebalanceInProgress.Code)
	h.wantState(statePreparingRebalance, gen)
	if code := h.heartbeat(leader, gen, nil); code != kerr.UnknownMemberID.Code {
		t.Fatalf("leader that never synced: %v", kerr.ErrorForCode(code))
	}
	h.join(joinReq(4, follower)).answered(t, 0)
	h.wantState(stateCompletingRebalance, gen+1)
}

func TestGroupSyncErrors(t *testing.T) {
	h := newGroupHarness(t, nil)
	a := h.newMemberID()
	gen, _ := h.stableGroup(a)
	other := "other"
	for _, c := range []struct {
		name string
		req  func() *kmsg.SyncGroupRequest
		want int16
	}{
		{"EmptyGroup", func() *kmsg.SyncGroupRequest { r := syncReq(a, gen, nil); r.Group = ""; return r }, kerr.InvalidGroupID.Code},
		{"UnknownGroup", func() *kmsg.SyncGroupRequest { r := syncReq(a, gen, nil); r.Group = "nope"; return r }, kerr.UnknownMemberID.Code},
		{"UnknownMember", func() *kmsg.SyncGroupRequest { return syncReq("nobody", gen, nil) }, kerr.UnknownMemberID.Code},
		{"WrongGeneration", func() *kmsg.SyncGroupRequest { return syncReq(a, gen+1, nil) }, kerr.IllegalGeneration.Code},
		{"WrongProtocol", func() *kmsg.SyncGroupRequest { r := syncReq(a, gen, nil); r.Protocol = &other; return r }, kerr.InconsistentGroupProtocol.Code},
		{"WrongProtocolType", func() *kmsg.SyncGroupRequest { r := syncReq(a, gen, nil); r.ProtocolType = &other; return r }, kerr.InconsistentGroupProtocol.Code},
	} {
		t.Run(c.name, func(t *testing.T) { h.sync(c.req()).answered(t, c.want) })
	}
}

func TestGroupInitialRebalanceDelay(t *testing.T) {
	const delay = 3 * time.Second
	h := newGroupHarness(t, func(c *Config) { c.InitialRebalanceDelay = delay })
	a := h.newMemberID()
	ja := h.join(joinReq(4, a))
	h.clock.Advance(2 * time.Second)
	ja.waiting(t) // even though every member has joined
	b := h.newMemberID()
	jb := h.join(joinReq(4, b))
	h.clock.Advance(time.Second) // first delay over; b arrived: extended
	ja.waiting(t)
	h.clock.Advance(delay - time.Millisecond)
	ja.waiting(t)
	h.clock.Advance(time.Millisecond)
	ra := ja.answered(t, 0)
	jb.answered(t, 0)
	if len(ra.Members)+len(jb.resp.Members) != 2 || ra.Generation != 1 {
		t.Fatalf("answers %+v %+v", ra, jb.resp)
	}
	t.Run("CappedByRebalanceTimeout", func(t *testing.T) {
		h := newGroupHarness(t, func(c *Config) { c.InitialRebalanceDelay = time.Hour })
		j := h.join(joinReq(4, h.newMemberID()))
		h.clock.Advance(testRebalance)
		j.answered(t, 0)
	})
	t.Run("NotForLaterRebalances", func(t *testing.T) {
		b2 := h.newMemberID()
		gen, _ := h.stableGroup(a, b)
		j := h.join(joinReq(4, b2))
		h.join(joinReq(4, a))
		h.join(joinReq(4, b))
		j.answered(t, 0)
		h.wantState(stateCompletingRebalance, gen+1)
	})
}

func TestGroupProtocolSelection(t *testing.T) {
	h := newGroupHarness(t, nil)
	ids := []string{h.newMemberID(), h.newMemberID(), h.newMemberID()}
	protos := [][]string{{"range", "roundrobin"}, {"roundrobin", "range"}, {"roundrobin", "sticky"}}
	var calls []*joinCall
	for i, id := range ids {
		calls = append(calls, h.join(joinReq(4, id, protos[i]...)))
	}
	for _, c := range calls {
		if got := c.answered(t, 0); *got.Protocol != "roundrobin" {
			t.Fatalf("protocol %q, want roundrobin", *got.Protocol)
		}
	}
}

func TestGroupLeave(t *testing.T) {
	h := newGroupHarness(t, nil)
	a, b := h.newMemberID(), h.newMemberID()
	sj := h.join(staticJoinReq(5, "", "inst"))
	h.join(joinReq(4, a))
	h.join(joinReq(4, b))
	s := sj.answered(t, 0).MemberID
	h.wantState(stateCompletingRebalance, 1)

	leave := func(version int16, members ...kmsg.LeaveGroupRequestMember) *kmsg.LeaveGroupResponse {
		req := kmsg.NewPtrLeaveGroupRequest()
		req.Version, req.Group, req.Members = version, "g", members
		if version < 3 && len(members) > 0 {
			req.MemberID = members[0].MemberID
		}
		return h.c.Leave(context.Background(), req)
	}
	inst, wrong := "inst", "nope"
	resp := leave(5,
		kmsg.LeaveGroupRequestMember{MemberID: a},
		kmsg.LeaveGroupRequestMember{MemberID: "nobody"},
		kmsg.LeaveGroupRequestMember{MemberID: "wrong-id", InstanceID: &inst},
		kmsg.LeaveGroupRequestMember{InstanceID: &wrong},
	)
	got := []int16{}
	for _, m := range resp.Members {
		got = append(got, m.ErrorCode)
	}
	want := []int16{0, kerr.UnknownMemberID.Code, kerr.FencedInstanceID.Code, kerr.UnknownMemberID.Code}
	if !slices.Equal(got, want) {
		t.Fatalf("per-member errors %v, want %v", got, want)
	}
	h.wantState(statePreparingRebalance, 1)
	if r := leave(5, kmsg.LeaveGroupRequestMember{InstanceID: &inst}); r.Members[0].ErrorCode != 0 {
		t.Fatalf("leave by instance: %v", kerr.ErrorForCode(r.Members[0].ErrorCode))
	}
	_ = s
	if r := leave(2, kmsg.LeaveGroupRequestMember{MemberID: b}); r.ErrorCode != 0 {
		t.Fatalf("v2 leave: %v", kerr.ErrorForCode(r.ErrorCode))
	}
	h.wantState(stateEmpty, 2)
	if r := leave(2, kmsg.LeaveGroupRequestMember{MemberID: b}); r.ErrorCode != kerr.UnknownMemberID.Code {
		t.Fatalf("second v2 leave: %v", kerr.ErrorForCode(r.ErrorCode))
	}
}

func TestGroupStaticMembership(t *testing.T) {
	h := newGroupHarness(t, nil)
	dyn := h.newMemberID()
	h.join(joinReq(4, dyn)).answered(t, 0)     // dyn leads
	js := h.join(staticJoinReq(5, "", "inst")) // static members skip MEMBER_ID_REQUIRED
	h.join(joinReq(4, dyn)).answered(t, 0)
	old := js.answered(t, 0).MemberID
	leader, gen := js.resp.LeaderID, js.resp.Generation
	if leader != dyn {
		t.Fatalf("leader %s, want %s", leader, dyn)
	}
	h.sync(syncReq(leader, gen, map[string]string{old: "S", dyn: "D"})).answered(t, 0)
	inst := "inst"

	// The instance restarts: a new member ID, same assignment, no rebalance.
	resp := h.join(staticJoinReq(5, "", "inst")).answered(t, 0)
	newID := resp.MemberID
	if newID == old || resp.Generation != gen {
		t.Fatalf("replacement answer %+v", resp)
	}
	h.wantState(stateStable, gen)
	if got := h.sync(syncReq(newID, gen, nil)).answered(t, 0); string(got.MemberAssignment) != "S" {
		t.Fatalf("replacement assignment %q", got.MemberAssignment)
	}
	// The old member ID is fenced everywhere.
	if code := h.heartbeat(old, gen, &inst); code != kerr.FencedInstanceID.Code {
		t.Fatalf("old heartbeat: %v", kerr.ErrorForCode(code))
	}
	sreq := syncReq(old, gen, nil)
	sreq.InstanceID = &inst
	h.sync(sreq).answered(t, kerr.FencedInstanceID.Code)
	h.join(staticJoinReq(5, old, "inst")).answered(t, kerr.FencedInstanceID.Code)
	creq := commitReq(8, old, gen, 5)
	creq.InstanceID = &inst
	if code, _, err := h.c.Commit(context.Background(), creq, []meta.CommittedOffset{testOffset(5)}); code != kerr.FencedInstanceID.Code || err != nil {
		t.Fatalf("fenced commit: %v %v", kerr.ErrorForCode(code), err)
	}
	if _, found, _ := h.meta.FetchOffset(context.Background(), "g", "t", 0); found {
		t.Fatal("a fenced member's commit was stored")
	}
	if code := h.heartbeat(newID, gen, &inst); code != 0 {
		t.Fatalf("new heartbeat: %v", kerr.ErrorForCode(code))
	}
	// A protocol change by the restarted instance rebalances.
	req := staticJoinReq(5, "", "inst")
	req.Protocols = append(req.Protocols, kmsg.JoinGroupRequestProtocol{Name: "roundrobin"})
	req.Protocols[0], req.Protocols[1] = req.Protocols[1], req.Protocols[0]
	h.join(req).waiting(t)
	h.wantState(statePreparingRebalance, gen)
}

func TestGroupStaticLeaderSkipAssignment(t *testing.T) {
	h := newGroupHarness(t, nil)
	old := h.join(staticJoinReq(9, "", "inst")).answered(t, 0).MemberID
	h.sync(syncReq(old, 1, map[string]string{old: "S"})).answered(t, 0)
	resp := h.join(staticJoinReq(9, "", "inst")).answered(t, 0)
	if !resp.SkipAssignment || resp.LeaderID != resp.MemberID || resp.Generation != 1 || len(resp.Members) != 1 {
		t.Fatalf("v9 static leader rejoin %+v", resp)
	}
	h.wantState(stateStable, 1)
	// Before v9 the leader cannot skip the assignment: rebalance.
	j := h.join(staticJoinReq(8, "", "inst"))
	j.answered(t, 0) // the only member: the rebalance completes at once
	h.wantState(stateCompletingRebalance, 2)
}

func commitReq(version int16, memberID string, generation int32, offset int64) *kmsg.OffsetCommitRequest {
	req := kmsg.NewPtrOffsetCommitRequest()
	req.Version, req.Group, req.MemberID, req.Generation = version, "g", memberID, generation
	p := kmsg.NewOffsetCommitRequestTopicPartition()
	p.Offset = offset
	req.Topics = []kmsg.OffsetCommitRequestTopic{{Topic: "t", Partitions: []kmsg.OffsetCommitRequestTopicPartition{p}}}
	return req
}

func testOffset(offset int64) meta.CommittedOffset {
	return meta.CommittedOffset{Group: "g", Topic: "t", Partition: 0, Offset: offset, LeaderEpoch: -1}
}

func TestGroupCommitChecks(t *testing.T) {
	h := newGroupHarness(t, nil)
	ctx := context.Background()
	commit := func(req *kmsg.OffsetCommitRequest) int16 {
		t.Helper()
		code, _, err := h.c.Commit(ctx, req, []meta.CommittedOffset{testOffset(req.Topics[0].Partitions[0].Offset)})
		if err != nil {
			t.Fatal(err)
		}
		return code
	}
	t.Run("GenerationToUnknownGroup", func(t *testing.T) {
		if code := commit(commitReq(8, "m", 1, 1)); code != kerr.IllegalGeneration.Code {
			t.Fatalf("v8: %v", kerr.ErrorForCode(code))
		}
		if code := commit(commitReq(9, "m", 1, 1)); code != kerr.GroupIDNotFound.Code {
			t.Fatalf("v9: %v", kerr.ErrorForCode(code))
		}
	})
	t.Run("SimpleCommitCreatesGroup", func(t *testing.T) {
		if code := commit(commitReq(8, "", -1, 7)); code != 0 {
			t.Fatalf("simple commit: %v", kerr.ErrorForCode(code))
		}
		h.wantState(stateEmpty, 0)
	})
	a := h.newMemberID()
	ja := h.join(joinReq(4, a)).answered(t, 0)
	gen := ja.Generation
	for _, c := range []struct {
		name string
		req  *kmsg.OffsetCommitRequest
		want int16
	}{
		{"RebalanceInProgress", commitReq(8, a, gen, 1), kerr.RebalanceInProgress.Code},
		{"SimpleWithMembers", commitReq(8, "", -1, 1), kerr.UnknownMemberID.Code},
		{"UnknownMember", commitReq(8, "nobody", gen, 1), kerr.UnknownMemberID.Code},
		{"WrongGeneration", commitReq(8, a, gen+1, 1), kerr.IllegalGeneration.Code},
	} {
		t.Run(c.name, func(t *testing.T) {
			if code := commit(c.req); code != c.want {
				t.Fatalf("commit: %v, want %v", kerr.ErrorForCode(code), kerr.ErrorForCode(c.want))
			}
		})
	}
	got, _, _ := h.meta.FetchOffset(ctx, "g", "t", 0)
	if got.Offset != 7 {
		t.Fatalf("a refused commit changed the offset to %d", got.Offset)
	}
	h.sync(syncReq(a, gen, nil)).answered(t, 0)
	if code := commit(commitReq(8, a, gen, 9)); code != 0 {
		t.Fatalf("member commit: %v", kerr.ErrorForCode(code))
	}
	// A commit counts as a heartbeat.
	h.clock.Advance(testSession - time.Second)
	commit(commitReq(8, a, gen, 10))
	h.clock.Advance(testSession - time.Second)
	h.wantState(stateStable, gen)
}

func TestGroupOffsetExpiry(t *testing.T) {
	const retention, interval = time.Hour, time.Minute
	h := newGroupHarness(t, func(c *Config) {
		c.OffsetsRetention, c.OffsetsRetentionCheckInterval = retention, interval
		c.MaxSessionTimeout = 3 * retention
	})
	ctx := context.Background()
	o := testOffset(3)
	o.CommitTime = h.clock.Now()
	if err := h.meta.CommitOffsets(ctx, []meta.CommittedOffset{o}); err != nil {
		t.Fatal(err)
	}
	other := o
	other.Group = "busy"
	if err := h.meta.CommitOffsets(ctx, []meta.CommittedOffset{other}); err != nil {
		t.Fatal(err)
	}
	// "busy" has a member, which keeps its offsets.
	breq := joinReq(3, "")
	breq.Group, breq.SessionTimeoutMillis = "busy", int32(2*retention/time.Millisecond)
	h.join(breq).answered(t, 0)
	h.clock.Advance(retention - interval)
	if _, found, _ := h.meta.FetchOffset(ctx, "g", "t", 0); !found {
		t.Fatal("offset expired early")
	}
	h.clock.Advance(interval)
	if _, found, _ := h.meta.FetchOffset(ctx, "g", "t", 0); found {
		t.Fatal("offset of an empty group did not expire")
	}
	if _, found, _ := h.meta.FetchOffset(ctx, "busy", "t", 0); !found {
		t.Fatal("offset of a group with members expired")
	}
	groups, err := h.c.List(ctx)
	if err != nil || len(groups) != 1 || groups[0].Name != "busy" {
		t.Fatalf("groups after expiry %+v %v", groups, err)
	}
}

func TestGroupDescribeListDelete(t *testing.T) {
	h := newGroupHarness(t, nil)
	ctx := context.Background()
	if err := h.meta.CommitOffsets(ctx, []meta.CommittedOffset{{Group: "stored", Topic: "t", Offset: 1, LeaderEpoch: -1}}); err != nil {
		t.Fatal(err)
	}
	a := h.newMemberID()
	h.stableGroup(a)
	d := h.c.Describe(ctx, "g", 6)
	if d.State != "Stable" || d.Protocol != "range" || len(d.Members) != 1 || string(d.Members[0].MemberAssignment) != "assignment-of-"+a ||
		d.Members[0].ClientHost != "/127.0.0.1" || d.Members[0].ClientID != "client" {
		t.Fatalf("describe %+v", d)
	}
	if d := h.c.Describe(ctx, "stored", 6); d.State != "Empty" || d.ErrorCode != 0 {
		t.Fatalf("describe stored %+v", d)
	}
	if d := h.c.Describe(ctx, "nope", 6); d.State != "Dead" || d.ErrorCode != kerr.GroupIDNotFound.Code {
		t.Fatalf("describe unknown v6 %+v", d)
	}
	if d := h.c.Describe(ctx, "nope", 5); d.State != "Dead" || d.ErrorCode != 0 {
		t.Fatalf("describe unknown v5 %+v", d)
	}
	list, err := h.c.List(ctx)
	if err != nil || len(list) != 2 || list[0].Name != "g" || list[0].State != "Stable" || list[1].State != "Empty" {
		t.Fatalf("list %+v %v", list, err)
	}
	for _, c := range []struct {
		group string
		want  int16
	}{{"g", kerr.NonEmptyGroup.Code}, {"nope", kerr.GroupIDNotFound.Code}, {"stored", 0}, {"stored", kerr.GroupIDNotFound.Code}} {
		if code, _ := h.c.DeleteGroup(ctx, c.group); code != c.want {
			t.Fatalf("delete %s: %v, want %v", c.group, kerr.ErrorForCode(code), kerr.ErrorForCode(c.want))
		}
	}
	if offs, _ := h.meta.FetchOffsets(ctx, "stored"); len(offs) != 0 {
		t.Fatalf("offsets left after DeleteGroups: %+v", offs)
	}
}

func TestGroupCloseAnswersWaiters(t *testing.T) {
	h := newGroupHarness(t, nil)
	a := h.newMemberID()
	h.stableGroup(a)
	jb := h.join(joinReq(4, h.newMemberID()))
	h.c.Close()
	jb.answered(t, kerr.CoordinatorNotAvailable.Code)
	h.join(joinReq(4, a)).answered(t, kerr.CoordinatorNotAvailable.Code)
	h.clock.Advance(time.Hour) // timers after close do nothing
}
