package cluster

import (
	"context"
	"time"

	"github.com/streamhouse/streamhouse/meta"
)

// Clock is a component's time source: the current time and one-shot
// timers. A nil Clock given to a constructor means the real clock.
type Clock interface {
	// Now returns the current time.
	Now() time.Time
	// AfterFunc calls f in its own goroutine once d has passed, unless
	// the returned timer is stopped first.
	AfterFunc(d time.Duration, f func()) Timer
}

// Timer is a timer started by Clock.AfterFunc.
type Timer interface {
	// Stop prevents the timer from firing; it reports whether it did.
	Stop() bool
}

// realClock is the wall clock.
type realClock struct{}

func (realClock) Now() time.Time { return time.Now() }

func (realClock) AfterFunc(d time.Duration, f func()) Timer { return time.AfterFunc(d, f) }

// Store is the part of meta.Store this package uses: the broker registry
// and the leases.
type Store interface {
	RegisterBroker(ctx context.Context, b meta.BrokerInfo, ttl time.Duration) (meta.Broker, error)
	HeartbeatBroker(ctx context.Context, id int32, epoch int64, ttl time.Duration) (time.Time, error)
	UnregisterBroker(ctx context.Context, id int32, epoch int64) error
	ListBrokers(ctx context.Context) ([]meta.Broker, error)
	AcquireLease(ctx context.Context, key meta.LeaseKey, holder int32, ttl time.Duration) (meta.Lease, error)
	RenewLease(ctx context.Context, key meta.LeaseKey, holder, epoch int32, ttl time.Duration) (meta.Lease, error)
	ReleaseLease(ctx context.Context, key meta.LeaseKey, holder, epoch int32) error
	ListLeases(ctx context.Context, kind string) ([]meta.Lease, error)
}

// Compile-time check that meta.Store serves as a Store.
var _ Store = meta.Store(nil)

// DefaultTTL is the default lifetime of a registration and of a lease:
// how long a broker that stopped renewing keeps them (issue 14's
// --lease-timeout).
const DefaultTTL = 10 * time.Second
