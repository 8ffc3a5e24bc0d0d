package log

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/streamhouse/streamhouse/meta"
	"github.com/streamhouse/streamhouse/objstore"
)

// benchBatch is an uncompressed batch of n records of size bytes each.
func benchBatch(b testing.TB, n, size int) []byte {
	recs := make([]Record, n)
	for i := range recs {
		recs[i] = Record{Key: []byte("key"), Value: bytes.Repeat([]byte{byte(i)}, size), Timestamp: 1_700_000_000_000}
	}
	batch, err := EncodeBatch(recs, CodecNone, 1_700_000_000_000)
	if err != nil {
		b.Fatal(err)
	}
	return batch
}

func benchManager(b *testing.B, objs objstore.Store, cacheBytes int64) *Manager {
	return benchManagerScope(b, objs, cacheBytes, "")
}

func benchManagerScope(b *testing.B, objs objstore.Store, cacheBytes int64, scope SyncScope) *Manager {
	dir := b.TempDir()
	db, err := meta.OpenSQLite(context.Background(), filepath.Join(dir, "meta.db"))
	if err != nil {
		b.Fatal(err)
	}
	m, err := Open(context.Background(), Config{
		Dir: filepath.Join(dir, "segments"), Objects: objs, Meta: db, CacheBytes: cacheBytes,
		Logger: slog.New(slog.DiscardHandler), SyncScope: scope,
	})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { m.Close(); db.Close() })
	return m
}

var benchSizes = []struct {
	name          string
	records, size int
}{
	{"100B", 100, 100},
	{"1KiB", 100, 1024},
}

// BenchmarkAppendVsRawFsync measures, in one run and on one disk, a synced
// Append (acks=all: validate, assign offsets, write, fsync) and a plain Go
// loop that writes the same batch bytes and fsyncs. "append/raw" is the
// ratio of their throughputs (1.0 = no overhead over the disk).
func BenchmarkAppendVsRawFsync(b *testing.B) {
	for _, sz := range benchSizes {
		b.Run(sz.name, func(b *testing.B) {
			batch := benchBatch(b, sz.records, sz.size)
			m := benchManager(b, objstore.NewMem(), DefaultCacheBytes)
			if _, err := m.CreateTopic(context.Background(), "bench", 1, nil); err != nil {
				b.Fatal(err)
			}
			p, _ := m.Partition("bench", 0)
			raw, err := os.Create(filepath.Join(b.TempDir(), "raw.log"))
			if err != nil {
				b.Fatal(err)
			}
			defer raw.Close()
			buf := make([]byte, len(batch))
			b.SetBytes(int64(len(batch)))
			b.ResetTimer()

			// Interleave the two so that drift in the disk's speed during
			// the run hits both equally.
			var rawDur, appendDur time.Duration
			for i := 0; i < b.N; i++ {
				copy(buf, batch)
				start := time.Now()
				if _, err := raw.Write(buf); err != nil {
					b.Fatal(err)
				}
				if err := raw.Sync(); err != nil {
					b.Fatal(err)
				}
				rawDur += time.Since(start)
				copy(buf, batch)
				start = time.Now()
				if _, err := p.Append(context.Background(), buf, AppendOptions{Sync: true}); err != nil {
					b.Fatal(err)
				}
				appendDur += time.Since(start)
			}
			b.ReportMetric(float64(rawDur)/float64(appendDur), "append/raw")
			b.ReportMetric(float64(appendDur.Nanoseconds())/float64(b.N), "append-ns/op")
			b.ReportMetric(float64(rawDur.Nanoseconds())/float64(b.N), "raw-ns/op")
		})
	}
}

// BenchmarkSyncScope is one acks=all produce request to 8 partitions: a
// ~90 KB batch appended to each, then every append made durable, per
// SyncScope. Besides time per request it reports the process CPU per
// request (cpu-us/op, user + system from getrusage): the syncs' cost is
// mostly CPU in the kernel, which wall time hides behind the disk.
func BenchmarkSyncScope(b *testing.B) {
	batch := benchBatch(b, 900, 100)
	for _, scope := range []SyncScope{SyncFile, SyncFilesystem} {
		b.Run(string(scope), func(b *testing.B) {
			m := benchManagerScope(b, objstore.NewMem(), DefaultCacheBytes, scope)
			if scope == SyncFilesystem && m.fss == nil {
				b.Skip("skipped: no syncfs that reports writeback errors here (Linux 5.8+)")
			}
			if _, err := m.CreateTopic(context.Background(), "bench", 8, nil); err != nil {
				b.Fatal(err)
			}
			parts := make([]*Partition, 8)
			for i := range parts {
				parts[i], _ = m.Partition("bench", int32(i))
			}
			bufs := make([][]byte, 8)
			for i := range bufs {
				bufs[i] = make([]byte, len(batch))
			}
			waits := make([]func() error, 8)
			b.SetBytes(int64(8 * len(batch)))
			cpu0 := processCPU()
			b.ResetTimer()
			for b.Loop() {
				for i, p := range parts {
					copy(bufs[i], batch)
					res, err := p.Append(context.Background(), bufs[i], AppendOptions{Sync: true, DeferSync: true})
					if err != nil {
						b.Fatal(err)
					}
					waits[i] = res.Durable
				}
				m.AwaitDurable(waits, func(i int, err error) { b.Fatal(err) })
			}
			b.ReportMetric(float64((processCPU()-cpu0).Microseconds())/float64(b.N), "cpu-us/op")
		})
	}
}

// processCPU is this process's user + system CPU time.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkAppendParallel shows group commit: concurrent synced appends
// share fsyncs.
func BenchmarkAppendParallel(b *testing.B) {
	batch := benchBatch(b, 100, 1024)
	m := benchManager(b, objstore.NewMem(), DefaultCacheBytes)
	if _, err := m.CreateTopic(context.Background(), "bench", 1, nil); err != nil {
		b.Fatal(err)
	}
	p, _ := m.Partition("bench", 0)
	b.SetBytes(int64(len(batch)))
	b.SetParallelism(8)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		buf := make([]byte, len(batch))
		for pb.Next() {
			copy(buf, batch)
			if _, err := p.Append(context.Background(), buf, AppendOptions{Sync: true}); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// benchSealedLog fills a partition with 1 KiB records in 1 MiB segments,
// all uploaded, and returns it.
func benchSealedLog(b *testing.B, objs objstore.Store, cacheBytes int64) (*Manager, *Partition, int64) {
	m := benchManager(b, objs, cacheBytes)
	if _, err := m.CreateTopic(context.Background(), "bench", 1, map[string]string{ConfigSegmentBytes: "1048576"}); err != nil {
		b.Fatal(err)
	}
	p, _ := m.Partition("bench", 0)
	batch := benchBatch(b, 100, 1024)
	buf := make([]byte, len(batch))
	for i := 0; i < 200; i++ { // ~20 MiB
		copy(buf, batch)
		if _, err := p.Append(context.Background(), buf, AppendOptions{}); err != nil {
			b.Fatal(err)
		}
	}
	if err := p.Roll(); err != nil {
		b.Fatal(err)
	}
	deadline := time.Now().Add(time.Minute)
	for m.pendingUploads() > 0 || !allRemote(p) {
		if time.Now().After(deadline) {
			b.Fatal("uploads did not finish")
		}
		time.Sleep(time.Millisecond)
	}
	_, hwm := p.Offsets()
	return m, p, hwm
}

func allRemote(p *Partition) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, s := range p.segs[:len(p.segs)-1] {
		if !s.remote {
			return false
		}
	}
	return true
}

// readSequential reads the whole log once in 1 MiB fetches; it returns bytes read.
func readSequential(b *testing.B, p *Partition, hwm int64) int64 {
	var n int64
	for off := int64(0); off < hwm; {
		res, err := p.Read(context.Background(), off, 1<<20)
		if err != nil {
			b.Fatal(err)
		}
		var last BatchHeader
		for rest := res.Batches; len(rest) > 0; {
			h, err := ParseBatchHeader(rest)
			if err != nil {
				b.Fatal(err)
			}
			last, rest = h, rest[h.Size():]
		}
		n += int64(len(res.Batches))
		off = last.NextOffset()
	}
	return n
}

// BenchmarkReadCached reads sealed segments that sit in the cache.
func BenchmarkReadCached(b *testing.B) {
	_, p, hwm := benchSealedLog(b, objstore.NewMem(), 1<<30)
	readSequential(b, p, hwm) // warm the cache
	b.ResetTimer()
	var n int64
	for i := 0; i < b.N; i++ {
		n = readSequential(b, p, hwm)
	}
	b.SetBytes(n)
	b.ReportMetric(float64(hwm)*float64(b.N)/b.Elapsed().Seconds(), "records/s")
}

// BenchmarkReadObjectStore reads sealed segments from a local-directory
// object store with a cache too small to keep any, so every segment is
// fetched from the store.
func BenchmarkReadObjectStore(b *testing.B) {
	objs, err := objstore.NewLocal(filepath.Join(b.TempDir(), "objects"))
	if err != nil {
		b.Fatal(err)
	}
	_, p, hwm := benchSealedLog(b, objs, 1)
	b.ResetTimer()
	var n int64
	for i := 0; i < b.N; i++ {
		n = readSequential(b, p, hwm)
	}
	b.SetBytes(n)
	b.ReportMetric(float64(hwm)*float64(b.N)/b.Elapsed().Seconds(), "records/s")
}
