package log

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"path/filepath"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/streamhouse/streamhouse/meta"
	"github.com/streamhouse/streamhouse/objstore"
)

var (
	compactBenchBytes = flag.Int64("compact-bench-bytes", 1<<30, "bytes of records BenchmarkCompaction compacts")
	compactBenchKeys  = flag.Int("compact-bench-keys", 100_000, "distinct keys in BenchmarkCompaction's records")
)

// BenchmarkCompaction compacts one partition holding -compact-bench-bytes
// of 1 KB random records (LZ4 batches of 64) over -compact-bench-keys keys, all
// uploaded to a local-directory object store, and reports input MB/s and
// the peak Go heap during the run (the key map included):
//
//	go test -run '^$' -bench Compaction -benchtime 1x ./log/
func BenchmarkCompaction(b *testing.B) {
	ctx := context.Background()
	dir := b.TempDir()
	objs, err := objstore.NewLocal(filepath.Join(dir, "objects"))
	if err != nil {
		b.Fatal(err)
	}
	db, err := meta.OpenSQLite(ctx, filepath.Join(dir, "meta.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	m, err := Open(ctx, Config{Dir: filepath.Join(dir, "segments"), Objects: objs, Meta: db,
		Logger: slog.New(slog.DiscardHandler), FlushInterval: time.Hour, RetentionInterval: time.Hour,
		Cleaner: CleanerConfig{Disabled: true, DeleteDelay: -1}})
	if err != nil {
		b.Fatal(err)
	}
	defer m.Close()
	if _, err := m.CreateTopic(ctx, "bench", 1, map[string]string{ConfigCleanupPolicy: "compact",
		ConfigMinCleanableDirtyRatio: "0"}); err != nil {
		b.Fatal(err)
	}
	p, err := m.Partition("bench", 0)
	if err != nil {
		b.Fatal(err)
	}
	rng := rand.NewChaCha8([32]byte{1})
	values := make([]byte, 1000*64)
	recs := make([]Record, 64)
	var input int64
	for i := 0; input < *compactBenchBytes; i++ {
		rng.Read(values) // incompressible: the bytes stored are the bytes given
		for j := range recs {
			n := i*len(recs) + j
			recs[j] = Record{Key: []byte(fmt.Sprintf("key-%08d", n%*compactBenchKeys)), Value: values[j*1000 : (j+1)*1000], Timestamp: 1_700_000_000_000}
		}
		batch, err := EncodeBatch(recs, CodecLZ4, 1_700_000_000_000)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := p.Append(ctx, batch, AppendOptions{}); err != nil {
			b.Fatal(err)
		}
		input += int64(len(batch))
	}
	if err := p.Roll(); err != nil {
		b.Fatal(err)
	}
	for deadline := time.Now().Add(5 * time.Minute); !allUploaded(p); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			b.Fatal("uploads did not finish")
		}
	}
	stored := p.StoredBytes()
	b.ResetTimer()
	for range b.N {
		runtime.GC()
		var peak atomic.Uint64
		stop := make(chan struct{})
		done := make(chan struct{})
		go func() {
			defer close(done)
			var ms runtime.MemStats
			for {
				runtime.ReadMemStats(&ms)
				if ms.HeapInuse > peak.Load() {
					peak.Store(ms.HeapInuse)
				}
				select {
				case <-stop:
					return
				case <-time.After(20 * time.Millisecond):
				}
			}
		}()
		start := time.Now()
		res, err := p.Compact(ctx)
		d := time.Since(start)
		close(stop)
		<-done
		if err != nil {
			b.Fatal(err)
		}
		if !res.Ran || res.Keys != *compactBenchKeys {
			b.Fatalf("run %+v, want %d keys", res, *compactBenchKeys)
		}
		b.ReportMetric(float64(stored)/1e6/d.Seconds(), "input-MB/s")
		b.ReportMetric(float64(peak.Load())/(1<<20), "peak-heap-MiB")
		b.ReportMetric(float64(stored)/(1<<20), "input-MiB")
		b.ReportMetric(float64(res.BytesWritten)/(1<<20), "output-MiB")
		// The next iteration compacts again from uncompacted data: not
		// possible without re-appending, so one iteration is the bench.
		b.StopTimer()
		break
	}
}
