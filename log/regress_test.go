package log

// Regression tests for the bugs TestRandomCrashSchedules found, reduced
// to fixed schedules.

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestRollDuringFailingFsyncLeavesNoHole: while the flusher's fsync of
// the active segment is failing (its dirty sectors lost), a roll must not
// seal the segment and make later records durable after a hole. After the
// power loss the log is contiguous from its start to its high watermark,
// and the record acknowledged with acks=all before it is there.
func TestRollDuringFailingFsyncLeavesNoHole(t *testing.T) {
	for _, tc := range []struct {
		name        string
		ackedFirst  bool // the first record is appended with acks=all
		appendAfter bool // an acks=1 append and a second roll follow the first roll
	}{
		{"acked first, append between rolls", true, true},
		{"first segment only", false, false},
	} {
		for seed := uint64(0); seed < 10; seed++ {
			t.Run(tc.name, func(t *testing.T) {
				e := newTestEnv(t)
				fs := newFaultFS(filepath.Join(e.dir, "segments"), seed)
				e.fs = fs
				m, p := openOne(t, e)
				stopBackground(m) // no uploads: keep the sealed segment local
				ctx := context.Background()
				if _, err := p.Append(ctx, testBatch(t, 0, 1, CodecNone), AppendOptions{Sync: tc.ackedFirst}); err != nil {
					t.Fatal(err)
				}
				for i := 0; i < 8; i++ { // acks=1, about 1.2 KB: several sectors
					if _, err := p.Append(ctx, testBatch(t, 1+3*i, 3, CodecNone), AppendOptions{}); err != nil {
						t.Fatal(err)
					}
				}
				gate := make(chan struct{})
				fs.holdFailures(gate)
				fs.setHook(failOnce(opSync, faultEIO, func(p string) bool { return strings.HasSuffix(p, ".log") }))
				done := make(chan error, 1)
				go func() { done <- p.flush() }()
				waitFor(t, "the failing fsync", func() bool { return len(fs.events()) == 1 })
				_ = p.Roll() // may be refused or deferred; it must not seal over the loss
				if tc.appendAfter {
					_, _ = p.Append(ctx, testBatch(t, 25, 1, CodecNone), AppendOptions{})
					_ = p.Roll()
				}
				close(gate)
				if err := <-done; err == nil {
					t.Fatal("the flush whose fsync failed returned nil")
				}
				fs2 := fs.PowerLoss(crashDrop)
				closeWithoutUploads(e, m)
				e.fs = fs2
				m = e.open()
				p = mustPartition(t, m, "t", 0)
				ls, hwm := p.Offsets()
				recs, err := readLog(ctx, p, ls)
				if err != nil {
					t.Fatalf("seed %d: read after the power loss: %v", seed, err)
				}
				for i, r := range recs {
					if r.Offset != ls+int64(i) {
						t.Fatalf("seed %d: offsets %d..%d hold %d records, the %dth at %d: a hole", seed, ls, hwm, len(recs), i, r.Offset)
					}
				}
				if int64(len(recs)) != hwm-ls {
					t.Fatalf("seed %d: %d records between log start %d and high watermark %d", seed, len(recs), ls, hwm)
				}
				if tc.ackedFirst && (len(recs) == 0 || recs[0].Offset != 0) {
					t.Fatalf("seed %d: the record acknowledged with acks=all is gone", seed)
				}
			})
		}
	}
}

// TestEmptyLeftoverOfUploadedSegment: an empty local file named for a
// segment meta records as uploaded (a removal a power loss undid) must not
// displace the uploaded segment.
func TestEmptyLeftoverOfUploadedSegment(t *testing.T) {
	e := newTestEnv(t)
	m, p := openOne(t, e)
	appendN(t, p, 0, 1, 5, true)
	if err := p.Roll(); err != nil {
		t.Fatal(err)
	}
	waitUploaded(t, m, p)
	dir := p.dir
	m = e.reopen()
	if err := os.WriteFile(filepath.Join(dir, segmentFileName(0)), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	m = e.reopen()
	p = mustPartition(t, m, "t", 0)
	checkSequence(t, readAll(t, p, 0), 0, 5)
	if _, err := os.Stat(filepath.Join(dir, segmentFileName(0))); !os.IsNotExist(err) {
		t.Fatalf("the empty leftover is still there: %v", err)
	}
}
