//go:build linux

package log

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/streamhouse/streamhouse/objstore"
)

// The noisy neighbour is a child process (this test binary again, running
// TestNoisyNeighbourProcess) so that its dirty pages are another process's,
// as they would be on a shared host, and its CPU is not the broker's.
// These variables of its environment say what it does.
const (
	noisyFileEnv      = "STREAMHOUSE_NOISY_FILE"      // the file it writes
	noisyRateEnv      = "STREAMHOUSE_NOISY_RATE"      // bytes per second; 0: as fast as it can
	noisyWritebackEnv = "STREAMHOUSE_NOISY_WRITEBACK" // "1": start writeback after each write
	noisyParentEnv    = "STREAMHOUSE_NOISY_PARENT"    // the benchmark's pid; the child stops when it dies
)

const (
	noisyWriteBytes = 4 << 20   // one write(2)
	noisyFileBytes  = 256 << 20 // the file is rewritten from the start once it is this long
	noisyMaxBytes   = 1 << 40   // a neighbour writes at most this much in all
	noisyMaxTime    = 3 * time.Minute
	// noisyRunLimit bounds one benchmark run (b.Loop with -benchtime), so
	// that the neighbour is still running when it ends.
	noisyRunLimit = 2 * time.Minute
)

// noisyLoad is what the neighbour does during a run.
type noisyLoad struct {
	name      string
	run       bool    // false: no neighbour
	rate      float64 // bytes per second; 0: as fast as it can
	writeback bool
}

// BenchmarkSyncScopeNoisyNeighbour is BenchmarkSyncScope's acks=all
// produce request (one batch of 100 × 100 B records to each of 8
// partitions, then every append made durable) while another process
// writes to a file on the same file system (loads below). It reports the
// ack latency of a request at p50, p99 and p99.9, the benchmark process's
// CPU per request (user + system; writeback done by the kernel's flusher
// threads is not in it), how fast the disk under the segments wrote
// (disk-MB/s, whoever wrote) and how fast the neighbour wrote: nbr-MB/s
// counts its write(2) bytes, nbr-dirtied-MB/s the pages it turned from
// clean to dirty (/proc/<pid>/io write_bytes), which is what someone must
// write back. Run it with a time -benchtime (say 5s): with a dirty
// neighbour one syncfs can take most of a second.
func BenchmarkSyncScopeNoisyNeighbour(b *testing.B) {
	batch := benchBatch(b, 100, 100)
	loads := []noisyLoad{
		{name: "none"},
		// Buffered writes only: the pages stay dirty until the kernel's
		// flusher writes them back (after dirty_expire_centisecs, 30 s by
		// default) or a sync of the file system does.
		{name: "dirty-64MiBps", run: true, rate: 64 << 20},
		{name: "dirty-flatout", run: true},
		// Like a database with bytes_per_sync: it asks for writeback of what
		// it wrote (sync_file_range, no wait), so its data is on its way to
		// the disk all the time and competes with the broker's for it.
		{name: "writeback-64MiBps", run: true, rate: 64 << 20, writeback: true},
	}
	for _, load := range loads {
		for _, scope := range []SyncScope{SyncFilesystem, SyncFile} {
			b.Run(load.name+"/"+string(scope), func(b *testing.B) {
				benchNoisy(b, batch, scope, load)
			})
		}
	}
}

// produceRequest returns one acks=all produce request as the Kafka front
// runs it: a DeferSync append of batch to each of the topic's partitions,
// then Manager.AwaitDurable.
func produceRequest(b *testing.B, m *Manager, topic string, partitions int, batch []byte) func() {
	parts := make([]*Partition, partitions)
	bufs := make([][]byte, partitions)
	for i := range parts {
		parts[i], _ = m.Partition(topic, int32(i))
		bufs[i] = make([]byte, len(batch))
	}
	waits := make([]func() error, partitions)
	return func() {
		for i, p := range parts {
			copy(bufs[i], batch)
			res, err := p.Append(context.Background(), bufs[i], AppendOptions{Sync: true, DeferSync: true})
			if err != nil {
				b.Fatal(err)
			}
			waits[i] = res.Durable
		}
		// With SyncFile the waits run on goroutines of their own, which
		// must not call b.Fatal.
		var mu sync.Mutex
		var failed error
		m.AwaitDurable(waits, func(i int, err error) {
			mu.Lock()
			defer mu.Unlock()
			if failed == nil {
				failed = fmt.Errorf("partition %d: %w", i, err)
			}
		})
		if failed != nil {
			b.Fatal(failed)
		}
	}
}

func benchNoisy(b *testing.B, batch []byte, scope SyncScope, load noisyLoad) {
	m := benchManagerScope(b, objstore.NewMem(), DefaultCacheBytes, scope)
	if ok, fsName, err := syncfsFlushes(m.cfg.Dir); err != nil || !ok {
		b.Fatalf("segments directory %s is on %s (%v), where the log does not use syncfs", m.cfg.Dir, fsName, err)
	}
	if scope == SyncFilesystem && m.fss == nil {
		b.Skip("skipped: no syncfs that reports writeback errors here (Linux 5.8+)")
	}
	if _, err := m.CreateTopic(context.Background(), "bench", 8, nil); err != nil {
		b.Fatal(err)
	}
	request := produceRequest(b, m, "bench", 8, batch)

	var nbr *noisyNeighbour
	if load.run {
		// Next to the segments directory: the same file system.
		nbr = startNoisyNeighbour(b, filepath.Join(filepath.Dir(m.cfg.Dir), "neighbour.dat"), load)
		nbr.sameDevice(b, m.cfg.Dir)
	}
	for range 3 { // reach a steady state: the first syncs flush what piled up meanwhile
		request()
	}
	io0, disk0 := nbr.io(b), diskWritten(m.cfg.Dir)
	lats := make([]time.Duration, 0, 1024)
	start := time.Now()
	cpu0 := processCPU()
	b.SetBytes(int64(8 * len(batch)))
	for b.Loop() {
		t0 := time.Now()
		request()
		lats = append(lats, time.Since(t0))
		if time.Since(start) > noisyRunLimit {
			b.Fatalf("a run took over %v (%d requests); use a shorter -benchtime", noisyRunLimit, len(lats))
		}
		nbr.check(b)
	}
	cpu := processCPU() - cpu0
	elapsed := time.Since(start)
	io1, disk1 := nbr.io(b), diskWritten(m.cfg.Dir)

	slices.Sort(lats)
	ms := func(q float64) float64 { return float64(noisyQuantile(lats, q)) / float64(time.Millisecond) }
	b.ReportMetric(ms(0.50), "p50-ms")
	b.ReportMetric(ms(0.99), "p99-ms")
	b.ReportMetric(ms(0.999), "p99.9-ms")
	b.ReportMetric(float64(cpu.Microseconds())/float64(len(lats)), "cpu-us/op")
	if disk0 >= 0 && disk1 >= 0 {
		b.ReportMetric(float64(disk1-disk0)/1e6/elapsed.Seconds(), "disk-MB/s")
	}
	if nbr != nil {
		b.ReportMetric(float64(io1.wchar-io0.wchar)/1e6/elapsed.Seconds(), "nbr-MB/s")
		b.ReportMetric(float64(io1.writeBytes-io0.writeBytes)/1e6/elapsed.Seconds(), "nbr-dirtied-MB/s")
	}
}

// diskWritten is how many bytes the block device holding dir has written
// since boot, from /sys/dev/block/<major>:<minor>/stat, or -1 where that
// is not known (a file system on no single block device, say).
func diskWritten(dir string) int64 {
	var st unix.Stat_t
	if err := unix.Stat(dir, &st); err != nil {
		return -1
	}
	stat, err := os.ReadFile(fmt.Sprintf("/sys/dev/block/%d:%d/stat", unix.Major(st.Dev), unix.Minor(st.Dev)))
	if err != nil {
		return -1
	}
	fields := strings.Fields(string(stat))
	if len(fields) < 7 {
		return -1
	}
	sectors, err := strconv.ParseInt(fields[6], 10, 64) // sectors written, 512 bytes each
	if err != nil {
		return -1
	}
	return sectors * 512
}

// noisyQuantile is the q-quantile of sorted (nearest rank): with fewer than
// 1/(1-q) samples it is the largest.
func noisyQuantile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(float64(len(sorted))*q+0.999999) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

// noisyNeighbour is a running neighbour process, owned by one benchmark
// run, whose cleanup kills it and waits for it.
type noisyNeighbour struct {
	cmd    *exec.Cmd
	path   string
	exited chan struct{} // closed once the process has been waited for
	err    error         // Wait's result, set before exited is closed
}

// startNoisyNeighbour starts the child and returns once it has written
// 16 MiB.
func startNoisyNeighbour(b *testing.B, path string, load noisyLoad) *noisyNeighbour {
	cmd := exec.Command(os.Args[0], "-test.run=^TestNoisyNeighbourProcess$", "-test.count=1", "-test.v=false")
	wb := "0"
	if load.writeback {
		wb = "1"
	}
	cmd.Env = append(os.Environ(),
		noisyFileEnv+"="+path,
		noisyRateEnv+"="+strconv.FormatFloat(load.rate, 'f', 0, 64),
		noisyWritebackEnv+"="+wb,
		noisyParentEnv+"="+strconv.Itoa(os.Getpid()))
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		b.Fatalf("start the neighbour: %v", err)
	}
	n := &noisyNeighbour{cmd: cmd, path: path, exited: make(chan struct{})}
	go func() {
		n.err = cmd.Wait()
		close(n.exited)
	}()
	b.Cleanup(func() {
		cmd.Process.Kill()
		<-n.exited
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		if fi, err := os.Stat(path); err == nil && fi.Size() >= 16<<20 {
			return n
		}
		n.check(b)
		if time.Now().After(deadline) {
			b.Fatal("the neighbour wrote less than 16 MiB in 30 s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// check fails the benchmark if the neighbour has stopped.
func (n *noisyNeighbour) check(b *testing.B) {
	if n == nil {
		return
	}
	select {
	case <-n.exited:
		b.Fatalf("the neighbour stopped early: %v", n.err)
	default:
	}
}

// sameDevice fails the benchmark unless dir is on the neighbour's file system.
func (n *noisyNeighbour) sameDevice(b *testing.B, dir string) {
	d1, err1 := deviceOf(dir)
	d2, err2 := deviceOf(n.path)
	if err1 != nil || err2 != nil || d1 != d2 {
		b.Fatalf("%s (device %d, %v) and %s (device %d, %v) are not on one file system", dir, d1, err1, n.path, d2, err2)
	}
}

// noisyIO is the part of /proc/<pid>/io that the benchmark reports.
type noisyIO struct {
	wchar      int64 // bytes passed to write(2)
	writeBytes int64 // bytes of pages dirtied
}

func (n *noisyNeighbour) io(b *testing.B) noisyIO {
	if n == nil {
		return noisyIO{}
	}
	f, err := os.Open(fmt.Sprintf("/proc/%d/io", n.cmd.Process.Pid))
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	var io noisyIO
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, _ := strings.Cut(sc.Text(), ": ")
		x, _ := strconv.ParseInt(v, 10, 64)
		switch k {
		case "wchar":
			io.wchar = x
		case "write_bytes":
			io.writeBytes = x
		}
	}
	if err := sc.Err(); err != nil {
		b.Fatal(err)
	}
	return io
}

// TestNoisyNeighbourProcess is not a test: it is the neighbour process of
// BenchmarkSyncScopeNoisyNeighbour and skips unless started as one.
func TestNoisyNeighbourProcess(t *testing.T) {
	path := os.Getenv(noisyFileEnv)
	if path == "" {
		t.Skip("skipped: runs only as BenchmarkSyncScopeNoisyNeighbour's child process")
	}
	rate, err := strconv.ParseFloat(os.Getenv(noisyRateEnv), 64)
	if err != nil {
		t.Fatal(err)
	}
	parent, err := strconv.Atoi(os.Getenv(noisyParentEnv))
	if err != nil {
		t.Fatal(err)
	}
	if err := noisyWrite(path, rate, os.Getenv(noisyWritebackEnv) == "1", parent); err != nil {
		t.Fatal(err)
	}
}

// noisyWrite writes 4 MiB blocks to path, buffered, rewriting it from the
// start every noisyFileBytes, at rate bytes per second (0: flat out). It
// returns after noisyMaxBytes or noisyMaxTime, or once its parent is gone.
func noisyWrite(path string, rate float64, writeback bool, parent int) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE, 0o644)
	if err != nil {
		return err
	}
	defer f.Close()
	buf := make([]byte, noisyWriteBytes)
	for i := range buf {
		buf[i] = byte(i*7 + 1)
	}
	start := time.Now()
	var off, total int64
	for total < noisyMaxBytes && time.Since(start) < noisyMaxTime && os.Getppid() == parent {
		if _, err := f.WriteAt(buf, off); err != nil {
			return err
		}
		if writeback {
			if err := unix.SyncFileRange(int(f.Fd()), off, noisyWriteBytes, unix.SYNC_FILE_RANGE_WRITE); err != nil {
				return fmt.Errorf("sync_file_range: %w", err)
			}
		}
		total += noisyWriteBytes
		if off += noisyWriteBytes; off >= noisyFileBytes {
			off = 0
		}
		if rate > 0 {
			// Pacing, not waiting for something: sleep until the
			// schedule allows the next write.
			if ahead := time.Duration(float64(total)/rate*float64(time.Second)) - time.Since(start); ahead > 0 {
				time.Sleep(ahead)
			}
		}
	}
	return nil
}
