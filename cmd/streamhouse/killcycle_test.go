package main

import (
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// The kill-cycle test's shape.
const (
	// killCycles is how many times the broker is killed.
	killCycles = 10
	// killBudget stops starting new cycles once the test has run this long
	// (a slow machine, -race), so the test stays bounded in time.
	killBudget = 3 * time.Minute
	// killSegmentBytes is the topic's segment.bytes: tiny, so that under
	// the load segments roll, seal and upload dozens of times a second.
	killSegmentBytes = 8 << 10
	// killMinAcks and killSpanAcks place the kill: after
	// killMinAcks+rand(killSpanAcks) acknowledgements of the cycle.
	killMinAcks  = 200
	killSpanAcks = 3000
	// killSeedEnv, when set, gives the seed (to replay a failure).
	killSeedEnv = "STREAMHOUSE_TEST_KILL_SEED"
)

// TestProcessKillDuringRollAndUpload is the whole-broker version of
// log's TestCrashRecovery: killCycles times, it starts the broker binary
// on the same data directory (local object store) with 8 KiB segments,
// runs an idempotent acks=all franz-go load, SIGKILLs the broker after a
// random number of acknowledgements (seeded; the seed is printed), and
// restarts it. Each restart and a final one read the whole topic back:
// every acknowledged record is at its offset exactly once, offsets have
// no gap, no value is stored twice. With rolls and uploads happening all
// the time, kills land during rolls (seal, fsync, new segment, producer
// snapshot) and uploads (put, meta row, local delete).
func TestProcessKillDuringRollAndUpload(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv(killSeedEnv); s != "" {
		var err error
		if seed, err = strconv.ParseUint(s, 10, 64); err != nil {
			t.Fatalf("%s=%q: %v", killSeedEnv, s, err)
		}
	}
	t.Logf("seed %d (replay with %s=%d)", seed, killSeedEnv, seed)
	rng := rand.New(rand.NewPCG(seed, 0x5eed))

	dir := t.TempDir()
	led := newLedger()
	const topic = "kill"
	start := time.Now()
	cycles := 0
	for ; cycles < killCycles; cycles++ {
		if cycles > 0 && time.Since(start) > killBudget {
			t.Logf("stopping after %d cycles: the %s budget is spent", cycles, killBudget)
			break
		}
		killCycle(t, dir, topic, cycles, killMinAcks+rng.IntN(killSpanAcks), led)
		if t.Failed() {
			t.FailNow()
		}
	}

	p := startBroker(t, nil, localArgs(dir)...)
	p.ready(t)
	verifyLog(t, led, readAll(t, p.listenAddr(t, "kafka"), topic))
	p.stop(t)
	t.Logf("%d kill cycles in %s", cycles, time.Since(start).Round(time.Millisecond))
}

// killCycle starts the broker on dir, checks the log against the ledger
// (cycle 0 creates the topic instead), runs the load until it has killAfter
// more acknowledgements, and SIGKILLs the broker.
func killCycle(t *testing.T, dir, topic string, cycle, killAfter int, led *ledger) {
	t.Helper()
	p := startBroker(t, nil, localArgs(dir)...)
	httpAddr := p.ready(t)
	seed := p.listenAddr(t, "kafka")
	if cycle == 0 {
		createTopic(t, seed, topic, 2, map[string]string{"segment.bytes": strconv.Itoa(killSegmentBytes)})
	} else {
		verifyLog(t, led, readAll(t, seed, topic))
	}

	// Errors are expected only once the broker is killed (the client then
	// fails what it still holds when it is closed).
	var killed atomic.Bool
	cl := newProducer(t, seed, 2000)
	defer cl.Close()
	ld := startLoad(cl, led, topic, fmt.Sprintf("c%d", cycle),
		loadConfig{tick: 5 * time.Millisecond, perTick: 10, valueSize: 200, max: 100_000, maxTime: 2 * time.Minute},
		func(error) bool { return killed.Load() })
	defer ld.stop()
	before := ld.acked.Load()
	waitFor(t, time.Minute, fmt.Sprintf("%d acknowledgements before the kill", killAfter), func() (bool, string) {
		if !p.alive() {
			t.Fatalf("broker exited under load; log:\n%s", p.out.String())
		}
		return ld.acked.Load()-before >= int64(killAfter), ld.String()
	})
	m, err := scrape(httpAddr, metricRolls, metricUploads)
	if err != nil {
		t.Fatal(err)
	}

	killed.Store(true)
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	select {
	case <-p.done:
	case <-time.After(stopTimeout):
		t.Fatalf("broker still running %s after SIGKILL", stopTimeout)
	}
	ld.stop()
	cl.Close()
	// Uploads beyond rolls are segments the previous kill left sealed but
	// not uploaded, uploaded after this start: a kill inside that window.
	t.Logf("cycle %d: killed after %d acknowledgements, %v rolls and %v uploads; load: %s",
		cycle, ld.acked.Load()-before, m[metricRolls], m[metricUploads], ld)
	if m[metricRolls] < 1 {
		t.Errorf("cycle %d: no segment rolled before the kill (%s = %v): the test did not exercise rolls", cycle, metricRolls, m[metricRolls])
	}
	for _, e := range led.errs() {
		t.Errorf("cycle %d: producer error before the kill: %s", cycle, e)
	}
}
