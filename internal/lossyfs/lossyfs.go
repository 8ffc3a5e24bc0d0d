// Package lossyfs is a FUSE file system for power-loss tests: a loopback
// over a backing directory that keeps everything not yet fsynced in its
// own memory and drops it on command, as a power cut drops what a disk
// had not made durable.
//
// The backing directory is the model's stable storage: after Cut it holds
// exactly what was fsynced, and a program started again on the mount sees
// that. (lossyfs does not fsync the backing directory itself: nothing cuts
// its power.)
//
// What it models:
//
//   - File contents. A write, a truncation or an extension (ftruncate,
//     O_TRUNC) changes the file as every reader on the mount sees it at
//     once (read-your-writes: the pending pages are merged over the
//     backing file), but reaches the backing file only when that file is
//     fsynced or fdatasynced (FUSE FSYNC; both count the same). Pages are
//     4 KiB: a write leaves the file's other bytes as they were.
//   - Directory entries. Create, mkdir, unlink, rmdir and rename are
//     applied to the backing directory at once and journalled; a change
//     is durable once the directory it changed has been fsynced after it
//     (FUSE FSYNCDIR), and a rename between two directories once both
//     have. Cut undoes the changes not yet durable, newest first: a
//     created file or directory disappears (with what is under it), an
//     unlinked or removed one comes back (with its durable contents), a
//     renamed one goes back to its old name and a file it replaced comes
//     back. Unlinked entries wait in a hidden directory of the backing
//     directory (.lossyfs-trash) until their removal is durable.
//   - fsync of a file makes its contents durable, not its name: a new
//     file whose directory was never fsynced is gone after a cut, as
//     POSIX allows (ext4, XFS and btrfs in practice keep it, since their
//     journals commit the directory change with the fsync; the model is
//     stricter).
//   - syncfs(2) and sync(2) make nothing durable: the kernel sends no
//     request for them to a /dev/fuse file system (it forwards syncfs only
//     to virtiofs), so lossyfs never learns of them. That is the real
//     behaviour of every FUSE file system without writeback caching, not
//     a simplification.
//   - Cut drops every pending page; CutWriteback first writes a chosen
//     subset of them to the backing files, as a kernel's writeback before
//     the power failed may have, leaving unsynced data torn at page
//     boundaries.
//
// What it does not model: a write torn inside a page (pages survive whole
// or not at all), a fsync that is itself torn, lost or reordered; pending
// truncations reaching the disk before a fsync; metadata other than size
// (mode, owner and times are applied to the backing file at once and
// survive a cut); hard links, symlinks, device nodes, O_TMPFILE, fallocate
// and extended attributes (refused with ENOSYS, so the kernel reports them
// unsupported). Shared writable mmaps (SQLite's -shm file) work, but the
// kernel writes their dirty pages back whenever it likes, so such a page
// may reach lossyfs after a cut; nothing durable lives in them.
//
// The kernel caches nothing lossyfs could not take back: entries and
// attributes are answered with zero timeouts, there is no writeback cache
// (every write reaches lossyfs before write(2) returns), file data pages
// are dropped at every open, and Cut invalidates every inode it knows.
// No O_DIRECT is needed.
//
// All state sits behind one mutex: lossyfs is built to be simple enough
// to trust, not fast.
package lossyfs

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"

	"github.com/hanwen/go-fuse/v2/fuse"
	"golang.org/x/sys/unix"
)

// ErrUnavailable is wrapped by Mount's error when this machine cannot
// mount a FUSE file system: no /dev/fuse, or mounting is not permitted.
var ErrUnavailable = errors.New("lossyfs: FUSE mounting unavailable")

// trashName is the hidden directory at the root of the backing directory
// where unlinked and replaced entries wait until their removal is durable.
const trashName = ".lossyfs-trash"

// rootID is the FUSE node id of the mount's root.
const rootID = fuse.FUSE_ROOT_ID

// FS is a mounted lossy file system. Its methods other than Cut, Unmount,
// Mountpoint and Backing serve the kernel's FUSE requests.
type FS struct {
	fuse.RawFileSystem // answers ENOSYS for what lossyfs does not model

	backing    string
	mountpoint string
	server     *fuse.Server
	trash      int // fd of the trash directory

	// mu guards every field below and all I/O on the backing directory.
	mu      sync.Mutex
	nodes   map[uint64]*node // by FUSE node id
	byIno   map[uint64]*node // by backing inode number (pinned by node.fd)
	nextID  uint64
	dirs    map[uint64][]fuse.DirEntry // open directory listings by handle
	nextFh  uint64
	journal []*nsOp // namespace changes not yet durable, oldest first
	nextTmp uint64  // names entries in the trash
	closed  bool
}

// node is one file or directory the kernel knows, or one whose contents
// are pending.
type node struct {
	id      uint64
	ino     uint64
	dir     bool
	fd      int      // the backing file (O_RDWR) or directory (O_RDONLY)
	lookups uint64   // the kernel's references (FUSE nlookup)
	opens   int      // open file handles
	c       *overlay // pending contents of a file; nil when none
}

// Dropped is what one Cut threw away.
type Dropped struct {
	Bytes int64 // pending bytes dropped (whole 4 KiB pages)
	// Files names the files they were pending for, relative to the
	// backing directory, each with its bytes: "d/f (8192 bytes)".
	Files []string
	// KeptBytes is what CutWriteback wrote back before the cut (pages
	// clipped to the file's size).
	KeptBytes int64
	// Undone lists the namespace changes undone, newest first, with paths
	// relative to the backing directory ("create d/f", "remove d/g",
	// "rename d/tmp over d/f").
	Undone []string
	// Unrestorable lists undone changes whose old state could not be put
	// back because a durable later change removed the place (a file
	// unlinked in a directory whose own removal was durable). The result
	// is still a state a power cut can leave.
	Unrestorable []string
}

// Mount serves a lossy view of backing at mountpoint (both existing
// directories) until Unmount. Run as root, it mounts with mount(2)
// itself; otherwise it needs fusermount3 (or fusermount) on PATH.
func Mount(backing, mountpoint string) (*FS, error) {
	if _, err := os.Stat("/dev/fuse"); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	backing, err := filepath.Abs(backing)
	if err != nil {
		return nil, err
	}
	f, err := newFS(backing)
	if err != nil {
		return nil, err
	}
	opts := fuse.MountOptions{
		FsName:             "lossyfs",
		Name:               "lossyfs",
		DirectMountStrict:  true, // root mounts without fusermount3
		DisableReadDirPlus: true, // READDIR only: lookups stay explicit
	}
	server, err := fuse.NewServer(f, mountpoint, &opts)
	if err != nil && (errors.Is(err, syscall.EPERM) || errors.Is(err, syscall.EACCES)) {
		// Not root: fall back to the fusermount helper if there is one.
		opts.DirectMountStrict = false
		var err2 error
		if server, err2 = fuse.NewServer(f, mountpoint, &opts); err2 != nil {
			err = fmt.Errorf("%w: mount(2): %v; fusermount: %v", ErrUnavailable, err, err2)
		} else {
			err = nil
		}
	}
	if err != nil {
		f.closeFDs()
		return nil, fmt.Errorf("lossyfs: mount %s: %w", mountpoint, err)
	}
	go server.Serve()
	if err := server.WaitMount(); err != nil {
		_ = server.Unmount()
		f.closeFDs()
		return nil, fmt.Errorf("lossyfs: mount %s: %w", mountpoint, err)
	}
	f.server = server
	f.mountpoint = mountpoint
	return f, nil
}

// newFS opens backing and its trash directory (emptying a trash left by
// an earlier run: its entries were never durably there).
func newFS(backing string) (*FS, error) {
	root, err := unix.Open(backing, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("lossyfs: open %s: %w", backing, err)
	}
	var st unix.Stat_t
	if err := unix.Fstat(root, &st); err != nil {
		unix.Close(root)
		return nil, fmt.Errorf("lossyfs: stat %s: %w", backing, err)
	}
	trashPath := filepath.Join(backing, trashName)
	if err := os.RemoveAll(trashPath); err != nil {
		unix.Close(root)
		return nil, fmt.Errorf("lossyfs: clear %s: %w", trashPath, err)
	}
	if err := os.Mkdir(trashPath, 0o700); err != nil {
		unix.Close(root)
		return nil, fmt.Errorf("lossyfs: %w", err)
	}
	trash, err := unix.Open(trashPath, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		unix.Close(root)
		return nil, fmt.Errorf("lossyfs: open %s: %w", trashPath, err)
	}
	f := &FS{
		RawFileSystem: fuse.NewDefaultRawFileSystem(),
		backing:       backing,
		trash:         trash,
		nodes:         make(map[uint64]*node),
		byIno:         make(map[uint64]*node),
		nextID:        rootID + 1,
		dirs:          make(map[uint64][]fuse.DirEntry),
		nextFh:        1,
	}
	r := &node{id: rootID, ino: st.Ino, dir: true, fd: root, lookups: 1}
	f.nodes[rootID], f.byIno[st.Ino] = r, r
	return f, nil
}

// Mountpoint is where the file system is mounted.
func (f *FS) Mountpoint() string { return f.mountpoint }

// Backing is the backing directory: after Cut, what was fsynced.
func (f *FS) Backing() string { return f.backing }

// String names the file system in go-fuse's logs.
func (f *FS) String() string { return "lossyfs" }

// Cut is the power cut: every pending page is dropped and every namespace
// change not yet durable is undone, so the backing directory holds exactly
// what was fsynced, and the kernel's caches of the mount are invalidated.
// Call it while no process uses the mount (after SIGKILL, once the process
// is reaped); the mount stays up and serves the durable state.
func (f *FS) Cut() (Dropped, error) { return f.cut(nil) }

// CutWriteback is Cut on a machine whose kernel had written some dirty
// pages back before the power failed, in no particular order: first each
// pending page for which keep returns true reaches its backing file (a
// page past the end extends the file to cover it, leaving zeros before it;
// a pending truncation is not applied), then the rest is dropped as by
// Cut. Unsynced data thus survives in part, torn at page boundaries,
// which is what recovery code must cope with.
func (f *FS) CutWriteback(keep func() bool) (Dropped, error) { return f.cut(keep) }

func (f *FS) cut(keep func() bool) (Dropped, error) {
	f.mu.Lock()
	if f.closed {
		f.mu.Unlock()
		return Dropped{}, errors.New("lossyfs: Cut after Unmount")
	}
	var d Dropped
	var errs []error
	if keep != nil {
		for _, n := range f.nodes {
			if n.c != nil {
				kept, err := n.c.writeBack(n.fd, keep)
				d.KeptBytes += kept
				errs = append(errs, err)
			}
		}
	}
	names := f.pendingNamesLocked()
	notices := f.undoJournalLocked(&d)
	for _, n := range f.nodes {
		if n.c == nil {
			continue
		}
		name, ok := names[n]
		if !ok {
			name = f.relLocked(procPath(n.fd))
		}
		b := n.c.pendingBytes()
		d.Bytes += b
		d.Files = append(d.Files, fmt.Sprintf("%s (%d bytes)", name, b))
		n.c = nil
	}
	slices.Sort(d.Files)
	errs = append(errs, f.emptyTrashLocked())
	ids := make([]uint64, 0, len(f.nodes))
	for id, n := range f.nodes {
		ids = append(ids, id)
		f.releaseLocked(n)
	}
	f.mu.Unlock()

	// Outside the lock: the kernel may answer a notification with
	// requests of its own (writing back a dirty mmap page first).
	for _, e := range notices {
		f.server.EntryNotify(e.parent, e.name)
	}
	for _, id := range ids {
		f.server.InodeNotify(id, 0, 0) // ENOENT for inodes the kernel forgot: fine
	}
	return d, errors.Join(errs...)
}

// pendingNamesLocked names the files with pending contents where their
// writers wrote them, for Dropped.Files: where they are now, except those
// waiting in the trash, which are named after the undoing put them back.
func (f *FS) pendingNamesLocked() map[*node]string {
	names := make(map[*node]string)
	for _, n := range f.nodes {
		if n.c == nil {
			continue
		}
		if name := f.relLocked(procPath(n.fd)); !strings.HasPrefix(name, trashName+"/") {
			names[n] = name
		}
	}
	return names
}

// relLocked names a backing file for messages: the target of the magic
// link (an fd's /proc path), relative to the backing directory.
func (f *FS) relLocked(link string) string {
	path, err := os.Readlink(link)
	if err != nil {
		return link
	}
	if r, err := filepath.Rel(f.backing, path); err == nil {
		return r
	}
	return path
}

// Unmount is a clean shutdown, as umount(8) of a disk: every pending page
// and namespace change is made durable first. (For a power cut followed by
// unmounting, call Cut first.) No process may use the mount.
func (f *FS) Unmount() error {
	f.mu.Lock()
	if f.closed {
		f.mu.Unlock()
		return nil
	}
	err := f.syncAllLocked()
	f.mu.Unlock()
	if uerr := f.server.Unmount(); uerr != nil {
		// Busy: detach it so no mount outlives the test; the serve
		// loop ends once the last user lets go.
		if derr := unix.Unmount(f.mountpoint, unix.MNT_DETACH); derr != nil {
			return errors.Join(err, fmt.Errorf("lossyfs: unmount %s: %w (detach: %v)", f.mountpoint, uerr, derr))
		}
		err = errors.Join(err, fmt.Errorf("lossyfs: unmount %s: %w (detached lazily)", f.mountpoint, uerr))
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.closed = true
	err = errors.Join(err, f.emptyTrashLocked())
	f.closeFDsLocked()
	if rerr := os.Remove(filepath.Join(f.backing, trashName)); rerr != nil {
		err = errors.Join(err, rerr)
	}
	return err
}

// syncAllLocked makes every pending page and namespace change durable.
func (f *FS) syncAllLocked() error {
	var errs []error
	for _, n := range f.nodes {
		if n.c != nil {
			if err := n.c.sync(n.fd); err != nil {
				errs = append(errs, fmt.Errorf("lossyfs: sync inode %d: %w", n.ino, err))
			}
			n.c = nil
		}
	}
	for _, op := range f.journal {
		clear(op.pending)
	}
	errs = append(errs, f.settleLocked())
	return errors.Join(errs...)
}

func (f *FS) closeFDs() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.closeFDsLocked()
}

func (f *FS) closeFDsLocked() {
	for _, n := range f.nodes {
		unix.Close(n.fd)
	}
	clear(f.nodes)
	clear(f.byIno)
	for _, op := range f.journal {
		op.close()
	}
	f.journal = nil
	if f.trash >= 0 {
		unix.Close(f.trash)
		f.trash = -1
	}
}

// releaseLocked forgets n once nothing needs it: no kernel reference, no
// open handle, no pending contents. Its fd pins the backing inode, so its
// inode number cannot be reused while it is in byIno.
func (f *FS) releaseLocked(n *node) {
	if n.id == rootID || n.lookups > 0 || n.opens > 0 || n.c != nil {
		return
	}
	unix.Close(n.fd)
	delete(f.nodes, n.id)
	delete(f.byIno, n.ino)
}

// nodeLocked returns the node with FUSE id id.
func (f *FS) nodeLocked(id uint64) (*node, fuse.Status) {
	n := f.nodes[id]
	if n == nil {
		return nil, fuse.Status(syscall.ESTALE)
	}
	return n, fuse.OK
}

// dirLocked returns the directory node with FUSE id id.
func (f *FS) dirLocked(id uint64) (*node, fuse.Status) {
	n, st := f.nodeLocked(id)
	if st == fuse.OK && !n.dir {
		return nil, fuse.ENOTDIR
	}
	return n, st
}

// fileLocked returns the regular file node with FUSE id id.
func (f *FS) fileLocked(id uint64) (*node, fuse.Status) {
	n, st := f.nodeLocked(id)
	if st == fuse.OK && n.dir {
		return nil, fuse.Status(syscall.EISDIR)
	}
	return n, st
}

// hidden reports whether name in dir is the trash, which the mount never
// shows.
func hidden(dir *node, name string) bool { return dir.id == rootID && name == trashName }

// lookupLocked returns the node of name in dir, opening the backing entry
// if no node has it yet.
func (f *FS) lookupLocked(dir *node, name string) (*node, error) {
	var st unix.Stat_t
	if err := unix.Fstatat(dir.fd, name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return nil, err
	}
	if n := f.byIno[st.Ino]; n != nil {
		return n, nil
	}
	var flags int
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFDIR:
		flags = unix.O_RDONLY | unix.O_DIRECTORY
	case unix.S_IFREG:
		flags = unix.O_RDWR
	default:
		return nil, syscall.EIO // lossyfs creates nothing else
	}
	fd, err := unix.Openat(dir.fd, name, flags|unix.O_CLOEXEC|unix.O_NOFOLLOW, 0)
	if err != nil {
		return nil, err
	}
	n := &node{id: f.nextID, ino: st.Ino, dir: flags&unix.O_DIRECTORY != 0, fd: fd}
	f.nextID++
	f.nodes[n.id], f.byIno[n.ino] = n, n
	return n, nil
}

// entryLocked fills a lookup answer for n and counts the kernel's new
// reference. The zero timeouts make the kernel ask again every time.
func (f *FS) entryLocked(n *node, out *fuse.EntryOut) fuse.Status {
	if err := attrOf(n, &out.Attr); err != nil {
		return status(err)
	}
	n.lookups++
	out.NodeId = n.id
	return fuse.OK
}

// attrOf fills a with n's attributes: the backing file's, with the
// pending size.
func attrOf(n *node, a *fuse.Attr) error {
	var st syscall.Stat_t
	if err := syscall.Fstat(n.fd, &st); err != nil {
		return err
	}
	a.FromStat(&st)
	if n.c != nil {
		a.Size = uint64(n.c.size)
		a.Blocks = (a.Size + 511) / 512
	}
	return nil
}
