package kafka

// InitProducerId (key 22): versions 0-5.
//
// Without a TransactionalID, gives an idempotent producer a fresh producer
// ID with epoch 0 from the metadata store (meta.Store.AllocateProducerID:
// IDs are never reused, even across restarts). The per-partition sequence
// checks live in the log (log/producer.go).
//
// With a TransactionalID, the transaction coordinator (package txn,
// txn.Coordinator.InitProducerID) answers: a new transactional ID gets a
// fresh producer ID with epoch 0, a known one its epoch bumped (fencing
// the previous producer; a new producer ID once the epoch is exhausted).
// A transaction still running under the ID is aborted first, in the same
// call: Kafka answers CONCURRENT_TRANSACTIONS and aborts in the
// background, we answer the bumped epoch once the abort is complete (or
// CONCURRENT_TRANSACTIONS if its markers cannot be written yet). An empty
// TransactionalID is INVALID_REQUEST; TransactionTimeoutMillis must be in
// (0, transaction.max.timeout.ms] (INVALID_TRANSACTION_TIMEOUT).
//
// Version notes:
//   - v2: flexible.
//   - v3 (KIP-360): ProducerID/ProducerEpoch of a producer asking for a
//     new epoch. Kafka answers an idempotent (non-transactional) producer
//     with a fresh ID whatever they say, and so do we. A transactional one
//     gets its epoch bumped if it is current, the same epoch again if it
//     retries a bump (it gives the epoch before it), PRODUCER_FENCED
//     otherwise; one of the two -1 without the other is INVALID_REQUEST.
//   - v4: PRODUCER_FENCED; below v4 it is INVALID_PRODUCER_EPOCH.
//   - v5: no change (TRANSACTION_ABORTABLE is never answered here).

import (
	"context"
	"errors"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/streamhouse/streamhouse/kafka/txn"
)

func (s *Server) handleInitProducerID(ctx context.Context, r *request) (kmsg.Response, error) {
	req := r.body.(*kmsg.InitProducerIDRequest)
	resp := req.ResponseKind().(*kmsg.InitProducerIDResponse)
	resp.ProducerID, resp.ProducerEpoch = -1, -1
	if req.TransactionalID != nil {
		s.initTransactional(ctx, req, resp)
		return resp, nil
	}
	pid, err := s.cfg.Meta.AllocateProducerID(ctx, "")
	if err != nil {
		s.logger.Error("allocating a producer ID failed", "err", err)
		resp.ErrorCode = kerr.CoordinatorNotAvailable.Code
		return resp, nil
	}
	resp.ProducerID, resp.ProducerEpoch = pid.ID, pid.Epoch
	return resp, nil
}

// initTransactional answers an InitProducerId with a transactional ID.
func (s *Server) initTransactional(ctx context.Context, req *kmsg.InitProducerIDRequest, resp *kmsg.InitProducerIDResponse) {
	id := *req.TransactionalID
	pid, epoch := int64(-1), int16(-1)
	if req.Version >= 3 {
		pid, epoch = req.ProducerID, req.ProducerEpoch
	}
	if id == "" || (pid == -1) != (epoch == -1) {
		resp.ErrorCode = kerr.InvalidRequest.Code
		return
	}
	newPID, newEpoch, err := s.txn.InitProducerID(ctx, id, req.TransactionTimeoutMillis, pid, epoch)
	if err != nil {
		s.logTxnError("InitProducerId", id, err)
		resp.ErrorCode = txnCode(err, req.Version, 4, -1)
		return
	}
	resp.ProducerID, resp.ProducerEpoch = newPID, newEpoch
}

// logTxnError logs a transaction coordinator error: a failure of the
// coordinator (its store) as a warning, a client's misuse at debug level.
func (s *Server) logTxnError(api, txnID string, err error) {
	if errors.Is(err, txn.ErrNotAvailable) {
		s.logger.Warn("transaction coordinator request failed", "api", api, "transactional_id", txnID, "err", err)
		return
	}
	s.logger.Debug("transaction request refused", "api", api, "transactional_id", txnID, "err", err)
}
