//go:build linux

package main

import (
	"context"
	"fmt"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/streamhouse/streamhouse/objstore/s3test"
	streamhousepb "github.com/streamhouse/streamhouse/proto"
)

// The object-store outage test's shape.
const (
	// outageDuration is how long the S3 server stays down. Issue #19 asks
	// for a minute; 20 s keeps CI's cost down (the test has three cases)
	// and is still several upload retries (backoff capped at 5 s) and
	// more than the load needs to fill the largest bound (the 16 MiB disk
	// at about 2 MB/s: eight seconds), so each bound is held for a while.
	outageDuration = 20 * time.Second
	// outageBacklogLimit is the explicit --max-upload-backlog.
	outageBacklogLimit = 2 << 20
	// outageSmallDisk is the size of the tmpfs of the small-disk cases.
	outageSmallDisk = 16 << 20
	// outageSegmentBytes is the topic's segment.bytes: eight sealed
	// segments fill the explicit backlog limit.
	outageSegmentBytes = 256 << 10
	outagePartitions   = 2
	// outageSegmentMax is the most a sealed segment can weigh: its
	// batches (a roll happens before a batch would cross segment.bytes,
	// and the producer's batches are at most 16 KiB) plus index and
	// footer.
	outageSegmentMax = outageSegmentBytes + 32<<10
	// outageMinFree is the free space a backlog bound within the disk
	// must leave on the data directory's file system (the metadata
	// database lives there too: uploads must record their segments).
	outageMinFree = 1 << 20
	// outageProbeEvery spaces Produce probes during the outage.
	outageProbeEvery = 500 * time.Millisecond
	// uploadResumeTimeout bounds the wait for the first upload once the
	// server is back: uploads retry at most 5 s apart (issue #19), so
	// this is that cap with room for a slow machine.
	uploadResumeTimeout = 15 * time.Second
	// drainTimeout bounds the wait for the backlog to drain once the
	// server is back.
	drainTimeout = 90 * time.Second
)

// outageCase is one configuration of TestProcessObjectStoreOutage.
type outageCase struct {
	name string
	// dataDir returns the broker's data directory.
	dataDir func(*testing.T) string
	// limit is --max-upload-backlog; 0 leaves the flag out, and the
	// broker must then pick half the free space of the data directory's
	// file system at start.
	limit int64
	// diskFills says the limit exceeds the disk: the backlog alone would
	// fill it during the outage, so the broker's free-space reserve must
	// refuse produce first (KAFKA_STORAGE_ERROR too), leaving room for
	// the metadata writes with which uploads free the space once the
	// server is back.
	diskFills bool
}

// TestProcessObjectStoreOutage runs the broker on a real S3 server
// (versitygw) with small segments under a steady idempotent acks=all
// load, and stops the S3 server for outageDuration (issue #19). During
// the outage the backlog gauge stays within its limit (plus a segment per
// partition) and so does the local segment directory; unless the limit
// exceeds the disk, the disk never fills; Produce probes on both fronts
// are answered with success or a retriable refusal (Kafka
// KAFKA_STORAGE_ERROR, gRPC Unavailable), and each front refuses at least
// once; the franz-go producer sees no error (it retries); the broker
// stays up. Once the server is back, with no broker restart, an upload
// succeeds within the retry cap, the backlog drains to 0, produce
// succeeds again, every record the load offered is acknowledged, and
// every acknowledged record reads back exactly once at its offset while
// no refused one is stored.
//
// The cases: an explicit limit on an ordinary disk; the default limit on
// a small disk (it must be half the free space at start); and a limit
// larger than a small disk, where the free-space reserve must stop
// produce before the disk fills (a disk filled to the brim would leave
// the metadata database, which shares it, unable to record the uploads
// that free space).
func TestProcessObjectStoreOutage(t *testing.T) {
	requireHelpFlag(t, "max-upload-backlog")
	tmpfs := func(t *testing.T) string { return mountTmpfs(t, outageSmallDisk) }
	for _, tc := range []outageCase{
		{name: "explicit limit", dataDir: func(t *testing.T) string { return t.TempDir() }, limit: outageBacklogLimit},
		{name: "default limit on a small disk", dataDir: tmpfs},
		{name: "limit above a small disk", dataDir: tmpfs, limit: 1 << 30, diskFills: true},
	} {
		t.Run(tc.name, func(t *testing.T) { testOutage(t, tc) })
	}
}

func testOutage(t *testing.T, tc outageCase) {
	srv := s3test.Start(t)
	dataDir := tc.dataDir(t)
	args := localArgs(dataDir)
	if tc.limit > 0 {
		args = append(args, "--max-upload-backlog="+strconv.FormatInt(tc.limit, 10))
	}
	freeAtStart := freeBytes(t, dataDir)
	p := startBroker(t, map[string]string{
		"USE_LOCAL_STORAGE":     "false",
		"STREAMHOUSE_BUCKET":    srv.Bucket,
		"S3_ENDPOINT":           srv.Endpoint,
		"AWS_REGION":            srv.Region,
		"AWS_ACCESS_KEY_ID":     srv.AccessKey,
		"AWS_SECRET_ACCESS_KEY": srv.SecretKey,
	}, args...)
	httpAddr := p.ready(t)
	seed := p.listenAddr(t, "kafka")
	limit := checkBacklogLimit(t, httpAddr, tc.limit, freeAtStart)

	const topic = "outage"
	topicID := createTopic(t, seed, topic, outagePartitions, map[string]string{"segment.bytes": strconv.Itoa(outageSegmentBytes)})
	led := newLedger()
	cl := newProducer(t, seed, 2000)
	defer cl.Close()
	// About 2 MB/s; the counts and times bound the load whatever happens.
	ld := startLoad(cl, led, topic, "load", loadConfig{tick: 10 * time.Millisecond, perTick: 20, valueSize: 1000,
		max: 400_000, maxTime: 5 * time.Minute}, func(error) bool { return false })
	defer ld.stop()
	raw := newRawProducer(t, seed, topic, topicID, led)
	gp := newGRPCProber(t, p.listenAddr(t, "grpc"), topic, led)

	// Before the outage: segments roll and reach the store.
	waitFor(t, time.Minute, "uploads before the outage", func() (bool, string) {
		m, err := scrape(httpAddr, metricUploads)
		return err == nil && m[metricUploads] >= 3 && led.acks() >= 2000,
			fmt.Sprintf("uploads %v, acks %d, err %v; load: %s", m[metricUploads], led.acks(), err, ld)
	})

	srv.Stop(t)
	t.Logf("S3 server stopped for %s; load so far: %s", outageDuration, ld)
	w := outageWatch{p: p, httpAddr: httpAddr, dataDir: dataDir, raw: raw, gp: gp, limit: limit, diskFills: tc.diskFills}
	o := w.run(t)
	t.Logf("outage: backlog gauge peaked at %.0f bytes (limit %d), segment directory at %d bytes, free space fell to %d bytes; Kafka probes: %d acked, %d refused with KAFKA_STORAGE_ERROR; gRPC probes: %d acked, %d refused with Unavailable; load: %s",
		o.maxBacklog, limit, o.maxDir, o.minFree, o.probesAcked, o.probesRefused, o.grpcAcked, o.grpcRefused, ld)
	if o.probesRefused == 0 {
		t.Errorf("no Kafka produce was refused with KAFKA_STORAGE_ERROR during a %s outage: the backlog bound never engaged (gauge peaked at %.0f, limit %d)",
			outageDuration, o.maxBacklog, limit)
	}
	if o.grpcRefused == 0 {
		t.Errorf("no gRPC Produce was refused with Unavailable during a %s outage", outageDuration)
	}
	if errs := led.errs(); len(errs) > 0 {
		t.Errorf("the franz-go producer got %d errors during the outage (it should have retried), first: %s", len(errs), errs[0])
	}
	if t.Failed() {
		t.FailNow()
	}

	// The store comes back: the backlog drains and produce resumes, with
	// no restart of the broker.
	uploads := scrapeOne(t, httpAddr, metricUploads)
	srv.Restart(t)
	back, acksAtRestart := time.Now(), led.acks()
	waitFor(t, uploadResumeTimeout, "an upload after the S3 server came back", func() (bool, string) {
		m, err := scrape(httpAddr, metricUploads)
		return err == nil && m[metricUploads] > uploads, fmt.Sprintf("%s %v (%v before), err %v", metricUploads, m[metricUploads], uploads, err)
	})
	t.Logf("uploads resumed %s after the S3 server came back", time.Since(back).Round(time.Millisecond))
	waitFor(t, drainTimeout, "the backlog to drain and the load to resume", func() (bool, string) {
		if !p.alive() {
			t.Fatalf("broker exited after the S3 server came back; log:\n%s", p.out.String())
		}
		m, err := scrape(httpAddr, metricBacklog, metricUploads, metricUploadErrors)
		return err == nil && m[metricBacklog] == 0 && led.acks() >= acksAtRestart+1000,
			fmt.Sprintf("metrics %v, acks %d (at restart %d), err %v", m, led.acks(), acksAtRestart, err)
	})
	t.Logf("backlog drained and the load resumed %s after the S3 server came back", time.Since(back).Round(time.Millisecond))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	v := fmt.Sprintf("after-outage-%d", time.Now().UnixNano())
	if code, msg, _, err := raw.produce(ctx, 0, []string{v}); err != nil || code != 0 {
		t.Fatalf("produce after the backlog drained: %s %q %v, want success", codeName(code), msg, err)
	}

	ld.stop()
	if err := cl.Flush(ctx); err != nil {
		t.Fatalf("flush the load: %v (%s)", err, ld)
	}
	if n := ld.tried.Load() - ld.skipped.Load(); ld.acked.Load() != n || ld.failed.Load() != 0 {
		t.Errorf("load: %s; want all %d records the client took acknowledged", ld, n)
	}
	for _, e := range led.errs() {
		t.Errorf("franz-go producer error: %s", e)
	}
	verifyLog(t, led, readAll(t, seed, topic))
	if m, err := scrape(httpAddr, metricUploadErrors); err == nil {
		t.Logf("%s = %v", metricUploadErrors, m[metricUploadErrors])
	}
	p.stop(t)
}

// checkBacklogLimit checks the backlog gauges of a fresh broker: no
// backlog, and the limit want, or for want 0 half of freeAtStart (the
// free space of the data directory's file system just before the broker
// started; the broker measures after creating its metadata database, so
// somewhat less is fine). It returns the limit.
func checkBacklogLimit(t *testing.T, httpAddr string, want, freeAtStart int64) int64 {
	t.Helper()
	m, err := scrape(httpAddr, metricBacklog, metricBacklogLimit)
	if err != nil {
		t.Fatal(err)
	}
	got := int64(m[metricBacklogLimit])
	if m[metricBacklog] != 0 || m[metricBacklogLimit] < 0 {
		t.Fatalf("at start %s = %v, %s = %v; want 0 and a limit (-1: not exported)",
			metricBacklog, m[metricBacklog], metricBacklogLimit, m[metricBacklogLimit])
	}
	switch half := freeAtStart / 2; {
	case want > 0 && got != want:
		t.Fatalf("%s = %d, want --max-upload-backlog's %d", metricBacklogLimit, got, want)
	case want == 0 && (got > half || got < half*9/10):
		t.Errorf("%s = %d with no --max-upload-backlog, want half the %d bytes free on the data directory's file system at start (%d)",
			metricBacklogLimit, got, freeAtStart, half)
	}
	return got
}

// freeBytes returns the space available to unprivileged writers on dir's
// file system.
func freeBytes(t *testing.T, dir string) int64 {
	t.Helper()
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		t.Fatal(err)
	}
	return int64(st.Bavail) * int64(st.Bsize)
}

// outageStats is what an outageWatch saw.
type outageStats struct {
	maxBacklog    float64
	maxDir        int64
	minFree       int64
	probesAcked   int
	probesRefused int
	grpcAcked     int
	grpcRefused   int
}

// outageWatch is what watches a broker during an outage.
type outageWatch struct {
	p        *brokerProc
	httpAddr string
	dataDir  string
	raw      *rawProducer
	gp       *grpcProber
	// limit is the broker's backlog limit.
	limit int64
	// diskFills says the limit exceeds the disk (outageCase.diskFills).
	diskFills bool
}

// run watches for outageDuration: every tick it checks that the broker
// runs, that the backlog gauge stays within the limit plus one segment
// per partition (each partition may seal one segment admitted just below
// the limit, concurrently with the others), that the local segment
// directory holds no more than that plus the active segments, and unless
// the disk is to fill, that the data directory's file system keeps
// outageMinFree free. Every outageProbeEvery it sends one Produce on each
// front and checks that the answer is success or the front's retriable
// refusal.
func (w *outageWatch) run(t *testing.T) outageStats {
	t.Helper()
	o := outageStats{minFree: freeBytes(t, w.dataDir)}
	backlogBound := float64(w.limit + outagePartitions*outageSegmentMax)
	// Plus each partition's active segment, and small files (producer
	// snapshots, the lock).
	dirBound := int64(backlogBound) + outagePartitions*outageSegmentMax + 1<<20
	segmentsDir := filepath.Join(w.dataDir, "segments")
	end := time.Now().Add(outageDuration)
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	var lastProbe time.Time
	for n := 0; time.Now().Before(end); n++ {
		if !w.p.alive() {
			t.Fatalf("broker exited during the outage; log:\n%s", w.p.out.String())
		}
		m, err := scrape(w.httpAddr, metricBacklog)
		if err != nil {
			t.Fatalf("scrape during the outage: %v", err)
		}
		b := m[metricBacklog]
		if b > backlogBound && o.maxBacklog <= backlogBound {
			t.Errorf("%s = %.0f, above the limit %d plus one segment per partition (%.0f)", metricBacklog, b, w.limit, backlogBound)
		}
		o.maxBacklog = max(o.maxBacklog, b)
		d, err := dirBytes(segmentsDir)
		if err != nil {
			t.Fatal(err)
		}
		if d > dirBound && o.maxDir <= dirBound {
			t.Errorf("the segment directory holds %d bytes, above %d (backlog bound and active segments)", d, dirBound)
		}
		o.maxDir = max(o.maxDir, d)
		free := freeBytes(t, w.dataDir)
		if free < outageMinFree && o.minFree >= outageMinFree {
			t.Errorf("the data directory's file system is down to %d free bytes under a backlog limit of %d: the bound does not keep the disk from filling",
				free, w.limit)
		}
		o.minFree = min(o.minFree, free)
		if time.Since(lastProbe) >= outageProbeEvery {
			lastProbe = time.Now()
			probeOutage(t, w.raw, int32(n%outagePartitions), fmt.Sprintf("probe-%d", n), &o)
			w.gp.probe(t, int32(n%outagePartitions), fmt.Sprintf("grpc-probe-%d", n), &o)
		}
		<-tick.C
	}
	if w.diskFills && o.minFree >= outageSmallDisk/4 {
		t.Errorf("the disk never came near full (%d bytes free at least): the case does not test what it should", o.minFree)
	}
	return o
}

// probeOutage sends one raw Produce of value to partition and counts the
// answer: success, KAFKA_STORAGE_ERROR (the value must then not be
// stored), or anything else, which fails the test.
func probeOutage(t *testing.T, raw *rawProducer, partition int32, value string, o *outageStats) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	start := time.Now()
	code, msg, _, err := raw.produce(ctx, partition, []string{value})
	switch {
	case err != nil:
		t.Errorf("produce probe during the outage: no answer after %s: %v", time.Since(start).Round(time.Millisecond), err)
	case code == 0:
		o.probesAcked++
	case code == kerr.KafkaStorageError.Code:
		o.probesRefused++
	default:
		t.Errorf("produce probe during the outage answered %s (%q, retriable %v), want success or KAFKA_STORAGE_ERROR",
			codeName(code), msg, kerr.IsRetriable(kerr.ErrorForCode(code)))
	}
}

// grpcProber sends gRPC Produce calls of one record and records each
// answer in its ledger.
type grpcProber struct {
	client streamhousepb.StreamHouseClient
	topic  string
	led    *ledger
}

func newGRPCProber(t *testing.T, addr, topic string, led *ledger) *grpcProber {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return &grpcProber{client: streamhousepb.NewStreamHouseClient(conn), topic: topic, led: led}
}

// probe produces value to partition and counts the answer: success,
// Unavailable (the value must then not be stored), or anything else,
// which fails the test.
func (gp *grpcProber) probe(t *testing.T, partition int32, value string, o *outageStats) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := gp.client.Produce(ctx, &streamhousepb.ProduceRequest{Topic: gp.topic, Partition: uint32(partition), Value: []byte(value)})
	switch status.Code(err) {
	case codes.OK:
		o.grpcAcked++
		gp.led.ack(value, partition, int64(resp.GetOffset()))
	case codes.Unavailable:
		o.grpcRefused++
		gp.led.refuse(value, "gRPC "+err.Error())
	default:
		t.Errorf("gRPC Produce probe during the outage: %v, want success or Unavailable", err)
	}
}
