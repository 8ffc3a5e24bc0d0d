package main

import (
	"io"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestBenchPayload(t *testing.T) {
	b := make([]byte, 100)
	fillPayload(b, 42, 1234)
	seq, sent, ok := checkPayload(b)
	if !ok || seq != 42 || sent != 1234 {
		t.Fatalf("round trip: %d %d %v", seq, sent, ok)
	}
	for _, i := range []int{0, 9, 50, 99} {
		c := append([]byte(nil), b...)
		c[i] ^= 1
		if _, _, ok := checkPayload(c); ok {
			t.Fatalf("flipped byte %d not detected", i)
		}
	}
	if _, _, ok := checkPayload(b[:20]); ok {
		t.Fatal("short payload accepted")
	}
	// The fill is byte(seq) + byte(i), whatever the size and sequence.
	for _, size := range []int{24, 100, 1024, 5000} {
		for _, seq := range []uint64{0, 1, 200, 255, 1 << 40} {
			p := make([]byte, size)
			fillPayload(p, seq, 7)
			for i := 16; i < size-8; i++ {
				if p[i] != byte(seq)+byte(i) {
					t.Fatalf("size %d seq %d: byte %d is %d, want %d", size, seq, i, p[i], byte(seq)+byte(i))
				}
			}
			if got, _, ok := checkPayload(p); !ok || got != seq {
				t.Fatalf("size %d seq %d: check %d %v", size, seq, got, ok)
			}
		}
	}
}

func TestBenchFlags(t *testing.T) {
	for _, c := range []struct {
		name string
		args []string
		ok   bool
	}{
		{"defaults", nil, true},
		{"all set", []string{"--brokers=a:1,b:2", "--records=10", "--size=24", "--partitions=2", "--acks=1", "--compression=zstd", "--rate=5"}, true},
		{"small size", []string{"--size=10"}, false},
		{"bad acks", []string{"--acks=2"}, false},
		{"bad codec", []string{"--compression=brotli"}, false},
		{"no records", []string{"--records=0"}, false},
		{"transactional", []string{"--transactional", "--txn-commit-interval=50ms"}, true},
		{"transactional acks=1", []string{"--transactional", "--acks=1"}, false},
		{"transactional no interval", []string{"--transactional", "--txn-commit-interval=0"}, false},
		{"interval alone", []string{"--txn-commit-interval=0"}, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := parseBenchFlags(c.args, io.Discard)
			if (err == nil) != c.ok {
				t.Fatalf("err = %v, want ok=%v", err, c.ok)
			}
		})
	}
}

func TestPercentile(t *testing.T) {
	d := make([]time.Duration, 1000)
	for i := range d {
		d[i] = time.Duration(i)
	}
	if p := percentile(d, 50); p != 499 {
		t.Fatalf("p50 = %v", p)
	}
	if p := percentile(d, 99.9); p != 998 {
		t.Fatalf("p99.9 = %v", p)
	}
	if p := percentile(nil, 50); p != 0 {
		t.Fatalf("empty = %v", p)
	}
}

// TestBenchAgainstBroker runs `streamhouse bench` (franz-go producer and
// consumers) against the broker binary, over the Kafka front, and checks
// that it verified every record: idempotent, acks=1, and transactional
// (commits every 20 ms, read_committed consumers).
func TestBenchAgainstBroker(t *testing.T) {
	p := startBroker(t, nil, localArgs(t.TempDir())...)
	p.ready(t)
	kafkaAddr := p.listenAddr(t, "kafka")
	for _, c := range []struct {
		name string
		args []string
		want string
	}{
		{"idempotent", []string{"--acks", "-1"}, ""},
		{"acks=1", []string{"--acks", "1"}, ""},
		{"transactional", []string{"--acks", "-1", "--transactional", "--txn-commit-interval", "20ms"}, "transactional (commit every 20ms, read_committed)"},
	} {
		args := append([]string{"bench", "--brokers", kafkaAddr, "--records", "20000",
			"--size", "64", "--partitions", "3", "--compression", "lz4", "--timeout", "2m"}, c.args...)
		out, err := exec.Command(binary(t), args...).CombinedOutput()
		if err != nil {
			t.Fatalf("bench %s: %v\n%s", c.name, err, out)
		}
		if !strings.Contains(string(out), "verify: OK: received 20000, missing 0, duplicates 0") ||
			!strings.Contains(string(out), c.want) {
			t.Fatalf("bench %s did not verify:\n%s", c.name, out)
		}
	}
	p.stop(t)
}

// TestProcCPU checks the broker CPU measure on this process: nanosecond
// thread times that agree with the tick-counted /proc/<pid>/stat total, and
// that grow with the CPU the process uses, as getrusage counts it.
func TestProcCPU(t *testing.T) {
	pid := os.Getpid()
	before, err := procCPU(pid)
	if err != nil {
		t.Fatal(err)
	}
	ticks, err := procStatCPU(pid)
	if err != nil {
		t.Fatal(err)
	}
	if d := before - ticks; d < -0.011 || d > 0.05 {
		t.Fatalf("procCPU %.4fs, /proc stat %.2fs: they should agree within a tick", before, ticks)
	}
	// Work until getrusage has counted 30 ms more CPU: this is the work to
	// be measured, not a wait, and it holds on a busy machine too.
	r0 := rusageCPU(t)
	x := 0
	for rusageCPU(t)-r0 < 30*time.Millisecond {
		x++
	}
	used := rusageCPU(t) - r0
	after, err := procCPU(pid)
	if err != nil {
		t.Fatal(err)
	}
	if got := after - before; got < used.Seconds()-0.011 {
		t.Fatalf("%v of CPU (getrusage, %d loops) measured as %.4fs", used, x, got)
	}
}

// rusageCPU is this process's user + system CPU time from getrusage.
func rusageCPU(t *testing.T) time.Duration {
	t.Helper()
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		t.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
