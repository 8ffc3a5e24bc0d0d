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
			if md.Cluster != "test-cluster" || md.Controller != 1 || len(md.Brokers) != 1 || md.Brokers[0].NodeID != 1 {
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
