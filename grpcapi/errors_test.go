package grpcapi_test

import (
	"context"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"

	"github.com/streamhouse/streamhouse/grpcapi/grpcapitest"
	"github.com/streamhouse/streamhouse/log"
	pb "github.com/streamhouse/streamhouse/proto"
)

// TestErrors checks every error the API answers: its code and a message a
// person can act on.
func TestErrors(t *testing.T) {
	e := grpcapitest.Start(t, grpcapitest.Options{})
	createTopic(t, e, "t", 2, map[string]string{"max.message.bytes": "1000"})
	// The Kafka front creates __consumer_offsets on a group's first
	// FindCoordinator; it is closed to writers on this front too.
	if _, err := e.Log.CreateTopic(context.Background(), log.OffsetsTopic, 1, nil); err != nil {
		t.Fatal(err)
	}
	c := e.Client
	big := randomBytes(2000) // incompressible: over max.message.bytes even as LZ4
	u64 := func(v uint64) *uint64 { return &v }
	str := func(v string) *string { return &v }

	cases := []struct {
		name  string
		call  func() error
		code  codes.Code
		wants []string
	}{
		{"create: empty name", func() error {
			_, err := c.CreateTopic(ctx(t), &pb.CreateTopicRequest{PartitionCount: 1})
			return err
		}, codes.InvalidArgument, []string{"name is empty"}},
		{"create: illegal character", func() error {
			_, err := c.CreateTopic(ctx(t), &pb.CreateTopicRequest{Name: "a/b", PartitionCount: 1})
			return err
		}, codes.InvalidArgument, []string{"Invalid topic name", `'/'`}},
		{"create: dot", func() error {
			_, err := c.CreateTopic(ctx(t), &pb.CreateTopicRequest{Name: "..", PartitionCount: 1})
			return err
		}, codes.InvalidArgument, []string{"Invalid topic name"}},
		{"create: 250 characters", func() error {
			_, err := c.CreateTopic(ctx(t), &pb.CreateTopicRequest{Name: strings.Repeat("x", 250), PartitionCount: 1})
			return err
		}, codes.InvalidArgument, []string{"249"}},
		{"create: zero partitions", func() error {
			_, err := c.CreateTopic(ctx(t), &pb.CreateTopicRequest{Name: "z", PartitionCount: 0})
			return err
		}, codes.InvalidArgument, []string{"partition_count must be at least 1"}},
		{"create: too many partitions", func() error {
			_, err := c.CreateTopic(ctx(t), &pb.CreateTopicRequest{Name: "z", PartitionCount: math.MaxUint32})
			return err
		}, codes.InvalidArgument, []string{"maximum 10000"}},
		{"create: unknown config", func() error {
			_, err := c.CreateTopic(ctx(t), &pb.CreateTopicRequest{Name: "z", PartitionCount: 1,
				Config: map[string]string{"retention.ms": "5", "no.such.key": "1"}})
			return err
		}, codes.InvalidArgument, []string{`"no.such.key"`, "honoured keys", "segment.bytes"}},
		{"create: malformed config", func() error {
			_, err := c.CreateTopic(ctx(t), &pb.CreateTopicRequest{Name: "z", PartitionCount: 1,
				Config: map[string]string{"segment.bytes": "lots"}})
			return err
		}, codes.InvalidArgument, []string{`"segment.bytes"`, `"lots"`}},
		{"create: retention_ms too large", func() error {
			_, err := c.CreateTopic(ctx(t), &pb.CreateTopicRequest{Name: "z", PartitionCount: 1, RetentionMs: u64(math.MaxUint64)})
			return err
		}, codes.InvalidArgument, []string{`"retention.ms"`}},
		{"create: retention_ms and config disagree", func() error {
			_, err := c.CreateTopic(ctx(t), &pb.CreateTopicRequest{Name: "z", PartitionCount: 1, RetentionMs: u64(5),
				Config: map[string]string{"retention.ms": "6"}})
			return err
		}, codes.InvalidArgument, []string{"disagree"}},
		{"create: duplicate", func() error {
			_, err := c.CreateTopic(ctx(t), &pb.CreateTopicRequest{Name: "t", PartitionCount: 1})
			return err
		}, codes.AlreadyExists, []string{"Topic already exists: t"}},
		{"produce: internal topic", func() error {
			_, err := c.Produce(ctx(t), &pb.ProduceRequest{Topic: log.OffsetsTopic, Value: []byte("v")})
			return err
		}, codes.InvalidArgument, []string{"__consumer_offsets is internal"}},
		{"produce batch: internal topic", func() error {
			_, err := c.ProduceBatch(ctx(t), &pb.ProduceBatchRequest{Topic: log.OffsetsTopic, Records: []*pb.Record{{Value: []byte("v")}}})
			return err
		}, codes.InvalidArgument, []string{"__consumer_offsets is internal"}},
		{"delete: internal topic", func() error {
			_, err := c.DeleteTopic(ctx(t), &pb.DeleteTopicRequest{Name: log.OffsetsTopic})
			return err
		}, codes.InvalidArgument, []string{"__consumer_offsets is internal"}},
		{"get: missing", func() error {
			_, err := c.GetTopic(ctx(t), &pb.GetTopicRequest{Name: "nope"})
			return err
		}, codes.NotFound, []string{"Topic not found: nope"}},
		{"get: empty name", func() error {
			_, err := c.GetTopic(ctx(t), &pb.GetTopicRequest{})
			return err
		}, codes.InvalidArgument, []string{"name is empty"}},
		{"delete: missing", func() error {
			_, err := c.DeleteTopic(ctx(t), &pb.DeleteTopicRequest{Name: "nope"})
			return err
		}, codes.NotFound, []string{"Topic not found: nope"}},
		{"produce: unknown topic", func() error {
			_, err := c.Produce(ctx(t), &pb.ProduceRequest{Topic: "nope", Value: []byte("v")})
			return err
		}, codes.NotFound, []string{"Topic not found: nope"}},
		{"produce: empty topic", func() error {
			_, err := c.Produce(ctx(t), &pb.ProduceRequest{Value: []byte("v")})
			return err
		}, codes.InvalidArgument, []string{"topic is empty"}},
		{"produce: partition out of range", func() error {
			_, err := c.Produce(ctx(t), &pb.ProduceRequest{Topic: "t", Partition: 2, Value: []byte("v")})
			return err
		}, codes.InvalidArgument, []string{"Invalid partition: 2 (topic has 2 partitions)"}},
		{"produce: over max.message.bytes", func() error {
			_, err := c.Produce(ctx(t), &pb.ProduceRequest{Topic: "t", Value: big})
			return err
		}, codes.InvalidArgument, []string{"max.message.bytes", "1000"}},
		{"produce: timestamp too large", func() error {
			_, err := c.Produce(ctx(t), &pb.ProduceRequest{Topic: "t", Value: []byte("v"), Timestamp: math.MaxUint64})
			return err
		}, codes.InvalidArgument, []string{"timestamp"}},
		{"produce batch: empty", func() error {
			_, err := c.ProduceBatch(ctx(t), &pb.ProduceBatchRequest{Topic: "t"})
			return err
		}, codes.InvalidArgument, []string{"records is empty"}},
		{"produce batch: unknown topic", func() error {
			_, err := c.ProduceBatch(ctx(t), &pb.ProduceBatchRequest{Topic: "nope", Records: []*pb.Record{{Value: []byte("v")}}})
			return err
		}, codes.NotFound, []string{"Topic not found: nope"}},
		{"produce batch: partition out of range", func() error {
			_, err := c.ProduceBatch(ctx(t), &pb.ProduceBatchRequest{Topic: "t", Partition: 7, Records: []*pb.Record{{Value: []byte("v")}}})
			return err
		}, codes.InvalidArgument, []string{"Invalid partition: 7 (topic has 2 partitions)"}},
		{"produce batch: one record over max.message.bytes", func() error {
			_, err := c.ProduceBatch(ctx(t), &pb.ProduceBatchRequest{Topic: "t",
				Records: []*pb.Record{{Value: []byte("ok")}, {Value: big}}})
			return err
		}, codes.InvalidArgument, []string{"max.message.bytes"}},
		{"consume: unknown topic", func() error {
			_, err := c.Consume(ctx(t), &pb.ConsumeRequest{Topic: "nope"})
			return err
		}, codes.NotFound, []string{"Topic not found: nope"}},
		{"consume: partition out of range", func() error {
			_, err := c.Consume(ctx(t), &pb.ConsumeRequest{Topic: "t", Partition: 9})
			return err
		}, codes.InvalidArgument, []string{"Invalid partition: 9 (topic has 2 partitions)"}},
		{"consume: past the high watermark", func() error {
			_, err := c.Consume(ctx(t), &pb.ConsumeRequest{Topic: "t", Offset: 5})
			return err
		}, codes.OutOfRange, []string{"high watermark 0"}},
		{"consume: offset beyond int64", func() error {
			_, err := c.Consume(ctx(t), &pb.ConsumeRequest{Topic: "t", Offset: math.MaxUint64})
			return err
		}, codes.OutOfRange, []string{"past the end"}},
		{"commit: empty group", func() error {
			_, err := c.CommitOffset(ctx(t), &pb.CommitOffsetRequest{Topic: "t", Offset: 1})
			return err
		}, codes.InvalidArgument, []string{"consumer_group is empty"}},
		{"commit: unknown topic", func() error {
			_, err := c.CommitOffset(ctx(t), &pb.CommitOffsetRequest{ConsumerGroup: "g", Topic: "nope", Offset: 1})
			return err
		}, codes.NotFound, []string{"Topic not found: nope"}},
		{"commit: partition out of range", func() error {
			_, err := c.CommitOffset(ctx(t), &pb.CommitOffsetRequest{ConsumerGroup: "g", Topic: "t", Partition: 2, Offset: 1})
			return err
		}, codes.InvalidArgument, []string{"Invalid partition: 2 (topic has 2 partitions)"}},
		{"commit: offset beyond int64", func() error {
			_, err := c.CommitOffset(ctx(t), &pb.CommitOffsetRequest{ConsumerGroup: "g", Topic: "t", Offset: math.MaxUint64, Metadata: str("m")})
			return err
		}, codes.InvalidArgument, []string{"offset"}},
		{"get offset: nothing committed", func() error {
			_, err := c.GetOffset(ctx(t), &pb.GetOffsetRequest{ConsumerGroup: "g", Topic: "t"})
			return err
		}, codes.NotFound, []string{`No offset committed for group "g" on t-0`}},
		{"get offset: unknown topic", func() error {
			_, err := c.GetOffset(ctx(t), &pb.GetOffsetRequest{ConsumerGroup: "g", Topic: "nope"})
			return err
		}, codes.NotFound, []string{"Topic not found: nope"}},
		{"get offset: partition out of range", func() error {
			_, err := c.GetOffset(ctx(t), &pb.GetOffsetRequest{ConsumerGroup: "g", Topic: "t", Partition: 3})
			return err
		}, codes.InvalidArgument, []string{"Invalid partition: 3"}},
		{"get offset: empty group", func() error {
			_, err := c.GetOffset(ctx(t), &pb.GetOffsetRequest{Topic: "t"})
			return err
		}, codes.InvalidArgument, []string{"consumer_group is empty"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			wantStatus(t, tc.call(), tc.code, tc.wants...)
		})
	}

	// Bad input changed nothing: the two topics, empty logs, no offsets.
	list, err := c.ListTopics(ctx(t), &pb.ListTopicsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if tp := list.GetTopics(); len(tp) != 2 || tp[0].GetName() != log.OffsetsTopic || tp[1].GetName() != "t" {
		t.Errorf("topics after failed calls: %v", list.GetTopics())
	}
	if p, err := e.Log.Partition(log.OffsetsTopic, 0); err != nil {
		t.Fatal(err)
	} else if start, hwm := p.Offsets(); start != 0 || hwm != 0 {
		t.Errorf("%s offsets after refused produces: [%d, %d)", log.OffsetsTopic, start, hwm)
	}
	for i := int32(0); i < 2; i++ {
		p, err := e.Log.Partition("t", i)
		if err != nil {
			t.Fatal(err)
		}
		if start, hwm := p.Offsets(); start != 0 || hwm != 0 {
			t.Errorf("t-%d offsets after failed produces: [%d, %d)", i, start, hwm)
		}
	}
	if groups, err := e.Meta.ListGroups(ctx(t)); err != nil || len(groups) != 0 {
		t.Errorf("groups after failed commits: %v, %v", groups, err)
	}
}

// randomBytes returns n reproducible, incompressible bytes.
func randomBytes(n int) []byte {
	r := rand.New(rand.NewPCG(uint64(n), 1))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// TestRequestTooLarge checks that a request over MaxRecvBytes is refused.
func TestRequestTooLarge(t *testing.T) {
	e := grpcapitest.Start(t, grpcapitest.Options{MaxRecvBytes: 4096})
	createTopic(t, e, "t", 1, nil)
	_, err := e.Client.Produce(ctx(t), &pb.ProduceRequest{Topic: "t", Value: make([]byte, 8192)})
	wantStatus(t, err, codes.ResourceExhausted)
}
