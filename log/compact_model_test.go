package log

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"
)

// modelRecord is one appended record as the model keeps it.
type modelRecord struct {
	key, value string
	tomb       bool
	ts         int64
	// reached is when a compaction run first covered the record (zero
	// until then): a tombstone may go only delete.retention.ms later.
	reached time.Time
}

// TestCompactionModel appends random keyed records and tombstones, rolls,
// compacts, moves the clock and reopens at random, and after every step
// checks the partition against a model: every record read is one that
// was appended, at its offset; each key's latest record is there (a
// tombstone may go once delete.retention.ms has passed since compaction
// first reached it); nothing above the compacted range is touched; and
// inside it no record is superseded by a later one of the same key.
func TestCompactionModel(t *testing.T) {
	seeds := 6
	if testing.Short() {
		seeds = 2
	}
	for seed := range uint64(seeds) {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) {
			runCompactionModel(t, rand.New(rand.NewPCG(seed, 12)), 120)
		})
	}
}

func runCompactionModel(t *testing.T, rng *rand.Rand, steps int) {
	const retention = 1000 * time.Millisecond
	e := newCompactEnv(t, -1)
	e.open()
	p := e.compactTopic("m", map[string]string{ConfigDeleteRetentionMs: fmt.Sprint(retention.Milliseconds()),
		ConfigSegmentBytes: fmt.Sprint(600 + rng.IntN(3000))})
	model := map[int64]*modelRecord{}
	next := int64(0)
	for step := 0; step < steps; step++ {
		switch op := rng.IntN(10); {
		case op < 6:
			n := 1 + rng.IntN(5)
			recs := make([]kv, n)
			ts := 1_700_000_000_000 + int64(step)
			for i := range recs {
				recs[i] = kv{key: fmt.Sprintf("k%d", rng.IntN(12)), value: fmt.Sprintf("v%d.%d", step, i), tomb: rng.IntN(5) == 0}
			}
			base := appendKV(t, p, Codec(rng.IntN(5)), ts, recs...)
			if base != next {
				t.Fatalf("step %d: append at %d, want %d", step, base, next)
			}
			for i, r := range recs {
				model[base+int64(i)] = &modelRecord{key: r.key, value: r.value, tomb: r.tomb, ts: ts}
			}
			next += int64(n)
		case op < 7:
			e.rollAndUpload(p)
		case op < 9:
			mustCompact(t, p)
			end := compactedEnd(p)
			for off, r := range model {
				if off < end && r.reached.IsZero() {
					r.reached = e.clock
				}
			}
		case op < 10:
			e.clock = e.clock.Add(time.Duration(rng.IntN(700)) * time.Millisecond)
			if rng.IntN(4) == 0 {
				e.reopen()
				p = mustPartition(t, e.m, "m", 0)
			}
		}
		checkCompactionModel(t, step, p, model, e.clock, retention)
	}
}

// compactedEnd is the offset after the partition's compacted prefix.
func compactedEnd(p *Partition) int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	end := int64(0)
	for _, s := range p.segs {
		if !s.compacted {
			break
		}
		end = s.next
	}
	return end
}

func checkCompactionModel(t *testing.T, step int, p *Partition, model map[int64]*modelRecord, now time.Time, retention time.Duration) {
	t.Helper()
	end := compactedEnd(p)
	got := map[int64]bool{}
	for _, r := range readCompacted(t, p) {
		m, ok := model[r.Offset]
		if !ok || string(r.Key) != m.key || (r.Value == nil) != m.tomb || (!m.tomb && string(r.Value) != m.value) || r.Timestamp != m.ts {
			t.Fatalf("step %d: offset %d reads %s=%q@%d, appended %+v", step, r.Offset, r.Key, r.Value, r.Timestamp, m)
		}
		got[r.Offset] = true
	}
	latest := map[string]int64{}
	latestBelow := map[string]int64{}
	for off, m := range model {
		if o, ok := latest[m.key]; !ok || off > o {
			latest[m.key] = off
		}
		if o, ok := latestBelow[m.key]; off < end && (!ok || off > o) {
			latestBelow[m.key] = off
		}
	}
	for off, m := range model {
		switch {
		case off >= end && !got[off]:
			t.Fatalf("step %d: offset %d above the compacted range (%d) is gone", step, off, end)
		case latest[m.key] == off && !got[off]:
			mayGo := m.tomb && !m.reached.IsZero() && now.Sub(m.reached) > retention
			if !mayGo {
				t.Fatalf("step %d: key %s lost its latest record at %d (tombstone %v, reached %v, now %v)", step, m.key, off, m.tomb, m.reached, now)
			}
		case off < end && got[off] && latestBelow[m.key] != off:
			t.Fatalf("step %d: offset %d of key %s kept although %d replaced it in the compacted range", step, off, m.key, latestBelow[m.key])
		}
	}
}
