package kafka

// ConsumerGroupHeartbeat (key 68): versions 0-1 (KIP-848, the consumer
// group protocol).
//
// One request joins (MemberEpoch 0), heartbeats (the member's epoch) or
// leaves (-1; -2 for a static member leaving for now). The broker keeps
// the group epoch, computes the target assignment with the "uniform" or
// "range" assignor (ServerAssignor; default uniform) and answers each
// member with its epoch and, when it changed or the member's view differs,
// its assignment; partitions move to a new owner only once the previous
// owner stopped reporting them (package groups, consumer.go). Fields
// left null in a heartbeat keep their previous value; a null
// TopicPartitions means the member's partitions did not change.
//
// Request checks, as Kafka's: INVALID_REQUEST for an empty group ID, an
// empty member ID (v1; v0 joins without one get a broker-generated ID),
// an empty instance or rack ID, an epoch below -2, and, when joining, a
// missing rebalance timeout, missing subscription or non-empty
// TopicPartitions; UNSUPPORTED_ASSIGNOR for an assignor other than
// uniform or range; INVALID_REGULAR_EXPRESSION for a regex RE2 does not
// accept. Group errors: GROUP_ID_NOT_FOUND (no such group for a
// heartbeat, or a classic group with members), UNKNOWN_MEMBER_ID,
// FENCED_MEMBER_EPOCH, FENCED_INSTANCE_ID, UNRELEASED_INSTANCE_ID,
// COORDINATOR_NOT_AVAILABLE (broker stopping).
//
// Version notes:
//   - v0: the broker generates member IDs; no SubscribedTopicRegex.
//   - v1: the client generates its member ID (a UUID); SubscribedTopicRegex,
//     matched against whole topic names, re-evaluated on every heartbeat
//     so that new matching topics join the subscription.

import (
	"context"

	"github.com/google/uuid"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/streamhouse/streamhouse/kafka/groups"
)

func (s *Server) handleConsumerGroupHeartbeat(ctx context.Context, r *request) (kmsg.Response, error) {
	req := r.body.(*kmsg.ConsumerGroupHeartbeatRequest)
	resp := req.ResponseKind().(*kmsg.ConsumerGroupHeartbeatResponse)
	if req.Version == 0 && req.MemberEpoch == 0 && req.MemberID == "" {
		req.MemberID = uuid.NewString()
	}
	if code, msg := groups.CheckHeartbeat(req); code != 0 {
		resp.ErrorCode, resp.ErrorMessage = code, kmsg.StringPtr(msg)
		return resp, nil
	}
	return s.groups.ConsumerHeartbeat(ctx, req, r.client(), s.topicSnapshot().groups), nil
}
