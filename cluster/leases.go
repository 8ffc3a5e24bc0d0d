package cluster

import (
	"context"
	"errors"
	"log/slog"
	"maps"
	"slices"
	"strconv"
	"sync"
	"time"

	iclock "github.com/streamhouse/streamhouse/internal/clock"
	"github.com/streamhouse/streamhouse/meta"
)

// LeasesConfig configures Leases.
type LeasesConfig struct {
	// TTL is a lease's lifetime: a broker that stops renewing loses its
	// leases TTL after its last renewal (issue 14's --lease-timeout).
	// Default DefaultTTL.
	TTL time.Duration
	// RenewInterval is how often a round runs: renew what is held,
	// release what placement moved away, acquire what it gave this
	// broker. Default TTL/3.
	RenewInterval time.Duration
}

// withDefaults fills zero fields.
func (c LeasesConfig) withDefaults() LeasesConfig {
	if c.TTL <= 0 {
		c.TTL = DefaultTTL
	}
	if c.RenewInterval <= 0 {
		c.RenewInterval = c.TTL / 3
	}
	return c
}

// Members is what Leases needs of the broker registry (*Registry): this
// broker's ID, the live brokers' IDs, and whether this broker was fenced.
type Members interface {
	ID() int32
	LiveIDs() []int32
	Fenced() <-chan struct{}
}

// KeySource returns every lease to place: the partitions of all topics
// (meta.PartitionLease) and the coordinator shards (CoordinatorKeys). An
// error keeps the held leases as they are for this round.
type KeySource func(ctx context.Context) ([]meta.LeaseKey, error)

// Event tells the owner of Leases that this broker now leads Key at Epoch
// (Leading), or no longer does (!Leading; Epoch is the tenure that ended).
type Event struct {
	Key     meta.LeaseKey
	Epoch   int32
	Leading bool
}

// String returns e for logs and test failures, e.g. "partition:ID/0
// epoch 3 leading".
func (e Event) String() string {
	what := "lost"
	if e.Leading {
		what = "leading"
	}
	return e.Key.String() + " epoch " + strconv.FormatInt(int64(e.Epoch), 10) + " " + what
}

// Leases acquires, renews and releases this broker's leases, round by
// round on its clock. Each round:
//
//  1. places every key of the KeySource on the live brokers (Assign);
//  2. for each held lease: if placement moved it away, tells the owner it
//     is lost and then releases it (the new holder acquires it at its next
//     round); otherwise renews it. A renewal that finds the lease taken
//     over (meta.ErrLeaseLost) loses it; one that fails otherwise (store
//     unreachable) keeps it until too little of its local deadline is
//     left to try again, then loses it;
//  3. acquires each key placed on this broker that it does not hold and
//     that no one else holds (a held one is retried next round, once
//     released or expired);
//  4. lists the leases, for Leader.
//
// Events go to notify in order, from the round's goroutine, one at a time;
// "lost" always comes before the release, so the owner stops serving
// before another broker may start. The local deadline of a lease is
// measured from just before the acquire or renew was sent, so it ends
// before the store's (clock rate drift aside); it is advisory: the fence
// in meta is what keeps a fenced broker from acknowledging writes.
//
// While this broker is not among the live brokers (its own registration
// lapsed) it keeps renewing what it holds but acquires nothing; once
// fenced (Members.Fenced) it drops everything.
type Leases struct {
	cfg     LeasesConfig
	store   Store
	members Members
	keys    KeySource
	clock   Clock
	logger  *slog.Logger
	notify  func(Event)
	loop    *loop

	// mu guards the fields below. Rounds run one at a time; mu is for
	// the readers (Held, Leader) and Close.
	mu      sync.Mutex
	held    map[meta.LeaseKey]heldLease
	leaders map[meta.LeaseKey]meta.Lease // at the last listing
}

// heldLease is a lease this broker holds.
type heldLease struct {
	epoch    int32
	deadline time.Time // local: when the lease may have ended
}

// NewLeases returns a Leases over store for the broker members describes,
// placing the keys of keys, on clock (nil: the real clock), telling
// notify (nil: no one) what it gains and loses. Start runs the first
// round; Close releases.
func NewLeases(cfg LeasesConfig, store Store, members Members, keys KeySource, clock Clock,
	logger *slog.Logger, notify func(Event)) *Leases {
	if clock == nil {
		clock = iclock.Real()
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if notify == nil {
		notify = func(Event) {}
	}
	l := &Leases{cfg: cfg.withDefaults(), store: store, members: members, keys: keys, clock: clock,
		logger: logger.With("component", "cluster"), notify: notify,
		held: make(map[meta.LeaseKey]heldLease), leaders: make(map[meta.LeaseKey]meta.Lease)}
	l.loop = newLoop(clock, l.cfg.RenewInterval, l.round)
	return l
}

// Start runs the first round, in the caller's goroutine, and arms the
// next.
func (l *Leases) Start() { l.loop.fire() }

// Held returns the leases this broker holds, with their epochs.
func (l *Leases) Held() map[meta.LeaseKey]int32 {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make(map[meta.LeaseKey]int32, len(l.held))
	for k, h := range l.held {
		out[k] = h.epoch
	}
	return out
}

// Leader returns who holds key, as of this broker's last round: ok is
// false if no live lease was seen.
func (l *Leases) Leader(key meta.LeaseKey) (broker, epoch int32, ok bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if h, mine := l.held[key]; mine {
		return l.members.ID(), h.epoch, true
	}
	le, found := l.leaders[key]
	if !found || !le.Live {
		return meta.NoHolder, 0, false
	}
	return le.Holder, le.Epoch, true
}

// round is one round; see the type comment.
func (l *Leases) round(ctx context.Context) {
	select {
	case <-l.members.Fenced():
		l.dropAll("broker fenced")
		return
	default:
	}
	me := l.members.ID()
	live := l.members.LiveIDs()
	keys, err := l.keys(ctx)
	if err != nil {
		l.logger.Warn("cluster: listing the leases to place failed", "err", err)
	}
	keysOK := err == nil
	amLive := slices.Contains(live, me)
	assign := Assign(keys, live)
	for _, key := range l.heldKeys() {
		if keysOK && amLive {
			if owner, ok := assign[key]; !ok || owner != me {
				l.release(ctx, key)
				continue
			}
		}
		l.renew(ctx, key)
	}
	if amLive && keysOK {
		slices.SortFunc(keys, compareKeys)
		for _, key := range keys {
			if assign[key] == me && !l.holds(key) {
				l.acquire(ctx, key, me)
			}
		}
	}
	l.listLeaders(ctx)
}

// heldKeys returns the held keys, sorted.
func (l *Leases) heldKeys() []meta.LeaseKey {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.SortedFunc(maps.Keys(l.held), compareKeys)
}

// holds reports whether key is held.
func (l *Leases) holds(key meta.LeaseKey) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	_, ok := l.held[key]
	return ok
}

// lose forgets key and tells the owner; it returns the tenure that ended.
func (l *Leases) lose(key meta.LeaseKey, why string) (heldLease, bool) {
	l.mu.Lock()
	h, ok := l.held[key]
	delete(l.held, key)
	l.mu.Unlock()
	if ok {
		l.logger.Info("cluster: lease lost", "lease", key.String(), "epoch", h.epoch, "why", why)
		l.notify(Event{Key: key, Epoch: h.epoch})
	}
	return h, ok
}

// release gives up key: lost first, then released in the store.
func (l *Leases) release(ctx context.Context, key meta.LeaseKey) {
	h, ok := l.lose(key, "placed on another broker")
	if !ok {
		return
	}
	err := l.store.ReleaseLease(ctx, key, l.members.ID(), h.epoch)
	if err != nil && !errors.Is(err, meta.ErrLeaseLost) {
		// It expires by itself.
		l.logger.Warn("cluster: release lease failed", "lease", key.String(), "err", err)
	}
}

// renew renews a held lease; see the type comment for failures.
func (l *Leases) renew(ctx context.Context, key meta.LeaseKey) {
	l.mu.Lock()
	h := l.held[key]
	l.mu.Unlock()
	start := l.clock.Now()
	_, err := l.store.RenewLease(ctx, key, l.members.ID(), h.epoch, l.cfg.TTL)
	switch {
	case err == nil:
		l.mu.Lock()
		if cur, ok := l.held[key]; ok && cur.epoch == h.epoch {
			l.held[key] = heldLease{epoch: h.epoch, deadline: start.Add(l.cfg.TTL)}
		}
		l.mu.Unlock()
	case errors.Is(err, meta.ErrLeaseLost):
		l.lose(key, "taken over")
	default:
		l.logger.Warn("cluster: renew lease failed", "lease", key.String(), "err", err)
		if !l.clock.Now().Add(l.cfg.RenewInterval).Before(h.deadline) {
			l.lose(key, "could not renew before the lease ends")
		}
	}
}

// acquire tries to acquire key for me.
func (l *Leases) acquire(ctx context.Context, key meta.LeaseKey, me int32) {
	start := l.clock.Now()
	le, err := l.store.AcquireLease(ctx, key, me, l.cfg.TTL)
	switch {
	case err == nil:
		l.mu.Lock()
		l.held[key] = heldLease{epoch: le.Epoch, deadline: start.Add(l.cfg.TTL)}
		l.mu.Unlock()
		l.logger.Info("cluster: lease acquired", "lease", key.String(), "epoch", le.Epoch)
		l.notify(Event{Key: key, Epoch: le.Epoch, Leading: true})
	case errors.Is(err, meta.ErrLeaseHeld):
		// Released or expired by a later round.
	default:
		l.logger.Warn("cluster: acquire lease failed", "lease", key.String(), "err", err)
	}
}

// listLeaders refreshes the leases Leader answers from.
func (l *Leases) listLeaders(ctx context.Context) {
	all, err := l.store.ListLeases(ctx, "")
	if err != nil {
		l.logger.Warn("cluster: list leases failed", "err", err)
		return
	}
	leaders := make(map[meta.LeaseKey]meta.Lease, len(all))
	for _, le := range all {
		leaders[le.LeaseKey] = le
	}
	l.mu.Lock()
	l.leaders = leaders
	l.mu.Unlock()
}

// dropAll loses every held lease without releasing it.
func (l *Leases) dropAll(why string) {
	for _, key := range l.heldKeys() {
		l.lose(key, why)
	}
}

// Close stops the rounds, waits for a running one, then tells the owner
// every held lease is lost and releases them within ctx, so other brokers
// take them over at once. With ctx already done it releases nothing and
// the leases expire after TTL, as after a crash.
func (l *Leases) Close(ctx context.Context) {
	l.loop.stop()
	me := l.members.ID()
	for _, key := range l.heldKeys() {
		h, _ := l.lose(key, "closing")
		if ctx.Err() != nil {
			continue
		}
		if err := l.store.ReleaseLease(ctx, key, me, h.epoch); err != nil && !errors.Is(err, meta.ErrLeaseLost) {
			l.logger.Warn("cluster: release lease failed", "lease", key.String(), "err", err)
		}
	}
}
