package log

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/streamhouse/streamhouse/meta"
	"github.com/streamhouse/streamhouse/objstore"
)

const crashChildEnv = "STREAMHOUSE_CRASH_CHILD_DIR"

// openDurable opens a Manager whose meta and object store live in dir, so
// that they survive the process; tweak, if set, adjusts its Config.
func openDurable(dir string, tweak func(*Config)) (*Manager, *meta.SQLite, error) {
	ctx := context.Background()
	objs, err := objstore.NewLocal(filepath.Join(dir, "objects"))
	if err != nil {
		return nil, nil, err
	}
	db, err := meta.OpenSQLite(ctx, filepath.Join(dir, "meta.db"))
	if err != nil {
		return nil, nil, err
	}
	cfg := Config{
		Dir: filepath.Join(dir, "segments"), Objects: objs, Meta: db,
		Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
	}
	if tweak != nil {
		tweak(&cfg)
	}
	m, err := Open(ctx, cfg)
	if err != nil {
		db.Close()
		return nil, nil, err
	}
	return m, db, nil
}

// crashChild is the child process of TestCrashRecovery (started through
// TestMain): it appends with fsync-before-ack until it is killed, printing
// "ACK <base> <sha256 of the stored batch>" after each acknowledgement.
func crashChild(dir string) error {
	m, _, err := openDurable(dir, nil)
	if err != nil {
		return err
	}
	ctx := context.Background()
	if _, err := m.Topic("crash"); err != nil {
		if _, err := m.CreateTopic(ctx, "crash", 1, map[string]string{ConfigSegmentBytes: "8192"}); err != nil {
			return err
		}
	}
	p, err := m.Partition("crash", 0)
	if err != nil {
		return err
	}
	out := bufio.NewWriter(os.Stdout)
	for i := 0; ; i++ {
		recs := make([]Record, 1+i%7)
		for j := range recs {
			recs[j] = Record{Key: []byte(fmt.Sprint(i)), Value: []byte(fmt.Sprintf("value-%d-%d", i, j)), Timestamp: 1_700_000_000_000 + int64(i)}
		}
		b, err := EncodeBatch(recs, Codec(i%5), 1_700_000_000_000)
		if err != nil {
			return err
		}
		res, err := p.Append(ctx, b, AppendOptions{Sync: true})
		if err != nil {
			return err
		}
		sum := sha256.Sum256(b) // b now carries its assigned base offset
		fmt.Fprintf(out, "ACK %d %s\n", res.BaseOffset, hex.EncodeToString(sum[:]))
		out.Flush()
	}
}

// TestCrashRecovery SIGKILLs an appending child process at random moments,
// reopens the log and checks that every acknowledged batch is there with
// identical bytes and that offsets have no gap.
func TestCrashRecovery(t *testing.T) {
	dir := t.TempDir()
	acked := map[int64]string{}
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 1))
	const cycles = 20
	for cycle := 0; cycle < cycles; cycle++ {
		killAfter := 1 + rng.IntN(60)
		n := runCrashChild(t, dir, killAfter, acked)
		if n < killAfter {
			t.Fatalf("cycle %d: child stopped after %d acks", cycle, n)
		}
		verifyCrashLog(t, dir, acked)
	}
	t.Logf("%d cycles, %d acknowledged batches verified", cycles, len(acked))
}

// runCrashChild starts the child, reads acks until killAfter of them, then
// SIGKILLs it; acks already printed after that are recorded too.
func runCrashChild(t *testing.T, dir string, killAfter int, acked map[int64]string) int {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), crashChildEnv+"="+dir)
	cmd.Stderr = os.Stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(stdout)
	n := 0
	killed := false
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) != 3 || f[0] != "ACK" {
			continue
		}
		off, err := strconv.ParseInt(f[1], 10, 64)
		if err != nil {
			t.Fatalf("bad ack line %q", sc.Text())
		}
		acked[off] = f[2]
		n++
		if n == killAfter && !killed {
			cmd.Process.Signal(syscall.SIGKILL)
			killed = true
		}
	}
	cmd.Wait()
	return n
}

func verifyCrashLog(t *testing.T, dir string, acked map[int64]string) {
	t.Helper()
	m, db, err := openDurable(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	defer m.Close()
	p := mustPartition(t, m, "crash", 0)
	stored := map[int64]string{}
	next := int64(0)
	for {
		res, err := p.Read(context.Background(), next, 1<<20)
		if err != nil {
			t.Fatalf("read at %d: %v", next, err)
		}
		if len(res.Batches) == 0 {
			break
		}
		batches, err := SplitBatches(res.Batches)
		if err != nil {
			t.Fatal(err)
		}
		for _, b := range batches {
			h, err := ValidateBatch(b)
			if err != nil {
				t.Fatalf("stored batch at %d: %v", next, err)
			}
			if h.BaseOffset != next {
				t.Fatalf("gap: batch at %d, expected %d", h.BaseOffset, next)
			}
			sum := sha256.Sum256(b)
			stored[h.BaseOffset] = hex.EncodeToString(sum[:])
			next = h.NextOffset()
		}
	}
	for off, sum := range acked {
		got, ok := stored[off]
		if !ok {
			t.Fatalf("acknowledged batch at offset %d lost (log ends at %d)", off, next)
		}
		if got != sum {
			t.Fatalf("acknowledged batch at offset %d changed", off)
		}
	}
}
