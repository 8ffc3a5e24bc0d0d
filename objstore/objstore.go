// Package objstore is StreamHouse's object store: one small interface with
// a local-directory, an S3 and an in-memory implementation. Sealed segments
// live here; the broker's local disk only holds the tail of each log.
//
// Local (NewLocal) keeps objects as files under a directory and is the
// default; S3 (NewS3) talks to AWS S3 or any S3-compatible service; Mem
// (NewMem) is for unit tests of other packages. All three pass one shared
// conformance suite (conformance_test.go), so code written against Store
// behaves the same on each. Instrument adds Prometheus metrics to any Store.
//
// Failures wrap one of the sentinels ErrNotFound, ErrTransient and
// ErrPermanent, so callers decide with errors.Is whether to retry; the
// underlying error stays in the chain and in the message.
//
// Package objstore/s3test starts a real S3-compatible server for tests.
package objstore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"
)

// Sentinel errors. Every implementation wraps its failures so that
// errors.Is(err, ErrNotFound), errors.Is(err, ErrTransient) or
// errors.Is(err, ErrPermanent) tells the caller what happened.
var (
	// ErrNotFound means the key does not exist.
	ErrNotFound = errors.New("objstore: not found")
	// ErrTransient means the operation failed in a way that may succeed
	// if tried again later (throttling, 5xx, network). Implementations
	// have already retried with backoff before returning it.
	ErrTransient = errors.New("objstore: transient error")
	// ErrPermanent means retrying will not help (bad credentials, missing
	// bucket, access denied, invalid key).
	ErrPermanent = errors.New("objstore: permanent error")
)

// ObjectInfo describes one stored object.
type ObjectInfo struct {
	Key      string
	Size     int64
	Modified time.Time
}

// Store is the object store interface. Keys are slash-separated relative
// paths without a leading slash, "..", or empty elements (see CheckKey for
// the exact rule); an invalid key fails with an error wrapping ErrPermanent.
// Because Local maps keys to files, one key must not be a directory prefix
// of another ("a" and "a/b" cannot both exist there); S3 and Mem allow it,
// so portable callers avoid it.
// Every method fails with an error wrapping ctx.Err() when ctx is already
// done, and may stop early with one when ctx ends while it runs.
// All methods are safe for concurrent use.
type Store interface {
	// Put stores size bytes read from r under key, replacing any object
	// there. The object is visible to Get only once complete (atomic).
	// Put reads exactly size bytes: if r ends early Put fails (the error
	// wraps io.ErrUnexpectedEOF) and nothing is stored; bytes after size
	// are left unread. A negative size is an error wrapping ErrPermanent.
	Put(ctx context.Context, key string, r io.Reader, size int64) error
	// Get returns the whole object.
	Get(ctx context.Context, key string) ([]byte, error)
	// GetRange returns length bytes starting at off. Reading past the end
	// returns the bytes that exist; off beyond the end is an error
	// wrapping ErrPermanent. off equal to the size, or length 0, returns
	// no bytes and no error. A negative off or length wraps ErrPermanent.
	GetRange(ctx context.Context, key string, off, length int64) ([]byte, error)
	// List returns every object whose key starts with prefix, sorted by key.
	// The prefix is a plain string prefix ("topic/00" matches
	// "topic/0001.seg"); it must be something a valid key could start with.
	List(ctx context.Context, prefix string) ([]ObjectInfo, error)
	// Delete removes key. Deleting a missing key is not an error.
	Delete(ctx context.Context, key string) error
}

// ctxReader stops a long copy once its context is done.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// readN reads exactly n bytes from r into a new slice. A short r gives an
// error wrapping io.ErrUnexpectedEOF.
func readN(ctx context.Context, r io.Reader, n int64) ([]byte, error) {
	buf := make([]byte, n)
	if _, err := io.ReadFull(ctxReader{ctx, r}, buf); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	return buf, nil
}

// checkSize rejects a negative Put size.
func checkSize(key string, size int64) error {
	if size < 0 {
		return fmt.Errorf("objstore: put %q: negative size %d: %w", key, size, ErrPermanent)
	}
	return nil
}

// sortInfos sorts a listing by key, the order List promises.
func sortInfos(infos []ObjectInfo) {
	slices.SortFunc(infos, func(a, b ObjectInfo) int { return strings.Compare(a.Key, b.Key) })
}
