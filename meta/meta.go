// Package meta is StreamHouse's metadata store: the cluster ID, topics,
// partitions, sealed segments, committed offsets, producer IDs and the
// transaction coordinator's state, users' SCRAM credentials and the
// authorizer's ACLs. The Store interface is
// backend-neutral; SQLite (sqlite.go) is the default backend and
// PostgreSQL (postgres.go) a second one, sharing most query code through
// the db interface of query.go. It knows nothing of Kafka requests or gRPC
// messages.
package meta

import (
	"context"
	"errors"
	"time"
)

// Sentinel errors returned (wrapped) by every backend.
var (
	ErrTopicExists    = errors.New("meta: topic already exists")
	ErrTopicNotFound  = errors.New("meta: topic not found")
	ErrPartitionRange = errors.New("meta: partition out of range")
	ErrSegmentExists  = errors.New("meta: segment already recorded")
	ErrSegmentChanged = errors.New("meta: segment rows changed")
	ErrInvalid        = errors.New("meta: invalid argument")
)

// Topic is one topic. ID is a stable UUID string (RFC 4122 text form)
// assigned at creation and never reused.
type Topic struct {
	ID             string
	Name           string
	PartitionCount int32
	Configs        map[string]string // per-topic overrides, e.g. "retention.ms"
	CreatedAt      time.Time
}

// Partition is the stored state of one partition.
type Partition struct {
	TopicID        string
	Partition      int32
	LogStartOffset int64
}

// Segment is one sealed segment recorded as living in the object store.
type Segment struct {
	TopicID      string
	Partition    int32
	BaseOffset   int64 // first offset in the segment
	LastOffset   int64 // last offset in the segment (inclusive)
	MaxTimestamp int64 // largest record timestamp, ms since epoch
	ObjectKey    string
	Size         int64 // object size in bytes
	RecordCount  int64
	CreatedAt    time.Time
}

// CommittedOffset is one committed consumer-group offset.
type CommittedOffset struct {
	Group       string
	Topic       string // topic name
	Partition   int32
	Offset      int64
	LeaderEpoch int32 // -1 when unknown
	Metadata    string
	CommitTime  time.Time
}

// TopicPartition names one partition of a topic by topic name.
type TopicPartition struct {
	Topic     string
	Partition int32
}

// ProducerID is an allocated idempotent/transactional producer identity.
type ProducerID struct {
	ID              int64
	Epoch           int16
	TransactionalID string // empty for plain idempotent producers
}

// Store is the metadata store. All methods are safe for concurrent use.
// Methods that write several rows do so in one transaction.
//
// Errors wrap the sentinels above (test with errors.Is): a missing topic
// is ErrTopicNotFound, a partition outside a topic's range is
// ErrPartitionRange, a malformed argument is ErrInvalid. Times are kept at
// millisecond precision.
type Store interface {
	// CreateTopic records t (ID assigned if empty, CreatedAt set if zero)
	// and its PartitionCount partitions with log start offset 0.
	// An empty name, PartitionCount < 1, a non-canonical or nil UUID or an
	// empty config key is ErrInvalid; a taken name or ID is ErrTopicExists.
	// The ID of a topic still listed by DeletedTopics counts as taken; its
	// name does not.
	CreateTopic(ctx context.Context, t Topic) (Topic, error)
	// GetTopic returns the named topic with its configs.
	GetTopic(ctx context.Context, name string) (Topic, error)
	// GetTopicByID returns the topic with the given ID with its configs.
	GetTopicByID(ctx context.Context, id string) (Topic, error)
	// ListTopics returns every topic sorted by name.
	ListTopics(ctx context.Context) ([]Topic, error)
	// DeleteTopic removes the topic, its partitions, its segment rows, its
	// committed offsets and its pending transactional offsets (TxnOffset),
	// and returns what was removed so the caller
	// can delete the objects. In the same transaction it records the topic
	// in the deleted-topics list (see DeletedTopics), so a crash before the
	// leftovers are gone cannot lose track of them. A failed call records
	// nothing.
	DeleteTopic(ctx context.Context, name string) (Topic, []Segment, error)
	// DeletedTopics returns the deleted topics whose leftovers (local
	// files, objects) are not yet removed, sorted by name then ID. Only
	// ID, Name and PartitionCount (the count at deletion) are set;
	// CreatedAt is zero and Configs nil. Several entries may share a name.
	DeletedTopics(ctx context.Context) ([]Topic, error)
	// ForgetDeletedTopic removes the topic with the given ID from the
	// deleted-topics list once its leftovers are gone. Forgetting an ID
	// that is not listed is not an error.
	ForgetDeletedTopic(ctx context.Context, id string) error
	// SetTopicConfigs replaces the topic's whole config map.
	SetTopicConfigs(ctx context.Context, name string, configs map[string]string) error
	// AddPartitions raises the partition count to newCount (must be larger).
	AddPartitions(ctx context.Context, name string, newCount int32) error

	// GetPartition returns one partition's stored state.
	GetPartition(ctx context.Context, topicID string, partition int32) (Partition, error)
	// SetLogStartOffset moves the log start offset; it never moves backwards
	// (a smaller value is ignored).
	SetLogStartOffset(ctx context.Context, topicID string, partition int32, offset int64) error

	// AddSegment records a sealed segment. Recording the same
	// (topic, partition, base offset) twice returns ErrSegmentExists.
	AddSegment(ctx context.Context, s Segment) error
	// ListSegments returns the partition's segments sorted by base offset.
	ListSegments(ctx context.Context, topicID string, partition int32) ([]Segment, error)
	// DeleteSegments removes the segment rows with the given base offsets
	// and raises the log start offset to logStart, in one transaction.
	DeleteSegments(ctx context.Context, topicID string, partition int32, baseOffsets []int64, logStart int64) error
	// ReplaceSegments swaps segment rows of one partition in one transaction,
	// for compaction: every row of old must still be recorded with the same
	// base offset and object key (otherwise nothing changes and the error
	// wraps ErrSegmentChanged), those rows are deleted, and the rows of new are
	// inserted (validated like AddSegment; a base offset that collides with a
	// row that stays is ErrSegmentExists and nothing changes). old must not be
	// empty; new may be. CreatedAt of new rows is set from the store's clock
	// if zero. Every row of old and new must name topicID and partition, and
	// no two rows of old, nor two of new, may share a base offset (else
	// ErrInvalid). The log start offset is left as it is.
	ReplaceSegments(ctx context.Context, topicID string, partition int32, old, new []Segment) error

	// CommitOffsets upserts offsets (one transaction for the whole slice).
	CommitOffsets(ctx context.Context, offsets []CommittedOffset) error
	// FetchOffsets returns the group's committed offsets, sorted by topic
	// then partition. An unknown group returns an empty slice.
	FetchOffsets(ctx context.Context, group string) ([]CommittedOffset, error)
	// FetchOffset returns one committed offset; found is false if none.
	FetchOffset(ctx context.Context, group, topic string, partition int32) (CommittedOffset, bool, error)
	// ListGroups returns the names of groups with committed offsets, sorted.
	ListGroups(ctx context.Context) ([]string, error)
	// DeleteGroup removes every committed offset of the group and every
	// pending transactional offset (TxnOffset) of it.
	DeleteGroup(ctx context.Context, group string) error
	// DeleteOffsets removes the listed committed offsets of the group in
	// one transaction; partitions without an offset are skipped. An empty
	// group or topic name is ErrInvalid.
	DeleteOffsets(ctx context.Context, group string, partitions []TopicPartition) error

	// AllocateProducerID returns a fresh producer ID with epoch 0, or, for
	// a known non-empty transactional ID, the same ID with its epoch bumped.
	// When the bump would overflow int16, the transactional ID moves to a
	// fresh producer ID with epoch 0.
	AllocateProducerID(ctx context.Context, transactionalID string) (ProducerID, error)

	// PutTxn upserts t's whole row, replacing its partition and group
	// sets, in one transaction (UpdatedAt set from the store's clock if
	// zero); an empty TransactionalID, ProducerID < 0, LastProducerID < -1,
	// negative TimeoutMs, unknown State, or an empty, negative or duplicate
	// partition or group is ErrInvalid.
	PutTxn(ctx context.Context, t Txn) error
	// GetTxn returns one transactional ID's state; found is false if none.
	GetTxn(ctx context.Context, transactionalID string) (t Txn, found bool, err error)
	// ListTxns returns every txn, sorted by TransactionalID, with its
	// partitions and groups.
	ListTxns(ctx context.Context) ([]Txn, error)
	// DeleteTxn removes the txn with its partitions, groups and pending
	// offsets; deleting a missing one is not an error.
	DeleteTxn(ctx context.Context, transactionalID string) error
	// AddTxnOffsets upserts pending offsets keyed by (transactional ID,
	// group, topic, partition) in one transaction (CommittedAt set from
	// the store's clock if zero); an entry whose TransactionalID names no
	// txn, or with an empty group or topic or a negative partition, is
	// ErrInvalid and nothing is written.
	AddTxnOffsets(ctx context.Context, offsets []TxnOffset) error
	// PendingTxnOffsets returns the group's pending offsets across
	// transactions, sorted by topic, partition, then transactional ID.
	PendingTxnOffsets(ctx context.Context, group string) ([]TxnOffset, error)
	// CompleteTxn ends t's transaction in one database transaction: if
	// commit, every pending offset of t.TransactionalID becomes a committed
	// offset (commit time = its CommittedAt), then all its pending offsets
	// are deleted, then t is written as by PutTxn; a failed call (an
	// invalid t is ErrInvalid, as for PutTxn) changes nothing.
	CompleteTxn(ctx context.Context, t Txn, commit bool) error

	// PutScramCredential upserts the credential of (c.User, c.Mechanism)
	// (UpdatedAt set from the store's clock if zero); an empty user, an
	// unknown mechanism, an empty salt, iterations <= 0 or keys not
	// Mechanism.KeyLen() bytes long is ErrInvalid.
	PutScramCredential(ctx context.Context, c ScramCredential) error
	// GetScramCredential returns a user's credential for one mechanism;
	// found is false if none.
	GetScramCredential(ctx context.Context, user string, m ScramMechanism) (c ScramCredential, found bool, err error)
	// ListScramCredentials returns every credential, sorted by user, then
	// mechanism.
	ListScramCredentials(ctx context.Context) ([]ScramCredential, error)
	// DeleteScramCredential removes a user's credential for one
	// mechanism; deleted is false if there was none.
	DeleteScramCredential(ctx context.Context, user string, m ScramMechanism) (deleted bool, err error)

	// ClusterID returns the cluster's ID: the unpadded base64url text (22
	// characters) of a random version-4 UUID, the form Kafka prints
	// cluster IDs in. The first call on a database without one generates
	// and stores it; OpenSQLite and OpenPostgres make that call, so a
	// database gets its ID at its first open. Concurrent first calls, from
	// any number of stores on one database, all return the ID one of them
	// stored, and the ID never changes after.
	ClusterID(ctx context.Context) (string, error)

	// Close releases the store's resources; no method may be called after.
	Close() error

	// The broker registry and leases of cluster mode (brokers.go,
	// leases.go). Deadlines are set from lifetimes (ttl >= 1ms, else
	// ErrInvalid) and judged by the store's lease clock (WithLeaseClock:
	// on PostgreSQL the database server's clock), never by the caller's.

	// RegisterBroker registers b for ttl and returns the registration:
	// b.ID, or for AssignBrokerID the lowest ID >= 0 no live broker holds,
	// with an epoch one above the ID's previous registration (1 for a new
	// ID). A registration of an ID replaces the previous one, live or not:
	// its heartbeats then fail with ErrBrokerFenced. An ID < -1, an empty
	// host or a port outside 0..65535 is ErrInvalid.
	RegisterBroker(ctx context.Context, b BrokerInfo, ttl time.Duration) (Broker, error)
	// HeartbeatBroker extends the registration of id at epoch to ttl from
	// now and returns the new deadline; it works even after the deadline
	// passed, as long as no registration replaced it (else
	// ErrBrokerFenced).
	HeartbeatBroker(ctx context.Context, id int32, epoch int64, ttl time.Duration) (time.Time, error)
	// UnregisterBroker ends the registration of id at epoch now, so its
	// ID is free and it is no longer live; ErrBrokerFenced if it was
	// replaced. The row and its epoch stay.
	UnregisterBroker(ctx context.Context, id int32, epoch int64) error
	// ListBrokers returns every registration ever made, live or not,
	// sorted by ID, with Live judged by the lease clock.
	ListBrokers(ctx context.Context) ([]Broker, error)

	// AcquireLease gives key to holder (a broker ID >= 0) for ttl if no
	// one holds it: never acquired, released, or expired. The epoch grows
	// by one (1 for the first acquisition) and is never reused. If it is
	// held and unexpired, even by holder itself, the error wraps
	// ErrLeaseHeld and the Lease returned is the current one.
	AcquireLease(ctx context.Context, key LeaseKey, holder int32, ttl time.Duration) (Lease, error)
	// RenewLease extends key's lease to ttl from now if holder still
	// holds it at epoch, expired or not (no one took it over), else
	// ErrLeaseLost.
	RenewLease(ctx context.Context, key LeaseKey, holder, epoch int32, ttl time.Duration) (Lease, error)
	// ReleaseLease gives up key's lease if holder holds it at epoch (else
	// ErrLeaseLost): it is free at once and keeps its epoch.
	ReleaseLease(ctx context.Context, key LeaseKey, holder, epoch int32) error
	// GetLease returns key's lease; found is false if never acquired.
	GetLease(ctx context.Context, key LeaseKey) (l Lease, found bool, err error)
	// ListLeases returns the leases of kind ("" for every kind), sorted by
	// kind then key, released and expired ones included.
	//
	// For AcquireLease, RenewLease and ReleaseLease an empty key part or
	// a holder < 0 is ErrInvalid.
	ListLeases(ctx context.Context, kind string) ([]Lease, error)

	// The authorizer's ACLs (acls.go), with Kafka's codes and filter
	// semantics (AclFilter.Matches).

	// CreateAcls stores the bindings in one transaction; a binding
	// already stored (or twice in acls) is not an error and changes
	// nothing. If any binding fails AclBinding.Validate the error wraps
	// ErrInvalid and nothing is stored.
	CreateAcls(ctx context.Context, acls []AclBinding) error
	// ListAcls returns the bindings f matches, sorted by resource type,
	// resource name, pattern type, principal, host, operation, then
	// permission; never nil. A filter failing AclFilter.Validate is
	// ErrInvalid.
	ListAcls(ctx context.Context, f AclFilter) ([]AclBinding, error)
	// DeleteAcls deletes, in one transaction, every binding any of the
	// filters matches, and returns per filter (in the order given) the
	// bindings it matched, sorted as by ListAcls: a binding matched by
	// two filters is listed under both, as Kafka's DeleteAcls answers.
	// If any filter fails AclFilter.Validate the error wraps ErrInvalid
	// and nothing is deleted.
	DeleteAcls(ctx context.Context, filters []AclFilter) ([][]AclBinding, error)
}
