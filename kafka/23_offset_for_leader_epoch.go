package kafka

// OffsetForLeaderEpoch (key 23): versions 0-4.
//
// Clients use it to detect log truncation after a leader change (KIP-320).
// This broker leads every partition forever at leader epoch 0, so per
// partition:
//   - CurrentLeaderEpoch (v2+) other than -1 or 0: FENCED_LEADER_EPOCH
//     below ours, UNKNOWN_LEADER_EPOCH above (as Fetch and ListOffsets);
//   - LeaderEpoch 0: epoch 0 and end offset = the high watermark (our log
//     end: there are no followers, so the two are the same);
//   - any other LeaderEpoch (-1, or an epoch we never had): epoch -1 and
//     end offset -1 (Kafka's UNDEFINED_EPOCH / UNDEFINED_EPOCH_OFFSET);
//   - UNKNOWN_TOPIC_OR_PARTITION for a missing topic or partition.
//
// Version notes:
//   - v1: LeaderEpoch in the answer. v2: CurrentLeaderEpoch (fencing).
//   - v3: ReplicaID: ignored (no followers; every caller is answered as a
//     consumer). v4: flexible.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"
)

func (s *Server) handleOffsetForLeaderEpoch(_ context.Context, r *request) (kmsg.Response, error) {
	req := r.body.(*kmsg.OffsetForLeaderEpochRequest)
	resp := req.ResponseKind().(*kmsg.OffsetForLeaderEpochResponse)
	resp.Topics = make([]kmsg.OffsetForLeaderEpochResponseTopic, len(req.Topics))
	for i, rt := range req.Topics {
		st := &resp.Topics[i]
		st.Default()
		st.Topic = rt.Topic
		st.Partitions = make([]kmsg.OffsetForLeaderEpochResponseTopicPartition, len(rt.Partitions))
		for j, rp := range rt.Partitions {
			sp := &st.Partitions[j]
			sp.Default()
			sp.Partition = rp.Partition
			sp.LeaderEpoch, sp.EndOffset = -1, -1
			p, err := s.cfg.Log.Partition(rt.Topic, rp.Partition)
			if err != nil {
				sp.ErrorCode = errorCode(err)
				continue
			}
			if code := epochCode(rp.CurrentLeaderEpoch); code != 0 {
				sp.ErrorCode = code
				continue
			}
			if rp.LeaderEpoch == leaderEpoch {
				_, hwm := p.Offsets()
				sp.LeaderEpoch, sp.EndOffset = leaderEpoch, hwm
			}
		}
	}
	return resp, nil
}
