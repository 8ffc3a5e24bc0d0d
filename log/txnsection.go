package log

// The transaction section of a sealed segment (footer versions 3 and 4).
//
// A segment that holds the ABORT marker of a transaction, or ends while a
// transaction is open, carries a transaction section between its index and
// its footer (see doc.go for the bytes). It lists
//
//   - the aborted transactions whose ABORT marker lies in the segment
//     (producer, first offset, marker offset, and the partition's last
//     stable offset right after the marker): what a read_committed fetch
//     of the segment's records returns as AbortedTransactions, without a
//     scan of the batches;
//   - the transactions still open when the segment ends (producer, first
//     offset): what the next segment's list is computed from when that
//     segment is sealed or recovered without the broker's memory of it.
//
// A segment with neither keeps the old layout and footer version 1 or 2,
// so segments of topics without transactions do not change at all.

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"sort"
)

// Transaction section constants: never change.
const (
	// footerVersionTxn is footer version 1 plus a transaction section.
	footerVersionTxn = 3
	// footerVersionCompactedTxn is footer version 2 plus a transaction
	// section.
	footerVersionCompactedTxn = 4
	// txnTrailerLen is the section's trailer: aborted count uint32, open
	// count uint32, CRC-32C uint32 of the entries and the two counts.
	txnTrailerLen   = 12
	abortedEntryLen = 32
	openEntryLen    = 16
	// tailReadLen is what a reader of a segment's end reads first: the
	// footer and, for versions 3 and 4, the section trailer before it.
	tailReadLen = footerLen + txnTrailerLen
)

// AbortedTxn is an aborted transaction of one producer in one partition,
// as a read_committed fetch reports it.
type AbortedTxn struct {
	ProducerID int64
	// FirstOffset is the offset of the transaction's first batch in the
	// partition; LastOffset that of its ABORT marker.
	FirstOffset int64
	LastOffset  int64
	// LastStable is the partition's last stable offset right after the
	// marker: every transaction that began below it had ended by then.
	LastStable int64
}

// openTxn is a transaction open at a segment's end.
type openTxn struct {
	producerID  int64
	firstOffset int64
}

// segTxn is a segment's transaction section. The zero value (nothing
// aborted, nothing open) is what a segment without a section has.
type segTxn struct {
	aborted []AbortedTxn // by LastOffset
	open    []openTxn    // by producerID
}

func (t *segTxn) empty() bool { return t == nil || (len(t.aborted) == 0 && len(t.open) == 0) }

// sectionLen is the encoded length of the section, 0 when it is empty.
func (t *segTxn) sectionLen() int64 {
	if t.empty() {
		return 0
	}
	return int64(len(t.aborted))*abortedEntryLen + int64(len(t.open))*openEntryLen + txnTrailerLen
}

// encode returns the section bytes, nil when it is empty.
func (t *segTxn) encode() []byte {
	if t.empty() {
		return nil
	}
	be := binary.BigEndian
	b := make([]byte, 0, t.sectionLen())
	for _, a := range t.aborted {
		b = be.AppendUint64(b, uint64(a.ProducerID))
		b = be.AppendUint64(b, uint64(a.FirstOffset))
		b = be.AppendUint64(b, uint64(a.LastOffset))
		b = be.AppendUint64(b, uint64(a.LastStable))
	}
	for _, o := range t.open {
		b = be.AppendUint64(b, uint64(o.producerID))
		b = be.AppendUint64(b, uint64(o.firstOffset))
	}
	b = be.AppendUint32(b, uint32(len(t.aborted)))
	b = be.AppendUint32(b, uint32(len(t.open)))
	return be.AppendUint32(b, crc32.Checksum(b, castagnoli))
}

var errBadTxnSection = errors.New("bad transaction section")

// decodeTxnTrailer reads the counts of a section from its trailer.
func decodeTxnTrailer(b []byte) (aborted, open uint32) {
	be := binary.BigEndian
	return be.Uint32(b), be.Uint32(b[4:])
}

// decodeTxnSection parses a whole section (entries and trailer), checking
// its CRC and that the entries lie inside [base, last] of the segment.
func decodeTxnSection(b []byte, base, last int64) (segTxn, error) {
	be := binary.BigEndian
	if len(b) < txnTrailerLen {
		return segTxn{}, fmt.Errorf("%w: %d bytes", errBadTxnSection, len(b))
	}
	tr := b[len(b)-txnTrailerLen:]
	na, no := decodeTxnTrailer(tr)
	if crc := crc32.Checksum(b[:len(b)-4], castagnoli); crc != be.Uint32(tr[8:]) {
		return segTxn{}, fmt.Errorf("%w: crc %08x, computed %08x", errBadTxnSection, be.Uint32(tr[8:]), crc)
	}
	if int64(na)*abortedEntryLen+int64(no)*openEntryLen+txnTrailerLen != int64(len(b)) || na+no == 0 {
		return segTxn{}, fmt.Errorf("%w: %d aborted and %d open entries in %d bytes", errBadTxnSection, na, no, len(b))
	}
	var t segTxn
	t.aborted = make([]AbortedTxn, na)
	for i := range t.aborted {
		e := b[i*abortedEntryLen:]
		a := AbortedTxn{ProducerID: int64(be.Uint64(e)), FirstOffset: int64(be.Uint64(e[8:])),
			LastOffset: int64(be.Uint64(e[16:])), LastStable: int64(be.Uint64(e[24:]))}
		if a.ProducerID < 0 || a.FirstOffset < 0 || a.FirstOffset > a.LastOffset || a.LastOffset < base || a.LastOffset > last ||
			a.LastStable < 0 || a.LastStable > a.LastOffset+1 || (i > 0 && a.LastOffset <= t.aborted[i-1].LastOffset) {
			return segTxn{}, fmt.Errorf("%w: aborted entry %d %+v outside offsets %d-%d or out of order", errBadTxnSection, i, a, base, last)
		}
		t.aborted[i] = a
	}
	rest := b[int(na)*abortedEntryLen:]
	t.open = make([]openTxn, no)
	for i := range t.open {
		e := rest[i*openEntryLen:]
		o := openTxn{producerID: int64(be.Uint64(e)), firstOffset: int64(be.Uint64(e[8:]))}
		if o.producerID < 0 || o.firstOffset < 0 || o.firstOffset > last || (i > 0 && o.producerID <= t.open[i-1].producerID) {
			return segTxn{}, fmt.Errorf("%w: open entry %d %+v", errBadTxnSection, i, o)
		}
		t.open[i] = o
	}
	if len(t.aborted) == 0 {
		t.aborted = nil
	}
	if len(t.open) == 0 {
		t.open = nil
	}
	return t, nil
}

// openList returns the open transactions of a producer -> first offset
// map, sorted by producer ID.
func openList(open map[int64]int64) []openTxn {
	if len(open) == 0 {
		return nil
	}
	l := make([]openTxn, 0, len(open))
	for id, first := range open {
		l = append(l, openTxn{producerID: id, firstOffset: first})
	}
	sort.Slice(l, func(i, j int) bool { return l[i].producerID < l[j].producerID })
	return l
}
