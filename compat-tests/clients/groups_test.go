package clients

import (
	"context"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/streamhouse/streamhouse/compat-tests/harness"
)

// TestGroupsSameTopic: one topic, its records produced once; a sarama group,
// a Java kafka-clients group with group.protocol=classic, another with
// group.protocol=consumer (KIP-848) and a confluent-kafka group, each with its
// own group ID, consume it at the same time (parallel subtests, at most
// -parallel at once). Each reads every record exactly once, and each group's
// committed offsets (read back with kadm) equal the end offsets.
func TestGroupsSameTopic(t *testing.T) {
	b := harness.Start(t)
	topic := harness.Topic(t)
	harness.CreateTopic(t, b, topic, 3)
	want := harness.Records(60, 3, "groups-same-topic", time.Now())
	harness.Produce(t, b, topic, want, produceCodec(t, "lz4"))
	n := strconv.Itoa(len(want))
	cases := []struct {
		name string
		read func(t *testing.T, group string) ([]harness.Record, []map[string]any)
	}{
		{"sarama", func(t *testing.T, group string) ([]harness.Record, []map[string]any) {
			return saramaGroupConsume(t, b, topic, group, len(want)), nil
		}},
		{"java-classic", func(t *testing.T, group string) ([]harness.Record, []map[string]any) {
			return javaCompat(t, "", "group", b.Bootstrap(), topic, n, group, "classic")
		}},
		{"java-consumer", func(t *testing.T, group string) ([]harness.Record, []map[string]any) {
			return javaCompat(t, "", "group", b.Bootstrap(), topic, n, group, "consumer")
		}},
		{"confluent", func(t *testing.T, group string) ([]harness.Record, []map[string]any) {
			return confluent.run(t, "", "group", b.Bootstrap(), topic, n, group)
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			group := "g-" + c.name + "-" + topic
			got, events := c.read(t, group)
			harness.CheckRecords(t, got, want, harness.Check{})
			if events != nil {
				ev := harness.Events(events, "consumed")
				if len(ev) != 1 || harness.Num(ev[0], "committed_total") != int64(len(want)) {
					t.Errorf("consumed events %v; want committed offsets adding up to %d", ev, len(want))
				}
			}
			checkCommittedAtEnd(t, b, group, topic)
		})
	}
}

// checkCommittedAtEnd polls (up to 30 s) until group's committed offsets,
// fetched with kadm (OffsetFetch), equal topic's end offsets in every
// partition.
func checkCommittedAtEnd(t *testing.T, b harness.Broker, group, topic string) {
	t.Helper()
	adm := kadm.NewClient(harness.Client(t, b))
	harness.Eventually(t, 30*time.Second, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		end, err := adm.ListEndOffsets(ctx, topic)
		if err != nil {
			return fmt.Errorf("list end offsets: %w", err)
		}
		committed, err := adm.FetchOffsets(ctx, group)
		if err != nil {
			return fmt.Errorf("fetch offsets of %s: %w", group, err)
		}
		var bad error
		end.Each(func(e kadm.ListedOffset) {
			c, ok := committed.Lookup(topic, e.Partition)
			switch {
			case bad != nil:
			case e.Err != nil:
				bad = fmt.Errorf("partition %d: end offset: %w", e.Partition, e.Err)
			case !ok || c.Err != nil:
				bad = fmt.Errorf("group %s partition %d: no committed offset (found %v, err %v)", group, e.Partition, ok, c.Err)
			case c.At != e.Offset:
				bad = fmt.Errorf("group %s partition %d: committed %d, end offset %d", group, e.Partition, c.At, e.Offset)
			}
		})
		if bad == nil && len(end) == 0 {
			bad = fmt.Errorf("no end offsets for %s", topic)
		}
		return bad
	})
}
