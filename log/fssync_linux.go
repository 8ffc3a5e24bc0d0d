package log

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// haveSyncfs: Linux has syncfs(2), and since 5.8 it reports writeback
// errors, which the durability contract needs.
const haveSyncfs = true

func syncfs(f *os.File) error {
	for {
		err := unix.Syncfs(int(f.Fd()))
		if err != unix.EINTR {
			return err
		}
	}
}

func deviceOf(path string) (uint64, error) {
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return 0, fmt.Errorf("log: stat %s: %w", path, err)
	}
	return st.Dev, nil
}

// syncfsReportsErrors: before Linux 5.8 syncfs returned 0 even when
// writeback failed, so an older kernel gets per-file fsyncs.
func syncfsReportsErrors() bool {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return false
	}
	var major, minor int
	if _, err := fmt.Sscanf(unix.ByteSliceToString(u.Release[:]), "%d.%d", &major, &minor); err != nil {
		return false
	}
	return major > 5 || major == 5 && minor >= 8
}

// syncfsFlushers are the file systems whose syncfs(2) is known to write
// back and flush every file's data to stable storage and report writeback
// errors (Linux 5.8+), keyed by statfs f_type. Others may return 0 from
// syncfs without flushing anything: FUSE (sshfs, s3fs, gcsfuse,
// fuse-overlayfs) has no syncfs request, so its daemon never hears of it;
// NFS, CIFS and overlayfs differ by version and server. Those get a
// per-file fsync, which every file system implements. tmpfs and ramfs
// keep nothing across a power loss either way, so syncfs is as good there.
var syncfsFlushers = map[int64]string{
	unix.EXT4_SUPER_MAGIC:  "ext4", // also ext2 and ext3
	unix.XFS_SUPER_MAGIC:   "xfs",
	unix.BTRFS_SUPER_MAGIC: "btrfs",
	unix.F2FS_SUPER_MAGIC:  "f2fs",
	unix.TMPFS_MAGIC:       "tmpfs",
	unix.RAMFS_MAGIC:       "ramfs",
}

// syncfsFlushes reports whether syncfs is known to make the files under
// path durable (syncfsFlushers), with the file system's name or magic.
func syncfsFlushes(path string) (bool, string, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(path, &st); err != nil {
		return false, "", fmt.Errorf("log: statfs %s: %w", path, err)
	}
	ok, name := syncfsFlushesType(int64(st.Type))
	return ok, name, nil
}

// syncfsFlushesType is syncfsFlushes for a statfs f_type.
func syncfsFlushesType(fsType int64) (bool, string) {
	if name, ok := syncfsFlushers[fsType]; ok {
		return true, name
	}
	if fsType == unix.FUSE_SUPER_MAGIC {
		return false, "fuse"
	}
	return false, fmt.Sprintf("file system type %#x", fsType)
}
