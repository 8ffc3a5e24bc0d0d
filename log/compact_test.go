package log

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/streamhouse/streamhouse/objstore"
	"github.com/streamhouse/streamhouse/objstore/s3test"
)

func TestCompactionConfigValidation(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  map[string]string
		ok   bool
	}{
		{"compact", map[string]string{ConfigCleanupPolicy: "compact"}, true},
		{"delete", map[string]string{ConfigCleanupPolicy: "delete"}, true},
		{"both", map[string]string{ConfigCleanupPolicy: "compact,delete"}, true},
		{"both reversed with spaces", map[string]string{ConfigCleanupPolicy: "delete, compact"}, true},
		{"empty", map[string]string{ConfigCleanupPolicy: ""}, false},
		{"unknown policy", map[string]string{ConfigCleanupPolicy: "compact,shred"}, false},
		{"twice", map[string]string{ConfigCleanupPolicy: "compact,compact"}, false},
		{"ratio", map[string]string{ConfigMinCleanableDirtyRatio: "0.1"}, true},
		{"ratio above 1", map[string]string{ConfigMinCleanableDirtyRatio: "1.5"}, false},
		{"ratio NaN", map[string]string{ConfigMinCleanableDirtyRatio: "NaN"}, false},
		{"lags", map[string]string{ConfigMinCompactionLagMs: "10", ConfigMaxCompactionLagMs: "20"}, true},
		{"min lag above max", map[string]string{ConfigMinCompactionLagMs: "30", ConfigMaxCompactionLagMs: "20"}, false},
		{"max lag zero", map[string]string{ConfigMaxCompactionLagMs: "0"}, false},
		{"delete retention", map[string]string{ConfigDeleteRetentionMs: "0"}, true},
		{"negative delete retention", map[string]string{ConfigDeleteRetentionMs: "-1"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := ValidateTopicConfigs(tc.cfg)
			if tc.ok && err != nil {
				t.Fatalf("refused: %v", err)
			}
			if !tc.ok && !errors.Is(err, ErrInvalidConfig) {
				t.Fatalf("err = %v, want ErrInvalidConfig", err)
			}
		})
	}
}

// A compacted topic refuses a record without a key, whatever the codec,
// with Kafka's message, and writes nothing; keyed records and other
// topics are unaffected.
func TestCompactedTopicRefusesKeylessRecords(t *testing.T) {
	e := newTestEnv(t)
	m := e.open()
	mustCreate(t, m, "table", 1, map[string]string{ConfigCleanupPolicy: "compact"})
	mustCreate(t, m, "stream", 1, nil)
	table, stream := mustPartition(t, m, "table", 0), mustPartition(t, m, "stream", 0)
	for _, codec := range []Codec{CodecNone, CodecGzip, CodecSnappy, CodecLZ4, CodecZstd} {
		recs := []Record{{Key: []byte("k"), Value: []byte("v")}, {Value: []byte("no key")}}
		b, err := EncodeBatch(recs, codec, 1_700_000_000_000)
		if err != nil {
			t.Fatal(err)
		}
		_, err = table.Append(context.Background(), append([]byte(nil), b...), AppendOptions{Sync: true})
		if !errors.Is(err, ErrInvalidBatch) || !strings.Contains(err.Error(), "Compacted topic cannot accept message without key") {
			t.Fatalf("%s: keyless append to a compacted topic: %v", codec, err)
		}
		if _, err := stream.Append(context.Background(), b, AppendOptions{Sync: true}); err != nil {
			t.Fatalf("%s: keyless append to a delete topic: %v", codec, err)
		}
	}
	if _, hwm := table.Offsets(); hwm != 0 {
		t.Fatalf("refused appends moved the high watermark to %d", hwm)
	}
	if _, err := table.Append(context.Background(), testBatch(t, 0, 3, CodecLZ4), AppendOptions{Sync: true}); err != nil {
		t.Fatal(err)
	}
}

// compactEnv is a test env whose cleaner runs only when the test says,
// with a clock the test moves.
type compactEnv struct {
	*testEnv
	clock time.Time
}

func newCompactEnv(t *testing.T, deleteDelay time.Duration) *compactEnv {
	e := &compactEnv{testEnv: newTestEnv(t), clock: time.UnixMilli(1_800_000_000_000)}
	e.now = func() time.Time { return e.clock }
	e.cleaner = CleanerConfig{Disabled: true, DeleteDelay: deleteDelay}
	return e
}

// compactTopic creates a compacted one-partition topic that rolls small
// segments.
func (e *compactEnv) compactTopic(name string, extra map[string]string) *Partition {
	e.t.Helper()
	cfg := map[string]string{ConfigCleanupPolicy: "compact", ConfigSegmentBytes: "2048", ConfigMinCleanableDirtyRatio: "0"}
	for k, v := range extra {
		cfg[k] = v
	}
	mustCreate(e.t, e.m, name, 1, cfg)
	return mustPartition(e.t, e.m, name, 0)
}

// kv is one keyed record; a nil value is a tombstone.
type kv struct {
	key, value string
	tomb       bool
}

func (r kv) record(ts int64) Record {
	rec := Record{Key: []byte(r.key), Timestamp: ts}
	if !r.tomb {
		rec.Value = []byte(r.value)
	}
	return rec
}

// appendKV appends recs as one batch and returns its base offset.
func appendKV(t *testing.T, p *Partition, codec Codec, ts int64, recs ...kv) int64 {
	t.Helper()
	rs := make([]Record, len(recs))
	for i, r := range recs {
		rs[i] = r.record(ts)
	}
	b, err := EncodeBatch(rs, codec, ts)
	if err != nil {
		t.Fatal(err)
	}
	res, err := p.Append(context.Background(), b, AppendOptions{Sync: true})
	if err != nil {
		t.Fatal(err)
	}
	return res.BaseOffset
}

// readCompacted reads every record from the log start to the high
// watermark, stepping over gaps and empty batches, and checks that
// offsets strictly increase.
func readCompacted(t *testing.T, p *Partition) []Record {
	t.Helper()
	logStart, hwm := p.Offsets()
	var out []Record
	for off := logStart; off < hwm; {
		res, err := p.Read(context.Background(), off, 1<<20)
		if err != nil {
			t.Fatalf("read at %d: %v", off, err)
		}
		if len(res.Batches) == 0 {
			break // compaction removed everything from off to the end
		}
		next := off
		for b := res.Batches; len(b) > 0; {
			h, err := ParseBatchHeader(b)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := checkFrameOf(b[:h.Size()], true); err != nil {
				t.Fatalf("batch at %d: %v", h.BaseOffset, err)
			}
			b = b[h.Size():]
			next = max(next, h.NextOffset())
		}
		recs, err := DecodeBatches(res.Batches, off)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range recs {
			if len(out) > 0 && r.Offset <= out[len(out)-1].Offset {
				t.Fatalf("offset %d after %d", r.Offset, out[len(out)-1].Offset)
			}
			out = append(out, r)
		}
		if next <= off {
			t.Fatalf("read at %d made no progress", off)
		}
		off = next
		res.Release()
	}
	return out
}

// rollAndUpload seals the active segment and waits for every upload.
func (e *compactEnv) rollAndUpload(p *Partition) {
	e.t.Helper()
	if err := p.Roll(); err != nil {
		e.t.Fatal(err)
	}
	waitUploaded(e.t, e.m, p)
}

func mustCompact(t *testing.T, p *Partition) CompactionResult {
	t.Helper()
	res, err := p.Compact(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func TestCompactionKeepsLatestPerKey(t *testing.T) {
	for _, codec := range []Codec{CodecNone, CodecGzip, CodecSnappy, CodecLZ4, CodecZstd} {
		t.Run(codec.String(), func(t *testing.T) {
			e := newCompactEnv(t, -1)
			e.open()
			p := e.compactTopic("t", nil)
			latest := map[string]kv{}
			latestOff := map[string]int64{}
			for i := 0; i < 60; i++ {
				batch := []kv{{key: fmt.Sprintf("k%d", i%7), value: fmt.Sprintf("v%d", i)}, {key: fmt.Sprintf("u%d", i), value: "once"}}
				base := appendKV(t, p, codec, 1_700_000_000_000+int64(i), batch...)
				for j, r := range batch {
					latest[r.key], latestOff[r.key] = r, base+int64(j)
				}
			}
			e.rollAndUpload(p)
			_, hwm := p.Offsets()
			res := mustCompact(t, p)
			if !res.Ran || res.RecordsDropped == 0 {
				t.Fatalf("compaction result %+v", res)
			}
			recs := readCompacted(t, p)
			if len(recs) != len(latest) {
				t.Fatalf("read %d records, want %d (one per key)", len(recs), len(latest))
			}
			for _, r := range recs {
				if want := latest[string(r.Key)]; string(r.Value) != want.value || r.Offset != latestOff[string(r.Key)] {
					t.Fatalf("key %s: offset %d value %q, want offset %d value %q", r.Key, r.Offset, r.Value, latestOff[string(r.Key)], want.value)
				}
			}
			if _, h := p.Offsets(); h != hwm {
				t.Fatalf("high watermark moved from %d to %d", hwm, h)
			}
			// A second run finds nothing dirty; a reopen reads the same.
			if res := mustCompact(t, p); res.Ran {
				t.Fatalf("second run without new data: %+v", res)
			}
			e.reopen()
			p = mustPartition(t, e.m, "t", 0)
			if again := readCompacted(t, p); len(again) != len(recs) {
				t.Fatalf("after reopen %d records, want %d", len(again), len(recs))
			}
			// Appends continue at the same offset.
			if off := appendKV(t, p, codec, 1_700_000_001_000, kv{key: "k0", value: "new"}); off != hwm {
				t.Fatalf("append after compaction at %d, want %d", off, hwm)
			}
		})
	}
}

// A tombstone removes its key's older records at once, stays readable for
// delete.retention.ms after the first run that reached it (its batch then
// carries a delete horizon, record times unchanged), then goes.
func TestCompactionTombstones(t *testing.T) {
	e := newCompactEnv(t, -1)
	e.open()
	p := e.compactTopic("t", map[string]string{ConfigDeleteRetentionMs: "1000"})
	appendKV(t, p, CodecNone, 1_700_000_000_000, kv{key: "a", value: "a1"}, kv{key: "b", value: "b1"})
	tomb := appendKV(t, p, CodecLZ4, 1_700_000_000_005, kv{key: "c", value: "c1"}, kv{key: "a", tomb: true})
	e.rollAndUpload(p)
	mustCompact(t, p)
	got := recordSet(t, p)
	want := map[int64]string{1: "b=b1", 2: "c=c1", tomb + 1: "a=<tombstone>"}
	if !maps.Equal(got, want) {
		t.Fatalf("after the first run %v, want %v", got, want)
	}
	for _, r := range readCompacted(t, p) {
		if r.Offset >= tomb && r.Timestamp != 1_700_000_000_005 {
			t.Fatalf("record %d timestamp %d after the delete horizon was stamped", r.Offset, r.Timestamp)
		}
	}

	// Before the horizon: another run keeps the tombstone.
	e.clock = e.clock.Add(900 * time.Millisecond)
	appendKV(t, p, CodecNone, 1_700_000_000_010, kv{key: "d", value: "d1"})
	e.rollAndUpload(p)
	mustCompact(t, p)
	if got := recordSet(t, p); got[tomb+1] != "a=<tombstone>" {
		t.Fatalf("tombstone gone before delete.retention.ms: %v", got)
	}

	// After it: the next run drops it.
	e.clock = e.clock.Add(200 * time.Millisecond)
	appendKV(t, p, CodecNone, 1_700_000_000_020, kv{key: "e", value: "e1"})
	e.rollAndUpload(p)
	res := mustCompact(t, p)
	got = recordSet(t, p)
	if _, ok := got[tomb+1]; ok || res.TombstonesDroped != 1 {
		t.Fatalf("tombstone still there after delete.retention.ms: %v (%+v)", got, res)
	}
	if len(got) != 4 || got[1] != "b=b1" || got[2] != "c=c1" {
		t.Fatalf("after the tombstone went: %v", got)
	}
}

// An idempotent producer's last batch stays, emptied, when compaction
// removes all its records, so that after a restart without producer
// snapshots a retry of it is still answered as a duplicate.
func TestCompactionKeepsProducersLastBatch(t *testing.T) {
	e := newCompactEnv(t, -1)
	e.open()
	p := e.compactTopic("t", nil)
	if _, err := p.Append(context.Background(), idemBatch(t, 7, 0, 0, 3), AppendOptions{Sync: true}); err != nil {
		t.Fatal(err)
	}
	// The same keys (k0..k2) again, from no producer: the producer's
	// records are all superseded.
	if _, err := p.Append(context.Background(), testBatch(t, 0, 3, CodecNone), AppendOptions{Sync: true}); err != nil {
		t.Fatal(err)
	}
	e.rollAndUpload(p)
	mustCompact(t, p)
	res, err := p.Read(context.Background(), 0, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	h, err := ParseBatchHeader(res.Batches)
	if err != nil {
		t.Fatal(err)
	}
	if h.ProducerID != 7 || h.NumRecords != 0 || h.LastOffsetDelta != 2 || h.Codec() != CodecNone {
		t.Fatalf("first batch after compaction: %+v, want producer 7's emptied batch", h)
	}
	if _, err := checkFrameOf(res.Batches[:h.Size()], true); err != nil {
		t.Fatal(err)
	}
	if n := len(readCompacted(t, p)); n != 3 {
		t.Fatalf("%d records, want 3", n)
	}

	e.m.Close()
	e.m = nil
	dir := p.dir
	snaps, err := producerSnapshots(osFS{}, dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, off := range snaps {
		if err := os.Remove(producerSnapPath(dir, off)); err != nil {
			t.Fatal(err)
		}
	}
	e.open()
	p = mustPartition(t, e.m, "t", 0)
	runIdemSteps(t, p, []idemStep{
		{pid: 7, epoch: 0, seq: 0, n: 3, wantBase: 0, wantDup: true},
		{pid: 7, epoch: 0, seq: 3, n: 2, wantBase: 6},
		{pid: 7, epoch: 0, seq: 9, n: 1, wantErr: ErrOutOfOrderSequence},
	})
}

// formatCompactedSegment is the segment behind
// testdata/golden/sealed_v2_compacted.seg: the golden version 1 segment
// (offsets 4096..4113, six batches of three records) as compaction would
// leave it with batch 1 emptied (a producer's last batch), batches 2 and 4
// gone and record 3.1 superseded.
func formatCompactedSegment(tb testing.TB) []byte {
	src := formatGoldenSegment(tb)
	c := &compaction{plan: &compactPlan{}, now: time.UnixMilli(formatTS + 10_000), keys: newKeyMap(1<<20, 64)}
	c.keys.put(keyHash([]byte("k3.1")), 1<<40)
	idx := newSparseIndex(200)
	var out []byte
	maxTs, records := int64(noTimestamp), int64(0)
	for i, h := range src.hdrs {
		b := src.batches[src.pos[i] : src.pos[i]+int64(h.Size())]
		var nb []byte
		switch i {
		case 1:
			nb = c.emptyBatch(b, h)
		case 2, 4:
			continue
		case 3:
			var err error
			if nb, err = c.cleanBatch(b, h); err != nil {
				tb.Fatal(err)
			}
		default:
			nb = b
		}
		nh, err := ParseBatchHeader(nb)
		if err != nil {
			tb.Fatal(err)
		}
		idx.add(nh, src.ft.BaseOffset, int64(len(out)))
		out = append(out, nb...)
		maxTs, records = max(maxTs, nh.MaxTimestamp), records+int64(nh.NumRecords)
	}
	ft := Footer{BaseOffset: src.ft.BaseOffset, LastOffset: src.ft.LastOffset, MaxTimestamp: maxTs,
		RecordCount: records, BatchesLen: int64(len(out)), Compacted: true}
	return append(out, encodeSealTail(idx.entries(), nil, ft)...)
}

// TestGoldenCompactedSegment pins the bytes of a segment compaction
// writes (footer version 2) and checks that it reads back with its gaps.
func TestGoldenCompactedSegment(t *testing.T) {
	obj := formatCompactedSegment(t)
	seg, err := openSealed("compacted", obj)
	if err != nil {
		t.Fatal(err)
	}
	want := checkGolden(t, "sealed_v2_compacted", obj, func(b []byte) string { return formatDescribeTail(b, seg.ft.BatchesLen) })
	if seg, err = openSealed("sealed_v2_compacted", want); err != nil {
		t.Fatal(err)
	}
	var offs []int64
	for off := int64(4096); off <= seg.ft.LastOffset; {
		b, err := seg.read(off, 1)
		if err != nil {
			t.Fatal(err)
		}
		if len(b) == 0 {
			break
		}
		h, _ := ParseBatchHeader(b)
		recs, err := DecodeBatch(b)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range recs {
			offs = append(offs, r.Offset)
		}
		off = h.NextOffset()
	}
	wantOffs := []int64{4096, 4097, 4098, 4105, 4107, 4111, 4112, 4113}
	if !slices.Equal(offs, wantOffs) {
		t.Fatalf("offsets %v, want %v", offs, wantOffs)
	}
}

// retention.ms deletes old segments of a compact,delete topic, never of a
// topic that is only compacted; DeleteRecords works on both.
func TestCompactionAndRetentionPolicies(t *testing.T) {
	e := newCompactEnv(t, -1)
	e.open()
	only := e.compactTopic("only", map[string]string{ConfigRetentionMs: "1000"})
	both := e.compactTopic("both", map[string]string{ConfigRetentionMs: "1000", ConfigCleanupPolicy: "compact,delete"})
	for _, p := range []*Partition{only, both} {
		appendKV(t, p, CodecNone, e.clock.UnixMilli()-5000, kv{key: "a", value: "1"}, kv{key: "b", value: "2"})
		e.rollAndUpload(p)
		appendKV(t, p, CodecNone, e.clock.UnixMilli(), kv{key: "c", value: "3"})
	}
	e.m.RunHousekeeping(context.Background())
	if start, _ := only.Offsets(); start != 0 {
		t.Fatalf("compact-only topic: retention moved the log start to %d", start)
	}
	if start, _ := both.Offsets(); start != 2 {
		t.Fatalf("compact,delete topic: log start %d after retention, want 2", start)
	}
	if start, err := only.DeleteRecordsBefore(context.Background(), 1); err != nil || start != 1 {
		t.Fatalf("DeleteRecords on a compacted topic: %d, %v", start, err)
	}
	mustCompact(t, only)
	if got := recordSet(t, only); !maps.Equal(got, map[int64]string{1: "b=2", 2: "c=3"}) {
		t.Fatalf("after DeleteRecords and compaction: %v", got)
	}
}

// A read that planned on a segment compaction then swapped out and whose
// object is already gone still returns the records, from the new segment.
func TestCompactionReadRacingSwap(t *testing.T) {
	e := newCompactEnv(t, -1)
	e.open()
	p := e.compactTopic("t", nil)
	for i := 0; i < 30; i++ {
		appendKV(t, p, CodecNone, 1_700_000_000_000, kv{key: fmt.Sprintf("k%d", i%3), value: fmt.Sprint(i)})
	}
	e.rollAndUpload(p)
	plan, _, err := p.planRead(0)
	if err != nil {
		t.Fatal(err)
	}
	mustCompact(t, p)
	e.m.deleteReplaced(context.Background())
	if _, _, err := p.readPlanned(context.Background(), plan, 0, 1<<20); !errors.Is(err, ErrSegmentMissing) {
		t.Fatalf("reading the replaced segment: %v, want ErrSegmentMissing", err)
	}
	if !p.wasReplaced(plan.seg) {
		t.Fatal("the planned segment is not marked replaced")
	}
	if got := recordSet(t, p); !maps.Equal(got, map[int64]string{27: "k0=27", 28: "k1=28", 29: "k2=29"}) {
		t.Fatalf("records %v", got)
	}
}

// A compaction run in progress holds up neither appends nor reads of its
// partition: while the run is stopped at the swap, both complete.
func TestCompactionDoesNotBlockAppendOrRead(t *testing.T) {
	e := newCompactEnv(t, -1)
	e.open()
	p := e.compactTopic("t", nil)
	for i := 0; i < 40; i++ {
		appendKV(t, p, CodecNone, 1_700_000_000_000, kv{key: fmt.Sprintf("k%d", i%4), value: fmt.Sprint(i)})
	}
	e.rollAndUpload(p)
	atSwap, release := make(chan struct{}), make(chan struct{})
	e.m.cfg.compactHook = func(step string) {
		if step == "written" {
			close(atSwap)
			<-release
		}
	}
	done := make(chan error, 1)
	go func() { _, err := p.Compact(context.Background()); done <- err }()
	<-atSwap
	off := appendKV(t, p, CodecGzip, 1_700_000_000_001, kv{key: "k0", value: "during"})
	if got := recordSet(t, p); len(got) != 41 || got[off] != "k0=during" {
		t.Fatalf("read during the run: %d records, offset %d is %q", len(got), off, got[off])
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if got := recordSet(t, p); len(got) != 5 || got[off] != "k0=during" {
		t.Fatalf("after the run: %v", got)
	}
}

// The throttle holds a run to its byte rate: n bytes take at least n/rate.
func TestCompactionThrottle(t *testing.T) {
	th := newThrottle(context.Background(), 1<<20)
	start := time.Now()
	for range 4 {
		th.wait(64 << 10)
	}
	if d := time.Since(start); d < 250*time.Millisecond-5*time.Millisecond {
		t.Fatalf("256 KiB at 1 MiB/s took %v, want at least 250ms", d)
	}
	unlimited := newThrottle(context.Background(), 0)
	unlimited.wait(1 << 30) // returns at once: nothing to assert but that it does
}

// TestCompactionOnRealS3 compacts a partition whose segments live in a
// real S3-compatible server (versitygw): the latest record of every key
// reads back, before and after a restart, and S3 holds exactly the
// objects meta records once the replaced ones are deleted.
func TestCompactionOnRealS3(t *testing.T) {
	srv := s3test.Start(t)
	s3, err := objstore.NewS3(context.Background(), srv.Config())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s3.Close() })
	e := newCompactEnv(t, time.Hour)
	e.objects = s3
	e.open()
	p := e.compactTopic("t", nil)
	want := map[int64]string{}
	last := map[string]int64{}
	for i := 0; i < 90; i++ {
		k := fmt.Sprintf("k%d", i%6)
		off := appendKV(t, p, Codec(i%5), 1_700_000_000_000+int64(i), kv{key: k, value: fmt.Sprint(i)})
		if o, ok := last[k]; ok {
			delete(want, o)
		}
		last[k], want[off] = off, k+"="+fmt.Sprint(i)
	}
	e.rollAndUpload(p)
	if res := mustCompact(t, p); !res.Ran || res.SegmentsOut == 0 {
		t.Fatalf("run %+v", res)
	}
	if got := recordSet(t, p); !maps.Equal(got, want) {
		t.Fatalf("after compaction on S3: %v, want %v", got, want)
	}
	// A restart before the replaced objects' delay ran out deletes them
	// (reconcile), and reads the same.
	e.reopen()
	p = mustPartition(t, e.m, "t", 0)
	if got := recordSet(t, p); !maps.Equal(got, want) {
		t.Fatalf("after a restart: %v, want %v", got, want)
	}
	checkObjectsMatchMeta(t, e.m, p)
}
