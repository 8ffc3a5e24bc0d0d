package kafka

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/streamhouse/streamhouse/internal/metricstest"
)

// expectMetric asserts metricstest.Sum of the series matching labels.
func expectMetric(t *testing.T, reg prometheus.Gatherer, name string, labels map[string]string, want float64) {
	t.Helper()
	if got, _ := metricstest.Sum(t, reg, name, labels); got != want {
		t.Errorf("%s%v = %v, want %v", name, labels, got, want)
	}
}

// rawExchange sends req and returns the response and the sizes of the
// request and response frames (size prefixes included).
func rawExchange(t *testing.T, c *rawConn, correlationID int32, req kmsg.Request) (kmsg.Response, int, int) {
	t.Helper()
	f := frame(correlationID, req)
	c.write(f)
	body, ok := c.readFrame()
	if !ok {
		t.Fatalf("connection closed instead of answering api key %d", req.Key())
	}
	resp := req.ResponseKind()
	b := body[4:]
	if resp.IsFlexible() && req.Key() != apiVersionsKey {
		b = b[1:]
	}
	if err := resp.ReadFrom(b); err != nil {
		t.Fatal(err)
	}
	return resp, len(f), 4 + len(body)
}

func TestMetricsCountRequestsErrorsBytesAndConnections(t *testing.T) {
	reg := prometheus.NewRegistry()
	b := newTestBroker(t, func(c *Config) { c.Metrics = reg })
	b.createTopic("metered", 1, nil)
	c := b.raw()

	produce := produceReq(-1, map[string]map[int32][]byte{
		"metered": {0: plainBatch(t, "ok"), 7: plainBatch(t, "bad partition")},
		"nope":    {0: plainBatch(t, "unknown topic")},
	})
	resp, in, out := rawExchange(t, c, 1, produce)
	codes := produceCodes(resp)
	want := map[string]int16{"metered/0": 0, "metered/7": kerr.UnknownTopicOrPartition.Code, "nope/0": kerr.UnknownTopicOrPartition.Code}
	for k, v := range want {
		if codes[k] != v {
			t.Fatalf("produce codes %v, want %v", codes, want)
		}
	}
	api := map[string]string{"api": "Produce"}
	expectMetric(t, reg, "streamhouse_kafka_requests_total", map[string]string{"api": "Produce", "version": "9"}, 1)
	expectMetric(t, reg, "streamhouse_kafka_requests_total", api, 1)
	expectMetric(t, reg, "streamhouse_kafka_errors_total", map[string]string{"api": "Produce", "code": "UNKNOWN_TOPIC_OR_PARTITION"}, 2)
	expectMetric(t, reg, "streamhouse_kafka_errors_total", api, 2)
	expectMetric(t, reg, "streamhouse_kafka_request_bytes_total", api, float64(in))
	expectMetric(t, reg, "streamhouse_kafka_response_bytes_total", api, float64(out))
	expectMetric(t, reg, "streamhouse_kafka_request_duration_seconds", api, 1)

	md := kmsg.NewPtrMetadataRequest()
	md.Version = 12
	mt := kmsg.NewMetadataRequestTopic()
	mt.Topic = kmsg.StringPtr("missing")
	md.Topics = append(md.Topics, mt)
	rawExchange(t, c, 2, md)
	expectMetric(t, reg, "streamhouse_kafka_requests_total", map[string]string{"api": "Metadata", "version": "12"}, 1)
	expectMetric(t, reg, "streamhouse_kafka_errors_total", map[string]string{"api": "Metadata", "code": "UNKNOWN_TOPIC_OR_PARTITION"}, 1)

	// KIP-511: an ApiVersions version beyond ours is answered with
	// UNSUPPORTED_VERSION and counted as that error.
	av := kmsg.NewPtrApiVersionsRequest()
	av.Version = 99
	c.write(frame(3, av))
	if _, ok := c.readFrame(); !ok {
		t.Fatal("no answer to ApiVersions v99")
	}
	expectMetric(t, reg, "streamhouse_kafka_errors_total", map[string]string{"api": "ApiVersions", "code": "UNSUPPORTED_VERSION"}, 1)

	// Every served version has its series from the start; others do not.
	if _, n := metricstest.Sum(t, reg, "streamhouse_kafka_requests_total", map[string]string{"api": "Fetch", "version": "18"}); n != 1 {
		t.Errorf("Fetch v18 has %d series, want 1 (pre-resolved)", n)
	}
	if _, n := metricstest.Sum(t, reg, "streamhouse_kafka_requests_total", map[string]string{"api": "Fetch", "version": "3"}); n != 0 {
		t.Errorf("Fetch v3 (not served) has %d series", n)
	}

	expectMetric(t, reg, "streamhouse_kafka_connections", nil, 1)
	expectMetric(t, reg, "streamhouse_kafka_connections_accepted_total", nil, 1)
	c.nc.Close()
	waitFor(t, "the connection gauge to drop to 0", func() bool {
		v, _ := metricstest.Sum(t, reg, "streamhouse_kafka_connections", nil)
		return v == 0
	})
	expectMetric(t, reg, "streamhouse_kafka_connections_accepted_total", nil, 1)
}

func TestResponseErrorsFindsNestedCodes(t *testing.T) {
	// A response walked by reflection: top-level and per-partition codes.
	resp := kmsg.NewPtrDeleteRecordsResponse()
	rt := kmsg.NewDeleteRecordsResponseTopic()
	for _, code := range []int16{0, kerr.OffsetOutOfRange.Code, kerr.UnknownTopicOrPartition.Code} {
		p := kmsg.NewDeleteRecordsResponseTopicPartition()
		p.ErrorCode = code
		rt.Partitions = append(rt.Partitions, p)
	}
	resp.Topics = append(resp.Topics, rt)
	var got []int16
	responseErrors(resp, func(c int16) { got = append(got, c) })
	if len(got) != 3 || got[1] != kerr.OffsetOutOfRange.Code || got[2] != kerr.UnknownTopicOrPartition.Code {
		t.Fatalf("codes %v", got)
	}
	if name := errorName(kerr.OffsetOutOfRange.Code, int(kerr.OffsetOutOfRange.Code)+1); name != "OFFSET_OUT_OF_RANGE" {
		t.Errorf("name %q", name)
	}
	if name := errorName(250, 251); name != unknownCodeName {
		t.Errorf("unknown code named %q", name)
	}
}

// TestGroupMetricsAfterCommit runs a franz-go group consumer that consumes
// and commits, then produces more, and reads state, members, rebalances,
// committed offsets and lag from the registry.
func TestGroupMetricsAfterCommit(t *testing.T) {
	reg := prometheus.NewRegistry()
	b := newTestBroker(t, func(c *Config) {
		c.Metrics = reg
		c.Groups.InitialRebalanceDelay = -1
	})
	b.srv.groupMetrics.ttl = 0 // read meta on every scrape
	b.createTopic("lagged", 2, nil)
	produceValues(t, b, "lagged", 2, "a", 10) // 5 per partition

	ctx := testCtx(t)
	cl := b.client(kgo.ConsumerGroup("metered-group"), kgo.ConsumeTopics("lagged"),
		kgo.DisableAutoCommit(), kgo.FetchMaxWait(200*time.Millisecond))
	for n := 0; n < 10; {
		fs := cl.PollFetches(ctx)
		if err := fs.Err0(); err != nil {
			t.Fatal(err)
		}
		n += fs.NumRecords()
	}
	if err := cl.CommitUncommittedOffsets(ctx); err != nil {
		t.Fatal(err)
	}
	produceValues(t, b, "lagged", 2, "b", 6) // 3 more per partition

	_, generation := cl.GroupMetadata()
	g := map[string]string{"group": "metered-group"}
	expectMetric(t, reg, "streamhouse_kafka_groups", map[string]string{"type": "classic", "state": "Stable"}, 1)
	expectMetric(t, reg, "streamhouse_kafka_groups", map[string]string{"type": "classic", "state": "Empty"}, 0)
	expectMetric(t, reg, "streamhouse_kafka_group_members", g, 1)
	expectMetric(t, reg, "streamhouse_kafka_group_rebalances_total", g, float64(generation))
	if generation < 1 {
		t.Errorf("generation %d", generation)
	}
	for _, p := range []string{"0", "1"} {
		gp := map[string]string{"group": "metered-group", "topic": "lagged", "partition": p}
		expectMetric(t, reg, "streamhouse_kafka_group_committed_offset", gp, 5)
		expectMetric(t, reg, "streamhouse_kafka_group_lag", gp, 3)
	}
	expectMetric(t, reg, "streamhouse_kafka_group_metrics_dropped_series", nil, 0)
}

// TestGroupMetricsSeriesCap checks the cap: groups take the budget first,
// then committed partitions; the rest is counted as dropped.
func TestGroupMetricsSeriesCap(t *testing.T) {
	reg := prometheus.NewRegistry()
	b := newTestBroker(t, func(c *Config) {
		c.Metrics = reg
		c.GroupMetricsMaxSeries = 3
	})
	b.srv.groupMetrics.ttl = 0
	b.createTopic("capped", 2, nil)
	adm := b.admin()
	ctx := testCtx(t)
	for _, group := range []string{"cap-a", "cap-b"} {
		var os kadm.Offsets
		os.AddOffset("capped", 0, 1, -1)
		os.AddOffset("capped", 1, 1, -1)
		if err := adm.CommitAllOffsets(ctx, group, os); err != nil {
			t.Fatal(err)
		}
	}
	// Budget 3: the two groups' member series, then cap-a's partition 0.
	// Left out: cap-a's partition 1, and cap-b's offsets, not even read
	// (reading stops once the offsets read fill the budget): one each.
	if _, n := metricstest.Sum(t, reg, "streamhouse_kafka_group_members", nil); n != 2 {
		t.Errorf("%d member series, want 2", n)
	}
	if _, n := metricstest.Sum(t, reg, "streamhouse_kafka_group_committed_offset", nil); n != 1 {
		t.Errorf("%d committed-offset series, want 1", n)
	}
	expectMetric(t, reg, "streamhouse_kafka_group_committed_offset", map[string]string{"group": "cap-a", "partition": "0"}, 1)
	expectMetric(t, reg, "streamhouse_kafka_group_metrics_dropped_series", nil, 2)
	expectMetric(t, reg, "streamhouse_kafka_groups", map[string]string{"type": "classic", "state": "Empty"}, 2)
}

// syncBuffer is a bytes.Buffer safe for concurrent writers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// records returns the JSON log records logged so far with message msg.
func (s *syncBuffer) records(t *testing.T, msg string) []map[string]any {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []map[string]any
	for _, line := range bytes.Split(s.b.Bytes(), []byte("\n")) {
		if len(line) == 0 {
			continue
		}
		var rec map[string]any
		if err := json.Unmarshal(line, &rec); err != nil {
			t.Fatalf("bad log line %q: %v", line, err)
		}
		if rec["msg"] == msg {
			out = append(out, rec)
		}
	}
	return out
}

func TestSlowRequestLog(t *testing.T) {
	t.Run("logged with api, client, topics", func(t *testing.T) {
		var logs syncBuffer
		b := newTestBrokerLogging(t, func(c *Config) { c.SlowRequestThreshold = time.Nanosecond },
			slog.NewJSONHandler(&logs, nil))
		b.createTopic("slow", 1, nil)
		c := b.raw()
		c.roundTrip(41, produceOne("slow", 0, plainBatch(t, "v")))
		recs := logs.records(t, "slow kafka request")
		if len(recs) != 1 {
			t.Fatalf("%d slow-request lines, want 1", len(recs))
		}
		r := recs[0]
		topics, _ := r["topics"].([]any)
		if r["level"] != "WARN" || r["api"] != "Produce" || r["version"] != 9.0 || r["client_id"] != "raw-test" ||
			r["correlation_id"] != 41.0 || len(topics) != 1 || topics[0] != "slow" || r["topic_count"] != 1.0 ||
			r["remote"] != c.nc.LocalAddr().String() {
			t.Errorf("slow-request line %v", r)
		}
		if d, ok := r["duration"].(float64); !ok || d <= 0 {
			t.Errorf("duration %v", r["duration"])
		}
	})
	t.Run("topic list capped", func(t *testing.T) {
		req := kmsg.NewPtrMetadataRequest()
		for i := range 8 {
			mt := kmsg.NewMetadataRequestTopic()
			mt.Topic = kmsg.StringPtr("t" + strconv.Itoa(i))
			req.Topics = append(req.Topics, mt)
		}
		names, n := requestTopics(req, nil)
		if n != 8 || len(names) != slowLogTopics || names[4] != "t4" {
			t.Errorf("topics %v of %d", names, n)
		}
	})
	t.Run("fetch long-poll wait excluded", func(t *testing.T) {
		var logs syncBuffer
		b := newTestBrokerLogging(t, func(c *Config) { c.SlowRequestThreshold = 300 * time.Millisecond },
			slog.NewJSONHandler(&logs, nil))
		b.createTopic("idle", 1, nil)
		c := b.raw()
		fetch := kmsg.NewPtrFetchRequest()
		fetch.Version, fetch.MaxWaitMillis, fetch.MinBytes, fetch.MaxBytes = 12, 1000, 1, 1<<20
		ft := kmsg.NewFetchRequestTopic()
		ft.Topic = "idle"
		fp := kmsg.NewFetchRequestTopicPartition()
		fp.PartitionMaxBytes = 1 << 20
		ft.Partitions = append(ft.Partitions, fp)
		fetch.Topics = append(fetch.Topics, ft)
		start := time.Now()
		resp := c.roundTrip(7, fetch).(*kmsg.FetchResponse)
		if took := time.Since(start); took < time.Second {
			t.Fatalf("fetch answered after %v, want a 1s long poll", took)
		}
		if code := resp.Topics[0].Partitions[0].ErrorCode; code != 0 {
			t.Fatalf("fetch error %d", code)
		}
		if recs := logs.records(t, "slow kafka request"); len(recs) != 0 {
			t.Errorf("an idle long poll was logged as slow: %v", recs)
		}
	})
}

// BenchmarkObserveProduce measures what the metrics add to one produce
// request with one partition: the per-request cost on the hot path.
func BenchmarkObserveProduce(b *testing.B) {
	m := newFrontMetrics(prometheus.NewRegistry(), dispatchTable())
	resp := kmsg.NewPtrProduceResponse()
	rt := kmsg.NewProduceResponseTopic()
	rt.Partitions = append(rt.Partitions, kmsg.NewProduceResponseTopicPartition())
	resp.Topics = append(resp.Topics, rt)
	a := m.api(0)
	b.ReportAllocs()
	for b.Loop() {
		a.observe(9, 0.001, 1024, 64, resp)
	}
}
