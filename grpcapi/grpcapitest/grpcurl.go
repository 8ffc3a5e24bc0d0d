package grpcapitest

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

// GrpcurlVersion is the grpcurl release the tests run; tools/go.mod pins it.
const GrpcurlVersion = "v1.9.4"

// EnvGrpcurl names the environment variable that, when set, gives the path
// of the grpcurl binary to use.
const EnvGrpcurl = "STREAMHOUSE_GRPCURL"

const grpcurlPkg = "github.com/fullstorydev/grpcurl/cmd/grpcurl"

// Grpcurl returns the path of the pinned grpcurl, failing t (never
// skipping) when there is none and it cannot be built. It uses
// $STREAMHOUSE_GRPCURL, else <user cache dir>/streamhouse/grpcurl-v1.9.4,
// building it there from the tools module on first use (which needs the Go
// toolchain and the Go module proxy or a warm module cache).
func Grpcurl(t testing.TB) string {
	t.Helper()
	path, err := findGrpcurl()
	if err != nil {
		t.Fatalf("grpcapitest: no grpcurl: %v\nBuild it with `go build -C tools -o <path> %s` and set %s to <path>.",
			err, grpcurlPkg, EnvGrpcurl)
	}
	return path
}

func findGrpcurl() (string, error) {
	if p := os.Getenv(EnvGrpcurl); p != "" {
		if !isExecutable(p) {
			return "", fmt.Errorf("%s=%s is not an executable file", EnvGrpcurl, p)
		}
		return p, nil
	}
	cache, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("no cache directory to build it in: %w", err)
	}
	cached := filepath.Join(cache, "streamhouse", "grpcurl-"+GrpcurlVersion)
	if isExecutable(cached) {
		return cached, nil
	}
	if err := buildTool(cached, grpcurlPkg); err != nil {
		return "", fmt.Errorf("building it failed: %w", err)
	}
	return cached, nil
}

// buildTool compiles pkg from the tools module into dst. Concurrent test
// binaries may race: each writes its own temporary file and renames it
// into place, so dst is always whole.
func buildTool(dst, pkg string) error {
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

// toolsDir finds the repository's tools module from this source file's
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
