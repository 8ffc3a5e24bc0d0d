package log

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"go.uber.org/goleak"

	"github.com/streamhouse/streamhouse/objstore"
)

// gateStore holds the first Get or GetRange of each key it is told to
// gate until released (or the caller's context ends), announcing it on
// entered; every other call passes through. fail makes the first read of
// a key fail instead.
type gateStore struct {
	objstore.Store

	// mu guards the fields below.
	mu      sync.Mutex
	gated   map[string]*gateEntry
	failing map[string]bool
	entered chan string
	// check, if set, runs at every read (memory-bound test).
	check func()
}

// gateEntry is one gated read: it waits for release, then fails if fail.
type gateEntry struct {
	release chan struct{}
	fail    bool
}

var errGateStore = errors.New("gatestore: injected failure")

func newGateStore() *gateStore {
	return &gateStore{Store: objstore.NewMem(), gated: map[string]*gateEntry{}, failing: map[string]bool{}, entered: make(chan string, 16)}
}

// gate makes the next read of key wait, and then fail if fail; the
// returned func releases it.
func (s *gateStore) gate(key string, fail bool) func() {
	g := &gateEntry{release: make(chan struct{}), fail: fail}
	s.mu.Lock()
	s.gated[key] = g
	s.mu.Unlock()
	var once sync.Once
	return func() { once.Do(func() { close(g.release) }) }
}

func (s *gateStore) failNext(key string) {
	s.mu.Lock()
	s.failing[key] = true
	s.mu.Unlock()
}

func (s *gateStore) before(ctx context.Context, key string) error {
	s.mu.Lock()
	g, gated := s.gated[key]
	delete(s.gated, key)
	fail := s.failing[key]
	delete(s.failing, key)
	check := s.check
	s.mu.Unlock()
	if check != nil {
		check()
	}
	if fail {
		return fmt.Errorf("get %s: %w", key, errGateStore)
	}
	if gated {
		s.entered <- key
		select {
		case <-g.release:
		case <-ctx.Done():
			return ctx.Err()
		}
		if g.fail {
			return fmt.Errorf("get %s: %w", key, errGateStore)
		}
	}
	return nil
}

func (s *gateStore) Get(ctx context.Context, key string) ([]byte, error) {
	if err := s.before(ctx, key); err != nil {
		return nil, err
	}
	return s.Store.Get(ctx, key)
}

func (s *gateStore) GetRange(ctx context.Context, key string, off, n int64) ([]byte, error) {
	if err := s.before(ctx, key); err != nil {
		return nil, err
	}
	return s.Store.GetRange(ctx, key, off, n)
}

// Read-ahead test shapes: 4 KiB segments read in windows (16 KiB cache)
// or loaded whole (1 MiB cache).
var raShapes = []struct {
	name  string
	cache int64
}{{"windowed", 16 << 10}, {"whole", 1 << 20}}

// raLog returns a partition of 5-record batches in uploaded 4 KiB
// segments, behind a gateStore.
func raLog(t *testing.T, cache int64, batches int) (*testEnv, *gateStore, *Partition) {
	t.Helper()
	e := newTestEnv(t)
	gs := newGateStore()
	e.objects, e.cacheBytes = gs, cache
	m := e.open()
	mustCreate(t, m, "t", 1, map[string]string{ConfigSegmentBytes: "4096", ConfigRetentionMs: "-1"})
	p := mustPartition(t, m, "t", 0)
	appendN(t, p, 0, batches, 5, true)
	if err := p.Roll(); err != nil {
		t.Fatal(err)
	}
	waitUploaded(t, m, p)
	return e, gs, p
}

// raRead is one read of a pass and what it returned.
type raRead struct {
	off      int64
	maxBytes int
	got      []byte
}

// readPass reads p from its log start: sequentially, each read where the
// last ended, except that every jumpEvery-th read (0: none) jumps to an
// offset chosen from the read count. Reads are copied.
func readPass(t *testing.T, p *Partition, maxBytes, jumpEvery int) []raRead {
	t.Helper()
	logStart, _ := p.Offsets()
	return readPassFrom(t, p, logStart, maxBytes, jumpEvery)
}

// readPassFrom is readPass from offset from.
func readPassFrom(t *testing.T, p *Partition, from int64, maxBytes, jumpEvery int) []raRead {
	t.Helper()
	logStart, hwm := p.Offsets()
	var out []raRead
	for off, i := from, 1; off < hwm; i++ {
		if jumpEvery > 0 && i%jumpEvery == 0 {
			off = logStart + int64(i*7919)%(hwm-logStart)
		}
		res, err := p.Read(context.Background(), off, maxBytes)
		if err != nil {
			t.Fatalf("read at %d: %v", off, err)
		}
		out = append(out, raRead{off: off, maxBytes: maxBytes, got: bytes.Clone(res.Batches)})
		if len(res.Batches) == 0 {
			break
		}
		next := off
		for b := res.Batches; len(b) > 0; {
			h, err := ParseBatchHeader(b)
			if err != nil {
				t.Fatal(err)
			}
			next, b = max(next, h.NextOffset()), b[h.Size():]
		}
		res.Release()
		if next <= off {
			t.Fatalf("read at %d made no progress", off)
		}
		off = next
	}
	return out
}

// checkAgainstPlainReads repeats every read of a pass with no read-ahead
// (the partition's read-ahead state dropped before each, so none is
// sequential) and compares the bytes.
func checkAgainstPlainReads(t *testing.T, p *Partition, pass []raRead) {
	t.Helper()
	for _, r := range pass {
		p.resetReadAheadForTest()
		res, err := p.Read(context.Background(), r.off, r.maxBytes)
		if err != nil {
			t.Fatalf("plain read at %d: %v", r.off, err)
		}
		if !bytes.Equal(res.Batches, r.got) {
			t.Fatalf("read at %d, maxBytes %d: %d bytes with read-ahead, %d without", r.off, r.maxBytes, len(r.got), len(res.Batches))
		}
	}
	p.resetReadAheadForTest()
}

// waitNoReservations waits until every prefetch has ended and released
// its bytes (after the partition's read-ahead was dropped).
func waitNoReservations(t *testing.T, m *Manager) {
	t.Helper()
	waitFor(t, "prefetches to release their bytes", func() bool { return m.cache.reservedBytes() == 0 })
}

// TestReadAheadReadBack reads a multi-segment partition front to back
// (and with jumps) with read-ahead, for segments read in windows and
// loaded whole and several maxBytes, and checks every read against the
// same read without read-ahead.
func TestReadAheadReadBack(t *testing.T) {
	for _, shape := range raShapes {
		for _, maxBytes := range []int{1, 300, 2000, 5000, 1 << 20} {
			for _, jump := range []int{0, 5} {
				t.Run(fmt.Sprintf("%s/max=%d/jump=%d", shape.name, maxBytes, jump), func(t *testing.T) {
					e, _, p := raLog(t, shape.cache, 120)
					if n := len(remoteSegments(p)); n < 5 {
						t.Fatalf("%d remote segments, want several", n)
					}
					pass := readPass(t, p, maxBytes, jump)
					if e.m.raStarted.Load() == 0 {
						t.Fatal("no prefetch started on sequential reads")
					}
					p.resetReadAheadForTest()
					waitNoReservations(t, e.m)
					checkAgainstPlainReads(t, p, pass)
				})
			}
		}
	}
}

// TestReadAheadCompacted reads a compacted partition (gaps in offsets,
// segments ending in holes) sequentially with read-ahead and checks every
// read against the same read without it.
func TestReadAheadCompacted(t *testing.T) {
	for _, shape := range raShapes {
		t.Run(shape.name, func(t *testing.T) {
			e := newCompactEnv(t, -1)
			e.cacheBytes = shape.cache
			e.open()
			p := e.compactTopic("t", map[string]string{ConfigSegmentBytes: "4096"})
			for i := 0; i < 400; i++ {
				appendKV(t, p, CodecNone, 1_700_000_000_000, kv{key: fmt.Sprintf("k%d", i%37), value: fmt.Sprint(i)})
			}
			e.rollAndUpload(p)
			mustCompact(t, p)
			e.m.deleteReplaced(context.Background())
			for i := 400; i < 600; i++ {
				appendKV(t, p, CodecNone, 1_700_000_000_000, kv{key: fmt.Sprintf("n%d", i), value: fmt.Sprint(i)})
			}
			e.rollAndUpload(p)
			for _, maxBytes := range []int{1, 500, 1 << 20} {
				pass := readPass(t, p, maxBytes, 0)
				p.resetReadAheadForTest()
				waitNoReservations(t, e.m)
				checkAgainstPlainReads(t, p, pass)
			}
			if e.m.raStarted.Load() == 0 {
				t.Fatal("no prefetch started on sequential reads")
			}
		})
	}
}

// startPrefetchOf reads p's first segment sequentially until a prefetch
// of target is held in the gate, and returns where the reader is.
func startPrefetchOf(t *testing.T, gs *gateStore, p *Partition, target string) int64 {
	t.Helper()
	off := int64(0)
	for i := 0; i < 3; i++ {
		res, err := p.Read(context.Background(), off, 1)
		if err != nil {
			t.Fatal(err)
		}
		off = lastNextOffset(res.Batches)
	}
	if key := <-gs.entered; key != target {
		t.Fatalf("gated read of %s, want %s", key, target)
	}
	return off
}

// TestReadAheadFailedPrefetch: a prefetch that fails (a store error) is
// not reported to the read that then needs those bytes; it fetches them.
func TestReadAheadFailedPrefetch(t *testing.T) {
	for _, shape := range raShapes {
		t.Run(shape.name, func(t *testing.T) {
			e, gs, p := raLog(t, shape.cache, 150)
			segs := remoteSegments(p)
			release := gs.gate(segs[1].key, true)
			defer release()
			off := startPrefetchOf(t, gs, p, segs[1].key)
			release()
			pass := readPassFrom(t, p, off, 200, 0)
			p.resetReadAheadForTest()
			waitNoReservations(t, e.m)
			checkAgainstPlainReads(t, p, pass)
		})
	}
}

// TestReadAheadRacesRetention: the segments a prefetch is fetching are
// deleted by retention meanwhile. The reader sees what it would without
// read-ahead: out of range below the new log start, the records above it.
func TestReadAheadRacesRetention(t *testing.T) {
	for _, shape := range raShapes {
		t.Run(shape.name, func(t *testing.T) {
			e, gs, p := raLog(t, shape.cache, 150)
			segs := remoteSegments(p)
			release := gs.gate(segs[1].key, false)
			defer release()
			off := startPrefetchOf(t, gs, p, segs[1].key)
			if _, err := p.DeleteRecordsBefore(context.Background(), segs[3].base); err != nil {
				t.Fatal(err)
			}
			if err := p.applyRetention(context.Background(), e.m.now()); err != nil {
				t.Fatal(err)
			}
			if _, err := e.objects.Get(context.Background(), segs[1].key); !errors.Is(err, objstore.ErrNotFound) {
				t.Fatalf("segment 1 after retention: %v, want deleted", err)
			}
			release()
			if _, err := p.Read(context.Background(), off, 1); !errors.Is(err, ErrOffsetOutOfRange) {
				t.Fatalf("read below the new log start: %v, want ErrOffsetOutOfRange", err)
			}
			pass := readPass(t, p, 300, 0)
			if len(pass) == 0 {
				ls, hwm := p.Offsets()
				t.Fatalf("no reads: log start %d, hwm %d, segments %d..", ls, hwm, segs[3].base)
			}
			if pass[0].off != segs[3].base || len(pass[0].got) == 0 {
				t.Fatalf("first read at %d returned %d bytes", pass[0].off, len(pass[0].got))
			}
			p.resetReadAheadForTest()
			waitNoReservations(t, e.m)
			checkAgainstPlainReads(t, p, pass)
		})
	}
}

// TestReadAheadRacesCompactionSwap: compaction swaps out the segment a
// prefetch is fetching and its object is deleted. The reader goes on
// reading the new segments and sees no error.
func TestReadAheadRacesCompactionSwap(t *testing.T) {
	for _, shape := range raShapes {
		t.Run(shape.name, func(t *testing.T) {
			e := newCompactEnv(t, -1)
			e.cacheBytes = shape.cache
			e.objects = newGateStore()
			gs := e.objects.(*gateStore)
			e.open()
			p := e.compactTopic("t", map[string]string{ConfigSegmentBytes: "4096"})
			for i := 0; i < 300; i++ {
				appendKV(t, p, CodecNone, 1_700_000_000_000, kv{key: fmt.Sprintf("k%d", i%50), value: fmt.Sprint(i)})
			}
			e.rollAndUpload(p)
			segs := remoteSegments(p)
			release := gs.gate(segs[1].key, false)
			defer release()
			off := startPrefetchOf(t, gs, p, segs[1].key)
			mustCompact(t, p)
			e.m.deleteReplaced(context.Background())
			release()
			logStart, hwm := p.Offsets()
			for off < hwm {
				res, err := p.Read(context.Background(), max(off, logStart), 1)
				if err != nil {
					t.Fatalf("read at %d after the swap: %v", off, err)
				}
				if len(res.Batches) == 0 {
					break
				}
				off = lastNextOffset(res.Batches)
			}
			p.resetReadAheadForTest()
			waitNoReservations(t, e.m)
			pass := readPass(t, p, 1, 0)
			p.resetReadAheadForTest()
			waitNoReservations(t, e.m)
			checkAgainstPlainReads(t, p, pass)
		})
	}
}

// TestReadAheadCloseWhilePrefetching closes the Manager while a prefetch
// waits on the object store: Close cancels and waits for it, leaving no
// goroutine behind.
func TestReadAheadCloseWhilePrefetching(t *testing.T) {
	for _, shape := range raShapes {
		t.Run(shape.name, func(t *testing.T) {
			e := newTestEnv(t)
			gs := newGateStore()
			e.objects, e.cacheBytes = gs, shape.cache
			before := goleak.IgnoreCurrent()
			m := e.open()
			mustCreate(t, m, "t", 1, map[string]string{ConfigSegmentBytes: "4096"})
			p := mustPartition(t, m, "t", 0)
			appendN(t, p, 0, 150, 5, true)
			waitUploaded(t, m, p)
			segs := remoteSegments(p)
			release := gs.gate(segs[1].key, false) // never released: only Close ends it
			defer release()
			startPrefetchOf(t, gs, p, segs[1].key)
			if err := m.Close(); err != nil {
				t.Fatal(err)
			}
			e.m = nil
			if n := m.cache.reservedBytes(); n != 0 {
				t.Fatalf("%d bytes still reserved after Close", n)
			}
			goleak.VerifyNone(t, before)
		})
	}
}

// TestReadAheadMemoryBound reads several partitions, some read in windows
// and some loaded whole, concurrently and sequentially, and checks at
// every object-store read that the prefetches hold at most the documented
// share of the cache and that the cache and the prefetches together stay
// within its limit; afterwards nothing stays reserved.
func TestReadAheadMemoryBound(t *testing.T) {
	const cache = 64 << 10
	e := newTestEnv(t)
	gs := newGateStore()
	e.objects, e.cacheBytes = gs, cache
	m := e.open()
	var checks, violations atomic.Int64
	var firstViolation atomic.Value
	gs.check = func() {
		m.cache.mu.Lock()
		size, reserved := m.cache.size, m.cache.reserved
		m.cache.mu.Unlock()
		checks.Add(1)
		if reserved > cache/raTotalShare+cache/raTailShare || size+reserved > cache || reserved < 0 {
			violations.Add(1)
			firstViolation.CompareAndSwap(nil, fmt.Sprintf("cached %d + reserved %d, limit %d", size, reserved, cache))
		}
	}
	mustCreate(t, m, "whole", 3, map[string]string{ConfigSegmentBytes: "4096"})
	mustCreate(t, m, "windowed", 3, map[string]string{ConfigSegmentBytes: "16384"})
	var parts []*Partition
	for _, topic := range []string{"whole", "windowed"} {
		for i := int32(0); i < 3; i++ {
			p := mustPartition(t, m, topic, i)
			appendN(t, p, 0, 150, 5, true)
			if err := p.Roll(); err != nil {
				t.Fatal(err)
			}
			waitUploaded(t, m, p)
			parts = append(parts, p)
		}
	}
	var wg sync.WaitGroup
	for _, p := range parts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			readPass(t, p, 1000, 0)
		}()
	}
	wg.Wait()
	if v := violations.Load(); v > 0 {
		t.Fatalf("%d of %d checks over the bound, first: %v", v, checks.Load(), firstViolation.Load())
	}
	if m.raStarted.Load() == 0 {
		t.Fatal("no prefetch started")
	}
	for _, p := range parts {
		p.resetReadAheadForTest()
	}
	waitNoReservations(t, m)
}
