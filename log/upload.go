package log

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/streamhouse/streamhouse/meta"
)

// uploadJob is a sealed local segment waiting to reach the object store.
type uploadJob struct {
	p   *Partition
	seg *segment
}

// enqueueUpload queues a sealed segment. It never blocks (it runs under a
// partition lock); the queue holds one small entry per sealed local
// segment, so it is bounded by the local disk the segments occupy.
func (m *Manager) enqueueUpload(p *Partition, s *segment) {
	m.upMu.Lock()
	m.upQueue = append(m.upQueue, uploadJob{p: p, seg: s})
	m.upMu.Unlock()
	select {
	case m.upWake <- struct{}{}:
	default:
	}
}

func (m *Manager) nextUpload() (uploadJob, bool) {
	m.upMu.Lock()
	defer m.upMu.Unlock()
	if len(m.upQueue) == 0 {
		return uploadJob{}, false
	}
	j := m.upQueue[0]
	m.upQueue[0] = uploadJob{}
	m.upQueue = m.upQueue[1:]
	return j, true
}

// uploader uploads queued segments one at a time, retrying failures with
// capped exponential backoff until Close.
func (m *Manager) uploader() {
	defer m.wg.Done()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		<-m.stop
		cancel()
	}()
	backoff := 100 * time.Millisecond
	for {
		j, ok := m.nextUpload()
		if !ok {
			select {
			case <-m.upWake:
				continue
			case <-m.stop:
				return
			}
		}
		if err := m.upload(ctx, j); err != nil {
			if ctx.Err() != nil {
				return
			}
			m.metrics.uploadErrors.Inc()
			m.logger.Warn("segment upload failed; will retry", "key", j.seg.key, "err", err, "retry_in", backoff)
			m.enqueueUpload(j.p, j.seg)
			t := time.NewTimer(backoff)
			select {
			case <-t.C:
			case <-m.stop:
				t.Stop()
				return
			}
			backoff = min(backoff*2, 30*time.Second)
			continue
		}
		backoff = 100 * time.Millisecond
	}
}

// upload puts one sealed segment in the object store, records it in meta,
// and only then drops the local copy.
func (m *Manager) upload(ctx context.Context, j uploadJob) error {
	p, s := j.p, j.seg
	p.mu.Lock()
	closed, remote := p.closed, s.remote
	row := meta.Segment{
		TopicID: p.topicID, Partition: p.index, BaseOffset: s.base, LastOffset: s.next - 1,
		MaxTimestamp: s.maxTs, ObjectKey: s.key, RecordCount: s.records, CreatedAt: m.now(),
	}
	p.mu.Unlock()
	if closed || remote {
		return nil // deleted topic or closing broker: the next Open retries
	}
	start := time.Now()
	// A separate handle: the upload must not hold fileMu for its duration.
	f, err := os.Open(s.path)
	if err != nil {
		return fmt.Errorf("log: open %s for upload: %w", s.path, err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return fmt.Errorf("log: stat %s: %w", s.path, err)
	}
	row.Size = st.Size()
	if err := m.cfg.Objects.Put(ctx, s.key, f, st.Size()); err != nil {
		return fmt.Errorf("log: upload %s: %w", s.key, err)
	}
	if err := m.cfg.Meta.AddSegment(ctx, row); err != nil && !errors.Is(err, meta.ErrSegmentExists) {
		return fmt.Errorf("log: record segment %s: %w", s.key, err)
	}
	p.mu.Lock()
	s.remote, s.index = true, nil
	s.size = row.Size
	p.remoteBytes += row.Size
	p.mu.Unlock()
	p.fileMu.Lock()
	if s.file != nil {
		s.file.Close()
		s.file = nil
	}
	p.fileMu.Unlock()
	if err := os.Remove(s.path); err != nil && !errors.Is(err, os.ErrNotExist) {
		m.logger.Warn("removing uploaded local segment", "path", s.path, "err", err)
	}
	m.metrics.uploads.Inc()
	m.metrics.uploadBytes.Add(float64(row.Size))
	m.metrics.uploadSeconds.Observe(time.Since(start).Seconds())
	m.logger.Debug("segment uploaded", "key", s.key, "bytes", row.Size)
	return nil
}

// pendingUploads reports how many sealed segments wait for upload.
func (m *Manager) pendingUploads() int {
	m.upMu.Lock()
	defer m.upMu.Unlock()
	return len(m.upQueue)
}

// housekeeper flushes acks=1 writes every FlushInterval, and every
// RetentionInterval rolls aged segments and applies retention.
func (m *Manager) housekeeper() {
	defer m.wg.Done()
	flush := time.NewTicker(m.cfg.FlushInterval)
	defer flush.Stop()
	keep := time.NewTicker(m.cfg.RetentionInterval)
	defer keep.Stop()
	for {
		select {
		case <-m.stop:
			return
		case <-flush.C:
			for _, p := range m.partitions() {
				if err := p.flush(); err != nil {
					m.logger.Error("background flush failed", "topic", p.topic, "partition", p.index, "err", err)
				}
			}
		case <-keep.C:
			m.RunHousekeeping(context.Background())
		}
	}
}

// RunHousekeeping rolls segments older than segment.ms and applies
// retention to every partition once. The housekeeper calls it on a timer;
// tests and operators may call it directly.
func (m *Manager) RunHousekeeping(ctx context.Context) {
	now := m.now()
	for _, p := range m.partitions() {
		p.mu.Lock()
		if p.writableLocked() == nil {
			if err := p.maybeRollLocked(0, now); err != nil {
				m.logger.Error("age-based roll failed", "topic", p.topic, "partition", p.index, "err", err)
			}
		}
		p.mu.Unlock()
		if err := p.applyRetention(ctx, now); err != nil {
			m.logger.Error("retention failed", "topic", p.topic, "partition", p.index, "err", err)
		}
	}
}
