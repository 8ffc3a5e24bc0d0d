package log

import (
	"bytes"
	"context"
	"errors"
	"testing"
)

// windowedLog returns a partition of the given number of 5-record batches whose
// uploaded 4 KiB segments are read in windows: the cache is 16 KiB.
func windowedLog(t *testing.T, batches int) (*testEnv, *Manager, *Partition) {
	t.Helper()
	e := newTestEnv(t)
	e.cacheBytes = 16 << 10
	m := e.open()
	mustCreate(t, m, "t", 1, map[string]string{ConfigSegmentBytes: "4096"})
	p := mustPartition(t, m, "t", 0)
	appendN(t, p, 0, batches, 5, true)
	waitUploaded(t, m, p)
	return e, m, p
}

// remoteSegments returns p's segments that live in the object store.
func remoteSegments(p *Partition) []*segment {
	p.mu.Lock()
	defer p.mu.Unlock()
	var remote []*segment
	for _, s := range p.segs {
		if s.remote {
			remote = append(remote, s)
		}
	}
	return remote
}

// wholeSegment reads uploaded segment s from the object store and opens it
// whole: the reference the windowed reads are checked against.
func wholeSegment(t *testing.T, e *testEnv, s *segment) *sealedSegment {
	t.Helper()
	obj, err := e.objects.Get(context.Background(), s.key)
	if err != nil {
		t.Fatal(err)
	}
	whole, err := openSealed(s.key, obj)
	if err != nil {
		t.Fatal(err)
	}
	return whole
}

// TestReadWindowed reads a log whose sealed segments are large next to
// the cache, so reads fetch windows of the objects instead of loading them
// whole, and checks every answer against the whole-segment read of the
// same object, for every offset and several maxBytes; the cache then holds
// only the segments' small tails.
func TestReadWindowed(t *testing.T) {
	ctx := context.Background()
	e, m, p := windowedLog(t, 150)
	remote := remoteSegments(p)
	if len(remote) < 3 {
		t.Fatalf("%d uploaded segments, want at least 3", len(remote))
	}
	for _, s := range remote {
		if !m.cache.windowed(s.size) {
			t.Fatalf("segment of %d bytes not windowed with a %d-byte cache", s.size, e.cacheBytes)
		}
		whole := wholeSegment(t, e, s)
		for off := s.base; off < s.next; off++ {
			for _, maxBytes := range []int{1, 300, 1000, 1 << 20} {
				want, err := whole.read(off, maxBytes)
				if err != nil {
					t.Fatal(err)
				}
				got, err := p.Read(ctx, off, maxBytes)
				if err != nil {
					t.Fatalf("read %d max %d: %v", off, maxBytes, err)
				}
				if !bytes.Equal(got.Batches, want) {
					t.Fatalf("offset %d max %d: windowed read of %d bytes differs from the whole segment's %d",
						off, maxBytes, len(got.Batches), len(want))
				}
			}
		}
	}
	if _, ok := m.cache.cached(remote[0].key); ok {
		t.Fatal("a windowed segment was cached whole")
	}
	if n := m.cache.bytes(); n == 0 || n > e.cacheBytes {
		t.Fatalf("cache holds %d bytes, want the tails: more than 0, at most %d", n, e.cacheBytes)
	}
}

// TestReadWindowedCorruption flips a byte inside a batch of an uploaded
// object: a windowed read covering it fails with a CorruptionError instead
// of serving it.
func TestReadWindowedCorruption(t *testing.T) {
	ctx := context.Background()
	e, _, p := windowedLog(t, 40)
	p.mu.Lock()
	s := p.segs[0]
	p.mu.Unlock()
	obj, err := e.objects.Get(ctx, s.key)
	if err != nil {
		t.Fatal(err)
	}
	bad := bytes.Clone(obj)
	bad[100] ^= 0xff // inside the first batch's records
	if err := e.objects.Put(ctx, s.key, bytes.NewReader(bad), int64(len(bad))); err != nil {
		t.Fatal(err)
	}
	_, err = p.Read(ctx, s.base, 1<<20)
	var ce *CorruptionError
	if !errors.As(err, &ce) || !errors.Is(err, ErrCorruptSegment) {
		t.Fatalf("read of a damaged window: %v, want a CorruptionError", err)
	}
}

// TestReadWindowedBigBatches reads batches larger than a window: the
// batch holding the offset starts past the first window, or runs past it
// (KIP-74: it is still returned whole).
func TestReadWindowedBigBatches(t *testing.T) {
	ctx := context.Background()
	e := newTestEnv(t)
	e.cacheBytes = 1 << 20
	m := e.open()
	mustCreate(t, m, "t", 1, map[string]string{ConfigSegmentBytes: "5000000", ConfigMaxMessageBytes: "4000000"})
	p := mustPartition(t, m, "t", 0)
	big := bytes.Repeat([]byte("0123456789abcdef"), (1536<<10)/16) // 1.5 MiB
	for i := range 8 {
		b, err := EncodeBatch([]Record{{Value: big, Timestamp: 1_700_000_000_000 + int64(i)}}, CodecNone, 1_700_000_000_000)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := p.Append(ctx, b, AppendOptions{Sync: true}); err != nil {
			t.Fatal(err)
		}
	}
	waitUploaded(t, m, p)
	p.mu.Lock()
	s := p.segs[0]
	p.mu.Unlock()
	if !s.remote || s.next-s.base < 3 {
		t.Fatalf("first segment remote %v with %d batches; want uploaded, at least 3", s.remote, s.next-s.base)
	}
	whole := wholeSegment(t, e, s)
	for off := s.base; off < s.next; off++ {
		for _, maxBytes := range []int{1, 2 << 20, 8 << 20} {
			want, _ := whole.read(off, maxBytes)
			got, err := p.Read(ctx, off, maxBytes)
			if err != nil {
				t.Fatalf("read %d max %d: %v", off, maxBytes, err)
			}
			if !bytes.Equal(got.Batches, want) {
				t.Fatalf("offset %d max %d: %d bytes, want %d", off, maxBytes, len(got.Batches), len(want))
			}
		}
		// Record i is stamped 1_700_000_000_000 + i: each lookup reads a
		// batch larger than a window.
		at, ts, found, err := m.offsetForTimeSealed(ctx, s.key, s.size, 1_700_000_000_000+off)
		if err != nil || !found || at != off || ts != 1_700_000_000_000+off {
			t.Fatalf("offsetForTime of record %d: %d %d %v %v", off, at, ts, found, err)
		}
	}
}

// TestReadWindowedBadTail damages a windowed segment's index, and removes
// another's object: reads fail with a CorruptionError and
// ErrSegmentMissing, and serve nothing.
func TestReadWindowedBadTail(t *testing.T) {
	ctx := context.Background()
	e, _, p := windowedLog(t, 100)
	p.mu.Lock()
	first, second := p.segs[0], p.segs[1]
	p.mu.Unlock()
	obj, err := e.objects.Get(ctx, first.key)
	if err != nil {
		t.Fatal(err)
	}
	bad := bytes.Clone(obj)
	bad[len(bad)-footerLen-1] ^= 0xff // last index byte
	if err := e.objects.Put(ctx, first.key, bytes.NewReader(bad), int64(len(bad))); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Read(ctx, first.base, 1<<20); !errors.Is(err, ErrCorruptSegment) {
		t.Fatalf("read with a damaged index: %v, want ErrCorruptSegment", err)
	}
	if err := e.objects.Delete(ctx, second.key); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Read(ctx, second.base, 1<<20); !errors.Is(err, ErrSegmentMissing) {
		t.Fatalf("read of a missing object: %v, want ErrSegmentMissing", err)
	}
}

// TestOffsetForTimestampWindowed looks up timestamps in windowed sealed
// segments: every answer matches the whole segment's, and no segment is
// loaded into the cache whole.
func TestOffsetForTimestampWindowed(t *testing.T) {
	ctx := context.Background()
	e, m, p := windowedLog(t, 150)
	remote := remoteSegments(p)
	for _, s := range remote {
		whole := wholeSegment(t, e, s)
		// testBatch stamps record k with 1_700_000_000_000 + k.
		for k := s.base - 1; k <= s.next; k++ {
			ts := 1_700_000_000_000 + k
			wOff, wTS, wFound, err := whole.offsetForTime(ts)
			if err != nil {
				t.Fatal(err)
			}
			off, at, found, err := m.offsetForTimeSealed(ctx, s.key, s.size, ts)
			if err != nil || found != wFound || off != wOff || at != wTS {
				t.Fatalf("ts %d in segment %d: (%d, %d, %v, %v), want (%d, %d, %v)", ts, s.base, off, at, found, err, wOff, wTS, wFound)
			}
		}
		if _, ok := m.cache.cached(s.key); ok {
			t.Fatalf("segment %d was loaded whole", s.base)
		}
	}
	// Through the partition: the first record at or after a timestamp in
	// the third segment.
	want := remote[2].base + 1
	off, _, found, err := p.OffsetForTimestamp(ctx, 1_700_000_000_000+want)
	if err != nil || !found || off != want {
		t.Fatalf("OffsetForTimestamp: %d %v %v, want %d", off, found, err, want)
	}
}
