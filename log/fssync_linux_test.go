package log

import (
	"testing"

	"golang.org/x/sys/unix"
)

// TestSyncfsTrustedOnlyWhereItFlushes: syncfs on FUSE returns 0 without
// the daemon ever hearing of it, so a FUSE data directory must get
// per-file fsyncs; so must any file system we do not know.
func TestSyncfsTrustedOnlyWhereItFlushes(t *testing.T) {
	for _, tc := range []struct {
		name   string
		fsType int64
		want   bool
	}{
		{"ext4", unix.EXT4_SUPER_MAGIC, true},
		{"xfs", unix.XFS_SUPER_MAGIC, true},
		{"btrfs", unix.BTRFS_SUPER_MAGIC, true},
		{"tmpfs", unix.TMPFS_MAGIC, true},
		{"fuse", unix.FUSE_SUPER_MAGIC, false},
		{"nfs", unix.NFS_SUPER_MAGIC, false},
		{"overlayfs", unix.OVERLAYFS_SUPER_MAGIC, false},
		{"unknown", 0x12345678, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got, name := syncfsFlushesType(tc.fsType); got != tc.want || name == "" {
				t.Fatalf("syncfsFlushesType(%#x) = %v, %q; want %v", tc.fsType, got, name, tc.want)
			}
		})
	}
}

// TestFilesystemScopeFallsBackOffTrustedFS opens a Manager asking for the
// filesystem scope on the test directory and checks that the scope in
// force is what syncfsFlushes says of that directory.
func TestFilesystemScopeFallsBackOffTrustedFS(t *testing.T) {
	e := newTestEnv(t)
	e.syncScope = SyncFilesystem
	m := e.open()
	ok, name, err := syncfsFlushes(m.cfg.Dir)
	if err != nil {
		t.Fatal(err)
	}
	want := ok && haveSyncfs && syncfsReportsErrors()
	if got := m.fss != nil; got != want {
		t.Fatalf("filesystem syncer in force %v on %s, want %v", got, name, want)
	}
}
