package log

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/streamhouse/streamhouse/meta"
)

// uploadJob is a sealed local segment waiting to reach the object store.
type uploadJob struct {
	p   *Partition
	seg *segment
	// bytes is what the job adds to the upload backlog until it is done.
	bytes int64
}

// Upload retries back off from uploadRetryMin to uploadRetryMax: short
// enough that appends refused for the backlog resume soon after the
// object store returns.
const (
	uploadRetryMin = 100 * time.Millisecond
	uploadRetryMax = 5 * time.Second
)

// enqueueUpload queues a freshly sealed segment and counts it in the
// backlog. It never blocks (it runs under a partition lock); the queue
// holds one small entry per sealed local segment, and the bytes they
// stand for are bounded by MaxUploadBacklog (checkRoom, room.go).
func (m *Manager) enqueueUpload(p *Partition, s *segment) {
	m.room.backlog.Add(s.size)
	m.requeueUpload(uploadJob{p: p, seg: s, bytes: s.size})
}

// requeueUpload queues a job already counted in the backlog.
func (m *Manager) requeueUpload(j uploadJob) {
	m.upMu.Lock()
	m.upQueue = append(m.upQueue, j)
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
// capped exponential backoff until Close. A segment whose local file
// fails verification is not uploaded and not retried: it stays on disk,
// counted in the backlog, and the next start recovers it by scanning.
func (m *Manager) uploader() {
	defer m.wg.Done()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		<-m.stop
		cancel()
	}()
	backoff := uploadRetryMin
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
		err := m.upload(ctx, j)
		switch {
		case err == nil:
			m.room.backlog.Add(-j.bytes)
			m.room.refresh()
			backoff = uploadRetryMin
			continue
		case ctx.Err() != nil:
			return
		case errors.Is(err, ErrCorruptSegment):
			m.metrics.uploadErrors.Inc()
			m.logger.Error("sealed segment failed verification; not uploading it (the next start recovers it)",
				"key", j.seg.key, "path", j.seg.path, "err", err)
			continue
		}
		m.metrics.uploadErrors.Inc()
		m.logger.Warn("segment upload failed; will retry", "key", j.seg.key, "err", err, "retry_in", backoff)
		m.requeueUpload(j)
		t := time.NewTimer(backoff)
		select {
		case <-t.C:
		case <-m.stop:
			t.Stop()
			return
		}
		backoff = min(backoff*2, uploadRetryMax)
	}
}

// upload verifies one sealed segment's local file, puts it in the object
// store, checks the object's footer, records it in meta, and only then
// drops the local copy.
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
	f, err := m.fs.OpenFile(s.path, os.O_RDONLY, 0)
	if err != nil {
		return fmt.Errorf("log: open %s for upload: %w", s.path, err)
	}
	defer f.Close()
	footer, err := verifyForUpload(f, row)
	if err != nil {
		return err
	}
	if row.Size, err = f.Size(); err != nil {
		return fmt.Errorf("log: stat %s: %w", s.path, err)
	}
	if err := m.cfg.Objects.Put(ctx, s.key, io.NewSectionReader(f, 0, row.Size), row.Size); err != nil {
		return fmt.Errorf("log: upload %s: %w", s.key, err)
	}
	if same, err := m.objectHasFooter(ctx, s.key, row.Size, footer); err != nil || !same {
		return fmt.Errorf("log: uploaded object %s does not end with the segment's footer (err %v)", s.key, err)
	}
	if err := m.cfg.Meta.AddSegment(ctx, row); err != nil && !errors.Is(err, meta.ErrSegmentExists) {
		return fmt.Errorf("log: record segment %s: %w", s.key, err)
	}
	m.dropLocalCopy(p, s, row.Size)
	m.metrics.uploads.Inc()
	m.metrics.uploadBytes.Add(float64(row.Size))
	m.metrics.uploadSeconds.Observe(time.Since(start).Seconds())
	m.logger.Debug("segment uploaded", "key", s.key, "bytes", row.Size)
	return nil
}

// verifyForUpload checks that the sealed file f is what its segment says
// (footer, every batch) and returns its footer bytes. A mismatch is a
// *CorruptionError.
func verifyForUpload(f file, row meta.Segment) ([]byte, error) {
	ft, sealed, err := readFooterFile(f)
	if err != nil {
		return nil, fmt.Errorf("log: read footer of %s: %w", f.Name(), err)
	}
	if !sealed || ft.BaseOffset != row.BaseOffset || ft.LastOffset != row.LastOffset {
		return nil, &CorruptionError{Segment: f.Name(), Offset: -1,
			Cause: fmt.Errorf("no valid footer for offsets %d-%d (sealed %v, footer %+v)", row.BaseOffset, row.LastOffset, sealed, ft)}
	}
	if err := verifySealedFile(f, ft); err != nil {
		return nil, err
	}
	footer := make([]byte, footerLen)
	if _, err := f.ReadAt(footer, ft.BatchesLen+ft.metaLen()-footerLen); err != nil {
		return nil, fmt.Errorf("log: read footer of %s: %w", f.Name(), err)
	}
	return footer, nil
}

// dropLocalCopy marks an uploaded segment remote and removes its file.
func (m *Manager) dropLocalCopy(p *Partition, s *segment, size int64) {
	p.mu.Lock()
	s.remote, s.index = true, nil
	s.size = size
	p.remoteBytes += size
	p.mu.Unlock()
	p.fileMu.Lock()
	if s.file != nil {
		s.file.Close()
		s.file = nil
	}
	p.fileMu.Unlock()
	if err := p.removeDurably(s.path); err != nil {
		m.logger.Warn("removing uploaded local segment", "path", s.path, "err", err)
	}
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
			now := m.now()
			for _, p := range m.partitions() {
				if err := p.flush(); err != nil {
					m.logger.Error("background flush failed", "topic", p.topic, "partition", p.index, "err", err)
				}
				p.ra.dropIdle(m.cache, now)
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
		if !p.prod.loaded.Load() && p.rollDue(now) {
			// Sealing needs the open transactions (txn.go).
			if err := p.loadProducers(ctx); err != nil {
				m.logger.Error("age-based roll: rebuilding producer state failed", "topic", p.topic, "partition", p.index, "err", err)
			}
		}
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
