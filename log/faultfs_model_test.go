package log

// Tests of faultFS itself (faultfs_test.go).

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
)

// ffs is a test's view of a faultFS rooted at /data.
type ffs struct {
	t  *testing.T
	fs *faultFS
}

const ffsRoot = "/fault/data"

func newFFS(t *testing.T, seed uint64) *ffs {
	return &ffs{t: t, fs: newFaultFS(ffsRoot, seed)}
}

func (c *ffs) path(name string) string { return filepath.Join(ffsRoot, name) }

func (c *ffs) create(name string) file {
	c.t.Helper()
	f, err := c.fs.OpenFile(c.path(name), os.O_CREATE|os.O_EXCL|os.O_RDWR, 0o644)
	if err != nil {
		c.t.Fatal(err)
	}
	return f
}

func (c *ffs) do(err error) {
	c.t.Helper()
	if err != nil {
		c.t.Fatal(err)
	}
}

func (c *ffs) write(f file, off int64, s string) {
	c.t.Helper()
	if _, err := f.WriteAt([]byte(s), off); err != nil {
		c.t.Fatal(err)
	}
}

func (c *ffs) syncDir(name string) { c.t.Helper(); c.do(c.fs.SyncDir(c.path(name))) }

// content returns the file's current bytes, or "<missing>".
func (c *ffs) content(name string) string {
	c.t.Helper()
	b, err := readWholeFile(c.fs, c.path(name))
	if errors.Is(err, os.ErrNotExist) {
		return "<missing>"
	}
	if err != nil {
		c.t.Fatal(err)
	}
	return string(b)
}

// TestFaultFSDurability checks what survives a power loss (crashDrop) and
// a kill -9.
func TestFaultFSDurability(t *testing.T) {
	cases := []struct {
		name string
		run  func(c *ffs)
		kill bool              // Crash instead of PowerLoss
		want map[string]string // file -> content after the crash
	}{
		{"synced bytes survive, unsynced go", func(c *ffs) {
			f := c.create("a")
			c.syncDir("")
			c.write(f, 0, "durable")
			c.do(f.Sync())
			c.write(f, 7, "+lost")
		}, false, map[string]string{"a": "durable"}},
		{"fsynced file in an unsynced directory is gone", func(c *ffs) {
			f := c.create("a")
			c.write(f, 0, "x")
			c.do(f.Sync())
		}, false, map[string]string{"a": "<missing>"}},
		{"rename without directory fsync reverts", func(c *ffs) {
			f := c.create("tmp")
			c.write(f, 0, "new")
			c.do(f.Sync())
			c.syncDir("")
			c.do(c.fs.Rename(c.path("tmp"), c.path("final")))
		}, false, map[string]string{"tmp": "new", "final": "<missing>"}},
		{"rename with directory fsync stays", func(c *ffs) {
			f := c.create("tmp")
			c.write(f, 0, "new")
			c.do(f.Sync())
			c.do(c.fs.Rename(c.path("tmp"), c.path("final")))
			c.syncDir("")
		}, false, map[string]string{"tmp": "<missing>", "final": "new"}},
		{"unsynced remove comes back with durable bytes", func(c *ffs) {
			f := c.create("a")
			c.write(f, 0, "keep")
			c.do(f.Sync())
			c.syncDir("")
			c.write(f, 4, "-not")
			c.do(c.fs.Remove(c.path("a")))
		}, false, map[string]string{"a": "keep"}},
		{"synced remove stays", func(c *ffs) {
			c.create("a")
			c.syncDir("")
			c.do(c.fs.Remove(c.path("a")))
			c.syncDir("")
		}, false, map[string]string{"a": "<missing>"}},
		{"unsynced mkdir takes its files", func(c *ffs) {
			c.do(c.fs.Mkdir(c.path("d"), 0o755))
			f := c.create("d/a")
			c.write(f, 0, "x")
			c.do(f.Sync())
			c.syncDir("d")
		}, false, map[string]string{"d/a": "<missing>"}},
		{"unsynced truncate reverts", func(c *ffs) {
			f := c.create("a")
			c.syncDir("")
			c.write(f, 0, "0123456789")
			c.do(f.Sync())
			c.do(f.Truncate(3))
		}, false, map[string]string{"a": "0123456789"}},
		{"synced truncate and rewrite", func(c *ffs) {
			f := c.create("a")
			c.syncDir("")
			c.write(f, 0, "0123456789")
			c.do(f.Sync())
			c.do(f.Truncate(3))
			c.write(f, 3, "ab")
			c.do(f.Sync())
		}, false, map[string]string{"a": "012ab"}},
		{"kill -9 keeps the page cache", func(c *ffs) {
			f := c.create("a")
			c.write(f, 0, "unsynced")
		}, true, map[string]string{"a": "unsynced"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			for seed := uint64(0); seed < 20; seed++ {
				c := newFFS(t, seed)
				tc.run(c)
				before := c.fs
				if tc.kill {
					c.fs = c.fs.Crash()
				} else {
					c.fs = c.fs.PowerLoss(crashDrop)
				}
				if !before.crashed() || c.fs.crashed() {
					t.Fatal("the old mount must be crashed and the new one live")
				}
				for name, want := range tc.want {
					if got := c.content(name); got != want {
						t.Fatalf("seed %d: %s = %q, want %q\n%s", seed, name, got, want, c.fs.dump())
					}
				}
			}
		})
	}
}

// TestFaultFSFailedSyncLosesSectors checks the fsyncgate model: after a
// failed Sync, a later successful Sync does not bring back what was lost;
// a power loss shows the loss, and so does a restart after kill -9 (the
// page cache then shows what the disk holds).
func TestFaultFSFailedSyncLosesSectors(t *testing.T) {
	for _, kill := range []bool{false, true} {
		t.Run(fmt.Sprintf("kill=%v", kill), func(t *testing.T) {
			lostSome := false
			for seed := uint64(0); seed < 50; seed++ {
				c := newFFS(t, seed)
				f := c.create("a")
				c.syncDir("")
				data := bytes.Repeat([]byte("y"), 8*faultSector)
				c.fs.setHook(failOnce(opSync, faultEIO, nil))
				if _, err := f.WriteAt(data, 0); err != nil {
					t.Fatal(err)
				}
				if err := f.Sync(); !errors.Is(err, syscall.EIO) {
					t.Fatalf("seed %d: sync %v, want EIO", seed, err)
				}
				c.do(f.Sync())
				if got := c.content("a"); got != string(data) {
					t.Fatalf("seed %d: the page cache must still show the bytes", seed)
				}
				disk, _ := c.fs.durable(c.path("a"))
				if kill {
					c.fs = c.fs.Crash()
				} else {
					c.fs = c.fs.PowerLoss(crashDrop)
				}
				got := []byte(c.content("a"))
				if !bytes.Equal(got, disk) {
					t.Fatalf("seed %d: after the crash the file is not what the disk held", seed)
				}
				for i := range got {
					if got[i] != 'y' && got[i] != 0 {
						t.Fatalf("seed %d: byte %d is %q", seed, i, got[i])
					}
				}
				lostSome = lostSome || !bytes.Equal(got, data)
			}
			if !lostSome {
				t.Fatal("no seed lost anything in a failed sync")
			}
		})
	}
}

// TestFaultFSTearing checks the tearing power-loss modes: what survives
// is the durable bytes plus some of the unsynced ones, never anything
// else.
func TestFaultFSTearing(t *testing.T) {
	durable := strings.Repeat("D", faultSector+100)
	appended := strings.Repeat("A", 5*faultSector)
	for _, mode := range []crashMode{crashPrefix, crashSectors} {
		t.Run(mode.String(), func(t *testing.T) {
			sizes := map[int]bool{}
			for seed := uint64(0); seed < 100; seed++ {
				c := newFFS(t, seed)
				f := c.create("a")
				c.syncDir("")
				c.write(f, 0, durable)
				c.do(f.Sync())
				c.write(f, int64(len(durable)), appended)
				c.fs = c.fs.PowerLoss(mode)
				got := c.content("a")
				sizes[len(got)] = true
				if len(got) < len(durable) || len(got) > len(durable)+len(appended) {
					t.Fatalf("seed %d: %d bytes", seed, len(got))
				}
				if got[:len(durable)] != durable {
					t.Fatalf("seed %d: durable bytes changed", seed)
				}
				tail := got[len(durable):]
				if mode == crashPrefix && tail != appended[:len(tail)] {
					t.Fatalf("seed %d: tail %q is not a prefix of the appended bytes", seed, tail)
				}
				for i := range len(tail) {
					if tail[i] != 'A' && tail[i] != 0 {
						t.Fatalf("seed %d: byte %d of the tail is %q", seed, i, tail[i])
					}
				}
			}
			if len(sizes) < 3 {
				t.Fatalf("tearing is not random: sizes %v", sizes)
			}
		})
	}
	t.Run("directory changes survive in order", func(t *testing.T) {
		for seed := uint64(0); seed < 50; seed++ {
			c := newFFS(t, seed)
			for _, n := range []string{"1", "2", "3", "4"} {
				c.create(n)
			}
			c.fs = c.fs.PowerLoss(crashPrefix)
			names, err := c.fs.ReadDir(ffsRoot)
			if err != nil {
				t.Fatal(err)
			}
			want := []string{"1", "2", "3", "4"}[:len(names)]
			if !slices.Equal(names, want) {
				t.Fatalf("seed %d: %v survived, not a prefix of the creations", seed, names)
			}
		}
	})
}

// TestFaultFSFaults checks each injectable fault.
func TestFaultFSFaults(t *testing.T) {
	cases := []struct {
		name  string
		hook  faultHook
		run   func(c *ffs, f file) error
		want  error
		check func(c *ffs, f file)
	}{
		{"write EIO writes nothing", failOnce(opWrite, faultEIO, nil),
			func(c *ffs, f file) error { _, err := f.WriteAt([]byte("abc"), 0); return err }, syscall.EIO,
			func(c *ffs, f file) {
				if got := c.content("a"); got != "" {
					c.t.Fatalf("content %q", got)
				}
			}},
		{"torn write writes a prefix", failOnce(opWrite, faultTorn, nil),
			func(c *ffs, f file) error {
				n, err := f.WriteAt([]byte("abcdef"), 0)
				if n >= 6 {
					c.t.Fatalf("torn write wrote %d bytes", n)
				}
				return err
			}, syscall.EIO,
			func(c *ffs, f file) {
				if got := c.content("a"); !strings.HasPrefix("abcdef", got) {
					c.t.Fatalf("content %q", got)
				}
			}},
		{"ENOSPC write", failOnce(opWrite, faultNoSpace, nil),
			func(c *ffs, f file) error { _, err := f.WriteAt([]byte("abc"), 0); return err }, syscall.ENOSPC,
			func(c *ffs, f file) {}},
		{"truncate EIO", failOnce(opTruncate, faultEIO, nil),
			func(c *ffs, f file) error { c.write(f, 0, "abc"); return f.Truncate(1) }, syscall.EIO,
			func(c *ffs, f file) {
				if got := c.content("a"); got != "abc" {
					c.t.Fatalf("content %q", got)
				}
			}},
		{"create EIO", failOnce(opCreate, faultEIO, nil),
			func(c *ffs, f file) error {
				_, err := c.fs.OpenFile(c.path("b"), os.O_CREATE|os.O_RDWR, 0o644)
				return err
			}, syscall.EIO,
			func(c *ffs, f file) {
				if ok, _ := c.fs.Exists(c.path("b")); ok {
					c.t.Fatal("failed create made the file")
				}
			}},
		{"rename EIO", failOnce(opRename, faultEIO, nil),
			func(c *ffs, f file) error { return c.fs.Rename(c.path("a"), c.path("b")) }, syscall.EIO,
			func(c *ffs, f file) {
				if ok, _ := c.fs.Exists(c.path("b")); ok {
					c.t.Fatal("failed rename renamed")
				}
			}},
		{"syncdir EIO", failOnce(opSyncDir, faultEIO, nil),
			func(c *ffs, f file) error { return c.fs.SyncDir(ffsRoot) }, syscall.EIO,
			func(c *ffs, f file) {
				c.fs = c.fs.PowerLoss(crashDrop)
				if ok, _ := c.fs.Exists(c.path("a")); ok {
					c.t.Fatal("failed directory fsync made the entry durable")
				}
			}},
		{"faults only on matching paths", failOnce(opWrite, faultEIO, func(p string) bool { return strings.HasSuffix(p, ".log") }),
			func(c *ffs, f file) error { _, err := f.WriteAt([]byte("abc"), 0); return err }, nil,
			func(c *ffs, f file) {
				if evs := c.fs.events(); len(evs) != 0 {
					c.t.Fatalf("events %v", evs)
				}
			}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := newFFS(t, 1)
			f := c.create("a")
			c.fs.setHook(tc.hook)
			err := tc.run(c, f)
			if tc.want == nil && err != nil || tc.want != nil && !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
			if tc.want != nil {
				if evs := c.fs.events(); len(evs) != 1 {
					t.Fatalf("events %v, want one", evs)
				}
			}
			if errors.Is(tc.want, syscall.ENOSPC) && !isNoSpace(err) {
				t.Fatalf("isNoSpace(%v) is false", err)
			}
			tc.check(c, f)
		})
	}
}

// TestFaultFSSemantics checks the plain file-system behaviour the log
// relies on.
func TestFaultFSSemantics(t *testing.T) {
	c := newFFS(t, 1)
	for _, dir := range []string{"/", "/fault", ffsRoot} {
		if ok, err := c.fs.Exists(dir); !ok || err != nil {
			t.Fatalf("Exists(%s) = %v, %v", dir, ok, err)
		}
	}
	if ok, err := c.fs.Exists(c.path("nope/deeper")); ok || err != nil {
		t.Fatalf("Exists of a missing path: %v, %v", ok, err)
	}
	f := c.create("b")
	c.create("a")
	if _, err := c.fs.OpenFile(c.path("a"), os.O_CREATE|os.O_EXCL|os.O_RDWR, 0); !errors.Is(err, os.ErrExist) {
		t.Fatalf("O_EXCL on an existing file: %v", err)
	}
	if _, err := c.fs.OpenFile(c.path("zz"), os.O_RDONLY, 0); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("open of a missing file: %v", err)
	}
	c.write(f, 4, "xy")
	buf := make([]byte, 10)
	n, err := f.ReadAt(buf, 0)
	if n != 6 || !errors.Is(err, io.EOF) || string(buf[:6]) != "\x00\x00\x00\x00xy" {
		t.Fatalf("read %d %v %q", n, err, buf[:n])
	}
	if size, err := f.Size(); size != 6 || err != nil {
		t.Fatalf("size %d %v", size, err)
	}
	if names, err := c.fs.ReadDir(ffsRoot); err != nil || !slices.Equal(names, []string{"a", "b"}) {
		t.Fatalf("ReadDir %v %v", names, err)
	}
	ro, err := c.fs.OpenFile(c.path("a"), os.O_RDONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ro.WriteAt([]byte("x"), 0); err == nil {
		t.Fatal("write through a read-only handle")
	}
	c.do(c.fs.Mkdir(c.path("d"), 0o755))
	c.create("d/x")
	if err := c.fs.Remove(c.path("d")); !errors.Is(err, syscall.ENOTEMPTY) {
		t.Fatalf("remove of a full directory: %v", err)
	}
	c.do(c.fs.RemoveAll(c.path("d")))
	c.do(c.fs.RemoveAll(c.path("d")))
	c.do(f.Close())
	if err := f.Close(); err == nil {
		t.Fatal("double close")
	}
	// After a power loss, old handles and the old mount fail.
	old := c.fs
	c.fs = c.fs.PowerLoss(crashDrop)
	if _, err := ro.ReadAt(buf, 0); !errors.Is(err, syscall.EIO) {
		t.Fatalf("read through a handle of the old boot: %v", err)
	}
	if _, err := old.OpenFile(c.path("q"), os.O_CREATE|os.O_RDWR, 0); !errors.Is(err, syscall.EIO) {
		t.Fatalf("create through the old mount: %v", err)
	}
	if ok, err := c.fs.Exists(c.path("q")); ok || err != nil {
		t.Fatalf("the old mount created a file: %v %v", ok, err)
	}
}

// TestFaultFSArmedCrash checks that an armed crash strikes at the n-th
// operation and that the operation fails.
func TestFaultFSArmedCrash(t *testing.T) {
	c := newFFS(t, 1)
	f := c.create("a")
	c.syncDir("")
	c.fs.armCrash(3, false, crashDrop)
	c.write(f, 0, "one")
	c.do(f.Sync())
	if _, err := f.WriteAt([]byte("two"), 3); !errors.Is(err, syscall.EIO) {
		t.Fatalf("write at the crash: %v", err)
	}
	if !c.fs.crashed() {
		t.Fatal("armed crash did not happen")
	}
	c.fs = c.fs.remount()
	if got := c.content("a"); got != "one" {
		t.Fatalf("after the crash: %q", got)
	}
}

// TestFaultFSConcurrent runs writers, syncers and a crash at once (for
// the race detector).
func TestFaultFSConcurrent(t *testing.T) {
	c := newFFS(t, 1)
	files := make([]file, 4)
	for i := range files {
		files[i] = c.create(fmt.Sprint(i))
	}
	c.syncDir("")
	var wg sync.WaitGroup
	for _, f := range files {
		wg.Go(func() {
			for j := range 200 {
				if _, err := f.WriteAt([]byte{byte(j)}, int64(j)); err != nil {
					return // the crash below
				}
				if j%10 == 0 {
					if err := f.Sync(); err != nil {
						return
					}
				}
				if j%50 == 0 {
					_, _ = c.fs.ReadDir(ffsRoot)
				}
			}
		})
	}
	wg.Go(func() { c.fs.PowerLoss(crashSectors) })
	wg.Wait()
}

// TestFaultFSErrseq checks that a failed writeback is reported once to
// every handle open at the time (by its next Sync) and once to Syncfs, as
// Linux's errseq does.
func TestFaultFSErrseq(t *testing.T) {
	c := newFFS(t, 1)
	h1 := c.create("a")
	h2, err := c.fs.OpenFile(c.path("a"), os.O_RDWR, 0)
	c.do(err)
	c.syncDir("")
	c.write(h1, 0, "x")
	c.fs.setHook(failOnce(opSync, faultEIO, nil))
	for i, want := range []error{syscall.EIO, nil} {
		if err := h1.Sync(); !errors.Is(err, want) && err != want {
			t.Fatalf("h1 sync %d: %v, want %v", i, err, want)
		}
	}
	for i, want := range []error{syscall.EIO, nil} {
		if err := h2.Sync(); !errors.Is(err, want) && err != want {
			t.Fatalf("h2 sync %d: %v, want %v", i, err, want)
		}
	}
	for i, want := range []error{syscall.EIO, nil} {
		if err := c.fs.Syncfs(); !errors.Is(err, want) && err != want {
			t.Fatalf("syncfs %d: %v, want %v", i, err, want)
		}
	}
	// A failed syncfs is reported to the next Sync of every dirty file.
	h3 := c.create("b")
	c.write(h1, 1, "y")
	c.write(h3, 0, "z")
	c.fs.setHook(failOnce(opSyncfs, faultEIO, nil))
	if err := c.fs.Syncfs(); !errors.Is(err, syscall.EIO) {
		t.Fatalf("syncfs with a fault: %v", err)
	}
	for _, h := range []file{h1, h3} {
		if err := h.Sync(); !errors.Is(err, syscall.EIO) {
			t.Fatalf("sync of %s after a failed syncfs: %v", h.Name(), err)
		}
		c.do(h.Sync())
	}
}

// TestFaultFSSyncfs checks that Syncfs makes every file's bytes and
// every directory's entries durable.
func TestFaultFSSyncfs(t *testing.T) {
	c := newFFS(t, 1)
	c.do(c.fs.Mkdir(c.path("d"), 0o755))
	f := c.create("d/a")
	c.write(f, 0, "durable")
	g := c.create("gone")
	c.do(c.fs.Syncfs())
	c.do(c.fs.Remove(c.path("gone")))
	c.do(g.Close())
	c.do(c.fs.Syncfs())
	c.write(f, 7, "+lost")
	c.fs = c.fs.PowerLoss(crashDrop)
	for name, want := range map[string]string{"d/a": "durable", "gone": "<missing>"} {
		if got := c.content(name); got != want {
			t.Fatalf("%s = %q, want %q", name, got, want)
		}
	}
}
