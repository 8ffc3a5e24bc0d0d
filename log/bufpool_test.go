package log

import (
	"bytes"
	"context"
	"testing"
)

func TestPoolClass(t *testing.T) {
	for _, tc := range []struct {
		n, class int
	}{
		{0, 0}, {1, 0}, {4096, 0}, {4097, 1}, {8192, 1}, {1 << 20, 8},
		{1<<maxPoolShift - 1, maxPoolShift - minPoolShift}, {1 << maxPoolShift, maxPoolShift - minPoolShift},
		{1<<maxPoolShift + 1, -1},
	} {
		if got := poolClass(tc.n); got != tc.class {
			t.Errorf("poolClass(%d) = %d, want %d", tc.n, got, tc.class)
		}
	}
	var rp readPool
	b, h := rp.get(5000)
	if len(b) != 5000 || cap(*h) != 8192 {
		t.Fatalf("get(5000): len %d cap %d", len(b), cap(*h))
	}
	rp.put(h)
	if b, h := rp.get(1<<maxPoolShift + 1); h != nil || len(b) != 1<<maxPoolShift+1 {
		t.Fatalf("oversized get: handle %v len %d", h, len(b))
	}
}

// TestReadReleaseReuse reads, releases and reads again through buffers
// that still hold the previous read's bytes: every read must expose only
// what it read itself.
func TestReadReleaseReuse(t *testing.T) {
	e := newTestEnv(t)
	m := e.open()
	mustCreate(t, m, "t", 1, nil)
	p := mustPartition(t, m, "t", 0)
	appendN(t, p, 0, 10, 20, true)
	var want [][]byte
	for off := int64(0); off < 200; off += 10 {
		res, err := p.Read(context.Background(), off, 1)
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, bytes.Clone(res.Batches))
		res.Release()
		if res.Batches != nil {
			t.Fatal("Release left Batches set")
		}
	}
	for round := 0; round < 3; round++ {
		for i := len(want) - 1; i >= 0; i-- {
			res, err := p.Read(context.Background(), int64(i*10), 1)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(res.Batches, want[i]) {
				t.Fatalf("round %d: read at %d differs after buffer reuse", round, i*10)
			}
			if cap(res.Batches) != len(res.Batches) {
				t.Fatalf("read exposes %d bytes of spare capacity", cap(res.Batches)-len(res.Batches))
			}
			res.Release()
			res.Release() // idempotent
		}
	}
	checkSequence(t, readAll(t, p, 0), 0, 200)
}
