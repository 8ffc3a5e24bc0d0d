package log

import (
	"errors"
	"log/slog"
	"testing"
	"time"
)

// TestRoom checks both bounds on appends: the upload backlog and the
// free-space reserve, and that the default backlog bound is half the
// space available however small the file system.
func TestRoom(t *testing.T) {
	const mib = 1 << 20
	for _, tc := range []struct {
		name         string
		total, avail int64 // what statfs says
		limit        int64 // Config.MaxUploadBacklog
		backlog      int64
		wantLimit    int64
		want         error
	}{
		{name: "room", total: 1 << 40, avail: 1 << 39, limit: 100 * mib, backlog: 99 * mib, wantLimit: 100 * mib},
		{name: "backlog at its bound", total: 1 << 40, avail: 1 << 39, limit: 100 * mib, backlog: 100 * mib, wantLimit: 100 * mib, want: ErrUploadBacklog},
		{name: "default bound is half the free space", total: 16 * mib, avail: 12 * mib, backlog: 6*mib - 1, wantLimit: 6 * mib},
		{name: "small disk: default bound reached", total: 16 * mib, avail: 12 * mib, backlog: 6 * mib, wantLimit: 6 * mib, want: ErrUploadBacklog},
		{name: "below the reserve", total: 1 << 40, avail: 64*mib - 1, limit: 1 << 40, wantLimit: 1 << 40, want: ErrDiskFull},
		{name: "small disk: an eighth reserved", total: 16 * mib, avail: 2*mib - 1, limit: 1 << 40, wantLimit: 1 << 40, want: ErrDiskFull},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := &room{dir: "d", logger: slog.New(slog.DiscardHandler), limit: tc.limit}
			r.statfs = func(string) (int64, int64, error) { return tc.total, tc.avail, nil }
			r = newRoomWith(r)
			if r.limit != tc.wantLimit {
				t.Fatalf("limit %d, want %d", r.limit, tc.wantLimit)
			}
			r.backlog.Store(tc.backlog)
			if err := r.check(time.Now()); !errors.Is(err, tc.want) || (tc.want == nil) != (err == nil) {
				t.Fatalf("check: %v, want %v", err, tc.want)
			}
		})
	}
}

// TestRoomResumes: once space is freed the next check, after the
// interval, lets appends through again.
func TestRoomResumes(t *testing.T) {
	avail := int64(0)
	r := &room{dir: "d", logger: slog.New(slog.DiscardHandler), limit: 1 << 40}
	r.statfs = func(string) (int64, int64, error) { return 1 << 30, avail, nil }
	r = newRoomWith(r)
	now := time.Now()
	if err := r.check(now); !errors.Is(err, ErrDiskFull) {
		t.Fatalf("full: %v", err)
	}
	avail = 1 << 29
	// While refusing, every check reads the space again: the first
	// append after space was freed goes through.
	if err := r.check(now.Add(time.Millisecond)); err != nil {
		t.Fatalf("after space was freed: %v", err)
	}
	if got := r.refusals.Load(); got != 1 {
		t.Fatalf("refusals %d, want 1", got)
	}
}
