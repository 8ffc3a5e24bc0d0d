package log

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/streamhouse/streamhouse/meta"
)

// Compaction (cleanup.policy=compact) keeps at least the latest record of
// every key. It works where sealed data lives, on the partition's leading
// run of segments in the object store, in the way Kafka's log cleaner
// does:
//
//   - The segments compaction wrote before (compacted keys, see
//     compactedObjectKey) are the clean prefix; the uploaded segments after
//     them, up to the first one holding a record younger than
//     min.compaction.lag.ms, are dirty. A run starts when the dirty share
//     of those bytes reaches min.cleanable.dirty.ratio, or when the oldest
//     dirty segment's newest record is older than max.compaction.lag.ms.
//   - Pass one reads the dirty segments and maps a 128-bit hash of every
//     key to its last offset (keymap.go), within Config.Cleaner's byte
//     limit; a dirty segment that does not fit ends the run's range.
//   - Pass two rewrites every segment of the range, clean and dirty, in
//     groups of at most segment.bytes of input: a record stays unless the
//     map holds a later offset for its key, it has no key, it lies below
//     the log start, or it is a tombstone (null value) whose delete
//     horizon has passed. A batch keeps its base offset and offset
//     deltas, so offsets never change; a batch that loses records gets
//     its record count and CRC rewritten, and a batch that loses them all
//     goes, unless it is one of the last batches the producer state
//     remembers for its producer: it stays as an empty batch, so an
//     idempotent producer's sequence survives (as in Kafka).
//   - A tombstone's batch is stamped with a delete horizon (KIP-534:
//     attribute bit 6 set and firstTimestamp = now + delete.retention.ms,
//     record timestamp deltas rewritten to keep every record's time) the
//     first time compaction keeps it; a later run drops tombstones whose
//     horizon has passed.
//   - Each group becomes one new object (footer version 2: gaps allowed)
//     under a new key. meta.ReplaceSegments swaps the rows in one
//     transaction; only after it the in-memory segment list changes, and
//     the replaced objects are deleted Config.Cleaner.DeleteDelay later,
//     so a read that planned on one still finds it. A crash before the
//     swap leaves unrecorded compacted objects, after it unrecorded
//     replaced objects inside a recorded segment's range: the next Open
//     deletes both (reconcile), so the partition is exactly the old set
//     or exactly the new set.
//
// One run at a time per partition: Partition.cleanMu, which retention
// also takes (it skips a round rather than wait). Appends, reads and
// uploads never wait for a run.

// attrDeleteHorizon is RecordBatch attribute bit 6 (KIP-534): the batch's
// firstTimestamp is the time after which its tombstones may be removed.
const attrDeleteHorizon = 0x40

// compactIOChunk is how much of an input object a run reads at a time.
const compactIOChunk = 1 << 20

// compactedObjectKey names a segment object written by compaction: the
// base offset of the range it covers, then a generation, so that every
// rewrite goes to a new key and a swap never overwrites a live object.
func compactedObjectKey(topicID string, partition int32, base, gen int64) string {
	return fmt.Sprintf("topics/%s/%d/%020d-%d.seg", topicID, partition, base, gen)
}

// parseObjectKey parses ".../<base>.seg" (an uploaded segment) and
// ".../<base>-<gen>.seg" (one written by compaction).
func parseObjectKey(key string) (base int64, compacted, ok bool) {
	name := key[strings.LastIndexByte(key, '/')+1:]
	name, found := strings.CutSuffix(name, ".seg")
	if !found {
		return 0, false, false
	}
	if b, _, cut := strings.Cut(name, "-"); cut {
		name, compacted = b, true
	}
	var err error
	base, err = parseOffset(name)
	return base, compacted, err == nil
}

// CompactionResult describes one compaction run of a partition.
type CompactionResult struct {
	Ran              bool // false: nothing was due
	SegmentsIn       int
	SegmentsOut      int
	BytesRead        int64
	BytesWritten     int64
	RecordsKept      int64
	RecordsDropped   int64
	TombstonesKept   int64
	TombstonesDroped int64
	Keys             int // distinct keys mapped
	Duration         time.Duration
}

// compactPlan is what a run decided under the partition lock.
type compactPlan struct {
	segs      []*segment // the range, clean prefix first
	dirtyFrom int        // index in segs of the first dirty segment
	logStart  int64
	settings  topicSettings
}

// planCompaction picks the range of a run, or nil when none is due.
func (p *Partition) planCompaction(now time.Time) *compactPlan {
	p.mu.Lock()
	defer p.mu.Unlock()
	s := p.settings
	if !s.compact || p.closed {
		return nil
	}
	pl := &compactPlan{logStart: p.logStart, settings: s, dirtyFrom: -1}
	var clean, dirty int64
	force := false
	lso := p.lsoLocked()
	for _, seg := range p.segs[:len(p.segs)-1] {
		if !seg.remote || seg.next > lso {
			// Kafka's cleaner, too, stops at the last stable offset:
			// whether an open transaction's records stay is not known.
			break
		}
		if s.minCompactionLag > 0 && seg.maxTs > now.Add(-s.minCompactionLag).UnixMilli() {
			// Too young for min.compaction.lag.ms. Only with a lag set,
			// as in Kafka: a record stamped ahead of the broker's clock
			// must not stop compaction.
			break
		}
		if seg.compacted && pl.dirtyFrom < 0 {
			clean += seg.size
		} else {
			if pl.dirtyFrom < 0 {
				pl.dirtyFrom = len(pl.segs)
				// max.compaction.lag.ms, judged by the segment's newest
				// record (Kafka uses its oldest; we do not keep that).
				force = s.maxCompactionLag < DefaultMaxCompactionLag &&
					seg.maxTs < now.Add(-s.maxCompactionLag).UnixMilli()
			}
			dirty += seg.size
		}
		pl.segs = append(pl.segs, seg)
	}
	if pl.dirtyFrom < 0 || dirty == 0 {
		return nil
	}
	if !force && float64(dirty)/float64(clean+dirty) < s.minCleanableRatio {
		return nil
	}
	return pl
}

// dirtyRatioLocked is the share of the partition's compactable bytes that were
// not compacted yet (0 when there are none), for the metrics.
func (p *Partition) dirtyRatioLocked() float64 {
	var clean, dirty int64
	for _, seg := range p.segs[:len(p.segs)-1] {
		if !seg.remote {
			break
		}
		if seg.compacted && dirty == 0 {
			clean += seg.size
		} else {
			dirty += seg.size
		}
	}
	if clean+dirty == 0 {
		return 0
	}
	return float64(dirty) / float64(clean+dirty)
}

// Compact runs compaction of the partition once if it is due. The
// cleaner calls it; tests call it directly.
func (p *Partition) Compact(ctx context.Context) (CompactionResult, error) {
	p.cleanMu.Lock()
	defer p.cleanMu.Unlock()
	start := time.Now()
	now := p.m.now()
	// The producer state is needed first: the run keeps the producers'
	// last batches and stops at the last stable offset.
	if err := p.loadProducers(ctx); err != nil {
		return CompactionResult{}, err
	}
	pl := p.planCompaction(now)
	if pl == nil {
		return CompactionResult{}, nil
	}
	c := &compaction{p: p, ctx: ctx, plan: pl, now: now, lastBatches: p.producerLastBatches(),
		io: newThrottle(ctx, p.m.cfg.Cleaner.IOBytesPerSecond)}
	c.res.Ran = true
	err := c.loadAborted()
	if err == nil {
		err = c.run()
	}
	c.res.Duration = time.Since(start)
	p.m.metrics.cleanerRuns.Inc()
	p.m.metrics.cleanerReadBytes.Add(float64(c.res.BytesRead))
	p.m.metrics.cleanerWrittenBytes.Add(float64(c.res.BytesWritten))
	if err != nil {
		p.m.metrics.cleanerErrors.Inc()
		return c.res, fmt.Errorf("log: compact %s-%d: %w", p.topic, p.index, err)
	}
	p.m.metrics.cleanerLastRun.Set(float64(p.m.now().UnixMilli()) / 1000)
	p.m.logger.Info("compacted partition", "topic", p.topic, "partition", p.index,
		"segments_in", c.res.SegmentsIn, "segments_out", c.res.SegmentsOut,
		"bytes_read", c.res.BytesRead, "bytes_written", c.res.BytesWritten,
		"records_kept", c.res.RecordsKept, "records_dropped", c.res.RecordsDropped,
		"tombstones_dropped", c.res.TombstonesDroped, "keys", c.res.Keys,
		"duration", c.res.Duration.Round(time.Millisecond))
	return c.res, nil
}

// producerLastBatches returns, per producer ID, the last offsets of the
// batches the producer state remembers: compaction keeps those batches
// (empty if need be) so that a rebuilt state has them.
func (p *Partition) producerLastBatches() map[int64]map[int64]bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make(map[int64]map[int64]bool)
	if p.prod.state == nil {
		return out
	}
	for id, e := range p.prod.state.producers {
		set := make(map[int64]bool, len(e.batches))
		for _, b := range e.batches {
			set[b.lastOffset] = true
		}
		out[id] = set
	}
	return out
}

// compaction is one run's state.
type compaction struct {
	p           *Partition
	ctx         context.Context
	plan        *compactPlan
	now         time.Time
	keys        *keyMap
	lastBatches map[int64]map[int64]bool
	// aborted lists, per producer, the aborted transactions that may
	// hold records of the run's range: their records are removed.
	aborted abortedIndex
	io      *throttle
	res     CompactionResult
	// Buffers reused batch after batch: decompressed records, the records
	// a batch keeps, the rebuilt batch.
	scratch []byte
	kept    []keptRecord
	region  []byte
	out     []byte
}

func (c *compaction) run() error {
	end, err := c.mapKeys()
	if err != nil {
		return err
	}
	segs := c.plan.segs[:end]
	c.res.SegmentsIn = len(segs)
	c.res.Keys = c.keys.len()
	var (
		oldRows, newRows []meta.Segment
		newSegs          []*segment
		written          []string
	)
	cleanup := func() {
		for _, key := range written {
			if err := c.p.m.cfg.Objects.Delete(context.Background(), key); err != nil {
				c.p.m.logger.Warn("deleting unused compacted object; the next start retries", "key", key, "err", err)
			}
		}
	}
	for _, g := range groupSegments(segs, c.plan.settings.segmentBytes) {
		out, changed, err := c.rewrite(g)
		if err != nil {
			cleanup()
			return err
		}
		if !changed {
			continue
		}
		if out != nil {
			written = append(written, out.key)
		}
		for _, s := range g {
			oldRows = append(oldRows, c.p.rowOf(s))
		}
		if out != nil {
			newRows = append(newRows, c.p.rowOf(out))
			newSegs = append(newSegs, out)
		}
	}
	if len(oldRows) == 0 {
		return nil
	}
	c.res.SegmentsOut = len(newSegs)
	c.p.m.hook("written")
	if err := c.p.m.cfg.Meta.ReplaceSegments(c.ctx, c.p.topicID, c.p.index, oldRows, newRows); err != nil {
		cleanup()
		return fmt.Errorf("swap segments in meta: %w", err)
	}
	c.p.m.hook("swapped")
	c.p.swapSegments(segs, oldRows, newSegs)
	return nil
}

// rowOf is the meta row of a remote segment.
func (p *Partition) rowOf(s *segment) meta.Segment {
	p.mu.Lock()
	defer p.mu.Unlock()
	return meta.Segment{
		TopicID: p.topicID, Partition: p.index, BaseOffset: s.base, LastOffset: s.next - 1,
		MaxTimestamp: s.maxTs, ObjectKey: s.key, Size: s.size, RecordCount: s.records, CreatedAt: p.m.now(),
	}
}

// swapSegments puts the new segments in place of the replaced ones (a
// contiguous run of p.segs: only compaction and retention change the
// remote prefix, and they exclude each other through cleanMu) and
// schedules the replaced objects for deletion.
func (p *Partition) swapSegments(rangeSegs []*segment, oldRows []meta.Segment, newSegs []*segment) {
	replaced := make(map[string]bool, len(oldRows))
	for _, r := range oldRows {
		replaced[r.ObjectKey] = true
	}
	p.mu.Lock()
	var out []*segment
	ni := 0
	for _, s := range p.segs {
		if !replaced[s.key] {
			out = append(out, s)
			continue
		}
		s.replaced = true
		p.remoteBytes -= s.size
		// New segments go where the first segment they cover was.
		for ni < len(newSegs) && newSegs[ni].base <= s.base {
			out = append(out, newSegs[ni])
			p.remoteBytes += newSegs[ni].size
			ni++
		}
	}
	for ; ni < len(newSegs); ni++ { // cannot happen: each covers a replaced base
		out = append(out, newSegs[ni])
		p.remoteBytes += newSegs[ni].size
	}
	p.segs = out
	p.mu.Unlock()
	for _, r := range oldRows {
		p.m.cache.evict(r.ObjectKey)
		p.m.cleaner.deleteLater(r.ObjectKey, p.m.now().Add(p.m.cfg.Cleaner.DeleteDelay))
	}
}

// groupSegments splits segs into runs whose input bytes stay within
// limit (at least one segment each), so that each becomes one object.
func groupSegments(segs []*segment, limit int64) [][]*segment {
	var out [][]*segment
	var cur []*segment
	var size int64
	for _, s := range segs {
		if len(cur) > 0 && (size+s.size > limit || s.next-1-cur[0].base > math.MaxUint32) {
			out = append(out, cur)
			cur, size = nil, 0
		}
		cur = append(cur, s)
		size += s.size
	}
	if len(cur) > 0 {
		out = append(out, cur)
	}
	return out
}

// mapKeys runs pass one over the dirty segments and returns how many
// segments of the plan the run covers: every segment whose keys all fit.
func (c *compaction) mapKeys() (int, error) {
	var expected int64
	for _, s := range c.plan.segs[c.plan.dirtyFrom:] {
		expected += s.records
	}
	c.keys = newKeyMap(c.p.m.cfg.Cleaner.DedupeBufferBytes, expected)
	end := c.plan.dirtyFrom
	for i := c.plan.dirtyFrom; i < len(c.plan.segs); i++ {
		full := false
		err := c.eachBatch(c.plan.segs[i], func(b []byte, h BatchHeader) error {
			if h.IsControl() || full || c.aborted.has(h) {
				return nil
			}
			return c.eachRecord(b, h, func(r *recordView) {
				if r.keyNull || full {
					return
				}
				if !c.keys.put(keyHash(r.key), h.BaseOffset+int64(r.offDelta)) {
					full = true
				}
			})
		})
		if err != nil {
			return 0, err
		}
		if full {
			break
		}
		end = i + 1
	}
	if end == c.plan.dirtyFrom {
		return 0, fmt.Errorf("the keys of segment %d do not fit in the key map of %d bytes (raise the dedupe buffer size)",
			c.plan.segs[c.plan.dirtyFrom].base, c.p.m.cfg.Cleaner.DedupeBufferBytes)
	}
	return end, nil
}

// eachBatch streams the batches of a remote segment's object.
func (c *compaction) eachBatch(s *segment, fn func(b []byte, h BatchHeader) error) error {
	c.p.mu.Lock()
	key, size := s.key, s.size
	c.p.mu.Unlock()
	r, err := c.p.m.openObjectBatches(c.ctx, key, size)
	if err != nil {
		return err
	}
	for {
		b, h, err := r.next(c.io)
		if errors.Is(err, errEndOfBatches) {
			c.res.BytesRead += r.read
			return nil
		}
		if err != nil {
			return err
		}
		if err := fn(b, h); err != nil {
			return err
		}
	}
}

// loadAborted collects the aborted transactions of the run's range.
func (c *compaction) loadAborted() error {
	segs := c.plan.segs
	c.p.mu.Lock()
	from, to := segs[0].base, segs[len(segs)-1].next
	c.p.mu.Unlock()
	list, err := c.p.AbortedTxns(c.ctx, from, to)
	if err != nil {
		return fmt.Errorf("aborted transactions: %w", err)
	}
	c.aborted = newAbortedIndex(list)
	return nil
}

// rewrite runs pass two over one group and writes its object. changed is
// false when the group is a single compacted segment that would come out
// the same (nothing to do); out is nil when nothing of the group stays.
func (c *compaction) rewrite(group []*segment) (out *segment, changed bool, err error) {
	first, last := group[0], group[len(group)-1]
	c.p.mu.Lock()
	base, end := first.base, last.next
	c.p.mu.Unlock()
	changed = len(group) > 1 || !first.compacted
	w, err := c.p.newSegmentWriter(base, end-1, c.p.m.now().UnixNano())
	if err != nil {
		return nil, false, err
	}
	defer w.discard()
	// Markers stay (cleanBatch keeps control batches), so the output
	// keeps the group's aborted lists, and the open list of its end.
	w.txn = &segTxn{}
	for _, s := range group {
		t, err := c.p.segmentTxn(c.ctx, s)
		if err != nil {
			return nil, false, err
		}
		w.txn.aborted, w.txn.open = append(w.txn.aborted, t.aborted...), t.open
	}
	for _, s := range group {
		err := c.eachBatch(s, func(b []byte, h BatchHeader) error {
			nb, err := c.cleanBatch(b, h)
			if err != nil {
				return err
			}
			if len(nb) != len(b) || (len(nb) > 0 && &nb[0] != &b[0]) {
				changed = true
			}
			if nb == nil {
				return nil
			}
			nh, _ := ParseBatchHeader(nb)
			c.io.wait(len(nb))
			return w.add(nb, nh)
		})
		if err != nil {
			return nil, false, err
		}
	}
	if !changed {
		return nil, false, nil
	}
	seg, err := w.finish(c.ctx)
	if err != nil {
		return nil, false, err
	}
	c.res.BytesWritten += seg.size
	return seg, true, nil
}

// compactionLeftoverSuffix names a run's local temporary output.
const compactionLeftoverSuffix = ".compact"

// removeCompactionLeftovers removes temporary outputs a crash left.
func (p *Partition) removeCompactionLeftovers() error {
	names, err := p.m.fs.ReadDir(p.dir)
	if err != nil {
		return fmt.Errorf("log: list %s: %w", p.dir, err)
	}
	for _, name := range names {
		if strings.HasSuffix(name, compactionLeftoverSuffix) {
			if err := p.m.fs.Remove(filepath.Join(p.dir, name)); err != nil && !errors.Is(err, os.ErrNotExist) {
				return fmt.Errorf("log: remove compaction leftover %s: %w", name, err)
			}
		}
	}
	return nil
}

// cleaner runs compaction in the background and deletes replaced objects
// once their delay has passed.
type cleaner struct {
	// mu guards pending.
	mu      sync.Mutex
	pending []pendingDelete
}

type pendingDelete struct {
	key string
	due time.Time
}

func (c *cleaner) deleteLater(key string, due time.Time) {
	c.mu.Lock()
	c.pending = append(c.pending, pendingDelete{key, due})
	c.mu.Unlock()
}

// due takes the deletions due at now.
func (c *cleaner) due(now time.Time) []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var keys []string
	keep := c.pending[:0]
	for _, d := range c.pending {
		if !d.due.After(now) {
			keys = append(keys, d.key)
		} else {
			keep = append(keep, d)
		}
	}
	c.pending = keep
	return keys
}

// cleanerLoop compacts due partitions every Config.Cleaner.Interval.
func (m *Manager) cleanerLoop() {
	defer m.wg.Done()
	ctx, cancel := context.WithCancel(context.Background())
	go func() { <-m.stop; cancel() }()
	t := time.NewTicker(m.cfg.Cleaner.Interval)
	defer t.Stop()
	for {
		select {
		case <-m.stop:
			return
		case <-t.C:
			m.RunCompaction(ctx)
		}
	}
}

// RunCompaction compacts every due partition once and deletes the
// replaced objects whose delay has passed. The cleaner calls it on a
// timer; tests and operators may call it directly.
func (m *Manager) RunCompaction(ctx context.Context) {
	for _, p := range m.partitions() {
		if ctx.Err() != nil {
			return
		}
		if _, err := p.Compact(ctx); err != nil && ctx.Err() == nil {
			m.logger.Error("compaction failed", "topic", p.topic, "partition", p.index, "err", err)
		}
	}
	m.deleteReplaced(ctx)
}

// deleteReplaced deletes the replaced objects whose delay has passed.
func (m *Manager) deleteReplaced(ctx context.Context) {
	keys := m.cleaner.due(m.now())
	for _, key := range keys {
		m.cache.evict(key)
		if err := m.cfg.Objects.Delete(ctx, key); err != nil {
			m.logger.Warn("deleting a segment object replaced by compaction; the next start retries", "key", key, "err", err)
		}
	}
	if len(keys) > 0 {
		m.hook("deleted")
	}
}

// hook runs the crash tests' compaction hook, if set.
func (m *Manager) hook(step string) {
	if m.cfg.compactHook != nil {
		m.cfg.compactHook(step)
	}
}

// dirtyCollector exports each compacted partition's dirty ratio at
// scrape time (one series per partition of a compacted topic).
type dirtyCollector struct {
	m    *Manager
	desc *prometheus.Desc
}

func newDirtyCollector(m *Manager) *dirtyCollector {
	return &dirtyCollector{m: m, desc: prometheus.NewDesc("streamhouse_log_cleaner_dirty_ratio",
		"Share of a compacted partition's uploaded bytes not compacted yet; compaction runs at min.cleanable.dirty.ratio.",
		[]string{"topic", "partition"}, nil)}
}

// Describe implements prometheus.Collector.
func (c *dirtyCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

// Collect implements prometheus.Collector.
func (c *dirtyCollector) Collect(ch chan<- prometheus.Metric) {
	for _, t := range c.m.openTopics() {
		for _, p := range t.parts {
			p.mu.Lock()
			compact, ratio := p.settings.compact, p.dirtyRatioLocked()
			p.mu.Unlock()
			if compact {
				ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, ratio, t.name, strconv.Itoa(int(p.index)))
			}
		}
	}
}
