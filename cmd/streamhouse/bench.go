package main

import (
	"context"
	bin "encoding/binary"
	"errors"
	"flag"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// benchConfig is what `streamhouse bench` measures.
type benchConfig struct {
	brokers    []string
	topic      string
	records    int
	size       int
	partitions int
	acks       int
	codec      string
	rate       int           // records/s; 0 = as fast as possible
	timeout    time.Duration // whole run
	pid        int           // broker process whose CPU time to report; 0 = none
	keepTopic  bool
	linger     time.Duration
	// txnInterval > 0 makes the producer transactional: it commits a
	// transaction once one has been open this long, and the consumers read
	// committed records only (--transactional).
	txnInterval time.Duration
}

// benchUsage documents the bench subcommand.
const benchUsage = `Usage: streamhouse bench [flags]

Produces N records of S bytes to a fresh topic of P partitions with one franz-go
producer while one consumer reads them back, then consumes the topic again from
the start. Reports throughput, produce-ack and end-to-end latency percentiles,
the broker's CPU seconds per million records (with --pid), and verifies that
every record came back once and intact. Works against any Kafka broker.

With --transactional the producer has a transactional ID and commits a
transaction every --txn-commit-interval (Flush, then EndTxn), and both
consumers read committed records only; otherwise it is franz-go's default
idempotent producer.

Flags:
`

func parseBenchFlags(args []string, stderr io.Writer) (benchConfig, error) {
	var c benchConfig
	var brokers string
	fs := flag.NewFlagSet("streamhouse bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, benchUsage); fs.PrintDefaults() }
	fs.StringVar(&brokers, "brokers", "127.0.0.1:9092", "bootstrap brokers, comma separated")
	fs.StringVar(&c.topic, "topic", "", "topic to create (default: bench-<unix nanos>)")
	fs.IntVar(&c.records, "records", 1_000_000, "records to produce (N)")
	fs.IntVar(&c.size, "size", 100, "record value size in bytes (S, at least 24)")
	fs.IntVar(&c.partitions, "partitions", 8, "partitions (P)")
	fs.IntVar(&c.acks, "acks", -1, "acks: -1 (all), 1 or 0")
	fs.StringVar(&c.codec, "compression", "none", "producer compression: none, gzip, snappy, lz4, zstd")
	fs.IntVar(&c.rate, "rate", 0, "produce at most this many records/s (0: unlimited)")
	fs.DurationVar(&c.timeout, "timeout", 10*time.Minute, "give up after this long")
	fs.IntVar(&c.pid, "pid", 0, "broker process ID: report its CPU seconds per million records")
	fs.BoolVar(&c.keepTopic, "keep-topic", false, "do not delete the topic afterwards")
	fs.DurationVar(&c.linger, "linger", 0, "producer linger")
	transactional := fs.Bool("transactional", false, "produce in transactions, consume read_committed (needs --acks -1)")
	interval := fs.Duration("txn-commit-interval", 100*time.Millisecond, "with --transactional: commit a transaction once it has been open this long")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if *transactional {
		c.txnInterval = *interval
	}
	c.brokers = strings.Split(brokers, ",")
	if c.topic == "" {
		c.topic = "bench-" + strconv.FormatInt(time.Now().UnixNano(), 10)
	}
	switch {
	case c.records < 1:
		return c, errors.New("--records must be at least 1")
	case c.size < 24:
		return c, errors.New("--size must be at least 24 (sequence number, send time, checksum)")
	case c.partitions < 1:
		return c, errors.New("--partitions must be at least 1")
	case c.acks != -1 && c.acks != 0 && c.acks != 1:
		return c, errors.New("--acks must be -1, 0 or 1")
	case *transactional && c.acks != -1:
		return c, errors.New("--transactional needs --acks -1 (transactions are idempotent)")
	case *transactional && *interval <= 0:
		return c, errors.New("--txn-commit-interval must be positive")
	}
	if _, err := benchCodec(c.codec); err != nil {
		return c, err
	}
	return c, nil
}

func benchCodec(name string) (kgo.CompressionCodec, error) {
	switch name {
	case "none":
		return kgo.NoCompression(), nil
	case "gzip":
		return kgo.GzipCompression(), nil
	case "snappy":
		return kgo.SnappyCompression(), nil
	case "lz4":
		return kgo.Lz4Compression(), nil
	case "zstd":
		return kgo.ZstdCompression(), nil
	}
	return kgo.CompressionCodec{}, fmt.Errorf("--compression %q: want none, gzip, snappy, lz4 or zstd", name)
}

// benchMain runs `streamhouse bench` and returns the exit code.
func benchMain(args []string, stdout, stderr io.Writer) int {
	cfg, err := parseBenchFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return exitOK
	}
	if err != nil {
		fmt.Fprintf(stderr, "streamhouse bench: %v\n", err)
		return exitConfig
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, cfg.timeout)
	defer cancel()
	res, err := runBench(ctx, cfg)
	if err != nil {
		fmt.Fprintf(stderr, "streamhouse bench: %v\n", err)
		return exitFailed
	}
	res.print(stdout, cfg)
	if !res.ok() {
		return exitFailed
	}
	return exitOK
}

// payload layout: seq u64 | send time (unix ns) i64 | fill... | checksum u64
// of everything before it. The fill is a pattern of seq so corruption
// shows. The load generator fills and checks every record, so both are
// cheap next to the broker's work: the fill is copied from a table and the
// checksum is CRC-32C (hardware), where a byte loop of FNV-1a used to cost
// the client about 0.2 CPU-s per million 100 B records.
func fillPayload(b []byte, seq uint64, sent int64) {
	bin.BigEndian.PutUint64(b[0:], seq)
	bin.BigEndian.PutUint64(b[8:], uint64(sent))
	for i := 16; i < len(b)-8; {
		// b[i] = byte(seq) + byte(i), a table row at a time.
		start := int(byte(seq) + byte(i))
		i += copy(b[i:len(b)-8], fillTable[start:])
	}
	bin.BigEndian.PutUint64(b[len(b)-8:], checksum(b[:len(b)-8]))
}

// fillTable holds 0, 1, ..., 255 twice, so that any 256-byte run of the
// fill pattern is one slice of it.
var fillTable = func() (t [512]byte) {
	for i := range t {
		t[i] = byte(i)
	}
	return t
}()

var crc32c = crc32.MakeTable(crc32.Castagnoli)

// checksum is CRC-32C, enough to catch a flipped or shifted byte.
func checksum(b []byte) uint64 { return uint64(crc32.Checksum(b, crc32c)) }

// checkPayload returns the sequence number and send time, or ok=false when
// the record was corrupted.
func checkPayload(b []byte) (seq uint64, sent int64, ok bool) {
	if len(b) < 24 || bin.BigEndian.Uint64(b[len(b)-8:]) != checksum(b[:len(b)-8]) {
		return 0, 0, false
	}
	return bin.BigEndian.Uint64(b), int64(bin.BigEndian.Uint64(b[8:])), true
}

// percentile returns the p-th percentile (0..100) of sorted durations.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(float64(len(sorted)-1) * p / 100)
	return sorted[i]
}

func sortDurations(d []time.Duration) {
	sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
}

// procCPU returns the CPU seconds process pid has used. /proc/<pid>/stat
// counts in 10 ms ticks, coarse against a run that costs the broker 0.2 s,
// so it sums the nanosecond run times of the live threads
// (/proc/<pid>/task/*/schedstat) instead, unless threads that have exited
// account for more than a tick: their time is only in the stat total.
func procCPU(pid int) (float64, error) {
	ticks, err := procStatCPU(pid)
	if err != nil {
		return 0, err
	}
	threads, err := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/schedstat", pid))
	if err != nil || len(threads) == 0 {
		return ticks, nil
	}
	var ns int64
	for _, t := range threads {
		b, err := os.ReadFile(t)
		if err != nil {
			continue // the thread exited meanwhile
		}
		f := strings.Fields(string(b))
		if len(f) == 0 {
			continue
		}
		v, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			return ticks, nil
		}
		ns += v
	}
	if live := float64(ns) / 1e9; ticks-live < 0.01 {
		return live, nil
	}
	return ticks, nil
}

// procStatCPU returns utime + stime from /proc/<pid>/stat, in seconds.
func procStatCPU(pid int) (float64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	s := string(b)
	// Fields after the command name (which may hold spaces) in parens.
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	if len(f) < 13 {
		return 0, fmt.Errorf("short /proc/%d/stat", pid)
	}
	utime, _ := strconv.ParseFloat(f[11], 64)
	stime, _ := strconv.ParseFloat(f[12], 64)
	return (utime + stime) / 100, nil // USER_HZ is 100 on Linux
}

// benchAdmin creates (and later deletes) the topic.
func benchAdmin(ctx context.Context, cfg benchConfig) (*kgo.Client, error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(cfg.brokers...))
	if err != nil {
		return nil, err
	}
	adm := kadm.NewClient(cl)
	resp, err := adm.CreateTopics(ctx, int32(cfg.partitions), 1, nil, cfg.topic)
	if err == nil {
		err = resp.Error()
	}
	if err != nil {
		cl.Close()
		return nil, fmt.Errorf("create topic %s: %w", cfg.topic, err)
	}
	return cl, nil
}

// lockedDurations collects latencies from producer callbacks.
type lockedDurations struct {
	mu sync.Mutex
	d  []time.Duration
}

func (l *lockedDurations) add(d time.Duration) {
	l.mu.Lock()
	l.d = append(l.d, d)
	l.mu.Unlock()
}
