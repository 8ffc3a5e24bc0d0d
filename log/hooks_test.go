package log

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"sync"

	"github.com/streamhouse/streamhouse/objstore"
)

// hookFS is the operating system's file system with hooks a test sets to
// watch or fail single operations, and a log of the operations done
// ("sync <path>", "write <path>", "syncdir <path>", ...). Hooks run
// without the log lock held and may block.
type hookFS struct {
	osFS
	mu  sync.Mutex
	ops []string
	// onSync, onWrite and onCreate, when set, run before the operation;
	// a non-nil error fails it with that error.
	onSync   func(path string) error
	onWrite  func(path string, off int64, n int) error
	onCreate func(path string) error
}

func (h *hookFS) record(op, path string) {
	h.mu.Lock()
	h.ops = append(h.ops, op+" "+path)
	h.mu.Unlock()
}

// log returns the operations done so far.
func (h *hookFS) log() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string(nil), h.ops...)
}

func (h *hookFS) hooks() (sync func(string) error, write func(string, int64, int) error, create func(string) error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.onSync, h.onWrite, h.onCreate
}

func (h *hookFS) OpenFile(name string, flag int, perm os.FileMode) (file, error) {
	if flag&os.O_CREATE != 0 {
		if _, _, create := h.hooks(); create != nil {
			if err := create(name); err != nil {
				return nil, err
			}
		}
	}
	f, err := h.osFS.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	return &hookFile{file: f, fs: h}, nil
}

func (h *hookFS) SyncDir(name string) error {
	h.record("syncdir", name)
	return h.osFS.SyncDir(name)
}

func (h *hookFS) Mkdir(name string, perm os.FileMode) error {
	h.record("mkdir", name)
	return h.osFS.Mkdir(name, perm)
}

// hookFile is a file of a hookFS.
type hookFile struct {
	file
	fs *hookFS
}

func (f *hookFile) WriteAt(b []byte, off int64) (int, error) {
	if _, write, _ := f.fs.hooks(); write != nil {
		if err := write(f.Name(), off, len(b)); err != nil {
			return 0, err
		}
	}
	f.fs.record("write", f.Name())
	return f.file.WriteAt(b, off)
}

func (f *hookFile) Sync() error {
	if sync, _, _ := f.fs.hooks(); sync != nil {
		if err := sync(f.Name()); err != nil {
			return err
		}
	}
	f.fs.record("sync", f.Name())
	return f.file.Sync()
}

// hookStore is an object store whose Put, Get and Delete a test can fail
// or watch.
type hookStore struct {
	objstore.Store
	mu  sync.Mutex
	put func(key string) error
	get func(key string) error
	del func(key string) error
}

func (s *hookStore) hooks() (put, get, del func(string) error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.put, s.get, s.del
}

func (s *hookStore) setPut(f func(string) error) { s.mu.Lock(); s.put = f; s.mu.Unlock() }
func (s *hookStore) setGet(f func(string) error) { s.mu.Lock(); s.get = f; s.mu.Unlock() }
func (s *hookStore) setDel(f func(string) error) { s.mu.Lock(); s.del = f; s.mu.Unlock() }

func (s *hookStore) Put(ctx context.Context, key string, r io.Reader, size int64) error {
	if put, _, _ := s.hooks(); put != nil {
		if err := put(key); err != nil {
			return err
		}
	}
	return s.Store.Put(ctx, key, r, size)
}

func (s *hookStore) Get(ctx context.Context, key string) ([]byte, error) {
	if _, get, _ := s.hooks(); get != nil {
		if err := get(key); err != nil {
			return nil, err
		}
	}
	return s.Store.Get(ctx, key)
}

func (s *hookStore) Delete(ctx context.Context, key string) error {
	if _, _, del := s.hooks(); del != nil {
		if err := del(key); err != nil {
			return err
		}
	}
	return s.Store.Delete(ctx, key)
}

// isSegmentFile reports whether path is a segment file (not a producer
// snapshot).
func isSegmentFile(path string) bool { return filepath.Ext(path) == ".log" }
