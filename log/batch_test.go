package log

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"testing"

	"github.com/twmb/franz-go/pkg/kbin"
)

// Helpers shared by the format tests (batch, records, index, sealed, scan,
// fuzz). They are prefixed "format" to stay clear of other tests' helpers.

// formatTS is the first timestamp of generated test records.
const formatTS = 1_700_000_000_000

// formatRecords returns n records exercising keys, null keys, empty values,
// headers (one with a null value) and increasing timestamps, with values
// of valueSize bytes, offsets 0..n-1.
func formatRecords(n, valueSize int) []Record {
	recs := make([]Record, n)
	for i := range recs {
		r := Record{
			Offset:    int64(i),
			Timestamp: formatTS + int64(i)*10,
			Key:       []byte(fmt.Sprintf("key-%d", i)),
			Value:     bytes.Repeat([]byte{byte('a' + i%26)}, valueSize),
		}
		switch i % 4 {
		case 1:
			r.Key = nil
		case 2:
			r.Value = []byte{}
			r.Headers = []Header{{Key: "h1", Value: []byte("v1")}, {Key: "", Value: nil}}
		case 3:
			r.Headers = []Header{{Key: "trace", Value: []byte{}}}
		}
		recs[i] = r
	}
	return recs
}

// formatBatch encodes recs with codec and sets the base offset.
func formatBatch(tb testing.TB, base int64, recs []Record, codec Codec) []byte {
	tb.Helper()
	b, err := EncodeBatch(recs, codec, formatTS)
	if err != nil {
		tb.Fatal(err)
	}
	setBaseOffset(b, base)
	return b
}

// formatFixCRC recomputes a batch's CRC after a test edited it.
func formatFixCRC(b []byte) []byte {
	binary.BigEndian.PutUint32(b[offCRC:], crc32.Checksum(b[offAttributes:], castagnoli))
	return b
}

// formatWithRegion returns batch b's header followed by region, with
// Length and CRC fixed.
func formatWithRegion(b, region []byte) []byte {
	out := append(bytes.Clone(b[:batchHeaderLen]), region...)
	binary.BigEndian.PutUint32(out[offLength:], uint32(len(out)-batchLengthOverhead))
	return formatFixCRC(out)
}

// formatRecordBytes encodes one record with the given offset delta.
func formatRecordBytes(offDelta int32, tsDelta int64, key, value []byte) []byte {
	return appendRecord(nil, &Record{Key: key, Value: value}, offDelta, tsDelta)
}

func put32(off int, v int32) func([]byte) []byte {
	return func(b []byte) []byte { binary.BigEndian.PutUint32(b[off:], uint32(v)); return b }
}

func TestBatchHeaderAccessors(t *testing.T) {
	b := formatBatch(t, 42, formatRecords(5, 10), CodecLZ4)
	h, err := ParseBatchHeader(b)
	if err != nil {
		t.Fatal(err)
	}
	want := BatchHeader{
		BaseOffset: 42, Length: int32(len(b) - 12), PartitionLeaderEpoch: -1, Magic: 2,
		CRC: crc32.Checksum(b[21:], castagnoli), Attributes: int16(CodecLZ4), LastOffsetDelta: 4,
		FirstTimestamp: formatTS, MaxTimestamp: formatTS + 40, ProducerID: -1, ProducerEpoch: -1,
		BaseSequence: -1, NumRecords: 5,
	}
	if h != want {
		t.Fatalf("header\n got %+v\nwant %+v", h, want)
	}
	if h.Codec() != CodecLZ4 || h.IsControl() || h.IsTransactional() || h.LogAppendTime() {
		t.Errorf("attributes: codec %v control %v txn %v lat %v", h.Codec(), h.IsControl(), h.IsTransactional(), h.LogAppendTime())
	}
	if h.NextOffset() != 47 || h.Size() != len(b) {
		t.Errorf("NextOffset %d Size %d, want 47 %d", h.NextOffset(), h.Size(), len(b))
	}
	for _, c := range []struct {
		attr                 int16
		control, txn, logApp bool
	}{{0x20, true, false, false}, {0x10, false, true, false}, {0x08, false, false, true}, {0x38, true, true, true}} {
		h := BatchHeader{Attributes: c.attr}
		if h.IsControl() != c.control || h.IsTransactional() != c.txn || h.LogAppendTime() != c.logApp {
			t.Errorf("attributes %#x: control %v txn %v logAppend %v", c.attr, h.IsControl(), h.IsTransactional(), h.LogAppendTime())
		}
	}
	if _, err := ParseBatchHeader(b[:60]); !errors.Is(err, ErrCorruptBatch) {
		t.Errorf("short header: err %v, want ErrCorruptBatch", err)
	}
}

func TestValidateBatchAccepts(t *testing.T) {
	for _, codec := range []Codec{CodecNone, CodecGzip, CodecSnappy, CodecLZ4, CodecZstd} {
		for _, n := range []int{1, 2, 50} {
			t.Run(fmt.Sprintf("%s/%d", codec, n), func(t *testing.T) {
				b := formatBatch(t, 1000, formatRecords(n, 33), codec)
				h, err := ValidateBatch(b)
				if err != nil {
					t.Fatal(err)
				}
				if h.NumRecords != int32(n) || h.Codec() != codec || h.BaseOffset != 1000 {
					t.Fatalf("header %+v", h)
				}
			})
		}
	}
}

func TestValidateBatchRejects(t *testing.T) {
	recs := formatRecords(3, 20)
	base := formatBatch(t, 0, recs, CodecNone)
	region := base[batchHeaderLen:]
	r := func(offDelta int32, key []byte) []byte { return formatRecordBytes(offDelta, 0, key, []byte("v")) }
	cases := []struct {
		name   string
		mutate func(b []byte) []byte
		want   error
	}{
		{"empty", func([]byte) []byte { return nil }, ErrCorruptBatch},
		{"truncated header", func(b []byte) []byte { return b[:30] }, ErrCorruptBatch},
		{"truncated body", func(b []byte) []byte { return b[:len(b)-1] }, ErrCorruptBatch},
		{"garbage after batch", func(b []byte) []byte { return append(b, 1, 2, 3) }, ErrCorruptBatch},
		{"two batches", func(b []byte) []byte { return append(b, b...) }, ErrCorruptBatch},
		{"length says more", func(b []byte) []byte { return put32(offLength, int32(len(b)-11))(b) }, ErrCorruptBatch},
		{"length says less", func(b []byte) []byte { return put32(offLength, int32(len(b)-13))(b) }, ErrCorruptBatch},
		{"length below header", func(b []byte) []byte { return put32(offLength, 10)(b) }, ErrCorruptBatch},
		{"bad crc in records", func(b []byte) []byte { b[len(b)-5] ^= 0x40; return b }, ErrCorruptBatch},
		{"bad crc in header", func(b []byte) []byte { b[offFirstTimestamp] ^= 1; return b }, ErrCorruptBatch},
		{"bad crc field", func(b []byte) []byte { b[offCRC] ^= 1; return b }, ErrCorruptBatch},
		{"magic 1", func(b []byte) []byte { b[offMagic] = 1; return formatFixCRC(b) }, ErrInvalidBatch},
		{"magic 3", func(b []byte) []byte { b[offMagic] = 3; return b }, ErrInvalidBatch},
		{"count says more", func(b []byte) []byte {
			return formatFixCRC(put32(offLastOffsetDelta, 3)(put32(offRecordCount, 4)(b)))
		}, ErrInvalidBatch},
		{"count says fewer", func(b []byte) []byte {
			return formatFixCRC(put32(offLastOffsetDelta, 1)(put32(offRecordCount, 2)(b)))
		}, ErrInvalidBatch},
		{"zero records", func(b []byte) []byte {
			return formatFixCRC(put32(offLastOffsetDelta, -1)(put32(offRecordCount, 0)(b)))
		}, ErrInvalidBatch},
		{"lastOffsetDelta lies", func(b []byte) []byte { return formatFixCRC(put32(offLastOffsetDelta, 5)(b)) }, ErrInvalidBatch},
		{"extra whole record", func(b []byte) []byte {
			return formatWithRegion(b, append(bytes.Clone(region), r(3, nil)...))
		}, ErrInvalidBatch},
		{"wrong offset delta", func(b []byte) []byte {
			return formatWithRegion(b, slicesConcat(r(0, nil), r(2, nil), r(1, nil)))
		}, ErrInvalidBatch},
		{"max timestamp understated", func(b []byte) []byte {
			binary.BigEndian.PutUint64(b[offMaxTimestamp:], formatTS)
			return formatFixCRC(b)
		}, ErrInvalidBatch},
		{"trailing byte in records", func(b []byte) []byte {
			return formatWithRegion(b, append(bytes.Clone(region), 0))
		}, ErrCorruptBatch},
		{"record overruns region", func(b []byte) []byte {
			return formatWithRegion(b, region[:len(region)-1])
		}, ErrCorruptBatch},
		{"bad record length varint", func(b []byte) []byte {
			return formatWithRegion(b, append(bytes.Clone(region), 0xff, 0xff, 0xff, 0xff, 0xff, 0xff))
		}, ErrCorruptBatch},
		{"key length -2", func(b []byte) []byte {
			bad := r(2, nil)
			bad[len(bad)-4] = 3 // zigzag(-2): the key length of a null-key record
			return formatWithRegion(b, slicesConcat(r(0, nil), r(1, nil), bad))
		}, ErrCorruptBatch},
		{"field overruns record", func(b []byte) []byte {
			bad := r(2, []byte("kk"))
			bad[4] = 20 // key length 10 in a short record
			return formatWithRegion(b, slicesConcat(r(0, nil), r(1, nil), bad))
		}, ErrCorruptBatch},
		{"unknown codec", func(b []byte) []byte { b[offAttributes+1] |= 5; return formatFixCRC(b) }, ErrCorruptBatch},
		{"gzip flag on raw records", func(b []byte) []byte { b[offAttributes+1] |= 1; return formatFixCRC(b) }, ErrCorruptBatch},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b := c.mutate(bytes.Clone(base))
			_, err := ValidateBatch(b)
			if !errors.Is(err, c.want) {
				t.Fatalf("err %v, want %v", err, c.want)
			}
			var be *BatchError
			if !errors.As(err, &be) || be.Detail == "" {
				t.Fatalf("err %T %v is not a *BatchError with detail", err, err)
			}
		})
	}
}

func slicesConcat(bs ...[]byte) []byte { return bytes.Join(bs, nil) }

func TestFormatRecordBytesLayout(t *testing.T) {
	// The offsets "key length -2" and "field overruns record" poke at.
	b := formatRecordBytes(2, 0, nil, []byte("v"))
	l, n := kbin.Varint(b)
	if n != 1 || int(l) != len(b)-1 || b[1] != 0 || b[2] != 0 || b[3] != 4 || b[4] != 1 {
		t.Fatalf("record bytes % x", b)
	}
	if b = formatRecordBytes(2, 0, []byte("kk"), []byte("v")); b[4] != 4 {
		t.Fatalf("record bytes % x", b)
	}
}

func TestSplitBatches(t *testing.T) {
	b1 := formatBatch(t, 0, formatRecords(2, 5), CodecNone)
	b2 := formatBatch(t, 2, formatRecords(1, 50), CodecZstd)
	b3 := formatBatch(t, 3, formatRecords(7, 1), CodecGzip)
	all := slicesConcat(b1, b2, b3)
	cases := []struct {
		name string
		in   []byte
		want [][]byte
		err  bool
	}{
		{"empty", nil, nil, false},
		{"one", b1, [][]byte{b1}, false},
		{"three", all, [][]byte{b1, b2, b3}, false},
		{"trailing partial batch", all[:len(all)-1], nil, true},
		{"trailing partial length", append(bytes.Clone(b1), 0, 0, 0), nil, true},
		{"length below header", put32(offLength, 48)(bytes.Clone(b1)), nil, true},
		{"negative length", put32(offLength, -1)(bytes.Clone(b1)), nil, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := SplitBatches(c.in)
			if c.err {
				if !errors.Is(err, ErrCorruptBatch) {
					t.Fatalf("err %v, want ErrCorruptBatch", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(c.want) {
				t.Fatalf("%d batches, want %d", len(got), len(c.want))
			}
			for i := range got {
				if !bytes.Equal(got[i], c.want[i]) || cap(got[i]) != len(got[i]) {
					t.Errorf("batch %d differs or has spare capacity", i)
				}
			}
		})
	}
}

func TestSetBaseOffset(t *testing.T) {
	b := formatBatch(t, 0, formatRecords(3, 5), CodecSnappy)
	setBaseOffset(b, 1<<40)
	h, err := ValidateBatch(b)
	if err != nil {
		t.Fatal(err)
	}
	recs, err := DecodeBatch(b)
	if err != nil {
		t.Fatal(err)
	}
	if h.BaseOffset != 1<<40 || recs[0].Offset != 1<<40 || recs[2].Offset != 1<<40+2 {
		t.Fatalf("base %d, offsets %d..%d", h.BaseOffset, recs[0].Offset, recs[2].Offset)
	}
}

func TestSetLogAppendTime(t *testing.T) {
	for _, codec := range []Codec{CodecNone, CodecLZ4} {
		t.Run(codec.String(), func(t *testing.T) {
			b := formatBatch(t, 5, formatRecords(4, 5), codec)
			const now = formatTS + 99_999
			setLogAppendTime(b, now)
			h, err := ValidateBatch(b)
			if err != nil {
				t.Fatalf("CRC or validation broken by setLogAppendTime: %v", err)
			}
			if !h.LogAppendTime() || h.MaxTimestamp != now || h.Codec() != codec || h.FirstTimestamp != formatTS {
				t.Fatalf("header %+v", h)
			}
			recs, err := DecodeBatch(b)
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range recs {
				if r.Timestamp != now {
					t.Errorf("record %d timestamp %d, want %d", r.Offset, r.Timestamp, now)
				}
			}
			// Even a time below the records' create times is accepted:
			// with log append time the header's max is the truth.
			setLogAppendTime(b, 1)
			if _, err := ValidateBatch(b); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func BenchmarkValidateBatch(b *testing.B) {
	for _, size := range []int{100, 1024} {
		b.Run(fmt.Sprintf("%dB", size), func(b *testing.B) {
			batch := formatBatch(b, 0, formatRecords(100, size), CodecNone)
			b.SetBytes(int64(len(batch)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := ValidateBatch(batch); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	// The shape `streamhouse bench` produces: null keys, 100 B values,
	// no headers, offsets and timestamps counting up.
	b.Run("100B-value-only", func(b *testing.B) {
		recs := make([]Record, 500)
		for i := range recs {
			recs[i] = Record{Offset: int64(i), Timestamp: formatTS + int64(i), Value: bytes.Repeat([]byte{'v'}, 100)}
		}
		batch := formatBatch(b, 0, recs, CodecNone)
		b.SetBytes(int64(len(batch)))
		b.ReportAllocs()
		for b.Loop() {
			if _, err := ValidateBatch(batch); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("1024B-lz4", func(b *testing.B) {
		batch := formatBatch(b, 0, formatRecords(100, 1024), CodecLZ4)
		b.SetBytes(int64(len(batch)))
		b.ReportAllocs()
		for b.Loop() {
			if _, err := ValidateBatch(batch); err != nil {
				b.Fatal(err)
			}
		}
	})
}
