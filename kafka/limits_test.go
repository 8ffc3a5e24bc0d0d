package kafka

import (
	"context"
	"encoding/binary"
	"errors"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/streamhouse/streamhouse/internal/metricstest"
)

func TestByteBudget(t *testing.T) {
	t.Run("grants in order", func(t *testing.T) {
		b := newByteBudget(10)
		if err := b.acquire(context.Background(), 8); err != nil {
			t.Fatal(err)
		}
		got := make(chan int, 2)
		go func() { _ = b.acquire(context.Background(), 5); got <- 5 }()
		waitFor(t, "the 5-byte acquire to wait", func() bool { return b.waiting() == 1 })
		go func() { _ = b.acquire(context.Background(), 1); got <- 1 }()
		waitFor(t, "the 1-byte acquire to queue behind it", func() bool { return b.waiting() == 2 })
		// 2 bytes are free: enough for the 1-byte acquire, but it must not
		// overtake the 5-byte one.
		select {
		case n := <-got:
			t.Fatalf("acquire of %d overtook the queue", n)
		default:
		}
		// 5 free: the 5-byte acquire, first in line, takes all of it.
		b.release(3)
		if n := <-got; n != 5 {
			t.Fatalf("granted %d first, want 5", n)
		}
		if b.waiting() != 1 || b.available() != 0 {
			t.Fatalf("waiting %d, available %d; want 1, 0", b.waiting(), b.available())
		}
		b.release(1)
		if n := <-got; n != 1 {
			t.Fatalf("granted %d second, want 1", n)
		}
		b.release(5 + 5)
		if b.available() != 10 {
			t.Fatalf("available %d after releasing everything, want 10", b.available())
		}
	})
	t.Run("cancelled acquire holds nothing", func(t *testing.T) {
		b := newByteBudget(4)
		if err := b.acquire(context.Background(), 4); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- b.acquire(ctx, 3) }()
		waitFor(t, "the acquire to wait", func() bool { return b.waiting() == 1 })
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Fatalf("cancelled acquire: %v", err)
		}
		b.release(4)
		if b.available() != 4 || b.waiting() != 0 {
			t.Fatalf("available %d, waiting %d; want 4, 0", b.available(), b.waiting())
		}
	})
}

// TestMaxConnections checks that a connection past MaxConnections is
// closed at once and counted, and that a closed connection frees a slot.
func TestMaxConnections(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	b := newTestBroker(t, func(c *Config) { c.MaxConnections = 2; c.Metrics = reg })
	apiVersions := func(c *rawConn) {
		t.Helper()
		req := kmsg.NewPtrApiVersionsRequest()
		req.Version = 3
		req.ClientSoftwareName, req.ClientSoftwareVersion = "limits-test", "1"
		if resp := c.roundTrip(1, req).(*kmsg.ApiVersionsResponse); resp.ErrorCode != 0 {
			t.Fatalf("ApiVersions: error %d", resp.ErrorCode)
		}
	}
	c1, c2 := b.raw(), b.raw()
	apiVersions(c1)
	apiVersions(c2)
	c3 := b.raw()
	c3.write(frame(1, kmsg.NewPtrApiVersionsRequest()))
	c3.expectClosed()
	if v, _ := metricstest.Sum(t, reg, "streamhouse_kafka_connections_rejected_total", nil); v != 1 {
		t.Fatalf("connections_rejected_total = %v, want 1", v)
	}
	c1.nc.Close()
	waitFor(t, "the closed connection to be forgotten", func() bool {
		v, _ := metricstest.Sum(t, reg, "streamhouse_kafka_connections", nil)
		return v == 1
	})
	apiVersions(b.raw())
}

// TestQueuedMaxRequestBytes checks that request bytes in memory are
// capped across connections: while one connection holds the whole budget
// (its frame's size read, its body not yet), another's produce waits
// unread, and it is served once the first request completes.
func TestQueuedMaxRequestBytes(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	const limit = 64 << 10
	b := newTestBroker(t, func(c *Config) {
		c.MaxRequestBytes, c.QueuedMaxRequestBytes, c.Metrics = limit, limit, reg
	})
	b.createTopic("budget", 1, nil)

	// A: a Metadata request padded with a long client ID to about 30 KiB;
	// its size goes out first, its body later.
	meta := kmsg.NewPtrMetadataRequest()
	f := kmsg.NewRequestFormatter(kmsg.FormatterClientID(strings.Repeat("x", 30<<10)))
	bigA := f.AppendRequest(nil, meta, 7)
	a := b.raw()
	a.write(bigA[:4])
	waitFor(t, "A's frame to hold its bytes", func() bool {
		v, _ := metricstest.Sum(t, reg, "streamhouse_kafka_queued_request_bytes", nil)
		return v == float64(len(bigA)-4)
	})

	// B: a produce of about 40 KiB must wait: 30 + 40 KiB > 64 KiB.
	cl := b.client(kgo.ProducerBatchCompression(kgo.NoCompression()))
	rec := &kgo.Record{Topic: "budget", Value: make([]byte, 40<<10)}
	res := make(chan error, 1)
	go func() { res <- cl.ProduceSync(testCtx(t), rec).FirstErr() }()
	waitFor(t, "B to wait for request memory", func() bool {
		v, _ := metricstest.Sum(t, reg, "streamhouse_kafka_connections_waiting_for_memory", nil)
		return v == 1
	})
	select {
	case err := <-res:
		t.Fatalf("produce answered (%v) while the budget was spent", err)
	default:
	}

	a.write(bigA[4:])
	body, ok := a.readFrame()
	if !ok || int32(binary.BigEndian.Uint32(body)) != 7 {
		t.Fatalf("A's Metadata: answered %v", ok)
	}
	if err := <-res; err != nil {
		t.Fatalf("B's produce after A finished: %v", err)
	}
	waitFor(t, "every request byte to be released", func() bool {
		v, _ := metricstest.Sum(t, reg, "streamhouse_kafka_queued_request_bytes", nil)
		return v == 0
	})
}

// TestFetchMaxBytesCapsResponses checks that a Fetch asking for more than
// FetchMaxBytes gets at most that much, in whole batches.
func TestFetchMaxBytesCapsResponses(t *testing.T) {
	const capBytes = 64 << 10
	b := newTestBroker(t, func(c *Config) { c.FetchMaxBytes = capBytes })
	b.createTopic("capped", 1, nil)
	cl := b.client(kgo.ProducerBatchCompression(kgo.NoCompression()))
	ctx := testCtx(t)
	for range 10 {
		if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "capped", Value: make([]byte, 16<<10)}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	req := kmsg.NewPtrFetchRequest()
	req.MaxBytes, req.MaxWaitMillis = 100<<20, 0
	rt := kmsg.NewFetchRequestTopic()
	topic, err := b.log.Topic("capped")
	if err != nil {
		t.Fatal(err)
	}
	rt.Topic, rt.TopicID = "capped", topicIDBytes(topic.ID) // kgo sends v13+: by ID
	rp := kmsg.NewFetchRequestTopicPartition()
	rp.PartitionMaxBytes = 100 << 20
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		t.Fatal(err)
	}
	got := resp.Topics[0].Partitions[0]
	if got.ErrorCode != 0 || len(got.RecordBatches) == 0 || len(got.RecordBatches) > capBytes {
		t.Fatalf("fetch asking for 100 MiB: error %d, %d bytes; want data, at most %d", got.ErrorCode, len(got.RecordBatches), capBytes)
	}
	if n := len(got.RecordBatches); n < capBytes-(17<<10) {
		t.Fatalf("fetch returned %d bytes, want close to %d (whole batches)", n, capBytes)
	}
}
