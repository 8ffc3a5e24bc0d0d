package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"

	"go.uber.org/goleak"

	"github.com/streamhouse/streamhouse/meta/pgtest"
)

// buildDir holds the broker binary built for the process tests; TestMain
// removes it.
var buildDir string

// TestMain removes the built binary and then checks that no test leaked a
// goroutine (the in-process broker, HTTP clients, process watchers).
func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "streamhouse-test-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	buildDir = dir
	code := pgtest.Main(m).Run()
	os.RemoveAll(dir)
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintf(os.Stderr, "goleak: %v\n", err)
			code = 1
		}
	}
	os.Exit(code)
}

var build struct {
	once sync.Once
	path string
	err  error
}

// binary builds ./cmd/streamhouse once per test run (with -race when the
// tests run with it) and returns its path.
func binary(t testing.TB) string {
	t.Helper()
	build.once.Do(func() {
		path := filepath.Join(buildDir, "streamhouse")
		args := []string{"build", "-o", path}
		if raceEnabled {
			args = append(args, "-race")
		}
		out, err := exec.Command("go", append(args, ".")...).CombinedOutput()
		if err != nil {
			build.err = fmt.Errorf("go %v: %w\n%s", args, err, out)
			return
		}
		build.path = path
	})
	if build.err != nil {
		t.Fatal(build.err)
	}
	return build.path
}
