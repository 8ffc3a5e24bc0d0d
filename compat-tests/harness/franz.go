package harness

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// The reference client for setting up and checking is franz-go: it creates
// topics, produces the records another client must read and reads back the
// records another client produced.

// topicSeq makes topic names unique within a test binary.
var topicSeq atomic.Int64

// Topic returns a fresh topic name for t (unique per binary and run).
func Topic(t testing.TB) string {
	return fmt.Sprintf("compat-%d-%d-%d", time.Now().UnixMilli()%1_000_000, topicSeq.Add(1), len(t.Name()))
}

// Client returns a franz-go client for b, closed when t ends.
func Client(t testing.TB, b Broker, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(b.Bootstrap())}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// CreateTopic creates topic with the given partitions (replication factor 1)
// and waits until its Metadata shows every partition with a leader.
func CreateTopic(t testing.TB, b Broker, topic string, partitions int32) {
	t.Helper()
	adm := kadm.NewClient(Client(t, b))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	resp, err := adm.CreateTopic(ctx, partitions, 1, nil, topic)
	if err == nil {
		err = resp.Err
	}
	if err != nil {
		t.Fatalf("create topic %s: %v", topic, err)
	}
	WaitTopic(t, b, topic, int(partitions))
}

// WaitTopic polls Metadata until topic has n partitions, all with leaders.
func WaitTopic(t testing.TB, b Broker, topic string, n int) {
	t.Helper()
	adm := kadm.NewClient(Client(t, b))
	Eventually(t, 30*time.Second, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		md, err := adm.Metadata(ctx, topic)
		if err != nil {
			return err
		}
		td, ok := md.Topics[topic]
		if !ok || td.Err != nil {
			return fmt.Errorf("topic %s: present %v, err %v", topic, ok, td.Err)
		}
		if len(td.Partitions) != n {
			return fmt.Errorf("topic %s: %d partitions, want %d", topic, len(td.Partitions), n)
		}
		for _, p := range td.Partitions {
			if p.Leader < 0 || p.Err != nil {
				return fmt.Errorf("partition %d: leader %d, err %v", p.Partition, p.Leader, p.Err)
			}
		}
		return nil
	})
}

// Produce sends recs with franz-go (idempotent, acks=all) to their
// partitions and returns them with the offsets the broker assigned.
func Produce(t testing.TB, b Broker, topic string, recs []Record, opts ...kgo.Opt) []Record {
	t.Helper()
	cl := Client(t, b, append([]kgo.Opt{kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.DefaultProduceTopic(topic)}, opts...)...)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	krs := make([]*kgo.Record, len(recs))
	for i, r := range recs {
		krs[i] = ToKgo(r)
		krs[i].Topic = topic
	}
	if err := cl.ProduceSync(ctx, krs...).FirstErr(); err != nil {
		t.Fatalf("franz-go produce to %s: %v", topic, err)
	}
	out := make([]Record, len(recs))
	for i, kr := range krs {
		out[i] = FromKgo(kr)
	}
	return out
}

// Consume reads n records of topic from the earliest offset of every
// partition with franz-go (direct partition consuming, no group); it fails
// t if n do not arrive within 60 s.
func Consume(t testing.TB, b Broker, topic string, n int) []Record {
	t.Helper()
	cl := Client(t, b, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchMaxWait(500*time.Millisecond))
	var got []Record
	deadline := time.Now().Add(60 * time.Second)
	for len(got) < n && time.Now().Before(deadline) {
		ctx, cancel := context.WithDeadline(context.Background(), deadline)
		fs := cl.PollFetches(ctx)
		cancel()
		for _, fe := range fs.Errors() {
			if !errors.Is(fe.Err, context.DeadlineExceeded) {
				t.Fatalf("franz-go fetch %s[%d]: %v", fe.Topic, fe.Partition, fe.Err)
			}
		}
		fs.EachRecord(func(r *kgo.Record) { got = append(got, FromKgo(r)) })
	}
	if len(got) < n {
		t.Fatalf("franz-go read %d records of %s within 60s, want %d", len(got), topic, n)
	}
	return got
}

// ToKgo converts a Record to a franz-go record (no topic set).
func ToKgo(r Record) *kgo.Record {
	kr := &kgo.Record{Partition: r.Partition, Key: []byte(r.Key), Value: []byte(r.Value),
		Timestamp: time.UnixMilli(r.Timestamp)}
	for _, h := range r.Headers {
		kr.Headers = append(kr.Headers, kgo.RecordHeader{Key: h.Key, Value: []byte(h.Value)})
	}
	return kr
}

// FromKgo converts a franz-go record to a Record.
func FromKgo(kr *kgo.Record) Record {
	r := Record{Partition: kr.Partition, Offset: kr.Offset, Key: string(kr.Key), Value: string(kr.Value),
		Timestamp: kr.Timestamp.UnixMilli()}
	for _, h := range kr.Headers {
		r.Headers = append(r.Headers, Header{h.Key, string(h.Value)})
	}
	return r
}

// Eventually polls f every 100 ms until it returns nil, failing t with its
// last error after timeout.
func Eventually(t testing.TB, timeout time.Duration, f func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("still failing after %v: %v", timeout, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// WaitReady polls until b answers ApiVersions and Metadata lists a broker.
func WaitReady(t testing.TB, b Broker) {
	t.Helper()
	if err := waitBrokerRegistered(b.Bootstrap(), 60*time.Second); err != nil {
		t.Fatal(err)
	}
}

// waitBrokerRegistered polls until addr answers ApiVersions and its Metadata
// lists at least one broker and a controller (Apache Kafka answers
// ApiVersions before the broker has registered with its controller).
func waitBrokerRegistered(addr string, timeout time.Duration) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr))
	if err != nil {
		return err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	deadline := time.Now().Add(timeout)
	for {
		err := apiVersions(addr, 2*time.Second)
		if err == nil {
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
			var md kadm.Metadata
			md, err = adm.BrokerMetadata(ctx)
			cancel()
			if err == nil && (len(md.Brokers) == 0 || md.Controller < 0) {
				err = fmt.Errorf("metadata: %d brokers, controller %d", len(md.Brokers), md.Controller)
			}
		}
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not ready within %v: %w", timeout, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
