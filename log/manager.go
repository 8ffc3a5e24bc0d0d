package log

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/streamhouse/streamhouse/meta"
)

// Manager owns every partition log of the broker, the segment cache and
// the background work: uploads, flushes, age-based rolls and retention.
type Manager struct {
	cfg     Config
	fs      fileSystem // cfg.fs
	logger  *slog.Logger
	metrics *metrics
	cache   *segmentCache
	lock    *dirLock
	now     func() time.Time
	// fss is the filesystem-wide group commit, nil with SyncFile or where
	// syncfs is missing (fssync.go).
	fss *fsSyncer

	// reads lends buffers to local segment reads (bufpool.go).
	reads readPool
	// openRegions counts the FileRegions not yet released (region.go),
	// capped at MaxOpenRegions.
	openRegions atomic.Int64

	// adminMu serializes AddPartitions and UpdateTopicConfigs (admin.go):
	// read-modify-write changes of a topic's shape or configs. It is taken
	// before mu and never while holding a partition lock.
	adminMu sync.Mutex

	// mu guards topics, deleting and closed.
	mu     sync.Mutex
	topics map[string]*topicState
	// deleting holds the names DeleteTopic is deleting: CreateTopic
	// refuses them meanwhile.
	deleting map[string]bool
	closed   bool
	// topicsGen counts changes to topics and to their meta rows; it is
	// bumped under mu and read without it (TopicsGeneration).
	topicsGen atomic.Uint64

	// room bounds the upload backlog and keeps a free-space reserve
	// (room.go).
	room *room

	// upMu guards upQueue; upWake (capacity 1) signals the uploader.
	upMu    sync.Mutex
	upQueue []uploadJob
	upWake  chan struct{}

	// cleaner holds the replaced objects waiting for deletion (compact.go).
	cleaner cleaner

	stop chan struct{}
	wg   sync.WaitGroup

	// raCtx is the parent of every prefetch's context (readahead.go);
	// Close cancels it. raMu guards raClosed; raWG counts the prefetch
	// goroutines, which Close waits for.
	raCtx    context.Context
	raCancel context.CancelFunc
	raMu     sync.Mutex
	raClosed bool
	raWG     sync.WaitGroup
	// raStarted counts the prefetches started (for tests).
	raStarted atomic.Int64
}

// topicState is an open topic: its meta row and its partitions.
type topicState struct {
	meta  meta.Topic
	parts []*Partition
}

// Open locks cfg.Dir, recovers every partition of every topic in meta and
// starts the background work. Close stops it.
func Open(ctx context.Context, cfg Config) (*Manager, error) {
	if cfg.Dir == "" || cfg.Objects == nil || cfg.Meta == nil {
		return nil, errors.New("log: Config needs Dir, Objects and Meta")
	}
	applyDefaults(&cfg)
	lock, err := lockDir(cfg.Dir)
	if err != nil {
		return nil, err
	}
	m := &Manager{
		cfg: cfg, fs: cfg.fs, logger: cfg.Logger, metrics: newMetrics(cfg.Registerer), lock: lock, now: cfg.Now,
		topics: make(map[string]*topicState), deleting: make(map[string]bool), upWake: make(chan struct{}, 1), stop: make(chan struct{}),
	}
	m.cache = newSegmentCache(cfg.CacheBytes, m.metrics)
	m.raCtx, m.raCancel = context.WithCancel(context.Background())
	_, realFS := cfg.fs.(osFS)
	m.room = newRoom(cfg.Dir, cfg.MaxUploadBacklog, realFS, m.logger)
	if _, real := cfg.fs.(osFS); !real && cfg.SyncScope == SyncFilesystem && cfg.syncfs != nil {
		m.fss = newTestFSSyncer(cfg.Dir, cfg.syncfs, func(time.Duration) {})
	}
	if _, real := cfg.fs.(osFS); real && cfg.SyncScope == SyncFilesystem {
		observe := func(d time.Duration) { m.metrics.fsyncSeconds.Observe(d.Seconds()) }
		var why string
		if m.fss, why, err = newFSSyncer(cfg.Dir, observe); err != nil {
			lock.release()
			return nil, err
		}
		if m.fss == nil {
			m.logger.Warn("fsync scope filesystem not in force; fsyncing each partition's file instead", "dir", cfg.Dir, "reason", why)
		} else {
			m.logger.Info("fsync scope filesystem: one syncfs serves every partition", "dir", cfg.Dir, "filesystem", why)
		}
	}
	topics, err := cfg.Meta.ListTopics(ctx)
	if err != nil {
		m.fss.close()
		lock.release()
		return nil, fmt.Errorf("log: list topics: %w", err)
	}
	for _, t := range topics {
		if err := m.openTopic(ctx, t); err != nil {
			m.closePartitions()
			m.fss.close()
			lock.release()
			return nil, err
		}
	}
	if err := m.resumeDeletions(ctx); err != nil {
		m.closePartitions()
		m.fss.close()
		lock.release()
		return nil, err
	}
	if cfg.Registerer != nil {
		cfg.Registerer.MustRegister(newTopicCollector(m, cfg.PerPartitionMetrics), newDirtyCollector(m))
		m.registerBacklogMetrics(cfg.Registerer)
	}
	m.wg.Add(2)
	go m.uploader()
	go m.housekeeper()
	if !cfg.Cleaner.Disabled {
		m.wg.Add(1)
		go m.cleanerLoop()
	}
	m.logger.Info("log opened", "dir", cfg.Dir, "topics", len(topics), "cache_bytes", cfg.CacheBytes,
		"max_upload_backlog", m.room.limit, "free_space_reserve", m.room.reserve)
	return m, nil
}

func applyDefaults(cfg *Config) {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.CacheBytes <= 0 {
		cfg.CacheBytes = DefaultCacheBytes
	}
	if cfg.SegmentBytes <= 0 {
		cfg.SegmentBytes = DefaultSegmentBytes
	}
	if cfg.SegmentAge <= 0 {
		cfg.SegmentAge = DefaultSegmentAge
	}
	if cfg.FlushInterval <= 0 {
		cfg.FlushInterval = DefaultFlushInterval
	}
	if cfg.RetentionInterval <= 0 {
		cfg.RetentionInterval = DefaultRetentionInterval
	}
	c := &cfg.Cleaner
	if c.MinCleanableRatio <= 0 {
		c.MinCleanableRatio = DefaultMinCleanableRatio
	}
	if c.MaxCompactionLag <= 0 {
		c.MaxCompactionLag = DefaultMaxCompactionLag
	}
	if c.DeleteRetention <= 0 {
		c.DeleteRetention = DefaultDeleteRetention
	}
	if c.DedupeBufferBytes <= 0 {
		c.DedupeBufferBytes = DefaultDedupeBufferBytes
	}
	if c.Interval <= 0 {
		c.Interval = DefaultCleanerInterval
	}
	if c.DeleteDelay == 0 {
		c.DeleteDelay = DefaultCleanerDeleteDelay
	}
	if cfg.SyncScope == "" {
		cfg.SyncScope = SyncFile
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.fs == nil {
		cfg.fs = osFS{}
	}
}

func (m *Manager) openTopic(ctx context.Context, t meta.Topic) error {
	ts := &topicState{meta: t}
	for i := int32(0); i < t.PartitionCount; i++ {
		p, err := m.openPartition(ctx, t, i)
		if err != nil {
			for _, q := range ts.parts {
				q.close()
			}
			return err
		}
		ts.parts = append(ts.parts, p)
	}
	m.mu.Lock()
	m.topics[t.Name] = ts
	m.topicsGen.Add(1)
	m.mu.Unlock()
	return nil
}

// CreateTopic validates the name and configs, records the topic in meta
// and opens its partitions.
func (m *Manager) CreateTopic(ctx context.Context, name string, partitions int32, configs map[string]string) (meta.Topic, error) {
	if err := ValidateTopicName(name); err != nil {
		return meta.Topic{}, err
	}
	if partitions < 1 {
		return meta.Topic{}, fmt.Errorf("%w: partition count %d, must be at least 1", meta.ErrInvalid, partitions)
	}
	if err := ValidateTopicConfigs(configs); err != nil {
		return meta.Topic{}, err
	}
	if err := m.checkCreatable(name); err != nil {
		return meta.Topic{}, err
	}
	t, err := m.cfg.Meta.CreateTopic(ctx, meta.Topic{Name: name, PartitionCount: partitions, Configs: configs, CreatedAt: m.now()})
	if errors.Is(err, meta.ErrTopicExists) {
		return meta.Topic{}, fmt.Errorf("%w: %s", ErrTopicExists, name)
	}
	if err != nil {
		return meta.Topic{}, err
	}
	if err := m.openTopic(ctx, t); err != nil {
		return meta.Topic{}, err
	}
	m.logger.Info("topic created", "topic", name, "id", t.ID, "partitions", partitions)
	return t, nil
}

// checkCreatable refuses a name whose topic is being deleted, and, as
// Kafka does, a name that differs from an existing topic's only by '.'
// against '_' (their metric names would be the same).
func (m *Manager) checkCreatable(name string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return ErrClosed
	}
	if m.deleting[name] {
		return fmt.Errorf("%w: topic %s is marked for deletion", ErrTopicExists, name)
	}
	norm := strings.ReplaceAll(name, ".", "_")
	for other := range m.topics {
		if other != name && strings.ReplaceAll(other, ".", "_") == norm {
			return fmt.Errorf("%w: Topic '%s' collides with existing topic: %s", ErrInvalidTopic, name, other)
		}
	}
	return nil
}

func (m *Manager) checkOpen() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return ErrClosed
	}
	return nil
}

// Topic returns a topic's meta row.
func (m *Manager) Topic(name string) (meta.Topic, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	ts, ok := m.topics[name]
	if !ok {
		return meta.Topic{}, fmt.Errorf("%w: %s", ErrUnknownTopic, name)
	}
	return ts.meta, nil
}

// TopicsGeneration changes whenever a topic is created or deleted or its
// meta row (configs, partition count) changes, so that callers can cache
// what they derive from Topics until it moves.
func (m *Manager) TopicsGeneration() uint64 { return m.topicsGen.Load() }

// Topics returns every topic, sorted by name.
func (m *Manager) Topics() []meta.Topic {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]meta.Topic, 0, len(m.topics))
	for _, ts := range m.topics {
		out = append(out, ts.meta)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Partition returns an open partition.
func (m *Manager) Partition(topic string, index int32) (*Partition, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil, ErrClosed
	}
	ts, ok := m.topics[topic]
	if !ok {
		return nil, fmt.Errorf("%w: %s", ErrUnknownTopic, topic)
	}
	if index < 0 || int(index) >= len(ts.parts) {
		return nil, fmt.Errorf("%w: %d (topic %s has %d partitions)", ErrUnknownPartition, index, topic, len(ts.parts))
	}
	return ts.parts[index], nil
}

// SetTopicConfigs validates and replaces a topic's config overrides; the
// partitions use them from the next append or housekeeping pass on.
func (m *Manager) SetTopicConfigs(ctx context.Context, name string, configs map[string]string) error {
	if err := ValidateTopicConfigs(configs); err != nil {
		return err
	}
	if _, err := m.Topic(name); err != nil {
		return err
	}
	if err := m.cfg.Meta.SetTopicConfigs(ctx, name, configs); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	ts, ok := m.topics[name]
	if !ok {
		return fmt.Errorf("%w: %s", ErrUnknownTopic, name)
	}
	ts.meta.Configs = configs
	m.topicsGen.Add(1)
	s := settingsFor(configs, &m.cfg)
	for _, p := range ts.parts {
		p.setSettings(s)
	}
	return nil
}

// DeleteTopic removes the topic from meta, closes its partitions, removes
// its local files and deletes its objects in the background. Meta records
// the deletion in the same transaction (meta.Store.DeletedTopics) until
// the objects are gone, so a crash part-way is finished at the next Open.
// While it runs, creating a topic of the same name is refused, so an
// auto-create cannot slip a new topic in under the old one's partitions.
// An internal topic is refused with ErrInternalTopic.
func (m *Manager) DeleteTopic(ctx context.Context, name string) error {
	if IsInternalTopic(name) {
		return internalTopicError("delete", name)
	}
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return ErrClosed
	}
	ts, ok := m.topics[name]
	if !ok || m.deleting[name] {
		m.mu.Unlock()
		return fmt.Errorf("%w: %s", ErrUnknownTopic, name)
	}
	m.deleting[name] = true
	m.mu.Unlock()
	defer func() {
		m.mu.Lock()
		delete(m.deleting, name)
		m.mu.Unlock()
	}()

	t, segs, err := m.cfg.Meta.DeleteTopic(ctx, name)
	if errors.Is(err, meta.ErrTopicNotFound) {
		return fmt.Errorf("%w: %s", ErrUnknownTopic, name)
	}
	if err != nil {
		return err
	}
	m.mu.Lock()
	if m.topics[name] == ts {
		delete(m.topics, name)
		m.topicsGen.Add(1)
	}
	m.mu.Unlock()
	for _, p := range ts.parts {
		if err := p.close(); err != nil {
			m.logger.Warn("closing deleted partition", "topic", name, "partition", p.index, "err", err)
		}
	}
	m.removeTopicDir(t)
	m.wg.Add(1)
	go m.deleteObjects(t, segs)
	m.logger.Info("topic deleted", "topic", name, "id", t.ID)
	return nil
}

// removeTopicDir removes a deleted topic's local directory.
func (m *Manager) removeTopicDir(t meta.Topic) {
	if err := m.fs.RemoveAll(filepath.Join(m.cfg.Dir, t.ID)); err != nil {
		m.logger.Warn("removing local files of deleted topic", "topic", t.Name, "err", err)
		return
	}
	if err := syncDir(m.fs, m.cfg.Dir); err != nil {
		m.logger.Warn("removing local files of deleted topic", "topic", t.Name, "err", err)
	}
}

// resumeDeletions finishes the topic deletions that a crash or an object
// store failure left unfinished (meta.Store.DeletedTopics): local files
// now, objects in the background.
func (m *Manager) resumeDeletions(ctx context.Context) error {
	deleted, err := m.cfg.Meta.DeletedTopics(ctx)
	if err != nil {
		return fmt.Errorf("log: list deleted topics: %w", err)
	}
	for _, t := range deleted {
		m.logger.Info("finishing the deletion of a topic", "topic", t.Name, "id", t.ID)
		m.removeTopicDir(t)
		m.wg.Add(1)
		go m.deleteObjects(t, nil)
	}
	return nil
}

// deleteObjects removes a deleted topic's objects: those meta knew of and
// anything else under its prefixes (uploads that raced the deletion), then
// tells meta the deletion is complete. Whatever fails is retried at the
// next Open.
func (m *Manager) deleteObjects(t meta.Topic, segs []meta.Segment) {
	defer m.wg.Done()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-m.stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	failed := false
	for _, s := range segs {
		m.cache.evict(s.ObjectKey)
		if err := m.cfg.Objects.Delete(ctx, s.ObjectKey); err != nil {
			m.logger.Warn("deleting object of deleted topic", "key", s.ObjectKey, "err", err)
			failed = true
		}
	}
	for i := int32(0); i < t.PartitionCount; i++ {
		objs, err := m.cfg.Objects.List(ctx, objectPrefix(t.ID, i))
		if err != nil {
			m.logger.Warn("listing objects of deleted topic; the next start retries", "topic", t.Name, "err", err)
			return
		}
		for _, o := range objs {
			m.cache.evict(o.Key)
			if err := m.cfg.Objects.Delete(ctx, o.Key); err != nil {
				m.logger.Warn("deleting object of deleted topic", "key", o.Key, "err", err)
				failed = true
			}
		}
	}
	if failed {
		m.logger.Warn("some objects of a deleted topic remain; the next start retries", "topic", t.Name, "id", t.ID)
		return
	}
	if err := m.cfg.Meta.ForgetDeletedTopic(ctx, t.ID); err != nil {
		m.logger.Warn("recording that a topic's deletion finished; the next start retries", "topic", t.Name, "err", err)
	}
}

// Close stops background work, syncs and closes every partition and
// releases the directory lock. Sealed segments not yet uploaded stay on
// local disk and are uploaded at the next Open.
func (m *Manager) Close() error {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return nil
	}
	m.closed = true
	m.mu.Unlock()
	m.stopReadAhead()
	close(m.stop)
	m.wg.Wait()
	err := m.closePartitions()
	if ferr := m.fss.close(); err == nil {
		err = ferr
	}
	if lerr := m.lock.release(); err == nil {
		err = lerr
	}
	return err
}

// goReadAhead runs f in a prefetch goroutine owned by the Manager; false
// when the Manager is closing.
func (m *Manager) goReadAhead(f func()) bool {
	m.raMu.Lock()
	defer m.raMu.Unlock()
	if m.raClosed {
		return false
	}
	m.raWG.Add(1)
	go func() {
		defer m.raWG.Done()
		f()
	}()
	return true
}

// stopReadAhead cancels every prefetch and waits for their goroutines.
func (m *Manager) stopReadAhead() {
	m.raMu.Lock()
	m.raClosed = true
	m.raMu.Unlock()
	m.raCancel()
	m.raWG.Wait()
}

func (m *Manager) closePartitions() error {
	m.mu.Lock()
	var parts []*Partition
	for _, ts := range m.topics {
		parts = append(parts, ts.parts...)
	}
	m.mu.Unlock()
	var err error
	for _, p := range parts {
		if cerr := p.close(); cerr != nil && err == nil {
			err = fmt.Errorf("log: close %s-%s: %w", p.topic, strconv.Itoa(int(p.index)), cerr)
		}
	}
	return err
}

// partitions returns every open partition (for housekeeping).
func (m *Manager) partitions() []*Partition {
	m.mu.Lock()
	defer m.mu.Unlock()
	var parts []*Partition
	for _, ts := range m.topics {
		parts = append(parts, ts.parts...)
	}
	return parts
}
