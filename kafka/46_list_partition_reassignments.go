package kafka

// ListPartitionReassignments (key 46): version 0.
//
// No reassignment is ever in progress (every partition stays on this
// broker alone, and AlterPartitionReassignments onto it completes at
// once), so the answer lists no topic: for Topics null (every
// reassignment), and for named topics, whether they exist or not, as
// Kafka's controller answers topics and partitions that are not being
// reassigned (ReplicationControlManager.listPartitionReassignments skips
// them). kafka-reassign-partitions --list prints "No partition
// reassignments found.". ErrorMessage is null.
//
// TimeoutMillis is ignored: nothing is waited for.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"
)

func (s *Server) handleListPartitionReassignments(_ context.Context, r *request) (kmsg.Response, error) {
	req := r.body.(*kmsg.ListPartitionReassignmentsRequest)
	return req.ResponseKind(), nil
}
