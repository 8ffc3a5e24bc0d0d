package log

// Idempotent-producer state.
//
// Every partition remembers, per producer ID, the producer's epoch and the
// sequence ranges and offsets of its last five batches (Kafka keeps five
// because a producer has at most five requests in flight). Append checks a
// batch that carries a producer ID (>= 0) under the partition lock, before
// offsets are assigned, with Kafka's rules (ProducerStateManager):
//
//   - an epoch below the known one is fenced: ErrInvalidProducerEpoch;
//   - same epoch, and the batch's sequence range equals one of the last five
//     batches: a retry. Nothing is written; the append answers with the
//     original batch's offsets (AppendResult.Duplicate);
//   - same epoch: the first sequence must follow the last one (wrapping after
//     math.MaxInt32 to 0), else ErrOutOfOrderSequence;
//   - a higher epoch must start at sequence 0, else ErrOutOfOrderSequence;
//   - an unknown producer may start at any sequence (its history may have
//     been removed by retention, as in Kafka).
//
// An append of several batches is checked batch by batch against the state
// the earlier batches leave; a duplicate inside such an append is refused
// as out of order (Kafka allows one batch per partition per request).
//
// # Surviving restarts
//
// The state is rebuilt lazily by the first Append after the partition is
// opened, outside the partition lock: load the newest valid snapshot file
// at or below the high watermark, then read every batch header from its
// offset (or, without a snapshot, from the log start offset) to the high
// watermark through Read, so sealed and uploaded segments are covered
// too. Appends wait for the rebuild; readers do not.
//
// A snapshot is written, under the partition lock, by the first append that
// lands in an active segment newer than the last snapshot; it captures the
// state as of the high watermark at that moment, so a normal restart reads
// only the active segment. Any older snapshot is also correct (the scan is
// just longer), so a crash that loses the newest one costs time, not
// correctness. Snapshots above the high watermark (the log lost an
// un-fsynced tail) are deleted at load: they describe batches that are gone.
// Producers idle for producerExpiry are dropped when a snapshot is written,
// as Kafka drops them after producer.id.expiration.ms.
//
// # Snapshot file format
//
// <partition dir>/<offset, %020d>.producers, big-endian:
//
//	off len field
//	  0   4 magic      "SHPS" (0x53485053)          never change
//	  4   2 version    1                            never change meaning
//	  6   2 reserved   0
//	  8   8 offset     int64  every batch below it is reflected
//	 16   4 count      uint32 producer entries that follow
//	 20     entries, each 20 bytes + 32 per batch:
//	          0 8 producerId int64
//	          8 2 epoch      int16
//	         10 2 batches    uint16 (1..5)
//	         12 8 lastSeen   int64  broker time of its last append, ms
//	         20   batches, oldest first, each 32 bytes:
//	                0 4 firstSeq    int32
//	                4 4 lastSeq     int32
//	                8 8 firstOffset int64
//	               16 8 lastOffset  int64
//	               24 8 appendTime  int64  -1 unless log append time
//	end-4   4 crc      CRC-32C (Castagnoli) of every byte before it
//
// Written to "<name>.tmp", fsynced, renamed, directory fsynced. The newest
// two snapshots are kept.

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Sentinel errors of idempotent appends; the Kafka front maps them to
// OUT_OF_ORDER_SEQUENCE_NUMBER and INVALID_PRODUCER_EPOCH.
var (
	// ErrOutOfOrderSequence means a batch's first sequence does not follow
	// its producer's last one.
	ErrOutOfOrderSequence = errors.New("log: out of order sequence number")
	// ErrInvalidProducerEpoch means a batch's producer epoch is older than
	// the one the partition has seen: the producer has been fenced.
	ErrInvalidProducerEpoch = errors.New("log: invalid producer epoch")
)

// Snapshot format constants: never change (see above).
const (
	producerSnapMagic    = 0x53485053 // "SHPS"
	producerSnapVersion  = 1
	producerSnapSuffix   = ".producers"
	producerSnapHeader   = 20
	producerEntryLen     = 20
	producerBatchLen     = 32
	producerSnapsKept    = 2
	producerBatchesKept  = 5
	producerExpiry       = 24 * time.Hour
	producerScanMaxBytes = 1 << 20
)

// producerBatch is what is remembered of one batch of a producer.
type producerBatch struct {
	firstSeq, lastSeq       int32
	firstOffset, lastOffset int64
	appendTime              int64 // -1 unless the topic uses log append time
}

// producerEntry is one producer's state in one partition.
type producerEntry struct {
	epoch    int16
	batches  []producerBatch // oldest first, at most producerBatchesKept
	lastSeen int64           // broker time of the last append, ms
}

func (e *producerEntry) lastSeq() int32 { return e.batches[len(e.batches)-1].lastSeq }

// setEpoch moves the entry to a newer epoch, as a transaction marker
// does: its sequence window starts over.
func (e *producerEntry) setEpoch(epoch int16, now int64) {
	if epoch > e.epoch {
		e.epoch, e.batches = epoch, e.batches[:0]
	}
	e.lastSeen = now
}

// add records a batch, resetting the window when the epoch changes.
func (e *producerEntry) add(epoch int16, b producerBatch, now int64) {
	if epoch != e.epoch {
		e.epoch, e.batches = epoch, e.batches[:0]
	}
	if len(e.batches) == producerBatchesKept {
		copy(e.batches, e.batches[1:])
		e.batches = e.batches[:producerBatchesKept-1]
	}
	e.batches = append(e.batches, b)
	e.lastSeen = now
}

// producerState is a partition's producer table.
type producerState struct {
	producers  map[int64]*producerEntry
	snapOffset int64 // offset of the newest snapshot written or loaded, -1 if none
	// ongoing maps the producers with an open transaction in the
	// partition to the offset of its first batch (txn.go).
	ongoing map[int64]int64
}

func newProducerState() *producerState {
	return &producerState{producers: make(map[int64]*producerEntry), snapOffset: -1, ongoing: make(map[int64]int64)}
}

// producerTracker is the Partition's handle on its producer state.
type producerTracker struct {
	// loadMu serializes the one-time rebuild; loaded is set once it is done.
	loadMu sync.Mutex
	loaded atomic.Bool
	// state is guarded by Partition.mu; nil until loaded.
	state *producerState
}

// batchLastSeq is the sequence of a batch's last record: Kafka sequences
// wrap from math.MaxInt32 to 0.
func batchLastSeq(h BatchHeader) int32 {
	return int32((int64(h.BaseSequence) + int64(h.LastOffsetDelta)) % (math.MaxInt32 + 1))
}

// inSequence reports whether next may follow last.
func inSequence(last, next int32) bool {
	return next == last+1 || (last == math.MaxInt32 && next == 0)
}

// checkBatch applies Kafka's sequence rules to h against e (nil for an
// unknown producer). It returns the original batch if h is a retry of one
// of e's last batches.
func checkBatch(e *producerEntry, h BatchHeader) (*producerBatch, error) {
	if h.ProducerEpoch < 0 || h.BaseSequence < 0 {
		return nil, invalidf("producer %d: epoch %d, base sequence %d", h.ProducerID, h.ProducerEpoch, h.BaseSequence)
	}
	if e == nil {
		return nil, nil
	}
	if len(e.batches) == 0 {
		// Only a transaction marker made this entry: a batch of a newer
		// epoch than the marker's starts over like any new epoch, one of
		// the marker's epoch must start at 0 as well, as in Kafka.
		switch {
		case h.ProducerEpoch < e.epoch:
			return nil, fmt.Errorf("%w: producer %d epoch %d, current epoch %d", ErrInvalidProducerEpoch, h.ProducerID, h.ProducerEpoch, e.epoch)
		case h.BaseSequence != 0:
			return nil, fmt.Errorf("%w: producer %d epoch %d starts at sequence %d, want 0", ErrOutOfOrderSequence, h.ProducerID, h.ProducerEpoch, h.BaseSequence)
		}
		return nil, nil
	}
	switch {
	case h.ProducerEpoch < e.epoch:
		return nil, fmt.Errorf("%w: producer %d epoch %d, current epoch %d", ErrInvalidProducerEpoch, h.ProducerID, h.ProducerEpoch, e.epoch)
	case h.ProducerEpoch > e.epoch:
		if h.BaseSequence != 0 {
			return nil, fmt.Errorf("%w: producer %d new epoch %d starts at sequence %d, want 0", ErrOutOfOrderSequence, h.ProducerID, h.ProducerEpoch, h.BaseSequence)
		}
		return nil, nil
	}
	last := batchLastSeq(h)
	for i := range e.batches {
		if b := &e.batches[i]; b.firstSeq == h.BaseSequence && b.lastSeq == last {
			return b, nil
		}
	}
	if !inSequence(e.lastSeq(), h.BaseSequence) {
		return nil, fmt.Errorf("%w: producer %d epoch %d sequence %d, expected %d", ErrOutOfOrderSequence, h.ProducerID, h.ProducerEpoch, h.BaseSequence, e.lastSeq()+1)
	}
	return nil, nil
}

// producerUpdate is what an append records in the producer table once
// its write succeeded: one producer batch, or for a multi-batch append
// the staged entries.
type producerUpdate struct {
	staged map[int64]*producerEntry
	id     int64 // -1: no single batch to record
	epoch  int16
	batch  producerBatch
	// txnStarts are the transactions the append opens.
	txnStarts []openTxn
}

// checkProducersLocked runs at SEAM(idempotence) in appendData: it checks
// the producer batches of an append, with the offsets the append is about
// to assign, and returns the update to apply with commitProducersLocked
// once the write succeeded (a failed write, such as a full disk, must
// leave the table as it was). dup is true when the append is a retry of a
// batch already in the log: res then holds that batch's offsets and the
// caller must write nothing.
func (p *Partition) checkProducersLocked(hs []BatchHeader, now time.Time) (u producerUpdate, res AppendResult, dup bool, err error) {
	u.id = -1
	st := p.prod.state
	if st == nil {
		return u, AppendResult{}, false, fmt.Errorf("log: %s-%d: producer state not loaded", p.topic, p.index)
	}
	p.maybeSnapshotProducersLocked(st, now)
	appendTime := int64(-1)
	if p.settings.logAppendTime {
		appendTime = now.UnixMilli()
	}
	next := p.hwm
	for _, h := range hs {
		base := next
		next += int64(h.LastOffsetDelta) + 1
		if h.ProducerID < 0 {
			continue
		}
		e := st.producers[h.ProducerID]
		if len(hs) > 1 {
			e = stagedEntry(&u.staged, st, h.ProducerID)
		}
		orig, err := checkBatch(e, h)
		if err != nil {
			return u, AppendResult{}, false, err
		}
		if orig != nil {
			if len(hs) > 1 {
				return u, AppendResult{}, false, fmt.Errorf("%w: producer %d sequence %d repeats a batch inside a multi-batch append", ErrOutOfOrderSequence, h.ProducerID, h.BaseSequence)
			}
			return u, AppendResult{BaseOffset: orig.firstOffset, LastOffset: orig.lastOffset,
				LogAppendTime: orig.appendTime, LogStartOffset: p.logStart, Duplicate: true}, true, nil
		}
		if h.IsTransactional() {
			u.txnStarts = noteTxnStart(u.txnStarts, st.ongoing, h.ProducerID, base)
		}
		b := producerBatch{firstSeq: h.BaseSequence, lastSeq: batchLastSeq(h),
			firstOffset: base, lastOffset: next - 1, appendTime: appendTime}
		if len(hs) == 1 {
			u.id, u.epoch, u.batch = h.ProducerID, h.ProducerEpoch, b
			continue
		}
		if e == nil {
			e = &producerEntry{epoch: h.ProducerEpoch, batches: make([]producerBatch, 0, producerBatchesKept)}
			u.staged[h.ProducerID] = e
		}
		e.add(h.ProducerEpoch, b, now.UnixMilli())
	}
	return u, AppendResult{}, false, nil
}

// commitProducersLocked applies what checkProducersLocked returned.
func (p *Partition) commitProducersLocked(u producerUpdate, nowMs int64) {
	st := p.prod.state
	if u.id >= 0 {
		e := st.producers[u.id]
		if e == nil {
			e = &producerEntry{epoch: u.epoch, batches: make([]producerBatch, 0, producerBatchesKept)}
			st.producers[u.id] = e
		}
		e.add(u.epoch, u.batch, nowMs)
	}
	for id, e := range u.staged {
		e.lastSeen = nowMs
		st.producers[id] = e
	}
	for _, t := range u.txnStarts {
		st.ongoing[t.producerID] = t.firstOffset
	}
}

// noteTxnStart adds producer id's transaction starting at offset to
// starts unless it is already open or noted.
func noteTxnStart(starts []openTxn, ongoing map[int64]int64, id, offset int64) []openTxn {
	if _, ok := ongoing[id]; ok {
		return starts
	}
	for _, t := range starts {
		if t.producerID == id {
			return starts
		}
	}
	return append(starts, openTxn{producerID: id, firstOffset: offset})
}

// stagedEntry returns a private copy of a producer's entry for a
// multi-batch append, so a later batch's failure leaves the state as it
// was. A new producer is not staged here: checkProducersLocked inserts it.
func stagedEntry(staged *map[int64]*producerEntry, st *producerState, id int64) *producerEntry {
	if *staged == nil {
		*staged = make(map[int64]*producerEntry)
	}
	if e, ok := (*staged)[id]; ok {
		return e
	}
	e, ok := st.producers[id]
	if !ok {
		return nil
	}
	c := &producerEntry{epoch: e.epoch, lastSeen: e.lastSeen, batches: append(make([]producerBatch, 0, producerBatchesKept), e.batches...)}
	(*staged)[id] = c
	return c
}

// maybeSnapshotProducersLocked writes a snapshot when the active segment is
// newer than the last snapshot. A failure is logged and not retried for
// this segment: the in-memory state is intact and an older snapshot still
// yields a correct (longer) rebuild.
func (p *Partition) maybeSnapshotProducersLocked(st *producerState, now time.Time) {
	act := p.segs[len(p.segs)-1]
	if st.snapOffset >= act.base {
		return
	}
	cutoff := now.Add(-producerExpiry).UnixMilli()
	for id, e := range st.producers {
		if e.lastSeen < cutoff {
			delete(st.producers, id)
		}
	}
	st.snapOffset = p.hwm
	if err := writeProducerSnapshot(p.m.fs, p.dir, p.hwm, st.producers); err != nil {
		p.m.logger.Warn("writing producer state snapshot failed; a restart will scan further back",
			"topic", p.topic, "partition", p.index, "offset", p.hwm, "err", err)
	}
}

// loadProducers rebuilds the producer state once, before the first append
// after open (see the file comment). Concurrent appends wait for it.
func (p *Partition) loadProducers(ctx context.Context) error {
	if p.prod.loaded.Load() {
		return nil
	}
	p.prod.loadMu.Lock()
	defer p.prod.loadMu.Unlock()
	if p.prod.loaded.Load() {
		return nil
	}
	p.mu.Lock()
	logStart, hwm := p.logStart, p.hwm
	p.mu.Unlock()

	st, err := loadProducerSnapshot(p.m.fs, p.dir, hwm, p.m.logger)
	if err != nil {
		return err
	}
	// Without a snapshot (lost, damaged, or never written because its
	// write failed) the whole log is scanned: the last batches of a
	// producer may lie in any sealed segment, and a retry of one of them
	// must still be answered as a duplicate.
	from := logStart
	if st.snapOffset >= 0 {
		from = st.snapOffset
	}
	if err := p.scanProducers(ctx, st, max(from, logStart), hwm); err != nil {
		return fmt.Errorf("log: rebuild producer state of %s-%d: %w", p.topic, p.index, err)
	}
	p.mu.Lock()
	act := p.segs[len(p.segs)-1]
	var prev *segment
	if len(p.segs) > 1 {
		prev = p.segs[len(p.segs)-2]
	}
	p.mu.Unlock()
	open, aborted, err := p.rebuildTxns(ctx, prev, max(act.base, logStart), hwm)
	if err != nil {
		return fmt.Errorf("log: rebuild transactions of %s-%d: %w", p.topic, p.index, err)
	}
	st.ongoing = open
	p.mu.Lock()
	if p.hwm != hwm || p.segs[len(p.segs)-1] != act {
		// Cannot happen: every append and roll waits for loadMu first.
		p.mu.Unlock()
		return fmt.Errorf("log: rebuild producer state of %s-%d: high watermark moved from %d to %d", p.topic, p.index, hwm, p.hwm)
	}
	act.txn = &segTxn{aborted: aborted}
	p.prod.state = st
	p.mu.Unlock()
	p.prod.loaded.Store(true)
	return nil
}

// scanProducers applies the producer batches in [from, to) to st, reading
// batch headers through Read (local, sealed or remote segments alike).
func (p *Partition) scanProducers(ctx context.Context, st *producerState, from, to int64) error {
	now := p.m.now().UnixMilli()
	for off := from; off < to; {
		res, err := p.Read(ctx, off, producerScanMaxBytes)
		if err != nil {
			return err
		}
		start := off
		for b := res.Batches; len(b) >= batchHeaderLen; {
			h, err := ParseBatchHeader(b)
			if err != nil || h.Size() > len(b) || h.Size() < batchHeaderLen {
				return fmt.Errorf("batch at offset %d: bad frame", off)
			}
			b = b[h.Size():]
			if h.NextOffset() <= off {
				continue
			}
			off = h.NextOffset()
			if h.ProducerID < 0 {
				continue
			}
			e := st.producers[h.ProducerID]
			if h.IsControl() {
				if e == nil {
					e = &producerEntry{epoch: h.ProducerEpoch, batches: make([]producerBatch, 0, producerBatchesKept)}
					st.producers[h.ProducerID] = e
				}
				e.setEpoch(h.ProducerEpoch, now)
				continue
			}
			if e == nil {
				e = &producerEntry{epoch: h.ProducerEpoch, batches: make([]producerBatch, 0, producerBatchesKept)}
				st.producers[h.ProducerID] = e
			}
			at := int64(-1)
			if h.LogAppendTime() {
				at = h.MaxTimestamp
			}
			e.add(h.ProducerEpoch, producerBatch{firstSeq: h.BaseSequence, lastSeq: batchLastSeq(h),
				firstOffset: h.BaseOffset, lastOffset: h.NextOffset() - 1, appendTime: at}, now)
		}
		if off == start {
			return fmt.Errorf("no batch at offset %d below high watermark %d", off, to)
		}
	}
	return nil
}

// producerSnapshots lists the snapshot offsets in dir, newest first.
func producerSnapshots(fsys fileSystem, dir string) ([]int64, error) {
	names, err := fsys.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("log: list %s: %w", dir, err)
	}
	var offs []int64
	for _, n := range names {
		name, ok := strings.CutSuffix(n, producerSnapSuffix)
		if !ok {
			continue
		}
		if o, err := strconv.ParseInt(name, 10, 64); err == nil && o >= 0 {
			offs = append(offs, o)
		}
	}
	sort.Slice(offs, func(i, j int) bool { return offs[i] > offs[j] })
	return offs, nil
}

func producerSnapPath(dir string, offset int64) string {
	return filepath.Join(dir, fmt.Sprintf("%020d%s", offset, producerSnapSuffix))
}

// loadProducerSnapshot returns the state of the newest valid snapshot at or
// below hwm (snapOffset -1 and no producers when there is none). Snapshots
// above hwm are deleted; damaged ones are skipped with a warning.
func loadProducerSnapshot(fsys fileSystem, dir string, hwm int64, logger *slog.Logger) (*producerState, error) {
	offs, err := producerSnapshots(fsys, dir)
	if err != nil {
		return nil, err
	}
	for _, off := range offs {
		path := producerSnapPath(dir, off)
		if off > hwm {
			logger.Warn("removing producer snapshot above the high watermark", "path", path, "high_watermark", hwm)
			if err := fsys.Remove(path); err != nil {
				return nil, fmt.Errorf("log: remove %s: %w", path, err)
			}
			continue
		}
		data, err := readWholeFile(fsys, path)
		if err != nil {
			return nil, fmt.Errorf("log: read %s: %w", path, err)
		}
		st, err := decodeProducerSnapshot(data)
		if err == nil && st.snapOffset != off {
			err = fmt.Errorf("offset %d in a file named for %d", st.snapOffset, off)
		}
		if err != nil {
			logger.Warn("skipping damaged producer snapshot", "path", path, "err", err)
			continue
		}
		return st, nil
	}
	return newProducerState(), nil
}

// encodeProducerSnapshot serializes producers as of offset (format above),
// sorted by producer ID so equal states give equal bytes.
func encodeProducerSnapshot(offset int64, producers map[int64]*producerEntry) []byte {
	ids := make([]int64, 0, len(producers))
	size := producerSnapHeader + 4
	for id, e := range producers {
		if len(e.batches) == 0 {
			// Made by a transaction marker alone: the format has no
			// room for it, and the scan after the snapshot does not
			// need it (its epoch only fences, and a restart's scan of
			// the markers since the snapshot restores that).
			continue
		}
		ids = append(ids, id)
		size += producerEntryLen + producerBatchLen*len(e.batches)
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	be := binary.BigEndian
	b := make([]byte, 0, size)
	b = be.AppendUint32(b, producerSnapMagic)
	b = be.AppendUint16(b, producerSnapVersion)
	b = be.AppendUint16(b, 0)
	b = be.AppendUint64(b, uint64(offset))
	b = be.AppendUint32(b, uint32(len(ids)))
	for _, id := range ids {
		e := producers[id]
		b = be.AppendUint64(b, uint64(id))
		b = be.AppendUint16(b, uint16(e.epoch))
		b = be.AppendUint16(b, uint16(len(e.batches)))
		b = be.AppendUint64(b, uint64(e.lastSeen))
		for _, x := range e.batches {
			b = be.AppendUint32(b, uint32(x.firstSeq))
			b = be.AppendUint32(b, uint32(x.lastSeq))
			b = be.AppendUint64(b, uint64(x.firstOffset))
			b = be.AppendUint64(b, uint64(x.lastOffset))
			b = be.AppendUint64(b, uint64(x.appendTime))
		}
	}
	return be.AppendUint32(b, crc32.Checksum(b, castagnoli))
}

var errBadSnapshot = errors.New("log: bad producer snapshot")

// decodeProducerSnapshot parses a snapshot file, checking magic, version,
// CRC and that every length fits the bytes before allocating for it.
func decodeProducerSnapshot(b []byte) (*producerState, error) {
	be := binary.BigEndian
	if len(b) < producerSnapHeader+4 {
		return nil, fmt.Errorf("%w: %d bytes", errBadSnapshot, len(b))
	}
	body, sum := b[:len(b)-4], be.Uint32(b[len(b)-4:])
	if crc := crc32.Checksum(body, castagnoli); crc != sum {
		return nil, fmt.Errorf("%w: crc %08x, computed %08x", errBadSnapshot, sum, crc)
	}
	if m, v := be.Uint32(body), be.Uint16(body[4:]); m != producerSnapMagic || v != producerSnapVersion {
		return nil, fmt.Errorf("%w: magic %08x version %d", errBadSnapshot, m, v)
	}
	st := newProducerState()
	st.snapOffset = int64(be.Uint64(body[8:]))
	n := be.Uint32(body[16:])
	rest := body[producerSnapHeader:]
	if st.snapOffset < 0 || uint64(n)*producerEntryLen > uint64(len(rest)) {
		return nil, fmt.Errorf("%w: offset %d, %d entries in %d bytes", errBadSnapshot, st.snapOffset, n, len(rest))
	}
	prev := int64(-1)
	for i := uint32(0); i < n; i++ {
		if len(rest) < producerEntryLen {
			return nil, fmt.Errorf("%w: entry %d truncated", errBadSnapshot, i)
		}
		id, nb := int64(be.Uint64(rest)), int(be.Uint16(rest[10:]))
		e := &producerEntry{epoch: int16(be.Uint16(rest[8:])), lastSeen: int64(be.Uint64(rest[12:]))}
		rest = rest[producerEntryLen:]
		if id < 0 || nb < 1 || nb > producerBatchesKept || len(rest) < nb*producerBatchLen {
			return nil, fmt.Errorf("%w: entry %d: producer %d with %d batches", errBadSnapshot, i, id, nb)
		}
		if id <= prev {
			return nil, fmt.Errorf("%w: producer %d after %d (IDs must increase)", errBadSnapshot, id, prev)
		}
		prev = id
		e.batches = make([]producerBatch, nb, producerBatchesKept)
		for j := range e.batches {
			e.batches[j] = producerBatch{
				firstSeq: int32(be.Uint32(rest)), lastSeq: int32(be.Uint32(rest[4:])),
				firstOffset: int64(be.Uint64(rest[8:])), lastOffset: int64(be.Uint64(rest[16:])),
				appendTime: int64(be.Uint64(rest[24:])),
			}
			rest = rest[producerBatchLen:]
		}
		st.producers[id] = e
	}
	if len(rest) != 0 {
		return nil, fmt.Errorf("%w: %d trailing bytes", errBadSnapshot, len(rest))
	}
	return st, nil
}

// writeProducerSnapshot writes a snapshot durably (temp file, fsync,
// rename, directory fsync) and removes all but the newest kept ones.
func writeProducerSnapshot(fsys fileSystem, dir string, offset int64, producers map[int64]*producerEntry) error {
	path := producerSnapPath(dir, offset)
	tmp := path + ".tmp"
	f, err := fsys.OpenFile(tmp, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		return fmt.Errorf("log: create %s: %w", tmp, err)
	}
	_, err = f.WriteAt(encodeProducerSnapshot(offset, producers), 0)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = fsys.Rename(tmp, path)
	}
	if err != nil {
		fsys.Remove(tmp) //nolint:errcheck // best effort: the error below is what matters
		return fmt.Errorf("log: write %s: %w", path, err)
	}
	if err := syncDir(fsys, dir); err != nil {
		return err
	}
	offs, err := producerSnapshots(fsys, dir)
	if err != nil {
		return err
	}
	for i, o := range offs {
		if i >= producerSnapsKept {
			if err := fsys.Remove(producerSnapPath(dir, o)); err != nil && !errors.Is(err, os.ErrNotExist) {
				return fmt.Errorf("log: remove old producer snapshot: %w", err)
			}
		}
	}
	return nil
}
