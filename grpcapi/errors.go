package grpcapi

import (
	"context"
	"errors"
	"math"
	"strings"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/streamhouse/streamhouse/log"
	"github.com/streamhouse/streamhouse/meta"
)

// invalidf is an INVALID_ARGUMENT status.
func invalidf(format string, args ...any) error {
	return status.Errorf(codes.InvalidArgument, format, args...)
}

// topicNotFound is the NOT_FOUND status for a missing topic, worded as
// the seed worded it (clients match on it).
func topicNotFound(name string) error {
	return status.Errorf(codes.NotFound, "Topic not found: %s", name)
}

// invalidPartition is the INVALID_ARGUMENT status for a partition outside
// the topic, worded as the seed worded it.
func invalidPartition(p uint32, count int32) error {
	return status.Errorf(codes.InvalidArgument, "Invalid partition: %d (topic has %d partitions)", p, count)
}

// detail strips a sentinel's text from err's message, leaving the part a
// person acts on: "log: invalid config: unknown config "x"" becomes
// "unknown config "x"".
func detail(err, sentinel error) string {
	msg := err.Error()
	if i := strings.Index(msg, sentinel.Error()+": "); i >= 0 {
		return msg[i+len(sentinel.Error())+2:]
	}
	return msg
}

// toStatus turns a storage error into a status for an RPC about topic
// (empty when none). Errors only the log can know about (corruption, I/O)
// are logged here, once, with the method name; the caller sees their text.
func (s *Server) toStatus(method, topic string, err error) error {
	if _, ok := status.FromError(err); ok {
		return err
	}
	switch {
	case errors.Is(err, context.Canceled):
		return status.Error(codes.Canceled, "request canceled")
	case errors.Is(err, context.DeadlineExceeded):
		return status.Error(codes.DeadlineExceeded, "request deadline exceeded")
	case errors.Is(err, log.ErrClosed):
		if _, terr := s.cfg.Log.Topic(topic); topic != "" && errors.Is(terr, log.ErrUnknownTopic) {
			return topicNotFound(topic) // deleted while the call ran
		}
		return status.Error(codes.Unavailable, "the broker is shutting down; retry on another broker or after restart")
	case errors.Is(err, log.ErrUnknownTopic), errors.Is(err, meta.ErrTopicNotFound):
		return topicNotFound(topic)
	case errors.Is(err, log.ErrTopicExists), errors.Is(err, meta.ErrTopicExists):
		return status.Errorf(codes.AlreadyExists, "Topic already exists: %s", topic)
	case errors.Is(err, log.ErrInternalTopic):
		return invalidf("Topic %s is internal: it can be read but not written to or deleted", topic)
	case errors.Is(err, log.ErrInvalidTopic):
		return invalidf("Invalid topic name: %s", detail(err, log.ErrInvalidTopic))
	case errors.Is(err, log.ErrInvalidConfig):
		return invalidf("Invalid topic config: %s (honoured keys: %s)",
			detail(err, log.ErrInvalidConfig), strings.Join(log.TopicConfigKeys(), ", "))
	case errors.Is(err, log.ErrMessageTooLarge):
		return invalidf("Record too large: %s; raise the topic's max.message.bytes or send smaller records",
			detail(err, log.ErrMessageTooLarge))
	case errors.Is(err, log.ErrInvalidBatch), errors.Is(err, log.ErrCorruptBatch):
		return invalidf("Invalid records: %v", err)
	case errors.Is(err, meta.ErrInvalid):
		return invalidf("Invalid argument: %s", detail(err, meta.ErrInvalid))
	case errors.Is(err, log.ErrOffsetOutOfRange):
		return status.Error(codes.OutOfRange, detail(err, log.ErrOffsetOutOfRange))
	case errors.Is(err, log.ErrNotEnoughReplicas):
		return status.Errorf(codes.FailedPrecondition, "%s; nothing was written (lower the topic's min.insync.replicas to 1)",
			detail(err, log.ErrNotEnoughReplicas))
	case errors.Is(err, log.ErrDiskFull), errors.Is(err, log.ErrUploadBacklog):
		// Nothing was written; the call may be retried once space is
		// freed or uploads catch up.
		s.logger.Warn("grpc produce refused", "method", method, "topic", topic, "err", err)
		return status.Errorf(codes.Unavailable, "%v; nothing was written, retry later", err)
	}
	var corrupt *log.CorruptionError
	if errors.As(err, &corrupt) || errors.Is(err, log.ErrSegmentMissing) {
		s.logger.Error("grpc call hit damaged data", "method", method, "topic", topic, "err", err)
		return status.Errorf(codes.DataLoss, "stored data is damaged: %v", err)
	}
	s.logger.Error("grpc call failed", "method", method, "topic", topic, "err", err)
	return status.Errorf(codes.Internal, "%s failed: %v", method, err)
}

// checkName rejects an empty topic name before any lookup, so the answer
// says what is wrong instead of "Topic not found: ".
func checkName(field, name string) error {
	if name == "" {
		return invalidf("%s is empty", field)
	}
	return nil
}

// toInt64 converts a uint64 field that must fit Kafka's int64.
func toInt64(field string, v uint64) (int64, error) {
	if v > math.MaxInt64 {
		return 0, invalidf("%s %d is larger than the maximum %d", field, v, int64(math.MaxInt64))
	}
	return int64(v), nil
}

// fromInt64 converts a Kafka int64 (offset, timestamp) to the API's
// uint64; negative values (Kafka's "none", -1) become 0.
func fromInt64(v int64) uint64 {
	if v < 0 {
		return 0
	}
	return uint64(v)
}
