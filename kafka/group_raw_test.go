package kafka

import (
	"fmt"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Group APIs spoken by hand, at every version served.

func TestGroupAPIsAdvertised(t *testing.T) {
	b := newTestBroker(t, nil)
	resp := b.raw().roundTrip(1, kmsg.NewPtrApiVersionsRequest()).(*kmsg.ApiVersionsResponse)
	got := make(map[int16][2]int16)
	for _, k := range resp.ApiKeys {
		got[k.ApiKey] = [2]int16{k.MinVersion, k.MaxVersion}
	}
	for key, want := range map[int16][2]int16{
		8: {0, 10}, 9: {0, 10}, 10: {0, 6}, 11: {0, 9}, 12: {0, 4}, 13: {0, 5}, 14: {0, 5},
		15: {0, 6}, 16: {0, 5}, 42: {0, 3}, 47: {0, 0}, 68: {0, 1}, 69: {0, 1},
	} {
		if got[key] != want {
			t.Errorf("api key %d: versions %v, want %v", key, got[key], want)
		}
	}
}

func TestFindCoordinatorEveryVersion(t *testing.T) {
	b := groupBroker(t)
	c := b.raw()
	host, port := b.srv.advertised()
	for v := int16(0); v <= 6; v++ {
		for _, typ := range []int8{coordinatorGroup, coordinatorTxn, coordinatorShare, 9} {
			if v == 0 && typ != coordinatorGroup {
				continue // v0 has no key type
			}
			t.Run(fmt.Sprintf("v%d/type%d", v, typ), func(t *testing.T) {
				req := kmsg.NewPtrFindCoordinatorRequest()
				req.Version, req.CoordinatorType = v, typ
				req.CoordinatorKey, req.CoordinatorKeys = "g1", []string{"g1", "g2"}
				resp := c.roundTrip(int32(v), req).(*kmsg.FindCoordinatorResponse)
				want := int16(0)
				if typ != coordinatorGroup && typ != coordinatorTxn {
					want = kerr.InvalidRequest.Code
				}
				type answer struct {
					code       int16
					node, port int32
					host       string
				}
				var got []answer
				if v < 4 {
					got = append(got, answer{resp.ErrorCode, resp.NodeID, resp.Port, resp.Host})
				} else {
					for _, k := range resp.Coordinators {
						got = append(got, answer{k.ErrorCode, k.NodeID, k.Port, k.Host})
					}
					if len(got) != 2 || resp.Coordinators[1].Key != "g2" {
						t.Fatalf("coordinators %+v", resp.Coordinators)
					}
				}
				for _, a := range got {
					ok := a.code == want && (want != 0 || a == answer{0, 1, port, host})
					if !ok {
						t.Fatalf("answer %+v, want code %d at node 1 %s:%d", a, want, host, port)
					}
				}
			})
		}
	}
}

// joinReq is a JoinGroup of group "g" by a consumer subscribing to topic
// "t" with the range protocol (session timeout 10s, rebalance timeout
// 30s).
func joinReq(version int16, memberID string) *kmsg.JoinGroupRequest {
	md := kmsg.NewConsumerMemberMetadata()
	md.Topics = []string{"t"}
	req := kmsg.NewPtrJoinGroupRequest()
	req.Version, req.Group, req.MemberID, req.ProtocolType = version, "g", memberID, "consumer"
	req.SessionTimeoutMillis, req.RebalanceTimeoutMillis = 10_000, 30_000
	req.Protocols = []kmsg.JoinGroupRequestProtocol{{Name: "range", Metadata: md.AppendTo(nil)}}
	return req
}

// syncReq is a v5 SyncGroup of group "g" with the given assignments
// (member ID -> assignment).
func syncReq(memberID string, generation int32, assign map[string]string) *kmsg.SyncGroupRequest {
	req := kmsg.NewPtrSyncGroupRequest()
	req.Version, req.Group, req.MemberID, req.Generation = 5, "g", memberID, generation
	for id, a := range assign {
		req.GroupAssignment = append(req.GroupAssignment, kmsg.SyncGroupRequestGroupAssignment{MemberID: id, MemberAssignment: []byte(a)})
	}
	return req
}

// groupRound runs one member through JoinGroup, SyncGroup, Heartbeat,
// DescribeGroups and LeaveGroup at the given versions.
func groupRound(t *testing.T, c *rawConn, group string, jv, sv, hv, dv, lv int16) {
	t.Helper()
	join := joinReq(jv, "")
	join.Group = group
	jr := c.roundTrip(1, join).(*kmsg.JoinGroupResponse)
	if jr.ErrorCode == kerr.MemberIDRequired.Code {
		join.MemberID = jr.MemberID
		jr = c.roundTrip(2, join).(*kmsg.JoinGroupResponse)
	}
	if jr.ErrorCode != 0 || jr.Generation != 1 || jr.LeaderID != jr.MemberID || len(jr.Members) != 1 {
		t.Fatalf("join v%d: %+v", jv, jr)
	}
	sync := syncReq(jr.MemberID, jr.Generation, map[string]string{jr.MemberID: "assigned"})
	sync.Version, sync.Group = sv, group
	if sv < 5 {
		sync.ProtocolType, sync.Protocol = nil, nil
	}
	sr := c.roundTrip(3, sync).(*kmsg.SyncGroupResponse)
	if sr.ErrorCode != 0 || string(sr.MemberAssignment) != "assigned" {
		t.Fatalf("sync v%d: %+v", sv, sr)
	}
	hb := kmsg.NewPtrHeartbeatRequest()
	hb.Version, hb.Group, hb.MemberID, hb.Generation = hv, group, jr.MemberID, jr.Generation
	if hr := c.roundTrip(4, hb).(*kmsg.HeartbeatResponse); hr.ErrorCode != 0 {
		t.Fatalf("heartbeat v%d: %v", hv, kerr.ErrorForCode(hr.ErrorCode))
	}
	dr := kmsg.NewPtrDescribeGroupsRequest()
	dr.Version, dr.Groups, dr.IncludeAuthorizedOperations = dv, []string{group}, true
	d := c.roundTrip(5, dr).(*kmsg.DescribeGroupsResponse)
	if g := d.Groups[0]; g.State != "Stable" || len(g.Members) != 1 || string(g.Members[0].MemberAssignment) != "assigned" ||
		g.Members[0].ClientID != "raw-test" || (dv >= 3 && g.AuthorizedOperations != groupOperations) {
		t.Fatalf("describe v%d: %+v", dv, g)
	}
	lr := kmsg.NewPtrLeaveGroupRequest()
	lr.Version, lr.Group, lr.MemberID = lv, group, jr.MemberID
	lr.Members = []kmsg.LeaveGroupRequestMember{{MemberID: jr.MemberID}}
	l := c.roundTrip(6, lr).(*kmsg.LeaveGroupResponse)
	if l.ErrorCode != 0 || (lv >= 3 && (len(l.Members) != 1 || l.Members[0].ErrorCode != 0)) {
		t.Fatalf("leave v%d: %+v", lv, l)
	}
}

func TestGroupMembershipEveryVersion(t *testing.T) {
	b := groupBroker(t)
	c := b.raw()
	for v := int16(0); v <= 9; v++ {
		t.Run(fmt.Sprintf("join-v%d", v), func(t *testing.T) {
			groupRound(t, c, fmt.Sprintf("g-join-%d", v), v, min(v, 5), min(v, 4), min(v, 6), min(v, 5))
		})
	}
	for v := int16(0); v <= 6; v++ {
		t.Run(fmt.Sprintf("describe-v%d", v), func(t *testing.T) {
			groupRound(t, c, fmt.Sprintf("g-desc-%d", v), 9, 5, 4, v, 5)
		})
	}
}

func TestGroupRawErrors(t *testing.T) {
	b := groupBroker(t)
	c := b.raw()
	t.Run("HeartbeatUnknownGroup", func(t *testing.T) {
		hb := kmsg.NewPtrHeartbeatRequest()
		hb.Version, hb.Group, hb.MemberID = 4, "nope", "m"
		if r := c.roundTrip(1, hb).(*kmsg.HeartbeatResponse); r.ErrorCode != kerr.UnknownMemberID.Code {
			t.Fatalf("%v", kerr.ErrorForCode(r.ErrorCode))
		}
	})
	t.Run("JoinEmptyGroupID", func(t *testing.T) {
		j := joinReq(9, "")
		j.Group = ""
		if r := c.roundTrip(2, j).(*kmsg.JoinGroupResponse); r.ErrorCode != kerr.InvalidGroupID.Code {
			t.Fatalf("%v", kerr.ErrorForCode(r.ErrorCode))
		}
	})
	t.Run("LeaveV0Unknown", func(t *testing.T) {
		lr := kmsg.NewPtrLeaveGroupRequest()
		lr.Version, lr.Group, lr.MemberID = 0, "nope", "m"
		if r := c.roundTrip(3, lr).(*kmsg.LeaveGroupResponse); r.ErrorCode != kerr.UnknownMemberID.Code {
			t.Fatalf("%v", kerr.ErrorForCode(r.ErrorCode))
		}
	})
	t.Run("DescribeUnknown", func(t *testing.T) {
		for v := int16(0); v <= 6; v++ {
			dr := kmsg.NewPtrDescribeGroupsRequest()
			dr.Version, dr.Groups = v, []string{"nope"}
			g := c.roundTrip(4, dr).(*kmsg.DescribeGroupsResponse).Groups[0]
			want := int16(0)
			if v >= 6 {
				want = kerr.GroupIDNotFound.Code
			}
			if g.State != "Dead" || g.ErrorCode != want {
				t.Fatalf("v%d: %+v", v, g)
			}
		}
	})
	t.Run("DeleteGroupsEveryVersion", func(t *testing.T) {
		for v := int16(0); v <= 3; v++ {
			dr := kmsg.NewPtrDeleteGroupsRequest()
			dr.Version, dr.Groups = v, []string{"nope"}
			g := c.roundTrip(5, dr).(*kmsg.DeleteGroupsResponse).Groups[0]
			if g.ErrorCode != kerr.GroupIDNotFound.Code || (v >= 3) != (g.ErrorMessage != nil) {
				t.Fatalf("v%d: %+v", v, g)
			}
		}
	})
	t.Run("OffsetDelete", func(t *testing.T) {
		od := kmsg.NewPtrOffsetDeleteRequest()
		od.Group = "nope"
		if r := c.roundTrip(6, od).(*kmsg.OffsetDeleteResponse); r.ErrorCode != kerr.GroupIDNotFound.Code {
			t.Fatalf("%v", kerr.ErrorForCode(r.ErrorCode))
		}
		od.Group = ""
		if r := c.roundTrip(7, od).(*kmsg.OffsetDeleteResponse); r.ErrorCode != kerr.InvalidGroupID.Code {
			t.Fatalf("%v", kerr.ErrorForCode(r.ErrorCode))
		}
	})
}

// commitOne builds an OffsetCommit of offset for each topic/partition
// pair, as a simple (generation -1) commit.
func commitOne(version int16, group string, topicID [16]byte, offset int64, tps ...string) *kmsg.OffsetCommitRequest {
	req := kmsg.NewPtrOffsetCommitRequest()
	req.Version, req.Group = version, group
	for i := 0; i < len(tps); i += 2 {
		rt := kmsg.NewOffsetCommitRequestTopic()
		rt.Topic, rt.TopicID = tps[i], topicID
		var p int32
		fmt.Sscan(tps[i+1], &p)
		rp := kmsg.NewOffsetCommitRequestTopicPartition()
		rp.Partition, rp.Offset, rp.LeaderEpoch = p, offset, 7
		md := fmt.Sprintf("v%d", version)
		rp.Metadata = &md
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
	}
	return req
}

func TestOffsetCommitFetchEveryVersion(t *testing.T) {
	b := groupBroker(t)
	b.createTopic("t", 2, nil)
	tp, err := b.log.Topic("t")
	if err != nil {
		t.Fatal(err)
	}
	id := topicIDBytes(tp.ID)
	c := b.raw()
	for v := int16(0); v <= 10; v++ {
		t.Run(fmt.Sprintf("commit-v%d", v), func(t *testing.T) {
			group := fmt.Sprintf("g%d", v)
			req := commitOne(v, group, id, int64(100+v), "t", "0", "t", "5", "nope", "0")
			if v >= 10 {
				req.Topics[2].TopicID = [16]byte{1}
			}
			resp := c.roundTrip(1, req).(*kmsg.OffsetCommitResponse)
			unknownTopic := kerr.UnknownTopicOrPartition.Code
			if v >= 10 {
				unknownTopic = kerr.UnknownTopicID.Code
			}
			got := [3]int16{resp.Topics[0].Partitions[0].ErrorCode, resp.Topics[1].Partitions[0].ErrorCode, resp.Topics[2].Partitions[0].ErrorCode}
			if want := [3]int16{0, kerr.UnknownTopicOrPartition.Code, unknownTopic}; got != want {
				t.Fatalf("codes %v, want %v", got, want)
			}
			o, found, err := b.meta.FetchOffset(testCtx(t), group, "t", 0)
			wantEpoch := int32(-1)
			if v >= 6 {
				wantEpoch = 7
			}
			if err != nil || !found || o.Offset != int64(100+v) || o.LeaderEpoch != wantEpoch || o.Metadata != fmt.Sprintf("v%d", v) {
				t.Fatalf("stored %+v %v %v", o, found, err)
			}
		})
	}
	for v := int16(0); v <= 10; v++ {
		t.Run(fmt.Sprintf("fetch-v%d", v), func(t *testing.T) { checkOffsetFetch(t, c, v, id) })
	}
	t.Run("EmptyGroupID", func(t *testing.T) {
		resp := c.roundTrip(3, commitOne(8, "", id, 1, "t", "0")).(*kmsg.OffsetCommitResponse)
		if code := resp.Topics[0].Partitions[0].ErrorCode; code != kerr.InvalidGroupID.Code {
			t.Fatalf("%v", kerr.ErrorForCode(code))
		}
	})
	t.Run("MetadataTooLarge", func(t *testing.T) {
		req := commitOne(8, "big", id, 1, "t", "0")
		big := string(make([]byte, DefaultOffsetMetadataMaxBytes+1))
		req.Topics[0].Partitions[0].Metadata = &big
		resp := c.roundTrip(4, req).(*kmsg.OffsetCommitResponse)
		if code := resp.Topics[0].Partitions[0].ErrorCode; code != kerr.OffsetMetadataTooLarge.Code {
			t.Fatalf("%v", kerr.ErrorForCode(code))
		}
	})
}

func TestListGroupsFilters(t *testing.T) {
	b := groupBroker(t)
	c := b.raw()
	c.roundTrip(1, commitOne(8, "empty-group", [16]byte{}, 1, "t", "0")) // unknown topic: nothing stored
	b.createTopic("t", 1, nil)
	c.roundTrip(2, commitOne(8, "empty-group", [16]byte{}, 1, "t", "0"))
	j := joinReq(3, "")
	j.Group = "live-group"
	c.roundTrip(3, j)
	for v := int16(0); v <= 5; v++ {
		for _, f := range []struct {
			states, types []string
			want          string
		}{
			{nil, nil, "empty-group:Empty,live-group:CompletingRebalance"},
			{[]string{"completingrebalance"}, nil, "live-group:CompletingRebalance"},
			{[]string{"Empty"}, []string{"classic"}, "empty-group:Empty"},
			{nil, []string{"consumer"}, ""},
		} {
			if (f.states != nil && v < 4) || (f.types != nil && v < 5) {
				continue
			}
			req := kmsg.NewPtrListGroupsRequest()
			req.Version, req.StatesFilter, req.TypesFilter = v, f.states, f.types
			resp := c.roundTrip(4, req).(*kmsg.ListGroupsResponse)
			got := ""
			for i, g := range resp.Groups {
				if i > 0 {
					got += ","
				}
				got += g.Group + ":" + g.GroupState
			}
			want := f.want
			if v < 4 { // no GroupState before v4
				want = "empty-group:,live-group:"
			}
			if resp.ErrorCode != 0 || got != want {
				t.Fatalf("v%d %v %v: %q, want %q", v, f.states, f.types, got, want)
			}
		}
	}
}

// checkOffsetFetch reads back, at version v, what commit-v3 and commit-v4
// of TestOffsetCommitFetchEveryVersion stored (groups g3 and g4).
func checkOffsetFetch(t *testing.T, c *rawConn, v int16, id [16]byte) {
	req := kmsg.NewPtrOffsetFetchRequest()
	req.Version, req.Group = v, "g3"
	req.Topics = []kmsg.OffsetFetchRequestTopic{{Topic: "t", Partitions: []int32{0, 1}}}
	rg := kmsg.NewOffsetFetchRequestGroup()
	rg.Group = "g3"
	rg.Topics = []kmsg.OffsetFetchRequestGroupTopic{{Topic: "t", TopicID: id, Partitions: []int32{0, 1}}}
	req.Groups = []kmsg.OffsetFetchRequestGroup{rg, {Group: "g4"}, {Group: "nope"}}
	resp := c.roundTrip(2, req).(*kmsg.OffsetFetchResponse)
	var parts []kmsg.OffsetFetchResponseGroupTopicPartition
	if v < 8 {
		for _, p := range resp.Topics[0].Partitions {
			parts = append(parts, kmsg.OffsetFetchResponseGroupTopicPartition{Partition: p.Partition, Offset: p.Offset, LeaderEpoch: p.LeaderEpoch, ErrorCode: p.ErrorCode})
		}
	} else {
		parts = resp.Groups[0].Topics[0].Partitions
		// null topics: everything g4 committed; unknown group: nothing.
		if g4 := resp.Groups[1]; len(g4.Topics) != 1 || g4.Topics[0].Partitions[0].Offset != 104 {
			t.Fatalf("all offsets of g4: %+v", g4)
		}
		if n := resp.Groups[2]; n.ErrorCode != 0 || len(n.Topics) != 0 {
			t.Fatalf("unknown group: %+v", n)
		}
	}
	if len(parts) != 2 || parts[0].Offset != 103 || parts[0].ErrorCode != 0 || parts[1].Offset != -1 {
		t.Fatalf("partitions %+v", parts)
	}
	if v >= 5 && parts[0].LeaderEpoch != -1 { // g3 committed at v3: no epoch
		t.Fatalf("leader epoch %d", parts[0].LeaderEpoch)
	}
}
