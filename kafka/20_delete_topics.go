package kafka

// DeleteTopics (key 20): versions 0-6.
//
// Deletes each topic (log.Manager.DeleteTopic: meta rows, local files,
// then its objects in the background); errors are per topic:
// UNKNOWN_TOPIC_OR_PARTITION for an unknown name, UNKNOWN_TOPIC_ID for an
// unknown ID, INVALID_REQUEST for an entry with neither,
// INVALID_TOPIC_EXCEPTION for the internal __consumer_offsets.
//
// Version notes:
//   - v0-v5: topics by name (TopicNames). v4: flexible. v5: ErrorMessage.
//   - v6: topics by name or by ID (a name wins when both are given); the
//     answer carries both.
//   - TimeoutMillis is ignored: deletion is synchronous.

import (
	"context"
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func (s *Server) handleDeleteTopics(ctx context.Context, r *request) (kmsg.Response, error) {
	req := r.body.(*kmsg.DeleteTopicsRequest)
	resp := req.ResponseKind().(*kmsg.DeleteTopicsResponse)
	targets := req.Topics
	if req.Version < 6 {
		targets = make([]kmsg.DeleteTopicsRequestTopic, len(req.TopicNames))
		for i := range req.TopicNames {
			targets[i].Topic = &req.TopicNames[i]
		}
	}
	resp.Topics = make([]kmsg.DeleteTopicsResponseTopic, len(targets))
	for i, rt := range targets {
		st := &resp.Topics[i]
		st.Topic, st.TopicID = rt.Topic, rt.TopicID
		code, err := s.deleteTopic(ctx, rt, st)
		st.ErrorCode = code
		if err != nil && req.Version >= 5 {
			st.ErrorMessage = errorMessage(err)
		}
	}
	return resp, nil
}

// deleteTopic deletes one topic and fills in the name and ID it resolved.
func (s *Server) deleteTopic(ctx context.Context, rt kmsg.DeleteTopicsRequestTopic, st *kmsg.DeleteTopicsResponseTopic) (int16, error) {
	var name string
	switch {
	case rt.Topic != nil:
		name = *rt.Topic
		if t, err := s.cfg.Log.Topic(name); err == nil {
			st.TopicID = topicIDBytes(t.ID)
		}
	case rt.TopicID != [16]byte{}:
		t, ok := s.topicsByID()[rt.TopicID]
		if !ok {
			return kerr.UnknownTopicID.Code, fmt.Errorf("no topic with ID %x", rt.TopicID)
		}
		name = t.Name
		st.Topic = &name
	default:
		return kerr.InvalidRequest.Code, fmt.Errorf("neither a topic name nor a topic ID")
	}
	// The log refuses internal topics (log.ErrInternalTopic): INVALID_TOPIC_EXCEPTION.
	if err := s.cfg.Log.DeleteTopic(ctx, name); err != nil {
		return errorCode(err), err
	}
	s.logger.Info("topic deleted", "topic", name)
	return 0, nil
}
