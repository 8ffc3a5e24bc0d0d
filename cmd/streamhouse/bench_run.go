package main

import (
	"context"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// benchResult is what one run measured.
type benchResult struct {
	produceDur, consumeDur  time.Duration
	acks, e2e               []time.Duration
	produceErrs             int64
	received, dups, corrupt int64
	outOfOrder, missing     int64
	secondPass              int64
	cpuProduce, cpuConsume  float64 // broker CPU seconds, -1 unknown
	firstProduceErr         error
	commits, endTxns        []time.Duration // transactional: each commit's Flush + EndTxn, and EndTxn alone
}

func (r *benchResult) ok() bool {
	return r.produceErrs == 0 && r.dups == 0 && r.corrupt == 0 && r.missing == 0 && r.outOfOrder == 0
}

// runBench creates the topic, produces while a consumer follows, then
// consumes everything again for the pure consume rate.
func runBench(ctx context.Context, cfg benchConfig) (*benchResult, error) {
	admin, err := benchAdmin(ctx, cfg)
	if err != nil {
		return nil, err
	}
	defer admin.Close()
	if !cfg.keepTopic {
		defer kadm.NewClient(admin).DeleteTopics(context.Background(), cfg.topic) //nolint:errcheck // best effort
	}
	res := &benchResult{cpuProduce: -1, cpuConsume: -1}
	follower := newBenchConsumer(cfg, res, true)
	followDone := make(chan error, 1)
	go func() { followDone <- follower.run(ctx) }()

	cpu0 := cpuOf(cfg.pid)
	if err := produceAll(ctx, cfg, res); err != nil {
		return nil, err
	}
	if err := <-followDone; err != nil {
		return nil, fmt.Errorf("consume while producing: %w", err)
	}
	cpu1 := cpuOf(cfg.pid)
	follower.finish()

	again := newBenchConsumer(cfg, res, false)
	start := time.Now()
	if err := again.run(ctx); err != nil {
		return nil, fmt.Errorf("consume from start: %w", err)
	}
	res.consumeDur = time.Since(start)
	res.secondPass = again.count.Load()
	cpu2 := cpuOf(cfg.pid)
	if cpu0 >= 0 && cpu1 >= 0 && cpu2 >= 0 {
		res.cpuProduce, res.cpuConsume = cpu1-cpu0, cpu2-cpu1
	}
	sortDurations(res.acks)
	sortDurations(res.e2e)
	sortDurations(res.commits)
	sortDurations(res.endTxns)
	return res, nil
}

func cpuOf(pid int) float64 {
	if pid <= 0 {
		return -1
	}
	c, err := procCPU(pid)
	if err != nil {
		return -1
	}
	return c
}

// produceAll produces cfg.records records, paced to cfg.rate if set, and
// waits for every acknowledgement (and, when transactional, the last commit).
func produceAll(ctx context.Context, cfg benchConfig, res *benchResult) error {
	cl, err := kgo.NewClient(producerOpts(cfg)...)
	if err != nil {
		return err
	}
	defer cl.Close()
	var txns *benchTxns
	if cfg.txnInterval > 0 {
		txns = &benchTxns{cl: cl, interval: cfg.txnInterval}
	}
	acks := &lockedDurations{d: make([]time.Duration, 0, cfg.records)}
	var errs atomic.Int64
	var firstErr atomic.Value
	// One promise for every record: the record's own timestamp (the send
	// time, which franz-go would otherwise stamp itself) gives the ack
	// latency, so no closure is allocated per record.
	promise := func(r *kgo.Record, err error) {
		if err != nil {
			if errs.Add(1) == 1 {
				firstErr.Store(err)
			}
			return
		}
		acks.add(time.Since(r.Timestamp))
	}
	start := time.Now()
	for seq := 0; seq < cfg.records; seq++ {
		if cfg.rate > 0 {
			due := start.Add(time.Duration(seq) * time.Second / time.Duration(cfg.rate))
			if d := time.Until(due); d > 0 {
				time.Sleep(d) // pacing the load generator, not synchronisation
			}
		}
		v := make([]byte, cfg.size)
		sent, err := txns.next(ctx, time.Now())
		if err != nil {
			return err
		}
		fillPayload(v, uint64(seq), sent.UnixNano())
		cl.Produce(ctx, &kgo.Record{Value: v, Timestamp: sent}, promise)
	}
	if err := cl.Flush(ctx); err != nil {
		return err
	}
	if err := txns.commit(ctx); err != nil {
		return err
	}
	res.produceDur = time.Since(start)
	res.acks = acks.d
	res.produceErrs = errs.Load()
	if e, ok := firstErr.Load().(error); ok {
		res.firstProduceErr = e
	}
	if txns != nil {
		res.commits, res.endTxns = txns.took, txns.endTook
	}
	return nil
}

// producerOpts is franz-go's producer for cfg: idempotent by default
// (acks=all), transactional with cfg.txnInterval, neither with acks 0 or 1.
func producerOpts(cfg benchConfig) []kgo.Opt {
	codec, _ := benchCodec(cfg.codec)
	opts := []kgo.Opt{
		kgo.SeedBrokers(cfg.brokers...), kgo.DefaultProduceTopic(cfg.topic),
		kgo.ProducerBatchCompression(codec), kgo.ProducerLinger(cfg.linger),
	}
	switch {
	case cfg.acks == 1:
		opts = append(opts, kgo.RequiredAcks(kgo.LeaderAck()), kgo.DisableIdempotentWrite())
	case cfg.acks == 0:
		opts = append(opts, kgo.RequiredAcks(kgo.NoAck()), kgo.DisableIdempotentWrite())
	case cfg.txnInterval > 0:
		// One transactional ID per run, so that runs never fence each other.
		opts = append(opts, kgo.TransactionalID(cfg.topic+"-txn"))
	}
	return opts
}

// benchTxns runs the producer's transactions: it begins one before the
// first record and commits it (Flush, then EndTxn) before the first record
// sent once it has been open for interval. The producer waits for each
// commit, as any transactional producer must before its next transaction.
type benchTxns struct {
	cl       *kgo.Client
	interval time.Duration
	open     bool
	began    time.Time
	took     []time.Duration // per commit: Flush + EndTxn
	endTook  []time.Duration // per commit: EndTxn alone
}

// next readies the transaction for a record about to be sent at now and
// returns the send time: later than now if it had to commit first. A nil
// *benchTxns (the idempotent producer) returns now.
func (t *benchTxns) next(ctx context.Context, now time.Time) (time.Time, error) {
	if t == nil {
		return now, nil
	}
	if t.open && now.Sub(t.began) >= t.interval {
		if err := t.commit(ctx); err != nil {
			return now, err
		}
		now = time.Now()
	}
	if !t.open {
		if err := t.cl.BeginTransaction(); err != nil {
			return now, fmt.Errorf("begin transaction %d: %w", len(t.took)+1, err)
		}
		t.open, t.began = true, now
	}
	return now, nil
}

// commit flushes the open transaction's records and commits it. A commit
// that fails is aborted and ends the run: its records will never be read.
func (t *benchTxns) commit(ctx context.Context) error {
	if t == nil || !t.open {
		return nil
	}
	start := time.Now()
	t.open = false
	if err := t.cl.Flush(ctx); err != nil {
		return err
	}
	end := time.Now()
	if err := t.cl.EndTransaction(ctx, kgo.TryCommit); err != nil {
		if aerr := t.cl.EndTransaction(ctx, kgo.TryAbort); aerr != nil {
			err = fmt.Errorf("%w (abort: %v)", err, aerr)
		}
		return fmt.Errorf("commit transaction %d: %w", len(t.took)+1, err)
	}
	now := time.Now()
	t.took = append(t.took, now.Sub(start))
	t.endTook = append(t.endTook, now.Sub(end))
	return nil
}

// benchConsumer reads the topic from the start until it has every record.
type benchConsumer struct {
	cfg    benchConfig
	res    *benchResult
	verify bool // check payloads, order and latency (the follower)
	count  atomic.Int64
	seen   []bool
	last   map[int32]int64
	mu     sync.Mutex
}

func newBenchConsumer(cfg benchConfig, res *benchResult, verify bool) *benchConsumer {
	c := &benchConsumer{cfg: cfg, res: res, verify: verify}
	if verify {
		c.seen = make([]bool, cfg.records)
		c.last = make(map[int32]int64)
		res.e2e = make([]time.Duration, 0, cfg.records)
	}
	return c
}

func (c *benchConsumer) run(ctx context.Context) error {
	parts := make(map[int32]kgo.Offset, c.cfg.partitions)
	for p := 0; p < c.cfg.partitions; p++ {
		parts[int32(p)] = kgo.NewOffset().AtStart()
	}
	opts := []kgo.Opt{
		kgo.SeedBrokers(c.cfg.brokers...),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{c.cfg.topic: parts}),
		kgo.FetchMaxWait(100 * time.Millisecond),
	}
	if c.cfg.txnInterval > 0 {
		opts = append(opts, kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return err
	}
	defer cl.Close()
	want := int64(c.cfg.records)
	for c.count.Load() < want {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("after %d of %d records: %w", c.count.Load(), want, err)
		}
		var ferr error
		fs.EachError(func(_ string, _ int32, err error) { ferr = err })
		if ferr != nil {
			return ferr
		}
		fs.EachPartition(func(p kgo.FetchTopicPartition) {
			// Every record of a partition's fetch arrived at once: one
			// clock read for its end-to-end latencies.
			now := time.Now().UnixNano()
			for _, r := range p.Records {
				c.record(r, now)
			}
		})
	}
	return nil
}

func (c *benchConsumer) record(r *kgo.Record, now int64) {
	c.count.Add(1)
	if !c.verify {
		return
	}
	seq, sent, ok := checkPayload(r.Value)
	switch {
	case !ok || seq >= uint64(len(c.seen)):
		c.res.corrupt++
		return
	case c.seen[seq]:
		c.res.dups++
		return
	}
	c.seen[seq] = true
	c.res.received++
	if prev, ok := c.last[r.Partition]; ok && int64(seq) < prev {
		c.res.outOfOrder++
	}
	c.last[r.Partition] = int64(seq)
	c.res.e2e = append(c.res.e2e, time.Duration(now-sent))
}

// finish counts records never received.
func (c *benchConsumer) finish() {
	for _, s := range c.seen {
		if !s {
			c.res.missing++
		}
	}
}

func (r *benchResult) print(w io.Writer, cfg benchConfig) {
	mb := float64(cfg.records*cfg.size) / 1e6
	mode := "idempotent"
	switch {
	case cfg.acks != -1:
		mode = "not idempotent"
	case cfg.txnInterval > 0:
		mode = fmt.Sprintf("transactional (commit every %v, read_committed)", cfg.txnInterval)
	}
	fmt.Fprintf(w, "bench: %d records x %d B, %d partitions, acks=%d, compression=%s, %s, topic %s\n",
		cfg.records, cfg.size, cfg.partitions, cfg.acks, cfg.codec, mode, cfg.topic)
	fmt.Fprintf(w, "produce: %.0f records/s, %.1f MB/s (%.2fs)\n",
		float64(cfg.records)/r.produceDur.Seconds(), mb/r.produceDur.Seconds(), r.produceDur.Seconds())
	fmt.Fprintf(w, "produce ack latency: p50 %v p99 %v p99.9 %v\n",
		percentile(r.acks, 50), percentile(r.acks, 99), percentile(r.acks, 99.9))
	if cfg.txnInterval > 0 {
		fmt.Fprintf(w, "transactions: %d committed; commit (flush + EndTxn) p50 %v p99 %v max %v; EndTxn alone p50 %v p99 %v\n",
			len(r.commits), percentile(r.commits, 50), percentile(r.commits, 99), percentile(r.commits, 100),
			percentile(r.endTxns, 50), percentile(r.endTxns, 99))
	}
	fmt.Fprintf(w, "end-to-end latency: p50 %v p99 %v\n", percentile(r.e2e, 50), percentile(r.e2e, 99))
	fmt.Fprintf(w, "consume: %.0f records/s, %.1f MB/s (%.2fs, %d records)\n",
		float64(r.secondPass)/r.consumeDur.Seconds(), mb/r.consumeDur.Seconds(), r.consumeDur.Seconds(), r.secondPass)
	if r.cpuProduce >= 0 {
		per := 1e6 / float64(cfg.records)
		fmt.Fprintf(w, "broker cpu: produce+follow %.3fs (%.3fs per million records), consume %.3fs (%.3fs per million)\n",
			r.cpuProduce, r.cpuProduce*per, r.cpuConsume, r.cpuConsume*per)
	}
	verdict := "OK"
	if !r.ok() {
		verdict = "FAILED"
	}
	fmt.Fprintf(w, "verify: %s: received %d, missing %d, duplicates %d, corrupt %d, out of order %d, produce errors %d\n",
		verdict, r.received, r.missing, r.dups, r.corrupt, r.outOfOrder, r.produceErrs)
	if r.firstProduceErr != nil {
		fmt.Fprintf(w, "first produce error: %v\n", r.firstProduceErr)
	}
}
