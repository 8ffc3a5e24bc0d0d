package meta

import (
	"context"
	"fmt"
	"time"
)

// This file holds the broker registry of cluster mode (table brokers of
// migration 0006): every broker sharing the store registers itself, gets
// a registration epoch, and keeps its registration alive with heartbeats.
// The query code is shared by both backends. Liveness is judged by the
// store's lease clock (see WithLeaseClock and leases.go).

// AssignBrokerID in BrokerInfo.ID asks RegisterBroker to pick the ID.
const AssignBrokerID int32 = -1

// BrokerInfo is what a broker registers: its ID and its addresses.
type BrokerInfo struct {
	// ID is the broker ID (>= 0), or AssignBrokerID to let the store pick
	// the lowest ID no live broker holds.
	ID       int32
	Host     string // Kafka listener's advertised host
	Port     int32  // Kafka listener's advertised port
	Rack     string // empty when none
	GRPCAddr string // gRPC front's advertised host:port; empty when none
}

// Broker is one registration as stored.
type Broker struct {
	BrokerInfo
	// Epoch is the registration's incarnation: RegisterBroker of an ID
	// bumps it, so a restarted broker is distinguishable from the
	// registration it replaced. Never reused for an ID.
	Epoch        int64
	RegisteredAt time.Time
	// Expires is the registration's liveness deadline, by the store's
	// lease clock.
	Expires time.Time
	// Live reports that Expires was after the store's lease clock when
	// the row was read. Judge liveness by it rather than by comparing
	// Expires with a local clock, which may be skewed.
	Live bool
}

// validateBroker checks a RegisterBroker argument.
func validateBroker(b BrokerInfo, ttl time.Duration) error {
	switch {
	case b.ID < AssignBrokerID:
		return fmt.Errorf("%w: broker id %d", ErrInvalid, b.ID)
	case b.Host == "":
		return fmt.Errorf("%w: empty host", ErrInvalid)
	case b.Port < 0 || b.Port > 65535:
		return fmt.Errorf("%w: port %d", ErrInvalid, b.Port)
	}
	return validateTTL(ttl)
}

// validateTTL checks a lease or registration lifetime.
func validateTTL(ttl time.Duration) error {
	if ttl < time.Millisecond {
		return fmt.Errorf("%w: ttl %v, want at least 1ms", ErrInvalid, ttl)
	}
	return nil
}

// registerBroker is RegisterBroker for either backend.
func registerBroker(ctx context.Context, r txRunner, clock leaseClock, b BrokerInfo, ttl time.Duration) (Broker, error) {
	if err := validateBroker(b, ttl); err != nil {
		return Broker{}, fmt.Errorf("meta: register broker %d: %w", b.ID, err)
	}
	var out Broker
	err := r.write(ctx, func(q db) error {
		now, err := clock(ctx, q)
		if err != nil {
			return err
		}
		id := b.ID
		if id == AssignBrokerID {
			if id, err = freeBrokerID(ctx, q, now); err != nil {
				return err
			}
		}
		if _, err := q.exec(ctx, `INSERT INTO brokers (broker_id, epoch, host, port, rack, grpc_addr,
				registered_at, expires_at)
			VALUES (?, 1, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (broker_id) DO UPDATE SET
				epoch         = brokers.epoch + 1,
				host          = excluded.host,
				port          = excluded.port,
				rack          = excluded.rack,
				grpc_addr     = excluded.grpc_addr,
				registered_at = excluded.registered_at,
				expires_at    = excluded.expires_at`,
			id, b.Host, b.Port, b.Rack, b.GRPCAddr, now, now+ttl.Milliseconds()); err != nil {
			return err
		}
		brokers, err := queryBrokers(ctx, q, now, `WHERE broker_id = ?`, id)
		if err != nil {
			return err
		}
		if len(brokers) != 1 {
			return fmt.Errorf("broker %d vanished after registration", id)
		}
		out = brokers[0]
		return nil
	})
	if err != nil {
		return Broker{}, fmt.Errorf("meta: register broker %d: %w", b.ID, err)
	}
	return out, nil
}

// freeBrokerID returns the lowest ID >= 0 that no live registration holds
// at now (unix ms).
func freeBrokerID(ctx context.Context, q db, now int64) (int32, error) {
	var id int32
	err := scanEach(ctx, q, `SELECT broker_id FROM brokers WHERE expires_at > ? ORDER BY broker_id`,
		[]any{now}, func(sc dbRow) error {
			var taken int32
			if err := sc.Scan(&taken); err != nil {
				return err
			}
			if taken == id {
				id++
			}
			return nil
		})
	return id, err
}

// heartbeatBroker is HeartbeatBroker for either backend.
func heartbeatBroker(ctx context.Context, r txRunner, clock leaseClock, id int32, epoch int64, ttl time.Duration) (time.Time, error) {
	if err := validateTTL(ttl); err != nil {
		return time.Time{}, fmt.Errorf("meta: heartbeat broker %d: %w", id, err)
	}
	var expires int64
	err := r.write(ctx, func(q db) error {
		now, err := clock(ctx, q)
		if err != nil {
			return err
		}
		expires = now + ttl.Milliseconds()
		n, err := q.exec(ctx, `UPDATE brokers SET expires_at = ? WHERE broker_id = ? AND epoch = ?`,
			expires, id, epoch)
		if err == nil && n == 0 {
			err = fmt.Errorf("%w: broker %d is not registered at epoch %d", ErrBrokerFenced, id, epoch)
		}
		return err
	})
	if err != nil {
		return time.Time{}, fmt.Errorf("meta: heartbeat broker %d: %w", id, err)
	}
	return fromMillis(expires), nil
}

// unregisterBroker is UnregisterBroker for either backend.
func unregisterBroker(ctx context.Context, r txRunner, clock leaseClock, id int32, epoch int64) error {
	err := r.write(ctx, func(q db) error {
		now, err := clock(ctx, q)
		if err != nil {
			return err
		}
		n, err := q.exec(ctx, `UPDATE brokers SET expires_at = ? WHERE broker_id = ? AND epoch = ?`,
			now, id, epoch)
		if err == nil && n == 0 {
			err = fmt.Errorf("%w: broker %d is not registered at epoch %d", ErrBrokerFenced, id, epoch)
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("meta: unregister broker %d: %w", id, err)
	}
	return nil
}

// listBrokers is ListBrokers for either backend.
func listBrokers(ctx context.Context, r txRunner, clock leaseClock) ([]Broker, error) {
	var out []Broker
	err := r.read(ctx, func(q db) error {
		now, err := clock(ctx, q)
		if err != nil {
			return err
		}
		out, err = queryBrokers(ctx, q, now, ``)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("meta: list brokers: %w", err)
	}
	return out, nil
}

// queryBrokers returns the brokers where (empty or a WHERE clause with
// args) selects, sorted by ID, Live judged at now (unix ms). The result
// is never nil.
func queryBrokers(ctx context.Context, q db, now int64, where string, args ...any) ([]Broker, error) {
	out := []Broker{}
	err := scanEach(ctx, q, `SELECT broker_id, epoch, host, port, rack, grpc_addr, registered_at, expires_at
		FROM brokers `+where+` ORDER BY broker_id`, args, func(sc dbRow) error {
		var (
			b                 Broker
			registered, until int64
		)
		if err := sc.Scan(&b.ID, &b.Epoch, &b.Host, &b.Port, &b.Rack, &b.GRPCAddr, &registered, &until); err != nil {
			return err
		}
		b.RegisteredAt, b.Expires, b.Live = fromMillis(registered), fromMillis(until), until > now
		out = append(out, b)
		return nil
	})
	return out, err
}

// RegisterBroker implements Store.
func (s *SQLite) RegisterBroker(ctx context.Context, b BrokerInfo, ttl time.Duration) (Broker, error) {
	return registerBroker(ctx, s, s.leaseClock(), b, ttl)
}

// HeartbeatBroker implements Store.
func (s *SQLite) HeartbeatBroker(ctx context.Context, id int32, epoch int64, ttl time.Duration) (time.Time, error) {
	return heartbeatBroker(ctx, s, s.leaseClock(), id, epoch, ttl)
}

// UnregisterBroker implements Store.
func (s *SQLite) UnregisterBroker(ctx context.Context, id int32, epoch int64) error {
	return unregisterBroker(ctx, s, s.leaseClock(), id, epoch)
}

// ListBrokers implements Store.
func (s *SQLite) ListBrokers(ctx context.Context) ([]Broker, error) {
	return listBrokers(ctx, s, s.leaseClock())
}
