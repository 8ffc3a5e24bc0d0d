package kafka

// EndTxn (key 26): versions 0-5.
//
// Commits or aborts the running transaction of a transactional ID
// (txn.Coordinator.EndTxn): the decision (PrepareCommit or PrepareAbort)
// is stored in meta, a COMMIT or ABORT marker is written to every
// partition of the transaction and fsynced, then the completion is stored
// together with the fate of the transaction's pending offsets (committed
// to their groups, or dropped). Kafka answers once the decision is stored
// and writes the markers afterwards; we answer after the markers, so a
// read_committed consumer that is told the commit succeeded already sees
// it. If the markers or the completion fail once the decision is stored,
// the answer is still success: the decision stands and the coordinator
// finishes it in the background (the transactional ID answers
// CONCURRENT_TRANSACTIONS meanwhile), and after a restart before serving.
//
// Errors: INVALID_REQUEST (empty transactional ID),
// INVALID_PRODUCER_ID_MAPPING (unknown transactional ID or another
// producer ID), PRODUCER_FENCED (not the current epoch), INVALID_TXN_STATE
// (a commit after an abort or the reverse, or ending a transaction that
// never started), CONCURRENT_TRANSACTIONS (the same end is in progress),
// COORDINATOR_NOT_AVAILABLE. Retrying a completed commit (or abort)
// succeeds.
//
// Version notes:
//   - v1: same as v0. v2: PRODUCER_FENCED; below it INVALID_PRODUCER_EPOCH.
//     v3: flexible. v4: may answer TRANSACTION_ABORTABLE, which we never do.
//   - v5 (KIP-890 part 2, transaction version 2): every commit and abort
//     bumps the epoch (to a new producer ID when it runs out) and the
//     response carries the producer ID and epoch of the next transaction;
//     a retry is recognized by the epoch before the bump; an abort of a
//     transaction that added nothing succeeds and bumps too. Clients use
//     v5 only when ApiVersions finalizes transaction.version 2, which this
//     broker advertises only with Config.TransactionV2
//     (18_api_versions.go).

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func (s *Server) handleEndTxn(ctx context.Context, r *request) (kmsg.Response, error) {
	req := r.body.(*kmsg.EndTxnRequest)
	resp := req.ResponseKind().(*kmsg.EndTxnResponse)
	resp.ProducerID, resp.ProducerEpoch = -1, -1
	if req.TransactionalID == "" {
		resp.ErrorCode = kerr.InvalidRequest.Code
		return resp, nil
	}
	pid, epoch, err := s.txn.EndTxn(ctx, req.TransactionalID, req.ProducerID, req.ProducerEpoch, req.Commit, req.Version >= 5)
	if err != nil {
		s.logTxnError("EndTxn", req.TransactionalID, err)
		resp.ErrorCode = txnCode(err, req.Version, 2, -1)
		return resp, nil
	}
	if req.Version >= 5 {
		resp.ProducerID, resp.ProducerEpoch = pid, epoch
	}
	return resp, nil
}
