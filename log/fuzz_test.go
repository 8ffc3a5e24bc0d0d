package log

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"testing"
)

// Fuzz targets for every decoder of bytes from disk or the wire. Each is
// seeded with empty, truncated, valid and valid-plus-garbage inputs. Run
// one with: go test ./log/ -run XXX -fuzz FuzzValidateBatch -fuzztime 20s

// formatFuzzBatches returns valid batches of every codec plus a control
// and a log-append-time batch.
func formatFuzzBatches(tb testing.TB) [][]byte {
	var out [][]byte
	for i, codec := range formatCodecs {
		out = append(out, formatBatch(tb, int64(10*i), formatRecords(1+i, 7), codec))
	}
	ctl := formatBatch(tb, 3, formatRecords(1, 2), CodecNone)
	ctl[offAttributes+1] |= attrControl
	lat := formatBatch(tb, 4, formatRecords(2, 2), CodecNone)
	setLogAppendTime(lat, formatTS)
	return append(out, formatFixCRC(ctl), lat)
}

// addByteSeeds adds, for each valid input: empty, truncated, valid and
// valid-plus-garbage variants.
func addByteSeeds(f *testing.F, valid [][]byte, add func(b []byte)) {
	add(nil)
	add([]byte{0})
	for _, v := range valid {
		add(v)
		add(v[:len(v)/2])
		add(v[:len(v)-1])
		add(append(bytes.Clone(v), 0xde, 0xad, 0xbe, 0xef))
		add(append(bytes.Clone(v), v...))
	}
}

// fuzzFixFrame makes b's Length and CRC agree with its bytes, so that the
// fuzzer gets past the CRC check into the record decoding.
func fuzzFixFrame(b []byte) []byte {
	if len(b) >= batchHeaderLen {
		binary.BigEndian.PutUint32(b[offLength:], uint32(len(b)-batchLengthOverhead))
		formatFixCRC(b)
	}
	return b
}

func FuzzValidateBatch(f *testing.F) {
	addByteSeeds(f, formatFuzzBatches(f), func(b []byte) { f.Add(b, false); f.Add(b, true) })
	f.Fuzz(func(t *testing.T, b []byte, fix bool) {
		if fix {
			b = fuzzFixFrame(b)
		}
		h, err := ValidateBatch(b)
		if err != nil {
			return
		}
		// A valid batch decodes to exactly its records.
		recs, err := decodeBatch(b, true)
		if err != nil {
			t.Fatalf("validated batch does not decode: %v", err)
		}
		if len(recs) != int(h.NumRecords) {
			t.Fatalf("%d records decoded, header says %d", len(recs), h.NumRecords)
		}
		for i, r := range recs {
			if r.Offset != h.BaseOffset+int64(i) {
				t.Fatalf("record %d offset %d", i, r.Offset)
			}
		}
	})
}

// FuzzWalkRecords holds walkRecords, fast path and all, to the record by
// record walk of walkRecord: the same result or the same error.
func FuzzWalkRecords(f *testing.F) {
	for _, b := range formatFuzzBatches(f) {
		if h, err := ParseBatchHeader(b); err == nil && h.Codec() == CodecNone && len(b) >= batchHeaderLen {
			f.Add(b[batchHeaderLen:], h.NumRecords, false)
			f.Add(b[batchHeaderLen:], h.NumRecords, true)
		}
	}
	f.Fuzz(func(t *testing.T, region []byte, want int32, keys bool) {
		got, gotErr := walkRecords(region, want, keys)
		ref, refErr := func() (int64, error) {
			maxTS, n, rest := int64(-1<<63), int32(0), region
			for len(rest) > 0 {
				ts, r, err := walkRecord(rest, n, keys)
				if err != nil {
					return 0, err
				}
				maxTS, rest, n = max(maxTS, ts), r, n+1
			}
			if n != want {
				return 0, invalidf("header says %d records, found %d", want, n)
			}
			return maxTS, nil
		}()
		if fmt.Sprint(gotErr) != fmt.Sprint(refErr) || got != ref {
			t.Fatalf("walkRecords = %d, %v; record by record = %d, %v", got, gotErr, ref, refErr)
		}
	})
}

func FuzzDecodeBatch(f *testing.F) {
	valid := formatFuzzBatches(f)
	addByteSeeds(f, append(valid, slicesConcat(valid...)), func(b []byte) { f.Add(b, false); f.Add(b, true) })
	f.Fuzz(func(t *testing.T, b []byte, fix bool) {
		if fix {
			b = fuzzFixFrame(b)
		}
		recs, err := DecodeBatch(b)
		all, _ := DecodeBatches(b, 0)
		// With sane offsets, one whole batch decodes the same both ways.
		if h, _ := ParseBatchHeader(b); err == nil && h.BaseOffset >= 0 && h.BaseOffset < 1<<40 &&
			len(all) != len(recs) {
			t.Fatalf("DecodeBatches %d records, DecodeBatch %d", len(all), len(recs))
		}
		SplitBatches(b) //nolint:errcheck // only must not panic
	})
}

func FuzzDecodeFooter(f *testing.F) {
	s := formatSegment(f, 100, 5, 2, 100)
	obj := s.object()
	footer := obj[len(obj)-footerLen:]
	empty := encodeFooter(Footer{BaseOffset: 3, LastOffset: 2, MaxTimestamp: -1})
	addByteSeeds(f, [][]byte{footer, empty}, func(b []byte) { f.Add(b) })
	f.Fuzz(func(t *testing.T, b []byte) {
		ft, err := decodeFooter(b)
		if err != nil {
			return
		}
		if !bytes.Equal(encodeFooter(ft), b) {
			t.Fatalf("footer %+v does not re-encode to its bytes", ft)
		}
	})
}

func FuzzDecodeIndex(f *testing.F) {
	s := formatSegment(f, 100, 20, 2, 100)
	addByteSeeds(f, [][]byte{encodeIndex(s.idx.entries())}, func(b []byte) { f.Add(b) })
	f.Fuzz(func(t *testing.T, b []byte) {
		entries, err := decodeIndex(b)
		if err != nil {
			return
		}
		if !bytes.Equal(encodeIndex(entries), b) {
			t.Fatal("index does not re-encode to its bytes")
		}
		x := newSparseIndexFrom(entries, 0)
		for _, e := range entries {
			if got := x.lookupOffset(int64(e.RelOffset)+7, 7); got != int64(e.Position) {
				t.Fatalf("lookupOffset of entry %+v = %d", e, got)
			}
			x.lookupTime(e.MaxTimestampBefore)
		}
	})
}

func FuzzOpenSealed(f *testing.F) {
	s := formatSegment(f, 100, 8, 3, 150)
	n := formatNoisySegment(f, 0, 6)
	n.ft = Footer{BaseOffset: 0, LastOffset: n.hdrs[5].NextOffset() - 1, MaxTimestamp: n.idx.maxTimestamp(),
		BatchesLen: int64(len(n.batches))}
	for _, h := range n.hdrs {
		n.ft.RecordCount += int64(h.NumRecords)
	}
	empty := formatSeg{idx: newSparseIndex(0), ft: Footer{BaseOffset: 7, LastOffset: 6, MaxTimestamp: -1}}
	addByteSeeds(f, [][]byte{s.object(), n.object(), empty.object()}, func(b []byte) { f.Add(b) })
	f.Fuzz(func(t *testing.T, b []byte) {
		seg, err := openSealed("fuzz", b)
		if err != nil {
			return
		}
		ft := seg.footer()
		for _, off := range []int64{ft.BaseOffset - 1, ft.BaseOffset, (ft.BaseOffset + ft.LastOffset) / 2, ft.LastOffset, ft.LastOffset + 1} {
			data, err := seg.read(off, 200)
			if err != nil {
				t.Fatalf("read(%d) of a verified segment: %v", off, err)
			}
			if _, err := SplitBatches(data); err != nil {
				t.Fatalf("read(%d) returned partial batches: %v", off, err)
			}
		}
		for _, ts := range []int64{-1, 0, ft.MaxTimestamp, ft.MaxTimestamp + 1} {
			seg.offsetForTime(ts) //nolint:errcheck // records may be undecodable; only must not panic
		}
	})
}

func FuzzScanBatches(f *testing.F) {
	s := formatNoisySegment(f, 0, 6)
	addByteSeeds(f, [][]byte{s.batches, s.batches[:s.pos[1]]}, func(b []byte) { f.Add(b) })
	f.Fuzz(func(t *testing.T, b []byte) {
		res, err := scanBatches(bytes.NewReader(b), 0, 64)
		if err != nil {
			t.Fatalf("I/O error from a bytes.Reader: %v", err)
		}
		if res.ValidBytes+res.Dropped != int64(len(b)) || (res.Dropped > 0) != (res.Cause != nil) {
			t.Fatalf("valid %d + dropped %d != %d, cause %v", res.ValidBytes, res.Dropped, len(b), res.Cause)
		}
		// The intact prefix scans clean to the same result.
		again, err := scanBatches(bytes.NewReader(b[:res.ValidBytes]), 0, 64)
		if err != nil || again.Dropped != 0 || again.Batches != res.Batches || again.NextOffset != res.NextOffset {
			t.Fatalf("rescan of the prefix: %+v, %v", again, err)
		}
		if _, err := SplitBatches(b[:res.ValidBytes]); err != nil {
			t.Fatalf("intact prefix does not split: %v", err)
		}
	})
}
