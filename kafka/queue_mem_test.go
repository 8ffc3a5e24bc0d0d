package kafka

import (
	"context"
	"encoding/binary"
	"io"
	"net"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/streamhouse/streamhouse/internal/metricstest"
	"github.com/streamhouse/streamhouse/log"
)

// TestPipelinedFetchesBoundedByMemory checks that a client pipelining
// fetches without reading the answers makes the connection hold about
// FetchMaxBytes of responses in memory, not maxInFlight of them: the
// reader stops taking requests until the writer has sent what is queued.
func TestPipelinedFetchesBoundedByMemory(t *testing.T) {
	const limit = 20 << 10
	reg := prometheus.NewPedanticRegistry()
	b := newTestBroker(t, func(c *Config) { c.FetchMaxBytes = limit; c.Metrics = reg })
	b.createTopic("q", 1, nil)
	p, err := b.log.Partition("q", 0)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 40; i++ { // 40 batches of ~4 KiB
		if _, err := p.Append(context.Background(), plainBatch(t, strings.Repeat("v", 4000)), log.AppendOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	// net.Pipe does not buffer: the writer blocks on the first response
	// until the test reads it, like a socket whose buffers are full.
	client, server := net.Pipe()
	defer client.Close()
	c := b.srv.serveConn(server)
	defer func() { c.close(); <-c.done }()

	// Each fetch asks for 12 KiB below 16 KiB, so the batches are read
	// into memory rather than sent as a file region.
	fetch := func(corr int32) []byte {
		req := kmsg.NewPtrFetchRequest()
		req.Version, req.MaxWaitMillis, req.MaxBytes = 12, 0, 1<<20
		rt := kmsg.NewFetchRequestTopic()
		rt.Topic = "q"
		rp := kmsg.NewFetchRequestTopicPartition()
		rp.Partition, rp.FetchOffset, rp.PartitionMaxBytes = 0, int64(corr), 12<<10
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		return frame(corr, req)
	}
	go func() {
		for corr := int32(0); corr < 6; corr++ {
			if _, err := client.Write(fetch(corr)); err != nil {
				return
			}
		}
	}()
	waitFor(t, "the reader to wait for queue room", func() bool { return c.memWaits.Load() == 1 })
	c.memMu.Lock()
	queued := c.queuedMem
	c.memMu.Unlock()
	if queued <= 0 || queued > limit {
		t.Fatalf("%d response bytes queued while the reader waits; want 1..%d", queued, limit)
	}
	gauge := func(name string) float64 {
		v, _ := metricstest.Sum(t, reg, name, nil)
		return v
	}
	if w, q := gauge("streamhouse_kafka_connections_waiting_for_response_room"), gauge("streamhouse_kafka_queued_response_bytes"); w != 1 || q != float64(queued) {
		t.Fatalf("gauges: %v waiting, %v bytes queued; want 1 and %d", w, q, queued)
	}
	// Reading one answer lets one more request in, and the reader waits
	// again: the answers still come, in order.
	for want := int32(0); want < 3; want++ {
		var hdr [8]byte
		if _, err := io.ReadFull(client, hdr[:]); err != nil {
			t.Fatal(err)
		}
		if corr := int32(binary.BigEndian.Uint32(hdr[4:])); corr != want {
			t.Fatalf("response %d has correlation ID %d", want, corr)
		}
		if _, err := io.CopyN(io.Discard, client, int64(binary.BigEndian.Uint32(hdr[:]))-4); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "the reader to wait again", func() bool { return c.memWaits.Load() == int64(want)+2 })
	}
	c.close()
	<-c.done
	if w, q := gauge("streamhouse_kafka_connections_waiting_for_response_room"), gauge("streamhouse_kafka_queued_response_bytes"); w != 0 || q != 0 {
		t.Fatalf("after close: %v waiting, %v bytes queued; want 0 and 0", w, q)
	}
}
