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
