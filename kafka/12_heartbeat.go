package kafka

// Heartbeat (key 12): versions 0-4.
//
// Restarts the member's session timer. Errors: INVALID_GROUP_ID,
// UNKNOWN_MEMBER_ID (also for an unknown group), FENCED_INSTANCE_ID,
// ILLEGAL_GENERATION, REBALANCE_IN_PROGRESS (the group is preparing a
// rebalance: rejoin), COORDINATOR_NOT_AVAILABLE (broker stopping).
//
// Version notes: v1: ThrottleMillis. v3: InstanceID. v4: flexible.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"
)

func (s *Server) handleHeartbeat(ctx context.Context, r *request) (kmsg.Response, error) {
	req := r.body.(*kmsg.HeartbeatRequest)
	resp := req.ResponseKind().(*kmsg.HeartbeatResponse)
	resp.ErrorCode = s.groups.Heartbeat(ctx, req)
	return resp, nil
}
