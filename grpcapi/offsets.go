package grpcapi

import (
	"context"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/streamhouse/streamhouse/meta"
	pb "github.com/streamhouse/streamhouse/proto"
)

// CommitOffset records a group's offset in the committed-offset rows that
// Kafka's OffsetCommit and OffsetFetch use (leader epoch unknown: -1).
func (s *Server) CommitOffset(ctx context.Context, req *pb.CommitOffsetRequest) (*pb.CommitOffsetResponse, error) {
	const method = "CommitOffset"
	if err := s.checkGroupPartition(method, req.GetConsumerGroup(), req.GetTopic(), req.GetPartition()); err != nil {
		return nil, err
	}
	off, err := toInt64("offset", req.GetOffset())
	if err != nil {
		return nil, err
	}
	err = s.cfg.Meta.CommitOffsets(ctx, []meta.CommittedOffset{{
		Group:       req.GetConsumerGroup(),
		Topic:       req.GetTopic(),
		Partition:   int32(req.GetPartition()),
		Offset:      off,
		LeaderEpoch: -1,
		Metadata:    req.GetMetadata(),
		CommitTime:  s.cfg.Now(),
	}})
	if err != nil {
		return nil, s.toStatus(method, req.GetTopic(), err)
	}
	return &pb.CommitOffsetResponse{Success: true}, nil
}

// GetOffset returns a group's committed offset and metadata; NOT_FOUND
// when the group has committed none for the partition (0 is a real offset).
func (s *Server) GetOffset(ctx context.Context, req *pb.GetOffsetRequest) (*pb.GetOffsetResponse, error) {
	const method = "GetOffset"
	if err := s.checkGroupPartition(method, req.GetConsumerGroup(), req.GetTopic(), req.GetPartition()); err != nil {
		return nil, err
	}
	c, found, err := s.cfg.Meta.FetchOffset(ctx, req.GetConsumerGroup(), req.GetTopic(), int32(req.GetPartition()))
	if err != nil {
		return nil, s.toStatus(method, req.GetTopic(), err)
	}
	if !found {
		return nil, status.Errorf(codes.NotFound, "No offset committed for group %q on %s-%d",
			req.GetConsumerGroup(), req.GetTopic(), req.GetPartition())
	}
	md := c.Metadata
	return &pb.GetOffsetResponse{Offset: fromInt64(c.Offset), Metadata: &md}, nil
}

// checkGroupPartition validates the group name, topic and partition of an
// offset call.
func (s *Server) checkGroupPartition(method, group, topic string, idx uint32) error {
	if group == "" {
		return invalidf("consumer_group is empty")
	}
	_, _, err := s.partition(method, topic, idx)
	return err
}
