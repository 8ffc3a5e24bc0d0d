package kafka

// ApiVersions (key 18): versions 0-5.
//
// Answers with the dispatch table: exactly the API keys and versions this
// broker serves. No features are advertised (no transactions, no KRaft
// metadata version), so clients use none of the protocol paths that need
// them.
//
// A request above our highest version is answered by the connection, not
// here: KIP-511 asks for a v0-format response with UNSUPPORTED_VERSION and
// our ranges, so that the client can retry with a version we know. That
// response (apiVersionsUnsupported) is also the reason the ApiVersions
// response header is always v0.
//
// Version notes:
//   - v1: ThrottleMillis.
//   - v3: flexible; ClientSoftwareName/Version (accepted, not validated);
//     SupportedFeatures, FinalizedFeaturesEpoch (-1: none) as tags.
//   - v5: ClusterID and NodeID (KIP-1242): when both are given and either
//     is not ours, REBOOTSTRAP_REQUIRED.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func (s *Server) handleAPIVersions(_ context.Context, r *request) (kmsg.Response, error) {
	req := r.body.(*kmsg.ApiVersionsRequest)
	resp := req.ResponseKind().(*kmsg.ApiVersionsResponse)
	resp.ApiKeys = s.apiKeys
	resp.FinalizedFeaturesEpoch = -1
	if req.Version >= 5 && req.ClusterID != nil && req.NodeID >= 0 &&
		(*req.ClusterID != s.cfg.ClusterID || req.NodeID != s.cfg.NodeID) {
		resp.ErrorCode = kerr.RebootstrapRequired.Code
	}
	return resp, nil
}

// apiVersionsUnsupported is the KIP-511 answer to an ApiVersions request
// whose version is above ours.
func (s *Server) apiVersionsUnsupported() kmsg.Response {
	resp := kmsg.NewPtrApiVersionsResponse()
	resp.Version = 0
	resp.ErrorCode = kerr.UnsupportedVersion.Code
	resp.ApiKeys = s.apiKeys
	return resp
}
