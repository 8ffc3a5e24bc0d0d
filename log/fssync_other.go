//go:build !linux

package log

import (
	"errors"
	"os"
)

// haveSyncfs is false off Linux: every partition fsyncs its own file.
const haveSyncfs = false

func syncfs(*os.File) error { return errors.ErrUnsupported }

func deviceOf(string) (uint64, error) { return 0, errors.ErrUnsupported }

func syncfsReportsErrors() bool { return false }

func syncfsFlushes(string) (bool, string, error) { return false, "", nil }
