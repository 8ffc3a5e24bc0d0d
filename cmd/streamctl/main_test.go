package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/streamhouse/streamhouse/grpcapi/grpcapitest"
)

// streamctlBin is the streamctl built for this test run.
var streamctlBin string

// TestMain builds streamctl once into a temporary directory; the tests run
// it as a user would, against the real gRPC API served in this process.
func TestMain(m *testing.M) {
	os.Exit(testMain(m))
}

func testMain(m *testing.M) int {
	dir, err := os.MkdirTemp("", "streamctl-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	streamctlBin = filepath.Join(dir, "streamctl")
	if out, err := exec.Command("go", "build", "-buildvcs=auto", "-o", streamctlBin, ".").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "go build streamctl: %v\n%s", err, out)
		return 1
	}
	code := m.Run()
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintf(os.Stderr, "goleak: %v\n", err)
			return 1
		}
	}
	return code
}

// result is one streamctl run.
type result struct {
	stdout, stderr string
	code           int
}

// streamctl runs the built streamctl with STREAMHOUSE_ADDR=addr and stdin.
func streamctl(t *testing.T, addr, stdin string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, streamctlBin, args...)
	cmd.Env = append(os.Environ(), "STREAMHOUSE_ADDR="+addr)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	r := result{stdout: out.String(), stderr: errOut.String()}
	if err != nil {
		ee, ok := err.(*exec.ExitError)
		if !ok {
			t.Fatalf("streamctl %s: %v", strings.Join(args, " "), err)
		}
		r.code = ee.ExitCode()
	}
	return r
}

// ok runs streamctl and fails t unless it exits 0.
func ok(t *testing.T, addr, stdin string, args ...string) string {
	t.Helper()
	r := streamctl(t, addr, stdin, args...)
	if r.code != 0 {
		t.Fatalf("streamctl %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
	}
	return r.stdout
}

// wantContains fails t unless s contains every one of subs.
func wantContains(t *testing.T, s string, subs ...string) {
	t.Helper()
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			t.Fatalf("output lacks %q:\n%s", sub, s)
		}
	}
}

// syncBuffer is a bytes.Buffer safe for a writer goroutine and a reader.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// waitFor polls cond until it holds or 10 s pass.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// startBroker serves the gRPC API over real storage for one test.
func startBroker(t *testing.T) *grpcapitest.Env {
	t.Helper()
	return grpcapitest.Start(t, grpcapitest.Options{})
}
