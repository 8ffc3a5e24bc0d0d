package main

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/kversion"
)

// The transaction crash test's shape: bounded in cycles and time, so that
// it fits in CI under -race (15 to 35 s on two busy cores).
const (
	txnCrashTopic      = "txncrash"
	txnCrashPartitions = 4
	// txnCrashProducers run concurrently; producer 0 takes a new
	// transactional ID with every client (so only the broker's timeout
	// can abort what it left open), the others keep theirs (a new client
	// fences the previous one).
	txnCrashProducers = 4
	txnCrashCycles    = 12
	// txnCrashBudget stops starting new cycles once the test has run this
	// long (a slow machine).
	txnCrashBudget = 30 * time.Second
	// txnCrashTimeout is the producers' transaction timeout, and
	// txnCrashAbortInterval how often the broker looks for transactions
	// past it: a transaction whose producer is gone ends within their sum.
	txnCrashTimeout       = 3 * time.Second
	txnCrashAbortInterval = 200 * time.Millisecond
	// txnCrashOpTimeout bounds each transaction of a producer (its
	// produce, flush and EndTxn): the broker being down longer fails it.
	txnCrashOpTimeout = 15 * time.Second
	// txnCrashKillWait bounds the wait for a cycle's kill point.
	txnCrashKillWait = 60 * time.Second
	// txnCrashSegmentBytes rolls segments many times a run, so that
	// read_committed reads sealed segments (and their aborted-transaction
	// index) from the object store, not only the active one.
	txnCrashSegmentBytes = 8 << 10
	txnCrashValueSize    = 120
	// txnCrashSeedEnv, when set, gives the seed (to replay a failure's
	// schedule; the broker's timing is not replayed).
	txnCrashSeedEnv = "STREAMHOUSE_TEST_TXN_SEED"
	// initProducerIDKey and endTxnKey are InitProducerId's and EndTxn's
	// API keys.
	initProducerIDKey = 22
	endTxnKey         = 26
)

// TestTxnCrash SIGKILLs the broker binary while transactional franz-go
// producers run, many cycles, and checks transactions end whole or not at
// all. txnCrashProducers producers each run transactions of 2 to 8 records
// spread over 2 to 4 partitions, committing two in three and aborting the
// others; half of them at transaction version 2 (KIP-890 part 2: Produce
// adds the partition, every EndTxn bumps the epoch), half at version 1
// (AddPartitionsToTxn). A cycle kills the broker at one of four points, in
// turn:
//   - mid-load: after a random number of acknowledged records (produce,
//     AddPartitionsToTxn, EndTxn and marker writes all run at that time);
//   - at EndTxn: a random 0-20 ms after a producer wrote an EndTxn
//     request (the decision being stored, markers being written);
//   - right after an EndTxn(commit) was answered: that transaction must be
//     complete after the restart;
//   - at InitProducerId fencing: a producer drops its client in the middle
//     of a transaction, and the broker is killed a random 0-20 ms after
//     its new client wrote InitProducerId (which aborts the open
//     transaction, writing markers, and bumps the epoch).
//
// The broker restarts on the same data directory and Kafka port; the
// producers carry on, each with a new client after any error, whose
// InitProducerId fences the old one. A transaction is committed if EndTxn(commit) was
// answered with success, aborted if EndTxn(abort) was, unknown if a commit
// was sent and not answered, and open if no commit was ever sent (the
// producer gave up or died). After the last restart the producers run on,
// an orphan transaction is left open for the broker's timeout to abort,
// and the producers stop; then:
//   - the last stable offset reaches the high watermark of every
//     partition within the timeout (no transaction hangs after recovery);
//   - a read_committed consumer sees every committed transaction whole,
//     each record at the offset its acknowledgement gave, every unknown
//     one whole or not at all, no record of an aborted or open one, and
//     no record twice;
//   - a read_uncommitted consumer sees every acknowledged record (of any
//     transaction) at its offset, once;
//   - a read_committed consumer that tailed the log through the kills
//     saw no record of a transaction that did not end up committed, and
//     every record it saw is at the same offset in the end (no transaction
//     was visible while open, nothing visible was lost by a crash).
func TestTxnCrash(t *testing.T) {
	requireHelpFlag(t, "transaction-abort-interval")
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv(txnCrashSeedEnv); s != "" {
		var err error
		if seed, err = strconv.ParseUint(s, 10, 64); err != nil {
			t.Fatalf("%s=%q: %v", txnCrashSeedEnv, s, err)
		}
	}
	t.Logf("seed %d (replay the schedule with %s=%d)", seed, txnCrashSeedEnv, seed)
	r := &txnCrashRun{t: t, dir: t.TempDir(), rng: rand.New(rand.NewPCG(seed, 0x7a11)),
		book: newTxnBook(), trig: &killTrigger{}}
	r.start("127.0.0.1:0")
	createTopic(t, r.addr, txnCrashTopic, txnCrashPartitions,
		map[string]string{"segment.bytes": strconv.Itoa(txnCrashSegmentBytes)})
	tail := startTailer(t, r.addr)
	r.prods = startTxnProducers(t, r.addr, seed, r.book, r.trig)

	start := time.Now()
	cycles := 0
	for ; cycles < txnCrashCycles; cycles++ {
		if cycles > 0 && time.Since(start) > txnCrashBudget {
			t.Logf("stopping after %d cycles: the %s budget is spent", cycles, txnCrashBudget)
			break
		}
		r.killCycle(cycles)
	}
	r.book.cycle.Store(int32(cycles))

	// The producers must get going again after the last restart.
	ended := r.prods.ended()
	waitFor(t, txnCrashKillWait, "every producer to end 2 transactions after the last restart", func() (bool, string) {
		now := r.prods.ended()
		for i := range now {
			if now[i] < ended[i]+2 {
				return false, fmt.Sprintf("transactions ended per producer: %v, at the restart %v; %s", now, ended, r.book)
			}
		}
		return true, ""
	})
	leaveOrphanTxn(t, r.addr, r.book)
	r.prods.stop()
	t.Logf("%d kill cycles in %s; %s", cycles, time.Since(start).Round(time.Millisecond), r.book)

	waitStable(t, r.addr, 10*txnCrashTimeout)
	// The reads stop at the sentinels, the last records.
	ends := produceSentinels(t, r.addr)
	if hw := highWatermarks(t, r.addr); !maps.Equal(hw, ends) {
		t.Fatalf("high watermarks %v after the sentinels, want %v: something wrote after them", hw, ends)
	}
	committed := readAll(t, r.addr, txnCrashTopic, kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	all := readAll(t, r.addr, txnCrashTopic)
	r.book.check(t, committed, all, tail.drain(t, ends), r.afterCommit)
	if n, err := dirBytes(filepath.Join(r.dir, "objects")); err != nil || n == 0 {
		t.Errorf("the object store holds %d bytes (%v): no segment was sealed, the reads did not cover sealed segments", n, err)
	}
	if _, ok := findLog(r.p.out.String(), "aborting timed-out transaction", "transactional_id", "txncrash-orphan"); !ok {
		t.Errorf("the broker did not log that it aborted the orphan transaction for its timeout; log tail:\n%s",
			logTail(r.p.out.String(), 30))
	}
	r.p.stop(t)
}

// txnCrashRun is TestTxnCrash's broker and load.
type txnCrashRun struct {
	t    *testing.T
	dir  string // the data directory
	rng  *rand.Rand
	p    *brokerProc // the broker running now
	addr string      // its Kafka address, the same at every start
	book *txnBook
	trig *killTrigger
	// prods are the producers; afterCommit the transactions whose commit
	// was answered right before a kill.
	prods       *txnProducers
	afterCommit []txnKey
}

// start starts the broker with its Kafka listener on kafkaAddr.
func (r *txnCrashRun) start(kafkaAddr string) {
	r.t.Helper()
	r.p = startBroker(r.t, nil, append(localArgs(r.dir), "--kafka-addr="+kafkaAddr,
		"--transaction-abort-interval="+txnCrashAbortInterval.String())...)
	r.p.ready(r.t)
	r.addr = r.p.listenAddr(r.t, "kafka")
	if kafkaAddr != "127.0.0.1:0" && r.addr != kafkaAddr {
		r.t.Fatalf("restarted broker listens on %s, want %s", r.addr, kafkaAddr)
	}
}

// killCycle arms the cycle's kill point, waits for the kill and restarts
// the broker.
func (r *txnCrashRun) killCycle(cycle int) {
	t := r.t
	t.Helper()
	r.book.cycle.Store(int32(cycle))
	point := killPoint(cycle % 4)
	var delay time.Duration
	if point == killAtEndTxn || point == killAtInit {
		delay = time.Duration(r.rng.IntN(20_000)) * time.Microsecond
	}
	acks := 20 + r.rng.IntN(200)
	if point != killAtInit {
		r.trig.arm(point, r.p.cmd.Process, acks, delay)
	} else {
		// An InitProducerId comes only after an error: let the load run,
		// then have a producer that keeps its transactional ID drop its
		// client mid-transaction.
		from := r.book.ackCount()
		waitFor(t, txnCrashKillWait, fmt.Sprintf("%d acknowledgements in cycle %d", acks, cycle), func() (bool, string) {
			if !r.p.alive() {
				t.Fatalf("cycle %d: broker exited under load; log tail:\n%s", cycle, logTail(r.p.out.String(), 40))
			}
			return r.book.ackCount() >= from+acks, r.book.String()
		})
		r.trig.arm(point, r.p.cmd.Process, 0, delay)
		r.prods.all[1+r.rng.IntN(txnCrashProducers-1)].abandon.Store(true)
	}
	waitFor(t, txnCrashKillWait, fmt.Sprintf("cycle %d's kill %s", cycle, point), func() (bool, string) {
		if !r.p.alive() {
			if r.trig.firedBy() != "" {
				return true, ""
			}
			t.Fatalf("cycle %d: broker exited before the kill; log tail:\n%s", cycle, logTail(r.p.out.String(), 40))
		}
		return false, r.book.String()
	})
	if point == killAfterCommit {
		r.afterCommit = append(r.afterCommit, r.trig.firedKey())
	}
	killed := time.Now()
	r.start(r.addr)
	t.Logf("cycle %d: killed %s (%s), ready again in %s, %s; %s", cycle, point, r.trig.firedBy(),
		time.Since(killed).Round(time.Millisecond), recovered(r.p.out.String()), r.book)
}

// recovered says how many decided transactions (PrepareCommit or
// PrepareAbort stored, markers maybe not written) the broker whose log is
// out completed as it started.
func recovered(out string) string {
	r, ok := findLog(out, "transaction coordinator loaded")
	if !ok {
		return "no transaction coordinator log line"
	}
	return fmt.Sprintf("%v decided transactions completed at start", r["completed"])
}

// killPoint is where in the load a cycle kills the broker.
type killPoint int

const (
	// killMidLoad kills after a number of acknowledged records.
	killMidLoad killPoint = iota
	// killAtEndTxn kills a delay after an EndTxn request was written.
	killAtEndTxn
	// killAfterCommit kills as soon as an EndTxn(commit) was answered.
	killAfterCommit
	// killAtInit kills a delay after an InitProducerId request was
	// written.
	killAtInit
)

func (k killPoint) String() string {
	return [...]string{"mid-load", "at EndTxn", "right after a commit was answered", "at InitProducerId"}[k]
}

// killTrigger SIGKILLs the broker from the producers' callbacks, at the
// moment its armed kill point comes (a goroutine polling for it would
// land up to a poll interval later).
type killTrigger struct {
	mu sync.Mutex
	// proc is the broker to kill, nil when not armed; point the kill
	// point; acks the acknowledgements still to wait for: killMidLoad
	// kills at the last one, the other points fire at their first event
	// after it (so that the restarted broker ran some load first); delay
	// the time from the event to the kill (killAtEndTxn): a random delay
	// places the kill within the broker's handling of the request.
	proc  *os.Process
	point killPoint
	acks  int
	delay time.Duration
	// fired says what fired the last kill, key which transaction.
	fired string
	key   txnKey
}

func (k *killTrigger) arm(point killPoint, proc *os.Process, acks int, delay time.Duration) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.proc, k.point, k.acks, k.delay, k.fired = proc, point, acks, delay, ""
}

// acked counts an acknowledged record.
func (k *killTrigger) acked(key txnKey) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.proc == nil {
		return
	}
	if k.acks--; k.acks <= 0 && k.point == killMidLoad {
		k.killLocked(key, fmt.Sprintf("after an acknowledged record of %s", key))
	}
}

// event fires the kill if point is the armed one.
func (k *killTrigger) event(point killPoint, key txnKey, what string) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.proc != nil && k.point == point && k.acks <= 0 {
		k.killLocked(key, what)
	}
}

func (k *killTrigger) killLocked(key txnKey, what string) {
	proc, delay := k.proc, k.delay
	k.proc, k.key, k.fired = nil, key, what
	if delay == 0 {
		_ = proc.Signal(syscall.SIGKILL)
		return
	}
	k.fired += fmt.Sprintf(", %s later", delay)
	// Not a wait for a condition: the delay is where the kill lands.
	time.AfterFunc(delay, func() { _ = proc.Signal(syscall.SIGKILL) })
}

func (k *killTrigger) firedBy() string {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.fired
}

func (k *killTrigger) firedKey() txnKey {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.key
}

// txnKey names a transaction: its producer and its number there.
type txnKey struct{ producer, n int }

func (k txnKey) String() string { return fmt.Sprintf("p%d/t%d", k.producer, k.n) }

// txnOutcome is what a producer was told of a transaction's end.
type txnOutcome int

const (
	// txnOpen: no commit was ever sent (the producer gave up after an
	// error, or an abort was not answered). Must not be visible.
	txnOpen txnOutcome = iota
	// txnAborted: EndTxn(abort) answered success. Must not be visible.
	txnAborted
	// txnCommitted: EndTxn(commit) answered success. Must be whole.
	txnCommitted
	// txnUnknown: EndTxn(commit) was sent but not answered with success.
	// Must be whole or absent.
	txnUnknown
)

func (o txnOutcome) String() string {
	return [...]string{"open", "aborted", "committed", "unknown"}[o]
}

// txnEntry is one transaction as its producer saw it.
type txnEntry struct {
	count   int
	cycle   int32 // the broker life it began in
	outcome txnOutcome
	// acked maps a record's index to where its acknowledgement put it.
	acked map[int]placed
}

// txnBook records every transaction the producers ran. Safe for
// concurrent use.
type txnBook struct {
	// cycle is the current kill cycle, for the entries.
	cycle atomic.Int32

	mu   sync.Mutex
	txns map[txnKey]*txnEntry
	// errs counts the producers' errors by message (for the log: a
	// crash makes many, all allowed; the checks judge the outcome).
	errs map[string]int
	acks int
}

func newTxnBook() *txnBook {
	return &txnBook{txns: make(map[txnKey]*txnEntry), errs: make(map[string]int)}
}

func (b *txnBook) begin(key txnKey, count int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.txns[key] = &txnEntry{count: count, cycle: b.cycle.Load(), acked: make(map[int]placed)}
}

func (b *txnBook) ack(key txnKey, index int, at placed) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.txns[key].acked[index] = at
	b.acks++
}

// ackCount returns how many records were acknowledged so far.
func (b *txnBook) ackCount() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.acks
}

func (b *txnBook) end(key txnKey, o txnOutcome) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.txns[key].outcome = o
}

func (b *txnBook) err(op string, err error) {
	msg := op + ": " + err.Error()
	if len(msg) > 160 {
		msg = msg[:160] + "..."
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.errs[msg]++
}

// String summarises the transactions so far.
func (b *txnBook) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	var n [4]int
	for _, e := range b.txns {
		n[e.outcome]++
	}
	errs := 0
	for _, c := range b.errs {
		errs += c
	}
	return fmt.Sprintf("%d transactions (%d committed, %d aborted, %d unknown, %d open), %d records acknowledged, %d producer errors",
		len(b.txns), n[txnCommitted], n[txnAborted], n[txnUnknown], n[txnOpen], b.acks, errs)
}

// txnValue is the value of record index of count in transaction key,
// padded to txnCrashValueSize.
func txnValue(key txnKey, index, count int) []byte {
	return []byte(padValue(fmt.Sprintf("p%d-t%d-i%d-n%d-", key.producer, key.n, index, count), txnCrashValueSize))
}

// parseTxnValue undoes txnValue.
func parseTxnValue(v []byte) (key txnKey, index, count int, ok bool) {
	_, err := fmt.Sscanf(string(v), "p%d-t%d-i%d-n%d-", &key.producer, &key.n, &index, &count)
	return key, index, count, err == nil
}

// txnProducers are the test's transactional producers.
type txnProducers struct {
	cancel context.CancelFunc // fails what they are doing at once
	halt   chan struct{}      // closed by stop: end after the current transaction
	done   sync.WaitGroup
	all    []*txnProducer
}

// startTxnProducers starts txnCrashProducers producers on the broker at
// addr. Cleanup stops them at once if the test has not.
func startTxnProducers(t *testing.T, addr string, seed uint64, book *txnBook, trig *killTrigger) *txnProducers {
	ctx, cancel := context.WithCancel(context.Background())
	ps := &txnProducers{cancel: cancel, halt: make(chan struct{})}
	for i := range txnCrashProducers {
		p := &txnProducer{idx: i, addr: addr, book: book, trig: trig,
			rng: rand.New(rand.NewPCG(seed, uint64(i)+1))}
		ps.all = append(ps.all, p)
		ps.done.Add(1)
		go func() {
			defer ps.done.Done()
			p.run(ctx, ps.halt)
		}()
	}
	t.Cleanup(func() {
		cancel()
		ps.stop()
	})
	return ps
}

// stop lets every producer end its transaction and waits for them.
func (ps *txnProducers) stop() {
	select {
	case <-ps.halt:
	default:
		close(ps.halt)
	}
	ps.done.Wait()
}

// ended returns how many transactions each producer ended with success.
func (ps *txnProducers) ended() []int64 {
	n := make([]int64, len(ps.all))
	for i, p := range ps.all {
		n[i] = p.ended.Load()
	}
	return n
}

// txnProducer runs transactions one after the other on one goroutine.
type txnProducer struct {
	idx  int
	addr string
	book *txnBook
	trig *killTrigger
	rng  *rand.Rand
	// ended counts transactions whose EndTxn answered success.
	ended atomic.Int64
	// current is the transaction being ended, for txnHook.
	current atomic.Pointer[txnKey]
	// abandon asks the producer to drop its client in the middle of its
	// next transaction (after its records were acknowledged).
	abandon atomic.Bool

	// Owned by the producing goroutine.
	cl   *kgo.Client
	gen  int // clients made so far
	next int // the next transaction's number
}

func (p *txnProducer) run(ctx context.Context, halt <-chan struct{}) {
	defer func() {
		if p.cl != nil {
			p.cl.Close()
		}
	}()
	for ctx.Err() == nil {
		select {
		case <-halt:
			return
		default:
		}
		p.transact(ctx)
	}
}

// transactionalID is the producer's ID for its gen-th client.
func (p *txnProducer) transactionalID() string {
	if p.idx == 0 {
		return fmt.Sprintf("txncrash-p0-g%d", p.gen)
	}
	return fmt.Sprintf("txncrash-p%d", p.idx)
}

// newTxnClient returns a transactional client with txnID for the broker
// at addr, at transaction version 1 if tv1 (else 2, which the broker
// advertises); hooks see its requests.
func newTxnClient(addr, txnID string, tv1 bool, hooks ...kgo.Hook) (*kgo.Client, error) {
	versions := kversion.Stable()
	if tv1 {
		// franz-go uses version 2 only with Produce v12 and EndTxn v5.
		versions.SetMaxKeyVersion(int16(kmsg.Produce), 11)
		versions.SetMaxKeyVersion(int16(kmsg.EndTxn), 4)
	}
	return kgo.NewClient(kgo.SeedBrokers(addr), kgo.TransactionalID(txnID), kgo.MaxVersions(versions),
		kgo.TransactionTimeout(txnCrashTimeout),
		kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.ProducerBatchCompression(kgo.NoCompression()),
		// Retry and refresh metadata quickly: the broker is back within
		// a second.
		kgo.RetryBackoffFn(func(int) time.Duration { return 50 * time.Millisecond }),
		kgo.MetadataMinAge(50*time.Millisecond),
		kgo.WithHooks(hooks...))
}

// transact runs one transaction. After any error the client is dropped:
// the next one's InitProducerId fences it (and aborts what it left open).
func (p *txnProducer) transact(ctx context.Context) {
	if p.cl == nil {
		cl, err := newTxnClient(p.addr, p.transactionalID(), p.idx%2 == 1, txnHook{p, p.transactionalID()})
		if err != nil {
			p.book.err("new client", err)
			return
		}
		p.cl = cl
		p.gen++
	}
	fail := func(op string, err error) {
		p.book.err(op, err)
		p.cl.Close()
		p.cl = nil
	}
	ctx, cancel := context.WithTimeout(ctx, txnCrashOpTimeout)
	defer cancel()
	if err := p.cl.BeginTransaction(); err != nil {
		fail("begin", err)
		return
	}
	key := txnKey{p.idx, p.next}
	p.next++
	count := 2 + p.rng.IntN(7)
	spread := 2 + p.rng.IntN(txnCrashPartitions-1)
	first := p.rng.IntN(txnCrashPartitions)
	p.book.begin(key, count)
	var failed atomic.Pointer[error]
	for i := range count {
		rec := &kgo.Record{Topic: txnCrashTopic, Partition: int32((first + i%spread) % txnCrashPartitions),
			Value: txnValue(key, i, count)}
		p.cl.Produce(ctx, rec, func(r *kgo.Record, err error) {
			if err != nil {
				failed.CompareAndSwap(nil, &err)
				return
			}
			p.book.ack(key, i, placed{r.Partition, r.Offset})
			p.trig.acked(key)
		})
	}
	// Flush returns after every promise ran (or when ctx ends).
	if err := p.cl.Flush(ctx); err != nil {
		fail("flush", err)
		return
	}
	if err := failed.Load(); err != nil {
		fail("produce", *err)
		return
	}
	if p.abandon.CompareAndSwap(true, false) {
		p.cl.Close() // the transaction stays open: the next client fences it
		p.cl = nil
		return
	}
	commit := p.rng.IntN(3) > 0
	p.current.Store(&key)
	err := p.cl.EndTransaction(ctx, kgo.TransactionEndTry(commit))
	switch {
	case err == nil && commit:
		p.book.end(key, txnCommitted)
		p.trig.event(killAfterCommit, key, fmt.Sprintf("%s's commit answered", key))
	case err == nil:
		p.book.end(key, txnAborted)
	case commit:
		p.book.end(key, txnUnknown)
	}
	if err != nil {
		fail(fmt.Sprintf("end (commit %v)", commit), err)
		return
	}
	p.ended.Add(1)
}

// txnHook fires killAtEndTxn and killAtInit once its producer's client
// (with transactional ID txnID) wrote an EndTxn or InitProducerId request
// to the broker.
type txnHook struct {
	p     *txnProducer
	txnID string
}

func (h txnHook) OnBrokerWrite(_ kgo.BrokerMetadata, key int16, _ int, _, _ time.Duration, err error) {
	if err != nil {
		return
	}
	switch k := h.p.current.Load(); {
	case key == endTxnKey && k != nil:
		h.p.trig.event(killAtEndTxn, *k, fmt.Sprintf("%s's EndTxn written", *k))
	case key == initProducerIDKey:
		h.p.trig.event(killAtInit, txnKey{h.p.idx, -1}, fmt.Sprintf("%s's InitProducerId written", h.txnID))
	}
}

// leaveOrphanTxn runs a transaction under a transactional ID of its own,
// one acknowledged record in each partition, and closes its client
// without ending it: only the broker's timeout can abort it.
func leaveOrphanTxn(t *testing.T, addr string, book *txnBook) {
	t.Helper()
	cl, err := newTxnClient(addr, "txncrash-orphan", false)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), txnCrashOpTimeout)
	defer cancel()
	if err := cl.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	key := txnKey{txnCrashProducers, 0}
	book.begin(key, txnCrashPartitions)
	for i := range txnCrashPartitions {
		rec := &kgo.Record{Topic: txnCrashTopic, Partition: int32(i), Value: txnValue(key, i, txnCrashPartitions)}
		r, err := cl.ProduceSync(ctx, rec).First()
		if err != nil {
			t.Fatalf("orphan transaction: produce to partition %d: %v", i, err)
		}
		book.ack(key, i, placed{r.Partition, r.Offset})
	}
}

// listEnds returns the topic's end offsets: the last stable offsets when
// committed, else the high watermarks.
func listEnds(ctx context.Context, adm *kadm.Client, committed bool) (map[int32]int64, error) {
	list := adm.ListEndOffsets
	if committed {
		list = adm.ListCommittedOffsets
	}
	res, err := list(ctx, txnCrashTopic)
	if err == nil {
		err = res.Error()
	}
	if err != nil {
		return nil, err
	}
	m := make(map[int32]int64)
	res.Each(func(o kadm.ListedOffset) { m[o.Partition] = o.Offset })
	return m, nil
}

// highWatermarks returns the topic's high watermarks.
func highWatermarks(t *testing.T, addr string) map[int32]int64 {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	hw, err := listEnds(ctx, kadm.NewClient(cl), false)
	if err != nil {
		t.Fatalf("list high watermarks: %v", err)
	}
	return hw
}

// waitStable waits until every partition's last stable offset is its high
// watermark: no transaction is left open.
func waitStable(t *testing.T, addr string, timeout time.Duration) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	start := time.Now()
	var lso, hw map[int32]int64
	waitFor(t, timeout, "the last stable offsets to reach the high watermarks", func() (bool, string) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		var err error
		if lso, err = listEnds(ctx, adm, true); err != nil {
			return false, "list last stable offsets: " + err.Error()
		}
		if hw, err = listEnds(ctx, adm, false); err != nil {
			return false, "list high watermarks: " + err.Error()
		}
		return len(hw) == txnCrashPartitions && maps.Equal(lso, hw),
			fmt.Sprintf("last stable offsets %v, high watermarks %v", lso, hw)
	})
	t.Logf("last stable offsets reached the high watermarks %v %s after the producers stopped",
		hw, time.Since(start).Round(time.Millisecond))
}

// produceSentinels appends a non-transactional record to every partition,
// so that a reader knows it reached the end (a read_committed consumer
// never sees the markers that may end a partition), and returns the high
// watermarks after them.
func produceSentinels(t *testing.T, addr string) map[int32]int64 {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), txnCrashOpTimeout)
	defer cancel()
	ends := make(map[int32]int64)
	for i := range int32(txnCrashPartitions) {
		r, err := cl.ProduceSync(ctx, &kgo.Record{Topic: txnCrashTopic, Partition: i,
			Value: []byte(fmt.Sprintf("end-%d", i))}).First()
		if err != nil {
			t.Fatalf("sentinel to partition %d: %v", i, err)
		}
		ends[i] = r.Offset + 1
	}
	return ends
}

// check checks what the read_committed and read_uncommitted consumers
// read at the end, and what the tailing read_committed consumer saw during
// the run, against the book (see TestTxnCrash). afterCommit are the
// transactions whose commit was answered right before a kill.
func (b *txnBook) check(t *testing.T, committed, all map[int32][]*kgo.Record, tailed map[placed]string, afterCommit []txnKey) {
	t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	var pr problems
	rc := b.index("read_committed", committed, &pr)
	ru := b.index("read_uncommitted", all, &pr)
	st := b.checkTxns(rc, ru, afterCommit, &pr)
	b.checkTailed(tailed, rc, &pr)
	if st.outcomes[txnCommitted] == 0 || st.outcomes[txnAborted] == 0 {
		pr.add("the run committed %d and aborted %d transactions: it needs both", st.outcomes[txnCommitted], st.outcomes[txnAborted])
	}
	var errs []string
	for msg, n := range b.errs {
		errs = append(errs, fmt.Sprintf("%5d× %s", n, msg))
	}
	slices.Sort(errs)
	t.Logf("producer errors (allowed: the broker was killed under them): %s", listOr(errs, "none"))
	if len(pr.list) > 0 {
		t.Errorf("transaction check: %d transactions, %d acknowledged records; problems:\n  %s",
			len(b.txns), st.acked, strings.Join(pr.all(), "\n  "))
		return
	}
	t.Logf("transaction check: %d committed whole (%d of them killed right after the answer), %d aborted and %d open invisible, "+
		"%d unknown (%d whole, %d absent); all %d acknowledged records in place once; the tailing consumer saw %d records, all committed",
		st.outcomes[txnCommitted], len(afterCommit), st.outcomes[txnAborted], st.outcomes[txnOpen],
		st.outcomes[txnUnknown], st.unknownWhole, st.unknownAbsent, st.acked, len(tailed))
}

// problems collects the first problems a check finds and counts the rest.
type problems struct {
	list []string
	more int
}

func (p *problems) add(format string, args ...any) {
	if len(p.list) < 30 {
		p.list = append(p.list, fmt.Sprintf(format, args...))
	} else {
		p.more++
	}
}

func (p *problems) all() []string {
	if p.more > 0 {
		return append(p.list, fmt.Sprintf("... and %d more", p.more))
	}
	return p.list
}

// txnStats counts what checkTxns found.
type txnStats struct {
	outcomes                           [4]int
	unknownWhole, unknownAbsent, acked int
}

// checkTxns checks every transaction of the book against the records read
// at the end at read_committed (rc) and read_uncommitted (ru). b.mu must
// be held.
func (b *txnBook) checkTxns(rc, ru map[txnKey]map[int][]placed, afterCommit []txnKey, pr *problems) txnStats {
	killed := make(map[txnKey]bool)
	for _, k := range afterCommit {
		killed[k] = true
	}
	keys := slices.SortedFunc(maps.Keys(b.txns), func(a, b txnKey) int {
		return cmp.Or(cmp.Compare(a.producer, b.producer), cmp.Compare(a.n, b.n))
	})
	var st txnStats
	for _, key := range keys {
		e := b.txns[key]
		st.outcomes[e.outcome]++
		seen := rc[key]
		what := fmt.Sprintf("%s transaction %s (begun in cycle %d, %d records)", e.outcome, key, e.cycle, e.count)
		if killed[key] {
			what += ", killed right after its commit was answered,"
		}
		switch {
		case (e.outcome == txnOpen || e.outcome == txnAborted) && len(seen) > 0:
			pr.add("read_committed: %s has %d records visible: %v", what, len(seen), seen)
		case e.outcome == txnCommitted && len(seen) < e.count:
			pr.add("read_committed: %s has only %d records visible (missing %v)", what, len(seen), missing(seen, e.count))
		case e.outcome == txnUnknown && len(seen) > 0 && len(seen) < e.count:
			pr.add("read_committed: %s is partly visible: %d records (missing %v)", what, len(seen), missing(seen, e.count))
		case e.outcome == txnUnknown && len(seen) == 0:
			st.unknownAbsent++
		case e.outcome == txnUnknown:
			st.unknownWhole++
		}
		for i, at := range seen {
			if a, ok := e.acked[i]; ok && at[0] != a {
				pr.add("read_committed: record %d of %s acknowledged at %v is at %v", i, what, a, at[0])
			}
		}
		for i, a := range e.acked {
			st.acked++
			switch at := ru[key][i]; {
			case len(at) == 0:
				pr.add("read_uncommitted: acknowledged record %d of %s (at %v) is not in the log", i, what, a)
			case at[0] != a:
				pr.add("read_uncommitted: record %d of %s acknowledged at %v is at %v", i, what, a, at[0])
			}
		}
	}
	return st
}

// checkTailed checks what the tailing read_committed consumer saw against
// the book and the records read at read_committed at the end (rc): only
// records of transactions that ended up committed, where they are in the
// end. b.mu must be held.
func (b *txnBook) checkTailed(tailed map[placed]string, rc map[txnKey]map[int][]placed, pr *problems) {
	for at, v := range tailed {
		if strings.HasPrefix(v, "end-") {
			continue
		}
		key, i, _, ok := parseTxnValue([]byte(v))
		e := b.txns[key]
		switch {
		case !ok || e == nil:
			pr.add("tailing read_committed: %v holds %.40q, of no transaction the producers ran", at, v)
		case e.outcome == txnOpen || e.outcome == txnAborted:
			pr.add("tailing read_committed: saw record %d of %s transaction %s (begun in cycle %d) at %v", i, e.outcome, key, e.cycle, at)
		case len(rc[key][i]) == 0 || rc[key][i][0] != at:
			pr.add("tailing read_committed: saw record %d of %s transaction %s at %v; at the end it is at %v", i, e.outcome, key, at, rc[key][i])
		}
	}
}

// index maps the records a consumer read to their transaction and index
// (where each is stored), reporting records it cannot place and
// duplicates. b.mu must be held.
func (b *txnBook) index(name string, got map[int32][]*kgo.Record, pr *problems) map[txnKey]map[int][]placed {
	m := make(map[txnKey]map[int][]placed)
	for part, rs := range got {
		for _, r := range rs {
			if strings.HasPrefix(string(r.Value), "end-") {
				continue // a sentinel
			}
			key, i, n, ok := parseTxnValue(r.Value)
			e := b.txns[key]
			switch {
			case !ok:
				pr.add("%s: partition %d offset %d holds %.40q, no record of the test", name, part, r.Offset, r.Value)
				continue
			case e == nil || n != e.count || i >= n:
				pr.add("%s: partition %d offset %d holds %.40q, of no transaction the producers ran", name, part, r.Offset, r.Value)
				continue
			}
			if m[key] == nil {
				m[key] = make(map[int][]placed)
			}
			m[key][i] = append(m[key][i], placed{part, r.Offset})
		}
	}
	for key, recs := range m {
		for i, at := range recs {
			if len(at) > 1 {
				pr.add("%s: record %d of transaction %s stored %d times, at %v", name, i, key, len(at), at)
			}
		}
	}
	return m
}

// missing lists the indexes below count that seen lacks.
func missing(seen map[int][]placed, count int) []int {
	var out []int
	for i := range count {
		if len(seen[i]) == 0 {
			out = append(out, i)
		}
	}
	return out
}

// tailer is a read_committed consumer of every partition from offset 0
// that runs through the kills (its client reconnects to the restarted
// broker), recording every record it is handed.
type tailer struct {
	cl   *kgo.Client
	done chan struct{} // closed when run returned
	once sync.Once

	mu sync.Mutex
	// seen maps where each record was read to its value; next is the
	// offset after the last record read, per partition.
	seen map[placed]string
	next map[int32]int64
	// errs counts fetch errors by message (the broker was down).
	errs map[string]int
}

// startTailer starts a tailer on the broker at addr; cleanup stops it.
func startTailer(t *testing.T, addr string) *tailer {
	t.Helper()
	from := make(map[int32]kgo.Offset)
	for i := range int32(txnCrashPartitions) {
		from[i] = kgo.NewOffset().At(0)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{txnCrashTopic: from}),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.FetchMaxWait(100*time.Millisecond),
		kgo.RetryBackoffFn(func(int) time.Duration { return 50 * time.Millisecond }),
		kgo.MetadataMinAge(50*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	tl := &tailer{cl: cl, done: make(chan struct{}), seen: make(map[placed]string),
		next: make(map[int32]int64), errs: make(map[string]int)}
	go tl.run()
	t.Cleanup(tl.stop)
	return tl
}

func (tl *tailer) run() {
	defer close(tl.done)
	for {
		fetches := tl.cl.PollFetches(context.Background())
		if fetches.IsClientClosed() {
			return
		}
		tl.mu.Lock()
		fetches.EachError(func(_ string, _ int32, err error) { tl.errs[err.Error()]++ })
		fetches.EachRecord(func(r *kgo.Record) {
			at := placed{r.Partition, r.Offset}
			if v, ok := tl.seen[at]; ok && v != string(r.Value) {
				// Reported by check through the value kept last.
				tl.errs[fmt.Sprintf("%v read as %.40q, then as %.40q", at, v, r.Value)]++
			}
			tl.seen[at] = string(r.Value)
			tl.next[r.Partition] = max(tl.next[r.Partition], r.Offset+1)
		})
		tl.mu.Unlock()
	}
}

func (tl *tailer) stop() {
	tl.once.Do(tl.cl.Close)
	<-tl.done
}

// drain waits until the tailer has read up to ends (the high watermarks,
// after the sentinels), stops it and returns what it saw.
func (tl *tailer) drain(t *testing.T, ends map[int32]int64) map[placed]string {
	t.Helper()
	waitFor(t, txnCrashKillWait, "the tailing read_committed consumer to reach the sentinels", func() (bool, string) {
		tl.mu.Lock()
		defer tl.mu.Unlock()
		return caughtUp(tl.next, ends), fmt.Sprintf("read up to %v of %v; fetch errors %v", tl.next, ends, tl.errs)
	})
	tl.stop()
	errs := make([]string, 0, len(tl.errs))
	for msg, n := range tl.errs {
		errs = append(errs, fmt.Sprintf("%5d× %s", n, msg))
	}
	slices.Sort(errs)
	t.Logf("the tailing read_committed consumer read %d records; its fetch errors: %s", len(tl.seen), listOr(errs, "none"))
	return tl.seen
}
