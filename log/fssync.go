package log

import (
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// SyncScope chooses what one group-commit sync covers.
type SyncScope string

const (
	// SyncFilesystem makes one syncfs of the segment directory's
	// filesystem serve the acks=all appends of every partition at once: a
	// produce request that wrote 8 partitions pays for one sync instead of
	// 8 fsyncs. It also writes back whatever else is dirty on that
	// filesystem, and every ack waits for it: one neighbour writing
	// buffered data flat out took the median ack from 1 ms to 300-400 ms
	// on the bench VM. So it suits a data directory on its own volume,
	// and is not the default. It is in force only where syncfs is known to
	// flush (syncfsFlushes); elsewhere partitions fsync their own files.
	SyncFilesystem SyncScope = "filesystem"
	// SyncFile (the default) fsyncs each partition's active segment on its
	// own: it writes back nothing of other files, and works on every file
	// system.
	SyncFile SyncScope = "file"
)

// ParseSyncScope checks an operator-given scope.
func ParseSyncScope(s string) (SyncScope, error) {
	switch SyncScope(s) {
	case SyncFilesystem, SyncFile:
		return SyncScope(s), nil
	}
	return "", fmt.Errorf("sync scope %q: want %q or %q", s, SyncFilesystem, SyncFile)
}

// fsSyncer is the broker-wide group commit of SyncFilesystem.
//
// Every write to an active segment takes a ticket from writes AFTER its
// pwrite returned, so when writes reads n, every write with a ticket up to
// n has reached the page cache. A sync reads writes, runs syncfs, and then
// every ticket up to what it read is durable. One sync runs at a time;
// callers that arrive meanwhile wait for it and, if it does not cover
// them, one of them starts the next: appends to many partitions share one
// syncfs.
type fsSyncer struct {
	dir     *os.File     // on the filesystem synced; syncfs reports writeback errors since it was opened
	name    string       // dir's path, for errors
	sync    func() error // syncfs of dir; tests replace it
	dev     uint64       // that filesystem's device: partitions elsewhere fsync their own files
	observe func(time.Duration)
	writes  atomic.Uint64 // tickets handed out

	// mu guards running, covered and err; cond waits on it.
	mu      sync.Mutex
	cond    *sync.Cond
	running bool
	covered uint64 // every ticket up to covered is durable
	// err is sticky: syncfs does not say which file failed to write back,
	// so after a failure no partition on the filesystem is durable again
	// until the broker restarts and recovers.
	err error
}

// newFSSyncer opens dir for syncfs. It returns nil, with the reason, where
// syncfs cannot be trusted to make appends durable: a platform without
// syncfs, a kernel whose syncfs does not report writeback errors, or a file
// system not known to flush on syncfs (syncfsFlushes). Every partition then
// fsyncs its own file.
func newFSSyncer(dir string, observe func(time.Duration)) (*fsSyncer, string, error) {
	if !haveSyncfs || !syncfsReportsErrors() {
		return nil, "no syncfs that reports writeback errors (Linux 5.8+)", nil
	}
	ok, fsName, err := syncfsFlushes(dir)
	if err != nil {
		return nil, "", err
	}
	if !ok {
		return nil, "syncfs is not known to flush on " + fsName, nil
	}
	f, err := os.Open(dir)
	if err != nil {
		return nil, "", fmt.Errorf("log: open %s for syncfs: %w", dir, err)
	}
	dev, err := deviceOf(dir)
	if err != nil {
		f.Close()
		return nil, "", err
	}
	s := &fsSyncer{dir: f, name: dir, dev: dev, observe: observe}
	s.sync = func() error { return syncfs(f) }
	s.cond = sync.NewCond(&s.mu)
	return s, fsName, nil
}

// newTestFSSyncer is the filesystem-wide group commit over a test's file
// system (Config.fs), with sync standing in for syncfs(2) of it.
func newTestFSSyncer(name string, syncfs func() error, observe func(time.Duration)) *fsSyncer {
	s := &fsSyncer{name: name, sync: syncfs, observe: observe}
	s.cond = sync.NewCond(&s.mu)
	return s
}

// wrote hands out the ticket of a write that has just returned.
func (s *fsSyncer) wrote() uint64 { return s.writes.Add(1) }

// syncTo returns once the write with this ticket, and every earlier one,
// is durable.
func (s *fsSyncer) syncTo(ticket uint64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for s.covered < ticket {
		if s.err != nil {
			return s.err
		}
		if s.running {
			s.cond.Wait()
			continue
		}
		s.running = true
		upTo := s.writes.Load()
		s.mu.Unlock()
		start := time.Now()
		err := s.sync()
		s.observe(time.Since(start))
		s.mu.Lock()
		s.running = false
		s.cond.Broadcast()
		if err != nil {
			s.err = fmt.Errorf("log: syncfs %s: %w", s.name, err)
			return s.err
		}
		s.covered = max(s.covered, upTo)
	}
	return nil
}

// covers reports whether a partition directory is on the synced
// filesystem (same device, so the same file system type that
// newFSSyncer checked).
func (s *fsSyncer) covers(dir string) (bool, error) {
	if s.dir == nil {
		return true, nil // a test's file system (newTestFSSyncer): one device
	}
	dev, err := deviceOf(dir)
	return err == nil && dev == s.dev, err
}

func (s *fsSyncer) close() error {
	if s == nil || s.dir == nil {
		return nil
	}
	return s.dir.Close()
}

// AwaitDurable runs the AppendResult.Durable waits of one request's
// appends (nil entries are skipped) and reports each failure through
// fail. With SyncFilesystem the first wait's syncfs covers the others, so
// they run one after another on the caller's goroutine; with per-file
// fsyncs they run at once, so that the partitions' fsyncs overlap.
func (m *Manager) AwaitDurable(waits []func() error, fail func(i int, err error)) {
	wait := func(i int) {
		if waits[i] == nil {
			return
		}
		if err := waits[i](); err != nil {
			fail(i, err)
		}
	}
	if m.fss != nil || len(waits) == 1 {
		for i := range waits {
			wait(i)
		}
		return
	}
	var wg sync.WaitGroup
	for i := range waits {
		wg.Go(func() { wait(i) })
	}
	wg.Wait()
}
