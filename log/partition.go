package log

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"
)

// Partition is one partition's log: an ordered list of segments, the last
// of which takes appends. It is safe for concurrent use.
//
// Lock order (see LOCKS.md): mu before syncMu. fileMu is never taken while
// mu or syncMu is held, and neither is taken while fileMu is held.
type Partition struct {
	m       *Manager
	topicID string
	topic   string
	index   int32
	dir     string

	// mu guards the fields below. It is held for in-memory updates and for
	// the write(2) of an append; never across the group-commit fsync or
	// object-store I/O.
	mu       sync.Mutex
	segs     []*segment // by base offset; the last one is active
	hwm      int64      // high watermark: the offset the next record gets
	logStart int64
	settings topicSettings
	writeErr error // sticky: once set, every append fails with it
	closed   bool
	wake     chan struct{} // closed and replaced by every append
	// markWake is closed and replaced by every transaction marker: what
	// read_committed readers wait on while a transaction holds the last
	// stable offset (WaitStable).
	markWake chan struct{}
	written  int64 // bytes written since open, across segments
	// lastTicket is the fsSyncer ticket of the latest write (fssync.go).
	lastTicket uint64
	// remoteBytes is the object size of the segments in the object store
	// (segs with remote set), for streamhouse_log_object_store_bytes.
	remoteBytes int64

	// syncMu guards synced and syncing; syncCond waits on it. One appender
	// at a time fsyncs (the leader); the others wait and are served by the
	// leader's fsync or the next one: that is the group commit.
	syncMu   sync.Mutex
	syncCond *sync.Cond
	synced   int64 // prefix of written known to be on stable storage
	syncing  bool

	// fss, when set, makes the group commit one syncfs shared with every
	// partition on the same filesystem instead of an fsync of this
	// partition's file (Config.SyncScope). Set at open, then read-only.
	fss *fsSyncer

	// fileMu guards segment.file: readers and the syncer hold it shared
	// while using a file; closing a file takes it exclusively.
	fileMu sync.RWMutex

	// prod is the idempotent-producer state (producer.go); its table is
	// guarded by mu.
	prod producerTracker

	// stats are the throughput counters (metrics.go); atomic, no lock.
	stats partitionStats

	// cleanMu serializes the changes to the remote segments: a compaction
	// run holds it throughout, retention takes it or skips a round. Taken
	// before mu.
	cleanMu sync.Mutex

	// ra is the read-ahead of remote segments (readahead.go).
	ra readAhead
}

// AppendOptions tune one append.
type AppendOptions struct {
	// Sync makes Append return only after the batches are fsynced
	// (acks=all). Without it they have reached the OS (acks=1) and are
	// synced by the background flusher, at roll, or at close.
	Sync bool
	// DeferSync, with Sync, makes Append return once the batches are
	// written and leaves the wait for their fsync to AppendResult.Durable:
	// a connection can then append its next pipelined request while this
	// one's fsync runs, and the group commit can serve both with one. The
	// append is not acknowledged until Durable returns nil.
	DeferSync bool
}

// AppendResult tells where an append landed.
type AppendResult struct {
	BaseOffset     int64 // offset of the first record
	LastOffset     int64 // offset of the last record
	LogAppendTime  int64 // broker time stamped on the batches, -1 for CreateTime topics
	LogStartOffset int64
	// Duplicate means the append was an idempotent producer's retry of a
	// batch already in the log: nothing was written and the offsets are
	// the original batch's (see producer.go).
	Duplicate bool
	// Durable, set with AppendOptions.DeferSync, returns once the append
	// is fsynced, or the error that keeps it from being durable.
	Durable func() error
}

// Topic returns the partition's topic name.
func (p *Partition) Topic() string { return p.topic }

// TopicID returns the partition's topic ID.
func (p *Partition) TopicID() string { return p.topicID }

// Index returns the partition number.
func (p *Partition) Index() int32 { return p.index }

// CheckInsync returns ErrNotEnoughReplicas when the topic's
// min.insync.replicas is above 1: a partition here has one replica, its
// leader, so an append that must reach min.insync.replicas of them
// (acks=all) cannot, as Kafka answers for a one-replica topic.
func (p *Partition) CheckInsync() error {
	p.mu.Lock()
	n := p.settings.minInsync
	p.mu.Unlock()
	if n <= 1 {
		return nil
	}
	return fmt.Errorf("%w: the size of the current ISR [0] is insufficient to satisfy the min.isr requirement of %d for partition %s-%d",
		ErrNotEnoughReplicas, n, p.topic, p.index)
}

// Offsets returns the log start offset and the high watermark.
func (p *Partition) Offsets() (logStart, highWatermark int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.logStart, p.hwm
}

// Append validates data (one or more Kafka RecordBatch v2, concatenated),
// assigns offsets by rewriting each batch's base offset IN PLACE, writes
// the batches to the active segment and, with opts.Sync, waits for them to
// be fsynced. data must not be used by the caller afterwards. A bad batch
// rejects the whole append and changes nothing.
func (p *Partition) Append(ctx context.Context, data []byte, opts AppendOptions) (AppendResult, error) {
	if IsInternalTopic(p.topic) {
		p.m.metrics.appendErrors.Inc()
		return AppendResult{}, internalTopicError("append to", p.topic)
	}
	if err := p.loadProducers(ctx); err != nil {
		p.m.metrics.appendErrors.Inc()
		return AppendResult{}, err
	}
	res, target, err := p.appendData(data)
	if err != nil {
		p.m.metrics.appendErrors.Inc()
		return AppendResult{}, err
	}
	if opts.Sync && opts.DeferSync {
		res.Durable = func() error {
			if err := p.syncTo(target); err != nil {
				p.m.metrics.appendErrors.Inc()
				return err
			}
			return nil
		}
		return res, nil
	}
	if opts.Sync {
		if err := p.syncTo(target); err != nil {
			p.m.metrics.appendErrors.Inc()
			return AppendResult{}, err
		}
	}
	return res, nil
}

// validated holds the parsed headers of an append's batches, and the bytes
// to write (data, or a copy with batches recompressed).
type validated struct {
	data    []byte
	batches [][]byte
	headers []BatchHeader
	records int64
}

// validate checks an append's batches; under a topic compression.type
// other than producer, a batch in another codec is recompressed.
func (p *Partition) validate(data []byte, s topicSettings) (validated, error) {
	batches, err := SplitBatches(data)
	if err != nil {
		return validated{}, err
	}
	if len(batches) == 0 {
		return validated{}, &BatchError{Err: ErrInvalidBatch, Detail: "no record batch"}
	}
	v := validated{data: data, batches: batches, headers: make([]BatchHeader, len(batches))}
	recompressed := false
	for i, b := range batches {
		h, err := validateBatch(b, s.compact)
		if err != nil {
			return validated{}, err
		}
		if h.IsControl() {
			return validated{}, invalidf("control batches are written by the broker only")
		}
		if !s.keepCodec && h.Codec() != s.codec {
			if b, err = recompress(b, h, s.codec); err != nil {
				return validated{}, err
			}
			if h, err = ParseBatchHeader(b); err != nil {
				return validated{}, err
			}
			batches[i], recompressed = b, true
		}
		if int64(len(b)) > s.maxMessageBytes {
			return validated{}, fmt.Errorf("%w: batch of %d bytes exceeds max.message.bytes %d", ErrMessageTooLarge, len(b), s.maxMessageBytes)
		}
		v.headers[i] = h
		v.records += int64(h.NumRecords)
	}
	if recompressed {
		v.data = slices.Concat(batches...)
		for i, at := 0, 0; i < len(batches); i++ { // batches alias v.data, which gets written
			n := len(batches[i])
			batches[i], at = v.data[at:at+n:at+n], at+n
		}
	}
	return v, nil
}

// appendData does the locked part of Append and returns the written-bytes
// mark the caller must see synced for durability.
func (p *Partition) appendData(data []byte) (AppendResult, int64, error) {
	p.mu.Lock()
	s := p.settings
	p.mu.Unlock()
	v, err := p.validate(data, s)
	if err != nil {
		return AppendResult{}, 0, err
	}
	data = v.data
	now := p.m.now()

	p.mu.Lock()
	defer p.mu.Unlock()
	if err := p.writableLocked(); err != nil {
		return AppendResult{}, 0, err
	}
	if err := p.m.room.check(now); err != nil {
		return AppendResult{}, 0, err
	}
	if err := p.maybeRollLocked(int64(len(data)), now); err != nil {
		return AppendResult{}, 0, err
	}
	// SEAM(idempotence): producer ID / epoch / sequence checks belong here,
	// under the lock and before offsets are assigned. A duplicate answers
	// with p.written: what the original append wrote is in it.
	prod, dup, isDup, err := p.checkProducersLocked(v.headers, now)
	if err != nil {
		return AppendResult{}, 0, err
	} else if isDup {
		return dup, p.written, nil
	}
	res, err := p.writeLocked(v, now, func() { p.commitProducersLocked(prod, now.UnixMilli()) })
	if err != nil {
		return AppendResult{}, 0, err
	}
	return res, p.written, nil
}

// writeLocked assigns offsets to v's batches from the high watermark,
// writes them to the active segment and publishes them: index, segment
// totals, high watermark, waiting readers woken. applied runs once the
// write succeeded and before readers can see it (producer state).
func (p *Partition) writeLocked(v validated, now time.Time, applied func()) (AppendResult, error) {
	data := v.data
	act := p.segs[len(p.segs)-1]
	res := AppendResult{BaseOffset: p.hwm, LogAppendTime: -1}
	next := p.hwm
	for i, b := range v.batches {
		setBaseOffset(b, next)
		v.headers[i].BaseOffset = next
		if p.settings.logAppendTime {
			setLogAppendTime(b, now.UnixMilli())
			v.headers[i].MaxTimestamp = now.UnixMilli()
			res.LogAppendTime = now.UnixMilli()
		}
		next = v.headers[i].NextOffset()
	}
	if _, err := act.file.WriteAt(data, act.size); err != nil {
		return AppendResult{}, p.writeFailedLocked(act, err)
	}
	if p.fss != nil {
		p.lastTicket = p.fss.wrote()
	}
	applied()
	pos := act.size
	for i, h := range v.headers {
		act.index.add(h, act.base, pos)
		pos += int64(len(v.batches[i]))
		if h.MaxTimestamp > act.maxTs {
			act.maxTs = h.MaxTimestamp
		}
	}
	if act.size == 0 {
		act.created = now
	}
	act.size = pos
	act.records += v.records
	act.next = next
	p.hwm = next
	p.written += int64(len(data))
	close(p.wake)
	p.wake = make(chan struct{})

	res.LastOffset = next - 1
	res.LogStartOffset = p.logStart
	p.m.metrics.appends.Inc()
	p.stats.appendedRecords.Add(v.records)
	p.stats.appendedBytes.Add(int64(len(data)))
	return res, nil
}

// writeFailedLocked handles a failed write of an append to act: the
// partial write is truncated away. A full file system (ENOSPC, EDQUOT)
// then leaves the partition as it was and the error is not sticky, so
// appends succeed again once space is freed; any other failure, or a
// failed truncate, is sticky.
func (p *Partition) writeFailedLocked(act *segment, err error) error {
	werr := fmt.Errorf("log: write segment %s: %w", act.path, err)
	if terr := act.file.Truncate(act.size); terr != nil {
		p.writeErr = fmt.Errorf("%w (and truncating the partial write: %v)", werr, terr)
		return p.writeErr
	}
	if isNoSpace(err) {
		return fmt.Errorf("%w: %w", ErrDiskFull, werr)
	}
	p.writeErr = werr
	return p.writeErr
}

func (p *Partition) writableLocked() error {
	if p.closed {
		return fmt.Errorf("partition %s-%d: %w", p.topic, p.index, ErrClosed)
	}
	return p.writeErr
}

// rollDue reports whether the housekeeper's age-based roll would seal the
// active segment now.
func (p *Partition) rollDue(now time.Time) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	act := p.segs[len(p.segs)-1]
	return act.size > 0 && (act.sealed || now.Sub(act.created) >= p.settings.segmentAge)
}

// maybeRollLocked seals the active segment when n more bytes would take
// it past segment.bytes, or when it has outlived segment.ms, and finishes
// a roll that sealed it but could not create the next one.
func (p *Partition) maybeRollLocked(n int64, now time.Time) error {
	act := p.segs[len(p.segs)-1]
	if act.size == 0 {
		return nil
	}
	if !act.sealed && act.size+n <= p.settings.segmentBytes && now.Sub(act.created) < p.settings.segmentAge {
		return nil
	}
	return p.rollLocked()
}

// rollLocked seals the active segment (batches fsynced, then index and
// footer appended and fsynced), opens a new active segment at the high
// watermark and queues the sealed one for upload. A full file system is
// not sticky: the segment stays active (or sealed, waiting for the next
// roll to create its successor) and a later append retries. Any other
// failure is sticky.
func (p *Partition) rollLocked() error {
	act := p.segs[len(p.segs)-1]
	if act.size == 0 {
		return nil
	}
	if !act.sealed && p.syncRunning() {
		// The running sync may fail, and then the kernel has told it, not
		// the seal's fsync, that written bytes were lost: a seal now would
		// make the next segment durable after a hole. The segment grows a
		// little past its limit; a later append or housekeeping rolls it.
		return nil
	}
	if !act.sealed {
		if p.prod.state == nil {
			// The open transactions are not known until the producer
			// state is rebuilt; Roll and the housekeeper rebuild it
			// first, so only a failed rebuild gets here.
			return nil
		}
		f := Footer{
			BaseOffset: act.base, LastOffset: act.next - 1, MaxTimestamp: act.maxTs,
			RecordCount: act.records, BatchesLen: act.size,
		}
		txn := &segTxn{open: openList(p.prod.state.ongoing)}
		if act.txn != nil {
			txn.aborted = act.txn.aborted
		}
		if err := sealFile(act.file, act.size, act.index, txn, f); err != nil {
			err = fmt.Errorf("log: seal segment %s: %w", act.path, err)
			if !errors.Is(err, ErrDiskFull) {
				p.writeErr = err
			}
			return err
		}
		act.sealed, act.txn = true, txn
		p.markSyncedBySealLocked()
		p.m.enqueueUpload(p, act)
	}
	file, path, err := createSegmentFile(p.m.fs, p.dir, p.hwm)
	if err != nil {
		if isNoSpace(err) {
			return fmt.Errorf("%w: %w", ErrDiskFull, err)
		}
		p.writeErr = err
		return err
	}
	p.segs = append(p.segs, p.newActive(p.hwm, file, path))
	p.segs[len(p.segs)-1].txn = &segTxn{}
	p.m.metrics.rolls.Inc()
	return nil
}

// syncRunning reports whether a group-commit sync of this partition is
// running.
func (p *Partition) syncRunning() bool {
	p.syncMu.Lock()
	defer p.syncMu.Unlock()
	return p.syncing
}

// markSyncedBySealLocked records that a seal's fsync made everything
// written so far durable (every byte written before it was in the sealed
// file, and earlier segments were fsynced when sealed). Not while another
// sync runs: the kernel reports a writeback error to one fsync of a file
// only, so if that sync fails the seal's fsync may have succeeded without
// the lost bytes, and nothing may be acknowledged on the strength of it.
// The running sync then decides.
func (p *Partition) markSyncedBySealLocked() {
	p.syncMu.Lock()
	if !p.syncing && p.written > p.synced {
		p.synced = p.written
		p.syncCond.Broadcast()
	}
	p.syncMu.Unlock()
}

func (p *Partition) newActive(base int64, f file, path string) *segment {
	return &segment{
		base: base, next: base, key: ObjectKey(p.topicID, p.index, base), path: path,
		maxTs: -1, index: &sparseIndex{interval: defaultIndexInterval}, file: f,
	}
}

// Roll seals the active segment now if it holds any batch.
func (p *Partition) Roll() error {
	if err := p.loadProducers(context.Background()); err != nil {
		return err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if err := p.writableLocked(); err != nil {
		return err
	}
	return p.rollLocked()
}

// syncTo returns once the first target written bytes are fsynced.
func (p *Partition) syncTo(target int64) error {
	p.syncMu.Lock()
	defer p.syncMu.Unlock()
	for p.synced < target {
		if p.syncing {
			p.syncCond.Wait()
			continue
		}
		p.syncing = true
		p.syncMu.Unlock()
		err := p.syncActive()
		p.syncMu.Lock()
		p.syncing = false
		p.syncCond.Broadcast()
		if err != nil {
			return err
		}
	}
	return nil
}

// syncActive fsyncs the active segment, or syncs the filesystem when fss
// is set; everything written before it was taken is then durable (earlier
// segments were fsynced when sealed).
func (p *Partition) syncActive() error {
	p.mu.Lock()
	if p.writeErr != nil {
		err := p.writeErr
		p.mu.Unlock()
		return err
	}
	act := p.segs[len(p.segs)-1]
	mark, ticket := p.written, p.lastTicket
	p.mu.Unlock()

	var err error
	if p.fss != nil {
		err = p.fss.syncTo(ticket)
	} else {
		start := time.Now()
		p.fileMu.RLock()
		if act.file != nil {
			err = act.file.Sync()
		}
		p.fileMu.RUnlock()
		p.m.metrics.fsyncSeconds.Observe(time.Since(start).Seconds())
		if err != nil {
			err = fmt.Errorf("log: fsync segment %s: %w", act.path, err)
		}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if err != nil && p.writeErr == nil {
		p.writeErr = err
	}
	if p.writeErr != nil {
		// Also after a sync that succeeded: a roll's fsync of the same
		// file may have been the one told of a writeback error.
		return p.writeErr
	}
	p.syncMu.Lock()
	if mark > p.synced {
		p.synced = mark
	}
	p.syncMu.Unlock()
	return nil
}

// flush fsyncs whatever was written and not yet synced.
func (p *Partition) flush() error {
	p.mu.Lock()
	mark := p.written
	closed := p.closed
	p.mu.Unlock()
	if closed {
		return nil
	}
	return p.syncTo(mark)
}

// Wait returns a channel closed once the high watermark passes offset, or
// at once if it already has, or when the partition closes. Long-polling
// readers select on it instead of polling.
func (p *Partition) Wait(offset int64) <-chan struct{} {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.hwm > offset || p.closed {
		return closedChan
	}
	return p.wake
}

var closedChan = func() chan struct{} { c := make(chan struct{}); close(c); return c }()

// close syncs the active segment, stops appends and closes every file.
// In-flight appends finish first because they hold mu.
func (p *Partition) close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	close(p.wake)
	p.wake = make(chan struct{})
	close(p.markWake)
	p.markWake = make(chan struct{})
	mark := p.written
	segs := append([]*segment(nil), p.segs...)
	p.mu.Unlock()
	p.ra.dropAll(p.m.cache)

	err := p.syncTo(mark)
	p.fileMu.Lock()
	defer p.fileMu.Unlock()
	for _, s := range segs {
		if s.file != nil {
			if cerr := s.file.Close(); cerr != nil && err == nil {
				err = cerr
			}
			s.file = nil
		}
	}
	return err
}

func (p *Partition) setSettings(s topicSettings) {
	p.mu.Lock()
	p.settings = s
	p.mu.Unlock()
}
