package log

import (
	"context"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"math"
	"os"
	"path/filepath"
	"testing"
)

// idemBatch builds a batch of n records from producer pid at epoch and
// base sequence seq.
func idemBatch(t testing.TB, pid int64, epoch int16, seq int32, n int) []byte {
	t.Helper()
	b := testBatch(t, int(seq), n, CodecNone)
	be := binary.BigEndian
	be.PutUint64(b[offProducerID:], uint64(pid))
	be.PutUint16(b[offProducerEpoch:], uint16(epoch))
	be.PutUint32(b[offBaseSequence:], uint32(seq))
	be.PutUint32(b[offCRC:], crc32.Checksum(b[offAttributes:], castagnoli))
	return b
}

type idemStep struct {
	pid      int64
	epoch    int16
	seq      int32
	n        int
	wantBase int64 // offset the batch must land at (or its original's)
	wantDup  bool
	wantErr  error
}

func runIdemSteps(t *testing.T, p *Partition, steps []idemStep) {
	t.Helper()
	for i, s := range steps {
		_, hwmBefore := p.Offsets()
		res, err := p.Append(context.Background(), idemBatch(t, s.pid, s.epoch, s.seq, s.n), AppendOptions{})
		if s.wantErr != nil {
			if !errors.Is(err, s.wantErr) {
				t.Fatalf("step %d: err %v, want %v", i, err, s.wantErr)
			}
			if _, hwm := p.Offsets(); hwm != hwmBefore {
				t.Fatalf("step %d: refused append moved the high watermark %d -> %d", i, hwmBefore, hwm)
			}
			continue
		}
		if err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
		if res.Duplicate != s.wantDup || res.BaseOffset != s.wantBase || res.LastOffset != s.wantBase+int64(s.n)-1 {
			t.Fatalf("step %d: got %+v, want base %d dup %v", i, res, s.wantBase, s.wantDup)
		}
		if _, hwm := p.Offsets(); s.wantDup && hwm != hwmBefore {
			t.Fatalf("step %d: duplicate was written (hwm %d -> %d)", i, hwmBefore, hwm)
		}
	}
}

func TestProducerSequenceRules(t *testing.T) {
	tests := []struct {
		name  string
		steps []idemStep
	}{
		{"in order", []idemStep{
			{pid: 1, seq: 0, n: 3, wantBase: 0}, {pid: 1, seq: 3, n: 2, wantBase: 3}, {pid: 1, seq: 5, n: 1, wantBase: 5},
		}},
		{"retry of last batch", []idemStep{
			{pid: 1, seq: 0, n: 3, wantBase: 0}, {pid: 1, seq: 0, n: 3, wantBase: 0, wantDup: true},
			{pid: 1, seq: 3, n: 1, wantBase: 3},
		}},
		{"retry of fifth-last batch", []idemStep{
			{pid: 1, seq: 0, n: 1, wantBase: 0}, {pid: 1, seq: 1, n: 1, wantBase: 1}, {pid: 1, seq: 2, n: 1, wantBase: 2},
			{pid: 1, seq: 3, n: 1, wantBase: 3}, {pid: 1, seq: 4, n: 1, wantBase: 4},
			{pid: 1, seq: 0, n: 1, wantBase: 0, wantDup: true},
		}},
		{"sixth-last batch is forgotten", []idemStep{
			{pid: 1, seq: 0, n: 1, wantBase: 0}, {pid: 1, seq: 1, n: 1, wantBase: 1}, {pid: 1, seq: 2, n: 1, wantBase: 2},
			{pid: 1, seq: 3, n: 1, wantBase: 3}, {pid: 1, seq: 4, n: 1, wantBase: 4}, {pid: 1, seq: 5, n: 1, wantBase: 5},
			{pid: 1, seq: 0, n: 1, wantErr: ErrOutOfOrderSequence},
		}},
		{"gap", []idemStep{
			{pid: 1, seq: 0, n: 2, wantBase: 0}, {pid: 1, seq: 3, n: 1, wantErr: ErrOutOfOrderSequence},
			{pid: 1, seq: 2, n: 1, wantBase: 2},
		}},
		{"overlap that is not a retry", []idemStep{
			{pid: 1, seq: 0, n: 3, wantBase: 0}, {pid: 1, seq: 1, n: 3, wantErr: ErrOutOfOrderSequence},
		}},
		{"unknown producer starts anywhere", []idemStep{
			{pid: 7, seq: 42, n: 1, wantBase: 0}, {pid: 7, seq: 43, n: 1, wantBase: 1},
		}},
		{"fenced epoch", []idemStep{
			{pid: 1, epoch: 2, seq: 0, n: 1, wantBase: 0}, {pid: 1, epoch: 1, seq: 1, n: 1, wantErr: ErrInvalidProducerEpoch},
		}},
		{"new epoch restarts at zero", []idemStep{
			{pid: 1, seq: 0, n: 4, wantBase: 0}, {pid: 1, epoch: 1, seq: 4, n: 1, wantErr: ErrOutOfOrderSequence},
			{pid: 1, epoch: 1, seq: 0, n: 1, wantBase: 4}, {pid: 1, epoch: 0, seq: 4, n: 1, wantErr: ErrInvalidProducerEpoch},
		}},
		{"producers are independent", []idemStep{
			{pid: 1, seq: 0, n: 1, wantBase: 0}, {pid: 2, seq: 0, n: 1, wantBase: 1}, {pid: 1, seq: 1, n: 1, wantBase: 2},
			{pid: 2, seq: 0, n: 1, wantBase: 1, wantDup: true},
		}},
		{"sequence wraps", []idemStep{
			{pid: 1, seq: math.MaxInt32 - 1, n: 2, wantBase: 0}, {pid: 1, seq: 0, n: 1, wantBase: 2},
		}},
		{"negative sequence", []idemStep{{pid: 1, seq: -5, n: 1, wantErr: ErrInvalidBatch}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newTestEnv(t)
			m := e.open()
			mustCreate(t, m, "t", 1, nil)
			runIdemSteps(t, mustPartition(t, m, "t", 0), tc.steps)
		})
	}
}

func TestProducerPlainBatchesBypassState(t *testing.T) {
	e := newTestEnv(t)
	m := e.open()
	mustCreate(t, m, "t", 1, nil)
	p := mustPartition(t, m, "t", 0)
	appendN(t, p, 0, 2, 2, false) // producer ID -1: never checked
	runIdemSteps(t, p, []idemStep{{pid: 3, seq: 0, n: 1, wantBase: 4}, {pid: 3, seq: 0, n: 1, wantBase: 4, wantDup: true}})
	appendN(t, p, 5, 1, 1, false)
}

func TestProducerStateSurvivesReopen(t *testing.T) {
	tests := []struct {
		name string
		// between runs after the first batches, before reopening
		between func(t *testing.T, e *testEnv, p *Partition)
	}{
		{"active segment only", func(*testing.T, *testEnv, *Partition) {}},
		{"rolled and appended (snapshot)", func(t *testing.T, _ *testEnv, p *Partition) {
			if err := p.Roll(); err != nil {
				t.Fatal(err)
			}
			runIdemSteps(t, p, []idemStep{{pid: 9, seq: 0, n: 1, wantBase: 5}})
		}},
		{"rolled, nothing after (scan sealed segment)", func(t *testing.T, _ *testEnv, p *Partition) {
			if err := p.Roll(); err != nil {
				t.Fatal(err)
			}
		}},
		{"snapshot lost", func(t *testing.T, _ *testEnv, p *Partition) {
			runIdemSteps(t, p, []idemStep{{pid: 9, seq: 0, n: 1, wantBase: 5}})
			offs, err := producerSnapshots(osFS{}, p.dir)
			if err != nil || len(offs) == 0 {
				t.Fatalf("snapshots %v, %v", offs, err)
			}
			for _, o := range offs {
				os.Remove(producerSnapPath(p.dir, o))
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newTestEnv(t)
			m := e.open()
			mustCreate(t, m, "t", 1, nil)
			p := mustPartition(t, m, "t", 0)
			runIdemSteps(t, p, []idemStep{
				{pid: 1, seq: 0, n: 2, wantBase: 0}, {pid: 1, seq: 2, n: 2, wantBase: 2}, {pid: 2, epoch: 3, seq: 0, n: 1, wantBase: 4},
			})
			tc.between(t, e, p)
			m = e.reopen()
			p = mustPartition(t, m, "t", 0)
			_, hwm := p.Offsets()
			runIdemSteps(t, p, []idemStep{
				{pid: 1, seq: 2, n: 2, wantBase: 2, wantDup: true},
				{pid: 1, seq: 0, n: 2, wantBase: 0, wantDup: true},
				{pid: 1, seq: 5, n: 1, wantErr: ErrOutOfOrderSequence},
				{pid: 2, epoch: 2, seq: 1, n: 1, wantErr: ErrInvalidProducerEpoch},
				{pid: 1, seq: 4, n: 1, wantBase: hwm},
			})
		})
	}
}

func TestProducerStateAfterUpload(t *testing.T) {
	e := newTestEnv(t)
	m := e.open()
	mustCreate(t, m, "t", 1, nil)
	p := mustPartition(t, m, "t", 0)
	runIdemSteps(t, p, []idemStep{{pid: 1, seq: 0, n: 2, wantBase: 0}})
	if err := p.Roll(); err != nil {
		t.Fatal(err)
	}
	// Remove every snapshot: the rebuild must read the uploaded segment.
	offs, _ := producerSnapshots(osFS{}, p.dir)
	for _, o := range offs {
		os.Remove(producerSnapPath(p.dir, o))
	}
	waitFor(t, "upload", func() bool { return m.pendingUploads() == 0 && allRemote(p) })
	m = e.reopen()
	p = mustPartition(t, m, "t", 0)
	// Without a snapshot only the active segment is scanned: pid 1 is
	// unknown and may continue anywhere, as in Kafka after retention.
	runIdemSteps(t, p, []idemStep{{pid: 1, seq: 2, n: 1, wantBase: 2}})
}

func TestProducerSnapshotAboveHighWatermarkRemoved(t *testing.T) {
	e := newTestEnv(t)
	m := e.open()
	mustCreate(t, m, "t", 1, nil)
	p := mustPartition(t, m, "t", 0)
	runIdemSteps(t, p, []idemStep{{pid: 1, seq: 0, n: 1, wantBase: 0}})
	bogus := producerSnapPath(p.dir, 1000)
	if err := os.WriteFile(bogus, encodeProducerSnapshot(1000, nil), 0o644); err != nil {
		t.Fatal(err)
	}
	m = e.reopen()
	p = mustPartition(t, m, "t", 0)
	runIdemSteps(t, p, []idemStep{{pid: 1, seq: 0, n: 1, wantBase: 0, wantDup: true}})
	if _, err := os.Stat(bogus); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("snapshot above the high watermark still there: %v", err)
	}
}

func TestProducerSnapshotRoundTrip(t *testing.T) {
	in := map[int64]*producerEntry{
		1: {epoch: 2, lastSeen: 99, batches: []producerBatch{{0, 1, 10, 11, -1}, {2, 2, 12, 12, 5}}},
		7: {epoch: 0, lastSeen: 1, batches: []producerBatch{{5, 9, 0, 4, -1}}},
	}
	b := encodeProducerSnapshot(42, in)
	st, err := decodeProducerSnapshot(b)
	if err != nil {
		t.Fatal(err)
	}
	if st.snapOffset != 42 || len(st.producers) != 2 {
		t.Fatalf("decoded %+v", st)
	}
	for id, e := range in {
		got := st.producers[id]
		if got == nil || got.epoch != e.epoch || got.lastSeen != e.lastSeen || len(got.batches) != len(e.batches) {
			t.Fatalf("producer %d: %+v", id, got)
		}
		for i := range e.batches {
			if got.batches[i] != e.batches[i] {
				t.Fatalf("producer %d batch %d: %+v", id, i, got.batches[i])
			}
		}
	}
	if string(encodeProducerSnapshot(42, st.producers)) != string(b) {
		t.Fatal("re-encoding differs")
	}
	for _, bad := range [][]byte{nil, b[:len(b)-1], append(append([]byte(nil), b...), 0)} {
		if _, err := decodeProducerSnapshot(bad); err == nil {
			t.Fatalf("decoded %d bad bytes", len(bad))
		}
	}
}

func FuzzDecodeProducerSnapshot(f *testing.F) {
	valid := encodeProducerSnapshot(3, map[int64]*producerEntry{
		1: {epoch: 1, batches: []producerBatch{{0, 4, 0, 4, -1}}},
	})
	f.Add([]byte{})
	f.Add(valid[:len(valid)/2])
	f.Add(valid)
	f.Add(append(append([]byte(nil), valid...), 1, 2, 3))
	f.Fuzz(func(t *testing.T, b []byte) {
		st, err := decodeProducerSnapshot(b)
		if err != nil {
			return
		}
		// Whatever decodes must re-encode to the same bytes.
		if got := encodeProducerSnapshot(st.snapOffset, st.producers); string(got) != string(b) {
			t.Fatalf("round trip differs")
		}
	})
}

func TestProducerSnapshotsPruned(t *testing.T) {
	dir := t.TempDir()
	for _, off := range []int64{5, 10, 20} {
		if err := writeProducerSnapshot(osFS{}, dir, off, nil); err != nil {
			t.Fatal(err)
		}
	}
	offs, err := producerSnapshots(osFS{}, dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(offs) != 2 || offs[0] != 20 || offs[1] != 10 {
		t.Fatalf("kept %v", offs)
	}
	if ents, _ := filepath.Glob(filepath.Join(dir, "*.tmp")); len(ents) != 0 {
		t.Fatalf("temp files left: %v", ents)
	}
}
