package kafka

// AddPartitionsToTxn (key 24): versions 0-5.
//
// Adds partitions to the running transaction of a transactional ID,
// starting one if none runs (txn.Coordinator.AddPartitions); a producer
// must add a partition before its transactional batches for it are
// accepted. Checks, in order, per transaction:
//   - an empty transactional ID: INVALID_REQUEST on every partition;
//   - partitions of unknown topics, or outside their topic's range:
//     UNKNOWN_TOPIC_OR_PARTITION; partitions of the internal topic
//     __consumer_offsets: INVALID_TOPIC_EXCEPTION (offsets go through
//     AddOffsetsToTxn); if any partition fails these, the others get
//     OPERATION_NOT_ATTEMPTED and nothing is added, as Kafka does;
//   - the coordinator's answer, the same for every partition:
//     INVALID_PRODUCER_ID_MAPPING (unknown transactional ID or another
//     producer ID), PRODUCER_FENCED (not the current epoch),
//     CONCURRENT_TRANSACTIONS (the previous transaction is being
//     completed), COORDINATOR_NOT_AVAILABLE (its store failed).
//
// Version notes:
//   - v1: same as v0. v2: PRODUCER_FENCED; below it INVALID_PRODUCER_EPOCH.
//     v3: flexible.
//   - v4: brokers' batched form (Transactions, a top-level ErrorCode),
//     answered per transaction in request order, and VerifyOnly
//     (KIP-890 part 1: txn.Coordinator.VerifyPartitions): a partition in
//     the transaction gets no error, one not in it INVALID_TXN_STATE,
//     and nothing changes. Kafka serves v4+ to brokers only
//     (CLUSTER_ACTION); we have no ACLs and serve it to anyone.
//   - v5: a verified partition not in the transaction gets
//     TRANSACTION_ABORTABLE (KIP-890).

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/streamhouse/streamhouse/log"
	"github.com/streamhouse/streamhouse/meta"
)

// txnPartitions is one transaction of an AddPartitionsToTxn request.
type txnPartitions struct {
	id         string
	producerID int64
	epoch      int16
	verifyOnly bool
	topics     []kmsg.AddPartitionsToTxnRequestTransactionTopic
}

func (s *Server) handleAddPartitionsToTxn(ctx context.Context, r *request) (kmsg.Response, error) {
	req := r.body.(*kmsg.AddPartitionsToTxnRequest)
	resp := req.ResponseKind().(*kmsg.AddPartitionsToTxnResponse)
	if req.Version < 4 {
		tx := txnPartitions{id: req.TransactionalID, producerID: req.ProducerID, epoch: req.ProducerEpoch}
		for _, t := range req.Topics {
			tx.topics = append(tx.topics, kmsg.AddPartitionsToTxnRequestTransactionTopic{Topic: t.Topic, Partitions: t.Partitions})
		}
		for _, t := range s.addPartitions(ctx, req.Version, tx) {
			rt := kmsg.AddPartitionsToTxnResponseTopic{Topic: t.Topic}
			for _, p := range t.Partitions {
				rt.Partitions = append(rt.Partitions, kmsg.AddPartitionsToTxnResponseTopicPartition{Partition: p.Partition, ErrorCode: p.ErrorCode})
			}
			resp.Topics = append(resp.Topics, rt)
		}
		return resp, nil
	}
	for _, rt := range req.Transactions {
		tx := txnPartitions{id: rt.TransactionalID, producerID: rt.ProducerID, epoch: rt.ProducerEpoch,
			verifyOnly: rt.VerifyOnly, topics: rt.Topics}
		st := kmsg.NewAddPartitionsToTxnResponseTransaction()
		st.TransactionalID, st.Topics = rt.TransactionalID, s.addPartitions(ctx, req.Version, tx)
		resp.Transactions = append(resp.Transactions, st)
	}
	return resp, nil
}

// addPartitions serves one transaction of the request and returns its
// per-partition answers.
func (s *Server) addPartitions(ctx context.Context, version int16, tx txnPartitions) []kmsg.AddPartitionsToTxnResponseTransactionTopic {
	out := make([]kmsg.AddPartitionsToTxnResponseTransactionTopic, len(tx.topics))
	var parts []meta.TopicPartition
	var slots []*kmsg.AddPartitionsToTxnResponseTransactionTopicPartition
	var refused []int16 // per slot: 0, or the partition's own error
	anyRefused := false
	for i, rt := range tx.topics {
		out[i].Topic = rt.Topic
		out[i].Partitions = make([]kmsg.AddPartitionsToTxnResponseTransactionTopicPartition, len(rt.Partitions))
		t, terr := s.cfg.Log.Topic(rt.Topic)
		for j, p := range rt.Partitions {
			sp := &out[i].Partitions[j]
			sp.Partition = p
			code := int16(0)
			switch {
			case terr != nil || p < 0 || p >= t.PartitionCount:
				code = kerr.UnknownTopicOrPartition.Code
			case log.IsInternalTopic(rt.Topic):
				code = kerr.InvalidTopicException.Code
			}
			anyRefused = anyRefused || code != 0
			parts = append(parts, meta.TopicPartition{Topic: rt.Topic, Partition: p})
			slots, refused = append(slots, sp), append(refused, code)
		}
	}
	switch {
	case tx.id == "":
		for _, sp := range slots {
			sp.ErrorCode = kerr.InvalidRequest.Code
		}
	case anyRefused:
		for i, sp := range slots {
			sp.ErrorCode = refused[i]
			if sp.ErrorCode == 0 {
				sp.ErrorCode = kerr.OperationNotAttempted.Code
			}
		}
	case tx.verifyOnly:
		in, err := s.txn.VerifyPartitions(ctx, tx.id, tx.producerID, tx.epoch, parts)
		for i, sp := range slots {
			switch {
			case err != nil:
				sp.ErrorCode = txnCode(err, version, 2, -1)
			case !in[i] && version >= 5:
				sp.ErrorCode = kerr.TransactionAbortable.Code
			case !in[i]:
				sp.ErrorCode = kerr.InvalidTxnState.Code
			}
		}
	default:
		err := s.txn.AddPartitions(ctx, tx.id, tx.producerID, tx.epoch, parts)
		if err != nil {
			s.logTxnError("AddPartitionsToTxn", tx.id, err)
		}
		for _, sp := range slots {
			sp.ErrorCode = txnCode(err, version, 2, -1)
		}
	}
	return out
}
