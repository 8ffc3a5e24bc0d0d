package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/streamhouse/streamhouse/grpcapi/grpcapitest"
	"github.com/streamhouse/streamhouse/internal/toolbin"
)

// The guide test runs docs/GUIDE.md (and README.md's "Try it") as a
// reader would, against a broker it starts, and compares what each command
// prints with what the document shows. docs/GUIDE.md explains the markers
// at its top; in short:
//
//	<!-- guide: run [exit=N] [stderr] [dir=repo] -->   before a ```sh block
//	<!-- guide: start NAME -->                         background block (consume -f)
//	<!-- guide: stop NAME after="TEXT" -->             SIGINT once TEXT was printed
//	<!-- guide: skip REASON -->                        a ```sh block not run
//	```output                                          what the command printed
const (
	guideBlockTimeout = 3 * time.Minute // one block; the Kafka CLI tools start a JVM
	guideStopTimeout  = 30 * time.Second
	kafkaCLIVersion   = "4.4.0" // compat-tests/setup.sh fetches these jars
)

// guideStep is one marked block of a document.
type guideStep struct {
	line   int    // of the block's opening fence, 1-based
	kind   string // run, start or stop
	name   string // start and stop: the background job
	after  string // stop: wait for this text before SIGINT
	exit   int    // run: the exit status expected
	stderr bool   // run: the output block is standard error
	inRepo bool   // run: in the repository root, not the scratch directory
	script string
	want   *string // the output block, if any
}

var (
	guideDirective = regexp.MustCompile(`^<!--\s*guide:\s*(.*?)\s*-->$`)
	guideToken     = regexp.MustCompile(`(\w+)="([^"]*)"|(\S+)`)
	guidePlacehold = regexp.MustCompile(`<[a-z][a-z0-9 ._-]*>`)
	kafkaScript    = regexp.MustCompile(`\bkafka-[a-z-]+\.sh\b`)
)

// parseGuide extracts the marked blocks of a Markdown document. With
// strict, every ```sh block must carry a marker.
func parseGuide(doc string, strict bool) ([]*guideStep, error) {
	var (
		steps    []*guideStep
		pending  []string   // the tokens of the last directive not yet used
		awaiting *guideStep // the step the next ```output block belongs to
	)
	lines := strings.Split(doc, "\n")
	for i := 0; i < len(lines); i++ {
		trimmed := strings.TrimSpace(lines[i])
		if m := guideDirective.FindStringSubmatch(trimmed); m != nil {
			if pending != nil {
				return nil, fmt.Errorf("line %d: marker %q is followed by another marker, not a block", i+1, trimmed)
			}
			var toks []string
			for _, t := range guideToken.FindAllStringSubmatch(m[1], -1) {
				toks = append(toks, t[0])
			}
			if len(toks) == 0 {
				return nil, fmt.Errorf("line %d: empty guide marker", i+1)
			}
			awaiting = nil
			if toks[0] == "stop" {
				st, err := newStep(i+1, toks)
				if err != nil {
					return nil, err
				}
				steps = append(steps, st)
				awaiting = st
				continue
			}
			pending = toks
			continue
		}
		if !strings.HasPrefix(trimmed, "```") || trimmed == "```" {
			continue
		}
		// A fenced block: its body, de-indented like its opening fence.
		info := strings.TrimPrefix(trimmed, "```")
		indent := len(lines[i]) - len(strings.TrimLeft(lines[i], " "))
		start := i + 1
		var body []string
		for i++; i < len(lines) && strings.TrimSpace(lines[i]) != "```"; i++ {
			body = append(body, strings.TrimPrefix(lines[i], strings.Repeat(" ", indent)))
		}
		if i == len(lines) {
			return nil, fmt.Errorf("line %d: unclosed ``` block", start)
		}
		text := strings.Join(body, "\n") + "\n"
		switch {
		case info == "output":
			if awaiting == nil || awaiting.want != nil {
				return nil, fmt.Errorf("line %d: an output block that follows no tested command", start)
			}
			awaiting.want = &text
			awaiting = nil
		case info == "sh":
			toks := pending
			pending, awaiting = nil, nil
			if toks == nil {
				if strict {
					return nil, fmt.Errorf("line %d: a sh block without a <!-- guide: run|start|skip --> marker", start)
				}
				continue
			}
			if toks[0] == "skip" {
				continue
			}
			st, err := newStep(start, toks)
			if err != nil {
				return nil, err
			}
			st.script = text
			steps = append(steps, st)
			if st.kind == "run" {
				awaiting = st
			}
		case pending != nil:
			return nil, fmt.Errorf("line %d: a guide marker before a %q block, not sh", start, info)
		}
	}
	return steps, nil
}

// newStep parses a marker's tokens.
func newStep(line int, toks []string) (*guideStep, error) {
	st := &guideStep{line: line, kind: toks[0]}
	for _, t := range toks[1:] {
		k, v, _ := strings.Cut(t, "=")
		switch {
		case st.kind == "run" && k == "exit":
			n, err := strconv.Atoi(v)
			if err != nil {
				return nil, fmt.Errorf("line %d: exit=%q", line, v)
			}
			st.exit = n
		case st.kind == "run" && t == "stderr":
			st.stderr = true
		case st.kind == "run" && t == "dir=repo":
			st.inRepo = true
		case (st.kind == "start" || st.kind == "stop") && st.name == "" && !strings.Contains(t, "="):
			st.name = t
		case st.kind == "stop" && k == "after":
			st.after = strings.Trim(v, `"`)
		default:
			return nil, fmt.Errorf("line %d: unknown marker word %q for %s", line, t, st.kind)
		}
	}
	switch {
	case st.kind != "run" && st.kind != "start" && st.kind != "stop":
		return nil, fmt.Errorf("line %d: unknown marker %q (run, start, stop or skip)", line, st.kind)
	case st.kind != "run" && st.name == "":
		return nil, fmt.Errorf("line %d: %s needs a name", line, st.kind)
	case st.kind == "stop" && st.after == "":
		return nil, fmt.Errorf(`line %d: stop needs after="TEXT"`, line)
	}
	return st, nil
}

// normalizeOutput drops leading and trailing blanks of each line, reads
// runs of spaces and tabs as one space, and drops blank lines at both ends.
func normalizeOutput(s string) []string {
	lines := strings.Split(strings.ReplaceAll(s, "\r\n", "\n"), "\n")
	for i, l := range lines {
		lines[i] = strings.Join(strings.Fields(l), " ")
	}
	for len(lines) > 0 && lines[0] == "" {
		lines = lines[1:]
	}
	for len(lines) > 0 && lines[len(lines)-1] == "" {
		lines = lines[:len(lines)-1]
	}
	return lines
}

// outputMatches compares output with an output block: <placeholder> is
// any text on its line, a line "..." any number of lines.
func outputMatches(want, got string) bool {
	w, g := normalizeOutput(want), normalizeOutput(got)
	pats := make([]*regexp.Regexp, len(w))
	for i, l := range w {
		if l == "..." {
			continue
		}
		parts := guidePlacehold.Split(l, -1)
		for j := range parts {
			parts[j] = regexp.QuoteMeta(parts[j])
		}
		pats[i] = regexp.MustCompile("^" + strings.Join(parts, ".*") + "$")
	}
	var match func(wi, gi int) bool
	match = func(wi, gi int) bool {
		if wi == len(w) {
			return gi == len(g)
		}
		if pats[wi] == nil { // "...": zero or more lines
			for k := gi; k <= len(g); k++ {
				if match(wi+1, k) {
					return true
				}
			}
			return false
		}
		return gi < len(g) && pats[wi].MatchString(g[gi]) && match(wi+1, gi+1)
	}
	return match(0, 0)
}

// guideEnv is what the blocks run with.
type guideEnv struct {
	repo, work, tools string
	env               []string
	found             map[string]bool // tools already provided
}

// need makes the tools a script uses available in e.tools, and returns
// why one cannot be ("" when all are there).
func (e *guideEnv) need(script string) string {
	var names []string
	for _, tool := range []string{"kcat", "grpcurl", "curl", "java"} {
		if regexp.MustCompile(`(^|[^\w-])` + tool + `\b`).MatchString(script) {
			names = append(names, tool)
		}
	}
	names = append(names, kafkaScript.FindAllString(script, -1)...)
	for _, name := range names {
		if e.found[name] {
			continue
		}
		if why := e.provide(name); why != "" {
			return why
		}
		e.found[name] = true
	}
	return ""
}

// provide finds one tool.
func (e *guideEnv) provide(name string) string {
	switch {
	case name == "grpcurl":
		p, err := toolbin.Tool{Name: "grpcurl", Version: grpcapitest.GrpcurlVersion,
			Pkg: "github.com/fullstorydev/grpcurl/cmd/grpcurl", Env: grpcapitest.EnvGrpcurl, SearchPath: true}.Find()
		if err != nil {
			return fmt.Sprintf("grpcurl: %v", err)
		}
		if err := os.Symlink(p, filepath.Join(e.tools, "grpcurl")); err != nil {
			return fmt.Sprintf("grpcurl: %v", err)
		}
	case strings.HasPrefix(name, "kafka-"):
		if _, err := exec.LookPath(name); err == nil {
			return ""
		}
		return e.kafkaShim(name)
	default:
		if _, err := exec.LookPath(name); err != nil {
			hint := map[string]string{"kcat": "apt-get install kcat; .ci/run installs it", "curl": "apt-get install curl"}[name]
			return fmt.Sprintf("%s is not installed (%s)", name, hint)
		}
	}
	return ""
}

// kafkaMainClasses are the classes Kafka's bin/*.sh scripts run.
var kafkaMainClasses = map[string]string{
	"kafka-topics.sh":           "org.apache.kafka.tools.TopicCommand",
	"kafka-console-producer.sh": "org.apache.kafka.tools.ConsoleProducer",
	"kafka-console-consumer.sh": "org.apache.kafka.tools.consumer.ConsoleConsumer",
	"kafka-consumer-groups.sh":  "org.apache.kafka.tools.consumer.group.ConsumerGroupCommand",
	"kafka-configs.sh":          "org.apache.kafka.tools.ConfigCommand",
}

// kafkaShim writes a bin/kafka-*.sh stand-in that runs the tool's main
// class from the Apache Kafka jars compat-tests/setup.sh puts in its cache,
// with Kafka's own tools logging (WARN, to stderr).
func (e *guideEnv) kafkaShim(name string) string {
	class, ok := kafkaMainClasses[name]
	if !ok {
		return fmt.Sprintf("%s: no main class known for it (add it to kafkaMainClasses)", name)
	}
	jars := filepath.Join(compatCacheDir(), "kafka-"+kafkaCLIVersion)
	if _, err := os.Stat(filepath.Join(jars, ".complete")); err != nil {
		return fmt.Sprintf("%s is not on PATH and Apache Kafka %s's jars are not in %s "+
			"(run `bash compat-tests/setup.sh`, which .ci/run does before the tests, or put Kafka's bin/ on PATH)",
			name, kafkaCLIVersion, jars)
	}
	if _, err := exec.LookPath("java"); err != nil {
		return fmt.Sprintf("%s needs java, which is not installed", name)
	}
	logCfg := filepath.Join(e.tools, "log4j2.properties")
	cfg := "appender.err.type = Console\nappender.err.name = ERR\nappender.err.target = SYSTEM_ERR\n" +
		"appender.err.layout.type = PatternLayout\nappender.err.layout.pattern = [%d] %p %m (%c)%n\n" +
		"rootLogger.level = WARN\nrootLogger.appenderRef.err.ref = ERR\n"
	script := fmt.Sprintf("#!/bin/sh\n# %s from Apache Kafka %s's jars (as its bin/ script runs it)\n"+
		"exec java -Xshare:auto -XX:TieredStopAtLevel=1 -Dlog4j2.configurationFile=%s -cp '%s/*' %s \"$@\"\n",
		name, kafkaCLIVersion, logCfg, jars, class)
	if err := os.WriteFile(logCfg, []byte(cfg), 0o644); err != nil {
		return err.Error()
	}
	if err := os.WriteFile(filepath.Join(e.tools, name), []byte(script), 0o755); err != nil {
		return err.Error()
	}
	return ""
}

// compatCacheDir is compat-tests/setup.sh's cache: $COMPAT_CACHE, else
// $XDG_CACHE_HOME/streamhouse-compat, else ~/.cache/streamhouse-compat.
func compatCacheDir() string {
	if d := os.Getenv("COMPAT_CACHE"); d != "" {
		return d
	}
	if d := os.Getenv("XDG_CACHE_HOME"); d != "" {
		return filepath.Join(d, "streamhouse-compat")
	}
	home, _ := os.UserHomeDir()
	return filepath.Join(home, ".cache", "streamhouse-compat")
}

// command returns the shell that runs a block.
func (e *guideEnv) command(ctx context.Context, st *guideStep) *exec.Cmd {
	cmd := exec.CommandContext(ctx, "bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", st.script)
	cmd.Dir = e.work
	if st.inRepo {
		cmd.Dir = e.repo
	}
	cmd.Env = e.env
	// Its own process group, so a timeout or Ctrl-C reaches every process.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	return cmd
}

// background is a running start block.
type background struct {
	cmd    *exec.Cmd
	out    syncBuffer
	errOut syncBuffer
	done   chan struct{}
	err    error
}

// runGuide runs a document's marked blocks against a broker it starts.
func runGuide(t *testing.T, docPath string, strict bool) {
	repo, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	doc, err := os.ReadFile(filepath.Join(repo, docPath))
	if err != nil {
		t.Fatal(err)
	}
	steps, err := parseGuide(string(doc), strict)
	if err != nil {
		t.Fatalf("%s: %v", docPath, err)
	}
	if len(steps) == 0 {
		t.Fatalf("%s has no <!-- guide: run --> blocks", docPath)
	}

	p := startBroker(t, nil, localArgs(t.TempDir())...)
	httpAddr := p.ready(t)
	e := &guideEnv{repo: repo, work: t.TempDir(), tools: t.TempDir(), found: map[string]bool{}}
	gobin := t.TempDir()
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); k != "PATH" && k != "GOBIN" && k != "KAFKA" && k != "GRPC" && k != "HTTP" &&
			k != envStreamctlAddr && k != "CDPATH" && k != "BASH_ENV" {
			e.env = append(e.env, kv)
		}
	}
	e.env = append(e.env, "KAFKA="+p.listenAddr(t, "kafka"), "GRPC="+p.listenAddr(t, "grpc"), "HTTP="+httpAddr,
		envStreamctlAddr+"="+p.listenAddr(t, "grpc"), "GOBIN="+gobin,
		"PATH="+strings.Join([]string{gobin, e.tools, os.Getenv("PATH")}, string(os.PathListSeparator)))

	jobs := map[string]*background{}
	t.Cleanup(func() {
		for _, j := range jobs {
			_ = syscall.Kill(-j.cmd.Process.Pid, syscall.SIGKILL)
			<-j.done
		}
	})
	for n, st := range steps {
		where := fmt.Sprintf("%s:%d", docPath, st.line)
		if st.kind != "stop" {
			if why := e.need(st.script); why != "" {
				if os.Getenv("CI") != "" {
					t.Fatalf("%s needs a tool that CI must install: %s", where, why)
				}
				t.Skipf("stopping at %s after %d of %d blocks ran: %s", where, n, len(steps), why)
			}
		}
		t.Logf("%s: %s %s %s", where, st.kind, st.name, strings.TrimSpace(st.script))
		switch st.kind {
		case "run":
			runStep(t, e, st, where)
		case "start":
			if jobs[st.name] != nil {
				t.Fatalf("%s: job %q is already running", where, st.name)
			}
			j := &background{cmd: e.command(context.Background(), st), done: make(chan struct{})}
			j.cmd.Stdout, j.cmd.Stderr = &j.out, &j.errOut
			if err := j.cmd.Start(); err != nil {
				t.Fatalf("%s: %v", where, err)
			}
			go func() { j.err = j.cmd.Wait(); close(j.done) }()
			jobs[st.name] = j
		case "stop":
			j := jobs[st.name]
			if j == nil {
				t.Fatalf("%s: no job %q was started", where, st.name)
			}
			waitFor(t, guideBlockTimeout, fmt.Sprintf("%q in the output of job %q", st.after, st.name), func() (bool, string) {
				select {
				case <-j.done:
					t.Fatalf("%s: job %q ended before printing %q: %v\nstdout:\n%s\nstderr:\n%s",
						where, st.name, st.after, j.err, j.out.String(), j.errOut.String())
				default:
				}
				return strings.Contains(j.out.String(), st.after), "stdout so far:\n" + j.out.String()
			})
			if err := syscall.Kill(-j.cmd.Process.Pid, syscall.SIGINT); err != nil {
				t.Fatal(err)
			}
			select {
			case <-j.done:
			case <-time.After(guideStopTimeout):
				t.Fatalf("%s: job %q still runs %s after SIGINT", where, st.name, guideStopTimeout)
			}
			delete(jobs, st.name)
			if j.err != nil {
				t.Fatalf("%s: job %q after SIGINT: %v\nstderr:\n%s", where, st.name, j.err, j.errOut.String())
			}
			if st.want != nil && !outputMatches(*st.want, j.out.String()) {
				t.Fatalf("%s: job %q printed\n%s\nwhich does not match the guide's\n%s", where, st.name, j.out.String(), *st.want)
			}
		}
	}
	if len(jobs) > 0 {
		t.Fatalf("%s: background jobs never stopped: %v", docPath, jobs)
	}
	p.stop(t)
}

// envStreamctlAddr is streamctl's server address variable.
const envStreamctlAddr = "STREAMHOUSE_ADDR"

// runStep runs one block and checks its exit status and output.
func runStep(t *testing.T, e *guideEnv, st *guideStep, where string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), guideBlockTimeout)
	defer cancel()
	cmd := e.command(ctx, st)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		code = ee.ExitCode()
	case err != nil:
		t.Fatalf("%s: %v", where, err)
	}
	if ctx.Err() != nil {
		t.Fatalf("%s: still running after %s\nstdout:\n%s\nstderr:\n%s", where, guideBlockTimeout, out.String(), errOut.String())
	}
	if code != st.exit {
		t.Fatalf("%s: exit status %d, want %d\nstdout:\n%s\nstderr:\n%s", where, code, st.exit, out.String(), errOut.String())
	}
	got, stream := out.String(), "stdout"
	if st.stderr {
		got, stream = errOut.String(), "stderr"
	}
	if st.want != nil && !outputMatches(*st.want, got) {
		t.Fatalf("%s: %s is\n%s\nwhich does not match the guide's\n%s\n(the other stream:\n%s)", where, stream, got, *st.want,
			map[bool]string{true: out.String(), false: errOut.String()}[st.stderr])
	}
}

// TestGuide runs docs/GUIDE.md.
func TestGuide(t *testing.T) {
	runGuide(t, "docs/GUIDE.md", true)
}

// TestReadmeTryIt runs the marked blocks of README.md (its "Try it").
func TestReadmeTryIt(t *testing.T) {
	runGuide(t, "README.md", false)
}

// TestGuideParse checks the marker syntax and the output comparison on
// small documents, so a mistake in the guide fails with a clear message.
func TestGuideParse(t *testing.T) {
	const doc = "<!-- guide: run exit=1 stderr -->\n```sh\nfalse\n```\ntext\n```output\nout\n```\n" +
		"<!-- guide: skip why -->\n```sh\nnot run\n```\n" +
		"  <!-- guide: start f -->\n  ```sh\n  tail -f x\n  ```\n" +
		"<!-- guide: stop f after=\"a b\" -->\n```output\nline\n```\n"
	steps, err := parseGuide(doc, true)
	if err != nil {
		t.Fatal(err)
	}
	if len(steps) != 3 || steps[0].exit != 1 || !steps[0].stderr || *steps[0].want != "out\n" ||
		steps[1].kind != "start" || steps[1].script != "tail -f x\n" || steps[2].after != "a b" || *steps[2].want != "line\n" {
		t.Fatalf("parsed %+v %+v %+v", steps[0], steps[1], steps[2])
	}
	for _, bad := range []string{
		"```sh\nunmarked\n```\n",
		"<!-- guide: run -->\n```go\nx\n```\n",
		"```output\norphan\n```\n",
		"<!-- guide: run bogus -->\n```sh\nx\n```\n",
		"<!-- guide: stop f -->\n",
		"<!-- guide: run -->\n```sh\nx\n```\n```output\na\n```\n```output\nb\n```\n",
	} {
		if _, err := parseGuide(bad, true); err == nil {
			t.Errorf("parseGuide(%q) accepted it", bad)
		}
	}
	for _, tc := range []struct {
		want, got string
		ok        bool
	}{
		{"a  b\n", "\n  a\tb  \n\n", true},
		{"id <topic id> x\n", "id 1234-5 x\n", true},
		{"id <topic id> x\n", "id 1234-5 y\n", false},
		{"a\n...\nz\n", "a\nb\nc\nz\n", true},
		{"a\n...\nz\n", "a\nz\n", true},
		{"a\n...\nz\n", "a\nb\n", false},
		{"a\nb\n", "a\nb\nc\n", false},
		{"a.b\n", "axb\n", false},
	} {
		if got := outputMatches(tc.want, tc.got); got != tc.ok {
			t.Errorf("outputMatches(%q, %q) = %v", tc.want, tc.got, got)
		}
	}
}
