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
// waits for every acknowledgement.
func produceAll(ctx context.Context, cfg benchConfig, res *benchResult) error {
	codec, _ := benchCodec(cfg.codec)
	opts := []kgo.Opt{
		kgo.SeedBrokers(cfg.brokers...), kgo.DefaultProduceTopic(cfg.topic),
		kgo.ProducerBatchCompression(codec), kgo.ProducerLinger(cfg.linger),
	}
	switch cfg.acks {
	case 1:
		opts = append(opts, kgo.RequiredAcks(kgo.LeaderAck()), kgo.DisableIdempotentWrite())
	case 0:
		opts = append(opts, kgo.RequiredAcks(kgo.NoAck()), kgo.DisableIdempotentWrite())
	}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return err
	}
	defer cl.Close()
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
		sent := time.Now()
		fillPayload(v, uint64(seq), sent.UnixNano())
		cl.Produce(ctx, &kgo.Record{Value: v, Timestamp: sent}, promise)
	}
	if err := cl.Flush(ctx); err != nil {
		return err
	}
	res.produceDur = time.Since(start)
	res.acks = acks.d
	res.produceErrs = errs.Load()
	if e, ok := firstErr.Load().(error); ok {
		res.firstProduceErr = e
	}
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
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.cfg.brokers...),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{c.cfg.topic: parts}),
		kgo.FetchMaxWait(100*time.Millisecond))
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
	fmt.Fprintf(w, "bench: %d records x %d B, %d partitions, acks=%d, compression=%s, topic %s\n",
		cfg.records, cfg.size, cfg.partitions, cfg.acks, cfg.codec, cfg.topic)
	fmt.Fprintf(w, "produce: %.0f records/s, %.1f MB/s (%.2fs)\n",
		float64(cfg.records)/r.produceDur.Seconds(), mb/r.produceDur.Seconds(), r.produceDur.Seconds())
	fmt.Fprintf(w, "produce ack latency: p50 %v p99 %v p99.9 %v\n",
		percentile(r.acks, 50), percentile(r.acks, 99), percentile(r.acks, 99.9))
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
