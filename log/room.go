package log

import (
	"fmt"
	"log/slog"
	"sync/atomic"
	"syscall"
	"time"
)

// Room for appends: two bounds keep the segments' file system from
// filling up when the object store is down or slow, so that the broker
// can always write what it needs to recover by itself (meta rows for the
// uploads that free space, seals, producer snapshots):
//
//   - the upload backlog, the bytes of sealed segments waiting for the
//     object store, at most Config.MaxUploadBacklog (default half the
//     space available at Open);
//   - a free-space reserve: appends stop while less than diskReserve(total)
//     is available on the file system, whatever filled it.
//
// Past either, appends fail before writing anything (ErrUploadBacklog,
// ErrDiskFull) and resume by themselves once there is room again.

// roomCheckInterval is how often an append may statfs the file system.
const roomCheckInterval = 100 * time.Millisecond

// diskReserve is the free space kept for meta and seals: 64 MiB, or an
// eighth of a smaller file system.
func diskReserve(total int64) int64 { return min(64<<20, total/8) }

// room tracks the upload backlog and the file system's free space.
type room struct {
	dir    string
	logger *slog.Logger
	// statfs returns the file system's total and available bytes; nil on
	// a test file system, where the reserve is not checked.
	statfs func(dir string) (total, avail int64, err error)

	backlog  atomic.Int64 // bytes of sealed segments queued or uploading
	limit    int64        // the backlog bound
	reserve  int64
	avail    atomic.Int64 // available bytes when last checked
	checked  atomic.Int64 // unix nanos of the last statfs
	refusals atomic.Int64
	// refusing is set while appends are refused, so the transitions are
	// logged once each, not every refused append.
	refusing atomic.Bool
}

// newRoom sets the bounds: limit 0 means half the available space.
func newRoom(dir string, limit int64, real bool, logger *slog.Logger) *room {
	r := &room{dir: dir, logger: logger, limit: limit}
	if real {
		r.statfs = statfsBytes
	}
	return newRoomWith(r)
}

// newRoomWith reads the file system through r.statfs and sets the
// reserve, and the default limit when r.limit is 0.
func newRoomWith(r *room) *room {
	r.reserve = -1
	avail := int64(-1)
	if r.statfs != nil {
		if total, a, err := r.statfs(r.dir); err == nil {
			avail, r.reserve = a, diskReserve(total)
		} else {
			r.logger.Warn("cannot read the free space of the segments directory; no free-space reserve", "dir", r.dir, "err", err)
		}
	}
	r.avail.Store(avail)
	r.checked.Store(time.Now().UnixNano())
	if r.limit <= 0 {
		r.limit = 1 << 30
		if avail >= 0 {
			r.limit = max(avail/2, 1)
		}
	}
	return r
}

func statfsBytes(dir string) (total, avail int64, err error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return 0, 0, fmt.Errorf("log: statfs %s: %w", dir, err)
	}
	bs := int64(st.Bsize)
	return int64(st.Blocks) * bs, int64(st.Bavail) * bs, nil
}

// check refuses an append while the backlog is at its bound or the free
// space below the reserve. It reads the free space at most every
// roomCheckInterval.
func (r *room) check(now time.Time) error {
	err := r.exceeded(now)
	if err != nil {
		r.refusals.Add(1)
		if r.refusing.CompareAndSwap(false, true) {
			r.logger.Warn("refusing appends until there is room again", "err", err)
		}
		return err
	}
	if r.refusing.Load() && r.refusing.CompareAndSwap(true, false) {
		r.logger.Info("appends resumed", "upload_backlog", r.backlog.Load(), "available_bytes", r.avail.Load())
	}
	return nil
}

func (r *room) exceeded(now time.Time) error {
	if n := r.backlog.Load(); n >= r.limit {
		return fmt.Errorf("%w: %d bytes of sealed segments wait for upload, limit %d", ErrUploadBacklog, n, r.limit)
	}
	if r.statfs == nil || r.reserve < 0 {
		return nil
	}
	if ns := now.UnixNano(); ns-r.checked.Load() >= int64(roomCheckInterval) {
		r.checked.Store(ns)
		r.refresh()
	}
	if a := r.avail.Load(); a < r.reserve {
		// Refused appends read the space each time, so that the first
		// one after space was freed goes through.
		r.refresh()
		if a = r.avail.Load(); a >= r.reserve {
			return nil
		}
		return fmt.Errorf("%w: %d bytes available in %s, below the %d kept for metadata and seals", ErrDiskFull, a, r.dir, r.reserve)
	}
	return nil
}

// refresh reads the free space now (after uploads free some).
func (r *room) refresh() {
	if r.statfs == nil {
		return
	}
	if _, a, err := r.statfs(r.dir); err == nil {
		r.avail.Store(a)
	}
}
