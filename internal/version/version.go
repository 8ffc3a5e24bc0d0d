// Package version reads what the Go toolchain stamped into a StreamHouse
// binary (the main module's version and the VCS revision it was built
// from) for --version and the broker's startup log line.
package version

import (
	"fmt"
	"runtime"
	"runtime/debug"
)

// Info is what a binary knows about its own build.
type Info struct {
	// Version is the main module's version: a tag, a pseudo-version
	// derived from the VCS (go build in a checkout, Go 1.24+), or
	// "(devel)" when there is none.
	Version string
	// Revision is the VCS revision (a git commit hash), "" when the build
	// was not stamped (go run, go test, -buildvcs=false).
	Revision string
	// Time is the revision's commit time (RFC 3339), "" when unknown.
	Time string
	// Modified is true when the work tree had uncommitted changes.
	Modified bool
	// Go is the toolchain that built the binary, e.g. go1.26.8.
	Go string
}

// Read returns this binary's build information.
func Read() Info {
	info := Info{Version: "(devel)", Go: runtime.Version()}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return info
	}
	if v := bi.Main.Version; v != "" {
		info.Version = v
	}
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			info.Revision = s.Value
		case "vcs.time":
			info.Time = s.Value
		case "vcs.modified":
			info.Modified = s.Value == "true"
		}
	}
	return info
}

// String renders the line --version prints after the program's name:
//
//	v0.0.0-20260301101500-958932c1f0e2+dirty (revision 958932c1f0e2, 2026-03-01T10:15:00Z, modified) go1.26.8 linux/amd64
func (i Info) String() string {
	rev := "revision unknown"
	if i.Revision != "" {
		rev = "revision " + short(i.Revision)
		if i.Time != "" {
			rev += ", " + i.Time
		}
		if i.Modified {
			rev += ", modified"
		}
	}
	return fmt.Sprintf("%s (%s) %s %s/%s", i.Version, rev, i.Go, runtime.GOOS, runtime.GOARCH)
}

// short abbreviates a git hash to the 12 characters Go's pseudo-versions use.
func short(rev string) string {
	if len(rev) > 12 {
		return rev[:12]
	}
	return rev
}
