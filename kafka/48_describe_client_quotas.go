package kafka

// DescribeClientQuotas (key 48): versions 0-1.
//
// The broker has no quotas, so every filter matches nothing: the answer
// is an empty list. It is served because kafka-configs.sh --describe
// --entity-type users asks for a user's quotas before its SCRAM
// credentials, and would stop at an unsupported API.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"
)

func (s *Server) handleDescribeClientQuotas(_ context.Context, r *request) (kmsg.Response, error) {
	req := r.body.(*kmsg.DescribeClientQuotasRequest)
	resp := req.ResponseKind().(*kmsg.DescribeClientQuotasResponse)
	resp.Entries = []kmsg.DescribeClientQuotasResponseEntry{}
	return resp, nil
}
