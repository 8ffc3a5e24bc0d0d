package txn

import (
	"context"
	"errors"
	"math"
	"regexp"
	"slices"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/streamhouse/streamhouse/internal/metricstest"
	"github.com/streamhouse/streamhouse/log"
	"github.com/streamhouse/streamhouse/meta"
)

// harness is a coordinator over a fake store, fake markers and a fake
// clock.
type harness struct {
	t     *testing.T
	cfg   Config
	clock *fakeClock
	store *fakeStore
	marks *fakeMarkers
	reg   *prometheus.Registry
	c     *Coordinator
}

func newHarness(t *testing.T, cfg Config) *harness {
	t.Helper()
	h := &harness{t: t, cfg: cfg, clock: newFakeClock(), store: newFakeStore(), marks: &fakeMarkers{}}
	h.start()
	t.Cleanup(func() { h.c.Close() })
	return h
}

// start builds and starts a coordinator on the harness's store (a
// restart when one ran before).
func (h *harness) start() {
	h.t.Helper()
	h.reg = prometheus.NewRegistry()
	h.c = New(h.cfg, h.clock, h.store, h.marks, nil, h.reg)
	if err := h.c.Start(context.Background()); err != nil {
		h.t.Fatal(err)
	}
}

func (h *harness) restart() {
	h.t.Helper()
	h.c.Close()
	h.start()
}

var ctx = context.Background()

// metric is the value of the coordinator's metric name.
func (h *harness) metric(name string) float64 {
	h.t.Helper()
	v, _ := metricstest.Sum(h.t, h.reg, name, nil)
	return v
}

func tp(topic string, p int32) meta.TopicPartition {
	return meta.TopicPartition{Topic: topic, Partition: p}
}

// initID initializes txnID and returns its producer ID and epoch.
func (h *harness) initID(txnID string) (int64, int16) {
	h.t.Helper()
	pid, epoch, err := h.c.InitProducerID(ctx, txnID, 60_000, -1, -1)
	if err != nil {
		h.t.Fatalf("InitProducerID(%q): %v", txnID, err)
	}
	return pid, epoch
}

// begin initializes txnID and adds parts.
func (h *harness) begin(txnID string, parts ...meta.TopicPartition) (int64, int16) {
	h.t.Helper()
	pid, epoch := h.initID(txnID)
	if err := h.c.AddPartitions(ctx, txnID, pid, epoch, parts); err != nil {
		h.t.Fatalf("AddPartitions: %v", err)
	}
	return pid, epoch
}

func (h *harness) state(txnID string) meta.Txn {
	h.t.Helper()
	t, err := h.c.Describe(txnID)
	if err != nil {
		h.t.Fatalf("Describe(%q): %v", txnID, err)
	}
	stored, ok := h.store.stored(txnID)
	if !ok || stored.State != t.State || stored.ProducerEpoch != t.ProducerEpoch || stored.ProducerID != t.ProducerID {
		h.t.Fatalf("memory %+v differs from store %+v", t, stored)
	}
	return t
}

func wantErr(t *testing.T, err, want error) {
	t.Helper()
	if want == nil && err != nil || want != nil && !errors.Is(err, want) {
		t.Fatalf("error %v, want %v", err, want)
	}
}

func wantMarkers(t *testing.T, got []log.TxnMarker, commit bool, pid int64, epoch int16, parts ...meta.TopicPartition) {
	t.Helper()
	if len(got) != len(parts) {
		t.Fatalf("%d markers %+v, want %d", len(got), got, len(parts))
	}
	for i, m := range got {
		want := log.TxnMarker{Topic: parts[i].Topic, Partition: parts[i].Partition, ProducerID: pid, ProducerEpoch: epoch, Commit: commit}
		if m != want {
			t.Fatalf("marker %d: %+v, want %+v", i, m, want)
		}
	}
}

func TestInitProducerID(t *testing.T) {
	const max = 2 * time.Minute
	cases := []struct {
		name string
		// seed, when set, is stored before the coordinator starts.
		seed      *meta.Txn
		timeoutMs int32
		pid       int64
		epoch     int16
		wantErr   error
		// wantPID -1 means a freshly allocated one.
		wantPID   int64
		wantEpoch int16
		wantLast  int16
	}{
		{name: "new ID", timeoutMs: 1000, pid: -1, epoch: -1, wantPID: -1, wantEpoch: 0, wantLast: -1},
		{name: "zero timeout", timeoutMs: 0, pid: -1, epoch: -1, wantErr: ErrInvalidTxnTimeout},
		{name: "timeout above max", timeoutMs: int32(max.Milliseconds()) + 1, pid: -1, epoch: -1, wantErr: ErrInvalidTxnTimeout},
		{name: "timeout at max", timeoutMs: int32(max.Milliseconds()), pid: -1, epoch: -1, wantPID: -1, wantEpoch: 0, wantLast: -1},
		{name: "known ID bumps", seed: &meta.Txn{ProducerID: 7, ProducerEpoch: 4, LastProducerID: 7, LastProducerEpoch: -1, State: meta.TxnCompleteCommit},
			timeoutMs: 1000, pid: -1, epoch: -1, wantPID: 7, wantEpoch: 5, wantLast: -1},
		{name: "KIP-360 bump of current epoch", seed: &meta.Txn{ProducerID: 7, ProducerEpoch: 4, LastProducerID: 7, LastProducerEpoch: -1, State: meta.TxnCompleteAbort},
			timeoutMs: 1000, pid: 7, epoch: 4, wantPID: 7, wantEpoch: 5, wantLast: 4},
		{name: "KIP-360 retry of a bump", seed: &meta.Txn{ProducerID: 7, ProducerEpoch: 5, LastProducerID: 7, LastProducerEpoch: 4, State: meta.TxnEmpty},
			timeoutMs: 1000, pid: 7, epoch: 4, wantPID: 7, wantEpoch: 5, wantLast: 4},
		{name: "KIP-360 stale epoch", seed: &meta.Txn{ProducerID: 7, ProducerEpoch: 5, LastProducerID: 7, LastProducerEpoch: 4, State: meta.TxnEmpty},
			timeoutMs: 1000, pid: 7, epoch: 3, wantErr: ErrProducerFenced},
		{name: "KIP-360 other producer ID", seed: &meta.Txn{ProducerID: 7, ProducerEpoch: 5, LastProducerID: 7, LastProducerEpoch: -1, State: meta.TxnEmpty},
			timeoutMs: 1000, pid: 8, epoch: 5, wantErr: ErrProducerFenced},
		{name: "KIP-360 unknown ID", timeoutMs: 1000, pid: 99, epoch: 3, wantPID: -1, wantEpoch: 0, wantLast: -1},
		{name: "exhausted epoch rotates", seed: &meta.Txn{ProducerID: 7, ProducerEpoch: math.MaxInt16 - 1, LastProducerID: 7, LastProducerEpoch: -1, State: meta.TxnCompleteCommit},
			timeoutMs: 1000, pid: -1, epoch: -1, wantPID: -1, wantEpoch: 0, wantLast: -1},
		{name: "KIP-360 exhausted epoch rotates", seed: &meta.Txn{ProducerID: 7, ProducerEpoch: math.MaxInt16 - 1, LastProducerID: 7, LastProducerEpoch: -1, State: meta.TxnCompleteCommit},
			timeoutMs: 1000, pid: 7, epoch: math.MaxInt16 - 1, wantPID: -1, wantEpoch: 0, wantLast: math.MaxInt16 - 1},
		{name: "KIP-360 retry after rotation", seed: &meta.Txn{ProducerID: 9, ProducerEpoch: 0, LastProducerID: 7, LastProducerEpoch: math.MaxInt16 - 1, State: meta.TxnEmpty},
			timeoutMs: 1000, pid: 7, epoch: math.MaxInt16 - 1, wantPID: 9, wantEpoch: 0, wantLast: math.MaxInt16 - 1},
		{name: "being completed", seed: &meta.Txn{ProducerID: 7, ProducerEpoch: 5, LastProducerID: 7, LastProducerEpoch: -1, State: meta.TxnPrepareCommit,
			Partitions: []meta.TopicPartition{tp("a", 0)}, StartedAt: time.UnixMilli(1)},
			timeoutMs: 1000, pid: -1, epoch: -1, wantErr: ErrConcurrentTransactions},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := &harness{t: t, cfg: Config{TransactionMaxTimeout: max}, clock: newFakeClock(), store: newFakeStore(), marks: &fakeMarkers{}}
			if tc.seed != nil {
				s := *tc.seed
				s.TransactionalID, s.TimeoutMs = "id", 1000
				h.store.txns["id"] = s
			}
			h.start()
			t.Cleanup(h.c.Close)
			if tc.seed != nil && tc.seed.State == meta.TxnPrepareCommit {
				// Start completed it; make it decided again with
				// markers failing.
				h.store.txns["id"] = func() meta.Txn { s := *tc.seed; s.TransactionalID, s.TimeoutMs = "id", 1000; return s }()
				h.marks.setFail(true)
				h.restart()
			}
			before := h.store.nextID
			pid, epoch, err := h.c.InitProducerID(ctx, "id", tc.timeoutMs, tc.pid, tc.epoch)
			wantErr(t, err, tc.wantErr)
			if tc.wantErr != nil {
				if pid != -1 || epoch != -1 {
					t.Fatalf("answer %d/%d with an error", pid, epoch)
				}
				if tc.seed == nil {
					if _, err := h.c.Describe("id"); !errors.Is(err, ErrTransactionalIDNotFound) {
						t.Fatalf("failed init left the ID behind: %v", err)
					}
				}
				return
			}
			wantPID := tc.wantPID
			if wantPID == -1 {
				wantPID = h.store.nextID
				if wantPID == before {
					t.Fatalf("no producer ID allocated")
				}
			}
			if pid != wantPID || epoch != tc.wantEpoch {
				t.Fatalf("got %d/%d, want %d/%d", pid, epoch, wantPID, tc.wantEpoch)
			}
			st := h.state("id")
			if st.State != meta.TxnEmpty || st.LastProducerEpoch != tc.wantLast || st.TimeoutMs != tc.timeoutMs {
				t.Fatalf("state %+v, want Empty, last epoch %d, timeout %d", st, tc.wantLast, tc.timeoutMs)
			}
		})
	}
}

func TestFencingAbortsOngoing(t *testing.T) {
	h := newHarness(t, Config{})
	a, b := tp("a", 0), tp("b", 1)
	pid, epoch := h.begin("id", a, b)
	if err := h.c.AddOffsets(ctx, "id", pid, epoch, "g"); err != nil {
		t.Fatal(err)
	}
	if err := h.c.TxnOffsetCommit(ctx, "id", pid, epoch, "g", false, []meta.TxnOffset{{Topic: "a", Partition: 0, Offset: 5}}); err != nil {
		t.Fatal(err)
	}
	h.marks.take()

	pid2, epoch2 := h.initID("id")
	if pid2 != pid || epoch2 != epoch+2 {
		t.Fatalf("new producer got %d/%d, want %d/%d", pid2, epoch2, pid, epoch+2)
	}
	wantMarkers(t, h.marks.take(), false, pid, epoch+1, a, b)
	if p, _ := h.store.PendingTxnOffsets(ctx, "g"); len(p) != 0 || len(h.store.committed) != 0 {
		t.Fatalf("fenced transaction's offsets: pending %v, committed %v", p, h.store.committed)
	}
	if st := h.state("id"); st.State != meta.TxnEmpty || len(st.Partitions) != 0 || len(st.Groups) != 0 {
		t.Fatalf("state after fencing %+v", st)
	}
	// The zombie is fenced everywhere.
	wantErr(t, h.c.AddPartitions(ctx, "id", pid, epoch, []meta.TopicPartition{a}), ErrProducerFenced)
	wantErr(t, h.c.CheckProduce(ctx, "id", pid, epoch, "a", 0, false), ErrInvalidProducerEpoch)
	_, _, err := h.c.EndTxn(ctx, "id", pid, epoch, true, false)
	wantErr(t, err, ErrProducerFenced)
	wantErr(t, h.c.TxnOffsetCommit(ctx, "id", pid, epoch, "g", false, nil), ErrInvalidProducerEpoch)
	if got := h.metric("streamhouse_kafka_txn_aborts_total"); got != 1 {
		t.Fatalf("aborts %v, want 1", got)
	}
}

func TestFencingWithFailingMarkers(t *testing.T) {
	h := newHarness(t, Config{RetryBackoff: time.Second})
	a := tp("a", 0)
	pid, epoch := h.begin("id", a)
	h.marks.setFail(true)
	_, _, err := h.c.InitProducerID(ctx, "id", 60_000, -1, -1)
	wantErr(t, err, ErrConcurrentTransactions)
	if st := h.state("id"); st.State != meta.TxnPrepareAbort || st.ProducerEpoch != epoch+1 {
		t.Fatalf("state %+v, want PrepareAbort at epoch %d", st, epoch+1)
	}
	h.marks.setFail(false)
	h.clock.Advance(time.Second)
	wantMarkers(t, h.marks.take(), false, pid, epoch+1, a)
	_, epoch2 := h.initID("id")
	if epoch2 != epoch+2 {
		t.Fatalf("epoch %d, want %d", epoch2, epoch+2)
	}
}

func TestEndTxnV1(t *testing.T) {
	a := tp("a", 0)
	type step struct {
		commit  bool
		wantErr error
		// markers written by the step
		markers int
	}
	cases := []struct {
		name  string
		steps []step
		state meta.TxnState
	}{
		{name: "commit", steps: []step{{commit: true, markers: 1}}, state: meta.TxnCompleteCommit},
		{name: "abort", steps: []step{{commit: false, markers: 1}}, state: meta.TxnCompleteAbort},
		{name: "commit retried", steps: []step{{commit: true, markers: 1}, {commit: true}}, state: meta.TxnCompleteCommit},
		{name: "abort retried", steps: []step{{commit: false, markers: 1}, {commit: false}}, state: meta.TxnCompleteAbort},
		{name: "abort after commit", steps: []step{{commit: true, markers: 1}, {commit: false, wantErr: ErrInvalidTxnState}}, state: meta.TxnCompleteCommit},
		{name: "commit after abort", steps: []step{{commit: false, markers: 1}, {commit: true, wantErr: ErrInvalidTxnState}}, state: meta.TxnCompleteAbort},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, Config{})
			pid, epoch := h.begin("id", a)
			h.marks.take()
			for i, s := range tc.steps {
				_, _, err := h.c.EndTxn(ctx, "id", pid, epoch, s.commit, false)
				if s.wantErr == nil && err != nil || s.wantErr != nil && !errors.Is(err, s.wantErr) {
					t.Fatalf("step %d: error %v, want %v", i, err, s.wantErr)
				}
				if got := h.marks.take(); len(got) != s.markers {
					t.Fatalf("step %d: markers %+v, want %d", i, got, s.markers)
				} else if len(got) == 1 {
					wantMarkers(t, got, s.commit, pid, epoch, a)
				}
			}
			if st := h.state("id"); st.State != tc.state || st.ProducerEpoch != epoch {
				t.Fatalf("state %+v, want %s at epoch %d", st, tc.state, epoch)
			}
		})
	}
	t.Run("misuse", func(t *testing.T) {
		h := newHarness(t, Config{})
		pid, epoch := h.initID("id")
		_, _, err := h.c.EndTxn(ctx, "id", pid, epoch, true, false)
		wantErr(t, err, ErrInvalidTxnState) // Empty
		_, _, err = h.c.EndTxn(ctx, "nope", pid, epoch, true, false)
		wantErr(t, err, ErrInvalidProducerIDMapping)
		_, _, err = h.c.EndTxn(ctx, "id", pid+1, epoch, true, false)
		wantErr(t, err, ErrInvalidProducerIDMapping)
		_, _, err = h.c.EndTxn(ctx, "id", pid, epoch+1, true, false)
		wantErr(t, err, ErrProducerFenced)
	})
}

func TestCommitAppliesOffsets(t *testing.T) {
	h := newHarness(t, Config{})
	pid, epoch := h.begin("id", tp("a", 0))
	if err := h.c.AddOffsets(ctx, "id", pid, epoch, "g"); err != nil {
		t.Fatal(err)
	}
	offs := []meta.TxnOffset{{Topic: "in", Partition: 2, Offset: 42, LeaderEpoch: -1, Metadata: "m"}}
	if err := h.c.TxnOffsetCommit(ctx, "id", pid, epoch, "g", false, offs); err != nil {
		t.Fatal(err)
	}
	p, err := h.c.PendingOffsets(ctx, "g")
	if err != nil || len(p) != 1 || p[0].Offset != 42 || p[0].ProducerID != pid || p[0].TransactionalID != "id" {
		t.Fatalf("pending %+v, %v", p, err)
	}
	if _, _, err := h.c.EndTxn(ctx, "id", pid, epoch, true, false); err != nil {
		t.Fatal(err)
	}
	if p, _ := h.c.PendingOffsets(ctx, "g"); len(p) != 0 {
		t.Fatalf("pending after commit: %+v", p)
	}
	if o, ok := h.store.committed["g/in/2"]; !ok || o.Offset != 42 {
		t.Fatalf("committed %+v", h.store.committed)
	}
}

func TestEndTxnV2(t *testing.T) {
	a := tp("a", 0)
	t.Run("commit bumps and retry", func(t *testing.T) {
		h := newHarness(t, Config{})
		pid, epoch := h.begin("id", a)
		h.marks.take()
		gotPID, gotEpoch, err := h.c.EndTxn(ctx, "id", pid, epoch, true, true)
		if err != nil || gotPID != pid || gotEpoch != epoch+1 {
			t.Fatalf("EndTxn: %d/%d, %v; want %d/%d", gotPID, gotEpoch, err, pid, epoch+1)
		}
		wantMarkers(t, h.marks.take(), true, pid, epoch+1, a)
		st := h.state("id")
		if st.State != meta.TxnCompleteCommit || st.LastProducerEpoch != epoch || st.TxnVersion != 2 {
			t.Fatalf("state %+v", st)
		}
		// A retry (the epoch before the bump) gets the same answer.
		gotPID, gotEpoch, err = h.c.EndTxn(ctx, "id", pid, epoch, true, true)
		if err != nil || gotPID != pid || gotEpoch != epoch+1 {
			t.Fatalf("retry: %d/%d, %v", gotPID, gotEpoch, err)
		}
		_, _, err = h.c.EndTxn(ctx, "id", pid, epoch, false, true)
		wantErr(t, err, ErrInvalidTxnState) // abort retry of a commit
		_, _, err = h.c.EndTxn(ctx, "id", pid, epoch+1, true, true)
		wantErr(t, err, ErrInvalidTxnState) // commit of nothing
		_, _, err = h.c.EndTxn(ctx, "id", pid, epoch-1, true, true)
		wantErr(t, err, ErrProducerFenced)
		if len(h.marks.take()) != 0 {
			t.Fatal("retries wrote markers")
		}
		// An abort with nothing added bumps, writes nothing.
		gotPID, gotEpoch, err = h.c.EndTxn(ctx, "id", pid, epoch+1, false, true)
		if err != nil || gotPID != pid || gotEpoch != epoch+2 {
			t.Fatalf("empty abort: %d/%d, %v", gotPID, gotEpoch, err)
		}
		if st := h.state("id"); st.State != meta.TxnCompleteAbort || len(h.marks.take()) != 0 {
			t.Fatalf("state %+v", st)
		}
		gotPID, gotEpoch, err = h.c.EndTxn(ctx, "id", pid, epoch+1, false, true)
		if err != nil || gotEpoch != epoch+2 {
			t.Fatalf("empty abort retry: %d/%d, %v", gotPID, gotEpoch, err)
		}
	})
	t.Run("implicit add and abort", func(t *testing.T) {
		h := newHarness(t, Config{})
		pid, epoch := h.initID("id")
		if err := h.c.CheckProduce(ctx, "id", pid, epoch, "a", 0, true); err != nil {
			t.Fatal(err)
		}
		if st := h.state("id"); st.State != meta.TxnOngoing || !slices.Equal(st.Partitions, []meta.TopicPartition{a}) || st.TxnVersion != 2 {
			t.Fatalf("state %+v", st)
		}
		if err := h.c.TxnOffsetCommit(ctx, "id", pid, epoch, "g", true, []meta.TxnOffset{{Topic: "in", Offset: 1}}); err != nil {
			t.Fatal(err)
		}
		_, gotEpoch, err := h.c.EndTxn(ctx, "id", pid, epoch, false, true)
		if err != nil || gotEpoch != epoch+1 {
			t.Fatalf("abort: %d, %v", gotEpoch, err)
		}
		wantMarkers(t, h.marks.take(), false, pid, epoch+1, a)
		if len(h.store.committed) != 0 {
			t.Fatalf("aborted offsets committed: %v", h.store.committed)
		}
		// The old epoch can no longer produce.
		wantErr(t, h.c.CheckProduce(ctx, "id", pid, epoch, "a", 0, true), ErrInvalidProducerEpoch)
	})
	t.Run("overflow rotates the producer ID", func(t *testing.T) {
		h := &harness{t: t, clock: newFakeClock(), store: newFakeStore(), marks: &fakeMarkers{}}
		last := int16(math.MaxInt16 - 1)
		h.store.txns["id"] = meta.Txn{TransactionalID: "id", ProducerID: 7, ProducerEpoch: last, LastProducerID: 7, LastProducerEpoch: -1,
			State: meta.TxnOngoing, TimeoutMs: 60_000, StartedAt: h.clock.Now(), UpdatedAt: h.clock.Now(), Partitions: []meta.TopicPartition{a}}
		h.start()
		t.Cleanup(h.c.Close)
		gotPID, gotEpoch, err := h.c.EndTxn(ctx, "id", 7, last, true, true)
		if err != nil || gotPID == 7 || gotPID != h.store.nextID || gotEpoch != 0 {
			t.Fatalf("EndTxn: %d/%d, %v", gotPID, gotEpoch, err)
		}
		wantMarkers(t, h.marks.take(), true, 7, math.MaxInt16, a)
		st := h.state("id")
		if st.LastProducerID != 7 || st.LastProducerEpoch != last {
			t.Fatalf("state %+v", st)
		}
		// A retry with the old identity is recognized.
		p2, e2, err := h.c.EndTxn(ctx, "id", 7, last, true, true)
		if err != nil || p2 != gotPID || e2 != 0 {
			t.Fatalf("retry: %d/%d, %v", p2, e2, err)
		}
	})
	t.Run("overflow with failing markers", func(t *testing.T) {
		h := &harness{t: t, cfg: Config{RetryBackoff: time.Second}, clock: newFakeClock(), store: newFakeStore(), marks: &fakeMarkers{}}
		last := int16(math.MaxInt16 - 1)
		h.store.txns["id"] = meta.Txn{TransactionalID: "id", ProducerID: 7, ProducerEpoch: last, LastProducerID: 7, LastProducerEpoch: -1,
			State: meta.TxnOngoing, TimeoutMs: 60_000, StartedAt: h.clock.Now(), UpdatedAt: h.clock.Now(), Partitions: []meta.TopicPartition{a}}
		h.start()
		t.Cleanup(h.c.Close)
		h.marks.setFail(true)
		_, _, err := h.c.EndTxn(ctx, "id", 7, last, true, true)
		wantErr(t, err, ErrConcurrentTransactions)
		_, _, err = h.c.EndTxn(ctx, "id", 7, last, true, true)
		wantErr(t, err, ErrConcurrentTransactions)
		h.marks.setFail(false)
		h.clock.Advance(time.Second)
		p2, e2, err := h.c.EndTxn(ctx, "id", 7, last, true, true)
		if err != nil || p2 == 7 || e2 != 0 {
			t.Fatalf("retry after completion: %d/%d, %v", p2, e2, err)
		}
	})
}

func TestMarkerFailureRetried(t *testing.T) {
	h := newHarness(t, Config{RetryBackoff: 500 * time.Millisecond})
	a := tp("a", 0)
	pid, epoch := h.begin("id", a)
	if err := h.c.AddOffsets(ctx, "id", pid, epoch, "g"); err != nil {
		t.Fatal(err)
	}
	if err := h.c.TxnOffsetCommit(ctx, "id", pid, epoch, "g", false, []meta.TxnOffset{{Topic: "in", Offset: 9}}); err != nil {
		t.Fatal(err)
	}
	h.marks.take()
	h.marks.setFail(true)
	// The decision is durable: EndTxn succeeds.
	if _, _, err := h.c.EndTxn(ctx, "id", pid, epoch, true, false); err != nil {
		t.Fatalf("EndTxn with failing markers: %v", err)
	}
	if st := h.state("id"); st.State != meta.TxnPrepareCommit {
		t.Fatalf("state %+v, want PrepareCommit", st)
	}
	if got := h.metric("streamhouse_kafka_txn_open"); got != 1 {
		t.Fatalf("open %v, want 1", got)
	}
	_, _, err := h.c.EndTxn(ctx, "id", pid, epoch, true, false)
	wantErr(t, err, ErrConcurrentTransactions)
	_, _, err = h.c.EndTxn(ctx, "id", pid, epoch, false, false)
	wantErr(t, err, ErrInvalidTxnState)
	wantErr(t, h.c.AddPartitions(ctx, "id", pid, epoch, []meta.TopicPartition{a}), ErrConcurrentTransactions)
	wantErr(t, h.c.CheckProduce(ctx, "id", pid, epoch, "a", 0, false), ErrConcurrentTransactions)
	_, _, err = h.c.InitProducerID(ctx, "id", 1000, -1, -1)
	wantErr(t, err, ErrConcurrentTransactions)

	h.clock.Advance(500 * time.Millisecond) // still failing: retried, rearmed
	h.marks.setFail(false)
	h.clock.Advance(500 * time.Millisecond)
	wantMarkers(t, h.marks.take(), true, pid, epoch, a)
	if st := h.state("id"); st.State != meta.TxnCompleteCommit {
		t.Fatalf("state %+v, want CompleteCommit", st)
	}
	if _, ok := h.store.committed["g/in/0"]; !ok {
		t.Fatalf("offsets not committed: %v", h.store.committed)
	}
	if _, _, err := h.c.EndTxn(ctx, "id", pid, epoch, true, false); err != nil {
		t.Fatalf("retry after completion: %v", err)
	}
	if got := h.metric("streamhouse_kafka_txn_open"); got != 0 {
		t.Fatalf("open %v, want 0", got)
	}
}

func TestCompletionStoreFailureRetried(t *testing.T) {
	h := newHarness(t, Config{RetryBackoff: time.Second})
	a := tp("a", 0)
	pid, epoch := h.begin("id", a)
	h.marks.take()
	h.store.setFail(&h.store.failComplete, true)
	if _, _, err := h.c.EndTxn(ctx, "id", pid, epoch, false, false); err != nil {
		t.Fatal(err)
	}
	wantMarkers(t, h.marks.take(), false, pid, epoch, a)
	h.store.setFail(&h.store.failComplete, false)
	h.clock.Advance(time.Second)
	wantMarkers(t, h.marks.take(), false, pid, epoch, a) // written again, harmless
	if st := h.state("id"); st.State != meta.TxnCompleteAbort {
		t.Fatalf("state %+v", st)
	}
}

func TestStoreFailureChangesNothing(t *testing.T) {
	h := newHarness(t, Config{})
	a := tp("a", 0)
	pid, epoch := h.initID("id")
	h.store.setFail(&h.store.failPut, true)
	wantErr(t, h.c.AddPartitions(ctx, "id", pid, epoch, []meta.TopicPartition{a}), ErrNotAvailable)
	wantErr(t, h.c.CheckProduce(ctx, "id", pid, epoch, "a", 0, false), ErrNotInTransaction)
	_, _, err := h.c.InitProducerID(ctx, "id", 1000, -1, -1)
	wantErr(t, err, ErrNotAvailable)
	_, _, err = h.c.InitProducerID(ctx, "other", 1000, -1, -1)
	wantErr(t, err, ErrNotAvailable)
	if _, err := h.c.Describe("other"); !errors.Is(err, ErrTransactionalIDNotFound) {
		t.Fatalf("failed init left %q: %v", "other", err)
	}
	h.store.setFail(&h.store.failPut, false)
	if st := h.state("id"); st.State != meta.TxnEmpty || st.ProducerEpoch != epoch {
		t.Fatalf("state %+v", st)
	}
}

func TestRestartCompletesDecided(t *testing.T) {
	for _, state := range []meta.TxnState{meta.TxnPrepareCommit, meta.TxnPrepareAbort, meta.TxnPrepareEpochFence} {
		t.Run(state.String(), func(t *testing.T) {
			h := &harness{t: t, clock: newFakeClock(), store: newFakeStore(), marks: &fakeMarkers{}}
			a, b := tp("a", 0), tp("a", 1)
			h.store.txns["id"] = meta.Txn{TransactionalID: "id", ProducerID: 7, ProducerEpoch: 3, LastProducerID: 7, LastProducerEpoch: -1,
				State: state, TimeoutMs: 60_000, StartedAt: h.clock.Now(), UpdatedAt: h.clock.Now(),
				Partitions: []meta.TopicPartition{a, b}, Groups: []string{"g"}}
			h.store.pending = []meta.TxnOffset{{TransactionalID: "id", Group: "g", Topic: "in", Partition: 0, Offset: 3}}
			h.start()
			t.Cleanup(h.c.Close)
			commit := state == meta.TxnPrepareCommit
			wantMarkers(t, h.marks.take(), commit, 7, 3, a, b)
			want := meta.TxnCompleteAbort
			if commit {
				want = meta.TxnCompleteCommit
			}
			if st := h.state("id"); st.State != want || len(st.Partitions) != 0 {
				t.Fatalf("state %+v, want %s", st, want)
			}
			if _, ok := h.store.committed["g/in/0"]; ok != commit {
				t.Fatalf("committed %v (commit %t)", h.store.committed, commit)
			}
			if p, _ := h.store.PendingTxnOffsets(ctx, "g"); len(p) != 0 {
				t.Fatalf("pending left: %v", p)
			}
		})
	}
	t.Run("markers failing at start", func(t *testing.T) {
		h := &harness{t: t, cfg: Config{RetryBackoff: time.Second}, clock: newFakeClock(), store: newFakeStore(), marks: &fakeMarkers{fail: true}}
		h.store.txns["id"] = meta.Txn{TransactionalID: "id", ProducerID: 7, ProducerEpoch: 3, LastProducerID: 7, LastProducerEpoch: -1,
			State: meta.TxnPrepareCommit, TimeoutMs: 60_000, StartedAt: h.clock.Now(), UpdatedAt: h.clock.Now(),
			Partitions: []meta.TopicPartition{tp("a", 0)}}
		h.start()
		t.Cleanup(h.c.Close)
		if st := h.state("id"); st.State != meta.TxnPrepareCommit {
			t.Fatalf("state %+v", st)
		}
		h.marks.setFail(false)
		h.clock.Advance(time.Second)
		if st := h.state("id"); st.State != meta.TxnCompleteCommit {
			t.Fatalf("state %+v", st)
		}
	})
}

func TestTimeoutAbort(t *testing.T) {
	h := newHarness(t, Config{AbortTimedOutInterval: time.Second})
	a := tp("a", 0)
	pid, epoch, err := h.c.InitProducerID(ctx, "id", 2500, -1, -1)
	if err != nil {
		t.Fatal(err)
	}
	if err := h.c.AddPartitions(ctx, "id", pid, epoch, []meta.TopicPartition{a}); err != nil {
		t.Fatal(err)
	}
	if err := h.c.AddOffsets(ctx, "id", pid, epoch, "g"); err != nil {
		t.Fatal(err)
	}
	if err := h.c.TxnOffsetCommit(ctx, "id", pid, epoch, "g", false, []meta.TxnOffset{{Topic: "in", Offset: 1}}); err != nil {
		t.Fatal(err)
	}
	h.clock.Advance(2 * time.Second)
	if st := h.state("id"); st.State != meta.TxnOngoing {
		t.Fatalf("aborted before its timeout: %+v", st)
	}
	h.clock.Advance(time.Second) // 3 s > 2.5 s
	st := h.state("id")
	if st.State != meta.TxnCompleteAbort || st.ProducerEpoch != epoch+1 {
		t.Fatalf("state %+v, want CompleteAbort at epoch %d", st, epoch+1)
	}
	wantMarkers(t, h.marks.take(), false, pid, epoch+1, a)
	if len(h.store.committed) != 0 {
		t.Fatal("timed-out offsets committed")
	}
	if got := h.metric("streamhouse_kafka_txn_timeouts_total"); got != 1 {
		t.Fatalf("timeouts %v", got)
	}
	// The producer is fenced; a new one continues.
	wantErr(t, h.c.CheckProduce(ctx, "id", pid, epoch, "a", 0, false), ErrInvalidProducerEpoch)
	_, _, err = h.c.EndTxn(ctx, "id", pid, epoch, true, false)
	wantErr(t, err, ErrProducerFenced)
	// A version 2 producer retrying its abort learns the bumped epoch.
	p2, e2, err := h.c.EndTxn(ctx, "id", pid, epoch, false, true)
	if err != nil || p2 != pid || e2 != epoch+1 {
		t.Fatalf("v2 abort after timeout: %d/%d, %v", p2, e2, err)
	}
	if _, e3 := h.initID("id"); e3 != epoch+2 {
		t.Fatalf("epoch %d, want %d", e3, epoch+2)
	}
}

func TestTimeoutSurvivesRestart(t *testing.T) {
	h := newHarness(t, Config{AbortTimedOutInterval: time.Second})
	pid, epoch, err := h.c.InitProducerID(ctx, "id", 10_000, -1, -1)
	if err != nil {
		t.Fatal(err)
	}
	if err := h.c.AddPartitions(ctx, "id", pid, epoch, []meta.TopicPartition{tp("a", 0)}); err != nil {
		t.Fatal(err)
	}
	started := h.state("id").StartedAt
	h.clock.Advance(8 * time.Second)
	h.restart()
	if st := h.state("id"); st.State != meta.TxnOngoing || !st.StartedAt.Equal(started) {
		t.Fatalf("after restart %+v, want Ongoing since %v", st, started)
	}
	h.clock.Advance(3 * time.Second)
	if st := h.state("id"); st.State != meta.TxnCompleteAbort {
		t.Fatalf("state %+v, want CompleteAbort", st)
	}
}

func TestExpiration(t *testing.T) {
	h := newHarness(t, Config{TransactionalIDExpiration: time.Hour, RemoveExpiredInterval: 10 * time.Minute,
		AbortTimedOutInterval: time.Hour, TransactionMaxTimeout: 3 * time.Hour})
	h.initID("idle")
	pid, epoch, err := h.c.InitProducerID(ctx, "busy", int32((2 * time.Hour).Milliseconds()), -1, -1)
	if err != nil {
		t.Fatal(err)
	}
	if err := h.c.AddPartitions(ctx, "busy", pid, epoch, []meta.TopicPartition{tp("a", 0)}); err != nil {
		t.Fatal(err)
	}
	h.clock.Advance(50 * time.Minute)
	h.state("idle")
	h.clock.Advance(20 * time.Minute)
	if _, err := h.c.Describe("idle"); !errors.Is(err, ErrTransactionalIDNotFound) {
		t.Fatalf("idle ID not expired: %v", err)
	}
	if _, ok := h.store.stored("idle"); ok {
		t.Fatal("idle ID still stored")
	}
	h.state("busy")
	// An expired ID starts afresh.
	if _, epoch := h.initID("idle"); epoch != 0 {
		t.Fatalf("epoch %d after expiry", epoch)
	}
}

func TestCheckProduce(t *testing.T) {
	h := newHarness(t, Config{})
	pid, epoch := h.begin("id", tp("a", 0))
	wantErr(t, h.c.CheckProduce(ctx, "id", pid, epoch, "a", 0, false), nil)
	wantErr(t, h.c.CheckProduce(ctx, "id", pid, epoch, "a", 1, false), ErrNotInTransaction)
	wantErr(t, h.c.CheckProduce(ctx, "id", pid, epoch+1, "a", 0, false), ErrInvalidProducerEpoch)
	wantErr(t, h.c.CheckProduce(ctx, "id", pid+1, epoch, "a", 0, false), ErrInvalidProducerIDMapping)
	wantErr(t, h.c.CheckProduce(ctx, "nope", pid, epoch, "a", 0, false), ErrInvalidProducerIDMapping)
	wantErr(t, h.c.CheckProduce(ctx, "id", pid, epoch, "a", 1, true), nil)
	if st := h.state("id"); !slices.Equal(st.Partitions, []meta.TopicPartition{tp("a", 0), tp("a", 1)}) {
		t.Fatalf("partitions %v", st.Partitions)
	}
	// After the transaction ends, nothing is in it.
	if _, _, err := h.c.EndTxn(ctx, "id", pid, epoch, true, false); err != nil {
		t.Fatal(err)
	}
	wantErr(t, h.c.CheckProduce(ctx, "id", pid, epoch, "a", 0, false), ErrNotInTransaction)
}

func TestAddPartitionsAndVerify(t *testing.T) {
	h := newHarness(t, Config{})
	pid, epoch := h.initID("id")
	a, b := tp("a", 0), tp("b", 0)
	if err := h.c.AddPartitions(ctx, "id", pid, epoch, []meta.TopicPartition{a, a}); err != nil {
		t.Fatal(err)
	}
	st := h.state("id")
	if st.State != meta.TxnOngoing || !st.StartedAt.Equal(time.UnixMilli(h.clock.Now().UnixMilli())) || len(st.Partitions) != 1 {
		t.Fatalf("state %+v", st)
	}
	puts := h.store.puts
	if err := h.c.AddPartitions(ctx, "id", pid, epoch, []meta.TopicPartition{a}); err != nil || h.store.puts != puts {
		t.Fatalf("re-adding wrote (%d puts): %v", h.store.puts-puts, err)
	}
	h.clock.Advance(time.Second)
	if err := h.c.AddPartitions(ctx, "id", pid, epoch, []meta.TopicPartition{b}); err != nil {
		t.Fatal(err)
	}
	if st2 := h.state("id"); !st2.StartedAt.Equal(st.StartedAt) || len(st2.Partitions) != 2 {
		t.Fatalf("state %+v", st2)
	}
	in, err := h.c.VerifyPartitions(ctx, "id", pid, epoch, []meta.TopicPartition{a, tp("c", 0), b})
	if err != nil || !slices.Equal(in, []bool{true, false, true}) {
		t.Fatalf("verify %v, %v", in, err)
	}
	_, err = h.c.VerifyPartitions(ctx, "id", pid, epoch+1, []meta.TopicPartition{a})
	wantErr(t, err, ErrProducerFenced)
	_, err = h.c.VerifyPartitions(ctx, "nope", pid, epoch, []meta.TopicPartition{a})
	wantErr(t, err, ErrInvalidProducerIDMapping)
	wantErr(t, h.c.AddPartitions(ctx, "nope", pid, epoch, []meta.TopicPartition{a}), ErrInvalidProducerIDMapping)
	wantErr(t, h.c.AddPartitions(ctx, "id", pid+1, epoch, []meta.TopicPartition{a}), ErrInvalidProducerIDMapping)
	wantErr(t, h.c.AddOffsets(ctx, "id", pid, epoch-1, "g"), ErrProducerFenced)
}

func TestTxnOffsetCommitNeedsGroup(t *testing.T) {
	h := newHarness(t, Config{})
	pid, epoch := h.begin("id", tp("a", 0))
	offs := []meta.TxnOffset{{Topic: "in", Offset: 1}}
	wantErr(t, h.c.TxnOffsetCommit(ctx, "id", pid, epoch, "g", false, offs), ErrNotInTransaction)
	if err := h.c.AddOffsets(ctx, "id", pid, epoch, "g"); err != nil {
		t.Fatal(err)
	}
	wantErr(t, h.c.TxnOffsetCommit(ctx, "id", pid, epoch, "g", false, offs), nil)
	wantErr(t, h.c.TxnOffsetCommit(ctx, "id", pid, epoch, "other", false, offs), ErrNotInTransaction)
	wantErr(t, h.c.TxnOffsetCommit(ctx, "id", pid, epoch+1, "g", false, offs), ErrInvalidProducerEpoch)
	wantErr(t, h.c.TxnOffsetCommit(ctx, "nope", pid, epoch, "g", false, offs), ErrInvalidProducerIDMapping)
	// AddOffsets alone starts a transaction.
	pid2, epoch2 := h.initID("id2")
	if err := h.c.AddOffsets(ctx, "id2", pid2, epoch2, "g"); err != nil {
		t.Fatal(err)
	}
	if st := h.state("id2"); st.State != meta.TxnOngoing || !slices.Equal(st.Groups, []string{"g"}) {
		t.Fatalf("state %+v", st)
	}
}

func TestDescribeAndList(t *testing.T) {
	h := newHarness(t, Config{})
	pa, _ := h.begin("a", tp("t", 0), tp("t", 1))
	h.clock.Advance(5 * time.Second)
	pb, _ := h.initID("b")
	h.initID("c")

	st, err := h.c.Describe("a")
	if err != nil || st.State != meta.TxnOngoing || len(st.Partitions) != 2 || StartMs(st) <= 0 {
		t.Fatalf("describe a: %+v, %v", st, err)
	}
	if st, _ := h.c.Describe("b"); StartMs(st) != -1 {
		t.Fatalf("start of b %d", StartMs(st))
	}
	_, err = h.c.Describe("nope")
	wantErr(t, err, ErrTransactionalIDNotFound)

	ids := func(ts []meta.Txn) []string {
		var out []string
		for _, t := range ts {
			out = append(out, t.TransactionalID)
		}
		return out
	}
	cases := []struct {
		name   string
		filter Filter
		want   []string
	}{
		{"all", Filter{MinDurationMs: -1}, []string{"a", "b", "c"}},
		{"ongoing", Filter{States: []meta.TxnState{meta.TxnOngoing}, MinDurationMs: -1}, []string{"a"}},
		{"producer IDs", Filter{ProducerIDs: []int64{pa, pb}, MinDurationMs: -1}, []string{"a", "b"}},
		{"running over 4 s", Filter{MinDurationMs: 4000}, []string{"a", "b", "c"}},
		{"running over 5 s", Filter{MinDurationMs: 5000}, []string{"b", "c"}},
		{"pattern", Filter{Pattern: regexp.MustCompile("^[ab]$"), MinDurationMs: -1}, []string{"a", "b"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := ids(h.c.List(tc.filter)); !slices.Equal(got, tc.want) {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
		})
	}
}

func TestClosed(t *testing.T) {
	h := newHarness(t, Config{})
	pid, epoch := h.initID("id")
	h.c.Close()
	_, _, err := h.c.InitProducerID(ctx, "id", 1000, -1, -1)
	wantErr(t, err, ErrNotAvailable)
	wantErr(t, h.c.CheckProduce(ctx, "id", pid, epoch, "a", 0, false), ErrNotAvailable)
}

func TestMetricsRegistered(t *testing.T) {
	h := newHarness(t, Config{})
	pid, epoch := h.begin("id", tp("a", 0))
	if got := h.metric("streamhouse_kafka_txn_open"); got != 1 {
		t.Fatalf("open %v", got)
	}
	if _, _, err := h.c.EndTxn(ctx, "id", pid, epoch, true, false); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"streamhouse_kafka_txn_open", "streamhouse_kafka_txn_commits_total",
		"streamhouse_kafka_txn_aborts_total", "streamhouse_kafka_txn_timeouts_total"} {
		if n := len(metricstest.Gather(t, h.reg, name)); n != 1 {
			t.Fatalf("%s: %d series", name, n)
		}
	}
	if got := h.metric("streamhouse_kafka_txn_commits_total"); got != 1 {
		t.Fatalf("commits %v", got)
	}
	if got := h.metric("streamhouse_kafka_txn_open"); got != 0 {
		t.Fatalf("open %v", got)
	}
}
