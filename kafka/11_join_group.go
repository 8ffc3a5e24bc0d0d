package kafka

// JoinGroup (key 11): versions 0-9.
//
// The group coordinator's state machine (package groups) does the work: a
// member joins, the group rebalances, and the answer comes once the join
// phase completes (or at once for errors and retries). The connection
// waits meanwhile, as with Kafka. Errors: INVALID_GROUP_ID (empty group),
// INVALID_SESSION_TIMEOUT (outside Config.Groups' bounds),
// INCONSISTENT_GROUP_PROTOCOL (no protocol type or protocols, another
// protocol type, or no protocol in common with the members),
// UNKNOWN_MEMBER_ID, FENCED_INSTANCE_ID, MEMBER_ID_REQUIRED,
// REBALANCE_IN_PROGRESS (a second JoinGroup of the same member replaced
// this one), COORDINATOR_NOT_AVAILABLE (broker stopping).
//
// Version notes:
//   - v0: no RebalanceTimeoutMillis; the session timeout is used.
//   - v4: a member without ID gets MEMBER_ID_REQUIRED and its ID (KIP-394);
//     v0-v3 members join at once.
//   - v5: InstanceID (static membership, KIP-345): a known instance
//     rejoining without member ID replaces its old member ID, which is
//     fenced; a Stable group whose protocol does not change skips the
//     rebalance. v6: flexible. v7: ProtocolType in the answer.
//   - v8: Reason (logged nowhere, ignored).
//   - v9: SkipAssignment (KIP-814): a static leader replaced without a
//     rebalance is told not to reassign; before v9 that case rebalances.

import (
	"context"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/streamhouse/streamhouse/kafka/groups"
)

func (s *Server) handleJoinGroup(ctx context.Context, r *request) (kmsg.Response, error) {
	req := r.body.(*kmsg.JoinGroupRequest)
	ch := make(chan *kmsg.JoinGroupResponse, 1)
	s.groups.Join(ctx, req, r.client(), func(resp *kmsg.JoinGroupResponse) {
		select {
		case ch <- resp:
		default: // answered already; cannot happen
		}
	})
	waitStart := time.Now()
	select {
	case resp := <-ch:
		r.waited += time.Since(waitStart)
		return resp, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// client returns who sent r, as DescribeGroups reports it (Kafka's client
// host has a leading slash).
func (r *request) client() groups.Client {
	cl := groups.Client{Host: "/" + r.clientHost}
	if r.clientID != nil {
		cl.ID = *r.clientID
	}
	return cl
}
