package cluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	iclock "github.com/streamhouse/streamhouse/internal/clock"
	"github.com/streamhouse/streamhouse/meta"
)

// RegistryConfig configures a Registry.
type RegistryConfig struct {
	// Broker is what this broker registers; ID meta.AssignBrokerID lets
	// the store pick the ID.
	Broker meta.BrokerInfo
	// TTL is the registration's lifetime: a broker that stops
	// heartbeating is no longer live TTL after its last heartbeat.
	// Default DefaultTTL.
	TTL time.Duration
	// HeartbeatInterval is how often the registration is renewed and the
	// live brokers are listed. Default TTL/3, so two heartbeats may fail
	// before the registration lapses.
	HeartbeatInterval time.Duration
}

// withDefaults fills zero fields.
func (c RegistryConfig) withDefaults() RegistryConfig {
	if c.TTL <= 0 {
		c.TTL = DefaultTTL
	}
	if c.HeartbeatInterval <= 0 {
		c.HeartbeatInterval = c.TTL / 3
	}
	return c
}

// Registry registers this broker in the store, keeps the registration
// alive with a heartbeat on its clock, and keeps the list of live brokers
// (as of the last heartbeat round). If another registration of the same
// ID replaces this one (a second broker started with the same ID), the
// heartbeat fails with meta.ErrBrokerFenced: the registry stops, and
// Fenced is closed so the owner can stop serving. It does not register
// again by itself.
type Registry struct {
	cfg    RegistryConfig
	store  Store
	logger *slog.Logger
	loop   *loop
	fenced chan struct{} // closed once fenced

	// mu guards the fields below.
	mu   sync.Mutex
	self meta.Broker   // this broker's registration
	live []meta.Broker // live brokers at the last listing, sorted by ID
	// isFenced is set when fenced is closed.
	isFenced bool
}

// NewRegistry returns a registry over store, its heartbeat on clock (nil:
// the real clock). Start registers; Close unregisters.
func NewRegistry(cfg RegistryConfig, store Store, clock Clock, logger *slog.Logger) *Registry {
	if clock == nil {
		clock = iclock.Real()
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	r := &Registry{cfg: cfg.withDefaults(), store: store, logger: logger.With("component", "cluster"),
		fenced: make(chan struct{})}
	r.loop = newLoop(clock, r.cfg.HeartbeatInterval, r.round)
	return r
}

// Start registers the broker and lists the live brokers, then arms the
// heartbeat. It fails if the registration fails; a failed listing is
// retried at the next heartbeat.
func (r *Registry) Start(ctx context.Context) error {
	b, err := r.store.RegisterBroker(ctx, r.cfg.Broker, r.cfg.TTL)
	if err != nil {
		return fmt.Errorf("cluster: register: %w", err)
	}
	r.mu.Lock()
	r.self = b
	r.mu.Unlock()
	r.logger.Info("cluster: broker registered", "broker_id", b.ID, "broker_epoch", b.Epoch,
		"host", b.Host, "port", b.Port)
	r.list(ctx)
	r.loop.arm()
	return nil
}

// round is one heartbeat: renew the registration, then list the brokers.
func (r *Registry) round(ctx context.Context) {
	self := r.Self()
	_, err := r.store.HeartbeatBroker(ctx, self.ID, self.Epoch, r.cfg.TTL)
	switch {
	case errors.Is(err, meta.ErrBrokerFenced):
		r.logger.Error("cluster: this broker's registration was replaced by another broker with its ID; stopping",
			"broker_id", self.ID, "broker_epoch", self.Epoch)
		r.fence()
		return
	case err != nil:
		r.logger.Warn("cluster: heartbeat failed", "broker_id", self.ID, "err", err)
	}
	r.list(ctx)
}

// fence marks the registry fenced and stops its heartbeat; the round
// calling it ends right after, so the loop is stopped from outside it.
func (r *Registry) fence() {
	r.mu.Lock()
	if !r.isFenced {
		r.isFenced = true
		close(r.fenced)
	}
	r.mu.Unlock()
	r.loop.disarm()
}

// list refreshes the live brokers.
func (r *Registry) list(ctx context.Context) {
	all, err := r.store.ListBrokers(ctx)
	if err != nil {
		r.logger.Warn("cluster: list brokers failed", "err", err)
		return
	}
	live := slices.DeleteFunc(all, func(b meta.Broker) bool { return !b.Live })
	r.mu.Lock()
	changed := !slices.EqualFunc(live, r.live, func(a, b meta.Broker) bool {
		return a.BrokerInfo == b.BrokerInfo && a.Epoch == b.Epoch
	})
	r.live = live
	r.mu.Unlock()
	if changed {
		r.logger.Info("cluster: live brokers changed", "brokers", ids(live))
	}
}

// Self returns this broker's registration (zero before Start).
func (r *Registry) Self() meta.Broker {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.self
}

// ID returns this broker's ID (as registered by Start).
func (r *Registry) ID() int32 { return r.Self().ID }

// Live returns the live brokers as of the last listing, sorted by ID.
func (r *Registry) Live() []meta.Broker {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.live)
}

// LiveIDs returns the IDs of Live.
func (r *Registry) LiveIDs() []int32 { return ids(r.Live()) }

// Fenced is closed once the registration was found replaced.
func (r *Registry) Fenced() <-chan struct{} { return r.fenced }

// Close stops the heartbeat, waits for a running one, and unregisters the
// broker within ctx (unless it was fenced): the others see it gone at
// once instead of after TTL. With ctx already done it leaves the
// registration to expire, as a crash would.
func (r *Registry) Close(ctx context.Context) error {
	r.loop.stop()
	r.mu.Lock()
	self, fenced := r.self, r.isFenced
	r.mu.Unlock()
	if fenced || self.Epoch == 0 || ctx.Err() != nil {
		return nil
	}
	if err := r.store.UnregisterBroker(ctx, self.ID, self.Epoch); err != nil {
		return fmt.Errorf("cluster: unregister: %w", err)
	}
	r.logger.Info("cluster: broker unregistered", "broker_id", self.ID, "broker_epoch", self.Epoch)
	return nil
}

// ids returns the IDs of brokers.
func ids(brokers []meta.Broker) []int32 {
	out := make([]int32, len(brokers))
	for i, b := range brokers {
		out[i] = b.ID
	}
	return out
}
