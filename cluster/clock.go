package cluster

import (
	"context"
	"time"

	iclock "github.com/streamhouse/streamhouse/internal/clock"
	"github.com/streamhouse/streamhouse/meta"
)

// Clock is a component's time source (internal/clock): the current time and
// one-shot timers. A nil Clock means the real clock.
type Clock = iclock.Clock

// Timer is a timer started by Clock.AfterFunc.
type Timer = iclock.Timer

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
