package harness

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// JavaDaemon is a long-running JVM started from Apache Kafka's jars: a Kafka
// Streams application or a Kafka Connect worker. Its log (log4j2 to stderr)
// goes to a file; its stdout is collected line by line for the test to poll,
// so the program under test reports what it did as JSON lines there.
type JavaDaemon struct {
	name string
	proc *process
	out  *lineBuffer
}

// StartJava starts mainClass of Apache Kafka's jars (plus extraCP) with
// log4j2 logging at level into name.log under a temp dir of t, and returns
// at once. t's cleanup stops it if the test has not, and prints the log's
// tail if t failed.
func StartJava(t testing.TB, name, level string, extraCP []string, mainClass string, args ...string) *JavaDaemon {
	t.Helper()
	jars, err := KafkaJars()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	logCfg, err := log4jConfig(dir, level)
	if err != nil {
		t.Fatal(err)
	}
	cp := strings.Join(append(extraCP, filepath.Join(jars, "*")), string(os.PathListSeparator))
	jargs := append([]string{"-Xmx512m", "-XX:TieredStopAtLevel=1", "-Xshare:auto", "-Djava.awt.headless=true",
		"-Dlog4j2.configurationFile=" + logCfg, "-cp", cp, mainClass}, args...)
	d := &JavaDaemon{name: name, out: &lineBuffer{}}
	d.proc, err = startProcessOut(exec.Command("java", jargs...), filepath.Join(dir, name+".log"), d.out)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("%s log, WARN and ERROR lines:\n%s\n%s log tail:\n%s", name, d.warnings(50), name, d.proc.logTail())
		}
		select {
		case <-d.proc.exited:
		default:
			_ = d.proc.stop(30 * time.Second)
		}
	})
	return d
}

// Events returns the JSON objects with an "op" field the program has
// printed on stdout so far (other lines are ignored).
func (d *JavaDaemon) Events() []map[string]any {
	var evs []map[string]any
	for _, line := range d.out.lines() {
		if !strings.HasPrefix(line, "{") {
			continue
		}
		var ev map[string]any
		if json.Unmarshal([]byte(line), &ev) == nil && ev["op"] != nil {
			evs = append(evs, ev)
		}
	}
	return evs
}

// Running returns an error, with the log's tail, once the JVM has exited.
func (d *JavaDaemon) Running() error {
	if err := d.proc.running(); err != nil {
		return fmt.Errorf("%s %w", d.name, err)
	}
	return nil
}

// Stop sends SIGTERM (the JVM runs its shutdown hooks: Streams and Connect
// close cleanly) and waits up to grace for the exit, then SIGKILLs it.
// Exiting on SIGTERM is a success; an earlier exit or the kill (ErrKilled)
// is an error.
func (d *JavaDaemon) Stop(grace time.Duration) error {
	if err := d.proc.stop(grace); err != nil {
		return fmt.Errorf("%s: %w\n%s", d.name, err, d.proc.logTail())
	}
	return nil
}

// Kill SIGKILLs the JVM (its process group), as a crash would: no shutdown
// hook runs, nothing is closed or committed. It waits up to 30 s for the exit.
func (d *JavaDaemon) Kill() error {
	if err := d.proc.kill(30 * time.Second); err != nil {
		return fmt.Errorf("%s: %w\n%s", d.name, err, d.proc.logTail())
	}
	return nil
}

// LogTail returns the last lines of the JVM's log.
func (d *JavaDaemon) LogTail() string { return d.proc.logTail() }

// warnings returns the first n lines of the log at WARN or ERROR (the
// layout log4jConfig sets: "[time] LEVEL message (logger)").
func (d *JavaDaemon) warnings(n int) string {
	b, err := os.ReadFile(d.proc.logPath)
	if err != nil {
		return err.Error()
	}
	var out []string
	for _, l := range strings.Split(string(b), "\n") {
		if len(out) < n && (strings.Contains(l, "] WARN ") || strings.Contains(l, "] ERROR ")) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// lineBuffer is an io.Writer that keeps the complete lines written to it.
type lineBuffer struct {
	mu sync.Mutex // guards the fields below
	// done holds the complete lines, partial the bytes after the last '\n'.
	done    []string
	partial []byte
}

func (b *lineBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.partial = append(b.partial, p...)
	for {
		i := bytes.IndexByte(b.partial, '\n')
		if i < 0 {
			break
		}
		b.done = append(b.done, strings.TrimRight(string(b.partial[:i]), "\r"))
		b.partial = b.partial[i+1:]
	}
	return len(p), nil
}

func (b *lineBuffer) lines() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.done...)
}
