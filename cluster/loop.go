package cluster

import (
	"context"
	"sync"
	"time"
)

// loop runs a round on a timer: once per interval, never two at once
// (each round arms the next when it ends), and stop waits for a running
// round. It is the one piece of timer plumbing Registry and Leases share.
type loop struct {
	clock    Clock
	interval time.Duration
	round    func(ctx context.Context)
	ctx      context.Context // cancelled by stop; rounds use it for I/O
	cancel   context.CancelFunc

	// mu guards stopped and timer.
	mu      sync.Mutex
	stopped bool
	timer   Timer // the armed timer; nil once stopped
	// running counts running rounds; stop waits for them.
	running sync.WaitGroup
}

// newLoop returns a loop, not yet armed.
func newLoop(clock Clock, interval time.Duration, round func(ctx context.Context)) *loop {
	ctx, cancel := context.WithCancel(context.Background())
	return &loop{clock: clock, interval: interval, round: round, ctx: ctx, cancel: cancel}
}

// arm schedules the next round after the interval, unless stopped.
func (l *loop) arm() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.stopped {
		return
	}
	l.timer = l.clock.AfterFunc(l.interval, l.fire)
}

// fire runs a round and arms the next.
func (l *loop) fire() {
	l.mu.Lock()
	if l.stopped {
		l.mu.Unlock()
		return
	}
	l.running.Add(1)
	l.mu.Unlock()
	defer l.running.Done()
	l.round(l.ctx)
	l.arm()
}

// disarm stops the loop from arming again; unlike stop it may be called
// from a round.
func (l *loop) disarm() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.stopped = true
	if l.timer != nil {
		l.timer.Stop()
		l.timer = nil
	}
}

// stop disarms the timer, cancels the context rounds use, and waits for a
// running round to return. Safe to call more than once.
func (l *loop) stop() {
	l.disarm()
	l.cancel()
	l.running.Wait()
}
