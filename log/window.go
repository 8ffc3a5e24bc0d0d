package log

// Windowed reads of sealed segments.
//
// The cache keeps sealed segments whole, which suits segments small next
// to the cache. A segment that is large next to it (an eighth of the
// cache or more: with the defaults, 64 MiB segments in a 256 MiB cache) is
// not loaded whole on a miss: consumers reading several partitions'
// sealed segments would otherwise evict each other and reload a whole
// segment for every fetch. Instead a read fetches the segment's tail
// (footer and sparse index, checked against their checksums and cached,
// small) and then only the window of batches it returns with one ranged
// object read, checking every batch it returns (frame, CRC-32C and
// contiguous offsets). A whole segment already in the cache is still
// served from there. Lookups by timestamp (offsetForTimeSealed) read such
// segments in windows too, from the index's time entry on.

import (
	"context"
	"errors"
	"fmt"

	"github.com/streamhouse/streamhouse/objstore"
)

const (
	// windowMinBytes is the least a windowed read fetches, so that small
	// fetches still read ahead a useful amount.
	windowMinBytes = 1 << 20
	// windowedShare: a segment of at least cache limit / windowedShare
	// bytes is read in windows rather than loaded whole.
	windowedShare = 8
	// tailKeySuffix marks a segment's cached tail (footer and index).
	tailKeySuffix = "#tail"
)

// windowed reports whether an object of size bytes is read in windows.
func (c *segmentCache) windowed(size int64) bool { return size*windowedShare >= c.limit }

// cached returns the segment under key if the cache holds it.
func (c *segmentCache) cached(key string) (*sealedSegment, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.entries[key]
	if !ok {
		return nil, false
	}
	c.lru.MoveToFront(el)
	c.m.cacheHits.Inc()
	return el.Value.(*cacheEntry).seg, true
}

// loadTail returns the footer and sparse index of the sealed segment
// object key of size bytes, through the cache (a sealedSegment without
// data).
func (m *Manager) loadTail(ctx context.Context, key string, size int64) (*sealedSegment, error) {
	return m.cache.get(ctx, key+tailKeySuffix, m.tailLoader(key, size))
}

// tailLoader returns the cache loader of loadTail.
func (m *Manager) tailLoader(key string, size int64) func(context.Context) (*sealedSegment, int64, error) {
	return func(ctx context.Context) (*sealedSegment, int64, error) {
		corrupt := func(at int64, err error) error {
			return &CorruptionError{Segment: key, Offset: at, Cause: err}
		}
		if size < footerLen {
			return nil, 0, corrupt(-1, fmt.Errorf("%d bytes, shorter than a footer", size))
		}
		fb, err := tailBytes(size, func(off, n int64) ([]byte, error) { return m.getRange(ctx, key, off, n) })
		if err != nil {
			return nil, 0, err
		}
		ft, err := decodeTail(fb)
		if err != nil {
			return nil, 0, corrupt(size-footerLen, err)
		}
		if ft.BatchesLen+ft.metaLen() != size {
			return nil, 0, corrupt(size-footerLen, fmt.Errorf("footer says %d batch bytes, %d index bytes and %d transaction bytes, object has %d",
				ft.BatchesLen, int64(ft.IndexCount)*indexEntryLen, ft.TxnLen, size))
		}
		mb, err := m.getRange(ctx, key, ft.BatchesLen, ft.metaLen()-footerLen)
		if err != nil {
			return nil, 0, err
		}
		entries, txn, err := decodeMeta(key, ft, mb)
		if err != nil {
			return nil, 0, err
		}
		s := &sealedSegment{name: key, ft: ft, txn: txn, index: newSparseIndexFrom(entries, defaultIndexInterval)}
		s.index.maxTS = ft.MaxTimestamp
		return s, ft.metaLen(), nil
	}
}

// tailFooter returns the footer of the segment object key if the cache
// holds its tail, without counting a hit or touching the LRU order.
func (c *segmentCache) tailFooter(key string) *Footer {
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.entries[key+tailKeySuffix]; ok {
		ft := el.Value.(*cacheEntry).seg.ft
		return &ft
	}
	return nil
}

// getRange reads exactly n bytes of key at off from the object store.
func (m *Manager) getRange(ctx context.Context, key string, off, n int64) ([]byte, error) {
	b, err := m.cfg.Objects.GetRange(ctx, key, off, n)
	if errors.Is(err, objstore.ErrNotFound) {
		return nil, fmt.Errorf("%w: %s", ErrSegmentMissing, key)
	}
	if err != nil {
		return nil, fmt.Errorf("log: read segment %s: %w", key, err)
	}
	if int64(len(b)) != n {
		return nil, &CorruptionError{Segment: key, Offset: off,
			Cause: fmt.Errorf("%w: %d bytes at %d, object has %d there", ErrCorruptSegment, n, off, len(b))}
	}
	return b, nil
}

// objWindow reads the batch region of a sealed segment object through
// windows of at least want bytes: a read within the current window costs
// nothing, any other fetches a new window starting where it asks.
type objWindow struct {
	m    *Manager
	ra   *readAhead // prefetched windows to use first, or nil
	ctx  context.Context
	key  string
	end  int64 // BatchesLen
	want int64
	w    []byte // the current window
	at   int64  // where it starts
}

// bytes returns the object's bytes [pos, pos+n).
func (o *objWindow) bytes(pos, n int64) ([]byte, error) {
	if pos < o.at || pos+n > o.at+int64(len(o.w)) {
		w, err := o.fetch(pos, max(n, min(o.want, o.end-pos)))
		if err != nil {
			return nil, err
		}
		o.w, o.at = w, pos
	}
	return o.w[pos-o.at : pos-o.at+n], nil
}

// fetch reads the object's bytes [pos, pos+n): as much as the read-ahead
// holds from there, the rest from the object store.
func (o *objWindow) fetch(pos, n int64) ([]byte, error) {
	var w []byte
	if o.ra != nil {
		w = o.ra.take(o.ctx, o.key, pos, n)
	}
	if int64(len(w)) == n {
		return w, nil
	}
	rest, err := o.m.getRange(o.ctx, o.key, pos+int64(len(w)), n-int64(len(w)))
	if err != nil || len(w) == 0 {
		return rest, err
	}
	return append(w[:len(w):len(w)], rest...), nil
}

// header returns the header of the batch at pos, checking that the batch
// stays in the batch region.
func (o *objWindow) header(pos int64) (BatchHeader, error) {
	if o.end-pos < batchHeaderLen {
		return BatchHeader{}, o.corrupt(pos, errShortFrame)
	}
	b, err := o.bytes(pos, batchHeaderLen)
	if err != nil {
		return BatchHeader{}, err
	}
	h, err := ParseBatchHeader(b)
	if err != nil {
		return h, o.corrupt(pos, err)
	}
	if h.Length < minBatchLength || int64(h.Size()) > o.end-pos {
		return h, o.corrupt(pos, fmt.Errorf("batch length %d out of range", h.Length))
	}
	return h, nil
}

func (o *objWindow) corrupt(pos int64, err error) error {
	return &CorruptionError{Segment: o.key, Offset: pos, Cause: err}
}

// readWindow is sealedSegment.read for a segment read in windows: whole
// batches starting with the one containing off, at least that batch,
// otherwise as many as fit in maxBytes; nil above the segment's last
// offset. Every batch returned is checked. It returns where the batches
// start in the object. ra, if not nil, holds prefetched windows to use;
// startPos, if not negative, is where a batch at or before the one
// holding off starts (the end of the previous sequential read), else
// the index says.
func (m *Manager) readWindow(ctx context.Context, ra *readAhead, key string, size, off, startPos int64, maxBytes int) ([]byte, int64, error) {
	t, err := m.loadTail(ctx, key, size)
	if err != nil {
		return nil, 0, err
	}
	ft := t.ft
	if off > ft.LastOffset || ft.BatchesLen == 0 {
		return nil, 0, nil
	}
	// The index entry is at most an index interval before the batch that
	// holds off; read that much more than maxBytes.
	o := &objWindow{m: m, ra: ra, ctx: ctx, key: key, end: ft.BatchesLen,
		want: max(int64(maxBytes)+2*defaultIndexInterval, windowMinBytes)}
	pos := t.index.lookupOffset(off, ft.BaseOffset)
	if startPos >= 0 {
		pos = startPos
	}
	for {
		if pos >= ft.BatchesLen && ft.Compacted {
			return nil, 0, nil // compaction removed everything from off on
		}
		if pos >= ft.BatchesLen {
			return nil, 0, o.corrupt(pos, fmt.Errorf("offset %d not found before the end of the batches", off))
		}
		h, err := o.header(pos)
		if err != nil {
			return nil, 0, err
		}
		if h.NextOffset() > off {
			// KIP-74: the first batch comes back whole, however large.
			if _, err := o.bytes(pos, int64(h.Size())); err != nil {
				return nil, 0, err
			}
			break
		}
		pos += int64(h.Size())
	}
	data, err := checkWindow(o.w[pos-o.at:], maxBytes, ft.Compacted, func(p int, err error) error { return o.corrupt(pos+int64(p), err) })
	return data, pos, err
}

// checkWindow returns the whole batches at the front of w that a read
// returns: the first (which w holds whole), then the rest while they fit
// in maxBytes and in w. Each is checked: frame, CRC-32C, offsets
// contiguous (increasing, with gaps allowed, in a compacted segment);
// corrupt reports a bad one at its position in w.
func checkWindow(w []byte, maxBytes int, gaps bool, corrupt func(pos int, err error) error) ([]byte, error) {
	end, next := 0, int64(-1)
	for end < len(w) {
		size, err := frameSize(w[end:])
		if err != nil || end+size > len(w) || (end > 0 && end+size > maxBytes) {
			break // a partial batch at the window's end, or over maxBytes
		}
		h, err := checkFrameOf(w[end:end+size], gaps)
		if err != nil {
			return nil, corrupt(end, err)
		}
		if next >= 0 && h.BaseOffset != next && !(gaps && h.BaseOffset > next) {
			return nil, corrupt(end, fmt.Errorf("batch base offset %d, want %d", h.BaseOffset, next))
		}
		next, end = h.NextOffset(), end+size
	}
	return w[:end:end], nil
}

// offsetForTimeSealed is sealedSegment.offsetForTime for the sealed
// segment object key of size bytes, read as readRemote reads: from the
// cache, in windows, or loaded whole.
func (m *Manager) offsetForTimeSealed(ctx context.Context, key string, size, ts int64) (offset, timestamp int64, found bool, err error) {
	if s, ok := m.cache.cached(key); ok {
		return s.offsetForTime(ts)
	}
	if !m.cache.windowed(size) {
		s, err := m.loadSealed(ctx, key)
		if err != nil {
			return 0, 0, false, err
		}
		return s.offsetForTime(ts)
	}
	t, err := m.loadTail(ctx, key, size)
	if err != nil || t.ft.MaxTimestamp < ts {
		return 0, 0, false, err
	}
	o := &objWindow{m: m, ctx: ctx, key: key, end: t.ft.BatchesLen, want: windowMinBytes}
	for pos := t.index.lookupTime(ts); pos < o.end; {
		h, err := o.header(pos)
		if err != nil {
			return 0, 0, false, err
		}
		n := int64(h.Size())
		if h.MaxTimestamp >= ts {
			b, err := o.bytes(pos, n)
			if err != nil {
				return 0, 0, false, err
			}
			if _, err := checkFrameOf(b, t.ft.Compacted); err != nil {
				return 0, 0, false, o.corrupt(pos, err)
			}
			recs, err := decodeBatch(b, true)
			if err != nil {
				return 0, 0, false, o.corrupt(pos, err)
			}
			for _, r := range recs {
				if r.Timestamp >= ts {
					return r.Offset, r.Timestamp, true, nil
				}
			}
			// A producer overstated MaxTimestamp: keep looking.
		}
		pos += n
	}
	return 0, 0, false, nil
}
