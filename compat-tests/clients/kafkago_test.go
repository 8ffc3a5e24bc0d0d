package clients

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	kafka "github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/compress"

	"github.com/streamhouse/streamhouse/compat-tests/harness"
)

// kafkaGoPartition routes harness.Records' record i ("k-i") to partition
// i % partitions, as harness.Records does; kafka-go's Writer ignores
// Message.Partition, so it needs a Balancer for that.
var kafkaGoPartition = kafka.BalancerFunc(func(m kafka.Message, partitions ...int) int {
	i, _ := strconv.Atoi(strings.TrimPrefix(string(m.Key), "k-"))
	return partitions[i%len(partitions)]
})

// TestKafkaGoProduceConsume: segmentio/kafka-go Writer (acks=all; it has no
// idempotent mode) in every codec, then Reader on one partition from the
// first offset and from a chosen one.
func TestKafkaGoProduceConsume(t *testing.T) {
	b := harness.Start(t)
	comp := map[string]compress.Compression{"none": 0, "gzip": compress.Gzip, "snappy": compress.Snappy,
		"lz4": compress.Lz4, "zstd": compress.Zstd}
	for _, codec := range codecs {
		t.Run(codec, func(t *testing.T) {
			topic := harness.Topic(t)
			harness.CreateTopic(t, b, topic, 3)
			want := harness.Records(60, 3, "kafka-go-"+codec, time.Now())
			// A Transport of its own: kafka.DefaultTransport caches metadata
			// across writers, so it would not know a topic created since.
			tr := &kafka.Transport{}
			defer tr.CloseIdleConnections()
			w := &kafka.Writer{Addr: kafka.TCP(b.Bootstrap()), Topic: topic, Balancer: kafkaGoPartition, Transport: tr,
				RequiredAcks: kafka.RequireAll, Compression: comp[codec], BatchTimeout: 5 * time.Millisecond}
			msgs := make([]kafka.Message, len(want))
			for i, r := range want {
				msgs[i] = kafka.Message{Key: []byte(r.Key), Value: []byte(r.Value), Time: time.UnixMilli(r.Timestamp)}
				for _, h := range r.Headers {
					msgs[i].Headers = append(msgs[i].Headers, kafka.Header{Key: h.Key, Value: []byte(h.Value)})
				}
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			if err := w.WriteMessages(ctx, msgs...); err != nil {
				t.Fatalf("WriteMessages: %v", err)
			}
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			harness.CheckRecords(t, harness.Consume(t, b, topic, len(want)), want, harness.Check{})
			var got []harness.Record
			for p := 0; p < 3; p++ {
				got = append(got, kafkaGoRead(t, b, topic, p, kafka.FirstOffset, 20)...)
			}
			harness.CheckRecords(t, got, want, harness.Check{})
			got = kafkaGoRead(t, b, topic, 0, 12, 8)
			harness.CheckRecords(t, got, partitionFrom(want, 0, 12), harness.Check{StartOffset: 12})
		})
	}
}

// kafkaGoRead reads n records of one partition from offset with a Reader.
func kafkaGoRead(t *testing.T, b harness.Broker, topic string, p int, offset int64, n int) []harness.Record {
	t.Helper()
	r := kafka.NewReader(kafka.ReaderConfig{Brokers: []string{b.Bootstrap()}, Topic: topic, Partition: p,
		MaxWait: 200 * time.Millisecond})
	defer r.Close()
	if err := r.SetOffset(offset); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var got []harness.Record
	for len(got) < n {
		m, err := r.ReadMessage(ctx)
		if err != nil {
			t.Fatalf("partition %d: after %d records: %v", p, len(got), err)
		}
		rec := harness.Record{Partition: int32(m.Partition), Offset: m.Offset, Key: string(m.Key),
			Value: string(m.Value), Timestamp: m.Time.UnixMilli()}
		for _, h := range m.Headers {
			rec.Headers = append(rec.Headers, harness.Header{Key: h.Key, Value: string(h.Value)})
		}
		got = append(got, rec)
	}
	return got
}

// TestKafkaGoAdminOffsets: kafka-go Client CreateTopics, Metadata,
// ListOffsets (first, last, by time) and DeleteTopics.
func TestKafkaGoAdminOffsets(t *testing.T) {
	b := harness.Start(t)
	tr := &kafka.Transport{}
	defer tr.CloseIdleConnections()
	cl := &kafka.Client{Addr: kafka.TCP(b.Bootstrap()), Timeout: 30 * time.Second, Transport: tr}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	topic := harness.Topic(t)
	cr, err := cl.CreateTopics(ctx, &kafka.CreateTopicsRequest{Topics: []kafka.TopicConfig{
		{Topic: topic, NumPartitions: 2, ReplicationFactor: 1}}})
	if err != nil || cr.Errors[topic] != nil {
		t.Fatalf("CreateTopics: %v %v", err, cr)
	}
	harness.WaitTopic(t, b, topic, 2)
	md, err := cl.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{topic}})
	if err != nil || len(md.Topics) != 1 || len(md.Topics[0].Partitions) != 2 || len(md.Brokers) != 1 {
		t.Errorf("Metadata: %v %+v", err, md)
	}
	base := time.Now().Add(-time.Hour)
	harness.Produce(t, b, topic, harness.Records(40, 2, "kafka-go-offsets", base))
	lo, err := cl.ListOffsets(ctx, &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{
		topic: {kafka.FirstOffsetOf(0), kafka.FirstOffsetOf(1), kafka.LastOffsetOf(0), kafka.LastOffsetOf(1)}}})
	if err != nil {
		t.Fatal(err)
	}
	for _, po := range lo.Topics[topic] {
		if po.Error != nil || po.FirstOffset != 0 || po.LastOffset != 20 {
			t.Errorf("partition %d: first %d, last %d (%v); want 0, 20", po.Partition, po.FirstOffset, po.LastOffset, po.Error)
		}
	}
	lo, err = cl.ListOffsets(ctx, &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{
		topic: {kafka.TimeOffsetOf(0, base.Add(20*time.Millisecond))}}})
	if err != nil {
		t.Fatal(err)
	}
	if po := lo.Topics[topic]; len(po) != 1 || po[0].Offsets[10].IsZero() {
		t.Errorf("by time: %+v; want offset 10", po)
	}
	dr, err := cl.DeleteTopics(ctx, &kafka.DeleteTopicsRequest{Topics: []string{topic}})
	if err != nil || dr.Errors[topic] != nil {
		t.Fatalf("DeleteTopics: %v %v", err, dr)
	}
	harness.Eventually(t, 30*time.Second, func() error {
		md, err := cl.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{topic}})
		if err != nil {
			return err
		}
		if len(md.Topics) == 1 && md.Topics[0].Error == nil {
			return errors.New("topic still there")
		}
		return nil
	})
}
