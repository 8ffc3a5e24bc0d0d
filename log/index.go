package log

import (
	"encoding/binary"
	"fmt"
	"math"
	"slices"
	"sort"
)

// Sparse index format constants: never change (see doc.go).
const (
	// indexEntryLen is the encoded size of one IndexEntry.
	indexEntryLen = 16
	// defaultIndexInterval is how many bytes of batches at least separate
	// two index entries.
	defaultIndexInterval = 4096
	// noTimestamp stands for "no batch yet" in MaxTimestampBefore. Kafka
	// timestamps are >= -1 (-1 meaning none), so it compares below every
	// timestamp a lookup asks for.
	noTimestamp = -1
)

// IndexEntry points at one batch of a segment.
type IndexEntry struct {
	// RelOffset is the batch's base offset minus the segment's base offset.
	RelOffset uint32
	// Position is the batch's byte position in the segment.
	Position uint32
	// MaxTimestampBefore is the largest MaxTimestamp of all batches
	// strictly before this one in the segment, -1 if there are none (or
	// all had timestamps of -1 or less).
	MaxTimestampBefore int64
}

// sparseIndex maps offsets and timestamps to byte positions in one segment,
// with an entry at most every interval bytes. Lookups return a position at
// or before the wanted batch; the caller walks forward from there. The zero
// value is an empty index with the default interval.
//
// It is not safe for concurrent use: the owner serializes add with lookups.
type sparseIndex struct {
	list []IndexEntry
	// interval is the least byte distance between two entries; 0 means
	// defaultIndexInterval.
	interval int64
	// lastPos is the position of the last entry.
	lastPos int64
	// maxTS is the largest MaxTimestamp added so far, clamped to at least
	// noTimestamp; meaningful only once haveTS is set.
	maxTS  int64
	haveTS bool
}

// newSparseIndex returns an empty index; interval <= 0 means the default.
func newSparseIndex(interval int) *sparseIndex {
	return &sparseIndex{interval: int64(max(interval, 0))}
}

// newSparseIndexFrom rebuilds an index from decoded entries (which it
// keeps). Its maxTimestamp is only known up to the last entry's
// MaxTimestampBefore; openSealed sets it from the footer.
func newSparseIndexFrom(entries []IndexEntry, interval int) *sparseIndex {
	x := newSparseIndex(interval)
	x.list = entries
	if n := len(entries); n > 0 {
		x.lastPos = int64(entries[n-1].Position)
		x.maxTS, x.haveTS = max(entries[n-1].MaxTimestampBefore, noTimestamp), true
	}
	return x
}

// add records batch h, appended at byte pos of the segment whose base
// offset is segBase. It must be called for every batch, in order: it
// makes an entry for the first batch and whenever interval bytes have
// passed since the last entry. Positions or offsets beyond 32 bits get no
// entry; lookups then return an earlier position, which is still correct.
func (x *sparseIndex) add(h BatchHeader, segBase int64, pos int64) {
	interval := x.interval
	if interval <= 0 {
		interval = defaultIndexInterval
	}
	rel := h.BaseOffset - segBase
	if len(x.list) == 0 || pos-x.lastPos >= interval {
		if rel >= 0 && rel <= math.MaxUint32 && pos >= 0 && pos <= math.MaxUint32 {
			x.list = append(x.list, IndexEntry{
				RelOffset:          uint32(rel),
				Position:           uint32(pos),
				MaxTimestampBefore: x.maxTimestamp(),
			})
			x.lastPos = pos
		}
	}
	x.maxTS, x.haveTS = max(x.maxTimestamp(), h.MaxTimestamp), true
}

// lookupOffset returns the position of the last entry whose batch starts
// at or before off, 0 if none does.
func (x *sparseIndex) lookupOffset(off int64, segBase int64) int64 {
	rel := off - segBase
	// i is the first entry starting after off.
	i := sort.Search(len(x.list), func(i int) bool {
		return int64(x.list[i].RelOffset) > rel
	})
	if i == 0 {
		return 0
	}
	return int64(x.list[i-1].Position)
}

// lookupTime returns the position of the last entry every batch before
// which has MaxTimestamp < ts, so no record before it has a timestamp >= ts;
// 0 if none. MaxTimestampBefore never decreases, so it is a binary search.
func (x *sparseIndex) lookupTime(ts int64) int64 {
	i := sort.Search(len(x.list), func(i int) bool {
		return x.list[i].MaxTimestampBefore >= ts
	})
	if i == 0 {
		return 0
	}
	return int64(x.list[i-1].Position)
}

// entries returns a copy of the index entries.
func (x *sparseIndex) entries() []IndexEntry { return slices.Clone(x.list) }

// maxTimestamp returns the largest batch MaxTimestamp added, -1 if none
// (or if none was above -1).
func (x *sparseIndex) maxTimestamp() int64 {
	if !x.haveTS {
		return noTimestamp
	}
	return x.maxTS
}

// encodeIndex encodes entries, 16 bytes each, big-endian: RelOffset u32,
// Position u32, MaxTimestampBefore i64.
func encodeIndex(entries []IndexEntry) []byte {
	b := make([]byte, 0, len(entries)*indexEntryLen)
	for _, e := range entries {
		b = binary.BigEndian.AppendUint32(b, e.RelOffset)
		b = binary.BigEndian.AppendUint32(b, e.Position)
		b = binary.BigEndian.AppendUint64(b, uint64(e.MaxTimestampBefore))
	}
	return b
}

// decodeIndex decodes what encodeIndex encoded, checking that RelOffset and
// Position strictly increase and MaxTimestampBefore never decreases and is
// at least -1. Errors wrap ErrCorruptSegment.
func decodeIndex(b []byte) ([]IndexEntry, error) {
	if len(b)%indexEntryLen != 0 {
		return nil, fmt.Errorf("%w: index length %d not a multiple of %d", ErrCorruptSegment, len(b), indexEntryLen)
	}
	entries := make([]IndexEntry, len(b)/indexEntryLen)
	for i := range entries {
		e := b[i*indexEntryLen : (i+1)*indexEntryLen]
		entries[i] = IndexEntry{
			RelOffset:          binary.BigEndian.Uint32(e[0:]),
			Position:           binary.BigEndian.Uint32(e[4:]),
			MaxTimestampBefore: int64(binary.BigEndian.Uint64(e[8:])),
		}
		if err := checkIndexStep(entries, i); err != nil {
			return nil, err
		}
	}
	return entries, nil
}

// checkIndexStep checks entry i against entry i-1.
func checkIndexStep(entries []IndexEntry, i int) error {
	e := entries[i]
	if e.MaxTimestampBefore < noTimestamp {
		return fmt.Errorf("%w: index entry %d: timestamp %d below -1", ErrCorruptSegment, i, e.MaxTimestampBefore)
	}
	if i == 0 {
		return nil
	}
	p := entries[i-1]
	if e.RelOffset <= p.RelOffset || e.Position <= p.Position || e.MaxTimestampBefore < p.MaxTimestampBefore {
		return fmt.Errorf("%w: index entry %d %+v does not follow %+v", ErrCorruptSegment, i, e, p)
	}
	return nil
}
