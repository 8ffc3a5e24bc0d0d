package groups

// The group coordinator: classic consumer groups (JoinGroup, SyncGroup,
// Heartbeat, LeaveGroup), KIP-848 consumer groups (ConsumerGroupHeartbeat;
// consumer.go) and committed offsets for one broker, which
// coordinates every group.
//
// Group state lives in memory (group.go holds the state machine);
// committed offsets live in meta, the same rows the gRPC front reads, so a
// group that has committed offsets survives a restart, in the Empty state.
// Everything time-driven (session and rebalance timeouts,
// group.initial.rebalance.delay.ms, the offset-expiry sweep) runs on timers
// from the Clock given to New, so tests drive it with a fake clock.
//
// Locks: Coordinator.mu (the group map) is taken before group.mu, never
// the other way round. A group's timers run their callbacks with group.mu
// held. JoinGroup and SyncGroup answers that must wait for a rebalance are
// delivered through reply callbacks, called exactly once, with group.mu
// held: they must not block (package kafka's handlers send into a
// one-slot channel).

import (
	"context"
	"errors"
	"log/slog"
	"sort"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/twmb/franz-go/pkg/kerr"

	iclock "github.com/streamhouse/streamhouse/internal/clock"
	"github.com/streamhouse/streamhouse/meta"
)

// ErrClosed is returned once the coordinator stopped; clients get
// COORDINATOR_NOT_AVAILABLE and retry elsewhere (or later). Its text
// reaches clients (DeleteGroups' ErrorMessage), so it keeps the words it
// had in package kafka.
var ErrClosed = errors.New("kafka: group coordinator closed")

// Clock is the group coordinator's time source (internal/clock): the current time and
// one-shot timers. A nil Clock means the real clock.
type Clock = iclock.Clock

// Timer is a timer started by Clock.AfterFunc.
type Timer = iclock.Timer

// Coordinator defaults (Kafka's broker defaults).
const (
	// DefaultInitialRebalanceDelay is group.initial.rebalance.delay.ms.
	DefaultInitialRebalanceDelay = 3 * time.Second
	// DefaultMinSessionTimeout is group.min.session.timeout.ms.
	DefaultMinSessionTimeout = 6 * time.Second
	// DefaultMaxSessionTimeout is group.max.session.timeout.ms.
	DefaultMaxSessionTimeout = 30 * time.Minute
	// DefaultOffsetsRetention is offsets.retention.minutes (7 days).
	DefaultOffsetsRetention = 7 * 24 * time.Hour
	// DefaultOffsetsRetentionCheckInterval is
	// offsets.retention.check.interval.ms.
	DefaultOffsetsRetentionCheckInterval = 10 * time.Minute
	// DefaultOffsetMetadataMaxBytes is offset.metadata.max.bytes.
	DefaultOffsetMetadataMaxBytes = 4096
	// DefaultConsumerSessionTimeout is group.consumer.session.timeout.ms
	// (KIP-848 consumer groups).
	DefaultConsumerSessionTimeout = 45 * time.Second
	// DefaultConsumerHeartbeatInterval is
	// group.consumer.heartbeat.interval.ms.
	DefaultConsumerHeartbeatInterval = 5 * time.Second
)

// Config tunes the group coordinator. Zero fields take Kafka's
// defaults (the Default* constants).
type Config struct {
	// InitialRebalanceDelay is group.initial.rebalance.delay.ms: the first
	// rebalance of an empty group waits this long (extended while members
	// keep arriving, up to the rebalance timeout). Negative: no delay.
	InitialRebalanceDelay time.Duration
	// MinSessionTimeout and MaxSessionTimeout bound the session timeout a
	// JoinGroup may ask for (INVALID_SESSION_TIMEOUT outside).
	MinSessionTimeout time.Duration
	MaxSessionTimeout time.Duration
	// OffsetsRetention is offsets.retention.minutes: the offsets of a
	// group without members expire this long after the later of their
	// commit and the group becoming empty.
	OffsetsRetention time.Duration
	// OffsetsRetentionCheckInterval is how often expired offsets are
	// looked for.
	OffsetsRetentionCheckInterval time.Duration
	// OffsetMetadataMaxBytes caps a committed offset's metadata
	// (OFFSET_METADATA_TOO_LARGE above).
	OffsetMetadataMaxBytes int
	// ConsumerSessionTimeout is group.consumer.session.timeout.ms: a
	// KIP-848 member that sends no heartbeat for this long is removed.
	ConsumerSessionTimeout time.Duration
	// ConsumerHeartbeatInterval is group.consumer.heartbeat.interval.ms,
	// the interval KIP-848 members are told to heartbeat at.
	ConsumerHeartbeatInterval time.Duration
}

// withDefaults fills zero fields.
func (c Config) withDefaults() Config {
	if c.InitialRebalanceDelay == 0 {
		c.InitialRebalanceDelay = DefaultInitialRebalanceDelay
	}
	if c.InitialRebalanceDelay < 0 {
		c.InitialRebalanceDelay = 0
	}
	if c.MinSessionTimeout <= 0 {
		c.MinSessionTimeout = DefaultMinSessionTimeout
	}
	if c.MaxSessionTimeout <= 0 {
		c.MaxSessionTimeout = DefaultMaxSessionTimeout
	}
	if c.OffsetsRetention <= 0 {
		c.OffsetsRetention = DefaultOffsetsRetention
	}
	if c.OffsetsRetentionCheckInterval <= 0 {
		c.OffsetsRetentionCheckInterval = DefaultOffsetsRetentionCheckInterval
	}
	if c.OffsetMetadataMaxBytes <= 0 {
		c.OffsetMetadataMaxBytes = DefaultOffsetMetadataMaxBytes
	}
	if c.ConsumerSessionTimeout <= 0 {
		c.ConsumerSessionTimeout = DefaultConsumerSessionTimeout
	}
	if c.ConsumerHeartbeatInterval <= 0 {
		c.ConsumerHeartbeatInterval = DefaultConsumerHeartbeatInterval
	}
	return c
}

// Coordinator owns every group of this broker.
type Coordinator struct {
	cfg    Config
	clock  Clock
	meta   meta.Store
	logger *slog.Logger
	ctx    context.Context // cancelled by Close; used by timer-driven meta I/O
	cancel context.CancelFunc
	// metaCode maps a meta error to a Kafka error code (New's errorCode).
	metaCode func(error) int16

	// mu guards the fields below. Taken before any group.mu.
	mu     sync.Mutex
	closed bool
	groups map[string]*group
	sweep  Timer // the offset-expiry timer

	// callbacks counts timer callbacks running; Close waits for them.
	callbacks sync.WaitGroup
}

// New starts a coordinator over store, whose committed offsets it owns,
// with its timers on clock (nil: the real clock). errorCode maps the
// errors of store to Kafka error codes (package kafka passes its one
// mapping; nil maps every error to UNKNOWN_SERVER_ERROR). Close stops it.
func New(cfg Config, clock Clock, store meta.Store, logger *slog.Logger, errorCode func(error) int16) *Coordinator {
	if clock == nil {
		clock = iclock.Real()
	}
	if errorCode == nil {
		errorCode = func(error) int16 { return kerr.UnknownServerError.Code }
	}
	ctx, cancel := context.WithCancel(context.Background())
	c := &Coordinator{cfg: cfg.withDefaults(), clock: clock, meta: store, metaCode: errorCode,
		logger: logger.With("component", "groups"), ctx: ctx, cancel: cancel,
		groups: make(map[string]*group)}
	c.mu.Lock()
	c.armSweepLocked()
	c.mu.Unlock()
	return c
}

// Now is the coordinator clock's time (OffsetCommit stamps commits with
// it).
func (c *Coordinator) Now() time.Time { return c.clock.Now() }

// Config returns the coordinator's configuration, defaults filled in.
func (c *Coordinator) Config() Config { return c.cfg }

// Close stops every timer, answers every waiting JoinGroup or SyncGroup
// with COORDINATOR_NOT_AVAILABLE and waits for running timer callbacks.
func (c *Coordinator) Close() {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		c.callbacks.Wait()
		return
	}
	c.closed = true
	if c.sweep != nil {
		c.sweep.Stop()
	}
	groups := make([]*group, 0, len(c.groups))
	for _, g := range c.groups {
		groups = append(groups, g)
	}
	c.mu.Unlock()
	c.cancel()
	for _, g := range groups {
		g.mu.Lock()
		g.shutdownLocked()
		g.mu.Unlock()
	}
	c.callbacks.Wait()
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

// gtimer is one re-armable timer slot of a group or member. Its callback
// runs with the group locked; a callback from an earlier arming that lost
// the race with stop or a new arm sees a changed seq and does nothing.
type gtimer struct {
	t   Timer
	seq uint64
}

// stop disarms the slot. The group lock must be held.
func (t *gtimer) stop() {
	t.seq++
	if t.t != nil {
		t.t.Stop()
		t.t = nil
	}
}

// armLocked (re)arms slot t of group g to run fn after d.
func (c *Coordinator) armLocked(g *group, t *gtimer, d time.Duration, fn func()) {
	t.stop()
	seq := t.seq
	t.t = c.clock.AfterFunc(d, func() {
		if !c.enterCallback() {
			return
		}
		defer c.callbacks.Done()
		g.mu.Lock()
		defer g.mu.Unlock()
		if t.seq != seq || g.state == stateDead {
			return
		}
		t.t = nil
		fn()
	})
}

// groupLookup says what lockGroup does with a group it does not hold.
type groupLookup int

const (
	lookupMemory groupLookup = iota // only groups in memory
	lookupStored                    // also groups with offsets in meta (loaded as Empty)
	lookupCreate                    // create an Empty group
)

// lockGroup returns the named group locked, or nil if it does not exist
// (as mode allows). Dead groups are dropped from the map and not returned.
func (c *Coordinator) lockGroup(ctx context.Context, name string, mode groupLookup) (*group, error) {
	for {
		c.mu.Lock()
		if c.closed {
			c.mu.Unlock()
			return nil, ErrClosed
		}
		g := c.groups[name]
		if g == nil && mode == lookupCreate {
			g = c.newGroupLocked(name, c.clock.Now())
		}
		c.mu.Unlock()
		if g == nil && mode == lookupStored {
			stored, err := c.meta.FetchOffsets(ctx, name)
			if err != nil {
				return nil, err
			}
			if len(stored) == 0 {
				return nil, nil
			}
			c.mu.Lock()
			if g = c.groups[name]; g == nil {
				// When it became empty is unknown: its offsets
				// expire by their commit times.
				g = c.newGroupLocked(name, time.Time{})
			}
			c.mu.Unlock()
		}
		if g == nil {
			return nil, nil
		}
		g.mu.Lock()
		if g.state != stateDead {
			return g, nil
		}
		g.mu.Unlock()
		c.forget(g)
	}
}

// forget removes a dead group from the map (if it is still there).
func (c *Coordinator) forget(g *group) {
	c.mu.Lock()
	if c.groups[g.name] == g {
		delete(c.groups, g.name)
	}
	c.mu.Unlock()
}

// newGroupLocked adds an Empty group, empty since since.
func (c *Coordinator) newGroupLocked(name string, since time.Time) *group {
	g := &group{c: c, name: name, state: stateEmpty, stateSince: since,
		members: make(map[string]*member), pending: make(map[string]*gtimer),
		static: make(map[string]string)}
	c.groups[name] = g
	return g
}

// groupNames returns every group in memory or with offsets in meta,
// sorted.
func (c *Coordinator) groupNames(ctx context.Context) ([]string, error) {
	stored, err := c.meta.ListGroups(ctx)
	if err != nil {
		return nil, err
	}
	seen := make(map[string]bool, len(stored))
	for _, n := range stored {
		seen[n] = true
	}
	c.mu.Lock()
	for n := range c.groups {
		if !seen[n] {
			seen[n] = true
			stored = append(stored, n)
		}
	}
	c.mu.Unlock()
	sort.Strings(stored)
	return stored, nil
}

// newMemberID is Kafka's member ID: the client ID (or, for static members,
// the instance ID), a dash and a random UUID.
func newMemberID(prefix string) string {
	return prefix + "-" + uuid.NewString()
}

// armSweepLocked schedules the next offset-expiry sweep.
func (c *Coordinator) armSweepLocked() {
	c.sweep = c.clock.AfterFunc(c.cfg.OffsetsRetentionCheckInterval, func() {
		if !c.enterCallback() {
			return
		}
		defer c.callbacks.Done()
		c.expireOffsets(c.ctx)
		c.mu.Lock()
		if !c.closed {
			c.armSweepLocked()
		}
		c.mu.Unlock()
	})
}

// expireOffsets deletes the expired offsets of every group without
// members (KIP-211): an offset expires OffsetsRetention after the later of
// its commit and the moment its group became empty. A group left with no
// offsets and no members is forgotten.
func (c *Coordinator) expireOffsets(ctx context.Context) {
	names, err := c.groupNames(ctx)
	if err != nil {
		c.logger.Warn("offset expiry: list groups failed", "err", err)
		return
	}
	now := c.clock.Now()
	for _, name := range names {
		g, err := c.lockGroup(ctx, name, lookupStored)
		if err != nil || g == nil {
			continue
		}
		gone, err := g.expireOffsetsLocked(ctx, now)
		g.mu.Unlock()
		if err != nil {
			c.logger.Warn("offset expiry failed", "group", name, "err", err)
		}
		if gone {
			c.forget(g)
		}
	}
}

// expireOffsetsLocked expires the group's offsets (see expireOffsets) and
// reports whether the group is now dead.
func (g *group) expireOffsetsLocked(ctx context.Context, now time.Time) (bool, error) {
	if g.state != stateEmpty || len(g.pending) > 0 {
		return false, nil
	}
	stored, err := g.c.meta.FetchOffsets(ctx, g.name)
	if err != nil {
		return false, err
	}
	var expired []meta.TopicPartition
	for _, o := range stored {
		base := o.CommitTime
		if g.stateSince.After(base) {
			base = g.stateSince
		}
		if now.Sub(base) >= g.c.cfg.OffsetsRetention {
			expired = append(expired, meta.TopicPartition{Topic: o.Topic, Partition: o.Partition})
		}
	}
	if len(expired) > 0 {
		if err := g.c.meta.DeleteOffsets(ctx, g.name, expired); err != nil {
			return false, err
		}
		g.c.logger.Info("expired committed offsets", "group", g.name, "partitions", len(expired))
	}
	if len(expired) == len(stored) {
		g.setStateLocked(stateDead)
		return true, nil
	}
	return false, nil
}
