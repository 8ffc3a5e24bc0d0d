package lossyfs

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// MountT mounts a lossy file system over a fresh backing directory in
// t's temporary directory and unmounts it at cleanup (registered now, so
// it runs after the cleanups of processes a test starts later on the
// mount). It returns the file system and its mount point. Where FUSE
// cannot be mounted the test is skipped with the reason, except under CI,
// where that fails.
func MountT(t testing.TB) (*FS, string) {
	t.Helper()
	d := t.TempDir()
	backing, mnt := filepath.Join(d, "backing"), filepath.Join(d, "mnt")
	for _, dir := range []string{backing, mnt} {
		if err := os.Mkdir(dir, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	lfs, err := Mount(backing, mnt)
	if errors.Is(err, ErrUnavailable) {
		if os.Getenv("CI") != "" {
			t.Fatalf("FUSE unavailable under CI (needs /dev/fuse and root, or fusermount3): %v", err)
		}
		t.Skipf("FUSE unavailable (needs /dev/fuse and root, or fusermount3): %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := lfs.Unmount(); err != nil {
			t.Errorf("unmount lossyfs: %v", err)
		}
	})
	return lfs, mnt
}
