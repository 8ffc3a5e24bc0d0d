package log

import (
	"errors"
	"math"
	"reflect"
	"testing"
)

// formatIndexed builds an index over batches at the given positions and
// max timestamps, with base offsets 100 apart from segment base 1000.
func formatIndexed(x *sparseIndex, positions []int64, maxTS []int64) {
	for i, pos := range positions {
		x.add(BatchHeader{BaseOffset: 1000 + int64(i)*100, LastOffsetDelta: 99, NumRecords: 100,
			MaxTimestamp: maxTS[i]}, 1000, pos)
	}
}

func TestSparseIndexAdd(t *testing.T) {
	x := newSparseIndex(100)
	// Batches of 60 bytes: entries at 0, 120, 240 (each >= 100 after the last).
	formatIndexed(x, []int64{0, 60, 120, 180, 240, 300}, []int64{50, 40, 70, 60, 90, 80})
	want := []IndexEntry{
		{RelOffset: 0, Position: 0, MaxTimestampBefore: -1},
		{RelOffset: 200, Position: 120, MaxTimestampBefore: 50},
		{RelOffset: 400, Position: 240, MaxTimestampBefore: 70},
	}
	if got := x.entries(); !reflect.DeepEqual(got, want) {
		t.Fatalf("entries\n got %+v\nwant %+v", got, want)
	}
	if x.maxTimestamp() != 90 {
		t.Fatalf("maxTimestamp %d, want 90", x.maxTimestamp())
	}
	// entries returns a copy.
	x.entries()[0].Position = 99
	if x.entries()[0].Position != 0 {
		t.Fatal("entries shares the index's storage")
	}
}

func TestSparseIndexZeroValue(t *testing.T) {
	var x sparseIndex // the default interval, no timestamps yet
	if x.maxTimestamp() != -1 || x.lookupOffset(5, 0) != 0 || x.lookupTime(5) != 0 {
		t.Fatal("empty zero index misbehaves")
	}
	formatIndexed(&x, []int64{0, 4000, 4096, 8192}, []int64{-5, 10, 20, 30})
	want := []IndexEntry{
		{RelOffset: 0, Position: 0, MaxTimestampBefore: -1},
		{RelOffset: 200, Position: 4096, MaxTimestampBefore: 10},
		{RelOffset: 300, Position: 8192, MaxTimestampBefore: 20},
	}
	if got := x.entries(); !reflect.DeepEqual(got, want) {
		t.Fatalf("entries\n got %+v\nwant %+v", got, want)
	}
}

func TestSparseIndexBeyond32Bits(t *testing.T) {
	x := newSparseIndex(1)
	formatIndexed(x, []int64{0, math.MaxUint32 + 1}, []int64{1, 2})
	if n := len(x.entries()); n != 1 {
		t.Fatalf("%d entries, want 1 (no entry beyond 32 bits)", n)
	}
	if x.maxTimestamp() != 2 || x.lookupOffset(1100, 1000) != 0 {
		t.Fatal("lookups over an unindexed batch")
	}
}

func TestSparseIndexLookups(t *testing.T) {
	x := newSparseIndex(100)
	formatIndexed(x, []int64{0, 60, 120, 180, 240, 300}, []int64{50, 40, 70, 60, 90, 80})
	// Entries: base 1000 at 0 (before -1), 1200 at 120 (before 50), 1400 at 240 (before 70).
	offsets := []struct {
		name string
		off  int64
		want int64
	}{
		{"below segment", 10, 0},
		{"segment base", 1000, 0},
		{"inside first entry's span", 1199, 0},
		{"second entry base", 1200, 120},
		{"between entries", 1350, 120},
		{"last entry", 1400, 240},
		{"past everything", 99999, 240},
	}
	for _, c := range offsets {
		t.Run("offset/"+c.name, func(t *testing.T) {
			if got := x.lookupOffset(c.off, 1000); got != c.want {
				t.Fatalf("lookupOffset(%d) = %d, want %d", c.off, got, c.want)
			}
		})
	}
	times := []struct {
		name string
		ts   int64
		want int64
	}{
		{"minus one", -1, 0},
		{"zero", 0, 0},
		{"at first batch max", 50, 0},
		{"just above first batch", 51, 120},
		{"at 70", 70, 120},
		{"above 70", 71, 240},
		{"above everything", 1000, 240},
	}
	for _, c := range times {
		t.Run("time/"+c.name, func(t *testing.T) {
			if got := x.lookupTime(c.ts); got != c.want {
				t.Fatalf("lookupTime(%d) = %d, want %d", c.ts, got, c.want)
			}
		})
	}
}

func TestIndexEncoding(t *testing.T) {
	entries := []IndexEntry{
		{RelOffset: 0, Position: 0, MaxTimestampBefore: -1},
		{RelOffset: 7, Position: 4096, MaxTimestampBefore: 1_700_000_000_000},
		{RelOffset: math.MaxUint32, Position: math.MaxUint32, MaxTimestampBefore: math.MaxInt64},
	}
	b := encodeIndex(entries)
	if len(b) != 48 {
		t.Fatalf("%d bytes, want 48", len(b))
	}
	// Entry 1, byte by byte: big-endian u32, u32, i64.
	want1 := []byte{0, 0, 0, 7, 0, 0, 0x10, 0, 0, 0, 0x01, 0x8b, 0xcf, 0xe5, 0x68, 0}
	if got := b[16:32]; string(got) != string(want1) {
		t.Fatalf("entry 1 % x, want % x", got, want1)
	}
	got, err := decodeIndex(b)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, entries) {
		t.Fatalf("round trip\n got %+v\nwant %+v", got, entries)
	}
	if got, err := decodeIndex(nil); err != nil || len(got) != 0 {
		t.Fatalf("empty index: %v %v", got, err)
	}
}

func TestDecodeIndexRejects(t *testing.T) {
	e := func(rel, pos uint32, ts int64) IndexEntry {
		return IndexEntry{RelOffset: rel, Position: pos, MaxTimestampBefore: ts}
	}
	cases := map[string][]byte{
		"partial entry":             encodeIndex([]IndexEntry{e(0, 0, -1)})[:15],
		"offset goes back":          encodeIndex([]IndexEntry{e(5, 0, -1), e(4, 100, 3)}),
		"offset repeats":            encodeIndex([]IndexEntry{e(5, 0, -1), e(5, 100, 3)}),
		"position goes back":        encodeIndex([]IndexEntry{e(0, 100, -1), e(4, 50, 3)}),
		"timestamp goes back":       encodeIndex([]IndexEntry{e(0, 0, 10), e(4, 50, 3)}),
		"timestamp below minus one": encodeIndex([]IndexEntry{e(0, 0, -2)}),
	}
	for name, b := range cases {
		t.Run(name, func(t *testing.T) {
			if _, err := decodeIndex(b); !errors.Is(err, ErrCorruptSegment) {
				t.Fatalf("err %v, want ErrCorruptSegment", err)
			}
		})
	}
}

func TestNewSparseIndexFrom(t *testing.T) {
	entries := []IndexEntry{{0, 0, -1}, {10, 5000, 30}}
	x := newSparseIndexFrom(entries, 0)
	if x.lookupOffset(1015, 1000) != 5000 || x.lookupTime(31) != 5000 || x.maxTimestamp() != 30 {
		t.Fatal("rebuilt index lookups")
	}
	// Adding continues from the last entry with the default interval.
	x.add(BatchHeader{BaseOffset: 1020, MaxTimestamp: 40}, 1000, 5000+defaultIndexInterval-1)
	x.add(BatchHeader{BaseOffset: 1030, MaxTimestamp: 35}, 1000, 5000+defaultIndexInterval)
	want := IndexEntry{RelOffset: 30, Position: 5000 + defaultIndexInterval, MaxTimestampBefore: 40}
	if got := x.entries(); len(got) != 3 || got[2] != want {
		t.Fatalf("entries %+v, want third %+v", got, want)
	}
}
