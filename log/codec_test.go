package log

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/s2"
	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
)

// Tests of the bounded decompressor (codec.go). Helpers are prefixed
// "codec" to stay clear of other tests' helpers.

var codecCompressed = []Codec{CodecGzip, CodecSnappy, CodecLZ4, CodecZstd}

// codecRegions returns the records region of recs uncompressed, and as
// EncodeBatch compresses it with codec (kgo's compressor).
func codecRegions(t testing.TB, recs []Record, codec Codec) (plain, compressed []byte) {
	t.Helper()
	return formatBatch(t, 0, recs, CodecNone)[batchHeaderLen:], formatBatch(t, 0, recs, codec)[batchHeaderLen:]
}

// codecXerial frames data the way snappy-java's SnappyOutputStream does:
// the magic, version 1, compatible version 1, then blocks of at most 32
// KiB each behind a big-endian length.
func codecXerial(data []byte) []byte {
	out := append(bytes.Clone(xerialMagic[:]), 0, 0, 0, 1, 0, 0, 0, 1)
	for len(data) > 0 {
		n := min(len(data), 32<<10)
		block := s2.EncodeSnappy(nil, data[:n])
		out = binary.BigEndian.AppendUint32(out, uint32(len(block)))
		out = append(out, block...)
		data = data[n:]
	}
	return out
}

// codecGzip writes data as one gzip member per part.
func codecGzip(t testing.TB, parts ...[]byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	for _, p := range parts {
		w := gzip.NewWriter(&buf)
		if _, err := w.Write(p); err != nil {
			t.Fatal(err)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
	}
	return buf.Bytes()
}

// codecLZ4 writes data as one lz4 frame with the given options.
func codecLZ4(t testing.TB, data []byte, opts ...lz4.Option) []byte {
	t.Helper()
	var buf bytes.Buffer
	w := lz4.NewWriter(&buf)
	if err := w.Apply(opts...); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// codecZstdStream writes each part as one zstd frame from a streaming
// encoder, which, like Java's ZstdOutputStream, declares no content size.
func codecZstdStream(t testing.TB, parts ...[]byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	w, err := zstd.NewWriter(&buf, zstd.WithEncoderConcurrency(1))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range parts {
		w.Reset(&buf)
		if _, err := w.Write(p); err != nil {
			t.Fatal(err)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
	}
	return buf.Bytes()
}

// codecZstdAll encodes data as one zstd frame declaring its size, as kgo
// and librdkafka write it.
func codecZstdAll(t testing.TB, data []byte) []byte {
	t.Helper()
	enc, err := zstd.NewWriter(nil, zstd.WithEncoderConcurrency(1))
	if err != nil {
		t.Fatal(err)
	}
	defer enc.Close()
	return enc.EncodeAll(data, nil)
}

// codecFramings returns data compressed in every framing we accept,
// named, beyond what EncodeBatch writes.
func codecFramings(t testing.TB, data []byte) []struct {
	name  string
	codec Codec
	src   []byte
} {
	half := len(data) / 2
	return []struct {
		name  string
		codec Codec
		src   []byte
	}{
		{"gzip/one member", CodecGzip, codecGzip(t, data)},
		{"gzip/two members", CodecGzip, codecGzip(t, data[:half], data[half:])},
		{"snappy/raw", CodecSnappy, s2.EncodeSnappy(nil, data)},
		{"snappy/xerial", CodecSnappy, codecXerial(data)},
		{"lz4/default", CodecLZ4, codecLZ4(t, data)},
		{"lz4/64KiB blocks, checksums, size", CodecLZ4, codecLZ4(t, data, lz4.BlockSizeOption(lz4.Block64Kb),
			lz4.BlockChecksumOption(true), lz4.SizeOption(uint64(len(data))))},
		{"lz4/two frames", CodecLZ4, append(codecLZ4(t, data[:half]), codecLZ4(t, data[half:])...)},
		{"zstd/declared size", CodecZstd, codecZstdAll(t, data)},
		{"zstd/two declared frames", CodecZstd, append(codecZstdAll(t, data[:half]), codecZstdAll(t, data[half:])...)},
		{"zstd/stream", CodecZstd, codecZstdStream(t, data)},
		{"zstd/two frames", CodecZstd, codecZstdStream(t, data[:half], data[half:])},
	}
}

// codecWantCorrupt fails t unless err is a *BatchError wrapping
// ErrCorruptBatch whose Detail contains detail.
func codecWantCorrupt(t testing.TB, err error, detail string) {
	t.Helper()
	var be *BatchError
	if !errors.As(err, &be) || !errors.Is(err, ErrCorruptBatch) {
		t.Fatalf("err %v (%T), want a *BatchError wrapping ErrCorruptBatch", err, err)
	}
	if !strings.Contains(be.Detail, detail) {
		t.Fatalf("detail %q, want it to contain %q", be.Detail, detail)
	}
}

// TestDecompressRoundTrip decompresses what EncodeBatch (kgo's
// compressors) writes, into every kind of destination.
func TestDecompressRoundTrip(t *testing.T) {
	sets := []struct {
		name string
		recs []Record
	}{
		{"one record", formatRecords(1, 0)},
		{"100 x 1KiB", formatRecords(100, 1024)},
		{"several chunks", formatRecords(40, 40_000)}, // ~1.6 MB, beyond one chunk
	}
	dsts := []struct {
		name string
		dst  func() []byte
	}{
		{"nil", func() []byte { return nil }},
		{"small prefixed", func() []byte { return append(make([]byte, 0, 10), "pre"...) }},
		{"large prefixed", func() []byte { return append(make([]byte, 0, 4<<20), "pre"...) }},
	}
	for _, codec := range codecCompressed {
		for _, set := range sets {
			plain, compressed := codecRegions(t, set.recs, codec)
			for _, dst := range dsts {
				t.Run(codec.String()+"/"+set.name+"/"+dst.name, func(t *testing.T) {
					d := dst.dst()
					want := append(bytes.Clone(d), plain...)
					got, err := recordsDecompressor.decompress(d, compressed, codec)
					if err != nil {
						t.Fatal(err)
					}
					if !bytes.Equal(got, want) {
						t.Fatalf("decompressed %d bytes, want %d", len(got), len(want))
					}
				})
			}
		}
	}
}

// TestDecompressFramings decompresses framings that clients write but
// EncodeBatch does not (xerial snappy from Java, zstd without a declared
// size, several gzip members, lz4 and zstd frames), as regions and inside
// whole batches.
func TestDecompressFramings(t *testing.T) {
	recs := formatRecords(60, 5000) // ~300 KB: several xerial blocks, beyond a chunk
	plainBatch := formatBatch(t, 5, recs, CodecNone)
	plain := plainBatch[batchHeaderLen:]
	for _, f := range codecFramings(t, plain) {
		t.Run(f.name, func(t *testing.T) {
			got, err := recordsDecompressor.decompress(nil, f.src, f.codec)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, plain) {
				t.Fatalf("decompressed %d bytes, want %d", len(got), len(plain))
			}
			b := bytes.Clone(plainBatch[:batchHeaderLen])
			binary.BigEndian.PutUint16(b[offAttributes:], uint16(f.codec))
			b = formatWithRegion(b, f.src)
			if _, err := ValidateBatch(b); err != nil {
				t.Fatal(err)
			}
			dec, err := DecodeBatch(b)
			if err != nil {
				t.Fatal(err)
			}
			if len(dec) != len(recs) || dec[59].Offset != 64 || !bytes.Equal(dec[59].Value, recs[59].Value) {
				t.Fatalf("decoded %d records", len(dec))
			}
		})
	}
	t.Run("xerial header only", func(t *testing.T) {
		got, err := recordsDecompressor.decompress(nil, codecXerial(nil), CodecSnappy)
		if err != nil || len(got) != 0 {
			t.Fatalf("got %d bytes, err %v; want none", len(got), err)
		}
	})
}

// TestDecompressLimit checks the bound at its edge for every framing: a
// limit's worth decompresses, one byte more is refused.
func TestDecompressLimit(t *testing.T) {
	const limit = 200 << 10 // beyond a chunk, so that the spill is tested
	d := newDecompressor(limit)
	patterns := map[string][]byte{
		"text":  bytes.Repeat([]byte("0123456789abcdefghijklmnopqrstuv"), limit/32+1),
		"zeros": make([]byte, limit+1), // compresses best: tests snappyMaxRatio
	}
	for pattern, data := range patterns {
		for _, size := range []int{limit, limit + 1} {
			for _, f := range codecFramings(t, data[:size]) {
				t.Run(fmt.Sprintf("%s/%d/%s", pattern, size, f.name), func(t *testing.T) {
					got, err := d.decompress(nil, f.src, f.codec)
					if size > limit {
						codecWantCorrupt(t, err, "decompressed size exceeds 204800 bytes")
						return
					}
					if err != nil {
						t.Fatal(err)
					}
					if !bytes.Equal(got, data[:size]) {
						t.Fatalf("decompressed %d bytes, want %d", len(got), size)
					}
				})
			}
		}
	}
}

// codecBomb is records compressed from far more zeros than the limit.
type codecBomb struct {
	name     string
	codec    Codec
	src      []byte
	declared bool // the format states the size up front: refused unread
}

// codecBombs returns 100 MiB of zeros compressed in every framing.
func codecBombs(t *testing.T) []codecBomb {
	zeros := make([]byte, 100<<20)
	gz := codecGzip(t, zeros)
	gzLying := bytes.Clone(gz)
	binary.LittleEndian.PutUint32(gzLying[len(gzLying)-4:], 1000)
	return []codecBomb{
		{"gzip", CodecGzip, gz, true},
		{"gzip/lying trailer", CodecGzip, gzLying, false},
		{"snappy/raw", CodecSnappy, s2.EncodeSnappy(nil, zeros), true},
		{"snappy/xerial", CodecSnappy, codecXerial(zeros), true},
		{"lz4", CodecLZ4, codecLZ4(t, zeros), false},
		{"zstd/declared size", CodecZstd, codecZstdAll(t, zeros), true},
		{"zstd/stream", CodecZstd, codecZstdStream(t, zeros), false},
		{"zstd/two 40MiB frames", CodecZstd, codecZstdStream(t, zeros[:40<<20], zeros[:40<<20]), false},
	}
}

// TestDecompressBombs feeds 100 MiB of compressed zeros through every
// framing and checks that each is refused as corrupt without allocating
// anything like 100 MiB: nothing much where the size is declared, at most
// the limit plus a little where only decoding finds it.
func TestDecompressBombs(t *testing.T) {
	for _, bomb := range codecBombs(t) {
		t.Run(bomb.name, func(t *testing.T) {
			var before, after runtime.MemStats
			runtime.GC() // twice: empty the pools' victim caches too, so
			runtime.GC() // that no chunk from an earlier bomb is reused
			runtime.ReadMemStats(&before)
			_, err := recordsDecompressor.decompress(nil, bomb.src, bomb.codec)
			runtime.ReadMemStats(&after)
			codecWantCorrupt(t, err, "decompressed size exceeds 64 MiB")

			alloc := after.TotalAlloc - before.TotalAlloc
			bound := uint64(maxDecompressedBatch + 16<<20) // chunk, zstd window, codec state
			if bomb.declared {
				bound = 1 << 20
			}
			t.Logf("%d compressed bytes, %.1f MiB allocated", len(bomb.src), float64(alloc)/(1<<20))
			if alloc > bound {
				t.Fatalf("allocated %d bytes, want at most %d", alloc, bound)
			}

			// And through the public API, as a produce would.
			b := bytes.Clone(formatBatch(t, 0, formatRecords(1, 0), bomb.codec)[:batchHeaderLen])
			b = formatWithRegion(b, bomb.src)
			_, err = ValidateBatch(b)
			codecWantCorrupt(t, err, "decompressed size exceeds 64 MiB")
			_, err = DecodeBatch(b)
			codecWantCorrupt(t, err, "decompressed size exceeds 64 MiB")
		})
	}
	// A decoder abandoned mid-stream went back to its pool: the next
	// batch must still decode.
	for _, codec := range codecCompressed {
		plain, compressed := codecRegions(t, formatRecords(10, 100), codec)
		got, err := recordsDecompressor.decompress(nil, compressed, codec)
		if err != nil || !bytes.Equal(got, plain) {
			t.Fatalf("%s after bombs: %d bytes, err %v", codec, len(got), err)
		}
	}
}

// TestDecompressGarbage checks that damaged input fails as corrupt (or,
// where the format has no checksum to notice, at least does not panic).
func TestDecompressGarbage(t *testing.T) {
	data := formatBatch(t, 0, formatRecords(30, 300), CodecNone)[batchHeaderLen:]
	random := make([]byte, 4096)
	for i := range random {
		random[i] = byte(rand.Uint32())
	}
	type garbage struct {
		name    string
		src     []byte
		mayPass bool // may decode without error
	}
	for _, f := range codecFramings(t, data) {
		// An empty lz4 or zstd stream, like a snappy block of length
		// 0 (one zero byte), is an empty region: no error here, and the
		// batch's record count refuses it.
		cases := []garbage{
			{"empty", nil, f.codec == CodecLZ4 || f.codec == CodecZstd},
			{"one zero", []byte{0}, f.codec == CodecSnappy},
			{"random", random, false},
			{"half", f.src[:len(f.src)/2], false},
			{"all but the last byte", f.src[:len(f.src)-1], false},
			{"plus garbage", append(bytes.Clone(f.src), 0xde, 0xad, 0xbe, 0xef), false},
			{"plus random", append(bytes.Clone(f.src), random...), false},
			{"flipped middle byte", func() []byte {
				b := bytes.Clone(f.src)
				b[len(b)/2] ^= 0x55
				return b
			}(), f.codec == CodecSnappy}, // no checksum: a flipped literal decodes
		}
		if f.name == "snappy/xerial" {
			hdr := f.src[:xerialHeaderLen]
			cases = append(cases,
				garbage{"xerial truncated length", append(bytes.Clone(hdr), 0, 0), false},
				garbage{"xerial length past end", append(bytes.Clone(hdr), 0, 1, 0, 0, 5), false},
				garbage{"xerial max length", append(bytes.Clone(hdr), 0xff, 0xff, 0xff, 0xff, 5), false},
				garbage{"xerial empty block", append(bytes.Clone(hdr), 0, 0, 0, 0), false},
			)
		}
		if f.name == "snappy/raw" {
			// A 6-byte block claiming 1 MiB cannot hold it: refused
			// before allocating the MiB.
			claim := binary.AppendUvarint(nil, 1<<20)
			cases = append(cases, garbage{"impossible length", append(claim, 0, 0, 0), false})
		}
		for _, c := range cases {
			t.Run(f.name+"/"+c.name, func(t *testing.T) {
				got, err := recordsDecompressor.decompress(nil, c.src, f.codec)
				if err == nil && c.mayPass {
					return
				}
				if err == nil {
					t.Fatalf("decompressed %d bytes, want an error", len(got))
				}
				codecWantCorrupt(t, err, "decompress "+f.codec.String()+" records")
			})
		}
	}
	t.Run("unknown codec", func(t *testing.T) {
		_, err := recordsDecompressor.decompress(nil, data, Codec(6))
		codecWantCorrupt(t, err, "unknown compression codec 6")
	})
}

// TestDecompressConcurrent shares one small-limit decompressor between
// goroutines that alternate valid and over-limit input, so that a pooled
// decoder or buffer leaking state between calls shows (and races, under
// -race).
func TestDecompressConcurrent(t *testing.T) {
	const limit = 64 << 10
	d := newDecompressor(limit)
	data := formatBatch(t, 0, formatRecords(60, 2000), CodecNone)[batchHeaderLen:]
	if len(data) <= limit {
		t.Fatal("test data too short")
	}
	small := data[:limit/2]
	type input struct {
		codec   Codec
		src     []byte
		want    []byte // nil: over the limit
		scratch bool
	}
	var inputs []input
	for _, f := range codecFramings(t, small) {
		inputs = append(inputs, input{f.codec, f.src, small, false}, input{f.codec, f.src, small, true})
	}
	for _, f := range codecFramings(t, data) {
		inputs = append(inputs, input{f.codec, f.src, nil, true})
	}
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for g := range 8 {
		wg.Go(func() {
			for i := range 3 * len(inputs) {
				in := inputs[(g+i)%len(inputs)]
				var dst []byte
				var scratch *[]byte
				if in.scratch {
					scratch = d.getScratch()
					dst = (*scratch)[:0]
				}
				got, err := d.decompress(dst, in.src, in.codec)
				if in.want == nil && err == nil || in.want != nil && (err != nil || !bytes.Equal(got, in.want)) {
					errs <- fmt.Errorf("%s: %d bytes, err %v", in.codec, len(got), err)
					return
				}
				if scratch != nil {
					if err == nil {
						*scratch = got
					}
					d.putScratch(scratch)
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// FuzzDecompress feeds arbitrary bytes to every codec under a 1 MiB limit:
// no panic, errors are corrupt-batch errors, output stays within the
// limit, and decompressing onto a prefix appends the same bytes.
func FuzzDecompress(f *testing.F) {
	data := formatBatch(f, 0, formatRecords(8, 50), CodecNone)[batchHeaderLen:]
	valid := map[Codec][][]byte{}
	for _, fr := range codecFramings(f, data) {
		valid[fr.codec] = append(valid[fr.codec], fr.src)
	}
	for _, codec := range codecCompressed {
		_, compressed := codecRegions(f, formatRecords(5, 20), codec)
		addByteSeeds(f, append(valid[codec], compressed), func(b []byte) { f.Add(b, uint8(codec)) })
	}
	const limit = 1 << 20
	d := newDecompressor(limit)
	f.Fuzz(func(t *testing.T, src []byte, codec uint8) {
		c := Codec(codec % 8)
		got, err := d.decompress(nil, src, c)
		if err != nil {
			codecWantCorrupt(t, err, "")
			return
		}
		if len(got) > limit {
			t.Fatalf("decompressed %d bytes past the %d limit", len(got), limit)
		}
		prefix := []byte("prefix")
		again, err := d.decompress(prefix, src, c)
		if err != nil || !bytes.Equal(again[len(prefix):], got) || !bytes.Equal(again[:len(prefix)], prefix) {
			t.Fatalf("onto a prefix: %d bytes, err %v; alone %d bytes", len(again), err, len(got))
		}
	})
}
