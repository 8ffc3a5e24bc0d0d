package kafka

// OffsetDelete (key 47): version 0.
//
// Deletes committed offsets of a group (meta.Store.DeleteOffsets).
// Errors: INVALID_GROUP_ID (empty group) and GROUP_ID_NOT_FOUND for the
// whole request; NON_EMPTY_GROUP when a group with members is not a
// consumer-protocol group (its subscriptions are unknown); per partition,
// UNKNOWN_TOPIC_OR_PARTITION for a partition that does not exist and
// GROUP_SUBSCRIBED_TO_TOPIC for a topic a member of the group subscribes
// to (those offsets stay). A group-level error answers no partitions, as
// Kafka does.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/streamhouse/streamhouse/meta"
)

func (s *Server) handleOffsetDelete(ctx context.Context, r *request) (kmsg.Response, error) {
	req := r.body.(*kmsg.OffsetDeleteRequest)
	resp := req.ResponseKind().(*kmsg.OffsetDeleteResponse)
	if req.Group == "" {
		resp.ErrorCode = kerr.InvalidGroupID.Code
		return resp, nil
	}
	var valid []meta.TopicPartition
	slots := make(map[meta.TopicPartition][]*kmsg.OffsetDeleteResponseTopicPartition)
	resp.Topics = make([]kmsg.OffsetDeleteResponseTopic, len(req.Topics))
	for i, rt := range req.Topics {
		st := &resp.Topics[i]
		st.Topic = rt.Topic
		t, terr := s.cfg.Log.Topic(rt.Topic)
		st.Partitions = make([]kmsg.OffsetDeleteResponseTopicPartition, len(rt.Partitions))
		for j, rp := range rt.Partitions {
			sp := &st.Partitions[j]
			sp.Partition = rp.Partition
			if terr != nil || rp.Partition < 0 || rp.Partition >= t.PartitionCount {
				sp.ErrorCode = kerr.UnknownTopicOrPartition.Code
				continue
			}
			tp := meta.TopicPartition{Topic: rt.Topic, Partition: rp.Partition}
			if slots[tp] == nil {
				valid = append(valid, tp)
			}
			slots[tp] = append(slots[tp], sp)
		}
	}
	code, refused, err := s.groups.DeleteOffsets(ctx, req.Group, valid)
	if code != 0 {
		resp.ErrorCode, resp.Topics = code, nil
		return resp, nil
	}
	for tp, sps := range slots {
		for _, sp := range sps {
			switch {
			case refused[tp]:
				sp.ErrorCode = kerr.GroupSubscribedToTopic.Code
			case err != nil:
				sp.ErrorCode = coordinatorErrorCode(err)
			}
		}
	}
	if err != nil {
		s.logger.Error("offset delete failed", "group", req.Group, "err", err)
	}
	return resp, nil
}
