package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	streamhousepb "github.com/streamhouse/streamhouse/proto"
)

// The compacted topic's shape: compKeys keys, written in rounds by two
// idempotent producers; values are compValueSize bytes.
const (
	compTopic     = "compacted"
	compKeys      = 20
	compRoundsP   = 50 // producer P: rounds 0..49
	compRoundsQ   = 10 // producer Q: rounds 50..59, keys 8..19
	compValueSize = 100
	// compQuietTimeout bounds each wait for the cleaner to settle.
	compQuietTimeout = 45 * time.Second
	// compReadTimeout bounds each whole-partition read.
	compReadTimeout = 30 * time.Second
)

// compMetricRuns counts compaction runs.
const compMetricRuns = "streamhouse_log_cleaner_runs_total"

// TestCompactedTopicEndToEnd checks what a compacted topic promises to
// clients (issue #12) against the broker binary over real sockets, with a
// stock franz-go client and the gRPC API. Producer P (idempotent, acks=all)
// writes 50 rounds over 20 keys with tombstones; producer Q then overwrites
// keys 8..19 for 10 rounds, so that P's last batches end up compacted (the
// broker keeps them, empty if need be, for P's sequence). The broker runs
// its cleaner every 200ms on 4 KiB segments. Once the cleaner has settled:
//   - a fresh consumer reads the partition from 0 to the high watermark
//     over the gaps; it holds exactly what compaction must keep (every
//     key's last record below the active segment, and the whole active
//     segment), each record as produced (key, value or null, timestamp);
//   - a consumer group does the same and commits the high watermark;
//   - ListOffsets (earliest, latest, max timestamp, by timestamp) and
//     OffsetForLeaderEpoch answer with the gaps in mind;
//   - a group whose committed offset points into a gap, and a consumer
//     assigned there, resume at the next record; so does gRPC Consume;
//   - gRPC Consume from 0 returns the Kafka records and ends at the high
//     watermark;
//   - P produces again after its batches were compacted, and again after a
//     graceful restart, with the same producer ID and no sequence error;
//   - the restarted broker serves the partition identically;
//   - after P's last batch was wholly superseded (by producer R) and
//     compacted, and a SIGKILL and restart, the partition reads back the
//     same and P produces again in sequence: P's producer state survived
//     both.
func TestCompactedTopicEndToEnd(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	c := &compRun{t: t, ctx: ctx, dir: t.TempDir(), m: newCompModel()}
	c.start("127.0.0.1:0")
	topicID := createTopic(t, c.kafkaAddr, compTopic, 1, map[string]string{
		"cleanup.policy": "compact", "segment.bytes": "4096", "segment.ms": "500",
		"min.cleanable.dirty.ratio": "0.01",
	})
	c.segDir = filepath.Join(c.dir, "segments", compUUID(topicID), "0")
	c.objDir = filepath.Join(c.dir, "objects", "topics", compUUID(topicID), "0")

	prodP := newCompProducer(t, c.kafkaAddr, true)
	defer prodP.Close()
	for r := 0; r < compRoundsP; r++ {
		c.m.produceRound(ctx, t, prodP, "P", r, compRoundP(r))
	}
	prodQ := newCompProducer(t, c.kafkaAddr, false)
	for r := compRoundsP; r < compRoundsP+compRoundsQ; r++ {
		c.m.produceRound(ctx, t, prodQ, "Q", r, compKeyRange(8, compKeys))
	}
	prodQ.Close()

	// The cleaner settles; records are visibly gone.
	recs := c.settledRead(1)
	if len(recs) >= len(c.m.byOffset) {
		t.Fatalf("a full read returned %d records of %d produced: compaction removed nothing", len(recs), len(c.m.byOffset))
	}
	// A consumer group; the offsets APIs; commits into gaps; gRPC.
	m := c.m
	compSameRecords(t, "consumer group vs fresh consumer", recs, compConsumeGroup(ctx, t, c.kafkaAddr, "full", m.next))
	compCheckCommitted(ctx, t, c.kafkaAddr, "full", m.next)
	compCheckOffsets(ctx, t, c.kafkaAddr, recs, m.next, m.timestamps())
	compCheckGapResume(ctx, t, c.kafkaAddr, recs, m.next)
	gcl := newCompGRPC(t, c.grpcAddr)
	compSameRecords(t, "gRPC Consume from 0 vs Kafka", recs, compGRPCConsumeAll(ctx, t, gcl, 0, m.next))
	compCheckGRPCGaps(ctx, t, gcl, recs, m.next)

	// P produces again after its batches were compacted.
	runs := scrapeOne(t, c.httpAddr, compMetricRuns)
	m.produceRound(ctx, t, prodP, "P", 60, compKeyRange(8, 12))
	before := c.settledRead(runs + 1)

	// Graceful restart on the same Kafka address: the same records on
	// both fronts; P, the same client, produces again.
	c.stop(false)
	c.start(c.kafkaAddr)
	compSameRecords(t, "after restart vs before", before, compConsumeAll(ctx, t, c.kafkaAddr, m.next))
	compSameRecords(t, "gRPC Consume after restart vs Kafka before", before,
		compGRPCConsumeAll(ctx, t, newCompGRPC(t, c.grpcAddr), 0, m.next))
	m.produceRound(ctx, t, prodP, "P", 61, compKeyRange(16, 20))

	// R supersedes all of P's round 61; compaction empties P's last batch.
	prodR := newCompProducer(t, c.kafkaAddr, false)
	for r := 62; r < 70; r++ {
		m.produceRound(ctx, t, prodR, "R", r, compKeyRange(16, 20))
	}
	prodR.Close()
	before = c.settledRead(1)

	// SIGKILL and restart: the same records; P produces in sequence.
	c.stop(true)
	c.start(c.kafkaAddr)
	compSameRecords(t, "after SIGKILL and restart vs before", before, compConsumeAll(ctx, t, c.kafkaAddr, m.next))
	m.produceRound(ctx, t, prodP, "P", 70, compKeyRange(12, 16))
	final := compConsumeAll(ctx, t, c.kafkaAddr, m.next)
	m.check(t, "after the restarts and P's last round", final)
	m.checkLatest(t, "final", final, compWantFinal())
	prodP.Close()
	t.Logf("producer IDs %v; %d records produced, %d read at the end", m.pids, len(m.byOffset), len(final))
	c.stop(false)
}

// compRun is the broker of TestCompactedTopicEndToEnd and what the test
// knows of it.
type compRun struct {
	t                             *testing.T
	ctx                           context.Context
	dir                           string // the data directory
	p                             *brokerProc
	httpAddr, kafkaAddr, grpcAddr string
	// segDir and objDir hold the partition's local segment files and its
	// objects in the local object store.
	segDir, objDir string
	m              *compModel
}

// start starts the broker on the data directory with its Kafka listener
// on kafkaAddr (a restart reuses the address, so that producers keep
// their client and producer ID) and the cleaner running every 200ms.
func (c *compRun) start(kafkaAddr string) {
	c.t.Helper()
	c.p = startBroker(c.t, nil, "--data-dir", c.dir, "--http-addr", "127.0.0.1:0", "--kafka-addr="+kafkaAddr,
		"--grpc-addr=127.0.0.1:0", "--log-format=json",
		"--log-cleaner-backoff=200ms", "--log-cleaner-delete-delay=500ms",
		"--group-initial-rebalance-delay=0")
	c.httpAddr = c.p.ready(c.t)
	got := c.p.listenAddr(c.t, "kafka")
	if kafkaAddr != "127.0.0.1:0" && got != kafkaAddr {
		c.t.Fatalf("restarted broker listens on %s, want %s", got, kafkaAddr)
	}
	c.kafkaAddr, c.grpcAddr = got, c.p.listenAddr(c.t, "grpc")
}

// stop stops the broker, with SIGTERM (asserting a clean exit) or SIGKILL,
// and checks its log.
func (c *compRun) stop(kill bool) {
	c.t.Helper()
	if !kill {
		c.p.stop(c.t)
	} else {
		if err := c.p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
			c.t.Fatal(err)
		}
		c.p.exitCode(c.t)
	}
	compCheckLog(c.t, c.p.out.String())
}

// settledRead waits for the cleaner to settle (after at least minRuns
// runs), reads the whole partition and checks it against the model and
// against exactly what compaction must have left.
func (c *compRun) settledRead(minRuns float64) []compRec {
	c.t.Helper()
	base := waitCompQuiet(c.t, c.p, c.httpAddr, c.segDir, c.objDir, minRuns)
	recs := compConsumeAll(c.ctx, c.t, c.kafkaAddr, c.m.next)
	c.t.Logf("cleaner settled: %d of %d records left, active segment at %d, high watermark %d",
		len(recs), len(c.m.byOffset), base, c.m.next)
	c.m.check(c.t, "fresh consumer", recs)
	c.m.checkCompacted(c.t, recs, base)
	return recs
}

// compLastP returns the last round in which P writes key k (of the keys
// 0..7, which only P writes) and whether that write is a tombstone. The
// rounds differ so that the records compaction keeps are spread out, with
// gaps between batches and inside them.
func compLastP(k int) (round int, tombstone bool) {
	switch k {
	case 0:
		return compRoundsP - 1, true
	case 1:
		return 41, true
	case 2:
		return 33, false
	case 3:
		return 25, true
	case 4:
		return 45, false
	case 5:
		return compRoundsP - 1, false // deleted in round 10, written again after
	case 6:
		return 30, true
	case 7:
		return 37, false
	}
	return compRoundsP - 1, false // keys 8..19: Q and later P rounds go on
}

// compRoundP lists the keys P writes in round r, tombstones marked.
func compRoundP(r int) []compWrite {
	var out []compWrite
	for k := 0; k < compKeys; k++ {
		last, tomb := compLastP(k)
		if r > last {
			continue
		}
		out = append(out, compWrite{key: k, tombstone: (r == last && tomb) || (r == 10 && k == 5)})
	}
	return out
}

// compKeyRange writes values (no tombstones) for keys from..to-1.
func compKeyRange(from, to int) []compWrite {
	var out []compWrite
	for k := from; k < to; k++ {
		out = append(out, compWrite{key: k})
	}
	return out
}

// compWantFinal is every key's last write over the whole test: the round
// that wrote it, or -1 for a tombstone.
func compWantFinal() map[string]int {
	want := map[string]int{}
	for k := 0; k < compKeys; k++ {
		switch last, tomb := compLastP(k); {
		case k < 8 && tomb:
			want[compKey(k)] = -1
		case k < 8:
			want[compKey(k)] = last
		case k < 12:
			want[compKey(k)] = 60
		case k < 16:
			want[compKey(k)] = 70
		default:
			want[compKey(k)] = 69
		}
	}
	return want
}

type compWrite struct {
	key       int
	tombstone bool
}

func compKey(k int) string { return fmt.Sprintf("key-%02d", k) }

// compValue is the value of key k in round r: a readable prefix, then
// hex digits that differ per record (so compression keeps some bytes).
func compValue(producer string, r, k int) []byte {
	prefix := fmt.Sprintf("%s-r%02d-k%02d-", producer, r, k)
	sum := sha256.Sum256([]byte(prefix))
	fill := strings.Repeat(hex.EncodeToString(sum[:]), 2)
	return []byte((prefix + fill)[:compValueSize])
}

// compRec is a record as produced (by offset) or as read back.
type compRec struct {
	offset int64
	key    string
	value  []byte // nil: a tombstone
	null   bool
	ts     int64 // milliseconds
}

func (r compRec) String() string {
	v := string(r.value)
	if r.null {
		v = "<null>"
	}
	return fmt.Sprintf("@%d %s=%.16s ts %d", r.offset, r.key, v, r.ts)
}

// compModel is what the producers were told: every record at its offset,
// the next offset and each producer's ID.
type compModel struct {
	byOffset map[int64]compRec
	next     int64
	pids     map[string]int64
}

func newCompModel() *compModel {
	return &compModel{byOffset: map[int64]compRec{}, pids: map[string]int64{}}
}

// newCompProducer returns an idempotent acks=all producer that fails a
// record on a sequence error (OUT_OF_ORDER_SEQUENCE_NUMBER,
// UNKNOWN_PRODUCER_ID) instead of silently taking a new producer ID.
// compress picks the client's default codec, else none.
func newCompProducer(t *testing.T, seed string, compress bool) *kgo.Client {
	t.Helper()
	opts := []kgo.Opt{kgo.SeedBrokers(seed), kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.StopProducerOnDataLossDetected(), kgo.DefaultProduceTopic(compTopic)}
	if !compress {
		opts = append(opts, kgo.ProducerBatchCompression(kgo.NoCompression()))
	}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		t.Fatal(err)
	}
	return cl
}

// produceRound produces one round synchronously and records it: every
// record must succeed at the next offset, under the producer's one ID.
func (m *compModel) produceRound(ctx context.Context, t *testing.T, cl *kgo.Client, producer string, r int, writes []compWrite) {
	t.Helper()
	recs := make([]*kgo.Record, len(writes))
	for i, w := range writes {
		recs[i] = &kgo.Record{Key: []byte(compKey(w.key))}
		if !w.tombstone {
			recs[i].Value = compValue(producer, r, w.key)
		}
	}
	res := cl.ProduceSync(ctx, recs...)
	for _, pr := range res {
		if pr.Err != nil {
			t.Fatalf("producer %s round %d: record %s: %v", producer, r, pr.Record.Key, pr.Err)
		}
	}
	for _, rec := range recs {
		if rec.Offset != m.next {
			t.Fatalf("producer %s round %d: record %s at offset %d, want %d (a gap or a duplicate)", producer, r, rec.Key, rec.Offset, m.next)
		}
		if pid, ok := m.pids[producer]; ok && pid != rec.ProducerID {
			t.Fatalf("producer %s round %d: producer ID %d, was %d: the client reset its idempotent state", producer, r, rec.ProducerID, pid)
		}
		m.pids[producer] = rec.ProducerID
		m.byOffset[rec.Offset] = compRec{offset: rec.Offset, key: string(rec.Key), value: rec.Value,
			null: rec.Value == nil, ts: rec.Timestamp.UnixMilli()}
		m.next++
	}
}

// latest returns, per key, the last record produced below end.
func (m *compModel) latest(end int64) map[string]compRec {
	out := map[string]compRec{}
	for off := int64(0); off < end; off++ {
		if r, ok := m.byOffset[off]; ok {
			out[r.key] = r
		}
	}
	return out
}

// check asserts what any compacted read must satisfy: offsets strictly
// increase and end at the high watermark, every record is the one produced
// at its offset, and every key's latest record (a tombstone included) is
// there.
func (m *compModel) check(t *testing.T, what string, recs []compRec) {
	t.Helper()
	var problems []string
	report := func(format string, args ...any) {
		if len(problems) < 20 {
			problems = append(problems, fmt.Sprintf(format, args...))
		}
	}
	present := map[int64]bool{}
	for i, r := range recs {
		if i > 0 && r.offset <= recs[i-1].offset {
			report("offset %d follows %d", r.offset, recs[i-1].offset)
		}
		present[r.offset] = true
		want, ok := m.byOffset[r.offset]
		if !ok {
			report("record %s was never produced", r)
			continue
		}
		if !compSameRec(r, want) {
			report("record %s, produced as %s", r, want)
		}
	}
	if len(recs) == 0 || recs[len(recs)-1].offset != m.next-1 {
		report("the read does not end at the high watermark %d (%d records)", m.next, len(recs))
	}
	for key, r := range m.latest(m.next) {
		if !present[r.offset] {
			report("key %s: its latest record %s is missing", key, r)
		}
	}
	if len(problems) > 0 {
		t.Errorf("%s: %d records read, %d produced; problems:\n  %s", what, len(recs), len(m.byOffset), strings.Join(problems, "\n  "))
	}
}

// checkCompacted asserts the exact outcome of compaction once the cleaner
// has settled with every segment below the active one (at activeBase)
// compacted: below activeBase, each key's last record there and nothing
// else; from activeBase on, every record produced.
func (m *compModel) checkCompacted(t *testing.T, recs []compRec, activeBase int64) {
	t.Helper()
	want := map[int64]bool{}
	for _, r := range m.latest(activeBase) {
		want[r.offset] = true
	}
	for off := activeBase; off < m.next; off++ {
		want[off] = true
	}
	var extra, missing []int64
	got := map[int64]bool{}
	for _, r := range recs {
		got[r.offset] = true
		if !want[r.offset] {
			extra = append(extra, r.offset)
		}
	}
	for off := range want {
		if !got[off] {
			missing = append(missing, off)
		}
	}
	sort.Slice(missing, func(i, j int) bool { return missing[i] < missing[j] })
	if len(extra) > 0 || len(missing) > 0 {
		t.Errorf("compacted log (active segment at %d, high watermark %d): %d records, want %d; kept but superseded: %v; missing: %v",
			activeBase, m.next, len(recs), len(want), extra, missing)
	}
}

// checkLatest asserts each key's last record in recs: the round of its
// value, or a tombstone (-1).
func (m *compModel) checkLatest(t *testing.T, what string, recs []compRec, want map[string]int) {
	t.Helper()
	last := map[string]compRec{}
	for _, r := range recs {
		last[r.key] = r
	}
	for key, round := range want {
		r, ok := last[key]
		switch {
		case !ok:
			t.Errorf("%s: key %s is absent", what, key)
		case round < 0 && !r.null:
			t.Errorf("%s: key %s ends with %s, want a tombstone", what, key, r)
		case round >= 0 && (r.null || !strings.Contains(string(r.value), fmt.Sprintf("-r%02d-", round))):
			t.Errorf("%s: key %s ends with %s, want round %d", what, key, r, round)
		}
	}
}

func compSameRec(a, b compRec) bool {
	return a.offset == b.offset && a.key == b.key && a.null == b.null && bytes.Equal(a.value, b.value) && a.ts == b.ts
}

// compSameRecords asserts two reads hold the same records.
func compSameRecords(t *testing.T, what string, want, got []compRec) {
	t.Helper()
	for i := 0; i < max(len(want), len(got)); i++ {
		switch {
		case i >= len(got):
			t.Errorf("%s: %d records, want %d; first missing %s", what, len(got), len(want), want[i])
			return
		case i >= len(want):
			t.Errorf("%s: %d records, want %d; first extra %s", what, len(got), len(want), got[i])
			return
		case !compSameRec(want[i], got[i]):
			t.Errorf("%s: record %d is %s, want %s", what, i, got[i], want[i])
			return
		}
	}
}

func compFromKgo(r *kgo.Record) compRec {
	return compRec{offset: r.Offset, key: string(r.Key), value: r.Value, null: r.Value == nil, ts: r.Timestamp.UnixMilli()}
}

// compPoll polls cl until it has returned the record before hwm, failing
// on a fetch error or at the deadline (a consumer stuck in a gap).
func compPoll(ctx context.Context, t *testing.T, cl *kgo.Client, what string, hwm int64) []compRec {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, compReadTimeout)
	defer cancel()
	var out []compRec
	for len(out) == 0 || out[len(out)-1].offset < hwm-1 {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			next := int64(0)
			if len(out) > 0 {
				next = out[len(out)-1].offset + 1
			}
			t.Fatalf("%s: stuck at offset %d after %d records, high watermark %d", what, next, len(out), hwm)
		}
		fs.EachError(func(topic string, p int32, err error) { t.Fatalf("%s: fetch %s[%d]: %v", what, topic, p, err) })
		fs.EachRecord(func(r *kgo.Record) { out = append(out, compFromKgo(r)) })
	}
	return out
}

// compConsumeAll reads the partition from offset 0 to hwm with a fresh
// consumer, after checking that hwm is the listed end offset.
func compConsumeAll(ctx context.Context, t *testing.T, seed string, hwm int64) []compRec {
	t.Helper()
	return compConsumeFrom(ctx, t, seed, kgo.NewOffset().At(0), hwm)
}

func compConsumeFrom(ctx context.Context, t *testing.T, seed string, at kgo.Offset, hwm int64) []compRec {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(seed), kgo.FetchMaxWait(200*time.Millisecond),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{compTopic: {0: at}}))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	return compPoll(ctx, t, cl, fmt.Sprintf("consumer from %v", at), hwm)
}

// compConsumeGroup reads the partition as the only member of group from its
// committed offset (the start without one) to hwm and commits.
func compConsumeGroup(ctx context.Context, t *testing.T, seed, group string, hwm int64) []compRec {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(seed), kgo.FetchMaxWait(200*time.Millisecond),
		kgo.ConsumerGroup(group), kgo.ConsumeTopics(compTopic), kgo.DisableAutoCommit(),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	recs := compPoll(ctx, t, cl, "group "+group, hwm)
	if err := cl.CommitUncommittedOffsets(ctx); err != nil {
		t.Fatalf("group %s: commit: %v", group, err)
	}
	return recs
}

// compCheckCommitted asserts group's committed offset.
func compCheckCommitted(ctx context.Context, t *testing.T, seed, group string, want int64) {
	t.Helper()
	adm := newCompAdmin(t, seed)
	got, err := adm.FetchOffsets(ctx, group)
	if err != nil {
		t.Fatal(err)
	}
	if o, ok := got.Lookup(compTopic, 0); !ok || o.Err != nil || o.At != want {
		t.Errorf("group %s committed %+v (found %v), want offset %d", group, o, ok, want)
	}
}

func newCompAdmin(t *testing.T, seed string) *kadm.Client {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(seed))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return kadm.NewClient(cl)
}

// compCheckOffsets checks ListOffsets and OffsetForLeaderEpoch against
// the records read (recs) and the high watermark.
func compCheckOffsets(ctx context.Context, t *testing.T, seed string, recs []compRec, hwm int64, produced []int64) {
	t.Helper()
	adm := newCompAdmin(t, seed)
	one := func(what string, l kadm.ListedOffsets, err error) kadm.ListedOffset {
		t.Helper()
		if err == nil {
			err = l.Error()
		}
		o, ok := l.Lookup(compTopic, 0)
		if err != nil || !ok {
			t.Fatalf("ListOffsets %s: %v (found %v)", what, err, ok)
		}
		return o
	}
	l, err := adm.ListStartOffsets(ctx, compTopic)
	if o := one("earliest", l, err); o.Offset != 0 {
		t.Errorf("ListOffsets earliest = %d, want the log start 0 (compaction does not move it; first record at %d)", o.Offset, recs[0].offset)
	}
	l, err = adm.ListEndOffsets(ctx, compTopic)
	if o := one("latest", l, err); o.Offset != hwm {
		t.Errorf("ListOffsets latest = %d, want the high watermark %d", o.Offset, hwm)
	}
	l, err = adm.ListMaxTimestampOffsets(ctx, compTopic)
	wantMax := recs[0]
	for _, r := range recs {
		if r.ts > wantMax.ts {
			wantMax = r
		}
	}
	if o := one("max timestamp", l, err); o.Offset != wantMax.offset || o.Timestamp != wantMax.ts {
		t.Errorf("ListOffsets max timestamp = offset %d ts %d, want %s", o.Offset, o.Timestamp, wantMax)
	}
	stamps := compSampleTimestamps(produced)
	t.Logf("ListOffsets by timestamp: %d lookups", len(stamps))
	for _, ts := range stamps {
		want := compRec{offset: hwm, ts: -1} // kadm lists the end offset when no record is that new
		for _, r := range recs {
			if r.ts >= ts {
				want = r
				break
			}
		}
		l, err := adm.ListOffsetsAfterMilli(ctx, ts, compTopic)
		o := one(fmt.Sprintf("timestamp %d", ts), l, err)
		if o.Offset != want.offset || (want.ts >= 0 && o.Timestamp != want.ts) {
			t.Errorf("ListOffsets timestamp %d = offset %d ts %d, want offset %d ts %d (the first record at or after it)",
				ts, o.Offset, o.Timestamp, want.offset, want.ts)
		}
	}
	compCheckRawFuture(ctx, t, seed, wantMax.ts+60_000)
	var req kadm.OffsetForLeaderEpochRequest
	req.Add(compTopic, 0, 0)
	eps, err := adm.OffsetForLeaderEpoch(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if e, ok := eps[compTopic][0]; !ok || e.Err != nil || e.EndOffset != hwm || e.LeaderEpoch != 0 {
		t.Errorf("OffsetForLeaderEpoch epoch 0 = %+v (found %v), want epoch 0 end offset %d", e, ok, hwm)
	}
}

// timestamps returns the timestamps of every record produced, removed
// ones included.
func (m *compModel) timestamps() []int64 {
	out := make([]int64, 0, len(m.byOffset))
	for _, r := range m.byOffset {
		out = append(out, r.ts)
	}
	return out
}

// compSampleTimestamps returns timestamps to look up: before the first,
// after the last (just after, and a minute after), and a sample of the
// distinct timestamps produced and each minus 1 (records compaction
// removed carry most of them).
func compSampleTimestamps(produced []int64) []int64 {
	seen := map[int64]bool{}
	var all []int64
	for _, ts := range produced {
		if !seen[ts] {
			seen[ts] = true
			all = append(all, ts)
		}
	}
	sort.Slice(all, func(i, j int) bool { return all[i] < all[j] })
	out := []int64{all[0] - 1000, all[len(all)-1] + 1, all[len(all)-1] + 60_000}
	step := max(1, len(all)/40)
	for i := 0; i < len(all); i += step {
		out = append(out, all[i], all[i]-1)
	}
	return out
}

// compGaps returns, for each hole between records read (and before the
// first), the first missing offset and the record after the hole.
func compGaps(recs []compRec) (holes []int64, next []compRec) {
	prev := int64(-1)
	for _, r := range recs {
		if r.offset > prev+1 {
			holes = append(holes, prev+1)
			next = append(next, r)
		}
		prev = r.offset
	}
	return holes, next
}

// compCheckGapResume commits offsets that compaction removed (the first, a
// middle and the last hole) and checks that a consumer group resumes at
// the next record, and so does a consumer assigned at such an offset.
func compCheckGapResume(ctx context.Context, t *testing.T, seed string, recs []compRec, hwm int64) {
	t.Helper()
	holes, next := compGaps(recs)
	if len(holes) == 0 {
		t.Fatal("the compacted partition has no gap")
	}
	adm := newCompAdmin(t, seed)
	t.Logf("%d gaps; committing into the gaps at %d, %d and %d", len(holes), holes[0], holes[len(holes)/2], holes[len(holes)-1])
	for _, i := range []int{0, len(holes) / 2, len(holes) - 1} {
		hole, want := holes[i], next[i]
		group := fmt.Sprintf("gap-%d", hole)
		var commit kadm.Offsets
		commit.Add(kadm.Offset{Topic: compTopic, Partition: 0, At: hole, LeaderEpoch: 0})
		if err := adm.CommitAllOffsets(ctx, group, commit); err != nil {
			t.Fatalf("commit %d for %s: %v", hole, group, err)
		}
		got := compConsumeGroup(ctx, t, seed, group, hwm)
		if got[0].offset != want.offset {
			t.Errorf("group committed at the removed offset %d resumed at %s, want %s", hole, got[0], want)
		}
		compSameRecords(t, fmt.Sprintf("group from the gap at %d", hole), compSuffix(recs, hole), got)
		got = compConsumeFrom(ctx, t, seed, kgo.NewOffset().At(hole), hwm)
		compSameRecords(t, fmt.Sprintf("consumer assigned at the gap %d", hole), compSuffix(recs, hole), got)
	}
}

// compSuffix returns the records at or after offset.
func compSuffix(recs []compRec, offset int64) []compRec {
	i := sort.Search(len(recs), func(i int) bool { return recs[i].offset >= offset })
	return recs[i:]
}

func newCompGRPC(t *testing.T, addr string) streamhousepb.StreamHouseClient {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return streamhousepb.NewStreamHouseClient(conn)
}

// compGRPCConsumeAll reads with gRPC Consume from offset from, 7 records a
// call (so that calls start inside gaps), following next_offset until it
// reaches hwm. Every answer must make progress and name hwm and log start 0.
func compGRPCConsumeAll(ctx context.Context, t *testing.T, cl streamhousepb.StreamHouseClient, from, hwm int64) []compRec {
	t.Helper()
	var out []compRec
	at := from
	for calls := 0; at < hwm; calls++ {
		if calls > int(hwm-from)+1 {
			t.Fatalf("gRPC Consume from %d: no end after %d calls, at %d of %d", from, calls, at, hwm)
		}
		resp, err := cl.Consume(ctx, &streamhousepb.ConsumeRequest{Topic: compTopic, Partition: 0, Offset: uint64(at), MaxRecords: 7})
		if err != nil {
			t.Fatalf("gRPC Consume at %d: %v", at, err)
		}
		next := int64(resp.GetNextOffset())
		if int64(resp.GetHighWatermark()) != hwm || resp.GetLogStartOffset() != 0 || next <= at ||
			next > hwm || resp.GetHasMore() != (next < hwm) {
			t.Fatalf("gRPC Consume at %d: high watermark %d, log start %d, next offset %d, has_more %v, %d records; want high watermark %d, log start 0, progress",
				at, resp.GetHighWatermark(), resp.GetLogStartOffset(), next, resp.GetHasMore(), len(resp.GetRecords()), hwm)
		}
		for _, r := range resp.GetRecords() {
			c := compRec{offset: int64(r.GetOffset()), key: string(r.GetKey()), value: r.GetValue(), ts: int64(r.GetTimestamp())}
			if c.offset < at || c.offset >= next {
				t.Fatalf("gRPC Consume at %d (next %d) returned offset %d", at, next, c.offset)
			}
			// proto3 bytes cannot tell null from empty; every value
			// produced here is non-empty.
			c.null = len(c.value) == 0
			if c.null {
				c.value = nil
			}
			out = append(out, c)
		}
		at = next
	}
	return out
}

// compCheckGRPCGaps checks that gRPC Consume from a removed offset starts
// at the next record, and that its next_offset skips no record: it may
// point past the record returned, over the removed offsets after it, but
// not past the record after that.
func compCheckGRPCGaps(ctx context.Context, t *testing.T, cl streamhousepb.StreamHouseClient, recs []compRec, hwm int64) {
	t.Helper()
	holes, next := compGaps(recs)
	for i := 0; i < len(holes); i += max(1, len(holes)/8) {
		resp, err := cl.Consume(ctx, &streamhousepb.ConsumeRequest{Topic: compTopic, Partition: 0, Offset: uint64(holes[i]), MaxRecords: 1})
		if err != nil {
			t.Fatalf("gRPC Consume at the removed offset %d: %v", holes[i], err)
		}
		following := hwm
		if rest := compSuffix(recs, next[i].offset+1); len(rest) > 0 {
			following = rest[0].offset
		}
		nextOff := int64(resp.GetNextOffset())
		if len(resp.GetRecords()) != 1 || int64(resp.GetRecords()[0].GetOffset()) != next[i].offset ||
			nextOff <= next[i].offset || nextOff > following {
			t.Errorf("gRPC Consume at the removed offset %d: %d records (first %v), next offset %d; want %s, next offset in [%d, %d]",
				holes[i], len(resp.GetRecords()), resp.GetRecords(), nextOff, next[i], next[i].offset+1, following)
		}
	}
	got := compGRPCConsumeAll(ctx, t, cl, holes[len(holes)/2], hwm)
	compSameRecords(t, fmt.Sprintf("gRPC Consume from the gap at %d", holes[len(holes)/2]), compSuffix(recs, holes[len(holes)/2]), got)
}

// waitCompQuiet waits until the cleaner has settled: at least minRuns
// runs, nothing waits for upload, the partition's uploaded segments are
// all compacted (dirty ratio 0), the replaced objects are deleted (only
// compacted objects are left) and the only local segment file is the
// active one, whose base offset it returns.
func waitCompQuiet(t *testing.T, p *brokerProc, httpAddr, segDir, objDir string, minRuns float64) int64 {
	t.Helper()
	var base int64
	waitFor(t, compQuietTimeout, "the cleaner to settle", func() (bool, string) {
		if !p.alive() {
			t.Fatalf("broker exited; log:\n%s", p.out.String())
		}
		code, body, err := httpGet("http://" + httpAddr + "/metrics")
		if err != nil || code != 200 {
			return false, fmt.Sprintf("/metrics: %d %v", code, err)
		}
		runs, backlog := metricValue(body, compMetricRuns), metricValue(body, metricBacklog)
		dirty := compLabelled(body, "streamhouse_log_cleaner_dirty_ratio", `topic="`+compTopic+`"`)
		plain, compacted := compObjects(t, objDir)
		logs, _ := filepath.Glob(filepath.Join(segDir, "*.log"))
		note := fmt.Sprintf("runs %v (want >= %v), backlog %v, dirty ratio %v, %d uploaded and %d compacted objects, local segments %v",
			runs, minRuns, backlog, dirty, plain, compacted, logs)
		if runs < minRuns || backlog != 0 || dirty != 0 || plain != 0 || compacted == 0 || len(logs) != 1 {
			return false, note
		}
		b, err := strconv.ParseInt(strings.TrimSuffix(filepath.Base(logs[0]), ".log"), 10, 64)
		if err != nil {
			return false, note + ": " + err.Error()
		}
		base = b
		return true, note
	})
	return base
}

// compUUID formats a topic ID as the broker names its directory.
func compUUID(id [16]byte) string {
	h := hex.EncodeToString(id[:])
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// Object names in the local object store: an uploaded segment is
// <base>.seg, one written by compaction <base>-<generation>.seg.
var (
	compPlainObject     = regexp.MustCompile(`^[0-9]{20}\.seg$`)
	compCompactedObject = regexp.MustCompile(`^[0-9]{20}-[0-9]+\.seg$`)
)

// compObjects counts the segment objects under dir.
func compObjects(t *testing.T, dir string) (plain, compacted int) {
	t.Helper()
	_ = filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return nil
		}
		switch name := d.Name(); {
		case compPlainObject.MatchString(name):
			plain++
		case compCompactedObject.MatchString(name):
			compacted++
		}
		return nil
	})
	return plain, compacted
}

// compLabelled returns the value of the first series of name whose
// labels contain label (-1 if none).
func compLabelled(body, name, label string) float64 {
	for _, line := range strings.Split(body, "\n") {
		rest, ok := strings.CutPrefix(line, name+"{")
		if !ok {
			continue
		}
		labels, value, ok := strings.Cut(rest, "} ")
		if !ok || !strings.Contains(labels, label) {
			continue
		}
		if f, err := strconv.ParseFloat(strings.TrimSpace(value), 64); err == nil {
			return f
		}
	}
	return -1
}

// compCheckLog asserts the broker compacted and never logged a
// compaction failure or an error.
func compCheckLog(t *testing.T, out string) {
	t.Helper()
	if _, ok := findLog(out, "compaction failed"); ok {
		t.Errorf("the broker logged a compaction failure:\n%s", out)
	}
	for _, line := range strings.Split(out, "\n") {
		if strings.Contains(line, `"level":"ERROR"`) {
			t.Errorf("broker error: %s", line)
		}
	}
}

// compCheckRawFuture sends ListOffsets for a timestamp past every
// record by hand (kadm turns the answer into the end offset): Kafka answers
// offset -1 and timestamp -1.
func compCheckRawFuture(ctx context.Context, t *testing.T, seed string, ts int64) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(seed))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	req := kmsg.NewPtrListOffsetsRequest()
	req.ReplicaID = -1
	rt := kmsg.NewListOffsetsRequestTopic()
	rt.Topic = compTopic
	rp := kmsg.NewListOffsetsRequestTopicPartition()
	rp.Partition, rp.Timestamp, rp.CurrentLeaderEpoch = 0, ts, -1
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
		t.Fatalf("ListOffsets answer %+v, want one partition", resp)
	}
	sp := resp.Topics[0].Partitions[0]
	if sp.ErrorCode != 0 || sp.Offset != -1 || sp.Timestamp != -1 {
		t.Errorf("raw ListOffsets timestamp %d (past every record) = error %s offset %d ts %d, want offset -1 ts -1",
			ts, codeName(sp.ErrorCode), sp.Offset, sp.Timestamp)
	}
}
