package lossyfs

import (
	"errors"
	"io"
	"os"
	"slices"
	"strconv"
	"syscall"

	"github.com/hanwen/go-fuse/v2/fuse"
	"golang.org/x/sys/unix"
)

// The FUSE requests lossyfs serves. Each takes f.mu for its whole run;
// none calls back into the kernel.

// Lookup answers a name lookup from the backing directory.
func (f *FS) Lookup(_ <-chan struct{}, h *fuse.InHeader, name string, out *fuse.EntryOut) fuse.Status {
	f.mu.Lock()
	defer f.mu.Unlock()
	dir, st := f.dirLocked(h.NodeId)
	if st != fuse.OK {
		return st
	}
	if hidden(dir, name) {
		return fuse.ENOENT
	}
	n, err := f.lookupLocked(dir, name)
	if err != nil {
		return status(err)
	}
	return f.entryLocked(n, out)
}

// Forget drops the kernel's references to a node.
func (f *FS) Forget(id, nlookup uint64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := f.nodes[id]
	if n == nil {
		return
	}
	n.lookups -= min(n.lookups, nlookup)
	f.releaseLocked(n)
}

// GetAttr answers stat: the backing file's attributes with the pending
// size.
func (f *FS) GetAttr(_ <-chan struct{}, in *fuse.GetAttrIn, out *fuse.AttrOut) fuse.Status {
	f.mu.Lock()
	defer f.mu.Unlock()
	n, st := f.nodeLocked(in.NodeId)
	if st != fuse.OK {
		return st
	}
	return status(attrOf(n, &out.Attr))
}

// SetAttr changes the size (pending, like a write) and the mode, owner
// and times (at once, on the backing file).
func (f *FS) SetAttr(_ <-chan struct{}, in *fuse.SetAttrIn, out *fuse.AttrOut) fuse.Status {
	f.mu.Lock()
	defer f.mu.Unlock()
	n, st := f.nodeLocked(in.NodeId)
	if st != fuse.OK {
		return st
	}
	if size, ok := in.GetSize(); ok {
		if n.dir {
			return fuse.Status(syscall.EISDIR)
		}
		o, err := f.overlayLocked(n)
		if err != nil {
			return status(err)
		}
		o.truncate(int64(size))
	}
	if err := setMeta(n.fd, in); err != nil {
		return status(err)
	}
	return status(attrOf(n, &out.Attr))
}

// setMeta applies the mode, owner and time changes of in to the backing
// file fd.
func setMeta(fd int, in *fuse.SetAttrIn) error {
	if mode, ok := in.GetMode(); ok {
		if err := unix.Fchmod(fd, mode&07777); err != nil {
			return err
		}
	}
	uid, uok := in.GetUID()
	gid, gok := in.GetGID()
	if uok || gok {
		u, g := -1, -1
		if uok {
			u = int(uid)
		}
		if gok {
			g = int(gid)
		}
		if err := unix.Fchown(fd, u, g); err != nil {
			return err
		}
	}
	atime, aok := in.GetATime()
	mtime, mok := in.GetMTime()
	if !aok && !mok {
		return nil
	}
	ts := []unix.Timespec{{Nsec: unix.UTIME_OMIT}, {Nsec: unix.UTIME_OMIT}}
	if aok {
		ts[0] = unix.NsecToTimespec(atime.UnixNano())
	}
	if mok {
		ts[1] = unix.NsecToTimespec(mtime.UnixNano())
	}
	return unix.UtimesNanoAt(unix.AT_FDCWD, procPath(fd), ts, 0)
}

// procPath is the magic link that names fd's file.
func procPath(fd int) string { return "/proc/self/fd/" + strconv.Itoa(fd) }

// overlayLocked returns n's overlay, starting one if n has none.
func (f *FS) overlayLocked(n *node) (*overlay, error) {
	if n.c == nil {
		o, err := newOverlay(n.fd)
		if err != nil {
			return nil, err
		}
		n.c = o
	}
	return n.c, nil
}

// Open opens a file. No FOPEN_KEEP_CACHE: the kernel drops its cached
// pages of the file at every open.
func (f *FS) Open(_ <-chan struct{}, in *fuse.OpenIn, out *fuse.OpenOut) fuse.Status {
	f.mu.Lock()
	defer f.mu.Unlock()
	n, st := f.fileLocked(in.NodeId)
	if st != fuse.OK {
		return st
	}
	if in.Flags&syscall.O_TRUNC != 0 {
		o, err := f.overlayLocked(n)
		if err != nil {
			return status(err)
		}
		o.truncate(0)
	}
	n.opens++
	return fuse.OK
}

// Create creates and opens a file: a journalled change.
func (f *FS) Create(_ <-chan struct{}, in *fuse.CreateIn, name string, out *fuse.CreateOut) fuse.Status {
	f.mu.Lock()
	defer f.mu.Unlock()
	dir, st := f.dirLocked(in.NodeId)
	if st != fuse.OK {
		return st
	}
	if hidden(dir, name) {
		return fuse.EPERM
	}
	n, err := f.lookupLocked(dir, name)
	switch {
	case err == nil && in.Flags&syscall.O_EXCL != 0:
		return fuse.Status(syscall.EEXIST)
	case err == nil && n.dir:
		return fuse.Status(syscall.EISDIR)
	case err == nil && in.Flags&syscall.O_TRUNC != 0:
		// Created by someone else between the kernel's lookup and now.
		o, err := f.overlayLocked(n)
		if err != nil {
			return status(err)
		}
		o.truncate(0)
	case err == syscall.ENOENT:
		if n, err = f.createLocked(dir, name, in.Mode); err != nil {
			return status(err)
		}
	case err != nil:
		return status(err)
	}
	if st := f.entryLocked(n, &out.EntryOut); st != fuse.OK {
		return st
	}
	n.opens++
	return fuse.OK
}

// createLocked creates an empty file name in dir and journals it.
func (f *FS) createLocked(dir *node, name string, mode uint32) (*node, error) {
	op, err := newOp(opCreate, dir, name, 0, nil, "")
	if err != nil {
		return nil, err
	}
	fd, err := unix.Openat(dir.fd, name, unix.O_RDWR|unix.O_CREAT|unix.O_EXCL|unix.O_CLOEXEC|unix.O_NOFOLLOW, mode&07777)
	if err != nil {
		op.close()
		return nil, err
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		unix.Close(fd)
		_ = unix.Unlinkat(dir.fd, name, 0)
		op.close()
		return nil, err
	}
	op.ino = st.Ino
	f.journal = append(f.journal, op)
	n := &node{id: f.nextID, ino: st.Ino, fd: fd}
	f.nextID++
	f.nodes[n.id], f.byIno[n.ino] = n, n
	return n, nil
}

// Mkdir creates a directory: a journalled change.
func (f *FS) Mkdir(_ <-chan struct{}, in *fuse.MkdirIn, name string, out *fuse.EntryOut) fuse.Status {
	f.mu.Lock()
	defer f.mu.Unlock()
	dir, st := f.dirLocked(in.NodeId)
	if st != fuse.OK {
		return st
	}
	if hidden(dir, name) {
		return fuse.EPERM
	}
	op, err := newOp(opCreate, dir, name, 0, nil, "")
	if err != nil {
		return status(err)
	}
	if err := unix.Mkdirat(dir.fd, name, in.Mode&07777); err != nil {
		op.close()
		return status(err)
	}
	n, err := f.lookupLocked(dir, name)
	if err != nil {
		_ = unix.Unlinkat(dir.fd, name, unix.AT_REMOVEDIR)
		op.close()
		return status(err)
	}
	op.ino = n.ino
	f.journal = append(f.journal, op)
	return f.entryLocked(n, out)
}

// Unlink removes a file: it moves to the trash, a journalled change.
func (f *FS) Unlink(_ <-chan struct{}, h *fuse.InHeader, name string) fuse.Status {
	return f.detach(h.NodeId, name, false)
}

// Rmdir removes an empty directory: it moves to the trash, a journalled
// change.
func (f *FS) Rmdir(_ <-chan struct{}, h *fuse.InHeader, name string) fuse.Status {
	return f.detach(h.NodeId, name, true)
}

// detach moves the file (or, with wantDir, the empty directory) name in
// the directory dirID to the trash and journals it.
func (f *FS) detach(dirID uint64, name string, wantDir bool) fuse.Status {
	f.mu.Lock()
	defer f.mu.Unlock()
	dir, st := f.dirLocked(dirID)
	if st != fuse.OK {
		return st
	}
	if hidden(dir, name) {
		return fuse.ENOENT
	}
	var s unix.Stat_t
	if err := unix.Fstatat(dir.fd, name, &s, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return status(err)
	}
	isDir := s.Mode&unix.S_IFMT == unix.S_IFDIR
	switch {
	case wantDir && !isDir:
		return fuse.ENOTDIR
	case !wantDir && isDir:
		return fuse.Status(syscall.EISDIR)
	case isDir:
		if err := checkEmpty(dir.fd, name); err != nil {
			return status(err)
		}
	}
	op, err := newOp(opDetach, dir, name, s.Ino, nil, "")
	if err != nil {
		return status(err)
	}
	if op.trash, err = f.toTrashLocked(dir.fd, name); err != nil {
		op.close()
		return status(err)
	}
	f.journal = append(f.journal, op)
	return fuse.OK
}

// checkEmpty returns ENOTEMPTY unless the directory name in dir is empty.
func checkEmpty(dir int, name string) error {
	fd, err := unix.Openat(dir, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC|unix.O_NOFOLLOW, 0)
	if err != nil {
		return err
	}
	d := os.NewFile(uintptr(fd), name)
	defer d.Close()
	if _, err := d.Readdirnames(1); err != io.EOF {
		if err == nil {
			return syscall.ENOTEMPTY
		}
		return err
	}
	return nil
}

// Rename renames an entry (flags: none or RENAME_NOREPLACE); an entry it
// replaces moves to the trash. A journalled change.
func (f *FS) Rename(_ <-chan struct{}, in *fuse.RenameIn, oldName, newName string) fuse.Status {
	f.mu.Lock()
	defer f.mu.Unlock()
	from, st := f.dirLocked(in.NodeId)
	if st != fuse.OK {
		return st
	}
	to, st := f.dirLocked(in.Newdir)
	if st != fuse.OK {
		return st
	}
	if hidden(from, oldName) || hidden(to, newName) {
		return fuse.EPERM
	}
	if in.Flags&^unix.RENAME_NOREPLACE != 0 {
		return fuse.EINVAL
	}
	var src, dst unix.Stat_t
	if err := unix.Fstatat(from.fd, oldName, &src, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return status(err)
	}
	dstErr := unix.Fstatat(to.fd, newName, &dst, unix.AT_SYMLINK_NOFOLLOW)
	if dstErr == nil {
		if err := checkReplace(in.Flags, &src, &dst, to.fd, newName); err != nil || dst.Ino == src.Ino {
			return status(err)
		}
	} else if dstErr != syscall.ENOENT {
		return status(dstErr)
	}
	op, err := newOp(opRename, from, oldName, src.Ino, to, newName)
	if err != nil {
		return status(err)
	}
	if dstErr == nil {
		if op.trash, err = f.toTrashLocked(to.fd, newName); err != nil {
			op.close()
			return status(err)
		}
	}
	if err := unix.Renameat(from.fd, oldName, to.fd, newName); err != nil {
		if op.trash != "" {
			_ = renameNoReplace(f.trash, op.trash, to.fd, newName)
		}
		op.close()
		return status(err)
	}
	f.journal = append(f.journal, op)
	return fuse.OK
}

// checkReplace is rename(2)'s check of an existing destination dst for
// source src.
func checkReplace(flags uint32, src, dst *unix.Stat_t, dir int, name string) error {
	srcDir := src.Mode&unix.S_IFMT == unix.S_IFDIR
	dstDir := dst.Mode&unix.S_IFMT == unix.S_IFDIR
	switch {
	case flags&unix.RENAME_NOREPLACE != 0:
		return syscall.EEXIST
	case dst.Ino == src.Ino:
		return nil
	case srcDir && !dstDir:
		return syscall.ENOTDIR
	case !srcDir && dstDir:
		return syscall.EISDIR
	case dstDir:
		return checkEmpty(dir, name)
	}
	return nil
}

// Read reads a file as written, pending pages merged over the backing
// file.
func (f *FS) Read(_ <-chan struct{}, in *fuse.ReadIn, buf []byte) (fuse.ReadResult, fuse.Status) {
	f.mu.Lock()
	defer f.mu.Unlock()
	n, st := f.fileLocked(in.NodeId)
	if st != fuse.OK {
		return nil, st
	}
	p := buf[:min(len(buf), int(in.Size))]
	var m int
	var err error
	if n.c != nil {
		m, err = n.c.read(n.fd, p, int64(in.Offset))
	} else {
		m, err = preadFull(n.fd, p, int64(in.Offset))
	}
	if err != nil {
		return nil, status(err)
	}
	return fuse.ReadResultData(p[:m]), fuse.OK
}

// preadFull reads at off until p is full or the file ends.
func preadFull(fd int, p []byte, off int64) (int, error) {
	n := 0
	for n < len(p) {
		m, err := unix.Pread(fd, p[n:], off+int64(n))
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return n, err
		}
		if m == 0 {
			break
		}
		n += m
	}
	return n, nil
}

// Write keeps the data in the file's pending pages.
func (f *FS) Write(_ <-chan struct{}, in *fuse.WriteIn, data []byte) (uint32, fuse.Status) {
	f.mu.Lock()
	defer f.mu.Unlock()
	n, st := f.fileLocked(in.NodeId)
	if st != fuse.OK {
		return 0, st
	}
	o, err := f.overlayLocked(n)
	if err != nil {
		return 0, status(err)
	}
	if err := o.write(n.fd, data, int64(in.Offset)); err != nil {
		return 0, status(err)
	}
	return uint32(len(data)), fuse.OK
}

// Release closes a file handle.
func (f *FS) Release(_ <-chan struct{}, in *fuse.ReleaseIn) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if n := f.nodes[in.NodeId]; n != nil && n.opens > 0 {
		n.opens--
		f.releaseLocked(n)
	}
}

// Fsync (and fdatasync) of a file makes its pending contents durable.
func (f *FS) Fsync(_ <-chan struct{}, in *fuse.FsyncIn) fuse.Status {
	f.mu.Lock()
	defer f.mu.Unlock()
	n, st := f.nodeLocked(in.NodeId)
	if st != fuse.OK {
		return st
	}
	if n.dir {
		return status(f.syncDirLocked(n.ino))
	}
	if n.c == nil {
		return fuse.OK
	}
	if err := n.c.sync(n.fd); err != nil {
		return status(err) // the overlay stays: readers still see it
	}
	n.c = nil
	f.releaseLocked(n)
	return fuse.OK
}

// FsyncDir makes the directory's journalled changes durable.
func (f *FS) FsyncDir(_ <-chan struct{}, in *fuse.FsyncIn) fuse.Status {
	f.mu.Lock()
	defer f.mu.Unlock()
	n, st := f.dirLocked(in.NodeId)
	if st != fuse.OK {
		return st
	}
	return status(f.syncDirLocked(n.ino))
}

// OpenDir lists the directory (without the trash) for the ReadDir calls
// on this handle.
func (f *FS) OpenDir(_ <-chan struct{}, in *fuse.OpenIn, out *fuse.OpenOut) fuse.Status {
	f.mu.Lock()
	defer f.mu.Unlock()
	dir, st := f.dirLocked(in.NodeId)
	if st != fuse.OK {
		return st
	}
	fd, err := unix.Openat(dir.fd, ".", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return status(err)
	}
	d := os.NewFile(uintptr(fd), ".")
	names, err := d.Readdirnames(-1)
	d.Close()
	if err != nil {
		return status(err)
	}
	slices.Sort(names)
	entries := make([]fuse.DirEntry, 0, len(names))
	for _, name := range names {
		var s unix.Stat_t
		if hidden(dir, name) || unix.Fstatat(dir.fd, name, &s, unix.AT_SYMLINK_NOFOLLOW) != nil {
			continue
		}
		entries = append(entries, fuse.DirEntry{Name: name, Mode: s.Mode, Ino: s.Ino})
	}
	out.Fh = f.nextFh
	f.nextFh++
	f.dirs[out.Fh] = entries
	return fuse.OK
}

// ReadDir returns the listing from the offset on.
func (f *FS) ReadDir(_ <-chan struct{}, in *fuse.ReadIn, out *fuse.DirEntryList) fuse.Status {
	f.mu.Lock()
	defer f.mu.Unlock()
	entries, ok := f.dirs[in.Fh]
	if !ok {
		return fuse.EBADF
	}
	for i := int(in.Offset); i < len(entries); i++ {
		e := entries[i]
		e.Off = uint64(i + 1)
		if !out.AddDirEntry(e) {
			break
		}
	}
	return fuse.OK
}

// ReleaseDir drops a listing.
func (f *FS) ReleaseDir(in *fuse.ReleaseIn) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.dirs, in.Fh)
}

// StatFs reports the backing file system's statistics.
func (f *FS) StatFs(_ <-chan struct{}, h *fuse.InHeader, out *fuse.StatfsOut) fuse.Status {
	f.mu.Lock()
	defer f.mu.Unlock()
	root, st := f.nodeLocked(rootID)
	if st != fuse.OK {
		return st
	}
	var s syscall.Statfs_t
	if err := syscall.Fstatfs(root.fd, &s); err != nil {
		return status(err)
	}
	out.FromStatfsT(&s)
	return fuse.OK
}

// status turns an error into the FUSE answer: its errno, or EIO for an
// error without one. Never ENOSYS: that answer to FSYNC or FSYNCDIR would
// make the kernel stop sending them and report success for every later
// fsync.
func status(err error) fuse.Status {
	var errno syscall.Errno
	switch {
	case err == nil:
		return fuse.OK
	case errors.As(err, &errno) && errno != syscall.ENOSYS:
		return fuse.Status(errno)
	}
	return fuse.EIO
}
