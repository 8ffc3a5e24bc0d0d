package txn

// The Coordinator: its configuration, clock, store and marker writer, the
// in-memory map of transactional IDs, Start and Close, and the timers that
// abort timed-out transactions, retry unfinished completions and expire
// idle transactional IDs.

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	iclock "github.com/streamhouse/streamhouse/internal/clock"
	"github.com/streamhouse/streamhouse/log"
	"github.com/streamhouse/streamhouse/meta"
)

// Coordinator defaults (Kafka's broker defaults).
const (
	// DefaultTransactionMaxTimeout is transaction.max.timeout.ms: the
	// largest transaction timeout InitProducerId accepts.
	DefaultTransactionMaxTimeout = 15 * time.Minute
	// DefaultAbortTimedOutInterval is
	// transaction.abort.timed.out.transaction.cleanup.interval.ms: how
	// often timed-out transactions are looked for.
	DefaultAbortTimedOutInterval = 10 * time.Second
	// DefaultTransactionalIDExpiration is transactional.id.expiration.ms:
	// a transactional ID without a running transaction that sees no
	// request for this long is forgotten.
	DefaultTransactionalIDExpiration = 7 * 24 * time.Hour
	// DefaultRemoveExpiredInterval is
	// transaction.remove.expired.transaction.cleanup.interval.ms: how
	// often expired transactional IDs are looked for.
	DefaultRemoveExpiredInterval = time.Hour
	// DefaultRetryBackoff is how long a transaction whose markers or
	// completion failed waits before it is retried.
	DefaultRetryBackoff = time.Second
)

// Config tunes the transaction coordinator. Zero fields take the defaults
// (the Default* constants).
type Config struct {
	// TransactionMaxTimeout caps the timeout InitProducerId may ask for
	// (INVALID_TRANSACTION_TIMEOUT above).
	TransactionMaxTimeout time.Duration
	// AbortTimedOutInterval is how often Ongoing transactions older than
	// their timeout are aborted.
	AbortTimedOutInterval time.Duration
	// TransactionalIDExpiration is how long a transactional ID in Empty,
	// CompleteCommit or CompleteAbort is kept without a state change.
	TransactionalIDExpiration time.Duration
	// RemoveExpiredInterval is how often expired transactional IDs are
	// looked for.
	RemoveExpiredInterval time.Duration
	// RetryBackoff is the wait before a decided transaction whose markers
	// or completion failed is retried.
	RetryBackoff time.Duration
}

// withDefaults fills zero fields.
func (c Config) withDefaults() Config {
	if c.TransactionMaxTimeout <= 0 {
		c.TransactionMaxTimeout = DefaultTransactionMaxTimeout
	}
	if c.AbortTimedOutInterval <= 0 {
		c.AbortTimedOutInterval = DefaultAbortTimedOutInterval
	}
	if c.TransactionalIDExpiration <= 0 {
		c.TransactionalIDExpiration = DefaultTransactionalIDExpiration
	}
	if c.RemoveExpiredInterval <= 0 {
		c.RemoveExpiredInterval = DefaultRemoveExpiredInterval
	}
	if c.RetryBackoff <= 0 {
		c.RetryBackoff = DefaultRetryBackoff
	}
	return c
}

// Clock is the coordinator's time source (internal/clock): the current time and
// one-shot timers. A nil Clock means the real clock.
type Clock = iclock.Clock

// Timer is a timer started by Clock.AfterFunc.
type Timer = iclock.Timer

// Store is the part of meta.Store the coordinator uses: producer IDs, the
// meta.Txn rows and the pending transactional offsets.
type Store interface {
	AllocateProducerID(ctx context.Context, transactionalID string) (meta.ProducerID, error)
	PutTxn(ctx context.Context, t meta.Txn) error
	ListTxns(ctx context.Context) ([]meta.Txn, error)
	DeleteTxn(ctx context.Context, transactionalID string) error
	AddTxnOffsets(ctx context.Context, offsets []meta.TxnOffset) error
	PendingTxnOffsets(ctx context.Context, group string) ([]meta.TxnOffset, error)
	CompleteTxn(ctx context.Context, t meta.Txn, commit bool) error
}

// Markers writes transaction markers to partition logs (log.Manager).
type Markers interface {
	// WriteTxnMarkers appends each marker and returns once all are
	// durable; markers of partitions that no longer exist are skipped and
	// writing a marker twice is harmless.
	WriteTxnMarkers(ctx context.Context, markers []log.TxnMarker) error
}

// Coordinator owns every transactional ID of this broker.
type Coordinator struct {
	cfg     Config
	clock   Clock
	store   Store
	markers Markers
	logger  *slog.Logger
	metrics *metrics
	ctx     context.Context // cancelled by Close; used by timer-driven I/O
	cancel  context.CancelFunc

	// mu guards the fields below. An entry's mu may be held while taking
	// it, never the other way round (LOCKS.md).
	mu     sync.Mutex
	closed bool
	txns   map[string]*entry
	// abortTimer, expireTimer and retryTimer are the armed timers (nil
	// when not armed).
	abortTimer, expireTimer, retryTimer Timer

	// callbacks counts timer callbacks running; Close waits for them.
	callbacks sync.WaitGroup
}

// entry is one transactional ID.
type entry struct {
	// id is the transactional ID; it never changes, and may be read
	// without mu.
	id string
	// mu serializes the ID's operations and guards the fields below. It
	// is held across the store and marker I/O of an operation, so an
	// operation sees the state the previous one recorded.
	mu sync.Mutex
	// t is the state as stored. Operations build the next state from a
	// copy, store it, and only then assign it (set).
	t meta.Txn
	// stored is false while InitProducerId creates the ID: other
	// operations treat the entry as absent.
	stored bool
	// gone is set when the entry left the map (expired, or its creation
	// failed); whoever locked it looks it up again.
	gone bool
	// parts is t.Partitions as a set, for CheckProduce.
	parts map[meta.TopicPartition]struct{}
}

// New returns a coordinator over store and markers, its timers on clock
// (nil: the real clock), its metrics registered with reg (nil: not
// registered). Start loads the stored state and arms the timers; Close
// stops them.
func New(cfg Config, clock Clock, store Store, markers Markers, logger *slog.Logger, reg prometheus.Registerer) *Coordinator {
	if clock == nil {
		clock = iclock.Real()
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Coordinator{cfg: cfg.withDefaults(), clock: clock, store: store, markers: markers,
		logger: logger.With("component", "txn"), metrics: newMetrics(reg), ctx: ctx, cancel: cancel,
		txns: make(map[string]*entry)}
}

// Config returns the coordinator's configuration, defaults filled in.
func (c *Coordinator) Config() Config { return c.cfg }

// Now is the coordinator clock's time.
func (c *Coordinator) Now() time.Time { return c.clock.Now() }

// Start loads every stored transactional ID and completes the
// transactions found decided (PrepareCommit, PrepareAbort,
// PrepareEpochFence): their markers are written again and their
// completion recorded before Start returns, so a transaction whose EndTxn
// was answered is complete once the broker serves again. One that cannot
// be completed now (its markers fail) is logged and retried in the
// background; its transactional ID answers CONCURRENT_TRANSACTIONS
// meanwhile. Ongoing transactions keep their start time and time out as
// usual. Start then arms the timers. It fails only if the store cannot be
// read.
func (c *Coordinator) Start(ctx context.Context) error {
	txns, err := c.store.ListTxns(ctx)
	if err != nil {
		return fmt.Errorf("kafka/txn: load transactions: %w", err)
	}
	var pending []*entry
	c.mu.Lock()
	for _, t := range txns {
		e := &entry{id: t.TransactionalID, stored: true}
		e.setTxn(t)
		c.txns[t.TransactionalID] = e
		if open(t.State) {
			c.metrics.open.Inc()
		}
		if decided(t.State) {
			pending = append(pending, e)
		}
	}
	c.mu.Unlock()
	failed := false
	for _, e := range pending {
		e.mu.Lock()
		if err := c.completeLocked(ctx, e); err != nil {
			c.logger.Warn("completing a decided transaction failed; will retry",
				"transactional_id", e.t.TransactionalID, "state", e.t.State.String(), "err", err)
			failed = true
		}
		e.mu.Unlock()
	}
	c.logger.Info("transaction coordinator loaded", "transactional_ids", len(txns), "completed", len(pending))
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil
	}
	c.armAbortLocked()
	c.armExpireLocked()
	if failed {
		c.armRetryLocked()
	}
	return nil
}

// Close stops the timers and waits for running timer callbacks.
// Operations afterwards answer ErrNotAvailable.
func (c *Coordinator) Close() {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		c.callbacks.Wait()
		return
	}
	c.closed = true
	for _, t := range []Timer{c.abortTimer, c.expireTimer, c.retryTimer} {
		if t != nil {
			t.Stop()
		}
	}
	c.abortTimer, c.expireTimer, c.retryTimer = nil, nil, nil
	c.mu.Unlock()
	c.cancel()
	c.callbacks.Wait()
}

// setTxn assigns the stored state t. The entry lock must be held (or the
// entry not yet shared).
func (e *entry) setTxn(t meta.Txn) {
	e.t = t
	clear(e.parts)
	if len(t.Partitions) > 0 && e.parts == nil {
		e.parts = make(map[meta.TopicPartition]struct{}, len(t.Partitions))
	}
	for _, tp := range t.Partitions {
		e.parts[tp] = struct{}{}
	}
}

// set records t as e's state after it was stored, keeping the open
// transactions gauge in step. e.mu must be held.
func (c *Coordinator) set(e *entry, t meta.Txn) {
	was, is := open(e.t.State) && e.stored, open(t.State)
	switch {
	case is && !was:
		c.metrics.open.Inc()
	case was && !is:
		c.metrics.open.Dec()
	}
	e.setTxn(t)
	e.stored = true
}

// open reports whether a state holds a running transaction.
func open(s meta.TxnState) bool {
	return s == meta.TxnOngoing || decided(s)
}

// decided reports whether a state is a recorded but unfinished decision.
func decided(s meta.TxnState) bool {
	return s == meta.TxnPrepareCommit || s == meta.TxnPrepareAbort || s == meta.TxnPrepareEpochFence
}

// lockEntry returns the named entry locked. With create, a missing ID
// gets a new, not yet stored entry; without, nil is returned for a
// missing or not yet stored one.
func (c *Coordinator) lockEntry(id string, create bool) (*entry, error) {
	for {
		c.mu.Lock()
		if c.closed {
			c.mu.Unlock()
			return nil, fmt.Errorf("%w: closed", ErrNotAvailable)
		}
		e := c.txns[id]
		if e == nil {
			if !create {
				c.mu.Unlock()
				return nil, nil
			}
			e = &entry{id: id, t: meta.Txn{TransactionalID: id}}
			c.txns[id] = e
		}
		c.mu.Unlock()
		e.mu.Lock()
		switch {
		case e.gone:
			e.mu.Unlock()
			continue
		case !e.stored && !create:
			e.mu.Unlock()
			return nil, nil
		}
		return e, nil
	}
}

// forget removes e from the map. e.mu must be held.
func (c *Coordinator) forget(e *entry) {
	e.gone = true
	c.mu.Lock()
	if c.txns[e.id] == e {
		delete(c.txns, e.id)
	}
	c.mu.Unlock()
	if e.stored && open(e.t.State) {
		c.metrics.open.Dec()
	}
}

// entries returns the entries in the map, sorted by transactional ID.
func (c *Coordinator) entries() []*entry {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]*entry, 0, len(c.txns))
	for _, e := range c.txns {
		out = append(out, e)
	}
	slices.SortFunc(out, func(a, b *entry) int { return strings.Compare(a.id, b.id) })
	return out
}

// storeErr wraps a store error: the operation failed and changed nothing,
// and the client should retry (COORDINATOR_NOT_AVAILABLE).
func storeErr(what string, err error) error {
	return fmt.Errorf("%w: %s: %w", ErrNotAvailable, what, err)
}

// nowMs is the clock's time at the millisecond precision the store keeps.
func (c *Coordinator) nowMs() time.Time {
	return time.UnixMilli(c.clock.Now().UnixMilli())
}

// enterCallback registers a running timer callback; false once closed.
func (c *Coordinator) enterCallback() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return false
	}
	c.callbacks.Add(1)
	return true
}

// armAbortLocked schedules the next sweep for timed-out transactions,
// which also retries unfinished completions.
func (c *Coordinator) armAbortLocked() {
	c.abortTimer = c.clock.AfterFunc(c.cfg.AbortTimedOutInterval, func() {
		if !c.enterCallback() {
			return
		}
		defer c.callbacks.Done()
		c.retryDecided(c.ctx)
		c.abortTimedOut(c.ctx)
		c.mu.Lock()
		if !c.closed {
			c.armAbortLocked()
		}
		c.mu.Unlock()
	})
}

// armExpireLocked schedules the next sweep for expired transactional IDs.
func (c *Coordinator) armExpireLocked() {
	c.expireTimer = c.clock.AfterFunc(c.cfg.RemoveExpiredInterval, func() {
		if !c.enterCallback() {
			return
		}
		defer c.callbacks.Done()
		c.expireIdle(c.ctx)
		c.mu.Lock()
		if !c.closed {
			c.armExpireLocked()
		}
		c.mu.Unlock()
	})
}

// armRetryLocked schedules a retry of unfinished completions after
// RetryBackoff, unless one is already scheduled.
func (c *Coordinator) armRetryLocked() {
	if c.closed || c.retryTimer != nil {
		return
	}
	c.retryTimer = c.clock.AfterFunc(c.cfg.RetryBackoff, func() {
		if !c.enterCallback() {
			return
		}
		defer c.callbacks.Done()
		c.mu.Lock()
		c.retryTimer = nil
		c.mu.Unlock()
		if c.retryDecided(c.ctx) {
			c.mu.Lock()
			c.armRetryLocked()
			c.mu.Unlock()
		}
	})
}

// scheduleRetry arms the retry timer (a completion failed).
func (c *Coordinator) scheduleRetry() {
	c.mu.Lock()
	c.armRetryLocked()
	c.mu.Unlock()
}

// retryDecided completes every decided transaction; it reports whether
// one still failed.
func (c *Coordinator) retryDecided(ctx context.Context) (failed bool) {
	for _, e := range c.entries() {
		e.mu.Lock()
		if !e.gone && e.stored && decided(e.t.State) {
			if err := c.completeLocked(ctx, e); err != nil {
				c.logger.Warn("completing a decided transaction failed; will retry",
					"transactional_id", e.t.TransactionalID, "state", e.t.State.String(), "err", err)
				failed = true
			}
		}
		e.mu.Unlock()
	}
	return failed
}

// abortTimedOut aborts every Ongoing transaction older than its timeout:
// the epoch is bumped, which fences the producer, and the abort markers
// carry the new epoch.
func (c *Coordinator) abortTimedOut(ctx context.Context) {
	for _, e := range c.entries() {
		e.mu.Lock()
		now := c.clock.Now()
		if !e.gone && e.stored && e.t.State == meta.TxnOngoing && timedOut(e.t, now) {
			c.logger.Info("aborting timed-out transaction", "transactional_id", e.t.TransactionalID,
				"producer_id", e.t.ProducerID, "epoch", e.t.ProducerEpoch, "timeout_ms", e.t.TimeoutMs,
				"started_at", e.t.StartedAt)
			if err := c.fenceLocked(ctx, e); err != nil {
				c.logger.Warn("aborting a timed-out transaction failed", "transactional_id", e.t.TransactionalID, "err", err)
			} else {
				c.metrics.timeouts.Inc()
			}
		}
		e.mu.Unlock()
	}
}

// timedOut reports whether an Ongoing transaction outlived its timeout.
func timedOut(t meta.Txn, now time.Time) bool {
	return now.Sub(t.StartedAt) > time.Duration(t.TimeoutMs)*time.Millisecond
}

// expireIdle forgets every transactional ID without a running transaction
// whose state has not changed for TransactionalIDExpiration.
func (c *Coordinator) expireIdle(ctx context.Context) {
	for _, e := range c.entries() {
		e.mu.Lock()
		if !e.gone && e.stored && !open(e.t.State) &&
			c.clock.Now().Sub(e.t.UpdatedAt) >= c.cfg.TransactionalIDExpiration {
			if err := c.store.DeleteTxn(ctx, e.t.TransactionalID); err != nil {
				c.logger.Warn("expiring a transactional ID failed", "transactional_id", e.t.TransactionalID, "err", err)
			} else {
				c.logger.Info("transactional ID expired", "transactional_id", e.t.TransactionalID,
					"producer_id", e.t.ProducerID, "updated_at", e.t.UpdatedAt)
				c.forget(e)
			}
		}
		e.mu.Unlock()
	}
}
