package kafka

// DescribeLogDirs (key 35): versions 0-5.
//
// One log dir: the segment directory (log.dirs, absolute). Per partition,
// Size is what the partition stores, local segments plus uploaded ones in
// the object store (log.Partition.StoredBytes), and OffsetLag is 0 (no
// replicas, no future logs). Topics null asks for every partition; listed
// partitions that do not exist are left out, as Kafka does. The log dir
// is always in the answer, even with no partitions.
//
// Version notes:
//   - v1: throttle semantics only. v2: flexible.
//   - v3: top-level ErrorCode (always 0).
//   - v4: TotalBytes / UsableBytes of the file system holding the segment
//     directory (statfs), -1 when it cannot be read. Object-store bytes
//     are not part of them.
//   - v5: IsCordoned: never.

import (
	"context"
	"path/filepath"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/streamhouse/streamhouse/log"
)

func (s *Server) handleDescribeLogDirs(_ context.Context, r *request) (kmsg.Response, error) {
	req := r.body.(*kmsg.DescribeLogDirsRequest)
	resp := req.ResponseKind().(*kmsg.DescribeLogDirsResponse)
	d := kmsg.NewDescribeLogDirsResponseDir()
	dir := s.cfg.Log.BrokerSettings().Dir
	if abs, err := filepath.Abs(dir); err == nil {
		dir = abs
	}
	d.Dir = dir
	if total, usable, err := s.cfg.Log.DiskSpace(); err == nil {
		d.TotalBytes, d.UsableBytes = total, usable
	} else {
		s.logger.Warn("DescribeLogDirs: cannot read disk space", "err", err)
	}
	if req.Topics == nil {
		for _, t := range s.cfg.Log.Topics() {
			all := make([]int32, t.PartitionCount)
			for i := range all {
				all[i] = int32(i)
			}
			d.Topics = appendLogDirTopic(d.Topics, s.cfg.Log, t.Name, all)
		}
	} else {
		for _, rt := range req.Topics {
			d.Topics = appendLogDirTopic(d.Topics, s.cfg.Log, rt.Topic, rt.Partitions)
		}
	}
	resp.Dirs = []kmsg.DescribeLogDirsResponseDir{d}
	return resp, nil
}

// appendLogDirTopic appends a topic's entry with the listed partitions
// that exist; a topic with none is left out.
func appendLogDirTopic(topics []kmsg.DescribeLogDirsResponseDirTopic, m *log.Manager, topic string, parts []int32) []kmsg.DescribeLogDirsResponseDirTopic {
	dt := kmsg.NewDescribeLogDirsResponseDirTopic()
	dt.Topic = topic
	for _, idx := range parts {
		p, err := m.Partition(topic, idx)
		if err != nil {
			continue
		}
		dp := kmsg.NewDescribeLogDirsResponseDirTopicPartition()
		dp.Partition = idx
		dp.Size = p.StoredBytes()
		dt.Partitions = append(dt.Partitions, dp)
	}
	if len(dt.Partitions) == 0 {
		return topics
	}
	return append(topics, dt)
}
