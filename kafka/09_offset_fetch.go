package kafka

// OffsetFetch (key 9): versions 0-10.
//
// Reads committed offsets from meta (the rows the gRPC front writes too).
// A partition without a committed offset, of an unknown topic, or of a
// group that does not exist answers offset -1, leader epoch -1, empty
// metadata and no error, as Kafka does. Null topics (v2+) ask for every
// committed offset of the group.
//
// Version notes:
//   - v0-v1: a topic list is required. v2: null topics mean all; a
//     top-level ErrorCode. v3: ThrottleMillis. v5: LeaderEpoch. v6: flexible.
//   - v7: RequireStable (KIP-447): a partition with an offset committed by
//     a transaction still running (TxnOffsetCommit, pending until the
//     transaction ends; txn.Coordinator.PendingOffsets) answers
//     UNSTABLE_OFFSET_COMMIT with offset -1, and the client retries. Without
//     RequireStable the committed offset is answered, as in Kafka. When
//     every offset of the group is asked for, only partitions with a
//     committed offset are listed (pending ones alone are not), as in
//     Kafka.
//   - v8: several groups per request (KIP-709). v9: MemberID/MemberEpoch:
//     for a KIP-848 consumer group, a fetch naming a member must carry
//     its current epoch (UNKNOWN_MEMBER_ID, STALE_MEMBER_EPOCH); classic
//     groups do not check them. v10: topics by ID; an unknown ID gets
//     UNKNOWN_TOPIC_ID.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/streamhouse/streamhouse/meta"
)

func (s *Server) handleOffsetFetch(ctx context.Context, r *request) (kmsg.Response, error) {
	req := r.body.(*kmsg.OffsetFetchRequest)
	resp := req.ResponseKind().(*kmsg.OffsetFetchResponse)
	if req.Version >= 8 {
		for _, rg := range req.Groups {
			if req.Version >= 9 {
				if code := s.groups.CheckOffsetFetch(ctx, rg.Group, rg.MemberID, rg.MemberEpoch); code != 0 {
					eg := kmsg.NewOffsetFetchResponseGroup()
					eg.Group, eg.ErrorCode = rg.Group, code
					resp.Groups = append(resp.Groups, eg)
					continue
				}
			}
			resp.Groups = append(resp.Groups, s.fetchGroupOffsets(ctx, req.Version, rg.Group, rg.Topics, req.RequireStable))
		}
		return resp, nil
	}
	var topics []kmsg.OffsetFetchRequestGroupTopic
	if req.Topics != nil || req.Version < 2 {
		topics = make([]kmsg.OffsetFetchRequestGroupTopic, 0, len(req.Topics))
	}
	for _, t := range req.Topics {
		topics = append(topics, kmsg.OffsetFetchRequestGroupTopic{Topic: t.Topic, Partitions: t.Partitions})
	}
	g := s.fetchGroupOffsets(ctx, req.Version, req.Group, topics, req.Version >= 7 && req.RequireStable)
	resp.ErrorCode = g.ErrorCode
	for _, t := range g.Topics {
		rt := kmsg.OffsetFetchResponseTopic{Topic: t.Topic}
		for _, p := range t.Partitions {
			rt.Partitions = append(rt.Partitions, kmsg.OffsetFetchResponseTopicPartition{Partition: p.Partition,
				Offset: p.Offset, LeaderEpoch: p.LeaderEpoch, Metadata: p.Metadata, ErrorCode: p.ErrorCode})
		}
		resp.Topics = append(resp.Topics, rt)
	}
	return resp, nil
}

// fetchGroupOffsets answers one group; nil topics means every committed
// offset of the group. With requireStable, partitions with a pending
// transactional offset answer UNSTABLE_OFFSET_COMMIT.
func (s *Server) fetchGroupOffsets(ctx context.Context, version int16, group string, topics []kmsg.OffsetFetchRequestGroupTopic, requireStable bool) kmsg.OffsetFetchResponseGroup {
	out := kmsg.NewOffsetFetchResponseGroup()
	out.Group = group
	stored, err := s.cfg.Meta.FetchOffsets(ctx, group)
	var unstable map[meta.TopicPartition]bool
	if err == nil && requireStable {
		unstable, err = s.pendingTxnOffsets(ctx, group)
	}
	if err != nil {
		out.ErrorCode = coordinatorErrorCode(err)
		s.logger.Error("offset fetch failed", "group", group, "err", err)
		return out
	}
	var byID map[[16]byte]meta.Topic
	if version >= 10 {
		byID = s.topicsByID()
	}
	if topics == nil {
		out.Topics = s.allGroupOffsets(stored, byID)
		for i := range out.Topics {
			t := &out.Topics[i]
			for j := range t.Partitions {
				markUnstable(&t.Partitions[j], unstable[meta.TopicPartition{Topic: t.Topic, Partition: t.Partitions[j].Partition}])
			}
		}
		return out
	}
	byKey := make(map[meta.TopicPartition]meta.CommittedOffset, len(stored))
	for _, o := range stored {
		byKey[meta.TopicPartition{Topic: o.Topic, Partition: o.Partition}] = o
	}
	for _, rt := range topics {
		st := kmsg.OffsetFetchResponseGroupTopic{Topic: rt.Topic, TopicID: rt.TopicID}
		name, code := rt.Topic, int16(0)
		if version >= 10 {
			t, ok := byID[rt.TopicID]
			name = t.Name
			if !ok {
				code = kerr.UnknownTopicID.Code
			}
		}
		for _, p := range rt.Partitions {
			sp := fetchedOffset(byKey[meta.TopicPartition{Topic: name, Partition: p}], p)
			sp.ErrorCode = code
			if code == 0 {
				markUnstable(&sp, unstable[meta.TopicPartition{Topic: name, Partition: p}])
			}
			st.Partitions = append(st.Partitions, sp)
		}
		out.Topics = append(out.Topics, st)
	}
	return out
}

// pendingTxnOffsets returns the partitions of group with an offset
// committed by a running transaction.
func (s *Server) pendingTxnOffsets(ctx context.Context, group string) (map[meta.TopicPartition]bool, error) {
	pending, err := s.txn.PendingOffsets(ctx, group)
	if err != nil || len(pending) == 0 {
		return nil, err
	}
	out := make(map[meta.TopicPartition]bool, len(pending))
	for _, o := range pending {
		out[meta.TopicPartition{Topic: o.Topic, Partition: o.Partition}] = true
	}
	return out, nil
}

// markUnstable answers UNSTABLE_OFFSET_COMMIT, offset -1, for a partition
// with a pending transactional offset.
func markUnstable(p *kmsg.OffsetFetchResponseGroupTopicPartition, pending bool) {
	if pending {
		p.ErrorCode, p.Offset, p.LeaderEpoch, p.Metadata = kerr.UnstableOffsetCommit.Code, -1, -1, kmsg.StringPtr("")
	}
}

// allGroupOffsets lists every stored offset (sorted by topic, then
// partition, as meta returns them). At v10 (byID set), offsets of topics
// that no longer exist have no ID and are left out.
func (s *Server) allGroupOffsets(stored []meta.CommittedOffset, byID map[[16]byte]meta.Topic) []kmsg.OffsetFetchResponseGroupTopic {
	ids := make(map[string][16]byte, len(byID))
	for id, t := range byID {
		ids[t.Name] = id
	}
	var out []kmsg.OffsetFetchResponseGroupTopic
	for _, o := range stored {
		id, ok := ids[o.Topic]
		if byID != nil && !ok {
			continue
		}
		if len(out) == 0 || out[len(out)-1].Topic != o.Topic {
			out = append(out, kmsg.OffsetFetchResponseGroupTopic{Topic: o.Topic, TopicID: id})
		}
		t := &out[len(out)-1]
		t.Partitions = append(t.Partitions, fetchedOffset(o, o.Partition))
	}
	return out
}

// fetchedOffset is one partition's answer; o is the zero value when
// nothing is committed (then -1).
func fetchedOffset(o meta.CommittedOffset, partition int32) kmsg.OffsetFetchResponseGroupTopicPartition {
	sp := kmsg.NewOffsetFetchResponseGroupTopicPartition()
	sp.Partition, sp.Offset, sp.LeaderEpoch, sp.Metadata = partition, -1, -1, kmsg.StringPtr("")
	if o.Topic != "" {
		sp.Offset, sp.LeaderEpoch, sp.Metadata = o.Offset, o.LeaderEpoch, kmsg.StringPtr(o.Metadata)
	}
	return sp
}
