package grpcapi

// The slow-call log: with Config.SlowRequestThreshold set, a unary call
// whose service time exceeds it is logged at Warn ("slow grpc request")
// with its method, the client (peer address and user agent), the topic the
// request names, its status code and duration. A Consume that long-polls
// (max_wait_ms) may legitimately wait that long for records, so its wait
// bound is subtracted first (the call's exact wait is not tracked: an idle
// long poll is never slow, and a slow read before the wait can hide behind
// it). Streams (health Watch, reflection) are not logged: they are long by
// nature.

import (
	"context"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	pb "github.com/streamhouse/streamhouse/proto"
)

// slowUnary is the unary interceptor that logs slow calls; installed only
// when the threshold is positive.
func (s *Server) slowUnary(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	start := time.Now()
	resp, err := handler(ctx, req)
	d := time.Since(start)
	service := d
	if c, ok := req.(*pb.ConsumeRequest); ok {
		service -= min(time.Duration(c.GetMaxWaitMs())*time.Millisecond, d)
	}
	if service <= s.cfg.SlowRequestThreshold {
		return resp, err
	}
	attrs := []any{"method", info.FullMethod, "client_id", clientID(ctx)}
	if t, ok := req.(interface{ GetTopic() string }); ok && t.GetTopic() != "" {
		attrs = append(attrs, "topic", t.GetTopic())
	}
	attrs = append(attrs, "code", status.Code(err).String(), "duration", d, "threshold", s.cfg.SlowRequestThreshold)
	s.logger.Warn("slow grpc request", attrs...)
	return resp, err
}

// clientID names the caller: its address, and its user agent when it sent
// one (grpc-go, grpcurl and streamctl do).
func clientID(ctx context.Context) string {
	var parts []string
	if p, ok := peer.FromContext(ctx); ok && p.Addr != nil {
		parts = append(parts, p.Addr.String())
	}
	if md, ok := metadata.FromIncomingContext(ctx); ok {
		if ua := md.Get("user-agent"); len(ua) > 0 {
			parts = append(parts, ua[0])
		}
	}
	return strings.Join(parts, " ")
}
