package clients

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/streamhouse/streamhouse/compat-tests/harness"
)

// TestStreamsWordCountRestore: a stateful Kafka Streams 4.4.0 application
// (java/src/WordCount.java, processing.guarantee=at_least_once) counts words
// in a KTable whose changelog Streams creates with cleanup.policy=compact and
// compactTestConfigs (Streams' topic.* properties); every count update goes
// to an output topic. The test produces a known text, waits until the latest
// output count of every word is its number of occurrences, stops the
// application (SIGTERM: it closes and leaves the group), deletes its state
// directory, produces more text and starts it again: it must restore its
// store from the changelog (reported by its restore listener) and the latest
// count of every word must then be its occurrences in both texts. Before the
// restart the test waits up to 20 s for the broker to compact the changelog,
// so that the restore reads a compacted log where the broker compacts that
// soon; whether it did is logged, not asserted: the results must be right
// either way.
func TestStreamsWordCountRestore(t *testing.T) {
	b := harness.Start(t)
	base := harness.Topic(t)
	input, output, appID := base+"-text", base+"-counts", base+"-wc"
	changelog := appID + "-counts-changelog"
	harness.CreateTopic(t, b, input, 2)
	harness.CreateTopic(t, b, output, 2)
	stateDir := filepath.Join(t.TempDir(), "state")
	counts := newCountReader(t, b, output)

	// The first text goes in two halves, the second once the first is
	// counted, so that the changelog rolls (segment.ms) between them and
	// the first half's updates can be compacted before the restore.
	first := wordLines(300, 1)
	app := startWordCount(t, b, appID, input, output, stateDir)
	want := countWords(nil, first[:150])
	produceLines(t, b, input, first[:150])
	counts.waitFor(t, app, want)
	want = countWords(want, first[150:])
	produceLines(t, b, input, first[150:])
	counts.waitFor(t, app, want)
	stopWordCount(t, app)

	if ents, err := os.ReadDir(filepath.Join(stateDir, appID)); err != nil || len(ents) == 0 {
		t.Fatalf("state dir %s after the first run: %d entries, %v; want the store's files", filepath.Join(stateDir, appID), len(ents), err)
	}
	if err := os.RemoveAll(stateDir); err != nil {
		t.Fatal(err)
	}
	awaitCompaction(t, b, changelog, 20*time.Second)

	second := wordLines(200, 2)
	want = countWords(want, second)
	produceLines(t, b, input, second)
	app = startWordCount(t, b, appID, input, output, stateDir)
	counts.waitFor(t, app, want)
	var restored int64
	for _, ev := range app.Events() {
		if ev["op"] == "restored" && ev["topic"] == changelog {
			restored += harness.Num(ev, "records")
		}
	}
	if restored == 0 {
		t.Errorf("second run restored no records of %s (events %v); want its store restored from the changelog", changelog, app.Events())
	}
	t.Logf("second run restored %d records of %s", restored, changelog)
	checkCompactedConfigs(t, b, changelog)
	logCompaction(t, b, changelog, "at the end")
	stopWordCount(t, app)
}

// startWordCount starts java/src/WordCount.java, its internal topics
// created with compactTestConfigs (topic.* properties).
func startWordCount(t *testing.T, b harness.Broker, appID, input, output, stateDir string) *harness.JavaDaemon {
	t.Helper()
	args := []string{b.Bootstrap(), appID, input, output, stateDir}
	for _, k := range slices.Sorted(maps.Keys(compactTestConfigs)) {
		args = append(args, "topic."+k+"="+compactTestConfigs[k])
	}
	return harness.StartJava(t, "wordcount", "INFO", []string{javaClassDir(t)}, "WordCount", args...)
}

// stopWordCount stops the application with SIGTERM and checks that its
// shutdown hook closed Kafka Streams cleanly.
func stopWordCount(t *testing.T, app *harness.JavaDaemon) {
	t.Helper()
	if err := app.Stop(60 * time.Second); err != nil {
		t.Fatal(err)
	}
	closed := harness.Events(app.Events(), "closed")
	if len(closed) != 1 || closed[0]["clean"] != true {
		t.Fatalf("closed events %v, want one with clean=true", closed)
	}
}

// wordVocabulary holds the words of the texts; the first ones are the most
// frequent.
var wordVocabulary = strings.Fields("the stream house log compact segment offset broker changelog " +
	"state store restore topic partition record key value")

// wordLines returns n lines of 1 to 6 words of wordVocabulary, different for
// each seed, with mixed case and punctuation (WordCount lower-cases them and
// splits at non-word characters).
func wordLines(n, seed int) [][]string {
	lines := make([][]string, n)
	x := uint32(seed*7919 + 1)
	next := func() int { // xorshift: deterministic, spread enough
		x ^= x << 13
		x ^= x >> 17
		x ^= x << 5
		return int(x >> 1)
	}
	for i := range lines {
		words := make([]string, 1+next()%6)
		for j := range words {
			r := next() % len(wordVocabulary)
			words[j] = wordVocabulary[r*r/len(wordVocabulary)] // skewed: low indexes more often
		}
		lines[i] = words
	}
	return lines
}

// countWords adds the words of lines to a copy of counts.
func countWords(counts map[string]int64, lines [][]string) map[string]int64 {
	out := maps.Clone(counts)
	if out == nil {
		out = map[string]int64{}
	}
	for _, l := range lines {
		for _, w := range l {
			out[w]++
		}
	}
	return out
}

// produceLines writes one record per line (no key, partitions in turn),
// with some words capitalised and separated by punctuation.
func produceLines(t *testing.T, b harness.Broker, topic string, lines [][]string) {
	t.Helper()
	recs := make([]harness.Record, len(lines))
	now := time.Now().UnixMilli()
	for i, l := range lines {
		text := strings.Join(l, " ")
		if i%3 == 0 {
			text = strings.ToUpper(text[:1]) + strings.ReplaceAll(text[1:], " ", ", ") + "."
		}
		recs[i] = harness.Record{Partition: int32(i % 2), Value: text, Timestamp: now}
	}
	harness.Produce(t, b, topic, recs)
}

// countReader follows WordCount's output topic from the beginning and keeps
// the latest count of every word.
type countReader struct {
	cl     *kgo.Client
	latest map[string]int64
}

func newCountReader(t *testing.T, b harness.Broker, topic string) *countReader {
	cl := harness.Client(t, b, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchMaxWait(300*time.Millisecond))
	return &countReader{cl: cl, latest: map[string]int64{}}
}

// waitFor reads until the latest counts equal want, failing t after 90 s or
// as soon as app exits or reports the ERROR state.
func (c *countReader) waitFor(t *testing.T, app *harness.JavaDaemon, want map[string]int64) {
	t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for !maps.Equal(c.latest, want) {
		streamsAlive(t, app)
		if time.Now().After(deadline) {
			t.Fatalf("latest counts after 90 s:\n%s\nwant:\n%s", fmtCounts(c.latest), fmtCounts(want))
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		fs := c.cl.PollFetches(ctx)
		cancel()
		for _, fe := range fs.Errors() {
			if !errors.Is(fe.Err, context.DeadlineExceeded) {
				t.Fatalf("fetch %s[%d]: %v", fe.Topic, fe.Partition, fe.Err)
			}
		}
		fs.EachRecord(func(r *kgo.Record) {
			if len(r.Value) != 8 {
				t.Errorf("output record %q at %d/%d: value of %d bytes, want a long", r.Key, r.Partition, r.Offset, len(r.Value))
				return
			}
			c.latest[string(r.Key)] = int64(binary.BigEndian.Uint64(r.Value))
		})
	}
}

// streamsAlive fails t if app has exited or reported Kafka Streams' ERROR
// state.
func streamsAlive(t *testing.T, app *harness.JavaDaemon) {
	t.Helper()
	if err := app.Running(); err != nil {
		t.Fatal(err)
	}
	for _, ev := range harness.Events(app.Events(), "state") {
		if ev["state"] == "ERROR" || ev["state"] == "PENDING_ERROR" {
			t.Fatalf("Kafka Streams went to %v:\n%s", ev["state"], app.LogTail())
		}
	}
}

func fmtCounts(m map[string]int64) string {
	var b strings.Builder
	for _, k := range slices.Sorted(maps.Keys(m)) {
		fmt.Fprintf(&b, "  %s=%d\n", k, m[k])
	}
	return b.String()
}

// TestStreamsExactlyOnce: the word count of TestStreamsWordCountRestore
// (java/src/WordCount.java: repartition topic, RocksDB store "counts" with its
// changelog, record caches off so every input word yields one count update)
// with processing.guarantee=exactly_once_v2, killed mid-stream. It reads 600
// lines, at most one per 4 ms (a rate limit, so that it is still busy), and
// is killed (SIGKILL: no shutdown hook) as soon as the output holds committed
// updates and records of an open transaction (a high watermark past the last
// stable offset). 300 more lines are produced and it is started again with
// the same state directory; Streams wipes the store of the unclean run and
// restores it from the changelog's committed records. Once the read_committed
// output holds an update per input word, it is stopped (SIGTERM) and the
// output is read to its end with a read_committed KafkaConsumer: every word's
// updates must be exactly 1, 2, ..., its number of occurrences, in order,
// none twice (a duplicate would be input counted twice after the kill, a gap
// a lost update). How many changelog records were restored and how many
// records of aborted transactions a read_uncommitted consumer sees are
// logged.
func TestStreamsExactlyOnce(t *testing.T) {
	b := harness.Start(t)
	base := harness.Topic(t)
	input, output, appID := base+"-text", base+"-counts", base+"-eos"
	harness.CreateTopic(t, b, input, 2)
	harness.CreateTopic(t, b, output, 2)
	stateDir := filepath.Join(t.TempDir(), "state")
	first, second := wordLines(600, 3), wordLines(300, 4)
	want := countWords(countWords(nil, first), second)
	var total int64
	for _, n := range want {
		total += n
	}

	produceLines(t, b, input, first)
	start := time.Now()
	app := startExactlyOnce(t, b, appID, input, output, stateDir)
	harness.Eventually(t, 90*time.Second, func() error {
		streamsAlive(t, app)
		lso, hwm := listOffsets(t, b, output, true), endOffsets(t, b, output)
		if sum(lso) == 0 || maps.Equal(lso, hwm) {
			return fmt.Errorf("output: last stable offsets %v, high watermarks %v; want records committed and some in an open transaction", lso, hwm)
		}
		return nil
	})
	if err := app.Kill(); err != nil {
		t.Fatal(err)
	}
	lso, hwm := listOffsets(t, b, output, true), endOffsets(t, b, output)
	t.Logf("killed the application %v after its start, the output's last stable offsets %v, high watermarks %v (%d of %d updates written)",
		time.Since(start).Round(100*time.Millisecond), lso, hwm, sum(hwm), total)
	start = time.Now()
	produceLines(t, b, input, second)
	app = startExactlyOnce(t, b, appID, input, output, stateDir)
	waitUpdates(t, b, output, app, total)
	t.Logf("second run: every update committed %v after its start", time.Since(start).Round(100*time.Millisecond))
	stopWordCount(t, app)
	var restored int64
	for _, ev := range harness.Events(app.Events(), "restored") {
		restored += harness.Num(ev, "records")
	}

	got, ends := javaDrain(t, b, output, 2, "read_committed", "long")
	checkLSO(t, ends, endOffsets(t, b, output), "read_committed")
	checkCountSequences(t, got, want)
	all, _ := javaDrain(t, b, output, 2, "read_uncommitted", "long")
	t.Logf("second run restored %d changelog records; the output holds %d committed updates and %d records of aborted transactions",
		restored, len(got), len(all)-len(got))
}

// startExactlyOnce starts java/src/WordCount.java with exactly_once_v2, a
// rate limit of one input record per 4 ms, polls of at most 50 records
// (Streams checks the commit interval between polls: transactions stay
// small), sends lingering 5 ms (so that a transaction's records reach the
// broker before it commits), and a 6 s
// session timeout (so that after a kill the group's next generation does
// not wait the default 45 s for the dead member).
func startExactlyOnce(t *testing.T, b harness.Broker, appID, input, output, stateDir string) *harness.JavaDaemon {
	t.Helper()
	return harness.StartJava(t, "wordcount-eos", "INFO", []string{javaClassDir(t)}, "WordCount",
		b.Bootstrap(), appID, input, output, stateDir,
		"processing.guarantee=exactly_once_v2", "compat.record.delay.ms=4", "producer.linger.ms=5",
		"main.consumer.max.poll.records=50",
		"consumer.session.timeout.ms=6000", "consumer.heartbeat.interval.ms=1500")
}

// waitUpdates reads topic at read_committed until it holds at least n
// records, failing t after 90 s or as soon as app exits or reports the ERROR
// state.
func waitUpdates(t *testing.T, b harness.Broker, topic string, app *harness.JavaDaemon, n int64) {
	t.Helper()
	cl := harness.Client(t, b, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.FetchMaxWait(200*time.Millisecond))
	deadline := time.Now().Add(90 * time.Second)
	var seen int64
	for seen < n {
		streamsAlive(t, app)
		if time.Now().After(deadline) {
			t.Fatalf("read_committed %s: %d records after 90 s, want %d", topic, seen, n)
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		fs := cl.PollFetches(ctx)
		cancel()
		for _, fe := range fs.Errors() {
			if !errors.Is(fe.Err, context.DeadlineExceeded) {
				t.Fatalf("fetch %s[%d]: %v", fe.Topic, fe.Partition, fe.Err)
			}
		}
		seen += int64(fs.NumRecords())
	}
}

// sum adds up the offsets of a topic's partitions.
func sum(offsets map[int32]int64) int64 {
	var n int64
	for _, o := range offsets {
		n += o
	}
	return n
}

// checkCountSequences checks that the updates of every word, in the order of
// the output (one word's updates are all in one partition), are exactly 1,
// 2, ..., want[word].
func checkCountSequences(t *testing.T, got []harness.Record, want map[string]int64) {
	t.Helper()
	last := map[string]int64{}
	bad := 0
	for _, r := range got {
		n, err := strconv.ParseInt(r.Value, 10, 64)
		if err != nil || n != last[r.Key]+1 {
			if bad++; bad <= 10 {
				t.Errorf("update %s=%s at %d/%d after %d: want %d (each count once, in order)", r.Key, r.Value, r.Partition, r.Offset, last[r.Key], last[r.Key]+1)
			}
		}
		if err == nil {
			last[r.Key] = n
		}
	}
	if !maps.Equal(last, want) {
		t.Errorf("final counts:\n%s\nwant:\n%s", fmtCounts(last), fmtCounts(want))
	}
}
