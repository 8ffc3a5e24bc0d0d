package kafka

// ListGroups (key 16): versions 0-5.
//
// Lists every group this broker coordinates: groups with members, and
// groups known only from committed offsets in meta (Empty, protocol type
// unknown and reported empty). KIP-848 groups have protocol type
// "consumer", type "consumer" and their states (Empty, Assigning,
// Reconciling, Stable); all others are "classic".
//
// Version notes: v1: ThrottleMillis. v3: flexible. v4: StatesFilter
// (Kafka's state names, matched case-insensitively) and GroupState.
// v5: TypesFilter ("classic", "consumer"; "share" matches none) and
// GroupType.

import (
	"context"
	"slices"
	"strings"

	"github.com/twmb/franz-go/pkg/kmsg"
)

func (s *Server) handleListGroups(ctx context.Context, r *request) (kmsg.Response, error) {
	req := r.body.(*kmsg.ListGroupsRequest)
	resp := req.ResponseKind().(*kmsg.ListGroupsResponse)
	groups, err := s.groups.List(ctx)
	if err != nil {
		resp.ErrorCode = coordinatorErrorCode(err)
		return resp, nil
	}
	matches := func(filter []string, v string) bool {
		return len(filter) == 0 || slices.ContainsFunc(filter, func(f string) bool { return strings.EqualFold(f, v) })
	}
	for _, g := range groups {
		if !matches(req.StatesFilter, g.State) || !matches(req.TypesFilter, g.Type) {
			continue
		}
		lg := kmsg.NewListGroupsResponseGroup()
		lg.Group, lg.ProtocolType, lg.GroupState, lg.GroupType = g.Name, g.ProtocolType, g.State, g.Type
		resp.Groups = append(resp.Groups, lg)
	}
	return resp, nil
}
