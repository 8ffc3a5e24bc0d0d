package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/streamhouse/streamhouse/kafka"
	"github.com/streamhouse/streamhouse/log"
)

// Config is everything the broker needs to start. LoadConfig builds it from
// flags and their STREAMHOUSE_* (and the seed's) environment twins; run
// turns it into a broker. Paths are kept as given (relative ones are
// relative to the working directory).
type Config struct {
	// DataDir is the root of everything the broker keeps on local disk.
	DataDir string
	// MetadataPath is the SQLite metadata database file, or a
	// postgres:// (postgresql://) URL for the PostgreSQL backend.
	MetadataPath string
	// SegmentsDir is the log's local directory: active segments, and sealed
	// ones not yet uploaded. It is locked while the broker runs. The seed
	// called this the cache directory (STREAMHOUSE_CACHE).
	SegmentsDir string
	// CacheBytes bounds the in-memory LRU cache of sealed segments read
	// back from the object store.
	CacheBytes int64
	// UseLocalStorage keeps objects in LocalStoragePath instead of S3.
	UseLocalStorage bool
	// LocalStoragePath is the local object store directory.
	LocalStoragePath string
	// Bucket is the S3 bucket; it must exist.
	Bucket string
	// S3Endpoint is the URL of an S3-compatible service; empty means AWS.
	S3Endpoint string
	// AWSRegion is the bucket's region.
	AWSRegion string
	// S3PathStyle addresses the bucket in the URL path, not the host name.
	S3PathStyle bool
	// KafkaAddr is where the Kafka listener listens when KafkaListeners
	// is not set: one PLAINTEXT listener.
	KafkaAddr string
	// KafkaAdvertisedAddr is the host:port Metadata tells clients of the
	// first listener to use; empty means the listener's own address.
	KafkaAdvertisedAddr string
	// KafkaListeners are Kafka's listeners (--kafka-listeners), with
	// their advertised addresses (--kafka-advertised-listeners); at least
	// one, names unique.
	KafkaListeners []KafkaListener
	// TLSCert and TLSKey are PEM files of the certificate (chain) and key
	// served on SSL listeners and, with GRPCTLS, by the gRPC API; they are
	// read again when they change. TLSClientCA, when set, is a PEM file of
	// the CAs client certificates must chain to: clients must present one.
	TLSCert, TLSKey, TLSClientCA string
	// GRPCTLS serves the gRPC API over TLS with TLSCert and TLSKey.
	GRPCTLS bool
	// SASLMechanisms are the mechanisms SASL listeners offer.
	SASLMechanisms []string
	// FailedAuthenticationDelay delays the answer to a failed SASL
	// authentication (connection.failed.authentication.delay.ms); 0: none.
	FailedAuthenticationDelay time.Duration
	// BootstrapUser, when set, gets SCRAM-SHA-256 and SCRAM-SHA-512
	// credentials at start; it needs a SASL listener.
	BootstrapUser BootstrapUser
	// AutoCreateTopics is Kafka's auto.create.topics.enable.
	AutoCreateTopics bool
	// MaxRequestBytes is Kafka's socket.request.max.bytes.
	MaxRequestBytes int64
	// MaxConnections is Kafka's max.connections; QueuedMaxRequestBytes
	// its queued.max.request.bytes (never below MaxRequestBytes).
	MaxConnections        int
	QueuedMaxRequestBytes int64
	// FetchMaxBytes is Kafka's fetch.max.bytes.
	FetchMaxBytes int64
	// FsyncAcksAll makes acks=all answer only after fsync (the default and
	// the durability contract); false matches Kafka's default policy.
	FsyncAcksAll bool
	// GRPCAddr is where the gRPC API listens.
	GRPCAddr string
	// HTTPAddr serves /metrics, /healthz and /readyz.
	HTTPAddr string
	// MetricsPerPartition exports the per-topic log metrics per partition
	// (a partition label; one series per partition instead of per topic).
	MetricsPerPartition bool
	// LogFormat is "text" or "json".
	LogFormat string
	// LogLevel is the lowest level logged.
	LogLevel slog.Level
	// SegmentBytes and SegmentAge are the broker-wide segment roll limits.
	SegmentBytes int64
	SegmentAge   time.Duration
	// FlushInterval is how often acks=1 appends are synced in the background.
	FlushInterval time.Duration
	// FsyncScope is what one group-commit sync covers (log.SyncScope).
	FsyncScope log.SyncScope
	// MaxUploadBacklog bounds the bytes of sealed segments waiting for
	// upload (log.Config.MaxUploadBacklog); 0 means half the free space.
	MaxUploadBacklog int64
	// Compaction (log.Config.Cleaner), Kafka's log.cleaner.* settings:
	// CleanerEnable is log.cleaner.enable; the ratio and the lags are the
	// broker defaults of the topic configs min.cleanable.dirty.ratio,
	// min.compaction.lag.ms, max.compaction.lag.ms (0: none) and
	// delete.retention.ms; CleanerIOBytesPerSecond 0 is unlimited;
	// CleanerBackoff is how often the cleaner looks for work;
	// CleanerDeleteDelay is file.delete.delay.ms for replaced segment
	// objects (0: at once). See (*Config).cleaner.
	CleanerEnable            bool
	CleanerMinCleanableRatio float64
	CleanerMinCompactionLag  time.Duration
	CleanerMaxCompactionLag  time.Duration
	CleanerDeleteRetention   time.Duration
	CleanerDedupeBufferBytes int64
	CleanerIOBytesPerSecond  int64
	CleanerBackoff           time.Duration
	CleanerDeleteDelay       time.Duration
	// TimerSlack is the kernel timer slack of every broker thread (Linux;
	// 0 keeps the inherited one). See applyTimerSlack.
	TimerSlack time.Duration
	// SlowRequestThreshold logs Kafka requests and gRPC calls slower than this (long-poll
	// and rebalance waits excluded) at Warn; 0 disables the log.
	SlowRequestThreshold time.Duration
	// Group coordinator settings (kafka.GroupConfig): Kafka's
	// group.initial.rebalance.delay.ms (0: none),
	// group.min/max.session.timeout.ms, offsets.retention.minutes and
	// offsets.retention.check.interval.ms.
	GroupInitialRebalanceDelay    time.Duration
	GroupMinSessionTimeout        time.Duration
	GroupMaxSessionTimeout        time.Duration
	OffsetsRetention              time.Duration
	OffsetsRetentionCheckInterval time.Duration
	// KIP-848 consumer groups: group.consumer.session.timeout.ms and
	// group.consumer.heartbeat.interval.ms.
	ConsumerSessionTimeout    time.Duration
	ConsumerHeartbeatInterval time.Duration
	// GroupMetricsMaxSeries caps the per-group metric series; 0 exports
	// none.
	GroupMetricsMaxSeries int
	// Transaction coordinator settings (kafka.TxnConfig): Kafka's
	// transaction.max.timeout.ms,
	// transaction.abort.timed.out.transaction.cleanup.interval.ms and
	// transactional.id.expiration.ms.
	TransactionMaxTimeout     time.Duration
	TransactionAbortInterval  time.Duration
	TransactionalIDExpiration time.Duration
	// TransactionVersion is the finalized transaction.version clients are
	// told: 1 (not advertised; clients use transaction version 1) or 2
	// (KIP-890 part 2; kafka.Config.TransactionV2).
	TransactionVersion int
}

// SettingError is a setting whose value cannot be used. Name is the
// environment variable or the flag ("--cache-size") the value came from.
type SettingError struct {
	Name  string
	Value string
	Err   error
}

// Error implements error.
func (e *SettingError) Error() string {
	return fmt.Sprintf("invalid %s %q: %v", e.Name, e.Value, e.Err)
}

// Unwrap returns the cause.
func (e *SettingError) Unwrap() error { return e.Err }

// setting is one row of the settings table: a flag, its environment twin,
// its default and how its value lands in a Config.
type setting struct {
	flag  string
	env   string
	usage string
	// isBool makes the flag usable without a value ("--s3-path-style").
	isBool bool
	// secret keeps the value out of error messages (it holds a password).
	secret bool
	// defText is the default as shown by --help.
	defText string
	// def returns the default given the settings resolved before this one
	// (the table is ordered so that those come first).
	def func(c *Config) string
	// set parses v into c.
	set func(c *Config, v string) error
}

// constant returns a def func for a fixed default.
func constant(v string) func(*Config) string { return func(*Config) string { return v } }

// settings returns the settings table, in resolution and --help order.
func settings() []setting {
	return []setting{
		{flag: "data-dir", env: "STREAMHOUSE_DATA_DIR", usage: "root of the broker's local data",
			defText: "./data", def: constant("./data"),
			set: func(c *Config, v string) (err error) { c.DataDir, err = parsePath(v); return }},
		{flag: "metadata", env: "STREAMHOUSE_METADATA", usage: "metadata store: a SQLite database file, or postgres://USER:PASS@HOST:PORT/DB for PostgreSQL",
			defText: "<data-dir>/metadata.db", def: func(c *Config) string { return filepath.Join(c.DataDir, "metadata.db") },
			set: func(c *Config, v string) (err error) {
				if isPostgresURL(v) {
					c.MetadataPath, err = v, checkPostgresURL(v)
					return
				}
				c.MetadataPath, err = parsePath(v)
				return
			}},
		{flag: "cache", env: "STREAMHOUSE_CACHE", usage: "local segment directory: active segments and sealed ones awaiting upload (locked while running)",
			defText: "<data-dir>/segments", def: func(c *Config) string { return filepath.Join(c.DataDir, "segments") },
			set: func(c *Config, v string) (err error) { c.SegmentsDir, err = parsePath(v); return }},
		{flag: "cache-size", env: "STREAMHOUSE_CACHE_SIZE", usage: "bytes of sealed segments cached in memory (e.g. 268435456, 256MiB, 1GiB, 512MB)",
			defText: "256MiB", def: constant("256MiB"),
			set: func(c *Config, v string) (err error) { c.CacheBytes, err = parsePositiveSize(v); return }},
		{flag: "bucket", env: "STREAMHOUSE_BUCKET", usage: "S3 bucket for sealed segments; setting it selects S3 storage",
			def: constant(""), set: func(c *Config, v string) error { c.Bucket = v; return nil }},
		{flag: "s3-endpoint", env: "S3_ENDPOINT", usage: "URL of an S3-compatible service (empty: AWS S3)",
			def: constant(""), set: func(c *Config, v string) (err error) { c.S3Endpoint, err = parseEndpoint(v); return }},
		{flag: "aws-region", env: "AWS_REGION", usage: "the bucket's region",
			defText: "us-east-1", def: constant("us-east-1"),
			set: func(c *Config, v string) error { c.AWSRegion = v; return nonEmpty(v) }},
		{flag: "s3-path-style", env: "STREAMHOUSE_S3_PATH_STYLE", isBool: true, usage: "path-style S3 addressing (endpoint/bucket/key)",
			defText: "true if an endpoint is set", def: func(c *Config) string { return strconv.FormatBool(c.S3Endpoint != "") },
			set: func(c *Config, v string) (err error) { c.S3PathStyle, err = strconv.ParseBool(v); return }},
		{flag: "use-local-storage", env: "USE_LOCAL_STORAGE", isBool: true, usage: "keep objects in a local directory instead of S3",
			defText: "true unless a bucket is set", def: func(c *Config) string { return strconv.FormatBool(c.Bucket == "") },
			set: func(c *Config, v string) (err error) { c.UseLocalStorage, err = strconv.ParseBool(v); return }},
		{flag: "local-storage-path", env: "LOCAL_STORAGE_PATH", usage: "local object store directory",
			defText: "<data-dir>/objects", def: func(c *Config) string { return filepath.Join(c.DataDir, "objects") },
			set: func(c *Config, v string) (err error) { c.LocalStoragePath, err = parsePath(v); return }},
		{flag: "kafka-addr", env: "STREAMHOUSE_KAFKA_ADDR", usage: "Kafka listener address",
			defText: ":9092", def: constant(":9092"),
			set: func(c *Config, v string) error { c.KafkaAddr = v; return checkAddr(v) }},
		{flag: "kafka-advertised-addr", env: "STREAMHOUSE_KAFKA_ADVERTISED_ADDR", usage: "host:port that Kafka clients are told to connect to (empty: the listener's address)",
			def: constant(""), set: func(c *Config, v string) error {
				c.KafkaAdvertisedAddr = v
				if v == "" {
					return nil
				}
				return checkAddr(v)
			}},
		{flag: "kafka-listeners", env: "STREAMHOUSE_KAFKA_LISTENERS", usage: "Kafka listeners, comma-separated NAME://HOST:PORT with NAME a security protocol: PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL, e.g. PLAINTEXT://:9092,SASL_SSL://:9093 (listeners)",
			defText: "PLAINTEXT://<kafka-addr>", def: func(c *Config) string { return "PLAINTEXT://" + c.KafkaAddr },
			set: func(c *Config, v string) (err error) { c.KafkaListeners, err = parseListeners(v); return }},
		{flag: "kafka-advertised-listeners", env: "STREAMHOUSE_KAFKA_ADVERTISED_LISTENERS", usage: "what Kafka clients are told to connect to, per listener: comma-separated NAME://HOST:PORT, NAME one of --kafka-listeners; a listener left out advertises its own address (advertised.listeners)",
			defText: "the first listener at --kafka-advertised-addr if that is set", def: func(c *Config) string {
				if c.KafkaAdvertisedAddr == "" {
					return ""
				}
				return c.KafkaListeners[0].Name + "://" + c.KafkaAdvertisedAddr
			},
			set: func(c *Config, v string) error { return setAdvertisedListeners(c.KafkaListeners, v) }},
		{flag: "auto-create-topics", env: "STREAMHOUSE_AUTO_CREATE_TOPICS", isBool: true, usage: "create unknown topics on Metadata requests that allow it (auto.create.topics.enable)",
			defText: "true", def: constant("true"),
			set: func(c *Config, v string) (err error) { c.AutoCreateTopics, err = strconv.ParseBool(v); return }},
		{flag: "fsync-acks-all", env: "STREAMHOUSE_FSYNC_ACKS_ALL", isBool: true, usage: "answer acks=all only after fsync; false answers once written, like Kafka's default (weaker durability, for comparisons)",
			defText: "true", def: constant("true"),
			set: func(c *Config, v string) (err error) { c.FsyncAcksAll, err = strconv.ParseBool(v); return }},
		{flag: "max-request-bytes", env: "STREAMHOUSE_MAX_REQUEST_BYTES", usage: "largest Kafka request frame accepted (socket.request.max.bytes)",
			defText: "100MiB", def: constant("100MiB"),
			set: func(c *Config, v string) (err error) {
				if c.MaxRequestBytes, err = parsePositiveSize(v); err == nil && c.MaxRequestBytes > 1<<31-1 {
					err = errors.New("must be below 2GiB")
				}
				return
			}},
		{flag: "max-connections", env: "STREAMHOUSE_MAX_CONNECTIONS", usage: "most Kafka client connections open at once; one more is closed at once (max.connections)",
			defText: strconv.Itoa(kafka.DefaultMaxConnections), def: constant(strconv.Itoa(kafka.DefaultMaxConnections)),
			set: func(c *Config, v string) (err error) {
				if c.MaxConnections, err = parseCount(v); err == nil && c.MaxConnections == 0 {
					err = errors.New("must be at least 1")
				}
				return
			}},
		{flag: "queued-max-request-bytes", env: "STREAMHOUSE_QUEUED_MAX_REQUEST_BYTES", usage: "Kafka request bytes held in memory across connections; past it connections wait before reading more (queued.max.request.bytes; at least --max-request-bytes)",
			defText: "256MiB", def: constant("256MiB"),
			set: func(c *Config, v string) (err error) { c.QueuedMaxRequestBytes, err = parsePositiveSize(v); return }},
		{flag: "fetch-max-bytes", env: "STREAMHOUSE_FETCH_MAX_BYTES", usage: "most bytes one Kafka Fetch response returns, whatever the client asks (fetch.max.bytes; a larger first batch still comes back), and most response bytes a connection holds in memory beyond one response",
			defText: "55MiB", def: constant("55MiB"),
			set: func(c *Config, v string) (err error) {
				if c.FetchMaxBytes, err = parsePositiveSize(v); err == nil && c.FetchMaxBytes > 1<<31-1 {
					err = errors.New("must be below 2GiB")
				}
				return
			}},
		{flag: "grpc-addr", env: "STREAMHOUSE_GRPC_ADDR", usage: "gRPC API address",
			defText: ":50051", def: constant(":50051"),
			set: func(c *Config, v string) error { c.GRPCAddr = v; return checkAddr(v) }},
		{flag: "tls-cert", env: "STREAMHOUSE_TLS_CERT", usage: "PEM certificate (chain) served on SSL and SASL_SSL listeners and, with --grpc-tls, by the gRPC API; read again on the next handshake after the file changes",
			def: constant(""), set: func(c *Config, v string) error { c.TLSCert = v; return nil }},
		{flag: "tls-key", env: "STREAMHOUSE_TLS_KEY", usage: "PEM private key of --tls-cert; read again on the next handshake after the file changes",
			def: constant(""), set: func(c *Config, v string) error { c.TLSKey = v; return nil }},
		{flag: "tls-client-ca", env: "STREAMHOUSE_TLS_CLIENT_CA", usage: "PEM CA certificates for mutual TLS: SSL and SASL_SSL listeners (and gRPC with --grpc-tls) require a client certificate signed by one of them",
			def: constant(""), set: func(c *Config, v string) error { c.TLSClientCA = v; return nil }},
		{flag: "grpc-tls", env: "STREAMHOUSE_GRPC_TLS", isBool: true, usage: "serve the gRPC API (and its health service) over TLS with --tls-cert and --tls-key, requiring client certificates when --tls-client-ca is set; false keeps it plaintext",
			defText: "true if --tls-cert is set", def: func(c *Config) string { return strconv.FormatBool(c.TLSCert != "") },
			set: func(c *Config, v string) (err error) { c.GRPCTLS, err = strconv.ParseBool(v); return }},
		{flag: "sasl-mechanisms", env: "STREAMHOUSE_SASL_MECHANISMS", usage: "SASL mechanisms SASL_PLAINTEXT and SASL_SSL listeners offer, comma-separated: SCRAM-SHA-512, SCRAM-SHA-256, PLAIN (sasl.enabled.mechanisms)",
			defText: "SCRAM-SHA-512,SCRAM-SHA-256,PLAIN", def: constant("SCRAM-SHA-512,SCRAM-SHA-256,PLAIN"),
			set: func(c *Config, v string) (err error) { c.SASLMechanisms, err = parseSASLMechanisms(v); return }},
		{flag: "failed-authentication-delay", env: "STREAMHOUSE_FAILED_AUTHENTICATION_DELAY", usage: "delay before answering a failed SASL authentication, then closing the connection (connection.failed.authentication.delay.ms; milliseconds or a duration, 0 for none)",
			defText: "100", def: constant("100"),
			set: func(c *Config, v string) (err error) { c.FailedAuthenticationDelay, err = parseMillisOrZero(v); return }},
		{flag: "bootstrap-user", env: "STREAMHOUSE_BOOTSTRAP_USER", secret: true, usage: "NAME:PASSWORD of a user whose SCRAM-SHA-256 and SCRAM-SHA-512 credentials are created (or replaced) at start; needs a SASL listener",
			def: constant(""), set: func(c *Config, v string) (err error) { c.BootstrapUser, err = parseBootstrapUser(v); return }},
		{flag: "http-addr", env: "STREAMHOUSE_HTTP_ADDR", usage: "HTTP address for /metrics, /healthz, /readyz",
			defText: ":8080", def: constant(":8080"),
			set: func(c *Config, v string) error { c.HTTPAddr = v; return checkAddr(v) }},
		{flag: "metrics-per-partition", env: "STREAMHOUSE_METRICS_PER_PARTITION", isBool: true, usage: "export the per-topic log metrics (throughput, offsets, object-store bytes) per partition: one series per partition instead of per topic",
			defText: "false", def: constant("false"),
			set: func(c *Config, v string) (err error) { c.MetricsPerPartition, err = strconv.ParseBool(v); return }},
		{flag: "log-format", env: "STREAMHOUSE_LOG_FORMAT", usage: "log format: text or json",
			defText: "text", def: constant("text"),
			set: func(c *Config, v string) (err error) { c.LogFormat, err = parseLogFormat(v); return }},
		{flag: "log-level", env: "STREAMHOUSE_LOG_LEVEL", usage: "log level: debug, info, warn or error",
			defText: "info", def: constant("info"),
			set: func(c *Config, v string) (err error) { c.LogLevel, err = parseLogLevel(v); return }},
		{flag: "segment-bytes", env: "STREAMHOUSE_SEGMENT_BYTES", usage: "roll the active segment at this size (bytes, or with a unit like 64MiB)",
			defText: "64MiB", def: constant(strconv.Itoa(log.DefaultSegmentBytes)),
			set: func(c *Config, v string) (err error) { c.SegmentBytes, err = parsePositiveSize(v); return }},
		{flag: "segment-ms", env: "STREAMHOUSE_SEGMENT_MS", usage: "roll the active segment at this age (milliseconds, or a duration like 10m)",
			defText: "600000 (10m)", def: constant(strconv.FormatInt(log.DefaultSegmentAge.Milliseconds(), 10)),
			set: func(c *Config, v string) (err error) { c.SegmentAge, err = parseMillis(v); return }},
		{flag: "fsync-scope", env: "STREAMHOUSE_FSYNC_SCOPE", usage: "what one group-commit sync covers: file (one fsync per partition) or filesystem (one syncfs of the segments directory's filesystem serves every partition, and waits for everything else dirty on it: for a data directory on its own volume; Linux 5.8+ on ext4, xfs, btrfs, f2fs or tmpfs, file elsewhere)",
			defText: "file", def: constant(string(log.SyncFile)),
			set: func(c *Config, v string) (err error) { c.FsyncScope, err = log.ParseSyncScope(v); return }},
		{flag: "max-upload-backlog", env: "STREAMHOUSE_MAX_UPLOAD_BACKLOG", usage: "bytes of sealed segments that may wait on local disk for the object store; past it produce is refused with a retriable error until uploads catch up (e.g. 8GiB; 0: half the free space of the segments directory's filesystem at start)",
			defText: "0", def: constant("0"),
			set: func(c *Config, v string) (err error) { c.MaxUploadBacklog, err = parseSize(v); return }},
		{flag: "flush-interval", env: "STREAMHOUSE_FLUSH_INTERVAL", usage: "background fsync interval for acks=1 appends (a duration like 1s or 250ms)",
			defText: "1s", def: constant(log.DefaultFlushInterval.String()),
			set: func(c *Config, v string) (err error) { c.FlushInterval, err = parseDuration(v); return }},
		{flag: "log-cleaner-enable", env: "STREAMHOUSE_LOG_CLEANER_ENABLE", isBool: true, usage: "run the log cleaner, which compacts topics with cleanup.policy=compact (log.cleaner.enable); false leaves them uncompacted",
			defText: "true", def: constant("true"),
			set: func(c *Config, v string) (err error) { c.CleanerEnable, err = strconv.ParseBool(v); return }},
		{flag: "log-cleaner-min-cleanable-ratio", env: "STREAMHOUSE_LOG_CLEANER_MIN_CLEANABLE_RATIO", usage: "compact a partition once this share of its sealed bytes is not compacted yet, above 0 and at most 1 (log.cleaner.min.cleanable.ratio; topic config min.cleanable.dirty.ratio overrides)",
			defText: "0.5", def: constant(strconv.FormatFloat(log.DefaultMinCleanableRatio, 'g', -1, 64)),
			set: func(c *Config, v string) (err error) { c.CleanerMinCleanableRatio, err = parseRatio(v); return }},
		{flag: "log-cleaner-min-compaction-lag", env: "STREAMHOUSE_LOG_CLEANER_MIN_COMPACTION_LAG", usage: "a record stays uncompacted at least this long after it was written (log.cleaner.min.compaction.lag.ms; topic config min.compaction.lag.ms overrides; milliseconds or a duration; 0: no lag)",
			defText: "0", def: constant("0"),
			set: func(c *Config, v string) (err error) { c.CleanerMinCompactionLag, err = parseMillisOrZero(v); return }},
		{flag: "log-cleaner-max-compaction-lag", env: "STREAMHOUSE_LOG_CLEANER_MAX_COMPACTION_LAG", usage: "a sealed segment is compacted within this long of its newest record, whatever the dirty ratio (log.cleaner.max.compaction.lag.ms; topic config max.compaction.lag.ms overrides; milliseconds or a duration; none: no limit)",
			defText: "none", def: constant("none"),
			set: func(c *Config, v string) (err error) {
				c.CleanerMaxCompactionLag, err = parseMaxCompactionLag(v)
				return
			}},
		{flag: "log-cleaner-delete-retention", env: "STREAMHOUSE_LOG_CLEANER_DELETE_RETENTION", usage: "how long a tombstone (a record with a null value) stays readable once compaction reached it (log.cleaner.delete.retention.ms; topic config delete.retention.ms overrides; milliseconds or a duration)",
			defText: "86400000 (1 day)", def: constant(strconv.FormatInt(log.DefaultDeleteRetention.Milliseconds(), 10)),
			set: func(c *Config, v string) (err error) { c.CleanerDeleteRetention, err = parseMillis(v); return }},
		{flag: "log-cleaner-dedupe-buffer-size", env: "STREAMHOUSE_LOG_CLEANER_DEDUPE_BUFFER_SIZE", usage: "memory for the key map of one compaction run, 24 bytes per distinct key (log.cleaner.dedupe.buffer.size)",
			defText: "128MiB", def: constant("128MiB"),
			set: func(c *Config, v string) (err error) { c.CleanerDedupeBufferBytes, err = parsePositiveSize(v); return }},
		{flag: "log-cleaner-io-max-bytes-per-second", env: "STREAMHOUSE_LOG_CLEANER_IO_MAX_BYTES_PER_SECOND", usage: "most bytes per second the cleaner reads and writes, e.g. 50MiB (log.cleaner.io.max.bytes.per.second; 0: unlimited)",
			defText: "0", def: constant("0"),
			set: func(c *Config, v string) (err error) { c.CleanerIOBytesPerSecond, err = parseSize(v); return }},
		{flag: "log-cleaner-backoff", env: "STREAMHOUSE_LOG_CLEANER_BACKOFF", usage: "how often the cleaner looks for partitions to compact (log.cleaner.backoff.ms; milliseconds or a duration)",
			defText: "15000 (15s)", def: constant(strconv.FormatInt(log.DefaultCleanerInterval.Milliseconds(), 10)),
			set: func(c *Config, v string) (err error) { c.CleanerBackoff, err = parseMillis(v); return }},
		{flag: "log-cleaner-delete-delay", env: "STREAMHOUSE_LOG_CLEANER_DELETE_DELAY", usage: "how long a segment object replaced by compaction stays in the object store for reads that planned on it (file.delete.delay.ms; milliseconds or a duration; 0 deletes at once, which can fail such reads)",
			defText: "60000 (1m)", def: constant(strconv.FormatInt(log.DefaultCleanerDeleteDelay.Milliseconds(), 10)),
			set: func(c *Config, v string) (err error) { c.CleanerDeleteDelay, err = parseMillisOrZero(v); return }},
		{flag: "timer-slack", env: "STREAMHOUSE_TIMER_SLACK", usage: "how late the kernel may wake the broker's timed sleeps, at most 10ms; a larger slack lets the Go runtime's monitor thread wake less often (Linux; 0 keeps the slack the process inherited)",
			defText: "1ms", def: constant("1ms"),
			set: func(c *Config, v string) (err error) { c.TimerSlack, err = parseTimerSlack(v); return }},
		{flag: "slow-request-threshold", env: "STREAMHOUSE_SLOW_REQUEST_THRESHOLD", usage: "log Kafka requests and gRPC calls taking longer than this at warn, long-poll and rebalance waits excluded (a duration like 1s; 0 disables)",
			defText: "1s", def: constant("1s"),
			set: func(c *Config, v string) (err error) { c.SlowRequestThreshold, err = parseDurationOrZero(v); return }},
		{flag: "group-initial-rebalance-delay", env: "STREAMHOUSE_GROUP_INITIAL_REBALANCE_DELAY", usage: "delay of an empty group's first rebalance, group.initial.rebalance.delay.ms (milliseconds or a duration; 0 disables)",
			defText: "3000 (3s)", def: constant(strconv.FormatInt(kafka.DefaultGroupInitialRebalanceDelay.Milliseconds(), 10)),
			set: func(c *Config, v string) (err error) {
				c.GroupInitialRebalanceDelay, err = parseMillisOrZero(v)
				return
			}},
		{flag: "group-min-session-timeout", env: "STREAMHOUSE_GROUP_MIN_SESSION_TIMEOUT", usage: "smallest session timeout a consumer may ask for, group.min.session.timeout.ms (milliseconds or a duration)",
			defText: "6000 (6s)", def: constant(strconv.FormatInt(kafka.DefaultGroupMinSessionTimeout.Milliseconds(), 10)),
			set: func(c *Config, v string) (err error) { c.GroupMinSessionTimeout, err = parseMillis(v); return }},
		{flag: "group-max-session-timeout", env: "STREAMHOUSE_GROUP_MAX_SESSION_TIMEOUT", usage: "largest session timeout a consumer may ask for, group.max.session.timeout.ms (milliseconds or a duration)",
			defText: "1800000 (30m)", def: constant(strconv.FormatInt(kafka.DefaultGroupMaxSessionTimeout.Milliseconds(), 10)),
			set: func(c *Config, v string) (err error) { c.GroupMaxSessionTimeout, err = parseMillis(v); return }},
		{flag: "offsets-retention", env: "STREAMHOUSE_OFFSETS_RETENTION", usage: "committed offsets of a group without members expire this long after the later of their commit and the group emptying, offsets.retention.minutes (minutes or a duration like 168h)",
			defText: "10080 (7 days)", def: constant(strconv.FormatInt(int64(kafka.DefaultOffsetsRetention/time.Minute), 10)),
			set: func(c *Config, v string) (err error) { c.OffsetsRetention, err = parseMinutes(v); return }},
		{flag: "offsets-retention-check-interval", env: "STREAMHOUSE_OFFSETS_RETENTION_CHECK_INTERVAL", usage: "how often expired offsets are looked for, offsets.retention.check.interval.ms (milliseconds or a duration)",
			defText: "600000 (10m)", def: constant(strconv.FormatInt(kafka.DefaultOffsetsRetentionCheckInterval.Milliseconds(), 10)),
			set: func(c *Config, v string) (err error) { c.OffsetsRetentionCheckInterval, err = parseMillis(v); return }},
		{flag: "group-consumer-session-timeout", env: "STREAMHOUSE_GROUP_CONSUMER_SESSION_TIMEOUT", usage: "KIP-848 consumer groups: a member that sends no heartbeat for this long is removed, group.consumer.session.timeout.ms (milliseconds or a duration)",
			defText: "45000 (45s)", def: constant(strconv.FormatInt(kafka.DefaultConsumerSessionTimeout.Milliseconds(), 10)),
			set: func(c *Config, v string) (err error) { c.ConsumerSessionTimeout, err = parseMillis(v); return }},
		{flag: "group-consumer-heartbeat-interval", env: "STREAMHOUSE_GROUP_CONSUMER_HEARTBEAT_INTERVAL", usage: "KIP-848 consumer groups: the heartbeat interval members are told to keep, group.consumer.heartbeat.interval.ms (milliseconds or a duration)",
			defText: "5000 (5s)", def: constant(strconv.FormatInt(kafka.DefaultConsumerHeartbeatInterval.Milliseconds(), 10)),
			set: func(c *Config, v string) (err error) { c.ConsumerHeartbeatInterval, err = parseMillis(v); return }},
		{flag: "group-metrics-max-series", env: "STREAMHOUSE_GROUP_METRICS_MAX_SERIES", usage: "cap on per-group metric series (a group, or a group's committed partition, counts one; 0 exports none)",
			defText: strconv.Itoa(kafka.DefaultGroupMetricsMaxSeries), def: constant(strconv.Itoa(kafka.DefaultGroupMetricsMaxSeries)),
			set: func(c *Config, v string) (err error) { c.GroupMetricsMaxSeries, err = parseCount(v); return }},
		{flag: "transaction-max-timeout", env: "STREAMHOUSE_TRANSACTION_MAX_TIMEOUT", usage: "largest transaction timeout a transactional producer may ask for, transaction.max.timeout.ms (milliseconds or a duration)",
			defText: "900000 (15m)", def: constant(strconv.FormatInt(kafka.DefaultTransactionMaxTimeout.Milliseconds(), 10)),
			set: func(c *Config, v string) (err error) { c.TransactionMaxTimeout, err = parseMillis(v); return }},
		{flag: "transaction-abort-interval", env: "STREAMHOUSE_TRANSACTION_ABORT_INTERVAL", usage: "how often transactions older than their timeout are looked for and aborted, transaction.abort.timed.out.transaction.cleanup.interval.ms (milliseconds or a duration)",
			defText: "10000 (10s)", def: constant(strconv.FormatInt(kafka.DefaultTransactionAbortInterval.Milliseconds(), 10)),
			set: func(c *Config, v string) (err error) { c.TransactionAbortInterval, err = parseMillis(v); return }},
		{flag: "transactional-id-expiration", env: "STREAMHOUSE_TRANSACTIONAL_ID_EXPIRATION", usage: "a transactional ID without a running transaction is forgotten after this long without a request, transactional.id.expiration.ms (milliseconds or a duration)",
			defText: "604800000 (7 days)", def: constant(strconv.FormatInt(kafka.DefaultTransactionalIDExpiration.Milliseconds(), 10)),
			set: func(c *Config, v string) (err error) { c.TransactionalIDExpiration, err = parseMillis(v); return }},
		{flag: "transaction-version", env: "STREAMHOUSE_TRANSACTION_VERSION", usage: "transaction protocol version clients are told to use, the finalized feature transaction.version: 1, or 2 for KIP-890 part 2 (epoch bump on every commit and abort, partitions added by Produce)",
			defText: "2", def: constant("2"),
			set: func(c *Config, v string) error {
				switch strings.TrimSpace(v) {
				case "1":
					c.TransactionVersion = 1
				case "2":
					c.TransactionVersion = 2
				default:
					return errors.New("want 1 or 2")
				}
				return nil
			}},
	}
}

// LoadConfig builds a Config from command-line args (without the program
// name) and the environment, read through getenv (os.LookupEnv in main). A
// flag wins over its environment variable, which wins over the default; an
// empty environment variable counts as unset. It returns flag.ErrHelp for
// -h/--help, and a *SettingError naming the flag or variable for a bad value.
func LoadConfig(args []string, getenv func(string) (string, bool)) (Config, error) {
	table := settings()
	given := make(map[string]string) // flag name -> value from the command line
	fs := flag.NewFlagSet("streamhouse", flag.ContinueOnError)
	fs.SetOutput(io.Discard) // main prints the error and points at --help
	fs.Usage = func() {}
	for _, s := range table {
		record := func(v string) error { given[s.flag] = v; return nil }
		if s.isBool {
			fs.BoolFunc(s.flag, s.usage, record)
		} else {
			fs.Func(s.flag, s.usage, record)
		}
	}
	if err := fs.Parse(args); err != nil {
		return Config{}, err
	}
	if fs.NArg() > 0 {
		return Config{}, fmt.Errorf("unexpected argument %q (settings are flags like --data-dir=DIR)", fs.Arg(0))
	}
	var c Config
	names := make(map[string]string) // flag name -> what to call it in errors
	for _, s := range table {
		v, name := s.def(&c), "--"+s.flag+" (default)"
		if ev, ok := getenv(s.env); ok && ev != "" {
			v, name = ev, s.env
		}
		if fv, ok := given[s.flag]; ok {
			v, name = fv, "--"+s.flag
		}
		names[s.flag] = name
		if err := s.set(&c, v); err != nil {
			if s.secret {
				v = "(hidden)"
			}
			return Config{}, &SettingError{Name: name, Value: v, Err: err}
		}
	}
	return c, c.check(names)
}

// check validates combinations of settings; names maps a flag to what the
// user called it.
func (c *Config) check(names map[string]string) error {
	if !c.UseLocalStorage && c.Bucket == "" {
		return fmt.Errorf("%s is false but no bucket is set: set STREAMHOUSE_BUCKET (or --bucket), or use local storage",
			names["use-local-storage"])
	}
	if c.QueuedMaxRequestBytes < c.MaxRequestBytes {
		return &SettingError{Name: names["queued-max-request-bytes"], Value: strconv.FormatInt(c.QueuedMaxRequestBytes, 10),
			Err: fmt.Errorf("must be at least %s (%d)", names["max-request-bytes"], c.MaxRequestBytes)}
	}
	if c.GroupMinSessionTimeout > c.GroupMaxSessionTimeout {
		return &SettingError{Name: names["group-min-session-timeout"], Value: c.GroupMinSessionTimeout.String(),
			Err: fmt.Errorf("must not exceed %s (%s)", names["group-max-session-timeout"], c.GroupMaxSessionTimeout)}
	}
	if c.ConsumerHeartbeatInterval >= c.ConsumerSessionTimeout {
		return &SettingError{Name: names["group-consumer-heartbeat-interval"], Value: c.ConsumerHeartbeatInterval.String(),
			Err: fmt.Errorf("must be below %s (%s)", names["group-consumer-session-timeout"], c.ConsumerSessionTimeout)}
	}
	if c.CleanerMaxCompactionLag != 0 && c.CleanerMinCompactionLag > c.CleanerMaxCompactionLag {
		return &SettingError{Name: names["log-cleaner-min-compaction-lag"], Value: c.CleanerMinCompactionLag.String(),
			Err: fmt.Errorf("must not exceed %s (%s)", names["log-cleaner-max-compaction-lag"], c.CleanerMaxCompactionLag)}
	}
	if err := c.checkTLS(names); err != nil {
		return err
	}
	if err := c.checkSASL(names); err != nil {
		return err
	}
	if c.UseLocalStorage && filepath.Clean(c.LocalStoragePath) == filepath.Clean(c.SegmentsDir) {
		return &SettingError{Name: names["local-storage-path"], Value: c.LocalStoragePath,
			Err: fmt.Errorf("must differ from the segment directory (%s)", names["cache"])}
	}
	return nil
}

// Usage writes the --help text: every flag with its variable and default.
func Usage(w io.Writer) {
	fmt.Fprintf(w, "Usage: streamhouse [flags]\n\n"+
		"StreamHouse is a Kafka-compatible streaming broker. Every flag has an\n"+
		"environment twin; a flag wins over its variable, which wins over the default.\n\n")
	for _, s := range settings() {
		arg := " VALUE"
		if s.isBool {
			arg = "[=BOOL]"
		}
		def := s.defText
		if def == "" {
			def = "none"
		}
		fmt.Fprintf(w, "  --%s%s  (env %s)\n      %s (default: %s)\n", s.flag, arg, s.env, s.usage, def)
	}
	fmt.Fprintf(w, "\nS3 credentials come from the standard AWS chain (AWS_ACCESS_KEY_ID,\n"+
		"AWS_SECRET_ACCESS_KEY, AWS_PROFILE, instance roles, ...).\n")
}

// parsePath accepts any non-empty path and cleans it.
func parsePath(v string) (string, error) {
	if err := nonEmpty(v); err != nil {
		return "", err
	}
	return filepath.Clean(v), nil
}

func nonEmpty(v string) error {
	if strings.TrimSpace(v) == "" {
		return errors.New("must not be empty")
	}
	return nil
}

// parseEndpoint accepts "" or an http(s) URL with a host.
func parseEndpoint(v string) (string, error) {
	if v == "" {
		return "", nil
	}
	scheme, rest, ok := strings.Cut(v, "://")
	if !ok || (scheme != "http" && scheme != "https") || rest == "" || strings.HasPrefix(rest, "/") {
		return "", errors.New("want a URL like http://127.0.0.1:7070 or https://s3.example.com")
	}
	return v, nil
}

// checkAddr accepts "host:port" or ":port" with a numeric port (0 asks the
// kernel for a free one).
func checkAddr(v string) error {
	_, port, err := net.SplitHostPort(v)
	if err != nil {
		return fmt.Errorf("want host:port or :port: %w", err)
	}
	if _, err := strconv.ParseUint(port, 10, 16); err != nil {
		return fmt.Errorf("port %q is not a number from 0 to 65535", port)
	}
	return nil
}

func parseLogFormat(v string) (string, error) {
	switch f := strings.ToLower(v); f {
	case "text", "json":
		return f, nil
	}
	return "", errors.New("want text or json")
}

func parseLogLevel(v string) (slog.Level, error) {
	switch strings.ToLower(v) {
	case "debug":
		return slog.LevelDebug, nil
	case "info":
		return slog.LevelInfo, nil
	case "warn", "warning":
		return slog.LevelWarn, nil
	case "error":
		return slog.LevelError, nil
	}
	return 0, errors.New("want debug, info, warn or error")
}

// sizeUnits maps a lower-cased unit to its multiplier: SI units are powers
// of 1000, IEC units ("MiB") powers of 1024.
var sizeUnits = map[string]int64{
	"": 1, "b": 1,
	"kb": 1e3, "mb": 1e6, "gb": 1e9, "tb": 1e12,
	"kib": 1 << 10, "mib": 1 << 20, "gib": 1 << 30, "tib": 1 << 40,
}

// parseSize parses a byte count: a plain integer, or an integer followed
// (optionally after a space) by B, KB, MB, GB, TB, KiB, MiB, GiB or TiB,
// in any case.
func parseSize(v string) (int64, error) {
	s := strings.TrimSpace(v)
	i := strings.IndexFunc(s, func(r rune) bool { return !unicode.IsDigit(r) })
	if i < 0 {
		i = len(s)
	}
	digits, unit := s[:i], strings.ToLower(strings.TrimSpace(s[i:]))
	mult, ok := sizeUnits[unit]
	if digits == "" || !ok {
		return 0, errors.New("want a byte count like 268435456, 256MiB, 1GiB or 512MB")
	}
	n, err := strconv.ParseInt(digits, 10, 64)
	if err != nil || n > math.MaxInt64/mult {
		return 0, errors.New("too large")
	}
	return n * mult, nil
}

func parsePositiveSize(v string) (int64, error) {
	n, err := parseSize(v)
	if err == nil && n == 0 {
		err = errors.New("must be greater than zero")
	}
	return n, err
}

// parseMillis parses a positive duration given as integer milliseconds
// (Kafka's *.ms convention) or as a Go duration ("10m").
func parseMillis(v string) (time.Duration, error) {
	if ms, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64); err == nil {
		if ms <= 0 || ms > math.MaxInt64/int64(time.Millisecond) {
			return 0, errors.New("must be between 1ms and about 292 years")
		}
		return time.Duration(ms) * time.Millisecond, nil
	}
	d, err := parseDuration(v)
	if err != nil {
		return 0, errors.New("want milliseconds (600000) or a duration (10m)")
	}
	return d, nil
}

// parseRatio parses a share above 0 and at most 1. Zero, which Kafka
// allows, is refused: log.CleanerConfig reads a zero ratio as "default".
func parseRatio(v string) (float64, error) {
	f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
	if err != nil || math.IsNaN(f) {
		return 0, errors.New("want a number like 0.5")
	}
	if f <= 0 || f > 1 {
		return 0, errors.New("must be above 0 and at most 1")
	}
	return f, nil
}

// parseMaxCompactionLag is parseMillis that also accepts "none" and
// Kafka's default, Long.MAX_VALUE milliseconds, as "no limit" (0).
func parseMaxCompactionLag(v string) (time.Duration, error) {
	if s := strings.TrimSpace(v); strings.EqualFold(s, "none") || s == strconv.FormatInt(math.MaxInt64, 10) {
		return 0, nil
	}
	d, err := parseMillis(v)
	if err != nil {
		return 0, fmt.Errorf("%w, or none", err)
	}
	return d, nil
}

// maxTimerSlack bounds --timer-slack: beyond it, sleeps of the Go runtime
// and the broker's millisecond timers would be late enough to show in
// request latency.
const maxTimerSlack = 10 * time.Millisecond

// parseTimerSlack parses a duration from 0 to maxTimerSlack.
func parseTimerSlack(v string) (time.Duration, error) {
	if isZeroDuration(v) {
		return 0, nil
	}
	d, err := parseDuration(v)
	if err != nil {
		return 0, err
	}
	if d > maxTimerSlack {
		return 0, fmt.Errorf("must be at most %s", maxTimerSlack)
	}
	return d, nil
}

// parseDuration parses a positive Go duration ("1s", "250ms").
func parseDuration(v string) (time.Duration, error) {
	d, err := time.ParseDuration(strings.TrimSpace(v))
	if err != nil {
		return 0, errors.New("want a duration like 1s or 250ms")
	}
	if d <= 0 {
		return 0, errors.New("must be greater than zero")
	}
	return d, nil
}

// isZeroDuration reports whether v is "0" or a zero Go duration ("0s").
func isZeroDuration(v string) bool {
	s := strings.TrimSpace(v)
	d, err := time.ParseDuration(s)
	return s == "0" || err == nil && d == 0
}

// parseDurationOrZero is parseDuration that also accepts 0 (off).
func parseDurationOrZero(v string) (time.Duration, error) {
	if isZeroDuration(v) {
		return 0, nil
	}
	return parseDuration(v)
}

// parseMillisOrZero is parseMillis that also accepts 0 (off).
func parseMillisOrZero(v string) (time.Duration, error) {
	if isZeroDuration(v) {
		return 0, nil
	}
	return parseMillis(v)
}

// parseMinutes parses a positive duration given as integer minutes
// (Kafka's offsets.retention.minutes) or as a Go duration ("168h").
func parseMinutes(v string) (time.Duration, error) {
	if m, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64); err == nil {
		if m <= 0 || m > math.MaxInt64/int64(time.Minute) {
			return 0, errors.New("must be between 1 minute and about 292 years")
		}
		return time.Duration(m) * time.Minute, nil
	}
	d, err := parseDuration(v)
	if err != nil {
		return 0, errors.New("want minutes (10080) or a duration (168h)")
	}
	return d, nil
}

// parseCount parses a non-negative integer.
func parseCount(v string) (int, error) {
	n, err := strconv.Atoi(strings.TrimSpace(v))
	if err != nil || n < 0 {
		return 0, errors.New("want a whole number, 0 or more")
	}
	return n, nil
}

// isPostgresURL reports whether a --metadata value names a PostgreSQL
// database rather than a SQLite file.
func isPostgresURL(v string) bool {
	return strings.HasPrefix(v, "postgres://") || strings.HasPrefix(v, "postgresql://")
}

// checkPostgresURL checks that v parses as a URL with a host.
func checkPostgresURL(v string) error {
	u, err := url.Parse(v)
	if err != nil {
		return errors.New("not a valid URL")
	}
	if u.Host == "" {
		return errors.New("a PostgreSQL URL needs a host: postgres://USER:PASS@HOST:PORT/DB")
	}
	return nil
}

// redactedMetadata is the --metadata value fit for a log line: a URL's
// password replaced by "xxxxx".
func redactedMetadata(v string) string {
	if !isPostgresURL(v) {
		return v
	}
	u, err := url.Parse(v)
	if err != nil {
		return "(unparsable URL)"
	}
	return u.Redacted()
}
