package kafka

// DescribeCluster (key 60): versions 0-2.
//
// KIP-700 (the Admin client's describeCluster): the cluster ID (as in
// Metadata: Config.ClusterID, meta's base64url UUID), this broker as the
// only one (advertised host and port, no rack) and as the controller (a
// KRaft broker also names a broker here, since clients cannot reach
// controllers). IncludeClusterAuthorizedOperations: without ACLs every
// cluster operation is reported as allowed.
//
// Version notes:
//   - v1: EndpointType (KIP-919). We are a broker endpoint: 1 (brokers) is
//     served; 2 (controllers) gets MISMATCHED_ENDPOINT_TYPE and any other
//     value UNSUPPORTED_ENDPOINT_TYPE, with Kafka's messages.
//   - v2: IncludeFencedBrokers / IsFenced: we are never fenced.

import (
	"context"
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Endpoint types of DescribeCluster v1+.
const (
	endpointBrokers     = 1
	endpointControllers = 2
)

func (s *Server) handleDescribeCluster(_ context.Context, r *request) (kmsg.Response, error) {
	req := r.body.(*kmsg.DescribeClusterRequest)
	resp := req.ResponseKind().(*kmsg.DescribeClusterResponse)
	switch req.EndpointType {
	case endpointBrokers:
	case endpointControllers:
		msg := "The request was sent to an endpoint of type BROKER, but we wanted an endpoint of type CONTROLLER"
		resp.ErrorCode, resp.ErrorMessage = kerr.MismatchedEndpointType.Code, &msg
		return resp, nil
	default:
		msg := fmt.Sprintf("Unsupported endpoint type %d", req.EndpointType)
		resp.ErrorCode, resp.ErrorMessage = kerr.UnsupportedEndpointType.Code, &msg
		return resp, nil
	}
	host, port := s.advertisedTo(r)
	b := kmsg.NewDescribeClusterResponseBroker()
	b.NodeID, b.Host, b.Port = s.cfg.NodeID, host, port
	resp.Brokers = []kmsg.DescribeClusterResponseBroker{b}
	resp.EndpointType = endpointBrokers
	resp.ClusterID = s.cfg.ClusterID
	resp.ControllerID = s.cfg.NodeID
	if req.IncludeClusterAuthorizedOperations {
		resp.ClusterAuthorizedOperations = clusterOps
	}
	return resp, nil
}
