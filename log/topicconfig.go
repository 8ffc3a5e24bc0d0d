package log

import (
	"fmt"
	"math"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Topic config keys the log honours. Both fronts validate through
// ValidateTopicConfigs so that gRPC and Kafka accept exactly the same set.
const (
	ConfigRetentionMs      = "retention.ms"
	ConfigRetentionBytes   = "retention.bytes"
	ConfigSegmentBytes     = "segment.bytes"
	ConfigSegmentMs        = "segment.ms"
	ConfigMaxMessageBytes  = "max.message.bytes"
	ConfigCleanupPolicy    = "cleanup.policy"
	ConfigTimestampType    = "message.timestamp.type"
	ConfigMinInsyncReplica = "min.insync.replicas"
	ConfigCompressionType  = "compression.type"

	// Compaction (compact.go).
	ConfigMinCleanableDirtyRatio = "min.cleanable.dirty.ratio"
	ConfigMinCompactionLagMs     = "min.compaction.lag.ms"
	ConfigMaxCompactionLagMs     = "max.compaction.lag.ms"
	ConfigDeleteRetentionMs      = "delete.retention.ms"
)

// codecByName maps compression.type's values to codecs. Immutable.
var codecByName = map[string]Codec{
	"uncompressed": CodecNone, "gzip": CodecGzip, "snappy": CodecSnappy, "lz4": CodecLZ4, "zstd": CodecZstd,
}

// CompressionProducer is compression.type's default: batches are stored
// with the codec the producer chose. Any other value ("uncompressed",
// "gzip", "snappy", "lz4", "zstd") makes the log recompress a batch whose
// codec differs on append, as Kafka does.
const CompressionProducer = "producer"

// Cleanup policies, the values cleanup.policy lists (comma-separated).
const (
	CleanupDelete  = "delete"
	CleanupCompact = "compact"
)

// Topic config defaults (Kafka's, except where the object store changes the
// trade-off: segments roll sooner so data reaches the durable store sooner).
const (
	DefaultRetentionMs     = 7 * 24 * int64(time.Hour/time.Millisecond)
	DefaultRetentionBytes  = -1
	DefaultMaxMessageBytes = 1048588
)

// configSpec describes one topic config: its default (as text) and how its
// value is checked.
type configSpec struct {
	def   string
	check func(v string) error
}

func longAtLeast(min int64) func(string) error {
	return func(v string) error {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return fmt.Errorf("not an integer")
		}
		if n < min {
			return fmt.Errorf("must be at least %d", min)
		}
		return nil
	}
}

func oneOf(vals ...string) func(string) error {
	return func(v string) error {
		for _, ok := range vals {
			if v == ok {
				return nil
			}
		}
		return fmt.Errorf("must be one of %s", strings.Join(vals, ", "))
	}
}

// topicConfigSpecs is the immutable table of honoured topic configs.
var topicConfigSpecs = map[string]configSpec{
	ConfigRetentionMs:      {strconv.FormatInt(DefaultRetentionMs, 10), longAtLeast(-1)},
	ConfigRetentionBytes:   {strconv.FormatInt(DefaultRetentionBytes, 10), longAtLeast(-1)},
	ConfigSegmentBytes:     {strconv.Itoa(DefaultSegmentBytes), intRange(14, 1<<30)},
	ConfigSegmentMs:        {strconv.FormatInt(int64(DefaultSegmentAge/time.Millisecond), 10), longAtLeast(1)},
	ConfigMaxMessageBytes:  {strconv.Itoa(DefaultMaxMessageBytes), intRange(0, 1<<30)},
	ConfigCleanupPolicy:    {CleanupDelete, checkCleanupPolicy},
	ConfigTimestampType:    {"CreateTime", oneOf("CreateTime", "LogAppendTime")},
	ConfigMinInsyncReplica: {"1", intRange(1, math.MaxInt32)},
	ConfigCompressionType:  {CompressionProducer, oneOf(CompressionProducer, "uncompressed", "gzip", "snappy", "lz4", "zstd")},

	ConfigMinCleanableDirtyRatio: {strconv.FormatFloat(DefaultMinCleanableRatio, 'g', -1, 64), checkRatio},
	ConfigMinCompactionLagMs:     {"0", longAtLeast(0)},
	ConfigMaxCompactionLagMs:     {strconv.FormatInt(math.MaxInt64, 10), longAtLeast(1)},
	ConfigDeleteRetentionMs:      {strconv.FormatInt(int64(DefaultDeleteRetention/time.Millisecond), 10), longAtLeast(0)},
}

// CleanupPolicies splits a cleanup.policy value into its policies
// (trimmed, in order). Kafka accepts "compact", "delete" and both in
// either order.
func CleanupPolicies(v string) []string {
	var out []string
	for _, p := range strings.Split(v, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

func checkCleanupPolicy(v string) error {
	pols := CleanupPolicies(v)
	if len(pols) == 0 {
		return fmt.Errorf("must list %s, %s or both", CleanupDelete, CleanupCompact)
	}
	seen := map[string]bool{}
	for _, p := range pols {
		if p != CleanupDelete && p != CleanupCompact {
			return fmt.Errorf("%q is not a cleanup policy; the policies are %s and %s", p, CleanupDelete, CleanupCompact)
		}
		if seen[p] {
			return fmt.Errorf("%q listed twice", p)
		}
		seen[p] = true
	}
	return nil
}

func checkRatio(v string) error {
	f, err := strconv.ParseFloat(v, 64)
	if err != nil || math.IsNaN(f) {
		return fmt.Errorf("not a number")
	}
	if f < 0 || f > 1 {
		return fmt.Errorf("must be between 0 and 1")
	}
	return nil
}

func intRange(min, max int64) func(string) error {
	return func(v string) error {
		n, err := strconv.ParseInt(v, 10, 32)
		if err != nil {
			return fmt.Errorf("not a 32-bit integer")
		}
		if n < min || n > max {
			return fmt.Errorf("must be between %d and %d", min, max)
		}
		return nil
	}
}

// TopicConfigKeys returns the honoured topic config keys, sorted.
func TopicConfigKeys() []string {
	keys := make([]string, 0, len(topicConfigSpecs))
	for k := range topicConfigSpecs {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// TopicConfigDefault returns the default value of an honoured key.
func TopicConfigDefault(key string) (string, bool) {
	s, ok := topicConfigSpecs[key]
	return s.def, ok
}

// ValidateTopicConfigs checks every key and value. The error wraps
// ErrInvalidConfig and names the first offending key (in sorted order, so
// the message is stable).
func ValidateTopicConfigs(configs map[string]string) error {
	keys := make([]string, 0, len(configs))
	for k := range configs {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		spec, ok := topicConfigSpecs[k]
		if !ok {
			return fmt.Errorf("%w: unknown config %q", ErrInvalidConfig, k)
		}
		if err := spec.check(configs[k]); err != nil {
			return fmt.Errorf("%w: config %q value %q: %v", ErrInvalidConfig, k, configs[k], err)
		}
	}
	minLag, okMin := configs[ConfigMinCompactionLagMs]
	maxLag, okMax := configs[ConfigMaxCompactionLagMs]
	if okMin && okMax {
		lo, _ := strconv.ParseInt(minLag, 10, 64)
		hi, _ := strconv.ParseInt(maxLag, 10, 64)
		if lo > hi {
			return fmt.Errorf("%w: config %q (%d) is larger than %q (%d)", ErrInvalidConfig,
				ConfigMinCompactionLagMs, lo, ConfigMaxCompactionLagMs, hi)
		}
	}
	return nil
}

// topicSettings is the parsed, effective config of one topic.
type topicSettings struct {
	retentionMs     int64
	retentionBytes  int64
	segmentBytes    int64
	segmentAge      time.Duration
	maxMessageBytes int64
	logAppendTime   bool
	minInsync       int64
	// codec is the codec batches are stored with; keepCodec (the
	// default, compression.type=producer) leaves them as produced.
	codec     Codec
	keepCodec bool

	// Compaction (compact.go). deletePolicy is retention by time and
	// size; compact keeps the latest record per key.
	deletePolicy      bool
	compact           bool
	minCleanableRatio float64
	minCompactionLag  time.Duration
	maxCompactionLag  time.Duration
	deleteRetention   time.Duration
}

// settingsFor merges a topic's overrides over the broker defaults. The
// configs were validated when stored, so parse errors fall back to defaults.
func settingsFor(configs map[string]string, cfg *Config) topicSettings {
	s := topicSettings{
		retentionMs:     DefaultRetentionMs,
		retentionBytes:  DefaultRetentionBytes,
		segmentBytes:    cfg.SegmentBytes,
		segmentAge:      cfg.SegmentAge,
		maxMessageBytes: DefaultMaxMessageBytes,
		minInsync:       1,
		keepCodec:       true,

		deletePolicy:      true,
		minCleanableRatio: cfg.Cleaner.MinCleanableRatio,
		minCompactionLag:  cfg.Cleaner.MinCompactionLag,
		maxCompactionLag:  cfg.Cleaner.MaxCompactionLag,
		deleteRetention:   cfg.Cleaner.DeleteRetention,
	}
	num := func(key string, dst *int64) {
		if v, ok := configs[key]; ok {
			if n, err := strconv.ParseInt(v, 10, 64); err == nil {
				*dst = n
			}
		}
	}
	num(ConfigRetentionMs, &s.retentionMs)
	num(ConfigRetentionBytes, &s.retentionBytes)
	num(ConfigSegmentBytes, &s.segmentBytes)
	num(ConfigMaxMessageBytes, &s.maxMessageBytes)
	num(ConfigMinInsyncReplica, &s.minInsync)
	if v, ok := configs[ConfigSegmentMs]; ok {
		if n, err := strconv.ParseInt(v, 10, 64); err == nil {
			s.segmentAge = time.Duration(n) * time.Millisecond
		}
	}
	s.logAppendTime = configs[ConfigTimestampType] == "LogAppendTime"
	if v, ok := configs[ConfigCompressionType]; ok && v != CompressionProducer {
		if c, ok := codecByName[v]; ok {
			s.codec, s.keepCodec = c, false
		}
	}
	if v, ok := configs[ConfigCleanupPolicy]; ok {
		pols := CleanupPolicies(v)
		s.deletePolicy = slices.Contains(pols, CleanupDelete)
		s.compact = slices.Contains(pols, CleanupCompact)
	}
	if v, ok := configs[ConfigMinCleanableDirtyRatio]; ok {
		if f, err := strconv.ParseFloat(v, 64); err == nil {
			s.minCleanableRatio = f
		}
	}
	millis := func(key string, dst *time.Duration) {
		if v, ok := configs[key]; ok {
			if n, err := strconv.ParseInt(v, 10, 64); err == nil {
				*dst = time.Duration(min(n, math.MaxInt64/int64(time.Millisecond))) * time.Millisecond
			}
		}
	}
	millis(ConfigMinCompactionLagMs, &s.minCompactionLag)
	millis(ConfigMaxCompactionLagMs, &s.maxCompactionLag)
	millis(ConfigDeleteRetentionMs, &s.deleteRetention)
	return s
}

// ValidateTopicName applies Kafka's topic naming rules: 1 to 249
// characters from [a-zA-Z0-9._-], and not "." or "..".
func ValidateTopicName(name string) error {
	if name == "" {
		return fmt.Errorf("%w: name is empty", ErrInvalidTopic)
	}
	if name == "." || name == ".." {
		return fmt.Errorf("%w: %q is not allowed", ErrInvalidTopic, name)
	}
	if len(name) > 249 {
		return fmt.Errorf("%w: %d characters, the maximum is 249", ErrInvalidTopic, len(name))
	}
	for _, c := range name {
		ok := c == '.' || c == '_' || c == '-' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')
		if !ok {
			return fmt.Errorf("%w: %q contains %q; legal characters are ASCII letters, digits, '.', '_' and '-'", ErrInvalidTopic, name, c)
		}
	}
	return nil
}
