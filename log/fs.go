package log

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"syscall"
)

// fileSystem is the seam between the log and the file system holding its
// segments and producer snapshots. Production uses osFS; tests plug in a
// file system that fails or tears any operation and drops unsynced bytes
// on a simulated power loss (faultfs_test.go). The directory lock and the
// filesystem-wide syncfs stay on the real file system.
type fileSystem interface {
	// OpenFile opens name like os.OpenFile.
	OpenFile(name string, flag int, perm os.FileMode) (file, error)
	// Remove removes one file or empty directory.
	Remove(name string) error
	// RemoveAll removes a directory tree; a missing one is no error.
	RemoveAll(name string) error
	// Rename renames a file, replacing any file at newname.
	Rename(oldname, newname string) error
	// Mkdir creates one directory; its parent must exist.
	Mkdir(name string, perm os.FileMode) error
	// ReadDir lists the names in a directory, sorted.
	ReadDir(name string) ([]string, error)
	// SyncDir makes the entries created, renamed or removed in a
	// directory durable.
	SyncDir(name string) error
	// Exists reports whether name exists.
	Exists(name string) (bool, error)
}

// file is an open file of a fileSystem.
type file interface {
	io.ReaderAt
	io.WriterAt
	// Truncate changes the file's size.
	Truncate(size int64) error
	// Sync makes the file's bytes durable (fsync).
	Sync() error
	Close() error
	// Name is the path the file was opened with.
	Name() string
	// Size is the file's current size.
	Size() (int64, error)
}

// osFS is the operating system's file system.
type osFS struct{}

// osFile is an *os.File; region.go sends from its descriptor.
type osFile struct{ *os.File }

func (f osFile) Size() (int64, error) {
	st, err := f.Stat()
	if err != nil {
		return 0, err
	}
	return st.Size(), nil
}

func (osFS) OpenFile(name string, flag int, perm os.FileMode) (file, error) {
	f, err := os.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	return osFile{f}, nil
}

func (osFS) Remove(name string) error                  { return os.Remove(name) }
func (osFS) RemoveAll(name string) error               { return os.RemoveAll(name) }
func (osFS) Rename(oldname, newname string) error      { return os.Rename(oldname, newname) }
func (osFS) Mkdir(name string, perm os.FileMode) error { return os.Mkdir(name, perm) }

func (osFS) ReadDir(name string) ([]string, error) {
	ents, err := os.ReadDir(name)
	if err != nil {
		return nil, err
	}
	names := make([]string, len(ents))
	for i, e := range ents {
		names[i] = e.Name()
	}
	return names, nil
}

func (osFS) SyncDir(name string) error {
	d, err := os.Open(name)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

func (osFS) Exists(name string) (bool, error) {
	_, err := os.Stat(name)
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	return err == nil, err
}

// syncDir fsyncs a directory so that entries created or removed in it are
// durable.
func syncDir(fsys fileSystem, dir string) error {
	if err := fsys.SyncDir(dir); err != nil {
		return fmt.Errorf("log: fsync dir %s: %w", dir, err)
	}
	return nil
}

// mkdirDurable creates dir and any missing parents, fsyncing the parent
// of every directory it creates, so that a power loss cannot lose a
// directory that files were then written into.
func mkdirDurable(fsys fileSystem, dir string) error {
	ok, err := fsys.Exists(dir)
	if err != nil {
		return fmt.Errorf("log: stat %s: %w", dir, err)
	}
	if ok {
		return nil
	}
	parent := filepath.Dir(dir)
	if parent != dir {
		if err := mkdirDurable(fsys, parent); err != nil {
			return err
		}
	}
	if err := fsys.Mkdir(dir, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
		return fmt.Errorf("log: create dir %s: %w", dir, err)
	}
	return syncDir(fsys, parent)
}

// MkdirAll creates dir and any missing parents like os.MkdirAll, and
// makes each directory it creates durable (its parent fsynced), so that a
// power loss right after the first start cannot take away the directory
// that acknowledged data was then written under.
func MkdirAll(dir string) error {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return fmt.Errorf("log: create dir %s: %w", dir, err)
	}
	return mkdirDurable(osFS{}, abs)
}

// readWholeFile reads a whole file.
func readWholeFile(fsys fileSystem, name string) ([]byte, error) {
	f, err := fsys.OpenFile(name, os.O_RDONLY, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	size, err := f.Size()
	if err != nil {
		return nil, err
	}
	buf := make([]byte, size)
	if _, err := f.ReadAt(buf, 0); err != nil && !errors.Is(err, io.EOF) {
		return nil, err
	}
	return buf, nil
}

// isNoSpace reports whether err means the file system is full (ENOSPC or
// a quota's EDQUOT): a write that fails so wrote nothing that matters
// once it is truncated away, and may succeed once space is freed.
func isNoSpace(err error) bool {
	return errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT)
}
