package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/streamhouse/streamhouse/internal/lossyfs"
	"github.com/streamhouse/streamhouse/log"
)

// The power-loss test's load: bounded in records and time.
const (
	powerLossTopic      = "powerloss"
	powerLossPartitions = 3
	powerLossCycles     = 5
	// powerLossMaxRecords bounds what one cycle produces; the kill comes
	// after a random number of acknowledgements well below it.
	powerLossMaxRecords = 4000
	powerLossLoadTime   = 30 * time.Second
	powerLossReadTime   = 60 * time.Second
	// powerLossSeedEnv, when set, fixes the seed (printed by every run).
	powerLossSeedEnv = "POWERLOSS_SEED"
)

// TestPowerLoss runs the broker binary with its data directory on lossyfs,
// a FUSE file system that keeps unsynced bytes in memory and drops them
// on Cut. Each cycle drives an idempotent acks=all producer, kills the
// broker with SIGKILL mid-load (in half the cycles once more before, with
// no power cut), cuts the power (in half the cuts after writing back some
// unsynced pages), and restarts the broker on the same directory, which
// must then serve every acknowledged record at its acknowledged offset,
// once. It runs under every fsync scope. The seed fixes the schedule
// (when to kill, which cuts, which pages, record sizes), not the broker's
// timing.
func TestPowerLoss(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv(powerLossSeedEnv); s != "" {
		var err error
		if seed, err = strconv.ParseUint(s, 10, 64); err != nil {
			t.Fatalf("%s=%q: %v", powerLossSeedEnv, s, err)
		}
	}
	t.Logf("seed %d (rerun with %s=%d)", seed, powerLossSeedEnv, seed)
	for i, scope := range []log.SyncScope{log.SyncFile, log.SyncFilesystem} {
		t.Run(string(scope), func(t *testing.T) {
			r := &powerLossRun{scope: string(scope), rng: rand.New(rand.NewPCG(seed, uint64(i)))}
			r.run(t)
		})
	}
}

// ackedRecord is a record the broker acknowledged.
type ackedRecord struct {
	partition int32
	offset    int64
	value     string
	cycle     int
	life      int // which start of the broker in the cycle
}

func (a ackedRecord) String() string {
	return fmt.Sprintf("p%d@%d (cycle %d.%d)", a.partition, a.offset, a.cycle, a.life)
}

// powerLossRun is one scope's run.
type powerLossRun struct {
	scope string
	rng   *rand.Rand

	// mu guards acked, which the producer's callbacks append to.
	mu    sync.Mutex
	acked []ackedRecord

	lost    map[string]bool // values of acknowledged records found missing
	reports []string        // one line per check that found losses
	killed  string          // the log of the broker killed last
}

func (r *powerLossRun) run(t *testing.T) {
	lfs, _ := lossyfs.MountT(t)
	args := append(localArgs(lfs.Mountpoint()), "--fsync-scope", r.scope)
	r.lost = make(map[string]bool)
	after := "" // what the next start recovers from; empty at the first
	for cycle := range powerLossCycles {
		// Half the cycles first crash without a power cut (what the page
		// cache held survives, and the restarted broker recovers from it),
		// then crash again with one.
		lives := 1 + r.rng.IntN(2)
		for life := range lives {
			start := time.Now()
			p := startBroker(t, nil, args...)
			p.ready(t)
			addr := p.listenAddr(t, "kafka")
			if after == "" {
				createPowerLossTopic(t, addr)
			} else {
				r.check(t, addr, after, p)
			}
			n := r.load(t, addr, cycle, life, p)
			if life < lives-1 {
				after = fmt.Sprintf("after cycle %d's kill -9 without power cut", cycle)
				t.Logf("%s cycle %d (%s): %d acked before a kill -9 (%d in all), no power cut",
					r.scope, cycle, time.Since(start).Round(time.Millisecond), n, r.ackedCount())
				continue
			}
			after = fmt.Sprintf("after cycle %d's kill -9 and power cut", cycle)
			r.cut(t, lfs, fmt.Sprintf("%s cycle %d (%s): %d acked before the kill -9 (%d in all)",
				r.scope, cycle, time.Since(start).Round(time.Millisecond), n, r.ackedCount()))
		}
	}
	p := startBroker(t, nil, args...)
	p.ready(t)
	r.check(t, p.listenAddr(t, "kafka"), after+" (the end)", p)
	p.stop(t)
	if len(r.lost) > 0 {
		t.Errorf("fsync scope %s: %d of %d acknowledged records lost or moved:\n%s",
			r.scope, len(r.lost), r.ackedCount(), strings.Join(r.reports, "\n"))
	}
}

// cut cuts the power and logs what it dropped after the line so far.
// Half the cuts come after the kernel wrote some dirty pages back (each
// with probability 1/2), so unsynced data survives torn.
func (r *powerLossRun) cut(t *testing.T, lfs *lossyfs.FS, line string) {
	t.Helper()
	kind := "power cut"
	var d lossyfs.Dropped
	var err error
	if r.rng.IntN(2) == 0 {
		kind = "power cut after a partial writeback"
		d, err = lfs.CutWriteback(func() bool { return r.rng.IntN(2) == 0 })
	} else {
		d, err = lfs.Cut()
	}
	if err != nil {
		t.Fatalf("%s: %v", kind, err)
	}
	if d.KeptBytes > 0 {
		kind += fmt.Sprintf(" (%d bytes written back)", d.KeptBytes)
	}
	t.Logf("%s; the %s dropped %d bytes of %s and undid %s", line, kind,
		d.Bytes, listOr(d.Files, "no file"), listOr(d.Undone, "no namespace change"))
	for _, u := range d.Unrestorable {
		t.Logf("  the cut could not restore: %s", u)
	}
}

func createPowerLossTopic(t *testing.T, addr string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	// Small segments, rolled by size and age, so that seals and uploads
	// to the local object store (under the data directory, so on the
	// lossy file system too) happen during the load.
	configs := map[string]*string{"segment.bytes": kadm.StringPtr("16384"), "segment.ms": kadm.StringPtr("500")}
	resp, err := kadm.NewClient(cl).CreateTopic(ctx, powerLossPartitions, 1, configs, powerLossTopic)
	if err == nil {
		err = resp.Err
	}
	if err != nil {
		t.Fatalf("create topic: %v", err)
	}
}

func (r *powerLossRun) ackedCount() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.acked)
}

// value is a unique record value of 40 to 400 bytes.
func (r *powerLossRun) value(cycle, life, i int) []byte {
	v := fmt.Sprintf("%s-c%d.%d-%06d-", r.scope, cycle, life, i)
	return []byte(v + strings.Repeat("x", 40+r.rng.IntN(360)))
}

// load produces to p until a random number of acknowledgements, kills p
// with SIGKILL while records are still in flight, and returns how many
// records were acknowledged.
func (r *powerLossRun) load(t *testing.T, addr string, cycle, life int, p *brokerProc) int64 {
	t.Helper()
	killAfter := int64(100 + r.rng.IntN(900))
	values := make([][]byte, powerLossMaxRecords)
	for i := range values {
		values[i] = r.value(cycle, life, i)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.RequiredAcks(kgo.AllISRAcks()), kgo.MaxBufferedRecords(64))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var acks atomic.Int64
	producing := make(chan struct{})
	go func() {
		defer close(producing)
		for i := 0; i < len(values) && ctx.Err() == nil; i++ {
			rec := &kgo.Record{Topic: powerLossTopic, Partition: int32(i % powerLossPartitions), Value: values[i]}
			cl.Produce(ctx, rec, func(rec *kgo.Record, err error) {
				if err != nil {
					return
				}
				r.mu.Lock()
				r.acked = append(r.acked, ackedRecord{rec.Partition, rec.Offset, string(rec.Value), cycle, life})
				r.mu.Unlock()
				acks.Add(1)
			})
		}
	}()
	defer func() {
		cancel()
		<-producing
		cl.Close() // fails what is still buffered
	}()
	waitFor(t, powerLossLoadTime, fmt.Sprintf("%d acknowledgements in cycle %d", killAfter, cycle), func() (bool, string) {
		if !p.alive() {
			t.Fatalf("cycle %d: broker exited during the load; log tail:\n%s", cycle, logTail(p.out.String(), 40))
		}
		return acks.Load() >= killAfter, fmt.Sprintf("%d acknowledged", acks.Load())
	})
	if err := p.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-p.done
	r.killed = p.out.String()
	return acks.Load()
}

// check reads the topic back from the broker at addr and records every
// acknowledged record not found at its offset, or found more than once.
func (r *powerLossRun) check(t *testing.T, addr, when string, p *brokerProc) {
	t.Helper()
	got := readPowerLossTopic(t, addr)
	where := make(map[string][]string, len(got))
	for part, recs := range got {
		for off, v := range recs {
			where[v] = append(where[v], fmt.Sprintf("p%d@%d", part, off))
		}
	}
	r.mu.Lock()
	acked := slices.Clone(r.acked)
	r.mu.Unlock()
	var missing []string
	for _, a := range acked {
		at := where[a.value]
		if got[a.partition][a.offset] == a.value && len(at) == 1 || r.lost[a.value] {
			continue
		}
		r.lost[a.value] = true
		switch {
		case len(at) == 0:
			missing = append(missing, a.String()+" missing")
		default:
			missing = append(missing, fmt.Sprintf("%s found at %s", a, strings.Join(at, ",")))
		}
	}
	if len(missing) == 0 {
		t.Logf("%s %s: all %d acknowledged records read back", r.scope, when, len(acked))
		return
	}
	line := fmt.Sprintf("%s: %d of %d acknowledged records lost or moved; first: %s",
		when, len(missing), len(acked), strings.Join(missing[:min(10, len(missing))], "; "))
	r.reports = append(r.reports, line)
	t.Logf("%s %s\nkilled broker's log tail:\n%s\nrestarted broker's log tail:\n%s",
		r.scope, line, logTail(r.killed, 15), logTail(p.out.String(), 30))
}

// readPowerLossTopic consumes every partition from its start to the end
// offset listed at the call: partition -> offset -> value.
func readPowerLossTopic(t *testing.T, addr string) map[int32]map[int64]string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), powerLossReadTime)
	defer cancel()
	adm, err := kgo.NewClient(kgo.SeedBrokers(addr))
	if err != nil {
		t.Fatal(err)
	}
	ends, err := kadm.NewClient(adm).ListEndOffsets(ctx, powerLossTopic)
	adm.Close()
	if err != nil {
		t.Fatalf("list end offsets: %v", err)
	}
	got := make(map[int32]map[int64]string)
	next := make(map[int32]int64)
	want := make(map[int32]int64)
	from := make(map[int32]kgo.Offset)
	for part := range int32(powerLossPartitions) {
		got[part] = make(map[int64]string)
		if o, ok := ends.Lookup(powerLossTopic, part); !ok || o.Err != nil {
			t.Logf("no end offset of partition %d (topic lost?): found %v, %v", part, ok, o.Err)
		} else if o.Offset > 0 {
			want[part] = o.Offset
		}
		from[part] = kgo.NewOffset().AtStart()
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{powerLossTopic: from}))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	logged := make(map[string]bool)
	for !caughtUp(next, want) {
		fetches := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("read back: %v with %v of %v read", ctx.Err(), next, want)
		}
		fetches.EachError(func(_ string, part int32, err error) {
			if msg := fmt.Sprintf("fetch partition %d: %v", part, err); !logged[msg] {
				logged[msg] = true
				t.Log(msg)
			}
		})
		fetches.EachRecord(func(rec *kgo.Record) {
			got[rec.Partition][rec.Offset] = string(rec.Value)
			next[rec.Partition] = rec.Offset + 1
		})
	}
	return got
}

func caughtUp(next, want map[int32]int64) bool {
	for part, end := range want {
		if next[part] < end {
			return false
		}
	}
	return true
}

// listOr joins items, or returns none for an empty list.
func listOr(items []string, none string) string {
	if len(items) == 0 {
		return none
	}
	return "[" + strings.Join(items, ", ") + "]"
}

// logTail returns the last n lines of a log.
func logTail(out string, n int) string {
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}
