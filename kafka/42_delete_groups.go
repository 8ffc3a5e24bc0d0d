package kafka

// DeleteGroups (key 42): versions 0-3.
//
// Deletes groups without members together with their committed offsets
// (in meta, so the gRPC front sees them gone too). Errors per group:
// GROUP_ID_NOT_FOUND (unknown, or only a name), NON_EMPTY_GROUP (the
// group has members), COORDINATOR_NOT_AVAILABLE (broker stopping).
//
// Version notes: v1: no change. v2: flexible. v3: ErrorMessage.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"
)

func (s *Server) handleDeleteGroups(ctx context.Context, r *request) (kmsg.Response, error) {
	req := r.body.(*kmsg.DeleteGroupsRequest)
	resp := req.ResponseKind().(*kmsg.DeleteGroupsResponse)
	for _, name := range req.Groups {
		dg := kmsg.NewDeleteGroupsResponseGroup()
		dg.Group = name
		code, err := s.groups.DeleteGroup(ctx, name)
		dg.ErrorCode = code
		if code != 0 && req.Version >= 3 {
			dg.ErrorMessage = errorMessage(err)
		}
		resp.Groups = append(resp.Groups, dg)
	}
	return resp, nil
}
