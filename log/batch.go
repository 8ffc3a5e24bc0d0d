package log

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"

	"github.com/twmb/franz-go/pkg/kbin"
)

// Kafka RecordBatch v2 header layout (big-endian). These are Kafka's wire
// format, not ours: never change.
const (
	batchHeaderLen = 61 // bytes from baseOffset through recordCount

	offLength          = 8  // batchLength int32: bytes after this field
	offLeaderEpoch     = 12 // partitionLeaderEpoch int32
	offMagic           = 16 // magic int8
	offCRC             = 17 // crc uint32, CRC-32C over [offAttributes, end)
	offAttributes      = 21 // attributes int16
	offLastOffsetDelta = 23 // lastOffsetDelta int32
	offFirstTimestamp  = 27 // firstTimestamp int64
	offMaxTimestamp    = 35 // maxTimestamp int64
	offProducerID      = 43 // producerId int64
	offProducerEpoch   = 51 // producerEpoch int16
	offBaseSequence    = 53 // baseSequence int32
	offRecordCount     = 57 // recordCount int32

	// batchLengthOverhead is what Length does not count: baseOffset and
	// batchLength itself.
	batchLengthOverhead = 12
	// minBatchLength is the smallest legal Length: a header, no records.
	minBatchLength = batchHeaderLen - batchLengthOverhead

	batchMagic = 2

	attrCodecMask     = 0x07
	attrLogAppendTime = 0x08
	attrTransactional = 0x10
	attrControl       = 0x20

	// minRecordLen is the smallest record body: attributes, timestamp
	// delta, offset delta, key length, value length, header count, each
	// one byte.
	minRecordLen = 6
)

// castagnoli is the CRC-32C table Kafka uses for RecordBatch v2 and we use
// for our own index and footer. Immutable after package initialisation.
var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Sentinel errors for batches that fail validation. The Kafka front maps
// ErrCorruptBatch to CORRUPT_MESSAGE and ErrInvalidBatch to INVALID_RECORD.
var (
	// ErrCorruptBatch means the bytes are damaged: a CRC mismatch, a length
	// that does not match the bytes, truncation or undecodable records.
	ErrCorruptBatch = errors.New("log: corrupt record batch")
	// ErrInvalidBatch means the bytes are intact but break the rules: a
	// magic other than 2, a wrong record count or lastOffsetDelta.
	ErrInvalidBatch = errors.New("log: invalid record batch")
)

// BatchError is a batch validation failure: Err is ErrCorruptBatch or
// ErrInvalidBatch, Detail says what exactly was wrong.
type BatchError struct {
	Err    error
	Detail string
}

// Error implements error.
func (e *BatchError) Error() string { return e.Err.Error() + ": " + e.Detail }

// Unwrap returns the sentinel, so errors.Is(err, ErrCorruptBatch) works.
func (e *BatchError) Unwrap() error { return e.Err }

func corruptf(format string, args ...any) *BatchError {
	return &BatchError{Err: ErrCorruptBatch, Detail: fmt.Sprintf(format, args...)}
}

func invalidf(format string, args ...any) *BatchError {
	return &BatchError{Err: ErrInvalidBatch, Detail: fmt.Sprintf(format, args...)}
}

// BatchHeader is the fixed 61-byte header of a Kafka RecordBatch v2.
type BatchHeader struct {
	BaseOffset           int64
	Length               int32 // bytes after the Length field
	PartitionLeaderEpoch int32
	Magic                int8
	CRC                  uint32
	Attributes           int16
	LastOffsetDelta      int32
	FirstTimestamp       int64
	MaxTimestamp         int64
	ProducerID           int64
	ProducerEpoch        int16
	BaseSequence         int32
	NumRecords           int32
}

// Codec returns the compression codec of the batch's records.
func (h BatchHeader) Codec() Codec { return Codec(h.Attributes & attrCodecMask) }

// IsTransactional reports whether the batch belongs to a transaction.
func (h BatchHeader) IsTransactional() bool { return h.Attributes&attrTransactional != 0 }

// IsControl reports whether the batch holds control records (commit/abort
// markers) rather than user records.
func (h BatchHeader) IsControl() bool { return h.Attributes&attrControl != 0 }

// LogAppendTime reports whether the batch's timestamps are the broker's
// append time (MaxTimestamp holds it for every record) rather than the
// producer's create time.
func (h BatchHeader) LogAppendTime() bool { return h.Attributes&attrLogAppendTime != 0 }

// NextOffset returns the offset following the batch's last record.
func (h BatchHeader) NextOffset() int64 { return h.BaseOffset + int64(h.LastOffsetDelta) + 1 }

// Size returns the whole batch's size in bytes, header included.
func (h BatchHeader) Size() int { return int(h.Length) + batchLengthOverhead }

// ParseBatchHeader decodes the fixed header at the start of b. It checks
// neither the CRC nor that the rest of the batch is present.
func ParseBatchHeader(b []byte) (BatchHeader, error) {
	if len(b) < batchHeaderLen {
		return BatchHeader{}, corruptf("header needs %d bytes, have %d", batchHeaderLen, len(b))
	}
	b = b[:batchHeaderLen] // one bounds check for everything below
	be := binary.BigEndian
	return BatchHeader{
		BaseOffset:           int64(be.Uint64(b[0:])),
		Length:               int32(be.Uint32(b[offLength:])),
		PartitionLeaderEpoch: int32(be.Uint32(b[offLeaderEpoch:])),
		Magic:                int8(b[offMagic]),
		CRC:                  be.Uint32(b[offCRC:]),
		Attributes:           int16(be.Uint16(b[offAttributes:])),
		LastOffsetDelta:      int32(be.Uint32(b[offLastOffsetDelta:])),
		FirstTimestamp:       int64(be.Uint64(b[offFirstTimestamp:])),
		MaxTimestamp:         int64(be.Uint64(b[offMaxTimestamp:])),
		ProducerID:           int64(be.Uint64(b[offProducerID:])),
		ProducerEpoch:        int16(be.Uint16(b[offProducerEpoch:])),
		BaseSequence:         int32(be.Uint32(b[offBaseSequence:])),
		NumRecords:           int32(be.Uint32(b[offRecordCount:])),
	}, nil
}

// checkFrame checks everything about one batch that needs no record
// decoding: framing, magic, CRC, record count against lastOffsetDelta.
// Recovery uses the same rules (streamed) in scanBatches.
func checkFrame(b []byte) (BatchHeader, error) {
	return checkFrameOf(b, false)
}

// checkFrameOf is checkFrame; compacted accepts a batch compaction wrote,
// which may hold fewer records than its offset range (even none).
func checkFrameOf(b []byte, compacted bool) (BatchHeader, error) {
	h, err := ParseBatchHeader(b)
	if err != nil {
		return h, err
	}
	if h.Length < minBatchLength {
		return h, corruptf("length %d below minimum %d", h.Length, minBatchLength)
	}
	if int64(h.Length) != int64(len(b))-batchLengthOverhead {
		return h, corruptf("length field %d, but %d bytes follow it", h.Length, len(b)-batchLengthOverhead)
	}
	if h.Magic != batchMagic {
		return h, invalidf("magic %d, want %d", h.Magic, batchMagic)
	}
	if crc := crc32.Checksum(b[offAttributes:], castagnoli); crc != h.CRC {
		return h, corruptf("crc %08x, computed %08x", h.CRC, crc)
	}
	bad := badCounts(h)
	if compacted {
		bad = badCompactedCounts(h)
	}
	if bad != "" {
		return h, invalidf("%s", bad)
	}
	return h, nil
}

// badCompactedCounts is badCounts for a batch compaction may have
// rewritten: at most lastOffsetDelta+1 records, maybe none.
func badCompactedCounts(h BatchHeader) string {
	if h.NumRecords < 0 || h.LastOffsetDelta < 0 || h.NumRecords-1 > h.LastOffsetDelta {
		return fmt.Sprintf("record count %d with lastOffsetDelta %d", h.NumRecords, h.LastOffsetDelta)
	}
	return ""
}

// badCounts checks the header's record count against its lastOffsetDelta
// and says what is wrong, "" if nothing. Both come from producers; a batch
// with offset gaps or no records is refused.
func badCounts(h BatchHeader) string {
	if h.NumRecords < 1 {
		return fmt.Sprintf("record count %d", h.NumRecords)
	}
	if h.LastOffsetDelta != h.NumRecords-1 {
		return fmt.Sprintf("lastOffsetDelta %d with %d records", h.LastOffsetDelta, h.NumRecords)
	}
	return ""
}

// ValidateBatch checks that b is exactly one well-formed RecordBatch v2:
// framing, magic, CRC-32C, record count, and that the records really decode
// and number NumRecords, with offset deltas 0, 1, 2... and (for create
// time) no timestamp above the header's MaxTimestamp. Compressed records
// are decompressed to check them, into a pooled buffer; records that
// decompress past maxDecompressedBatch are corrupt. Errors are *BatchError.
// Uncompressed batches are checked without allocating; this is the produce
// hot path.
func ValidateBatch(b []byte) (BatchHeader, error) {
	return validateBatch(b, false)
}

// errKeylessRecord is the detail of a batch refused by a compacted topic.
// The text is Kafka's, which clients and operators search for.
const errKeylessRecord = "Compacted topic cannot accept message without key"

// validateBatch is ValidateBatch; requireKeys also refuses a record with a
// null key (a compacted topic's rule) as an invalid batch.
func validateBatch(b []byte, requireKeys bool) (BatchHeader, error) {
	h, err := checkFrame(b)
	if err != nil {
		return h, err
	}
	var scratch *[]byte // the records are only walked, never kept
	if h.Codec() != CodecNone {
		scratch = recordsDecompressor.getScratch()
		defer recordsDecompressor.putScratch(scratch)
	}
	region, err := recordsRegion(scratch, b, h)
	if err != nil {
		return h, err
	}
	maxDelta, err := walkRecords(region, h.NumRecords, requireKeys && !h.IsControl())
	if err != nil {
		return h, err
	}
	// The time index trusts MaxTimestamp; a header understating its
	// records would hide them from ListOffsets by time. Kafka rewrites
	// such headers, but we store bytes verbatim, so refuse them.
	// Overstating is harmless (lookups scan one batch more).
	if !h.LogAppendTime() {
		if ts := h.FirstTimestamp + maxDelta; ts > h.MaxTimestamp {
			return h, invalidf("maxTimestamp %d below record timestamp %d", h.MaxTimestamp, ts)
		}
	}
	return h, nil
}

// recordsRegion returns the records bytes of a framed batch, decompressed
// if need be. For CodecNone it is a sub-slice of b. Otherwise it is
// decompressed into *scratch, which it may grow, or with scratch nil into
// a new slice that the caller owns.
func recordsRegion(scratch *[]byte, b []byte, h BatchHeader) ([]byte, error) {
	c := h.Codec()
	if c == CodecNone {
		return b[batchHeaderLen:], nil
	}
	if c > CodecZstd {
		return nil, corruptf("unknown compression codec %d", c)
	}
	var dst []byte
	if scratch != nil {
		dst = (*scratch)[:0]
	}
	out, err := recordsDecompressor.decompress(dst, b[batchHeaderLen:], c)
	if err != nil {
		return nil, err
	}
	if scratch != nil {
		*scratch = out
	}
	return out, nil
}

// walkRecords checks that region holds exactly want well-formed records with
// offset deltas 0, 1, 2...; it returns the largest timestamp delta. Any
// record that does not decode within its own length is corruption; a
// clean walk finding a different count is an invalid batch, and so is,
// with requireKeys, a record whose key is null.
func walkRecords(region []byte, want int32, requireKeys bool) (maxTSDelta int64, err error) {
	maxTSDelta = -1 << 63
	var n int32
	for len(region) > 0 {
		// The common record (every varint one or two bytes) is walked
		// here, without a call unless it has headers; anything else,
		// including every error, goes through walkRecord.
		if l, i, ok := short2(region, 0); ok && l >= minRecordLen && int(l) <= len(region)-i {
			b := region[i : i+int(l)]
			ts, j, ok1 := short2(b, 1) // after attributes
			off, j, ok2 := short2(b, j)
			kl, j, ok3 := short2(b, j)
			if ok1 && ok2 && ok3 && kl >= -1 && int(kl) <= len(b)-j && (kl >= 0 || !requireKeys) {
				j += max(int(kl), 0)
				vl, j, ok4 := short2(b, j)
				if ok4 && vl >= -1 && int(vl) <= len(b)-j {
					if j += max(int(vl), 0); j+1 == len(b) && b[j] == 0 { // no headers
						j++
					} else {
						j = shortHeaders(b, j)
					}
					if j == len(b) && off == n {
						maxTSDelta = max(maxTSDelta, int64(ts))
						region = region[i+int(l):]
						n++
						continue
					}
				}
			}
		}
		tsDelta, rest, err := walkRecord(region, n, requireKeys)
		if err != nil {
			return 0, err
		}
		maxTSDelta = max(maxTSDelta, tsDelta)
		region = rest
		n++
	}
	if n != want {
		return 0, invalidf("header says %d records, found %d", want, n)
	}
	return maxTSDelta, nil
}

// walkRecord checks the first record of region, which must have offset
// delta n, and returns its timestamp delta and the bytes after it. It is
// walkRecords' general path, and the reference its fast path is fuzzed
// against.
func walkRecord(region []byte, n int32, requireKeys bool) (tsDelta int64, rest []byte, err error) {
	body, rest, err := nextRecord(region)
	if err != nil {
		return 0, nil, err
	}
	tsDelta, offDelta, keyNull, err := walkRecordBody(body)
	if err != nil {
		return 0, nil, corruptf("record %d: %v", n, err)
	}
	if offDelta != n {
		return 0, nil, invalidf("record %d has offset delta %d", n, offDelta)
	}
	if keyNull && requireKeys {
		return 0, nil, invalidf("record %d: %s", n, errKeylessRecord)
	}
	return tsDelta, rest, nil
}

// shortHeaders walks the header count and headers at b[i:] when every
// varint is one or two bytes, and returns the index after them; -1 for
// anything else, which walkRecordBody then judges.
func shortHeaders(b []byte, i int) int {
	nh, i, ok := short2(b, i)
	if !ok || nh < 0 {
		return -1
	}
	for range nh {
		kl, j, ok := short2(b, i) // key: never null
		if !ok || kl < 0 || int(kl) > len(b)-j {
			return -1
		}
		vl, j, ok := short2(b, j+int(kl))
		if !ok || vl < -1 || int(vl) > len(b)-j {
			return -1
		}
		i = j + max(int(vl), 0)
	}
	return i
}

// nextRecord splits the first length-prefixed record off region.
func nextRecord(region []byte) (body, rest []byte, err error) {
	l, i, ok := short2(region, 0)
	if !ok {
		if l, i, ok = varintAt(region, 0); !ok {
			return nil, nil, corruptf("bad record length varint")
		}
	}
	region = region[i:]
	if l < minRecordLen || int(l) > len(region) {
		return nil, nil, corruptf("record length %d with %d bytes left", l, len(region))
	}
	return region[:l:l], region[l:], nil
}

var (
	errShortRecord   = errors.New("record fields overrun record length")
	errRecordTrailer = errors.New("bytes left after record fields")
)

// walkRecordBody checks one record body (after its length) field by field
// without allocating, and returns its timestamp and offset deltas. It runs
// for every produced record, so it walks b by index, and each varint
// tries short2 (inlined: the one- and two-byte varints of small records)
// before the general varintAt. keyNull reports a null key.
func walkRecordBody(b []byte) (tsDelta int64, offDelta int32, keyNull bool, err error) {
	v, i, ok := short2(b, 1) // after attributes: unused int8
	if ok {
		tsDelta = int64(v)
	} else if tsDelta, i, ok = varlongAt(b, 1); !ok {
		return 0, 0, false, errShortRecord
	}
	if offDelta, i, ok = short2(b, i); !ok {
		if offDelta, i, ok = varintAt(b, i); !ok {
			return 0, 0, false, errShortRecord
		}
	}
	// Key and value: null (-1) or that many bytes. Short lengths are
	// checked here; anything else goes through skipVarintBytes.
	if l, j, ok := short2(b, i); ok && l >= -1 && int(l) <= len(b)-j {
		keyNull = l == -1
		i = j + max(int(l), 0)
	} else if kl, j, ok := varintAt(b, i); ok && kl == -1 { // an overlong null
		keyNull, i = true, j
	} else if i, ok = skipVarintBytes(b, i, -1); !ok { // key
		return 0, 0, false, errShortRecord
	}
	if l, j, ok := short2(b, i); ok && l >= -1 && int(l) <= len(b)-j {
		i = j + max(int(l), 0)
	} else if i, ok = skipVarintBytes(b, i, -1); !ok { // value
		return 0, 0, false, errShortRecord
	}
	nh, i, ok := short2(b, i)
	if !ok {
		if nh, i, ok = varintAt(b, i); !ok {
			return 0, 0, false, errShortRecord
		}
	}
	if nh < 0 || int(nh) > len(b)-i {
		return 0, 0, false, fmt.Errorf("header count %d", nh)
	}
	for range nh {
		if i, ok = skipVarintBytes(b, i, 0); !ok { // header key: never null
			return 0, 0, false, errShortRecord
		}
		if i, ok = skipVarintBytes(b, i, -1); !ok { // header value
			return 0, 0, false, errShortRecord
		}
	}
	if i != len(b) {
		return 0, 0, false, errRecordTrailer
	}
	return tsDelta, offDelta, keyNull, nil
}

// short2 decodes a zig-zag varint of one or two bytes at b[i:], with the
// index after it. ok is false for a longer or short varint, which the
// caller hands to varintAt (that tells short from overlong). It calls
// nothing, so it inlines into the walk.
func short2(b []byte, i int) (int32, int, bool) {
	if uint(i) < uint(len(b)) {
		x := uint32(b[i])
		if x >= 0x80 {
			if uint(i+1) >= uint(len(b)) || b[i+1] >= 0x80 {
				return 0, i, false
			}
			x = x&0x7f | uint32(b[i+1])<<7
			i++
		}
		return int32(x>>1) ^ -int32(x&1), i + 1, true
	}
	return 0, i, false
}

// varintAt decodes the zig-zag varint (32-bit) at b[i:] and returns it with
// the index after it; ok is false when it is short or overlong.
func varintAt(b []byte, i int) (int32, int, bool) {
	if i >= len(b) {
		return 0, i, false
	}
	v, n := kbin.Varint(b[i:])
	return v, i + n, n > 0
}

// varlongAt is varintAt for 64-bit varlongs.
func varlongAt(b []byte, i int) (int64, int, bool) {
	if i >= len(b) {
		return 0, i, false
	}
	v, n := kbin.Varlong(b[i:])
	return v, i + n, n > 0
}

// skipVarintBytes skips the varint-length-prefixed byte string at b[i:]
// whose length may not be below minLen (-1 allows null). Kafka allows no
// negative length but -1 (kbin's VarintBytes would take any as null).
func skipVarintBytes(b []byte, i int, minLen int32) (int, bool) {
	l, j, ok := short2(b, i)
	if !ok {
		l, j, ok = varintAt(b, i)
	}
	i = j
	switch {
	case !ok || l < minLen:
		return i, false
	case l < 0:
		return i, true
	case int(l) > len(b)-i:
		return i, false
	}
	return i + int(l), true
}

// readVarintBytes reads a varint-length-prefixed byte string whose length
// may not be below minLen (-1 allows null, returned as nil; 0 yields a
// non-nil empty slice). It marks r bad on failure. kbin's VarintBytes
// would take any negative length as null; Kafka only allows -1.
func readVarintBytes(r *kbin.Reader, minLen int32) []byte {
	l := r.Varint()
	if l < minLen {
		r.Span(-1) // marks the reader bad
		return nil
	}
	if l < 0 {
		return nil
	}
	return r.Span(int(l))
}

// SplitBatches splits a concatenation of whole batches (a produce payload)
// into one sub-slice per batch, using only the Length fields. It does not
// validate the batches; a short or impossible frame is a *BatchError
// wrapping ErrCorruptBatch.
func SplitBatches(b []byte) ([][]byte, error) {
	var out [][]byte
	for off := 0; off < len(b); {
		size, err := frameSize(b[off:])
		if err != nil {
			return nil, corruptf("batch %d at byte %d: %v", len(out), off, err)
		}
		if size > len(b)-off {
			return nil, corruptf("batch %d at byte %d: size %d, only %d bytes left", len(out), off, size, len(b)-off)
		}
		out = append(out, b[off:off+size:off+size])
		off += size
	}
	return out, nil
}

var errShortFrame = errors.New("too short for a batch length")

// frameSize returns the whole size of the batch starting at b from its
// Length field, which it checks is at least a header's worth.
func frameSize(b []byte) (int, error) {
	if len(b) < batchLengthOverhead {
		return 0, errShortFrame
	}
	l := int32(binary.BigEndian.Uint32(b[offLength:]))
	if l < minBatchLength {
		return 0, fmt.Errorf("length %d below minimum %d", l, minBatchLength)
	}
	return int(l) + batchLengthOverhead, nil
}

// setBaseOffset rewrites the batch's baseOffset, which the CRC does not
// cover, so the CRC stays valid. The broker assigns offsets this way.
func setBaseOffset(b []byte, off int64) {
	binary.BigEndian.PutUint64(b[0:8], uint64(off))
}

// setLogAppendTime marks the batch's timestamps as log append time, stores
// ts as its MaxTimestamp (which then stands for every record's timestamp)
// and recomputes the CRC. b must be a whole batch.
func setLogAppendTime(b []byte, ts int64) {
	be := binary.BigEndian
	attrs := be.Uint16(b[offAttributes:]) | attrLogAppendTime
	be.PutUint16(b[offAttributes:], attrs)
	be.PutUint64(b[offMaxTimestamp:], uint64(ts))
	be.PutUint32(b[offCRC:], crc32.Checksum(b[offAttributes:], castagnoli))
}
