package log

import "errors"

// Sentinel errors of the partition logs. Callers test them with errors.Is;
// the fronts map them to Kafka error codes or gRPC status codes.
var (
	// ErrUnknownTopic means no topic of that name (or ID) exists.
	ErrUnknownTopic = errors.New("log: unknown topic")
	// ErrTopicExists means a topic of that name already exists.
	ErrTopicExists = errors.New("log: topic already exists")
	// ErrUnknownPartition means the partition index is out of range.
	ErrUnknownPartition = errors.New("log: unknown partition")
	// ErrInvalidTopic means a topic name breaks Kafka's naming rules.
	ErrInvalidTopic = errors.New("log: invalid topic name")
	// ErrInvalidConfig means a topic or broker config key is unknown or
	// its value is malformed.
	ErrInvalidConfig = errors.New("log: invalid config")
	// ErrOffsetOutOfRange means a read asked for an offset below the log
	// start offset or above the high watermark.
	ErrOffsetOutOfRange = errors.New("log: offset out of range")
	// ErrMessageTooLarge means a batch exceeds the topic's max.message.bytes.
	ErrMessageTooLarge = errors.New("log: record batch too large")
	// ErrClosed means the partition or manager has been closed.
	ErrClosed = errors.New("log: closed")
	// ErrSegmentMissing means meta records a segment whose object is gone.
	ErrSegmentMissing = errors.New("log: segment object missing")
	// ErrDiskFull means an append found the segment file system full
	// (ENOSPC or EDQUOT). Nothing was written and the partition stays
	// writable: the append may be retried once space is freed.
	ErrDiskFull = errors.New("log: segment file system full")
	// ErrUploadBacklog means the sealed segments waiting for the object
	// store have reached Config.MaxUploadBacklog (the store is down or
	// slow). Nothing was written; the append may be retried once uploads
	// catch up.
	ErrUploadBacklog = errors.New("log: too many bytes waiting for upload to the object store")
	// ErrNotEnoughReplicas means an append that must reach every in-sync
	// replica (Kafka's acks=all, every gRPC produce) was refused because
	// the topic's min.insync.replicas exceeds the one replica a partition
	// has here. Nothing was written.
	ErrNotEnoughReplicas = errors.New("log: not enough in-sync replicas")
)
