package log

import (
	"context"
	"errors"
	"os"
	"sync"
	"sync/atomic"
	"testing"
)

// countSyncs wraps m's filesystem syncer so that the test sees every
// syncfs, and can make it fail.
func countSyncs(t *testing.T, m *Manager, fail *atomic.Pointer[error]) *atomic.Int64 {
	t.Helper()
	if m.fss == nil {
		t.Fatalf("no filesystem syncer (haveSyncfs %v, reports errors %v)", haveSyncfs, syncfsReportsErrors())
	}
	var n atomic.Int64
	real := m.fss.sync
	m.fss.sync = func() error {
		n.Add(1)
		if fail != nil {
			if err := fail.Load(); err != nil {
				return *err
			}
		}
		return real()
	}
	return &n
}

func needSyncfs(t *testing.T) {
	t.Helper()
	if !haveSyncfs || !syncfsReportsErrors() {
		t.Skip("skipped: this platform has no syncfs that reports writeback errors (Linux 5.8+), so every partition fsyncs its own file")
	}
	if ok, name, err := syncfsFlushes(t.TempDir()); err != nil || !ok {
		t.Skipf("skipped: the test directory's file system (%s, %v) is not one syncfs is trusted on, so every partition fsyncs its own file", name, err)
	}
}

// appendAll appends one DeferSync batch to each partition and returns the
// Durable waits and each partition's written mark.
func appendAll(t *testing.T, parts []*Partition, base int) ([]func() error, []int64) {
	t.Helper()
	waits := make([]func() error, len(parts))
	marks := make([]int64, len(parts))
	for i, p := range parts {
		res, err := p.Append(context.Background(), testBatch(t, base, 2, CodecNone), AppendOptions{Sync: true, DeferSync: true})
		if err != nil {
			t.Fatal(err)
		}
		waits[i] = res.Durable
		p.mu.Lock()
		marks[i] = p.written
		p.mu.Unlock()
	}
	return waits, marks
}

// TestFilesystemSyncSharedByPartitions checks the point of SyncFilesystem:
// one request's appends to 8 partitions are made durable by one syncfs,
// and each partition then counts its bytes as synced.
func TestFilesystemSyncSharedByPartitions(t *testing.T) {
	needSyncfs(t)
	e := newTestEnv(t)
	e.syncScope = SyncFilesystem
	m := e.open()
	syncs := countSyncs(t, m, nil)
	mustCreate(t, m, "t", 8, nil)
	var parts []*Partition
	for i := int32(0); i < 8; i++ {
		p := mustPartition(t, m, "t", i)
		if p.fss != m.fss {
			t.Fatalf("partition %d does not use the filesystem syncer", i)
		}
		parts = append(parts, p)
	}
	for round := 0; round < 3; round++ {
		waits, marks := appendAll(t, parts, round*2)
		before := syncs.Load()
		m.AwaitDurable(waits, func(i int, err error) { t.Errorf("partition %d: %v", i, err) })
		if got := syncs.Load() - before; got != 1 {
			t.Fatalf("round %d: %d syncfs calls for 8 partitions, want 1", round, got)
		}
		for i, p := range parts {
			p.syncMu.Lock()
			synced := p.synced
			p.syncMu.Unlock()
			if synced < marks[i] {
				t.Fatalf("round %d: partition %d synced %d of %d written bytes", round, i, synced, marks[i])
			}
		}
	}
	for _, p := range parts {
		checkSequence(t, readAll(t, p, 0), 0, 6)
	}
}

// TestFileSyncScope checks that SyncFile keeps one fsync per partition and
// no filesystem syncer.
func TestFileSyncScope(t *testing.T) {
	e := newTestEnv(t)
	e.syncScope = SyncFile
	m := e.open()
	if m.fss != nil {
		t.Fatal("SyncFile opened a filesystem syncer")
	}
	mustCreate(t, m, "t", 4, nil)
	var parts []*Partition
	for i := int32(0); i < 4; i++ {
		parts = append(parts, mustPartition(t, m, "t", i))
	}
	waits, marks := appendAll(t, parts, 0)
	m.AwaitDurable(waits, func(i int, err error) { t.Errorf("partition %d: %v", i, err) })
	for i, p := range parts {
		p.syncMu.Lock()
		synced := p.synced
		p.syncMu.Unlock()
		if synced < marks[i] {
			t.Fatalf("partition %d synced %d of %d written bytes", i, synced, marks[i])
		}
	}
}

// TestFilesystemSyncConcurrent runs synced appends to many partitions from
// many goroutines (under -race in CI): every append returns durable, and
// the syncs are shared.
func TestFilesystemSyncConcurrent(t *testing.T) {
	needSyncfs(t)
	e := newTestEnv(t)
	e.syncScope = SyncFilesystem
	m := e.open()
	syncs := countSyncs(t, m, nil)
	mustCreate(t, m, "t", 4, nil)
	const writers, each = 8, 25
	var wg sync.WaitGroup
	for w := 0; w < writers; w++ {
		p := mustPartition(t, m, "t", int32(w%4))
		wg.Go(func() {
			for i := 0; i < each; i++ {
				if _, err := p.Append(context.Background(), testBatch(t, 0, 1, CodecNone), AppendOptions{Sync: true}); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	if got := syncs.Load(); got == 0 || got > writers*each {
		t.Fatalf("%d syncfs calls for %d synced appends", got, writers*each)
	}
	m.fss.mu.Lock()
	covered := m.fss.covered
	m.fss.mu.Unlock()
	if covered != m.fss.writes.Load() {
		t.Fatalf("covered %d of %d writes", covered, m.fss.writes.Load())
	}
	for i := int32(0); i < 4; i++ {
		if got := len(readAll(t, mustPartition(t, m, "t", i), 0)); got != 2*each {
			t.Fatalf("partition %d holds %d records, want %d", i, got, 2*each)
		}
	}
}

// TestFilesystemSyncErrorIsSticky checks that a failed syncfs fails the
// appends waiting on it and every later write on the filesystem: syncfs
// cannot tell which file lost its data.
func TestFilesystemSyncErrorIsSticky(t *testing.T) {
	needSyncfs(t)
	e := newTestEnv(t)
	e.syncScope = SyncFilesystem
	m := e.open()
	var fail atomic.Pointer[error]
	countSyncs(t, m, &fail)
	mustCreate(t, m, "t", 2, nil)
	p0, p1 := mustPartition(t, m, "t", 0), mustPartition(t, m, "t", 1)
	if _, err := p0.Append(context.Background(), testBatch(t, 0, 1, CodecNone), AppendOptions{Sync: true}); err != nil {
		t.Fatal(err)
	}
	eio := error(errors.New("injected EIO"))
	fail.Store(&eio)
	waits, _ := appendAll(t, []*Partition{p0, p1}, 1)
	var failed []int
	m.AwaitDurable(waits, func(i int, err error) {
		if !errors.Is(err, eio) {
			t.Errorf("partition %d: %v, want the injected error", i, err)
		}
		failed = append(failed, i)
	})
	if len(failed) != 2 {
		t.Fatalf("failed appends %v, want both partitions", failed)
	}
	fail.Store(nil)
	for i, p := range []*Partition{p0, p1} {
		if _, err := p.Append(context.Background(), testBatch(t, 3, 1, CodecNone), AppendOptions{Sync: true}); !errors.Is(err, eio) {
			t.Fatalf("partition %d after a failed syncfs: %v, want the sticky error", i, err)
		}
	}
	// The record acknowledged before the failure is still served.
	if got := readAll(t, p0, 0); len(got) == 0 {
		t.Fatal("acknowledged record lost")
	}
}

// TestFilesystemSyncOtherDevice checks that a partition directory on
// another filesystem is not covered by the data directory's syncfs.
func TestFilesystemSyncOtherDevice(t *testing.T) {
	needSyncfs(t)
	e := newTestEnv(t)
	e.syncScope = SyncFilesystem
	m := e.open()
	other, err := os.MkdirTemp("/dev/shm", "streamhouse-fssync-")
	if err != nil {
		t.Skipf("skipped: no second filesystem to compare with (/dev/shm: %v)", err)
	}
	defer os.RemoveAll(other)
	devData, _ := deviceOf(e.dir)
	devOther, _ := deviceOf(other)
	if devData == devOther {
		t.Skipf("skipped: %s and /dev/shm are on the same filesystem", e.dir)
	}
	same, err := m.fss.covers(other)
	if err != nil || same {
		t.Fatalf("covers(%s) = %v, %v; want false", other, same, err)
	}
	if same, err := m.fss.covers(e.dir); err != nil || !same {
		t.Fatalf("covers(%s) = %v, %v; want true", e.dir, same, err)
	}
}

func TestParseSyncScope(t *testing.T) {
	for _, c := range []struct {
		in   string
		want SyncScope
		ok   bool
	}{{"filesystem", SyncFilesystem, true}, {"file", SyncFile, true}, {"", "", false}, {"fs", "", false}} {
		got, err := ParseSyncScope(c.in)
		if (err == nil) != c.ok || got != c.want {
			t.Errorf("ParseSyncScope(%q) = %q, %v", c.in, got, err)
		}
	}
}
