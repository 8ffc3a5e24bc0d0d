package kafka

// DescribeProducers (key 61): version 0.
//
// Lists, per partition, the producers the partition log remembers
// (log.Partition.Producers: idempotent and transactional ones, sorted by
// producer ID): epoch, last sequence, last append time, and the first
// offset of the producer's open transaction in the partition (-1 if
// none), which is what kafka-transactions.sh find-hanging reads.
// CoordinatorEpoch is -1 (Kafka's coordinators have epochs; ours, a single
// broker's, does not). A partition of an unknown topic, or outside its
// topic's range, gets UNKNOWN_TOPIC_OR_PARTITION; the others are answered
// regardless.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/streamhouse/streamhouse/log"
)

func (s *Server) handleDescribeProducers(ctx context.Context, r *request) (kmsg.Response, error) {
	req := r.body.(*kmsg.DescribeProducersRequest)
	resp := req.ResponseKind().(*kmsg.DescribeProducersResponse)
	for _, rt := range req.Topics {
		st := kmsg.NewDescribeProducersResponseTopic()
		st.Topic = rt.Topic
		for _, p := range rt.Partitions {
			sp := kmsg.NewDescribeProducersResponseTopicPartition()
			sp.Partition = p
			part, err := s.cfg.Log.Partition(rt.Topic, p)
			var producers []log.ProducerInfo
			if err == nil {
				producers, err = part.Producers(ctx)
			}
			if err != nil {
				sp.ErrorCode, sp.ErrorMessage = errorCode(err), errorMessage(err)
				st.Partitions = append(st.Partitions, sp)
				continue
			}
			sp.ActiveProducers = make([]kmsg.DescribeProducersResponseTopicPartitionActiveProducer, 0, len(producers))
			for _, pi := range producers {
				ap := kmsg.NewDescribeProducersResponseTopicPartitionActiveProducer()
				ap.ProducerID, ap.ProducerEpoch = pi.ProducerID, int32(pi.Epoch)
				ap.LastSequence, ap.LastTimestamp = pi.LastSequence, pi.LastTimestamp
				ap.CoordinatorEpoch, ap.CurrentTxnStartOffset = pi.CoordinatorEpoch, pi.TxnStartOffset
				sp.ActiveProducers = append(sp.ActiveProducers, ap)
			}
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp, nil
}
