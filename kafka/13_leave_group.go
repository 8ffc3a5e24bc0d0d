package kafka

// LeaveGroup (key 13): versions 0-5.
//
// Removes members and rebalances the group. Errors per member:
// UNKNOWN_MEMBER_ID (also for an unknown group), FENCED_INSTANCE_ID (an
// instance ID whose member ID is another); INVALID_GROUP_ID for the whole
// request.
//
// Version notes:
//   - v0-v2: one MemberID; its error is the top-level error.
//   - v3: a batch of members, each by member ID or instance ID (KIP-345).
//   - v4: flexible. v5: per-member Reason (ignored).

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"
)

func (s *Server) handleLeaveGroup(ctx context.Context, r *request) (kmsg.Response, error) {
	return s.groups.Leave(ctx, r.body.(*kmsg.LeaveGroupRequest)), nil
}
