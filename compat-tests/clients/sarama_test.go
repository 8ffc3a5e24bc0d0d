package clients

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/streamhouse/streamhouse/compat-tests/harness"
)

func saramaConfig(t *testing.T, codec string) *sarama.Config {
	c := sarama.NewConfig()
	c.Version = sarama.V3_9_0_0
	c.ClientID = "compat-sarama"
	c.Producer.Idempotent = true
	c.Producer.RequiredAcks = sarama.WaitForAll
	c.Producer.Return.Successes = true
	c.Producer.Partitioner = sarama.NewManualPartitioner
	c.Net.MaxOpenRequests = 1 // required by the idempotent producer
	c.Consumer.MaxWaitTime = 200 * time.Millisecond
	codecs := map[string]sarama.CompressionCodec{"none": sarama.CompressionNone, "gzip": sarama.CompressionGZIP,
		"snappy": sarama.CompressionSnappy, "lz4": sarama.CompressionLZ4, "zstd": sarama.CompressionZSTD}
	cc, ok := codecs[codec]
	if !ok {
		t.Fatalf("unknown codec %s", codec)
	}
	c.Producer.Compression = cc
	return c
}

// TestSaramaProduceConsume: sarama SyncProducer (idempotent, acks=all) in
// every codec; sarama's partition consumer reads from the oldest offset and
// from a chosen one.
func TestSaramaProduceConsume(t *testing.T) {
	b := harness.Start(t)
	for _, codec := range codecs {
		t.Run(codec, func(t *testing.T) {
			topic := harness.Topic(t)
			harness.CreateTopic(t, b, topic, 3)
			want := harness.Records(60, 3, "sarama-"+codec, time.Now())
			cl, err := sarama.NewClient([]string{b.Bootstrap()}, saramaConfig(t, codec))
			if err != nil {
				t.Fatal(err)
			}
			defer cl.Close()
			prod, err := sarama.NewSyncProducerFromClient(cl)
			if err != nil {
				t.Fatal(err)
			}
			msgs := make([]*sarama.ProducerMessage, len(want))
			for i, r := range want {
				msgs[i] = &sarama.ProducerMessage{Topic: topic, Partition: r.Partition, Key: sarama.StringEncoder(r.Key),
					Value: sarama.StringEncoder(r.Value), Timestamp: time.UnixMilli(r.Timestamp)}
				for _, h := range r.Headers {
					msgs[i].Headers = append(msgs[i].Headers, sarama.RecordHeader{Key: []byte(h.Key), Value: []byte(h.Value)})
				}
			}
			if err := prod.SendMessages(msgs); err != nil {
				t.Fatalf("SendMessages: %v", err)
			}
			acked := make([]harness.Record, len(msgs))
			for i, m := range msgs {
				acked[i] = harness.Record{Partition: m.Partition, Offset: m.Offset}
			}
			checkOffsets(t, acked)
			if err := prod.Close(); err != nil {
				t.Fatal(err)
			}
			harness.CheckRecords(t, harness.Consume(t, b, topic, len(want)), want, harness.Check{})
			cons, err := sarama.NewConsumerFromClient(cl)
			if err != nil {
				t.Fatal(err)
			}
			defer cons.Close()
			var got []harness.Record
			for p := int32(0); p < 3; p++ {
				got = append(got, saramaRead(t, cons, topic, p, sarama.OffsetOldest, 20)...)
			}
			harness.CheckRecords(t, got, want, harness.Check{})
			got = saramaRead(t, cons, topic, 2, 15, 5)
			harness.CheckRecords(t, got, partitionFrom(want, 2, 15), harness.Check{StartOffset: 15})
		})
	}
}

// saramaRead reads n records of one partition from offset, within 30 s.
func saramaRead(t *testing.T, cons sarama.Consumer, topic string, p int32, offset int64, n int) []harness.Record {
	t.Helper()
	pc, err := cons.ConsumePartition(topic, p, offset)
	if err != nil {
		t.Fatalf("ConsumePartition %d: %v", p, err)
	}
	defer pc.Close()
	var got []harness.Record
	deadline := time.After(30 * time.Second)
	for len(got) < n {
		select {
		case m := <-pc.Messages():
			got = append(got, saramaRecord(m))
		case e := <-pc.Errors():
			t.Fatalf("partition %d: %v", p, e)
		case <-deadline:
			t.Fatalf("partition %d: %d records within 30s, want %d", p, len(got), n)
		}
	}
	return got
}

// saramaRecord converts a message sarama read.
func saramaRecord(m *sarama.ConsumerMessage) harness.Record {
	r := harness.Record{Partition: m.Partition, Offset: m.Offset, Key: string(m.Key), Value: string(m.Value),
		Timestamp: m.Timestamp.UnixMilli()}
	for _, h := range m.Headers {
		r.Headers = append(r.Headers, harness.Header{Key: string(h.Key), Value: string(h.Value)})
	}
	return r
}

// TestSaramaGroupConsumer: a sarama ConsumerGroup (range assignor, from the
// oldest offset, auto-commit off) reads a topic of 3 partitions, marking every
// message and committing when it reaches a claim's high watermark. Every
// record is read exactly once, in order per partition, and the committed
// offsets (read back with kadm) equal the end offsets.
func TestSaramaGroupConsumer(t *testing.T) {
	b := harness.Start(t)
	topic := harness.Topic(t)
	harness.CreateTopic(t, b, topic, 3)
	want := harness.Records(90, 3, "sarama-group", time.Now())
	harness.Produce(t, b, topic, want, produceCodec(t, "snappy"))
	group := "g-" + topic
	got := saramaGroupConsume(t, b, topic, group, len(want))
	harness.CheckRecords(t, got, want, harness.Check{})
	checkCommittedAtEnd(t, b, group, topic)
}

// saramaGroupConsume consumes topic in a sarama ConsumerGroup until n records
// arrived (within 60 s), then leaves the group and returns every record it
// was handed, including any beyond n, so that duplicates show. The handler
// commits each partition's last record before counting it, so the group's
// commits are done when n records are.
func saramaGroupConsume(t *testing.T, b harness.Broker, topic, group string, n int) []harness.Record {
	t.Helper()
	c := sarama.NewConfig()
	c.Version = sarama.V3_9_0_0
	c.ClientID = "compat-sarama-group"
	c.Consumer.MaxWaitTime = 200 * time.Millisecond
	c.Consumer.Offsets.Initial = sarama.OffsetOldest
	c.Consumer.Offsets.AutoCommit.Enable = false
	c.Consumer.Return.Errors = true
	c.Consumer.Group.Rebalance.GroupStrategies = []sarama.BalanceStrategy{sarama.NewBalanceStrategyRange()}
	cg, err := sarama.NewConsumerGroup([]string{b.Bootstrap()}, group, c)
	if err != nil {
		t.Fatalf("NewConsumerGroup: %v", err)
	}
	h := &saramaGroupHandler{n: n, done: make(chan struct{})}
	ctx, cancel := context.WithCancel(context.Background())
	consumed := make(chan error, 1)
	go func() { // ends when ctx is cancelled (or the group is closed)
		var err error
		for ctx.Err() == nil && !errors.Is(err, sarama.ErrClosedConsumerGroup) {
			err = cg.Consume(ctx, []string{topic}, h)
		}
		consumed <- err
	}()
	errs := make(chan []error, 1)
	go func() { // ends when cg.Close closes Errors()
		var es []error
		for e := range cg.Errors() {
			es = append(es, e)
		}
		errs <- es
	}()
	select {
	case <-h.done:
	case <-time.After(60 * time.Second):
		t.Errorf("sarama group %s: %d records within 60s, want %d", group, len(h.records()), n)
	}
	cancel()
	if err := <-consumed; err != nil && !errors.Is(err, sarama.ErrClosedConsumerGroup) && !errors.Is(err, context.Canceled) {
		t.Errorf("Consume: %v", err)
	}
	if err := cg.Close(); err != nil {
		t.Errorf("close consumer group: %v", err)
	}
	for _, e := range <-errs {
		t.Errorf("sarama group error: %v", e)
	}
	return h.records()
}

// saramaGroupHandler collects the messages of every claim, marks each and
// commits (synchronously) when a claim has reached its high watermark.
type saramaGroupHandler struct {
	n    int
	done chan struct{} // closed once n records arrived
	// mu guards got and closed.
	mu     sync.Mutex
	got    []harness.Record
	closed bool
}

func (h *saramaGroupHandler) Setup(sarama.ConsumerGroupSession) error   { return nil }
func (h *saramaGroupHandler) Cleanup(sarama.ConsumerGroupSession) error { return nil }

func (h *saramaGroupHandler) ConsumeClaim(sess sarama.ConsumerGroupSession, claim sarama.ConsumerGroupClaim) error {
	for m := range claim.Messages() {
		sess.MarkMessage(m, "")
		if m.Offset+1 >= claim.HighWaterMarkOffset() {
			sess.Commit()
		}
		h.mu.Lock()
		h.got = append(h.got, saramaRecord(m))
		if len(h.got) >= h.n && !h.closed {
			h.closed = true
			close(h.done)
		}
		h.mu.Unlock()
	}
	return nil
}

func (h *saramaGroupHandler) records() []harness.Record {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]harness.Record(nil), h.got...)
}

// TestSaramaAdminOffsets: ClusterAdmin create, describe and delete topics; Client.GetOffset for the oldest, newest and by-timestamp offsets.
func TestSaramaAdminOffsets(t *testing.T) {
	b := harness.Start(t)
	cfg := saramaConfig(t, "lz4")
	adm, err := sarama.NewClusterAdmin([]string{b.Bootstrap()}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer adm.Close()
	topic := harness.Topic(t)
	if err := adm.CreateTopic(topic, &sarama.TopicDetail{NumPartitions: 2, ReplicationFactor: 1}, false); err != nil {
		t.Fatalf("CreateTopic: %v", err)
	}
	harness.WaitTopic(t, b, topic, 2)
	md, err := adm.DescribeTopics([]string{topic})
	if err != nil || len(md) != 1 || len(md[0].Partitions) != 2 || md[0].Err != sarama.ErrNoError {
		t.Errorf("DescribeTopics: %v %+v", err, md)
	}
	base := time.Now().Add(-time.Hour)
	harness.Produce(t, b, topic, harness.Records(40, 2, "sarama-offsets", base))
	cl, err := sarama.NewClient([]string{b.Bootstrap()}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	for p := int32(0); p < 2; p++ {
		oldest, err1 := cl.GetOffset(topic, p, sarama.OffsetOldest)
		newest, err2 := cl.GetOffset(topic, p, sarama.OffsetNewest)
		byTS, err3 := cl.GetOffset(topic, p, base.UnixMilli()+20)
		if err1 != nil || err2 != nil || err3 != nil || oldest != 0 || newest != 20 || byTS != 10 {
			t.Errorf("partition %d: oldest %d, newest %d, by ts %d (%v %v %v); want 0, 20, 10",
				p, oldest, newest, byTS, err1, err2, err3)
		}
	}
	if err := adm.DeleteTopic(topic); err != nil {
		t.Fatalf("DeleteTopic: %v", err)
	}
	harness.Eventually(t, 30*time.Second, func() error {
		md, err := adm.DescribeTopics([]string{topic})
		if err == nil && len(md) == 1 && md[0].Err == sarama.ErrNoError {
			return fmt.Errorf("%s still described after DeleteTopic", topic)
		}
		return err
	})
}

// TestSaramaListTopics: ClusterAdmin.ListTopics, which also asks for every
// topic's configuration (DescribeConfigs).
func TestSaramaListTopics(t *testing.T) {
	b := harness.Start(t)
	topic := harness.Topic(t)
	harness.CreateTopic(t, b, topic, 2)
	adm, err := sarama.NewClusterAdmin([]string{b.Bootstrap()}, saramaConfig(t, "none"))
	if err != nil {
		t.Fatal(err)
	}
	defer adm.Close()
	topics, err := adm.ListTopics()
	if _, ok := topics[topic]; err != nil || !ok || topics[topic].NumPartitions != 2 {
		t.Errorf("ListTopics: %v, %s: %+v", err, topic, topics[topic])
	}
}
