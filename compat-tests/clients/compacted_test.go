package clients

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/streamhouse/streamhouse/compat-tests/harness"
)

// Helpers for the compacted topics that Kafka Streams and Kafka Connect
// create (streams_test.go, connect_test.go).

// compactTestConfigs are the topic configs that the Streams and Connect
// tests have their compacted topics created with (Streams' topic.* and
// Connect's config.storage.*, offset.storage.*, status.storage.*
// properties): short segments and a low dirty ratio, so that a broker that
// compacts does so while the test runs. Kafka's minimum segment.bytes is
// 1 MiB; segment.ms rolls the segments here.
var compactTestConfigs = map[string]string{
	"segment.bytes":             "1048576",
	"segment.ms":                "100",
	"min.cleanable.dirty.ratio": "0.01",
	"delete.retention.ms":       "1000",
}

// checkCompactedConfigs checks, with DescribeConfigs, that topic has
// cleanup.policy=compact and compactTestConfigs.
func checkCompactedConfigs(t *testing.T, b harness.Broker, topic string) {
	t.Helper()
	got := topicConfigs(t, b, topic)
	want := maps.Clone(compactTestConfigs)
	want["cleanup.policy"] = "compact"
	for _, k := range slices.Sorted(maps.Keys(want)) {
		if got[k] != want[k] {
			t.Errorf("%s: %s=%q, want %q", topic, k, got[k], want[k])
		}
	}
}

// topicConfigs returns every config DescribeConfigs reports for topic.
func topicConfigs(t *testing.T, b harness.Broker, topic string) map[string]string {
	t.Helper()
	adm := kadm.NewClient(harness.Client(t, b))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	rcs, err := adm.DescribeTopicConfigs(ctx, topic)
	if err != nil {
		t.Fatalf("describe configs of %s: %v", topic, err)
	}
	rc, err := rcs.On(topic, nil)
	if err == nil {
		err = rc.Err
	}
	if err != nil {
		t.Fatalf("describe configs of %s: %v", topic, err)
	}
	out := map[string]string{}
	for _, c := range rc.Configs {
		out[c.Key] = c.MaybeValue()
	}
	return out
}

// topicRead is every record of a topic from its start offsets up to the end
// offsets listed before reading.
type topicRead struct {
	recs         []*kgo.Record
	starts, ends map[int32]int64
}

// readToEnd reads topic from the start of every partition up to the end
// offsets it lists first, failing t after 30 s. On a compacted topic the
// record at end-1 survives (nothing supersedes the latest record), so the
// read reaches it.
func readToEnd(t *testing.T, b harness.Broker, topic string) topicRead {
	t.Helper()
	adm := kadm.NewClient(harness.Client(t, b))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	starts, err := adm.ListStartOffsets(ctx, topic)
	if err == nil {
		err = starts.Error()
	}
	if err != nil {
		t.Fatalf("list start offsets of %s: %v", topic, err)
	}
	ends, err := adm.ListEndOffsets(ctx, topic)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		t.Fatalf("list end offsets of %s: %v", topic, err)
	}
	r := topicRead{starts: map[int32]int64{}, ends: map[int32]int64{}}
	starts.Each(func(o kadm.ListedOffset) { r.starts[o.Partition] = o.Offset })
	ends.Each(func(o kadm.ListedOffset) { r.ends[o.Partition] = o.Offset })
	next := maps.Clone(r.starts)
	done := func() bool {
		for p, end := range r.ends {
			if next[p] < end {
				return false
			}
		}
		return true
	}
	cl := harness.Client(t, b, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchMaxWait(300*time.Millisecond))
	deadline := time.Now().Add(30 * time.Second)
	for !done() {
		if time.Now().After(deadline) {
			t.Fatalf("read %s up to %v, want up to the end offsets %v within 30 s", topic, next, r.ends)
		}
		pctx, pcancel := context.WithTimeout(context.Background(), time.Second)
		fs := cl.PollFetches(pctx)
		pcancel()
		fs.EachRecord(func(rec *kgo.Record) {
			if rec.Offset < r.ends[rec.Partition] {
				r.recs = append(r.recs, rec)
			}
			next[rec.Partition] = rec.Offset + 1
		})
	}
	return r
}

// compaction sums up a read of a compacted topic: per partition its start
// and end offsets, the records read and their distinct keys. Fewer records
// than offsets means the broker compacted the partition.
type compaction struct {
	topic        string
	starts, ends map[int32]int64
	records      map[int32]int64
	keys         map[int32]int
}

func readCompaction(t *testing.T, b harness.Broker, topic string) compaction {
	t.Helper()
	r := readToEnd(t, b, topic)
	c := compaction{topic: topic, starts: r.starts, ends: r.ends, records: map[int32]int64{}, keys: map[int32]int{}}
	keys := map[int32]map[string]bool{}
	for _, rec := range r.recs {
		c.records[rec.Partition]++
		if keys[rec.Partition] == nil {
			keys[rec.Partition] = map[string]bool{}
		}
		keys[rec.Partition][string(rec.Key)] = true
	}
	for p, ks := range keys {
		c.keys[p] = len(ks)
	}
	return c
}

// compacted reports whether some partition has fewer records than offsets.
func (c compaction) compacted() bool {
	for p, end := range c.ends {
		if c.records[p] < end-c.starts[p] {
			return true
		}
	}
	return false
}

// log logs the read per partition and in all.
func (c compaction) log(t *testing.T, when string) {
	t.Helper()
	var total, span, distinct int64
	for _, p := range slices.Sorted(maps.Keys(c.ends)) {
		start, end, n := c.starts[p], c.ends[p], c.records[p]
		total, span, distinct = total+n, span+end-start, distinct+int64(c.keys[p])
		if end > start {
			t.Logf("%s: %s[%d]: offsets [%d, %d), %d records, %d distinct keys; compacted: %v",
				when, c.topic, p, start, end, n, c.keys[p], n < end-start)
		}
	}
	t.Logf("%s: %s: %d records in %d offsets, %d distinct keys; compacted: %v", when, c.topic, total, span, distinct, total < span)
}

// logCompaction logs whether the broker has compacted topic, and how much.
// It asserts nothing: the tests must pass either way.
func logCompaction(t *testing.T, b harness.Broker, topic, when string) {
	t.Helper()
	readCompaction(t, b, topic).log(t, when)
}

// awaitCompaction reads topic every 500 ms until the broker has compacted
// some partition of it, for at most timeout, and logs what it found last.
// It asserts nothing: a test calls it so that what follows runs on a
// compacted topic where the broker compacts soon enough, and must pass
// either way.
func awaitCompaction(t *testing.T, b harness.Broker, topic string, timeout time.Duration) {
	t.Helper()
	start := time.Now()
	for {
		c := readCompaction(t, b, topic)
		if c.compacted() || time.Since(start) > timeout {
			c.log(t, fmt.Sprintf("after waiting %v (at most %v) for compaction", time.Since(start).Round(100*time.Millisecond), timeout))
			return
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// TestCompactedTopicRefusesKeyless: a topic created with
// cleanup.policy=compact (kadm) takes keyed records and refuses a batch with
// a keyless record with INVALID_RECORD, as Kafka does ("Compacted topic
// cannot accept message without key"); the refused batch leaves no trace.
func TestCompactedTopicRefusesKeyless(t *testing.T) {
	b := harness.Start(t)
	topic := harness.Topic(t)
	adm := kadm.NewClient(harness.Client(t, b))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	policy := "compact"
	resp, err := adm.CreateTopic(ctx, 1, 1, map[string]*string{"cleanup.policy": &policy}, topic)
	if err == nil {
		err = resp.Err
	}
	if err != nil {
		t.Fatalf("create compacted topic %s: %v", topic, err)
	}
	harness.WaitTopic(t, b, topic, 1)
	cl := harness.Client(t, b, kgo.DefaultProduceTopic(topic), kgo.RecordRetries(2))
	if err := cl.ProduceSync(ctx, &kgo.Record{Key: []byte("k"), Value: []byte("v1")}).FirstErr(); err != nil {
		t.Fatalf("produce a keyed record: %v", err)
	}
	err = cl.ProduceSync(ctx, &kgo.Record{Value: []byte("no key")}).FirstErr()
	if !errors.Is(err, kerr.InvalidRecord) {
		t.Errorf("produce a keyless record: %v, want %v", err, kerr.InvalidRecord)
	}
	if err := cl.ProduceSync(ctx, &kgo.Record{Key: []byte("k"), Value: []byte("v2")}).FirstErr(); err != nil {
		t.Fatalf("produce a keyed record after the refused one: %v", err)
	}
	r := readToEnd(t, b, topic)
	var got []string
	for _, rec := range r.recs {
		got = append(got, fmt.Sprintf("%d:%s=%s", rec.Offset, rec.Key, rec.Value))
	}
	if want := []string{"0:k=v1", "1:k=v2"}; !slices.Equal(got, want) {
		t.Errorf("read back %v, want %v", got, want)
	}
}
