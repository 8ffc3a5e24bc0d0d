package main

import (
	"context"
	"regexp"
	"strconv"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	pb "github.com/streamhouse/streamhouse/proto"
)

// partitionInfo is one partition's offsets as topic get shows them.
type partitionInfo struct {
	Partition      uint32 `json:"partition"`
	LogStartOffset uint64 `json:"log_start_offset"`
	HighWatermark  uint64 `json:"high_watermark"`
}

// logStartHint finds the log start offset in Consume's OUT_OF_RANGE
// answer to an offset below it ("...; consume from 42").
var logStartHint = regexp.MustCompile(`consume from (\d+)$`)

// partitionOffsets asks for every partition's log start offset and high
// watermark. GetTopic does not carry them, so it reads (at most) one
// record of each partition with Consume, whose answer does; when
// retention has moved the log start past 0 the first read is refused with
// the offset to read from, and a second read from there answers.
func partitionOffsets(ctx context.Context, a *app, c pb.StreamHouseClient, t *pb.Topic) ([]partitionInfo, error) {
	parts := make([]partitionInfo, 0, t.GetPartitionCount())
	for p := range t.GetPartitionCount() {
		req := &pb.ConsumeRequest{Topic: t.GetName(), Partition: p, Offset: 0, MaxRecords: 1, MaxBytes: 1}
		res, err := call(ctx, a, c.Consume, req)
		if st, ok := status.FromError(err); ok && st.Code() == codes.OutOfRange {
			m := logStartHint.FindStringSubmatch(st.Message())
			if m == nil {
				return nil, err
			}
			if req.Offset, err = strconv.ParseUint(m[1], 10, 64); err != nil {
				return nil, err
			}
			res, err = call(ctx, a, c.Consume, req)
		}
		if err != nil {
			return nil, err
		}
		parts = append(parts, partitionInfo{Partition: p, LogStartOffset: res.GetLogStartOffset(), HighWatermark: res.GetHighWatermark()})
	}
	return parts, nil
}
