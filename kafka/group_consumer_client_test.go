package kafka

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Real franz-go consumers in a KIP-848 group (kgo.ServerSideBalancer)
// against the real broker on 127.0.0.1.

// consumerGroupBroker is a test broker telling KIP-848 members to
// heartbeat every 100ms, with a session timeout of 1.5s.
func consumerGroupBroker(t *testing.T) *testBroker {
	return newTestBroker(t, func(c *Config) {
		c.Groups.ConsumerHeartbeatInterval = 100 * time.Millisecond
		c.Groups.ConsumerSessionTimeout = 1500 * time.Millisecond
	})
}

// describeConsumerGroup sends ConsumerGroupDescribe for one group.
func describeConsumerGroup(t *testing.T, b *testBroker, group string) kmsg.ConsumerGroupDescribeResponseGroup {
	t.Helper()
	req := kmsg.NewPtrConsumerGroupDescribeRequest()
	req.Groups = []string{group}
	resp, err := req.RequestWith(testCtx(t), b.client())
	if err != nil || len(resp.Groups) != 1 {
		t.Fatalf("ConsumerGroupDescribe: %v %+v", err, resp)
	}
	return resp.Groups[0]
}

func TestConsumer848ClientMemberLeaves(t *testing.T) {
	for _, c := range []struct {
		name     string
		balancer kgo.GroupBalancer
		assignor string
		static   bool
	}{
		{"uniform", kgo.StickyBalancer(), "uniform", false},
		{"range", kgo.RangeBalancer(), "range", false},
		// A static member's leave (epoch -2) keeps its partitions
		// until its session times out.
		{"uniform/static", kgo.StickyBalancer(), "uniform", true},
	} {
		t.Run(c.name, func(t *testing.T) {
			testConsumer848MemberLeaves(t, c.balancer, c.assignor, c.static)
		})
	}
}

func testConsumer848MemberLeaves(t *testing.T, balancer kgo.GroupBalancer, assignor string, static bool) {
	b := consumerGroupBroker(t)
	const topic, group = "kip848", "kip848-group"
	b.createTopic(topic, 6, nil)
	produceValues(t, b, topic, 6, "a", 300)
	l := newLedger()
	opts := func(name string) []kgo.Opt {
		o := []kgo.Opt{kgo.ServerSideBalancer(), kgo.Balancers(balancer)}
		if static {
			o = append(o, kgo.InstanceID("instance-"+name))
		}
		return o
	}
	ms := []*testConsumer{
		startMember(t, b, l, "n0", group, topic, opts("n0")...),
		startMember(t, b, l, "n1", group, topic, opts("n1")...),
		startMember(t, b, l, "n2", group, topic, opts("n2")...),
	}
	waitOwned(t, 6, []int{2, 2, 2}, ms...)
	d := describeConsumerGroup(t, b, group)
	if d.ErrorCode != 0 || d.AssignorName != assignor || len(d.Members) != 3 {
		t.Fatalf("described %+v", d)
	}
	lg, err := b.admin().ListGroups(testCtx(t))
	if err != nil || lg[group].GroupType != "consumer" || lg[group].ProtocolType != "consumer" {
		t.Fatalf("listed %+v %v", lg, err)
	}
	ms[2].stop()
	waitOwned(t, 6, []int{3, 3}, ms[0], ms[1])
	produceValues(t, b, topic, 6, "b", 300)
	waitFor(t, "every record consumed and committed", func() bool {
		return l.unique() == 600 && l.committedTotal() == 600
	})
	if len(l.again) > 0 {
		t.Fatalf("records consumed again after being committed: %v", l.again)
	}
	offs, err := b.admin().FetchOffsets(testCtx(t), group)
	if err != nil {
		t.Fatal(err)
	}
	for p := int32(0); p < 6; p++ {
		if o, ok := offs.Lookup(topic, p); !ok || o.At != 100 {
			t.Fatalf("committed offset of partition %d: %+v", p, o)
		}
	}
	waitFor(t, "the group to be Stable with two members", func() bool {
		d := describeConsumerGroup(t, b, group)
		return d.State == "Stable" && len(d.Members) == 2
	})
}

func TestConsumer848ClientRegexPicksUpNewTopic(t *testing.T) {
	b := consumerGroupBroker(t)
	b.createTopic("rx-a", 2, nil)
	b.createTopic("other", 1, nil)
	seen := make(chan string, 100)
	cl := b.client(kgo.ConsumerGroup("rx-group"), kgo.ConsumeRegex(), kgo.ConsumeTopics("rx-.*"),
		kgo.ServerSideBalancer(), kgo.Balancers(kgo.StickyBalancer()), kgo.MetadataMinAge(200*time.Millisecond), kgo.MetadataMaxAge(time.Second),
		kgo.FetchMaxWait(100*time.Millisecond), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			cl.PollFetches(ctx).EachRecord(func(r *kgo.Record) { seen <- r.Topic + "=" + string(r.Value) })
		}
	}()
	defer func() {
		cancel()
		<-done
		cl.Close()
	}()
	produceValues(t, b, "rx-a", 2, "a", 1)
	produceValues(t, b, "other", 1, "o", 1)
	if got := waitValue(t, seen); got != "rx-a=a-0" {
		t.Fatalf("first record %q", got)
	}
	b.createTopic("rx-b", 1, nil)
	produceValues(t, b, "rx-b", 1, "b", 1)
	if got := waitValue(t, seen); got != "rx-b=b-0" {
		t.Fatalf("second record %q", got)
	}
	d := describeConsumerGroup(t, b, "rx-group")
	if len(d.Members) != 1 || len(d.Members[0].Assignment.TopicPartitions) != 2 {
		t.Fatalf("described %+v", d)
	}
}

// waitValue returns the next value from ch, failing after 10s.
func waitValue(t *testing.T, ch <-chan string) string {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(10 * time.Second):
		t.Fatal("no record in 10s")
		return ""
	}
}
