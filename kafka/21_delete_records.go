package kafka

// DeleteRecords (key 21): versions 0-2.
//
// Per partition, moves the log start offset up to Offset
// (log.Partition.DeleteRecordsBefore: synced, recorded in meta, then in
// memory); -1 means the high watermark. The answer's LowWatermark is the
// log start offset afterwards. Reads below it then get OFFSET_OUT_OF_RANGE
// and ListOffsets(earliest) answers it; retention deletes the segments
// wholly below it on its next pass.
//   - an offset at or below the current log start changes nothing and
//     succeeds, as in Kafka;
//   - above the high watermark, or negative other than -1:
//     OFFSET_OUT_OF_RANGE;
//   - UNKNOWN_TOPIC_OR_PARTITION for a missing topic or partition.
//
// Errors carry LowWatermark -1. TimeoutMillis is ignored (synchronous).
//
// Version notes: v1 changes throttle semantics only; v2 is flexible.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// deleteToHighWatermark is DeleteRecords' "up to the high watermark".
const deleteToHighWatermark = -1

func (s *Server) handleDeleteRecords(ctx context.Context, r *request) (kmsg.Response, error) {
	req := r.body.(*kmsg.DeleteRecordsRequest)
	resp := req.ResponseKind().(*kmsg.DeleteRecordsResponse)
	resp.Topics = make([]kmsg.DeleteRecordsResponseTopic, len(req.Topics))
	for i, rt := range req.Topics {
		st := &resp.Topics[i]
		st.Default()
		st.Topic = rt.Topic
		st.Partitions = make([]kmsg.DeleteRecordsResponseTopicPartition, len(rt.Partitions))
		for j, rp := range rt.Partitions {
			sp := &st.Partitions[j]
			sp.Default()
			sp.Partition = rp.Partition
			low, code := s.deleteRecords(ctx, rt.Topic, rp)
			sp.LowWatermark, sp.ErrorCode = low, code
		}
	}
	return resp, nil
}

// deleteRecords serves one partition: the new low watermark, or -1 and an
// error code.
func (s *Server) deleteRecords(ctx context.Context, topic string, rp kmsg.DeleteRecordsRequestTopicPartition) (int64, int16) {
	p, err := s.cfg.Log.Partition(topic, rp.Partition)
	if err != nil {
		return -1, errorCode(err)
	}
	off := rp.Offset
	if off == deleteToHighWatermark {
		_, off = p.Offsets()
	}
	if off < 0 {
		return -1, kerr.OffsetOutOfRange.Code
	}
	low, err := p.DeleteRecordsBefore(ctx, off)
	if err != nil {
		return -1, errorCode(err)
	}
	return low, 0
}
