package cluster

import (
	"errors"
	"maps"
	"slices"
	"testing"

	"github.com/streamhouse/streamhouse/meta"
)

// testKeys are the leases the Leases tests place: 6 partitions of a topic
// and 3 consumer-group coordinator shards.
func testKeys() []meta.LeaseKey {
	return append(topicKeys("topic-a", 6), CoordinatorKeys(CoordinatorGroup, 3)...)
}

// wantSpread fails t unless the instances together hold every key once,
// each where Assign puts it over their IDs, and returns key -> holder.
func wantSpread(t *testing.T, keys []meta.LeaseKey, ins ...*instance) map[meta.LeaseKey]int32 {
	t.Helper()
	got := make(map[meta.LeaseKey]int32)
	var ids []int32
	for _, in := range ins {
		ids = append(ids, in.reg.ID())
		for k := range in.leases.Held() {
			if other, dup := got[k]; dup {
				t.Fatalf("%s held by %d and %d", k, other, in.reg.ID())
			}
			got[k] = in.reg.ID()
		}
	}
	if want := Assign(keys, ids); !maps.Equal(got, want) {
		t.Fatalf("held %v, want %v", got, want)
	}
	return got
}

// wantEvents fails t unless evs, in any order, are exactly want.
func wantEvents(t *testing.T, what string, evs []Event, want []Event) {
	t.Helper()
	sortEvents := func(e []Event) []Event {
		e = slices.Clone(e)
		slices.SortFunc(e, func(a, b Event) int { return compareKeys(a.Key, b.Key) })
		return e
	}
	if g, w := sortEvents(evs), sortEvents(want); !slices.Equal(g, w) {
		t.Fatalf("%s: events\n got  %v\n want %v", what, g, w)
	}
}

// TestLeasesSpreadAndFailover starts three brokers on one clock: the
// leases spread as Assign says; a crashed broker's leases go to the
// others after the TTL, at the next epoch; its own renewals then fail.
func TestLeasesSpreadAndFailover(t *testing.T) {
	clk := newFakeClock()
	store := openStore(t, clk)
	keys := testKeys()
	a := startInstance(t, store, clk, testTTL, keys)
	b := startInstance(t, store, clk, testTTL, keys)
	c := startInstance(t, store, clk, testTTL, keys)
	clk.Advance(testTTL) // a few rounds: everyone sees everyone, releases and acquires settle
	held := wantSpread(t, keys, a, b, c)
	for _, in := range []*instance{a, b, c} {
		if n := len(in.leases.Held()); n != 3 {
			t.Fatalf("broker %d holds %d leases, want 3", in.reg.ID(), n)
		}
	}
	// Leader answers alike on every broker.
	clk.Advance(testTTL / 3)
	for _, k := range keys {
		for _, in := range []*instance{a, b, c} {
			if id, _, ok := in.leases.Leader(k); !ok || id != held[k] {
				t.Fatalf("broker %d: Leader(%s) = %d, %v; want %d", in.reg.ID(), k, id, ok, held[k])
			}
		}
	}

	cHeld := c.leases.Held()
	a.ev.take()
	b.ev.take()
	c.stop(crashed()) // no release, no unregister
	clk.Advance(testTTL + testTTL/3)
	wantSpread(t, keys, a, b)
	var gained []Event
	for _, in := range []*instance{a, b} {
		for _, ev := range in.ev.take() {
			if !ev.Leading {
				continue // a rebalance between a and b may move a key
			}
			gained = append(gained, ev)
		}
	}
	var want []Event
	for k, epoch := range cHeld {
		want = append(want, Event{Key: k, Epoch: epoch + 1, Leading: true})
	}
	// Only c's keys change hands when it leaves a and b (Assign moves no
	// others here), each at the next epoch.
	wantEvents(t, "takeover", gained, want)
	for k, epoch := range cHeld {
		_, err := store.RenewLease(t.Context(), k, c.reg.ID(), epoch, testTTL)
		if !errors.Is(err, meta.ErrLeaseLost) {
			t.Fatalf("crashed broker renewing %s: %v, want ErrLeaseLost", k, err)
		}
	}
}

// TestLeasesPausedHolder pauses one broker (its clock stops) past the
// TTL: the other takes its leases; when it resumes its renewals fail and
// it reports every lease lost; then placement gives it its share back, at
// new epochs.
func TestLeasesPausedHolder(t *testing.T) {
	clk, pausedClk := newFakeClock(), newFakeClock()
	store := openStore(t, clk) // the lease clock is clk's
	keys := testKeys()
	a := startInstance(t, store, pausedClk, testTTL, keys)
	b := startInstance(t, store, clk, testTTL, keys)
	pausedClk.Advance(testTTL / 3) // a sees b
	clk.Advance(testTTL / 3)
	pausedClk.Advance(testTTL / 3)
	before := wantSpread(t, keys, a, b)
	aHeld := a.leases.Held()
	a.ev.take()
	b.ev.take()

	clk.Advance(testTTL + testTTL/3) // a is paused throughout
	if n := len(b.leases.Held()); n != len(keys) {
		t.Fatalf("b holds %d leases after a paused, want all %d", n, len(keys))
	}
	pausedClk.Advance(testTTL / 3) // a resumes: one round
	var want []Event
	for k, epoch := range aHeld {
		want = append(want, Event{Key: k, Epoch: epoch})
	}
	wantEvents(t, "resumed broker", a.ev.take(), want)
	if len(a.leases.Held()) != 0 {
		t.Fatalf("resumed broker still holds %v", a.leases.Held())
	}

	// Its registration was not replaced: it is live again and gets its
	// keys back, each at a later epoch than b's.
	for range 4 {
		clk.Advance(testTTL / 3)
		pausedClk.Advance(testTTL / 3)
	}
	after := wantSpread(t, keys, a, b)
	if !maps.Equal(before, after) {
		t.Fatalf("placement after resume %v, want %v", after, before)
	}
	for k, epoch := range a.leases.Held() {
		if epoch != aHeld[k]+2 {
			t.Fatalf("%s back at epoch %d, want %d (a's, b's, a's again)", k, epoch, aHeld[k]+2)
		}
	}
}

// TestLeasesJoinAndLeave adds a broker to a running one and removes it
// cleanly: the keys move with a release (lost before the new holder
// gains), and back again at once on the clean leave.
func TestLeasesJoinAndLeave(t *testing.T) {
	clk := newFakeClock()
	store := openStore(t, clk)
	keys := testKeys()
	a := startInstance(t, store, clk, testTTL, keys)
	if n := len(a.leases.Held()); n != len(keys) {
		t.Fatalf("alone, a holds %d of %d", n, len(keys))
	}
	a.ev.take()
	b := startInstance(t, store, clk, testTTL, keys)
	clk.Advance(testTTL)
	wantSpread(t, keys, a, b)
	for _, ev := range a.ev.take() {
		if ev.Leading {
			t.Fatalf("a gained %v when b joined", ev)
		}
	}
	bHeld := b.leases.Held()
	for k, epoch := range bHeld {
		if epoch != 2 {
			t.Fatalf("b got %s at epoch %d, want 2", k, epoch)
		}
	}
	b.stop(t.Context()) // releases and unregisters
	clk.Advance(testTTL / 3)
	if n := len(a.leases.Held()); n != len(keys) {
		t.Fatalf("after b left, a holds %d of %d", n, len(keys))
	}
}

// TestLeasesStoreDown makes renewals fail: the broker keeps its leases
// while it still can renew in time, then reports them lost before their
// local deadline; fenced, it drops them.
func TestLeasesStoreDown(t *testing.T) {
	clk := newFakeClock()
	store := &flakyStore{Store: openStore(t, clk)}
	keys := topicKeys("t", 2)
	a := startInstance(t, store, clk, testTTL, keys)
	a.ev.take()
	store.down.Store(true)
	clk.Advance(testTTL / 3) // deadline TTL away at the last renewal: 2/3 left
	if len(a.leases.Held()) != 2 || len(a.ev.take()) != 0 {
		t.Fatal("lost leases after one failed renewal")
	}
	clk.Advance(testTTL / 3) // 1/3 left: no later round can renew in time
	if evs := a.ev.take(); len(evs) != 2 || evs[0].Leading || evs[1].Leading {
		t.Fatalf("events %v, want two losses", evs)
	}
	store.down.Store(false)
	clk.Advance(testTTL) // the store's leases expire; a acquires again
	if held := a.leases.Held(); len(held) != 2 || held[keys[0]] != 2 {
		t.Fatalf("held %v, want both at epoch 2", held)
	}

	// Fenced: another registration of a's ID. a drops everything.
	other := NewRegistry(RegistryConfig{Broker: meta.BrokerInfo{ID: a.reg.ID(), Host: "x", Port: 1}, TTL: testTTL},
		store, clk, nil)
	if err := other.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = other.Close(t.Context()) }()
	a.ev.take()
	clk.Advance(testTTL / 3)
	clk.Advance(testTTL / 3)
	if held := a.leases.Held(); len(held) != 0 {
		t.Fatalf("fenced broker holds %v", held)
	}
	if evs := a.ev.take(); len(evs) != 2 {
		t.Fatalf("fenced broker events %v, want two losses", evs)
	}
}
