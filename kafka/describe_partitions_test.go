package kafka

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// The expectations below are what Apache Kafka 4.4 (single-node KRaft,
// node 1) answered to the same requests on the same topics.

// describePartitions sends one DescribeTopicPartitions request.
func (b *testBroker) describePartitions(t *testing.T, limit int32, cursor *kmsg.DescribeTopicPartitionsRequestCursor, topics ...string) *kmsg.DescribeTopicPartitionsResponse {
	t.Helper()
	req := kmsg.NewPtrDescribeTopicPartitionsRequest()
	req.ResponsePartitionLimit = limit
	req.Cursor = cursor
	for _, name := range topics {
		rt := kmsg.NewDescribeTopicPartitionsRequestTopic()
		rt.Topic = name
		req.Topics = append(req.Topics, rt)
	}
	return b.raw().roundTrip(1, req).(*kmsg.DescribeTopicPartitionsResponse)
}

// describedPartitions flattens an answer to "topic:error" for a topic with
// an error and "topic/partition" per described partition, plus ">topic/p"
// for the next cursor.
func describedPartitions(resp *kmsg.DescribeTopicPartitionsResponse) []string {
	var out []string
	for _, dt := range resp.Topics {
		name := "<nil>"
		if dt.Topic != nil {
			name = *dt.Topic
		}
		if dt.ErrorCode != 0 {
			out = append(out, fmt.Sprintf("%s:%s", name, kerr.ErrorForCode(dt.ErrorCode).(*kerr.Error).Message))
			continue
		}
		if len(dt.Partitions) == 0 {
			out = append(out, name+"/-")
		}
		for _, p := range dt.Partitions {
			out = append(out, fmt.Sprintf("%s/%d", name, p.Partition))
		}
	}
	if c := resp.NextCursor; c != nil {
		out = append(out, fmt.Sprintf(">%s/%d", c.Topic, c.Partition))
	}
	return out
}

func TestDescribeTopicPartitionsPaging(t *testing.T) {
	b := newTestBroker(t, nil)
	b.createTopic("dtp-a", 3, nil)
	b.createTopic("dtp-b", 3, nil)
	ids := make(map[string][16]byte)
	md := kmsg.NewPtrMetadataRequest()
	md.Version = 12
	for _, mt := range b.raw().roundTrip(1, md).(*kmsg.MetadataResponse).Topics {
		ids[*mt.Topic] = mt.TopicID
	}

	for _, tc := range []struct {
		name   string
		topics []string
	}{
		{"named", []string{"dtp-b", "dtp-a"}},
		{"all topics", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got []string
			var cursor *kmsg.DescribeTopicPartitionsRequestCursor
			for page := 0; ; page++ {
				if page > 10 {
					t.Fatalf("cursor never ends: %v", got)
				}
				resp := b.describePartitions(t, 2, cursor, tc.topics...)
				n := 0
				for _, dt := range resp.Topics {
					if dt.ErrorCode != 0 || dt.TopicID != ids[*dt.Topic] || dt.IsInternal ||
						dt.AuthorizedOperations != topicOperations {
						t.Fatalf("topic %+v", dt)
					}
					for _, p := range dt.Partitions {
						n++
						if p.ErrorCode != 0 || p.LeaderID != 1 || p.LeaderEpoch != 0 ||
							!slices.Equal(p.Replicas, []int32{1}) || !slices.Equal(p.ISR, []int32{1}) ||
							p.EligibleLeaderReplicas == nil || len(p.EligibleLeaderReplicas) != 0 ||
							p.LastKnownELR == nil || len(p.LastKnownELR) != 0 || len(p.OfflineReplicas) != 0 {
							t.Fatalf("partition %+v", p)
						}
						got = append(got, fmt.Sprintf("%s/%d", *dt.Topic, p.Partition))
					}
				}
				if n > 2 {
					t.Fatalf("page %d has %d partitions, limit 2", page, n)
				}
				if resp.NextCursor == nil {
					break
				}
				cursor = &kmsg.DescribeTopicPartitionsRequestCursor{Topic: resp.NextCursor.Topic, Partition: resp.NextCursor.Partition}
			}
			want := []string{"dtp-a/0", "dtp-a/1", "dtp-a/2", "dtp-b/0", "dtp-b/1", "dtp-b/2"}
			if !slices.Equal(got, want) {
				t.Fatalf("pages gave %v, want %v", got, want)
			}
		})
	}

	// The exact pages: a cursor inside a topic, then one across two.
	first := describedPartitions(b.describePartitions(t, 2, nil, "dtp-a", "dtp-b"))
	second := describedPartitions(b.describePartitions(t, 2, &kmsg.DescribeTopicPartitionsRequestCursor{Topic: "dtp-a", Partition: 2}, "dtp-a", "dtp-b"))
	third := describedPartitions(b.describePartitions(t, 2, &kmsg.DescribeTopicPartitionsRequestCursor{Topic: "dtp-b", Partition: 1}, "dtp-a", "dtp-b"))
	if got, want := strings.Join(slices.Concat(first, []string{"|"}, second, []string{"|"}, third), " "),
		"dtp-a/0 dtp-a/1 >dtp-a/2 | dtp-a/2 dtp-b/0 >dtp-b/1 | dtp-b/1 dtp-b/2"; got != want {
		t.Fatalf("pages %q, want %q", got, want)
	}
}

func TestDescribeTopicPartitionsEdges(t *testing.T) {
	b := newTestBroker(t, nil)
	b.createTopic("a", 3, nil)
	b.createTopic("b", 3, nil)
	cur := func(topic string, p int32) *kmsg.DescribeTopicPartitionsRequestCursor {
		return &kmsg.DescribeTopicPartitionsRequestCursor{Topic: topic, Partition: p}
	}
	unknown := kerr.UnknownTopicOrPartition.Message
	invalid := kerr.InvalidRequest.Message
	for _, tc := range []struct {
		name   string
		limit  int32
		cursor *kmsg.DescribeTopicPartitionsRequestCursor
		topics []string
		want   string
	}{
		{"limit 0 means 1", 0, nil, []string{"a"}, "a/0 >a/1"},
		{"negative limit means 1", -1, nil, []string{"a"}, "a/0 >a/1"},
		{"sorted, each once, unknown last", 10, nil, []string{"b", "a", "nope", "b"},
			"a/0 a/1 a/2 b/0 b/1 b/2 nope:" + unknown},
		{"unknown topic takes no limit", 3, nil, []string{"b", "0-missing"},
			"0-missing:" + unknown + " b/0 b/1 b/2"},
		{"bad name", 10, nil, []string{"bad/name"}, "bad/name:" + kerr.InvalidTopicException.Message},
		{"limit ends with a topic", 3, nil, []string{"a", "b"}, "a/0 a/1 a/2 >b/0"},
		{"limit ends with the last topic", 3, cur("b", 0), []string{"a", "b"}, "b/0 b/1 b/2"},
		{"limit above Kafka's cap", 1 << 30, nil, nil, "a/0 a/1 a/2 b/0 b/1 b/2"},
		{"cursor past the end", 2, cur("a", 7), nil, "a/- b/0 b/1 >b/2"},
		{"cursor past the end, named", 2, cur("a", 7), []string{"b", "a"}, "a/- b/0 b/1 >b/2"},
		{"cursor between topics", 2, cur("aa", 0), nil, "b/0 b/1 >b/2"},
		{"cursor after every topic", 2, cur("zzz", 0), nil, ""},
		{"cursor on an unknown named topic", 2, cur("nope", 0), []string{"b", "a", "nope"}, "nope:" + unknown},
		{"cursor topic not named", 2, cur("aa", 0), []string{"b", "a", "nope"},
			"b:" + invalid + " a:" + invalid + " nope:" + invalid},
		{"negative cursor partition", 2, cur("a", -1), []string{"b", "a"}, "b:" + invalid + " a:" + invalid},
		{"negative cursor partition, all topics", 2, cur("a", -1), nil, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp := b.describePartitions(t, tc.limit, tc.cursor, tc.topics...)
			if got := strings.Join(describedPartitions(resp), " "); got != tc.want {
				t.Fatalf("answer %q, want %q", got, tc.want)
			}
			for _, dt := range resp.Topics {
				wantOps := int32(topicOperations)
				if dt.ErrorCode == kerr.InvalidRequest.Code {
					wantOps = -2147483648 // Kafka's error answer leaves the default
				}
				if dt.AuthorizedOperations != wantOps {
					t.Fatalf("topic %s: authorized operations %d, want %d", *dt.Topic, dt.AuthorizedOperations, wantOps)
				}
				if dt.ErrorCode != 0 && (dt.TopicID != [16]byte{} || len(dt.Partitions) != 0) {
					t.Fatalf("error topic %+v", dt)
				}
			}
		})
	}

	t.Run("internal topic", func(t *testing.T) {
		b.createTopic("__consumer_offsets", 1, nil)
		resp := b.describePartitions(t, 10, nil, "__consumer_offsets")
		if len(resp.Topics) != 1 || !resp.Topics[0].IsInternal || len(resp.Topics[0].Partitions) != 1 {
			t.Fatalf("%+v", resp.Topics)
		}
	})

	t.Run("version too high", func(t *testing.T) {
		req := kmsg.NewPtrDescribeTopicPartitionsRequest()
		req.Version = 1
		c := b.raw()
		c.write(frame(1, req))
		c.expectClosed()
	})
}
