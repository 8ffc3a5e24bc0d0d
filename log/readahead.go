package log

// Read-ahead of sealed segments for catch-up reads.
//
// A consumer that starts far behind reads sealed segments from the object
// store. Without read-ahead every read window (window.go) or segment load
// (cache.go) costs one object-store round trip, taken in turn, so the
// store's latency, not its bandwidth, sets the pace. When a partition's
// reads of remote segments are sequential (a read starts at the offset
// where the previous one ended), the partition prefetches what comes next
// while the current read is served: the next byte ranges of a segment read
// in windows, or the next segments loaded whole into the cache.
//
// Bounds:
//   - at most raMaxUnits prefetches per partition, in flight or waiting to
//     be read, covering at most cache limit / raAheadShare bytes ahead of
//     the reader;
//   - every prefetch reserves its bytes against the cache limit before it
//     starts (segmentCache.reserve evicts cached segments to make room),
//     and all partitions' reservations together stay under cache limit /
//     raTotalShare (plus limit / raTailShare for segment tails); a
//     prefetch that finds no room is not started. So the
//     cache plus the read-ahead never hold more than the cache limit. A
//     prefetched window is released when the reader has moved past it, a
//     prefetched segment when it enters the cache (where it is counted);
//   - a read that is not sequential, a failed read, the partition's close
//     and raIdle without reads drop the partition's prefetches (cancelling
//     those in flight);
//   - the goroutines belong to the Manager: Close cancels them and waits.
//
// A read served from prefetched bytes returns exactly what it would have
// read itself: it takes from them the byte range it would have fetched
// (fetching whatever they do not cover) and checks every batch as any
// windowed read does. (Bytes a ReadResult still refers to after its
// prefetch was released are the caller's, as a plain window's are.) A prefetch
// that failed is ignored: the read fetches for itself and reports only
// its own errors.

import (
	"context"
	"sync"
	"time"
)

const (
	// raMaxUnits is the most prefetches a partition has in flight or
	// waiting to be read.
	raMaxUnits = 8
	// raAheadShare: a partition prefetches at most cache limit /
	// raAheadShare bytes ahead of its reader.
	raAheadShare = 2
	// raTotalShare: all prefetches of data together reserve at most cache
	// limit / raTotalShare bytes; prefetched segment tails (footer and
	// index, a 256th of a segment at most) may take limit / raTailShare
	// more, so that a reader reaching a new segment finds its tail even
	// when the data prefetches hold their whole share.
	raTotalShare = 2
	raTailShare  = 16
	// raIdle: a partition's prefetches are dropped when it has not been
	// read for this long (a consumer that stopped mid catch-up).
	raIdle = 30 * time.Second
	// raSegments bounds the segments after the one being read that a
	// top-up looks at.
	raSegments = 2 * raMaxUnits
)

// raUnit is one prefetch: a byte range of a segment read in windows, or a
// whole segment loaded into the cache.
type raUnit struct {
	key    string
	base   int64 // the segment's base offset
	pos, n int64 // [pos, pos+n); a whole segment has pos 0 and its size
	size   int64 // the object's size
	whole  bool
	cancel context.CancelFunc
	done   chan struct{} // closed when the fetch has ended

	// data and err are set before done is closed (windows only).
	data []byte
	err  error

	// finished and dropped are guarded by readAhead.mu: a window's
	// reservation is released once both hold.
	finished, dropped bool
}

// readAhead is a partition's read-ahead state (see above).
type readAhead struct {
	// mu guards everything below. Under it a partition may take
	// segmentCache.mu and Manager.raMu (both leaves); it is never held
	// while waiting for a prefetch or taking Partition.mu.
	mu sync.Mutex
	// nextOff is where the next sequential read starts, if known.
	known   bool
	nextOff int64
	// key is the segment the last read was served from; nextPos the byte
	// position after what it returned when read in windows (-1: unknown).
	key     string
	nextPos int64
	// lastRead is when the partition was last read from a remote segment.
	lastRead time.Time
	// units are the prefetches, in the order a sequential reader needs them.
	units []*raUnit
}

// raSeg is a remote segment as a top-up sees it.
type raSeg struct {
	key        string
	base, size int64
}

// readRemote reads the remote segment seg (an object of size bytes) at
// offset, with read-ahead: from prefetched bytes when the read continues
// the previous one, and then it starts prefetching what follows.
func (p *Partition) readRemote(ctx context.Context, seg *segment, size, offset int64, maxBytes int) ([]byte, error) {
	m, ra := p.m, &p.ra
	ra.mu.Lock()
	seq := ra.known && offset == ra.nextOff
	startPos := int64(-1)
	if seq && ra.key == seg.key {
		startPos = ra.nextPos
	}
	if !seq {
		ra.dropAllLocked(m.cache)
	}
	ra.known, ra.lastRead = false, m.now()
	ra.mu.Unlock()

	var data []byte
	pos := int64(-1) // where data starts in a segment read in windows
	var err error
	if s, ok := m.cache.cached(seg.key); ok {
		data, err = s.read(offset, maxBytes)
	} else if m.cache.windowed(size) {
		data, pos, err = m.readWindow(ctx, ra, seg.key, size, offset, startPos, maxBytes)
	} else {
		var s *sealedSegment
		if s, err = m.loadSealed(ctx, seg.key); err == nil {
			data, err = s.read(offset, maxBytes)
		}
	}
	if err != nil {
		ra.mu.Lock()
		ra.dropAllLocked(m.cache)
		ra.mu.Unlock()
		return nil, err
	}
	next, nextPos := seg.base, int64(-1)
	if len(data) > 0 {
		next = lastNextOffset(data)
		if pos >= 0 {
			nextPos = pos + int64(len(data))
		}
	} else {
		// Nothing at or after offset (compaction): Read moves on to the
		// next segment, where a sequential reader continues.
		next = p.segmentNext(seg)
		nextPos = size
	}
	ra.mu.Lock()
	ra.known, ra.nextOff, ra.key, ra.nextPos = true, next, seg.key, nextPos
	ra.mu.Unlock()
	if seq {
		p.topUp(seg, size, nextPos)
	}
	return data, nil
}

// lastNextOffset returns the offset after the last of the whole batches
// in b.
func lastNextOffset(b []byte) int64 {
	var h BatchHeader
	for len(b) > 0 {
		var err error
		if h, err = ParseBatchHeader(b); err != nil {
			break // checked by the read: cannot happen
		}
		b = b[h.Size():]
	}
	return h.NextOffset()
}

func (p *Partition) segmentNext(s *segment) int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return s.next
}

// remoteAfter returns seg and up to raSegments remote segments after it,
// stopping at the first local one.
func (p *Partition) remoteAfter(seg *segment, size int64) []raSeg {
	segs := []raSeg{{key: seg.key, base: seg.base, size: size}}
	p.mu.Lock()
	defer p.mu.Unlock()
	i := 0
	for i < len(p.segs) && p.segs[i].base <= seg.base {
		i++
	}
	for ; i < len(p.segs) && len(segs) <= raSegments && p.segs[i].remote; i++ {
		s := p.segs[i]
		segs = append(segs, raSeg{key: s.key, base: s.base, size: s.size})
	}
	return segs
}

// topUp drops the prefetches the reader has passed (it is in seg, at
// byte nextPos when read in windows) and starts new ones until the
// partition's bounds are reached.
func (p *Partition) topUp(seg *segment, size, nextPos int64) {
	m, ra := p.m, &p.ra
	segs := p.remoteAfter(seg, size)
	ahead := m.cache.limit / raAheadShare
	chunk := max(ahead/raMaxUnits, windowMinBytes)

	ra.mu.Lock()
	defer ra.mu.Unlock()
	keep := ra.units[:0]
	for _, u := range ra.units {
		passed := u.base < seg.base || (u.base == seg.base && (u.whole || u.key != seg.key || u.pos+u.n <= nextPos))
		if passed || !raHas(segs, u.key) {
			ra.dropLocked(m.cache, u)
			continue
		}
		keep = append(keep, u)
	}
	clear(ra.units[len(keep):])
	ra.units = keep

	// The frontier: where the next prefetch starts (segs[i], byte at).
	i, at := 0, nextPos
	if at < 0 || !m.cache.windowed(size) {
		i, at = 1, 0
	}
	var held int64
	if n := len(ra.units); n > 0 {
		last := ra.units[n-1]
		for i = 0; i < len(segs) && segs[i].key != last.key; i++ {
		}
		at = last.pos + last.n
		for _, u := range ra.units {
			held += u.n
		}
	}
	for len(ra.units) < raMaxUnits && held < ahead && i < len(segs) {
		s := segs[i]
		if at >= s.size || (at > 0 && !m.cache.windowed(s.size)) {
			i, at = i+1, 0
			continue
		}
		u := &raUnit{key: s.key, base: s.base, size: s.size, pos: at, n: min(chunk, s.size-at), done: make(chan struct{})}
		if !m.cache.windowed(s.size) {
			u.whole, u.n = true, s.size
		} else if ft := m.cache.tailFooter(s.key); ft != nil {
			// Only the batch region is read in windows.
			if at >= ft.BatchesLen {
				i, at = i+1, 0
				continue
			}
			u.n = min(u.n, ft.BatchesLen-at)
		}
		if !m.startUnit(ra, u) {
			return
		}
		ra.units = append(ra.units, u)
		held += u.n
		at += u.n
	}
}

func raHas(segs []raSeg, key string) bool {
	for _, s := range segs {
		if s.key == key {
			return true
		}
	}
	return false
}

// startUnit reserves u's bytes and starts its fetch; false when there is
// no room or the Manager is closing. Called with ra.mu held.
func (m *Manager) startUnit(ra *readAhead, u *raUnit) bool {
	ctx, cancel := context.WithCancel(m.raCtx)
	if !u.whole && u.pos == 0 {
		// The tail first: the reader needs it before any window.
		m.prefetchTail(m.raCtx, u.key, u.size)
	}
	if !m.cache.reserve(u.n, false) {
		cancel()
		return false
	}
	u.cancel = cancel
	var run func()
	if u.whole {
		run = func() {
			m.cache.prefetch(ctx, u.key, u.n, m.sealedLoader(u.key))
			ra.finish(m.cache, u)
		}
	} else {
		run = func() {
			u.data, u.err = m.getRange(ctx, u.key, u.pos, u.n)
			ra.finish(m.cache, u)
		}
	}
	if !m.goReadAhead(run) {
		cancel()
		m.cache.release(u.n)
		return false
	}
	m.raStarted.Add(1)
	return true
}

// prefetchTail loads the tail (footer and index) of the segment object
// key of size bytes into the cache in the background, so that the reader
// reaching it does not wait for two more round trips. It reserves the
// most an index of that size can take.
func (m *Manager) prefetchTail(ctx context.Context, key string, size int64) {
	res := footerLen + size/defaultIndexInterval*indexEntryLen + indexEntryLen
	if !m.cache.reserve(res, true) {
		return
	}
	if !m.goReadAhead(func() { m.cache.prefetch(ctx, key+tailKeySuffix, res, m.tailLoader(key, size)) }) {
		m.cache.release(res)
	}
}

// finish records that u's fetch has ended. A window's reservation is
// released here if u was dropped meanwhile; a whole segment's was handed
// to the cache by prefetch.
func (ra *readAhead) finish(c *segmentCache, u *raUnit) {
	ra.mu.Lock()
	u.finished = true
	if u.dropped && !u.whole {
		c.release(u.n)
	}
	ra.mu.Unlock()
	close(u.done)
}

// dropLocked forgets u: its fetch is cancelled if still running, and its
// reservation released once it has ended.
func (ra *readAhead) dropLocked(c *segmentCache, u *raUnit) {
	if u.dropped {
		return
	}
	u.dropped = true
	u.cancel()
	if u.finished && !u.whole {
		c.release(u.n)
	}
}

func (ra *readAhead) dropAllLocked(c *segmentCache) {
	for _, u := range ra.units {
		ra.dropLocked(c, u)
	}
	clear(ra.units)
	ra.units = ra.units[:0]
}

// dropAll drops every prefetch and forgets the reader's position.
func (ra *readAhead) dropAll(c *segmentCache) {
	ra.mu.Lock()
	defer ra.mu.Unlock()
	ra.dropAllLocked(c)
	ra.known = false
}

// dropIdle drops the prefetches of a partition not read since raIdle
// before now.
func (ra *readAhead) dropIdle(c *segmentCache, now time.Time) {
	ra.mu.Lock()
	defer ra.mu.Unlock()
	if len(ra.units) > 0 && now.Sub(ra.lastRead) >= raIdle {
		ra.dropAllLocked(c)
	}
}

// take returns the prefetched bytes of key from pos on, up to n of them,
// waiting for the prefetches that hold them; fewer (or none) when the
// prefetches do not cover them or failed.
func (ra *readAhead) take(ctx context.Context, key string, pos, n int64) []byte {
	ra.mu.Lock()
	var chain []*raUnit
	at := pos
	for _, u := range ra.units {
		if at >= pos+n {
			break
		}
		if !u.whole && u.key == key && u.pos <= at && at < u.pos+u.n {
			chain = append(chain, u)
			at = u.pos + u.n
		}
	}
	ra.mu.Unlock()
	var out []byte
	at = pos
	for _, u := range chain {
		select {
		case <-u.done:
		case <-ctx.Done():
			return out
		}
		if u.err != nil {
			return out
		}
		b := u.data[at-u.pos : min(u.n, pos+n-u.pos)]
		if out == nil && (len(chain) == 1 || at+int64(len(b)) >= pos+n) {
			return b // one prefetch holds it all: no copy
		}
		if out == nil {
			out = make([]byte, 0, n)
		}
		out = append(out, b...)
		at += int64(len(b))
	}
	return out
}
