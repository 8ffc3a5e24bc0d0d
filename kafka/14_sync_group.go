package kafka

// SyncGroup (key 14): versions 0-5.
//
// The leader's SyncGroup carries every member's assignment (computed on
// the client: range, roundrobin, sticky, cooperative-sticky all work); it
// makes the group Stable and answers every waiting SyncGroup. A follower
// that syncs before the leader waits; one that syncs after gets its
// assignment at once. Members the leader leaves out get an empty
// assignment. Errors: INVALID_GROUP_ID, UNKNOWN_MEMBER_ID (also for an
// unknown group), FENCED_INSTANCE_ID, ILLEGAL_GENERATION,
// INCONSISTENT_GROUP_PROTOCOL (v5 ProtocolType/Protocol not the group's),
// REBALANCE_IN_PROGRESS (a new rebalance began), COORDINATOR_NOT_AVAILABLE
// (broker stopping).
//
// Version notes: v3: InstanceID. v4: flexible. v5: ProtocolType and
// Protocol, checked and answered.

import (
	"context"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

func (s *Server) handleSyncGroup(ctx context.Context, r *request) (kmsg.Response, error) {
	req := r.body.(*kmsg.SyncGroupRequest)
	ch := make(chan *kmsg.SyncGroupResponse, 1)
	s.groups.Sync(ctx, req, func(resp *kmsg.SyncGroupResponse) {
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
