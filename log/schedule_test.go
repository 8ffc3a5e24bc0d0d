package log

// TestRandomCrashSchedules (issue #19) runs random schedules of appends
// (plain, idempotent, pipelined with DeferSync, concurrent), rolls,
// uploads, retention, DeleteRecords, injected faults and crashes against a
// Manager whose segment directory lives on faultFS (faultfs_test.go), with
// either sync scope. Meta is a real SQLite file and the object store an
// in-memory one (faultstore_test.go, which can fail or cut short a put):
// both are outside the simulated disk and survive every crash, as a
// remote store and a synchronous=FULL database would.
//
// A model of every partition (schedule_model_test.go) records what was
// appended and what was acknowledged. After every step the live log must
// hold exactly the model's records (plus whole batches whose append
// failed, which may have been written). After every crash and reopen:
//
//   - the log start is what it was;
//   - every record acknowledged as durable (acks=all: Append returned nil,
//     Durable returned nil for DeferSync, a duplicate answered with Sync)
//     reads back at its offset with its key and value, and so does every
//     record a read showed after the previous restart (recovery fsyncs
//     what it keeps);
//   - after a kill -9 (the page cache survives) every acknowledged record
//     reads back, acks=1 ones too, unless an fsync of that partition (or
//     a syncfs) failed in that boot;
//   - offsets are contiguous from the log start, each record is one that
//     was appended to that partition at that offset, no record appears
//     twice: unacknowledged records can only have been lost as a suffix;
//   - an idempotent producer's retry of one of its last five batches in
//     the log is answered as a duplicate with the original offsets.
//
// Within a boot, a failed write, truncate, segment creation or fsync of a
// segment file must make the partition refuse appends until it is
// reopened; after a failed syncfs no append may be acknowledged as
// durable; after ENOSPC on a write appends must resume once space is
// back; the upload backlog stays within its bound, and appends are not
// refused for it once every upload is done.
//
// Each schedule's seed is printed (-v); a failure prints how to replay it,
// the operations that led to it, the simulated disk and the log's output.
// The uploader, the flusher and the concurrent steps race, so a replay
// repeats the schedule's operations exactly but not always their
// interleaving: a failure may take several replays (-count) to recur.

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"hash/crc32"
	"log/slog"
	"math/rand/v2"
	"os"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

var (
	flagSchedules = flag.Int("schedules", 0,
		"TestRandomCrashSchedules: how many random schedules to run (0: $STREAMHOUSE_SCHEDULES, else the default)")
	flagScheduleSeed = flag.Uint64("schedule.seed", 0,
		"TestRandomCrashSchedules: run only the schedule of this seed")
	flagScheduleSteps = flag.Int("schedule.steps", 0,
		"TestRandomCrashSchedules: steps per schedule (0: random, 80 to 200)")
)

// defaultSchedules keeps the default run near 15 s under -race on two
// cores; -schedules or STREAMHOUSE_SCHEDULES raises it.
const defaultSchedules = 32

// seedInRun finds a seed named in -run (".../seed=123"), so that the
// subtest name printed by a failure replays it.
var seedInRun = regexp.MustCompile(`seed=(\d+)`)

func TestRandomCrashSchedules(t *testing.T) {
	n := defaultSchedules
	if v := os.Getenv("STREAMHOUSE_SCHEDULES"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil {
			t.Fatalf("STREAMHOUSE_SCHEDULES=%q: %v", v, err)
		}
	}
	if *flagSchedules > 0 {
		n = *flagSchedules
	}
	var seeds []uint64
	if f := flag.Lookup("test.run"); f != nil {
		if m := seedInRun.FindStringSubmatch(f.Value.String()); m != nil {
			s, _ := strconv.ParseUint(m[1], 10, 64)
			seeds = []uint64{s}
		}
	}
	if *flagScheduleSeed != 0 {
		seeds = []uint64{*flagScheduleSeed}
	}
	if seeds == nil {
		base := uint64(time.Now().UnixNano()) % 1_000_000_000 * 1000
		for i := range n {
			seeds = append(seeds, base+uint64(i))
		}
	}
	var mu sync.Mutex
	var total scheduleStats
	t.Cleanup(func() { t.Logf("%d schedules: %v", len(seeds), total) })
	for _, seed := range seeds {
		t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) {
			t.Parallel() // schedules share nothing
			t.Logf("seed %d (replay: go test ./log -race -run 'TestRandomCrashSchedules/seed=%d$')", seed, seed)
			s := newSchedule(t, seed)
			s.run()
			t.Logf("sync scope %s, flush every %v: %v", s.scope, s.flush, s.stats)
			mu.Lock()
			total.add(s.stats)
			mu.Unlock()
		})
	}
}

// scheduleStats counts what schedules did.
type scheduleStats struct {
	steps, appends, acked, durable, kills, powerLosses, faults, openFailures, verified int
}

func (a *scheduleStats) add(b scheduleStats) {
	a.steps += b.steps
	a.appends += b.appends
	a.acked += b.acked
	a.durable += b.durable
	a.kills += b.kills
	a.powerLosses += b.powerLosses
	a.faults += b.faults
	a.openFailures += b.openFailures
	a.verified += b.verified
}

func (a scheduleStats) String() string {
	return fmt.Sprintf("%d steps, %d appends (%d acknowledged, %d as durable), %d kill -9, %d power losses, "+
		"%d faults injected, %d opens failed on a fault, %d records verified after restarts",
		a.steps, a.appends, a.acked, a.durable, a.kills, a.powerLosses, a.faults, a.openFailures, a.verified)
}

// schedule is one random schedule and the model it checks.
type schedule struct {
	t     *testing.T
	seed  uint64
	rng   *rand.Rand
	e     *testEnv
	dir   string
	fs    *faultFS // the current boot's mount
	m     *Manager
	flush time.Duration
	// scope is the sync scope; with SyncFilesystem the group commit is
	// the fault file system's Syncfs.
	scope SyncScope
	// store is the object store, which fails or shortens puts when told.
	store *faultStore
	// backlogAtOpen is the upload backlog when the Manager opened
	// (recovery queues every sealed local segment).
	backlogAtOpen int64
	ctx           context.Context

	// clockMu guards clock, the Manager's Now.
	clockMu sync.Mutex
	clock   time.Time

	parts []*schedPart
	// hook is the fault hook in force; diskFull means it is the
	// disk-full one.
	hook     faultHook
	diskFull bool
	// batchOf maps every value ever appended to its batch; unknown holds
	// the batches whose append failed: they may be in the log.
	batchOf map[string]*schedBatch
	unknown map[*schedBatch]bool
	// dupChecks are duplicate answers to check once the step's records
	// are matched.
	dupChecks []dupCheck
	// faulted holds the partitions whose segment fsync failed in this
	// boot: their page cache may have lost bytes.
	faulted map[*schedPart]bool
	// syncFailed means an fsync or syncfs failed in this boot: with
	// SyncFilesystem the next syncfs reports it (Linux 5.8+ does), which
	// makes every partition sticky at its next sync.
	syncFailed bool
	seenEvents int
	// seenStoreEvents counts the object-store faults already logged.
	seenStoreEvents int
	seenLosses      int
	powerLost       bool // a power loss since the last verification
	trace           []string
	step            int
	nextVal         int
	stats           scheduleStats
}

// schedPart is the model of one partition.
type schedPart struct {
	topic string
	idx   int32
	name  string
	dir   string
	p     *Partition
	// vals and at map offsets to values and back, for offsets in
	// [start, end); an offset may be missing where a failed append's
	// batch may lie.
	vals map[int64]string
	at   map[string]int64
	// start is the log start offset; end is past the last known record;
	// checked is where the live log has been read up to; durable is the
	// offset below which every record must survive any crash.
	start, end, checked, durable int64
	// sticky, once set, is the fault after which the partition must
	// refuse appends until it is reopened; noSpace means an append met
	// ENOSPC and appends must resume.
	sticky  error
	noSpace bool
	// noDurable, once set, is the failed syncfs after which no append to
	// the partition may be acknowledged as durable until it is reopened.
	noDurable error
	prod      *schedProducer
}

// schedProducer is an idempotent producer of one partition.
type schedProducer struct {
	pid     int64
	epoch   int16
	nextSeq int32
	sent    []*schedBatch // of the current epoch, in the order sent
	retry   *schedBatch   // to send again: its append failed
}

// schedBatch is one batch the schedule built; values are unique.
type schedBatch struct {
	part  *schedPart
	vals  []string
	data  []byte // as built; Append gets a copy
	pid   int64  // -1: not idempotent
	epoch int16
	seq   int32
}

// outcome is what one append returned.
type outcome struct {
	b      *schedBatch
	sync   bool
	res    AppendResult
	err    error
	durErr error // Durable's, for DeferSync appends
}

type dupCheck struct {
	b   *schedBatch
	res AppendResult
}

func newSchedule(t *testing.T, seed uint64) *schedule {
	e := newTestEnv(t)
	s := &schedule{
		t: t, seed: seed, rng: rand.New(rand.NewPCG(seed, 0x5c4ed)), e: e,
		dir: e.dir + "/segments", ctx: context.Background(),
		clock:   time.UnixMilli(1_700_000_000_000),
		batchOf: map[string]*schedBatch{}, unknown: map[*schedBatch]bool{}, faulted: map[*schedPart]bool{},
	}
	s.fs = newFaultFS(s.dir, seed)
	s.store = &faultStore{Store: e.objects}
	e.objects = s.store
	s.flush = time.Hour
	if s.rng.IntN(3) == 0 {
		s.flush = time.Duration(1+s.rng.IntN(5)) * time.Millisecond
	}
	if s.rng.IntN(4) == 0 {
		s.e.backlog = int64(4096 + s.rng.IntN(8192))
	}
	s.scope = SyncFile
	if s.rng.IntN(2) == 0 {
		s.scope = SyncFilesystem
	}
	return s
}

func (s *schedule) now() time.Time {
	s.clockMu.Lock()
	defer s.clockMu.Unlock()
	return s.clock
}

func (s *schedule) advance(d time.Duration) {
	s.clockMu.Lock()
	s.clock = s.clock.Add(d)
	s.clockMu.Unlock()
}

func (s *schedule) logf(format string, args ...any) {
	s.trace = append(s.trace, fmt.Sprintf("step %d: ", s.step)+fmt.Sprintf(format, args...))
}

// fail reports a broken invariant with what is needed to replay it.
func (s *schedule) fail(format string, args ...any) {
	s.t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "seed %d, step %d: %s\n", s.seed, s.step, fmt.Sprintf(format, args...))
	fmt.Fprintf(&b, "replay: go test ./log -race -count=1 -run 'TestRandomCrashSchedules/seed=%d$'\n", s.seed)
	b.WriteString("operations (latest last):\n")
	from := max(0, len(s.trace)-120)
	for _, l := range s.trace[from:] {
		b.WriteString("  " + l + "\n")
	}
	b.WriteString("segment file system:\n" + s.fs.dump())
	logs := strings.Split(s.e.logs.String(), "\n")
	b.WriteString("log output (tail):\n")
	for _, l := range logs[max(0, len(logs)-40):] {
		b.WriteString("  " + l + "\n")
	}
	s.t.Fatal(b.String())
}

func (s *schedule) open() error {
	cfg := Config{
		Dir: s.dir, Objects: s.e.objects, Meta: s.e.meta,
		Logger:        slog.New(slog.NewTextHandler(s.e.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		FlushInterval: s.flush, RetentionInterval: time.Hour, Now: s.now,
		SyncScope: s.scope, fs: s.fs, MaxUploadBacklog: s.e.backlog,
	}
	if s.scope == SyncFilesystem {
		cfg.syncfs = s.fs.Syncfs // this boot's: an abandoned Manager's syncfs fails
	}
	m, err := Open(s.ctx, cfg)
	if err != nil {
		return err
	}
	s.m, s.e.m = m, m
	s.backlogAtOpen = m.room.backlog.Load()
	return nil
}

// randomConfigs returns topic configs with small segments and, at random,
// retention by time or size.
func (s *schedule) randomConfigs() map[string]string {
	c := map[string]string{ConfigSegmentBytes: strconv.Itoa(1024 << s.rng.IntN(3))}
	if s.rng.IntN(2) == 0 {
		c[ConfigRetentionMs] = strconv.Itoa((2 + s.rng.IntN(10)) * 60_000)
	}
	if s.rng.IntN(2) == 0 {
		c[ConfigRetentionBytes] = strconv.Itoa(3000 + s.rng.IntN(20000))
	}
	if s.rng.IntN(3) == 0 {
		c[ConfigSegmentMs] = strconv.Itoa((1 + s.rng.IntN(5)) * 60_000)
	}
	return c
}

func (s *schedule) setup() {
	if err := s.open(); err != nil {
		s.fail("open: %v", err)
	}
	for _, tp := range []struct {
		name  string
		parts int32
	}{{"a", 2}, {"b", 1}} {
		cfg := s.randomConfigs()
		if _, err := s.m.CreateTopic(s.ctx, tp.name, tp.parts, cfg); err != nil {
			s.fail("create topic: %v", err)
		}
		for i := range tp.parts {
			sp := &schedPart{topic: tp.name, idx: i, name: fmt.Sprintf("%s-%d", tp.name, i),
				vals: map[int64]string{}, at: map[string]int64{}}
			sp.prod = &schedProducer{pid: int64(1000 + len(s.parts))}
			s.parts = append(s.parts, sp)
		}
		s.logf("create topic %s (%d partitions) %v", tp.name, tp.parts, cfg)
	}
	s.attach()
}

// attach points the model's partitions at the current Manager's.
func (s *schedule) attach() {
	for _, sp := range s.parts {
		p, err := s.m.Partition(sp.topic, sp.idx)
		if err != nil {
			s.fail("partition %s: %v", sp.name, err)
		}
		sp.p, sp.dir = p, p.dir
	}
}

// scheduleSteps are the operations a schedule draws from, with weights.
var scheduleSteps = []struct {
	name   string
	weight int
	run    func(*schedule)
}{
	{"append", 30, (*schedule).stepAppend},
	{"idempotent append", 12, (*schedule).stepIdempotent},
	{"pipelined appends", 6, (*schedule).stepPipeline},
	{"concurrent burst", 6, (*schedule).stepBurst},
	{"rolls racing a failing fsync", 4, (*schedule).stepRollRace},
	{"roll", 6, (*schedule).stepRoll},
	{"wait for uploads", 5, (*schedule).stepUpload},
	{"housekeeping", 5, (*schedule).stepHousekeeping},
	{"delete records", 3, (*schedule).stepDeleteRecords},
	{"set configs", 2, (*schedule).stepSetConfigs},
	{"arm a fault", 8, (*schedule).stepFault},
	{"object store faults", 1, (*schedule).stepStoreFault},
	{"disk full on/off", 2, (*schedule).stepDiskFull},
	{"crash", 5, (*schedule).stepCrash},
	{"arm a crash", 4, (*schedule).stepArmCrash},
	{"full read", 3, (*schedule).stepFullRead},
}

func (s *schedule) run() {
	s.setup()
	steps := 80 + s.rng.IntN(121)
	if *flagScheduleSteps > 0 {
		steps = *flagScheduleSteps
	}
	total := 0
	for _, st := range scheduleSteps {
		total += st.weight
	}
	for s.step = 1; s.step <= steps; s.step++ {
		s.advance(time.Duration(s.rng.IntN(2000)) * time.Millisecond)
		r := s.rng.IntN(total)
		for _, st := range scheduleSteps {
			if r -= st.weight; r < 0 {
				st.run(s)
				break
			}
		}
		s.stats.steps++
		s.afterStep()
	}
	// A last power loss, so that every schedule ends with a check of what
	// is durable.
	s.step++
	s.crash(false, crashMode(s.rng.IntN(int(numCrashModes))))
	s.afterStep()
	if err := s.m.Close(); err != nil {
		s.fail("close: %v", err)
	}
	s.e.m = nil
}

func (s *schedule) pick() *schedPart { return s.parts[s.rng.IntN(len(s.parts))] }

// setHook installs h as the fault hook in force.
func (s *schedule) setHook(h faultHook) {
	s.hook = h
	s.fs.setHook(h)
}

// newBatch builds a batch of n records of unique values for sp, from its
// idempotent producer if idem.
func (s *schedule) newBatch(sp *schedPart, n int, idem bool) *schedBatch {
	return s.newPaddedBatch(sp, n, idem, 0)
}

// newPaddedBatch is newBatch with a header of pad bytes on each record, so
// that a batch spans several sectors.
func (s *schedule) newPaddedBatch(sp *schedPart, n int, idem bool, pad int) *schedBatch {
	ts := s.now().UnixMilli()
	b := &schedBatch{part: sp, pid: -1}
	recs := make([]Record, n)
	for i := range recs {
		s.nextVal++
		v := fmt.Sprintf("%s#%d", sp.name, s.nextVal)
		b.vals = append(b.vals, v)
		recs[i] = Record{Key: []byte("k" + v), Value: []byte(v), Timestamp: ts}
		if pad > 0 {
			recs[i].Headers = []Header{{Key: "pad", Value: bytes.Repeat([]byte{'p'}, pad)}}
		}
		s.batchOf[v] = b
	}
	codec := CodecNone
	if s.rng.IntN(16) == 0 {
		codec = CodecLZ4
	}
	data, err := EncodeBatch(recs, codec, ts)
	if err != nil {
		s.fail("encode: %v", err)
	}
	b.data = data
	if idem {
		pr := sp.prod
		b.pid, b.epoch, b.seq = pr.pid, pr.epoch, pr.nextSeq
		pr.nextSeq += int32(n)
		setProducer(b.data, b.pid, b.epoch, b.seq)
	}
	return b
}

// setProducer stamps producer ID, epoch and base sequence into a batch
// and fixes its CRC, as idemBatch does.
func setProducer(b []byte, pid int64, epoch int16, seq int32) {
	be := binary.BigEndian
	be.PutUint64(b[offProducerID:], uint64(pid))
	be.PutUint16(b[offProducerEpoch:], uint16(epoch))
	be.PutUint32(b[offBaseSequence:], uint32(seq))
	be.PutUint32(b[offCRC:], crc32.Checksum(b[offAttributes:], castagnoli))
}

// append appends b once and returns the outcome, checking that a refused
// append wrote nothing and that a sticky partition refuses.
func (s *schedule) append(b *schedBatch, opts AppendOptions) outcome {
	sp := b.part
	_, hwm0 := sp.p.Offsets()
	res, err := sp.p.Append(s.ctx, bytes.Clone(b.data), opts)
	o := outcome{b: b, sync: opts.Sync, res: res, err: err}
	if opts.DeferSync && err == nil {
		if res.Durable == nil {
			s.fail("DeferSync append without Durable")
		}
		o.durErr = res.Durable()
	}
	s.stats.appends++
	if err == nil && sp.sticky != nil {
		s.logf("append %s %s: acknowledged at %d-%d", sp.name, b, res.BaseOffset, res.LastOffset)
		s.fail("append to %s acknowledged after %v: a failed write or fsync must make the partition refuse appends until it is reopened",
			sp.name, sp.sticky)
	}
	if (errors.Is(err, ErrDiskFull) || errors.Is(err, ErrUploadBacklog)) && !s.fs.crashed() {
		if _, hwm1 := sp.p.Offsets(); hwm1 != hwm0 {
			s.fail("append to %s refused with %v moved the high watermark %d -> %d", sp.name, err, hwm0, hwm1)
		}
	}
	return o
}

func (b *schedBatch) String() string {
	s := fmt.Sprintf("[%s..%s]", b.vals[0], b.vals[len(b.vals)-1][strings.IndexByte(b.vals[0], '#'):])
	if b.pid >= 0 {
		s += fmt.Sprintf(" pid %d epoch %d seq %d", b.pid, b.epoch, b.seq)
	}
	return s
}

func (o outcome) String() string {
	switch {
	case o.err != nil:
		return "error: " + o.err.Error()
	case o.res.Duplicate:
		return fmt.Sprintf("duplicate of %d-%d", o.res.BaseOffset, o.res.LastOffset)
	case o.durErr != nil:
		return fmt.Sprintf("written at %d-%d, Durable: %v", o.res.BaseOffset, o.res.LastOffset, o.durErr)
	}
	return fmt.Sprintf("at %d-%d", o.res.BaseOffset, o.res.LastOffset)
}

// afterStep reopens after a crash, or examines the faults injected and
// checks every partition's new records.
func (s *schedule) afterStep() {
	if !s.fs.crashed() {
		s.examineFaults()
	}
	for _, sp := range s.parts {
		if s.fs.crashed() || !s.liveCheck(sp) {
			break
		}
	}
	if s.fs.crashed() {
		s.dupChecks = nil
		s.reopen()
		return
	}
	for _, d := range s.dupChecks {
		s.checkDuplicate(d)
	}
	s.dupChecks = nil
	s.checkBacklog()
}

// examineFaults sets what the faults injected in this step require:
// a failed write, truncate, creation or fsync of a segment file makes
// its partition sticky; ENOSPC on a write or creation must not.
func (s *schedule) examineFaults() {
	evs := s.fs.events()
	probe, probeSync := map[*schedPart]bool{}, map[*schedPart]bool{}
	for _, ev := range evs[s.seenEvents:] {
		s.stats.faults++
		s.logf("  fault injected: %v", ev)
		s.syncFailed = s.syncFailed || ev.op == opSync || ev.op == opSyncfs
		if ev.op == opSyncfs {
			for _, sp := range s.parts {
				s.faulted[sp] = true
				if sp.noDurable == nil {
					sp.noDurable = fmt.Errorf("%v", ev)
					probeSync[sp] = true
				}
			}
			continue
		}
		sp := s.partOfPath(ev.path)
		if sp == nil || !strings.HasSuffix(ev.path, ".log") {
			continue
		}
		switch {
		case ev.kind == faultNoSpace && (ev.op == opWrite || ev.op == opCreate):
			sp.noSpace = true
		case ev.op == opWrite || ev.op == opSync || ev.op == opTruncate || ev.op == opCreate:
			if ev.op == opSync {
				s.faulted[sp] = true
			}
			if sp.sticky == nil {
				sp.sticky = fmt.Errorf("%v", ev)
				probe[sp] = true
			}
		}
	}
	s.seenEvents = len(evs)
	s.noteStoreFaults()
	for _, sp := range s.parts {
		if probe[sp] {
			s.probeSticky(sp)
		}
		if probeSync[sp] && !s.fs.crashed() {
			s.probeNoDurable(sp)
		}
		poisoned := s.scope == SyncFilesystem && s.syncFailed
		if sp.noSpace && !s.diskFull && sp.sticky == nil && !poisoned && !s.fs.crashed() {
			s.probeResumes(sp)
		}
	}
}

// noteStoreFaults logs the object-store faults injected since the last
// call.
func (s *schedule) noteStoreFaults() {
	evs := s.store.injected()
	for _, ev := range evs[s.seenStoreEvents:] {
		s.stats.faults++
		s.logf("  object store fault injected: %s", ev)
	}
	s.seenStoreEvents = len(evs)
}

func (s *schedule) partOfPath(path string) *schedPart {
	for _, sp := range s.parts {
		if strings.HasPrefix(path, sp.dir+"/") {
			return sp
		}
	}
	return nil
}

// withoutFaults runs f with no fault hook.
func (s *schedule) withoutFaults(f func()) {
	s.fs.setHook(nil)
	defer s.fs.setHook(s.hook)
	f()
}

// probeSticky checks that sp refuses an append after a fault.
func (s *schedule) probeSticky(sp *schedPart) {
	// The background flusher may have taken the fault: its fsync has
	// returned, but the partition learns of it when the sync ends.
	s.waitFor("the sync of "+sp.name+" to end", func() bool {
		sp.p.syncMu.Lock()
		defer sp.p.syncMu.Unlock()
		return !sp.p.syncing
	})
	b := s.newBatch(sp, 1, false)
	var o outcome
	s.withoutFaults(func() { o = s.append(b, AppendOptions{}) }) // fails the test if it succeeds
	s.logf("  probe %s after %v: %v", sp.name, sp.sticky, o)
	if s.fs.crashed() {
		return
	}
	if errors.Is(o.err, ErrDiskFull) || errors.Is(o.err, ErrUploadBacklog) {
		s.fail("%s: after %v an append was refused with %v, not with the sticky write error", sp.name, sp.sticky, o.err)
	}
	s.settle(o)
}

// probeNoDurable checks that sp refuses an acks=all append after a
// failed syncfs.
func (s *schedule) probeNoDurable(sp *schedPart) {
	b := s.newBatch(sp, 1, false)
	var o outcome
	s.withoutFaults(func() { o = s.append(b, AppendOptions{Sync: true}) })
	s.logf("  probe %s with acks=all after %v: %v", sp.name, sp.noDurable, o)
	s.settle(o) // fails the test if it was acknowledged
}

// probeResumes checks that sp takes appends again after ENOSPC.
func (s *schedule) probeResumes(sp *schedPart) {
	sp.noSpace = false
	b := s.newBatch(sp, 1, false)
	var o outcome
	s.withoutFaults(func() { o = s.append(b, AppendOptions{}) })
	s.logf("  probe %s after ENOSPC: %v", sp.name, o)
	if o.err != nil && !errors.Is(o.err, ErrUploadBacklog) && !s.fs.crashed() {
		s.fail("%s: appends did not resume once the disk had space: %v (ENOSPC must not be sticky)", sp.name, o.err)
	}
	s.settle(o)
}

func (s *schedule) stepAppend() {
	sp := s.pick()
	b := s.newBatch(sp, 1+s.rng.IntN(4), false)
	sync := s.rng.IntN(2) == 0
	o := s.append(b, AppendOptions{Sync: sync})
	s.logf("append %s %s sync=%v: %v", sp.name, b, sync, o)
	s.settle(o)
}

func (s *schedule) stepIdempotent() {
	sp := s.pick()
	pr := sp.prod
	b := pr.retry
	switch {
	case b != nil:
	case len(pr.sent) > 0 && s.rng.IntN(5) == 0:
		b = pr.sent[len(pr.sent)-1-s.rng.IntN(min(len(pr.sent), producerBatchesKept))]
	default:
		b = s.newBatch(sp, 1+s.rng.IntN(4), true)
		pr.sent = append(pr.sent, b)
	}
	s.sendIdempotent(b, s.rng.IntN(2) == 0, "")
}

func (s *schedule) sendIdempotent(b *schedBatch, sync bool, why string) {
	o := s.append(b, AppendOptions{Sync: sync})
	s.logf("idempotent append %s%s %s sync=%v: %v", b.part.name, why, b, sync, o)
	s.settle(o)
}

func (s *schedule) stepPipeline() {
	sp := s.pick()
	var outs []outcome
	var durs []func() error
	for range 2 + s.rng.IntN(3) {
		b := s.newBatch(sp, 1+s.rng.IntN(3), false)
		res, err := sp.p.Append(s.ctx, bytes.Clone(b.data), AppendOptions{Sync: true, DeferSync: true})
		s.stats.appends++
		outs = append(outs, outcome{b: b, sync: true, res: res, err: err})
		durs = append(durs, res.Durable)
	}
	for i := range outs {
		if outs[i].err == nil {
			outs[i].durErr = durs[i]()
		}
		if outs[i].err == nil && sp.sticky != nil {
			s.fail("pipelined append to %s acknowledged after %v", sp.name, sp.sticky)
		}
		s.logf("pipelined append %s %s: %v", sp.name, outs[i].b, outs[i])
		s.settle(outs[i])
	}
}

// stepBurst appends from several goroutines at once, with a roll and a
// flush among them, so that group commits, rolls and fsync failures
// interleave.
func (s *schedule) stepBurst() {
	type job struct {
		b    *schedBatch
		sync bool
	}
	var lanes [][]job
	for range 2 + s.rng.IntN(3) {
		var lane []job
		for range 1 + s.rng.IntN(4) {
			lane = append(lane, job{s.newBatch(s.pick(), 1+s.rng.IntN(3), false), s.rng.IntN(3) > 0})
		}
		lanes = append(lanes, lane)
	}
	roll, flush := s.pick(), s.pick()
	outs := make([][]outcome, len(lanes))
	var wg sync.WaitGroup
	for i, lane := range lanes {
		wg.Go(func() {
			for _, j := range lane {
				res, err := j.b.part.p.Append(s.ctx, bytes.Clone(j.b.data), AppendOptions{Sync: j.sync})
				outs[i] = append(outs[i], outcome{b: j.b, sync: j.sync, res: res, err: err})
			}
		})
	}
	var rollErr, flushErr error
	wg.Go(func() { rollErr = roll.p.Roll() })
	wg.Go(func() { flushErr = flush.p.flush() })
	wg.Wait()
	s.logf("burst: roll %s: %v, flush %s: %v", roll.name, rollErr, flush.name, flushErr)
	for _, lane := range outs {
		for _, o := range lane {
			s.stats.appends++
			s.logf("  burst append %s %s sync=%v: %v", o.b.part.name, o.b, o.sync, o)
			s.settle(o)
		}
	}
}

// stepRollRace appends with acks=all to one partition from several
// goroutines while another rolls it, and fails one of the partition's
// fsyncs (slowly), so that a roll's fsync can run while a group commit's
// fails: nothing may be acknowledged on the strength of the roll's. It
// replaces any fault armed before.
func (s *schedule) stepRollRace() {
	if s.diskFull {
		return
	}
	sp := s.pick()
	dir := sp.dir + "/"
	nth := 1 + s.rng.IntN(4)
	s.setHook(failNth(nth, opSync, faultEIO, func(p string) bool { return strings.HasPrefix(p, dir) && strings.HasSuffix(p, ".log") }))
	s.fs.setFailDelay(time.Duration(s.rng.IntN(3)) * time.Millisecond)
	var lanes [][]*schedBatch
	for range 2 + s.rng.IntN(3) {
		var lane []*schedBatch
		for range 1 + s.rng.IntN(4) {
			lane = append(lane, s.newPaddedBatch(sp, 1+s.rng.IntN(2), false, s.rng.IntN(900)))
		}
		lanes = append(lanes, lane)
	}
	rolls := 1 + s.rng.IntN(3)
	outs := make([][]outcome, len(lanes))
	var wg sync.WaitGroup
	for i, lane := range lanes {
		wg.Go(func() {
			for _, b := range lane {
				res, err := sp.p.Append(s.ctx, bytes.Clone(b.data), AppendOptions{Sync: true})
				outs[i] = append(outs[i], outcome{b: b, sync: true, res: res, err: err})
			}
		})
	}
	rollErrs := make([]error, rolls)
	wg.Go(func() {
		for i := range rollErrs {
			runtime.Gosched()
			rollErrs[i] = sp.p.Roll()
		}
	})
	wg.Wait()
	s.fs.setFailDelay(0)
	s.setHook(nil)
	s.logf("rolls of %s racing appends, fsync %d failing: %v", sp.name, nth, rollErrs)
	for _, lane := range outs {
		for _, o := range lane {
			s.stats.appends++
			s.logf("  append %s %s: %v", sp.name, o.b, o)
			s.settle(o)
		}
	}
}

func (s *schedule) stepRoll() {
	sp := s.pick()
	err := sp.p.Roll()
	s.logf("roll %s: %v", sp.name, err)
	if err == nil && sp.sticky != nil && !s.fs.crashed() {
		s.fail("%s rolled after %v", sp.name, sp.sticky)
	}
}

// waitFor polls cond until it holds, or fails the test after 15 s.
func (s *schedule) waitFor(what string, cond func() bool) {
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			s.fail("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// stepUpload waits until every sealed segment is in the object store and
// the upload backlog is empty.
func (s *schedule) stepUpload() {
	s.logf("wait for uploads")
	deadline := time.Now().Add(15 * time.Second)
	for !s.fs.crashed() {
		pending := s.pendingUploads()
		backlog := s.m.room.backlog.Load()
		if pending == "" && backlog == 0 {
			s.probeBacklog()
			return
		}
		if time.Now().After(deadline) {
			s.fail("uploads did not finish in 15 s: %s; backlog %d bytes, %d queued", pending, backlog, s.m.pendingUploads())
		}
		time.Sleep(2 * time.Millisecond) // polling: the uploader has no completion signal
	}
}

// probeBacklog checks, once every upload is done, that appends are not
// refused for the backlog.
func (s *schedule) probeBacklog() {
	sp := s.pick()
	if sp.sticky != nil || s.diskFull {
		return
	}
	var o outcome
	s.withoutFaults(func() { o = s.append(s.newBatch(sp, 1, false), AppendOptions{}) })
	s.logf("  probe %s with no upload backlog: %v", sp.name, o)
	if errors.Is(o.err, ErrUploadBacklog) {
		s.fail("%s: append refused for the upload backlog with nothing waiting for upload: %v", sp.name, o.err)
	}
	s.settle(o)
}

// checkBacklog checks that the upload backlog stays within its bound: it
// may pass it by at most one segment per partition (appends check it
// before they roll), beyond what recovery queued at open.
func (s *schedule) checkBacklog() {
	if s.e.backlog <= 0 {
		return
	}
	const maxSealed = 4096 + 2048 // the largest segment.bytes, plus a batch, index and footer
	bound := max(s.m.room.limit, s.backlogAtOpen) + int64(len(s.parts))*maxSealed
	if n := s.m.room.backlog.Load(); n > bound {
		s.fail("upload backlog %d bytes, past its bound %d (limit %d, %d at open)", n, bound, s.m.room.limit, s.backlogAtOpen)
	}
}

// pendingUploads describes the sealed segments not yet uploaded.
func (s *schedule) pendingUploads() string {
	var out []string
	for _, sp := range s.parts {
		p := sp.p
		p.mu.Lock()
		for i, seg := range p.segs {
			if seg.sealed && !seg.remote || !seg.remote && i < len(p.segs)-1 {
				out = append(out, fmt.Sprintf("%s segment %d (sealed %v)", sp.name, seg.base, seg.sealed))
			}
		}
		p.mu.Unlock()
	}
	return strings.Join(out, ", ")
}

func (s *schedule) stepHousekeeping() {
	if s.rng.IntN(2) == 0 {
		d := time.Duration(1+s.rng.IntN(10)) * time.Minute
		s.advance(d)
		s.logf("clock +%v", d)
	}
	s.m.RunHousekeeping(s.ctx)
	for _, sp := range s.parts {
		ls, _ := sp.p.Offsets()
		switch {
		case ls < sp.start:
			s.fail("%s: housekeeping moved the log start back from %d to %d", sp.name, sp.start, ls)
		case ls > sp.end:
			s.fail("%s: housekeeping moved the log start to %d, past the end %d", sp.name, ls, sp.end)
		case ls > sp.start:
			s.logf("housekeeping: %s log start %d -> %d", sp.name, sp.start, ls)
			s.dropBelow(sp, ls)
		}
	}
	s.logf("housekeeping done")
}

func (s *schedule) stepDeleteRecords() {
	sp := s.pick()
	ls, hwm := sp.p.Offsets()
	if hwm == ls {
		return
	}
	x := ls + 1 + s.rng.Int64N(hwm-ls)
	got, err := sp.p.DeleteRecordsBefore(s.ctx, x)
	s.logf("delete records of %s before %d: log start %d, %v", sp.name, x, got, err)
	if err != nil {
		return
	}
	if got != x {
		s.fail("%s: DeleteRecordsBefore(%d) left the log start at %d", sp.name, x, got)
	}
	s.dropBelow(sp, x)
	sp.durable = max(sp.durable, x) // it fsyncs the records below x first
}

func (s *schedule) stepSetConfigs() {
	topic := []string{"a", "b"}[s.rng.IntN(2)]
	cfg := s.randomConfigs()
	if err := s.m.SetTopicConfigs(s.ctx, topic, cfg); err != nil {
		s.fail("set configs of %s: %v", topic, err)
	}
	s.logf("set configs of %s: %v", topic, cfg)
}

// randomFault arms one fault on the next matching operation.
func (s *schedule) randomFault() (faultHook, string) {
	ops := []faultOp{opWrite, opWrite, opWrite, opSync, opSync, opSync, opTruncate, opCreate, opCreate,
		opSyncDir, opSyncDir, opRename, opRemove}
	if s.scope == SyncFilesystem {
		ops = append(ops, opSyncfs, opSyncfs)
	}
	op := ops[s.rng.IntN(len(ops))]
	kind := faultEIO
	switch op {
	case opWrite:
		kind = []faultKind{faultEIO, faultTorn, faultNoSpace, faultNoSpace}[s.rng.IntN(4)]
	case opCreate:
		kind = []faultKind{faultEIO, faultNoSpace}[s.rng.IntN(2)]
	case opSync:
		kind = []faultKind{faultEIO, faultEIO, faultEIO, faultNoSpace}[s.rng.IntN(4)]
	}
	where := "any file"
	var match func(string) bool
	if s.rng.IntN(2) == 0 {
		sp := s.pick()
		dir := sp.dir + "/"
		where = sp.name
		match = func(p string) bool { return strings.HasPrefix(p, dir) }
	}
	return failOnce(op, kind, match), fmt.Sprintf("%v on the next %v of %s", kind, op, where)
}

func (s *schedule) stepFault() {
	if s.diskFull {
		return
	}
	h, what := s.randomFault()
	s.setHook(h)
	s.logf("arm fault: %s", what)
}

func (s *schedule) stepStoreFault() {
	if s.rng.IntN(2) == 0 {
		n := 1 + s.rng.IntN(2)
		s.store.failNextPuts(n)
		s.logf("object store: the next %d puts fail", n)
		return
	}
	s.store.shortenNextPut()
	s.logf("object store: the next put stores half the object and reports success")
}

func (s *schedule) stepDiskFull() {
	s.diskFull = !s.diskFull
	if !s.diskFull {
		s.setHook(nil)
		s.logf("disk has space again")
		return
	}
	s.setHook(func(op faultOp, path string) faultKind {
		if op == opWrite || op == opCreate {
			return faultNoSpace
		}
		return faultNone
	})
	s.logf("disk full")
}

func (s *schedule) stepCrash() {
	if s.rng.IntN(5) < 2 {
		s.crash(true, crashDrop)
		return
	}
	s.crash(false, crashMode(s.rng.IntN(int(numCrashModes))))
}

// crash ends the boot now: kill -9, or a power loss in mode.
func (s *schedule) crash(kill bool, mode crashMode) {
	s.fs.disarmCrash()
	if kill {
		s.fs.Crash()
		s.logf("crash: kill -9")
		return
	}
	s.fs.PowerLoss(mode)
	s.logf("crash: power loss (%v)", mode)
}

func (s *schedule) stepArmCrash() {
	n := 1 + s.rng.IntN(60)
	kill := s.rng.IntN(3) == 0
	mode := crashMode(s.rng.IntN(int(numCrashModes)))
	s.fs.armCrash(n, kill, mode)
	s.logf("arm crash in %d file-system operations (kill -9 %v, power loss mode %v)", n, kill, mode)
}

func (s *schedule) stepFullRead() {
	for _, sp := range s.parts {
		recs, err := readLog(s.ctx, sp.p, sp.start)
		if err != nil {
			if s.fs.crashed() {
				return
			}
			s.fail("%s: full read: %v", sp.name, err)
		}
		_, hwm := sp.p.Offsets()
		if int64(len(recs)) != hwm-sp.start {
			s.fail("%s: full read of %d records from %d, high watermark %d", sp.name, len(recs), sp.start, hwm)
		}
		s.match(sp, recs, sp.start)
	}
	s.logf("full read of every partition")
}

// reopen abandons the crashed Manager, opens a new one on the next boot
// (with, sometimes, a fault during recovery) and checks every partition.
func (s *schedule) reopen() {
	if n := s.fs.d.powerLossCount(); n > s.seenLosses {
		s.seenLosses = n
		s.powerLost = true
		s.stats.powerLosses++
	} else {
		s.stats.kills++
	}
	s.fs.disarmCrash()
	// Every operation of the old boot fails: closing cannot sync anything.
	_ = s.m.Close()
	s.m, s.e.m = nil, nil
	s.diskFull = false
	s.setHook(nil)
	s.fs = s.fs.remount()
	// Faults of the boot that ended are not checked for stickiness (it
	// crashed), but a failed fsync lost page-cache bytes.
	evs := s.fs.events()
	for _, ev := range evs[s.seenEvents:] {
		s.stats.faults++
		s.logf("  fault injected: %v", ev)
		s.noteLostSectors(ev)
	}
	s.seenEvents = len(evs)
	if s.rng.IntN(4) == 0 {
		h, what := s.randomFault()
		s.fs.setHook(h)
		s.logf("reopen with a fault armed: %s", what)
	}
	if err := s.open(); err != nil {
		s.openFailed(err)
	} else {
		s.checkOpenFaults()
	}
	s.fs.setHook(nil)
	s.seenEvents = len(s.fs.events())
	s.attach()
	for _, sp := range s.parts {
		s.verifyRecovered(sp)
		sp.sticky, sp.noSpace, sp.noDurable = nil, false, nil
	}
	s.logf("reopened and verified (power loss %v)", s.powerLost)
	s.powerLost = false
	clear(s.faulted)
	clear(s.unknown)
	s.syncFailed = false
	s.retryProducers()
}

// noteLostSectors marks the partitions whose page cache a failed fsync or
// syncfs emptied of bytes the disk does not have: a kill -9 then loses
// them as a power loss would (faultfs_test.go).
func (s *schedule) noteLostSectors(ev faultEvent) {
	switch {
	case ev.op == opSyncfs:
		for _, sp := range s.parts {
			s.faulted[sp] = true
		}
	case ev.op == opSync:
		if sp := s.partOfPath(ev.path); sp != nil {
			s.faulted[sp] = true
		}
	}
}

// openFailed handles an Open that failed: only an injected fault may
// fail it. The broker is then restarted once more, without faults.
func (s *schedule) openFailed(err error) {
	evs := s.fs.events()[s.seenEvents:]
	if len(evs) == 0 {
		s.fail("reopen failed with no fault injected: %v", err)
	}
	s.stats.openFailures++
	s.logf("reopen failed after %v: %v", evs, err)
	for _, ev := range evs {
		s.noteLostSectors(ev)
	}
	s.fs.setHook(nil)
	if s.rng.IntN(2) == 0 {
		s.fs = s.fs.Crash()
		s.logf("crash after the failed open: kill -9")
	} else {
		s.fs = s.fs.PowerLoss(crashMode(s.rng.IntN(int(numCrashModes))))
		s.seenLosses = s.fs.d.powerLossCount()
		s.powerLost = true
		s.logf("crash after the failed open: power loss")
	}
	s.seenEvents = len(s.fs.events())
	if err := s.open(); err != nil {
		s.fail("reopen without faults: %v", err)
	}
}

// checkOpenFaults fails the test if Open succeeded although a write,
// truncate, creation or fsync of a segment file failed under it:
// recovery would then serve bytes it could not make durable.
func (s *schedule) checkOpenFaults() {
	for _, ev := range s.fs.events()[s.seenEvents:] {
		s.logf("  fault injected during open: %v", ev)
		s.stats.faults++
		if strings.HasSuffix(ev.path, ".log") &&
			(ev.op == opWrite || ev.op == opSync || ev.op == opTruncate || ev.op == opCreate) {
			s.fail("Open succeeded although %v", ev)
		}
	}
}

// retryProducers has every idempotent producer send its last batch again,
// as a producer does whose request was in flight at the crash.
func (s *schedule) retryProducers() {
	for _, sp := range s.parts {
		pr := sp.prod
		b := pr.retry
		if b == nil && len(pr.sent) > 0 {
			b = pr.sent[len(pr.sent)-1]
		}
		if b == nil {
			continue
		}
		s.sendIdempotent(b, true, " (retry after restart)")
		if s.fs.crashed() {
			return
		}
	}
	s.afterStep()
}
