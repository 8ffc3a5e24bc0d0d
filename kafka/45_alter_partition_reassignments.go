package kafka

// AlterPartitionReassignments (key 45): versions 0-1.
//
// Every partition lives on this broker alone, and there is no other broker
// to move it to, so the only assignment that can be valid is the current
// one, [NodeID]: it succeeds at once and changes nothing, as Kafka answers
// an assignment onto a partition's current replicas. Each partition is
// answered on its own, in request order, with the codes and messages of
// Kafka's controller (ReplicationControlManager.alterPartitionReassignment):
//   - an unknown topic: UNKNOWN_TOPIC_OR_PARTITION ("Unable to find a topic
//     named T."); an unknown partition, a negative one included:
//     UNKNOWN_TOPIC_OR_PARTITION ("Unable to find partition T:P.");
//   - Replicas null (cancel a reassignment): NO_REASSIGNMENT_IN_PROGRESS,
//     with a null message, since none is ever in progress;
//   - otherwise the replica list is checked as Kafka's
//     validateManualPartitionAssignment does: an empty list, a broker other
//     than this one ("no such broker is registered") or one listed twice
//     gets INVALID_REPLICA_ASSIGNMENT with Kafka's message; [NodeID]
//     succeeds.
//
// An empty topic list gets Kafka's early answer: no topics, ErrorMessage ""
// (not null) and AllowReplicationFactorChange true.
//
// Version notes: v0 and v1 are flexible. v1 (KIP-860) adds
// AllowReplicationFactorChange, echoed in the answer. A refused change of
// replication factor cannot happen: the one valid list has the current
// factor, 1.
// TimeoutMillis is ignored: nothing is waited for.

import (
	"context"
	"fmt"
	"slices"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/streamhouse/streamhouse/meta"
)

func (s *Server) handleAlterPartitionReassignments(_ context.Context, r *request) (kmsg.Response, error) {
	req := r.body.(*kmsg.AlterPartitionAssignmentsRequest)
	resp := req.ResponseKind().(*kmsg.AlterPartitionAssignmentsResponse)
	if len(req.Topics) == 0 {
		empty := ""
		resp.ErrorMessage = &empty
		return resp, nil
	}
	resp.AllowReplicationFactorChange = req.AllowReplicationFactorChange
	list := s.topicSnapshot().list
	byName := make(map[string]meta.Topic, len(list))
	for _, t := range list {
		byName[t.Name] = t
	}
	for _, rt := range req.Topics {
		st := kmsg.NewAlterPartitionAssignmentsResponseTopic()
		st.Topic = rt.Topic
		st.Partitions = []kmsg.AlterPartitionAssignmentsResponseTopicPartition{}
		t, known := byName[rt.Topic]
		for _, rp := range rt.Partitions {
			sp := kmsg.NewAlterPartitionAssignmentsResponseTopicPartition()
			sp.Partition = rp.Partition
			var code int16
			var msg string
			switch {
			case !known:
				code, msg = kerr.UnknownTopicOrPartition.Code, fmt.Sprintf("Unable to find a topic named %s.", rt.Topic)
			case rp.Partition < 0 || rp.Partition >= t.PartitionCount:
				code, msg = kerr.UnknownTopicOrPartition.Code, fmt.Sprintf("Unable to find partition %s:%d.", rt.Topic, rp.Partition)
			case rp.Replicas == nil:
				code = kerr.NoReassignmentInProgress.Code
			default:
				code, msg = s.checkReplicas(rp.Replicas)
			}
			sp.ErrorCode = code
			if msg != "" {
				sp.ErrorMessage = &msg
			}
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp, nil
}

// checkReplicas validates a requested replica list the way Kafka's
// controller validates a manual assignment, the only registered broker
// being this one; it returns 0 and "" for [NodeID].
func (s *Server) checkReplicas(replicas []int32) (int16, string) {
	if len(replicas) == 0 {
		return kerr.InvalidReplicaAssignment.Code, "The manual partition assignment includes an empty replica list."
	}
	sorted := slices.Clone(replicas)
	slices.Sort(sorted)
	for i, id := range sorted {
		if id != s.cfg.NodeID {
			return kerr.InvalidReplicaAssignment.Code, fmt.Sprintf("The manual partition assignment includes broker %d, but no such broker is registered.", id)
		}
		if i > 0 && sorted[i-1] == id {
			return kerr.InvalidReplicaAssignment.Code, fmt.Sprintf("The manual partition assignment includes the broker %d more than once.", id)
		}
	}
	return 0, ""
}
