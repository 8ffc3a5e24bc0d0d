package log

import (
	"math/bits"
	"sync"
)

// Read buffers for local segment reads. A Kafka fetch used to read into a
// fresh buffer, which Go zeroes before pread overwrites it, and which the
// GC then had to reclaim: at full speed that zeroing and collection was a
// tenth of the broker's CPU. Reads now borrow a buffer from a pool of
// power-of-two size classes and ReadResult.Release returns it. Borrowed
// buffers are not zeroed: only the bytes a read filled are ever exposed.

const (
	minPoolShift = 12 // 4 KiB
	maxPoolShift = 24 // 16 MiB; larger reads allocate
)

// readPool holds one sync.Pool of *[]byte per size class.
type readPool struct {
	classes [maxPoolShift - minPoolShift + 1]sync.Pool
}

// class returns the size class of a buffer of n bytes, or -1 for none.
func poolClass(n int) int {
	if n > 1<<maxPoolShift {
		return -1
	}
	shift := minPoolShift
	if n > 1<<minPoolShift {
		shift = bits.Len(uint(n - 1))
	}
	return shift - minPoolShift
}

// get returns a buffer of length n; its contents are arbitrary. The
// returned handle is nil when n is too large to pool.
func (rp *readPool) get(n int) ([]byte, *[]byte) {
	c := poolClass(n)
	if c < 0 {
		return make([]byte, n), nil
	}
	if v, ok := rp.classes[c].Get().(*[]byte); ok {
		return (*v)[:n], v
	}
	b := make([]byte, 1<<(c+minPoolShift))
	return b[:n], &b
}

// put returns a buffer that get handed out.
func (rp *readPool) put(h *[]byte) {
	if h == nil {
		return
	}
	if c := poolClass(cap(*h)); c >= 0 && cap(*h) == 1<<(c+minPoolShift) {
		rp.classes[c].Put(h)
	}
}
