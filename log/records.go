package log

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"math"

	"github.com/twmb/franz-go/pkg/kbin"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Codec is a Kafka compression codec, the low three bits of a batch's
// attributes.
type Codec int8

// The codecs Kafka defines. The values are Kafka's: never change.
const (
	CodecNone   Codec = 0
	CodecGzip   Codec = 1
	CodecSnappy Codec = 2
	CodecLZ4    Codec = 3
	CodecZstd   Codec = 4
)

// String returns the codec's Kafka name (compression.type).
func (c Codec) String() string {
	switch c {
	case CodecNone:
		return "none"
	case CodecGzip:
		return "gzip"
	case CodecSnappy:
		return "snappy"
	case CodecLZ4:
		return "lz4"
	case CodecZstd:
		return "zstd"
	}
	return fmt.Sprintf("codec(%d)", int8(c))
}

// compressors holds one kgo compressor per codec (nil for CodecNone). Each
// pools its encoders in sync.Pools and is safe for concurrent use; the
// table itself is never written after initialisation.
var compressors = newCompressors()

func newCompressors() [CodecZstd + 1]kgo.Compressor {
	var cs [CodecZstd + 1]kgo.Compressor
	for c, codec := range []kgo.CompressionCodec{
		CodecGzip:   kgo.GzipCompression(),
		CodecSnappy: kgo.SnappyCompression(),
		CodecLZ4:    kgo.Lz4Compression(),
		CodecZstd:   kgo.ZstdCompression(),
	} {
		if c == int(CodecNone) {
			continue
		}
		comp, err := kgo.DefaultCompressor(codec)
		if err != nil || comp == nil {
			// Only reachable if kgo drops a codec it documents.
			panic(fmt.Sprintf("log: kgo compressor for %s: %v", Codec(c), err))
		}
		cs[c] = comp
	}
	return cs
}

// Header is one record header. Kafka header keys are never null.
type Header struct {
	Key   string
	Value []byte
}

// Record is one decoded Kafka record. A nil Key or Value is Kafka's null,
// distinct from an empty one.
type Record struct {
	Offset    int64
	Timestamp int64
	Key       []byte
	Value     []byte
	Headers   []Header
}

// DecodeBatch decodes one whole batch into records with absolute offsets
// and timestamps (the batch's MaxTimestamp for every record when it uses
// log append time). It checks framing and CRC first and decodes every
// codec. Control batches yield no records. The records never alias b.
func DecodeBatch(b []byte) ([]Record, error) {
	return decodeBatch(b, false)
}

// decodeBatch is DecodeBatch; withControl also decodes control batches'
// records (for time lookups, where they count like any record).
func decodeBatch(b []byte, withControl bool) ([]Record, error) {
	// A stored batch may come from compaction: fewer records than its
	// offset range, with gaps between their offset deltas.
	h, err := checkFrameOf(b, true)
	if err != nil {
		return nil, err
	}
	if h.IsControl() && !withControl {
		return nil, nil
	}
	region, err := recordsRegion(nil, b, h)
	if err != nil {
		return nil, err
	}
	if h.Codec() == CodecNone {
		// One copy so that callers may keep records while b (a cache
		// entry, a read buffer) is reused; the decompressed region is
		// already ours.
		region = bytes.Clone(region)
	}
	// NumRecords comes from the wire: cap the preallocation by what the
	// bytes could hold.
	recs := make([]Record, 0, min(int(h.NumRecords), len(region)/minRecordLen+1))
	var hdrs headerArena
	for i := 0; len(region) > 0; i++ {
		body, rest, err := nextRecord(region)
		if err != nil {
			return nil, err
		}
		rec, err := decodeRecord(body, h, &hdrs)
		if err != nil {
			return nil, corruptf("record %d: %v", i, err)
		}
		// Stored batches passed ValidateBatch, whose offset deltas are
		// 0..n-1, and compaction only removes records: deltas increase
		// within the batch's range, anything else is damage, not data.
		prev := h.BaseOffset - 1
		if i > 0 {
			prev = recs[len(recs)-1].Offset
		}
		if rec.Offset <= prev || rec.Offset > h.BaseOffset+int64(h.LastOffsetDelta) {
			return nil, corruptf("record %d has offset delta %d", i, rec.Offset-h.BaseOffset)
		}
		recs = append(recs, rec)
		region = rest
	}
	return recs, nil
}

// headerArena hands out the Headers slices of one batch's records from
// shared chunks, saving an allocation per record with headers.
type headerArena struct{ free []Header }

// take returns n zeroed headers, capped so appends cannot spill over.
func (a *headerArena) take(n int) []Header {
	if cap(a.free)-len(a.free) < n {
		a.free = make([]Header, 0, max(n, 64))
	}
	l := len(a.free)
	a.free = a.free[:l+n]
	return a.free[l : l+n : l+n]
}

// decodeRecord decodes one record body (after its length prefix); the
// byte slices it returns alias body, capped so appends cannot spill over.
func decodeRecord(body []byte, h BatchHeader, hdrs *headerArena) (Record, error) {
	r := kbin.Reader{Src: body[1:]} // attributes: unused int8
	tsDelta := r.Varlong()
	offDelta := r.Varint()
	rec := Record{
		Offset:    h.BaseOffset + int64(offDelta),
		Timestamp: h.FirstTimestamp + tsDelta,
		Key:       readVarintBytes(&r, -1),
		Value:     readVarintBytes(&r, -1),
	}
	if h.LogAppendTime() {
		rec.Timestamp = h.MaxTimestamp
	}
	nh := r.Varint()
	if nh < 0 || int(nh) > len(r.Src) {
		return Record{}, fmt.Errorf("header count %d", nh)
	}
	if nh > 0 {
		rec.Headers = hdrs.take(int(nh))
		for j := range rec.Headers {
			k := readVarintBytes(&r, 0)
			rec.Headers[j] = Header{Key: string(k), Value: readVarintBytes(&r, -1)}
		}
	}
	if !r.Ok() {
		return Record{}, errShortRecord
	}
	if len(r.Src) != 0 {
		return Record{}, errRecordTrailer
	}
	return rec, nil
}

// DecodeBatches decodes concatenated batches, skipping records below
// offset from, and stops cleanly at a trailing partial batch (as a
// size-capped read may end). On error it returns the records decoded
// before the bad batch as well.
func DecodeBatches(b []byte, from int64) ([]Record, error) {
	var out []Record
	for off := 0; off < len(b); {
		size, err := frameSize(b[off:])
		if errors.Is(err, errShortFrame) {
			break // partial length field
		}
		if err != nil {
			return out, corruptf("batch at byte %d: %v", off, err)
		}
		if size > len(b)-off {
			break // partial batch
		}
		batch := b[off : off+size]
		off += size
		// The header is whole here (size >= batchHeaderLen); skip
		// batches wholly below from without decoding them.
		if h, _ := ParseBatchHeader(batch); h.NextOffset() <= from {
			continue
		}
		recs, err := DecodeBatch(batch)
		if err != nil {
			return out, err
		}
		for _, r := range recs {
			if r.Offset >= from {
				out = append(out, r)
			}
		}
	}
	return out, nil
}

// EncodeBatch builds one RecordBatch v2 holding recs, compressed with
// codec: base offset 0 (the log assigns offsets at append), no producer
// (id -1, epoch -1, sequence -1), partition leader epoch -1, CreateTime.
// A record's Timestamp of 0 means firstTimestamp. Record.Offset is
// ignored: records get offset deltas 0, 1, 2...
func EncodeBatch(recs []Record, codec Codec, firstTimestamp int64) ([]byte, error) {
	if len(recs) == 0 {
		return nil, errors.New("log: encode batch: no records")
	}
	if codec < CodecNone || codec > CodecZstd {
		return nil, fmt.Errorf("log: encode batch: unknown codec %d", codec)
	}
	ts := func(r *Record) int64 {
		if r.Timestamp == 0 {
			return firstTimestamp
		}
		return r.Timestamp
	}
	first := ts(&recs[0])
	maxTS := first
	// Size the record region once: growing it record by record showed up
	// in gRPC produce profiles.
	est := 0
	for i := range recs {
		est += 24 + len(recs[i].Key) + len(recs[i].Value)
		for _, h := range recs[i].Headers {
			est += 10 + len(h.Key) + len(h.Value)
		}
	}
	region := make([]byte, 0, est)
	for i := range recs {
		t := ts(&recs[i])
		maxTS = max(maxTS, t)
		region = appendRecord(region, &recs[i], int32(i), t-first)
	}
	if codec != CodecNone {
		var buf bytes.Buffer
		out, used := compressors[codec].Compress(&buf, region)
		if used != kgo.CompressionCodecType(codec) {
			return nil, fmt.Errorf("log: encode batch: %s compression failed", codec)
		}
		region = out
	}
	if len(region) > math.MaxInt32-minBatchLength {
		return nil, fmt.Errorf("log: encode batch: %d bytes of records is too large", len(region))
	}
	rb := kmsg.RecordBatch{
		FirstOffset:          0,
		Length:               int32(minBatchLength + len(region)),
		PartitionLeaderEpoch: -1,
		Magic:                batchMagic,
		Attributes:           int16(codec),
		LastOffsetDelta:      int32(len(recs) - 1),
		FirstTimestamp:       first,
		MaxTimestamp:         maxTS,
		ProducerID:           -1,
		ProducerEpoch:        -1,
		FirstSequence:        -1,
		NumRecords:           int32(len(recs)),
		Records:              region,
	}
	b := rb.AppendTo(make([]byte, 0, batchHeaderLen+len(region)))
	binary.BigEndian.PutUint32(b[offCRC:], crc32.Checksum(b[offAttributes:], castagnoli))
	return b, nil
}

// appendRecord appends one length-prefixed record to dst.
func appendRecord(dst []byte, r *Record, offDelta int32, tsDelta int64) []byte {
	bodyLen := 1 + kbin.VarlongLen(tsDelta) + kbin.VarintLen(offDelta) +
		varintBytesLen(r.Key) + varintBytesLen(r.Value) + kbin.VarintLen(int32(len(r.Headers)))
	for _, h := range r.Headers {
		bodyLen += kbin.VarintLen(int32(len(h.Key))) + len(h.Key) + varintBytesLen(h.Value)
	}
	dst = kbin.AppendVarint(dst, int32(bodyLen))
	dst = append(dst, 0) // attributes
	dst = kbin.AppendVarlong(dst, tsDelta)
	dst = kbin.AppendVarint(dst, offDelta)
	dst = kbin.AppendVarintBytes(dst, r.Key)
	dst = kbin.AppendVarintBytes(dst, r.Value)
	dst = kbin.AppendVarint(dst, int32(len(r.Headers)))
	for _, h := range r.Headers {
		dst = kbin.AppendVarintString(dst, h.Key)
		dst = kbin.AppendVarintBytes(dst, h.Value)
	}
	return dst
}

// varintBytesLen is the encoded size of a nullable varint byte string.
func varintBytesLen(b []byte) int {
	if b == nil {
		return kbin.VarintLen(-1)
	}
	return kbin.VarintLen(int32(len(b))) + len(b)
}

// recompress returns batch b (whose header is h) with its records
// compressed with codec instead of its own: every header field kept but
// the codec bits, the length and the CRC (compression.type on a topic).
// Should the compressor give up, the records are stored uncompressed.
func recompress(b []byte, h BatchHeader, codec Codec) ([]byte, error) {
	region, err := recordsRegion(nil, b, h)
	if err != nil {
		return nil, err
	}
	if codec != CodecNone {
		var buf bytes.Buffer
		out, used := compressors[codec].Compress(&buf, region)
		if used == kgo.CompressionCodecType(codec) {
			region = out
		} else {
			codec = CodecNone
		}
	}
	if len(region) > math.MaxInt32-minBatchLength {
		return nil, invalidf("%d bytes of records after recompression", len(region))
	}
	nb := make([]byte, 0, batchHeaderLen+len(region))
	nb = append(append(nb, b[:batchHeaderLen]...), region...)
	be := binary.BigEndian
	be.PutUint32(nb[offLength:], uint32(len(nb)-batchLengthOverhead))
	be.PutUint16(nb[offAttributes:], uint16(h.Attributes&^attrCodecMask|int16(codec)))
	be.PutUint32(nb[offCRC:], crc32.Checksum(nb[offAttributes:], castagnoli))
	return nb, nil
}
