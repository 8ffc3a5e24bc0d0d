package kafka

// ConsumerGroupDescribe (key 69): versions 0-1 (KIP-848).
//
// Per group: state (Empty, Assigning, Reconciling, Stable), group epoch,
// target assignment epoch, the assignor of the current target, and per
// member: IDs, rack, epoch, client ID and host, subscription (names and
// regex), current assignment and target assignment (topics by ID and
// name). A group that does not exist, or is a classic group, answers
// GROUP_ID_NOT_FOUND, as Kafka does.
//
// Version notes: v1: MemberType (always 1, consumer protocol: classic
// members cannot join consumer groups here). IncludeAuthorizedOperations:
// no ACLs; when asked, READ, DELETE and DESCRIBE.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"
)

func (s *Server) handleConsumerGroupDescribe(ctx context.Context, r *request) (kmsg.Response, error) {
	req := r.body.(*kmsg.ConsumerGroupDescribeRequest)
	resp := req.ResponseKind().(*kmsg.ConsumerGroupDescribeResponse)
	topics := s.topicSnapshot().groups
	for _, name := range req.Groups {
		sg := s.groups.ConsumerDescribe(ctx, name, req.Version, topics)
		if req.IncludeAuthorizedOperations && sg.ErrorCode == 0 {
			sg.AuthorizedOperations = groupOperations
		}
		resp.Groups = append(resp.Groups, sg)
	}
	return resp, nil
}
