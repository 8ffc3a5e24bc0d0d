package kafka

import (
	"errors"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func TestCreateTopics(t *testing.T) {
	b := newTestBroker(t, nil)
	adm := b.admin()
	ctx := testCtx(t)
	b.createTopic("exists", 1, nil)
	ok := "7"
	tests := []struct {
		name    string
		topic   string
		parts   int32
		rf      int16
		configs map[string]*string
		want    error
	}{
		{"plain", "new-topic", 3, 1, nil, nil},
		{"defaults", "defaults", -1, -1, nil, nil},
		{"with config", "cfg", 1, 1, map[string]*string{"retention.ms": &ok}, nil},
		{"exists", "exists", 1, 1, nil, kerr.TopicAlreadyExists},
		{"bad name", "bad/name", 1, 1, nil, kerr.InvalidTopicException},
		{"zero partitions", "zero", 0, 1, nil, kerr.InvalidPartitions},
		{"replication 3", "rf3", 1, 3, nil, kerr.InvalidReplicationFactor},
		{"unknown config", "unk", 1, 1, map[string]*string{"no.such": &ok}, kerr.InvalidConfig},
		{"null config", "nul", 1, 1, map[string]*string{"retention.ms": nil}, kerr.InvalidConfig},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp, err := adm.CreateTopic(ctx, tc.parts, tc.rf, tc.configs, tc.topic)
			if err == nil {
				err = resp.Err
			}
			if !errors.Is(err, tc.want) || (tc.want == nil && err != nil) {
				t.Fatalf("err %v, want %v", err, tc.want)
			}
			if tc.want != nil {
				if _, err := b.log.Topic(tc.topic); err == nil && tc.want != kerr.TopicAlreadyExists {
					t.Fatal("failed creation left a topic")
				}
				return
			}
			mt, err := b.log.Topic(tc.topic)
			if err != nil {
				t.Fatal(err)
			}
			if want := max(tc.parts, 1); mt.PartitionCount != want || resp.NumPartitions != want {
				t.Fatalf("partitions %d (answer %d), want %d", mt.PartitionCount, resp.NumPartitions, want)
			}
			if resp.ID != kadm.TopicID(topicIDBytes(mt.ID)) {
				t.Fatalf("answer ID %v, meta ID %s", resp.ID, mt.ID)
			}
		})
	}
	t.Run("validate only", func(t *testing.T) {
		resp, err := adm.ValidateCreateTopics(ctx, 2, 1, nil, "dry")
		if err != nil || resp["dry"].Err != nil {
			t.Fatalf("%v %v", err, resp["dry"].Err)
		}
		if _, err := b.log.Topic("dry"); err == nil {
			t.Fatal("validate-only created the topic")
		}
		resp, _ = adm.ValidateCreateTopics(ctx, 2, 1, nil, "exists")
		if !errors.Is(resp["exists"].Err, kerr.TopicAlreadyExists) {
			t.Fatalf("validate-only of an existing topic: %v", resp["exists"].Err)
		}
	})
}

func TestDeleteTopics(t *testing.T) {
	b := newTestBroker(t, nil)
	adm := b.admin()
	ctx := testCtx(t)
	b.createTopic("by-name", 1, nil)
	b.createTopic("by-id", 2, nil)
	resps, err := adm.DeleteTopics(ctx, "by-name", "missing")
	if err != nil {
		t.Fatal(err)
	}
	if resps["by-name"].Err != nil || !errors.Is(resps["missing"].Err, kerr.UnknownTopicOrPartition) {
		t.Fatalf("by-name: %v, missing: %v", resps["by-name"].Err, resps["missing"].Err)
	}
	if _, err := b.log.Topic("by-name"); err == nil {
		t.Fatal("topic still there")
	}

	mt, _ := b.log.Topic("by-id")
	req := kmsg.NewPtrDeleteTopicsRequest()
	req.Version = 6
	for _, id := range [][16]byte{topicIDBytes(mt.ID), {1, 2, 3}} {
		rt := kmsg.NewDeleteTopicsRequestTopic()
		rt.TopicID = id
		req.Topics = append(req.Topics, rt)
	}
	resp := b.raw().roundTrip(1, req).(*kmsg.DeleteTopicsResponse)
	if resp.Topics[0].ErrorCode != 0 || resp.Topics[0].Topic == nil || *resp.Topics[0].Topic != "by-id" {
		t.Fatalf("delete by ID: %+v", resp.Topics[0])
	}
	if resp.Topics[1].ErrorCode != kerr.UnknownTopicID.Code {
		t.Fatalf("unknown ID: code %d", resp.Topics[1].ErrorCode)
	}
	if _, err := b.log.Topic("by-id"); err == nil {
		t.Fatal("topic deleted by ID still there")
	}
}

func TestMetadataAndAutoCreate(t *testing.T) {
	for _, tc := range []struct {
		name         string
		brokerAllows bool
		wantCreated  bool
	}{
		{"broker allows", true, true},
		{"broker forbids", false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := newTestBroker(t, func(c *Config) { c.AutoCreateTopics = tc.brokerAllows; c.DefaultPartitions = 2 })
			b.createTopic("known", 3, nil)
			adm := b.admin()
			md, err := adm.Metadata(testCtx(t))
			if err != nil {
				t.Fatal(err)
			}
			if md.Cluster != b.clusterID() || md.Controller != 1 || len(md.Brokers) != 1 || md.Brokers[0].NodeID != 1 {
				t.Fatalf("metadata %+v", md)
			}
			td := md.Topics["known"]
			mt, _ := b.log.Topic("known")
			if len(td.Partitions) != 3 || td.ID != kadm.TopicID(topicIDBytes(mt.ID)) || td.Partitions[0].Leader != 1 {
				t.Fatalf("topic %+v", td)
			}

			p := b.client(kgo.AllowAutoTopicCreation(), kgo.ProduceRequestTimeout(2*time.Second),
				kgo.RecordDeliveryTimeout(3*time.Second))
			err = p.ProduceSync(testCtx(t), &kgo.Record{Topic: "auto", Value: []byte("x")}).FirstErr()
			mt, lerr := b.log.Topic("auto")
			if tc.wantCreated {
				if err != nil || lerr != nil || mt.PartitionCount != 2 {
					t.Fatalf("produce %v, topic %+v %v", err, mt, lerr)
				}
				return
			}
			if err == nil || lerr == nil {
				t.Fatalf("auto-created against broker config: produce %v, topic %v", err, lerr)
			}
		})
	}
}

func TestMetadataRequestFlagForbidsAutoCreate(t *testing.T) {
	b := newTestBroker(t, func(c *Config) { c.AutoCreateTopics = true })
	req := kmsg.NewPtrMetadataRequest()
	req.Version = 12
	name := "nope"
	req.Topics = []kmsg.MetadataRequestTopic{{Topic: &name}}
	resp := b.raw().roundTrip(1, req).(*kmsg.MetadataResponse)
	if resp.Topics[0].ErrorCode != kerr.UnknownTopicOrPartition.Code {
		t.Fatalf("code %d", resp.Topics[0].ErrorCode)
	}
	if _, err := b.log.Topic(name); err == nil {
		t.Fatal("created without the request's permission")
	}
}

func TestListOffsets(t *testing.T) {
	b := newTestBroker(t, nil)
	b.createTopic("lo", 1, nil)
	p := b.client()
	base := time.UnixMilli(1_700_000_000_000)
	for i := range 10 {
		r := &kgo.Record{Topic: "lo", Value: []byte("v"), Timestamp: base.Add(time.Duration(i) * time.Second)}
		if err := p.ProduceSync(testCtx(t), r).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	adm := b.admin()
	ctx := testCtx(t)
	check := func(name string, l kadm.ListedOffsets, err error, want int64) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		o, ok := l.Lookup("lo", 0)
		if !ok || o.Err != nil || o.Offset != want {
			t.Fatalf("%s: %+v, want offset %d", name, o, want)
		}
	}
	l, err := adm.ListStartOffsets(ctx, "lo")
	check("start", l, err, 0)
	l, err = adm.ListEndOffsets(ctx, "lo")
	check("end", l, err, 10)
	l, err = adm.ListOffsetsAfterMilli(ctx, base.Add(3500*time.Millisecond).UnixMilli(), "lo")
	check("by time", l, err, 4)
	l, err = adm.ListOffsetsAfterMilli(ctx, base.Add(time.Hour).UnixMilli(), "lo")
	if err != nil {
		t.Fatal(err)
	}
	if o, _ := l.Lookup("lo", 0); o.Err != nil || (o.Offset != -1 && o.Offset != 10) {
		t.Fatalf("after the last record: %+v", o)
	}
	l, err = adm.ListStartOffsets(ctx, "missing")
	if err == nil {
		if o, ok := l.Lookup("missing", 0); ok && o.Err == nil {
			t.Fatalf("unknown topic listed: %+v", o)
		}
	}
}

// TestListOffsetsSpecialTimestamps covers ListOffsets v7+'s special
// timestamps: -3 finds the first record with the largest timestamp across
// segments (an earlier segment here), -4 is the log start offset, -5 and
// -6 answer -1 (no tiered storage), and a v6 request sending -3 is refused.
func TestListOffsetsSpecialTimestamps(t *testing.T) {
	b := newTestBroker(t, nil)
	b.createTopic("lomax", 1, nil)
	p := b.client()
	ctx := testCtx(t)
	base := int64(1_700_000_000_000)
	produce := func(offsetsTs ...int64) {
		t.Helper()
		for _, ts := range offsetsTs {
			r := &kgo.Record{Topic: "lomax", Value: []byte("v"), Timestamp: time.UnixMilli(base + ts)}
			if err := p.ProduceSync(ctx, r).FirstErr(); err != nil {
				t.Fatal(err)
			}
		}
	}
	// list asks with kgo, which sends the highest version both sides
	// know (11): every special timestamp is valid there.
	list := func(ts int64) kmsg.ListOffsetsResponseTopicPartition {
		t.Helper()
		req := kmsg.NewPtrListOffsetsRequest()
		rt := kmsg.NewListOffsetsRequestTopic()
		rt.Topic = "lomax"
		rp := kmsg.NewListOffsetsRequestTopicPartition()
		rp.Timestamp = ts
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		resp, err := req.RequestWith(ctx, p)
		if err != nil {
			t.Fatal(err)
		}
		return resp.Topics[0].Partitions[0]
	}
	if got := list(-3); got.ErrorCode != 0 || got.Offset != -1 || got.Timestamp != -1 {
		t.Fatalf("-3 on an empty partition: %+v, want offset -1 timestamp -1", got)
	}
	// Offsets 0-3: the maximum (9000) first at offset 2, again at 3.
	produce(1000, 5000, 9000, 9000)
	part, err := b.log.Partition("lomax", 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := part.Roll(); err != nil {
		t.Fatal(err)
	}
	// Offsets 4-5, in the active segment, all older.
	produce(2000, 8000)
	for _, tc := range []struct {
		name   string
		ts     int64
		offset int64
		stamp  int64
	}{
		{"max timestamp", -3, 2, base + 9000},
		{"earliest local", -4, 0, -1},
		{"latest tiered", -5, -1, -1},
		{"earliest pending upload", -6, -1, -1},
		{"latest", -1, 6, -1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := list(tc.ts)
			if got.ErrorCode != 0 || got.Offset != tc.offset || got.Timestamp != tc.stamp {
				t.Fatalf("timestamp %d: %+v, want offset %d timestamp %d", tc.ts, got, tc.offset, tc.stamp)
			}
		})
	}
	// A newer maximum in the active segment wins.
	produce(12000)
	if got := list(-3); got.Offset != 6 || got.Timestamp != base+12000 {
		t.Fatalf("-3 after a newer record: %+v, want offset 6", got)
	}
	// kgo negotiates the version, so v6 goes over a raw connection.
	req := kmsg.NewPtrListOffsetsRequest()
	req.Version = 6
	rt := kmsg.NewListOffsetsRequestTopic()
	rt.Topic = "lomax"
	rp := kmsg.NewListOffsetsRequestTopicPartition()
	rp.Timestamp = -3
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp := b.raw().roundTrip(1, req).(*kmsg.ListOffsetsResponse)
	if got := resp.Topics[0].Partitions[0]; got.ErrorCode != kerr.InvalidRequest.Code {
		t.Fatalf("-3 at v6: %+v, want INVALID_REQUEST", got)
	}
}

// TestOffsetsTopicInternal checks __consumer_offsets: absent until a group
// coordinator is looked up, then listed with IsInternal, readable and
// empty, and closed to produce and delete.
func TestOffsetsTopicInternal(t *testing.T) {
	b := newTestBroker(t, nil)
	cl := b.client()
	ctx := testCtx(t)
	metadata := func() *kmsg.MetadataResponse {
		t.Helper()
		req := kmsg.NewPtrMetadataRequest()
		resp, err := req.RequestWith(ctx, cl)
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	find := func(resp *kmsg.MetadataResponse) (kmsg.MetadataResponseTopic, bool) {
		for _, mt := range resp.Topics {
			if mt.Topic != nil && *mt.Topic == "__consumer_offsets" {
				return mt, true
			}
		}
		return kmsg.MetadataResponseTopic{}, false
	}
	if _, ok := find(metadata()); ok {
		t.Fatal("__consumer_offsets listed before any group lookup")
	}
	fc := kmsg.NewPtrFindCoordinatorRequest()
	fc.CoordinatorKey = "g"
	fc.CoordinatorKeys = []string{"g"}
	if _, err := fc.RequestWith(ctx, cl); err != nil {
		t.Fatal(err)
	}
	mt, ok := find(metadata())
	if !ok || !mt.IsInternal || len(mt.Partitions) != 1 {
		t.Fatalf("__consumer_offsets after FindCoordinator: found %v %+v, want one internal partition", ok, mt)
	}
	for _, other := range metadata().Topics {
		if other.IsInternal && *other.Topic != "__consumer_offsets" {
			t.Fatalf("%s listed as internal", *other.Topic)
		}
	}
	err := cl.ProduceSync(ctx, &kgo.Record{Topic: "__consumer_offsets", Value: []byte("x")}).FirstErr()
	if !errors.Is(err, kerr.InvalidTopicException) {
		t.Fatalf("produce to __consumer_offsets: %v, want INVALID_TOPIC_EXCEPTION", err)
	}
	end, err := b.admin().ListEndOffsets(ctx, "__consumer_offsets")
	if o, ok := end.Lookup("__consumer_offsets", 0); err != nil || !ok || o.Err != nil || o.Offset != 0 {
		t.Fatalf("end offset of __consumer_offsets: %+v %v, want 0", o, err)
	}
	del, err := b.admin().DeleteTopics(ctx, "__consumer_offsets")
	if err != nil {
		t.Fatal(err)
	}
	if r := del["__consumer_offsets"]; !errors.Is(r.Err, kerr.InvalidTopicException) {
		t.Fatalf("delete __consumer_offsets: %+v, want INVALID_TOPIC_EXCEPTION", r)
	}
}
