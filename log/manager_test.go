package log

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/streamhouse/streamhouse/meta"
	"github.com/streamhouse/streamhouse/objstore"
	"github.com/streamhouse/streamhouse/objstore/s3test"
)

// testEnv is one broker's storage: a data dir, a meta DB, an object store.
type testEnv struct {
	t       *testing.T
	dir     string
	meta    *meta.SQLite
	objects objstore.Store
	logs    *syncBuffer
	now     func() time.Time
	m       *Manager
	// cacheBytes is Config.CacheBytes (0: the default).
	cacheBytes int64
	// syncScope is Config.SyncScope ("": the default).
	syncScope SyncScope
	// fs is Config.fs (nil: the operating system's); backlog is
	// Config.MaxUploadBacklog.
	fs      fileSystem
	backlog int64
	// cleaner is Config.Cleaner.
	cleaner CleanerConfig
}

// syncBuffer collects log output from concurrent goroutines.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func newTestEnv(t *testing.T) *testEnv {
	t.Helper()
	dir := t.TempDir()
	e := &testEnv{t: t, dir: dir, objects: objstore.NewMem(), logs: &syncBuffer{}}
	e.openMeta()
	t.Cleanup(func() {
		if e.m != nil {
			e.m.Close()
		}
		e.meta.Close()
	})
	return e
}

func (e *testEnv) openMeta() {
	e.t.Helper()
	db, err := meta.OpenSQLite(context.Background(), filepath.Join(e.dir, "meta.db"))
	if err != nil {
		e.t.Fatal(err)
	}
	e.meta = db
}

func (e *testEnv) open() *Manager {
	e.t.Helper()
	m, err := Open(context.Background(), Config{
		Dir: filepath.Join(e.dir, "segments"), Objects: e.objects, Meta: e.meta,
		Logger:        slog.New(slog.NewTextHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		FlushInterval: time.Hour, RetentionInterval: time.Hour, Now: e.now, CacheBytes: e.cacheBytes,
		SyncScope: e.syncScope, fs: e.fs, MaxUploadBacklog: e.backlog, Cleaner: e.cleaner,
	})
	if err != nil {
		e.t.Fatal(err)
	}
	e.m = m
	return m
}

func (e *testEnv) reopen() *Manager {
	e.t.Helper()
	if err := e.m.Close(); err != nil {
		e.t.Fatal(err)
	}
	e.m = nil
	return e.open()
}

func mustCreate(t *testing.T, m *Manager, name string, parts int32, cfg map[string]string) {
	t.Helper()
	if _, err := m.CreateTopic(context.Background(), name, parts, cfg); err != nil {
		t.Fatal(err)
	}
}

func mustPartition(t *testing.T, m *Manager, name string, idx int32) *Partition {
	t.Helper()
	p, err := m.Partition(name, idx)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// testBatch builds a batch of n records whose values name their sequence
// number, so reads can be checked record by record.
func testBatch(t testing.TB, first, n int, codec Codec) []byte {
	t.Helper()
	recs := make([]Record, n)
	for i := range recs {
		k := first + i
		recs[i] = Record{
			Key: []byte(fmt.Sprintf("k%d", k)), Value: []byte(fmt.Sprintf("value-%d", k)),
			Timestamp: 1_700_000_000_000 + int64(k),
			Headers:   []Header{{Key: "h", Value: []byte(fmt.Sprint(k))}},
		}
	}
	b, err := EncodeBatch(recs, codec, 1_700_000_000_000)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// readAll reads every record from offset from to the high watermark.
func readAll(t *testing.T, p *Partition, from int64) []Record {
	t.Helper()
	var out []Record
	off := from
	for {
		res, err := p.Read(context.Background(), off, 4096)
		if err != nil {
			t.Fatalf("read at %d: %v", off, err)
		}
		if len(res.Batches) == 0 {
			if off != res.HighWatermark {
				t.Fatalf("empty read at %d below high watermark %d", off, res.HighWatermark)
			}
			return out
		}
		recs, err := DecodeBatches(res.Batches, off)
		if err != nil {
			t.Fatal(err)
		}
		if len(recs) == 0 {
			t.Fatalf("read at %d returned batches without records", off)
		}
		out = append(out, recs...)
		off = recs[len(recs)-1].Offset + 1
	}
}

// checkSequence asserts records are offsets from..from+n-1 carrying
// values value-from..value-(from+n-1).
func checkSequence(t *testing.T, recs []Record, from int64, n int) {
	t.Helper()
	if len(recs) != n {
		t.Fatalf("got %d records, want %d", len(recs), n)
	}
	for i, r := range recs {
		want := from + int64(i)
		if r.Offset != want {
			t.Fatalf("record %d has offset %d, want %d", i, r.Offset, want)
		}
		if v := fmt.Sprintf("value-%d", want); string(r.Value) != v {
			t.Fatalf("offset %d value %q, want %q", want, r.Value, v)
		}
		if len(r.Headers) != 1 || string(r.Headers[0].Value) != fmt.Sprint(want) {
			t.Fatalf("offset %d headers %+v", want, r.Headers)
		}
		if r.Timestamp != 1_700_000_000_000+want {
			t.Fatalf("offset %d timestamp %d", want, r.Timestamp)
		}
	}
}

func appendN(t *testing.T, p *Partition, first, batches, perBatch int, sync bool) {
	t.Helper()
	for i := 0; i < batches; i++ {
		res, err := p.Append(context.Background(), testBatch(t, first+i*perBatch, perBatch, CodecNone), AppendOptions{Sync: sync})
		if err != nil {
			t.Fatal(err)
		}
		if want := int64(first + i*perBatch); res.BaseOffset != want || res.LastOffset != want+int64(perBatch)-1 {
			t.Fatalf("append %d landed at %d..%d, want %d..", i, res.BaseOffset, res.LastOffset, want)
		}
	}
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func waitUploaded(t *testing.T, m *Manager, p *Partition) {
	t.Helper()
	waitFor(t, "uploads", func() bool { return allUploaded(p) })
}

// allUploaded reports whether every segment but the active one is remote.
func allUploaded(p *Partition) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, s := range p.segs[:len(p.segs)-1] {
		if !s.remote {
			return false
		}
	}
	return true
}

func TestAppendReadEveryCodec(t *testing.T) {
	e := newTestEnv(t)
	m := e.open()
	mustCreate(t, m, "t", 1, nil)
	p := mustPartition(t, m, "t", 0)
	for i, c := range []Codec{CodecNone, CodecGzip, CodecSnappy, CodecLZ4, CodecZstd} {
		if _, err := p.Append(context.Background(), testBatch(t, i*10, 10, c), AppendOptions{Sync: true}); err != nil {
			t.Fatalf("%v: %v", c, err)
		}
	}
	checkSequence(t, readAll(t, p, 0), 0, 50)
	checkSequence(t, readAll(t, p, 23), 23, 27)
	if ls, hwm := p.Offsets(); ls != 0 || hwm != 50 {
		t.Fatalf("offsets %d %d", ls, hwm)
	}
}

func TestReadOutOfRange(t *testing.T) {
	e := newTestEnv(t)
	m := e.open()
	mustCreate(t, m, "t", 1, nil)
	p := mustPartition(t, m, "t", 0)
	appendN(t, p, 0, 1, 5, false)
	if _, err := p.Read(context.Background(), 6, 100); !errors.Is(err, ErrOffsetOutOfRange) {
		t.Fatalf("read past hwm: %v", err)
	}
	res, err := p.Read(context.Background(), 5, 100)
	if err != nil || len(res.Batches) != 0 || res.HighWatermark != 5 {
		t.Fatalf("read at hwm: %+v %v", res, err)
	}
}

func TestBadBatchChangesNothing(t *testing.T) {
	e := newTestEnv(t)
	m := e.open()
	mustCreate(t, m, "t", 1, map[string]string{ConfigMaxMessageBytes: "2000"})
	p := mustPartition(t, m, "t", 0)
	appendN(t, p, 0, 1, 3, true)
	good := testBatch(t, 3, 2, CodecNone)
	badCRC := append([]byte(nil), good...)
	badCRC[len(badCRC)-1] ^= 0xff
	big := make([]Record, 30)
	for i := range big {
		big[i] = Record{Value: bytes.Repeat([]byte("x"), 100)}
	}
	tooBig, _ := EncodeBatch(big, CodecNone, 1)
	cases := []struct {
		name string
		data []byte
		want error
	}{
		{"bad crc", badCRC, ErrCorruptBatch},
		{"truncated", good[:len(good)-3], ErrCorruptBatch},
		{"good then bad", append(append([]byte(nil), good...), badCRC...), ErrCorruptBatch},
		{"empty", nil, ErrInvalidBatch},
		{"too large", tooBig, ErrMessageTooLarge},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if _, err := p.Append(context.Background(), c.data, AppendOptions{Sync: true}); !errors.Is(err, c.want) {
				t.Fatalf("got %v, want %v", err, c.want)
			}
			checkSequence(t, readAll(t, p, 0), 0, 3)
		})
	}
	appendN(t, p, 3, 1, 2, true) // the partition still takes good batches
}

func TestRollUploadReadRemoteAndRestart(t *testing.T) {
	e := newTestEnv(t)
	m := e.open()
	mustCreate(t, m, "t", 2, map[string]string{ConfigSegmentBytes: "2048"})
	p := mustPartition(t, m, "t", 1)
	appendN(t, p, 0, 40, 5, true)
	waitUploaded(t, m, p)
	segs, err := e.meta.ListSegments(context.Background(), p.topicID, 1)
	if err != nil || len(segs) < 3 {
		t.Fatalf("meta segments %d %v", len(segs), err)
	}
	objs, _ := e.objects.List(context.Background(), objectPrefix(p.topicID, 1))
	if len(objs) != len(segs) {
		t.Fatalf("%d objects for %d segments", len(objs), len(segs))
	}
	local, _ := localSegmentFiles(osFS{}, p.dir)
	if len(local) != 1 {
		t.Fatalf("local files after upload: %v", local)
	}
	checkSequence(t, readAll(t, p, 0), 0, 200)
	checkSequence(t, readAll(t, p, 117), 117, 83)

	m = e.reopen()
	p = mustPartition(t, m, "t", 1)
	checkSequence(t, readAll(t, p, 0), 0, 200)
	appendN(t, p, 200, 2, 5, true)
	checkSequence(t, readAll(t, p, 0), 0, 210)
}

func TestReopenUploadsSealedLeftovers(t *testing.T) {
	e := newTestEnv(t)
	m := e.open()
	mustCreate(t, m, "t", 1, nil)
	p := mustPartition(t, m, "t", 0)
	appendN(t, p, 0, 3, 4, true)
	stopBackground(m) // so the sealed segment stays local
	if err := p.Roll(); err != nil {
		t.Fatal(err)
	}
	closeWithoutUploads(e, m)

	m = e.open()
	p = mustPartition(t, m, "t", 0)
	waitUploaded(t, m, p)
	checkSequence(t, readAll(t, p, 0), 0, 12)
	if segs, _ := e.meta.ListSegments(context.Background(), p.topicID, 0); len(segs) != 1 {
		t.Fatalf("meta segments: %+v", segs)
	}
}

func TestReconcile(t *testing.T) {
	e := newTestEnv(t)
	m := e.open()
	mustCreate(t, m, "t", 1, map[string]string{ConfigSegmentBytes: "1024"})
	p := mustPartition(t, m, "t", 0)
	appendN(t, p, 0, 30, 4, true)
	waitUploaded(t, m, p)
	segs, _ := e.meta.ListSegments(context.Background(), p.topicID, 0)
	if len(segs) < 3 {
		t.Fatalf("want >= 3 segments, got %d", len(segs))
	}
	m.Close()
	e.m = nil
	// Forget the last uploaded segment in meta (crash between upload and
	// record), and lose the first one's object.
	last := segs[len(segs)-1]
	if err := e.meta.DeleteSegments(context.Background(), p.topicID, 0, []int64{last.BaseOffset}, 0); err != nil {
		t.Fatal(err)
	}
	if err := e.objects.Delete(context.Background(), segs[0].ObjectKey); err != nil {
		t.Fatal(err)
	}
	m = e.open()
	logs := e.logs.String()
	if !strings.Contains(logs, "adopted uploaded segment") || !strings.Contains(logs, "missing from the object store") {
		t.Fatalf("reconcile was silent:\n%s", logs)
	}
	after, _ := e.meta.ListSegments(context.Background(), p.topicID, 0)
	if len(after) != len(segs) {
		t.Fatalf("meta has %d segments after adoption, want %d", len(after), len(segs))
	}
	p = mustPartition(t, m, "t", 0)
	if _, err := p.Read(context.Background(), 0, 100); !errors.Is(err, ErrSegmentMissing) {
		t.Fatalf("read of lost segment: %v", err)
	}
	checkSequence(t, readAll(t, p, segs[1].BaseOffset), segs[1].BaseOffset, 120-int(segs[1].BaseOffset))
}

func TestRetention(t *testing.T) {
	now := time.UnixMilli(1_700_000_010_000) // records are at most 10 s old
	var clockMu sync.Mutex
	e := newTestEnv(t)
	e.now = func() time.Time { clockMu.Lock(); defer clockMu.Unlock(); return now }
	m := e.open()
	ctx := context.Background()
	mustCreate(t, m, "bytes", 1, map[string]string{ConfigSegmentBytes: "1024", ConfigRetentionBytes: "3000"})
	mustCreate(t, m, "time", 1, map[string]string{ConfigSegmentBytes: "1024", ConfigRetentionMs: "60000"})
	pb := mustPartition(t, m, "bytes", 0)
	pt := mustPartition(t, m, "time", 0)
	appendN(t, pb, 0, 40, 4, true)
	appendN(t, pt, 0, 40, 4, true)
	waitUploaded(t, m, pb)
	waitUploaded(t, m, pt)

	m.RunHousekeeping(ctx)
	ls, hwm := pb.Offsets()
	if ls == 0 || hwm != 160 {
		t.Fatalf("bytes retention: log start %d hwm %d", ls, hwm)
	}
	var total int64
	pb.mu.Lock()
	for _, s := range pb.segs[1:] {
		total += s.size
	}
	pb.mu.Unlock()
	if total >= 3000 {
		t.Fatalf("retention kept %d bytes beyond what retention.bytes needs", total)
	}
	if _, err := pb.Read(ctx, 0, 100); !errors.Is(err, ErrOffsetOutOfRange) {
		t.Fatalf("read below log start: %v", err)
	}
	checkSequence(t, readAll(t, pb, ls), ls, int(160-ls))
	if part, _ := e.meta.GetPartition(ctx, pb.topicID, 0); part.LogStartOffset != ls {
		t.Fatalf("meta log start %d, partition %d", part.LogStartOffset, ls)
	}
	objs, _ := e.objects.List(ctx, objectPrefix(pb.topicID, 0))
	segs, _ := e.meta.ListSegments(ctx, pb.topicID, 0)
	if len(objs) != len(segs) {
		t.Fatalf("%d objects left for %d segments", len(objs), len(segs))
	}

	// Records are stamped 1_700_000_000_000+i, at most 10 s before now:
	// retention.ms of 60 s keeps them all.
	if ls, _ := pt.Offsets(); ls != 0 {
		t.Fatalf("time retention deleted young segments: log start %d", ls)
	}
	clockMu.Lock()
	now = now.Add(90 * time.Second) // now every sealed segment is expired
	clockMu.Unlock()
	m.RunHousekeeping(ctx)
	pt.mu.Lock()
	active := pt.segs[len(pt.segs)-1].base
	nsegs := len(pt.segs)
	pt.mu.Unlock()
	if ls, _ := pt.Offsets(); ls != active || nsegs != 1 {
		t.Fatalf("time retention: log start %d, active base %d, %d segments", ls, active, nsegs)
	}
}

func TestGroupCommit(t *testing.T) {
	e := newTestEnv(t)
	m := e.open()
	mustCreate(t, m, "t", 1, nil)
	p := mustPartition(t, m, "t", 0)
	const writers, each = 8, 25
	var wg sync.WaitGroup
	seen := make(chan int64, writers*each)
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < each; i++ {
				res, err := p.Append(context.Background(), testBatch(t, 0, 1, CodecNone), AppendOptions{Sync: true})
				if err != nil {
					t.Error(err)
					return
				}
				seen <- res.BaseOffset
			}
		}()
	}
	wg.Wait()
	close(seen)
	got := map[int64]bool{}
	for o := range seen {
		if got[o] {
			t.Fatalf("offset %d assigned twice", o)
		}
		got[o] = true
	}
	for o := int64(0); o < writers*each; o++ {
		if !got[o] {
			t.Fatalf("offset %d never assigned", o)
		}
	}
	if _, hwm := p.Offsets(); hwm != writers*each {
		t.Fatalf("hwm %d", hwm)
	}
}

func TestStickyWriteError(t *testing.T) {
	e := newTestEnv(t)
	m := e.open()
	mustCreate(t, m, "t", 1, nil)
	p := mustPartition(t, m, "t", 0)
	appendN(t, p, 0, 1, 1, true)
	p.fileMu.Lock()
	p.segs[len(p.segs)-1].file.Close() // the disk "fails"
	p.fileMu.Unlock()
	_, err1 := p.Append(context.Background(), testBatch(t, 1, 1, CodecNone), AppendOptions{Sync: true})
	if err1 == nil {
		t.Fatal("append to a failed segment succeeded")
	}
	_, err2 := p.Append(context.Background(), testBatch(t, 1, 1, CodecNone), AppendOptions{Sync: true})
	if err2 == nil || err2.Error() != err1.Error() {
		t.Fatalf("write error is not sticky: %v then %v", err1, err2)
	}
	p.fileMu.Lock()
	p.segs[len(p.segs)-1].file = nil
	p.fileMu.Unlock()
}

func TestDirLocked(t *testing.T) {
	e := newTestEnv(t)
	e.open()
	_, err := Open(context.Background(), Config{Dir: filepath.Join(e.dir, "segments"), Objects: e.objects, Meta: e.meta})
	if !errors.Is(err, ErrDirLocked) || !strings.Contains(err.Error(), "in use by another broker") {
		t.Fatalf("second open: %v", err)
	}
}

func TestWaitWakesOnAppend(t *testing.T) {
	e := newTestEnv(t)
	m := e.open()
	mustCreate(t, m, "t", 1, nil)
	p := mustPartition(t, m, "t", 0)
	ch := p.Wait(0)
	select {
	case <-ch:
		t.Fatal("woke before any append")
	default:
	}
	appendN(t, p, 0, 1, 1, false)
	select {
	case <-ch:
	case <-time.After(10 * time.Second):
		t.Fatal("append did not wake the waiter")
	}
	select {
	case <-p.Wait(0):
	default:
		t.Fatal("Wait below the high watermark must not block")
	}
}

func TestOffsetForTimestamp(t *testing.T) {
	e := newTestEnv(t)
	m := e.open()
	mustCreate(t, m, "t", 1, map[string]string{ConfigSegmentBytes: "1024"})
	p := mustPartition(t, m, "t", 0)
	appendN(t, p, 0, 30, 4, true)
	waitUploaded(t, m, p)
	ctx := context.Background()
	for _, want := range []int64{0, 1, 57, 118, 119} {
		off, ts, found, err := p.OffsetForTimestamp(ctx, 1_700_000_000_000+want)
		if err != nil || !found || off != want || ts != 1_700_000_000_000+want {
			t.Fatalf("ts of %d: off %d ts %d found %v err %v", want, off, ts, found, err)
		}
	}
	if _, _, found, err := p.OffsetForTimestamp(ctx, 1_800_000_000_000); found || err != nil {
		t.Fatalf("future timestamp found=%v err=%v", found, err)
	}
}

// TestMaxTimestamp finds the record with the largest timestamp in a
// segment that has been uploaded (read through the cache), and answers
// not-found on an empty partition.
func TestMaxTimestamp(t *testing.T) {
	e := newTestEnv(t)
	m := e.open()
	mustCreate(t, m, "t", 1, map[string]string{ConfigSegmentBytes: "1024"})
	p := mustPartition(t, m, "t", 0)
	ctx := context.Background()
	if _, _, found, err := p.MaxTimestamp(ctx); found || err != nil {
		t.Fatalf("empty partition: found=%v err=%v", found, err)
	}
	// Offsets 0-3 carry timestamps ...+500 to ...+503; everything after is
	// older, and fills enough segments that the first one is uploaded.
	if _, err := p.Append(ctx, testBatch(t, 500, 4, CodecNone), AppendOptions{Sync: true}); err != nil {
		t.Fatal(err)
	}
	for i := range 30 {
		if _, err := p.Append(ctx, testBatch(t, i*4, 4, CodecLZ4), AppendOptions{Sync: true}); err != nil {
			t.Fatal(err)
		}
	}
	waitUploaded(t, m, p)
	off, ts, found, err := p.MaxTimestamp(ctx)
	if err != nil || !found || off != 3 || ts != 1_700_000_000_503 {
		t.Fatalf("max timestamp: off %d ts %d found %v err %v, want offset 3", off, ts, found, err)
	}
}

func TestLogAppendTime(t *testing.T) {
	now := time.UnixMilli(1_750_000_000_000)
	e := newTestEnv(t)
	e.now = func() time.Time { return now }
	m := e.open()
	mustCreate(t, m, "t", 1, map[string]string{ConfigTimestampType: "LogAppendTime"})
	p := mustPartition(t, m, "t", 0)
	res, err := p.Append(context.Background(), testBatch(t, 0, 3, CodecLZ4), AppendOptions{Sync: true})
	if err != nil || res.LogAppendTime != now.UnixMilli() {
		t.Fatalf("%+v %v", res, err)
	}
	for _, r := range readAll(t, p, 0) {
		if r.Timestamp != now.UnixMilli() {
			t.Fatalf("record timestamp %d, want log append time", r.Timestamp)
		}
	}
}

func TestTopicAdmin(t *testing.T) {
	e := newTestEnv(t)
	m := e.open()
	ctx := context.Background()
	for _, c := range []struct {
		name  string
		parts int32
		cfg   map[string]string
		want  error
	}{
		{"bad name", 1, nil, ErrInvalidTopic},
		{"ok", 0, nil, meta.ErrInvalid},
		{"ok", 1, map[string]string{"nope": "1"}, ErrInvalidConfig},
		{"ok", 1, map[string]string{ConfigRetentionMs: "soon"}, ErrInvalidConfig},
	} {
		if _, err := m.CreateTopic(ctx, c.name, c.parts, c.cfg); !errors.Is(err, c.want) {
			t.Fatalf("%s/%d/%v: %v, want %v", c.name, c.parts, c.cfg, err, c.want)
		}
	}
	mustCreate(t, m, "ok", 2, nil)
	if _, err := m.CreateTopic(ctx, "ok", 1, nil); !errors.Is(err, ErrTopicExists) {
		t.Fatalf("duplicate: %v", err)
	}
	p := mustPartition(t, m, "ok", 0)
	appendN(t, p, 0, 1, 1, true)
	if err := p.Roll(); err != nil {
		t.Fatal(err)
	}
	waitUploaded(t, m, p)
	id := p.topicID
	if err := m.DeleteTopic(ctx, "ok"); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Partition("ok", 0); !errors.Is(err, ErrUnknownTopic) {
		t.Fatalf("deleted topic still open: %v", err)
	}
	waitFor(t, "objects deleted", func() bool {
		objs, _ := e.objects.List(ctx, "topics/"+id+"/")
		return len(objs) == 0
	})
	if _, err := os.Stat(filepath.Join(e.dir, "segments", id)); !os.IsNotExist(err) {
		t.Fatalf("local files of deleted topic: %v", err)
	}
	if err := m.DeleteTopic(ctx, "ok"); !errors.Is(err, ErrUnknownTopic) {
		t.Fatalf("delete twice: %v", err)
	}
}

// TestReopenCorruptActiveSegment damages the active segment of a closed
// broker and checks that reopening keeps exactly the intact prefix, says
// so in the log, and appends after it.
func TestReopenCorruptActiveSegment(t *testing.T) {
	const batches, per = 10, 3
	cases := []struct {
		name   string
		damage func(b []byte, starts []int) []byte
		keep   int // batches that must survive
	}{
		{"torn last frame", func(b []byte, s []int) []byte { return b[:s[9]+20] }, 9},
		{"bad crc in batch 6", func(b []byte, s []int) []byte { b[s[6]+70] ^= 0x55; return b }, 6},
		{"zeroed sector", func(b []byte, s []int) []byte {
			copy(b[s[4]:s[4]+64], make([]byte, 64))
			return b
		}, 4},
		{"bad length in batch 2", func(b []byte, s []int) []byte { b[s[2]+8] = 0x7f; return b }, 2},
		{"garbage appended", func(b []byte, s []int) []byte { return append(b, "garbage!garbage!"...) }, 10},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := newTestEnv(t)
			m := e.open()
			mustCreate(t, m, "t", 1, nil)
			p := mustPartition(t, m, "t", 0)
			appendN(t, p, 0, batches, per, true)
			path := p.segs[len(p.segs)-1].path
			m.Close()
			e.m = nil
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			var starts []int
			for pos := 0; pos < len(data); {
				starts = append(starts, pos)
				h, err := ParseBatchHeader(data[pos:])
				if err != nil {
					t.Fatal(err)
				}
				pos += h.Size()
			}
			intact := append([]byte(nil), data[:starts[min(c.keep, len(starts)-1)]]...)
			if c.keep == batches {
				intact = append([]byte(nil), data...)
			}
			if err := os.WriteFile(path, c.damage(data, starts), 0o644); err != nil {
				t.Fatal(err)
			}
			m = e.open()
			p = mustPartition(t, m, "t", 0)
			checkSequence(t, readAll(t, p, 0), 0, c.keep*per)
			after, _ := os.ReadFile(path)
			if !bytes.Equal(after, intact) {
				t.Fatalf("file after recovery is %d bytes, intact prefix is %d", len(after), len(intact))
			}
			if c.keep < batches || c.name == "garbage appended" {
				if !strings.Contains(e.logs.String(), "level=WARN") {
					t.Fatalf("truncation was not logged:\n%s", e.logs.String())
				}
			}
			appendN(t, p, c.keep*per, 1, per, true)
		})
	}
}

// TestReopenRebuildsBadIndex damages the index of a sealed segment that
// is still local (not uploaded) and checks that reopening rebuilds it.
func TestReopenRebuildsBadIndex(t *testing.T) {
	e := newTestEnv(t)
	m := e.open()
	mustCreate(t, m, "t", 1, nil)
	p := mustPartition(t, m, "t", 0)
	for i := 0; i < 40; i++ { // many batches: several index entries
		appendN(t, p, i*5, 1, 5, true)
	}
	stopBackground(m) // so the sealed segment stays local
	seg := p.segs[0]
	if err := p.Roll(); err != nil {
		t.Fatal(err)
	}
	closeWithoutUploads(e, m)
	data, err := os.ReadFile(seg.path)
	if err != nil {
		t.Fatal(err)
	}
	data[seg.size+3] ^= 0xff // inside the first index entry
	if err := os.WriteFile(seg.path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	m = e.open()
	if !strings.Contains(e.logs.String(), "rebuilding it from the batches") {
		t.Fatalf("rebuild not logged:\n%s", e.logs.String())
	}
	p = mustPartition(t, m, "t", 0)
	waitUploaded(t, m, p)
	checkSequence(t, readAll(t, p, 0), 0, 200)
	checkSequence(t, readAll(t, p, 77), 77, 123)
}

// TestOnRealS3 runs roll, upload, read from the store, restart and
// retention against a real S3-compatible server (versitygw).
func TestOnRealS3(t *testing.T) {
	srv := s3test.Start(t)
	s3, err := objstore.NewS3(context.Background(), srv.Config())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s3.Close() })
	e := newTestEnv(t)
	e.objects = s3
	m := e.open()
	mustCreate(t, m, "t", 1, map[string]string{ConfigSegmentBytes: "2048", ConfigRetentionBytes: "4000"})
	p := mustPartition(t, m, "t", 0)
	appendN(t, p, 0, 30, 5, true)
	waitUploaded(t, m, p)
	checkSequence(t, readAll(t, p, 0), 0, 150)
	m = e.reopen()
	p = mustPartition(t, m, "t", 0)
	checkSequence(t, readAll(t, p, 0), 0, 150)
	m.RunHousekeeping(context.Background())
	ls, _ := p.Offsets()
	if ls == 0 {
		t.Fatal("retention did not advance the log start")
	}
	checkSequence(t, readAll(t, p, ls), ls, int(150-ls))
	objs, err := s3.List(context.Background(), objectPrefix(p.topicID, 0))
	if err != nil {
		t.Fatal(err)
	}
	segs, _ := e.meta.ListSegments(context.Background(), p.topicID, 0)
	if len(objs) != len(segs) {
		t.Fatalf("%d objects in S3 for %d segments in meta", len(objs), len(segs))
	}
}

// stopBackground stops the uploader and housekeeper of m, leaving its
// partitions open, so that a test can seal segments that stay local.
func stopBackground(m *Manager) {
	m.mu.Lock()
	m.closed = true
	m.mu.Unlock()
	close(m.stop)
	m.wg.Wait()
}

// closeWithoutUploads finishes what stopBackground began: it closes the
// partitions and releases the directory lock, as a crash would leave them.
func closeWithoutUploads(e *testEnv, m *Manager) {
	m.closePartitions()
	m.lock.release()
	e.m = nil
}
