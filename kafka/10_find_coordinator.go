package kafka

// FindCoordinator (key 10): versions 0-6.
//
// This broker coordinates every group and every transactional ID: a group
// key (type 0) or a transactional ID (type 1) always gets this broker's
// node ID and advertised address. Share groups (type 2, v6) are not
// supported: such keys get INVALID_REQUEST with a message saying so (a
// fatal error, rather than a retriable COORDINATOR_NOT_AVAILABLE that
// would make a client retry until it times out); so does any other key
// type.
//
// Version notes: v1: CoordinatorType, ErrorMessage, ThrottleMillis.
// v3: flexible. v4: batched CoordinatorKeys, answered per key (KIP-699).
// v5: may answer TRANSACTION_ABORTABLE, which we never do.
// v6: share-group keys (refused, see above).
//
// The first group lookup creates the internal topic __consumer_offsets, as
// Kafka does (internal_topics.go). Kafka's first transactional lookup
// creates __transaction_state likewise; our transaction state lives in
// meta and no such topic is created.

import (
	"context"
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Coordinator key types.
const (
	coordinatorGroup = 0
	coordinatorTxn   = 1
	coordinatorShare = 2
)

func (s *Server) handleFindCoordinator(ctx context.Context, r *request) (kmsg.Response, error) {
	req := r.body.(*kmsg.FindCoordinatorRequest)
	resp := req.ResponseKind().(*kmsg.FindCoordinatorResponse)
	host, port := s.advertisedTo(r)
	var code int16
	var msg *string
	switch req.CoordinatorType {
	case coordinatorGroup:
		s.ensureOffsetsTopic(ctx)
	case coordinatorTxn:
	case coordinatorShare:
		code, msg = kerr.InvalidRequest.Code, kmsg.StringPtr("share groups are not supported by this broker")
	default:
		code, msg = kerr.InvalidRequest.Code, kmsg.StringPtr(fmt.Sprintf("unknown coordinator type %d", req.CoordinatorType))
	}
	if req.Version < 4 {
		resp.ErrorCode, resp.ErrorMessage = code, msg
		resp.NodeID, resp.Host, resp.Port = s.cfg.NodeID, host, port
		if code != 0 {
			resp.NodeID, resp.Host, resp.Port = -1, "", -1
		}
		return resp, nil
	}
	for _, key := range req.CoordinatorKeys {
		c := kmsg.NewFindCoordinatorResponseCoordinator()
		c.Key, c.ErrorCode, c.ErrorMessage = key, code, msg
		c.NodeID, c.Host, c.Port = s.cfg.NodeID, host, port
		if code != 0 {
			c.NodeID, c.Host, c.Port = -1, "", -1
		}
		resp.Coordinators = append(resp.Coordinators, c)
	}
	return resp, nil
}
