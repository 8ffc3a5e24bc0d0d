package main

import (
	"bytes"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// TestVersionFlag builds the broker the way a checkout does (VCS stamping
// on, whatever GOFLAGS says) and checks that --version names the module
// version, the git revision and the toolchain, and exits 0 without
// starting anything.
func TestVersionFlag(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "streamhouse")
	if out, err := exec.Command("go", "build", "-buildvcs=auto", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	for _, args := range [][]string{{"--version"}, {"-version"}, {"--data-dir", "/nonexistent", "--version"}} {
		cmd := exec.Command(bin, args...)
		var out, errOut bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errOut
		if err := cmd.Run(); err != nil || errOut.Len() != 0 {
			t.Fatalf("streamhouse %v: %v\nstderr: %s", args, err, errOut.String())
		}
		got := out.String()
		if !strings.HasPrefix(got, "streamhouse ") || !strings.HasSuffix(got, " "+runtime.Version()+" "+runtime.GOOS+"/"+runtime.GOARCH+"\n") {
			t.Fatalf("streamhouse %v printed %q", args, got)
		}
		head, err := exec.Command("git", "rev-parse", "HEAD").Output()
		if err != nil {
			t.Logf("not a git checkout (%v): the revision is not checked", err)
			continue
		}
		if want := "(revision " + strings.TrimSpace(string(head))[:12]; !strings.Contains(got, want) {
			t.Fatalf("streamhouse %v printed %q, want %q", args, got, want)
		}
	}
}

// TestVersionLogged checks the startup log line naming the version and
// revision: once (the timer-slack re-exec must not repeat it), before the
// listeners' lines.
func TestVersionLogged(t *testing.T) {
	p := startBroker(t, nil, localArgs(t.TempDir())...)
	p.ready(t)
	log := p.out.String()
	rec, ok := findLog(log, "starting")
	if !ok || rec.str("version") == "" || rec.str("go") != runtime.Version() {
		t.Fatalf("no msg=starting line with version and go in the log:\n%s", log)
	}
	if _, ok := rec["revision"]; !ok {
		t.Fatalf("the starting line %v lacks revision", rec)
	}
	if n := strings.Count(log, `"msg":"starting"`); n != 1 {
		t.Fatalf("%d starting lines, want 1:\n%s", n, log)
	}
	if strings.Index(log, `"msg":"starting"`) > strings.Index(log, `"msg":"listening"`) {
		t.Fatalf("starting is logged after listening:\n%s", log)
	}
	p.stop(t)
}

// TestVersionInUsage checks that --help mentions --version.
func TestVersionInUsage(t *testing.T) {
	var out, errOut bytes.Buffer
	if code := mainCode([]string{"--help"}, func(string) (string, bool) { return "", false }, &out, &errOut, nil); code != exitOK {
		t.Fatalf("--help: exit %d, stderr %s", code, errOut.String())
	}
	if !strings.Contains(out.String(), "'streamhouse --version' prints the version") {
		t.Fatalf("--help lacks --version:\n%s", out.String())
	}
}
