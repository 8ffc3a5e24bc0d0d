package log

// Tests for the ways an acknowledged record could be lost or a partition
// hung that issue #19 found, one per finding, each failing on the code
// before its fix.

import (
	"context"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/streamhouse/streamhouse/meta"
	"github.com/streamhouse/streamhouse/objstore"
)

// hookEnv is a testEnv whose file system and object store have hooks.
func hookEnv(t *testing.T) (*testEnv, *hookFS, *hookStore) {
	t.Helper()
	e := newTestEnv(t)
	fs := &hookFS{}
	st := &hookStore{Store: e.objects}
	e.fs, e.objects, e.syncScope = fs, st, SyncFile
	return e, fs, st
}

var errStoreDown = errors.New("test: object store down")

// openOne opens e's Manager with one topic "t" of one partition.
func openOne(t *testing.T, e *testEnv) (*Manager, *Partition) {
	t.Helper()
	m := e.open()
	mustCreate(t, m, "t", 1, nil)
	return m, mustPartition(t, m, "t", 0)
}

// TestRecoveryFsyncsIntactActiveSegment (finding 1): after a kill -9 the
// active segment's bytes may be in the page cache only. Recovery must
// fsync them even when it truncates nothing, because after a restart an
// idempotent retry is answered from them as a duplicate, and the group
// commit counts them as synced.
func TestRecoveryFsyncsIntactActiveSegment(t *testing.T) {
	e, fs, _ := hookEnv(t)
	m := e.open()
	mustCreate(t, m, "t", 1, nil)
	appendN(t, mustPartition(t, m, "t", 0), 0, 3, 2, false)
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	e.m = nil
	before := len(fs.log())
	m = e.open()
	p := mustPartition(t, m, "t", 0)
	active := p.segs[len(p.segs)-1].path
	synced := false
	for _, op := range fs.log()[before:] {
		synced = synced || op == "sync "+active
	}
	if !synced {
		t.Fatalf("recovery did not fsync the intact active segment %s; ops: %v", active, fs.log()[before:])
	}
	checkSequence(t, readAll(t, p, 0), 0, 6)
}

// TestSealFsyncsBatchesBeforeFooter (finding 2): the footer must never
// reach the disk before the batches it vouches for.
func TestSealFsyncsBatchesBeforeFooter(t *testing.T) {
	e, fs, st := hookEnv(t)
	st.setPut(func(string) error { return errStoreDown })
	_, p := openOne(t, e)
	appendN(t, p, 0, 2, 2, false) // acks=1: not fsynced
	seg := p.segs[0].path
	before := len(fs.log())
	if err := p.Roll(); err != nil {
		t.Fatal(err)
	}
	var ops []string
	for _, op := range fs.log()[before:] {
		if strings.HasSuffix(op, seg) {
			ops = append(ops, strings.Fields(op)[0])
		}
	}
	if got := strings.Join(ops, ","); got != "sync,write,sync" {
		t.Fatalf("sealing %s did %s, want sync,write,sync (batches durable before the footer is written)", seg, got)
	}
}

// TestTornSealRecoveredNotTrusted (finding 2): a sealed local file whose
// footer is intact but whose batches are not (a power loss kept the
// footer's page and lost an unsynced batch) is recovered by scanning: the
// intact prefix stays readable, and it is uploaded only as a valid
// segment.
func TestTornSealRecoveredNotTrusted(t *testing.T) {
	e, _, st := hookEnv(t)
	st.setPut(func(string) error { return errStoreDown })
	m, p := openOne(t, e)
	appendN(t, p, 0, 3, 2, true)  // acked: offsets 0..5
	appendN(t, p, 6, 2, 2, false) // acks=1: offsets 6..9
	seg := p.segs[0]
	p.mu.Lock()
	lostAt := batchPosition(t, seg, 6)
	p.mu.Unlock()
	if err := p.Roll(); err != nil {
		t.Fatal(err)
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	e.m = nil
	// The power loss: the unsynced batch at offset 6 is zeros on disk.
	zeroRange(t, seg.path, int64(lostAt), batchHeaderLen)

	st.setPut(nil)
	m = e.open()
	p = mustPartition(t, m, "t", 0)
	waitUploaded(t, m, p)
	checkSequence(t, readAll(t, p, 0), 0, 6)
	appendN(t, p, 6, 1, 2, true) // the log continues where the intact records end
	checkSequence(t, readAll(t, p, 0), 0, 8)
	if !strings.Contains(e.logs.String(), "do not match its footer") {
		t.Errorf("recovery did not report the torn seal:\n%s", e.logs.String())
	}
}

// batchPosition returns the byte position of the batch holding offset in
// a local segment (p.mu held).
func batchPosition(t *testing.T, s *segment, offset int64) uint32 {
	t.Helper()
	var hdr [batchHeaderLen]byte
	for pos := int64(0); pos < s.size; {
		if _, err := s.file.ReadAt(hdr[:], pos); err != nil {
			t.Fatal(err)
		}
		h, err := ParseBatchHeader(hdr[:])
		if err != nil {
			t.Fatal(err)
		}
		if h.BaseOffset == offset {
			return uint32(pos)
		}
		pos += int64(h.Size())
	}
	t.Fatalf("no batch at offset %d", offset)
	return 0
}

// zeroRange overwrites n bytes of the file at path from off with zeros.
func zeroRange(t *testing.T, path string, off int64, n int) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt(make([]byte, n), off); err != nil {
		t.Fatal(err)
	}
}

// TestUploadVerifiesSealedFile (finding 2): a sealed file damaged after
// sealing is not uploaded, and its local copy is not removed.
func TestUploadVerifiesSealedFile(t *testing.T) {
	e, _, st := hookEnv(t)
	var puts []string
	st.setPut(func(string) error { return errStoreDown })
	_, p := openOne(t, e)
	appendN(t, p, 0, 3, 2, true)
	seg := p.segs[0]
	if err := p.Roll(); err != nil {
		t.Fatal(err)
	}
	p.mu.Lock()
	at := batchPosition(t, seg, 2)
	p.mu.Unlock()
	zeroRange(t, seg.path, int64(at)+offCRC, 4) // a bad CRC in the middle
	st.setPut(func(key string) error {
		puts = append(puts, key)
		return nil
	})
	waitFor(t, "the upload to give up on the damaged segment", func() bool {
		return strings.Contains(e.logs.String(), "failed verification")
	})
	if len(puts) != 0 {
		t.Fatalf("damaged segment was uploaded: %v", puts)
	}
	if _, err := os.Stat(seg.path); err != nil {
		t.Fatalf("local copy of the damaged segment is gone: %v", err)
	}
}

// TestRollDoesNotAckPastFailedFsync (finding 3): the kernel reports a
// writeback error to one fsync of a file only. When the group commit's
// fsync gets it, a roll's fsync of the same file running meanwhile
// succeeds; the roll must not then mark everything synced and wake the
// appends waiting for that failed fsync.
func TestRollDoesNotAckPastFailedFsync(t *testing.T) {
	e, fs, _ := hookEnv(t)
	_, p := openOne(t, e)
	active := p.segs[0].path
	entered, release := make(chan struct{}), make(chan struct{})
	first := true
	fs.mu.Lock()
	fs.onSync = func(path string) error {
		if path != active || !first {
			return nil
		}
		first = false
		close(entered)
		<-release
		return syscall.EIO // this fsync is the one told of the lost write
	}
	fs.mu.Unlock()

	ctx := context.Background()
	opts := AppendOptions{Sync: true, DeferSync: true}
	a, err := p.Append(ctx, testBatch(t, 0, 1, CodecNone), opts)
	if err != nil {
		t.Fatal(err)
	}
	b, err := p.Append(ctx, testBatch(t, 1, 1, CodecNone), opts)
	if err != nil {
		t.Fatal(err)
	}
	aDone := make(chan error, 1)
	go func() { aDone <- a.Durable() }()
	<-entered
	if err := p.Roll(); err != nil { // its fsyncs of the same file succeed
		t.Fatal(err)
	}
	bDone := make(chan error, 1)
	go func() { bDone <- b.Durable() }()
	close(release)
	if err := <-aDone; err == nil {
		t.Error("the append whose fsync failed was acknowledged")
	}
	if err := <-bDone; err == nil {
		t.Error("an append waiting on the failed fsync was acknowledged after a roll")
	}
	if _, err := p.Append(ctx, testBatch(t, 2, 1, CodecNone), AppendOptions{Sync: true}); err == nil {
		t.Error("the partition still takes appends after a failed fsync")
	}
}

// TestCorruptLengthFailsReads (finding 4): a batch length that gives a
// size of 0 or runs past the segment must fail every local read with a
// CorruptionError instead of looping forever under the file lock.
func TestCorruptLengthFailsReads(t *testing.T) {
	for _, tc := range []struct {
		name   string
		length int32
	}{
		{"size zero", -batchLengthOverhead},
		{"negative", -1 << 20},
		{"below minimum", minBatchLength - 1},
		{"past the end", 1 << 30},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newTestEnv(t)
			m := e.open()
			mustCreate(t, m, "t", 1, nil)
			p := mustPartition(t, m, "t", 0)
			appendN(t, p, 0, 4, 1, true)
			p.mu.Lock()
			seg := p.segs[0]
			at := batchPosition(t, seg, 1)
			p.mu.Unlock()
			var b [4]byte
			binary.BigEndian.PutUint32(b[:], uint32(tc.length))
			f, err := os.OpenFile(seg.path, os.O_RDWR, 0)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := f.WriteAt(b[:], int64(at)+offLength); err != nil {
				t.Fatal(err)
			}
			f.Close()
			ctx := context.Background()
			reads := map[string]func() error{
				"Read": func() error { _, err := p.Read(ctx, 3, 1<<20); return err },
				"ReadRegion": func() error {
					res, err := p.ReadRegion(ctx, 3, 1<<20, 1)
					res.Release()
					return err
				},
				"OffsetForTimestamp": func() error { _, _, _, err := p.OffsetForTimestamp(ctx, 1_700_000_000_003); return err },
			}
			for name, read := range reads {
				done := make(chan error, 1)
				go func() { done <- read() }()
				select {
				case err := <-done:
					var ce *CorruptionError
					if !errors.As(err, &ce) || ce.Offset != int64(at) {
						t.Errorf("%s: err %v, want a CorruptionError at byte %d", name, err, at)
					}
				case <-time.After(10 * time.Second):
					t.Fatalf("%s did not return: a frame walk loops on the corrupt length", name)
				}
			}
		})
	}
}

// TestUploadBacklogBound (finding 5): with the object store down, appends
// stop at the backlog bound with a retriable error that writes nothing,
// and resume by themselves once the store is back.
func TestUploadBacklogBound(t *testing.T) {
	e, _, st := hookEnv(t)
	st.setPut(func(string) error { return errStoreDown })
	e.backlog = 3000
	m := e.open()
	mustCreate(t, m, "t", 1, map[string]string{ConfigSegmentBytes: "1024"})
	p := mustPartition(t, m, "t", 0)
	ctx := context.Background()
	next := 0
	var refused error
	for i := 0; i < 100 && refused == nil; i++ {
		_, err := p.Append(ctx, testBatch(t, next, 4, CodecNone), AppendOptions{Sync: true})
		if err != nil {
			refused = err
			break
		}
		next += 4
	}
	if !errors.Is(refused, ErrUploadBacklog) {
		t.Fatalf("appends with the store down: err %v, want ErrUploadBacklog", refused)
	}
	_, hwm := p.Offsets()
	if hwm != int64(next) {
		t.Fatalf("a refused append moved the high watermark to %d, want %d", hwm, next)
	}
	if got := m.room.backlog.Load(); got > e.backlog+1024+footerLen {
		t.Fatalf("backlog %d passed the bound %d by more than one segment", got, e.backlog)
	}
	st.setPut(nil)
	waitFor(t, "the backlog to drain", func() bool { return m.room.backlog.Load() == 0 })
	appendN(t, p, next, 1, 4, true)
	checkSequence(t, readAll(t, p, 0), 0, next+4)
}

// TestDiskFullIsNotSticky (finding 5): ENOSPC on a segment write fails
// that append, writes nothing, leaves the producer state as it was, and
// the next append after space comes back succeeds.
func TestDiskFullIsNotSticky(t *testing.T) {
	e, fs, _ := hookEnv(t)
	_, p := openOne(t, e)
	ctx := context.Background()
	if _, err := p.Append(ctx, idemBatch(t, 7, 0, 0, 2), AppendOptions{Sync: true}); err != nil {
		t.Fatal(err)
	}
	full := func(path string, _ int64, _ int) error {
		if isSegmentFile(path) {
			return syscall.ENOSPC
		}
		return nil
	}
	fs.mu.Lock()
	fs.onWrite = full
	fs.mu.Unlock()
	_, err := p.Append(ctx, idemBatch(t, 7, 0, 2, 2), AppendOptions{Sync: true})
	if !errors.Is(err, ErrDiskFull) {
		t.Fatalf("append on a full disk: %v, want ErrDiskFull", err)
	}
	if _, hwm := p.Offsets(); hwm != 2 {
		t.Fatalf("high watermark %d after a refused append, want 2", hwm)
	}
	fs.mu.Lock()
	fs.onWrite = nil
	fs.mu.Unlock()
	// The producer retries the same batch: it must be written, not taken
	// for a duplicate of a batch that never reached the log.
	res, err := p.Append(ctx, idemBatch(t, 7, 0, 2, 2), AppendOptions{Sync: true})
	if err != nil || res.Duplicate || res.BaseOffset != 2 {
		t.Fatalf("retry after space came back: %+v, %v; want a new batch at offset 2", res, err)
	}
	checkSequence(t, readAll(t, p, 0), 0, 4)
}

// TestDiskFullDuringRoll (finding 5): a roll that cannot write the footer
// or create the next segment for lack of space leaves the partition
// writable once space comes back.
func TestDiskFullDuringRoll(t *testing.T) {
	for _, tc := range []struct {
		name  string
		apply func(fs *hookFS, active string)
	}{
		{"footer", func(fs *hookFS, active string) {
			fs.onWrite = func(path string, _ int64, _ int) error {
				if path == active {
					return syscall.ENOSPC
				}
				return nil
			}
		}},
		{"next segment", func(fs *hookFS, _ string) {
			fs.onCreate = func(path string) error {
				if isSegmentFile(path) {
					return syscall.ENOSPC
				}
				return nil
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e, fs, _ := hookEnv(t)
			m := e.open()
			mustCreate(t, m, "t", 1, nil)
			p := mustPartition(t, m, "t", 0)
			appendN(t, p, 0, 2, 2, true)
			fs.mu.Lock()
			tc.apply(fs, p.segs[0].path)
			fs.mu.Unlock()
			if err := p.Roll(); !errors.Is(err, ErrDiskFull) {
				t.Fatalf("roll on a full disk: %v, want ErrDiskFull", err)
			}
			fs.mu.Lock()
			fs.onWrite, fs.onCreate = nil, nil
			fs.mu.Unlock()
			appendN(t, p, 4, 1, 2, true)
			if err := p.Roll(); err != nil {
				t.Fatal(err)
			}
			appendN(t, p, 6, 1, 2, true)
			checkSequence(t, readAll(t, p, 0), 0, 8)
			m = e.reopen()
			checkSequence(t, readAll(t, mustPartition(t, m, "t", 0), 0), 0, 8)
		})
	}
}

// TestRecoveryKeepsCopyOfMissingObject (finding 6): a local segment file
// that meta records as uploaded is removed at start only once its object
// is known to be there; otherwise it is uploaded again.
func TestRecoveryKeepsCopyOfMissingObject(t *testing.T) {
	e, _, st := hookEnv(t)
	st.setPut(func(string) error { return errStoreDown })
	m, p := openOne(t, e)
	appendN(t, p, 0, 3, 2, true)
	seg := p.segs[0]
	if err := p.Roll(); err != nil {
		t.Fatal(err)
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	e.m = nil
	// Meta says uploaded; the object is not there.
	if err := e.meta.AddSegment(context.Background(), meta.Segment{TopicID: p.topicID, Partition: 0,
		BaseOffset: 0, LastOffset: 5, MaxTimestamp: 1_700_000_000_005, ObjectKey: seg.key, Size: 1, RecordCount: 6,
		CreatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	st.setPut(nil)
	m = e.open()
	p = mustPartition(t, m, "t", 0)
	waitUploaded(t, m, p)
	checkSequence(t, readAll(t, p, 0), 0, 6)
	if _, err := e.objects.Get(context.Background(), seg.key); err != nil {
		t.Fatalf("segment not uploaded again: %v", err)
	}
}

// TestNewDirectoriesAreDurable (finding 6): creating a partition fsyncs
// the parent of every directory it creates.
func TestNewDirectoriesAreDurable(t *testing.T) {
	e, fs, _ := hookEnv(t)
	m := e.open()
	t0, err := m.CreateTopic(context.Background(), "t", 1, nil)
	if err != nil {
		t.Fatal(err)
	}
	topicDir := filepath.Join(m.cfg.Dir, t0.ID)
	ops := strings.Join(fs.log(), "\n")
	for _, want := range []string{"mkdir " + topicDir, "syncdir " + m.cfg.Dir, "syncdir " + topicDir} {
		if !strings.Contains(ops, want+"\n") {
			t.Errorf("no %q among the operations:\n%s", want, ops)
		}
	}
}

// blockingMeta holds DeleteTopic after meta has deleted the topic.
type blockingMeta struct {
	meta.Store
	deleted, release chan struct{}
}

func (b *blockingMeta) DeleteTopic(ctx context.Context, name string) (meta.Topic, []meta.Segment, error) {
	t, segs, err := b.Store.DeleteTopic(ctx, name)
	close(b.deleted)
	<-b.release
	return t, segs, err
}

// TestCreateDuringDeleteTopic (finding 6): a topic created (as by
// auto-create) while another of the same name is being deleted must not
// be shadowed by the deletion: it either fails cleanly or works.
func TestCreateDuringDeleteTopic(t *testing.T) {
	e := newTestEnv(t)
	bm := &blockingMeta{Store: e.meta, deleted: make(chan struct{}), release: make(chan struct{})}
	m, err := Open(context.Background(), Config{Dir: filepath.Join(e.dir, "segments"), Objects: e.objects, Meta: bm,
		FlushInterval: time.Hour, RetentionInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	mustCreate(t, m, "t", 1, nil)
	ctx := context.Background()
	delDone := make(chan error, 1)
	go func() { delDone <- m.DeleteTopic(ctx, "t") }()
	<-bm.deleted
	_, createErr := m.CreateTopic(ctx, "t", 1, nil)
	close(bm.release)
	if err := <-delDone; err != nil {
		t.Fatal(err)
	}
	if createErr != nil {
		if !errors.Is(createErr, ErrTopicExists) {
			t.Fatalf("create during deletion: %v, want ErrTopicExists", createErr)
		}
		_, createErr = m.CreateTopic(ctx, "t", 1, nil)
		if createErr != nil {
			t.Fatalf("create after the deletion: %v", createErr)
		}
	}
	p, err := m.Partition("t", 0)
	if err != nil {
		t.Fatalf("the topic created is not served: %v", err)
	}
	appendN(t, p, 0, 1, 1, true)
	if _, err := e.meta.GetTopic(ctx, "t"); err != nil {
		t.Fatalf("meta lost the new topic: %v", err)
	}
}

// TestDeleteTopicFinishesAfterRestart (finding 6): objects and files a
// deletion could not remove are removed at the next start.
func TestDeleteTopicFinishesAfterRestart(t *testing.T) {
	e, _, st := hookEnv(t)
	m := e.open()
	tp, err := m.CreateTopic(context.Background(), "t", 2, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := int32(0); i < 2; i++ {
		p := mustPartition(t, m, "t", i)
		appendN(t, p, 0, 2, 2, true)
		if err := p.Roll(); err != nil {
			t.Fatal(err)
		}
		waitUploaded(t, m, p)
	}
	st.setDel(func(string) error { return errStoreDown })
	if err := m.DeleteTopic(context.Background(), "t"); err != nil {
		t.Fatal(err)
	}
	if err := m.Close(); err != nil { // waits for the failed deletions
		t.Fatal(err)
	}
	e.m = nil
	// As if the crash came before the local files went.
	stray := filepath.Join(e.dir, "segments", tp.ID, "0", segmentFileName(0))
	if err := os.MkdirAll(filepath.Dir(stray), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(stray, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	st.setDel(nil)
	m = e.open()
	waitFor(t, "the deletion to finish", func() bool {
		objs, err := e.objects.List(context.Background(), "topics/"+tp.ID+"/")
		left, lerr := e.meta.DeletedTopics(context.Background())
		return err == nil && len(objs) == 0 && lerr == nil && len(left) == 0
	})
	if _, err := os.Stat(filepath.Join(e.dir, "segments", tp.ID)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("local directory of the deleted topic is still there: %v", err)
	}
}

// TestReadRacingRetention (finding 6): a read planned on a segment that
// retention deletes before the object is fetched answers
// ErrOffsetOutOfRange, as Kafka does, not a storage error.
func TestReadRacingRetention(t *testing.T) {
	e, _, st := hookEnv(t)
	m, p := openOne(t, e)
	appendN(t, p, 0, 2, 2, true)
	if err := p.Roll(); err != nil {
		t.Fatal(err)
	}
	waitUploaded(t, m, p)
	appendN(t, p, 4, 1, 2, true)
	key := p.segs[0].key
	m.cache.evict(key)
	ctx := context.Background()
	st.setGet(func(k string) error {
		if k != key {
			return nil
		}
		// Retention runs between the read's plan and its fetch.
		if _, err := p.DeleteRecordsBefore(ctx, 4); err != nil {
			t.Error(err)
		}
		return objstore.ErrNotFound
	})
	_, err := p.Read(ctx, 1, 1<<20)
	if !errors.Is(err, ErrOffsetOutOfRange) {
		t.Fatalf("read racing retention: %v, want ErrOffsetOutOfRange", err)
	}
}

// TestProducerStateWithoutSnapshot (finding 6): with no producer snapshot
// left, the rebuild must still see the batches in sealed segments, so a
// retry of one of them is a duplicate after a restart.
func TestProducerStateWithoutSnapshot(t *testing.T) {
	e := newTestEnv(t)
	m, p := openOne(t, e)
	ctx := context.Background()
	if _, err := p.Append(ctx, idemBatch(t, 9, 0, 0, 2), AppendOptions{Sync: true}); err != nil {
		t.Fatal(err)
	}
	if err := p.Roll(); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Append(ctx, idemBatch(t, 9, 0, 2, 2), AppendOptions{Sync: true}); err != nil {
		t.Fatal(err)
	}
	dir := p.dir
	m = e.reopen()
	snaps, err := filepath.Glob(filepath.Join(dir, "*"+producerSnapSuffix))
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range snaps {
		if err := os.Remove(s); err != nil {
			t.Fatal(err)
		}
	}
	p = mustPartition(t, m, "t", 0)
	res, err := p.Append(ctx, idemBatch(t, 9, 0, 0, 2), AppendOptions{Sync: true})
	if err != nil || !res.Duplicate || res.BaseOffset != 0 {
		t.Fatalf("retry of a batch in a sealed segment after restart: %+v, %v; want a duplicate at 0", res, err)
	}
}
