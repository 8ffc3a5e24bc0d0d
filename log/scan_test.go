package log

import (
	"bytes"
	"errors"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"testing/iotest"
)

func formatDiscardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

// formatLogBuffer is a goroutine-safe buffer for a test logger.
type formatLogBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *formatLogBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *formatLogBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// formatNoisySegment is like formatSegment but with random (seeded, so
// deterministic) values, so that no region of it is all zeros.
func formatNoisySegment(tb testing.TB, base int64, n int) formatSeg {
	tb.Helper()
	rng := rand.New(rand.NewPCG(1, 2))
	s := formatSeg{idx: newSparseIndex(512)}
	next := base
	for i := range n {
		recs := make([]Record, 1+rng.IntN(5))
		for j := range recs {
			v := make([]byte, 50+rng.IntN(300))
			for k := range v {
				v[k] = byte(1 + rng.IntN(255))
			}
			recs[j] = Record{Timestamp: formatTS + int64(i), Value: v}
		}
		codec := formatCodecs[i%len(formatCodecs)]
		b := formatBatch(tb, next, recs, codec)
		h, _ := ParseBatchHeader(b)
		s.idx.add(h, base, int64(len(s.batches)))
		s.hdrs, s.pos = append(s.hdrs, h), append(s.pos, int64(len(s.batches)))
		s.batches = append(s.batches, b...)
		next = h.NextOffset()
	}
	return s
}

func TestScanBatches(t *testing.T) {
	s := formatNoisySegment(t, 1000, 30)
	res, err := scanBatches(bytes.NewReader(s.batches), 1000, 512)
	if err != nil {
		t.Fatal(err)
	}
	last := s.hdrs[len(s.hdrs)-1]
	var records int64
	for _, h := range s.hdrs {
		records += int64(h.NumRecords)
	}
	if res.ValidBytes != int64(len(s.batches)) || res.Dropped != 0 || res.Cause != nil || res.Batches != 30 ||
		res.BaseOffset != 1000 || res.NextOffset != last.NextOffset() || res.RecordCount != records ||
		res.MaxTimestamp != formatTS+29 {
		t.Fatalf("result %+v", res)
	}
	if got, want := res.Index.entries(), s.idx.entries(); len(got) != len(want) || len(got) < 3 {
		t.Fatalf("index entries %d, want %d (>= 3)", len(got), len(want))
	}
	empty, err := scanBatches(bytes.NewReader(nil), 7, 0)
	if err != nil || empty.BaseOffset != -1 || empty.NextOffset != -1 || empty.MaxTimestamp != -1 || empty.Dropped != 0 {
		t.Fatalf("empty: %+v, %v", empty, err)
	}
	// A reader handing out one byte at a time changes nothing.
	one, err := scanBatches(iotest.OneByteReader(bytes.NewReader(s.batches)), 1000, 512)
	if err != nil || one.ValidBytes != res.ValidBytes || one.Batches != res.Batches {
		t.Fatalf("one byte reader: %+v, %v", one, err)
	}
}

func TestScanBatchesIOError(t *testing.T) {
	s := formatNoisySegment(t, 0, 5)
	boom := errors.New("boom")
	for _, at := range []int{0, 30, int(s.pos[2]) + 100} {
		r := io.MultiReader(bytes.NewReader(s.batches[:at]), iotest.ErrReader(boom))
		if _, err := scanBatches(r, 0, 0); !errors.Is(err, boom) {
			t.Errorf("error after %d bytes: %v, want boom", at, err)
		}
	}
}

// TestRecoverActiveCorruption damages a segment file in the ways disks and
// crashes do and checks that recovery keeps exactly the intact prefix.
func TestRecoverActiveCorruption(t *testing.T) {
	const n = 40
	s := formatNoisySegment(t, 5000, n)
	orig := s.batches
	end := func(k int) int64 { // end of batch k-1: the prefix of k batches
		if k == n {
			return int64(len(orig))
		}
		return s.pos[k]
	}
	mid := n / 2
	sector := (s.pos[mid] + 700) / 512 * 512
	sectorKeeps := 0 // batches wholly before the zeroed sector
	for sectorKeeps < n && end(sectorKeeps+1) <= sector {
		sectorKeeps++
	}
	garbage := bytes.Repeat([]byte{0xa5, 0x5a, 0x13}, 100)
	cases := []struct {
		name   string
		damage func(b []byte) []byte
		keep   int // intact batches
		cause  error
	}{
		{"intact", func(b []byte) []byte { return b }, n, nil},
		{"empty file", func([]byte) []byte { return nil }, 0, nil},
		{"torn last frame", func(b []byte) []byte { return b[:len(b)-37] }, n - 1, ErrCorruptBatch},
		{"torn last header", func(b []byte) []byte { return b[:s.pos[n-1]+20] }, n - 1, ErrCorruptBatch},
		{"only a torn header", func(b []byte) []byte { return b[:11] }, 0, ErrCorruptBatch},
		{"zeroed sector mid-file", func(b []byte) []byte { clear(b[sector : sector+512]); return b }, sectorKeeps, ErrCorruptBatch},
		{"bad crc in batch 7", func(b []byte) []byte { b[s.pos[7]+80] ^= 0x01; return b }, 7, ErrCorruptBatch},
		{"bad crc in first batch", func(b []byte) []byte { b[100] ^= 0x80; return b }, 0, ErrCorruptBatch},
		{"length too large in batch 9", func(b []byte) []byte { return put32(int(s.pos[9])+offLength, s.hdrs[9].Length+3)(b) }, 9, ErrCorruptBatch},
		{"length too small in batch 9", func(b []byte) []byte { return put32(int(s.pos[9])+offLength, 12)(b) }, 9, ErrCorruptBatch},
		{"length past the end in batch 9", func(b []byte) []byte { return put32(int(s.pos[9])+offLength, 1<<30)(b) }, 9, ErrCorruptBatch},
		{"bad magic in batch 3", func(b []byte) []byte { b[s.pos[3]+offMagic] = 1; return b }, 3, ErrCorruptBatch},
		{"base offset rewritten in batch 12", func(b []byte) []byte { setBaseOffset(b[s.pos[12]:], 1); return b }, 12, ErrCorruptSegment},
		{"garbage appended", func(b []byte) []byte { return append(b, garbage...) }, n, ErrCorruptBatch},
		{"zeros appended", func(b []byte) []byte { return append(b, make([]byte, 4096)...) }, n, ErrCorruptBatch},
		{"garbage over batch 20", func(b []byte) []byte { copy(b[s.pos[20]+30:], garbage); return b }, 20, ErrCorruptBatch},
		{"garbage inserted before batch 20", func(b []byte) []byte {
			return slicesConcat(b[:s.pos[20]], garbage, b[s.pos[20]:])
		}, 20, ErrCorruptBatch},
		{"batch 25 duplicated", func(b []byte) []byte {
			return slicesConcat(b[:end(26)], b[s.pos[25]:])
		}, 26, ErrCorruptSegment},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			formatCheckRecovery(t, c.damage(bytes.Clone(orig)), orig[:end(c.keep)], c.keep, c.cause)
		})
	}
}

// formatCheckRecovery writes damaged as a segment file based at 5000,
// recovers it and checks that exactly the prefix want of keep batches
// survives, with the cause and a warning naming what was dropped.
func formatCheckRecovery(t *testing.T, damaged, want []byte, keep int, cause error) {
	path := filepath.Join(t.TempDir(), "00000000000000005000.log")
	if err := os.WriteFile(path, damaged, 0o644); err != nil {
		t.Fatal(err)
	}
	var logs formatLogBuffer
	res, err := recoverPath(path, 5000, slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("file is %d bytes, want the %d-byte prefix of %d batches", len(got), len(want), keep)
	}
	valid, dropped := int64(len(want)), int64(len(damaged)-len(want))
	if res.Batches != keep || res.ValidBytes != valid || res.Dropped != dropped {
		t.Fatalf("batches %d valid %d dropped %d; want %d %d %d", res.Batches, res.ValidBytes, res.Dropped, keep, valid, dropped)
	}
	if cause == nil {
		if res.Cause != nil || logs.String() != "" {
			t.Fatalf("intact file: cause %v, logs %q", res.Cause, logs.String())
		}
		return
	}
	if !errors.Is(res.Cause, cause) {
		t.Fatalf("cause %v, want %v", res.Cause, cause)
	}
	line := logs.String()
	for _, want := range []string{"level=WARN", "segment=" + path, "valid_bytes=" + strconv.FormatInt(valid, 10),
		"dropped_bytes=" + strconv.FormatInt(dropped, 10), "cause="} {
		if !strings.Contains(line, want) {
			t.Fatalf("log %q lacks %q", line, want)
		}
	}
	// Recovery is idempotent: a second pass finds nothing to drop.
	again, err := recoverPath(path, 5000, formatDiscardLogger())
	if err != nil || again.Dropped != 0 || again.Batches != keep {
		t.Fatalf("second recovery: %+v, %v", again, err)
	}
}

func TestRecoverActiveFileMissing(t *testing.T) {
	if _, err := recoverPath(filepath.Join(t.TempDir(), "nope.log"), 0, nil); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("err %v, want ErrNotExist", err)
	}
}

// recoverPath runs recoverActiveFile on the file at path.
func recoverPath(path string, base int64, logger *slog.Logger) (scanResult, error) {
	f, err := osFS{}.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return scanResult{}, err
	}
	defer f.Close()
	return recoverActiveFile(f, base, logger)
}
