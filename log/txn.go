package log

// Transactions in a partition log.
//
// A transactional producer's batches carry the transactional bit; the
// first one of a producer in a partition opens its transaction there
// (producerState.ongoing: producer -> first offset). The transaction
// coordinator ends it by writing a marker (WriteTxnMarkers): a control
// batch, Kafka's format, with one COMMIT or ABORT record. The marker
// closes the transaction; an ABORT marker adds an AbortedTxn to the active
// segment's list, which sealing writes into the segment's transaction
// section (txnsection.go).
//
// The last stable offset (LSO) is the first offset of the oldest open
// transaction, or the high watermark when none is open. A read_committed
// reader gets batches below it only, with the aborted transactions that
// may cover them (AbortedTxns), and skips their records and every control
// batch, as Kafka's clients do.
//
// # After a restart
//
// The open transactions at the start of the active segment are the open
// list of the segment before it (its transaction section, or none); the
// rebuild of the producer state (loadProducers) then scans the active
// segment's batches for transactional batches and markers, and so
// recovers both the open transactions and the active segment's aborted
// list. A segment sealed during recovery gets its list the same way
// (recoverTxnSection).

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"math"
	"sort"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// TxnMarker is a transaction marker for one partition.
type TxnMarker struct {
	Topic            string
	Partition        int32
	ProducerID       int64
	ProducerEpoch    int16
	Commit           bool
	CoordinatorEpoch int32
}

// Control record types (Kafka's ControlRecordType): never change.
const (
	controlAbort  = 0
	controlCommit = 1
)

// encodeControlBatch builds the control batch of a marker: base offset 0,
// transactional and control attributes, one record whose key is (version
// 0, type) and value (version 0, coordinator epoch), as Kafka writes them.
func encodeControlBatch(m TxnMarker, ts int64) []byte {
	typ := int16(controlAbort)
	if m.Commit {
		typ = controlCommit
	}
	key := binary.BigEndian.AppendUint16(binary.BigEndian.AppendUint16(nil, 0), uint16(typ))
	val := binary.BigEndian.AppendUint32(binary.BigEndian.AppendUint16(nil, 0), uint32(m.CoordinatorEpoch))
	region := appendRecord(nil, &Record{Key: key, Value: val}, 0, 0)
	rb := kmsg.RecordBatch{
		Length:               int32(minBatchLength + len(region)),
		PartitionLeaderEpoch: -1,
		Magic:                batchMagic,
		Attributes:           attrTransactional | attrControl,
		FirstTimestamp:       ts,
		MaxTimestamp:         ts,
		ProducerID:           m.ProducerID,
		ProducerEpoch:        m.ProducerEpoch,
		FirstSequence:        -1,
		NumRecords:           1,
		Records:              region,
	}
	b := rb.AppendTo(make([]byte, 0, batchHeaderLen+len(region)))
	binary.BigEndian.PutUint32(b[offCRC:], crc32.Checksum(b[offAttributes:], castagnoli))
	return b
}

// controlIsCommit reports whether the control batch b is a COMMIT marker
// (false: ABORT). Other control types are an error.
func controlIsCommit(b []byte) (bool, error) {
	recs, err := decodeBatch(b, true)
	if err != nil {
		return false, err
	}
	if len(recs) == 0 || len(recs[0].Key) < 4 {
		return false, corruptf("control batch without a control record key")
	}
	switch t := int16(binary.BigEndian.Uint16(recs[0].Key[2:])); t {
	case controlAbort:
		return false, nil
	case controlCommit:
		return true, nil
	default:
		return false, corruptf("control record type %d is not a transaction marker", t)
	}
}

// WriteTxnMarkers appends each marker to its partition as a control batch
// and returns once all of them are fsynced. Markers for partitions that no
// longer exist are skipped. Writing a marker again is harmless: it closes
// nothing (or, for ABORT, lists an aborted transaction of no records). A
// marker whose epoch is older than its producer's in the partition is
// refused with ErrInvalidProducerEpoch. The error names the first marker
// that failed; the others were still written.
func (m *Manager) WriteTxnMarkers(ctx context.Context, markers []TxnMarker) error {
	type written struct {
		p      *Partition
		target int64
	}
	var done []written
	var first error
	for _, mk := range markers {
		p, err := m.Partition(mk.Topic, mk.Partition)
		if errors.Is(err, ErrUnknownTopic) || errors.Is(err, ErrUnknownPartition) {
			continue
		}
		if err == nil {
			var target int64
			if target, err = p.appendMarker(ctx, mk); err == nil {
				done = append(done, written{p, target})
				continue
			}
		}
		if first == nil {
			first = fmt.Errorf("log: write %s marker of producer %d to %s-%d: %w",
				markerName(mk.Commit), mk.ProducerID, mk.Topic, mk.Partition, err)
		}
	}
	waits := make([]func() error, len(done))
	for i, w := range done {
		waits[i] = func() error { return w.p.syncTo(w.target) }
	}
	m.AwaitDurable(waits, func(i int, err error) {
		if first == nil {
			first = fmt.Errorf("log: sync marker in %s-%d: %w", done[i].p.topic, done[i].p.index, err)
		}
	})
	return first
}

func markerName(commit bool) string {
	if commit {
		return "COMMIT"
	}
	return "ABORT"
}

// appendMarker writes one marker and returns the written-bytes mark to
// sync to. It ends the producer's open transaction in the partition, if
// any, and moves the producer to the marker's epoch.
func (p *Partition) appendMarker(ctx context.Context, mk TxnMarker) (int64, error) {
	if err := p.loadProducers(ctx); err != nil {
		return 0, err
	}
	now := p.m.now()
	b := encodeControlBatch(mk, now.UnixMilli())
	h, err := ParseBatchHeader(b)
	if err != nil {
		return 0, err
	}
	v := validated{data: b, batches: [][]byte{b}, headers: []BatchHeader{h}, records: 1}
	p.mu.Lock()
	defer p.mu.Unlock()
	if err := p.writableLocked(); err != nil {
		return 0, err
	}
	// No room check: a marker is tiny, and refusing it would keep the
	// transaction open and the last stable offset stuck.
	if err := p.maybeRollLocked(int64(len(b)), now); err != nil {
		return 0, err
	}
	st := p.prod.state
	if e := st.producers[mk.ProducerID]; e != nil && mk.ProducerEpoch < e.epoch {
		return 0, fmt.Errorf("%w: marker of producer %d epoch %d, current epoch %d", ErrInvalidProducerEpoch, mk.ProducerID, mk.ProducerEpoch, e.epoch)
	}
	_, err = p.writeLocked(v, now, func() { p.endTxnLocked(mk.ProducerID, mk.ProducerEpoch, !mk.Commit, p.hwm, now.UnixMilli()) })
	if err != nil {
		return 0, err
	}
	return p.written, nil
}

// endTxnLocked applies a marker at offset to the producer state and, for
// an abort, to the active segment's aborted list.
func (p *Partition) endTxnLocked(id int64, epoch int16, abort bool, offset, nowMs int64) {
	st := p.prod.state
	e := st.producers[id]
	if e == nil {
		e = &producerEntry{epoch: epoch, batches: make([]producerBatch, 0, producerBatchesKept)}
		st.producers[id] = e
	}
	e.setEpoch(epoch, nowMs)
	close(p.markWake)
	p.markWake = make(chan struct{})
	first, ok := st.ongoing[id]
	delete(st.ongoing, id)
	if !ok {
		first = offset
	}
	if !abort {
		return
	}
	act := p.segs[len(p.segs)-1]
	if act.txn == nil {
		act.txn = &segTxn{}
	}
	act.txn.aborted = append(act.txn.aborted, AbortedTxn{ProducerID: id, FirstOffset: first, LastOffset: offset,
		LastStable: lastStable(st.ongoing, offset+1)})
}

// lastStable is the LSO given the open transactions and the high
// watermark.
func lastStable(ongoing map[int64]int64, hwm int64) int64 {
	lso := hwm
	for _, first := range ongoing {
		lso = min(lso, first)
	}
	return lso
}

// LastStableOffset returns the partition's last stable offset: the first
// offset of its oldest open transaction, or the high watermark; never
// below the log start offset (DeleteRecords may move that into an open
// transaction), as in Kafka.
func (p *Partition) LastStableOffset(ctx context.Context) (int64, error) {
	if err := p.loadProducers(ctx); err != nil {
		return 0, err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.lsoLocked(), nil
}

// lsoLocked is LastStableOffset once the producer state is loaded; the
// high watermark before.
func (p *Partition) lsoLocked() int64 {
	if p.prod.state == nil {
		return p.hwm
	}
	return max(lastStable(p.prod.state.ongoing, p.hwm), p.logStart)
}

// WaitStable returns a channel closed when the last stable offset may have
// moved past offset: at once if it already has; while a transaction holds
// it below the high watermark, at the next transaction marker (appends
// cannot move it then); otherwise at the next append, as Wait. A
// read_committed reader at the last stable offset waits on it instead of
// waking for every append of the open transaction. Before the producer
// state is rebuilt it behaves as Wait.
func (p *Partition) WaitStable(offset int64) <-chan struct{} {
	p.mu.Lock()
	defer p.mu.Unlock()
	lso := p.lsoLocked()
	switch {
	case lso > offset || p.closed:
		return closedChan
	case lso < p.hwm:
		return p.markWake
	}
	return p.wake
}

// ProducerInfo describes one producer's state in a partition, as
// DescribeProducers reports it.
type ProducerInfo struct {
	ProducerID int64
	Epoch      int16
	// LastSequence is the sequence of its last batch, -1 when none is
	// remembered (only a transaction marker of it is).
	LastSequence int32
	// LastTimestamp is the broker time of its last append, ms.
	LastTimestamp int64
	// CoordinatorEpoch is always -1: one coordinator serves every
	// transaction.
	CoordinatorEpoch int32
	// TxnStartOffset is the first offset of its open transaction, -1 if
	// none.
	TxnStartOffset int64
}

// Producers returns the partition's producers, sorted by ID.
func (p *Partition) Producers(ctx context.Context) ([]ProducerInfo, error) {
	if err := p.loadProducers(ctx); err != nil {
		return nil, err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	st := p.prod.state
	out := make([]ProducerInfo, 0, len(st.producers))
	for id, e := range st.producers {
		pi := ProducerInfo{ProducerID: id, Epoch: e.epoch, LastSequence: -1, LastTimestamp: e.lastSeen,
			CoordinatorEpoch: -1, TxnStartOffset: -1}
		if len(e.batches) > 0 {
			pi.LastSequence = e.lastSeq()
		}
		if first, ok := st.ongoing[id]; ok {
			pi.TxnStartOffset = first
		}
		out = append(out, pi)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ProducerID < out[j].ProducerID })
	return out, nil
}

// AbortedTxns returns the aborted transactions that may hold records in
// [from, to): each whose marker is at or after from and whose first offset
// is below to, by marker offset. It reads the transaction sections of the
// segments from the one holding from onwards, and stops at the first
// entry whose last stable offset reaches to: every transaction begun
// below to had ended by then (Kafka's rule).
func (p *Partition) AbortedTxns(ctx context.Context, from, to int64) ([]AbortedTxn, error) {
	if err := p.loadProducers(ctx); err != nil {
		return nil, err
	}
	type segRef struct {
		s       *segment
		aborted []AbortedTxn // known list, nil when it must be loaded
		known   bool
		size    int64
	}
	p.mu.Lock()
	var refs []segRef
	for i := sort.Search(len(p.segs), func(i int) bool { return p.segs[i].next > from }); i < len(p.segs); i++ {
		s := p.segs[i]
		r := segRef{s: s, size: s.size}
		if s.txn != nil {
			r.aborted, r.known = s.txn.aborted, true
		} else if !s.remote {
			r.known = true // local without a section: nothing aborted in it
		}
		refs = append(refs, r)
	}
	p.mu.Unlock()
	var out []AbortedTxn
	for _, r := range refs {
		list := r.aborted
		if !r.known {
			t, err := p.remoteTxn(ctx, r.s, r.size)
			if err != nil {
				return nil, err
			}
			list = t.aborted
		}
		for _, a := range list {
			if a.LastOffset >= from && a.FirstOffset < to {
				out = append(out, a)
			}
			if a.LastStable >= to {
				return out, nil
			}
		}
	}
	return out, nil
}

// abortedIndex holds aborted transactions by producer, to tell whether a
// batch belongs to one.
type abortedIndex map[int64][]AbortedTxn

func newAbortedIndex(list []AbortedTxn) abortedIndex {
	ix := make(abortedIndex)
	for _, a := range list {
		ix[a.ProducerID] = append(ix[a.ProducerID], a)
	}
	return ix
}

// has reports whether h is a data batch of one of the transactions.
func (ix abortedIndex) has(h BatchHeader) bool {
	if !h.IsTransactional() || h.IsControl() {
		return false
	}
	for _, a := range ix[h.ProducerID] {
		if a.FirstOffset <= h.BaseOffset && h.BaseOffset <= a.LastOffset {
			return true
		}
	}
	return false
}

// DecodeCommitted is DecodeBatches for a read_committed reader of b: it
// also leaves out the records of the aborted transactions listed (what
// AbortedTxns returns for these batches). Control batches never yield
// records.
func DecodeCommitted(b []byte, from int64, aborted []AbortedTxn) ([]Record, error) {
	if len(aborted) == 0 {
		return DecodeBatches(b, from)
	}
	ix := newAbortedIndex(aborted)
	var out []Record
	for len(b) > 0 {
		size, err := frameSize(b)
		if errors.Is(err, errShortFrame) || (err == nil && size > len(b)) {
			break // a partial batch ends a size-capped read
		}
		if err != nil {
			return out, corruptf("batch: %v", err)
		}
		batch := b[:size]
		b = b[size:]
		if h, err := ParseBatchHeader(batch); err == nil && ix.has(h) {
			continue
		}
		recs, err := DecodeBatches(batch, from)
		if err != nil {
			return out, err
		}
		out = append(out, recs...)
	}
	return out, nil
}

// BatchesBelow returns the length of the longest prefix of b made of whole
// batches that start below offset: what a read_committed reader may see
// of b when offset is the last stable offset.
func BatchesBelow(b []byte, offset int64) int {
	n := 0
	for len(b)-n >= batchHeaderLen {
		size, err := frameSize(b[n:])
		if err != nil || size > len(b)-n || int64(binary.BigEndian.Uint64(b[n:])) >= offset {
			break
		}
		n += size
	}
	return n
}

// remoteTxn returns the transaction section of a remote segment from its
// cached tail (footer, index, section).
func (p *Partition) remoteTxn(ctx context.Context, s *segment, size int64) (segTxn, error) {
	tail, err := p.m.loadTail(ctx, s.key, size)
	if err != nil {
		return segTxn{}, err
	}
	return tail.txn, nil
}

// segmentTxn returns the transaction section of any sealed segment:
// remembered, read from the local file, or from the object's tail.
func (p *Partition) segmentTxn(ctx context.Context, s *segment) (segTxn, error) {
	p.mu.Lock()
	t, remote, size := s.txn, s.remote, s.size
	p.mu.Unlock()
	switch {
	case t != nil:
		return *t, nil
	case remote:
		return p.remoteTxn(ctx, s, size)
	}
	return segTxn{}, nil
}

// rebuildTxns recovers the open transactions and the active segment's
// aborted list after a restart (see the file comment): it starts from the
// open list of the segment before the active one and scans the active
// segment's batches in [from, hwm).
func (p *Partition) rebuildTxns(ctx context.Context, prev *segment, from, hwm int64) (map[int64]int64, []AbortedTxn, error) {
	open := make(map[int64]int64)
	if prev != nil {
		t, err := p.segmentTxn(ctx, prev)
		if err != nil {
			return nil, nil, fmt.Errorf("transactions open before offset %d: %w", from, err)
		}
		for _, o := range t.open {
			open[o.producerID] = o.firstOffset
		}
	}
	var aborted []AbortedTxn
	for off := from; off < hwm; {
		res, err := p.Read(ctx, off, producerScanMaxBytes)
		if err != nil {
			return nil, nil, err
		}
		start := off
		for b := res.Batches; len(b) >= batchHeaderLen; {
			h, err := ParseBatchHeader(b)
			if err != nil || h.Size() > len(b) || h.Size() < batchHeaderLen {
				return nil, nil, fmt.Errorf("batch at offset %d: bad frame", off)
			}
			batch := b[:h.Size()]
			b = b[h.Size():]
			if h.NextOffset() <= off {
				continue
			}
			off = h.NextOffset()
			if a, ok, err := applyTxnBatch(open, batch, h, hwm); err != nil {
				return nil, nil, fmt.Errorf("batch at offset %d: %w", h.BaseOffset, err)
			} else if ok {
				aborted = append(aborted, a)
			}
		}
		res.Release()
		if off == start {
			return nil, nil, fmt.Errorf("no batch at offset %d below high watermark %d", off, hwm)
		}
	}
	return open, aborted, nil
}

// applyTxnBatch applies one batch to the open transactions; for an ABORT
// marker it returns the aborted transaction (ok). end bounds the last
// stable offset recorded for it (the marker's own LSO is at most the
// offset after it).
func applyTxnBatch(open map[int64]int64, batch []byte, h BatchHeader, end int64) (AbortedTxn, bool, error) {
	if !h.IsTransactional() || h.ProducerID < 0 {
		return AbortedTxn{}, false, nil
	}
	if !h.IsControl() {
		if _, ok := open[h.ProducerID]; !ok {
			open[h.ProducerID] = h.BaseOffset
		}
		return AbortedTxn{}, false, nil
	}
	commit, err := controlIsCommit(batch)
	if err != nil {
		return AbortedTxn{}, false, err
	}
	first, ok := open[h.ProducerID]
	delete(open, h.ProducerID)
	if !ok {
		first = h.BaseOffset
	}
	if commit {
		return AbortedTxn{}, false, nil
	}
	return AbortedTxn{ProducerID: h.ProducerID, FirstOffset: first, LastOffset: h.BaseOffset,
		LastStable: lastStable(open, min(h.BaseOffset+1, end))}, true, nil
}

// recoverTxnSection computes the transaction section of a local segment
// file being sealed during recovery, from the open list of the segment
// before it and a scan of the file's batches.
func (p *Partition) recoverTxnSection(ctx context.Context, f file, size, next int64) (*segTxn, error) {
	open := make(map[int64]int64)
	if n := len(p.segs); n > 0 {
		t, err := p.segmentTxn(ctx, p.segs[n-1])
		if err != nil {
			return nil, err
		}
		for _, o := range t.open {
			open[o.producerID] = o.firstOffset
		}
	}
	t := &segTxn{}
	r := io.NewSectionReader(f, 0, size)
	for pos := int64(0); pos < size; {
		var hdr [batchHeaderLen]byte
		if _, err := r.ReadAt(hdr[:], pos); err != nil {
			return nil, err
		}
		h, err := ParseBatchHeader(hdr[:])
		if err != nil || int64(h.Size()) > size-pos || h.Size() < batchHeaderLen {
			return nil, fmt.Errorf("%s: bad batch at byte %d", f.Name(), pos)
		}
		if h.IsTransactional() {
			batch := make([]byte, h.Size())
			if _, err := r.ReadAt(batch, pos); err != nil {
				return nil, err
			}
			if a, ok, err := applyTxnBatch(open, batch, h, math.MaxInt64); err != nil {
				return nil, err
			} else if ok {
				a.LastStable = min(a.LastStable, next)
				t.aborted = append(t.aborted, a)
			}
		}
		pos += int64(h.Size())
	}
	t.open = openList(open)
	return t, nil
}
