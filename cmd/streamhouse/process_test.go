package main

import (
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/streamhouse/streamhouse/objstore/s3test"
)

// brokerProc is the broker binary running as a child process.
type brokerProc struct {
	cmd *exec.Cmd
	out syncBuffer // stderr: the log
	// done is closed once stderr hit EOF and Wait returned; err is Wait's
	// result, valid after done.
	done chan struct{}
	err  error
}

// settingEnvPrefixes are the variables the broker reads; the child gets
// none from the test's environment, only those the test passes.
var settingEnvPrefixes = []string{"STREAMHOUSE_", "AWS_", "S3_", "USE_LOCAL_STORAGE", "LOCAL_STORAGE_PATH"}

// startBroker starts the broker binary with args and, on top of a cleaned
// environment, the variables in env. The process is killed at cleanup if
// the test has not stopped it.
func startBroker(t *testing.T, env map[string]string, args ...string) *brokerProc {
	t.Helper()
	cmd := exec.Command(binary(t), args...)
	for _, kv := range os.Environ() {
		keep := true
		for _, p := range settingEnvPrefixes {
			keep = keep && !strings.HasPrefix(kv, p)
		}
		if keep {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &brokerProc{cmd: cmd, done: make(chan struct{})}
	go func() {
		_, _ = io.Copy(&p.out, stderr)
		p.err = cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		if p.alive() {
			_ = cmd.Process.Kill()
			<-p.done
			t.Logf("broker killed at cleanup; log:\n%s", p.out.String())
		}
	})
	return p
}

func (p *brokerProc) alive() bool {
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// ready waits for the broker's /readyz to answer 200 and returns its HTTP
// address. The broker must log in JSON.
func (p *brokerProc) ready(t *testing.T) string {
	t.Helper()
	addr := waitHTTPAddr(t, p.out.String, p.alive)
	waitReady(t, addr, p.out.String, p.alive)
	return addr
}

// listenAddr returns the address the broker's server ("kafka", "grpc")
// logged that it listens on; call it after ready. It waits for the line:
// /readyz can answer before the log pipe has delivered it.
func (p *brokerProc) listenAddr(t *testing.T, server string) string {
	t.Helper()
	var rec logRecord
	waitFor(t, startTimeout, "the "+server+" listening log line", func() (bool, string) {
		var ok bool
		rec, ok = findLog(p.out.String(), "listening", "server", server)
		return ok, "log so far:\n" + p.out.String()
	})
	return rec.str("addr")
}

// exitCode waits for the process to exit and returns its exit code.
func (p *brokerProc) exitCode(t *testing.T) int {
	t.Helper()
	select {
	case <-p.done:
	case <-time.After(stopTimeout):
		t.Fatalf("broker still running after %s; log:\n%s", stopTimeout, p.out.String())
	}
	var ee *exec.ExitError
	if errors.As(p.err, &ee) {
		return ee.ExitCode()
	}
	if p.err != nil {
		t.Fatalf("wait: %v", p.err)
	}
	return 0
}

// stop sends SIGTERM and asserts a clean exit.
func (p *brokerProc) stop(t *testing.T) {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code := p.exitCode(t); code != 0 {
		t.Fatalf("exit code %d after SIGTERM, want 0; log:\n%s", code, p.out.String())
	}
}

// localArgs are the flags of a local-storage broker in dir with every
// listener on a kernel-chosen port of 127.0.0.1 and JSON logs.
func localArgs(dir string) []string {
	return []string{"--data-dir", dir, "--http-addr", "127.0.0.1:0",
		"--kafka-addr=127.0.0.1:0", "--grpc-addr=127.0.0.1:0", "--log-format=json"}
}

func TestProcessServesAndStopsOnSIGTERM(t *testing.T) {
	dir := t.TempDir()
	p := startBroker(t, nil, localArgs(dir)...)
	addr := p.ready(t)

	if code, body, err := httpGet("http://" + addr + "/healthz"); err != nil || code != 200 || strings.TrimSpace(body) != "ok" {
		t.Errorf("/healthz = %d %q %v, want 200 ok", code, body, err)
	}
	code, body, err := httpGet("http://" + addr + "/metrics")
	if err != nil || code != 200 {
		t.Fatalf("/metrics = %d %v", code, err)
	}
	for _, family := range []string{"# TYPE streamhouse_log_", "# TYPE go_goroutines", "# TYPE process_cpu_seconds_total"} {
		if !strings.Contains(body, family) {
			t.Errorf("/metrics lacks %q", family)
		}
	}

	p.stop(t)
	out := p.out.String()
	if _, ok := findLog(out, "listening", "server", "http", "addr", addr); !ok {
		t.Errorf("no listening line for %s:\n%s", addr, out)
	}
	if _, ok := findLog(out, "storing", "data_dir", dir, "metadata", filepath.Join(dir, "metadata.db"),
		"segments", filepath.Join(dir, "segments"), "objects.kind", "local",
		"objects.path", filepath.Join(dir, "objects")); !ok {
		t.Errorf("no storing line naming the data paths:\n%s", out)
	}
	if _, ok := findLog(out, "stopped"); !ok {
		t.Errorf("no stopped line:\n%s", out)
	}
}

func TestProcessRefusesSharedDataDir(t *testing.T) {
	dir := t.TempDir()
	first := startBroker(t, nil, localArgs(dir)...)
	addr := first.ready(t)

	// Text logs, as an operator would see them.
	second := startBroker(t, nil, "--data-dir", dir, "--http-addr", "127.0.0.1:0")
	if code := second.exitCode(t); code == 0 {
		t.Fatalf("second broker on the same data dir exited 0; log:\n%s", second.out.String())
	}
	if out := second.out.String(); !strings.Contains(out, "in use") || !strings.Contains(out, "lock") {
		t.Errorf("second broker's log does not say the data dir is in use (locked):\n%s", out)
	}

	if code, _, err := httpGet("http://" + addr + "/readyz"); code != 200 {
		t.Errorf("first broker /readyz = %d %v after the second was refused, want 200", code, err)
	}
	first.stop(t)
}

func TestProcessBadConfigExits2(t *testing.T) {
	p := startBroker(t, map[string]string{"STREAMHOUSE_CACHE_SIZE": "12XB"}, "--data-dir", t.TempDir())
	if code := p.exitCode(t); code != 2 {
		t.Errorf("exit code %d, want 2", code)
	}
	if want := `streamhouse: invalid STREAMHOUSE_CACHE_SIZE "12XB"`; !strings.Contains(p.out.String(), want) {
		t.Errorf("stderr %q does not contain %q", p.out.String(), want)
	}
}

func TestProcessOnS3(t *testing.T) {
	srv := s3test.Start(t)
	s3Env := func(bucket string) map[string]string {
		return map[string]string{
			"USE_LOCAL_STORAGE":     "false",
			"STREAMHOUSE_BUCKET":    bucket,
			"S3_ENDPOINT":           srv.Endpoint,
			"AWS_REGION":            srv.Region,
			"AWS_ACCESS_KEY_ID":     srv.AccessKey,
			"AWS_SECRET_ACCESS_KEY": srv.SecretKey,
		}
	}

	t.Run("ready", func(t *testing.T) {
		p := startBroker(t, s3Env(srv.Bucket), localArgs(t.TempDir())...)
		p.ready(t)
		p.stop(t)
		if _, ok := findLog(p.out.String(), "storing", "objects.kind", "s3", "objects.bucket", srv.Bucket,
			"objects.endpoint", srv.Endpoint); !ok {
			t.Errorf("no storing line naming the bucket:\n%s", p.out.String())
		}
	})
	t.Run("missing bucket", func(t *testing.T) {
		p := startBroker(t, s3Env("no-such-bucket"), localArgs(t.TempDir())...)
		if code := p.exitCode(t); code != 1 {
			t.Errorf("exit code %d, want 1", code)
		}
		if want := `STREAMHOUSE_BUCKET \"no-such-bucket\"`; !strings.Contains(p.out.String(), want) {
			t.Errorf("log does not name the bucket setting (%s):\n%s", want, p.out.String())
		}
	})
}
