package kafka

// TxnOffsetCommit (key 28): versions 0-6.
//
// Commits a consumer group's offsets inside a transaction: they are stored
// in meta as pending offsets of the transaction
// (txn.Coordinator.TxnOffsetCommit) and become the group's committed
// offsets, the rows OffsetFetch and the gRPC front read, only when the
// transaction commits; an abort drops them. Meanwhile OffsetFetch with
// RequireStable answers UNSTABLE_OFFSET_COMMIT for their partitions.
// Checks, in order:
//   - INVALID_GROUP_ID for an empty group, on every partition;
//   - per partition: UNKNOWN_TOPIC_OR_PARTITION (UNKNOWN_TOPIC_ID at v6)
//     for a topic or partition that does not exist,
//     OFFSET_METADATA_TOO_LARGE above Config.Groups.OffsetMetadataMaxBytes;
//     those partitions are left out and the rest go on;
//   - the group (groups.Coordinator.CheckTxnCommit): a commit without
//     member and generation is accepted in any state; otherwise the member
//     and generation must be current (UNKNOWN_MEMBER_ID,
//     FENCED_INSTANCE_ID, ILLEGAL_GENERATION), but a rebalance in
//     progress does not refuse it;
//   - the transaction: INVALID_REQUEST for an empty transactional ID,
//     INVALID_PRODUCER_ID_MAPPING, INVALID_PRODUCER_EPOCH (not the current
//     epoch: Kafka's answer here), CONCURRENT_TRANSACTIONS, and, when the
//     group was not added to the running transaction with
//     AddOffsetsToTxn, INVALID_TXN_STATE (TRANSACTION_ABORTABLE from v4).
//
// Nothing is stored when a group or transaction check fails.
//
// Version notes:
//   - v1: same as v0. v2: LeaderEpoch (stored with the offset).
//   - v3: flexible; MemberID, InstanceID and Generation (KIP-447), checked
//     as above; below v3 the commit has no member.
//   - v4: TRANSACTION_ABORTABLE (KIP-890).
//   - v5 (KIP-890 part 2, transaction version 2): a group not yet in the
//     transaction is added to it (starting it if needed) instead of
//     refused.
//   - v6: topics by ID.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/streamhouse/streamhouse/meta"
)

func (s *Server) handleTxnOffsetCommit(ctx context.Context, r *request) (kmsg.Response, error) {
	req := r.body.(*kmsg.TxnOffsetCommitRequest)
	resp := req.ResponseKind().(*kmsg.TxnOffsetCommitResponse)
	var byID map[[16]byte]meta.Topic
	if req.Version >= 6 {
		byID = s.topicsByID()
	}
	maxMetadata := s.groups.Config().OffsetMetadataMaxBytes
	var offsets []meta.TxnOffset
	var slots []*kmsg.TxnOffsetCommitResponseTopicPartition
	resp.Topics = make([]kmsg.TxnOffsetCommitResponseTopic, len(req.Topics))
	for i, rt := range req.Topics {
		st := &resp.Topics[i]
		st.Topic, st.TopicID = rt.Topic, rt.TopicID
		name, unknown := rt.Topic, kerr.UnknownTopicOrPartition.Code
		if req.Version >= 6 {
			name, unknown = byID[rt.TopicID].Name, kerr.UnknownTopicID.Code
		}
		t, terr := s.cfg.Log.Topic(name)
		st.Partitions = make([]kmsg.TxnOffsetCommitResponseTopicPartition, len(rt.Partitions))
		for j, rp := range rt.Partitions {
			sp := &st.Partitions[j]
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
				o := meta.TxnOffset{Topic: name, Partition: rp.Partition, Offset: rp.Offset, LeaderEpoch: -1}
				if req.Version >= 2 {
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
	code := s.txnCommitCode(ctx, req, offsets)
	for _, sp := range slots {
		sp.ErrorCode = code
	}
	return resp, nil
}

// txnCommitCode runs the group and transaction checks of a
// TxnOffsetCommit and stores the offsets if they pass; it returns the
// code for every partition.
func (s *Server) txnCommitCode(ctx context.Context, req *kmsg.TxnOffsetCommitRequest, offsets []meta.TxnOffset) int16 {
	if req.TransactionalID == "" {
		return kerr.InvalidRequest.Code
	}
	member, instance, generation := "", (*string)(nil), int32(-1)
	if req.Version >= 3 {
		member, instance, generation = req.MemberID, req.InstanceID, req.Generation
	}
	if code := s.groups.CheckTxnCommit(ctx, req.Group, member, instance, generation); code != 0 {
		return code
	}
	err := s.txn.TxnOffsetCommit(ctx, req.TransactionalID, req.ProducerID, req.ProducerEpoch, req.Group,
		req.Version >= 5, offsets)
	if err != nil {
		s.logTxnError("TxnOffsetCommit", req.TransactionalID, err)
	}
	return txnCode(err, req.Version, 0, 4)
}
