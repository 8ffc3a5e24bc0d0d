package objstore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
)

// Local is a Store kept in a directory on the local file system: the key
// "a/b/c" is the file dir/a/b/c. It is the default store of a single broker.
//
// Put is atomic and durable: it writes a temporary file named ".tmp-*" in
// the object's directory, fsyncs it, renames it over the key, and fsyncs
// the directory; every directory it creates is made durable by fsyncing its
// parent. A crash may leave temporary files behind; List never shows them
// and CleanTemp removes them.
//
// Errors: a missing key wraps ErrNotFound; invalid keys, permission errors
// and keys that collide with a directory ("a" when "a/b" exists) wrap
// ErrPermanent; other I/O errors are returned wrapped without a sentinel.
type Local struct {
	dir string

	// mu orders directory creation against pruning. Put holds it shared
	// while it creates the object's directories and its temporary file;
	// Delete holds it exclusively while it removes empty directories. Once
	// the temporary file exists its directory is not empty, so pruning
	// cannot remove the directory under a rename.
	mu sync.RWMutex

	// durableMu guards durable.
	durableMu sync.Mutex
	// durable holds the directories known to exist with their entry
	// fsynced in the parent, so Put fsyncs parents only the first time.
	durable map[string]bool
}

var _ Store = (*Local)(nil)

// NewLocal opens (creating if needed) a local store rooted at dir.
func NewLocal(dir string) (*Local, error) {
	if dir == "" {
		return nil, fmt.Errorf("objstore: local: empty directory: %w", ErrPermanent)
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("objstore: local %s: %w", dir, err)
	}
	if err := os.MkdirAll(abs, 0o755); err != nil {
		return nil, fmt.Errorf("objstore: local %s: %w", abs, err)
	}
	fi, err := os.Stat(abs)
	if err != nil {
		return nil, fmt.Errorf("objstore: local %s: %w", abs, err)
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("objstore: local %s: not a directory: %w", abs, ErrPermanent)
	}
	if err := syncDir(filepath.Dir(abs)); err != nil {
		return nil, fmt.Errorf("objstore: local %s: %w", abs, err)
	}
	return &Local{dir: abs, durable: map[string]bool{abs: true}}, nil
}

// Dir returns the absolute root directory of the store.
func (l *Local) Dir() string { return l.dir }

// Put implements Store.
func (l *Local) Put(ctx context.Context, key string, r io.Reader, size int64) error {
	if err := l.check(ctx, "put", key); err != nil {
		return err
	}
	if err := checkSize(key, size); err != nil {
		return err
	}
	path := l.path(key)
	parent := filepath.Dir(path)
	l.mu.RLock()
	f, err := l.createTemp(parent)
	l.mu.RUnlock()
	if err != nil {
		return l.fail("put", key, err)
	}
	tmp := f.Name()
	if err := writeSync(ctx, f, r, size); err != nil {
		_ = os.Remove(tmp)
		return l.fail("put", key, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		_ = os.Remove(tmp)
		return l.fail("put", key, err)
	}
	if err := syncDir(parent); err != nil {
		return l.fail("put", key, err)
	}
	return nil
}

// writeSync copies exactly size bytes from r into f, fsyncs and closes f.
// f is closed whatever happens. When r is a file (the log uploads sealed
// segment files) it is handed to io.CopyN as is, so that the kernel copies
// (copy_file_range(2)) without a trip through user space; ctx is then
// checked before the copy only.
func writeSync(ctx context.Context, f *os.File, r io.Reader, size int64) error {
	src := r
	if _, isFile := r.(*os.File); !isFile {
		src = ctxReader{ctx, r}
	} else if err := ctx.Err(); err != nil {
		f.Close()
		return err
	}
	_, err := io.CopyN(f, src, size)
	if errors.Is(err, io.EOF) {
		err = fmt.Errorf("read body: %w", io.ErrUnexpectedEOF)
	}
	if err == nil {
		err = f.Chmod(0o644)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// createTemp makes dir (and its missing parents) durable and creates a
// temporary file in it. The caller holds l.mu shared.
func (l *Local) createTemp(dir string) (*os.File, error) {
	if err := l.mkdirs(dir); err != nil {
		return nil, err
	}
	return os.CreateTemp(dir, tmpPrefix+"*")
}

// mkdirs creates dir and its missing parents below l.dir, fsyncing the
// parent of each so the new entries survive a crash. The caller holds l.mu
// shared.
func (l *Local) mkdirs(dir string) error {
	l.durableMu.Lock()
	known := l.durable[dir]
	l.durableMu.Unlock()
	if known {
		return nil
	}
	rel, err := filepath.Rel(l.dir, dir)
	if err != nil {
		return err
	}
	cur := l.dir
	for elem := range strings.SplitSeq(rel, string(filepath.Separator)) {
		next := filepath.Join(cur, elem)
		if err := os.Mkdir(next, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
			return err
		}
		if fi, err := os.Stat(next); err != nil {
			return err
		} else if !fi.IsDir() {
			// An object sits where the key needs a directory.
			return &fs.PathError{Op: "mkdir", Path: next, Err: syscall.ENOTDIR}
		}
		// Sync the parent even when another Put created next: it may not
		// have synced yet, and this Put must not return before it has.
		if err := syncDir(cur); err != nil {
			return err
		}
		cur = next
	}
	l.durableMu.Lock()
	for d := dir; d != l.dir && len(d) > len(l.dir); d = filepath.Dir(d) {
		l.durable[d] = true
	}
	l.durableMu.Unlock()
	return nil
}

// Get implements Store.
func (l *Local) Get(ctx context.Context, key string) ([]byte, error) {
	if err := l.check(ctx, "get", key); err != nil {
		return nil, err
	}
	return l.read("get", key, 0, -1)
}

// GetRange implements Store.
func (l *Local) GetRange(ctx context.Context, key string, off, length int64) ([]byte, error) {
	if err := l.check(ctx, "get_range", key); err != nil {
		return nil, err
	}
	if err := checkRange(key, off, length); err != nil {
		return nil, err
	}
	return l.read("get_range", key, off, length)
}

// read returns length bytes at off of key's file; length -1 means all.
func (l *Local) read(op, key string, off, length int64) ([]byte, error) {
	f, err := os.Open(l.path(key))
	if err != nil {
		return nil, l.fail(op, key, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, l.fail(op, key, err)
	}
	if !fi.Mode().IsRegular() {
		// A directory is where longer keys live, not an object.
		return nil, fmt.Errorf("objstore: local %s %q: %w", op, key, ErrNotFound)
	}
	if length < 0 {
		length = fi.Size()
	}
	start, end, err := rangeOf(key, fi.Size(), off, length)
	if err != nil {
		return nil, err
	}
	buf := make([]byte, end-start)
	// Objects are replaced by rename, never rewritten, so the open file
	// holds exactly fi.Size() bytes.
	if _, err := f.ReadAt(buf, start); err != nil && !(errors.Is(err, io.EOF) && len(buf) == 0) {
		return nil, l.fail(op, key, err)
	}
	return buf, nil
}

// List implements Store.
func (l *Local) List(ctx context.Context, prefix string) ([]ObjectInfo, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("objstore: local list %q: %w", prefix, err)
	}
	if err := checkPrefix(prefix); err != nil {
		return nil, err
	}
	// Walk only the deepest directory the prefix names in full.
	root := l.dir
	if i := strings.LastIndexByte(prefix, '/'); i >= 0 {
		root = l.path(prefix[:i])
	}
	var out []ObjectInfo
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			if isNotExist(err) {
				return nil // the prefix names nothing, or a concurrent Delete pruned it
			}
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		key := l.key(path)
		if d.IsDir() {
			if path != root && !strings.HasPrefix(key+"/", prefix) && !strings.HasPrefix(prefix, key+"/") {
				return filepath.SkipDir
			}
			return nil
		}
		if !d.Type().IsRegular() || strings.HasPrefix(d.Name(), tmpPrefix) || !strings.HasPrefix(key, prefix) {
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			if isNotExist(err) {
				return nil
			}
			return err
		}
		out = append(out, ObjectInfo{Key: key, Size: fi.Size(), Modified: fi.ModTime()})
		return nil
	})
	if err != nil {
		return nil, l.fail("list", prefix, err)
	}
	sortInfos(out)
	return out, nil
}

// Delete implements Store. It also removes directories left empty.
func (l *Local) Delete(ctx context.Context, key string) error {
	if err := l.check(ctx, "delete", key); err != nil {
		return err
	}
	path := l.path(key)
	fi, err := os.Lstat(path)
	if err != nil {
		if isNotExist(err) {
			return nil
		}
		return l.fail("delete", key, err)
	}
	if fi.IsDir() {
		return nil // a directory of longer keys, not an object
	}
	if err := os.Remove(path); err != nil && !isNotExist(err) {
		return l.fail("delete", key, err)
	}
	parent := filepath.Dir(path)
	if err := syncDir(parent); err != nil && !isNotExist(err) {
		return l.fail("delete", key, err)
	}
	l.prune(parent)
	return nil
}

// prune removes dir and its parents below l.dir while they are empty.
func (l *Local) prune(dir string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for ; dir != l.dir && len(dir) > len(l.dir); dir = filepath.Dir(dir) {
		// Remove fails on a non-empty directory, which ends the walk.
		if err := os.Remove(dir); err != nil {
			return
		}
		l.durableMu.Lock()
		delete(l.durable, dir)
		l.durableMu.Unlock()
	}
}

// CleanTemp removes the temporary files that a crash during Put can leave
// behind and returns how many it removed. Run it only while no Put is in
// progress, e.g. at startup while holding the data directory's lock.
func (l *Local) CleanTemp(ctx context.Context) (int, error) {
	n := 0
	err := filepath.WalkDir(l.dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			if isNotExist(err) {
				return nil
			}
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if d.IsDir() || !strings.HasPrefix(d.Name(), tmpPrefix) {
			return nil
		}
		if err := os.Remove(path); err != nil && !isNotExist(err) {
			return err
		}
		n++
		return nil
	})
	if err != nil {
		return n, fmt.Errorf("objstore: local clean temp files in %s: %w", l.dir, err)
	}
	return n, nil
}

func (l *Local) check(ctx context.Context, op, key string) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("objstore: local %s %q: %w", op, key, err)
	}
	return CheckKey(key)
}

// path maps a checked key to its file.
func (l *Local) path(key string) string {
	return filepath.Join(l.dir, filepath.FromSlash(key))
}

// key maps a file below l.dir back to its key.
func (l *Local) key(path string) string {
	rel, err := filepath.Rel(l.dir, path)
	if err != nil {
		return ""
	}
	return filepath.ToSlash(rel)
}

// fail wraps err with the operation and the sentinel it amounts to.
func (l *Local) fail(op, key string, err error) error {
	switch {
	case isNotExist(err) && op != "put":
		return fmt.Errorf("objstore: local %s %q: %w: %w", op, key, ErrNotFound, err)
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("objstore: local %s %q: %w", op, key, err)
	case errors.Is(err, fs.ErrPermission), errors.Is(err, syscall.EROFS):
		return fmt.Errorf("objstore: local %s %q in %s: %w: %w", op, key, l.dir, ErrPermanent, err)
	case errors.Is(err, syscall.ENOTDIR), errors.Is(err, syscall.EISDIR),
		errors.Is(err, syscall.EEXIST), errors.Is(err, syscall.ENOTEMPTY):
		return fmt.Errorf("objstore: local %s %q: key collides with a directory or an object on its path: %w: %w",
			op, key, ErrPermanent, err)
	}
	return fmt.Errorf("objstore: local %s %q: %w", op, key, err)
}

// isNotExist reports a missing file, including a path through a file.
func isNotExist(err error) bool {
	return errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR)
}

// syncDir fsyncs a directory so the entries created or removed in it are
// durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}
