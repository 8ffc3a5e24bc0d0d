package kafka

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/streamhouse/streamhouse/log"
)

// panicCatcher is a slog handler that counts handler panics the
// connection recovered from.
type panicCatcher struct {
	slog.Handler
	panics *atomic.Int32
}

func (h panicCatcher) Handle(ctx context.Context, r slog.Record) error {
	if strings.Contains(r.Message, "panicked") {
		h.panics.Add(1)
	}
	return nil
}

func (h panicCatcher) Enabled(context.Context, slog.Level) bool { return true }
func (h panicCatcher) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h panicCatcher) WithGroup(string) slog.Handler            { return h }

// fuzzSeeds are valid request frames of every served API.
func fuzzSeeds(t testing.TB) [][]byte {
	topic := "fixed"
	av := kmsg.NewPtrApiVersionsRequest()
	av.Version = 3
	md := kmsg.NewPtrMetadataRequest()
	md.Version = 12
	md.Topics = []kmsg.MetadataRequestTopic{{Topic: &topic}}
	pr := produceOne("fixed", 0, plainBatch(t, "fuzz"))
	fe := fetchReq("fixed", 0, 0, 50, 1)
	lo := kmsg.NewPtrListOffsetsRequest()
	lo.Version = 6
	lo.Topics = []kmsg.ListOffsetsRequestTopic{{Topic: topic, Partitions: []kmsg.ListOffsetsRequestTopicPartition{{Timestamp: -1, CurrentLeaderEpoch: -1}}}}
	ct := kmsg.NewPtrCreateTopicsRequest()
	ct.Version = 5
	ct.ValidateOnly = true
	ct.Topics = []kmsg.CreateTopicsRequestTopic{{Topic: "fz", NumPartitions: 1, ReplicationFactor: 1}}
	ip := kmsg.NewPtrInitProducerIDRequest()
	ip.Version = 4
	hb := kmsg.NewPtrConsumerGroupHeartbeatRequest()
	hb.Version, hb.Group, hb.MemberID, hb.RebalanceTimeoutMillis = 1, "fz", "m", 1000
	hb.SubscribedTopicRegex, hb.Topics = kmsg.StringPtr("fix.*"), []kmsg.ConsumerGroupHeartbeatRequestTopic{}
	cd := kmsg.NewPtrConsumerGroupDescribeRequest()
	cd.Version, cd.Groups = 1, []string{"fz"}
	dtp := kmsg.NewPtrDescribeTopicPartitionsRequest()
	dtp.ResponsePartitionLimit, dtp.Cursor = 1, &kmsg.DescribeTopicPartitionsRequestCursor{Topic: topic}
	dtp.Topics = []kmsg.DescribeTopicPartitionsRequestTopic{{Topic: topic}, {Topic: "nope"}}
	el := kmsg.NewPtrElectLeadersRequest()
	el.Version, el.Topics = 2, []kmsg.ElectLeadersRequestTopic{{Topic: topic, Partitions: []int32{0, 1}}}
	apa := kmsg.NewPtrAlterPartitionAssignmentsRequest()
	apa.Version = 1
	apa.Topics = []kmsg.AlterPartitionAssignmentsRequestTopic{{Topic: topic, Partitions: []kmsg.AlterPartitionAssignmentsRequestTopicPartition{{Partition: 0, Replicas: []int32{1, 2}}}}}
	lpr := kmsg.NewPtrListPartitionReassignmentsRequest()
	lpr.Topics = []kmsg.ListPartitionReassignmentsRequestTopic{{Topic: topic, Partitions: []int32{0}}}
	var out [][]byte
	for i, r := range []kmsg.Request{av, md, pr, fe, lo, ct, ip, hb, cd, dtp, el, apa, lpr} {
		out = append(out, frame(int32(i), r))
	}
	return out
}

func FuzzConnection(f *testing.F) {
	var panics atomic.Int32
	// Few partitions per topic: a mutated CreateTopics must stay cheap.
	b := newTestBrokerLogging(f, func(c *Config) { c.MaxTopicPartitions = 4 }, panicCatcher{panics: &panics})
	b.createTopic("fixed", 1, nil)
	p := mustPartition(f, b, "fixed", 0)
	for i := range 5 {
		if _, err := p.Append(context.Background(), plainBatch(f, strings.Repeat("x", i)), log.AppendOptions{}); err != nil {
			f.Fatal(err)
		}
	}
	stored := readAllBytes(f, p)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { l.Close() })

	seeds := fuzzSeeds(f)
	f.Add([]byte{})
	for _, s := range seeds {
		f.Add(s)
		f.Add(s[:len(s)/2])
		f.Add(append(append([]byte(nil), s...), 0xde, 0xad, 0xbe, 0xef))
	}
	f.Add(bytes.Join(seeds, nil))

	f.Fuzz(func(t *testing.T, data []byte) {
		client, err := net.Dial("tcp", l.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer client.Close()
		server, err := l.Accept()
		if err != nil {
			t.Fatal(err)
		}
		c := b.srv.serveConn(server)
		client.Write(data)
		client.(*net.TCPConn).CloseWrite()
		client.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
		io.Copy(io.Discard, client) // until the broker closes or the deadline
		c.close()                   // a long poll may still be waiting
		<-c.done
		if n := panics.Load(); n != 0 {
			t.Fatalf("%d handler panics", n)
		}
		if q, err := b.log.Partition("fixed", 0); err == nil {
			if got := readAllBytes(t, q); len(got) < len(stored) || !bytes.Equal(got[:len(stored)], stored) {
				t.Fatal("stored data changed")
			}
		}
	})
}
