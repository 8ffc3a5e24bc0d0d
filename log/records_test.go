package log

import (
	"bytes"
	"errors"
	"fmt"
	"reflect"
	"sync"
	"testing"
)

var formatCodecs = []Codec{CodecNone, CodecGzip, CodecSnappy, CodecLZ4, CodecZstd}

func TestCodecString(t *testing.T) {
	want := map[Codec]string{CodecNone: "none", CodecGzip: "gzip", CodecSnappy: "snappy",
		CodecLZ4: "lz4", CodecZstd: "zstd", Codec(9): "codec(9)"}
	for c, s := range want {
		if c.String() != s {
			t.Errorf("Codec(%d).String() = %q, want %q", int8(c), c.String(), s)
		}
	}
}

// TestCodecRoundTrip is EncodeBatch -> ValidateBatch -> DecodeBatch for
// every codec, with keys, null keys, empty values, headers and timestamps.
func TestCodecRoundTrip(t *testing.T) {
	sets := map[string][]Record{
		"one":          formatRecords(1, 0),
		"mixed":        formatRecords(9, 100),
		"big values":   formatRecords(3, 70_000),
		"all null":     {{Timestamp: formatTS}, {Timestamp: formatTS - 5}},
		"out of order": {{Timestamp: formatTS + 50, Value: []byte("b")}, {Timestamp: formatTS, Value: []byte("a")}},
	}
	for _, codec := range formatCodecs {
		for name, recs := range sets {
			t.Run(codec.String()+"/"+name, func(t *testing.T) {
				b := formatBatch(t, 77, recs, codec)
				h, err := ValidateBatch(b)
				if err != nil {
					t.Fatal(err)
				}
				if h.Codec() != codec || int(h.NumRecords) != len(recs) {
					t.Fatalf("header %+v", h)
				}
				got, err := DecodeBatch(b)
				if err != nil {
					t.Fatal(err)
				}
				want := make([]Record, len(recs))
				for i, r := range recs {
					r.Offset = 77 + int64(i)
					want[i] = r
				}
				if !reflect.DeepEqual(got, want) {
					t.Fatalf("decoded\n got %+v\nwant %+v", got, want)
				}
			})
		}
	}
}

func TestEncodeBatchTimestamps(t *testing.T) {
	recs := []Record{{Timestamp: 0}, {Timestamp: 500}, {Timestamp: 0}, {Timestamp: 2_000}}
	b, err := EncodeBatch(recs, CodecNone, 1_000)
	if err != nil {
		t.Fatal(err)
	}
	h, _ := ParseBatchHeader(b)
	if h.FirstTimestamp != 1_000 || h.MaxTimestamp != 2_000 {
		t.Fatalf("first %d max %d, want 1000 2000", h.FirstTimestamp, h.MaxTimestamp)
	}
	if h.ProducerID != -1 || h.ProducerEpoch != -1 || h.BaseSequence != -1 || h.PartitionLeaderEpoch != -1 || h.BaseOffset != 0 {
		t.Fatalf("producer fields %+v", h)
	}
	got, err := DecodeBatch(b)
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range []int64{1_000, 500, 1_000, 2_000} {
		if got[i].Timestamp != want {
			t.Errorf("record %d timestamp %d, want %d", i, got[i].Timestamp, want)
		}
	}
}

func TestEncodeBatchErrors(t *testing.T) {
	if _, err := EncodeBatch(nil, CodecNone, 0); err == nil {
		t.Error("no records: no error")
	}
	if _, err := EncodeBatch(formatRecords(1, 1), Codec(5), 0); err == nil {
		t.Error("codec 5: no error")
	}
	if _, err := EncodeBatch(formatRecords(1, 1), Codec(-1), 0); err == nil {
		t.Error("codec -1: no error")
	}
}

func TestDecodeBatchDoesNotAlias(t *testing.T) {
	b := formatBatch(t, 0, formatRecords(4, 8), CodecNone)
	recs, err := DecodeBatch(b)
	if err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf("%+v", recs)
	for i := range b {
		b[i] = 0xee
	}
	if got := fmt.Sprintf("%+v", recs); got != want {
		t.Fatalf("records changed with the input buffer:\n%s\n%s", got, want)
	}
	// Appending to a decoded value must not overwrite the next field.
	key1 := bytes.Clone(recs[2].Headers[0].Value)
	_ = append(recs[2].Value, 'x', 'x', 'x', 'x')
	if !bytes.Equal(recs[2].Headers[0].Value, key1) {
		t.Fatal("append to a value spilled into a header")
	}
}

func TestDecodeBatchControl(t *testing.T) {
	b := formatBatch(t, 9, formatRecords(1, 3), CodecNone)
	b[offAttributes+1] |= attrControl
	formatFixCRC(b)
	recs, err := DecodeBatch(b)
	if err != nil || recs != nil {
		t.Fatalf("control batch: %v, %v; want no records", recs, err)
	}
	recs, err = decodeBatch(b, true)
	if err != nil || len(recs) != 1 || recs[0].Offset != 9 {
		t.Fatalf("control batch with control records: %v, %v", recs, err)
	}
}

func TestDecodeBatchRejectsCorruption(t *testing.T) {
	b := formatBatch(t, 0, formatRecords(3, 30), CodecGzip)
	cases := map[string][]byte{
		"crc":       func() []byte { c := bytes.Clone(b); c[len(c)-3] ^= 1; return c }(),
		"truncated": b[:len(b)-1],
		"empty":     nil,
		"magic":     func() []byte { c := bytes.Clone(b); c[offMagic] = 0; return c }(),
	}
	for name, in := range cases {
		t.Run(name, func(t *testing.T) {
			var be *BatchError
			if _, err := DecodeBatch(in); !errors.As(err, &be) {
				t.Fatalf("err %v, want *BatchError", err)
			}
		})
	}
}

func TestDecodeBatches(t *testing.T) {
	b1 := formatBatch(t, 10, formatRecords(3, 4), CodecNone) // 10..12
	b2 := formatBatch(t, 13, formatRecords(2, 4), CodecLZ4)  // 13..14
	b3 := formatBatch(t, 15, formatRecords(4, 4), CodecZstd) // 15..18
	all := slicesConcat(b1, b2, b3)
	cases := []struct {
		name       string
		in         []byte
		from       int64
		first, end int64 // decoded offsets [first, end)
		err        bool
	}{
		{"all", all, 0, 10, 19, false},
		{"from mid first batch", all, 11, 11, 19, false},
		{"from second batch", all, 13, 13, 19, false},
		{"from last record", all, 18, 18, 19, false},
		{"past the end", all, 19, 0, 0, false},
		{"trailing partial batch", all[:len(all)-10], 0, 10, 15, false},
		{"trailing partial length", all[:len(b1)+5], 0, 10, 13, false},
		{"empty", nil, 0, 0, 0, false},
		{"corrupt second batch", slicesConcat(b1, func() []byte { c := bytes.Clone(b2); c[70] ^= 1; return c }()), 0, 10, 13, true},
		{"impossible length", slicesConcat(b1, put32(offLength, 3)(bytes.Clone(b2))), 0, 10, 13, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			recs, err := DecodeBatches(c.in, c.from)
			if (err != nil) != c.err {
				t.Fatalf("err %v, want error %v", err, c.err)
			}
			if int64(len(recs)) != c.end-c.first {
				t.Fatalf("%d records, want %d", len(recs), c.end-c.first)
			}
			for i, r := range recs {
				if r.Offset != c.first+int64(i) {
					t.Fatalf("record %d offset %d, want %d", i, r.Offset, c.first+int64(i))
				}
			}
		})
	}
}

// TestCodecsConcurrent checks under -race that the shared kgo compressors
// and decompressor may be used from many goroutines at once.
func TestCodecsConcurrent(t *testing.T) {
	var wg sync.WaitGroup
	errs := make(chan error, 8*len(formatCodecs))
	for g := range 8 {
		for _, codec := range formatCodecs {
			wg.Go(func() {
				for i := range 10 {
					b, err := EncodeBatch(formatRecords(1+i+g, 64), codec, formatTS)
					if err == nil {
						_, err = ValidateBatch(b)
					}
					if err == nil {
						_, err = DecodeBatch(b)
					}
					if err != nil {
						errs <- fmt.Errorf("%s: %w", codec, err)
						return
					}
				}
			})
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func BenchmarkDecodeBatch(b *testing.B) {
	for _, codec := range formatCodecs {
		b.Run(codec.String(), func(b *testing.B) {
			batch := formatBatch(b, 0, formatRecords(100, 1024), codec)
			b.SetBytes(int64(len(batch)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := DecodeBatch(batch); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
