package harness

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// KafkaVersion is the Apache Kafka release whose jars setup.sh fetches.
const KafkaVersion = "4.4.0"

// ModuleDir returns the compat-tests directory (the module root): the
// nearest directory at or above the working directory with the module's go.mod.
func ModuleDir() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		b, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && bytes.Contains(b, []byte("module github.com/streamhouse/streamhouse/compat-tests\n")) {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("compat-tests/go.mod not found above the working directory")
		}
		dir = parent
	}
}

// CacheDir is where setup.sh keeps downloads: $COMPAT_CACHE, else
// $XDG_CACHE_HOME/streamhouse-compat, else ~/.cache/streamhouse-compat.
func CacheDir() string {
	if d := os.Getenv("COMPAT_CACHE"); d != "" {
		return d
	}
	if d := os.Getenv("XDG_CACHE_HOME"); d != "" {
		return filepath.Join(d, "streamhouse-compat")
	}
	home, _ := os.UserHomeDir()
	return filepath.Join(home, ".cache", "streamhouse-compat")
}

// KafkaJars returns the directory of Apache Kafka's jars, or an error that
// says to run setup.sh.
func KafkaJars() (string, error) {
	dir := filepath.Join(CacheDir(), "kafka-"+KafkaVersion)
	if _, err := os.Stat(filepath.Join(dir, ".complete")); err != nil {
		return "", fmt.Errorf("Apache Kafka %s jars not in %s: run compat-tests/setup.sh", KafkaVersion, dir)
	}
	return dir, nil
}

// Tool returns the path of a tool setup.sh installs, failing t with what to
// run when it is missing. Names: kcat, python (the venv's), node.
func Tool(t testing.TB, name string) string {
	t.Helper()
	var p string
	switch name {
	case "python":
		dir, err := ModuleDir()
		if err != nil {
			t.Fatal(err)
		}
		p = filepath.Join(dir, ".venv", "bin", "python")
	default:
		var err error
		if p, err = exec.LookPath(name); err != nil {
			t.Fatalf("%s not found: run compat-tests/setup.sh", name)
		}
	}
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("%s not found (%v): run compat-tests/setup.sh", name, err)
	}
	return p
}

// Run runs a command with stdin, bounded by timeout, and returns its stdout;
// it fails t with stderr when the command fails or times out.
func Run(t testing.TB, timeout time.Duration, stdin string, dir string, name string, args ...string) string {
	t.Helper()
	out, errOut, err := RunErr(timeout, stdin, dir, name, args...)
	if err != nil {
		t.Fatalf("%s %s: %v\nstdout:\n%s\nstderr:\n%s", name, strings.Join(args, " "), err, clip(out), clip(errOut))
	}
	return out
}

// RunErr is Run without t: it returns stdout, stderr and the error.
func RunErr(timeout time.Duration, stdin string, dir string, name string, args ...string) (string, string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	cmd.Stdin = strings.NewReader(stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.WaitDelay = 5 * time.Second
	err := cmd.Run()
	if ctx.Err() != nil {
		err = fmt.Errorf("timed out after %v: %w", timeout, err)
	}
	return stdout.String(), stderr.String(), err
}

// clip keeps the last 4 KiB of s for failure messages.
func clip(s string) string {
	if len(s) > 4096 {
		return "..." + s[len(s)-4096:]
	}
	return s
}

// Java runs a main class of Apache Kafka's jars (plus extra classpath
// entries) with a quiet log4j2 configuration and returns its stdout.
func Java(t testing.TB, timeout time.Duration, stdin string, extraCP []string, mainClass string, args ...string) string {
	t.Helper()
	out, errOut, err := JavaErr(t, timeout, stdin, extraCP, mainClass, args...)
	if err != nil {
		t.Fatalf("java %s %s: %v\nstdout:\n%s\nstderr:\n%s", mainClass, strings.Join(args, " "), err, clip(out), clip(errOut))
	}
	return out
}

// JavaErr is Java for a run that may fail: it returns stdout, stderr and
// the error (a non-zero exit, or the timeout).
func JavaErr(t testing.TB, timeout time.Duration, stdin string, extraCP []string, mainClass string, args ...string) (string, string, error) {
	t.Helper()
	jars, err := KafkaJars()
	if err != nil {
		t.Fatal(err)
	}
	logCfg, err := log4jConfig(t.TempDir(), "WARN")
	if err != nil {
		t.Fatal(err)
	}
	cp := strings.Join(append(extraCP, filepath.Join(jars, "*")), string(os.PathListSeparator))
	jargs := append([]string{"-Xmx512m", "-XX:TieredStopAtLevel=1", "-Xshare:auto",
		"-Dlog4j2.configurationFile=" + logCfg, "-cp", cp, mainClass}, args...)
	return RunErr(timeout, stdin, "", "java", jargs...)
}

// log4jConfig writes a log4j2 configuration logging at level to stderr.
func log4jConfig(dir, level string) (string, error) {
	p := filepath.Join(dir, "log4j2.properties")
	cfg := "appender.err.type = Console\nappender.err.name = ERR\nappender.err.target = SYSTEM_ERR\n" +
		"appender.err.layout.type = PatternLayout\nappender.err.layout.pattern = [%d] %p %m (%c)%n\n" +
		"rootLogger.level = " + level + "\nrootLogger.appenderRef.err.ref = ERR\n"
	return p, os.WriteFile(p, []byte(cfg), 0o644)
}
