package objstore_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/streamhouse/streamhouse/objstore"
)

func TestLocalConformance(t *testing.T) {
	runConformance(t, func(t *testing.T) objstore.Store { return newLocal(t) })
}

func newLocal(t *testing.T) *objstore.Local {
	t.Helper()
	l, err := objstore.NewLocal(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func TestLocalLayout(t *testing.T) {
	l := newLocal(t)
	put(t, l, "a/b/c", []byte("abc"))
	data, err := os.ReadFile(filepath.Join(l.Dir(), "a", "b", "c"))
	if err != nil || string(data) != "abc" {
		t.Fatalf("file for key a/b/c = %q, %v; want %q", data, err, "abc")
	}
	entries, err := os.ReadDir(filepath.Join(l.Dir(), "a", "b"))
	if err != nil || len(entries) != 1 {
		t.Fatalf("directory a/b holds %v, %v; want only c (no temporary files)", entries, err)
	}
}

func TestLocalReopen(t *testing.T) {
	dir := t.TempDir()
	l, err := objstore.NewLocal(dir)
	if err != nil {
		t.Fatal(err)
	}
	put(t, l, "x/y", []byte("y"))
	l2, err := objstore.NewLocal(dir)
	if err != nil {
		t.Fatal(err)
	}
	if got := get(t, l2, "x/y"); string(got) != "y" {
		t.Fatalf("reopened store: Get = %q, want %q", got, "y")
	}
}

func TestNewLocalErrors(t *testing.T) {
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, dir := range []string{"", file} {
		if _, err := objstore.NewLocal(dir); err == nil {
			t.Errorf("NewLocal(%q) succeeded, want an error", dir)
		}
	}
}

func TestLocalTempFiles(t *testing.T) {
	l := newLocal(t)
	put(t, l, "p/obj", []byte("obj"))
	// What a crash in the middle of Put leaves behind.
	for _, name := range []string{".tmp-123", filepath.Join("p", ".tmp-456")} {
		if err := os.WriteFile(filepath.Join(l.Dir(), name), []byte("partial"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	assertList(t, l, "", []objstore.ObjectInfo{{Key: "p/obj", Size: 3}})
	n, err := l.CleanTemp(context.Background())
	if err != nil || n != 2 {
		t.Fatalf("CleanTemp = %d, %v; want 2, nil", n, err)
	}
	entries, err := os.ReadDir(filepath.Join(l.Dir(), "p"))
	if err != nil || len(entries) != 1 {
		t.Fatalf("after CleanTemp p holds %v, %v; want only obj", entries, err)
	}
}

func TestLocalKeyCollision(t *testing.T) {
	l := newLocal(t)
	ctx := context.Background()
	put(t, l, "a/b", []byte("b"))
	put(t, l, "c", []byte("c"))
	for _, key := range []string{"a", "c/d", "c/d/e"} {
		err := l.Put(ctx, key, nopReader{}, 0)
		if !errors.Is(err, objstore.ErrPermanent) {
			t.Errorf("Put(%q) colliding with an existing key: error = %v, want ErrPermanent", key, err)
		}
	}
	assertList(t, l, "", []objstore.ObjectInfo{{Key: "a/b", Size: 1}, {Key: "c", Size: 1}})
}

func TestLocalPrunesEmptyDirs(t *testing.T) {
	l := newLocal(t)
	put(t, l, "t/0/seg", []byte("s"))
	put(t, l, "t/keep", []byte("k"))
	if err := l.Delete(context.Background(), "t/0/seg"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(l.Dir(), "t", "0")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("empty directory t/0 still there after its last object was deleted (stat: %v)", err)
	}
	if _, err := os.Stat(filepath.Join(l.Dir(), "t")); err != nil {
		t.Errorf("directory t, which still holds an object, is gone: %v", err)
	}
	if _, err := os.Stat(l.Dir()); err != nil {
		t.Errorf("root directory is gone: %v", err)
	}
}

type nopReader struct{}

func (nopReader) Read([]byte) (int, error) { return 0, nil }
