package kafka

// CreateTopics (key 19): versions 0-7.
//
// Each topic is validated and created on its own; errors are per topic:
//   - INVALID_TOPIC_EXCEPTION: a name that breaks Kafka's rules
//     (log.ValidateTopicName);
//   - INVALID_PARTITIONS: fewer than one partition (-1 means the broker
//     default, DefaultPartitions) or more than Config.MaxTopicPartitions;
//   - INVALID_REPLICATION_FACTOR: anything but -1 or 1 (one broker);
//   - INVALID_REPLICA_ASSIGNMENT: a manual assignment that is not
//     partitions 0..n-1 each on this broker alone; INVALID_REQUEST when it
//     comes with a partition count or replication factor, or when a topic
//     appears twice in the request;
//   - INVALID_CONFIG: a config the log does not honour, a bad value, or a
//     null value (log.ValidateTopicConfigs: the same rules as gRPC);
//   - TOPIC_ALREADY_EXISTS.
//
// ValidateOnly (v1+) runs every check, including existence, and creates
// nothing; the answer then carries no topic ID.
//
// Version notes:
//   - v1: ValidateOnly, ErrorMessage. v2-v4: no change for us (-1
//     partitions / replication factor are accepted at every version).
//   - v5: flexible; the answer carries the partition count, replication
//     factor and every honoured config with its effective value and
//     source (topic override or default). v7: topic ID.
//   - TimeoutMillis is ignored: creation is synchronous.

import (
	"context"
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/streamhouse/streamhouse/log"
)

// Config sources of a CreateTopics answer (Kafka's ConfigSource codes).
const (
	configSourceTopic   = 1 // DYNAMIC_TOPIC_CONFIG
	configSourceDefault = 5 // DEFAULT_CONFIG
)

func (s *Server) handleCreateTopics(ctx context.Context, r *request) (kmsg.Response, error) {
	req := r.body.(*kmsg.CreateTopicsRequest)
	resp := req.ResponseKind().(*kmsg.CreateTopicsResponse)
	seen := make(map[string]int, len(req.Topics))
	for _, rt := range req.Topics {
		seen[rt.Topic]++
	}
	resp.Topics = make([]kmsg.CreateTopicsResponseTopic, len(req.Topics))
	for i, rt := range req.Topics {
		st := &resp.Topics[i]
		st.Default()
		st.Topic = rt.Topic
		if seen[rt.Topic] > 1 {
			s.topicError(st, req.Version, kerr.InvalidRequest.Code, "topic appears more than once in the request")
			continue
		}
		s.createTopic(ctx, req, rt, st)
	}
	return resp, nil
}

func (s *Server) topicError(st *kmsg.CreateTopicsResponseTopic, version int16, code int16, msg string) {
	st.ErrorCode = code
	if version >= 1 {
		st.ErrorMessage = &msg
	}
}

func (s *Server) createTopic(ctx context.Context, req *kmsg.CreateTopicsRequest, rt kmsg.CreateTopicsRequestTopic, st *kmsg.CreateTopicsResponseTopic) {
	if err := log.ValidateTopicName(rt.Topic); err != nil {
		s.topicError(st, req.Version, errorCode(err), err.Error())
		return
	}
	n, code, msg := s.createPartitionCount(rt)
	if code != 0 {
		s.topicError(st, req.Version, code, msg)
		return
	}
	configs := make(map[string]string, len(rt.Configs))
	for _, c := range rt.Configs {
		if c.Value == nil {
			s.topicError(st, req.Version, kerr.InvalidConfig.Code, fmt.Sprintf("config %q has a null value", c.Name))
			return
		}
		configs[c.Name] = *c.Value
	}
	if err := log.ValidateTopicConfigs(configs); err != nil {
		s.topicError(st, req.Version, errorCode(err), err.Error())
		return
	}
	if _, err := s.cfg.Log.Topic(rt.Topic); err == nil {
		s.topicError(st, req.Version, kerr.TopicAlreadyExists.Code, fmt.Sprintf("topic %q already exists", rt.Topic))
		return
	}
	if !req.ValidateOnly {
		t, err := s.cfg.Log.CreateTopic(ctx, rt.Topic, n, configs)
		if err != nil {
			s.topicError(st, req.Version, errorCode(err), err.Error())
			return
		}
		st.TopicID = topicIDBytes(t.ID)
	}
	st.NumPartitions, st.ReplicationFactor = n, 1
	for _, k := range log.TopicConfigKeys() {
		c := kmsg.NewCreateTopicsResponseTopicConfig()
		c.Name = k
		v, ok := configs[k]
		if ok {
			c.Source = configSourceTopic
		} else {
			v, _ = log.TopicConfigDefault(k)
			c.Source = configSourceDefault
		}
		c.Value = &v
		st.Configs = append(st.Configs, c)
	}
}

// createPartitionCount checks the partition count, replication factor and
// manual assignment; it returns the partition count or an error code.
func (s *Server) createPartitionCount(rt kmsg.CreateTopicsRequestTopic) (int32, int16, string) {
	if rt.ReplicationFactor != -1 && rt.ReplicationFactor != 1 {
		return 0, kerr.InvalidReplicationFactor.Code, fmt.Sprintf("replication factor %d: this cluster has one broker", rt.ReplicationFactor)
	}
	if len(rt.ReplicaAssignment) > 0 {
		if rt.NumPartitions != -1 || rt.ReplicationFactor != -1 {
			return 0, kerr.InvalidRequest.Code, "a replica assignment excludes a partition count and replication factor"
		}
		seen := make(map[int32]bool, len(rt.ReplicaAssignment))
		for _, a := range rt.ReplicaAssignment {
			if a.Partition < 0 || int(a.Partition) >= len(rt.ReplicaAssignment) || seen[a.Partition] ||
				len(a.Replicas) != 1 || a.Replicas[0] != s.cfg.NodeID {
				return 0, kerr.InvalidReplicaAssignment.Code, fmt.Sprintf("partition %d on brokers %v: every partition 0..n-1 must be on broker %d alone", a.Partition, a.Replicas, s.cfg.NodeID)
			}
			seen[a.Partition] = true
		}
		n := int32(len(rt.ReplicaAssignment))
		if n > s.cfg.MaxTopicPartitions {
			return 0, kerr.InvalidPartitions.Code, fmt.Sprintf("%d partitions: at most %d are allowed", n, s.cfg.MaxTopicPartitions)
		}
		return n, 0, ""
	}
	n := rt.NumPartitions
	if n == -1 {
		n = s.cfg.DefaultPartitions
	}
	if n < 1 || n > s.cfg.MaxTopicPartitions {
		return 0, kerr.InvalidPartitions.Code, fmt.Sprintf("%d partitions: 1 to %d are allowed", rt.NumPartitions, s.cfg.MaxTopicPartitions)
	}
	return n, 0, ""
}
