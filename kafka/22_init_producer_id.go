package kafka

// InitProducerId (key 22): versions 0-5.
//
// Gives an idempotent producer a fresh producer ID with epoch 0 from the
// metadata store (meta.Store.AllocateProducerID: IDs are never reused,
// even across restarts). The per-partition sequence checks live in the
// log (log/producer.go).
//
// Transactions are not supported: a request with a TransactionalID gets
// INVALID_REQUEST (and no FindCoordinator, AddPartitionsToTxn, EndTxn...
// are served), so a transactional producer fails at its first step
// instead of misbehaving later.
//
// Version notes:
//   - v2: flexible.
//   - v3 (KIP-360): ProducerID/ProducerEpoch of a producer asking for a
//     new epoch. Kafka answers an idempotent (non-transactional) producer
//     with a fresh ID whatever they say, and so do we.
//   - v4, v5: no change for idempotent producers. TransactionTimeoutMillis
//     is ignored.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func (s *Server) handleInitProducerID(ctx context.Context, r *request) (kmsg.Response, error) {
	req := r.body.(*kmsg.InitProducerIDRequest)
	resp := req.ResponseKind().(*kmsg.InitProducerIDResponse)
	resp.ProducerID, resp.ProducerEpoch = -1, -1
	if req.TransactionalID != nil {
		resp.ErrorCode = kerr.InvalidRequest.Code
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
