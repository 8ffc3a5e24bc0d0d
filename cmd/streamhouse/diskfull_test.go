//go:build linux

package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// The disk-full test's shape.
const (
	// diskFullSize is the file system the data directory lives on.
	diskFullSize = 16 << 20
	// diskFullSegmentBytes is the topic's segment.bytes, a multiple of
	// every page and block size, so that a segment filled to exactly this
	// size needs a fresh block for its seal.
	diskFullSegmentBytes = 256 << 10
	// diskFullValue is the size of each probe's value: more than what is
	// left of a page, so that a full file system refuses it.
	diskFullValue = 1000
	// diskFullProbes bounds the produce requests sent while filling the
	// disk (each one tops the ballast up first).
	diskFullProbes = 2000
	// diskFullInFlight is how many records the idempotent producer has
	// pending while the disk is full.
	diskFullInFlight = 200
)

// mountTmpfs mounts a tmpfs of size bytes on a fresh directory and
// unmounts it at cleanup (register it before anything that must stop
// using the directory first, such as the broker). Mounting needs root (or
// CAP_SYS_ADMIN): without it the test is skipped with the reason printed,
// and under CI, where the tests run as root, it fails.
func mountTmpfs(t *testing.T, size int64) string {
	t.Helper()
	dir := mountPoint(t)
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, "size="+strconv.FormatInt(size, 10)); err != nil {
		skipOrFail(t, "cannot mount a tmpfs (%v): this test needs root or CAP_SYS_ADMIN", err)
	}
	unmountAtCleanup(t, dir)
	return dir
}

// mountExt4 makes an ext4 file system of size bytes in an image file and
// loop-mounts it on a fresh directory until cleanup, with nodelalloc:
// blocks are then allocated by write(2), so a full disk fails the write
// itself and never a later fsync (which must stay sticky, and would make
// the partition refuse writes until a restart). Unlike tmpfs, fsync there
// really writes. It needs mkfs.ext4 (e2fsprogs), mount, loop devices and
// root: without them the test is skipped, and under CI it fails.
func mountExt4(t *testing.T, size int64) string {
	t.Helper()
	img := filepath.Join(t.TempDir(), "ext4.img")
	if err := os.WriteFile(img, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(img, size); err != nil {
		t.Fatal(err)
	}
	mkfs, err := exec.LookPath("mkfs.ext4")
	if err != nil {
		skipOrFail(t, "no mkfs.ext4 (apt-get install e2fsprogs): %v", err)
	}
	// -m 0: no blocks reserved for root, who runs both the broker and the
	// ballast here.
	if out, err := exec.Command(mkfs, "-q", "-F", "-m", "0", img).CombinedOutput(); err != nil {
		t.Fatalf("mkfs.ext4: %v\n%s", err, out)
	}
	dir := mountPoint(t)
	if out, err := exec.Command("mount", "-t", "ext4", "-o", "loop,nodelalloc", img, dir).CombinedOutput(); err != nil {
		skipOrFail(t, "cannot loop-mount an ext4 image (%v: %s): this test needs root and loop devices", err, bytes.TrimSpace(out))
	}
	unmountAtCleanup(t, dir)
	return dir
}

func mountPoint(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "mnt")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// unmountAtCleanup unmounts dir when the test ends (a loop device set up
// by mount -o loop goes with it).
func unmountAtCleanup(t *testing.T, dir string) {
	t.Cleanup(func() {
		if err := syscall.Unmount(dir, 0); err != nil {
			t.Errorf("unmount %s: %v; detaching it", dir, err)
			_ = syscall.Unmount(dir, syscall.MNT_DETACH)
		}
	})
}

// skipOrFail skips t with the reason, or fails it under CI, where every
// capability the tests need is there.
func skipOrFail(t *testing.T, format string, args ...any) {
	t.Helper()
	if os.Getenv("CI") != "" {
		t.Fatalf(format, args...)
	}
	t.Skipf(format, args...)
}

// topUp appends to f until its file system is full (ENOSPC), in shrinking
// chunks down to one byte, so that what remains free is less than a byte
// of new data needs: the broker's next write that needs a new page fails.
func topUp(t *testing.T, f *os.File) {
	t.Helper()
	buf := make([]byte, 1<<20)
	for chunk := len(buf); chunk >= 1; chunk /= 16 {
		// A file system of diskFullSize takes at most that many chunks.
		for i := 0; i <= diskFullSize/chunk; i++ {
			if _, err := f.Write(buf[:chunk]); err != nil {
				if !errors.Is(err, syscall.ENOSPC) {
					t.Fatalf("fill the disk: %v", err)
				}
				break
			}
		}
	}
}

// TestProcessDiskFull puts the broker's data directory (segments and
// metadata) on a small file system, with the object store on an ordinary
// disk, and fills it to the brim with a ballast file (issue #19). A
// produce that then fails must fail cleanly: KAFKA_STORAGE_ERROR
// (retriable), nothing written (the end offset does not move, the refused
// value is never stored), the broker up and earlier records readable.
// After the ballast is deleted, with no broker restart, the very next
// produce succeeds, a franz-go idempotent producer whose records waited
// through the full disk gets them all acknowledged, and every
// acknowledged record reads back exactly once at its offset.
//
// The cases run on tmpfs and on a loop-mounted ext4 (where fsync writes),
// with the disk filling either in the middle of the active segment (the
// append's write fails) or when it holds exactly segment.bytes (the
// refused produce must first roll, and sealing needs a new block).
func TestProcessDiskFull(t *testing.T) {
	for _, tc := range []struct {
		name  string
		mount func(*testing.T, int64) string
		// roll fills the active segment to exactly segment.bytes first.
		roll bool
	}{
		{"tmpfs/append", mountTmpfs, false},
		{"tmpfs/roll", mountTmpfs, true},
		{"ext4/append", mountExt4, false},
		{"ext4/roll", mountExt4, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			testDiskFull(t, tc.mount(t, diskFullSize), tc.roll)
		})
	}
}

func testDiskFull(t *testing.T, dataDir string, roll bool) {
	p := startBroker(t, map[string]string{"LOCAL_STORAGE_PATH": t.TempDir()}, localArgs(dataDir)...)
	httpAddr := p.ready(t)
	seed := p.listenAddr(t, "kafka")
	const topic = "full"
	topicID := createTopic(t, seed, topic, 1, map[string]string{"segment.bytes": strconv.Itoa(diskFullSegmentBytes)})
	led := newLedger()
	raw := newRawProducer(t, seed, topic, topicID, led)
	cl := newProducer(t, seed, 1000)
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	// Records before the disk fills, through the idempotent producer:
	// more than a segment, so one was sealed and uploaded.
	for i := 0; i < 300; i++ {
		r, err := cl.ProduceSync(ctx, &kgo.Record{Topic: topic, Value: []byte(padValue(fmt.Sprintf("before-%d-", i), diskFullValue))}).First()
		if err != nil {
			t.Fatalf("produce before the disk is full: %v", err)
		}
		led.ack(string(r.Value), r.Partition, r.Offset)
	}
	if roll {
		fillActiveSegment(t, ctx, raw, filepath.Join(dataDir, "segments"), diskFullSegmentBytes)
	}
	rolls := scrapeOne(t, httpAddr, metricRolls)

	ballastPath := filepath.Join(dataDir, "ballast")
	ballast, err := os.OpenFile(ballastPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer ballast.Close()
	end := endOffset(t, seed, topic)
	refused := fillUntilRefused(t, ctx, seed, raw, ballast, &end)
	t.Logf("the disk is full: produce refused with %s (%q); end offset %d", codeName(refused.code), refused.msg, end)

	// Still full: more produce fails cleanly (or fits in a page already
	// allocated), the broker stays up, what was acknowledged is readable.
	for i := 0; i < 3; i++ {
		topUp(t, ballast)
		v := padValue(fmt.Sprintf("full-%d-", i), diskFullValue)
		code, msg, _, err := raw.produce(ctx, 0, []string{v})
		if err != nil || (code != 0 && code != kerr.KafkaStorageError.Code) {
			t.Errorf("produce on a full disk: %s %q %v, want KAFKA_STORAGE_ERROR (or success)", codeName(code), msg, err)
		}
	}
	if !p.alive() {
		t.Fatalf("broker exited on a full disk; log:\n%s", p.out.String())
	}
	verifyLog(t, led, readAll(t, seed, topic))
	// The idempotent producer's records wait (it retries) while the disk
	// is full.
	var waited atomic.Int64
	for i := 0; i < diskFullInFlight; i++ {
		cl.Produce(ctx, &kgo.Record{Topic: topic, Value: []byte(padValue(fmt.Sprintf("waiting-%d-", i), diskFullValue))},
			func(r *kgo.Record, err error) {
				if err != nil {
					led.unexpectedErr(fmt.Sprintf("record %.20q: %v", r.Value, err))
					return
				}
				waited.Add(1)
				led.ack(string(r.Value), r.Partition, r.Offset)
			})
	}
	topUp(t, ballast)

	// Space comes back: the next produce succeeds, with no restart.
	if err := ballast.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(ballastPath); err != nil {
		t.Fatal(err)
	}
	v := padValue("after-", diskFullValue)
	if code, msg, _, err := raw.produce(ctx, 0, []string{v}); err != nil || code != 0 {
		t.Fatalf("first produce after space was freed: %s %q %v, want success (a full disk must not need a restart)",
			codeName(code), msg, err)
	}
	flushCtx, cancelFlush := context.WithTimeout(ctx, time.Minute)
	defer cancelFlush()
	if err := cl.Flush(flushCtx); err != nil {
		t.Errorf("flush the idempotent producer's records that waited through the full disk: %v", err)
	}
	if n := waited.Load(); n != diskFullInFlight {
		t.Errorf("%d of the %d records the idempotent producer held through the full disk were acknowledged", n, diskFullInFlight)
	}
	for _, e := range led.errs() {
		t.Errorf("franz-go producer error: %s", e)
	}
	if after := scrapeOne(t, httpAddr, metricRolls); roll && after <= rolls {
		t.Errorf("%s went from %v to %v: the segment filled to segment.bytes never rolled", metricRolls, rolls, after)
	}
	verifyLog(t, led, readAll(t, seed, topic))
	p.stop(t)
}

// fillActiveSegment produces single-record batches sized so that the
// active segment of the only topic's partition 0 under segmentsDir ends
// up holding exactly target bytes: the next append then rolls it.
func fillActiveSegment(t *testing.T, ctx context.Context, raw *rawProducer, segmentsDir string, target int64) {
	t.Helper()
	for i := 0; i < int(target/100); i++ {
		rem := target - activeSegmentSize(t, segmentsDir)
		if rem == 0 {
			return
		}
		if rem < 0 {
			t.Fatalf("the active segment grew past %d bytes without rolling", target)
		}
		// Batches of about a kilobyte, the last one at least 200 bytes.
		want := min(rem, 1100)
		if rem-want > 0 && rem-want < 200 {
			want = rem - 200
		}
		v := valueForBatch(t, fmt.Sprintf("segment-%d-", i), int(want))
		if code, msg, _, err := raw.produce(ctx, 0, []string{v}); err != nil || code != 0 {
			t.Fatalf("produce to fill the active segment: %s %q %v", codeName(code), msg, err)
		}
	}
	t.Fatalf("could not bring the active segment to %d bytes", target)
}

// activeSegmentSize returns the size of the newest segment file of
// partition 0 of the only topic under segmentsDir: the active segment.
func activeSegmentSize(t *testing.T, segmentsDir string) int64 {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(segmentsDir, "*", "0", "*.log"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no segment file under %s: %v", segmentsDir, err)
	}
	sort.Strings(files) // names are zero-padded base offsets
	st, err := os.Stat(files[len(files)-1])
	if err != nil {
		t.Fatal(err)
	}
	return st.Size()
}

// valueForBatch returns a value, starting with prefix, whose one-record
// batch (encodeBatch) is exactly n bytes.
func valueForBatch(t *testing.T, prefix string, n int) string {
	t.Helper()
	for size := n - 80; size <= n; size++ {
		v := padValue(prefix, size)
		if len(v) == size && len(encodeBatch([]string{v}, 0)) == n {
			return v
		}
	}
	t.Fatalf("no value makes a batch of %d bytes", n)
	return ""
}

// refusal is a produce's error answer.
type refusal struct {
	code int16
	msg  string
}

// fillUntilRefused tops the disk up before each raw produce of one record
// until one is refused, and returns that refusal. end is partition 0's end
// offset, advanced by each success; a refused produce must leave it where
// it was. The refusal must be KAFKA_STORAGE_ERROR; another code is
// reported as an error but returned, so the rest of the test still shows
// whether the broker recovers.
func fillUntilRefused(t *testing.T, ctx context.Context, seed string, raw *rawProducer, ballast *os.File, end *int64) refusal {
	t.Helper()
	for i := 0; i < diskFullProbes; i++ {
		topUp(t, ballast)
		v := padValue(fmt.Sprintf("fill-%d-", i), diskFullValue)
		code, msg, base, err := raw.produce(ctx, 0, []string{v})
		if err != nil {
			t.Fatalf("produce while filling the disk: no answer: %v", err)
		}
		if code == 0 {
			if base != *end {
				t.Fatalf("produce while filling the disk: base offset %d, want the end offset %d", base, *end)
			}
			*end++
			continue
		}
		if code != kerr.KafkaStorageError.Code {
			t.Errorf("produce on a full disk answered %s (%q), want KAFKA_STORAGE_ERROR (retriable)", codeName(code), msg)
		}
		if got := endOffset(t, seed, raw.topic); got != *end {
			t.Errorf("a refused produce moved the end offset from %d to %d: something was written", *end, got)
			*end = got
		}
		return refusal{code, msg}
	}
	t.Fatalf("%d produce requests on a disk topped up to the brim all succeeded", diskFullProbes)
	return refusal{}
}

// endOffset returns partition 0's end offset (high watermark).
func endOffset(t *testing.T, seed, topic string) int64 {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(seed))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ends, err := kadm.NewClient(cl).ListEndOffsets(ctx, topic)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		t.Fatalf("list end offsets: %v", err)
	}
	o, ok := ends.Lookup(topic, 0)
	if !ok {
		t.Fatalf("no end offset for %s[0]", topic)
	}
	return o.Offset
}
