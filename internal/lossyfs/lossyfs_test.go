package lossyfs

import (
	"bytes"
	"cmp"
	"errors"
	"io/fs"
	"maps"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"go.uber.org/goleak"
	"golang.org/x/sys/unix"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// put creates or truncates the file at path and writes data, fsyncing the
// file when sync is set (not its directory).
func put(t *testing.T, path string, data string, sync bool) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(data); err != nil {
		t.Fatal(err)
	}
	if sync {
		if err := f.Sync(); err != nil {
			t.Fatal(err)
		}
	}
}

// syncDir fsyncs a directory.
func syncDir(t *testing.T, path string) {
	t.Helper()
	d, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		t.Fatal(err)
	}
}

// change opens path and applies fn to it, then fsyncs it when sync is set.
func change(t *testing.T, path string, sync bool, fn func(*os.File) error) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := fn(f); err != nil {
		t.Fatal(err)
	}
	if sync {
		if err := f.Sync(); err != nil {
			t.Fatal(err)
		}
	}
}

// tree is a directory's contents: relative path -> file contents, or "/"
// for a directory.
func tree(t *testing.T, root string) map[string]string {
	t.Helper()
	got := map[string]string{}
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		switch {
		case rel == ".":
		case rel == trashName:
			return fs.SkipDir
		case d.IsDir():
			got[rel] = "/"
		default:
			b, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			got[rel] = string(b)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return got
}

func sameTree(t *testing.T, what string, got, want map[string]string) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%s: %q, want %q", what, got, want)
		return
	}
	for k, v := range want {
		if g, ok := got[k]; !ok || g != v {
			t.Errorf("%s: %q, want %q", what, got, want)
			return
		}
	}
}

// cutCase is a run of file operations on the mount and what it must
// leave.
type cutCase struct {
	name   string
	before map[string]string // on the backing directory before the run (durable)
	run    func(t *testing.T, m string)
	seen   map[string]string // through the mount before the cut; nil: not checked
	after  map[string]string // after the cut
}

// contentCases change file contents.
func contentCases() []cutCase {
	return []cutCase{
		{
			name:  "new file never synced",
			run:   func(t *testing.T, m string) { put(t, m+"/f", "data", false) },
			seen:  map[string]string{"f": "data"},
			after: map[string]string{},
		},
		{
			name:  "new file synced, directory not",
			run:   func(t *testing.T, m string) { put(t, m+"/f", "data", true) },
			after: map[string]string{},
		},
		{
			name: "new file, directory synced, data not",
			run: func(t *testing.T, m string) {
				put(t, m+"/f", "data", false)
				syncDir(t, m)
			},
			after: map[string]string{"f": ""},
		},
		{
			name: "new file and directory synced",
			run: func(t *testing.T, m string) {
				put(t, m+"/f", "data", true)
				syncDir(t, m)
			},
			after: map[string]string{"f": "data"},
		},
		{
			name:   "overwrite not synced",
			before: map[string]string{"f": "aaaa"},
			run: func(t *testing.T, m string) {
				change(t, m+"/f", false, func(f *os.File) error { _, err := f.WriteAt([]byte("bb"), 1); return err })
			},
			seen:  map[string]string{"f": "abba"},
			after: map[string]string{"f": "aaaa"},
		},
		{
			name:   "append synced",
			before: map[string]string{"f": "aaaa"},
			run: func(t *testing.T, m string) {
				change(t, m+"/f", true, func(f *os.File) error { _, err := f.WriteAt([]byte("bb"), 4); return err })
				change(t, m+"/f", false, func(f *os.File) error { _, err := f.WriteAt([]byte("cc"), 6); return err })
			},
			seen:  map[string]string{"f": "aaaabbcc"},
			after: map[string]string{"f": "aaaabb"},
		},
		{
			name:   "truncate not synced",
			before: map[string]string{"f": "abcdef"},
			run: func(t *testing.T, m string) {
				change(t, m+"/f", false, func(f *os.File) error { return f.Truncate(2) })
			},
			seen:  map[string]string{"f": "ab"},
			after: map[string]string{"f": "abcdef"},
		},
		{
			name:   "truncate, write past the end, synced",
			before: map[string]string{"f": "abcdef"},
			run: func(t *testing.T, m string) {
				change(t, m+"/f", true, func(f *os.File) error {
					if err := f.Truncate(2); err != nil {
						return err
					}
					_, err := f.WriteAt([]byte("Z"), 4)
					return err
				})
			},
			after: map[string]string{"f": "ab\x00\x00Z"},
		},
		{
			name:   "extend by truncate, synced",
			before: map[string]string{"f": "ab"},
			run: func(t *testing.T, m string) {
				change(t, m+"/f", true, func(f *os.File) error { return f.Truncate(5) })
			},
			after: map[string]string{"f": "ab\x00\x00\x00"},
		},
	}
}

// entryCases unlink and rename files.
func entryCases() []cutCase {
	return []cutCase{
		{
			name:   "unlink not durable",
			before: map[string]string{"f": "keep"},
			run: func(t *testing.T, m string) {
				if err := os.Remove(m + "/f"); err != nil {
					t.Fatal(err)
				}
			},
			seen:  map[string]string{},
			after: map[string]string{"f": "keep"},
		},
		{
			name:   "unlink durable",
			before: map[string]string{"f": "keep"},
			run: func(t *testing.T, m string) {
				if err := os.Remove(m + "/f"); err != nil {
					t.Fatal(err)
				}
				syncDir(t, m)
			},
			after: map[string]string{},
		},
		{
			name:   "unlink, create again, not durable",
			before: map[string]string{"f": "old"},
			run: func(t *testing.T, m string) {
				if err := os.Remove(m + "/f"); err != nil {
					t.Fatal(err)
				}
				put(t, m+"/f", "new", true)
			},
			seen:  map[string]string{"f": "new"},
			after: map[string]string{"f": "old"},
		},
		{
			name:   "rename over a file, not durable",
			before: map[string]string{"final": "old"},
			run: func(t *testing.T, m string) {
				put(t, m+"/tmp", "new", true)
				syncDir(t, m)
				if err := os.Rename(m+"/tmp", m+"/final"); err != nil {
					t.Fatal(err)
				}
			},
			seen:  map[string]string{"final": "new"},
			after: map[string]string{"tmp": "new", "final": "old"},
		},
		{
			name:   "rename over a file, durable",
			before: map[string]string{"final": "old"},
			run: func(t *testing.T, m string) {
				put(t, m+"/tmp", "new", true)
				if err := os.Rename(m+"/tmp", m+"/final"); err != nil {
					t.Fatal(err)
				}
				syncDir(t, m)
			},
			after: map[string]string{"final": "new"},
		},
		{
			name:   "rename across directories, only the target synced",
			before: map[string]string{"a": "/", "b": "/", "a/f": "data"},
			run: func(t *testing.T, m string) {
				if err := os.Rename(m+"/a/f", m+"/b/f"); err != nil {
					t.Fatal(err)
				}
				syncDir(t, m+"/b")
			},
			after: map[string]string{"a": "/", "b": "/", "a/f": "data"},
		},
		{
			name:   "rename across directories, both synced",
			before: map[string]string{"a": "/", "b": "/", "a/f": "data"},
			run: func(t *testing.T, m string) {
				if err := os.Rename(m+"/a/f", m+"/b/f"); err != nil {
					t.Fatal(err)
				}
				syncDir(t, m+"/b")
				syncDir(t, m+"/a")
			},
			after: map[string]string{"a": "/", "b": "/", "b/f": "data"},
		},
	}
}

// directoryCases create and remove directories (and one syncs the file
// system).
func directoryCases() []cutCase {
	return []cutCase{
		{
			name: "new directory not durable, its contents durable",
			run: func(t *testing.T, m string) {
				if err := os.Mkdir(m+"/d", 0o755); err != nil {
					t.Fatal(err)
				}
				put(t, m+"/d/f", "data", true)
				syncDir(t, m+"/d")
			},
			seen:  map[string]string{"d": "/", "d/f": "data"},
			after: map[string]string{},
		},
		{
			name: "new directory and its contents durable",
			run: func(t *testing.T, m string) {
				if err := os.MkdirAll(m+"/d/e", 0o755); err != nil {
					t.Fatal(err)
				}
				put(t, m+"/d/e/f", "data", true)
				syncDir(t, m+"/d/e")
				syncDir(t, m+"/d")
				syncDir(t, m)
			},
			after: map[string]string{"d": "/", "d/e": "/", "d/e/f": "data"},
		},
		{
			name:   "rmdir not durable",
			before: map[string]string{"d": "/"},
			run: func(t *testing.T, m string) {
				if err := os.Remove(m + "/d"); err != nil {
					t.Fatal(err)
				}
			},
			seen:  map[string]string{},
			after: map[string]string{"d": "/"},
		},
		{
			name:   "emptied directory removed, only the removal durable",
			before: map[string]string{"d": "/", "d/f": "x"},
			run: func(t *testing.T, m string) {
				if err := os.RemoveAll(m + "/d"); err != nil {
					t.Fatal(err)
				}
				syncDir(t, m)
			},
			after: map[string]string{},
		},
		{
			name:   "syncfs makes nothing durable",
			before: map[string]string{"f": "old"},
			run: func(t *testing.T, m string) {
				put(t, m+"/f", "new", false)
				put(t, m+"/g", "new", false)
				f, err := os.Open(m)
				if err != nil {
					t.Fatal(err)
				}
				defer f.Close()
				if err := unix.Syncfs(int(f.Fd())); err != nil {
					t.Fatal(err)
				}
			},
			seen:  map[string]string{"f": "new", "g": "new"},
			after: map[string]string{"f": "old"},
		},
	}
}

// TestCut runs the cases, checks what readers see before the cut, cuts,
// and checks that the backing directory and the mount both hold exactly
// what was made durable.
func TestCut(t *testing.T) {
	for _, tc := range slices.Concat(contentCases(), entryCases(), directoryCases()) {
		t.Run(tc.name, func(t *testing.T) {
			lfs, m := MountT(t)
			for _, p := range sortedKeys(tc.before) {
				dst := filepath.Join(lfs.Backing(), p)
				var err error
				if tc.before[p] == "/" {
					err = os.Mkdir(dst, 0o755)
				} else {
					err = os.WriteFile(dst, []byte(tc.before[p]), 0o644)
				}
				if err != nil {
					t.Fatal(err)
				}
			}
			tc.run(t, m)
			if tc.seen != nil {
				sameTree(t, "through the mount before the cut", tree(t, m), tc.seen)
			}
			if _, err := lfs.Cut(); err != nil {
				t.Fatalf("Cut: %v", err)
			}
			sameTree(t, "backing directory after the cut", tree(t, lfs.Backing()), tc.after)
			sameTree(t, "through the mount after the cut", tree(t, m), tc.after)
		})
	}
}

// sortedKeys orders paths parents first.
func sortedKeys(m map[string]string) []string {
	keys := slices.Collect(maps.Keys(m))
	slices.SortFunc(keys, func(a, b string) int { return cmp.Or(cmp.Compare(len(a), len(b)), strings.Compare(a, b)) })
	return keys
}

// TestRandomWrites applies seeded random writes, truncations, fsyncs and
// cuts to one file and checks every read against a model: what was
// written (before a cut) or what was last fsynced (after).
func TestRandomWrites(t *testing.T) {
	lfs, m := MountT(t)
	path := filepath.Join(m, "f")
	put(t, path, "", true)
	syncDir(t, m)
	const seed = 19
	rng := rand.New(rand.NewPCG(seed, seed))
	var written, synced []byte
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { f.Close() }()
	for step := range 2000 {
		switch op := rng.IntN(100); {
		case op < 60:
			off := rng.IntN(3 * pageSize)
			p := make([]byte, 1+rng.IntN(2*pageSize))
			for i := range p {
				p[i] = byte('a' + rng.IntN(26))
			}
			if _, err := f.WriteAt(p, int64(off)); err != nil {
				t.Fatal(err)
			}
			if need := off + len(p); need > len(written) {
				written = append(written, make([]byte, need-len(written))...)
			}
			copy(written[off:], p)
		case op < 75:
			size := rng.IntN(4 * pageSize)
			if err := f.Truncate(int64(size)); err != nil {
				t.Fatal(err)
			}
			written = resize(written, size)
		case op < 92:
			if err := f.Sync(); err != nil {
				t.Fatal(err)
			}
			synced = bytes.Clone(written)
		default:
			f.Close()
			if _, err := lfs.Cut(); err != nil {
				t.Fatal(err)
			}
			written = bytes.Clone(synced)
			if f, err = os.OpenFile(path, os.O_RDWR, 0); err != nil {
				t.Fatal(err)
			}
		}
		got, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, written) {
			t.Fatalf("seed %d step %d: read %d bytes, want %d (first difference at %d)",
				seed, step, len(got), len(written), firstDiff(got, written))
		}
	}
}

func resize(b []byte, size int) []byte {
	if size <= len(b) {
		return b[:size]
	}
	return append(b, make([]byte, size-len(b))...)
}

func firstDiff(a, b []byte) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

// TestDroppedReport checks what Cut reports having dropped.
func TestDroppedReport(t *testing.T) {
	lfs, m := MountT(t)
	if err := os.Mkdir(m+"/d", 0o755); err != nil {
		t.Fatal(err)
	}
	syncDir(t, m)
	put(t, m+"/d/kept", "x", true)
	syncDir(t, m+"/d")
	change(t, m+"/d/kept", false, func(f *os.File) error { _, err := f.WriteAt(make([]byte, pageSize+1), 0); return err })
	put(t, m+"/d/tmp", "y", true)
	if err := os.Rename(m+"/d/tmp", m+"/d/kept"); err != nil {
		t.Fatal(err)
	}
	d, err := lfs.Cut()
	if err != nil {
		t.Fatal(err)
	}
	if want := int64(2 * pageSize); d.Bytes != want || len(d.Files) != 1 || d.Files[0] != "d/kept (8192 bytes)" {
		t.Errorf("dropped %d bytes of %q, want %d bytes of [d/kept (8192 bytes)]", d.Bytes, d.Files, want)
	}
	if want := []string{"rename d/tmp over d/kept", "create d/tmp"}; !slices.Equal(d.Undone, want) {
		t.Errorf("undone %q, want %q", d.Undone, want)
	}
	if len(d.Unrestorable) > 0 {
		t.Errorf("unrestorable: %q", d.Unrestorable)
	}
	sameTree(t, "backing directory after the cut", tree(t, lfs.Backing()), map[string]string{"d": "/", "d/kept": "x"})
}

// TestCutWriteback checks that the pages chosen reach the backing file
// and the others are dropped.
func TestCutWriteback(t *testing.T) {
	lfs, m := MountT(t)
	put(t, m+"/f", strings.Repeat("a", 3*pageSize), true)
	syncDir(t, m)
	change(t, m+"/f", false, func(f *os.File) error {
		_, err := f.WriteAt([]byte(strings.Repeat("b", 4*pageSize+10)), 0)
		return err
	})
	page := 0
	d, err := lfs.CutWriteback(func() bool { page++; return page%2 == 1 }) // pages 0, 2, 4
	if err != nil {
		t.Fatal(err)
	}
	want := strings.Repeat("b", pageSize) + strings.Repeat("a", pageSize) + strings.Repeat("b", pageSize) +
		strings.Repeat("\x00", pageSize) + strings.Repeat("b", 10)
	if d.KeptBytes != 2*pageSize+10 {
		t.Errorf("kept %d bytes, want %d", d.KeptBytes, 2*pageSize+10)
	}
	sameTree(t, "backing directory after the cut", tree(t, lfs.Backing()), map[string]string{"f": want})
	sameTree(t, "through the mount after the cut", tree(t, m), map[string]string{"f": want})
}

// TestUnmountIsClean checks that Unmount makes everything durable, as a
// clean umount does.
func TestUnmountIsClean(t *testing.T) {
	lfs, m := MountT(t)
	if err := os.Mkdir(m+"/d", 0o755); err != nil {
		t.Fatal(err)
	}
	put(t, m+"/d/f", "data", false)
	if err := lfs.Unmount(); err != nil {
		t.Fatal(err)
	}
	sameTree(t, "backing directory after Unmount", tree(t, lfs.Backing()), map[string]string{"d": "/", "d/f": "data"})
	if _, err := os.Stat(filepath.Join(lfs.Backing(), trashName)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("trash left after Unmount: %v", err)
	}
}

// TestTrashHidden checks that the trash never shows through the mount.
func TestTrashHidden(t *testing.T) {
	_, m := MountT(t)
	put(t, m+"/f", "x", false)
	if err := os.Remove(m + "/f"); err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(m)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		t.Errorf("entry %q listed in an emptied root", e.Name())
	}
	if _, err := os.Stat(filepath.Join(m, trashName)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("stat of the trash through the mount: %v, want not exist", err)
	}
	if err := os.Mkdir(filepath.Join(m, trashName), 0o755); err == nil || !strings.Contains(err.Error(), "not permitted") {
		t.Errorf("mkdir of the trash name: %v, want operation not permitted", err)
	}
}
