package objstore

import (
	"context"
	"fmt"
	"io"
	"math"
	"strings"
	"sync"
	"time"
)

// Mem is an in-memory Store for unit tests of other packages. It copies
// bytes on the way in and out, so callers never share memory with it.
type Mem struct {
	// mu guards objects.
	mu      sync.RWMutex
	objects map[string]memObject
}

type memObject struct {
	data     []byte
	modified time.Time
}

var _ Store = (*Mem)(nil)

// NewMem returns an empty in-memory store.
func NewMem() *Mem {
	return &Mem{objects: make(map[string]memObject)}
}

// Put implements Store.
func (m *Mem) Put(ctx context.Context, key string, r io.Reader, size int64) error {
	if err := m.check(ctx, key); err != nil {
		return err
	}
	if err := checkSize(key, size); err != nil {
		return err
	}
	data, err := readN(ctx, r, size)
	if err != nil {
		return fmt.Errorf("objstore: mem put %q: read body: %w", key, err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.objects[key] = memObject{data: data, modified: time.Now()}
	return nil
}

// Get implements Store.
func (m *Mem) Get(ctx context.Context, key string) ([]byte, error) {
	return m.GetRange(ctx, key, 0, math.MaxInt64)
}

// GetRange implements Store.
func (m *Mem) GetRange(ctx context.Context, key string, off, length int64) ([]byte, error) {
	if err := m.check(ctx, key); err != nil {
		return nil, err
	}
	if err := checkRange(key, off, length); err != nil {
		return nil, err
	}
	m.mu.RLock()
	defer m.mu.RUnlock()
	o, ok := m.objects[key]
	if !ok {
		return nil, fmt.Errorf("objstore: mem get %q: %w", key, ErrNotFound)
	}
	start, end, err := rangeOf(key, int64(len(o.data)), off, length)
	if err != nil {
		return nil, err
	}
	return append([]byte(nil), o.data[start:end]...), nil
}

// List implements Store.
func (m *Mem) List(ctx context.Context, prefix string) ([]ObjectInfo, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("objstore: mem list %q: %w", prefix, err)
	}
	if err := checkPrefix(prefix); err != nil {
		return nil, err
	}
	m.mu.RLock()
	var out []ObjectInfo
	for k, o := range m.objects {
		if strings.HasPrefix(k, prefix) {
			out = append(out, ObjectInfo{Key: k, Size: int64(len(o.data)), Modified: o.modified})
		}
	}
	m.mu.RUnlock()
	sortInfos(out)
	return out, nil
}

// Delete implements Store.
func (m *Mem) Delete(ctx context.Context, key string) error {
	if err := m.check(ctx, key); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.objects, key)
	return nil
}

func (m *Mem) check(ctx context.Context, key string) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("objstore: mem %q: %w", key, err)
	}
	return CheckKey(key)
}
