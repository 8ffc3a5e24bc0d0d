package kafka

// OffsetCommit (key 8): versions 0-10.
//
// Offsets are stored in meta (meta.Store.CommitOffsets: the rows the gRPC
// front reads) with the leader epoch, the metadata and the coordinator
// clock's time. Checks, in order:
//   - INVALID_GROUP_ID for an empty group, on every partition;
//   - per partition: UNKNOWN_TOPIC_OR_PARTITION (UNKNOWN_TOPIC_ID at v10)
//     for a topic or partition that does not exist, OFFSET_METADATA_TOO_LARGE
//     above Config.Groups.OffsetMetadataMaxBytes; those partitions are
//     left out and the rest go on;
//   - the group (groups.Coordinator.Commit): a "simple" commit
//     (generation -1, no member) is accepted when the group has no members and creates the
//     group if needed; otherwise the member and generation must be
//     current (UNKNOWN_MEMBER_ID, FENCED_INSTANCE_ID, ILLEGAL_GENERATION;
//     REBALANCE_IN_PROGRESS while the group completes a rebalance). A
//     commit with a generation to a group that does not exist gets
//     ILLEGAL_GENERATION, GROUP_ID_NOT_FOUND from v9. Nothing is written
//     when the group check fails.
//
// Version notes:
//   - v0: no generation or member: a simple commit.
//   - v1: per-partition Timestamp, ignored (the commit time is the
//     broker's). v2-v4: RetentionTimeMillis, ignored (offsets expire per
//     Config.Groups.OffsetsRetention, as since Kafka 2.1).
//   - v3: ThrottleMillis. v6: LeaderEpoch. v7: InstanceID. v8: flexible.
//   - v9: GROUP_ID_NOT_FOUND for a missing group. KIP-848 consumer
//     groups need v9+ (UNSUPPORTED_VERSION before, unless the group has
//     no members and the commit no member): Generation is the member
//     epoch; UNKNOWN_MEMBER_ID, STALE_MEMBER_EPOCH for a newer epoch than
//     the member's, and, for an older one, per partition for those the
//     member did not hold since that epoch (KIP-1251). v10: topics by ID.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/streamhouse/streamhouse/meta"
)

func (s *Server) handleOffsetCommit(ctx context.Context, r *request) (kmsg.Response, error) {
	req := r.body.(*kmsg.OffsetCommitRequest)
	resp := req.ResponseKind().(*kmsg.OffsetCommitResponse)
	var byID map[[16]byte]meta.Topic
	if req.Version >= 10 {
		byID = s.topicsByID()
	}
	now, maxMetadata := s.groups.Now(), s.groups.Config().OffsetMetadataMaxBytes
	var offsets []meta.CommittedOffset
	var slots []*kmsg.OffsetCommitResponseTopicPartition
	resp.Topics = make([]kmsg.OffsetCommitResponseTopic, len(req.Topics))
	for i, rt := range req.Topics {
		st := &resp.Topics[i]
		st.Topic, st.TopicID = rt.Topic, rt.TopicID
		name, unknown := rt.Topic, kerr.UnknownTopicOrPartition.Code
		if req.Version >= 10 {
			name, unknown = byID[rt.TopicID].Name, kerr.UnknownTopicID.Code
		}
		t, terr := s.cfg.Log.Topic(name)
		st.Partitions = make([]kmsg.OffsetCommitResponseTopicPartition, len(rt.Partitions))
		for j, rp := range rt.Partitions {
			sp := &st.Partitions[j]
			sp.Default()
			sp.Partition = rp.Partition
			switch {
			case req.Group == "":
				sp.ErrorCode = kerr.InvalidGroupID.Code
			case terr != nil || name == "":
				sp.ErrorCode = unknown
			case rp.Partition < 0 || rp.Partition >= t.PartitionCount:
				sp.ErrorCode = kerr.UnknownTopicOrPartition.Code
			case rp.Metadata != nil && len(*rp.Metadata) > maxMetadata:
				sp.ErrorCode = kerr.OffsetMetadataTooLarge.Code
			default:
				o := meta.CommittedOffset{Group: req.Group, Topic: name, Partition: rp.Partition,
					Offset: rp.Offset, LeaderEpoch: -1, CommitTime: now}
				if req.Version >= 6 {
					o.LeaderEpoch = rp.LeaderEpoch
				}
				if rp.Metadata != nil {
					o.Metadata = *rp.Metadata
				}
				offsets = append(offsets, o)
				slots = append(slots, sp)
			}
		}
	}
	if len(offsets) == 0 {
		return resp, nil
	}
	code, stale, err := s.groups.Commit(ctx, req, offsets)
	if err != nil {
		code = coordinatorErrorCode(err)
		s.logger.Error("offset commit failed", "group", req.Group, "err", err)
	}
	for i, sp := range slots {
		sp.ErrorCode = code
		if stale[meta.TopicPartition{Topic: offsets[i].Topic, Partition: offsets[i].Partition}] {
			sp.ErrorCode = kerr.StaleMemberEpoch.Code
		}
	}
	return resp, nil
}
