package kafka

// ListOffsets (key 2): versions 1-11.
//
// Per partition, by Timestamp:
//   - -2 (earliest): the log start offset;
//   - -1 (latest): the high watermark, or under read_committed
//     (IsolationLevel 1) the last stable offset (the first offset of the
//     oldest open transaction), as Kafka answers;
//   - -3 (max timestamp, v7+): the first record carrying the partition's
//     largest timestamp, with that timestamp (Partition.MaxTimestamp);
//     offset -1 and timestamp -1 for an empty partition, as Kafka answers;
//   - -4 (earliest local, v8+): the log start offset. Kafka's "local" log is
//     the part not yet tiered away; StreamHouse serves every segment,
//     uploaded or not, so its whole log is local in that sense;
//   - -5 (latest tiered, v9+) and -6 (earliest pending upload, v11+):
//     offset -1, as Kafka answers for a topic without tiered storage
//     (StreamHouse's object store is its primary storage, not a KIP-405
//     tier);
//   - >= 0: the earliest offset whose record timestamp is at least it,
//     with that record's timestamp (Partition.OffsetForTimestamp); when
//     every record is older, offset -1 and timestamp -1, as Kafka answers;
//   - any other negative value: INVALID_REQUEST.
//
// Timestamp -1 and -2 answer timestamp -1. The leader epoch is always 0.
// CurrentLeaderEpoch other than -1 and 0 gets FENCED_LEADER_EPOCH /
// UNKNOWN_LEADER_EPOCH.
//
// Version notes:
//   - v0 (old-style offset lists) is not served: no current client needs
//     it and Kafka 4 dropped it too.
//   - v2: isolation level. v4: leader epochs. v5: no change
//     for us. v6: flexible. v7-v9 and v11: the special timestamps above.
//   - v10: TimeoutMillis, the bound on a remote-storage lookup; every
//     lookup here is bounded by the request's context instead, so it is
//     ignored (UNSUPPORTED.md).

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Special ListOffsets timestamps.
const (
	listLatest                = -1
	listEarliest              = -2
	listMaxTimestamp          = -3
	listEarliestLocal         = -4
	listLatestTiered          = -5
	listEarliestPendingUpload = -6
)

func (s *Server) handleListOffsets(ctx context.Context, r *request) (kmsg.Response, error) {
	req := r.body.(*kmsg.ListOffsetsRequest)
	resp := req.ResponseKind().(*kmsg.ListOffsetsResponse)
	resp.Topics = make([]kmsg.ListOffsetsResponseTopic, len(req.Topics))
	for i, rt := range req.Topics {
		st := &resp.Topics[i]
		st.Topic = rt.Topic
		st.Partitions = make([]kmsg.ListOffsetsResponseTopicPartition, len(rt.Partitions))
		for j, rp := range rt.Partitions {
			sp := &st.Partitions[j]
			sp.Default()
			sp.Partition = rp.Partition
			s.listOffset(ctx, req.Version, req.IsolationLevel == 1, rt.Topic, rp, sp)
		}
	}
	return resp, nil
}

func (s *Server) listOffset(ctx context.Context, version int16, committed bool, topic string, rp kmsg.ListOffsetsRequestTopicPartition, sp *kmsg.ListOffsetsResponseTopicPartition) {
	p, err := s.cfg.Log.Partition(topic, rp.Partition)
	if err != nil {
		sp.ErrorCode = errorCode(err)
		return
	}
	if code := epochCode(rp.CurrentLeaderEpoch); code != 0 {
		sp.ErrorCode = code
		return
	}
	sp.LeaderEpoch = leaderEpoch
	// record fills in a search's answer: the record found, or -1/-1.
	record := func(off, at int64, found bool, err error) {
		switch {
		case err != nil:
			sp.ErrorCode = errorCode(err)
			sp.LeaderEpoch = -1
		case found:
			sp.Offset, sp.Timestamp = off, at
		}
	}
	switch ts := rp.Timestamp; {
	case ts == listEarliest:
		sp.Offset, _ = p.Offsets()
	case ts == listLatest && committed:
		lso, err := p.LastStableOffset(ctx)
		record(lso, -1, true, err)
	case ts == listLatest:
		_, sp.Offset = p.Offsets()
	case ts == listMaxTimestamp && version >= 7:
		record(p.MaxTimestamp(ctx))
	case ts == listEarliestLocal && version >= 8:
		sp.Offset, _ = p.Offsets()
	case ts == listLatestTiered && version >= 9,
		ts == listEarliestPendingUpload && version >= 11:
		sp.LeaderEpoch = -1
	case ts >= 0:
		record(p.OffsetForTimestamp(ctx, ts))
	default:
		sp.ErrorCode = kerr.InvalidRequest.Code
		sp.LeaderEpoch = -1
	}
}
