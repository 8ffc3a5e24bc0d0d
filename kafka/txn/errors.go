package txn

import "errors"

// Sentinel errors of the coordinator's operations; package kafka maps
// each to the Kafka error code named in its comment (errors.go there).
// Errors are returned wrapped: test with errors.Is.
var (
	// ErrNotAvailable: the coordinator is closed, or its store failed and
	// nothing changed (COORDINATOR_NOT_AVAILABLE: the client retries).
	ErrNotAvailable = errors.New("kafka/txn: transaction coordinator not available")
	// ErrInvalidTxnTimeout: the timeout is not positive or above
	// Config.TransactionMaxTimeout (INVALID_TRANSACTION_TIMEOUT).
	ErrInvalidTxnTimeout = errors.New("kafka/txn: invalid transaction timeout")
	// ErrProducerFenced: the producer's epoch is not the transactional
	// ID's current one; a newer producer took over (PRODUCER_FENCED, or
	// INVALID_PRODUCER_EPOCH for versions that predate it).
	ErrProducerFenced = errors.New("kafka/txn: producer fenced")
	// ErrInvalidProducerEpoch: a transactional produce or offset commit
	// carries an epoch that is not current (INVALID_PRODUCER_EPOCH, what
	// Kafka answers there).
	ErrInvalidProducerEpoch = errors.New("kafka/txn: invalid producer epoch")
	// ErrInvalidProducerIDMapping: the transactional ID is unknown, or its
	// producer ID is not the one given (INVALID_PRODUCER_ID_MAPPING).
	ErrInvalidProducerIDMapping = errors.New("kafka/txn: producer ID does not match the transactional ID")
	// ErrInvalidTxnState: the request does not fit the transaction's
	// state, e.g. a commit of an aborted or empty transaction
	// (INVALID_TXN_STATE).
	ErrInvalidTxnState = errors.New("kafka/txn: invalid transaction state")
	// ErrNotInTransaction: a transactional produce or offset commit for a
	// partition or group that was not added to the running transaction
	// (TRANSACTION_ABORTABLE for versions that know it, INVALID_TXN_STATE
	// before).
	ErrNotInTransaction = errors.New("kafka/txn: partition or group not in the transaction")
	// ErrConcurrentTransactions: the transaction is being completed; the
	// client retries (CONCURRENT_TRANSACTIONS).
	ErrConcurrentTransactions = errors.New("kafka/txn: transaction is being completed")
	// ErrTransactionalIDNotFound: no such transactional ID
	// (TRANSACTIONAL_ID_NOT_FOUND, DescribeTransactions).
	ErrTransactionalIDNotFound = errors.New("kafka/txn: transactional ID not found")
)
