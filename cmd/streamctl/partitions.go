package main

import (
	pb "github.com/streamhouse/streamhouse/proto"
)

// partitionInfo is one partition's offsets and size as topic get shows
// them.
type partitionInfo struct {
	Partition      uint32 `json:"partition"`
	LogStartOffset uint64 `json:"log_start_offset"`
	HighWatermark  uint64 `json:"high_watermark"`
	SizeBytes      uint64 `json:"size_bytes"`
}

// partitionOffsets returns the partitions GetTopic describes.
func partitionOffsets(t *pb.Topic) []partitionInfo {
	parts := make([]partitionInfo, 0, len(t.GetPartitions()))
	for _, p := range t.GetPartitions() {
		parts = append(parts, partitionInfo{Partition: p.GetPartition(), LogStartOffset: p.GetLogStartOffset(),
			HighWatermark: p.GetHighWatermark(), SizeBytes: p.GetSizeBytes()})
	}
	return parts
}
