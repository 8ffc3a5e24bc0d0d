package log

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/s2"
	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
)

// Bounded decompression of batch records.
//
// A compressed batch is decompressed to validate or decode its records, and
// its bytes come from producers we do not trust: a few KiB of gzip or zstd
// can claim gigabytes. Every codec here stops at maxDecompressedBatch and
// fails the batch with ErrCorruptBatch. Where a format states its size up
// front (a snappy block's length, a gzip trailer, a zstd frame header) a
// claim over the limit is refused before anything is decoded or allocated.
//
// What one batch can make us hold: its output, at most maxDecompressedBatch
// bytes (readAll reads one byte more to see the limit passed, into at most
// one more chunk), plus the codec's own state: for lz4 up to two 4 MiB
// blocks, for zstd the frame's window, at most maxDecompressedBatch (see
// zstdOptions) and 8 MiB or less from common encoders. A batch that
// decompresses fine after spilling into chunks also holds them while they
// are copied onto the result (see readAll).

// maxDecompressedBatch bounds the decompressed records of one batch: it is
// the memory bound per batch being validated or decoded, whatever its codec
// claims. Kafka itself only bounds the compressed size (max.message.bytes,
// 1 MiB by default); producers batch far below 64 MiB of records, and a
// topic configured for larger batches gets ErrCorruptBatch for any that
// decompress past it. Never change it without thinking: raising it raises
// what one hostile request can make the broker allocate, lowering it
// refuses batches that were accepted before.
const maxDecompressedBatch = 64 << 20

// decompressChunk is the size of the pooled chunks that the stream codecs
// (gzip, lz4, zstd) decompress into once the destination's capacity runs
// out. Chunks rather than a doubling buffer, so that a bomb costs at most
// the limit before it is refused (a doubling buffer allocates twice that
// on the way); 256 KiB holds a typical batch in one chunk.
const decompressChunk = 256 << 10

// maxPooledScratch is the largest scratch buffer put back in the pool. A
// buffer grown past it by a rare large batch is left to the GC rather than
// pinned for the next one.
const maxPooledScratch = 4 << 20

// Bounds on how much a format can expand its input, used to cap a size
// the input merely claims before we allocate for it. A false claim then
// costs no more than a true bomb of the same size would.
const (
	// deflateMaxRatio: deflate's longest match, 258 bytes, costs at
	// best two bits (one-bit length and distance codes).
	deflateMaxRatio = 1032
	// snappyMaxRatio: every snappy element of k bytes yields at most
	// 64k/3 bytes (a 3-byte copy of 64), so a block claiming more than
	// 22 times its length is corrupt, whatever its header says.
	snappyMaxRatio = 22
	// zstdMaxRatio: a zstd block is at least 4 bytes (3 of header, 1 of
	// RLE byte) and yields at most 128 KiB.
	zstdMaxRatio = 128 << 10 / 4
)

// Xerial framing, which Java's snappy-java (and so Kafka's Java clients)
// wraps snappy in: this magic, a big-endian version and minimum compatible
// version, then blocks of a big-endian uint32 length and a raw snappy
// block. We ignore the versions, as kgo does. A raw snappy
// block cannot begin with the magic: its length varint would be followed
// by 'N', a copy tag, as the first element, where nothing precedes it to
// copy.
var xerialMagic = [8]byte{0x82, 'S', 'N', 'A', 'P', 'P', 'Y', 0}

const xerialHeaderLen = len(xerialMagic) + 4 + 4

// recordsDecompressor decompresses every compressed batch of the package.
// Like compressors, it is set once at initialisation and never
// reassigned; its mutable state is in sync.Pools and a zstd decoder made
// for concurrent DecodeAll calls, so goroutines and Managers share it
// safely.
var recordsDecompressor = newDecompressor(maxDecompressedBatch)

// decompressor decompresses batch records, failing any batch whose records
// decompress to more than limit bytes. It is safe for concurrent use:
// each call takes the codec state it needs from a pool and puts it back.
type decompressor struct {
	limit int // most decompressed bytes of records a batch may have

	gzip    sync.Pool // *gzipStream
	lz4     sync.Pool // *lz4Stream
	zstd    sync.Pool // *zstdStream
	chunks  sync.Pool // *[decompressChunk]byte
	scratch sync.Pool // *[]byte, for records only inspected (ValidateBatch)

	// zstdAll decodes zstd whose first frame declares its size (as kgo
	// writes it) with DecodeAll, straight into a buffer of
	// that size: no window, no copy. DecodeAll is safe for concurrent
	// use, and with WithDecodeAllCapLimit it never writes past, or grows,
	// the buffer it is given.
	zstdAll *zstd.Decoder
}

// The stream decoders are pooled together with the bytes.Reader they read
// from, so that a call allocates neither.
type (
	gzipStream struct {
		src bytes.Reader
		r   gzip.Reader
	}
	lz4Stream struct {
		src bytes.Reader
		r   *lz4.Reader
	}
	zstdStream struct {
		src bytes.Reader
		r   *zstd.Decoder
	}
)

// zstdOptions configure the pooled zstd decoders, which decode as streams
// into readAll's bounded sink: DecodeAll grows its output as it goes and
// checks the bound only per frame, so that a small input of several
// frames of undeclared size makes it allocate several times the limit.
//
//   - Concurrency 1 decodes synchronously in the caller's goroutine: the
//     decoder starts no goroutines, so a pooled one that the GC drops
//     leaks nothing and needs no Close.
//   - A stream decoder allocates the frame's whole window up front.
//     WithDecoderMaxMemory (for streams, a window cap) and
//     WithDecoderMaxWindow refuse a window over maxDecompressedBatch
//     before that. Up to level 21 zstd asks for at most 64 MiB; level 22
//     without a declared size asks for 128 MiB and is refused. The window
//     cap is the constant, not a decompressor's limit, so that a small
//     limit in tests does not refuse the 2-8 MiB windows encoders use.
//   - WithDecodeBuffersBelow(0) turns off the shortcut that decodes small
//     in-memory readers with DecodeAll, which would bypass the bound.
func zstdOptions() []zstd.DOption {
	return []zstd.DOption{
		zstd.WithDecoderConcurrency(1),
		zstd.WithDecoderLowmem(true),
		zstd.WithDecoderMaxMemory(maxDecompressedBatch),
		zstd.WithDecoderMaxWindow(maxDecompressedBatch),
		zstd.WithDecodeBuffersBelow(0),
	}
}

// newDecompressor returns a decompressor bounding batches at limit bytes.
func newDecompressor(limit int) *decompressor {
	d := &decompressor{limit: limit}
	d.gzip.New = func() any { return new(gzipStream) }
	d.lz4.New = func() any { return &lz4Stream{r: lz4.NewReader(nil)} }
	d.zstd.New = func() any {
		r, err := zstd.NewReader(nil, zstdOptions()...)
		if err != nil {
			// The options are constants, checked below at start.
			panic(fmt.Sprintf("log: zstd decoder: %v", err))
		}
		return &zstdStream{r: r}
	}
	d.chunks.New = func() any { return new([decompressChunk]byte) }
	d.scratch.New = func() any { return new([]byte) }
	// Build one zstd stream decoder now, so that options zstd refuses
	// fail at package initialisation rather than on the first zstd batch.
	d.zstd.Put(d.zstd.New())
	var err error
	d.zstdAll, err = zstd.NewReader(nil, append(zstdOptions(),
		zstd.WithDecoderConcurrency(0), // DecodeAll calls in parallel: GOMAXPROCS
		zstd.WithDecodeAllCapLimit(true))...)
	if err != nil {
		panic(fmt.Sprintf("log: zstd decoder: %v", err))
	}
	return d
}

// decompress appends the records that src, compressed with c, decompresses
// to onto dst and returns the extended slice. Errors are *BatchError
// wrapping ErrCorruptBatch, including for records that decompress to more
// than d.limit bytes.
func (d *decompressor) decompress(dst, src []byte, c Codec) ([]byte, error) {
	var out []byte
	var err error
	switch c {
	case CodecGzip:
		out, err = d.gunzip(dst, src)
	case CodecSnappy:
		out, err = d.unsnappy(dst, src)
	case CodecLZ4:
		out, err = d.unlz4(dst, src)
	case CodecZstd:
		out, err = d.unzstd(dst, src)
	default:
		return dst, corruptf("unknown compression codec %d", c)
	}
	if err != nil {
		return dst, corruptf("decompress %s records: %v", c, err)
	}
	return out, nil
}

// tooLarge is the error for records that decompress, or declare that they
// decompress, to more than the limit; what names a declaration, if any.
func (d *decompressor) tooLarge(what string, n uint64) error {
	limit := fmt.Sprintf("%d bytes", d.limit)
	if d.limit%(1<<20) == 0 {
		limit = fmt.Sprintf("%d MiB", d.limit>>20)
	}
	if what == "" {
		return fmt.Errorf("decompressed size exceeds %s", limit)
	}
	return fmt.Errorf("%s declares %d bytes: decompressed size exceeds %s", what, n, limit)
}

// getScratch returns a pooled buffer for records that are decompressed only
// to be inspected; putScratch gives it back.
func (d *decompressor) getScratch() *[]byte { return d.scratch.Get().(*[]byte) }

// putScratch returns p, which may have grown, to the pool; the caller must
// no longer use what it holds.
func (d *decompressor) putScratch(p *[]byte) {
	if cap(*p) > maxPooledScratch {
		*p = nil
	}
	*p = (*p)[:0]
	d.scratch.Put(p)
}

// gunzip decompresses gzip, including several concatenated members.
func (d *decompressor) gunzip(dst, src []byte) ([]byte, error) {
	// A member ends with ISIZE, its decompressed length mod 2^32. If the
	// last member claims more than the limit, the stream is either that
	// long or corrupt: refuse it unread. A smaller claim sizes dst once;
	// capped by deflate's best ratio, a false one costs us no more than a
	// true bomb.
	if len(src) >= 4 {
		isize := binary.LittleEndian.Uint32(src[len(src)-4:])
		if uint64(isize) > uint64(d.limit) {
			return dst, d.tooLarge("gzip trailer", uint64(isize))
		}
		dst = slices.Grow(dst, min(int(isize), deflateMaxRatio*len(src)))
	}
	s := d.gzip.Get().(*gzipStream)
	defer d.gzip.Put(s)
	defer s.src.Reset(nil) // drop src before pooling
	s.src.Reset(src)
	if err := s.r.Reset(&s.src); err != nil {
		return dst, err
	}
	return d.readAll(dst, &s.r)
}

// unlz4 decompresses lz4 frames.
func (d *decompressor) unlz4(dst, src []byte) ([]byte, error) {
	s := d.lz4.Get().(*lz4Stream)
	defer d.lz4.Put(s)
	defer s.src.Reset(nil)
	defer s.r.Reset(nil) // gives its block buffer back to lz4's pool
	s.src.Reset(src)
	s.r.Reset(&s.src)
	return d.readAll(dst, s.r)
}

// unzstd decompresses zstd frames.
func (d *decompressor) unzstd(dst, src []byte) ([]byte, error) {
	// A first frame declaring more than the limit is refused unread; a
	// smaller declaration sizes dst once, capped by zstd's best ratio,
	// and is first tried with DecodeAll. That fails if more frames follow
	// than fit, the declaration is false or the input corrupt; the stream
	// decode below then finds out which.
	var h zstd.Header
	if h.Decode(src) == nil && h.HasFCS {
		if h.FrameContentSize > uint64(d.limit) {
			return dst, d.tooLarge("zstd frame header", h.FrameContentSize)
		}
		dst = slices.Grow(dst, min(int(h.FrameContentSize), zstdMaxRatio*len(src)))
		room := min(cap(dst)-len(dst), d.limit)
		if out, err := d.zstdAll.DecodeAll(src, dst[:len(dst):len(dst)+room]); err == nil {
			return out, nil
		}
	}
	s := d.zstd.Get().(*zstdStream)
	defer d.zstd.Put(s)
	defer s.src.Reset(nil)
	s.src.Reset(src)
	if err := s.r.Reset(&s.src); err != nil {
		return dst, err
	}
	return d.readAll(dst, s.r)
}

// unsnappy decompresses a raw snappy block or xerial-framed blocks.
func (d *decompressor) unsnappy(dst, src []byte) ([]byte, error) {
	if len(src) >= xerialHeaderLen && [8]byte(src) == xerialMagic {
		return d.unxerial(dst, src[xerialHeaderLen:])
	}
	n, err := d.snappyLen(src, d.limit)
	if err != nil {
		return dst, err
	}
	return decodeSnappyBlock(slices.Grow(dst, n), src, n)
}

// unxerial decompresses the blocks of a xerial frame (after its header).
// It first sums the lengths the blocks declare, so that a frame over the
// limit is refused before any decoding and dst grows once.
func (d *decompressor) unxerial(dst, body []byte) ([]byte, error) {
	total := 0
	for rest := body; len(rest) > 0; {
		block, next, err := nextXerialBlock(rest)
		if err != nil {
			return dst, err
		}
		n, err := d.snappyLen(block, d.limit-total)
		if err != nil {
			return dst, err
		}
		total += n
		rest = next
	}
	dst = slices.Grow(dst, total)
	for rest := body; len(rest) > 0; {
		block, next, _ := nextXerialBlock(rest) // checked above
		n, _ := s2.DecodedLen(block)
		var err error
		if dst, err = decodeSnappyBlock(dst, block, n); err != nil {
			return dst, err
		}
		rest = next
	}
	return dst, nil
}

// nextXerialBlock splits the first length-prefixed block off b.
func nextXerialBlock(b []byte) (block, rest []byte, err error) {
	if len(b) < 4 {
		return nil, nil, fmt.Errorf("xerial block length truncated to %d bytes", len(b))
	}
	n := binary.BigEndian.Uint32(b)
	b = b[4:]
	if uint64(n) > uint64(len(b)) {
		return nil, nil, fmt.Errorf("xerial block of %d bytes with %d left", n, len(b))
	}
	return b[:n], b[n:], nil
}

// snappyLen returns the decoded length a raw snappy block declares,
// refusing more than budget bytes or more than the block could hold.
func (d *decompressor) snappyLen(block []byte, budget int) (int, error) {
	n, err := s2.DecodedLen(block)
	if err != nil {
		return 0, err
	}
	if n > budget {
		return 0, d.tooLarge("", 0)
	}
	if n/snappyMaxRatio > len(block) {
		return 0, fmt.Errorf("snappy block of %d bytes declares %d", len(block), n)
	}
	return n, nil
}

// decodeSnappyBlock appends the n bytes block decodes to onto dst, which
// has room for them: s2 then decodes in place.
func decodeSnappyBlock(dst, block []byte, n int) ([]byte, error) {
	l := len(dst)
	if _, err := s2.Decode(dst[l:l+n], block); err != nil {
		return dst, err
	}
	return dst[:l+n], nil
}

// readAll appends everything r yields to dst, failing once r yields more
// than d.limit bytes: it reads at most d.limit+1. Output goes into dst's
// spare capacity first (a pooled scratch buffer, or one sized from a
// declared length, usually holds all of it), then into pooled chunks that
// are joined with dst once r ends, so that the result is allocated once,
// to the exact size, and a bomb never costs more than the limit plus a
// chunk.
func (d *decompressor) readAll(dst []byte, r io.Reader) ([]byte, error) {
	left := d.limit + 1
	spare := min(cap(dst)-len(dst), left)
	n, eof, err := readFull(r, dst[len(dst):len(dst)+spare])
	dst = dst[:len(dst)+n]
	left -= n

	var inline [4]*[decompressChunk]byte // chunks of most batches that spill
	chunks := inline[:0]
	last := 0 // bytes in the last chunk; the others are full
	for err == nil && !eof && left > 0 {
		c := d.chunks.Get().(*[decompressChunk]byte)
		chunks = append(chunks, c)
		last, eof, err = readFull(r, c[:min(len(c), left)])
		left -= last
	}
	defer d.putChunks(chunks)
	if err != nil {
		return dst, err
	}
	if left == 0 {
		return dst, d.tooLarge("", 0)
	}
	used := chunks
	if last == 0 && len(used) > 0 {
		// The last chunk only saw the end: dst (often a scratch buffer
		// sized by an earlier batch) had just enough room.
		used, last = used[:len(used)-1], decompressChunk
	}
	if len(used) == 0 {
		return dst, nil
	}
	// bytes.Join allocates the result once without zeroing it first, as
	// slices.Grow would: dst is full, so the result is new anyway.
	var inlineParts [len(inline) + 1][]byte
	parts := append(inlineParts[:0], dst)
	for _, c := range used {
		parts = append(parts, c[:])
	}
	parts[len(parts)-1] = parts[len(parts)-1][:last]
	return bytes.Join(parts, nil), nil
}

// putChunks returns cs to the pool.
func (d *decompressor) putChunks(cs []*[decompressChunk]byte) {
	for _, c := range cs {
		d.chunks.Put(c)
	}
}

// errNoProgress guards against a decoder that returns no bytes and no
// error forever.
var errNoProgress = errors.New("decoder made no progress")

// readFull reads from r into p until p is full, r ends (eof) or r fails.
func readFull(r io.Reader, p []byte) (n int, eof bool, err error) {
	for idle := 0; n < len(p); {
		m, rerr := r.Read(p[n:])
		n += m
		switch {
		case rerr == io.EOF:
			return n, true, nil
		case rerr != nil:
			return n, false, rerr
		case m > 0:
			idle = 0
		default:
			if idle++; idle == 100 {
				return n, false, errNoProgress
			}
		}
	}
	return n, false, nil
}
