package log

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// formatSeg is a generated segment: its batch region, the batches' headers
// and positions, its index and footer.
type formatSeg struct {
	batches []byte
	hdrs    []BatchHeader
	pos     []int64
	idx     *sparseIndex
	ft      Footer
}

// formatSegment builds n batches of per records each from offset base,
// uncompressed, record j of batch i stamped formatTS + 100*i + j, indexed
// every interval bytes.
func formatSegment(tb testing.TB, base int64, n, per, interval int) formatSeg {
	tb.Helper()
	s := formatSeg{idx: newSparseIndex(interval)}
	next := base
	for i := range n {
		recs := make([]Record, per)
		for j := range recs {
			recs[j] = Record{Timestamp: formatTS + int64(100*i+j), Key: []byte(fmt.Sprintf("k%d.%d", i, j)),
				Value: []byte(fmt.Sprintf("value %d.%d", i, j))}
		}
		b := formatBatch(tb, next, recs, CodecNone)
		h, err := ValidateBatch(b)
		if err != nil {
			tb.Fatal(err)
		}
		s.idx.add(h, base, int64(len(s.batches)))
		s.hdrs, s.pos = append(s.hdrs, h), append(s.pos, int64(len(s.batches)))
		s.batches = append(s.batches, b...)
		next = h.NextOffset()
	}
	s.ft = Footer{BaseOffset: base, LastOffset: next - 1, MaxTimestamp: s.idx.maxTimestamp(),
		RecordCount: int64(n * per), BatchesLen: int64(len(s.batches))}
	return s
}

// object returns the sealed object bytes.
func (s formatSeg) object() []byte {
	return append(bytes.Clone(s.batches), encodeSealTail(s.idx.entries(), nil, s.ft)...)
}

func TestFooterEncoding(t *testing.T) {
	f := Footer{BaseOffset: 1, LastOffset: 2, MaxTimestamp: 3, RecordCount: 2, BatchesLen: 200, IndexCount: 1, IndexCRC: 0xdeadbeef}
	b := encodeFooter(f)
	if len(b) != footerLen {
		t.Fatalf("footer is %d bytes, want %d", len(b), footerLen)
	}
	if string(b[:4]) != "SHSG" || b[5] != 1 || binary.BigEndian.Uint64(b[40:]) != 200 ||
		binary.BigEndian.Uint32(b[52:]) != 0xdeadbeef || binary.BigEndian.Uint32(b[56:]) != crc32.Checksum(b[:56], castagnoli) {
		t.Fatalf("footer layout % x", b)
	}
	got, err := decodeFooter(b)
	if err != nil || got != f {
		t.Fatalf("round trip %+v, %v", got, err)
	}
}

func TestDecodeFooterRejects(t *testing.T) {
	good := Footer{BaseOffset: 10, LastOffset: 19, MaxTimestamp: 5, RecordCount: 10, BatchesLen: 1000, IndexCount: 2}
	refooter := func(edit func(b []byte)) []byte {
		b := encodeFooter(good)
		edit(b)
		binary.BigEndian.PutUint32(b[offFooterCRC:], crc32.Checksum(b[:offFooterCRC], castagnoli))
		return b
	}
	with := func(edit func(f *Footer)) []byte { f := good; edit(&f); return encodeFooter(f) }
	cases := map[string][]byte{
		"empty":                nil,
		"short":                encodeFooter(good)[1:],
		"bad magic":            refooter(func(b []byte) { b[0] = 'X' }),
		"bad crc":              func() []byte { b := encodeFooter(good); b[20] ^= 1; return b }(),
		"version 5":            refooter(func(b []byte) { b[offFooterVersion+1] = 5 }),
		"reserved set":         refooter(func(b []byte) { b[offFooterReserved] = 1 }),
		"negative base":        with(func(f *Footer) { f.BaseOffset = -1 }),
		"last before base":     with(func(f *Footer) { f.LastOffset = 5 }),
		"too many records":     with(func(f *Footer) { f.RecordCount = 11 }),
		"no records":           with(func(f *Footer) { f.RecordCount = 0 }),
		"no index":             with(func(f *Footer) { f.IndexCount = 0 }),
		"index too big":        with(func(f *Footer) { f.IndexCount = 17 }),
		"timestamp below -1":   with(func(f *Footer) { f.MaxTimestamp = -2 }),
		"empty with records":   with(func(f *Footer) { f.BatchesLen = 0 }),
		"huge batches":         with(func(f *Footer) { f.BatchesLen = 1 << 62 }),
		"negative batches len": with(func(f *Footer) { f.BatchesLen = -61 }),
	}
	for name, b := range cases {
		t.Run(name, func(t *testing.T) {
			if _, err := decodeFooter(b); !errors.Is(err, ErrCorruptSegment) {
				t.Fatalf("err %v, want ErrCorruptSegment", err)
			}
		})
	}
	empty := Footer{BaseOffset: 10, LastOffset: 9, MaxTimestamp: -1}
	if _, err := decodeFooter(encodeFooter(empty)); err != nil {
		t.Fatalf("empty segment footer: %v", err)
	}
}

func TestOpenSealed(t *testing.T) {
	s := formatSegment(t, 500, 20, 5, 300)
	seg, err := openSealed("k", s.object())
	if err != nil {
		t.Fatal(err)
	}
	want := s.ft
	want.IndexCount = uint32(len(s.idx.entries()))
	want.IndexCRC = crc32.Checksum(encodeIndex(s.idx.entries()), castagnoli)
	if seg.footer() != want {
		t.Fatalf("footer %+v, want %+v", seg.footer(), want)
	}
	if len(s.idx.entries()) < 3 {
		t.Fatalf("test wants several index entries, has %d", len(s.idx.entries()))
	}
	if seg.index.maxTimestamp() != s.ft.MaxTimestamp {
		t.Fatalf("index max timestamp %d", seg.index.maxTimestamp())
	}
	empty := formatSeg{idx: newSparseIndex(0), ft: Footer{BaseOffset: 7, LastOffset: 6, MaxTimestamp: -1}}
	if seg, err := openSealed("e", empty.object()); err != nil {
		t.Fatal(err)
	} else if got, _ := seg.read(7, 100); got != nil {
		t.Fatalf("empty segment read %d bytes", len(got))
	}
}

func TestOpenSealedRejects(t *testing.T) {
	s := formatSegment(t, 500, 10, 3, 200)
	obj := s.object()
	n := len(obj)
	tail := func(entries []IndexEntry, edit func(f *Footer)) []byte {
		f := s.ft
		edit(&f)
		return append(bytes.Clone(s.batches), encodeSealTail(entries, nil, f)...)
	}
	entries := s.idx.entries()
	shifted := append([]IndexEntry(nil), entries...)
	shifted[1].Position++
	badTS := append([]IndexEntry(nil), entries...)
	badTS[1].MaxTimestampBefore++
	badRel := append([]IndexEntry(nil), entries...)
	badRel[1].RelOffset++
	pastEnd := append(append([]IndexEntry(nil), entries...), IndexEntry{RelOffset: 1000, Position: uint32(len(s.batches)), MaxTimestampBefore: s.ft.MaxTimestamp})
	gap := formatSegment(t, 500, 10, 3, 200)
	setBaseOffset(gap.batches[gap.pos[4]:], gap.hdrs[4].BaseOffset+1)
	cases := map[string][]byte{
		"empty":                      nil,
		"footer only, truncated":     obj[n-footerLen+1:],
		"truncated front":            obj[1:],
		"truncated footer":           obj[:n-1],
		"byte flipped in batch":      func() []byte { c := bytes.Clone(obj); c[s.pos[3]+70] ^= 1; return c }(),
		"byte flipped in index":      func() []byte { c := bytes.Clone(obj); c[len(s.batches)+5] ^= 1; return c }(),
		"byte flipped in footer":     func() []byte { c := bytes.Clone(obj); c[n-20] ^= 1; return c }(),
		"garbage appended":           append(bytes.Clone(obj), 0),
		"last offset lies":           tail(entries, func(f *Footer) { f.LastOffset-- }),
		"record count lies":          tail(entries, func(f *Footer) { f.RecordCount-- }),
		"max timestamp lies":         tail(entries, func(f *Footer) { f.MaxTimestamp++ }),
		"base offset lies":           tail(entries, func(f *Footer) { f.BaseOffset++; f.LastOffset++ }),
		"index inside a batch":       tail(shifted, func(*Footer) {}),
		"index timestamp lies":       tail(badTS, func(*Footer) {}),
		"index offset lies":          tail(badRel, func(*Footer) {}),
		"index past the batches":     tail(pastEnd, func(*Footer) {}),
		"offset gap between batches": append(gap.batches, encodeSealTail(gap.idx.entries(), nil, gap.ft)...),
	}
	for name, b := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := openSealed("topics/x/0/seg", b)
			var ce *CorruptionError
			if !errors.As(err, &ce) || !errors.Is(err, ErrCorruptSegment) || ce.Segment != "topics/x/0/seg" {
				t.Fatalf("err %v, want *CorruptionError for the segment", err)
			}
		})
	}
}

func TestSealedRead(t *testing.T) {
	s := formatSegment(t, 500, 20, 5, 300) // offsets 500..599, 5 per batch
	seg, err := openSealed("k", s.object())
	if err != nil {
		t.Fatal(err)
	}
	size := int(s.hdrs[0].Size()) // all batches are within a byte of each other
	cases := []struct {
		name     string
		off      int64
		maxBytes int
		first    int // index of the first batch returned, -1 for nil
		batches  int // -1: up to maxBytes
	}{
		{"segment base", 500, 1 << 20, 0, 20},
		{"mid batch", 512, 1 << 20, 2, 18},
		{"last offset", 599, 1 << 20, 19, 1},
		{"past last offset", 600, 1 << 20, -1, 0},
		{"below base", 3, 1 << 20, 0, 20},
		{"KIP-74: max below one batch", 537, 10, 7, 1},
		{"KIP-74: zero max", 537, 0, 7, 1},
		{"max fits exactly two", 500, int(s.pos[2]), 0, 2},
		{"max one byte short of two", 500, int(s.pos[2]) - 1, 0, 1},
		{"max mid", 505, 5*size + size/2, 1, 5},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := seg.read(c.off, c.maxBytes)
			if err != nil {
				t.Fatal(err)
			}
			if c.first < 0 {
				if got != nil {
					t.Fatalf("read %d bytes, want nil", len(got))
				}
				return
			}
			parts, err := SplitBatches(got)
			if err != nil {
				t.Fatal(err)
			}
			if len(parts) != c.batches {
				t.Fatalf("%d batches, want %d", len(parts), c.batches)
			}
			start := s.pos[c.first]
			if !bytes.Equal(got, s.batches[start:start+int64(len(got))]) {
				t.Fatal("read bytes differ from the segment's")
			}
			if len(parts) > 1 && len(got) > c.maxBytes {
				t.Fatalf("%d bytes over max %d", len(got), c.maxBytes)
			}
			if cap(got) != len(got) {
				t.Fatal("result has spare capacity into the segment")
			}
		})
	}
}

func TestSealedOffsetForTime(t *testing.T) {
	// Batch i holds offsets 500+5i.. with timestamps formatTS+100i+j.
	s := formatSegment(t, 500, 20, 5, 300)
	seg, err := openSealed("k", s.object())
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name  string
		ts    int64
		off   int64
		stamp int64
		found bool
	}{
		{"before everything", 0, 500, formatTS, true},
		{"first record", formatTS, 500, formatTS, true},
		{"inside batch 0", formatTS + 3, 503, formatTS + 3, true},
		{"between batches", formatTS + 50, 505, formatTS + 100, true},
		{"exact mid", formatTS + 1302, 567, formatTS + 1302, true},
		{"last record", formatTS + 1904, 599, formatTS + 1904, true},
		{"after everything", formatTS + 1905, 0, 0, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			off, stamp, found, err := seg.offsetForTime(c.ts)
			if err != nil {
				t.Fatal(err)
			}
			if found != c.found || off != c.off || stamp != c.stamp {
				t.Fatalf("offsetForTime(%d) = %d, %d, %v; want %d, %d, %v", c.ts, off, stamp, found, c.off, c.stamp, c.found)
			}
		})
	}
}

func TestSealedOffsetForTimeOddBatches(t *testing.T) {
	// Batch 0 overstates its max timestamp; batch 1 is log append time.
	b0 := formatBatch(t, 0, []Record{{Timestamp: 10}, {Timestamp: 20}}, CodecNone)
	binary.BigEndian.PutUint64(b0[offMaxTimestamp:], 1000)
	formatFixCRC(b0)
	b1 := formatBatch(t, 2, []Record{{Timestamp: 5}, {Timestamp: 6}}, CodecGzip)
	setLogAppendTime(b1, 500)
	b2 := formatBatch(t, 4, []Record{{Timestamp: 700}}, CodecNone)
	idx := newSparseIndex(1)
	pos := int64(0)
	for _, b := range [][]byte{b0, b1, b2} {
		h, err := ValidateBatch(b)
		if err != nil {
			t.Fatal(err)
		}
		idx.add(h, 0, pos)
		pos += int64(len(b))
	}
	batches := slicesConcat(b0, b1, b2)
	ft := Footer{BaseOffset: 0, LastOffset: 4, MaxTimestamp: 1000, RecordCount: 5, BatchesLen: int64(len(batches))}
	seg, err := openSealed("k", append(batches, encodeSealTail(idx.entries(), nil, ft)...))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ ts, off, stamp int64 }{{15, 1, 20}, {21, 2, 500}, {501, 4, 700}} {
		off, stamp, found, err := seg.offsetForTime(c.ts)
		if err != nil || !found || off != c.off || stamp != c.stamp {
			t.Errorf("offsetForTime(%d) = %d, %d, %v, %v; want %d, %d", c.ts, off, stamp, found, err, c.off, c.stamp)
		}
	}
	if _, _, found, _ := seg.offsetForTime(701); found {
		t.Error("found a record above every record timestamp")
	}
}

func TestSealFileAndReadFooterFile(t *testing.T) {
	s := formatSegment(t, 100, 8, 4, 200)
	dir := t.TempDir()
	path := filepath.Join(dir, "00000000000000000100.log")
	// A stale tail (a write the partition rolled back) must be cut off.
	if err := os.WriteFile(path, append(bytes.Clone(s.batches), "stale"...), 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, sealed, err := readFooterFile(osFile{f}); err != nil || sealed {
		t.Fatalf("active file: sealed %v, err %v", sealed, err)
	}
	ft := s.ft
	ft.BatchesLen = 0 // filled in by sealFile
	if err := sealFile(osFile{f}, int64(len(s.batches)), s.idx, nil, ft); err != nil {
		t.Fatal(err)
	}
	got, sealed, err := readFooterFile(osFile{f})
	if err != nil || !sealed {
		t.Fatalf("sealed file: sealed %v, err %v", sealed, err)
	}
	if got.BatchesLen != int64(len(s.batches)) || got.LastOffset != s.ft.LastOffset || got.IndexCount != uint32(len(s.idx.entries())) {
		t.Fatalf("footer %+v", got)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(data, s.object()) {
		t.Fatal("sealed file differs from the sealed object encoding")
	}
	if _, err := openSealed(path, data); err != nil {
		t.Fatal(err)
	}
	// Torn sealing: not sealed; recovery cuts back to the batches.
	for _, cut := range []int{1, footerLen, footerLen + 8} {
		if err := f.Truncate(int64(len(data) - cut)); err != nil {
			t.Fatal(err)
		}
		if _, sealed, err := readFooterFile(osFile{f}); err != nil || sealed {
			t.Fatalf("cut %d: sealed %v, err %v", cut, sealed, err)
		}
	}
	res, err := recoverPath(path, 100, formatDiscardLogger())
	if err != nil || res.ValidBytes != int64(len(s.batches)) || res.Batches != 8 {
		t.Fatalf("recover torn seal: %+v, %v", res, err)
	}
	if err := sealFile(osFile{f}, 10, s.idx, nil, ft); err == nil {
		t.Fatal("sealFile with a footer that cannot fit: no error")
	}
}

func TestReadFooterFileSmall(t *testing.T) {
	for _, size := range []int{0, 1, footerLen - 1, footerLen, footerLen + 16} {
		path := filepath.Join(t.TempDir(), "f")
		if err := os.WriteFile(path, make([]byte, size), 0o644); err != nil {
			t.Fatal(err)
		}
		f, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		_, sealed, err := readFooterFile(osFile{f})
		f.Close()
		if err != nil || sealed {
			t.Errorf("%d zero bytes: sealed %v, err %v", size, sealed, err)
		}
	}
}

func TestCorruptionError(t *testing.T) {
	cause := corruptf("crc")
	var err error = &CorruptionError{Segment: "s", Offset: 12, Cause: cause}
	err = fmt.Errorf("read: %w", err)
	if !errors.Is(err, ErrCorruptSegment) || !errors.Is(err, ErrCorruptBatch) {
		t.Fatalf("errors.Is fails on %v", err)
	}
	if want := "read: log: corrupt segment s at byte 12: log: corrupt record batch: crc"; err.Error() != want {
		t.Fatalf("message %q, want %q", err.Error(), want)
	}
	if !errors.Is(&OffsetGapError{Want: 1, Got: 2}, ErrCorruptSegment) {
		t.Fatal("offset gap is not ErrCorruptSegment")
	}
}

// checkGolden compares a segment object and its description (describe of
// the bytes) with testdata/golden/<name>.seg and <name>.txt, which -update
// rewrites, and returns the golden bytes. A difference is a format change.
func checkGolden(t *testing.T, name string, obj []byte, describe func([]byte) string) []byte {
	t.Helper()
	segPath := filepath.Join("testdata", "golden", name+".seg")
	txtPath := filepath.Join("testdata", "golden", name+".txt")
	txt := describe(obj)
	if *update {
		if err := os.MkdirAll(filepath.Dir(segPath), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(segPath, obj, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(txtPath, []byte(txt), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(segPath)
	if err != nil {
		t.Fatalf("%v (run go test ./log/ -run Golden -update)", err)
	}
	if !bytes.Equal(obj, want) {
		t.Errorf("segment bytes differ from %s:\n%s", segPath, describe(want))
	}
	if wantTxt, err := os.ReadFile(txtPath); err != nil || txt != string(wantTxt) {
		t.Errorf("description differs from %s (%v):\n got:\n%s\nwant:\n%s", txtPath, err, txt, wantTxt)
	}
	return want
}

// formatGoldenSegment is the segment behind testdata/golden/sealed_v1.seg:
// fixed records and timestamps, uncompressed, so its bytes are stable.
func formatGoldenSegment(tb testing.TB) formatSeg {
	return formatSegment(tb, 4096, 6, 3, 200)
}

// TestGoldenSealedSegment pins the sealed segment bytes. A diff here is a
// format change: bump footerVersion and keep reading version 1.
func TestGoldenSealedSegment(t *testing.T) {
	s := formatGoldenSegment(t)
	obj := s.object()
	describe := func(b []byte) string { return formatDescribeTail(b, s.ft.BatchesLen) }
	want := checkGolden(t, "sealed_v1", obj, describe)
	// The golden bytes stay readable.
	seg, err := openSealed("sealed_v1", want)
	if err != nil {
		t.Fatal(err)
	}
	recs, err := DecodeBatches(seg.data, 0)
	if err != nil || len(recs) != 18 || recs[17].Offset != 4096+17 || string(recs[17].Value) != "value 5.2" {
		t.Fatalf("golden records: %d, %v", len(recs), err)
	}
}

// formatDescribeTail renders a sealed object's index and footer as
// annotated hex.
func formatDescribeTail(obj []byte, batchesLen int64) string {
	var sb strings.Builder
	fmt.Fprintf(&sb, "batch region: %d bytes\n", batchesLen)
	if int64(len(obj)) < batchesLen+footerLen {
		return sb.String() + "(too short)\n"
	}
	idx := obj[batchesLen : len(obj)-footerLen]
	for i := 0; i+indexEntryLen <= len(idx); i += indexEntryLen {
		e := idx[i : i+indexEntryLen]
		fmt.Fprintf(&sb, "index %d: relOffset %s position %s maxTimestampBefore %s\n", i/indexEntryLen,
			hex.EncodeToString(e[0:4]), hex.EncodeToString(e[4:8]), hex.EncodeToString(e[8:16]))
	}
	ft := obj[len(obj)-footerLen:]
	for _, f := range []struct {
		name     string
		off, len int
	}{{"magic", 0, 4}, {"version", 4, 2}, {"reserved", 6, 2}, {"baseOffset", 8, 8}, {"lastOffset", 16, 8},
		{"maxTimestamp", 24, 8}, {"recordCount", 32, 8}, {"batchesLen", 40, 8}, {"indexCount", 48, 4},
		{"indexCRC", 52, 4}, {"footerCRC", 56, 4}} {
		fmt.Fprintf(&sb, "footer %2d %-12s %s\n", f.off, f.name, hex.EncodeToString(ft[f.off:f.off+f.len]))
	}
	return sb.String()
}
