package cluster

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/streamhouse/streamhouse/meta"
	"github.com/streamhouse/streamhouse/meta/pgtest"
)

// waitFor polls cond until it holds or timeout passes.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// spreadOK reports whether the instances together hold every key once,
// where Assign over their IDs puts it.
func spreadOK(keys []meta.LeaseKey, ins ...*instance) bool {
	var ids []int32
	held := make(map[meta.LeaseKey]int32)
	for _, in := range ins {
		ids = append(ids, in.reg.ID())
		for k := range in.leases.Held() {
			if _, dup := held[k]; dup {
				return false
			}
			held[k] = in.reg.ID()
		}
	}
	want := Assign(keys, ids)
	if len(held) != len(want) {
		return false
	}
	for k, b := range want {
		if held[k] != b {
			return false
		}
	}
	return true
}

// TestPostgresThreeBrokers runs three Registry+Leases instances, each with
// its own store (connection pool) on one PostgreSQL database, on real
// clocks and the database server's lease clock: the leases spread; a
// stopped instance's leases go to the others after the TTL at higher
// epochs; the stopped instance's renewals are fenced.
func TestPostgresThreeBrokers(t *testing.T) {
	url := pgtest.DB(t)
	open := func() *meta.Postgres {
		s, err := meta.OpenPostgres(t.Context(), url)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = s.Close() })
		return s
	}
	const ttl = 1500 * time.Millisecond
	keys := append(topicKeys("7c1e0f7e-4a43-4a54-9c2b-5d0d1b1f0a01", 9), CoordinatorKeys(CoordinatorGroup, 6)...)
	var ins []*instance
	for range 3 {
		ins = append(ins, startInstance(t, open(), nil, ttl, keys))
	}
	a, b, c := ins[0], ins[1], ins[2]
	waitFor(t, 10*ttl, "the leases to spread over three brokers", func() bool { return spreadOK(keys, a, b, c) })
	for _, in := range ins {
		if n := len(in.leases.Held()); n != 5 {
			t.Fatalf("broker %d holds %d leases, want 5", in.reg.ID(), n)
		}
	}

	cHeld := c.leases.Held()
	stopped := time.Now()
	c.stop(crashed()) // as kill -9: no release, no unregister
	waitFor(t, 10*ttl, "the others to take over", func() bool { return spreadOK(keys, a, b) })
	if took := time.Since(stopped); took < ttl {
		t.Fatalf("leases moved %v after the holder stopped, before the TTL %v", took, ttl)
	}
	taken := make(map[meta.LeaseKey]int32)
	for _, in := range []*instance{a, b} {
		for k, epoch := range in.leases.Held() {
			taken[k] = epoch
		}
	}
	store := open()
	for k, epoch := range cHeld {
		if taken[k] <= epoch {
			t.Fatalf("%s taken over at epoch %d, not above the stopped holder's %d", k, taken[k], epoch)
		}
		_, err := store.RenewLease(t.Context(), k, c.reg.ID(), epoch, ttl)
		if !errors.Is(err, meta.ErrLeaseLost) {
			t.Fatalf("stopped holder renewing %s at epoch %d: %v, want ErrLeaseLost", k, epoch, err)
		}
	}
	// A clean stop releases at once (no waiting for the TTL) and a takes
	// everything at its next rounds.
	bHeld := b.leases.Held()
	b.stop(context.Background())
	for k, epoch := range bHeld {
		le, found, err := store.GetLease(t.Context(), k)
		if err != nil || !found || le.Live || le.Holder != meta.NoHolder || le.Epoch != epoch {
			t.Fatalf("%s after a clean stop: %+v, %v, %v; want released at epoch %d", k, le, found, err, epoch)
		}
	}
	waitFor(t, 3*ttl, "a to hold everything", func() bool { return spreadOK(keys, a) })
}
