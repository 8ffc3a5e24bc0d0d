package kafka

// CreatePartitions (key 37): versions 0-3.
//
// Raises a topic's partition count (log.Manager.AddPartitions: meta, then
// the new partitions are opened and take produce at once). Each topic is
// answered on its own:
//   - a topic named twice in the request: INVALID_REQUEST for each copy;
//   - UNKNOWN_TOPIC_OR_PARTITION for a missing topic;
//   - INVALID_PARTITIONS when Count is not larger than the current count
//     (partitions are never removed) or above Config.MaxTopicPartitions;
//   - INVALID_REPLICA_ASSIGNMENT when a manual assignment does not list
//     exactly the new partitions, or puts one anywhere but on this broker
//     alone (replication factor 1).
//
// ValidateOnly runs every check and adds nothing.
//
// Version notes: v1 changes throttle semantics only; v2 is flexible; v3
// is v2 (it marks clients that handle throttling).
// TimeoutMillis is ignored: the change is synchronous.

import (
	"context"
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func (s *Server) handleCreatePartitions(ctx context.Context, r *request) (kmsg.Response, error) {
	req := r.body.(*kmsg.CreatePartitionsRequest)
	resp := req.ResponseKind().(*kmsg.CreatePartitionsResponse)
	seen := make(map[string]int, len(req.Topics))
	for _, rt := range req.Topics {
		seen[rt.Topic]++
	}
	resp.Topics = make([]kmsg.CreatePartitionsResponseTopic, len(req.Topics))
	for i, rt := range req.Topics {
		st := &resp.Topics[i]
		st.Default()
		st.Topic = rt.Topic
		code, msg := kerr.InvalidRequest.Code, "Duplicate topic in request."
		if seen[rt.Topic] == 1 {
			code, msg = s.createPartitions(ctx, rt, req.ValidateOnly)
		}
		if code != 0 {
			st.ErrorCode, st.ErrorMessage = code, &msg
		}
	}
	return resp, nil
}

// createPartitions checks and applies one topic's request; it returns an
// error code and message, or 0.
func (s *Server) createPartitions(ctx context.Context, rt kmsg.CreatePartitionsRequestTopic, validateOnly bool) (int16, string) {
	t, err := s.cfg.Log.Topic(rt.Topic)
	if err != nil {
		return errorCode(err), err.Error()
	}
	cur := t.PartitionCount
	switch {
	case rt.Count == cur:
		return kerr.InvalidPartitions.Code, fmt.Sprintf("Topic already has %d partitions.", cur)
	case rt.Count < cur:
		return kerr.InvalidPartitions.Code, fmt.Sprintf("Topic currently has %d partitions, %d would not be an increase.", cur, rt.Count)
	case rt.Count > s.cfg.MaxTopicPartitions:
		return kerr.InvalidPartitions.Code, fmt.Sprintf("%d partitions: at most %d are allowed", rt.Count, s.cfg.MaxTopicPartitions)
	}
	if rt.Assignment != nil {
		if n := rt.Count - cur; int32(len(rt.Assignment)) != n {
			return kerr.InvalidReplicaAssignment.Code, fmt.Sprintf("Attempted to add %d additional partitions, but %d assignments were specified.", n, len(rt.Assignment))
		}
		for i, a := range rt.Assignment {
			if len(a.Replicas) != 1 || a.Replicas[0] != s.cfg.NodeID {
				return kerr.InvalidReplicaAssignment.Code, fmt.Sprintf("partition %d on brokers %v: every partition must be on broker %d alone (replication factor 1)", cur+int32(i), a.Replicas, s.cfg.NodeID)
			}
		}
	}
	if validateOnly {
		return 0, ""
	}
	if _, err := s.cfg.Log.AddPartitions(ctx, rt.Topic, rt.Count); err != nil {
		return errorCode(err), err.Error()
	}
	return 0, ""
}
