package grpcapi

import (
	"context"
	"maps"
	"strconv"

	"github.com/streamhouse/streamhouse/log"
	"github.com/streamhouse/streamhouse/meta"
	pb "github.com/streamhouse/streamhouse/proto"
)

// CreateTopic validates the name, partition count and configs (through
// the log, so both fronts accept exactly the same), then creates the topic.
// retention_ms is stored as the config retention.ms.
func (s *Server) CreateTopic(ctx context.Context, req *pb.CreateTopicRequest) (*pb.CreateTopicResponse, error) {
	const method = "CreateTopic"
	if err := checkName("name", req.GetName()); err != nil {
		return nil, err
	}
	if req.GetPartitionCount() < 1 {
		return nil, invalidf("partition_count must be at least 1")
	}
	if req.GetPartitionCount() > MaxPartitions {
		return nil, invalidf("partition_count %d is more than the maximum %d", req.GetPartitionCount(), MaxPartitions)
	}
	configs := maps.Clone(req.GetConfig())
	if req.RetentionMs != nil {
		ms := strconv.FormatUint(req.GetRetentionMs(), 10)
		if v, ok := configs[log.ConfigRetentionMs]; ok && v != ms {
			return nil, invalidf("retention_ms %s and config %s=%s disagree; give one of them", ms, log.ConfigRetentionMs, v)
		}
		if configs == nil {
			configs = make(map[string]string, 1)
		}
		configs[log.ConfigRetentionMs] = ms
	}
	t, err := s.cfg.Log.CreateTopic(ctx, req.GetName(), int32(req.GetPartitionCount()), configs)
	if err != nil {
		return nil, s.toStatus(method, req.GetName(), err)
	}
	return &pb.CreateTopicResponse{TopicId: t.ID, PartitionCount: uint32(t.PartitionCount)}, nil
}

// GetTopic describes one topic.
func (s *Server) GetTopic(_ context.Context, req *pb.GetTopicRequest) (*pb.GetTopicResponse, error) {
	if err := checkName("name", req.GetName()); err != nil {
		return nil, err
	}
	t, err := s.cfg.Log.Topic(req.GetName())
	if err != nil {
		return nil, s.toStatus("GetTopic", req.GetName(), err)
	}
	out := topicProto(t)
	for i := range t.PartitionCount {
		p, err := s.cfg.Log.Partition(t.Name, i)
		if err != nil {
			return nil, s.toStatus("GetTopic", req.GetName(), err)
		}
		start, hwm := p.Offsets()
		out.Partitions = append(out.Partitions, &pb.PartitionInfo{Partition: uint32(i),
			LogStartOffset: fromInt64(start), HighWatermark: fromInt64(hwm), SizeBytes: fromInt64(p.StoredBytes())})
	}
	return &pb.GetTopicResponse{Topic: out}, nil
}

// ListTopics describes every topic, sorted by name.
func (s *Server) ListTopics(context.Context, *pb.ListTopicsRequest) (*pb.ListTopicsResponse, error) {
	topics := s.cfg.Log.Topics()
	out := &pb.ListTopicsResponse{Topics: make([]*pb.Topic, len(topics))}
	for i, t := range topics {
		out.Topics[i] = topicProto(t)
	}
	return out, nil
}

// DeleteTopic deletes the topic: its meta rows and committed offsets now,
// its local files now and its objects in the background.
func (s *Server) DeleteTopic(ctx context.Context, req *pb.DeleteTopicRequest) (*pb.DeleteTopicResponse, error) {
	if err := checkName("name", req.GetName()); err != nil {
		return nil, err
	}
	if err := s.cfg.Log.DeleteTopic(ctx, req.GetName()); err != nil {
		return nil, s.toStatus("DeleteTopic", req.GetName(), err)
	}
	return &pb.DeleteTopicResponse{Success: true}, nil
}

// topicProto describes a topic; retention_ms is set when the topic
// overrides retention.ms with a value the field can hold (not -1).
func topicProto(t meta.Topic) *pb.Topic {
	out := &pb.Topic{
		Name:           t.Name,
		TopicId:        t.ID,
		PartitionCount: uint32(t.PartitionCount),
		Config:         maps.Clone(t.Configs),
		CreatedAt:      fromInt64(t.CreatedAt.UnixMilli()),
	}
	if v, ok := t.Configs[log.ConfigRetentionMs]; ok {
		if ms, err := strconv.ParseUint(v, 10, 64); err == nil {
			out.RetentionMs = &ms
		}
	}
	return out
}
