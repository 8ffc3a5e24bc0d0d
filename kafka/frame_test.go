package kafka

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/streamhouse/streamhouse/log"
)

// TestEncodeFetchFrame checks that the spliced Fetch frame is byte for byte
// what encodeResponse produces, at every served version, with batches
// below and above the splice threshold, lengths whose varint prefix takes
// one to three bytes, empty and nil batches, aborted transactions and
// partition errors, and that the response is left unchanged.
func TestEncodeFetchFrame(t *testing.T) {
	sizes := []int{0, 1, 61, spliceMinBytes - 1, spliceMinBytes, 16382, 16383, 200_000, 3 << 20}
	for v := int16(4); v <= 18; v++ {
		for _, tc := range []struct {
			name   string
			topics int
		}{{"one topic", 1}, {"three topics", 3}} {
			t.Run(fmt.Sprintf("v%d/%s", v, tc.name), func(t *testing.T) {
				rng := rand.New(rand.NewPCG(uint64(v), uint64(tc.topics)))
				resp := fetchResponseForTest(rng, v, tc.topics, sizes)
				want := encodeResponse(42, fetchKey, resp)
				before := encodeResponse(42, fetchKey, resp)
				f := encodeFrame(&request{correlationID: 42, key: fetchKey}, resp)
				got := bytes.Join(f.bufs, nil)
				if f.n != len(got) {
					t.Fatalf("n = %d, frame holds %d bytes", f.n, len(got))
				}
				if !bytes.Equal(got, want) {
					t.Fatalf("spliced frame differs from encodeResponse (%d vs %d bytes)", len(got), len(want))
				}
				if size := int(binary.BigEndian.Uint32(got)); size != len(got)-4 {
					t.Fatalf("size prefix %d, frame %d", size, len(got))
				}
				if after := encodeResponse(42, fetchKey, resp); !bytes.Equal(after, before) {
					t.Fatal("encodeFrame changed the response")
				}
				if v >= 4 && len(f.bufs) < 2 {
					t.Fatalf("large batches were copied, not spliced (%d pieces)", len(f.bufs))
				}
			})
		}
	}
}

func fetchResponseForTest(rng *rand.Rand, version int16, topics int, sizes []int) *kmsg.FetchResponse {
	resp := kmsg.NewPtrFetchResponse()
	resp.Version = version
	resp.ThrottleMillis = 7
	for i := 0; i < topics; i++ {
		rt := kmsg.NewFetchResponseTopic()
		rt.Topic = fmt.Sprintf("topic-%d", i)
		rt.TopicID[0], rt.TopicID[15] = byte(i+1), 0x5a
		for j, size := range sizes {
			rp := kmsg.NewFetchResponseTopicPartition()
			rp.Partition = int32(j)
			rp.HighWatermark, rp.LastStableOffset, rp.LogStartOffset = rng.Int64(), rng.Int64(), 3
			if j%4 == 1 {
				rp.ErrorCode = 1
			}
			if j%3 == 0 {
				rp.AbortedTransactions = []kmsg.FetchResponseTopicPartitionAbortedTransaction{{ProducerID: 9, FirstOffset: 10}}
			}
			if size > 0 || j%2 == 0 {
				rp.RecordBatches = make([]byte, size)
				for k := range rp.RecordBatches {
					rp.RecordBatches[k] = byte(rng.Uint32())
				}
			}
			rt.Partitions = append(rt.Partitions, rp)
		}
		resp.Topics = append(resp.Topics, rt)
	}
	return resp
}

// TestFetchFrameRegions sends a Fetch frame whose large batches are file
// regions, over a real TCP socket (sendfile) and over net.Pipe (copy), and
// checks the bytes received are encodeResponse's with the batches in place.
func TestFetchFrameRegions(t *testing.T) {
	sizes := []int{0, 100, 16 << 10, 300_000, 5000}
	for _, v := range []int16{4, 11, 12, 16} {
		rng := rand.New(rand.NewPCG(uint64(v), 7))
		resp := fetchResponseForTest(rng, v, 2, sizes)
		want := encodeResponse(9, fetchKey, resp)

		// Move every batch of at least 16 KiB into one file, at odd offsets.
		path := filepath.Join(t.TempDir(), "seg")
		var file []byte
		var regions []partRegion
		type placed struct {
			p   *kmsg.FetchResponseTopicPartition
			off int
		}
		var moved []placed
		for i := range resp.Topics {
			for j := range resp.Topics[i].Partitions {
				p := &resp.Topics[i].Partitions[j]
				if len(p.RecordBatches) >= 16<<10 {
					file = append(file, 0xee) // not part of any region
					moved = append(moved, placed{p, len(file)})
					file = append(file, p.RecordBatches...)
				}
			}
		}
		if err := os.WriteFile(path, file, 0o644); err != nil {
			t.Fatal(err)
		}
		var files []*os.File
		for _, m := range moved {
			f, err := os.Open(path)
			if err != nil {
				t.Fatal(err)
			}
			files = append(files, f)
			regions = append(regions, partRegion{out: m.p, region: &log.FileRegion{File: f, Offset: int64(m.off), Len: len(m.p.RecordBatches)}})
			m.p.RecordBatches = []byte{}
		}
		for _, transport := range []string{"tcp", "pipe"} {
			t.Run(fmt.Sprintf("v%d/%s", v, transport), func(t *testing.T) {
				f := encodeFrame(&request{correlationID: 9, key: fetchKey, regions: regions}, resp)
				if f.n != len(want) || len(f.files) != len(regions) {
					t.Fatalf("n = %d (want %d), %d file pieces (want %d)", f.n, len(want), len(f.files), len(regions))
				}
				got := sendFrameOver(t, transport, f)
				if !bytes.Equal(got, want) {
					t.Fatalf("received %d bytes differing from encodeResponse's %d", len(got), len(want))
				}
			})
		}
		for _, f := range files {
			f.Close()
		}
	}
}

func sendFrameOver(t *testing.T, transport string, f *outFrame) []byte {
	t.Helper()
	var client, server net.Conn
	if transport == "pipe" {
		client, server = net.Pipe()
	} else {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		accepted := make(chan net.Conn, 1)
		go func() {
			c, _ := ln.Accept()
			accepted <- c
		}()
		if client, err = net.Dial("tcp", ln.Addr().String()); err != nil {
			t.Fatal(err)
		}
		server = <-accepted
	}
	defer client.Close()
	errc := make(chan error, 1)
	go func() {
		errc <- f.writeTo(server)
		server.Close()
	}()
	got, err := io.ReadAll(client)
	if err != nil {
		t.Fatal(err)
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	return got
}

func TestFramePool(t *testing.T) {
	for _, tc := range []struct{ n, class int }{
		{0, -1}, {1<<minFrameShift - 1, -1}, {1 << minFrameShift, 0}, {1<<minFrameShift + 1, 1},
		{1 << maxFrameShift, maxFrameShift - minFrameShift}, {1<<maxFrameShift + 1, -1},
	} {
		if got := frameClass(tc.n); got != tc.class {
			t.Errorf("frameClass(%d) = %d, want %d", tc.n, got, tc.class)
		}
	}
	var fp framePool
	b := fp.get(40_000)
	if len(b) != 40_000 || cap(b) != 64<<10 {
		t.Fatalf("get(40000): len %d cap %d", len(b), cap(b))
	}
	fp.put(b)
	fp.put(make([]byte, 50_000)) // not from the pool: ignored
	if b := fp.get(100); len(b) != 100 {
		t.Fatalf("small get: len %d", len(b))
	}
	// The returned buffer comes back, whatever P asks, and after a
	// garbage collection too (a sync.Pool lost it in both cases).
	runtime.GC()
	if again := fp.get(50_000); &again[0] != &b[0] {
		t.Fatal("get after put allocated a new buffer")
	}

	// Bounded: framePoolPerClass per class and framePoolMaxBytes in all.
	var big framePool
	const mib = 1 << 20
	for range framePoolPerClass + 2 {
		big.put(make([]byte, mib, mib))
	}
	if n := len(big.free[frameClass(mib)]); n != framePoolPerClass {
		t.Fatalf("%d free 1 MiB buffers kept, want %d", n, framePoolPerClass)
	}
	// Larger frames push the 1 MiB buffers out, never past the limit.
	for range framePoolPerClass {
		big.put(make([]byte, 4*mib, 4*mib))
	}
	if n, want := len(big.free[frameClass(4*mib)]), min(framePoolPerClass, framePoolMaxBytes/(4*mib)); n != want || big.bytes != want*4*mib {
		t.Fatalf("pool keeps %d 4 MiB buffers and %d bytes; want %d", n, big.bytes, want)
	}
	if n := len(big.free[frameClass(mib)]); n != 0 {
		t.Fatalf("%d 1 MiB buffers left beside the 4 MiB ones", n)
	}
	big.put(make([]byte, framePoolMaxBytes*2, framePoolMaxBytes*2)) // larger than the whole list
	if big.bytes > framePoolMaxBytes {
		t.Fatalf("pool keeps %d bytes, limit %d", big.bytes, framePoolMaxBytes)
	}
	// Idle, it lets everything go (the timer calls drop).
	big.drop()
	if big.bytes != 0 || len(big.free[frameClass(4*mib)]) != 0 {
		t.Fatalf("after drop: %d bytes kept", big.bytes)
	}
	big.close()
	fp.close()
}
