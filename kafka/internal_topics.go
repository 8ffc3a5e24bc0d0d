package kafka

// Kafka's internal topic __consumer_offsets.
//
// Kafka keeps committed offsets and group state in __consumer_offsets and
// creates it on the first FindCoordinator for a group. Clients know the
// name: metadata lists it with IsInternal set, and regex subscriptions and
// tools skip internal topics because of that flag. StreamHouse keeps
// offsets in meta instead, so here the topic is a real but always-empty
// one-partition topic, created like Kafka's on the first group
// FindCoordinator, listed as internal, readable (nothing to read), and
// closed to writers: Produce answers INVALID_TOPIC_EXCEPTION, as Kafka does
// to clients writing to an internal topic, and so does DeleteTopics. The
// log enforces this, so gRPC clients cannot write or delete it either.

import (
	"context"
	"errors"
	"sync/atomic"

	"github.com/streamhouse/streamhouse/log"
)

// offsetsTopic is the name of Kafka's internal offsets topic. The log
// refuses appends to it and its deletion, on both fronts
// (log.IsInternalTopic).
const offsetsTopic = log.OffsetsTopic

// internalTopics remembers whether __consumer_offsets is known to exist,
// so FindCoordinator checks the log only until it does.
type internalTopics struct {
	offsetsReady atomic.Bool
}

// ensureOffsetsTopic creates __consumer_offsets (one partition) unless it
// exists. A failure is logged, not returned: the topic is cosmetic to the
// coordinator, which keeps offsets in meta.
func (s *Server) ensureOffsetsTopic(ctx context.Context) {
	if s.internal.offsetsReady.Load() {
		return
	}
	if _, err := s.cfg.Log.Topic(offsetsTopic); err == nil {
		s.internal.offsetsReady.Store(true)
		return
	}
	_, err := s.cfg.Log.CreateTopic(ctx, offsetsTopic, 1, nil)
	switch {
	case err == nil:
		s.logger.Info("internal topic created", "topic", offsetsTopic)
	case errors.Is(err, log.ErrTopicExists):
	default:
		s.logger.Warn("could not create internal topic", "topic", offsetsTopic, "err", err)
		return
	}
	s.internal.offsetsReady.Store(true)
}
