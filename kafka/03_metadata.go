package kafka

// Metadata (key 3): versions 0-13.
//
// One broker (NodeID at the advertised host and port) leads every
// partition, is its only replica and in-sync replica, and is the
// controller. The cluster ID is Config.ClusterID: meta's, a random UUID in
// Kafka's base64url form, the same in DescribeCluster and /metrics. Leader epochs are always 0. Topic IDs are the UUIDs meta
// assigned at creation.
//
// Topics: a null list (v1+), or an empty one at v0, means every topic.
// An unknown topic is created with DefaultPartitions partitions when the
// broker allows it (auto.create.topics.enable, Config.AutoCreateTopics)
// and the request does (always before v4, AllowAutoTopicCreation from v4);
// otherwise it gets UNKNOWN_TOPIC_OR_PARTITION. A name that breaks the
// naming rules gets INVALID_TOPIC_EXCEPTION. A freshly created topic is
// answered at once with its partitions (it is usable immediately, so no
// LEADER_NOT_AVAILABLE round trip).
//
// Version notes:
//   - v1: controller ID, IsInternal, null = all topics; v2: cluster ID.
//   - v4: AllowAutoTopicCreation. v7: leader epochs.
//   - v8-v10: IncludeClusterAuthorizedOperations; v8+:
//     IncludeTopicAuthorizedOperations. Without ACLs every operation is
//     allowed, so a requested bit set holds all of them.
//   - v9: flexible. v10: topic IDs. v12: topics requested by ID (null
//     name); an unknown ID gets UNKNOWN_TOPIC_ID.
//   - v13: top-level ErrorCode (KIP-1102), always 0.

import (
	"context"
	"errors"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/streamhouse/streamhouse/log"
	"github.com/streamhouse/streamhouse/meta"
)

// Authorized-operation bit sets (Kafka's AclOperation codes) reported
// when asked: without ACLs everything is allowed.
const (
	topicOperations = 1<<3 | 1<<4 | 1<<5 | 1<<6 | 1<<7 | 1<<8 | 1<<10 | 1<<11 // READ..ALTER_CONFIGS
	clusterOps      = 1<<5 | 1<<7 | 1<<8 | 1<<9 | 1<<10 | 1<<11 | 1<<12       // CREATE, ALTER..IDEMPOTENT_WRITE
)

func (s *Server) handleMetadata(ctx context.Context, r *request) (kmsg.Response, error) {
	req := r.body.(*kmsg.MetadataRequest)
	resp := req.ResponseKind().(*kmsg.MetadataResponse)
	host, port := s.advertisedTo(r)
	resp.Brokers = []kmsg.MetadataResponseBroker{{NodeID: s.cfg.NodeID, Host: host, Port: port}}
	resp.ClusterID = &s.cfg.ClusterID
	resp.ControllerID = s.cfg.NodeID
	if req.IncludeClusterAuthorizedOperations {
		resp.AuthorizedOperations = clusterOps
	}
	all := req.Topics == nil || (req.Version == 0 && len(req.Topics) == 0)
	if all {
		for _, t := range s.cfg.Log.Topics() {
			resp.Topics = append(resp.Topics, s.metadataTopic(t, req))
		}
		return resp, nil
	}
	autoCreate := s.cfg.AutoCreateTopics && (req.Version < 4 || req.AllowAutoTopicCreation)
	var byID map[[16]byte]meta.Topic
	for _, rt := range req.Topics {
		if rt.Topic == nil {
			if byID == nil {
				byID = s.topicsByID()
			}
			t, ok := byID[rt.TopicID]
			if !ok {
				mt := kmsg.NewMetadataResponseTopic()
				mt.TopicID = rt.TopicID
				mt.ErrorCode = kerr.UnknownTopicID.Code
				resp.Topics = append(resp.Topics, mt)
				continue
			}
			resp.Topics = append(resp.Topics, s.metadataTopic(t, req))
			continue
		}
		t, err := s.metadataLookup(ctx, *rt.Topic, autoCreate)
		if err != nil {
			mt := kmsg.NewMetadataResponseTopic()
			mt.Topic = rt.Topic
			mt.ErrorCode = errorCode(err)
			resp.Topics = append(resp.Topics, mt)
			continue
		}
		resp.Topics = append(resp.Topics, s.metadataTopic(t, req))
	}
	return resp, nil
}

// metadataLookup finds a topic, creating it when autoCreate allows.
func (s *Server) metadataLookup(ctx context.Context, name string, autoCreate bool) (meta.Topic, error) {
	t, err := s.cfg.Log.Topic(name)
	if err == nil || !autoCreate || !errors.Is(err, log.ErrUnknownTopic) {
		return t, err
	}
	t, err = s.cfg.Log.CreateTopic(ctx, name, s.cfg.DefaultPartitions, nil)
	if errors.Is(err, log.ErrTopicExists) { // lost a race with another creator
		return s.cfg.Log.Topic(name)
	}
	if err == nil {
		s.logger.Info("topic auto-created", "topic", name, "partitions", s.cfg.DefaultPartitions)
	}
	return t, err
}

func (s *Server) metadataTopic(t meta.Topic, req *kmsg.MetadataRequest) kmsg.MetadataResponseTopic {
	mt := kmsg.NewMetadataResponseTopic()
	name := t.Name
	mt.Topic = &name
	mt.TopicID = topicIDBytes(t.ID)
	mt.IsInternal = log.IsInternalTopic(name)
	if req.IncludeTopicAuthorizedOperations {
		mt.AuthorizedOperations = topicOperations
	}
	node := []int32{s.cfg.NodeID}
	mt.Partitions = make([]kmsg.MetadataResponseTopicPartition, t.PartitionCount)
	for i := range mt.Partitions {
		p := &mt.Partitions[i]
		p.Default()
		p.Partition = int32(i)
		p.Leader = s.cfg.NodeID
		p.LeaderEpoch = leaderEpoch
		p.Replicas, p.ISR, p.OfflineReplicas = node, node, []int32{}
	}
	return mt
}
