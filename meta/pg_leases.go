package meta

import (
	"context"
	"time"
)

// This file holds the PostgreSQL side of the broker registry and leases:
// the methods (the query code is shared, brokers.go and leases.go) and the
// database server's clock, which is the lease clock unless WithLeaseClock
// set one.

// leaseClock returns the store's lease clock: WithLeaseClock's, else the
// database server's.
func (s *Postgres) leaseClock() leaseClock {
	if s.leaseNow != nil {
		return goLeaseClock(s.leaseNow)
	}
	return pgServerClock
}

// pgServerClock reads the database server's clock, unix milliseconds.
// clock_timestamp, not now(): now() is the start of the transaction, which
// for a transaction retried or slowed by lock waits lies in the past.
func pgServerClock(ctx context.Context, q db) (int64, error) {
	var ms int64
	err := q.queryRow(ctx, `SELECT (extract(epoch FROM clock_timestamp()) * 1000)::bigint`).Scan(&ms)
	return ms, err
}

// RegisterBroker implements Store.
func (s *Postgres) RegisterBroker(ctx context.Context, b BrokerInfo, ttl time.Duration) (Broker, error) {
	return registerBroker(ctx, s, s.leaseClock(), b, ttl)
}

// HeartbeatBroker implements Store.
func (s *Postgres) HeartbeatBroker(ctx context.Context, id int32, epoch int64, ttl time.Duration) (time.Time, error) {
	return heartbeatBroker(ctx, s, s.leaseClock(), id, epoch, ttl)
}

// UnregisterBroker implements Store.
func (s *Postgres) UnregisterBroker(ctx context.Context, id int32, epoch int64) error {
	return unregisterBroker(ctx, s, s.leaseClock(), id, epoch)
}

// ListBrokers implements Store.
func (s *Postgres) ListBrokers(ctx context.Context) ([]Broker, error) {
	return listBrokers(ctx, s, s.leaseClock())
}

// AcquireLease implements Store. Brokers racing for one lease conflict in
// their SERIALIZABLE transactions; the losers are retried and then find
// the lease held.
func (s *Postgres) AcquireLease(ctx context.Context, key LeaseKey, holder int32, ttl time.Duration) (Lease, error) {
	return acquireLease(ctx, s, s.leaseClock(), key, holder, ttl)
}

// RenewLease implements Store.
func (s *Postgres) RenewLease(ctx context.Context, key LeaseKey, holder, epoch int32, ttl time.Duration) (Lease, error) {
	return renewLease(ctx, s, s.leaseClock(), key, holder, epoch, ttl)
}

// ReleaseLease implements Store.
func (s *Postgres) ReleaseLease(ctx context.Context, key LeaseKey, holder, epoch int32) error {
	return releaseLease(ctx, s, s.leaseClock(), key, holder, epoch)
}

// GetLease implements Store.
func (s *Postgres) GetLease(ctx context.Context, key LeaseKey) (Lease, bool, error) {
	return getLease(ctx, s, s.leaseClock(), key)
}

// ListLeases implements Store.
func (s *Postgres) ListLeases(ctx context.Context, kind string) ([]Lease, error) {
	return listLeases(ctx, s, s.leaseClock(), kind)
}
