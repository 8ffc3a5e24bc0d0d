package kafka

// WriteTxnMarkers (key 27): versions 1-2.
//
// In Kafka the transaction coordinator sends this to partition leaders;
// here the coordinator is in process (kafka/txn writes markers through
// log.Manager.WriteTxnMarkers), so the request comes only from
// administrators: kafka-transactions.sh abort (Admin.abortTransaction)
// finds a hanging transaction's producer with DescribeProducers and sends
// an ABORT marker for one partition. Each listed partition gets the
// marker written and fsynced before the answer, with the producer ID and
// epoch given; the partition's open transaction of that producer ends
// there. The coordinator's own state is not changed: the transaction's
// EndTxn or timeout later writes its markers again, which is harmless.
//
// Per partition: UNKNOWN_TOPIC_OR_PARTITION; INVALID_PRODUCER_EPOCH for an
// epoch below the producer's in the partition (the marker would be from
// a fenced incarnation); KAFKA_STORAGE_ERROR when the write fails.
//
// Version notes:
//   - v0 is not served: Kafka 4 removed it. v1: flexible.
//   - v2: TransactionVersion, which changes nothing in the marker.
//   - CoordinatorEpoch is stored in the marker's value, as Kafka does.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/streamhouse/streamhouse/log"
)

func (s *Server) handleWriteTxnMarkers(ctx context.Context, r *request) (kmsg.Response, error) {
	req := r.body.(*kmsg.WriteTxnMarkersRequest)
	resp := req.ResponseKind().(*kmsg.WriteTxnMarkersResponse)
	resp.Markers = make([]kmsg.WriteTxnMarkersResponseMarker, len(req.Markers))
	for i, m := range req.Markers {
		rm := &resp.Markers[i]
		rm.ProducerID = m.ProducerID
		rm.Topics = make([]kmsg.WriteTxnMarkersResponseMarkerTopic, len(m.Topics))
		for j, t := range m.Topics {
			rt := &rm.Topics[j]
			rt.Topic = t.Topic
			rt.Partitions = make([]kmsg.WriteTxnMarkersResponseMarkerTopicPartition, len(t.Partitions))
			for k, part := range t.Partitions {
				rp := &rt.Partitions[k]
				rp.Partition = part
				if _, err := s.cfg.Log.Partition(t.Topic, part); err != nil {
					rp.ErrorCode = errorCode(err)
					continue
				}
				err := s.cfg.Log.WriteTxnMarkers(ctx, []log.TxnMarker{{Topic: t.Topic, Partition: part,
					ProducerID: m.ProducerID, ProducerEpoch: m.ProducerEpoch, Commit: m.Committed, CoordinatorEpoch: m.CoordinatorEpoch}})
				if err != nil {
					s.logger.Warn("WriteTxnMarkers failed", "topic", t.Topic, "partition", part, "producer_id", m.ProducerID, "err", err)
					rp.ErrorCode = errorCode(err)
					continue
				}
				s.logger.Info("transaction marker written by an administrator", "topic", t.Topic, "partition", part,
					"producer_id", m.ProducerID, "producer_epoch", m.ProducerEpoch, "commit", m.Committed)
			}
		}
	}
	return resp, nil
}
