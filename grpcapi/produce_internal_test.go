package grpcapi

import (
	"bytes"
	"testing"

	"github.com/streamhouse/streamhouse/log"
)

// TestBatchSpans checks how a request's records are split into batches:
// by max.message.bytes, and into one share per worker when large enough.
func TestBatchSpans(t *testing.T) {
	recs := func(n, size int) []log.Record {
		out := make([]log.Record, n)
		for i := range out {
			out[i] = log.Record{Value: bytes.Repeat([]byte{'v'}, size), Timestamp: 1}
		}
		return out
	}
	cases := []struct {
		name     string
		recs     []log.Record
		maxBytes int64
		workers  int
		want     []span
	}{
		{"small request, one batch", recs(10, 100), 1 << 20, 2, []span{{0, 10}}},
		{"one worker, one batch", recs(1000, 100), 1 << 20, 1, []span{{0, 1000}}},
		{"two workers, two shares", recs(1000, 100), 1 << 20, 2, []span{{0, 500}, {500, 1000}}},
		{"max.message.bytes splits", recs(10, 1000), 3000, 1, []span{{0, 2}, {2, 4}, {4, 6}, {6, 8}, {8, 10}}},
		{"oversize record alone", append(recs(1, 10), recs(1, 5000)...), 1000, 1, []span{{0, 1}, {1, 2}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := batchSpans(tc.recs, tc.maxBytes, tc.workers)
			if len(got) != len(tc.want) {
				t.Fatalf("spans %v, want %v", got, tc.want)
			}
			for i := range got {
				if got[i] != tc.want[i] {
					t.Fatalf("spans %v, want %v", got, tc.want)
				}
			}
		})
	}
}

// TestEncodeBatchesParallel checks that concurrently compressed batches
// decode to the records in order.
func TestEncodeBatchesParallel(t *testing.T) {
	recs := make([]log.Record, 2000)
	for i := range recs {
		recs[i] = log.Record{Value: []byte{byte(i), byte(i >> 8)}, Timestamp: int64(1000 + i)}
		recs[i].Value = append(recs[i].Value, bytes.Repeat([]byte{'x'}, 100)...)
	}
	data, err := encodeBatches(recs, 1<<20, 4)
	if err != nil {
		t.Fatal(err)
	}
	batches, err := log.SplitBatches(data)
	if err != nil || len(batches) != 4 {
		t.Fatalf("%d batches (%v), want 4", len(batches), err)
	}
	// Offsets restart in each batch until the log assigns them; decode
	// batch by batch.
	n := 0
	for _, b := range batches {
		got, err := log.DecodeBatch(b)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range got {
			if !bytes.Equal(r.Value, recs[n].Value) || r.Timestamp != recs[n].Timestamp {
				t.Fatalf("record %d differs", n)
			}
			n++
		}
	}
	if n != len(recs) {
		t.Fatalf("decoded %d records", n)
	}
}
