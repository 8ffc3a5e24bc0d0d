package kafka

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// The expectations below are what Apache Kafka 4.4 (single-node KRaft,
// node 1) answered to the same requests on the same topics.

func TestPartitionAdminAPIsAdvertised(t *testing.T) {
	b := newTestBroker(t, nil)
	resp := b.raw().roundTrip(1, kmsg.NewPtrApiVersionsRequest()).(*kmsg.ApiVersionsResponse)
	got := make(map[int16][2]int16)
	for _, k := range resp.ApiKeys {
		got[k.ApiKey] = [2]int16{k.MinVersion, k.MaxVersion}
	}
	// Kafka 4.4 advertises the same ranges.
	for key, want := range map[int16][2]int16{43: {0, 2}, 45: {0, 1}, 46: {0, 0}, 75: {0, 0}} {
		if got[key] != want {
			t.Errorf("api key %d: versions %v, want %v", key, got[key], want)
		}
	}
}

// electAnswer flattens an ElectLeaders answer to "topic" for a topic with
// no partitions and "topic/partition:ERROR_NAME:message" per partition.
func electAnswer(resp *kmsg.ElectLeadersResponse) string {
	var out []string
	for _, st := range resp.Topics {
		if len(st.Partitions) == 0 {
			out = append(out, st.Topic)
		}
		for _, p := range st.Partitions {
			msg := "<nil>"
			if p.ErrorMessage != nil {
				msg = *p.ErrorMessage
			}
			out = append(out, fmt.Sprintf("%s/%d:%s:%s", st.Topic, p.Partition, errName(p.ErrorCode), msg))
		}
	}
	return strings.Join(out, " ")
}

func errName(code int16) string {
	if code == 0 {
		return "NONE"
	}
	return kerr.ErrorForCode(code).(*kerr.Error).Message
}

func TestElectLeaders(t *testing.T) {
	b := newTestBroker(t, nil)
	b.createTopic("a", 3, nil)
	b.createTopic("b", 3, nil)
	notNeeded := "ELECTION_NOT_NEEDED:Leader election not needed for topic partition."
	named := []kmsg.ElectLeadersRequestTopic{
		{Topic: "a", Partitions: []int32{0, 7, 0, -1}},
		{Topic: "nope", Partitions: []int32{0}},
		{Topic: "b", Partitions: []int32{}},
	}
	namedWant := "a/0:" + notNeeded +
		" a/7:UNKNOWN_TOPIC_OR_PARTITION:No such partition as a-7" +
		" a/0:" + notNeeded +
		" a/-1:UNKNOWN_TOPIC_OR_PARTITION:No such partition as a--1" +
		" nope/0:UNKNOWN_TOPIC_OR_PARTITION:No such topic as nope" +
		" b"
	for v := int16(0); v <= 2; v++ {
		for _, typ := range []int8{0, 1, 5} {
			if v == 0 && typ != 0 {
				continue // v0 has no election type: always preferred
			}
			for _, tc := range []struct {
				name     string
				topics   []kmsg.ElectLeadersRequestTopic
				want     string
				wantCode int16
			}{
				{"all", nil, "a b", 0},
				{"named", named, namedWant, 0},
				{"empty", []kmsg.ElectLeadersRequestTopic{}, "", 0},
			} {
				if typ == 5 { // unknown election type
					switch tc.name {
					case "all":
						tc.want, tc.wantCode = "", kerr.InvalidRequest.Code
					case "named":
						m := ":INVALID_REQUEST:Unknown election type 5"
						tc.want, tc.wantCode = "a/0"+m+" a/7"+m+" a/0"+m+" a/-1"+m+" nope/0"+m+" b", kerr.InvalidRequest.Code
					}
				}
				t.Run(fmt.Sprintf("v%d/type%d/%s", v, typ, tc.name), func(t *testing.T) {
					req := kmsg.NewPtrElectLeadersRequest()
					req.Version, req.ElectionType, req.Topics = v, typ, tc.topics
					resp := b.raw().roundTrip(1, req).(*kmsg.ElectLeadersResponse)
					if got := electAnswer(resp); got != tc.want {
						t.Fatalf("answer %q,\nwant %q", got, tc.want)
					}
					if v >= 1 && resp.ErrorCode != tc.wantCode {
						t.Fatalf("top-level code %d, want %d", resp.ErrorCode, tc.wantCode)
					}
				})
			}
		}
	}

	t.Run("kadm", func(t *testing.T) {
		adm := b.admin()
		ctx := testCtx(t)
		for _, how := range []kadm.ElectLeadersHow{kadm.ElectPreferredReplica, kadm.ElectLiveReplica} {
			all, err := adm.ElectLeaders(ctx, how, nil)
			if err != nil {
				t.Fatal(err)
			}
			if len(all) != 2 || len(all["a"]) != 0 || len(all["b"]) != 0 {
				t.Fatalf("all partitions: %+v", all)
			}
			rs, err := adm.ElectLeaders(ctx, how, kadm.TopicsSet{"a": {0: {}, 2: {}, 9: {}}, "nope": {1: {}}})
			if err != nil {
				t.Fatal(err)
			}
			for _, tc := range []struct {
				topic string
				p     int32
				want  error
			}{
				{"a", 0, kerr.ElectionNotNeeded}, {"a", 2, kerr.ElectionNotNeeded},
				{"a", 9, kerr.UnknownTopicOrPartition}, {"nope", 1, kerr.UnknownTopicOrPartition},
			} {
				if r, ok := rs[tc.topic][tc.p]; !ok || !errors.Is(r.Err, tc.want) || r.How != how {
					t.Errorf("%s/%d: %+v, want %v", tc.topic, tc.p, r, tc.want)
				}
			}
		}
	})

	t.Run("version too high", func(t *testing.T) {
		req := kmsg.NewPtrElectLeadersRequest()
		req.Version = 3
		c := b.raw()
		c.write(frame(1, req))
		c.expectClosed()
	})
}

func TestListPartitionReassignments(t *testing.T) {
	b := newTestBroker(t, nil)
	b.createTopic("a", 3, nil)
	for _, tc := range []struct {
		name   string
		topics []kmsg.ListPartitionReassignmentsRequestTopic
	}{
		{"all", nil},
		{"named, unknown topic and partition", []kmsg.ListPartitionReassignmentsRequestTopic{
			{Topic: "a", Partitions: []int32{0, 7, -1}}, {Topic: "nope", Partitions: []int32{0}}, {Topic: "a"}}},
		{"empty", []kmsg.ListPartitionReassignmentsRequestTopic{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := kmsg.NewPtrListPartitionReassignmentsRequest()
			req.Topics = tc.topics
			resp := b.raw().roundTrip(1, req).(*kmsg.ListPartitionReassignmentsResponse)
			if resp.ErrorCode != 0 || resp.ErrorMessage != nil || len(resp.Topics) != 0 {
				t.Fatalf("%+v", resp)
			}
		})
	}
	t.Run("kadm", func(t *testing.T) {
		rs, err := b.admin().ListPartitionReassignments(testCtx(t), kadm.TopicsSet{"a": {0: {}, 1: {}}, "nope": {0: {}}})
		if err != nil || len(rs) != 0 {
			t.Fatalf("%+v, %v", rs, err)
		}
	})
	t.Run("version too high", func(t *testing.T) {
		req := kmsg.NewPtrListPartitionReassignmentsRequest()
		req.Version = 1
		c := b.raw()
		c.write(frame(1, req))
		c.expectClosed()
	})
}

// reassignAnswer flattens an AlterPartitionReassignments answer to
// "topic/partition:ERROR_NAME:message" per partition.
func reassignAnswer(resp *kmsg.AlterPartitionAssignmentsResponse) string {
	var out []string
	for _, st := range resp.Topics {
		for _, p := range st.Partitions {
			msg := "<nil>"
			if p.ErrorMessage != nil {
				msg = *p.ErrorMessage
			}
			out = append(out, fmt.Sprintf("%s/%d:%s:%s", st.Topic, p.Partition, errName(p.ErrorCode), msg))
		}
	}
	return strings.Join(out, " ")
}

func TestAlterPartitionReassignments(t *testing.T) {
	b := newTestBroker(t, nil)
	b.createTopic("a", 3, nil)
	b.createTopic("b", 1, nil)
	type part = kmsg.AlterPartitionAssignmentsRequestTopicPartition
	topics := []kmsg.AlterPartitionAssignmentsRequestTopic{
		{Topic: "a", Partitions: []part{
			{Partition: 0, Replicas: []int32{1}},
			{Partition: 1, Replicas: nil},
			{Partition: 2, Replicas: []int32{2}},
			{Partition: 7, Replicas: []int32{1}},
			{Partition: 0, Replicas: []int32{1, 1}},
			{Partition: 1, Replicas: []int32{}},
			{Partition: 2, Replicas: []int32{2, 1}},
			{Partition: -1, Replicas: []int32{1}},
			{Partition: 7, Replicas: nil},
		}},
		{Topic: "nope", Partitions: []part{{Partition: 0, Replicas: []int32{1}}, {Partition: 0, Replicas: nil}}},
		{Topic: "b", Partitions: []part{{Partition: 0, Replicas: []int32{-1}}}},
	}
	const invalid = "INVALID_REPLICA_ASSIGNMENT:The manual partition assignment includes "
	want := strings.Join([]string{
		"a/0:NONE:<nil>",
		"a/1:NO_REASSIGNMENT_IN_PROGRESS:<nil>",
		"a/2:" + invalid + "broker 2, but no such broker is registered.",
		"a/7:UNKNOWN_TOPIC_OR_PARTITION:Unable to find partition a:7.",
		"a/0:" + invalid + "the broker 1 more than once.",
		"a/1:" + invalid + "an empty replica list.",
		"a/2:" + invalid + "broker 2, but no such broker is registered.",
		"a/-1:UNKNOWN_TOPIC_OR_PARTITION:Unable to find partition a:-1.",
		"a/7:UNKNOWN_TOPIC_OR_PARTITION:Unable to find partition a:7.",
		"nope/0:UNKNOWN_TOPIC_OR_PARTITION:Unable to find a topic named nope.",
		"nope/0:UNKNOWN_TOPIC_OR_PARTITION:Unable to find a topic named nope.",
		"b/0:" + invalid + "broker -1, but no such broker is registered.",
	}, " ")
	for v := int16(0); v <= 1; v++ {
		for _, allowRF := range []bool{true, false} {
			if v == 0 && !allowRF {
				continue // v1 field
			}
			t.Run(fmt.Sprintf("v%d/allowRF=%v", v, allowRF), func(t *testing.T) {
				req := kmsg.NewPtrAlterPartitionAssignmentsRequest()
				req.Version, req.AllowReplicationFactorChange, req.Topics = v, allowRF, topics
				resp := b.raw().roundTrip(1, req).(*kmsg.AlterPartitionAssignmentsResponse)
				if got := reassignAnswer(resp); got != want {
					t.Fatalf("answer\n%s\nwant\n%s", got, want)
				}
				if resp.ErrorCode != 0 || resp.ErrorMessage != nil || (v >= 1 && resp.AllowReplicationFactorChange != allowRF) {
					t.Fatalf("top level %+v", resp)
				}
			})
			t.Run(fmt.Sprintf("v%d/allowRF=%v/no topics", v, allowRF), func(t *testing.T) {
				req := kmsg.NewPtrAlterPartitionAssignmentsRequest()
				req.Version, req.AllowReplicationFactorChange = v, allowRF
				resp := b.raw().roundTrip(1, req).(*kmsg.AlterPartitionAssignmentsResponse)
				if resp.ErrorCode != 0 || resp.ErrorMessage == nil || *resp.ErrorMessage != "" ||
					len(resp.Topics) != 0 || (v >= 1 && !resp.AllowReplicationFactorChange) {
					t.Fatalf("%+v", resp)
				}
			})
		}
	}

	t.Run("kadm", func(t *testing.T) {
		adm := b.admin()
		ctx := testCtx(t)
		var req kadm.AlterPartitionAssignmentsReq
		req.Assign("a", 0, []int32{1})
		req.CancelAssign("a", 1)
		req.Assign("a", 2, []int32{1, 2})
		req.Assign("nope", 0, []int32{1})
		rs, err := adm.AlterPartitionAssignments(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		for _, tc := range []struct {
			topic string
			p     int32
			want  error
		}{
			{"a", 0, nil}, {"a", 1, kerr.NoReassignmentInProgress},
			{"a", 2, kerr.InvalidReplicaAssignment}, {"nope", 0, kerr.UnknownTopicOrPartition},
		} {
			if r, ok := rs[tc.topic][tc.p]; !ok || !errors.Is(r.Err, tc.want) || (tc.want == nil) != (r.Err == nil) {
				t.Errorf("%s/%d: %+v, want %v", tc.topic, tc.p, r, tc.want)
			}
		}
		var same kadm.AlterPartitionAssignmentsReq
		same.Assign("a", 1, []int32{1})
		if rs, err := adm.AlterPartitionAssignments(kadm.ForbidAlterRf(ctx), same); err != nil || rs.Error() != nil {
			t.Fatalf("onto the current replica without replication factor change: %+v, %v", rs, err)
		}
		// Nothing moved, nothing pending.
		if rs, err := adm.ListPartitionReassignments(ctx, kadm.TopicsSet{"a": {0: {}, 1: {}, 2: {}}}); err != nil || len(rs) != 0 {
			t.Fatalf("reassignments after altering: %+v, %v", rs, err)
		}
	})

	t.Run("version too high", func(t *testing.T) {
		req := kmsg.NewPtrAlterPartitionAssignmentsRequest()
		req.Version = 2
		c := b.raw()
		c.write(frame(1, req))
		c.expectClosed()
	})
}
