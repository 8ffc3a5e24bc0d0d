package txn

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/streamhouse/streamhouse/meta"
)

// TestConcurrentOperations runs producers of several transactional IDs
// (two per ID, fencing each other), admin views and the timers at once,
// for the race detector; every error must be one a client can get.
func TestConcurrentOperations(t *testing.T) {
	h := newHarness(t, Config{AbortTimedOutInterval: 10 * time.Millisecond, RetryBackoff: 10 * time.Millisecond,
		RemoveExpiredInterval: 20 * time.Millisecond, TransactionalIDExpiration: 50 * time.Millisecond})
	expected := []error{ErrProducerFenced, ErrInvalidProducerEpoch, ErrInvalidProducerIDMapping, ErrConcurrentTransactions,
		ErrInvalidTxnState, ErrNotInTransaction}
	check := func(err error) {
		if err == nil {
			return
		}
		for _, e := range expected {
			if errors.Is(err, e) {
				return
			}
		}
		t.Errorf("unexpected error: %v", err)
	}
	var producers, background sync.WaitGroup
	stop := make(chan struct{})
	for i := range 8 {
		id := fmt.Sprintf("id-%d", i%4)
		producers.Go(func() {
			for n := 0; n < 50; n++ {
				pid, epoch, err := h.c.InitProducerID(ctx, id, 100, -1, -1)
				if err != nil {
					check(err)
					continue
				}
				check(h.c.AddPartitions(ctx, id, pid, epoch, []meta.TopicPartition{tp("a", int32(n%3))}))
				check(h.c.CheckProduce(ctx, id, pid, epoch, "a", int32(n%3), n%2 == 0))
				check(h.c.AddOffsets(ctx, id, pid, epoch, "g"))
				check(h.c.TxnOffsetCommit(ctx, id, pid, epoch, "g", n%2 == 0, []meta.TxnOffset{{Topic: "a", Offset: int64(n)}}))
				_, _, err = h.c.EndTxn(ctx, id, pid, epoch, n%3 != 0, n%2 == 0)
				check(err)
			}
		})
	}
	background.Go(func() { // the admin views
		for {
			select {
			case <-stop:
				return
			default:
			}
			h.c.List(Filter{MinDurationMs: -1})
			_, _ = h.c.Describe("id-0")
			_, err := h.c.PendingOffsets(ctx, "g")
			check(err)
		}
	})
	background.Go(func() { // the timers
		for {
			select {
			case <-stop:
				return
			default:
				h.clock.Advance(5 * time.Millisecond)
			}
		}
	})
	producers.Wait()
	close(stop)
	background.Wait()
	for _, t2 := range h.c.List(Filter{MinDurationMs: -1}) {
		stored, ok := h.store.stored(t2.TransactionalID)
		if !ok || stored.State != t2.State || stored.ProducerEpoch != t2.ProducerEpoch {
			t.Errorf("memory %+v, store %+v", t2, stored)
		}
	}
}
