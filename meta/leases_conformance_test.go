package meta

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/streamhouse/streamhouse/meta/pgtest"
)

// This file holds the conformance cases of the broker registry and leases
// (brokers.go, leases.go), run against every backend with a lease clock
// the test moves, and PostgreSQL's races: stores on one database racing
// for a lease, for broker IDs, and a fence check racing a takeover.

// leaseTestClock is a lease clock that moves only when told.
type leaseTestClock struct {
	mu  sync.Mutex
	now time.Time
}

func newLeaseTestClock() *leaseTestClock { return &leaseTestClock{now: t0} }

func (c *leaseTestClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *leaseTestClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// leaseBackends lists every backend with an opener taking options, so
// the cases can set the lease clock.
var leaseBackends = []struct {
	name string
	open func(t *testing.T, opts ...Option) Store
}{
	{"SQLite", func(t *testing.T, opts ...Option) Store {
		return openTestSQLiteWith(t, filepath.Join(t.TempDir(), "meta.db"), opts...)
	}},
	{"SQLiteMemory", func(t *testing.T, opts ...Option) Store { return openTestSQLiteWith(t, ":memory:", opts...) }},
	{"Postgres", func(t *testing.T, opts ...Option) Store { return openTestPostgres(t, opts...) }},
}

// openTestSQLiteWith opens a SQLite store with opts and closes it when t ends.
func openTestSQLiteWith(t *testing.T, path string, opts ...Option) *SQLite {
	t.Helper()
	s, err := OpenSQLite(t.Context(), path, opts...)
	if err != nil {
		t.Fatalf("OpenSQLite(%s): %v", path, err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// TestLeaseConformance runs the registry and lease cases against every
// backend: TestLeaseConformance/<backend>/<case>.
func TestLeaseConformance(t *testing.T) {
	for _, b := range leaseBackends {
		t.Run(b.name, func(t *testing.T) {
			for _, c := range []struct {
				name string
				run  func(t *testing.T, s Store, clk *leaseTestClock)
			}{
				{"RegisterBroker", testRegisterBroker},
				{"BrokerHeartbeatAndExpiry", testBrokerHeartbeatAndExpiry},
				{"UnregisterBroker", testUnregisterBroker},
				{"AcquireLease", testAcquireLease},
				{"RenewLease", testRenewLease},
				{"ReleaseLease", testReleaseLease},
				{"ListLeases", testListLeases},
				{"LeaseArgs", testLeaseArgs},
				{"Fence", testFence},
			} {
				t.Run(c.name, func(t *testing.T) {
					clk := newLeaseTestClock()
					c.run(t, b.open(t, WithLeaseClock(clk.Now)), clk)
				})
			}
		})
	}
}

const testTTL = 10 * time.Second

// mustRegister registers b or fails t.
func mustRegister(t *testing.T, s Store, b BrokerInfo) Broker {
	t.Helper()
	got, err := s.RegisterBroker(t.Context(), b, testTTL)
	if err != nil {
		t.Fatalf("RegisterBroker(%+v): %v", b, err)
	}
	return got
}

// brokerAt builds a BrokerInfo for id at host h.
func brokerAt(id int32, h string) BrokerInfo {
	return BrokerInfo{ID: id, Host: h, Port: 9092, Rack: "r-" + h, GRPCAddr: h + ":50051"}
}

// wantBrokers fails t unless ListBrokers returns ids with the given
// epochs and liveness.
func wantBrokers(t *testing.T, s Store, want ...Broker) {
	t.Helper()
	got, err := s.ListBrokers(t.Context())
	wantErr(t, err, nil)
	for i := range got {
		got[i].RegisteredAt, got[i].Expires = got[i].RegisteredAt.UTC(), got[i].Expires.UTC()
	}
	if want == nil {
		want = []Broker{}
	}
	wantEqual(t, "brokers", got, want)
}

func testRegisterBroker(t *testing.T, s Store, _ *leaseTestClock) {
	a := mustRegister(t, s, brokerAt(AssignBrokerID, "a"))
	wantEqual(t, "first assigned", a, Broker{BrokerInfo: brokerAt(0, "a"), Epoch: 1,
		RegisteredAt: t0, Expires: t0.Add(testTTL), Live: true})
	c := mustRegister(t, s, brokerAt(2, "c"))
	b := mustRegister(t, s, brokerAt(AssignBrokerID, "b"))
	d := mustRegister(t, s, brokerAt(AssignBrokerID, "d"))
	wantEqual(t, "assigned ids", []int32{b.ID, c.ID, d.ID}, []int32{1, 2, 3})
	wantBrokers(t, s, a, b, c, d)

	// Re-registering an ID replaces the registration with the next epoch.
	c2 := mustRegister(t, s, brokerAt(2, "c2"))
	wantEqual(t, "re-registered", c2, Broker{BrokerInfo: brokerAt(2, "c2"), Epoch: 2,
		RegisteredAt: t0, Expires: t0.Add(testTTL), Live: true})
	_, err := s.HeartbeatBroker(t.Context(), 2, 1, testTTL)
	wantErr(t, err, ErrBrokerFenced)
	_, err = s.HeartbeatBroker(t.Context(), 9, 1, testTTL)
	wantErr(t, err, ErrBrokerFenced)

	for _, c := range []struct {
		name string
		b    BrokerInfo
		ttl  time.Duration
	}{
		{"IDBelowAssign", brokerAt(-2, "x"), testTTL},
		{"EmptyHost", brokerAt(5, ""), testTTL},
		{"NegativePort", BrokerInfo{ID: 5, Host: "x", Port: -1}, testTTL},
		{"PortTooLarge", BrokerInfo{ID: 5, Host: "x", Port: 65536}, testTTL},
		{"ZeroTTL", brokerAt(5, "x"), 0},
		{"SubMillisecondTTL", brokerAt(5, "x"), time.Microsecond},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := s.RegisterBroker(t.Context(), c.b, c.ttl)
			wantErr(t, err, ErrInvalid)
		})
	}
	wantBrokers(t, s, a, b, c2, d)
}

func testBrokerHeartbeatAndExpiry(t *testing.T, s Store, clk *leaseTestClock) {
	a := mustRegister(t, s, brokerAt(AssignBrokerID, "a"))
	b := mustRegister(t, s, brokerAt(AssignBrokerID, "b"))
	clk.Advance(6 * time.Second)
	until, err := s.HeartbeatBroker(t.Context(), a.ID, a.Epoch, testTTL)
	wantErr(t, err, nil)
	wantEqual(t, "deadline", until.UTC(), t0.Add(16*time.Second))
	a.Expires = until.UTC()

	// b's deadline passes: it is listed, not live, and its ID is free.
	clk.Advance(4 * time.Second)
	b.Live = false
	wantBrokers(t, s, a, b)
	e := mustRegister(t, s, brokerAt(AssignBrokerID, "e"))
	wantEqual(t, "reused id, next epoch", []int64{int64(e.ID), e.Epoch}, []int64{1, 2})
	// The expired registration was replaced, so its heartbeat fails.
	_, err = s.HeartbeatBroker(t.Context(), b.ID, b.Epoch, testTTL)
	wantErr(t, err, ErrBrokerFenced)

	// An expired registration no one replaced may still heartbeat.
	clk.Advance(7 * time.Second) // a expired at t0+16s
	_, err = s.HeartbeatBroker(t.Context(), a.ID, a.Epoch, testTTL)
	wantErr(t, err, nil)
	_, err = s.HeartbeatBroker(t.Context(), a.ID, a.Epoch, 0)
	wantErr(t, err, ErrInvalid)
}

func testUnregisterBroker(t *testing.T, s Store, _ *leaseTestClock) {
	a := mustRegister(t, s, brokerAt(AssignBrokerID, "a"))
	wantErr(t, s.UnregisterBroker(t.Context(), a.ID, a.Epoch+1), ErrBrokerFenced)
	wantErr(t, s.UnregisterBroker(t.Context(), 7, 1), ErrBrokerFenced)
	wantErr(t, s.UnregisterBroker(t.Context(), a.ID, a.Epoch), nil)
	a.Live, a.Expires = false, t0
	wantBrokers(t, s, a)
	a2 := mustRegister(t, s, brokerAt(AssignBrokerID, "a2"))
	wantEqual(t, "id and epoch after unregister", []int64{int64(a2.ID), a2.Epoch}, []int64{0, 2})
	wantErr(t, s.UnregisterBroker(t.Context(), a.ID, a.Epoch), ErrBrokerFenced)
}

// mustAcquire acquires key for holder or fails t.
func mustAcquire(t *testing.T, s Store, key LeaseKey, holder int32) Lease {
	t.Helper()
	l, err := s.AcquireLease(t.Context(), key, holder, testTTL)
	if err != nil {
		t.Fatalf("AcquireLease(%s, %d): %v", key, holder, err)
	}
	return l
}

// normLease puts times in UTC so DeepEqual compares instants only.
func normLease(l Lease) Lease {
	l.AcquiredAt, l.Expires = l.AcquiredAt.UTC(), l.Expires.UTC()
	return l
}

// wantLease fails t unless key's stored lease is want.
func wantLease(t *testing.T, s Store, want Lease) {
	t.Helper()
	got, found, err := s.GetLease(t.Context(), want.LeaseKey)
	wantErr(t, err, nil)
	if !found {
		t.Fatalf("GetLease(%s): not found", want.LeaseKey)
	}
	wantEqual(t, "lease "+want.LeaseKey.String(), normLease(got), want)
}

func testAcquireLease(t *testing.T, s Store, clk *leaseTestClock) {
	key := PartitionLease("4a1e2c0e-8d5b-4bfa-9f0e-2f5d5c2b8a11", 3)
	wantEqual(t, "partition key", key, LeaseKey{Kind: LeasePartition, Key: "4a1e2c0e-8d5b-4bfa-9f0e-2f5d5c2b8a11/3"})
	_, found, err := s.GetLease(t.Context(), key)
	wantErr(t, err, nil)
	if found {
		t.Fatal("GetLease of a never-acquired key: found")
	}
	first := mustAcquire(t, s, key, 1)
	want := Lease{LeaseKey: key, Holder: 1, Epoch: 1, AcquiredAt: t0, Expires: t0.Add(testTTL), Live: true}
	wantEqual(t, "first", normLease(first), want)
	wantLease(t, s, want)

	// Held: neither another broker nor the holder itself acquires it.
	for _, holder := range []int32{2, 1} {
		cur, err := s.AcquireLease(t.Context(), key, holder, testTTL)
		wantErr(t, err, ErrLeaseHeld)
		wantEqual(t, "current lease returned with ErrLeaseHeld", normLease(cur), want)
	}
	// One millisecond before expiry it is still held; at expiry it is free.
	clk.Advance(testTTL - time.Millisecond)
	_, err = s.AcquireLease(t.Context(), key, 2, testTTL)
	wantErr(t, err, ErrLeaseHeld)
	clk.Advance(time.Millisecond)
	second := mustAcquire(t, s, key, 2)
	at := t0.Add(testTTL)
	wantEqual(t, "takeover", normLease(second),
		Lease{LeaseKey: key, Holder: 2, Epoch: 2, AcquiredAt: at, Expires: at.Add(testTTL), Live: true})
	// The old holder is fenced.
	_, err = s.RenewLease(t.Context(), key, 1, 1, testTTL)
	wantErr(t, err, ErrLeaseLost)
	wantErr(t, s.ReleaseLease(t.Context(), key, 1, 1), ErrLeaseLost)
	// An expired lease may go back to its former holder, at a new epoch.
	clk.Advance(testTTL)
	third := mustAcquire(t, s, key, 2)
	wantEqual(t, "re-acquired epoch", third.Epoch, int32(3))
}

func testRenewLease(t *testing.T, s Store, clk *leaseTestClock) {
	key := LeaseKey{Kind: LeaseCoordinator, Key: "group/7"}
	l := mustAcquire(t, s, key, 4)
	clk.Advance(testTTL / 2)
	renewed, err := s.RenewLease(t.Context(), key, 4, l.Epoch, 3*testTTL)
	wantErr(t, err, nil)
	want := Lease{LeaseKey: key, Holder: 4, Epoch: 1, AcquiredAt: t0,
		Expires: t0.Add(testTTL / 2).Add(3 * testTTL), Live: true}
	wantEqual(t, "renewed", normLease(renewed), want)
	wantLease(t, s, want)
	for _, c := range []struct {
		name          string
		holder, epoch int32
	}{
		{"OtherHolder", 5, 1},
		{"StaleEpoch", 4, 0},
		{"FutureEpoch", 4, 2},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := s.RenewLease(t.Context(), key, c.holder, c.epoch, testTTL)
			wantErr(t, err, ErrLeaseLost)
		})
	}
	_, err = s.RenewLease(t.Context(), LeaseKey{Kind: LeaseCoordinator, Key: "group/8"}, 4, 1, testTTL)
	wantErr(t, err, ErrLeaseLost)
	// Expired but not taken over: the holder may renew at its epoch.
	clk.Advance(10 * testTTL)
	renewed, err = s.RenewLease(t.Context(), key, 4, 1, testTTL)
	wantErr(t, err, nil)
	if !renewed.Live || renewed.Epoch != 1 {
		t.Fatalf("renewed after expiry = %+v, want live at epoch 1", renewed)
	}
}

func testReleaseLease(t *testing.T, s Store, clk *leaseTestClock) {
	key := PartitionLease("t", 0)
	l := mustAcquire(t, s, key, 1)
	wantErr(t, s.ReleaseLease(t.Context(), key, 1, l.Epoch+1), ErrLeaseLost)
	wantErr(t, s.ReleaseLease(t.Context(), key, 2, l.Epoch), ErrLeaseLost)
	clk.Advance(time.Second)
	wantErr(t, s.ReleaseLease(t.Context(), key, 1, l.Epoch), nil)
	at := t0.Add(time.Second)
	wantLease(t, s, Lease{LeaseKey: key, Holder: NoHolder, Epoch: 1, AcquiredAt: t0, Expires: at})
	// Released: free at once, renewals and releases of it fail, the epoch goes on.
	_, err := s.RenewLease(t.Context(), key, 1, l.Epoch, testTTL)
	wantErr(t, err, ErrLeaseLost)
	wantErr(t, s.ReleaseLease(t.Context(), key, 1, l.Epoch), ErrLeaseLost)
	_, err = s.RenewLease(t.Context(), key, NoHolder, l.Epoch, testTTL)
	wantErr(t, err, ErrInvalid)
	wantErr(t, s.ReleaseLease(t.Context(), key, NoHolder, l.Epoch), ErrInvalid)
	next := mustAcquire(t, s, key, 2)
	wantEqual(t, "epoch after release", next.Epoch, int32(2))
}

func testListLeases(t *testing.T, s Store, clk *leaseTestClock) {
	got, err := s.ListLeases(t.Context(), "")
	wantErr(t, err, nil)
	wantEqual(t, "no leases", got, []Lease{})
	p1 := mustAcquire(t, s, PartitionLease("b", 1), 1)
	p0 := mustAcquire(t, s, PartitionLease("a", 0), 2)
	g := mustAcquire(t, s, LeaseKey{Kind: LeaseCoordinator, Key: "txn/3"}, 3)
	clk.Advance(testTTL / 2)
	p1r, err := s.RenewLease(t.Context(), p1.LeaseKey, 1, 1, testTTL)
	wantErr(t, err, nil)
	clk.Advance(testTTL / 2) // p0 and g expire, p1 does not
	p0.Live, g.Live = false, false
	for _, c := range []struct {
		kind string
		want []Lease
	}{
		{"", []Lease{g, p0, p1r}},
		{LeasePartition, []Lease{p0, p1r}},
		{LeaseCoordinator, []Lease{g}},
		{"none", []Lease{}},
	} {
		got, err := s.ListLeases(t.Context(), c.kind)
		wantErr(t, err, nil)
		for i := range got {
			got[i] = normLease(got[i])
		}
		for i := range c.want {
			c.want[i] = normLease(c.want[i])
		}
		wantEqual(t, "leases of kind "+c.kind, got, c.want)
	}
}

func testLeaseArgs(t *testing.T, s Store, _ *leaseTestClock) {
	ctx := t.Context()
	good := PartitionLease("t", 0)
	for _, c := range []struct {
		name string
		call func() error
	}{
		{"AcquireEmptyKind", func() error { _, err := s.AcquireLease(ctx, LeaseKey{Key: "k"}, 1, testTTL); return err }},
		{"AcquireEmptyKey", func() error { _, err := s.AcquireLease(ctx, LeaseKey{Kind: "k"}, 1, testTTL); return err }},
		{"AcquireNoHolder", func() error { _, err := s.AcquireLease(ctx, good, NoHolder, testTTL); return err }},
		{"AcquireZeroTTL", func() error { _, err := s.AcquireLease(ctx, good, 1, 0); return err }},
		{"RenewZeroTTL", func() error { _, err := s.RenewLease(ctx, good, 1, 1, 0); return err }},
		{"RenewNoHolder", func() error { _, err := s.RenewLease(ctx, good, NoHolder, 1, testTTL); return err }},
		{"ReleaseNoHolder", func() error { return s.ReleaseLease(ctx, good, NoHolder, 1) }},
		{"ReleaseEmptyKey", func() error { return s.ReleaseLease(ctx, LeaseKey{Key: "k"}, 1, 1) }},
		{"RenewEmptyKey", func() error { _, err := s.RenewLease(ctx, LeaseKey{Kind: "k"}, 1, 1, testTTL); return err }},
	} {
		t.Run(c.name, func(t *testing.T) { wantErr(t, c.call(), ErrInvalid) })
	}
	got, err := s.ListLeases(ctx, "")
	wantErr(t, err, nil)
	wantEqual(t, "leases after invalid calls", got, []Lease{})
}

// storeInternals returns the transaction runner and lease clock of a
// store of this package, for tests of unexported query code.
func storeInternals(t *testing.T, s Store) (txRunner, leaseClock) {
	t.Helper()
	switch s := s.(type) {
	case *SQLite:
		return s, s.leaseClock()
	case *Postgres:
		return s, s.leaseClock()
	}
	t.Fatalf("unknown store %T", s)
	return nil, nil
}

// fencedWrite runs checkLease for f in a write transaction of s and, if it
// passes, records f's epoch as a partition's log start offset: a stand-in
// for a guarded write.
func fencedWrite(ctx context.Context, r txRunner, clock leaseClock, f Fence, topicID string) error {
	return r.write(ctx, func(q db) error {
		now, err := clock(ctx, q)
		if err != nil {
			return err
		}
		if err := checkLease(ctx, q, now, f); err != nil {
			return err
		}
		_, err = q.exec(ctx, `UPDATE partitions SET log_start_offset = ? WHERE topic_id = ? AND partition = 0`,
			f.Epoch, topicID)
		return err
	})
}

func testFence(t *testing.T, s Store, clk *leaseTestClock) {
	r, clock := storeInternals(t, s)
	tp := mustCreate(t, s, Topic{Name: "fenced", PartitionCount: 1})
	key := PartitionLease(tp.ID, 0)
	wantErr(t, fencedWrite(t.Context(), r, clock, Fence{key, 1, 1}, tp.ID), ErrLeaseLost) // never acquired
	l := mustAcquire(t, s, key, 1)
	held := Fence{key, 1, l.Epoch}
	wantErr(t, fencedWrite(t.Context(), r, clock, held, tp.ID), nil)
	wantErr(t, fencedWrite(t.Context(), r, clock, Fence{key, 2, l.Epoch}, tp.ID), ErrLeaseLost)
	wantErr(t, fencedWrite(t.Context(), r, clock, Fence{key, 1, l.Epoch + 1}, tp.ID), ErrLeaseLost)
	// Expired: fenced even before anyone takes over; renewing lifts it.
	clk.Advance(testTTL)
	wantErr(t, fencedWrite(t.Context(), r, clock, held, tp.ID), ErrLeaseLost)
	_, err := s.RenewLease(t.Context(), key, 1, l.Epoch, testTTL)
	wantErr(t, err, nil)
	wantErr(t, fencedWrite(t.Context(), r, clock, held, tp.ID), nil)
	// Taken over: the old tenure is fenced for good, the new one writes.
	clk.Advance(testTTL)
	l2 := mustAcquire(t, s, key, 2)
	wantErr(t, fencedWrite(t.Context(), r, clock, held, tp.ID), ErrLeaseLost)
	wantErr(t, fencedWrite(t.Context(), r, clock, Fence{key, 2, l2.Epoch}, tp.ID), nil)
	p, err := s.GetPartition(t.Context(), tp.ID, 0)
	wantErr(t, err, nil)
	wantEqual(t, "last fenced write", p.LogStartOffset, int64(l2.Epoch))
}

// TestPostgresLeaseRace races stores on one database (as brokers would)
// for one lease, round after round: each round exactly one wins, its epoch
// is one above the last round's, the losers see ErrLeaseHeld, and the
// previous winner's renewal fails.
func TestPostgresLeaseRace(t *testing.T) {
	url := pgtest.DB(t)
	clk := newLeaseTestClock()
	const n, rounds = 8, 12
	stores := make([]*Postgres, n)
	for i := range stores {
		stores[i] = openPostgresURL(t, url, WithLeaseClock(clk.Now))
	}
	key := PartitionLease("race", 0)
	var last Lease
	for round := range rounds {
		clk.Advance(testTTL) // the last winner's lease expires
		leases := make([]Lease, n)
		errs := make([]error, n)
		start := make(chan struct{})
		var wg sync.WaitGroup
		for i, s := range stores {
			wg.Go(func() {
				<-start
				leases[i], errs[i] = s.AcquireLease(context.Background(), key, int32(i), testTTL)
			})
		}
		close(start)
		wg.Wait()
		winner := -1
		for i, err := range errs {
			switch {
			case err == nil && winner >= 0:
				t.Fatalf("round %d: brokers %d and %d both acquired", round, winner, i)
			case err == nil:
				winner = i
			case !errors.Is(err, ErrLeaseHeld):
				t.Fatalf("round %d, broker %d: %v", round, i, err)
			}
		}
		if winner < 0 {
			t.Fatalf("round %d: no one acquired: %v", round, errs)
		}
		won := leases[winner]
		if won.Epoch != last.Epoch+1 {
			t.Fatalf("round %d: epoch %d after %d", round, won.Epoch, last.Epoch)
		}
		for i, l := range leases {
			if i != winner && (l.Holder != won.Holder || l.Epoch != won.Epoch) {
				t.Fatalf("round %d: loser %d saw %+v, want the winner's lease %+v", round, i, l, won)
			}
		}
		if round > 0 {
			_, err := stores[0].RenewLease(t.Context(), key, last.Holder, last.Epoch, testTTL)
			wantErr(t, err, ErrLeaseLost)
		}
		last = won
	}
}

// TestPostgresRegisterRace registers brokers with assigned IDs from
// several stores at once: every one gets a distinct ID, 0..n-1.
func TestPostgresRegisterRace(t *testing.T) {
	url := pgtest.DB(t)
	const n = 8
	ids := make([]int32, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		s := openPostgresURL(t, url)
		wg.Go(func() {
			b, err := s.RegisterBroker(context.Background(), brokerAt(AssignBrokerID, fmt.Sprint("h", i)), testTTL)
			ids[i], errs[i] = b.ID, err
		})
	}
	wg.Wait()
	seen := make(map[int32]bool)
	for i, err := range errs {
		wantErr(t, err, nil)
		if ids[i] < 0 || ids[i] >= n || seen[ids[i]] {
			t.Fatalf("assigned ids %v: want each of 0..%d once", ids, n-1)
		}
		seen[ids[i]] = true
	}
}

// TestPostgresFenceRacesTakeover starts a guarded write, lets a takeover
// commit after the write's snapshot was taken, and only then runs the
// fence check: the check must not pass (the retried transaction sees the
// new epoch), and the old epoch's write must not land.
func TestPostgresFenceRacesTakeover(t *testing.T) {
	url := pgtest.DB(t)
	clk := newLeaseTestClock()
	s := openPostgresURL(t, url, WithLeaseClock(clk.Now))
	other := openPostgresURL(t, url, WithLeaseClock(clk.Now))
	tp := mustCreate(t, s, Topic{Name: "fenced", PartitionCount: 1})
	key := PartitionLease(tp.ID, 0)
	l := mustAcquire(t, s, key, 1)
	clk.Advance(testTTL / 2)
	attempts := 0
	err := s.write(t.Context(), func(q db) error {
		attempts++
		now, err := s.leaseClock()(t.Context(), q)
		if err != nil {
			return err
		}
		// A first statement takes the snapshot (the lease clock is not
		// the server's here); then a takeover commits.
		if _, err := q.exec(t.Context(), `SELECT 1`); err != nil {
			return err
		}
		if attempts == 1 {
			wantErr(t, other.ReleaseLease(t.Context(), key, 1, l.Epoch), nil)
			mustAcquire(t, other, key, 2)
		}
		if err := checkLease(t.Context(), q, now, Fence{key, 1, l.Epoch}); err != nil {
			return err
		}
		_, err = q.exec(t.Context(), `UPDATE partitions SET log_start_offset = 99 WHERE topic_id = ?`, tp.ID)
		return err
	})
	wantErr(t, err, ErrLeaseLost)
	if attempts != 2 {
		t.Fatalf("transaction ran %d times, want 2 (a serialization failure, then the fenced rerun)", attempts)
	}
	p, err := s.GetPartition(t.Context(), tp.ID, 0)
	wantErr(t, err, nil)
	wantEqual(t, "log start offset", p.LogStartOffset, int64(0))
}

// TestPostgresFenceBlocksTakeover checks the other order: a takeover that
// starts after a guarded write's check waits until the write committed.
func TestPostgresFenceBlocksTakeover(t *testing.T) {
	url := pgtest.DB(t)
	clk := newLeaseTestClock()
	s := openPostgresURL(t, url, WithLeaseClock(clk.Now))
	other := openPostgresURL(t, url, WithLeaseClock(clk.Now))
	tp := mustCreate(t, s, Topic{Name: "fenced", PartitionCount: 1})
	key := PartitionLease(tp.ID, 0)
	l := mustAcquire(t, s, key, 1)
	clk.Advance(testTTL) // expired only for the takeover below: the check ran before
	takeover := make(chan Lease, 1)
	var writeDone bool
	var mu sync.Mutex
	err := s.write(t.Context(), func(q db) error {
		if err := checkLease(t.Context(), q, millis(t0), Fence{key, 1, l.Epoch}); err != nil {
			return err
		}
		go func() {
			got, err := other.AcquireLease(context.Background(), key, 2, testTTL)
			if err != nil {
				t.Errorf("takeover: %v", err)
			}
			mu.Lock()
			if !writeDone {
				t.Errorf("takeover committed before the guarded write")
			}
			mu.Unlock()
			takeover <- got
		}()
		waitLockWait(t, s)
		_, err := q.exec(t.Context(), `UPDATE partitions SET log_start_offset = 5 WHERE topic_id = ?`, tp.ID)
		mu.Lock()
		writeDone = true
		mu.Unlock()
		return err
	})
	wantErr(t, err, nil)
	got := <-takeover
	wantEqual(t, "takeover epoch", got.Epoch, l.Epoch+1)
}

// TestPostgresServerLeaseClock runs leases on the database server's clock
// (no WithLeaseClock): a lease expires after its ttl of real time.
func TestPostgresServerLeaseClock(t *testing.T) {
	url := pgtest.DB(t)
	a, b := openPostgresURL(t, url), openPostgresURL(t, url)
	key := PartitionLease("clock", 0)
	const ttl = 300 * time.Millisecond
	first, err := a.AcquireLease(t.Context(), key, 1, ttl)
	wantErr(t, err, nil)
	if d := time.Until(first.Expires); d > ttl+5*time.Second || d < -5*time.Second {
		t.Fatalf("lease expires in %v; the server clock is far from ours or ttl ignored", d)
	}
	_, err = b.AcquireLease(t.Context(), key, 2, ttl)
	wantErr(t, err, ErrLeaseHeld)
	deadline := time.Now().Add(10 * time.Second)
	for {
		second, err := b.AcquireLease(t.Context(), key, 2, ttl)
		if err == nil {
			wantEqual(t, "epoch", second.Epoch, int32(2))
			break
		}
		wantErr(t, err, ErrLeaseHeld)
		if time.Now().After(deadline) {
			t.Fatal("lease did not expire by the server clock")
		}
		time.Sleep(20 * time.Millisecond)
	}
	_, err = a.RenewLease(t.Context(), key, 1, 1, ttl)
	wantErr(t, err, ErrLeaseLost)
}

// waitLockWait polls until a session of s's database waits for a lock.
func waitLockWait(t *testing.T, s *Postgres) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		var n int
		err := s.pool.QueryRow(t.Context(), `SELECT count(*) FROM pg_stat_activity
			WHERE datname = current_database() AND wait_event_type = 'Lock'`).Scan(&n)
		wantErr(t, err, nil)
		if n > 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("no session came to wait for a lock")
		}
		time.Sleep(5 * time.Millisecond)
	}
}
