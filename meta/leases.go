package meta

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"strconv"
	"time"
)

// This file holds the leases of cluster mode (table leases of migration
// 0006) and the lease clock they and the broker registry are judged by.
//
// A lease names one thing that exactly one broker may own at a time: a
// partition (which that broker then leads) or a coordinator shard (whose
// consumer groups or transactional IDs that broker coordinates). One
// generic table serves both: a lease is keyed by (kind, key), held by a
// broker ID until a deadline, and carries an epoch that grows by one at
// every acquisition and is never reused, because the row outlives its
// holders (release keeps it). A partition lease's epoch is Kafka's leader
// epoch.
//
// Fencing: every change of holder bumps the epoch in one transaction, so
// "holder H at epoch E" names one tenure that can never come back. A
// write that must only happen while its writer leads (acknowledging a
// produce, recording a segment, committing a group's offsets) checks
// (key, H, E) with checkLease inside its own write transaction; the
// backends run write transactions serially (SQLite: one writer) or
// SERIALIZABLE (PostgreSQL), so the check and the write commit together
// or, if a takeover committed in between, not at all. That is the building
// block for "a fenced broker can never acknowledge a write".
//
// Time: deadlines are stored and compared by the store's lease clock, not
// by times the brokers pass. On PostgreSQL that is the database server's
// clock, so brokers whose clocks are skewed still agree on when a lease
// or registration ends: callers pass lifetimes (ttl), never instants. A
// holder that measures a lease from just before it sent the acquire or
// renew stops believing in it no later than the database does (clock rate
// drift aside); the fence check does not depend on that.

// Sentinel errors of the broker registry and leases.
var (
	// ErrBrokerFenced: the broker is not registered at the epoch given;
	// a later RegisterBroker of its ID replaced that registration.
	ErrBrokerFenced = errors.New("meta: broker registration replaced")
	// ErrLeaseHeld: another broker holds the lease and it has not
	// expired.
	ErrLeaseHeld = errors.New("meta: lease held by another broker")
	// ErrLeaseLost: the lease is not held by the broker at the epoch
	// given (taken over, released, or expired for the fence check): that
	// holder is fenced.
	ErrLeaseLost = errors.New("meta: lease lost")
)

// WithLeaseClock sets the lease clock: the time broker registrations and
// leases are stamped and judged by. The default is the store's clock
// (WithClock) for SQLite, whose one database file is not shared between
// machines, and the database server's clock for PostgreSQL, so brokers
// with skewed clocks agree on deadlines. Tests set it to drive expiry.
func WithLeaseClock(now func() time.Time) Option {
	return func(c *config) { c.leaseNow = now }
}

// leaseClock returns the lease clock's time, unix milliseconds, read in
// the transaction q.
type leaseClock func(ctx context.Context, q db) (int64, error)

// goLeaseClock is a leaseClock reading now.
func goLeaseClock(now func() time.Time) leaseClock {
	return func(context.Context, db) (int64, error) { return millis(now()), nil }
}

// Lease kinds. Never change: they are stored.
const (
	// LeasePartition is the kind of partition leases; see PartitionLease.
	LeasePartition = "partition"
	// LeaseCoordinator is the kind of coordinator shard leases; the key
	// names the coordinator and the shard, e.g. "group/7".
	LeaseCoordinator = "coordinator"
)

// NoHolder is Lease.Holder of a released lease.
const NoHolder int32 = -1

// LeaseKey names one leased thing.
type LeaseKey struct {
	Kind string // LeasePartition, LeaseCoordinator, ...
	Key  string
}

// PartitionLease returns the key of a partition's lease:
// {LeasePartition, "<topic id>/<partition>"}. Topic IDs are never reused,
// so a partition's epochs never restart.
func PartitionLease(topicID string, partition int32) LeaseKey {
	return LeaseKey{Kind: LeasePartition, Key: topicID + "/" + strconv.FormatInt(int64(partition), 10)}
}

// String returns "kind:key".
func (k LeaseKey) String() string { return k.Kind + ":" + k.Key }

// validate checks that both parts are set.
func (k LeaseKey) validate() error {
	if k.Kind == "" || k.Key == "" {
		return fmt.Errorf("%w: lease key %q has an empty part", ErrInvalid, k.String())
	}
	return nil
}

// validateHolder checks a lease key and a holder (a broker ID >= 0).
func validateHolder(key LeaseKey, holder int32) error {
	if err := key.validate(); err != nil {
		return err
	}
	if holder < 0 {
		return fmt.Errorf("%w: holder %d", ErrInvalid, holder)
	}
	return nil
}

// Lease is one lease as stored.
type Lease struct {
	LeaseKey
	Holder     int32 // broker ID, or NoHolder once released
	Epoch      int32 // >= 1; grows at every acquisition, never reused
	AcquiredAt time.Time
	// Expires is when the holder's lease ends unless renewed, by the
	// store's lease clock.
	Expires time.Time
	// Live reports that the lease was held (Holder >= 0) and Expires was
	// after the store's lease clock when the row was read.
	Live bool
}

// Fence names one tenure of a lease: Holder holding Key at Epoch. A write
// carrying a Fence checks it in its own transaction (checkLease).
type Fence struct {
	Key    LeaseKey
	Holder int32
	Epoch  int32
}

// acquireLease is AcquireLease for either backend.
func acquireLease(ctx context.Context, r txRunner, clock leaseClock, key LeaseKey, holder int32, ttl time.Duration) (Lease, error) {
	err := validateHolder(key, holder)
	if err == nil {
		err = validateTTL(ttl)
	}
	if err != nil {
		return Lease{}, fmt.Errorf("meta: acquire lease %s: %w", key, err)
	}
	var out Lease
	err = r.write(ctx, func(q db) error {
		now, err := clock(ctx, q)
		if err != nil {
			return err
		}
		cur, found, err := queryLease(ctx, q, now, key)
		if err != nil {
			return err
		}
		epoch := int32(1)
		if found {
			if cur.Live {
				out = cur
				return fmt.Errorf("%w: broker %d at epoch %d until %s", ErrLeaseHeld,
					cur.Holder, cur.Epoch, cur.Expires.Format(time.RFC3339Nano))
			}
			if cur.Epoch == math.MaxInt32 {
				return fmt.Errorf("epoch %d cannot grow", cur.Epoch)
			}
			epoch = cur.Epoch + 1
		}
		out = Lease{LeaseKey: key, Holder: holder, Epoch: epoch, AcquiredAt: fromMillis(now),
			Expires: fromMillis(now + ttl.Milliseconds()), Live: true}
		_, err = q.exec(ctx, `INSERT INTO leases (kind, lease_key, holder, epoch, acquired_at, expires_at)
			VALUES (?, ?, ?, ?, ?, ?)
			ON CONFLICT (kind, lease_key) DO UPDATE SET
				holder      = excluded.holder,
				epoch       = excluded.epoch,
				acquired_at = excluded.acquired_at,
				expires_at  = excluded.expires_at`,
			key.Kind, key.Key, holder, epoch, now, now+ttl.Milliseconds())
		return err
	})
	if err != nil {
		if !errors.Is(err, ErrLeaseHeld) {
			out = Lease{}
		}
		return out, fmt.Errorf("meta: acquire lease %s for broker %d: %w", key, holder, err)
	}
	return out, nil
}

// renewLease is RenewLease for either backend.
func renewLease(ctx context.Context, r txRunner, clock leaseClock, key LeaseKey, holder, epoch int32, ttl time.Duration) (Lease, error) {
	err := validateHolder(key, holder)
	if err == nil {
		err = validateTTL(ttl)
	}
	if err != nil {
		return Lease{}, fmt.Errorf("meta: renew lease %s: %w", key, err)
	}
	var out Lease
	err = r.write(ctx, func(q db) error {
		now, err := clock(ctx, q)
		if err != nil {
			return err
		}
		n, err := q.exec(ctx, `UPDATE leases SET expires_at = ?
			WHERE kind = ? AND lease_key = ? AND holder = ? AND epoch = ?`,
			now+ttl.Milliseconds(), key.Kind, key.Key, holder, epoch)
		if err != nil {
			return err
		}
		if n == 0 {
			return fmt.Errorf("%w: not held by broker %d at epoch %d", ErrLeaseLost, holder, epoch)
		}
		out, _, err = queryLease(ctx, q, now, key)
		return err
	})
	if err != nil {
		return Lease{}, fmt.Errorf("meta: renew lease %s: %w", key, err)
	}
	return out, nil
}

// releaseLease is ReleaseLease for either backend.
func releaseLease(ctx context.Context, r txRunner, clock leaseClock, key LeaseKey, holder, epoch int32) error {
	if err := validateHolder(key, holder); err != nil {
		return fmt.Errorf("meta: release lease %s: %w", key, err)
	}
	err := r.write(ctx, func(q db) error {
		now, err := clock(ctx, q)
		if err != nil {
			return err
		}
		n, err := q.exec(ctx, `UPDATE leases SET holder = ?, expires_at = ?
			WHERE kind = ? AND lease_key = ? AND holder = ? AND epoch = ?`,
			NoHolder, now, key.Kind, key.Key, holder, epoch)
		if err == nil && n == 0 {
			err = fmt.Errorf("%w: not held by broker %d at epoch %d", ErrLeaseLost, holder, epoch)
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("meta: release lease %s: %w", key, err)
	}
	return nil
}

// getLease is GetLease for either backend.
func getLease(ctx context.Context, r txRunner, clock leaseClock, key LeaseKey) (Lease, bool, error) {
	var (
		out   Lease
		found bool
	)
	err := r.read(ctx, func(q db) error {
		now, err := clock(ctx, q)
		if err != nil {
			return err
		}
		out, found, err = queryLease(ctx, q, now, key)
		return err
	})
	if err != nil {
		return Lease{}, false, fmt.Errorf("meta: get lease %s: %w", key, err)
	}
	return out, found, nil
}

// listLeases is ListLeases for either backend.
func listLeases(ctx context.Context, r txRunner, clock leaseClock, kind string) ([]Lease, error) {
	out := []Lease{}
	err := r.read(ctx, func(q db) error {
		now, err := clock(ctx, q)
		if err != nil {
			return err
		}
		out = out[:0]
		query := `SELECT kind, lease_key, holder, epoch, acquired_at, expires_at FROM leases`
		var args []any
		if kind != "" {
			query += ` WHERE kind = ?`
			args = append(args, kind)
		}
		return scanEach(ctx, q, query+` ORDER BY kind, lease_key`, args, func(sc dbRow) error {
			l, err := scanLease(sc, now)
			if err != nil {
				return err
			}
			out = append(out, l)
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("meta: list leases: %w", err)
	}
	return out, nil
}

// queryLease reads one lease, Live judged at now (unix ms).
func queryLease(ctx context.Context, q db, now int64, key LeaseKey) (Lease, bool, error) {
	l, err := scanLease(q.queryRow(ctx, `SELECT kind, lease_key, holder, epoch, acquired_at, expires_at
		FROM leases WHERE kind = ? AND lease_key = ?`, key.Kind, key.Key), now)
	if errors.Is(err, sql.ErrNoRows) {
		return Lease{}, false, nil
	}
	return l, err == nil, err
}

// scanLease scans a leases row selected as queryLease does.
func scanLease(sc dbRow, now int64) (Lease, error) {
	var (
		l               Lease
		acquired, until int64
	)
	if err := sc.Scan(&l.Kind, &l.Key, &l.Holder, &l.Epoch, &acquired, &until); err != nil {
		return Lease{}, err
	}
	l.AcquiredAt, l.Expires = fromMillis(acquired), fromMillis(until)
	l.Live = l.Holder != NoHolder && until > now
	return l, nil
}

// checkLease is the fence check: it returns nil if f.Holder holds f.Key
// at f.Epoch and the lease has not expired at now (unix ms, the lease
// clock read in the same transaction), else an error wrapping
// ErrLeaseLost. Call it inside the write transaction q of the write it
// guards, before that write: the store's write transactions are serial
// (SQLite) or SERIALIZABLE (PostgreSQL), so if a takeover commits between
// this check and the commit of the write, the write's transaction fails
// (PostgreSQL reports a serialization failure, retried by runTx, whose
// rerun then fails this check), and a takeover that starts after the
// check waits for the write to commit. A fenced holder therefore never
// commits a guarded write after the takeover.
func checkLease(ctx context.Context, q db, now int64, f Fence) error {
	// On PostgreSQL the row is read FOR SHARE: a takeover's UPDATE then
	// waits until the guarded write commits, and a takeover that
	// committed after this transaction's snapshot makes the read fail
	// with a serialization failure, so the order of the two commits is
	// the order of the check and the takeover. SERIALIZABLE alone would
	// allow the guarded write to commit after the takeover, ordered
	// before it, which a new leader reading outside SERIALIZABLE could
	// miss. SQLite has one writer: nothing runs in between.
	lock := ""
	if _, ok := q.(pgDB); ok {
		lock = " FOR SHARE"
	}
	l, err := scanLease(q.queryRow(ctx, `SELECT kind, lease_key, holder, epoch, acquired_at, expires_at
		FROM leases WHERE kind = ? AND lease_key = ?`+lock, f.Key.Kind, f.Key.Key), now)
	found := err == nil
	if errors.Is(err, sql.ErrNoRows) {
		err = nil
	}
	switch {
	case err != nil:
		return fmt.Errorf("fence %s: %w", f.Key, err)
	case !found:
		return fmt.Errorf("fence %s: %w: never acquired", f.Key, ErrLeaseLost)
	case l.Holder != f.Holder || l.Epoch != f.Epoch:
		return fmt.Errorf("fence %s: %w: broker %d at epoch %d, not broker %d at epoch %d",
			f.Key, ErrLeaseLost, l.Holder, l.Epoch, f.Holder, f.Epoch)
	case !l.Live:
		return fmt.Errorf("fence %s: %w: expired at %s", f.Key, ErrLeaseLost, l.Expires.Format(time.RFC3339Nano))
	}
	return nil
}

// leaseClock returns the store's lease clock.
func (s *SQLite) leaseClock() leaseClock { return goLeaseClock(s.leaseNow) }

// AcquireLease implements Store.
func (s *SQLite) AcquireLease(ctx context.Context, key LeaseKey, holder int32, ttl time.Duration) (Lease, error) {
	return acquireLease(ctx, s, s.leaseClock(), key, holder, ttl)
}

// RenewLease implements Store.
func (s *SQLite) RenewLease(ctx context.Context, key LeaseKey, holder, epoch int32, ttl time.Duration) (Lease, error) {
	return renewLease(ctx, s, s.leaseClock(), key, holder, epoch, ttl)
}

// ReleaseLease implements Store.
func (s *SQLite) ReleaseLease(ctx context.Context, key LeaseKey, holder, epoch int32) error {
	return releaseLease(ctx, s, s.leaseClock(), key, holder, epoch)
}

// GetLease implements Store.
func (s *SQLite) GetLease(ctx context.Context, key LeaseKey) (Lease, bool, error) {
	return getLease(ctx, s, s.leaseClock(), key)
}

// ListLeases implements Store.
func (s *SQLite) ListLeases(ctx context.Context, kind string) ([]Lease, error) {
	return listLeases(ctx, s, s.leaseClock(), kind)
}
