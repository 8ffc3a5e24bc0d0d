package log

import (
	"context"
	"flag"
	"fmt"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/streamhouse/streamhouse/objstore"
)

// Catch-up reads from the object store (read-ahead, readahead.go):
//
//	go test ./log/ -run '^$' -bench CatchUpRead -benchtime 1x -catchup-bytes 1073741824
var (
	catchUpBytes = flag.Int64("catchup-bytes", 256<<20, "bytes of uploaded segments BenchmarkCatchUpRead reads")
	catchUpCache = flag.Int64("catchup-cache", 64<<20, "segment cache size for BenchmarkCatchUpRead")
)

// slowStore adds a fixed latency to every Get and GetRange of the store it
// wraps, as a remote object store's round trip would. The wait ends early
// when ctx does.
type slowStore struct {
	objstore.Store
	delay atomic.Int64 // time.Duration
}

func (s *slowStore) wait(ctx context.Context) error {
	d := time.Duration(s.delay.Load())
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (s *slowStore) Get(ctx context.Context, key string) ([]byte, error) {
	if err := s.wait(ctx); err != nil {
		return nil, err
	}
	return s.Store.Get(ctx, key)
}

func (s *slowStore) GetRange(ctx context.Context, key string, off, n int64) ([]byte, error) {
	if err := s.wait(ctx); err != nil {
		return nil, err
	}
	return s.Store.GetRange(ctx, key, off, n)
}

// clearForTest empties the cache, as a broker that never read these
// segments has it.
func (c *segmentCache) clearForTest() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for c.lru.Len() > 0 {
		c.removeLocked(c.lru.Back())
	}
}

// BenchmarkCatchUpRead reads -catchup-bytes of uploaded segments (1 KiB
// records in batches of 100) from the start through Partition.Read in
// 1 MiB reads, with a -catchup-cache cache emptied first and a local
// directory object store behind a fixed added latency. "windowed" uses
// 64 MiB segments (read in windows, window.go), "whole" 4 MiB segments
// (loaded whole into the cache).
func BenchmarkCatchUpRead(b *testing.B) {
	for _, shape := range []struct {
		name     string
		segBytes int64
	}{{"windowed", 64 << 20}, {"whole", 4 << 20}} {
		b.Run(shape.name, func(b *testing.B) {
			objs, err := objstore.NewLocal(filepath.Join(b.TempDir(), "objects"))
			if err != nil {
				b.Fatal(err)
			}
			slow := &slowStore{Store: objs}
			m, p, hwm := catchUpLog(b, slow, shape.segBytes)
			for _, lat := range []time.Duration{0, 20 * time.Millisecond, 100 * time.Millisecond} {
				b.Run(fmt.Sprintf("latency=%v", lat), func(b *testing.B) {
					slow.delay.Store(int64(lat))
					var n int64
					b.ResetTimer()
					for b.Loop() {
						b.StopTimer()
						m.cache.clearForTest()
						p.resetReadAheadForTest()
						b.StartTimer()
						n = readSequential(b, p, hwm)
					}
					b.SetBytes(n)
				})
			}
		})
	}
}

// catchUpLog fills one partition with -catchup-bytes in segments of
// segBytes, all uploaded and gone from local disk.
func catchUpLog(b *testing.B, objs objstore.Store, segBytes int64) (*Manager, *Partition, int64) {
	m := benchManager(b, objs, *catchUpCache)
	if _, err := m.CreateTopic(context.Background(), "bench", 1, map[string]string{ConfigSegmentBytes: fmt.Sprint(segBytes)}); err != nil {
		b.Fatal(err)
	}
	p, _ := m.Partition("bench", 0)
	batch := benchBatch(b, 100, 1024)
	buf := make([]byte, len(batch))
	for n := int64(0); n < *catchUpBytes; n += int64(len(batch)) {
		copy(buf, batch)
		if _, err := p.Append(context.Background(), buf, AppendOptions{}); err != nil {
			b.Fatal(err)
		}
	}
	if err := p.Roll(); err != nil {
		b.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Minute)
	for m.pendingUploads() > 0 || !allRemote(p) {
		if time.Now().After(deadline) {
			b.Fatal("uploads did not finish")
		}
		time.Sleep(10 * time.Millisecond) // polling, not synchronisation
	}
	_, hwm := p.Offsets()
	return m, p, hwm
}

// resetReadAheadForTest drops the partition's prefetches and forgets its
// reader's position.
func (p *Partition) resetReadAheadForTest() { p.ra.dropAll(p.m.cache) }
