package txn

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	iclock "github.com/streamhouse/streamhouse/internal/clock"
	"github.com/streamhouse/streamhouse/log"
	"github.com/streamhouse/streamhouse/meta"
)

// fakeClock is internal/clock's Fake, started at a fixed time.
type fakeClock = iclock.Fake

func newFakeClock() *fakeClock { return iclock.NewFake(time.UnixMilli(1_700_000_000_000)) }

var errInjected = errors.New("injected failure")

// fakeStore is an in-memory Store. Its fail* fields, when set, make the
// next calls of that method fail (and change nothing).
type fakeStore struct {
	mu        sync.Mutex
	nextID    int64
	txns      map[string]meta.Txn
	pending   []meta.TxnOffset
	committed map[string]meta.TxnOffset // group/topic/partition -> offset

	failPut, failComplete, failAlloc, failAddOffsets bool
	puts, completes                                  int
}

func newFakeStore() *fakeStore {
	return &fakeStore{nextID: 1000, txns: make(map[string]meta.Txn), committed: make(map[string]meta.TxnOffset)}
}

func (s *fakeStore) AllocateProducerID(_ context.Context, id string) (meta.ProducerID, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.failAlloc {
		return meta.ProducerID{}, errInjected
	}
	s.nextID++
	return meta.ProducerID{ID: s.nextID}, nil
}

func (s *fakeStore) PutTxn(_ context.Context, t meta.Txn) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.failPut {
		return errInjected
	}
	s.puts++
	s.txns[t.TransactionalID] = clone(t)
	return nil
}

func (s *fakeStore) ListTxns(context.Context) ([]meta.Txn, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []meta.Txn
	for _, t := range s.txns {
		out = append(out, clone(t))
	}
	slices.SortFunc(out, func(a, b meta.Txn) int { return cmp.Compare(a.TransactionalID, b.TransactionalID) })
	return out, nil
}

func (s *fakeStore) DeleteTxn(_ context.Context, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.txns, id)
	s.pending = slices.DeleteFunc(s.pending, func(o meta.TxnOffset) bool { return o.TransactionalID == id })
	return nil
}

func (s *fakeStore) AddTxnOffsets(_ context.Context, offsets []meta.TxnOffset) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.failAddOffsets {
		return errInjected
	}
	for _, o := range offsets {
		if _, ok := s.txns[o.TransactionalID]; !ok {
			return meta.ErrInvalid
		}
	}
	for _, o := range offsets {
		s.pending = slices.DeleteFunc(s.pending, func(p meta.TxnOffset) bool {
			return p.TransactionalID == o.TransactionalID && p.Group == o.Group && p.Topic == o.Topic && p.Partition == o.Partition
		})
		s.pending = append(s.pending, o)
	}
	return nil
}

func (s *fakeStore) PendingTxnOffsets(_ context.Context, group string) ([]meta.TxnOffset, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []meta.TxnOffset
	for _, o := range s.pending {
		if o.Group == group {
			out = append(out, o)
		}
	}
	return out, nil
}

func (s *fakeStore) CompleteTxn(_ context.Context, t meta.Txn, commit bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.failComplete {
		return errInjected
	}
	s.completes++
	keep := s.pending[:0]
	for _, o := range s.pending {
		if o.TransactionalID != t.TransactionalID {
			keep = append(keep, o)
			continue
		}
		if commit {
			s.committed[fmt.Sprintf("%s/%s/%d", o.Group, o.Topic, o.Partition)] = o
		}
	}
	s.pending = keep
	s.txns[t.TransactionalID] = clone(t)
	return nil
}

// stored returns the stored state of id.
func (s *fakeStore) stored(id string) (meta.Txn, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.txns[id]
	return t, ok
}

func (s *fakeStore) setFail(f *bool, v bool) {
	s.mu.Lock()
	*f = v
	s.mu.Unlock()
}

// fakeMarkers records the markers written; fail makes WriteTxnMarkers
// fail (writing nothing).
type fakeMarkers struct {
	mu      sync.Mutex
	written []log.TxnMarker
	fail    bool
}

func (m *fakeMarkers) WriteTxnMarkers(_ context.Context, markers []log.TxnMarker) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.fail {
		return errInjected
	}
	m.written = append(m.written, markers...)
	return nil
}

func (m *fakeMarkers) setFail(v bool) {
	m.mu.Lock()
	m.fail = v
	m.mu.Unlock()
}

// take returns and forgets the markers written so far.
func (m *fakeMarkers) take() []log.TxnMarker {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := m.written
	m.written = nil
	return out
}
