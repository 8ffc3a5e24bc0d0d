package cluster

import (
	"slices"
	"testing"
	"time"

	"github.com/streamhouse/streamhouse/meta"
)

const testTTL = 9 * time.Second // heartbeats and rounds every 3s

// wantLive fails t unless r lists the broker IDs want as live.
func wantLive(t *testing.T, r *Registry, want ...int32) {
	t.Helper()
	if got := r.LiveIDs(); !slices.Equal(got, want) {
		t.Fatalf("broker %d sees live %v, want %v", r.ID(), got, want)
	}
}

func TestRegistry(t *testing.T) {
	clk := newFakeClock()
	store := openStore(t, clk)
	newReg := func(id int32) *Registry {
		r := NewRegistry(RegistryConfig{Broker: meta.BrokerInfo{ID: id, Host: "h", Port: 9092}, TTL: testTTL},
			store, clk, nil)
		if err := r.Start(t.Context()); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = r.Close(t.Context()) })
		return r
	}
	a, b, c := newReg(meta.AssignBrokerID), newReg(meta.AssignBrokerID), newReg(7)
	wantEqualIDs(t, []int32{a.ID(), b.ID(), c.ID()}, []int32{0, 1, 7})
	wantLive(t, c, 0, 1, 7)
	wantLive(t, a, 0) // listed at its start; the next heartbeat lists again
	clk.Advance(testTTL / 3)
	wantLive(t, a, 0, 1, 7)

	// Heartbeats keep registrations alive well past the TTL.
	clk.Advance(3 * testTTL)
	wantLive(t, a, 0, 1, 7)

	// A clean close unregisters at once; a crash is noticed after the TTL.
	if err := b.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(crashed()); err != nil {
		t.Fatal(err)
	}
	clk.Advance(testTTL / 3)
	wantLive(t, a, 0, 7)
	clk.Advance(testTTL)
	wantLive(t, a, 0)

	// Another registration of a's ID fences a: its next heartbeat fails,
	// it stops, and its close does not unregister the newcomer.
	a2 := newReg(0)
	select {
	case <-a.Fenced():
		t.Fatal("fenced before a heartbeat")
	default:
	}
	clk.Advance(testTTL / 3)
	select {
	case <-a.Fenced():
	default:
		t.Fatal("a not fenced after its registration was replaced")
	}
	if err := a.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
	clk.Advance(testTTL / 3)
	wantLive(t, a2, 0)
	if a2.Self().Epoch != a.Self().Epoch+1 {
		t.Fatalf("epochs: replaced %d, newcomer %d", a.Self().Epoch, a2.Self().Epoch)
	}
}

// TestRegistryHeartbeatFailures keeps the registration through store
// failures shorter than the TTL.
func TestRegistryHeartbeatFailures(t *testing.T) {
	clk := newFakeClock()
	store := &flakyStore{Store: openStore(t, clk)}
	r := NewRegistry(RegistryConfig{Broker: meta.BrokerInfo{ID: 3, Host: "h", Port: 1}, TTL: testTTL}, store, clk, nil)
	if err := r.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = r.Close(t.Context()) }()
	store.down.Store(true)
	clk.Advance(2 * testTTL / 3) // two failed heartbeats
	store.down.Store(false)
	clk.Advance(testTTL / 3)
	wantLive(t, r, 3)
	select {
	case <-r.Fenced():
		t.Fatal("fenced by store failures")
	default:
	}
}

func wantEqualIDs(t *testing.T, got, want []int32) {
	t.Helper()
	if !slices.Equal(got, want) {
		t.Fatalf("ids %v, want %v", got, want)
	}
}
