package log

// faultFS: an in-memory fileSystem (fs.go) that models durability strictly
// and injects faults, for crash tests (schedule_test.go).
//
// The model, in the manner of pebble's strict MemFS and etcd's crash
// tests:
//
//   - A file has its current bytes (what reads see: the page cache) and its
//     durable bytes (what a power loss leaves). Writes and truncations
//     change the current bytes and mark the sectors they touch dirty; Sync
//     writes the dirty sectors and the size back, so that durable equals
//     current.
//   - A directory has its current entries and its durable entries. Create,
//     mkdir, rename and remove change the current entries at once; SyncDir
//     of the directory makes its entries durable. fsync of a file does not
//     make its name durable: a file created and fsynced in a directory that
//     was never fsynced is gone after a power loss, and a rename not
//     followed by a directory fsync is undone.
//   - PowerLoss reverts every file and directory to its durable state
//     (crashDrop), or tears the unsynced part: a random prefix of each
//     file's unsynced appended bytes survives (crashPrefix), or each
//     unsynced sector survives or not at random with the size anywhere
//     between the durable and the current one and lost sectors reading as
//     zeros (crashSectors). In the tearing modes a random prefix of the
//     unsynced directory changes, in the order they were made, survives too
//     (a journal committed partway).
//   - Crash is a kill -9: the page cache survives, so nothing reverts, but
//     every handle and mount of the old boot stops working.
//   - A failed Sync is Linux's: some dirty sectors reach the disk, the
//     others are lost, and all of them are marked clean, so a later Sync
//     succeeds without them ("fsyncgate"). The lost sectors keep their new
//     bytes in the page cache until the next Crash or PowerLoss, where
//     they read as what the disk holds: a restarted broker sees the file
//     as it is on disk, as it would if the kernel had dropped the pages
//     that failed writeback. (Keeping them in the page cache across a
//     restart would make a restarted broker vouch for bytes no fsync can
//     make durable again; no log can defend against that without
//     rewriting its tail.) As with Linux's errseq, a failed writeback is
//     reported once to every handle open at the time, by its next Sync
//     (so of two fsyncs of one handle, only one hears of it), and once to
//     Syncfs, which writes back every file and makes every directory's
//     entries durable.
//
// Every operation of a boot other than the current one fails with EIO
// (errPowerLost), so a Manager abandoned at a crash cannot touch the disk
// the next one recovers, even from goroutines still running. A hook
// decides, per operation, whether it fails: with EIO, with a torn write (a
// random prefix is written, then EIO) or with ENOSPC (a write stores a
// random prefix first). A crash can also be armed to happen after a number
// of operations, so that it strikes in the middle of a roll, an upload or
// a recovery, and a failed Sync or Syncfs can be made slow to return
// (setFailDelay) or held until a test releases it (holdFailures), so that
// other goroutines act while the failure is in flight. One mutex guards
// the whole disk; the hook runs under it and must not call back into the
// file system.

import (
	"errors"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"
)

// faultSector is the unit of writeback and of tearing.
const faultSector = 512

// faultOp is an operation a hook can fail.
type faultOp uint8

const (
	opWrite    faultOp = iota // file.WriteAt
	opSync                    // file.Sync
	opTruncate                // file.Truncate (and O_TRUNC)
	opCreate                  // OpenFile creating a file
	opRename                  // Rename
	opRemove                  // Remove, RemoveAll
	opMkdir                   // Mkdir
	opSyncDir                 // SyncDir
	opSyncfs                  // Syncfs (syncfs(2) of the whole disk)
	numFaultOps
)

var faultOpNames = [numFaultOps]string{"write", "sync", "truncate", "create", "rename", "remove", "mkdir", "syncdir", "syncfs"}

func (o faultOp) String() string { return faultOpNames[o] }

// faultKind is what a hook makes an operation do.
type faultKind uint8

const (
	faultNone    faultKind = iota
	faultEIO               // fail with EIO; a failed Sync loses some dirty sectors
	faultTorn              // a write stores a random prefix, then fails with EIO (others: EIO)
	faultNoSpace           // fail with ENOSPC; a write stores a random prefix first
)

var faultKindNames = [...]string{"none", "EIO", "torn", "ENOSPC"}

func (k faultKind) String() string { return faultKindNames[k] }

// faultHook decides whether the operation op on path fails. It runs with
// the disk locked.
type faultHook func(op faultOp, path string) faultKind

// faultEvent is one injected fault.
type faultEvent struct {
	boot int
	op   faultOp
	kind faultKind
	path string
}

func (e faultEvent) String() string {
	return fmt.Sprintf("%v on %v %s (boot %d)", e.kind, e.op, e.path, e.boot)
}

// crashMode is what a power loss does to unsynced state.
type crashMode uint8

const (
	crashDrop    crashMode = iota // every unsynced byte and entry is lost
	crashPrefix                   // a prefix of unsynced appends and entry changes survives
	crashSectors                  // unsynced sectors survive at random; lost ones read as zeros
	numCrashModes
)

var crashModeNames = [numCrashModes]string{"drop", "prefix", "sectors"}

func (m crashMode) String() string { return crashModeNames[m] }

// errPowerLost is what every operation of an earlier boot returns.
var errPowerLost = fmt.Errorf("faultfs: file system of an earlier boot: %w", syscall.EIO)

// faultDisk is the state shared by every boot of one simulated disk.
type faultDisk struct {
	mu       sync.Mutex
	rootPath string
	root     *fnode
	rng      *rand.Rand
	// boot counts crashes; mounts and handles of earlier boots fail.
	boot int
	hook faultHook
	// events are the faults injected, oldest first.
	events []faultEvent
	// pending are the directory changes not yet durable, oldest first.
	pending []nsEdit
	group   int
	// ops counts operations; when armedAt is reached, the armed crash
	// happens (armedAt 0: none armed).
	ops       int64
	armedAt   int64
	armedMode crashMode
	armedKill bool // kill -9 instead of a power loss
	// powerLosses counts power losses, armed ones included.
	powerLosses int
	// sbErr counts failed writebacks of any file: Syncfs reports them,
	// once to each mount (syncfs reports errors since its fd was opened).
	sbErr int
	// failDelay is how long a Sync or Syncfs that failed takes to return,
	// without the disk locked: a failing disk is slow to say so, which
	// widens the window in which other goroutines act meanwhile.
	failDelay time.Duration
	// failGate, when set, holds every failed Sync or Syncfs until it is
	// closed, so that a test can act while the failure is in flight.
	failGate <-chan struct{}
}

// fnode is a file or a directory.
type fnode struct {
	isDir bool
	// A file's page cache (cur) and disk (dur) contents; dirty holds the
	// sectors written since their last writeback, lost those whose
	// writeback failed.
	cur, dur    []byte
	dirty, lost map[int64]bool
	// wbErr counts failed writebacks of the file: like Linux's errseq,
	// each open handle is told of a failure by one Sync.
	wbErr int
	// A directory's current and durable entries.
	ents, durEnts map[string]*fnode
}

// nsEdit is one directory change not yet durable: name in dir now refers
// to node (nil: removed). The edits of one rename share a group.
type nsEdit struct {
	dir   *fnode
	name  string
	node  *fnode
	group int
}

func newDirNode() *fnode {
	return &fnode{isDir: true, ents: map[string]*fnode{}, durEnts: map[string]*fnode{}}
}

func newFileNode() *fnode {
	return &fnode{dirty: map[int64]bool{}, lost: map[int64]bool{}}
}

// faultFS is one boot's view of a faultDisk: the fileSystem a Manager
// gets.
type faultFS struct {
	d    *faultDisk
	boot int
	// sbSeen is the disk's sbErr that Syncfs last reported; guarded by
	// the disk's mu.
	sbSeen int
}

// newFaultFS returns a fault file system whose root directory, root,
// exists and is durable; the directories above it exist too. seed drives
// tearing and torn writes.
func newFaultFS(root string, seed uint64) *faultFS {
	d := &faultDisk{
		rootPath: filepath.Clean(root), root: newDirNode(),
		rng: rand.New(rand.NewPCG(seed, 0xfa17)),
	}
	return &faultFS{d: d}
}

// setHook installs the fault hook (nil: no faults).
func (fs *faultFS) setHook(h faultHook) {
	fs.d.mu.Lock()
	fs.d.hook = h
	fs.d.mu.Unlock()
}

// setFailDelay sets how long a failed Sync or Syncfs takes to return.
func (fs *faultFS) setFailDelay(d time.Duration) {
	fs.d.mu.Lock()
	fs.d.failDelay = d
	fs.d.mu.Unlock()
}

// holdFailures makes every failed Sync or Syncfs wait until gate is
// closed before it returns (nil: return at once).
func (fs *faultFS) holdFailures(gate <-chan struct{}) {
	fs.d.mu.Lock()
	fs.d.failGate = gate
	fs.d.mu.Unlock()
}

// slowFail waits out failDelay, and failGate, after a failed sync; call it
// without the disk locked.
func (d *faultDisk) slowFail(err error) error {
	d.mu.Lock()
	delay, gate := d.failDelay, d.failGate
	d.mu.Unlock()
	if err == nil {
		return nil
	}
	if delay > 0 {
		time.Sleep(delay) // fault injection: latency, not synchronisation
	}
	if gate != nil {
		<-gate
	}
	return err
}

// events returns the faults injected so far.
func (fs *faultFS) events() []faultEvent {
	fs.d.mu.Lock()
	defer fs.d.mu.Unlock()
	return slices.Clone(fs.d.events)
}

// crashed reports whether this mount's boot has ended.
func (fs *faultFS) crashed() bool {
	fs.d.mu.Lock()
	defer fs.d.mu.Unlock()
	return fs.boot != fs.d.boot
}

// remount returns the mount of the current boot.
func (fs *faultFS) remount() *faultFS {
	fs.d.mu.Lock()
	defer fs.d.mu.Unlock()
	return &faultFS{d: fs.d, boot: fs.d.boot, sbSeen: fs.d.sbErr}
}

// PowerLoss cuts the power: see the file comment. It returns the mount of
// the next boot.
func (fs *faultFS) PowerLoss(mode crashMode) *faultFS {
	fs.d.mu.Lock()
	defer fs.d.mu.Unlock()
	fs.d.powerLossLocked(mode)
	return &faultFS{d: fs.d, boot: fs.d.boot, sbSeen: fs.d.sbErr}
}

// Crash kills the process (kill -9): the page cache survives. It returns
// the mount of the next boot.
func (fs *faultFS) Crash() *faultFS {
	fs.d.mu.Lock()
	defer fs.d.mu.Unlock()
	fs.d.crashLocked()
	return &faultFS{d: fs.d, boot: fs.d.boot, sbSeen: fs.d.sbErr}
}

// armCrash makes the crash (kill -9 if kill, else a power loss in mode)
// happen just before the n-th operation from now, which then fails.
func (fs *faultFS) armCrash(n int, kill bool, mode crashMode) {
	fs.d.mu.Lock()
	defer fs.d.mu.Unlock()
	fs.d.armedAt = fs.d.ops + int64(n)
	fs.d.armedKill, fs.d.armedMode = kill, mode
}

// powerLossCount returns how many power losses the disk has had.
func (d *faultDisk) powerLossCount() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.powerLosses
}

// disarmCrash cancels an armed crash that has not happened.
func (fs *faultFS) disarmCrash() {
	fs.d.mu.Lock()
	defer fs.d.mu.Unlock()
	fs.d.armedAt = 0
}

// durable returns the bytes of the file at name that a power loss in
// crashDrop mode would leave, and whether its entry is durable.
func (fs *faultFS) durable(name string) ([]byte, bool) {
	fs.d.mu.Lock()
	defer fs.d.mu.Unlock()
	n := fs.d.root
	rel, ok := fs.d.relLocked(name)
	if !ok {
		return nil, false
	}
	for _, part := range rel {
		if n == nil || !n.isDir {
			return nil, false
		}
		n = n.durEnts[part]
	}
	if n == nil || n.isDir {
		return nil, false
	}
	return slices.Clone(n.dur), true
}

// dump describes every file and directory, for failure messages.
func (fs *faultFS) dump() string {
	fs.d.mu.Lock()
	defer fs.d.mu.Unlock()
	var b strings.Builder
	var walk func(path string, n *fnode)
	walk = func(path string, n *fnode) {
		names := make([]string, 0, len(n.ents))
		for name := range n.ents {
			names = append(names, name)
		}
		for name := range n.durEnts {
			if _, ok := n.ents[name]; !ok {
				names = append(names, name)
			}
		}
		sort.Strings(names)
		for _, name := range names {
			c, d := n.ents[name], n.durEnts[name]
			state := "durable"
			switch {
			case c == nil:
				state = "removed, not durably"
			case d == nil:
				state = "created, not durably"
			case c != d:
				state = "replaced, not durably"
			}
			m := c
			if m == nil {
				m = d
			}
			p := path + "/" + name
			if m.isDir {
				fmt.Fprintf(&b, "%s/ (%s)\n", p, state)
				walk(p, m)
				continue
			}
			fmt.Fprintf(&b, "%s (%s): %d bytes, %d durable, %d dirty sectors, %d lost\n",
				p, state, len(m.cur), len(m.dur), len(m.dirty), len(m.lost))
		}
	}
	walk(fs.d.rootPath, fs.d.root)
	return b.String()
}

// relLocked splits name, which must be at or under the root, into its
// components below the root.
func (d *faultDisk) relLocked(name string) ([]string, bool) {
	name = filepath.Clean(name)
	if name == d.rootPath {
		return nil, true
	}
	rel, ok := strings.CutPrefix(name, d.rootPath+string(filepath.Separator))
	if !ok {
		return nil, false
	}
	return strings.Split(rel, string(filepath.Separator)), true
}

// lookupLocked resolves name: its parent directory, the node (nil when
// there is no such entry) and its base name. The root has no parent.
func (d *faultDisk) lookupLocked(name string) (parent, n *fnode, base string, err error) {
	rel, ok := d.relLocked(name)
	if !ok {
		return nil, nil, "", syscall.ENOENT
	}
	if len(rel) == 0 {
		return nil, d.root, "", nil
	}
	dir := d.root
	for _, part := range rel[:len(rel)-1] {
		c := dir.ents[part]
		if c == nil {
			return nil, nil, "", syscall.ENOENT
		}
		if !c.isDir {
			return nil, nil, "", syscall.ENOTDIR
		}
		dir = c
	}
	base = rel[len(rel)-1]
	return dir, dir.ents[base], base, nil
}

// enterLocked starts an operation of fs's boot: it counts it, fires an
// armed crash, and fails if the boot has ended.
func (d *faultDisk) enterLocked(boot int) error {
	if boot != d.boot {
		return errPowerLost
	}
	d.ops++
	if d.armedAt != 0 && d.ops >= d.armedAt {
		d.armedAt = 0
		if d.armedKill {
			d.crashLocked()
		} else {
			d.powerLossLocked(d.armedMode)
		}
		return errPowerLost
	}
	return nil
}

// faultLocked asks the hook about op on path and records what it injects.
func (d *faultDisk) faultLocked(op faultOp, path string) faultKind {
	if d.hook == nil {
		return faultNone
	}
	k := d.hook(op, path)
	if k != faultNone {
		d.events = append(d.events, faultEvent{boot: d.boot, op: op, kind: k, path: path})
	}
	return k
}

// errnoOf is the error a fault of kind k returns.
func errnoOf(k faultKind) error {
	if k == faultNoSpace {
		return syscall.ENOSPC
	}
	return syscall.EIO
}

func (d *faultDisk) editLocked(dir *fnode, name string, n *fnode, group int) {
	if n == nil {
		delete(dir.ents, name)
	} else {
		dir.ents[name] = n
	}
	d.pending = append(d.pending, nsEdit{dir: dir, name: name, node: n, group: group})
}

// nodesLocked returns every node reachable from the root through current
// or durable entries.
func (d *faultDisk) nodesLocked() []*fnode {
	seen := map[*fnode]bool{d.root: true}
	out := []*fnode{d.root}
	for i := 0; i < len(out); i++ {
		n := out[i]
		if !n.isDir {
			continue
		}
		for _, m := range []map[string]*fnode{n.ents, n.durEnts} {
			for _, c := range m {
				if !seen[c] {
					seen[c] = true
					out = append(out, c)
				}
			}
		}
	}
	return out
}

// crashLocked ends the boot; the page cache survives, except sectors
// whose writeback failed (see the file comment).
func (d *faultDisk) crashLocked() {
	d.boot++
	for _, n := range d.nodesLocked() {
		if n.isDir || len(n.lost) == 0 {
			continue
		}
		for s := range n.lost {
			lo, hi := s*faultSector, min((s+1)*faultSector, int64(len(n.cur)))
			for i := lo; i < hi; i++ {
				n.cur[i] = 0
				if i < int64(len(n.dur)) {
					n.cur[i] = n.dur[i]
				}
			}
		}
		clear(n.lost)
	}
}

// powerLossLocked ends the boot and reverts the disk to its durable
// state, torn as mode says.
func (d *faultDisk) powerLossLocked(mode crashMode) {
	d.boot++
	d.powerLosses++
	if mode != crashDrop && len(d.pending) > 0 {
		k := d.rng.IntN(len(d.pending) + 1)
		for k > 0 && k < len(d.pending) && d.pending[k].group != 0 && d.pending[k].group == d.pending[k-1].group {
			k++ // a rename survives whole or not at all
		}
		for _, e := range d.pending[:k] {
			if e.node == nil {
				delete(e.dir.durEnts, e.name)
			} else {
				e.dir.durEnts[e.name] = e.node
			}
		}
	}
	d.pending = nil
	// Walk what is durably reachable, after the entries are settled.
	seen := map[*fnode]bool{}
	var walk func(n *fnode)
	walk = func(n *fnode) {
		if seen[n] {
			return
		}
		seen[n] = true
		if !n.isDir {
			n.cur = d.tornLocked(n, mode)
			n.dur = slices.Clone(n.cur)
			clear(n.dirty)
			clear(n.lost)
			return
		}
		n.ents = make(map[string]*fnode, len(n.durEnts))
		for name, c := range n.durEnts {
			n.ents[name] = c
			walk(c)
		}
	}
	walk(d.root)
}

// tornLocked returns what a power loss in mode leaves of file n.
func (d *faultDisk) tornLocked(n *fnode, mode crashMode) []byte {
	cur, dur := n.cur, n.dur
	if mode == crashDrop || len(n.dirty) == 0 && len(cur) == len(dur) {
		return slices.Clone(dur)
	}
	lo, hi := min(len(dur), len(cur)), max(len(dur), len(cur))
	var size int
	switch {
	case mode == crashSectors:
		size = lo + d.rng.IntN(hi-lo+1)
	case len(cur) > len(dur): // crashPrefix: a prefix of the appended bytes
		size = lo + d.rng.IntN(hi-lo+1)
	default: // crashPrefix after a truncation: all or nothing
		size = len(dur)
		if d.rng.IntN(2) == 0 {
			size = len(cur)
		}
	}
	out := make([]byte, size)
	copy(out, dur)
	// A dirty sector survives whole or not at all, except that in
	// crashPrefix mode every appended byte below size survives. Sectors
	// lost by a failed writeback are not dirty: beyond the durable size
	// they read as zeros.
	for s := range n.dirty {
		from, to := s*faultSector, min((s+1)*faultSector, int64(size), int64(len(cur)))
		if from >= to {
			continue
		}
		if mode == crashPrefix && to > int64(len(dur)) {
			app := max(from, int64(len(dur)))
			copy(out[app:to], cur[app:to])
			to = app
		}
		if from < to && d.rng.IntN(2) == 0 {
			copy(out[from:to], cur[from:to])
		}
	}
	return out
}

// writebackLocked writes n's size and dirty sectors to the disk; when
// failed, only some of them, and the rest are lost (marked clean), and the
// failure is recorded for every handle and Syncfs to report.
func (d *faultDisk) writebackLocked(n *fnode, failed bool) {
	if failed {
		n.wbErr++
		d.sbErr++
	}
	size := len(n.cur)
	if failed && d.rng.IntN(2) == 0 {
		size = len(n.dur)
	}
	if size <= len(n.dur) {
		n.dur = n.dur[:size:size]
	} else {
		n.dur = append(n.dur, make([]byte, size-len(n.dur))...)
	}
	for s := range n.dirty {
		from, to := s*faultSector, min((s+1)*faultSector, int64(len(n.cur)))
		if failed && (d.rng.IntN(2) == 0 || to > int64(len(n.dur))) {
			n.lost[s] = true
			continue
		}
		if to = min(to, int64(len(n.dur))); from < to {
			copy(n.dur[from:to], n.cur[from:to])
		}
		delete(n.lost, s)
	}
	clear(n.dirty)
}

// markDirty marks the sectors of [from, to) dirty.
func (n *fnode) markDirty(from, to int64) {
	for s := from / faultSector; s*faultSector < to; s++ {
		n.dirty[s] = true
		delete(n.lost, s)
	}
}

func (n *fnode) write(p []byte, off int64) {
	if len(p) == 0 {
		return
	}
	end := off + int64(len(p))
	from := off
	if old := int64(len(n.cur)); end > old {
		n.cur = append(n.cur, make([]byte, end-old)...)
		from = min(from, old)
	}
	copy(n.cur[off:], p)
	n.markDirty(from, end)
}

func (n *fnode) truncate(size int64) {
	old := int64(len(n.cur))
	if size <= old {
		n.cur = n.cur[:size]
		return
	}
	n.cur = append(n.cur, make([]byte, size-old)...)
	n.markDirty(old, size)
}

func pathErr(op, name string, err error) error {
	return &os.PathError{Op: op, Path: name, Err: err}
}

// OpenFile implements fileSystem.
func (fs *faultFS) OpenFile(name string, flag int, perm os.FileMode) (file, error) {
	d := fs.d
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.enterLocked(fs.boot); err != nil {
		return nil, pathErr("open", name, err)
	}
	parent, n, base, err := d.lookupLocked(name)
	if err != nil {
		return nil, pathErr("open", name, err)
	}
	switch {
	case n == nil && flag&os.O_CREATE == 0:
		return nil, pathErr("open", name, syscall.ENOENT)
	case n == nil:
		if k := d.faultLocked(opCreate, name); k != faultNone {
			return nil, pathErr("open", name, errnoOf(k))
		}
		n = newFileNode()
		d.editLocked(parent, base, n, 0)
	case n.isDir:
		return nil, pathErr("open", name, syscall.EISDIR)
	case flag&(os.O_CREATE|os.O_EXCL) == os.O_CREATE|os.O_EXCL:
		return nil, pathErr("open", name, syscall.EEXIST)
	case flag&os.O_TRUNC != 0:
		if k := d.faultLocked(opTruncate, name); k != faultNone {
			return nil, pathErr("open", name, errnoOf(k))
		}
		n.truncate(0)
	}
	acc := flag & (os.O_RDONLY | os.O_WRONLY | os.O_RDWR)
	return &faultFile{
		fs: fs, n: n, name: name, errSeen: n.wbErr,
		read: acc == os.O_RDONLY || acc == os.O_RDWR, write: acc == os.O_WRONLY || acc == os.O_RDWR,
	}, nil
}

// Remove implements fileSystem.
func (fs *faultFS) Remove(name string) error {
	d := fs.d
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.enterLocked(fs.boot); err != nil {
		return pathErr("remove", name, err)
	}
	parent, n, base, err := d.lookupLocked(name)
	switch {
	case err != nil:
		return pathErr("remove", name, err)
	case n == nil:
		return pathErr("remove", name, syscall.ENOENT)
	case parent == nil:
		return pathErr("remove", name, syscall.EBUSY)
	case n.isDir && len(n.ents) > 0:
		return pathErr("remove", name, syscall.ENOTEMPTY)
	}
	if k := d.faultLocked(opRemove, name); k != faultNone {
		return pathErr("remove", name, errnoOf(k))
	}
	d.editLocked(parent, base, nil, 0)
	return nil
}

// RemoveAll implements fileSystem: the tree goes with its top entry.
func (fs *faultFS) RemoveAll(name string) error {
	d := fs.d
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.enterLocked(fs.boot); err != nil {
		return pathErr("removeall", name, err)
	}
	parent, n, base, err := d.lookupLocked(name)
	switch {
	case errors.Is(err, syscall.ENOENT) || err == nil && n == nil:
		return nil
	case err != nil:
		return pathErr("removeall", name, err)
	case parent == nil:
		return pathErr("removeall", name, syscall.EBUSY)
	}
	if k := d.faultLocked(opRemove, name); k != faultNone {
		return pathErr("removeall", name, errnoOf(k))
	}
	d.editLocked(parent, base, nil, 0)
	return nil
}

// Rename implements fileSystem.
func (fs *faultFS) Rename(oldname, newname string) error {
	d := fs.d
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.enterLocked(fs.boot); err != nil {
		return pathErr("rename", oldname, err)
	}
	op, n, obase, err := d.lookupLocked(oldname)
	if err == nil && n == nil {
		err = syscall.ENOENT
	}
	if err != nil {
		return pathErr("rename", oldname, err)
	}
	np, target, nbase, err := d.lookupLocked(newname)
	switch {
	case err != nil:
		return pathErr("rename", newname, err)
	case op == nil || np == nil:
		return pathErr("rename", oldname, syscall.EBUSY)
	case target != nil && target.isDir && len(target.ents) > 0:
		return pathErr("rename", newname, syscall.ENOTEMPTY)
	case target != nil && target.isDir != n.isDir:
		return pathErr("rename", newname, syscall.EISDIR)
	}
	if k := d.faultLocked(opRename, oldname); k != faultNone {
		return pathErr("rename", oldname, errnoOf(k))
	}
	if op == np && obase == nbase {
		return nil
	}
	d.group++
	d.editLocked(np, nbase, n, d.group)
	d.editLocked(op, obase, nil, d.group)
	return nil
}

// Mkdir implements fileSystem.
func (fs *faultFS) Mkdir(name string, perm os.FileMode) error {
	d := fs.d
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.enterLocked(fs.boot); err != nil {
		return pathErr("mkdir", name, err)
	}
	parent, n, base, err := d.lookupLocked(name)
	switch {
	case err != nil:
		return pathErr("mkdir", name, err)
	case n != nil:
		return pathErr("mkdir", name, syscall.EEXIST)
	}
	if k := d.faultLocked(opMkdir, name); k != faultNone {
		return pathErr("mkdir", name, errnoOf(k))
	}
	d.editLocked(parent, base, newDirNode(), 0)
	return nil
}

// ReadDir implements fileSystem.
func (fs *faultFS) ReadDir(name string) ([]string, error) {
	d := fs.d
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.enterLocked(fs.boot); err != nil {
		return nil, pathErr("readdir", name, err)
	}
	_, n, _, err := d.lookupLocked(name)
	switch {
	case err != nil:
		return nil, pathErr("readdir", name, err)
	case n == nil:
		return nil, pathErr("readdir", name, syscall.ENOENT)
	case !n.isDir:
		return nil, pathErr("readdir", name, syscall.ENOTDIR)
	}
	names := make([]string, 0, len(n.ents))
	for name := range n.ents {
		names = append(names, name)
	}
	sort.Strings(names)
	return names, nil
}

// SyncDir implements fileSystem.
func (fs *faultFS) SyncDir(name string) error {
	d := fs.d
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.enterLocked(fs.boot); err != nil {
		return pathErr("fsync", name, err)
	}
	_, n, _, err := d.lookupLocked(name)
	switch {
	case err != nil:
		return pathErr("fsync", name, err)
	case n == nil:
		return pathErr("fsync", name, syscall.ENOENT)
	case !n.isDir:
		return pathErr("fsync", name, syscall.ENOTDIR)
	}
	if k := d.faultLocked(opSyncDir, name); k != faultNone {
		return pathErr("fsync", name, errnoOf(k))
	}
	n.durEnts = make(map[string]*fnode, len(n.ents))
	for name, c := range n.ents {
		n.durEnts[name] = c
	}
	d.pending = slices.DeleteFunc(d.pending, func(e nsEdit) bool { return e.dir == n })
	return nil
}

// Syncfs is syncfs(2) of the whole disk: every file is written back and
// every directory's entries become durable. A fault fails the writeback
// of every file with dirty sectors (each then reports it to its handles)
// and leaves the directories as they were. Like syncfs on Linux 5.8+, it
// also reports a failed writeback of any file since the previous Syncfs
// of this mount.
func (fs *faultFS) Syncfs() error {
	return fs.d.slowFail(fs.syncfsLocking())
}

func (fs *faultFS) syncfsLocking() error {
	d := fs.d
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.enterLocked(fs.boot); err != nil {
		return pathErr("syncfs", d.rootPath, err)
	}
	k := d.faultLocked(opSyncfs, d.rootPath)
	for _, n := range d.nodesLocked() {
		switch {
		case !n.isDir && (k == faultNone || len(n.dirty) > 0):
			d.writebackLocked(n, k != faultNone)
		case n.isDir && k == faultNone:
			n.durEnts = maps.Clone(n.ents)
		}
	}
	if k == faultNone {
		d.pending = nil
	}
	if d.sbErr == fs.sbSeen {
		return nil
	}
	fs.sbSeen = d.sbErr
	return pathErr("syncfs", d.rootPath, syscall.EIO)
}

// Exists implements fileSystem. The directories above the root exist.
func (fs *faultFS) Exists(name string) (bool, error) {
	d := fs.d
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.enterLocked(fs.boot); err != nil {
		return false, pathErr("stat", name, err)
	}
	name = filepath.Clean(name)
	if name == string(filepath.Separator) || strings.HasPrefix(d.rootPath, name+string(filepath.Separator)) {
		return true, nil
	}
	_, n, _, err := d.lookupLocked(name)
	switch {
	case errors.Is(err, syscall.ENOENT) || errors.Is(err, syscall.ENOTDIR):
		return false, nil
	case err != nil:
		return false, pathErr("stat", name, err)
	}
	return n != nil, nil
}

// faultFile is an open file of a faultFS.
type faultFile struct {
	fs          *faultFS
	n           *fnode
	name        string
	read, write bool
	closed      bool // guarded by the disk's mu
	// errSeen is the file's wbErr this handle has reported (errseq);
	// guarded by the disk's mu.
	errSeen int
}

// checkLocked starts an operation op on f, with the disk locked.
func (f *faultFile) checkLocked(op string, needWrite, needRead bool) error {
	switch {
	case f.closed:
		return pathErr(op, f.name, os.ErrClosed)
	case needWrite && !f.write || needRead && !f.read:
		return pathErr(op, f.name, syscall.EBADF)
	}
	if err := f.fs.d.enterLocked(f.fs.boot); err != nil {
		return pathErr(op, f.name, err)
	}
	return nil
}

func (f *faultFile) ReadAt(p []byte, off int64) (int, error) {
	f.fs.d.mu.Lock()
	defer f.fs.d.mu.Unlock()
	if err := f.checkLocked("read", false, true); err != nil {
		return 0, err
	}
	if off < 0 {
		return 0, pathErr("read", f.name, syscall.EINVAL)
	}
	if off >= int64(len(f.n.cur)) {
		return 0, io.EOF
	}
	n := copy(p, f.n.cur[off:])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

func (f *faultFile) WriteAt(p []byte, off int64) (int, error) {
	d := f.fs.d
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := f.checkLocked("write", true, false); err != nil {
		return 0, err
	}
	if off < 0 {
		return 0, pathErr("write", f.name, syscall.EINVAL)
	}
	k := d.faultLocked(opWrite, f.name)
	if k == faultNone {
		f.n.write(p, off)
		return len(p), nil
	}
	n := 0
	if k != faultEIO && len(p) > 0 {
		n = d.rng.IntN(len(p))
	}
	f.n.write(p[:n], off)
	return n, pathErr("write", f.name, errnoOf(k))
}

func (f *faultFile) Truncate(size int64) error {
	d := f.fs.d
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := f.checkLocked("truncate", true, false); err != nil {
		return err
	}
	if size < 0 {
		return pathErr("truncate", f.name, syscall.EINVAL)
	}
	if k := d.faultLocked(opTruncate, f.name); k != faultNone {
		return pathErr("truncate", f.name, errnoOf(k))
	}
	f.n.truncate(size)
	return nil
}

// Sync writes the file back. A failure of this writeback, or of an
// earlier one this handle has not reported (a failed Syncfs, or a failed
// Sync through another handle), is reported once.
func (f *faultFile) Sync() error {
	return f.fs.d.slowFail(f.syncLocking())
}

func (f *faultFile) syncLocking() error {
	d := f.fs.d
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := f.checkLocked("sync", false, false); err != nil {
		return err
	}
	k := d.faultLocked(opSync, f.name)
	d.writebackLocked(f.n, k != faultNone)
	if f.n.wbErr == f.errSeen {
		return nil
	}
	f.errSeen = f.n.wbErr
	if k == faultNone {
		k = faultEIO
	}
	return pathErr("sync", f.name, errnoOf(k))
}

func (f *faultFile) Close() error {
	d := f.fs.d
	d.mu.Lock()
	defer d.mu.Unlock()
	if f.closed {
		return pathErr("close", f.name, os.ErrClosed)
	}
	f.closed = true
	if f.fs.boot != d.boot {
		return pathErr("close", f.name, errPowerLost)
	}
	return nil
}

func (f *faultFile) Name() string { return f.name }

func (f *faultFile) Size() (int64, error) {
	f.fs.d.mu.Lock()
	defer f.fs.d.mu.Unlock()
	if err := f.checkLocked("stat", false, false); err != nil {
		return 0, err
	}
	return int64(len(f.n.cur)), nil
}

// failNth returns a hook that fails the n-th operation op on a path that
// match accepts (nil: any) with kind, and nothing else.
func failNth(n int, op faultOp, kind faultKind, match func(path string) bool) faultHook {
	seen := 0 // guarded by the disk's mu, like every hook call
	return func(o faultOp, path string) faultKind {
		if o != op || match != nil && !match(path) {
			return faultNone
		}
		if seen++; seen == n {
			return kind
		}
		return faultNone
	}
}

// failOnce returns a hook that fails the first operation op on a path
// that match accepts (nil: any) with kind, and nothing after it.
func failOnce(op faultOp, kind faultKind, match func(path string) bool) faultHook {
	fired := false // guarded by the disk's mu, like every hook call
	return func(o faultOp, path string) faultKind {
		if fired || o != op || match != nil && !match(path) {
			return faultNone
		}
		fired = true
		return kind
	}
}
