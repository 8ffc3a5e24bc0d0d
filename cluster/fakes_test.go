package cluster

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	iclock "github.com/streamhouse/streamhouse/internal/clock"
	"github.com/streamhouse/streamhouse/meta"
)

// fakeClock is internal/clock's Fake, started at a fixed time.
type fakeClock = iclock.Fake

func newFakeClock() *fakeClock { return iclock.NewFake(time.UnixMilli(1_700_000_000_000)) }

// openStore opens an in-memory SQLite store whose lease clock is clk.
func openStore(t *testing.T, clk *fakeClock) *meta.SQLite {
	t.Helper()
	s, err := meta.OpenSQLite(t.Context(), ":memory:", meta.WithLeaseClock(clk.Now))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

var errInjected = errors.New("injected failure")

// flakyStore is a Store whose lease renewals and heartbeats fail while
// down is set.
type flakyStore struct {
	Store
	down atomic.Bool
}

func (s *flakyStore) RenewLease(ctx context.Context, key meta.LeaseKey, holder, epoch int32, ttl time.Duration) (meta.Lease, error) {
	if s.down.Load() {
		return meta.Lease{}, errInjected
	}
	return s.Store.RenewLease(ctx, key, holder, epoch, ttl)
}

func (s *flakyStore) HeartbeatBroker(ctx context.Context, id int32, epoch int64, ttl time.Duration) (time.Time, error) {
	if s.down.Load() {
		return time.Time{}, errInjected
	}
	return s.Store.HeartbeatBroker(ctx, id, epoch, ttl)
}

// events records what Leases tells its owner.
type events struct {
	mu  sync.Mutex
	all []Event
}

func (e *events) notify(ev Event) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.all = append(e.all, ev)
}

// take returns the events recorded since the last take.
func (e *events) take() []Event {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := e.all
	e.all = nil
	return out
}

// instance is one broker's Registry and Leases.
type instance struct {
	reg    *Registry
	leases *Leases
	ev     *events
}

// startInstance starts a Registry (assigned ID) and Leases over store on
// clock, placing keys.
func startInstance(t *testing.T, store Store, clock Clock, ttl time.Duration, keys []meta.LeaseKey) *instance {
	t.Helper()
	reg := NewRegistry(RegistryConfig{Broker: meta.BrokerInfo{ID: meta.AssignBrokerID, Host: "127.0.0.1", Port: 9092},
		TTL: ttl}, store, clock, nil)
	if err := reg.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	ev := &events{}
	src := func(context.Context) ([]meta.LeaseKey, error) { return keys, nil }
	l := NewLeases(LeasesConfig{TTL: ttl}, store, reg, src, clock, nil, ev.notify)
	l.Start()
	in := &instance{reg: reg, leases: l, ev: ev}
	t.Cleanup(func() { in.stop(context.Background()) })
	return in
}

// stop closes the instance; with a done ctx it releases and unregisters
// nothing, as a crash would.
func (in *instance) stop(ctx context.Context) {
	in.leases.Close(ctx)
	_ = in.reg.Close(ctx)
}

// crashed returns a context that is already done.
func crashed() context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	return ctx
}
