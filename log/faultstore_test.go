package log

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/streamhouse/streamhouse/objstore"
)

// faultStore is an object store for crash tests: it wraps another and,
// when told to, fails the next puts (an outage: nothing is stored) or
// stores the next put's object cut short while answering that it
// succeeded (a store that breaks Put's atomicity). Everything else passes
// through. It survives the simulated crashes, as a remote store does.
type faultStore struct {
	objstore.Store

	// mu guards the fields below.
	mu sync.Mutex
	// failPuts is how many of the next puts fail; shortPuts how many are
	// stored cut short.
	failPuts, shortPuts int
	// events describes the faults injected, oldest first.
	events []string
}

var errFaultStoreDown = errors.New("faultstore: object store unavailable")

// failNextPuts makes the next n puts fail.
func (s *faultStore) failNextPuts(n int) {
	s.mu.Lock()
	s.failPuts = n
	s.mu.Unlock()
}

// shortenNextPut makes the next put store its object without its last
// bytes and report success.
func (s *faultStore) shortenNextPut() {
	s.mu.Lock()
	s.shortPuts = 1
	s.mu.Unlock()
}

// injected returns the faults injected so far.
func (s *faultStore) injected() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.events...)
}

func (s *faultStore) Put(ctx context.Context, key string, r io.Reader, size int64) error {
	s.mu.Lock()
	fail, short := s.failPuts > 0, s.shortPuts > 0 && !(s.failPuts > 0)
	switch {
	case fail:
		s.failPuts--
		s.events = append(s.events, "failed put of "+key)
	case short:
		s.shortPuts--
		s.events = append(s.events, "short put of "+key)
	}
	s.mu.Unlock()
	if fail {
		return fmt.Errorf("put %s: %w", key, errFaultStoreDown)
	}
	if !short || size < 2 {
		return s.Store.Put(ctx, key, r, size)
	}
	data := make([]byte, size)
	if _, err := io.ReadFull(r, data); err != nil {
		return err
	}
	cut := data[:size/2]
	return s.Store.Put(ctx, key, bytes.NewReader(cut), int64(len(cut)))
}
