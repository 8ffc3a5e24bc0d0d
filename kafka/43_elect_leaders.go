package kafka

// ElectLeaders (key 43): versions 0-2.
//
// Every partition has one replica, this broker, and it always leads: it is
// the preferred leader (a preferred election is not needed) and the
// partition has a leader (an unclean election is not needed). The answers
// are those of Kafka's controller (ReplicationControlManager.electLeaders):
//   - Topics null: every topic is listed with no partitions, because
//     Kafka leaves out the partitions that already have the leader asked
//     for (all of ours). kafka-leader-election --all-topic-partitions then
//     prints nothing and exits 0, as against Kafka.
//   - Topics named: each requested partition, in request order and
//     duplicates included, gets ELECTION_NOT_NEEDED ("Leader election not
//     needed for topic partition."), or UNKNOWN_TOPIC_OR_PARTITION ("No
//     such topic as T" / "No such partition as T-P"). A topic with an
//     empty partition list is answered with none. kafka-leader-election
//     prints "Valid replica already elected for partitions T-P".
//   - Topics empty (not null): an empty answer, nothing checked.
//   - An election type other than 0 (preferred) or 1 (unclean):
//     INVALID_REQUEST at the top and for every requested partition
//     ("Unknown election type N").
//
// Version notes: v1 adds ElectionType (v0 is always preferred) and the
// top-level ErrorCode (always 0 but for the above); v2 is flexible.
// TimeoutMillis is ignored: nothing is waited for.

import (
	"context"
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/streamhouse/streamhouse/meta"
)

// Kafka's messages for the per-partition answers.
const electionNotNeeded = "Leader election not needed for topic partition."

func (s *Server) handleElectLeaders(_ context.Context, r *request) (kmsg.Response, error) {
	req := r.body.(*kmsg.ElectLeadersRequest)
	resp := req.ResponseKind().(*kmsg.ElectLeadersResponse)
	if req.Topics != nil && len(req.Topics) == 0 {
		return resp, nil
	}
	list := s.topicSnapshot().list
	if req.ElectionType != 0 && req.ElectionType != 1 {
		resp.ErrorCode = kerr.InvalidRequest.Code
		msg := fmt.Sprintf("Unknown election type %d", req.ElectionType)
		for _, rt := range req.Topics {
			st := electTopic(rt.Topic)
			for _, p := range rt.Partitions {
				st.Partitions = append(st.Partitions, electPartition(p, kerr.InvalidRequest.Code, msg))
			}
			resp.Topics = append(resp.Topics, st)
		}
		return resp, nil
	}
	if req.Topics == nil {
		for _, t := range list {
			resp.Topics = append(resp.Topics, electTopic(t.Name))
		}
		return resp, nil
	}
	byName := make(map[string]meta.Topic, len(list))
	for _, t := range list {
		byName[t.Name] = t
	}
	for _, rt := range req.Topics {
		st := electTopic(rt.Topic)
		t, known := byName[rt.Topic]
		for _, p := range rt.Partitions {
			var ep kmsg.ElectLeadersResponseTopicPartition
			switch {
			case !known:
				ep = electPartition(p, kerr.UnknownTopicOrPartition.Code, "No such topic as "+rt.Topic)
			case p < 0 || p >= t.PartitionCount:
				ep = electPartition(p, kerr.UnknownTopicOrPartition.Code, fmt.Sprintf("No such partition as %s-%d", rt.Topic, p))
			default:
				ep = electPartition(p, kerr.ElectionNotNeeded.Code, electionNotNeeded)
			}
			st.Partitions = append(st.Partitions, ep)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp, nil
}

func electTopic(name string) kmsg.ElectLeadersResponseTopic {
	st := kmsg.NewElectLeadersResponseTopic()
	st.Topic = name
	st.Partitions = []kmsg.ElectLeadersResponseTopicPartition{}
	return st
}

func electPartition(p int32, code int16, msg string) kmsg.ElectLeadersResponseTopicPartition {
	ep := kmsg.NewElectLeadersResponseTopicPartition()
	ep.Partition, ep.ErrorCode, ep.ErrorMessage = p, code, &msg
	return ep
}
