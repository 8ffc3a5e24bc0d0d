package kafka

// DescribeTopicPartitions (key 75): version 0.
//
// KIP-966's paginated topic description, which Kafka 3.8+ admin clients
// (kafka-topics --describe among them) use instead of Metadata. Partitions
// are described as Metadata describes them: NodeID leads every partition,
// is its only replica and in-sync replica, at leader epoch 0; there are no
// offline replicas, and the eligible leader replicas (ELR) and last known
// ELR are empty lists, never null (a null makes kafka-topics print
// "Elr: N/A", its fallback for brokers without KIP-966).
//
// Paging, as Kafka's KRaft broker does it:
//   - An empty topic list means every topic. Topics are answered sorted by
//     name, each once, starting at the cursor's topic: names before it are
//     left out, and the cursor's partition is the first one described for
//     that topic (0 for every other topic).
//   - At most min(ResponsePartitionLimit, 2000) partitions, and at least
//     one, are described (2000 is Kafka's max.request.partition.size.limit
//     default). When a topic's partitions do not all fit, NextCursor names
//     the first one left out; when the limit is used up exactly at a
//     topic's end and another topic follows, NextCursor is that topic at
//     partition 0. Otherwise NextCursor is null.
//   - A cursor past a topic's last partition describes none of it and goes
//     on with the next topic.
//   - An unknown topic in the list gets UNKNOWN_TOPIC_OR_PARTITION (a name
//     breaking the naming rules INVALID_TOPIC_EXCEPTION), the zero topic ID,
//     and uses none of the limit.
//   - A named list that does not contain the cursor's topic, or a cursor
//     with a negative partition, is an invalid request: every requested
//     topic, in request order, gets INVALID_REQUEST and nothing else.
//
// TopicAuthorizedOperations is always set (there is no flag asking for
// it), to every topic operation: there are no ACLs. Kafka sets it on
// unknown topics too, and so do we.

import (
	"context"
	"sort"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/streamhouse/streamhouse/log"
	"github.com/streamhouse/streamhouse/meta"
)

// describePartitionsMax caps ResponsePartitionLimit: Kafka's
// max.request.partition.size.limit default.
const describePartitionsMax = 2000

func (s *Server) handleDescribeTopicPartitions(_ context.Context, r *request) (kmsg.Response, error) {
	req := r.body.(*kmsg.DescribeTopicPartitionsRequest)
	resp := req.ResponseKind().(*kmsg.DescribeTopicPartitionsResponse)
	snap := s.topicSnapshot()
	all := len(req.Topics) == 0
	var cursorTopic string
	if req.Cursor != nil {
		cursorTopic = req.Cursor.Topic
	}

	byName := make(map[string]meta.Topic, len(snap.list))
	var names []string
	for _, t := range snap.list {
		byName[t.Name] = t
		if all && t.Name >= cursorTopic {
			names = append(names, t.Name) // snap.list is sorted by name
		}
	}
	if !all {
		seen := make(map[string]bool, len(req.Topics))
		for _, rt := range req.Topics {
			if rt.Topic >= cursorTopic && !seen[rt.Topic] {
				seen[rt.Topic] = true
				names = append(names, rt.Topic)
			}
		}
		sort.Strings(names)
		if req.Cursor != nil && !seen[cursorTopic] {
			return describePartitionsInvalid(req, resp), nil
		}
	}
	if req.Cursor != nil && req.Cursor.Partition < 0 {
		return describePartitionsInvalid(req, resp), nil
	}

	remaining := int64(max(min(req.ResponsePartitionLimit, describePartitionsMax), 1))
	for _, name := range names {
		if remaining == 0 {
			resp.NextCursor = &kmsg.DescribeTopicPartitionsResponseNextCursor{Topic: name, Partition: 0}
			break
		}
		t, ok := byName[name]
		if !ok {
			resp.Topics = append(resp.Topics, describeUnknownTopic(name))
			continue
		}
		var start int64
		if name == cursorTopic {
			start = int64(req.Cursor.Partition)
		}
		count := int64(t.PartitionCount)
		upper := min(count, start+remaining)
		resp.Topics = append(resp.Topics, s.describeTopic(t, start, upper))
		if upper < count {
			resp.NextCursor = &kmsg.DescribeTopicPartitionsResponseNextCursor{Topic: name, Partition: int32(upper)}
			break
		}
		remaining -= max(upper-start, 0)
	}
	return resp, nil
}

// describeTopic describes partitions [start, upper) of t (none when start
// is not below upper).
func (s *Server) describeTopic(t meta.Topic, start, upper int64) kmsg.DescribeTopicPartitionsResponseTopic {
	dt := kmsg.NewDescribeTopicPartitionsResponseTopic()
	name := t.Name
	dt.Topic = &name
	dt.TopicID = topicIDBytes(t.ID)
	dt.IsInternal = log.IsInternalTopic(name)
	dt.AuthorizedOperations = topicOperations
	dt.Partitions = []kmsg.DescribeTopicPartitionsResponseTopicPartition{}
	node := []int32{s.cfg.NodeID}
	for i := start; i < upper; i++ {
		p := kmsg.NewDescribeTopicPartitionsResponseTopicPartition()
		p.Partition = int32(i)
		p.LeaderID = s.cfg.NodeID
		p.LeaderEpoch = leaderEpoch
		p.Replicas, p.ISR = node, node
		p.EligibleLeaderReplicas, p.LastKnownELR, p.OfflineReplicas = []int32{}, []int32{}, []int32{}
		dt.Partitions = append(dt.Partitions, p)
	}
	return dt
}

// describeUnknownTopic is the answer for a requested topic that does not
// exist.
func describeUnknownTopic(name string) kmsg.DescribeTopicPartitionsResponseTopic {
	dt := kmsg.NewDescribeTopicPartitionsResponseTopic()
	dt.Topic = &name
	dt.ErrorCode = kerr.UnknownTopicOrPartition.Code
	if log.ValidateTopicName(name) != nil {
		dt.ErrorCode = kerr.InvalidTopicException.Code
	}
	dt.IsInternal = log.IsInternalTopic(name)
	dt.AuthorizedOperations = topicOperations
	return dt
}

// describePartitionsInvalid answers an invalid request as Kafka does:
// INVALID_REQUEST for every requested topic, no cursor.
func describePartitionsInvalid(req *kmsg.DescribeTopicPartitionsRequest, resp *kmsg.DescribeTopicPartitionsResponse) *kmsg.DescribeTopicPartitionsResponse {
	resp.Topics = resp.Topics[:0]
	for _, rt := range req.Topics {
		dt := kmsg.NewDescribeTopicPartitionsResponseTopic()
		name := rt.Topic
		dt.Topic = &name
		dt.ErrorCode = kerr.InvalidRequest.Code
		resp.Topics = append(resp.Topics, dt)
	}
	resp.NextCursor = nil
	return resp
}
