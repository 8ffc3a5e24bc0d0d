package log

import (
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/streamhouse/streamhouse/meta"
	"github.com/streamhouse/streamhouse/objstore"
)

// Defaults for Config fields left zero. Documented in docs/ARCHITECTURE.md.
const (
	DefaultSegmentBytes      = 64 << 20
	DefaultSegmentAge        = 10 * time.Minute
	DefaultCacheBytes        = 256 << 20
	DefaultFlushInterval     = time.Second
	DefaultRetentionInterval = time.Minute

	// Compaction defaults: Kafka's log.cleaner.* values (the interval is
	// log.cleaner.backoff.ms, the delete delay of replaced objects
	// file.delete.delay.ms).
	DefaultMinCleanableRatio  = 0.5
	DefaultDeleteRetention    = 24 * time.Hour
	DefaultMaxCompactionLag   = time.Duration(1<<63 - 1)
	DefaultDedupeBufferBytes  = 128 << 20
	DefaultCleanerInterval    = 15 * time.Second
	DefaultCleanerDeleteDelay = time.Minute
)

// CleanerConfig tunes compaction (compact.go): the broker defaults of the
// topic configs min.cleanable.dirty.ratio, min.compaction.lag.ms,
// max.compaction.lag.ms and delete.retention.ms, and the cleaner's own
// limits. Zero fields take the defaults above (MinCompactionLag and
// IOBytesPerSecond stay zero: no lag, no rate limit).
type CleanerConfig struct {
	MinCleanableRatio float64
	MinCompactionLag  time.Duration
	MaxCompactionLag  time.Duration
	DeleteRetention   time.Duration
	// DedupeBufferBytes bounds the key map of one run (Kafka's
	// log.cleaner.dedupe.buffer.size): 24 bytes per distinct key.
	DedupeBufferBytes int64
	// IOBytesPerSecond bounds the bytes a run reads and writes per
	// second (log.cleaner.io.max.bytes.per.second); zero is unlimited.
	IOBytesPerSecond int64
	// Interval is how often the cleaner looks for partitions to compact.
	Interval time.Duration
	// DeleteDelay is how long a replaced segment object stays in the
	// object store after the swap, for reads that planned on it; a
	// negative value deletes them at once.
	DeleteDelay time.Duration
	// Disabled stops the cleaner (log.cleaner.enable=false).
	Disabled bool
}

// Config is everything a Manager needs. Dir, Objects and Meta are required.
type Config struct {
	// Dir holds the active (and sealed, not yet uploaded) segments. It is
	// locked with flock while the Manager is open.
	Dir     string
	Objects objstore.Store
	Meta    meta.Store
	Logger  *slog.Logger
	// Registerer receives the log's metrics; nil means none are exported.
	Registerer prometheus.Registerer
	// PerPartitionMetrics adds a partition label to the per-topic metrics
	// (throughput, offsets, object-store bytes): one series per partition
	// instead of per topic.
	PerPartitionMetrics bool
	// CacheBytes bounds the sealed-segment LRU cache.
	CacheBytes int64
	// SegmentBytes and SegmentAge are the broker-wide roll limits; the
	// topic configs segment.bytes and segment.ms override them.
	SegmentBytes int64
	SegmentAge   time.Duration
	// FlushInterval is how often appends that did not ask for fsync
	// (acks=1) are synced in the background.
	FlushInterval time.Duration
	// SyncScope is what a group-commit sync covers: one fsync per
	// partition file (SyncFile, the default) or one syncfs for every
	// partition (SyncFilesystem, for a data directory on its own volume).
	SyncScope SyncScope
	// MaxUploadBacklog bounds the bytes of sealed segments waiting for
	// the object store: past it appends fail with ErrUploadBacklog and
	// write nothing, so an object-store outage cannot fill the disk. Zero
	// means half of the space available on Dir's file system at Open.
	// Appends check it before they roll, so the backlog can pass it by at
	// most one segment per partition. Appends also stop while less than
	// a reserve (64 MiB, or an eighth of a smaller file system) is
	// available there, with ErrDiskFull (room.go).
	MaxUploadBacklog int64
	// Cleaner tunes compaction.
	Cleaner CleanerConfig
	// RetentionInterval is how often retention and age-based rolls run.
	RetentionInterval time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time

	// fs is the file system of the segments; nil means the operating
	// system's. Tests set it to inject faults (fs.go).
	fs fileSystem
	// compactHook, set by crash tests, runs at each step of a compaction
	// run: "written" (new objects uploaded), "swapped" (meta holds the new
	// rows) and "deleted" (replaced objects gone).
	compactHook func(step string)
	// syncfs, set by tests with fs, stands in for syncfs(2) of fs, so that
	// SyncFilesystem runs on it; without it a test fs gets SyncFile.
	syncfs func() error
}
