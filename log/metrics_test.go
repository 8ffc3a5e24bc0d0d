package log

import (
	"context"
	"log/slog"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil/promlint"

	"github.com/streamhouse/streamhouse/internal/metricstest"
)

// openWithMetrics opens e's Manager with its metrics in reg.
func openWithMetrics(e *testEnv, reg prometheus.Registerer, perPartition bool) *Manager {
	e.t.Helper()
	m, err := Open(context.Background(), Config{
		Dir: filepath.Join(e.dir, "segments"), Objects: e.objects, Meta: e.meta,
		Logger:        slog.New(slog.NewTextHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		FlushInterval: time.Hour, RetentionInterval: time.Hour, Now: e.now,
		Registerer: reg, PerPartitionMetrics: perPartition,
	})
	if err != nil {
		e.t.Fatal(err)
	}
	e.m = m
	return m
}

// wantSample fails t unless the family's sample with labels has value want.
func wantSample(t *testing.T, reg prometheus.Gatherer, name, labels string, want float64) {
	t.Helper()
	got, ok := metricstest.Family(t, reg, name)[labels]
	if !ok {
		t.Fatalf("%s{%s}: no such series (have %v)", name, labels, metricstest.Family(t, reg, name))
	}
	if got != want {
		t.Fatalf("%s{%s} = %v, want %v", name, labels, got, want)
	}
}

// appendBatch appends one batch of n records and returns its size.
func appendBatch(t *testing.T, p *Partition, first, n int) int {
	t.Helper()
	b := testBatch(t, first, n, CodecNone)
	size := len(b)
	if _, err := p.Append(context.Background(), b, AppendOptions{Sync: true}); err != nil {
		t.Fatal(err)
	}
	return size
}

// objectBytes returns the object sizes meta records for a partition.
func objectBytes(t *testing.T, e *testEnv, p *Partition) int64 {
	t.Helper()
	segs, err := e.meta.ListSegments(context.Background(), p.topicID, p.index)
	if err != nil {
		t.Fatal(err)
	}
	var n int64
	for _, s := range segs {
		n += s.Size
	}
	return n
}

func TestTopicMetrics(t *testing.T) {
	e := newTestEnv(t)
	reg := prometheus.NewPedanticRegistry()
	m := openWithMetrics(e, reg, false)
	ctx := context.Background()
	mustCreate(t, m, "a", 2, map[string]string{ConfigRetentionMs: "-1"})
	mustCreate(t, m, "b", 1, nil)
	a0, a1, b0 := mustPartition(t, m, "a", 0), mustPartition(t, m, "a", 1), mustPartition(t, m, "b", 0)

	a0first := appendBatch(t, a0, 0, 5)
	a0second := appendBatch(t, a0, 5, 5)
	aBytes := a0first + a0second + appendBatch(t, a1, 0, 4)
	bBytes := appendBatch(t, b0, 0, 1)
	const appended = "streamhouse_log_appended_records_total"
	wantSample(t, reg, appended, "topic=a", 14)
	wantSample(t, reg, appended, "topic=b", 1)
	wantSample(t, reg, "streamhouse_log_appended_bytes_total", "topic=a", float64(aBytes))
	wantSample(t, reg, "streamhouse_log_appended_bytes_total", "topic=b", float64(bBytes))
	wantSample(t, reg, "streamhouse_log_appends_total", "", 4)

	// Reads count whole batches returned, including a first batch that
	// starts before the offset asked for; a read at the end counts nothing.
	const readRecs, readBytes = "streamhouse_log_read_records_total", "streamhouse_log_read_bytes_total"
	wantSample(t, reg, readRecs, "topic=a", 0)
	for _, r := range []struct {
		offset            int64
		maxBytes          int
		records, rawBytes int
	}{
		{0, 1 << 20, 10, a0first + a0second},
		{7, 1, 5, a0second},
		{10, 1 << 20, 0, 0},
	} {
		res, err := a0.Read(ctx, r.offset, r.maxBytes)
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Batches) != r.rawBytes {
			t.Fatalf("read at %d returned %d bytes, want %d", r.offset, len(res.Batches), r.rawBytes)
		}
	}
	wantSample(t, reg, readRecs, "topic=a", 15)
	wantSample(t, reg, readBytes, "topic=a", float64(a0first+2*a0second))
	wantSample(t, reg, readRecs, "topic=b", 0)

	wantSample(t, reg, "streamhouse_log_start_offset", "topic=a", 0)
	wantSample(t, reg, "streamhouse_log_end_offset", "topic=a", 14)
	wantSample(t, reg, "streamhouse_log_high_watermark", "topic=a", 14)
	wantSample(t, reg, "streamhouse_log_high_watermark", "topic=b", 1)

	// Uploaded segments count in the object-store gauge, and reads served
	// from the object store count like local ones.
	const objBytes = "streamhouse_log_object_store_bytes"
	wantSample(t, reg, objBytes, "topic=a", 0)
	if err := a0.Roll(); err != nil {
		t.Fatal(err)
	}
	waitUploaded(t, m, a0)
	uploaded := objectBytes(t, e, a0)
	if uploaded == 0 {
		t.Fatal("meta records no uploaded bytes")
	}
	wantSample(t, reg, objBytes, "topic=a", float64(uploaded))
	if res, err := a0.Read(ctx, 0, 1<<20); err != nil || len(res.Batches) != a0first+a0second {
		t.Fatalf("remote read: %d bytes, %v", len(res.Batches), err)
	}
	wantSample(t, reg, readRecs, "topic=a", 25)

	// Retention of the uploaded segment takes it out of the gauge.
	if _, err := a0.DeleteRecordsBefore(ctx, 10); err != nil {
		t.Fatal(err)
	}
	m.RunHousekeeping(ctx)
	if n := objectBytes(t, e, a0); n != 0 {
		t.Fatalf("retention left %d bytes in meta", n)
	}
	wantSample(t, reg, objBytes, "topic=a", 0)
	wantSample(t, reg, "streamhouse_log_start_offset", "topic=a", 10)

	// A deleted topic's series go with it.
	if err := m.DeleteTopic(ctx, "b"); err != nil {
		t.Fatal(err)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		for _, s := range mf.GetMetric() {
			for _, l := range s.GetLabel() {
				if l.GetName() == "topic" && l.GetValue() == "b" {
					t.Errorf("%s still has a series for deleted topic b", mf.GetName())
				}
			}
		}
	}
	mfs, err = reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	if problems, err := promlint.NewWithMetricFamilies(mfs).Lint(); err != nil || len(problems) > 0 {
		t.Fatalf("lint: %v %+v", err, problems)
	}
}

func TestTopicMetricsPerPartition(t *testing.T) {
	e := newTestEnv(t)
	reg := prometheus.NewPedanticRegistry()
	m := openWithMetrics(e, reg, true)
	mustCreate(t, m, "a", 2, nil)
	p0, p1 := mustPartition(t, m, "a", 0), mustPartition(t, m, "a", 1)

	// Scrape while two writers append, so the race detector sees the
	// collector against the hot path.
	const batches, per = 50, 3
	var wg sync.WaitGroup
	for _, p := range []*Partition{p0, p1} {
		data := make([][]byte, batches)
		for i := range data {
			data[i] = testBatch(t, i*per, per, CodecNone)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for _, b := range data {
				if _, err := p.Append(context.Background(), b, AppendOptions{}); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	for scraping := true; scraping; {
		select {
		case <-done:
			scraping = false
		default:
		}
		if _, err := reg.Gather(); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := p1.Read(context.Background(), 0, 1<<20); err != nil {
		t.Fatal(err)
	}

	got := metricstest.Family(t, reg, "streamhouse_log_appended_records_total")
	want := map[string]float64{"partition=0,topic=a": batches * per, "partition=1,topic=a": batches * per}
	if len(got) != len(want) || got["partition=0,topic=a"] != want["partition=0,topic=a"] ||
		got["partition=1,topic=a"] != want["partition=1,topic=a"] {
		t.Fatalf("appended records %v, want %v", got, want)
	}
	wantSample(t, reg, "streamhouse_log_high_watermark", "partition=1,topic=a", batches*per)
	wantSample(t, reg, "streamhouse_log_read_records_total", "partition=1,topic=a", batches*per)
	wantSample(t, reg, "streamhouse_log_read_records_total", "partition=0,topic=a", 0)

	// Added partitions get series of their own.
	if _, err := m.AddPartitions(context.Background(), "a", 3); err != nil {
		t.Fatal(err)
	}
	var keys []string
	for k := range metricstest.Family(t, reg, "streamhouse_log_end_offset") {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	if got := strings.Join(keys, " "); got != "partition=0,topic=a partition=1,topic=a partition=2,topic=a" {
		t.Fatalf("end offset series: %s", got)
	}
}

func TestCountReadMetric(t *testing.T) {
	b1, b2 := testBatch(t, 0, 3, CodecNone), testBatch(t, 3, 7, CodecLZ4)
	for _, tc := range []struct {
		name           string
		data           []byte
		records, bytes int64
	}{
		{"empty", nil, 0, 0},
		{"one batch", b1, 3, int64(len(b1))},
		{"two batches", append(append([]byte(nil), b1...), b2...), 10, int64(len(b1) + len(b2))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var s partitionStats
			s.countRead(tc.data)
			if r, n := s.readRecords.Load(), s.readBytes.Load(); r != tc.records || n != tc.bytes {
				t.Fatalf("counted %d records, %d bytes; want %d, %d", r, n, tc.records, tc.bytes)
			}
		})
	}
}

// streamhouse_log_readahead_reserved_bytes follows the cache's
// reservations for read-ahead.
func TestReadAheadReservedMetric(t *testing.T) {
	e := newTestEnv(t)
	reg := prometheus.NewPedanticRegistry()
	m := openWithMetrics(e, reg, false)
	wantSample(t, reg, "streamhouse_log_readahead_reserved_bytes", "", 0)
	if !m.cache.reserve(4096, false) {
		t.Fatal("the cache refused a 4 KiB reservation")
	}
	wantSample(t, reg, "streamhouse_log_readahead_reserved_bytes", "", 4096)
	m.cache.release(4096)
	wantSample(t, reg, "streamhouse_log_readahead_reserved_bytes", "", 0)
}
