package kafka

import (
	"context"
	"errors"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/streamhouse/streamhouse/kafka/groups"
	"github.com/streamhouse/streamhouse/kafka/txn"
	"github.com/streamhouse/streamhouse/log"
	"github.com/streamhouse/streamhouse/meta"
)

// errorCode maps a Go error from log or meta to a Kafka error code. This
// is the only place Go errors become protocol errors.
func errorCode(err error) int16 {
	var corrupt *log.CorruptionError
	switch {
	case err == nil:
		return 0
	case errors.Is(err, txn.ErrNotAvailable):
		return kerr.CoordinatorNotAvailable.Code
	case errors.Is(err, txn.ErrInvalidTxnTimeout):
		return kerr.InvalidTransactionTimeout.Code
	case errors.Is(err, txn.ErrProducerFenced):
		return kerr.ProducerFenced.Code
	case errors.Is(err, txn.ErrInvalidProducerEpoch):
		return kerr.InvalidProducerEpoch.Code
	case errors.Is(err, txn.ErrInvalidProducerIDMapping):
		return kerr.InvalidProducerIDMapping.Code
	case errors.Is(err, txn.ErrInvalidTxnState), errors.Is(err, txn.ErrNotInTransaction):
		// txnCode answers TRANSACTION_ABORTABLE for ErrNotInTransaction
		// where the request version knows it.
		return kerr.InvalidTxnState.Code
	case errors.Is(err, txn.ErrConcurrentTransactions):
		return kerr.ConcurrentTransactions.Code
	case errors.Is(err, txn.ErrTransactionalIDNotFound):
		return kerr.TransactionalIDNotFound.Code
	case errors.Is(err, log.ErrUnknownTopic), errors.Is(err, log.ErrUnknownPartition),
		errors.Is(err, meta.ErrTopicNotFound), errors.Is(err, meta.ErrPartitionRange):
		return kerr.UnknownTopicOrPartition.Code
	case errors.Is(err, log.ErrCorruptBatch):
		return kerr.CorruptMessage.Code
	case errors.Is(err, log.ErrInvalidBatch):
		return kerr.InvalidRecord.Code
	case errors.Is(err, log.ErrMessageTooLarge):
		return kerr.MessageTooLarge.Code
	case errors.Is(err, log.ErrNotEnoughReplicas):
		return kerr.NotEnoughReplicas.Code
	case errors.Is(err, log.ErrOffsetOutOfRange):
		return kerr.OffsetOutOfRange.Code
	case errors.Is(err, log.ErrOutOfOrderSequence):
		return kerr.OutOfOrderSequenceNumber.Code
	case errors.Is(err, log.ErrInvalidProducerEpoch):
		return kerr.InvalidProducerEpoch.Code
	case errors.Is(err, log.ErrTopicExists), errors.Is(err, meta.ErrTopicExists):
		return kerr.TopicAlreadyExists.Code
	case errors.Is(err, log.ErrInvalidTopic):
		return kerr.InvalidTopicException.Code
	case errors.Is(err, log.ErrInvalidConfig):
		return kerr.InvalidConfig.Code
	case errors.Is(err, log.ErrInvalidPartitions):
		return kerr.InvalidPartitions.Code
	case errors.Is(err, meta.ErrInvalid):
		return kerr.InvalidRequest.Code
	case errors.Is(err, log.ErrClosed):
		// The topic was deleted or the broker is stopping: make the
		// client refresh its metadata and retry.
		return kerr.NotLeaderForPartition.Code
	case errors.As(err, &corrupt), errors.Is(err, log.ErrSegmentMissing), errors.Is(err, log.ErrCorruptSegment):
		return kerr.KafkaStorageError.Code
	case errors.Is(err, log.ErrDiskFull), errors.Is(err, log.ErrUploadBacklog):
		// Retriable: nothing was written, and clients retry a storage
		// error after refreshing metadata, by when space may be freed or
		// uploads have caught up.
		return kerr.KafkaStorageError.Code
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return kerr.RequestTimedOut.Code
	}
	return kerr.UnknownServerError.Code
}

// coordinatorErrorCode maps an error of the group coordinator or of its
// offsets in meta to a Kafka error code.
func coordinatorErrorCode(err error) int16 {
	if errors.Is(err, groups.ErrClosed) {
		return kerr.CoordinatorNotAvailable.Code
	}
	return errorCode(err)
}

// txnCode is errorCode for the transaction APIs, with the substitutions
// Kafka makes per request version for clients that predate an error code:
// PRODUCER_FENCED is INVALID_PRODUCER_EPOCH below version fencedSince, and
// a partition or group missing from the transaction
// (txn.ErrNotInTransaction) is TRANSACTION_ABORTABLE from version
// abortableSince (KIP-890), INVALID_TXN_STATE before. A negative
// abortableSince never answers TRANSACTION_ABORTABLE. The Produce handler
// uses it too: TRANSACTION_ABORTABLE from Produce v11.
func txnCode(err error, version, fencedSince, abortableSince int16) int16 {
	code := errorCode(err)
	switch {
	case code == kerr.ProducerFenced.Code && version < fencedSince:
		return kerr.InvalidProducerEpoch.Code
	case errors.Is(err, txn.ErrNotInTransaction) && abortableSince >= 0 && version >= abortableSince:
		return kerr.TransactionAbortable.Code
	}
	return code
}

// errorMessage is the text for a response's ErrorMessage field, nil for
// no error.
func errorMessage(err error) *string {
	if err == nil {
		return nil
	}
	s := err.Error()
	return &s
}
