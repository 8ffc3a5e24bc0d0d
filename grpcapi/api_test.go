package grpcapi_test

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	"github.com/streamhouse/streamhouse/grpcapi"
	"github.com/streamhouse/streamhouse/grpcapi/grpcapitest"
	"github.com/streamhouse/streamhouse/log"
	pb "github.com/streamhouse/streamhouse/proto"
)

func TestTopics(t *testing.T) {
	clock := time.UnixMilli(1_750_000_000_000)
	e := grpcapitest.Start(t, grpcapitest.Options{Now: func() time.Time { return clock }})
	c := e.Client
	retention := uint64(3_600_000)
	res, err := c.CreateTopic(ctx(t), &pb.CreateTopicRequest{
		Name: "orders", PartitionCount: 3, RetentionMs: &retention,
		Config: map[string]string{"segment.bytes": "1048576", "cleanup.policy": "delete"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.GetPartitionCount() != 3 || len(res.GetTopicId()) != 36 {
		t.Fatalf("create: %v", res)
	}
	createTopic(t, e, "audit", 1, nil)

	got, err := c.GetTopic(ctx(t), &pb.GetTopicRequest{Name: "orders"})
	if err != nil {
		t.Fatal(err)
	}
	top := got.GetTopic()
	wantCfg := map[string]string{"segment.bytes": "1048576", "cleanup.policy": "delete", "retention.ms": "3600000"}
	if top.GetName() != "orders" || top.GetPartitionCount() != 3 || top.GetRetentionMs() != retention ||
		!maps.Equal(top.GetConfig(), wantCfg) || top.GetCreatedAt() != uint64(clock.UnixMilli()) || top.GetTopicId() != res.GetTopicId() {
		t.Fatalf("get: %v", top)
	}
	// The configs are the log's, so they are honoured.
	if m, err := e.Log.Topic("orders"); err != nil || m.Configs["retention.ms"] != "3600000" {
		t.Fatalf("log topic: %v %v", m, err)
	}
	// Each partition's offsets and size are the log's.
	if _, err := c.Produce(ctx(t), &pb.ProduceRequest{Topic: "orders", Partition: 1, Key: []byte("k"), Value: []byte("v")}); err != nil {
		t.Fatal(err)
	}
	got, err = c.GetTopic(ctx(t), &pb.GetTopicRequest{Name: "orders"})
	if err != nil {
		t.Fatal(err)
	}
	parts := got.GetTopic().GetPartitions()
	if len(parts) != 3 {
		t.Fatalf("partitions %v", parts)
	}
	for i, pi := range parts {
		p, err := e.Log.Partition("orders", int32(i))
		if err != nil {
			t.Fatal(err)
		}
		start, hwm := p.Offsets()
		if pi.GetPartition() != uint32(i) || pi.GetLogStartOffset() != uint64(start) || pi.GetHighWatermark() != uint64(hwm) ||
			pi.GetSizeBytes() != uint64(p.StoredBytes()) || (i == 1) != (pi.GetSizeBytes() > 0) {
			t.Fatalf("partition %d: %v, log has [%d, %d) in %d bytes", i, pi, start, hwm, p.StoredBytes())
		}
	}

	list, err := c.ListTopics(ctx(t), &pb.ListTopicsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, tp := range list.GetTopics() {
		names = append(names, tp.GetName())
	}
	if !slices.Equal(names, []string{"audit", "orders"}) {
		t.Fatalf("list: %v", names)
	}
	if list.GetTopics()[0].RetentionMs != nil {
		t.Errorf("audit has retention_ms %d, want unset", list.GetTopics()[0].GetRetentionMs())
	}

	del, err := c.DeleteTopic(ctx(t), &pb.DeleteTopicRequest{Name: "orders"})
	if err != nil || !del.GetSuccess() {
		t.Fatalf("delete: %v %v", del, err)
	}
	_, err = c.GetTopic(ctx(t), &pb.GetTopicRequest{Name: "orders"})
	wantStatus(t, err, codes.NotFound, "Topic not found: orders")
}

// TestDeleteTopicRemovesDataAndOffsets checks that a deleted topic's
// objects and committed offsets go, so a new topic of the same name starts
// empty.
func TestDeleteTopicRemovesDataAndOffsets(t *testing.T) {
	e := grpcapitest.Start(t, grpcapitest.Options{})
	c := e.Client
	createTopic(t, e, "gone", 1, map[string]string{"segment.bytes": "1024"})
	for i := range 20 {
		produceBatch(t, e, "gone", 0, 10, fmt.Sprintf("batch-%d-", i))
	}
	objects := filepath.Join(e.Dir, "objects")
	waitFor(t, "segments uploaded", func() bool { return countFiles(t, objects) > 0 })
	if _, err := c.CommitOffset(ctx(t), &pb.CommitOffsetRequest{ConsumerGroup: "g", Topic: "gone", Offset: 7}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.DeleteTopic(ctx(t), &pb.DeleteTopicRequest{Name: "gone"}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "objects deleted", func() bool { return countFiles(t, objects) == 0 })

	createTopic(t, e, "gone", 1, nil)
	_, err := c.GetOffset(ctx(t), &pb.GetOffsetRequest{ConsumerGroup: "g", Topic: "gone"})
	wantStatus(t, err, codes.NotFound, "No offset committed")
	res, err := c.Consume(ctx(t), &pb.ConsumeRequest{Topic: "gone"})
	if err != nil || len(res.GetRecords()) != 0 || res.GetHighWatermark() != 0 {
		t.Fatalf("consume recreated topic: %v %v", res, err)
	}
}

// countFiles counts regular files under dir (0 if it does not exist).
func countFiles(t testing.TB, dir string) int {
	n := 0
	err := filepath.WalkDir(dir, func(_ string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() {
			n++
		}
		return nil
	})
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	return n
}

// produceBatch produces n records with values prefix0, prefix1...
func produceBatch(t testing.TB, e *grpcapitest.Env, topic string, part uint32, n int, prefix string) *pb.ProduceBatchResponse {
	t.Helper()
	recs := make([]*pb.Record, n)
	for i := range recs {
		recs[i] = &pb.Record{Key: fmt.Appendf(nil, "k%d", i), Value: fmt.Appendf(nil, "%s%d", prefix, i)}
	}
	res, err := e.Client.ProduceBatch(ctx(t), &pb.ProduceBatchRequest{Topic: topic, Partition: part, Records: recs})
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// TestProduceConsumeRoundTrip checks offsets, keys, values, headers and
// timestamps through both produce calls, and that Consume's paging fields
// are right.
func TestProduceConsumeRoundTrip(t *testing.T) {
	clock := time.UnixMilli(1_760_000_000_000)
	e := grpcapitest.Start(t, grpcapitest.Options{Now: func() time.Time { return clock }})
	c := e.Client
	createTopic(t, e, "t", 2, nil)

	one, err := c.Produce(ctx(t), &pb.ProduceRequest{Topic: "t", Partition: 1, Key: []byte("k"), Value: []byte(`{"a":1}`),
		Headers: map[string]string{"trace": "abc", "content-type": "json"}})
	if err != nil {
		t.Fatal(err)
	}
	if one.GetOffset() != 0 || one.GetTimestamp() != uint64(clock.UnixMilli()) {
		t.Fatalf("produce: %v", one)
	}
	two, err := c.Produce(ctx(t), &pb.ProduceRequest{Topic: "t", Partition: 1, Value: []byte("v2"), Timestamp: 42})
	if err != nil || two.GetOffset() != 1 || two.GetTimestamp() != 42 {
		t.Fatalf("produce with timestamp: %v %v", two, err)
	}
	batch, err := c.ProduceBatch(ctx(t), &pb.ProduceBatchRequest{Topic: "t", Partition: 1, Records: []*pb.Record{
		{Key: []byte("a"), Value: []byte("1"), Timestamp: 1000, Headers: map[string]string{"h": "1"}},
		{Value: []byte("2")},
		{Key: []byte("c"), Timestamp: 3000},
	}})
	if err != nil {
		t.Fatal(err)
	}
	if batch.GetFirstOffset() != 2 || batch.GetLastOffset() != 4 || batch.GetCount() != 3 {
		t.Fatalf("produce batch: %v", batch)
	}

	now := uint64(clock.UnixMilli())
	want := []*pb.ConsumedRecord{
		{Offset: 0, Timestamp: now, Key: []byte("k"), Value: []byte(`{"a":1}`),
			Headers:    map[string]string{"trace": "abc", "content-type": "json"},
			HeaderList: []*pb.Header{{Key: "content-type", Value: []byte("json")}, {Key: "trace", Value: []byte("abc")}}},
		{Offset: 1, Timestamp: 42, Value: []byte("v2")},
		{Offset: 2, Timestamp: 1000, Key: []byte("a"), Value: []byte("1"),
			Headers: map[string]string{"h": "1"}, HeaderList: []*pb.Header{{Key: "h", Value: []byte("1")}}},
		{Offset: 3, Timestamp: now, Value: []byte("2")},
		{Offset: 4, Timestamp: 3000, Key: []byte("c"), Value: []byte{}},
	}
	got := consumeAll(t, e, "t", 1, 0)
	checkRecords(t, got, want)

	page, err := c.Consume(ctx(t), &pb.ConsumeRequest{Topic: "t", Partition: 1, Offset: 1, MaxRecords: 2})
	if err != nil {
		t.Fatal(err)
	}
	if len(page.GetRecords()) != 2 || page.GetRecords()[0].GetOffset() != 1 || !page.GetHasMore() ||
		page.GetHighWatermark() != 5 || page.GetNextOffset() != 3 || page.GetLogStartOffset() != 0 {
		t.Fatalf("page: %v", page)
	}
	end, err := c.Consume(ctx(t), &pb.ConsumeRequest{Topic: "t", Partition: 1, Offset: 5})
	if err != nil || len(end.GetRecords()) != 0 || end.GetHasMore() || end.GetHighWatermark() != 5 {
		t.Fatalf("consume at the high watermark: %v %v", end, err)
	}
	empty, err := c.Consume(ctx(t), &pb.ConsumeRequest{Topic: "t", Partition: 0})
	if err != nil || len(empty.GetRecords()) != 0 || empty.GetHasMore() || empty.GetHighWatermark() != 0 {
		t.Fatalf("consume empty partition: %v %v", empty, err)
	}
}

// checkRecords compares consumed records field by field.
func checkRecords(t testing.TB, got, want []*pb.ConsumedRecord) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d records, want %d", len(got), len(want))
	}
	for i, g := range got {
		w := want[i]
		same := g.GetOffset() == w.GetOffset() && g.GetTimestamp() == w.GetTimestamp() &&
			bytes.Equal(g.GetKey(), w.GetKey()) && bytes.Equal(g.GetValue(), w.GetValue()) &&
			maps.Equal(g.GetHeaders(), w.GetHeaders()) && len(g.GetHeaderList()) == len(w.GetHeaderList())
		for j := 0; same && j < len(g.GetHeaderList()); j++ {
			gh, wh := g.GetHeaderList()[j], w.GetHeaderList()[j]
			same = gh.GetKey() == wh.GetKey() && bytes.Equal(gh.GetValue(), wh.GetValue())
		}
		if !same {
			t.Errorf("record %d:\n got %v\nwant %v", i, g, w)
		}
	}
}

// TestKafkaFormat checks that what the gRPC front writes is a plain LZ4
// RecordBatch the Kafka front reads identically, and that a batch the
// Kafka front appends (binary and repeated headers, null key) reads
// identically through gRPC.
func TestKafkaFormat(t *testing.T) {
	e := grpcapitest.Start(t, grpcapitest.Options{})
	createTopic(t, e, "t", 1, nil)
	_, err := e.Client.ProduceBatch(ctx(t), &pb.ProduceBatchRequest{Topic: "t", Records: []*pb.Record{
		{Key: []byte("k1"), Value: []byte("v1"), Timestamp: 1111, Headers: map[string]string{"b": "2", "a": "1"}},
		{Key: []byte("k2"), Value: []byte("v2"), Timestamp: 2222},
	}})
	if err != nil {
		t.Fatal(err)
	}
	p, err := e.Log.Partition("t", 0)
	if err != nil {
		t.Fatal(err)
	}
	res, err := p.Read(ctx(t), 0, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	h, err := log.ParseBatchHeader(res.Batches)
	if err != nil || h.Codec() != log.CodecLZ4 || h.NumRecords != 2 || h.FirstTimestamp != 1111 || h.MaxTimestamp != 2222 {
		t.Fatalf("stored batch header: %+v %v", h, err)
	}
	recs, err := log.DecodeBatches(res.Batches, 0)
	if err != nil || len(recs) != 2 {
		t.Fatalf("decode: %v %v", recs, err)
	}
	wantHeaders := []log.Header{{Key: "a", Value: []byte("1")}, {Key: "b", Value: []byte("2")}}
	if r := recs[0]; string(r.Key) != "k1" || string(r.Value) != "v1" || r.Timestamp != 1111 || !reflect.DeepEqual(r.Headers, wantHeaders) {
		t.Fatalf("record 0 as Kafka reads it: %+v", r)
	}

	kafka, err := log.EncodeBatch([]log.Record{{
		Value: []byte{0xff, 0x00}, Timestamp: 5555,
		Headers: []log.Header{{Key: "bin", Value: []byte{0xff, 0xfe}}, {Key: "dup", Value: []byte("x")}, {Key: "dup", Value: []byte("y")}},
	}}, log.CodecNone, 5555)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Append(ctx(t), kafka, log.AppendOptions{Sync: true}); err != nil {
		t.Fatal(err)
	}
	got, err := e.Client.Consume(ctx(t), &pb.ConsumeRequest{Topic: "t", Offset: 2})
	if err != nil {
		t.Fatal(err)
	}
	checkRecords(t, got.GetRecords(), []*pb.ConsumedRecord{{
		Offset: 2, Timestamp: 5555, Value: []byte{0xff, 0x00},
		Headers: map[string]string{"dup": "y"},
		HeaderList: []*pb.Header{{Key: "bin", Value: []byte{0xff, 0xfe}}, {Key: "dup", Value: []byte("x")},
			{Key: "dup", Value: []byte("y")}},
	}})
}

// TestLogAppendTime checks that a LogAppendTime topic stamps the broker's
// time and Produce reports it.
func TestLogAppendTime(t *testing.T) {
	clock := time.UnixMilli(1_770_000_000_000)
	e := grpcapitest.Start(t, grpcapitest.Options{Now: func() time.Time { return clock }})
	createTopic(t, e, "t", 1, map[string]string{"message.timestamp.type": "LogAppendTime"})
	res, err := e.Client.Produce(ctx(t), &pb.ProduceRequest{Topic: "t", Value: []byte("v"), Timestamp: 7})
	if err != nil {
		t.Fatal(err)
	}
	if res.GetTimestamp() != uint64(clock.UnixMilli()) {
		t.Fatalf("produce timestamp %d, want %d", res.GetTimestamp(), clock.UnixMilli())
	}
	got := consumeAll(t, e, "t", 0, 0)
	if len(got) != 1 || got[0].GetTimestamp() != uint64(clock.UnixMilli()) {
		t.Fatalf("consumed: %v", got)
	}
}

// TestConsumeAcrossSegments checks reads that span many small segments,
// some of them only in the object store, from the start and from the
// middle of a batch.
func TestConsumeAcrossSegments(t *testing.T) {
	e := grpcapitest.Start(t, grpcapitest.Options{})
	createTopic(t, e, "t", 1, map[string]string{"segment.bytes": "2048"})
	const batches, per = 40, 25
	for i := range batches {
		produceBatch(t, e, "t", 0, per, fmt.Sprintf("b%02d-", i))
	}
	waitFor(t, "segments uploaded", func() bool { return countFiles(t, filepath.Join(e.Dir, "objects")) > 5 })
	check := func(from int) {
		got := consumeAll(t, e, "t", 0, uint64(from))
		if len(got) != batches*per-from {
			t.Fatalf("from %d: got %d records, want %d", from, len(got), batches*per-from)
		}
		for i, r := range got {
			off := from + i
			want := fmt.Sprintf("b%02d-%d", off/per, off%per)
			if r.GetOffset() != uint64(off) || string(r.GetValue()) != want {
				t.Fatalf("from %d: record %d is %d %q, want %d %q", from, i, r.GetOffset(), r.GetValue(), off, want)
			}
		}
	}
	check(0)
	check(537)
	// A single call fills max_records across segment boundaries.
	res, err := e.Client.Consume(ctx(t), &pb.ConsumeRequest{Topic: "t", Offset: 10, MaxRecords: 700})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.GetRecords()) != 700 || res.GetNextOffset() != 710 || !res.GetHasMore() {
		t.Fatalf("one call: %d records, next %d, has_more %v", len(res.GetRecords()), res.GetNextOffset(), res.GetHasMore())
	}
}

// TestConsumeLimits checks the byte cap (at least one record) and the
// default and maximum record counts.
func TestConsumeLimits(t *testing.T) {
	e := grpcapitest.Start(t, grpcapitest.Options{})
	c := e.Client
	createTopic(t, e, "big", 1, nil)
	recs := make([]*pb.Record, 10)
	for i := range recs {
		recs[i] = &pb.Record{Value: bytes.Repeat([]byte{byte('a' + i)}, 1000)}
	}
	if _, err := c.ProduceBatch(ctx(t), &pb.ProduceBatchRequest{Topic: "big", Records: recs}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		maxBytes uint32
		want     int
	}{{10, 1}, {2500, 2}, {0, 10}} {
		res, err := c.Consume(ctx(t), &pb.ConsumeRequest{Topic: "big", MaxBytes: tc.maxBytes})
		if err != nil {
			t.Fatal(err)
		}
		if len(res.GetRecords()) != tc.want || res.GetHasMore() != (tc.want < 10) {
			t.Errorf("max_bytes %d: %d records (has_more %v), want %d", tc.maxBytes, len(res.GetRecords()), res.GetHasMore(), tc.want)
		}
	}

	createTopic(t, e, "many", 1, nil)
	for range 12 {
		produceBatch(t, e, "many", 0, 1000, "v")
	}
	for _, tc := range []struct {
		maxRecords uint32
		want       int
	}{{0, 100}, {1, 1}, {20_000, 10_000}} {
		res, err := c.Consume(ctx(t), &pb.ConsumeRequest{Topic: "many", MaxRecords: tc.maxRecords})
		if err != nil {
			t.Fatal(err)
		}
		if len(res.GetRecords()) != tc.want {
			t.Errorf("max_records %d: %d records, want %d", tc.maxRecords, len(res.GetRecords()), tc.want)
		}
	}
}

// TestProduceBatchSplit checks that a batch larger than max.message.bytes
// is stored as several batches, appended together.
func TestProduceBatchSplit(t *testing.T) {
	e := grpcapitest.Start(t, grpcapitest.Options{})
	createTopic(t, e, "t", 1, map[string]string{"max.message.bytes": "4096"})
	recs := make([]*pb.Record, 50)
	for i := range recs {
		recs[i] = &pb.Record{Value: randomBytes(300 + i)}
	}
	res, err := e.Client.ProduceBatch(ctx(t), &pb.ProduceBatchRequest{Topic: "t", Records: recs})
	if err != nil {
		t.Fatal(err)
	}
	if res.GetFirstOffset() != 0 || res.GetLastOffset() != 49 {
		t.Fatalf("produce: %v", res)
	}
	p, err := e.Log.Partition("t", 0)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := p.Read(ctx(t), 0, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	if batches, err := log.SplitBatches(raw.Batches); err != nil || len(batches) < 4 {
		t.Fatalf("stored as %d batches (%v), want at least 4 of at most 4096 bytes", len(batches), err)
	}
	got := consumeAll(t, e, "t", 0, 0)
	if len(got) != 50 {
		t.Fatalf("consumed %d records", len(got))
	}
	for i, r := range got {
		if !bytes.Equal(r.GetValue(), recs[i].GetValue()) {
			t.Fatalf("record %d differs", i)
		}
	}
}

// TestConsumeBelowLogStart checks OUT_OF_RANGE naming the log start once
// retention has deleted the oldest segments.
func TestConsumeBelowLogStart(t *testing.T) {
	e := grpcapitest.Start(t, grpcapitest.Options{RetentionInterval: 20 * time.Millisecond})
	createTopic(t, e, "t", 1, map[string]string{"segment.bytes": "1024", "retention.bytes": "0"})
	for i := range 10 {
		produceBatch(t, e, "t", 0, 20, fmt.Sprintf("b%d-", i))
	}
	p, err := e.Log.Partition("t", 0)
	if err != nil {
		t.Fatal(err)
	}
	var start int64
	waitFor(t, "retention", func() bool { start, _ = p.Offsets(); return start > 0 })
	_, err = e.Client.Consume(ctx(t), &pb.ConsumeRequest{Topic: "t", Offset: 0})
	wantStatus(t, err, codes.OutOfRange, "before the log start offset", "consume from")
	start, _ = p.Offsets()
	res, err := e.Client.Consume(ctx(t), &pb.ConsumeRequest{Topic: "t", Offset: uint64(start)})
	if err != nil || len(res.GetRecords()) == 0 || res.GetLogStartOffset() < uint64(start) {
		t.Fatalf("consume from log start %d: %v %v", start, res, err)
	}
}

// TestOffsets checks commit and fetch, offset 0, metadata, overwrite, and
// that the rows are those the Kafka front reads (meta.FetchOffset).
func TestOffsets(t *testing.T) {
	e := grpcapitest.Start(t, grpcapitest.Options{})
	c := e.Client
	createTopic(t, e, "t", 2, nil)
	md := "from grpc"
	if _, err := c.CommitOffset(ctx(t), &pb.CommitOffsetRequest{ConsumerGroup: "g", Topic: "t", Partition: 1, Offset: 0}); err != nil {
		t.Fatal(err)
	}
	got, err := c.GetOffset(ctx(t), &pb.GetOffsetRequest{ConsumerGroup: "g", Topic: "t", Partition: 1})
	if err != nil || got.GetOffset() != 0 || got.Metadata == nil || got.GetMetadata() != "" {
		t.Fatalf("offset 0: %v %v", got, err)
	}
	res, err := c.CommitOffset(ctx(t), &pb.CommitOffsetRequest{ConsumerGroup: "g", Topic: "t", Partition: 1, Offset: 42, Metadata: &md})
	if err != nil || !res.GetSuccess() {
		t.Fatalf("commit: %v %v", res, err)
	}
	got, err = c.GetOffset(ctx(t), &pb.GetOffsetRequest{ConsumerGroup: "g", Topic: "t", Partition: 1})
	if err != nil || got.GetOffset() != 42 || got.GetMetadata() != md {
		t.Fatalf("get: %v %v", got, err)
	}
	row, found, err := e.Meta.FetchOffset(ctx(t), "g", "t", 1)
	if err != nil || !found || row.Offset != 42 || row.Metadata != md || row.LeaderEpoch != -1 {
		t.Fatalf("meta row: %+v %v %v", row, found, err)
	}
	_, err = c.GetOffset(ctx(t), &pb.GetOffsetRequest{ConsumerGroup: "g", Topic: "t", Partition: 0})
	wantStatus(t, err, codes.NotFound, "No offset committed")
	_, err = c.GetOffset(ctx(t), &pb.GetOffsetRequest{ConsumerGroup: "other", Topic: "t", Partition: 1})
	wantStatus(t, err, codes.NotFound, `group "other"`)
}

// TestConcurrentProduce checks that concurrent ProduceBatch calls get
// disjoint, contiguous offsets and lose nothing.
func TestConcurrentProduce(t *testing.T) {
	e := grpcapitest.Start(t, grpcapitest.Options{})
	createTopic(t, e, "t", 1, nil)
	const writers, calls, per = 4, 10, 50
	var wg sync.WaitGroup
	firsts := make(chan uint64, writers*calls)
	for w := range writers {
		wg.Go(func() {
			for i := range calls {
				res := produceBatch(t, e, "t", 0, per, fmt.Sprintf("w%d-%d-", w, i))
				if res.GetLastOffset()-res.GetFirstOffset() != per-1 {
					t.Errorf("batch offsets %d-%d", res.GetFirstOffset(), res.GetLastOffset())
				}
				firsts <- res.GetFirstOffset()
			}
		})
	}
	wg.Wait()
	close(firsts)
	var got []uint64
	for f := range firsts {
		got = append(got, f)
	}
	slices.Sort(got)
	for i, f := range got {
		if f != uint64(i*per) {
			t.Fatalf("batch %d starts at %d, want %d", i, f, i*per)
		}
	}
	if n := len(consumeAll(t, e, "t", 0, 0)); n != writers*calls*per {
		t.Fatalf("consumed %d records", n)
	}
}

// TestLongPoll checks that a Consume at the high watermark waits for the
// next record, and that stopping the server ends a long poll at once.
func TestLongPoll(t *testing.T) {
	e := grpcapitest.Start(t, grpcapitest.Options{})
	createTopic(t, e, "t", 1, nil)
	done := make(chan *pb.ConsumeResponse, 1)
	go func() {
		res, err := e.Client.Consume(context.Background(), &pb.ConsumeRequest{Topic: "t", MaxWaitMs: 20_000})
		if err != nil {
			t.Errorf("long poll: %v", err)
		}
		done <- res
	}()
	waitFor(t, "the poll to wait", func() bool { return grpcapi.WaitingPolls(e.Server) == 1 })
	if _, err := e.Client.Produce(ctx(t), &pb.ProduceRequest{Topic: "t", Value: []byte("wake")}); err != nil {
		t.Fatal(err)
	}
	select {
	case res := <-done:
		if len(res.GetRecords()) != 1 || string(res.GetRecords()[0].GetValue()) != "wake" {
			t.Fatalf("long poll answered %v", res)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("long poll did not answer after a produce")
	}

	go func() {
		res, err := e.Client.Consume(context.Background(), &pb.ConsumeRequest{Topic: "t", Offset: 1, MaxWaitMs: 30_000})
		if err != nil {
			t.Errorf("long poll during stop: %v", err)
		}
		done <- res
	}()
	waitFor(t, "the poll to wait", func() bool { return grpcapi.WaitingPolls(e.Server) == 1 })
	start := time.Now()
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := e.Server.Stop(sctx); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("stop took %v with a long poll in flight", d)
	}
	if res := <-done; len(res.GetRecords()) != 0 {
		t.Fatalf("long poll during stop answered %v", res)
	}
}

// TestHealth checks grpc.health.v1 for the server and the service.
func TestHealth(t *testing.T) {
	e := grpcapitest.Start(t, grpcapitest.Options{})
	h := healthpb.NewHealthClient(e.Conn)
	for _, svc := range []string{"", "streamhouse.StreamHouse"} {
		res, err := h.Check(ctx(t), &healthpb.HealthCheckRequest{Service: svc})
		if err != nil || res.GetStatus() != healthpb.HealthCheckResponse_SERVING {
			t.Fatalf("health of %q: %v %v", svc, res, err)
		}
	}
}

// TestCompactedTopicRefusesKeylessRecords creates a topic with
// cleanup.policy=compact and checks that Produce and ProduceBatch of a
// record without a key (an empty key is Kafka's null key here) answer
// INVALID_ARGUMENT with Kafka's message and write nothing, while keyed
// records are appended.
func TestCompactedTopicRefusesKeylessRecords(t *testing.T) {
	e := grpcapitest.Start(t, grpcapitest.Options{})
	c := e.Client
	for name, policy := range map[string]string{"table": "compact", "both": "compact,delete"} {
		if _, err := c.CreateTopic(ctx(t), &pb.CreateTopicRequest{Name: name, PartitionCount: 1,
			Config: map[string]string{"cleanup.policy": policy, "min.compaction.lag.ms": "1000"}}); err != nil {
			t.Fatalf("create with cleanup.policy=%s: %v", policy, err)
		}
		got, err := c.GetTopic(ctx(t), &pb.GetTopicRequest{Name: name})
		if err != nil || got.GetTopic().GetConfig()["cleanup.policy"] != policy {
			t.Fatalf("get: %v %v", got, err)
		}
	}
	const topic, msg = "table", "Compacted topic cannot accept message without key"
	_, err := c.Produce(ctx(t), &pb.ProduceRequest{Topic: topic, Value: []byte("no key")})
	wantStatus(t, err, codes.InvalidArgument, msg)
	_, err = c.Produce(ctx(t), &pb.ProduceRequest{Topic: topic, Key: []byte{}, Value: []byte("empty key")})
	wantStatus(t, err, codes.InvalidArgument, msg)
	_, err = c.ProduceBatch(ctx(t), &pb.ProduceBatchRequest{Topic: topic, Records: []*pb.Record{
		{Key: []byte("a"), Value: []byte("1")}, {Value: []byte("no key")}, {Key: []byte("b"), Value: []byte("2")},
	}})
	wantStatus(t, err, codes.InvalidArgument, msg)
	if res, err := c.Consume(ctx(t), &pb.ConsumeRequest{Topic: topic}); err != nil || res.GetHighWatermark() != 0 || len(res.GetRecords()) != 0 {
		t.Fatalf("refused produces wrote something: %v %v", res, err)
	}

	res, err := c.Produce(ctx(t), &pb.ProduceRequest{Topic: topic, Key: []byte("a"), Value: []byte("1")})
	if err != nil || res.GetOffset() != 0 {
		t.Fatalf("keyed produce: %v %v", res, err)
	}
	produceBatch(t, e, topic, 0, 3, "v")
	if got := consumeAll(t, e, topic, 0, 0); len(got) != 4 || string(got[0].GetKey()) != "a" || string(got[3].GetKey()) != "k2" {
		t.Fatalf("consumed %v", got)
	}
}

// A topic whose min.insync.replicas is above the one replica a partition
// has refuses every gRPC produce (each is acks=all) and writes nothing.
func TestProduceMinInsyncReplicas(t *testing.T) {
	e := grpcapitest.Start(t, grpcapitest.Options{})
	createTopic(t, e, "two", 1, map[string]string{"min.insync.replicas": "2"})
	_, err := e.Client.Produce(ctx(t), &pb.ProduceRequest{Topic: "two", Key: []byte("k"), Value: []byte("v")})
	if status.Code(err) != codes.FailedPrecondition || !strings.Contains(err.Error(), "min.isr requirement of 2") {
		t.Fatalf("produce: %v, want FailedPrecondition", err)
	}
	p, err := e.Log.Partition("two", 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, hwm := p.Offsets(); hwm != 0 {
		t.Fatalf("refused produce moved the high watermark to %d", hwm)
	}
}
