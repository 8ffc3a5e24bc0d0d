package kafka

// DescribeGroups (key 15): versions 0-6.
//
// Per group: state, protocol type, members (ID, instance ID, client ID and
// host); the protocol and each member's metadata and assignment only when
// the group is Stable, as Kafka does. A group known only from committed
// offsets (e.g. after a restart) is Empty. An unknown group is reported
// Dead, with GROUP_ID_NOT_FOUND from v6 (KIP-1043).
//
// Version notes: v1: ThrottleMillis. v3: AuthorizedOperations (without
// ACLs: READ, DELETE, DESCRIBE). v4: member InstanceID. v5: flexible.
// v6: GROUP_ID_NOT_FOUND and ErrorMessage.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// groupOperations is the authorized-operation bit set DescribeGroups and
// ConsumerGroupDescribe report when asked (READ, DELETE, DESCRIBE): no
// ACLs, all allowed.
const groupOperations = 1<<3 | 1<<6 | 1<<8

func (s *Server) handleDescribeGroups(ctx context.Context, r *request) (kmsg.Response, error) {
	req := r.body.(*kmsg.DescribeGroupsRequest)
	resp := req.ResponseKind().(*kmsg.DescribeGroupsResponse)
	for _, name := range req.Groups {
		sg := s.groups.Describe(ctx, name, req.Version)
		if req.IncludeAuthorizedOperations {
			sg.AuthorizedOperations = groupOperations
		}
		resp.Groups = append(resp.Groups, sg)
	}
	return resp, nil
}
