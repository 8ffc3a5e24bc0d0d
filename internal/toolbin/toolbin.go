// Package toolbin finds, or builds, the pinned helper binaries that the
// tests run as real peers (versitygw, grpcurl). Versions are pinned in the
// repository's tools module (tools/go.mod), which stays out of the broker's
// go.mod.
package toolbin

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
)

// Tool describes one pinned binary.
type Tool struct {
	Name    string // binary name, e.g. "versitygw"
	Version string // pinned release, e.g. "v1.8.0"
	Pkg     string // main package path inside the tools module
	Env     string // variable that, when set, is the binary's path
	// SearchPath also accepts the binary from PATH, $GOBIN and
	// $GOPATH/bin (where `go install` and CI put it).
	SearchPath bool
}

// Find returns the binary's path. It looks, in order, at $Env, PATH and the
// Go bin directories (with SearchPath), and <user cache dir>/streamhouse/
// <name>-<version>; failing those it builds the pinned version into that
// cache (which needs the Go toolchain and the module proxy or cache).
func (t Tool) Find() (string, error) {
	if p := os.Getenv(t.Env); p != "" {
		if !isExecutable(p) {
			return "", fmt.Errorf("%s=%s is not an executable file", t.Env, p)
		}
		return p, nil
	}
	if t.SearchPath {
		if p, err := exec.LookPath(t.Name); err == nil {
			return p, nil
		}
		for _, dir := range goBinDirs() {
			if p := filepath.Join(dir, t.Name); isExecutable(p) {
				return p, nil
			}
		}
	}
	cache, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("not installed, and no cache directory to build it in: %w", err)
	}
	cached := filepath.Join(cache, "streamhouse", t.Name+"-"+t.Version)
	if isExecutable(cached) {
		return cached, nil
	}
	if err := build(cached, t.Pkg); err != nil {
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

// build compiles pkg from the tools module into dst. Concurrent test
// binaries may race to build it: each writes its own temporary file and
// renames it into place, so dst is always whole.
func build(dst, pkg string) error {
	tools, err := toolsDir()
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	tmp := fmt.Sprintf("%s.tmp-%d", dst, os.Getpid())
	cmd := exec.Command("go", "build", "-C", tools, "-buildvcs=false", "-o", tmp, pkg)
	if out, err := cmd.CombinedOutput(); err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("go build -C %s %s: %w\n%s", tools, pkg, err, out)
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
