package log

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"math"
)

// Sealed segment footer format (see doc.go): never change. A new layout
// gets a new footerVersion; readers keep decoding the old ones.
const (
	footerMagic   = 0x53485347 // "SHSG"
	footerVersion = 1          // batches with contiguous offsets
	// footerVersionCompacted marks a segment written by compaction: the
	// same layout, but its batches may leave gaps in the offsets (see
	// doc.go).
	footerVersionCompacted = 2
	footerLen              = 60

	offFooterVersion  = 4
	offFooterReserved = 6
	offFooterBase     = 8
	offFooterLast     = 16
	offFooterMaxTS    = 24
	offFooterRecords  = 32
	offFooterBatches  = 40
	offFooterIdxCount = 48
	offFooterIdxCRC   = 52
	offFooterCRC      = 56
)

// ErrCorruptSegment means stored segment bytes (a local file or an object)
// are damaged. Errors carrying it are usually *CorruptionError.
var ErrCorruptSegment = errors.New("log: corrupt segment")

// CorruptionError reports corruption found in a segment: which segment
// (file path or object key), the byte position in it, and the cause.
type CorruptionError struct {
	Segment string
	// Offset is the byte position within the segment where the damage
	// was found, -1 when it is not known.
	Offset int64
	Cause  error
}

// Error implements error.
func (e *CorruptionError) Error() string {
	return fmt.Sprintf("log: corrupt segment %s at byte %d: %v", e.Segment, e.Offset, e.Cause)
}

// Unwrap returns the cause.
func (e *CorruptionError) Unwrap() error { return e.Cause }

// Is makes errors.Is(err, ErrCorruptSegment) true for every CorruptionError.
func (e *CorruptionError) Is(target error) bool { return target == ErrCorruptSegment }

// Footer describes a sealed segment; it is its last footerLen bytes.
type Footer struct {
	BaseOffset int64 // offset of the first batch (the segment's name)
	// LastOffset is the last record's offset; BaseOffset-1 when empty.
	LastOffset int64
	// MaxTimestamp is the largest batch MaxTimestamp, -1 when none.
	MaxTimestamp int64
	RecordCount  int64  // records in all batches
	BatchesLen   int64  // bytes of the batch region, which starts the object
	IndexCount   uint32 // index entries following the batch region
	IndexCRC     uint32 // CRC-32C of the index bytes
	// Compacted (footer version 2) means compaction wrote the segment: it
	// covers the offsets BaseOffset..LastOffset, but its batches may
	// start after BaseOffset, end before LastOffset and leave gaps
	// between them, and a batch may hold no records.
	Compacted bool
	// Txn (footer versions 3 and 4) means a transaction section
	// (txnsection.go) of TxnLen bytes lies between index and footer.
	// decodeFooter sets Txn; TxnLen comes from the section's trailer
	// (decodeTail).
	Txn    bool
	TxnLen int64
}

// metaLen is the length of what follows the batch region: index,
// transaction section, footer.
func (f Footer) metaLen() int64 {
	return int64(f.IndexCount)*indexEntryLen + f.TxnLen + footerLen
}

// decodeTail decodes the end of a sealed segment: b is its last
// tailReadLen bytes (fewer when the segment is shorter). It returns the
// footer with TxnLen filled in from the transaction section's trailer.
func decodeTail(b []byte) (Footer, error) {
	if len(b) < footerLen {
		return Footer{}, fmt.Errorf("%w: %d bytes, shorter than a footer", ErrCorruptSegment, len(b))
	}
	f, err := decodeFooter(b[len(b)-footerLen:])
	if err != nil || !f.Txn {
		return f, err
	}
	if len(b) < tailReadLen {
		return Footer{}, fmt.Errorf("%w: footer version %d without room for a transaction section", ErrCorruptSegment, footerVersionTxn)
	}
	na, no := decodeTxnTrailer(b[len(b)-tailReadLen:])
	f.TxnLen = int64(na)*abortedEntryLen + int64(no)*openEntryLen + txnTrailerLen
	if na+no == 0 {
		return Footer{}, fmt.Errorf("%w: empty transaction section", ErrCorruptSegment)
	}
	return f, nil
}

// tailBytes returns the last tailReadLen bytes of a size-byte segment (all
// of it when shorter) through read.
func tailBytes(size int64, read func(off, n int64) ([]byte, error)) ([]byte, error) {
	n := min(size, int64(tailReadLen))
	return read(size-n, n)
}

// encodeFooter encodes f, ending with the CRC-32C of the bytes before it.
func encodeFooter(f Footer) []byte {
	be := binary.BigEndian
	b := make([]byte, 0, footerLen)
	b = be.AppendUint32(b, footerMagic)
	version := uint16(footerVersion)
	switch {
	case f.Compacted && f.Txn:
		version = footerVersionCompactedTxn
	case f.Compacted:
		version = footerVersionCompacted
	case f.Txn:
		version = footerVersionTxn
	}
	b = be.AppendUint16(b, version)
	b = be.AppendUint16(b, 0) // reserved
	b = be.AppendUint64(b, uint64(f.BaseOffset))
	b = be.AppendUint64(b, uint64(f.LastOffset))
	b = be.AppendUint64(b, uint64(f.MaxTimestamp))
	b = be.AppendUint64(b, uint64(f.RecordCount))
	b = be.AppendUint64(b, uint64(f.BatchesLen))
	b = be.AppendUint32(b, f.IndexCount)
	b = be.AppendUint32(b, f.IndexCRC)
	return be.AppendUint32(b, crc32.Checksum(b, castagnoli))
}

// encodeSealTail returns what sealing appends after the batch region: the
// index, the transaction section if txn is not empty, then the footer,
// whose IndexCount, IndexCRC, Txn and TxnLen it fills in.
func encodeSealTail(entries []IndexEntry, txn *segTxn, f Footer) []byte {
	idx := encodeIndex(entries)
	f.IndexCount = uint32(len(entries))
	f.IndexCRC = crc32.Checksum(idx, castagnoli)
	f.Txn, f.TxnLen = !txn.empty(), txn.sectionLen()
	idx = append(idx, txn.encode()...)
	return append(idx, encodeFooter(f)...)
}

// decodeFooter decodes the last footerLen bytes of a sealed segment,
// checking magic, version, CRC and that the fields are consistent.
// Errors wrap ErrCorruptSegment.
func decodeFooter(b []byte) (Footer, error) {
	if len(b) != footerLen {
		return Footer{}, fmt.Errorf("%w: footer is %d bytes, want %d", ErrCorruptSegment, len(b), footerLen)
	}
	be := binary.BigEndian
	if m := be.Uint32(b); m != footerMagic {
		return Footer{}, fmt.Errorf("%w: footer magic %08x", ErrCorruptSegment, m)
	}
	if crc := crc32.Checksum(b[:offFooterCRC], castagnoli); crc != be.Uint32(b[offFooterCRC:]) {
		return Footer{}, fmt.Errorf("%w: footer crc %08x, computed %08x", ErrCorruptSegment, be.Uint32(b[offFooterCRC:]), crc)
	}
	// The CRC matched, so a different version was written on purpose.
	v := be.Uint16(b[offFooterVersion:])
	if v < footerVersion || v > footerVersionCompactedTxn {
		return Footer{}, fmt.Errorf("%w: footer version %d not supported", ErrCorruptSegment, v)
	}
	if r := be.Uint16(b[offFooterReserved:]); r != 0 {
		return Footer{}, fmt.Errorf("%w: footer reserved bits %04x", ErrCorruptSegment, r)
	}
	f := Footer{
		BaseOffset:   int64(be.Uint64(b[offFooterBase:])),
		LastOffset:   int64(be.Uint64(b[offFooterLast:])),
		MaxTimestamp: int64(be.Uint64(b[offFooterMaxTS:])),
		RecordCount:  int64(be.Uint64(b[offFooterRecords:])),
		BatchesLen:   int64(be.Uint64(b[offFooterBatches:])),
		IndexCount:   be.Uint32(b[offFooterIdxCount:]),
		IndexCRC:     be.Uint32(b[offFooterIdxCRC:]),
		Compacted:    v == footerVersionCompacted || v == footerVersionCompactedTxn,
		Txn:          v == footerVersionTxn || v == footerVersionCompactedTxn,
	}
	if err := checkFooter(f); err != nil {
		return Footer{}, fmt.Errorf("%w: footer %+v: %v", ErrCorruptSegment, f, err)
	}
	return f, nil
}

// checkFooter checks that a footer's fields can describe a segment. A
// compacted footer (version 2) may describe batches with gaps and no
// records; the other rules are the same.
func checkFooter(f Footer) error {
	switch {
	case f.BaseOffset < 0 || f.BatchesLen < 0 || f.RecordCount < 0:
		return errors.New("negative field")
	case f.MaxTimestamp < noTimestamp:
		return errors.New("max timestamp below -1")
	case f.BatchesLen > math.MaxInt64/2:
		return errors.New("batch region too large")
	case f.Compacted && (f.LastOffset < f.BaseOffset-1 || (f.RecordCount > 0 && f.RecordCount-1 > f.LastOffset-f.BaseOffset)):
		return errors.New("offsets do not fit the record count")
	case f.BatchesLen == 0:
		if f.RecordCount != 0 || f.IndexCount != 0 || f.MaxTimestamp != noTimestamp || (!f.Compacted && f.LastOffset != f.BaseOffset-1) {
			return errors.New("empty segment with records, index or offsets")
		}
	case !f.Compacted && (f.LastOffset < f.BaseOffset || f.RecordCount < 1 || f.RecordCount-1 > f.LastOffset-f.BaseOffset):
		return errors.New("offsets do not fit the record count")
	case f.IndexCount < 1 || int64(f.IndexCount) > f.BatchesLen/batchHeaderLen:
		return errors.New("index count does not fit the batch region")
	}
	return nil
}

// sealedSegment is a sealed segment object held in memory: batch region,
// index, footer. It is immutable and safe for concurrent use.
type sealedSegment struct {
	name  string // object key or path, for errors
	data  []byte // the whole object
	ft    Footer
	index *sparseIndex
	txn   segTxn // the transaction section, empty without one
}

// decodeMeta checks and decodes what lies between a sealed segment's
// batches and its footer: b holds the index and the transaction section.
func decodeMeta(name string, f Footer, b []byte) ([]IndexEntry, segTxn, error) {
	corrupt := func(at int64, err error) error {
		return &CorruptionError{Segment: name, Offset: at, Cause: err}
	}
	idxLen := int64(f.IndexCount) * indexEntryLen
	if int64(len(b)) != idxLen+f.TxnLen {
		return nil, segTxn{}, corrupt(f.BatchesLen, fmt.Errorf("%d bytes of index and transactions, footer says %d", len(b), idxLen+f.TxnLen))
	}
	idxBytes := b[:idxLen]
	if crc := crc32.Checksum(idxBytes, castagnoli); crc != f.IndexCRC {
		return nil, segTxn{}, corrupt(f.BatchesLen, fmt.Errorf("index crc %08x, footer says %08x", crc, f.IndexCRC))
	}
	entries, err := decodeIndex(idxBytes)
	if err != nil {
		return nil, segTxn{}, corrupt(f.BatchesLen, err)
	}
	var txn segTxn
	if f.Txn {
		if txn, err = decodeTxnSection(b[idxLen:], f.BaseOffset, f.LastOffset); err != nil {
			return nil, segTxn{}, corrupt(f.BatchesLen+idxLen, err)
		}
	}
	return entries, txn, nil
}

// openSealed checks a whole sealed segment object and returns it. Beyond
// footer and index checksums it walks every batch's frame and CRC-32C and
// checks the batches against footer and index, so a damaged object is
// refused when loaded (with a *CorruptionError) rather than served.
func openSealed(name string, data []byte) (*sealedSegment, error) {
	corrupt := func(at int64, err error) error {
		return &CorruptionError{Segment: name, Offset: at, Cause: err}
	}
	size := int64(len(data))
	tail, _ := tailBytes(size, func(off, n int64) ([]byte, error) { return data[off : off+n], nil })
	f, err := decodeTail(tail)
	if err != nil {
		return nil, corrupt(size-min(size, footerLen), err)
	}
	if f.BatchesLen+f.metaLen() != size {
		return nil, corrupt(size-footerLen, fmt.Errorf("footer says %d batch bytes, %d index bytes and %d transaction bytes, object has %d",
			f.BatchesLen, int64(f.IndexCount)*indexEntryLen, f.TxnLen, size))
	}
	entries, txn, err := decodeMeta(name, f, data[f.BatchesLen:size-footerLen])
	if err != nil {
		return nil, err
	}
	s := &sealedSegment{name: name, data: data[:f.BatchesLen:f.BatchesLen], ft: f, txn: txn,
		index: newSparseIndexFrom(entries, defaultIndexInterval)}
	s.index.maxTS = f.MaxTimestamp
	if err := s.verify(entries); err != nil {
		return nil, err
	}
	return s, nil
}

// verify walks every batch, checking frame and CRC, offsets contiguous from
// the base, that every index entry points at a batch start with the right
// offset and timestamp, and that the footer's totals are what it found.
func (s *sealedSegment) verify(entries []IndexEntry) error {
	next, maxTS, records := s.ft.BaseOffset, int64(noTimestamp), int64(0)
	for pos := int64(0); pos < s.ft.BatchesLen; {
		h, err := s.batchAt(pos)
		if err != nil {
			return err
		}
		if h.BaseOffset != next && !(s.ft.Compacted && h.BaseOffset > next) {
			return s.corrupt(pos, fmt.Errorf("batch base offset %d, want %d", h.BaseOffset, next))
		}
		if len(entries) > 0 && int64(entries[0].Position) == pos {
			e := entries[0]
			if int64(e.RelOffset) != h.BaseOffset-s.ft.BaseOffset || e.MaxTimestampBefore != maxTS {
				return s.corrupt(pos, fmt.Errorf("index entry %+v does not match batch at offset %d (max timestamp before %d)",
					e, h.BaseOffset, maxTS))
			}
			entries = entries[1:]
		}
		if len(entries) > 0 && int64(entries[0].Position) < pos {
			return s.corrupt(pos, fmt.Errorf("index entry %+v points inside a batch", entries[0]))
		}
		next, maxTS, records = h.NextOffset(), max(maxTS, h.MaxTimestamp), records+int64(h.NumRecords)
		pos += int64(h.Size())
	}
	if len(entries) > 0 {
		return s.corrupt(s.ft.BatchesLen, fmt.Errorf("index entry %+v past the batches", entries[0]))
	}
	endOK := next-1 == s.ft.LastOffset || (s.ft.Compacted && next-1 <= s.ft.LastOffset)
	if !endOK || maxTS != s.ft.MaxTimestamp || records != s.ft.RecordCount {
		return s.corrupt(s.ft.BatchesLen, fmt.Errorf("batches end at offset %d with max timestamp %d and %d records, footer says %d, %d, %d",
			next-1, maxTS, records, s.ft.LastOffset, s.ft.MaxTimestamp, s.ft.RecordCount))
	}
	return nil
}

func (s *sealedSegment) corrupt(pos int64, err error) error {
	return &CorruptionError{Segment: s.name, Offset: pos, Cause: err}
}

// batchAt returns the header of the whole, CRC-checked batch at pos.
func (s *sealedSegment) batchAt(pos int64) (BatchHeader, error) {
	size, err := frameSize(s.data[pos:])
	if err != nil {
		return BatchHeader{}, s.corrupt(pos, err)
	}
	if int64(size) > s.ft.BatchesLen-pos {
		return BatchHeader{}, s.corrupt(pos, fmt.Errorf("batch of %d bytes overruns the batch region", size))
	}
	h, err := checkFrameOf(s.data[pos:pos+int64(size)], s.ft.Compacted)
	if err != nil {
		return BatchHeader{}, s.corrupt(pos, err)
	}
	return h, nil
}

// footer returns the segment's footer.
func (s *sealedSegment) footer() Footer { return s.ft }

// read returns whole batches starting with the one containing off: at
// least that batch even if it is larger than maxBytes (KIP-74), otherwise
// as many as fit in maxBytes. An off below the base reads from the first
// batch; above LastOffset (or in an empty segment) it returns nil. The
// result aliases the segment, which is immutable: callers must not modify
// it.
func (s *sealedSegment) read(off int64, maxBytes int) ([]byte, error) {
	if off > s.ft.LastOffset || s.ft.BatchesLen == 0 {
		return nil, nil
	}
	start := s.index.lookupOffset(off, s.ft.BaseOffset)
	for {
		if start >= s.ft.BatchesLen && s.ft.Compacted {
			return nil, nil // compaction removed everything from off on
		}
		if start >= s.ft.BatchesLen {
			return nil, s.corrupt(start, fmt.Errorf("offset %d not found before the end of the batches", off))
		}
		h, err := s.header(start)
		if err != nil {
			return nil, err
		}
		if h.NextOffset() > off {
			break
		}
		start += int64(h.Size())
	}
	end := start
	for end < s.ft.BatchesLen {
		h, err := s.header(end)
		if err != nil {
			return nil, err
		}
		if end > start && end+int64(h.Size())-start > int64(maxBytes) {
			break
		}
		end += int64(h.Size())
	}
	return s.data[start:end:end], nil
}

// header parses the header of the batch at pos, which openSealed has
// verified, checking only that it stays in the batch region.
func (s *sealedSegment) header(pos int64) (BatchHeader, error) {
	h, err := ParseBatchHeader(s.data[pos:])
	if err != nil {
		return h, s.corrupt(pos, err)
	}
	if h.Length < minBatchLength || int64(h.Size()) > s.ft.BatchesLen-pos {
		return h, s.corrupt(pos, fmt.Errorf("batch length %d out of range", h.Length))
	}
	return h, nil
}

// offsetForTime returns the earliest offset whose record timestamp is at
// least ts, with that timestamp (Kafka's ListOffsets by time). found is
// false when every record in the segment is older.
func (s *sealedSegment) offsetForTime(ts int64) (offset int64, timestamp int64, found bool, err error) {
	if s.ft.MaxTimestamp < ts {
		return 0, 0, false, nil
	}
	for pos := s.index.lookupTime(ts); pos < s.ft.BatchesLen; {
		h, err := s.header(pos)
		if err != nil {
			return 0, 0, false, err
		}
		if h.MaxTimestamp >= ts {
			recs, err := decodeBatch(s.data[pos:pos+int64(h.Size())], true)
			if err != nil {
				return 0, 0, false, s.corrupt(pos, err)
			}
			for _, r := range recs {
				if r.Timestamp >= ts {
					return r.Offset, r.Timestamp, true, nil
				}
			}
			// A producer overstated MaxTimestamp: keep looking.
		}
		pos += int64(h.Size())
	}
	return 0, 0, false, nil
}

// sealFile turns an active segment file into a sealed one: it truncates
// file to batchesLen (dropping any stale tail), fsyncs the batches, then
// writes the index and the footer after them and fsyncs again. The first
// fsync matters: with one fsync at the end, a power loss could keep the
// footer and lose batches written without fsync (acks=1), leaving a
// footer that vouches for bytes that are not there. ft.BatchesLen,
// IndexCount and IndexCRC are filled in; the other fields must describe
// the batches, which verifySealedFile checks.
func sealFile(f file, batchesLen int64, idx *sparseIndex, txn *segTxn, ft Footer) error {
	var entries []IndexEntry
	if idx != nil {
		entries = idx.list
	}
	ft.BatchesLen, ft.IndexCount = batchesLen, uint32(len(entries))
	if err := checkFooter(ft); err != nil {
		return fmt.Errorf("seal %s: footer %+v: %w", f.Name(), ft, err)
	}
	tail := encodeSealTail(entries, txn, ft)
	if err := f.Truncate(batchesLen); err != nil {
		return fmt.Errorf("seal %s: %w", f.Name(), err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("seal %s: fsync batches: %w", f.Name(), err)
	}
	if _, err := f.WriteAt(tail, batchesLen); err != nil {
		// Cut a partial tail off: the file is an active segment again.
		if terr := f.Truncate(batchesLen); terr == nil && isNoSpace(err) {
			return fmt.Errorf("%w: seal %s: %w", ErrDiskFull, f.Name(), err)
		}
		return fmt.Errorf("seal %s: %w", f.Name(), err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("seal %s: fsync: %w", f.Name(), err)
	}
	return nil
}

// readFooterFile reads the footer of a segment file. It returns (footer,
// true, nil) when the file ends with a valid footer whose sizes add up to
// the file's, and (_, false, nil) when it has none, as an active segment,
// or one whose sealing was torn by a crash, has not. The batches are not
// checked here (verifySealedFile does). Only I/O errors are returned as
// errors.
func readFooterFile(f file) (Footer, bool, error) {
	size, err := f.Size()
	if err != nil {
		return Footer{}, false, err
	}
	if size < footerLen {
		return Footer{}, false, nil
	}
	buf, err := tailBytes(size, func(off, n int64) ([]byte, error) {
		b := make([]byte, n)
		_, err := f.ReadAt(b, off)
		return b, err
	})
	if err != nil {
		return Footer{}, false, err
	}
	ft, err := decodeTail(buf)
	if err != nil {
		return Footer{}, false, nil
	}
	if ft.BatchesLen+ft.metaLen() != size {
		return Footer{}, false, nil
	}
	// The index is checked by whoever reads it (readIndexFile): a bad
	// index under a good footer is rebuilt, not mistaken for a torn tail.
	return ft, true, nil
}

// verifySealedFile checks a sealed file's batch region against its footer
// without loading it: every batch's frame and CRC, offsets contiguous from
// the base, and the footer's last offset, record count and largest
// timestamp. The index is checked by readIndexFile. A mismatch is a
// *CorruptionError; err is also set for I/O errors.
func verifySealedFile(f file, ft Footer) error {
	res, err := scanBatches(io.NewSectionReader(f, 0, ft.BatchesLen), ft.BaseOffset, defaultIndexInterval)
	if err != nil {
		return fmt.Errorf("log: verify %s: %w", f.Name(), err)
	}
	corrupt := func(at int64, cause error) error {
		return &CorruptionError{Segment: f.Name(), Offset: at, Cause: cause}
	}
	switch {
	case res.Cause != nil:
		return corrupt(res.ValidBytes, res.Cause)
	case res.ValidBytes != ft.BatchesLen:
		return corrupt(res.ValidBytes, fmt.Errorf("batches end at byte %d, footer says %d", res.ValidBytes, ft.BatchesLen))
	case res.Batches > 0 && res.NextOffset-1 != ft.LastOffset:
		return corrupt(res.ValidBytes, fmt.Errorf("last offset %d, footer says %d", res.NextOffset-1, ft.LastOffset))
	case res.RecordCount != ft.RecordCount || res.MaxTimestamp != ft.MaxTimestamp:
		return corrupt(res.ValidBytes, fmt.Errorf("%d records up to timestamp %d, footer says %d up to %d",
			res.RecordCount, res.MaxTimestamp, ft.RecordCount, ft.MaxTimestamp))
	}
	return nil
}
