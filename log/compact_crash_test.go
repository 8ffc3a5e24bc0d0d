package log

import (
	"bufio"
	"context"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/streamhouse/streamhouse/meta"
)

const compactCrashChildEnv = "STREAMHOUSE_COMPACT_CRASH_CHILD"

// openCompactDurable is openDurable with the cleaner off (runs are
// started by hand), replaced objects deleted at once, and hook as the
// compaction hook.
func openCompactDurable(dir string, hook func(string)) (*Manager, *meta.SQLite, error) {
	return openDurable(dir, func(c *Config) {
		c.Cleaner, c.compactHook = CleanerConfig{Disabled: true, DeleteDelay: -1}, hook
	})
}

// compactCrashChild opens the log in dir, compacts, and at step prints
// "AT <step>" and waits to be killed.
func compactCrashChild(arg string) error {
	dir, step, _ := strings.Cut(arg, "|")
	hook := func(s string) {
		if s == step {
			fmt.Printf("AT %s\n", s)
			os.Stdout.Sync()
			select {} // SIGKILL comes here
		}
	}
	m, _, err := openCompactDurable(dir, hook)
	if err != nil {
		return err
	}
	m.RunCompaction(context.Background())
	return fmt.Errorf("compaction ended without reaching step %q", step)
}

// recordSet is what a partition reads back: offset -> key=value.
func recordSet(t *testing.T, p *Partition) map[int64]string {
	out := map[int64]string{}
	for _, r := range readCompacted(t, p) {
		v := string(r.Value)
		if r.Value == nil {
			v = "<tombstone>"
		}
		out[r.Offset] = string(r.Key) + "=" + v
	}
	return out
}

// TestCompactionCrashAtEachStep SIGKILLs a process compacting a partition
// after the new objects are written, after meta swapped them in, and
// after the replaced objects were deleted; the restarted log reads back
// exactly the old records (before the swap) or exactly the compacted ones
// (after it), and the object store holds exactly the objects meta names.
func TestCompactionCrashAtEachStep(t *testing.T) {
	for _, step := range []string{"written", "swapped", "deleted"} {
		t.Run(step, func(t *testing.T) {
			dir := t.TempDir()
			m, db, err := openCompactDurable(dir, nil)
			if err != nil {
				t.Fatal(err)
			}
			ctx := context.Background()
			if _, err := m.CreateTopic(ctx, "c", 1, map[string]string{ConfigCleanupPolicy: "compact",
				ConfigSegmentBytes: "1024", ConfigMinCleanableDirtyRatio: "0"}); err != nil {
				t.Fatal(err)
			}
			p := mustPartition(t, m, "c", 0)
			for i := 0; i < 80; i++ {
				appendKV(t, p, Codec(i%5), 1_700_000_000_000+int64(i),
					kv{key: fmt.Sprintf("k%d", i%9), value: fmt.Sprintf("v%d", i)}, kv{key: fmt.Sprintf("k%d", (i+4)%9), tomb: i%11 == 0})
			}
			if err := p.Roll(); err != nil {
				t.Fatal(err)
			}
			waitUploaded(t, m, p)
			before := recordSet(t, p)
			if err := m.Close(); err != nil {
				t.Fatal(err)
			}
			db.Close()

			cmd := exec.Command(os.Args[0], "-test.run=^$")
			cmd.Env = append(os.Environ(), compactCrashChildEnv+"="+dir+"|"+step)
			cmd.Stderr = os.Stderr
			stdout, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			reached := false
			sc := bufio.NewScanner(stdout)
			for sc.Scan() {
				if sc.Text() == "AT "+step {
					reached = true
					cmd.Process.Signal(syscall.SIGKILL)
				}
			}
			cmd.Wait()
			if !reached {
				t.Fatalf("child never reached step %s", step)
			}

			m, db, err = openCompactDurable(dir, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			defer m.Close()
			p = mustPartition(t, m, "c", 0)
			after := recordSet(t, p)
			checkObjectsMatchMeta(t, m, p)
			if step == "written" {
				if !maps.Equal(after, before) {
					t.Fatalf("after a crash before the swap: %d records, want the %d from before", len(after), len(before))
				}
				mustCompact(t, p) // the run can be redone
				after = recordSet(t, p)
			}
			if len(after) >= len(before) {
				t.Fatalf("compacted partition reads %d records, no fewer than the %d before", len(after), len(before))
			}
			for off, rec := range after {
				if before[off] != rec {
					t.Fatalf("offset %d reads %q, before compaction %q", off, rec, before[off])
				}
			}
			// Every key's last record from before is there.
			last := map[string]int64{}
			for off, rec := range before {
				k, _, _ := strings.Cut(rec, "=")
				if off >= last[k] {
					last[k] = off
				}
			}
			for k, off := range last {
				if _, ok := after[off]; !ok {
					t.Fatalf("key %s lost its last record at offset %d", k, off)
				}
			}
			m.RunCompaction(ctx)
			checkObjectsMatchMeta(t, m, p)
		})
	}
}

// checkObjectsMatchMeta asserts that the partition's objects are exactly
// those meta records.
func checkObjectsMatchMeta(t *testing.T, m *Manager, p *Partition) {
	t.Helper()
	ctx := context.Background()
	rows, err := m.cfg.Meta.ListSegments(ctx, p.topicID, p.index)
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for _, r := range rows {
		want = append(want, r.ObjectKey)
	}
	objs, err := m.cfg.Objects.List(ctx, objectPrefix(p.topicID, p.index))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, o := range objs {
		got = append(got, o.Key)
	}
	slices.Sort(want)
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Fatalf("objects %v, meta records %v", got, want)
	}
}
