package lossyfs

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"

	"golang.org/x/sys/unix"
)

// opKind is the kind of a journalled namespace change.
type opKind uint8

const (
	// opCreate: a file or directory was created at at.
	opCreate opKind = iota
	// opDetach: the entry at at was moved into the trash as trash
	// (unlink, rmdir).
	opDetach
	// opRename: the entry at at was renamed to to; the entry it replaced
	// there, if any, was moved into the trash as trash.
	opRename
)

// place is a directory entry: a directory, by an fd its op owns (so the
// directory can be reached whatever was renamed since) and its inode, and
// a name in it.
type place struct {
	dir    int
	dirIno uint64
	name   string
}

// nsOp is a namespace change applied to the backing directory and not
// yet durable.
type nsOp struct {
	kind   opKind
	at, to place
	ino    uint64 // the backing inode of the entry created, detached or renamed
	trash  string // see opKind
	// pending holds the inodes of the directories whose fsync the change
	// still waits for: its own, or both of a rename's.
	pending map[uint64]bool
}

// newOp starts a change of entry ino at name in dir (and, for a rename,
// to name2 in dir2), duplicating the directories' fds. Call it before
// changing the backing directory, so that a failure changes nothing.
func newOp(kind opKind, dir *node, name string, ino uint64, dir2 *node, name2 string) (*nsOp, error) {
	op := &nsOp{kind: kind, ino: ino, pending: make(map[uint64]bool)}
	var err error
	if op.at, err = placeOf(dir, name); err != nil {
		return nil, err
	}
	op.pending[dir.ino] = true
	op.to.dir = -1
	if kind == opRename {
		if op.to, err = placeOf(dir2, name2); err != nil {
			op.close()
			return nil, err
		}
		op.pending[dir2.ino] = true
	}
	return op, nil
}

func placeOf(dir *node, name string) (place, error) {
	fd, err := unix.FcntlInt(uintptr(dir.fd), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		return place{dir: -1}, err
	}
	return place{dir: fd, dirIno: dir.ino, name: name}, nil
}

// close releases the op's directory fds.
func (op *nsOp) close() {
	for _, p := range []*place{&op.at, &op.to} {
		if p.dir >= 0 {
			unix.Close(p.dir)
			p.dir = -1
		}
	}
}

// syncDirLocked is FSYNCDIR of the directory with inode ino: every change
// journalled so far stops waiting for it.
func (f *FS) syncDirLocked(ino uint64) error {
	for _, op := range f.journal {
		delete(op.pending, ino)
	}
	return f.settleLocked()
}

// settleLocked drops the durable changes from the journal, and with them
// the trash entries they removed for good.
func (f *FS) settleLocked() error {
	var errs []error
	kept := f.journal[:0]
	for _, op := range f.journal {
		if len(op.pending) > 0 {
			kept = append(kept, op)
			continue
		}
		if op.trash != "" {
			errs = append(errs, os.RemoveAll(filepath.Join(f.backing, trashName, op.trash)))
		}
		op.close()
	}
	clear(f.journal[len(kept):])
	f.journal = kept
	return errors.Join(errs...)
}

// notice is a directory entry whose kernel cache Cut invalidates.
type notice struct {
	parent uint64 // FUSE node id
	name   string
}

// undoJournalLocked undoes the journal, newest change first, and returns
// the entries it changed that the kernel may know.
func (f *FS) undoJournalLocked(d *Dropped) []notice {
	var notices []notice
	for i := len(f.journal) - 1; i >= 0; i-- {
		op := f.journal[i]
		desc := f.describeLocked(op)
		d.Undone = append(d.Undone, desc)
		if err := f.undoLocked(op); err != nil {
			d.Unrestorable = append(d.Unrestorable, desc+": "+err.Error())
		}
		for _, p := range []place{op.at, op.to} {
			if n := f.byIno[p.dirIno]; p.dir >= 0 && n != nil {
				notices = append(notices, notice{n.id, p.name})
			}
		}
		op.close()
	}
	clear(f.journal)
	f.journal = f.journal[:0]
	return notices
}

// undoLocked puts the entries op changed back as they were before it.
func (f *FS) undoLocked(op *nsOp) error {
	switch op.kind {
	case opCreate:
		if err := sameEntry(op.at, op.ino); err != nil {
			return err
		}
		_, err := f.toTrashLocked(op.at.dir, op.at.name)
		return err
	case opDetach:
		return renameNoReplace(f.trash, op.trash, op.at.dir, op.at.name)
	}
	if err := sameEntry(op.to, op.ino); err != nil {
		return err
	}
	if err := renameNoReplace(op.to.dir, op.to.name, op.at.dir, op.at.name); err != nil {
		return err
	}
	if op.trash == "" {
		return nil
	}
	if err := renameNoReplace(f.trash, op.trash, op.to.dir, op.to.name); err != nil {
		return fmt.Errorf("put back the replaced entry: %w", err)
	}
	return nil
}

// describeLocked names op for Dropped.Undone, with paths relative to the
// backing directory.
func (f *FS) describeLocked(op *nsOp) string {
	rel := func(p place) string { return filepath.Join(f.relLocked(procPath(p.dir)), p.name) }
	switch op.kind {
	case opCreate:
		return "create " + rel(op.at)
	case opDetach:
		return "remove " + rel(op.at)
	default:
		if op.trash != "" {
			return "rename " + rel(op.at) + " over " + rel(op.to)
		}
		return "rename " + rel(op.at) + " to " + rel(op.to)
	}
}

// toTrashLocked moves the entry name in dir into the trash and returns
// its name there.
func (f *FS) toTrashLocked(dir int, name string) (string, error) {
	t := strconv.FormatUint(f.nextTmp, 10)
	f.nextTmp++
	return t, unix.Renameat(dir, name, f.trash, t)
}

// emptyTrashLocked removes what is in the trash. Call it only when no
// journalled change refers to the trash.
func (f *FS) emptyTrashLocked() error {
	dir := filepath.Join(f.backing, trashName)
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("lossyfs: empty trash: %w", err)
	}
	var errs []error
	for _, e := range entries {
		errs = append(errs, os.RemoveAll(filepath.Join(dir, e.Name())))
	}
	return errors.Join(errs...)
}

// sameEntry checks that p still names the backing inode ino.
func sameEntry(p place, ino uint64) error {
	var st unix.Stat_t
	if err := unix.Fstatat(p.dir, p.name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return err
	}
	if st.Ino != ino {
		return fmt.Errorf("now names inode %d, not %d", st.Ino, ino)
	}
	return nil
}

func renameNoReplace(fromDir int, from string, toDir int, to string) error {
	return unix.Renameat2(fromDir, from, toDir, to, unix.RENAME_NOREPLACE)
}
