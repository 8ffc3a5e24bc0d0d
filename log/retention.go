package log

import (
	"context"
	"fmt"
	"time"
)

// applyRetention deletes the oldest sealed, uploaded segments while they
// lie wholly below the log start offset (moved there by DeleteRecords),
// or, under cleanup.policy delete (alone or with compact), break
// retention.ms (their newest record is older than it) or while the
// partition without them would still hold at least retention.bytes. The
// active segment is never deleted. Meta is updated first (segment rows
// and log start offset in one transaction), then the objects go: a crash
// in between leaves orphan objects below the log start, which the next
// Open deletes.
func (p *Partition) applyRetention(ctx context.Context, now time.Time) error {
	if !p.cleanMu.TryLock() {
		return nil // a compaction run is on: the next round retries
	}
	defer p.cleanMu.Unlock()
	p.mu.Lock()
	if p.closed || len(p.segs) < 2 {
		p.mu.Unlock()
		return nil
	}
	s := p.settings
	var total int64
	for _, seg := range p.segs {
		total += seg.size
	}
	var victims []*segment
	for _, seg := range p.segs[:len(p.segs)-1] {
		if !seg.remote {
			break
		}
		below := seg.next <= p.logStart
		expired := s.deletePolicy && s.retentionMs >= 0 && seg.maxTs < now.UnixMilli()-s.retentionMs
		oversize := s.deletePolicy && s.retentionBytes >= 0 && total-seg.size >= s.retentionBytes
		if !below && !expired && !oversize {
			break
		}
		victims = append(victims, seg)
		total -= seg.size
	}
	newStart := p.segs[len(victims)].base
	p.mu.Unlock()
	if len(victims) == 0 {
		return nil
	}
	if newStart < p.logStartSnapshot() {
		newStart = p.logStartSnapshot()
	}
	bases := make([]int64, len(victims))
	for i, v := range victims {
		bases[i] = v.base
	}
	if err := p.m.cfg.Meta.DeleteSegments(ctx, p.topicID, p.index, bases, newStart); err != nil {
		return fmt.Errorf("log: retention of %s-%d: %w", p.topic, p.index, err)
	}
	p.dropPrefix(victims, newStart)
	for _, v := range victims {
		p.m.cache.evict(v.key)
		if err := p.m.cfg.Objects.Delete(ctx, v.key); err != nil {
			p.m.logger.Warn("deleting expired segment object; the next start retries", "key", v.key, "err", err)
		}
	}
	p.m.metrics.retentionSegs.Add(float64(len(victims)))
	p.m.logger.Info("retention deleted segments", "topic", p.topic, "partition", p.index,
		"segments", len(victims), "log_start", newStart)
	return nil
}

func (p *Partition) logStartSnapshot() int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.logStart
}

// dropPrefix removes deleted segments from the front of the list. Only
// the housekeeper deletes segments, so they are still the prefix.
func (p *Partition) dropPrefix(victims []*segment, newStart int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for n < len(victims) && n < len(p.segs)-1 && p.segs[n] == victims[n] {
		if p.segs[n].remote {
			p.remoteBytes -= p.segs[n].size
		}
		n++
	}
	p.segs = append([]*segment(nil), p.segs[n:]...)
	if newStart > p.logStart {
		p.logStart = newStart
	}
}
