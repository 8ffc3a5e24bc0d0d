package main

// Helpers of the durability process tests (outage_test.go,
// diskfull_test.go, killcycle_test.go): a ledger of what the broker
// acknowledged and refused, a paced background producer, raw Produce
// requests that show the error code, and a read-back that checks the
// ledger against the whole log.

import (
	"context"
	"errors"
	"fmt"
	"hash/crc32"
	"io/fs"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// placed is where the broker said a record was stored.
type placed struct {
	partition int32
	offset    int64
}

// ledger records, by value (every value a test produces is unique), the
// records the broker acknowledged and those it refused with an error that
// promises nothing was written. It is safe for concurrent use.
type ledger struct {
	mu sync.Mutex
	// acked maps a value to where its acknowledgement placed it.
	acked map[string]placed
	// refused maps values of produce requests (raw Kafka or gRPC) that
	// were answered with an error, which promises nothing was written, to
	// that error: none of them may be in the log.
	refused map[string]string
	// unexpected holds producer errors the test did not allow, in order.
	unexpected []string
}

func newLedger() *ledger {
	return &ledger{acked: make(map[string]placed), refused: make(map[string]string)}
}

func (l *ledger) ack(value string, partition int32, offset int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.acked[value] = placed{partition, offset}
}

func (l *ledger) refuse(value, why string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.refused[value] = why
}

func (l *ledger) unexpectedErr(what string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.unexpected = append(l.unexpected, what)
}

// acks returns how many records were acknowledged so far.
func (l *ledger) acks() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.acked)
}

// errs returns the unexpected producer errors so far.
func (l *ledger) errs() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.unexpected...)
}

// loadConfig paces a background producer: perTick records of valueSize
// bytes every tick, at most max records, for at most maxTime.
type loadConfig struct {
	tick      time.Duration
	perTick   int
	valueSize int
	max       int
	maxTime   time.Duration
}

// load is a background producer writing unique values ("<prefix>-<n>-"
// padded with x) to a topic through a franz-go client, recording every
// acknowledgement in a ledger. It hands records over with TryProduce, so
// it never blocks: when the client already buffers its maximum (the broker
// refuses or is down), the record is skipped, never produced, and counted.
type load struct {
	cl      *kgo.Client
	led     *ledger
	stopped chan struct{} // closed by stop
	done    chan struct{} // closed when the producing goroutine returned
	// allowed reports whether a promise error is one the test expects;
	// any other is recorded in the ledger as unexpected.
	allowed func(error) bool

	tried   atomic.Int64 // records offered to the client
	acked   atomic.Int64 // records acknowledged
	skipped atomic.Int64 // records it refused with ErrMaxBuffered
	failed  atomic.Int64 // records that failed with another error
}

// startLoad starts producing to topic. The caller owns cl and closes it
// after stop (and, if it wants every record settled, a Flush).
func startLoad(cl *kgo.Client, led *ledger, topic, prefix string, cfg loadConfig, allowed func(error) bool) *load {
	ld := &load{cl: cl, led: led, stopped: make(chan struct{}), done: make(chan struct{}), allowed: allowed}
	go ld.run(topic, prefix, cfg)
	return ld
}

func (ld *load) run(topic, prefix string, cfg loadConfig) {
	defer close(ld.done)
	tick := time.NewTicker(cfg.tick)
	defer tick.Stop()
	deadline := time.Now().Add(cfg.maxTime)
	for n := 0; n < cfg.max && time.Now().Before(deadline); {
		for i := 0; i < cfg.perTick && n < cfg.max; i++ {
			value := padValue(fmt.Sprintf("%s-%d-", prefix, n), cfg.valueSize)
			n++
			ld.tried.Add(1)
			ld.cl.TryProduce(context.Background(), &kgo.Record{Topic: topic, Value: []byte(value)}, ld.promise)
		}
		select {
		case <-ld.stopped:
			return
		case <-tick.C:
		}
	}
}

func (ld *load) promise(r *kgo.Record, err error) {
	switch {
	case err == nil:
		ld.acked.Add(1)
		ld.led.ack(string(r.Value), r.Partition, r.Offset)
	case errors.Is(err, kgo.ErrMaxBuffered):
		ld.skipped.Add(1)
	default:
		ld.failed.Add(1)
		if !ld.allowed(err) {
			ld.led.unexpectedErr(fmt.Sprintf("record %.40q: %v", r.Value, err))
		}
	}
}

// String summarises the load's counters.
func (ld *load) String() string {
	return fmt.Sprintf("%d records offered, %d acknowledged, %d skipped (client buffer full), %d failed",
		ld.tried.Load(), ld.acked.Load(), ld.skipped.Load(), ld.failed.Load())
}

// stop ends the producing goroutine; records already handed to the client
// stay there (Flush settles them, Close fails them).
func (ld *load) stop() {
	select {
	case <-ld.stopped:
	default:
		close(ld.stopped)
	}
	<-ld.done
}

// padValue pads s with 'x' to n bytes (s itself if longer).
func padValue(s string, n int) string {
	if len(s) >= n {
		return s
	}
	return s + strings.Repeat("x", n-len(s))
}

// newProducer returns a franz-go client for idempotent acks=all produce
// (the defaults, stated here) to seed, at most maxBuffered records in
// memory, small uncompressed batches so that the bytes on disk are the
// bytes produced (the padded values would compress to almost nothing)
// and segments roll at their configured size.
func newProducer(t *testing.T, seed string, maxBuffered int) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(seed), kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.ProducerBatchCompression(kgo.NoCompression()),
		kgo.MaxBufferedRecords(maxBuffered), kgo.ProducerBatchMaxBytes(16<<10),
		kgo.RecordPartitioner(kgo.RoundRobinPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	return cl
}

// createTopic creates topic with partitions and configs through the Kafka
// front and returns its topic ID.
func createTopic(t *testing.T, seed, topic string, partitions int32, configs map[string]string) [16]byte {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(seed))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	cfg := make(map[string]*string, len(configs))
	for k, v := range configs {
		cfg[k] = kadm.StringPtr(v)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	res, err := adm.CreateTopic(ctx, partitions, 1, cfg, topic)
	if err != nil {
		t.Fatalf("create topic %s: %v", topic, err)
	}
	return res.ID
}

// rawProducer sends Produce requests by hand (kmsg) so that a test sees
// each partition's error code, which a franz-go producer retries away.
// It produces without idempotence, acks=all, and records each answer in
// its ledger.
type rawProducer struct {
	cl      *kgo.Client
	led     *ledger
	topic   string
	topicID [16]byte
}

func newRawProducer(t *testing.T, seed, topic string, topicID [16]byte, led *ledger) *rawProducer {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(seed), kgo.DisableIdempotentWrite(),
		kgo.RequiredAcks(kgo.AllISRAcks()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return &rawProducer{cl: cl, led: led, topic: topic, topicID: topicID}
}

// produce sends one request holding one batch of values for partition and
// returns the partition's error code and message and, on success, the
// base offset. A transport failure (no answer) is err. The ledger gets
// the values as acknowledged (success) or refused (an error code); after
// a transport failure their fate is unknown and it gets neither.
func (rp *rawProducer) produce(ctx context.Context, partition int32, values []string) (code int16, msg string, base int64, err error) {
	req := kmsg.NewPtrProduceRequest()
	req.Acks = -1
	req.TimeoutMillis = 30_000
	tp := kmsg.NewProduceRequestTopic()
	tp.Topic, tp.TopicID = rp.topic, rp.topicID
	pp := kmsg.NewProduceRequestTopicPartition()
	pp.Partition = partition
	pp.Records = encodeBatch(values, time.Now().UnixMilli())
	tp.Partitions = append(tp.Partitions, pp)
	req.Topics = append(req.Topics, tp)
	resp, err := rp.cl.Request(ctx, req)
	if err != nil {
		return 0, "", -1, err
	}
	pr := resp.(*kmsg.ProduceResponse)
	if len(pr.Topics) != 1 || len(pr.Topics[0].Partitions) != 1 {
		return 0, "", -1, fmt.Errorf("produce response has %d topics, want 1 with 1 partition", len(pr.Topics))
	}
	sp := pr.Topics[0].Partitions[0]
	if sp.ErrorMessage != nil {
		msg = *sp.ErrorMessage
	}
	for i, v := range values {
		if sp.ErrorCode == 0 {
			rp.led.ack(v, partition, sp.BaseOffset+int64(i))
		} else {
			rp.led.refuse(v, codeName(sp.ErrorCode))
		}
	}
	return sp.ErrorCode, msg, sp.BaseOffset, nil
}

// encodeBatch returns an uncompressed Kafka RecordBatch v2 of values with
// no producer ID, built the way a client does (a reference independent of
// the broker's own encoder).
func encodeBatch(values []string, ts int64) []byte {
	var recs []byte
	for i, v := range values {
		r := kmsg.Record{OffsetDelta: int32(i), Value: []byte(v)}
		// Length is the size of what follows it; encode once to learn it.
		r.Length = int32(len(r.AppendTo(nil)) - 1) // Length 0 takes one byte
		recs = r.AppendTo(recs)
	}
	b := kmsg.RecordBatch{
		PartitionLeaderEpoch: -1, Magic: 2, LastOffsetDelta: int32(len(values) - 1),
		FirstTimestamp: ts, MaxTimestamp: ts, ProducerID: -1, ProducerEpoch: -1, FirstSequence: -1,
		NumRecords: int32(len(values)), Records: recs,
	}
	raw := b.AppendTo(nil)
	// Length counts from PartitionLeaderEpoch (offset 12); the CRC-32C
	// (offset 17) covers everything from Attributes (offset 21) on.
	putInt32(raw[8:], int32(len(raw)-12))
	putInt32(raw[17:], int32(crc32.Checksum(raw[21:], crc32.MakeTable(crc32.Castagnoli))))
	return raw
}

func putInt32(b []byte, v int32) {
	b[0], b[1], b[2], b[3] = byte(v>>24), byte(v>>16), byte(v>>8), byte(v)
}

// codeName names a Kafka error code for messages.
func codeName(code int16) string {
	if code == 0 {
		return "NONE"
	}
	return kerr.ErrorForCode(code).Error()
}

// readAll reads every partition of topic from offset 0 to its end offset
// with a franz-go consumer (with opts added to its options) and returns
// the records per partition. The last record of each partition must be
// one the consumer returns (not a transaction marker, nor, at
// read_committed, an aborted record).
func readAll(t *testing.T, seed, topic string, opts ...kgo.Opt) map[int32][]*kgo.Record {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	adm, err := kgo.NewClient(kgo.SeedBrokers(seed))
	if err != nil {
		t.Fatal(err)
	}
	ends, err := kadm.NewClient(adm).ListEndOffsets(ctx, topic)
	adm.Close()
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		t.Fatalf("list end offsets of %s: %v", topic, err)
	}
	want := map[int32]int64{}
	start := map[int32]kgo.Offset{}
	ends.Each(func(o kadm.ListedOffset) {
		want[o.Partition] = o.Offset
		start[o.Partition] = kgo.NewOffset().At(0)
	})
	out := map[int32][]*kgo.Record{}
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(seed), kgo.FetchMaxWait(200 * time.Millisecond),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: start})}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	next := func(p int32) int64 {
		if rs := out[p]; len(rs) > 0 {
			return rs[len(rs)-1].Offset + 1
		}
		return 0
	}
	done := func() bool {
		for p, end := range want {
			if next(p) < end {
				return false
			}
		}
		return true
	}
	for !done() {
		fetches := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("read back %s: timed out; have %v, want end offsets %v", topic, nextOffsets(out), want)
		}
		fetches.EachError(func(topic string, p int32, err error) {
			t.Fatalf("read back %s[%d] at %d: %v", topic, p, next(p), err)
		})
		fetches.EachRecord(func(r *kgo.Record) { out[r.Partition] = append(out[r.Partition], r) })
	}
	return out
}

func nextOffsets(out map[int32][]*kgo.Record) map[int32]int64 {
	m := map[int32]int64{}
	for p, rs := range out {
		m[p] = rs[len(rs)-1].Offset + 1
	}
	return m
}

// verifyLog checks the records read back from a topic against the
// ledger: every partition's offsets run from 0 without a gap (the tests
// delete nothing), no value is stored twice, every acknowledged value is
// at the partition and offset its acknowledgement gave, and no refused
// value is stored. It reports at most a few problems of each kind.
func verifyLog(t *testing.T, led *ledger, got map[int32][]*kgo.Record) {
	t.Helper()
	led.mu.Lock()
	defer led.mu.Unlock()
	var problems []string
	report := func(format string, args ...any) {
		if len(problems) < 20 {
			problems = append(problems, fmt.Sprintf(format, args...))
		}
	}
	stored := map[string][]placed{}
	total := 0
	for p, rs := range got {
		for i, r := range rs {
			if r.Offset != int64(i) {
				report("partition %d: record %d has offset %d (a gap or a reordering)", p, i, r.Offset)
				break
			}
		}
		for _, r := range rs {
			stored[string(r.Value)] = append(stored[string(r.Value)], placed{p, r.Offset})
		}
		total += len(rs)
	}
	for v, at := range stored {
		if len(at) > 1 {
			report("value %.40q stored %d times, at %v", v, len(at), at)
		}
	}
	lost := 0
	values := make([]string, 0, len(led.acked))
	for v := range led.acked {
		values = append(values, v)
	}
	sort.Strings(values)
	for _, v := range values {
		want := led.acked[v]
		at := stored[v]
		switch {
		case len(at) == 0:
			lost++
			report("acknowledged value %.40q (partition %d offset %d) is not in the log", v, want.partition, want.offset)
		case at[0] != want:
			report("acknowledged value %.40q at partition %d offset %d is stored at %v", v, want.partition, want.offset, at)
		}
	}
	for v, why := range led.refused {
		if at := stored[v]; len(at) > 0 {
			report("value %.40q was refused (%s) yet is stored at %v", v, why, at)
		}
	}
	if len(problems) > 0 {
		t.Errorf("log check: %d records stored, %d acknowledged, %d refused; %d acknowledged lost; problems:\n  %s",
			total, len(led.acked), len(led.refused), lost, strings.Join(problems, "\n  "))
		return
	}
	t.Logf("log check: %d records stored, all %d acknowledged ones in place once, none of %d refused ones stored",
		total, len(led.acked), len(led.refused))
}

// Metrics the durability tests read.
const (
	metricBacklog      = "streamhouse_log_upload_backlog_bytes"
	metricBacklogLimit = "streamhouse_log_upload_backlog_limit_bytes"
	metricUploads      = "streamhouse_log_segment_uploads_total"
	metricUploadErrors = "streamhouse_log_segment_upload_errors_total"
	metricRolls        = "streamhouse_log_segment_rolls_total"
)

// scrape returns the value of each unlabelled metric in names from the
// broker's /metrics (-1 for one that is absent).
func scrape(httpAddr string, names ...string) (map[string]float64, error) {
	code, body, err := httpGet("http://" + httpAddr + "/metrics")
	if err == nil && code != 200 {
		err = fmt.Errorf("/metrics answered %d", code)
	}
	if err != nil {
		return nil, err
	}
	m := make(map[string]float64, len(names))
	for _, n := range names {
		m[n] = metricValue(body, n)
	}
	return m, nil
}

// scrapeOne returns one unlabelled metric of the broker.
func scrapeOne(t *testing.T, httpAddr, name string) float64 {
	t.Helper()
	m, err := scrape(httpAddr, name)
	if err != nil {
		t.Fatal(err)
	}
	return m[name]
}

// dirBytes sums the sizes of the regular files under dir.
func dirBytes(dir string) (int64, error) {
	var n int64
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil // removed under us (an upload finished)
			}
			return err
		}
		if d.Type().IsRegular() {
			info, err := d.Info()
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			if err != nil {
				return err
			}
			n += info.Size()
		}
		return nil
	})
	return n, err
}

// requireHelpFlag fails t unless the broker's --help lists flag: the tests
// of features still being built say so instead of failing obscurely.
func requireHelpFlag(t *testing.T, flag string) {
	t.Helper()
	help, _ := exec.Command(binary(t), "--help").CombinedOutput()
	if !strings.Contains(string(help), "--"+flag+" ") {
		t.Fatalf("the broker has no --%s flag (--help does not list it): the feature under test is missing", flag)
	}
}
