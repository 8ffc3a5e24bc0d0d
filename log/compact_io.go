package log

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"math/bits"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kbin"
	"github.com/twmb/franz-go/pkg/kgo"
)

// This file holds compaction's parts (compact.go has the run): the key
// map, the streaming reader of segment objects, the batch filter and the
// writer of the new segment objects.

func parseOffset(s string) (int64, error) { return strconv.ParseInt(s, 10, 64) }

// keySlotBytes is what one key costs in the key map: a 128-bit hash and
// an offset. Config.Cleaner.DedupeBufferBytes is counted in these.
const keySlotBytes = 24

// keyMap maps the 128-bit hash of a key to the last offset seen for it:
// an open-addressing table with linear probing, sized once (like Kafka's
// SkimpyOffsetMap) and filled to at most 90% of its slots. Two keys with
// the same 128-bit hash (SHA-256, truncated) would count as one; the odds
// are negligible.
type keyMap struct {
	slots []keySlot
	mask  uint64
	used  int
	limit int
}

type keySlot struct {
	hash [16]byte
	off  int64 // offset+1; 0 marks a free slot
}

// newKeyMap sizes a map for about expected keys within maxBytes.
func newKeyMap(maxBytes, expected int64) *keyMap {
	most := max(maxBytes/keySlotBytes, 16)
	most = 1 << (bits.Len64(uint64(most)) - 1) // a power of two that fits
	want := int64(16)
	for want < most && want*9/10 < expected {
		want *= 2
	}
	n := min(want, most)
	return &keyMap{slots: make([]keySlot, n), mask: uint64(n - 1), limit: int(n * 9 / 10)}
}

// keyHash is the map's key for a record key.
func keyHash(key []byte) [16]byte {
	sum := sha256.Sum256(key)
	return [16]byte(sum[:16])
}

// put records off as h's latest offset. It returns false, changing
// nothing, when h is new and the map is full.
func (m *keyMap) put(h [16]byte, off int64) bool {
	for i := binary.LittleEndian.Uint64(h[:8]) & m.mask; ; i = (i + 1) & m.mask {
		s := &m.slots[i]
		if s.off == 0 {
			if m.used >= m.limit {
				return false
			}
			s.hash, s.off = h, off+1
			m.used++
			return true
		}
		if s.hash == h {
			s.off = max(s.off, off+1)
			return true
		}
	}
}

// get returns h's latest offset.
func (m *keyMap) get(h [16]byte) (int64, bool) {
	for i := binary.LittleEndian.Uint64(h[:8]) & m.mask; ; i = (i + 1) & m.mask {
		s := &m.slots[i]
		if s.off == 0 {
			return 0, false
		}
		if s.hash == h {
			return s.off - 1, true
		}
	}
}

func (m *keyMap) len() int { return m.used }

// throttle holds a run's reads and writes to Config.Cleaner.IOBytesPerSecond.
type throttle struct {
	ctx   context.Context
	rate  int64
	start time.Time
	n     int64
}

func newThrottle(ctx context.Context, rate int64) *throttle {
	return &throttle{ctx: ctx, rate: rate, start: time.Now()}
}

// wait accounts n bytes and sleeps while the run is ahead of the rate.
func (t *throttle) wait(n int) {
	if t.rate <= 0 {
		return
	}
	t.n += int64(n)
	ahead := time.Duration(float64(t.n)/float64(t.rate)*float64(time.Second)) - time.Since(t.start)
	if ahead <= 0 {
		return
	}
	timer := time.NewTimer(ahead)
	defer timer.Stop()
	select {
	case <-timer.C:
	case <-t.ctx.Done():
	}
}

// errEndOfBatches ends an objectBatches walk.
var errEndOfBatches = errors.New("end of batches")

// objectBatches walks the batches of a sealed segment object with ranged
// reads of compactIOChunk bytes (or one batch, if larger), checking each
// batch's frame, CRC and offsets, so a run holds one chunk of each input
// in memory, never a whole segment.
type objectBatches struct {
	m     *Manager
	ctx   context.Context
	key   string
	ft    Footer
	pos   int64
	buf   []byte
	bufAt int64
	want  int64 // the least base offset the next batch may have
	read  int64 // bytes read from the store
}

func (m *Manager) openObjectBatches(ctx context.Context, key string, size int64) (*objectBatches, error) {
	corrupt := func(at int64, err error) error { return &CorruptionError{Segment: key, Offset: at, Cause: err} }
	if size < footerLen {
		return nil, corrupt(-1, fmt.Errorf("%d bytes, shorter than a footer", size))
	}
	fb, err := tailBytes(size, func(off, n int64) ([]byte, error) { return m.getRange(ctx, key, off, n) })
	if err != nil {
		return nil, err
	}
	ft, err := decodeTail(fb)
	if err != nil {
		return nil, corrupt(size-footerLen, err)
	}
	if ft.BatchesLen+ft.metaLen() != size {
		return nil, corrupt(size-footerLen, fmt.Errorf("footer does not add up to the object's %d bytes", size))
	}
	return &objectBatches{m: m, ctx: ctx, key: key, ft: ft, want: ft.BaseOffset, read: footerLen}, nil
}

// next returns the next batch (valid until the following call) and its
// header, or errEndOfBatches.
func (r *objectBatches) next(t *throttle) ([]byte, BatchHeader, error) {
	if r.pos >= r.ft.BatchesLen {
		return nil, BatchHeader{}, errEndOfBatches
	}
	corrupt := func(err error) error { return &CorruptionError{Segment: r.key, Offset: r.pos, Cause: err} }
	if err := r.ensure(r.pos, batchHeaderLen, t); err != nil {
		return nil, BatchHeader{}, err
	}
	h, err := ParseBatchHeader(r.buf[r.pos-r.bufAt:])
	if err != nil {
		return nil, h, corrupt(err)
	}
	size := int64(h.Size())
	if h.Length < minBatchLength || size > r.ft.BatchesLen-r.pos {
		return nil, h, corrupt(fmt.Errorf("batch length %d out of range", h.Length))
	}
	if err := r.ensure(r.pos, size, t); err != nil {
		return nil, h, err
	}
	b := r.buf[r.pos-r.bufAt : r.pos-r.bufAt+size]
	if h, err = checkFrameOf(b, r.ft.Compacted); err != nil {
		return nil, h, corrupt(err)
	}
	if h.BaseOffset < r.want || (!r.ft.Compacted && h.BaseOffset != r.want) || h.NextOffset()-1 > r.ft.LastOffset {
		return nil, h, corrupt(fmt.Errorf("batch at offset %d out of order (expected %d, segment ends at %d)", h.BaseOffset, r.want, r.ft.LastOffset))
	}
	r.want = h.NextOffset()
	r.pos += size
	return b, h, nil
}

// ensure makes buf hold the object's bytes [pos, pos+n).
func (r *objectBatches) ensure(pos, n int64, t *throttle) error {
	if pos >= r.bufAt && pos+n <= r.bufAt+int64(len(r.buf)) {
		return nil
	}
	want := min(max(n, compactIOChunk), r.ft.BatchesLen-pos)
	b, err := r.m.getRange(r.ctx, r.key, pos, want)
	if err != nil {
		return err
	}
	r.buf, r.bufAt = b, pos
	r.read += want
	t.wait(int(want))
	return nil
}

// recordView is one record of a batch, parsed in place.
type recordView struct {
	body      []byte // the record after its length prefix
	tsEnd     int    // index in body after the timestamp delta
	tsDelta   int64
	offDelta  int32
	key       []byte
	keyNull   bool
	valueNull bool
}

// eachRecord calls fn for every record of batch b (decompressed into the
// run's scratch buffer). The views are valid until the next call.
func (c *compaction) eachRecord(b []byte, h BatchHeader, fn func(*recordView)) error {
	region, err := recordsRegion(&c.scratch, b, h)
	if err != nil {
		return err
	}
	var r recordView
	for len(region) > 0 {
		body, rest, err := nextRecord(region)
		if err != nil {
			return err
		}
		if err := parseRecordView(body, &r); err != nil {
			return corruptf("batch at offset %d: %v", h.BaseOffset, err)
		}
		fn(&r)
		region = rest
	}
	return nil
}

func parseRecordView(body []byte, r *recordView) error {
	var ok bool
	*r = recordView{body: body}
	var i int
	if r.tsDelta, i, ok = varlongAt(body, 1); !ok {
		return errShortRecord
	}
	r.tsEnd = i
	if r.offDelta, i, ok = varintAt(body, i); !ok {
		return errShortRecord
	}
	kl, i, ok := varintAt(body, i)
	if !ok || kl < -1 || int(kl) > len(body)-i {
		return errShortRecord
	}
	if kl < 0 {
		r.keyNull = true
	} else {
		r.key, i = body[i:i+int(kl)], i+int(kl)
	}
	vl, _, ok := varintAt(body, i)
	if !ok || vl < -1 {
		return errShortRecord
	}
	r.valueNull = vl < 0
	return nil
}

// cleanBatch returns what of batch b a run writes: b itself when every
// record stays, nil when nothing does, otherwise a new batch (in the
// run's output buffer, valid until the next call) holding the records
// that stay, with the same base offset, offset deltas and producer fields.
func (c *compaction) cleanBatch(b []byte, h BatchHeader) ([]byte, error) {
	if h.IsControl() {
		return b, nil
	}
	if c.aborted.has(h) {
		// An aborted transaction's records are never read (Kafka's
		// cleaner removes them too); an empty batch keeps the
		// producer's sequence where the producer state needs it.
		c.res.RecordsDropped += int64(h.NumRecords)
		if c.lastBatches[h.ProducerID][h.NextOffset()-1] {
			return c.emptyBatch(b, h), nil
		}
		return nil, nil
	}
	horizonSet := h.Attributes&attrDeleteHorizon != 0
	nowMs := c.now.UnixMilli()
	c.kept = c.kept[:0]
	total, needHorizon := 0, false
	err := c.eachRecord(b, h, func(r *recordView) {
		total++
		off := h.BaseOffset + int64(r.offDelta)
		drop := off < c.plan.logStart || r.keyNull
		if !drop {
			if latest, ok := c.keys.get(keyHash(r.key)); ok && latest > off {
				drop = true
			}
		}
		if !drop && r.valueNull {
			if horizonSet && nowMs > h.FirstTimestamp {
				drop = true
				c.res.TombstonesDroped++
			} else {
				needHorizon = needHorizon || !horizonSet
				c.res.TombstonesKept++
			}
		}
		if drop {
			c.res.RecordsDropped++
			return
		}
		c.res.RecordsKept++
		c.kept = append(c.kept, keptRecord{body: r.body, tsEnd: r.tsEnd, tsDelta: r.tsDelta})
	})
	if err != nil {
		return nil, err
	}
	switch {
	case len(c.kept) == total && !needHorizon:
		return b, nil
	case len(c.kept) == 0:
		if h.ProducerID >= 0 && c.lastBatches[h.ProducerID][h.NextOffset()-1] {
			return c.emptyBatch(b, h), nil
		}
		return nil, nil
	}
	first, attrs, maxTs := h.FirstTimestamp, h.Attributes, h.MaxTimestamp
	if !h.LogAppendTime() {
		// The largest time of the records that stay, so that a lookup of
		// the partition's largest timestamp finds a record that has it.
		maxTs = noTimestamp
		for _, k := range c.kept {
			maxTs = max(maxTs, h.FirstTimestamp+k.tsDelta)
		}
	}
	if needHorizon {
		first = c.now.Add(c.plan.settings.deleteRetention).UnixMilli()
		attrs |= attrDeleteHorizon
	}
	region := c.region[:0]
	for _, k := range c.kept {
		if !needHorizon {
			region = kbin.AppendVarint(region, int32(len(k.body)))
			region = append(region, k.body...)
			continue
		}
		// Same record time, relative to the horizon now in firstTimestamp.
		delta := h.FirstTimestamp + k.tsDelta - first
		n := 1 + kbin.VarlongLen(delta) + len(k.body) - k.tsEnd
		region = kbin.AppendVarint(region, int32(n))
		region = append(region, k.body[0])
		region = kbin.AppendVarlong(region, delta)
		region = append(region, k.body[k.tsEnd:]...)
	}
	c.region = region
	if codec := h.Codec(); codec != CodecNone {
		var buf bytes.Buffer
		out, used := compressors[codec].Compress(&buf, region)
		if used == kgo.CompressionCodecType(codec) {
			region = out
		} else {
			attrs &^= attrCodecMask // the compressor gave up: store plain
		}
	}
	nb := append(c.out[:0], b[:batchHeaderLen]...)
	nb = append(nb, region...)
	c.out = nb
	return finishBatch(nb, attrs, first, maxTs, int32(len(c.kept))), nil
}

// keptRecord is a record cleanBatch keeps: its body and timestamp delta.
type keptRecord struct {
	body    []byte
	tsEnd   int
	tsDelta int64
}

// emptyBatch is b's header alone: no records, no codec, the same offsets
// and producer fields (what Kafka keeps of a producer's last batch), and
// a MaxTimestamp of -1: no record of it may be found by time.
func (c *compaction) emptyBatch(b []byte, h BatchHeader) []byte {
	nb := append(c.out[:0], b[:batchHeaderLen]...)
	c.out = nb
	return finishBatch(nb, h.Attributes&^attrCodecMask, h.FirstTimestamp, noTimestamp, 0)
}

// finishBatch sets a rebuilt batch's length, attributes, first and max
// timestamps and record count, and its CRC.
func finishBatch(nb []byte, attrs int16, first, maxTs int64, count int32) []byte {
	be := binary.BigEndian
	be.PutUint32(nb[offLength:], uint32(len(nb)-batchLengthOverhead))
	be.PutUint16(nb[offAttributes:], uint16(attrs))
	be.PutUint64(nb[offFirstTimestamp:], uint64(first))
	be.PutUint64(nb[offMaxTimestamp:], uint64(maxTs))
	be.PutUint32(nb[offRecordCount:], uint32(count))
	be.PutUint32(nb[offCRC:], crc32.Checksum(nb[offAttributes:], castagnoli))
	return nb
}

// segmentWriter writes a compacted segment to a local temporary file and
// then puts it in the object store under a new key.
type segmentWriter struct {
	p          *Partition
	f          file
	path       string
	base, last int64 // the offsets the segment covers
	gen        int64
	size       int64
	index      *sparseIndex
	maxTs      int64
	records    int64
	txn        *segTxn // the transaction section to write
}

func (p *Partition) newSegmentWriter(base, last, gen int64) (*segmentWriter, error) {
	path := filepath.Join(p.dir, fmt.Sprintf("%020d-%d%s", base, gen, compactionLeftoverSuffix))
	f, err := p.m.fs.OpenFile(path, os.O_CREATE|os.O_RDWR|os.O_TRUNC, 0o644)
	if err != nil {
		return nil, fmt.Errorf("create %s: %w", path, err)
	}
	return &segmentWriter{p: p, f: f, path: path, base: base, last: last, gen: gen,
		index: newSparseIndex(defaultIndexInterval), maxTs: noTimestamp}, nil
}

func (w *segmentWriter) add(b []byte, h BatchHeader) error {
	if _, err := w.f.WriteAt(b, w.size); err != nil {
		return fmt.Errorf("write %s: %w", w.path, err)
	}
	w.index.add(h, w.base, w.size)
	w.size += int64(len(b))
	w.maxTs = max(w.maxTs, h.MaxTimestamp)
	w.records += int64(h.NumRecords)
	return nil
}

// finish writes index and footer, uploads the file and checks that the
// object ends with that footer.
func (w *segmentWriter) finish(ctx context.Context) (*segment, error) {
	ft := Footer{BaseOffset: w.base, LastOffset: w.last, MaxTimestamp: w.maxTs, RecordCount: w.records,
		BatchesLen: w.size, Compacted: true}
	entries := w.index.list
	if w.size == 0 {
		entries = nil
	}
	tail := encodeSealTail(entries, w.txn, ft)
	ft.IndexCount = uint32(len(entries))
	if err := checkFooter(ft); err != nil {
		return nil, fmt.Errorf("compacted segment %d: footer %+v: %w", w.base, ft, err)
	}
	if _, err := w.f.WriteAt(tail, w.size); err != nil {
		return nil, fmt.Errorf("write %s: %w", w.path, err)
	}
	total := w.size + int64(len(tail))
	key := compactedObjectKey(w.p.topicID, w.p.index, w.base, w.gen)
	m := w.p.m
	if err := m.cfg.Objects.Put(ctx, key, io.NewSectionReader(w.f, 0, total), total); err != nil {
		return nil, fmt.Errorf("upload %s: %w", key, err)
	}
	if same, err := m.objectHasFooter(ctx, key, total, tail[len(tail)-footerLen:]); err != nil || !same {
		return nil, fmt.Errorf("uploaded object %s does not end with the segment's footer (err %v)", key, err)
	}
	return &segment{base: w.base, key: key, next: w.last + 1, size: total, maxTs: w.maxTs,
		records: w.records, sealed: true, remote: true, compacted: true, txn: w.txn}, nil
}

// discard closes and removes the temporary file.
func (w *segmentWriter) discard() {
	w.f.Close()
	if err := w.p.m.fs.Remove(w.path); err != nil && !errors.Is(err, os.ErrNotExist) {
		w.p.m.logger.Warn("removing compaction scratch file", "path", w.path, "err", err)
	}
}
