package kafka

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/streamhouse/streamhouse/log"
)

// testRecords makes n records for partition p with distinct keys, values,
// headers and millisecond timestamps.
func testRecords(topic string, parts int32, n int) []*kgo.Record {
	base := time.UnixMilli(1_700_000_000_000)
	recs := make([]*kgo.Record, n)
	for i := range recs {
		recs[i] = &kgo.Record{
			Topic: topic, Partition: int32(i) % parts,
			Key:       []byte(fmt.Sprintf("key-%d", i)),
			Value:     []byte(fmt.Sprintf("value-%d-%s", i, make([]byte, i%50))),
			Headers:   []kgo.RecordHeader{{Key: "i", Value: []byte(fmt.Sprint(i))}, {Key: "empty"}},
			Timestamp: base.Add(time.Duration(i) * time.Millisecond),
		}
	}
	return recs
}

// consumeAll reads want records of topic from the start.
func consumeAll(t *testing.T, b *testBroker, topic string, want int) []*kgo.Record {
	t.Helper()
	c := b.client(kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchMaxWait(200*time.Millisecond))
	ctx := testCtx(t)
	var got []*kgo.Record
	for len(got) < want {
		fs := c.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("consumed %d of %d records: %v", len(got), want, err)
		}
		fs.EachError(func(topic string, p int32, err error) { t.Fatalf("fetch %s[%d]: %v", topic, p, err) })
		got = append(got, fs.Records()...)
	}
	return got
}

// checkRecords asserts got holds exactly sent, per partition in order.
func checkRecords(t *testing.T, sent, got []*kgo.Record) {
	t.Helper()
	if len(got) != len(sent) {
		t.Fatalf("got %d records, want %d", len(got), len(sent))
	}
	byPart := map[int32][]*kgo.Record{}
	for _, r := range sent {
		byPart[r.Partition] = append(byPart[r.Partition], r)
	}
	next := map[int32]int{}
	for _, r := range got {
		i := next[r.Partition]
		next[r.Partition]++
		want := byPart[r.Partition][i]
		if r.Offset != int64(i) {
			t.Fatalf("partition %d record %d at offset %d", r.Partition, i, r.Offset)
		}
		if string(r.Key) != string(want.Key) || string(r.Value) != string(want.Value) {
			t.Fatalf("partition %d offset %d: key %q value %q, want %q %q", r.Partition, r.Offset, r.Key, r.Value, want.Key, want.Value)
		}
		if !r.Timestamp.Equal(want.Timestamp) {
			t.Fatalf("offset %d timestamp %v, want %v", r.Offset, r.Timestamp, want.Timestamp)
		}
		if len(r.Headers) != 2 || r.Headers[0].Key != "i" || string(r.Headers[0].Value) != string(want.Headers[0].Value) ||
			r.Headers[1].Key != "empty" || len(r.Headers[1].Value) != 0 {
			t.Fatalf("offset %d headers %+v", r.Offset, r.Headers)
		}
	}
}

func TestProduceConsumeEveryCodec(t *testing.T) {
	codecs := []struct {
		name  string
		codec kgo.CompressionCodec
	}{
		{"none", kgo.NoCompression()}, {"gzip", kgo.GzipCompression()}, {"snappy", kgo.SnappyCompression()},
		{"lz4", kgo.Lz4Compression()}, {"zstd", kgo.ZstdCompression()},
	}
	b := newTestBroker(t, nil)
	for _, tc := range codecs {
		t.Run(tc.name, func(t *testing.T) {
			topic := "codec-" + tc.name
			b.createTopic(topic, 3, nil)
			// Idempotence is kgo's default: InitProducerId and sequence
			// checks are on this path.
			p := b.client(kgo.ProducerBatchCompression(tc.codec), kgo.RecordPartitioner(kgo.ManualPartitioner()))
			sent := testRecords(topic, 3, 300)
			if err := p.ProduceSync(testCtx(t), sent...).FirstErr(); err != nil {
				t.Fatal(err)
			}
			checkRecords(t, sent, consumeAll(t, b, topic, len(sent)))
		})
	}
}

func TestProduceAcks(t *testing.T) {
	b := newTestBroker(t, nil)
	for _, tc := range []struct {
		name string
		opts []kgo.Opt
	}{
		{"all", []kgo.Opt{kgo.RequiredAcks(kgo.AllISRAcks())}},
		{"leader", []kgo.Opt{kgo.RequiredAcks(kgo.LeaderAck()), kgo.DisableIdempotentWrite()}},
		{"none", []kgo.Opt{kgo.RequiredAcks(kgo.NoAck()), kgo.DisableIdempotentWrite()}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			topic := "acks-" + tc.name
			b.createTopic(topic, 2, nil)
			p := b.client(append(tc.opts, kgo.RecordPartitioner(kgo.ManualPartitioner()))...)
			sent := testRecords(topic, 2, 50)
			if err := p.ProduceSync(testCtx(t), sent...).FirstErr(); err != nil {
				t.Fatal(err)
			}
			checkRecords(t, sent, consumeAll(t, b, topic, len(sent)))
		})
	}
}

func TestProduceLogAppendTime(t *testing.T) {
	b := newTestBroker(t, nil)
	b.createTopic("lat", 1, map[string]string{"message.timestamp.type": "LogAppendTime"})
	b.createTopic("ct", 1, nil)
	c := b.raw()
	before := time.Now().Add(-time.Second).UnixMilli()
	sp := producePart(t, c.roundTrip(1, produceOne("lat", 0, plainBatch(t, "v"))))
	if sp.ErrorCode != 0 || sp.LogAppendTime < before {
		t.Fatalf("answer %+v, want the broker's append time", sp)
	}
	got := consumeAll(t, b, "lat", 1)
	if got[0].Timestamp.UnixMilli() != sp.LogAppendTime {
		t.Fatalf("fetched timestamp %v, produce said %d", got[0].Timestamp, sp.LogAppendTime)
	}
	if sp := producePart(t, c.roundTrip(2, produceOne("ct", 0, plainBatch(t, "v")))); sp.LogAppendTime != -1 {
		t.Fatalf("CreateTime topic answered LogAppendTime %d", sp.LogAppendTime)
	}
}

func TestProduceUnknownPartitionDoesNotFailOthers(t *testing.T) {
	b := newTestBroker(t, nil)
	b.createTopic("one", 1, nil)
	c := b.raw()
	resp := c.roundTrip(1, produceReq(-1, map[string]map[int32][]byte{
		"one":     {0: plainBatch(t, "a"), 5: plainBatch(t, "b")},
		"missing": {0: plainBatch(t, "c")},
	}))
	codes := produceCodes(resp)
	want := map[string]int16{"one/0": 0, "one/5": 3, "missing/0": 3}
	for k, v := range want {
		if codes[k] != v {
			t.Fatalf("%s: code %d, want %d (all: %v)", k, codes[k], v, codes)
		}
	}
	if _, hwm := mustPartition(t, b, "one", 0).Offsets(); hwm != 1 {
		t.Fatalf("high watermark %d, want 1", hwm)
	}
}

func TestFetchLongPollReturnsWhenDataArrives(t *testing.T) {
	b := newTestBroker(t, nil)
	b.createTopic("poll", 1, nil)
	c := b.raw()
	type result struct {
		elapsed time.Duration
		n       int
	}
	done := make(chan result, 1)
	start := time.Now()
	go func() {
		resp := c.roundTripNoFatal(2, fetchReq("poll", 0, 0, 10_000, 1))
		n := 0
		if resp != nil && len(resp.Topics) == 1 {
			n = len(resp.Topics[0].Partitions[0].RecordBatches)
		}
		done <- result{time.Since(start), n}
	}()
	time.Sleep(300 * time.Millisecond) // let the fetch start waiting
	p := mustPartition(t, b, "poll", 0)
	if _, err := p.Append(context.Background(), plainBatch(t, "x"), log.AppendOptions{}); err != nil {
		t.Fatal(err)
	}
	r := <-done
	if r.n == 0 {
		t.Fatal("long poll returned no data")
	}
	if r.elapsed > 5*time.Second {
		t.Fatalf("long poll took %v after data arrived", r.elapsed)
	}

	// Without data it waits about MaxWait and answers empty.
	start = time.Now()
	resp := c.roundTrip(3, fetchReq("poll", 0, 1, 300, 1)).(*kmsg.FetchResponse)
	if el := time.Since(start); el < 250*time.Millisecond || el > 5*time.Second {
		t.Fatalf("empty long poll took %v, want about 300ms", el)
	}
	if n := len(resp.Topics[0].Partitions[0].RecordBatches); n != 0 {
		t.Fatalf("empty long poll returned %d bytes", n)
	}
}

// TestProduceKeylessToCompactedTopic checks that a compacted topic refuses
// a batch holding a record without a key, at every version, with
// INVALID_RECORD and (v8+) Kafka's message, and writes nothing; a keyed
// batch, also from the same idempotent franz-go client afterwards, is
// appended.
func TestProduceKeylessToCompactedTopic(t *testing.T) {
	b := newTestBroker(t, nil)
	b.createTopic("table", 1, map[string]string{log.ConfigCleanupPolicy: "compact"})
	b.createTopic("both", 1, map[string]string{log.ConfigCleanupPolicy: "delete,compact"})
	const msg = "Compacted topic cannot accept message without key"
	keyless, err := log.EncodeBatch([]log.Record{{Key: []byte("k"), Value: []byte("v")}, {Value: []byte("no key")}},
		log.CodecLZ4, time.Now().UnixMilli())
	if err != nil {
		t.Fatal(err)
	}
	c := b.raw()
	for _, topic := range []string{"table", "both"} {
		for _, v := range []int16{3, 7, 8, 9, 12} {
			req := produceOne(topic, 0, append([]byte(nil), keyless...))
			req.Version = v
			sp := producePart(t, c.roundTrip(int32(v), req))
			if sp.ErrorCode != kerr.InvalidRecord.Code || sp.BaseOffset != -1 {
				t.Fatalf("%s v%d: code %d, base offset %d; want INVALID_RECORD", topic, v, sp.ErrorCode, sp.BaseOffset)
			}
			if got := sp.ErrorMessage; (v >= 8) != (got != nil) || got != nil && !strings.Contains(*got, msg) {
				t.Fatalf("%s v%d: error message %v, want one containing %q from v8", topic, v, got, msg)
			}
		}
		if _, hwm := mustPartition(t, b, topic, 0).Offsets(); hwm != 0 {
			t.Fatalf("%s: refused batches moved the high watermark to %d", topic, hwm)
		}
	}

	cl := b.client(kgo.DefaultProduceTopic("table"), kgo.RecordRetries(2))
	ctx := testCtx(t)
	err = cl.ProduceSync(ctx, &kgo.Record{Value: []byte("no key")}).FirstErr()
	if !errors.Is(err, kerr.InvalidRecord) {
		t.Fatalf("keyless produce: %v, want INVALID_RECORD", err)
	}
	r, err := cl.ProduceSync(ctx, &kgo.Record{Key: []byte("k"), Value: []byte("v")}).First()
	if err != nil || r.Offset != 0 {
		t.Fatalf("keyed produce after a refused one: offset %v, %v", r, err)
	}
	got := consumeAll(t, b, "table", 1)
	if string(got[0].Key) != "k" || string(got[0].Value) != "v" {
		t.Fatalf("consumed %q=%q", got[0].Key, got[0].Value)
	}
}

// A topic asking for two in-sync replicas cannot take an acks=all produce
// on a broker with one replica: NOT_ENOUGH_REPLICAS, nothing written, as
// Kafka answers for a one-replica topic; acks=1 is unaffected.
func TestProduceMinInsyncReplicas(t *testing.T) {
	b := newTestBroker(t, nil)
	b.createTopic("two", 1, map[string]string{log.ConfigMinInsyncReplica: "2"})
	batch, err := log.EncodeBatch([]log.Record{{Key: []byte("k"), Value: []byte("v")}}, log.CodecNone, time.Now().UnixMilli())
	if err != nil {
		t.Fatal(err)
	}
	c := b.raw()
	req := produceOne("two", 0, append([]byte(nil), batch...))
	req.Version = 9
	sp := producePart(t, c.roundTrip(9, req))
	if sp.ErrorCode != kerr.NotEnoughReplicas.Code || sp.ErrorMessage == nil || !strings.Contains(*sp.ErrorMessage, "min.isr requirement of 2") {
		t.Fatalf("acks=all: code %d message %v, want NOT_ENOUGH_REPLICAS", sp.ErrorCode, sp.ErrorMessage)
	}
	if _, hwm := mustPartition(t, b, "two", 0).Offsets(); hwm != 0 {
		t.Fatalf("a refused produce moved the high watermark to %d", hwm)
	}
	req = produceOne("two", 0, append([]byte(nil), batch...))
	req.Version, req.Acks = 9, 1
	if sp := producePart(t, c.roundTrip(10, req)); sp.ErrorCode != 0 || sp.BaseOffset != 0 {
		t.Fatalf("acks=1: code %d base %d", sp.ErrorCode, sp.BaseOffset)
	}
}
