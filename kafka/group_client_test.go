package kafka

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Real franz-go group consumers against the real broker on 127.0.0.1.

// groupBroker is a test broker whose coordinator rebalances at once and
// accepts short session timeouts.
func groupBroker(t *testing.T) *testBroker {
	return newTestBroker(t, func(c *Config) {
		c.Groups.InitialRebalanceDelay = -1
		c.Groups.MinSessionTimeout = 100 * time.Millisecond
	})
}

// produceValues produces n records with values prefix-0..n-1, spread
// round-robin over parts partitions, and waits for them.
func produceValues(t *testing.T, b *testBroker, topic string, parts int32, prefix string, n int) {
	t.Helper()
	p := b.client(kgo.RecordPartitioner(kgo.ManualPartitioner()))
	recs := make([]*kgo.Record, n)
	for i := range recs {
		recs[i] = &kgo.Record{Topic: topic, Partition: int32(i) % parts, Value: fmt.Appendf(nil, "%s-%d", prefix, i)}
	}
	if err := p.ProduceSync(testCtx(t), recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
}

// ledger is what a group of consumers saw: how often each value was
// consumed and, per partition, the offset committed so far. A record
// delivered below its partition's committed offset was consumed again
// after being committed.
type ledger struct {
	mu        sync.Mutex
	consumed  map[string]int
	committed map[int32]int64
	again     []string
}

func newLedger() *ledger {
	return &ledger{consumed: make(map[string]int), committed: make(map[int32]int64)}
}

func (l *ledger) deliver(recs []*kgo.Record) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, r := range recs {
		if r.Offset < l.committed[r.Partition] {
			l.again = append(l.again, fmt.Sprintf("%s (p%d@%d, committed %d)", r.Value, r.Partition, r.Offset, l.committed[r.Partition]))
		}
		l.consumed[string(r.Value)]++
	}
}

func (l *ledger) commit(recs []*kgo.Record) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, r := range recs {
		l.committed[r.Partition] = max(l.committed[r.Partition], r.Offset+1)
	}
}

func (l *ledger) unique() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.consumed)
}

func (l *ledger) committedTotal() int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	var n int64
	for _, o := range l.committed {
		n += o
	}
	return n
}

// testConsumer is one kgo group consumer running a poll loop that commits what
// it consumed before allowing the next rebalance.
type testConsumer struct {
	name   string
	cl     *kgo.Client
	cancel context.CancelFunc
	done   chan struct{}

	mu    sync.Mutex
	owned map[int32]bool
}

func startMember(t *testing.T, b *testBroker, l *ledger, name, group, topic string, opts ...kgo.Opt) *testConsumer {
	t.Helper()
	m := &testConsumer{name: name, done: make(chan struct{}), owned: make(map[int32]bool)}
	track := func(add bool) func(context.Context, *kgo.Client, map[string][]int32) {
		return func(_ context.Context, _ *kgo.Client, ps map[string][]int32) {
			m.mu.Lock()
			defer m.mu.Unlock()
			for _, p := range ps[topic] {
				if add {
					m.owned[p] = true
				} else {
					delete(m.owned, p)
				}
			}
		}
	}
	opts = append([]kgo.Opt{kgo.ConsumerGroup(group), kgo.ConsumeTopics(topic), kgo.ClientID(name),
		kgo.DisableAutoCommit(), kgo.BlockRebalanceOnPoll(), kgo.HeartbeatInterval(100 * time.Millisecond),
		kgo.FetchMaxWait(100 * time.Millisecond), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.OnPartitionsAssigned(track(true)), kgo.OnPartitionsRevoked(track(false)), kgo.OnPartitionsLost(track(false)),
	}, opts...)
	m.cl = b.client(opts...)
	ctx, cancel := context.WithCancel(context.Background())
	m.cancel = cancel
	go func() {
		defer close(m.done)
		for ctx.Err() == nil {
			recs := m.cl.PollFetches(ctx).Records()
			l.deliver(recs)
			if len(recs) > 0 && m.cl.CommitRecords(ctx, recs...) == nil {
				l.commit(recs)
			}
			m.cl.AllowRebalance()
		}
	}()
	t.Cleanup(m.stop)
	return m
}

// stop ends the poll loop and closes the client (which leaves the group).
func (m *testConsumer) stop() {
	m.cancel()
	<-m.done
	m.cl.Close()
}

func (m *testConsumer) partitions() []int32 {
	m.mu.Lock()
	defer m.mu.Unlock()
	var ps []int32
	for p := range m.owned {
		ps = append(ps, p)
	}
	sort.Slice(ps, func(i, j int) bool { return ps[i] < ps[j] })
	return ps
}

// waitOwned waits until the members own want partitions each and, together,
// every partition 0..total-1 exactly once.
func waitOwned(t *testing.T, total int, want []int, ms ...*testConsumer) {
	t.Helper()
	waitFor(t, fmt.Sprintf("members to own %v of %d partitions", want, total), func() bool {
		seen := make(map[int32]bool)
		for i, m := range ms {
			ps := m.partitions()
			if len(ps) != want[i] {
				return false
			}
			for _, p := range ps {
				seen[p] = true
			}
		}
		return len(seen) == total
	})
}

func TestGroupCooperativeStickyMemberLeaves(t *testing.T) {
	b := groupBroker(t)
	const topic = "coop"
	b.createTopic(topic, 6, nil)
	produceValues(t, b, topic, 6, "a", 300)
	l := newLedger()
	opt := kgo.Balancers(kgo.CooperativeStickyBalancer())
	ms := []*testConsumer{
		startMember(t, b, l, "c0", "coop-group", topic, opt),
		startMember(t, b, l, "c1", "coop-group", topic, opt),
		startMember(t, b, l, "c2", "coop-group", topic, opt),
	}
	waitOwned(t, 6, []int{2, 2, 2}, ms...)
	left := ms[2].partitions()
	ms[2].stop()
	waitOwned(t, 6, []int{3, 3}, ms[0], ms[1])
	for _, p := range left {
		if !slicesContain(ms[0].partitions(), p) && !slicesContain(ms[1].partitions(), p) {
			t.Fatalf("partition %d of the member that left has no owner", p)
		}
	}
	produceValues(t, b, topic, 6, "b", 300)
	waitFor(t, "every record consumed and committed", func() bool {
		return l.unique() == 600 && l.committedTotal() == 600
	})
	if len(l.again) > 0 {
		t.Fatalf("records consumed again after being committed: %v", l.again)
	}
	offs, err := b.admin().FetchOffsets(testCtx(t), "coop-group")
	if err != nil {
		t.Fatal(err)
	}
	for p := int32(0); p < 6; p++ {
		if o, ok := offs.Lookup(topic, p); !ok || o.At != 100 {
			t.Fatalf("committed offset of partition %d: %+v", p, o)
		}
	}
}

func slicesContain(ps []int32, p int32) bool {
	for _, q := range ps {
		if q == p {
			return true
		}
	}
	return false
}

func TestGroupRangeEager(t *testing.T) {
	b := groupBroker(t)
	const topic = "rng"
	b.createTopic(topic, 4, nil)
	l := newLedger()
	opt := kgo.Balancers(kgo.RangeBalancer())
	m0 := startMember(t, b, l, "r0", "range-group", topic, opt)
	m1 := startMember(t, b, l, "r1", "range-group", topic, opt)
	waitOwned(t, 4, []int{2, 2}, m0, m1)
	ctx := testCtx(t)
	dg, err := b.admin().DescribeGroups(ctx, "range-group")
	if err != nil {
		t.Fatal(err)
	}
	g := dg["range-group"]
	if g.Err != nil || g.State != "Stable" || g.Protocol != "range" || g.ProtocolType != "consumer" || len(g.Members) != 2 {
		t.Fatalf("described %+v", g)
	}
	if got := dg.AssignedPartitions()[topic]; len(got) != 4 {
		t.Fatalf("assigned %v", got)
	}
	produceValues(t, b, topic, 4, "r", 200)
	waitFor(t, "200 records", func() bool { return l.unique() == 200 && l.committedTotal() == 200 })
	for v, n := range l.consumed {
		if n != 1 {
			t.Fatalf("%s consumed %d times", v, n)
		}
	}
}

// killDialer dials normally until killed; then it closes every connection
// it made and refuses new ones: a client process that died.
type killDialer struct {
	mu     sync.Mutex
	killed bool
	conns  []net.Conn
}

func (d *killDialer) dial(ctx context.Context, network, host string) (net.Conn, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.killed {
		return nil, errors.New("killed")
	}
	c, err := (&net.Dialer{}).DialContext(ctx, network, host)
	if err == nil {
		d.conns = append(d.conns, c)
	}
	return c, err
}

func (d *killDialer) kill() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.killed = true
	for _, c := range d.conns {
		c.Close()
	}
}

func TestGroupDeadConsumerLosesPartitionsAfterSessionTimeout(t *testing.T) {
	b := groupBroker(t)
	const topic, session = "kill", 1500 * time.Millisecond
	b.createTopic(topic, 4, nil)
	l := newLedger()
	kd := &killDialer{}
	opts := []kgo.Opt{kgo.SessionTimeout(session), kgo.Balancers(kgo.RangeBalancer())}
	victim := startMember(t, b, l, "victim", "kill-group", topic, append(opts, kgo.Dialer(kd.dial), kgo.RetryTimeout(time.Second))...)
	survivor := startMember(t, b, l, "survivor", "kill-group", topic, opts...)
	waitOwned(t, 4, []int{2, 2}, victim, survivor)
	killed := time.Now()
	kd.kill()
	waitOwned(t, 4, []int{4}, survivor)
	if took := time.Since(killed); took < session-300*time.Millisecond {
		t.Fatalf("partitions moved %v after the kill, before the %v session timeout", took, session)
	}
	dg, err := b.admin().DescribeGroups(testCtx(t), "kill-group")
	if err != nil || len(dg["kill-group"].Members) != 1 || dg["kill-group"].Members[0].ClientID != "survivor" {
		t.Fatalf("described %+v %v", dg["kill-group"], err)
	}
	produceValues(t, b, topic, 4, "k", 40)
	waitFor(t, "the survivor to consume every record", func() bool { return l.unique() == 40 })
}

func TestGroupCommitsSurviveRestart(t *testing.T) {
	b := groupBroker(t)
	const topic, group = "persist", "persist-group"
	b.createTopic(topic, 2, nil)
	produceValues(t, b, topic, 2, "p", 100) // 50 per partition
	ctx := testCtx(t)
	c := b.client(kgo.ConsumerGroup(group), kgo.ConsumeTopics(topic), kgo.DisableAutoCommit())
	for consumed := 0; consumed < 100; {
		consumed += len(c.PollFetches(ctx).Records())
	}
	leaderEpoch := int32(0)
	var commitErr error
	c.CommitOffsetsSync(ctx, map[string]map[int32]kgo.EpochOffset{topic: {0: {Epoch: leaderEpoch, Offset: 50}, 1: {Epoch: leaderEpoch, Offset: 20}}},
		func(_ *kgo.Client, _ *kmsg.OffsetCommitRequest, resp *kmsg.OffsetCommitResponse, err error) {
			commitErr = err
			for _, t := range resp.Topics {
				for _, p := range t.Partitions {
					if p.ErrorCode != 0 && commitErr == nil {
						commitErr = kerr.ErrorForCode(p.ErrorCode)
					}
				}
			}
		})
	if commitErr != nil {
		t.Fatal(commitErr)
	}
	c.Close()
	b.restart()

	adm := b.admin()
	dg, err := adm.DescribeGroups(ctx, group)
	if err != nil || dg[group].State != "Empty" {
		t.Fatalf("described after restart %+v %v", dg[group], err)
	}
	lg, err := adm.ListGroups(ctx)
	if err != nil || !slicesContainString(lg.Groups(), group) {
		t.Fatalf("listed after restart %v %v", lg.Groups(), err)
	}
	offs, err := adm.FetchOffsets(ctx, group)
	if err != nil {
		t.Fatal(err)
	}
	if o, _ := offs.Lookup(topic, 0); o.At != 50 || o.LeaderEpoch != 0 {
		t.Fatalf("partition 0 after restart %+v", o)
	}
	if o, _ := offs.Lookup(topic, 1); o.At != 20 {
		t.Fatalf("partition 1 after restart %+v", o)
	}
	c2 := b.client(kgo.ConsumerGroup(group), kgo.ConsumeTopics(topic), kgo.DisableAutoCommit(),
		kgo.FetchMaxWait(100*time.Millisecond))
	var got []*kgo.Record
	for len(got) < 30 {
		got = append(got, c2.PollFetches(ctx).Records()...)
		if ctx.Err() != nil {
			t.Fatalf("consumed %d of 30 after restart", len(got))
		}
	}
	for _, r := range got {
		if r.Partition != 1 || r.Offset < 20 {
			t.Fatalf("consumed %s p%d@%d, below the committed offset", r.Value, r.Partition, r.Offset)
		}
	}
}

func slicesContainString(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

func TestGroupAdmin(t *testing.T) {
	b := groupBroker(t)
	const topic, group = "adm", "admin-group"
	b.createTopic(topic, 3, nil)
	b.createTopic("other", 1, nil)
	produceValues(t, b, topic, 3, "x", 30)
	adm := b.admin()
	l := newLedger()
	m := startMember(t, b, l, "a0", group, topic)
	waitOwned(t, 3, []int{3}, m)
	waitFor(t, "the member to commit everything", func() bool { return l.committedTotal() == 30 })
	m.cancel() // the member stays in the group but consumes no more
	<-m.done
	produceValues(t, b, topic, 3, "y", 15) // the lag
	t.Run("Active", func(t *testing.T) { checkActiveGroupAdmin(t, adm, group, topic) })
	m.cl.Close() // leaves: the group is Empty
	t.Run("Empty", func(t *testing.T) { checkEmptyGroupAdmin(t, adm, group, topic) })
}

// checkActiveGroupAdmin checks kadm against a group with one member, a
// lag of 15, subscribed to topic.
func checkActiveGroupAdmin(t *testing.T, adm *kadm.Client, group, topic string) {
	ctx := testCtx(t)
	dg, err := adm.DescribeGroups(ctx, group)
	g := dg[group]
	if err != nil || g.State != "Stable" || g.Protocol != "cooperative-sticky" || len(g.Members) != 1 || g.Members[0].ClientID != "a0" {
		t.Fatalf("described %+v %v", g, err)
	}
	for _, c := range []struct {
		states []string
		want   bool
	}{{nil, true}, {[]string{"Stable"}, true}, {[]string{"stable"}, true}, {[]string{"Empty", "Dead"}, false}} {
		lg, err := adm.ListGroups(ctx, c.states...)
		if err != nil || slicesContainString(lg.Groups(), group) != c.want {
			t.Fatalf("ListGroups(%v) = %v, %v", c.states, lg.Groups(), err)
		}
	}
	lags, err := adm.Lag(ctx, group)
	lag := lags[group]
	if err != nil || lag.Error() != nil || lag.Lag.Total() != 15 {
		t.Fatalf("lag %+v %v", lag, err)
	}
	dr, err := adm.DeleteGroups(ctx, group)
	if err != nil || !errors.Is(dr[group].Err, kerr.NonEmptyGroup) {
		t.Fatalf("DeleteGroups %+v %v", dr, err)
	}
	do, err := adm.DeleteOffsets(ctx, group, kadm.TopicsSet{topic: {0: {}}})
	if err != nil {
		t.Fatal(err)
	}
	if e, _ := do.Lookup(topic, 0); !errors.Is(e, kerr.GroupSubscribedToTopic) {
		t.Fatalf("DeleteOffsets of a subscribed topic: %v", e)
	}
	var os kadm.Offsets
	os.Add(kadm.Offset{Topic: "other", Partition: 0, At: 3, LeaderEpoch: -1})
	cr, err := adm.CommitOffsets(ctx, group, os)
	if err == nil {
		err = cr.Error()
	}
	if !errors.Is(err, kerr.UnknownMemberID) {
		t.Fatalf("simple commit to a group with members: %v", err)
	}
}

// checkEmptyGroupAdmin checks kadm against the same group once its member
// left: simple commits, OffsetDelete and DeleteGroups now work.
func checkEmptyGroupAdmin(t *testing.T, adm *kadm.Client, group, topic string) {
	ctx := testCtx(t)
	var os kadm.Offsets
	os.Add(kadm.Offset{Topic: "other", Partition: 0, At: 3, LeaderEpoch: -1, Metadata: "meta"})
	if cr, err := adm.CommitOffsets(ctx, group, os); err != nil || cr.Error() != nil {
		t.Fatalf("simple commit to an empty group: %v %v", err, cr.Error())
	}
	do, err := adm.DeleteOffsets(ctx, group, kadm.TopicsSet{topic: {0: {}}, "nope": {0: {}}})
	if err != nil {
		t.Fatal(err)
	}
	if e, _ := do.Lookup(topic, 0); e != nil {
		t.Fatalf("DeleteOffsets: %v", e)
	}
	if e, _ := do.Lookup("nope", 0); !errors.Is(e, kerr.UnknownTopicOrPartition) {
		t.Fatalf("DeleteOffsets of an unknown topic: %v", e)
	}
	offs, err := adm.FetchOffsets(ctx, group)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := offs.Lookup(topic, 0); ok {
		t.Fatal("deleted offset still there")
	}
	if o, ok := offs.Lookup("other", 0); !ok || o.At != 3 || o.Metadata != "meta" {
		t.Fatalf("other offset %+v", o)
	}
	if o, ok := offs.Lookup(topic, 1); !ok || o.At != 10 {
		t.Fatalf("offset of partition 1 %+v", o)
	}
	dr, err := adm.DeleteGroups(ctx, group)
	if err != nil || dr[group].Err != nil {
		t.Fatalf("DeleteGroups %+v %v", dr, err)
	}
	offs, err = adm.FetchOffsets(ctx, group)
	if err != nil || len(offs) != 0 {
		t.Fatalf("offsets after DeleteGroups %v %v", offs, err)
	}
	dg, err := adm.DescribeGroups(ctx, group)
	if err == nil {
		err = dg[group].Err
	}
	if !errors.Is(err, kerr.GroupIDNotFound) {
		t.Fatalf("describe a deleted group: %v", err)
	}
}
