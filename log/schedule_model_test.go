package log

// The model TestRandomCrashSchedules (schedule_test.go) checks the log
// against: what each partition must hold, live and after a restart.

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// settle records an append's outcome in the model.
func (s *schedule) settle(o outcome) {
	b, sp := o.b, o.b.part
	if b.pid >= 0 && s.settleIdempotent(o) {
		return
	}
	switch {
	case o.err != nil:
		s.unknown[b] = true
	case o.res.Duplicate:
		s.dupChecks = append(s.dupChecks, dupCheck{b, o.res})
		if o.sync && o.durErr == nil {
			s.ackedDurable(sp, o)
		}
	default:
		if n := o.res.LastOffset - o.res.BaseOffset + 1; n != int64(len(b.vals)) {
			s.fail("append of %d records to %s answered with offsets %d-%d", len(b.vals), sp.name, o.res.BaseOffset, o.res.LastOffset)
		}
		s.place(sp, b, o.res.BaseOffset)
		s.stats.acked += len(b.vals)
		if o.sync && o.durErr == nil {
			s.ackedDurable(sp, o)
		}
	}
}

// ackedDurable records an acks=all acknowledgement (a duplicate's too:
// it says the original is durable).
func (s *schedule) ackedDurable(sp *schedPart, o outcome) {
	if sp.noDurable != nil && !s.fs.crashed() {
		s.fail("%s: append %s acknowledged as durable (%v) after %v: a failed syncfs must fail every later acks=all append",
			sp.name, o.b, o, sp.noDurable)
	}
	sp.durable = max(sp.durable, o.res.LastOffset+1)
	s.stats.durable += len(o.b.vals)
}

// settleIdempotent handles what only idempotent appends can answer; it
// reports whether it settled the outcome.
func (s *schedule) settleIdempotent(o outcome) bool {
	b, sp := o.b, o.b.part
	pr := sp.prod
	switch {
	case o.err == nil:
		if pr.retry == b {
			pr.retry = nil
		}
		return false
	case errors.Is(o.err, ErrOutOfOrderSequence):
		if s.mustBeDuplicate(b) {
			s.fail("%s retried a batch of its last five in the log (%s at %d); it was refused (%v) instead of answered as a duplicate",
				sp.name, b, sp.at[b.vals[len(b.vals)-1]], o.err)
		}
		pr.epoch++
		pr.nextSeq, pr.sent, pr.retry = 0, nil, nil
		s.logf("  producer %d of %s starts epoch %d", pr.pid, sp.name, pr.epoch)
		return true
	case errors.Is(o.err, ErrInvalidProducerEpoch):
		s.fail("producer %d of %s fenced at epoch %d, the newest it ever used: %v", pr.pid, sp.name, b.epoch, o.err)
	}
	pr.retry = b
	return false
}

// mustBeDuplicate reports whether b is one of its producer's last five
// batches (of the current epoch) in the log at or above the log start.
func (s *schedule) mustBeDuplicate(b *schedBatch) bool {
	sp := b.part
	var inLog []*schedBatch
	for _, x := range sp.prod.sent {
		if off, ok := sp.at[x.vals[len(x.vals)-1]]; ok && off >= sp.start && x.epoch == b.epoch {
			inLog = append(inLog, x)
		}
	}
	return slices.Contains(inLog[max(0, len(inLog)-producerBatchesKept):], b)
}

// place puts b's records at base in the model.
func (s *schedule) place(sp *schedPart, b *schedBatch, base int64) {
	for i, v := range b.vals {
		off := base + int64(i)
		if old, ok := sp.vals[off]; ok && old != v {
			s.fail("%s: offset %d given to %s, but it holds %s", sp.name, off, v, old)
		}
		if o2, ok := sp.at[v]; ok && o2 != off {
			s.fail("%s: record %s is at offset %d and again at %d (appended twice)", sp.name, v, o2, off)
		}
		sp.vals[off], sp.at[v] = v, off
		sp.end = max(sp.end, off+1)
	}
	delete(s.unknown, b)
}

// match checks records read from offset from against the model: each is
// the model's record at its offset, or the start of a whole batch whose
// append failed, which it then places.
func (s *schedule) match(sp *schedPart, recs []Record, from int64) {
	for i := 0; i < len(recs); {
		off := from + int64(i)
		r := recs[i]
		v := string(r.Value)
		if r.Offset != off {
			s.fail("%s: record %q at offset %d where %d was expected (offsets must be contiguous)", sp.name, v, r.Offset, off)
		}
		if string(r.Key) != "k"+v {
			s.fail("%s: offset %d has key %q and value %q: not a record this test wrote", sp.name, off, r.Key, v)
		}
		if want, ok := sp.vals[off]; ok {
			if want != v {
				s.fail("%s: offset %d holds %s, want %s", sp.name, off, v, want)
			}
			i++
			continue
		}
		b := s.batchOf[v]
		other, twice := sp.at[v]
		switch {
		case b == nil || b.part != sp:
			s.fail("%s: offset %d holds %q, which was never appended to it", sp.name, off, v)
		case twice:
			s.fail("%s: record %s at offset %d is also at %d (appended twice)", sp.name, v, off, other)
		case !s.unknown[b]:
			s.fail("%s: offset %d holds %s from batch %s, whose append was answered otherwise", sp.name, off, v, b)
		case b.vals[0] != v:
			s.fail("%s: offset %d holds %s, in the middle of batch %s", sp.name, off, v, b)
		case i+len(b.vals) > len(recs):
			s.fail("%s: batch %s at offset %d is cut short", sp.name, b, off)
		}
		for j, w := range b.vals {
			if got := string(recs[i+j].Value); got != w {
				s.fail("%s: batch %s at offset %d has %s where %s belongs", sp.name, b, off, got, w)
			}
		}
		s.logf("  %s: failed append %s is in the log at %d", sp.name, b, off)
		s.place(sp, b, off)
		i += len(b.vals)
	}
}

// readLog reads every record from offset from to the high watermark.
func readLog(ctx context.Context, p *Partition, from int64) ([]Record, error) {
	var out []Record
	off := from
	for {
		res, err := p.Read(ctx, off, 4096)
		if err != nil {
			return out, fmt.Errorf("read at %d: %w", off, err)
		}
		if len(res.Batches) == 0 {
			if off != res.HighWatermark {
				return out, fmt.Errorf("empty read at %d below the high watermark %d", off, res.HighWatermark)
			}
			return out, nil
		}
		recs, err := DecodeBatches(res.Batches, off)
		if err != nil {
			return out, fmt.Errorf("decode at %d: %w", off, err)
		}
		if len(recs) == 0 {
			return out, fmt.Errorf("read at %d returned batches without records", off)
		}
		out = append(out, recs...)
		off = recs[len(recs)-1].Offset + 1
	}
}

// liveCheck matches what was written since the last check. It returns
// false when the boot ended under it.
func (s *schedule) liveCheck(sp *schedPart) bool {
	ls, hwm := sp.p.Offsets()
	if ls != sp.start {
		s.fail("%s: log start %d, want %d", sp.name, ls, sp.start)
	}
	if hwm < sp.end {
		s.fail("%s: high watermark %d below %d, past acknowledged records", sp.name, hwm, sp.end)
	}
	from := max(sp.checked, sp.start)
	if hwm > from {
		recs, err := readLog(s.ctx, sp.p, from)
		if err != nil {
			if s.fs.crashed() {
				return false
			}
			s.fail("%s: %v", sp.name, err)
		}
		if int64(len(recs)) < hwm-from {
			s.fail("%s: read %d records from %d, the high watermark is %d", sp.name, len(recs), from, hwm)
		}
		s.match(sp, recs[:hwm-from], from)
	}
	sp.checked = max(sp.checked, hwm)
	sp.end = max(sp.end, hwm)
	return true
}

// dropBelow moves the model's log start to ls.
func (s *schedule) dropBelow(sp *schedPart, ls int64) {
	for off := sp.start; off < ls; off++ {
		if v, ok := sp.vals[off]; ok {
			delete(sp.at, v)
			delete(sp.vals, off)
		}
	}
	sp.start = ls
	sp.checked = max(sp.checked, ls)
	sp.end = max(sp.end, ls)
}

// checkDuplicate checks a duplicate answer: its offsets hold the batch.
func (s *schedule) checkDuplicate(d dupCheck) {
	sp, b := d.b.part, d.b
	if n := d.res.LastOffset - d.res.BaseOffset + 1; n != int64(len(b.vals)) {
		s.fail("%s: duplicate answer %d-%d for batch %s of %d records", sp.name, d.res.BaseOffset, d.res.LastOffset, b, len(b.vals))
	}
	for i, v := range b.vals {
		off := d.res.BaseOffset + int64(i)
		if off < sp.start {
			continue // deleted since: nothing to compare
		}
		if got, ok := sp.vals[off]; !ok || got != v {
			s.fail("%s: batch %s answered as a duplicate at %d-%d, but offset %d holds %q",
				sp.name, b, d.res.BaseOffset, d.res.LastOffset, off, got)
		}
	}
}

// verifyRecovered checks a reopened partition against the model and
// makes what it read the model: every record a restarted broker serves
// must be durable.
func (s *schedule) verifyRecovered(sp *schedPart) {
	ls, hwm := sp.p.Offsets()
	if ls != sp.start {
		s.fail("%s: log start %d after the restart, %d before", sp.name, ls, sp.start)
	}
	need, why := sp.durable, "acknowledged as durable"
	if !s.powerLost && !s.faulted[sp] {
		need, why = sp.end, "acknowledged (kill -9 keeps the page cache)"
	}
	if hwm < need {
		var lost []string
		for off := hwm; off < need && len(lost) < 10; off++ {
			lost = append(lost, fmt.Sprintf("%d:%s", off, sp.vals[off]))
		}
		s.fail("%s: lost records %s: the log ends at %d after the restart, records up to %d were %s",
			sp.name, strings.Join(lost, " "), hwm, need, why)
	}
	recs, err := readLog(s.ctx, sp.p, ls)
	if err != nil {
		s.fail("%s: read after the restart: %v", sp.name, err)
	}
	if int64(len(recs)) != hwm-ls {
		s.fail("%s: read %d records from %d after the restart, high watermark %d: %s", sp.name, len(recs), ls, hwm, s.describeGaps(sp, recs, ls, hwm))
	}
	s.match(sp, recs, ls)
	s.stats.verified += len(recs)
	for off := hwm; off < sp.end; off++ {
		if v, ok := sp.vals[off]; ok {
			delete(sp.at, v)
			delete(sp.vals, off)
		}
	}
	if hwm < sp.end {
		s.logf("  %s: unacknowledged records %d-%d lost", sp.name, hwm, sp.end-1)
	}
	sp.end, sp.checked, sp.durable = hwm, hwm, hwm
}

// describeGaps says which offsets of [from, to) recs lacks and what the
// model knows of them: unacknowledged records lost while later ones
// survived leave a hole, where only a lost suffix is allowed.
func (s *schedule) describeGaps(sp *schedPart, recs []Record, from, to int64) string {
	var gaps []string
	next := from
	gap := func(a, b int64) {
		acked := "not acknowledged as durable"
		if a < sp.durable {
			acked = fmt.Sprintf("acknowledged as durable up to %d", sp.durable)
		}
		name := func(off int64) string {
			if v, ok := sp.vals[off]; ok {
				return v
			}
			return "?"
		}
		gaps = append(gaps, fmt.Sprintf("offsets %d-%d missing (%s..%s, %s) with later records present",
			a, b-1, name(a), name(b-1), acked))
	}
	for _, r := range recs {
		if r.Offset > next {
			gap(next, r.Offset)
		}
		next = r.Offset + 1
	}
	if next < to {
		gaps = append(gaps, fmt.Sprintf("offsets %d-%d unreadable", next, to-1))
	}
	return strings.Join(gaps, "; ")
}
