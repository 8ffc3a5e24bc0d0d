package s3test

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// Version is the versitygw release the project tests against; the tools
// module (tools/go.mod) pins it.
const Version = "v1.8.0"

// EnvBinary names the environment variable that, when set, gives the path
// of the versitygw binary to use.
const EnvBinary = "STREAMHOUSE_VERSITYGW"

const versitygwPkg = "github.com/versity/versitygw/cmd/versitygw"

// Binary returns the path of a versitygw binary, failing t with a clear
// message if there is none and it cannot be built. It looks, in order, at
// $STREAMHOUSE_VERSITYGW, "versitygw" in PATH, $GOBIN and $GOPATH/bin, and
// the build cache <user cache dir>/streamhouse/versitygw-v1.8.0; failing
// those it builds the version pinned in the repository's tools module into
// that cache (which needs the Go toolchain and the Go module proxy).
func Binary(t testing.TB) string {
	t.Helper()
	path, err := findBinary()
	if err != nil {
		t.Fatalf("s3test: no versitygw server for the S3 tests: %v\n"+
			"Install it with `go install -C tools %s`, or set %s to its path.",
			err, versitygwPkg, EnvBinary)
	}
	return path
}

func findBinary() (string, error) {
	if p := os.Getenv(EnvBinary); p != "" {
		if !isExecutable(p) {
			return "", fmt.Errorf("%s=%s is not an executable file", EnvBinary, p)
		}
		return p, nil
	}
	if p, err := exec.LookPath("versitygw"); err == nil {
		return p, nil
	}
	for _, dir := range goBinDirs() {
		if p := filepath.Join(dir, "versitygw"); isExecutable(p) {
			return p, nil
		}
	}
	cache, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("not installed, and no cache directory to build it in: %w", err)
	}
	cached := filepath.Join(cache, "streamhouse", "versitygw-"+Version)
	if isExecutable(cached) {
		return cached, nil
	}
	if err := build(cached); err != nil {
		return "", fmt.Errorf("not installed, and building it failed: %w", err)
	}
	return cached, nil
}

// goBinDirs lists where `go install` puts binaries.
func goBinDirs() []string {
	out, err := exec.Command("go", "env", "GOBIN", "GOPATH").Output()
	if err != nil {
		return nil
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	var dirs []string
	if len(lines) > 0 && strings.TrimSpace(lines[0]) != "" {
		dirs = append(dirs, strings.TrimSpace(lines[0]))
	}
	if len(lines) > 1 {
		for _, p := range filepath.SplitList(strings.TrimSpace(lines[1])) {
			dirs = append(dirs, filepath.Join(p, "bin"))
		}
	}
	return dirs
}

// build compiles the pinned versitygw into dst. Concurrent test binaries
// may race to build it: each writes its own temporary file and renames it
// into place, so dst is always whole.
func build(dst string) error {
	tools, err := toolsDir()
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	tmp := fmt.Sprintf("%s.tmp-%d", dst, os.Getpid())
	cmd := exec.Command("go", "build", "-C", tools, "-o", tmp, versitygwPkg)
	if out, err := cmd.CombinedOutput(); err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("go build -C %s %s: %w\n%s", tools, versitygwPkg, err, out)
	}
	return os.Rename(tmp, dst)
}

// toolsDir finds the repository's tools module, from this source file's
// location or else from the working directory upwards.
func toolsDir() (string, error) {
	var starts []string
	if _, file, _, ok := runtime.Caller(0); ok {
		starts = append(starts, filepath.Dir(file))
	}
	if wd, err := os.Getwd(); err == nil {
		starts = append(starts, wd)
	}
	for _, dir := range starts {
		for {
			mod := filepath.Join(dir, "tools", "go.mod")
			if data, err := os.ReadFile(mod); err == nil &&
				strings.Contains(string(data), "module github.com/streamhouse/streamhouse/tools") {
				return filepath.Join(dir, "tools"), nil
			}
			parent := filepath.Dir(dir)
			if parent == dir {
				break
			}
			dir = parent
		}
	}
	return "", errors.New("cannot find the repository's tools/go.mod to build it from")
}

func isExecutable(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.Mode().IsRegular() && fi.Mode().Perm()&0o111 != 0
}
