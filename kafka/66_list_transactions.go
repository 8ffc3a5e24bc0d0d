package kafka

// ListTransactions (key 66): versions 0-2.
//
// Lists the transactional IDs the transaction coordinator knows
// (txn.Coordinator.List), sorted by ID, with producer ID and state. Empty
// filters select everything; a state filter that names no Kafka state is
// echoed in UnknownStateFilters (and matches nothing, as in Kafka).
//
// Version notes:
//   - v1: DurationFilterMillis: when not negative, only IDs whose running
//     transaction started more than that long ago, and those running none
//     (Kafka counts their start as -1).
//   - v2 (KIP-1152): TransactionalIDPattern, a regular expression in RE2
//     syntax (Go's regexp is RE2, as is the RE2/J Kafka uses) that must
//     match the whole ID, as Java's Matcher.matches does; empty or null
//     selects all; one that does not compile gets
//     INVALID_REGULAR_EXPRESSION.

import (
	"context"
	"regexp"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/streamhouse/streamhouse/kafka/txn"
	"github.com/streamhouse/streamhouse/meta"
)

// txnStates are Kafka's transaction states by name.
var txnStates = func() map[string]meta.TxnState {
	m := make(map[string]meta.TxnState)
	for s := meta.TxnEmpty; s <= meta.TxnPrepareEpochFence; s++ {
		m[s.String()] = s
	}
	return m
}()

func (s *Server) handleListTransactions(_ context.Context, r *request) (kmsg.Response, error) {
	req := r.body.(*kmsg.ListTransactionsRequest)
	resp := req.ResponseKind().(*kmsg.ListTransactionsResponse)
	filter := txn.Filter{ProducerIDs: req.ProducerIDFilters, MinDurationMs: -1}
	for _, name := range req.StateFilters {
		st, ok := txnStates[name]
		if !ok {
			resp.UnknownStateFilters = append(resp.UnknownStateFilters, name)
			continue
		}
		filter.States = append(filter.States, st)
	}
	if len(req.StateFilters) > 0 && len(filter.States) == 0 {
		return resp, nil // only unknown states: nothing matches
	}
	if req.Version >= 1 {
		filter.MinDurationMs = req.DurationFilterMillis
	}
	if req.Version >= 2 && req.TransactionalIDPattern != nil && *req.TransactionalIDPattern != "" {
		_, err := regexp.Compile(*req.TransactionalIDPattern) // the pattern alone must be valid
		if err == nil {
			filter.Pattern, err = regexp.Compile(`^(?:` + *req.TransactionalIDPattern + `)$`)
		}
		if err != nil {
			resp.ErrorCode = kerr.InvalidRegularExpression.Code
			return resp, nil
		}
	}
	for _, t := range s.txn.List(filter) {
		resp.TransactionStates = append(resp.TransactionStates, kmsg.ListTransactionsResponseTransactionState{
			TransactionalID: t.TransactionalID, ProducerID: t.ProducerID, TransactionState: t.State.String()})
	}
	return resp, nil
}
