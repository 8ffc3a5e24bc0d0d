package log

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
)

// dirLock is an exclusive flock on a file inside a data directory, so that
// two brokers can never share one directory.
type dirLock struct {
	f *os.File
}

// lockDir takes the lock or fails at once with a message naming the
// directory: a second broker must not wait, it must refuse to start.
func lockDir(dir string) (*dirLock, error) {
	if err := mkdirDurable(osFS{}, dir); err != nil {
		return nil, fmt.Errorf("log: create data directory %s: %w", dir, err)
	}
	path := filepath.Join(dir, ".lock")
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("log: open lock file %s: %w", path, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("log: data directory %s is in use by another broker (lock %s held): %w", dir, path, ErrDirLocked)
		}
		return nil, fmt.Errorf("log: lock data directory %s: %w", dir, err)
	}
	return &dirLock{f: f}, nil
}

// ErrDirLocked means another process holds the data directory's lock.
var ErrDirLocked = errors.New("log: data directory locked")

func (l *dirLock) release() error {
	if l == nil || l.f == nil {
		return nil
	}
	err := syscall.Flock(int(l.f.Fd()), syscall.LOCK_UN)
	if cerr := l.f.Close(); err == nil {
		err = cerr
	}
	l.f = nil
	return err
}
