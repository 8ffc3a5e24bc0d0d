package log

import "fmt"

// OffsetsTopic is the name of Kafka's internal offsets topic. StreamHouse
// keeps committed offsets in meta, so its __consumer_offsets is a real but
// always-empty topic that Kafka clients expect to see (kafka creates it on
// the first group FindCoordinator).
const OffsetsTopic = "__consumer_offsets"

// ErrInternalTopic refuses a write to, or the deletion of, an internal
// topic. It is an ErrInvalidTopic, so both fronts already map it: Kafka's
// INVALID_TOPIC_EXCEPTION (what Kafka answers a client producing to an
// internal topic) and gRPC's InvalidArgument.
var ErrInternalTopic = fmt.Errorf("%w: internal topic", ErrInvalidTopic)

// IsInternalTopic reports whether name is a topic the broker owns: clients
// may read it but not write to or delete it, on either front.
func IsInternalTopic(name string) bool { return name == OffsetsTopic }

// internalTopicError returns the error refusing op on an internal topic.
func internalTopicError(op, name string) error {
	return fmt.Errorf("%w: %s %s", ErrInternalTopic, op, name)
}
