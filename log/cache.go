package log

import (
	"container/list"
	"context"
	"sync"
)

// segmentCache is an LRU of sealed segments read from the object store,
// bounded by the sum of their object sizes plus the bytes reserved by
// read-ahead (readahead.go). A segment larger than the whole budget is
// served but never kept. Concurrent misses on one key share a single
// load.
type segmentCache struct {
	limit int64
	m     *metrics

	// mu guards everything below.
	mu   sync.Mutex
	size int64
	// reserved is what prefetches in flight or waiting to be read hold
	// (at most limit/raTotalShare + limit/raTailShare); size+reserved
	// stays within limit.
	reserved int64
	lru      *list.List               // front = most recent; values are *cacheEntry
	entries  map[string]*list.Element // key -> element in lru
	loading  map[string]*cacheLoad    // in-flight loads
}

type cacheEntry struct {
	key string
	seg *sealedSegment
	n   int64
}

type cacheLoad struct {
	done chan struct{}
	seg  *sealedSegment
	err  error
	// prefetch marks a read-ahead's load: a reader waiting for it loads
	// for itself if it fails, so that it never sees the prefetch's error.
	prefetch bool
}

func newSegmentCache(limit int64, m *metrics) *segmentCache {
	return &segmentCache{
		limit:   limit,
		m:       m,
		lru:     list.New(),
		entries: make(map[string]*list.Element),
		loading: make(map[string]*cacheLoad),
	}
}

// get returns the segment under key, calling load on a miss.
func (c *segmentCache) get(ctx context.Context, key string, load func(context.Context) (*sealedSegment, int64, error)) (*sealedSegment, error) {
	c.mu.Lock()
	if el, ok := c.entries[key]; ok {
		c.lru.MoveToFront(el)
		seg := el.Value.(*cacheEntry).seg
		c.mu.Unlock()
		c.m.cacheHits.Inc()
		return seg, nil
	}
	if l, ok := c.loading[key]; ok {
		c.mu.Unlock()
		select {
		case <-l.done:
			if l.err != nil && l.prefetch {
				return c.get(ctx, key, load) // the prefetch failed: load here
			}
			return l.seg, l.err
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	l := &cacheLoad{done: make(chan struct{})}
	c.loading[key] = l
	c.mu.Unlock()
	c.m.cacheMisses.Inc()

	seg, n, err := load(ctx)
	l.seg, l.err = seg, err
	c.mu.Lock()
	delete(c.loading, key)
	if err == nil {
		c.insertLocked(key, seg, n)
	}
	c.mu.Unlock()
	close(l.done)
	return seg, err
}

// prefetch is get for read-ahead: it loads key in the background of a
// read unless the cache holds it or loads it already, and releases res
// reserved bytes (reserve) before it inserts the segment.
func (c *segmentCache) prefetch(ctx context.Context, key string, res int64, load func(context.Context) (*sealedSegment, int64, error)) {
	c.mu.Lock()
	if _, ok := c.entries[key]; ok || c.loading[key] != nil {
		c.releaseLocked(res)
		c.mu.Unlock()
		return
	}
	l := &cacheLoad{done: make(chan struct{}), prefetch: true}
	c.loading[key] = l
	c.mu.Unlock()

	seg, n, err := load(ctx)
	l.seg, l.err = seg, err
	c.mu.Lock()
	delete(c.loading, key)
	c.releaseLocked(res)
	if err == nil {
		c.insertLocked(key, seg, n)
	}
	c.mu.Unlock()
	close(l.done)
}

// reserve sets n bytes of the limit aside for a prefetch, evicting the
// least recently used segments to make room. It fails when prefetches
// would hold more than limit/raTotalShare, or for a segment's tail
// limit/raTotalShare + limit/raTailShare.
func (c *segmentCache) reserve(n int64, tail bool) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	most := c.limit / raTotalShare
	if tail {
		most += c.limit / raTailShare
	}
	if c.reserved+n > most {
		return false
	}
	for c.size+c.reserved+n > c.limit && c.lru.Len() > 0 {
		c.removeLocked(c.lru.Back())
		c.m.cacheEvictions.Inc()
	}
	c.reserved += n
	return true
}

// release returns n reserved bytes.
func (c *segmentCache) release(n int64) {
	c.mu.Lock()
	c.releaseLocked(n)
	c.mu.Unlock()
}

func (c *segmentCache) releaseLocked(n int64) {
	c.reserved -= n
	if c.reserved < 0 {
		panic("log: segment cache released more than was reserved")
	}
}

// reservedBytes reports the bytes prefetches hold (for tests).
func (c *segmentCache) reservedBytes() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.reserved
}

func (c *segmentCache) insertLocked(key string, seg *sealedSegment, n int64) {
	if n > c.limit {
		return
	}
	for c.size+c.reserved+n > c.limit && c.lru.Len() > 0 {
		c.removeLocked(c.lru.Back())
		c.m.cacheEvictions.Inc()
	}
	if c.size+c.reserved+n > c.limit {
		return // prefetches hold the room: serve it, do not keep it
	}
	c.entries[key] = c.lru.PushFront(&cacheEntry{key: key, seg: seg, n: n})
	c.size += n
	c.m.cacheBytes.Set(float64(c.size))
}

func (c *segmentCache) removeLocked(el *list.Element) {
	e := c.lru.Remove(el).(*cacheEntry)
	delete(c.entries, e.key)
	c.size -= e.n
	c.m.cacheBytes.Set(float64(c.size))
}

// evict drops key, and its tail (window.go), if cached (after retention
// or topic deletion).
func (c *segmentCache) evict(key string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, k := range []string{key, key + tailKeySuffix} {
		if el, ok := c.entries[k]; ok {
			c.removeLocked(el)
		}
	}
}

// bytes reports the cached bytes (for tests and metrics).
func (c *segmentCache) bytes() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.size
}
