package log

// Admin operations behind both fronts' admin APIs: adding partitions to a
// topic, moving a partition's log start offset (Kafka's DeleteRecords),
// read-modify-write of topic configs, and the broker-wide values, sizes and
// disk figures the describe APIs report.

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/streamhouse/streamhouse/meta"
)

// ErrInvalidPartitions means a new partition count is not larger than the
// current one.
var ErrInvalidPartitions = errors.New("log: invalid partition count")

// AddPartitions raises a topic's partition count to newCount: meta first
// (rows for the new partitions, log start 0), then the new partitions are
// opened. Existing partitions are untouched. If opening fails after meta
// recorded the new count, the error is returned and the new partitions
// open at the next Open.
func (m *Manager) AddPartitions(ctx context.Context, topic string, newCount int32) (meta.Topic, error) {
	m.adminMu.Lock()
	defer m.adminMu.Unlock()
	if err := m.checkOpen(); err != nil {
		return meta.Topic{}, err
	}
	t, err := m.Topic(topic)
	if err != nil {
		return meta.Topic{}, err
	}
	old := t.PartitionCount
	if newCount <= old {
		return meta.Topic{}, fmt.Errorf("%w: topic %s has %d partitions; %d is not an increase", ErrInvalidPartitions, topic, old, newCount)
	}
	if err := m.cfg.Meta.AddPartitions(ctx, topic, newCount); err != nil {
		if errors.Is(err, meta.ErrTopicNotFound) {
			return meta.Topic{}, fmt.Errorf("%w: %s", ErrUnknownTopic, topic)
		}
		return meta.Topic{}, err
	}
	t.PartitionCount = newCount
	added := make([]*Partition, 0, newCount-old)
	for i := old; i < newCount; i++ {
		p, err := m.openPartition(ctx, t, i)
		if err != nil {
			closeNew(added, false)
			return meta.Topic{}, fmt.Errorf("log: open new partition %s-%d (it opens at the next start): %w", topic, i, err)
		}
		added = append(added, p)
	}
	m.mu.Lock()
	ts, ok := m.topics[topic]
	if m.closed || !ok || ts.meta.ID != t.ID {
		m.mu.Unlock()
		// Closed, or deleted while we opened: nobody else will close these.
		closeNew(added, true)
		if m.isClosed() {
			return meta.Topic{}, ErrClosed
		}
		return meta.Topic{}, fmt.Errorf("%w: %s (deleted while adding partitions)", ErrUnknownTopic, topic)
	}
	// The new partitions are not published yet, so their settings can be
	// set without their lock; the configs may have changed since t was read.
	s := settingsFor(ts.meta.Configs, &m.cfg)
	for _, p := range added {
		p.settings = s
	}
	ts.parts = append(ts.parts[:len(ts.parts):len(ts.parts)], added...)
	ts.meta.PartitionCount = newCount
	m.topicsGen.Add(1)
	t = ts.meta
	m.mu.Unlock()
	m.logger.Info("partitions added", "topic", topic, "from", old, "to", newCount)
	return t, nil
}

func (m *Manager) isClosed() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.closed
}

// closeNew closes partitions that were opened but never published, and
// with remove also deletes their local directories.
func closeNew(parts []*Partition, remove bool) {
	for _, p := range parts {
		if err := p.close(); err != nil {
			p.m.logger.Warn("closing unpublished partition", "topic", p.topic, "partition", p.index, "err", err)
		}
		if remove {
			_ = p.m.fs.RemoveAll(p.dir)
		}
	}
}

// UpdateTopicConfigs replaces a topic's config overrides with what update
// returns for the current ones (a copy update may modify). Calls are
// serialized with each other and with AddPartitions, so concurrent updates
// of different keys do not lose each other. The result is validated like
// SetTopicConfigs; an error from update is returned as is.
func (m *Manager) UpdateTopicConfigs(ctx context.Context, name string, update func(current map[string]string) (map[string]string, error)) error {
	m.adminMu.Lock()
	defer m.adminMu.Unlock()
	t, err := m.Topic(name)
	if err != nil {
		return err
	}
	cur := maps.Clone(t.Configs)
	if cur == nil {
		cur = make(map[string]string)
	}
	next, err := update(cur)
	if err != nil {
		return err
	}
	return m.SetTopicConfigs(ctx, name, next)
}

// DeleteRecordsBefore moves the partition's log start offset up to offset
// (Kafka's DeleteRecords): reads below it then fail with
// ErrOffsetOutOfRange, and retention deletes the segments that lie wholly
// below it. An offset at or below the current log start changes nothing;
// one above the high watermark, or negative, is ErrOffsetOutOfRange. It
// returns the log start offset after the call.
//
// The records below offset are fsynced before meta records the new log
// start, so that a crash can never leave the log start above the end of
// the recovered log (offsets in a segment must stay contiguous).
func (p *Partition) DeleteRecordsBefore(ctx context.Context, offset int64) (int64, error) {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return 0, fmt.Errorf("partition %s-%d: %w", p.topic, p.index, ErrClosed)
	}
	logStart, hwm, mark := p.logStart, p.hwm, p.written
	p.mu.Unlock()
	if offset < 0 || offset > hwm {
		return 0, fmt.Errorf("%w: cannot move the log start of %s-%d to %d: outside [0, %d]",
			ErrOffsetOutOfRange, p.topic, p.index, offset, hwm)
	}
	if offset <= logStart {
		return logStart, nil
	}
	if err := p.syncTo(mark); err != nil {
		return 0, err
	}
	if err := p.m.cfg.Meta.SetLogStartOffset(ctx, p.topicID, p.index, offset); err != nil {
		return 0, fmt.Errorf("log: delete records of %s-%d: %w", p.topic, p.index, err)
	}
	p.mu.Lock()
	if offset > p.logStart {
		p.logStart = offset
	}
	logStart = p.logStart
	p.mu.Unlock()
	p.m.logger.Info("records deleted", "topic", p.topic, "partition", p.index, "log_start", logStart)
	return logStart, nil
}

// StoredBytes returns the partition's size: the batch bytes of its local
// segments plus the object sizes of its uploaded ones, including segments
// below the log start that retention has not removed yet.
func (p *Partition) StoredBytes() int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	var n int64
	for _, s := range p.segs {
		n += s.size
	}
	return n
}

// BrokerSettings are the broker-wide values the log runs with: its Config
// after defaults were applied.
type BrokerSettings struct {
	Dir               string
	SegmentBytes      int64
	SegmentAge        time.Duration
	FlushInterval     time.Duration
	RetentionInterval time.Duration
	CacheBytes        int64
}

// BrokerSettings returns the broker-wide values the log runs with.
func (m *Manager) BrokerSettings() BrokerSettings {
	return BrokerSettings{
		Dir: m.cfg.Dir, SegmentBytes: m.cfg.SegmentBytes, SegmentAge: m.cfg.SegmentAge,
		FlushInterval: m.cfg.FlushInterval, RetentionInterval: m.cfg.RetentionInterval,
		CacheBytes: m.cfg.CacheBytes,
	}
}

// TopicConfigDefault returns the value a topic without an override of key
// runs with on this broker: TopicConfigDefault's, except segment.bytes,
// segment.ms and the compaction configs, whose defaults are the broker's
// Config.SegmentBytes, Config.SegmentAge and Config.Cleaner.
func (m *Manager) TopicConfigDefault(key string) (string, bool) {
	switch key {
	case ConfigSegmentBytes:
		return strconv.FormatInt(m.cfg.SegmentBytes, 10), true
	case ConfigSegmentMs:
		return strconv.FormatInt(m.cfg.SegmentAge.Milliseconds(), 10), true
	case ConfigMinCleanableDirtyRatio:
		return strconv.FormatFloat(m.cfg.Cleaner.MinCleanableRatio, 'g', -1, 64), true
	case ConfigMinCompactionLagMs:
		return strconv.FormatInt(m.cfg.Cleaner.MinCompactionLag.Milliseconds(), 10), true
	case ConfigMaxCompactionLagMs:
		if m.cfg.Cleaner.MaxCompactionLag >= DefaultMaxCompactionLag {
			return TopicConfigDefault(key) // no limit: Kafka's Long.MAX_VALUE ms
		}
		return strconv.FormatInt(m.cfg.Cleaner.MaxCompactionLag.Milliseconds(), 10), true
	case ConfigDeleteRetentionMs:
		return strconv.FormatInt(m.cfg.Cleaner.DeleteRetention.Milliseconds(), 10), true
	}
	return TopicConfigDefault(key)
}

// DiskSpace returns the total and available bytes of the file system
// holding the segment directory.
func (m *Manager) DiskSpace() (total, usable int64, err error) {
	return statfsBytes(m.cfg.Dir)
}

// sealedBelow reports whether the local segment file at path is sealed and
// ends below logStart, so that recovery may remove it. An unsealed file,
// or one reaching logStart, is kept: DeleteRecords can put the log start
// in the middle of a segment.
func sealedBelow(fsys fileSystem, path string, logStart int64) (bool, error) {
	f, err := fsys.OpenFile(path, os.O_RDONLY, 0)
	if err != nil {
		return false, fmt.Errorf("log: open segment %s: %w", path, err)
	}
	defer f.Close()
	footer, sealed, err := readFooterFile(f)
	if err != nil {
		return false, fmt.Errorf("log: read footer of %s: %w", path, err)
	}
	return sealed && footer.LastOffset < logStart, nil
}

// retireActive takes a recovered active segment that ends below the log
// start out of service: an empty one is removed, any other sealed and
// queued for upload (retention then deletes it). Only damage can cause
// this, because DeleteRecordsBefore syncs first; appending at the log
// start into it would break the contiguous offsets recovery checks.
func (p *Partition) retireActive(act *segment) error {
	p.m.logger.Warn("active segment ends below the log start offset; starting a new one at the log start",
		"path", act.path, "segment_end", act.next, "log_start", p.logStart)
	if act.size == 0 {
		act.file.Close()
		act.file = nil
		p.segs = p.segs[:len(p.segs)-1]
		if err := p.m.fs.Remove(act.path); err != nil {
			return fmt.Errorf("log: remove %s: %w", act.path, err)
		}
		return syncDir(p.m.fs, filepath.Dir(act.path))
	}
	f := Footer{BaseOffset: act.base, LastOffset: act.next - 1, MaxTimestamp: act.maxTs,
		RecordCount: act.records, BatchesLen: act.size}
	// Below the log start nothing of it is read: no transaction section.
	if err := sealFile(act.file, act.size, act.index, nil, f); err != nil {
		return fmt.Errorf("log: seal segment %s: %w", act.path, err)
	}
	act.sealed = true
	p.m.enqueueUpload(p, act)
	return nil
}
