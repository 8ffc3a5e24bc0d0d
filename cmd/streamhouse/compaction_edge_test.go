package main

// Two compaction edge cases found while writing TestCompactedTopicEndToEnd:
// a record stamped ahead of the broker's clock must not stop compaction,
// and ListOffsets MAX_TIMESTAMP must find a record after compaction removed
// the one that had the batch's largest timestamp.

import (
	"context"
	"fmt"
	"hash/crc32"
	"path/filepath"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// startCompBug starts a broker with the cleaner every 200ms and creates a
// compacted topic of 4 KiB segments; it returns the run and a
// non-idempotent acks=all client producing to the topic.
func startCompBug(t *testing.T) (*compRun, *kgo.Client, [16]byte) {
	t.Helper()
	c := &compRun{t: t, ctx: context.Background(), dir: t.TempDir(), m: newCompModel()}
	c.start("127.0.0.1:0")
	id := createTopic(t, c.kafkaAddr, compTopic, 1, map[string]string{
		"cleanup.policy": "compact", "segment.bytes": "4096", "segment.ms": "500",
		"min.cleanable.dirty.ratio": "0.01"})
	c.segDir = filepath.Join(c.dir, "segments", compUUID(id), "0")
	c.objDir = filepath.Join(c.dir, "objects", "topics", compUUID(id), "0")
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.kafkaAddr), kgo.DisableIdempotentWrite(),
		kgo.RequiredAcks(kgo.AllISRAcks()), kgo.ProducerBatchCompression(kgo.NoCompression()),
		kgo.DefaultProduceTopic(compTopic))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return c, cl, id
}

// produceFillers produces n records of 200 bytes over 5 keys, at ts (zero:
// the client's clock), so that 4 KiB segments roll and upload.
func produceFillers(t *testing.T, cl *kgo.Client, n int, ts time.Time) {
	t.Helper()
	for i := 0; i < n; i++ {
		r := &kgo.Record{Key: []byte(fmt.Sprintf("F%d", i%5)), Value: make([]byte, 200), Timestamp: ts}
		if err := cl.ProduceSync(context.Background(), r).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
}

// TestCompactionFutureTimestampBlocksCleaner: with min.compaction.lag.ms 0
// (the default), one record whose CreateTime is ahead of the broker's clock
// (a producer with a skewed clock) stops the cleaner at its segment until
// the broker's clock passes that time: planCompaction (log/compact.go)
// treats a segment with maxTs > now - minCompactionLag as too young even
// when the lag is 0. Kafka applies that test only when
// min.compaction.lag.ms > 0.
func TestCompactionFutureTimestampBlocksCleaner(t *testing.T) {
	c, cl, _ := startCompBug(t)
	future := time.Now().Add(time.Hour)
	if err := cl.ProduceSync(context.Background(), &kgo.Record{Key: []byte("A"), Value: []byte("skewed"), Timestamp: future}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	produceFillers(t, cl, 60, time.Time{})
	waitFor(t, 20*time.Second, "a compaction run", func() (bool, string) {
		code, body, err := httpGet("http://" + c.httpAddr + "/metrics")
		if err != nil || code != 200 {
			return false, fmt.Sprintf("/metrics: %d %v", code, err)
		}
		plain, compacted := compObjects(t, c.objDir)
		return metricValue(body, compMetricRuns) >= 1, fmt.Sprintf("runs %v, dirty ratio %v, %d uploaded and %d compacted objects",
			metricValue(body, compMetricRuns), compLabelled(body, "streamhouse_log_cleaner_dirty_ratio", `topic="`+compTopic+`"`), plain, compacted)
	})
	c.stop(false)
}

// TestCompactedMaxTimestampListOffsets: after compaction removed the
// record with the partition's largest timestamp from a batch that keeps
// other records, ListOffsets MAX_TIMESTAMP (-3) answers offset -1 and
// timestamp -1 although records remain. cleanBatch (log/compact_io.go)
// rewrites a batch's count, attributes, first timestamp and CRC but keeps
// its MaxTimestamp, and segmentWriter.add takes the compacted segment's
// maxTs from it; Partition.MaxTimestamp then searches that segment for a
// timestamp no record has. Kafka rebuilds the batch's max timestamp from
// the records kept.
func TestCompactedMaxTimestampListOffsets(t *testing.T) {
	c, cl, id := startCompBug(t)
	// Every time is in the broker's past (see the test above).
	base := time.Now().Add(-2 * time.Minute).UnixMilli()
	// One batch: A at base+60s (the largest time), B at base.
	produceRawKeyed(t, cl, id, base, []string{"A", "B"}, []int64{base + 60_000, base})
	// A again and the fillers at base+30s: A's first record goes, its batch stays for B.
	if err := cl.ProduceSync(context.Background(), &kgo.Record{Key: []byte("A"), Value: []byte("A2"), Timestamp: time.UnixMilli(base + 30_000)}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	produceFillers(t, cl, 60, time.UnixMilli(base+30_000))
	waitCompQuiet(t, c.p, c.httpAddr, c.segDir, c.objDir, 1)
	recs := compConsumeAll(context.Background(), t, c.kafkaAddr, 62)
	want := recs[0]
	for _, r := range recs {
		if r.ts > want.ts {
			want = r
		}
	}
	req := kmsg.NewPtrListOffsetsRequest()
	req.ReplicaID = -1
	rt := kmsg.NewListOffsetsRequestTopic()
	rt.Topic = compTopic
	rp := kmsg.NewListOffsetsRequestTopicPartition()
	rp.Timestamp, rp.CurrentLeaderEpoch = -3, -1
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(context.Background(), cl)
	if err != nil {
		t.Fatal(err)
	}
	sp := resp.Topics[0].Partitions[0]
	if sp.ErrorCode != 0 || sp.Offset != want.offset || sp.Timestamp != want.ts {
		t.Errorf("ListOffsets v%d MAX_TIMESTAMP = error %s offset %d timestamp %d; want %s (the first record with the largest timestamp left)",
			resp.Version, codeName(sp.ErrorCode), sp.Offset, sp.Timestamp, want)
	}
	c.stop(false)
}

// produceRawKeyed produces one uncompressed batch without a producer ID
// holding keys[i] at timestamps ts[i], its first timestamp first.
func produceRawKeyed(t *testing.T, cl *kgo.Client, topicID [16]byte, first int64, keys []string, ts []int64) {
	t.Helper()
	var recs []byte
	maxTs := first
	for i, k := range keys {
		r := kmsg.Record{OffsetDelta: int32(i), TimestampDelta64: ts[i] - first, Key: []byte(k), Value: []byte("v-" + k)}
		r.Length = int32(len(r.AppendTo(nil)) - 1) // Length 0 takes one byte
		recs = r.AppendTo(recs)
		maxTs = max(maxTs, ts[i])
	}
	b := kmsg.RecordBatch{PartitionLeaderEpoch: -1, Magic: 2, LastOffsetDelta: int32(len(keys) - 1),
		FirstTimestamp: first, MaxTimestamp: maxTs, ProducerID: -1, ProducerEpoch: -1, FirstSequence: -1,
		NumRecords: int32(len(keys)), Records: recs}
	raw := b.AppendTo(nil)
	putInt32(raw[8:], int32(len(raw)-12))
	putInt32(raw[17:], int32(crc32.Checksum(raw[21:], crc32.MakeTable(crc32.Castagnoli))))
	req := kmsg.NewPtrProduceRequest()
	req.Acks, req.TimeoutMillis = -1, 30_000
	tp := kmsg.NewProduceRequestTopic()
	tp.Topic, tp.TopicID = compTopic, topicID
	pp := kmsg.NewProduceRequestTopicPartition()
	pp.Records = raw
	tp.Partitions = append(tp.Partitions, pp)
	req.Topics = append(req.Topics, tp)
	resp, err := req.RequestWith(context.Background(), cl)
	if err != nil {
		t.Fatal(err)
	}
	if code := resp.Topics[0].Partitions[0].ErrorCode; code != 0 {
		t.Fatalf("raw produce: %s", codeName(code))
	}
}
