package kafka

// AddOffsetsToTxn (key 25): versions 0-4.
//
// Adds a consumer group to the running transaction of a transactional ID,
// starting one if none runs (txn.Coordinator.AddOffsets), so that
// TxnOffsetCommit may then commit the group's offsets inside it. Kafka
// adds the group's __consumer_offsets partition to the transaction and
// writes a marker there when it ends; we keep offsets in meta and record
// the group instead: its pending offsets are committed or dropped with the
// transaction's completion, in one meta transaction.
//
// Errors: INVALID_REQUEST for an empty transactional ID, INVALID_GROUP_ID
// for an empty group, then as AddPartitionsToTxn: INVALID_PRODUCER_ID_MAPPING,
// PRODUCER_FENCED, CONCURRENT_TRANSACTIONS, COORDINATOR_NOT_AVAILABLE.
//
// Version notes: v1: same as v0. v2: PRODUCER_FENCED; below it
// INVALID_PRODUCER_EPOCH. v3: flexible. v4: may answer
// TRANSACTION_ABORTABLE (KIP-890), which we never do.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func (s *Server) handleAddOffsetsToTxn(ctx context.Context, r *request) (kmsg.Response, error) {
	req := r.body.(*kmsg.AddOffsetsToTxnRequest)
	resp := req.ResponseKind().(*kmsg.AddOffsetsToTxnResponse)
	switch {
	case req.TransactionalID == "":
		resp.ErrorCode = kerr.InvalidRequest.Code
	case req.Group == "":
		resp.ErrorCode = kerr.InvalidGroupID.Code
	default:
		err := s.txn.AddOffsets(ctx, req.TransactionalID, req.ProducerID, req.ProducerEpoch, req.Group)
		if err != nil {
			s.logTxnError("AddOffsetsToTxn", req.TransactionalID, err)
		}
		resp.ErrorCode = txnCode(err, req.Version, 2, -1)
	}
	return resp, nil
}
