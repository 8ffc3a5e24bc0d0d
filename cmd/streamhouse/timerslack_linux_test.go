package main

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// threadSlacks returns the timer slack of every thread of process pid.
func threadSlacks(t *testing.T, pid int) map[string]time.Duration {
	t.Helper()
	tids, err := os.ReadDir(filepath.Join("/proc", strconv.Itoa(pid), "task"))
	if err != nil {
		t.Fatal(err)
	}
	out := make(map[string]time.Duration)
	for _, tid := range tids {
		// /proc/<tid> also names a thread that is not a group leader.
		b, err := os.ReadFile(filepath.Join("/proc", tid.Name(), "timerslack_ns"))
		if err != nil {
			t.Fatal(err)
		}
		ns, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
		if err != nil {
			t.Fatal(err)
		}
		out[tid.Name()] = time.Duration(ns)
	}
	return out
}

func TestProcessTimerSlack(t *testing.T) {
	inherited, err := timerSlack()
	if err != nil {
		t.Fatal(err)
	}
	want := 2 * time.Millisecond
	if inherited == want {
		t.Fatalf("the test's own slack is already %s; it could not tell a set slack from an inherited one", want)
	}
	for _, tc := range []struct {
		slack string
		want  time.Duration
	}{
		{"2ms", want},    // set, by re-executing the binary
		{"0", inherited}, // kept
	} {
		t.Run(tc.slack, func(t *testing.T) {
			p := startBroker(t, nil, append(localArgs(t.TempDir()), "--timer-slack="+tc.slack)...)
			addr := p.ready(t)
			slacks := threadSlacks(t, p.cmd.Process.Pid)
			if len(slacks) < 2 {
				t.Fatalf("%d threads, want the runtime's several", len(slacks))
			}
			for tid, got := range slacks {
				if got != tc.want {
					t.Errorf("thread %s: timer slack %s, want %s", tid, got, tc.want)
				}
			}
			if code, _, err := httpGet("http://" + addr + "/healthz"); err != nil || code != 200 {
				t.Errorf("/healthz = %d %v", code, err)
			}
			p.stop(t)
			if strings.Contains(p.out.String(), "timer slack not applied") {
				t.Errorf("warned about the slack:\n%s", p.out.String())
			}
		})
	}
}
