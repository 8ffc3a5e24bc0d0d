package log

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"

	"github.com/streamhouse/streamhouse/objstore"
)

// ReadResult is the answer to a Read.
type ReadResult struct {
	// Batches holds whole record batches, raw as stored: the first one
	// contains the requested offset (so it may start before it). Empty
	// when the offset is the high watermark. Callers must not modify it.
	Batches        []byte
	HighWatermark  int64
	LogStartOffset int64

	// Region, set only by ReadRegion, holds the batches instead of
	// Batches: a range of a local segment file to send from.
	Region *FileRegion

	// buf is the pooled buffer behind Batches, if any (bufpool.go).
	pool *readPool
	buf  *[]byte
}

// Release hands the buffer behind Batches back to the log for reuse by a
// later read, and closes Region's file. Optional for Read (a result never
// released is simply collected), required for ReadRegion. After Release,
// Batches (and anything sliced from it) must not be used.
func (r *ReadResult) Release() {
	if r.buf != nil {
		r.pool.put(r.buf)
		r.pool, r.buf, r.Batches = nil, nil, nil
	}
	if r.Region != nil {
		r.Region.File.Close()
		r.Region.open.Add(-1)
		r.Region = nil
	}
}

// readPlan is what a reader learns under the partition lock before doing
// any I/O without it.
type readPlan struct {
	seg    *segment
	remote bool
	pos    int64 // where to start scanning (from the sparse index)
	limit  int64 // end of the batch region visible to this reader
	next   int64 // offset after the last batch before limit
	// objSize is a remote segment's object size.
	objSize int64
}

// Read returns whole batches from offset on, at most maxBytes of them but
// always at least one whole batch (KIP-74), from a single segment. When
// compaction left nothing at or after offset in its segment, the read
// moves on to the next one, so it returns nothing only at the high
// watermark or when compaction removed everything up to it.
func (p *Partition) Read(ctx context.Context, offset int64, maxBytes int) (ReadResult, error) {
	retried := false
	for {
		plan, res, err := p.planRead(offset)
		if err != nil || plan.seg == nil {
			return res, err
		}
		data, buf, err := p.readPlanned(ctx, plan, offset, maxBytes)
		if errors.Is(err, ErrSegmentMissing) && !retried && p.wasReplaced(plan.seg) {
			// Compaction swapped the segment out and its object is gone:
			// the new segment holds the same records.
			retried = true
			continue
		}
		if errors.Is(err, ErrSegmentMissing) {
			err = p.belowLogStart(offset, err)
		}
		if err != nil {
			return res, err
		}
		if len(data) == 0 {
			if next, ok := p.afterSegment(plan.seg, offset); ok {
				p.m.reads.put(buf)
				offset = next
				continue
			}
		}
		res.Batches = data
		if buf != nil {
			res.pool, res.buf = &p.m.reads, buf
		}
		p.stats.countRead(data)
		return res, nil
	}
}

// readPlanned reads what plan says: the local file, or the object once
// the local copy is gone. buf is the pooled buffer behind a local read.
func (p *Partition) readPlanned(ctx context.Context, plan readPlan, offset int64, maxBytes int) ([]byte, *[]byte, error) {
	if !plan.remote {
		data, buf, ok, err := p.readLocal(plan, offset, maxBytes)
		if err != nil || ok {
			return data, buf, err
		}
		// The local copy went away after upload: read the object.
		p.mu.Lock()
		plan.objSize = plan.seg.size
		p.mu.Unlock()
	}
	data, err := p.readRemote(ctx, plan.seg, plan.objSize, offset, maxBytes)
	return data, nil, err
}

// wasReplaced reports whether compaction has swapped s out.
func (p *Partition) wasReplaced(s *segment) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return s.replaced
}

// afterSegment returns the offset a read that found nothing at offset in
// s goes on from: the end of s, when a later segment exists and offset is
// below the high watermark. Only a compacted segment ends in a hole.
func (p *Partition) afterSegment(s *segment, offset int64) (int64, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !s.compacted || s.replaced || offset >= p.hwm || s.next <= offset || s == p.segs[len(p.segs)-1] {
		return 0, false
	}
	return s.next, true
}

// belowLogStart turns a missing segment into ErrOffsetOutOfRange when
// retention or DeleteRecords moved the log start past offset while the
// read ran: the object went with it, and the client must be told to reset
// its position, not that storage failed.
func (p *Partition) belowLogStart(offset int64, err error) error {
	if logStart := p.logStartSnapshot(); offset < logStart {
		return fmt.Errorf("%w: offset %d below the log start %d of %s-%d (deleted while read)",
			ErrOffsetOutOfRange, offset, logStart, p.topic, p.index)
	}
	return err
}

func (p *Partition) planRead(offset int64) (readPlan, ReadResult, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	res := ReadResult{HighWatermark: p.hwm, LogStartOffset: p.logStart}
	if p.closed {
		return readPlan{}, res, fmt.Errorf("partition %s-%d: %w", p.topic, p.index, ErrClosed)
	}
	if offset < p.logStart || offset > p.hwm {
		return readPlan{}, res, fmt.Errorf("%w: offset %d outside [%d, %d] of %s-%d",
			ErrOffsetOutOfRange, offset, p.logStart, p.hwm, p.topic, p.index)
	}
	if offset == p.hwm {
		return readPlan{}, res, nil
	}
	seg := p.segmentForLocked(offset)
	plan := readPlan{seg: seg, remote: seg.remote}
	if seg.remote {
		plan.objSize = seg.size
	} else {
		plan.pos = seg.index.lookupOffset(offset, seg.base)
		plan.limit, plan.next = seg.size, seg.next
	}
	return plan, res, nil
}

// segmentForLocked returns the segment holding offset (logStart <= offset
// < hwm), or when offset falls in a hole between segments (records lost
// to damage) the next segment, whose first batch a read then returns.
func (p *Partition) segmentForLocked(offset int64) *segment {
	i := sort.Search(len(p.segs), func(i int) bool { return p.segs[i].base > offset })
	if i == 0 {
		return p.segs[0]
	}
	if s := p.segs[i-1]; offset >= s.next && i < len(p.segs) {
		return p.segs[i]
	}
	return p.segs[i-1]
}

// readLocal reads from a segment's local file into a pooled buffer,
// returned with its pool handle (nil if not pooled). ok is false when the
// file has been closed because the segment now lives in the object store.
func (p *Partition) readLocal(plan readPlan, offset int64, maxBytes int) ([]byte, *[]byte, bool, error) {
	p.fileMu.RLock()
	defer p.fileMu.RUnlock()
	f := plan.seg.file
	if f == nil {
		return nil, nil, false, nil
	}
	pos := plan.pos
	var first BatchHeader
	for {
		if pos >= plan.limit {
			return nil, nil, true, nil
		}
		h, err := p.localHeader(plan.seg, f, pos, plan.limit)
		if err != nil {
			return nil, nil, true, err
		}
		if h.NextOffset() > offset {
			first = h
			break
		}
		pos += int64(h.Size())
	}
	n := int64(maxBytes)
	if int64(first.Size()) > n {
		n = int64(first.Size())
	}
	if pos+n > plan.limit {
		n = plan.limit - pos
	}
	buf, h := p.m.reads.get(int(n))
	// The buffer is not zeroed: expose only what the read filled.
	got, err := f.ReadAt(buf, pos)
	if err != nil && !errors.Is(err, io.EOF) {
		p.m.reads.put(h)
		return nil, nil, true, p.corrupt(plan.seg, pos, err)
	}
	whole := wholeBatchesLen(buf[:got])
	return buf[:whole:whole], h, true, nil
}

func (p *Partition) corrupt(s *segment, pos int64, cause error) error {
	return &CorruptionError{Segment: s.path, Offset: pos, Cause: cause}
}

// localHeader reads the header of the batch at pos in s's local file f,
// whose batches end at limit. The batch must fit between pos and limit
// with at least a header's length, so that every walk over a local file
// makes progress: a damaged length is a *CorruptionError, never a loop.
func (p *Partition) localHeader(s *segment, f file, pos, limit int64) (BatchHeader, error) {
	var hdr [batchHeaderLen]byte
	if _, err := f.ReadAt(hdr[:], pos); err != nil {
		return BatchHeader{}, p.corrupt(s, pos, err)
	}
	h, err := ParseBatchHeader(hdr[:])
	if err != nil {
		return h, p.corrupt(s, pos, err)
	}
	if h.Length < minBatchLength || int64(h.Size()) > limit-pos {
		return h, p.corrupt(s, pos, fmt.Errorf("batch length %d out of range (%d bytes to the end of the batches)", h.Length, limit-pos))
	}
	return h, nil
}

// wholeBatchesLen returns the length of the longest prefix of b made of
// whole batches (by their length fields).
func wholeBatchesLen(b []byte) int {
	n := 0
	for len(b)-n >= 12 {
		size := 12 + int(int32(uint32(b[n+8])<<24|uint32(b[n+9])<<16|uint32(b[n+10])<<8|uint32(b[n+11])))
		if size < batchHeaderLen || n+size > len(b) {
			break
		}
		n += size
	}
	return n
}

// loadSealed returns a sealed segment from the cache, reading the object
// store on a miss.
func (m *Manager) loadSealed(ctx context.Context, key string) (*sealedSegment, error) {
	return m.cache.get(ctx, key, m.sealedLoader(key))
}

// sealedLoader returns the cache loader of loadSealed: the whole object,
// every batch checked.
func (m *Manager) sealedLoader(key string) func(context.Context) (*sealedSegment, int64, error) {
	return func(ctx context.Context) (*sealedSegment, int64, error) {
		data, err := m.cfg.Objects.Get(ctx, key)
		if errors.Is(err, objstore.ErrNotFound) {
			return nil, 0, fmt.Errorf("%w: %s", ErrSegmentMissing, key)
		}
		if err != nil {
			return nil, 0, fmt.Errorf("log: read segment %s: %w", key, err)
		}
		s, err := openSealed(key, data)
		if err != nil {
			return nil, 0, err
		}
		return s, int64(len(data)), nil
	}
}

// OffsetForTimestamp returns the earliest offset whose record timestamp is
// at least ts, with that record's timestamp. found is false when every
// record is older (Kafka then answers with the high watermark).
func (p *Partition) OffsetForTimestamp(ctx context.Context, ts int64) (offset, timestamp int64, found bool, err error) {
	p.mu.Lock()
	var cands []timeCand
	for _, s := range p.segs {
		if s.maxTs < ts || s.next == s.base || s.next <= p.logStart {
			continue
		}
		cands = append(cands, p.timeCandLocked(s, ts))
	}
	logStart := p.logStart
	p.mu.Unlock()
	return p.searchTime(ctx, cands, ts, logStart)
}

// MaxTimestamp returns the offset and timestamp of the record with the
// largest timestamp (the first such record when several share it): the
// segment with the largest MaxTimestamp (the earliest on a tie) is searched
// for that timestamp. found is false for an empty partition.
func (p *Partition) MaxTimestamp(ctx context.Context) (offset, timestamp int64, found bool, err error) {
	p.mu.Lock()
	var best *segment
	for _, s := range p.segs {
		if s.next == s.base || s.next <= p.logStart || s.maxTs < 0 {
			continue
		}
		if best == nil || s.maxTs > best.maxTs {
			best = s
		}
	}
	if best == nil {
		p.mu.Unlock()
		return 0, 0, false, nil
	}
	ts := best.maxTs
	cands := []timeCand{p.timeCandLocked(best, ts)}
	logStart := p.logStart
	p.mu.Unlock()
	return p.searchTime(ctx, cands, ts, logStart)
}

// timeCand is a segment to search for a timestamp, with the byte range of
// its local copy worth scanning.
type timeCand struct {
	seg    *segment
	remote bool
	pos    int64
	limit  int64
}

func (p *Partition) timeCandLocked(s *segment, ts int64) timeCand {
	c := timeCand{seg: s, remote: s.remote}
	if !s.remote {
		c.pos, c.limit = s.index.lookupTime(ts), s.size
	}
	return c
}

// searchTime returns the first record at or after logStart whose
// timestamp is at least ts in the candidate segments, in order: local
// segments are scanned from disk, remote ones through the cache.
func (p *Partition) searchTime(ctx context.Context, cands []timeCand, ts, logStart int64) (offset, timestamp int64, found bool, err error) {
	for _, c := range cands {
		var recs []Record
		if !c.remote {
			var ok bool
			recs, ok, err = p.scanLocalForTime(c.seg, c.pos, c.limit, ts)
			if err != nil {
				return 0, 0, false, err
			}
			if ok {
				if off, t, hit := firstAtOrAfter(recs, ts, logStart); hit {
					return off, t, true, nil
				}
				continue
			}
		}
		p.mu.Lock()
		size := c.seg.size // the object's size once remote
		p.mu.Unlock()
		off, t, hit, err := p.m.offsetForTimeSealed(ctx, c.seg.key, size, ts)
		if errors.Is(err, ErrSegmentMissing) && c.seg.next <= p.logStartSnapshot() {
			continue // deleted by retention while searched: nothing there counts
		}
		if err != nil {
			return 0, 0, false, err
		}
		if hit {
			if off < logStart {
				off = logStart
			}
			return off, t, true, nil
		}
	}
	return 0, 0, false, nil
}

// scanLocalForTime decodes the first batch of a local segment, from pos,
// whose MaxTimestamp reaches ts.
func (p *Partition) scanLocalForTime(s *segment, pos, limit, ts int64) ([]Record, bool, error) {
	p.fileMu.RLock()
	defer p.fileMu.RUnlock()
	if s.file == nil {
		return nil, false, nil
	}
	for pos < limit {
		h, err := p.localHeader(s, s.file, pos, limit)
		if err != nil {
			return nil, true, err
		}
		if h.MaxTimestamp >= ts {
			buf := make([]byte, h.Size())
			if _, err := s.file.ReadAt(buf, pos); err != nil {
				return nil, true, p.corrupt(s, pos, err)
			}
			recs, err := DecodeBatch(buf)
			if err != nil {
				return nil, true, p.corrupt(s, pos, err)
			}
			return recs, true, nil
		}
		pos += int64(h.Size())
	}
	return nil, true, nil
}

func firstAtOrAfter(recs []Record, ts, logStart int64) (int64, int64, bool) {
	for _, r := range recs {
		if r.Timestamp >= ts && r.Offset >= logStart {
			return r.Offset, r.Timestamp, true
		}
	}
	return 0, 0, false
}
