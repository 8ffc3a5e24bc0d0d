package grpcapi_test

import (
	"fmt"
	"testing"

	"github.com/streamhouse/streamhouse/grpcapi/grpcapitest"
	pb "github.com/streamhouse/streamhouse/proto"
)

// The benchmarks run the real server and client over loopback TCP, with
// real storage (SQLite, local object store, fsync on every produce):
//
//	go test -run '^$' -bench . -benchtime 5s ./grpcapi/
//
// Values are incompressible random bytes (LZ4's worst case) with no key;
// MB/s counts value bytes.

const benchBatch = 1000

// benchRecords returns n records with size-byte random values.
func benchRecords(n, size int) []*pb.Record {
	recs := make([]*pb.Record, n)
	for i := range recs {
		recs[i] = &pb.Record{Value: randomBytes(size + i)[i:]}
	}
	return recs
}

// reportRecords reports records/s; MB/s comes from b.SetBytes.
func reportRecords(b *testing.B, recordsPerOp int) {
	b.ReportMetric(float64(recordsPerOp)*float64(b.N)/b.Elapsed().Seconds(), "records/s")
}

// BenchmarkProduceBatch sends ProduceBatch calls of 1,000 records, one at
// a time (serial) and from 4 concurrent callers (parallel, where group
// commit shares each fsync), to one partition.
func BenchmarkProduceBatch(b *testing.B) {
	for _, size := range []int{100, 1024} {
		for _, mode := range []string{"serial", "parallel"} {
			b.Run(fmt.Sprintf("%dx%dB/%s", benchBatch, size, mode), func(b *testing.B) {
				e := grpcapitest.Start(b, grpcapitest.Options{})
				createTopic(b, e, "bench", 1, nil)
				req := &pb.ProduceBatchRequest{Topic: "bench", Records: benchRecords(benchBatch, size)}
				b.SetBytes(int64(benchBatch * size))
				b.ResetTimer()
				if mode == "serial" {
					for b.Loop() {
						if _, err := e.Client.ProduceBatch(b.Context(), req); err != nil {
							b.Fatal(err)
						}
					}
				} else {
					b.SetParallelism(2) // 2 x GOMAXPROCS callers
					b.RunParallel(func(pb *testing.PB) {
						for pb.Next() {
							if _, err := e.Client.ProduceBatch(b.Context(), req); err != nil {
								b.Error(err)
								return
							}
						}
					})
				}
				reportRecords(b, benchBatch)
			})
		}
	}
}

// BenchmarkConsume reads 100 B records in calls of up to 10,000 records
// (about 1 MiB, the default byte cap), cycling over a filled partition.
func BenchmarkConsume(b *testing.B) {
	const size, total = 100, 200_000
	e := grpcapitest.Start(b, grpcapitest.Options{})
	createTopic(b, e, "bench", 1, nil)
	req := &pb.ProduceBatchRequest{Topic: "bench", Records: benchRecords(benchBatch, size)}
	for range total / benchBatch {
		if _, err := e.Client.ProduceBatch(b.Context(), req); err != nil {
			b.Fatal(err)
		}
	}
	var offset uint64
	records := 0
	b.ResetTimer()
	for b.Loop() {
		res, err := e.Client.Consume(b.Context(), &pb.ConsumeRequest{Topic: "bench", Offset: offset, MaxRecords: 10_000})
		if err != nil {
			b.Fatal(err)
		}
		records += len(res.GetRecords())
		offset = res.GetNextOffset()
		if offset >= total {
			offset = 0
		}
	}
	b.ReportMetric(float64(records)/b.Elapsed().Seconds(), "records/s")
	b.ReportMetric(float64(records*size)/1e6/b.Elapsed().Seconds(), "MB/s")
}
