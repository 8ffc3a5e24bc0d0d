package kafka

import (
	"errors"
	"path/filepath"
	"testing"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func TestCreatePartitions(t *testing.T) {
	b := newTestBroker(t, func(c *Config) { c.MaxTopicPartitions = 10 })
	b.createTopic("grow", 2, nil)
	adm := b.admin()
	ctx := testCtx(t)

	resp, err := adm.ValidateCreatePartitions(ctx, 2, "grow")
	if err != nil || resp.Error() != nil {
		t.Fatalf("validate: %v %v", err, resp.Error())
	}
	if mt, _ := b.log.Topic("grow"); mt.PartitionCount != 2 {
		t.Fatalf("validate-only added partitions: %d", mt.PartitionCount)
	}
	resp, err = adm.CreatePartitions(ctx, 2, "grow")
	if err != nil || resp.Error() != nil {
		t.Fatalf("create: %v %v", err, resp.Error())
	}
	if mt, _ := b.log.Topic("grow"); mt.PartitionCount != 4 {
		t.Fatalf("partitions %d, want 4", mt.PartitionCount)
	}

	// Produce to a new partition with a fresh client: it must learn of it
	// from Metadata.
	p := b.client(kgo.RecordPartitioner(kgo.ManualPartitioner()))
	r := &kgo.Record{Topic: "grow", Partition: 3, Value: []byte("new")}
	if err := p.ProduceSync(ctx, r).FirstErr(); err != nil {
		t.Fatal(err)
	}
	if r.Partition != 3 || r.Offset != 0 {
		t.Fatalf("record landed at %d/%d", r.Partition, r.Offset)
	}
	if _, hwm := mustPartition(t, b, "grow", 3).Offsets(); hwm != 1 {
		t.Fatalf("partition 3 high watermark %d", hwm)
	}

	for _, tc := range []struct {
		name  string
		set   int
		topic string
		want  error
	}{
		{"same count", 4, "grow", kerr.InvalidPartitions},
		{"fewer", 3, "grow", kerr.InvalidPartitions},
		{"above the maximum", 11, "grow", kerr.InvalidPartitions},
		{"unknown topic", 5, "missing", kerr.UnknownTopicOrPartition},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp := b.rawCreatePartitions(t, false, kmsg.CreatePartitionsRequestTopic{Topic: tc.topic, Count: int32(tc.set)})
			if got := kerr.ErrorForCode(resp.Topics[0].ErrorCode); !errors.Is(got, tc.want) {
				t.Fatalf("err %v, want %v", got, tc.want)
			}
		})
	}
}

func TestCreatePartitionsAssignments(t *testing.T) {
	b := newTestBroker(t, nil)
	b.createTopic("grow", 4, nil)
	t.Run("assignments", func(t *testing.T) {
		assign := func(replicas ...[]int32) []kmsg.CreatePartitionsRequestTopicAssignment {
			var out []kmsg.CreatePartitionsRequestTopicAssignment
			for _, r := range replicas {
				out = append(out, kmsg.CreatePartitionsRequestTopicAssignment{Replicas: r})
			}
			return out
		}
		for _, tc := range []struct {
			name   string
			assign []kmsg.CreatePartitionsRequestTopicAssignment
			want   int16
		}{
			{"replication 2", assign([]int32{1, 2}), kerr.InvalidReplicaAssignment.Code},
			{"other broker", assign([]int32{7}), kerr.InvalidReplicaAssignment.Code},
			{"too few", assign(), kerr.InvalidReplicaAssignment.Code},
			{"ours", assign([]int32{1}), 0},
		} {
			t.Run(tc.name, func(t *testing.T) {
				rt := kmsg.CreatePartitionsRequestTopic{Topic: "grow", Count: 5, Assignment: tc.assign}
				if tc.assign == nil {
					rt.Assignment = []kmsg.CreatePartitionsRequestTopicAssignment{}
				}
				resp := b.rawCreatePartitions(t, true, rt)
				if got := resp.Topics[0].ErrorCode; got != tc.want {
					t.Fatalf("code %d, want %d", got, tc.want)
				}
			})
		}
	})
	t.Run("duplicate topic", func(t *testing.T) {
		rt := kmsg.CreatePartitionsRequestTopic{Topic: "grow", Count: 6}
		resp := b.rawCreatePartitions(t, false, rt, rt)
		for _, st := range resp.Topics {
			if st.ErrorCode != kerr.InvalidRequest.Code {
				t.Fatalf("code %d", st.ErrorCode)
			}
		}
	})
}

func (b *testBroker) rawCreatePartitions(t *testing.T, validateOnly bool, topics ...kmsg.CreatePartitionsRequestTopic) *kmsg.CreatePartitionsResponse {
	t.Helper()
	req := kmsg.NewPtrCreatePartitionsRequest()
	req.Version, req.ValidateOnly, req.Topics = 3, validateOnly, topics
	return b.raw().roundTrip(1, req).(*kmsg.CreatePartitionsResponse)
}

func TestDeleteRecords(t *testing.T) {
	b := newTestBroker(t, nil)
	b.createTopic("dr", 2, nil)
	ctx := testCtx(t)
	p := b.client(kgo.RecordPartitioner(kgo.ManualPartitioner()))
	for i := range 10 {
		if err := p.ProduceSync(ctx, &kgo.Record{Topic: "dr", Value: []byte{byte(i)}}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	adm := b.admin()
	var os kadm.Offsets
	os.Add(kadm.Offset{Topic: "dr", Partition: 0, At: 4})
	os.Add(kadm.Offset{Topic: "dr", Partition: 1, At: -1}) // the (empty) high watermark
	resp, err := adm.DeleteRecords(ctx, os)
	if err != nil {
		t.Fatal(err)
	}
	if r, _ := resp.Lookup("dr", 0); r.Err != nil || r.LowWatermark != 4 {
		t.Fatalf("partition 0: %+v", r)
	}
	if r, _ := resp.Lookup("dr", 1); r.Err != nil || r.LowWatermark != 0 {
		t.Fatalf("partition 1: %+v", r)
	}
	l, err := adm.ListStartOffsets(ctx, "dr")
	if o, _ := l.Lookup("dr", 0); err != nil || o.Offset != 4 {
		t.Fatalf("earliest after delete: %+v %v", o, err)
	}
	raw := b.raw()
	fr := raw.roundTrip(1, fetchReq("dr", 0, 3, 0, 0)).(*kmsg.FetchResponse)
	if fp := fr.Topics[0].Partitions[0]; fp.ErrorCode != kerr.OffsetOutOfRange.Code || fp.LogStartOffset != 4 {
		t.Fatalf("fetch below the log start: code %d, log start %d", fp.ErrorCode, fp.LogStartOffset)
	}
	fr = raw.roundTrip(2, fetchReq("dr", 0, 4, 0, 0)).(*kmsg.FetchResponse)
	if fp := fr.Topics[0].Partitions[0]; fp.ErrorCode != 0 || len(fp.RecordBatches) == 0 {
		t.Fatalf("fetch at the log start: code %d, %d bytes", fp.ErrorCode, len(fp.RecordBatches))
	}

	for _, tc := range []struct {
		name      string
		partition int32
		offset    int64
		wantLow   int64
		want      error
	}{
		{"below the log start", 0, 2, 4, nil},
		{"to the high watermark", 0, -1, 10, nil},
		{"above the high watermark", 0, 11, -1, kerr.OffsetOutOfRange},
		{"negative", 0, -5, -1, kerr.OffsetOutOfRange},
		{"unknown partition", 9, 0, -1, kerr.UnknownTopicOrPartition},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := kmsg.NewPtrDeleteRecordsRequest()
			req.Version = 2
			req.Topics = []kmsg.DeleteRecordsRequestTopic{{Topic: "dr", Partitions: []kmsg.DeleteRecordsRequestTopicPartition{{Partition: tc.partition, Offset: tc.offset}}}}
			sp := raw.roundTrip(3, req).(*kmsg.DeleteRecordsResponse).Topics[0].Partitions[0]
			if got := kerr.ErrorForCode(sp.ErrorCode); !errors.Is(got, tc.want) || sp.LowWatermark != tc.wantLow {
				t.Fatalf("low %d err %v; want %d, %v", sp.LowWatermark, got, tc.wantLow, tc.want)
			}
		})
	}

	b.restart()
	if ls, _ := mustPartition(t, b, "dr", 0).Offsets(); ls != 10 {
		t.Fatalf("log start after restart %d, want 10", ls)
	}
}

func TestOffsetForLeaderEpoch(t *testing.T) {
	b := newTestBroker(t, nil)
	b.createTopic("ep", 1, nil)
	ctx := testCtx(t)
	p := b.client()
	for range 3 {
		if err := p.ProduceSync(ctx, &kgo.Record{Topic: "ep", Value: []byte("v")}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		name      string
		version   int16
		topic     string
		partition int32
		current   int32
		epoch     int32
		wantCode  int16
		wantEpoch int32
		wantEnd   int64
	}{
		{"epoch 0", 4, "ep", 0, 0, 0, 0, 0, 3},
		{"current unknown", 4, "ep", 0, -1, 0, 0, 0, 3},
		{"v0", 0, "ep", 0, -1, 0, 0, -1, 3},
		{"future epoch", 4, "ep", 0, -1, 5, 0, -1, -1},
		{"undefined epoch", 4, "ep", 0, -1, -1, 0, -1, -1},
		{"current above ours", 4, "ep", 0, 1, 0, kerr.UnknownLeaderEpoch.Code, -1, -1},
		{"current below ours", 4, "ep", 0, -2, 0, kerr.FencedLeaderEpoch.Code, -1, -1},
		{"unknown partition", 4, "ep", 3, -1, 0, kerr.UnknownTopicOrPartition.Code, -1, -1},
		{"unknown topic", 4, "nope", 0, -1, 0, kerr.UnknownTopicOrPartition.Code, -1, -1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := kmsg.NewPtrOffsetForLeaderEpochRequest()
			req.Version, req.ReplicaID = tc.version, -1
			rp := kmsg.NewOffsetForLeaderEpochRequestTopicPartition()
			rp.Partition, rp.CurrentLeaderEpoch, rp.LeaderEpoch = tc.partition, tc.current, tc.epoch
			req.Topics = []kmsg.OffsetForLeaderEpochRequestTopic{{Topic: tc.topic, Partitions: []kmsg.OffsetForLeaderEpochRequestTopicPartition{rp}}}
			resp := b.raw().roundTrip(1, req).(*kmsg.OffsetForLeaderEpochResponse)
			sp := resp.Topics[0].Partitions[0]
			if sp.ErrorCode != tc.wantCode || sp.LeaderEpoch != tc.wantEpoch || sp.EndOffset != tc.wantEnd {
				t.Fatalf("got code %d epoch %d end %d; want %d %d %d", sp.ErrorCode, sp.LeaderEpoch, sp.EndOffset, tc.wantCode, tc.wantEpoch, tc.wantEnd)
			}
		})
	}
	t.Run("kadm", func(t *testing.T) {
		var req kadm.OffsetForLeaderEpochRequest
		req.Add("ep", 0, 0)
		resp, err := b.admin().OffsetForLeaderEpoch(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		if o := resp["ep"][0]; o.Err != nil || o.EndOffset != 3 || o.LeaderEpoch != 0 {
			t.Fatalf("%+v", o)
		}
	})
}

func TestDescribeCluster(t *testing.T) {
	b := newTestBroker(t, nil)
	for _, tc := range []struct {
		name     string
		version  int16
		endpoint int8
		ops      bool
		wantCode int16
	}{
		{"v0", 0, 1, false, 0},
		{"v2 with operations", 2, 1, true, 0},
		{"controllers", 1, 2, false, kerr.MismatchedEndpointType.Code},
		{"unknown endpoint type", 1, 3, false, kerr.UnsupportedEndpointType.Code},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := kmsg.NewPtrDescribeClusterRequest()
			req.Version, req.EndpointType, req.IncludeClusterAuthorizedOperations = tc.version, tc.endpoint, tc.ops
			resp := b.raw().roundTrip(1, req).(*kmsg.DescribeClusterResponse)
			if resp.ErrorCode != tc.wantCode {
				t.Fatalf("code %d, want %d", resp.ErrorCode, tc.wantCode)
			}
			if tc.wantCode != 0 {
				if resp.ErrorMessage == nil || len(resp.Brokers) != 0 {
					t.Fatalf("refusal %+v", resp)
				}
				return
			}
			host, port := b.srv.advertised()
			if resp.ClusterID != b.clusterID() || resp.ControllerID != 1 || len(resp.Brokers) != 1 ||
				resp.Brokers[0].NodeID != 1 || resp.Brokers[0].Host != host || resp.Brokers[0].Port != port {
				t.Fatalf("answer %+v", resp)
			}
			if wantOps := tc.ops; (resp.ClusterAuthorizedOperations == clusterOps) != wantOps {
				t.Fatalf("authorized operations %d", resp.ClusterAuthorizedOperations)
			}
		})
	}
}

func TestDescribeLogDirs(t *testing.T) {
	b := newTestBroker(t, nil)
	b.createTopic("ld", 2, nil)
	b.createTopic("other", 1, nil)
	ctx := testCtx(t)
	p := b.client(kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.ProducerBatchCompression(kgo.NoCompression()))
	if err := p.ProduceSync(ctx, &kgo.Record{Topic: "ld", Partition: 1, Value: make([]byte, 500)}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	adm := b.admin()
	all, err := adm.DescribeAllLogDirs(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	dirs := all[1]
	if len(dirs) != 1 || dirs.Error() != nil {
		t.Fatalf("dirs %+v", dirs)
	}
	want, _ := filepath.Abs(filepath.Join(b.dir, "data"))
	d, ok := dirs[want]
	if !ok {
		t.Fatalf("dir %s not in %+v", want, dirs)
	}
	if d.TotalBytes <= 0 || d.UsableBytes < 0 {
		t.Fatalf("disk figures %d / %d", d.UsableBytes, d.TotalBytes)
	}
	p1, ok := dirs.LookupPartition("ld", 1)
	if !ok || p1.Size < 500 || p1.Size != mustPartition(t, b, "ld", 1).StoredBytes() {
		t.Fatalf("ld/1: %+v", p1)
	}
	if p0, ok := dirs.LookupPartition("ld", 0); !ok || p0.Size != 0 {
		t.Fatalf("ld/0: %+v", p0)
	}
	if _, ok := dirs.LookupPartition("other", 0); !ok {
		t.Fatal("other/0 missing from the describe-all answer")
	}

	var s kadm.TopicsSet
	s.Add("ld", 1, 7)
	s.Add("missing", 0)
	some, err := adm.DescribeBrokerLogDirs(ctx, 1, s)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	some.EachPartition(func(p kadm.DescribedLogDirPartition) { got = append(got, p.Topic) })
	if len(got) != 1 || got[0] != "ld" {
		t.Fatalf("asked for ld/1, ld/7, missing/0; got partitions of %v", got)
	}
}
