package kafka

// DescribeTransactions (key 65): version 0.
//
// Describes transactional IDs from the transaction coordinator
// (txn.Coordinator.Describe): state (Kafka's names: Empty, Ongoing,
// PrepareCommit, PrepareAbort, CompleteCommit, CompleteAbort), producer ID
// and epoch, transaction timeout, the start time of the running
// transaction (-1 when none runs) and its partitions, grouped by topic.
// An unknown ID gets TRANSACTIONAL_ID_NOT_FOUND, an empty one
// INVALID_REQUEST. Kafka lists a transaction's consumer groups as the
// __consumer_offsets partitions they map to; we keep groups apart
// (AddOffsetsToTxn) and list only real partitions.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/streamhouse/streamhouse/kafka/txn"
)

func (s *Server) handleDescribeTransactions(_ context.Context, r *request) (kmsg.Response, error) {
	req := r.body.(*kmsg.DescribeTransactionsRequest)
	resp := req.ResponseKind().(*kmsg.DescribeTransactionsResponse)
	for _, id := range req.TransactionalIDs {
		st := kmsg.NewDescribeTransactionsResponseTransactionState()
		st.TransactionalID = id
		if id == "" {
			st.ErrorCode = kerr.InvalidRequest.Code
			resp.TransactionStates = append(resp.TransactionStates, st)
			continue
		}
		t, err := s.txn.Describe(id)
		if err != nil {
			st.ErrorCode = errorCode(err)
			resp.TransactionStates = append(resp.TransactionStates, st)
			continue
		}
		st.State, st.TimeoutMillis, st.StartTimestamp = t.State.String(), t.TimeoutMs, txn.StartMs(t)
		st.ProducerID, st.ProducerEpoch = t.ProducerID, t.ProducerEpoch
		for _, tp := range t.Partitions { // sorted by topic
			if n := len(st.Topics); n == 0 || st.Topics[n-1].Topic != tp.Topic {
				st.Topics = append(st.Topics, kmsg.DescribeTransactionsResponseTransactionStateTopic{Topic: tp.Topic})
			}
			last := &st.Topics[len(st.Topics)-1]
			last.Partitions = append(last.Partitions, tp.Partition)
		}
		resp.TransactionStates = append(resp.TransactionStates, st)
	}
	return resp, nil
}
