package kafka

// Limits that keep a flood of clients from growing the broker without
// bound: Config.MaxConnections caps open connections (Kafka's
// max.connections; a connection past it is closed at once), and
// Config.QueuedMaxRequestBytes caps the request bytes held in memory
// across all connections (Kafka's queued.max.request.bytes). A connection
// reserves a frame's size from that budget after reading the 4-byte size
// and before allocating the frame, and gives it back once the request is
// handled; while the budget is spent, connections wait before reading
// their next frame, so TCP pushes back on the clients. The budget is at
// least MaxRequestBytes, so that any one valid request fits.
//
// Handlers that wait for other clients (a long-polling Fetch, a JoinGroup
// waiting for the rebalance) hold their small frames while they wait;
// the budget is meant for the bulk of produce data, not to be tight.

import (
	"context"
	"sync"
)

// byteBudget is a FIFO counting semaphore of bytes.
type byteBudget struct {
	// mu guards free and waiters.
	mu      sync.Mutex
	free    int64
	waiters []*budgetWaiter
}

// budgetWaiter is one acquire waiting its turn; ready is closed once its
// bytes are granted.
type budgetWaiter struct {
	n     int64
	ready chan struct{}
}

func newByteBudget(n int64) *byteBudget { return &byteBudget{free: n} }

// acquire reserves n bytes, waiting until they are free (in arrival
// order) or ctx ends; it returns ctx's error then, and nothing is held.
func (b *byteBudget) acquire(ctx context.Context, n int64) error {
	b.mu.Lock()
	if len(b.waiters) == 0 && b.free >= n {
		b.free -= n
		b.mu.Unlock()
		return nil
	}
	w := &budgetWaiter{n: n, ready: make(chan struct{})}
	b.waiters = append(b.waiters, w)
	b.mu.Unlock()
	select {
	case <-w.ready:
		return nil
	case <-ctx.Done():
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	select {
	case <-w.ready: // granted meanwhile: give it back
		b.free += n
	default:
		for i, o := range b.waiters {
			if o == w {
				b.waiters = append(b.waiters[:i], b.waiters[i+1:]...)
				break
			}
		}
	}
	b.grantLocked()
	return ctx.Err()
}

// release returns n bytes and wakes the waiters they satisfy.
func (b *byteBudget) release(n int64) {
	b.mu.Lock()
	b.free += n
	b.grantLocked()
	b.mu.Unlock()
}

// grantLocked grants waiters in order while the first one fits.
func (b *byteBudget) grantLocked() {
	for len(b.waiters) > 0 && b.free >= b.waiters[0].n {
		w := b.waiters[0]
		b.waiters = b.waiters[1:]
		b.free -= w.n
		close(w.ready)
	}
}

// available returns the bytes not held.
func (b *byteBudget) available() int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.free
}

// waiting returns how many acquires are waiting.
func (b *byteBudget) waiting() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.waiters)
}
