package log

import (
	"bytes"
	"context"
	"testing"
)

// TestReadRegion checks that a region holds exactly the bytes Read
// returns, falls back to Read when the rest of the segment is too long or
// too short for one, and stays readable after the segment's own file is
// closed and removed (roll and upload).
func TestReadRegion(t *testing.T) {
	ctx := context.Background()
	e := newTestEnv(t)
	m := e.open()
	mustCreate(t, m, "t", 1, nil)
	p := mustPartition(t, m, "t", 0)
	appendN(t, p, 0, 20, 10, true)
	_, hwm := p.Offsets()

	for _, tc := range []struct {
		name         string
		offset       int64
		max, min     int
		wantRegion   bool
		wantFallback bool
	}{
		{"whole rest", 0, 1 << 20, 1, true, false},
		{"from the middle of a batch", 55, 1 << 20, 1, true, false},
		{"first batch over maxBytes", 0, 100, 1, true, false},
		{"cut at a batch end", 33, 300, 1, true, false},
		{"rest under minLen", 190, 1 << 20, 1 << 20, false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			want, err := p.Read(ctx, tc.offset, tc.max)
			if err != nil {
				t.Fatal(err)
			}
			res, err := p.ReadRegion(ctx, tc.offset, tc.max, tc.min)
			if err != nil {
				t.Fatal(err)
			}
			defer res.Release()
			if (res.Region != nil) != tc.wantRegion {
				t.Fatalf("region %v, want %v", res.Region != nil, tc.wantRegion)
			}
			if res.HighWatermark != hwm {
				t.Fatalf("high watermark %d, want %d", res.HighWatermark, hwm)
			}
			if tc.wantFallback {
				if !bytes.Equal(res.Batches, want.Batches) {
					t.Fatal("fallback differs from Read")
				}
				return
			}
			got := make([]byte, res.Region.Len)
			if _, err := res.Region.File.ReadAt(got, res.Region.Offset); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want.Batches) {
				t.Fatalf("region of %d bytes differs from Read's %d", len(got), len(want.Batches))
			}
			if end := batchesNext(want.Batches); res.Region.NextOffset != end {
				t.Fatalf("NextOffset %d, want %d", res.Region.NextOffset, end)
			}
		})
	}

	// Too many batches to walk to a cut: Read's bytes instead.
	appendN(t, p, 200, 180, 1, false)
	if full, _ := p.Read(ctx, 0, 1<<20); len(full.Batches) > 0 {
		maxB := len(full.Batches) * 3 / 4
		res, err := p.ReadRegion(ctx, 0, maxB, 1)
		want, _ := p.Read(ctx, 0, maxB)
		if err != nil || res.Region != nil || !bytes.Equal(res.Batches, want.Batches) {
			t.Fatalf("long walk: region %v, err %v", res.Region, err)
		}
	}

	// A region outlives its segment's local file.
	res, err := p.ReadRegion(ctx, 150, 1<<20, 1)
	if err != nil || res.Region == nil {
		t.Fatalf("region %v err %v", res.Region, err)
	}
	want, _ := p.Read(ctx, 150, 1<<20)
	wantBytes := bytes.Clone(want.Batches)
	if err := p.Roll(); err != nil {
		t.Fatal(err)
	}
	waitUploaded(t, m, p)
	if local, _ := localSegmentFiles(osFS{}, p.dir); len(local) != 1 {
		t.Fatalf("local files after upload: %v", local)
	}
	got := make([]byte, res.Region.Len)
	if _, err := res.Region.File.ReadAt(got, res.Region.Offset); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, wantBytes) {
		t.Fatal("region changed after roll and upload")
	}
	res.Release()
	res.Release()
	// Now remote: ReadRegion answers from the cache like Read.
	res, err = p.ReadRegion(ctx, 150, 1<<20, 1)
	if err != nil || res.Region != nil || !bytes.Equal(res.Batches, wantBytes) {
		t.Fatalf("remote read: region %v, %d bytes, err %v", res.Region, len(res.Batches), err)
	}
}

// batchesNext returns the offset after the last of whole batches b.
func batchesNext(b []byte) int64 {
	var next int64
	for len(b) > 0 {
		h, err := ParseBatchHeader(b)
		if err != nil {
			return -1
		}
		next = h.NextOffset()
		b = b[h.Size():]
	}
	return next
}

// TestReadRegionCap checks that at most MaxOpenRegions regions are open at
// once: past it ReadRegion copies as Read does, and releasing a region
// makes room again.
func TestReadRegionCap(t *testing.T) {
	ctx := context.Background()
	e := newTestEnv(t)
	m := e.open()
	mustCreate(t, m, "t", 1, nil)
	p := mustPartition(t, m, "t", 0)
	appendN(t, p, 0, 5, 10, true)
	held := make([]ReadResult, 0, MaxOpenRegions)
	defer func() {
		for i := range held {
			held[i].Release()
		}
	}()
	for range MaxOpenRegions {
		res, err := p.ReadRegion(ctx, 0, 1<<20, 1)
		if err != nil || res.Region == nil {
			t.Fatalf("region %d of %d: %v %v", len(held)+1, MaxOpenRegions, res.Region, err)
		}
		held = append(held, res)
	}
	want, _ := p.Read(ctx, 0, 1<<20)
	over, err := p.ReadRegion(ctx, 0, 1<<20, 1)
	if err != nil || over.Region != nil || !bytes.Equal(over.Batches, want.Batches) {
		t.Fatalf("past the cap: region %v, %d bytes, err %v; want Read's %d bytes", over.Region, len(over.Batches), err, len(want.Batches))
	}
	over.Release()
	held[0].Release()
	held = held[1:]
	again, err := p.ReadRegion(ctx, 0, 1<<20, 1)
	if err != nil || again.Region == nil {
		t.Fatalf("after a release: region %v err %v", again.Region, err)
	}
	again.Release()
	if n := m.openRegions.Load(); n != int64(len(held)) {
		t.Fatalf("open regions %d, want %d", n, len(held))
	}
}
