package main

import (
	"bytes"
	"errors"
	"flag"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/streamhouse/streamhouse/log"
)

// env returns a getenv over a fixed map.
func env(kv map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) {
		v, ok := kv[k]
		return v, ok
	}
}

func defaultConfig() Config {
	return Config{
		DataDir:               "data",
		MetadataPath:          "data/metadata.db",
		SegmentsDir:           "data/segments",
		CacheBytes:            256 << 20,
		UseLocalStorage:       true,
		LocalStoragePath:      "data/objects",
		AWSRegion:             "us-east-1",
		KafkaAddr:             ":9092",
		KafkaListeners:        []KafkaListener{{Name: "PLAINTEXT", Addr: ":9092"}},
		AutoCreateTopics:      true,
		FsyncAcksAll:          true,
		MaxRequestBytes:       100 << 20,
		MaxConnections:        4096,
		QueuedMaxRequestBytes: 256 << 20,
		FetchMaxBytes:         55 << 20,
		GRPCAddr:              ":50051",
		HTTPAddr:              ":8080",
		LogFormat:             "text",
		LogLevel:              slog.LevelInfo,
		SegmentBytes:          64 << 20,
		SegmentAge:            10 * time.Minute,
		FlushInterval:         time.Second,
		FsyncScope:            log.SyncFile,
		TimerSlack:            time.Millisecond,

		SASLMechanisms:            []string{"SCRAM-SHA-512", "SCRAM-SHA-256", "PLAIN"},
		FailedAuthenticationDelay: 100 * time.Millisecond,

		SlowRequestThreshold:          time.Second,
		GroupInitialRebalanceDelay:    3 * time.Second,
		GroupMinSessionTimeout:        6 * time.Second,
		GroupMaxSessionTimeout:        30 * time.Minute,
		OffsetsRetention:              7 * 24 * time.Hour,
		OffsetsRetentionCheckInterval: 10 * time.Minute,
		ConsumerSessionTimeout:        45 * time.Second,
		ConsumerHeartbeatInterval:     5 * time.Second,
		GroupMetricsMaxSeries:         10000,

		TransactionMaxTimeout:     15 * time.Minute,
		TransactionAbortInterval:  10 * time.Second,
		TransactionalIDExpiration: 7 * 24 * time.Hour,
		TransactionVersion:        2,

		CleanerEnable:            true,
		CleanerMinCleanableRatio: 0.5,
		CleanerDeleteRetention:   24 * time.Hour,
		CleanerDedupeBufferBytes: 128 << 20,
		CleanerBackoff:           15 * time.Second,
		CleanerDeleteDelay:       time.Minute,
	}
}

// loadConfigCase is a LoadConfig input and how the result differs from
// defaultConfig.
type loadConfigCase struct {
	name string
	args []string
	env  map[string]string
	want func(c *Config)
}

func loadConfigCases() []loadConfigCase {
	return []loadConfigCase{
		{name: "defaults", want: func(*Config) {}},
		{
			name: "data dir moves derived paths",
			args: []string{"--data-dir=/var/lib/sh"},
			want: func(c *Config) {
				c.DataDir, c.MetadataPath = "/var/lib/sh", "/var/lib/sh/metadata.db"
				c.SegmentsDir, c.LocalStoragePath = "/var/lib/sh/segments", "/var/lib/sh/objects"
			},
		},
		{
			name: "every env var",
			env: map[string]string{
				"STREAMHOUSE_DATA_DIR": "/d", "STREAMHOUSE_METADATA": "/m/meta.db",
				"STREAMHOUSE_CACHE": "/c", "STREAMHOUSE_CACHE_SIZE": "1GiB",
				"LOCAL_STORAGE_PATH": "/o", "STREAMHOUSE_KAFKA_ADDR": "127.0.0.1:19092",
				"STREAMHOUSE_GRPC_ADDR": ":1", "STREAMHOUSE_HTTP_ADDR": "localhost:0",
				"STREAMHOUSE_LOG_FORMAT": "JSON", "STREAMHOUSE_LOG_LEVEL": "debug",
				"STREAMHOUSE_SEGMENT_BYTES": "1MB", "STREAMHOUSE_SEGMENT_MS": "1500",
				"STREAMHOUSE_FLUSH_INTERVAL": "250ms", "AWS_REGION": "eu-west-1",
			},
			want: func(c *Config) {
				c.DataDir, c.MetadataPath, c.SegmentsDir, c.LocalStoragePath = "/d", "/m/meta.db", "/c", "/o"
				c.CacheBytes, c.KafkaAddr, c.GRPCAddr, c.HTTPAddr = 1<<30, "127.0.0.1:19092", ":1", "localhost:0"
				c.KafkaListeners = []KafkaListener{{Name: "PLAINTEXT", Addr: "127.0.0.1:19092"}}
				c.LogFormat, c.LogLevel, c.SegmentBytes = "json", slog.LevelDebug, 1e6
				c.SegmentAge, c.FlushInterval, c.AWSRegion = 1500*time.Millisecond, 250*time.Millisecond, "eu-west-1"
			},
		},
		{
			name: "flag beats env",
			args: []string{"--cache-size", "512MB", "--http-addr=:9000", "--segment-ms=2m"},
			env:  map[string]string{"STREAMHOUSE_CACHE_SIZE": "1GiB", "STREAMHOUSE_HTTP_ADDR": ":7000", "STREAMHOUSE_SEGMENT_MS": "5"},
			want: func(c *Config) { c.CacheBytes, c.HTTPAddr, c.SegmentAge = 512e6, ":9000", 2*time.Minute },
		},
		{
			name: "fsync scope by flag and env",
			args: []string{"--fsync-scope=filesystem"},
			env:  map[string]string{"STREAMHOUSE_FSYNC_SCOPE": "file"},
			want: func(c *Config) { c.FsyncScope = log.SyncFilesystem },
		},
		{
			name: "timer slack by env, zero keeps the inherited one",
			env:  map[string]string{"STREAMHOUSE_TIMER_SLACK": "0"},
			want: func(c *Config) { c.TimerSlack = 0 },
		},
		{
			name: "timer slack by flag",
			args: []string{"--timer-slack=250us"},
			env:  map[string]string{"STREAMHOUSE_TIMER_SLACK": "2ms"},
			want: func(c *Config) { c.TimerSlack = 250 * time.Microsecond },
		},
		{
			name: "kafka observability and group settings from env",
			env: map[string]string{
				"STREAMHOUSE_SLOW_REQUEST_THRESHOLD": "250ms", "STREAMHOUSE_GROUP_INITIAL_REBALANCE_DELAY": "0",
				"STREAMHOUSE_GROUP_MIN_SESSION_TIMEOUT": "1000", "STREAMHOUSE_GROUP_MAX_SESSION_TIMEOUT": "5m",
				"STREAMHOUSE_OFFSETS_RETENTION": "1440", "STREAMHOUSE_OFFSETS_RETENTION_CHECK_INTERVAL": "30s",
				"STREAMHOUSE_GROUP_METRICS_MAX_SERIES": "0",
			},
			want: func(c *Config) {
				c.SlowRequestThreshold, c.GroupInitialRebalanceDelay = 250*time.Millisecond, 0
				c.GroupMinSessionTimeout, c.GroupMaxSessionTimeout = time.Second, 5*time.Minute
				c.OffsetsRetention, c.OffsetsRetentionCheckInterval = 24*time.Hour, 30*time.Second
				c.GroupMetricsMaxSeries = 0
			},
		},
		{
			name: "kafka observability and group settings by flag",
			args: []string{"--slow-request-threshold=0", "--group-initial-rebalance-delay=500ms",
				"--offsets-retention=48h", "--group-metrics-max-series=50"},
			env: map[string]string{"STREAMHOUSE_SLOW_REQUEST_THRESHOLD": "2s"},
			want: func(c *Config) {
				c.SlowRequestThreshold, c.GroupInitialRebalanceDelay = 0, 500*time.Millisecond
				c.OffsetsRetention, c.GroupMetricsMaxSeries = 48*time.Hour, 50
			},
		},
		{
			name: "transaction settings from env and flags",
			args: []string{"--transaction-abort-interval=2s", "--transaction-version=2"},
			env: map[string]string{"STREAMHOUSE_TRANSACTION_MAX_TIMEOUT": "60000",
				"STREAMHOUSE_TRANSACTION_ABORT_INTERVAL": "5000", "STREAMHOUSE_TRANSACTIONAL_ID_EXPIRATION": "24h"},
			want: func(c *Config) {
				c.TransactionMaxTimeout, c.TransactionAbortInterval = time.Minute, 2*time.Second
				c.TransactionalIDExpiration, c.TransactionVersion = 24*time.Hour, 2
			},
		},
		{
			name: "log cleaner settings from env",
			env: map[string]string{
				"STREAMHOUSE_LOG_CLEANER_ENABLE": "false", "STREAMHOUSE_LOG_CLEANER_MIN_CLEANABLE_RATIO": "0.25",
				"STREAMHOUSE_LOG_CLEANER_MIN_COMPACTION_LAG": "60000", "STREAMHOUSE_LOG_CLEANER_MAX_COMPACTION_LAG": "2h",
				"STREAMHOUSE_LOG_CLEANER_DELETE_RETENTION": "3600000", "STREAMHOUSE_LOG_CLEANER_DEDUPE_BUFFER_SIZE": "16MiB",
				"STREAMHOUSE_LOG_CLEANER_IO_MAX_BYTES_PER_SECOND": "50MB", "STREAMHOUSE_LOG_CLEANER_BACKOFF": "500",
				"STREAMHOUSE_LOG_CLEANER_DELETE_DELAY": "5m",
			},
			want: func(c *Config) {
				c.CleanerEnable, c.CleanerMinCleanableRatio = false, 0.25
				c.CleanerMinCompactionLag, c.CleanerMaxCompactionLag = time.Minute, 2*time.Hour
				c.CleanerDeleteRetention, c.CleanerDedupeBufferBytes, c.CleanerIOBytesPerSecond = time.Hour, 16<<20, 50e6
				c.CleanerBackoff, c.CleanerDeleteDelay = 500*time.Millisecond, 5*time.Minute
			},
		},
		{
			name: "log cleaner settings by flag",
			args: []string{"--log-cleaner-enable", "--log-cleaner-min-cleanable-ratio=1", "--log-cleaner-min-compaction-lag=0s",
				"--log-cleaner-max-compaction-lag=9223372036854775807", "--log-cleaner-delete-delay=0", "--log-cleaner-backoff=1m"},
			env: map[string]string{"STREAMHOUSE_LOG_CLEANER_ENABLE": "false", "STREAMHOUSE_LOG_CLEANER_MIN_COMPACTION_LAG": "5s",
				"STREAMHOUSE_LOG_CLEANER_MAX_COMPACTION_LAG": "1s"},
			want: func(c *Config) {
				c.CleanerMinCleanableRatio, c.CleanerDeleteDelay, c.CleanerBackoff = 1, 0, time.Minute
			},
		},
		{
			name: "log cleaner max lag none, any case",
			env:  map[string]string{"STREAMHOUSE_LOG_CLEANER_MAX_COMPACTION_LAG": "None", "STREAMHOUSE_LOG_CLEANER_MIN_COMPACTION_LAG": "1h"},
			want: func(c *Config) { c.CleanerMinCompactionLag = time.Hour },
		},
		{
			name: "empty env is unset",
			env:  map[string]string{"STREAMHOUSE_DATA_DIR": "", "STREAMHOUSE_HTTP_ADDR": ""},
			want: func(*Config) {},
		},
		{
			name: "bucket selects s3",
			env:  map[string]string{"STREAMHOUSE_BUCKET": "b"},
			want: func(c *Config) { c.Bucket, c.UseLocalStorage = "b", false },
		},
		{
			name: "endpoint turns on path style",
			env: map[string]string{"STREAMHOUSE_BUCKET": "b", "USE_LOCAL_STORAGE": "false",
				"S3_ENDPOINT": "http://127.0.0.1:7070"},
			want: func(c *Config) {
				c.Bucket, c.UseLocalStorage, c.S3Endpoint, c.S3PathStyle = "b", false, "http://127.0.0.1:7070", true
			},
		},
		{
			name: "path style off by flag",
			args: []string{"--bucket=b", "--s3-endpoint=https://s3.example.com", "--s3-path-style=false"},
			want: func(c *Config) { c.Bucket, c.UseLocalStorage, c.S3Endpoint = "b", false, "https://s3.example.com" },
		},
		{
			name: "bare bool flag is true",
			args: []string{"--bucket=b", "--use-local-storage", "--s3-path-style"},
			want: func(c *Config) { c.Bucket, c.S3PathStyle = "b", true },
		},
		{
			name: "explicit local storage keeps bucket",
			env:  map[string]string{"STREAMHOUSE_BUCKET": "b", "USE_LOCAL_STORAGE": "true"},
			want: func(c *Config) { c.Bucket = "b" },
		},
		{
			name: "metrics per partition by env",
			env:  map[string]string{"STREAMHOUSE_METRICS_PER_PARTITION": "true"},
			want: func(c *Config) { c.MetricsPerPartition = true },
		},
		{
			name: "metrics per partition flag beats env",
			args: []string{"--metrics-per-partition=false"},
			env:  map[string]string{"STREAMHOUSE_METRICS_PER_PARTITION": "1"},
			want: func(*Config) {},
		},
	}
}

func TestLoadConfig(t *testing.T) {
	runLoadConfigCases(t, loadConfigCases())
}

// runLoadConfigCases checks that each case's flags and environment load
// into the defaults changed by its want.
func runLoadConfigCases(t *testing.T, cases []loadConfigCase) {
	t.Helper()
	for _, tt := range cases {
		t.Run(tt.name, func(t *testing.T) {
			got, err := LoadConfig(tt.args, env(tt.env))
			if err != nil {
				t.Fatalf("LoadConfig: %v", err)
			}
			want := defaultConfig()
			tt.want(&want)
			if !reflect.DeepEqual(got, want) {
				t.Errorf("got  %+v\nwant %+v", got, want)
			}
		})
	}
}

func TestLoadConfigErrors(t *testing.T) {
	tests := []struct {
		name     string
		args     []string
		env      map[string]string
		wantName string // SettingError.Name; empty: not a SettingError
		wantText []string
	}{
		{name: "size unit from env", env: map[string]string{"STREAMHOUSE_CACHE_SIZE": "12XB"},
			wantName: "STREAMHOUSE_CACHE_SIZE", wantText: []string{`invalid STREAMHOUSE_CACHE_SIZE "12XB"`}},
		{name: "size unit from flag", args: []string{"--cache-size=12XB"}, env: map[string]string{"STREAMHOUSE_CACHE_SIZE": "1GiB"},
			wantName: "--cache-size", wantText: []string{`invalid --cache-size "12XB"`}},
		{name: "zero cache", env: map[string]string{"STREAMHOUSE_CACHE_SIZE": "0"}, wantName: "STREAMHOUSE_CACHE_SIZE"},
		{name: "negative cache", env: map[string]string{"STREAMHOUSE_CACHE_SIZE": "-1"}, wantName: "STREAMHOUSE_CACHE_SIZE"},
		{name: "overflowing size", args: []string{"--segment-bytes=9999999999TiB"}, wantName: "--segment-bytes"},
		{name: "segment bytes", env: map[string]string{"STREAMHOUSE_SEGMENT_BYTES": "big"}, wantName: "STREAMHOUSE_SEGMENT_BYTES"},
		{name: "segment ms", env: map[string]string{"STREAMHOUSE_SEGMENT_MS": "-5"}, wantName: "STREAMHOUSE_SEGMENT_MS"},
		{name: "segment ms words", args: []string{"--segment-ms=soon"}, wantName: "--segment-ms"},
		{name: "flush interval", env: map[string]string{"STREAMHOUSE_FLUSH_INTERVAL": "1"}, wantName: "STREAMHOUSE_FLUSH_INTERVAL"},
		{name: "flush interval zero", args: []string{"--flush-interval=0s"}, wantName: "--flush-interval"},
		{name: "fsync scope", args: []string{"--fsync-scope=disk"}, wantName: "--fsync-scope", wantText: []string{`invalid --fsync-scope "disk"`}},
		{name: "timer slack too large", args: []string{"--timer-slack=11ms"}, wantName: "--timer-slack", wantText: []string{"at most 10ms"}},
		{name: "timer slack negative", env: map[string]string{"STREAMHOUSE_TIMER_SLACK": "-1ms"}, wantName: "STREAMHOUSE_TIMER_SLACK"},
		{name: "log level", env: map[string]string{"STREAMHOUSE_LOG_LEVEL": "loud"}, wantName: "STREAMHOUSE_LOG_LEVEL"},
		{name: "log format", args: []string{"--log-format=xml"}, wantName: "--log-format"},
		{name: "http addr", env: map[string]string{"STREAMHOUSE_HTTP_ADDR": "8080"}, wantName: "STREAMHOUSE_HTTP_ADDR"},
		{name: "kafka port", env: map[string]string{"STREAMHOUSE_KAFKA_ADDR": ":99999"}, wantName: "STREAMHOUSE_KAFKA_ADDR"},
		{name: "grpc port", args: []string{"--grpc-addr=:grpc"}, wantName: "--grpc-addr"},
		{name: "use local storage", env: map[string]string{"USE_LOCAL_STORAGE": "maybe"}, wantName: "USE_LOCAL_STORAGE"},
		{name: "path style", args: []string{"--s3-path-style=sure"}, wantName: "--s3-path-style"},
		{name: "metrics per partition", env: map[string]string{"STREAMHOUSE_METRICS_PER_PARTITION": "some"}, wantName: "STREAMHOUSE_METRICS_PER_PARTITION"},
		{name: "endpoint", env: map[string]string{"S3_ENDPOINT": "127.0.0.1:7070"}, wantName: "S3_ENDPOINT"},
		{name: "empty data dir flag", args: []string{"--data-dir="}, wantName: "--data-dir"},
		{name: "empty region flag", args: []string{"--aws-region="}, wantName: "--aws-region"},
		{name: "objects in segments dir", args: []string{"--cache=/x", "--local-storage-path=/x/"},
			wantName: "--local-storage-path", wantText: []string{"--cache"}},
		{name: "s3 without bucket", env: map[string]string{"USE_LOCAL_STORAGE": "false"},
			wantText: []string{"USE_LOCAL_STORAGE is false", "STREAMHOUSE_BUCKET"}},
		{name: "s3 without bucket by flag", args: []string{"--use-local-storage=false"},
			wantText: []string{"--use-local-storage is false", "STREAMHOUSE_BUCKET"}},
		{name: "slow threshold", env: map[string]string{"STREAMHOUSE_SLOW_REQUEST_THRESHOLD": "-1s"}, wantName: "STREAMHOUSE_SLOW_REQUEST_THRESHOLD"},
		{name: "slow threshold unitless", args: []string{"--slow-request-threshold=5"}, wantName: "--slow-request-threshold"},
		{name: "initial delay", env: map[string]string{"STREAMHOUSE_GROUP_INITIAL_REBALANCE_DELAY": "-3"}, wantName: "STREAMHOUSE_GROUP_INITIAL_REBALANCE_DELAY"},
		{name: "offsets retention", args: []string{"--offsets-retention=0"}, wantName: "--offsets-retention"},
		{name: "retention check", env: map[string]string{"STREAMHOUSE_OFFSETS_RETENTION_CHECK_INTERVAL": "often"}, wantName: "STREAMHOUSE_OFFSETS_RETENTION_CHECK_INTERVAL"},
		{name: "max series", env: map[string]string{"STREAMHOUSE_GROUP_METRICS_MAX_SERIES": "-1"}, wantName: "STREAMHOUSE_GROUP_METRICS_MAX_SERIES"},
		{name: "session timeouts crossed", args: []string{"--group-min-session-timeout=10m", "--group-max-session-timeout=1m"},
			wantName: "--group-min-session-timeout", wantText: []string{"--group-max-session-timeout"}},
		{name: "consumer session timeout", env: map[string]string{"STREAMHOUSE_GROUP_CONSUMER_SESSION_TIMEOUT": "0"}, wantName: "STREAMHOUSE_GROUP_CONSUMER_SESSION_TIMEOUT"},
		{name: "consumer heartbeat not below session", env: map[string]string{"STREAMHOUSE_GROUP_CONSUMER_HEARTBEAT_INTERVAL": "45s"},
			wantName: "STREAMHOUSE_GROUP_CONSUMER_HEARTBEAT_INTERVAL", wantText: []string{"--group-consumer-session-timeout"}},
		{name: "fetch max bytes", args: []string{"--fetch-max-bytes=3GiB"}, wantName: "--fetch-max-bytes"},
		{name: "max connections", env: map[string]string{"STREAMHOUSE_MAX_CONNECTIONS": "0"}, wantName: "STREAMHOUSE_MAX_CONNECTIONS"},
		{name: "request memory below one request", args: []string{"--queued-max-request-bytes=1MiB", "--max-request-bytes=2MiB"},
			wantName: "--queued-max-request-bytes", wantText: []string{"--max-request-bytes"}},
		{name: "cleaner enable", env: map[string]string{"STREAMHOUSE_LOG_CLEANER_ENABLE": "maybe"}, wantName: "STREAMHOUSE_LOG_CLEANER_ENABLE"},
		{name: "cleanable ratio zero", args: []string{"--log-cleaner-min-cleanable-ratio=0"},
			wantName: "--log-cleaner-min-cleanable-ratio", wantText: []string{"above 0 and at most 1"}},
		{name: "cleanable ratio above one", env: map[string]string{"STREAMHOUSE_LOG_CLEANER_MIN_CLEANABLE_RATIO": "1.5"},
			wantName: "STREAMHOUSE_LOG_CLEANER_MIN_CLEANABLE_RATIO", wantText: []string{"above 0 and at most 1"}},
		{name: "cleanable ratio words", args: []string{"--log-cleaner-min-cleanable-ratio=half"}, wantName: "--log-cleaner-min-cleanable-ratio"},
		{name: "cleanable ratio NaN", args: []string{"--log-cleaner-min-cleanable-ratio=NaN"}, wantName: "--log-cleaner-min-cleanable-ratio"},
		{name: "min compaction lag negative", env: map[string]string{"STREAMHOUSE_LOG_CLEANER_MIN_COMPACTION_LAG": "-1"},
			wantName: "STREAMHOUSE_LOG_CLEANER_MIN_COMPACTION_LAG"},
		{name: "max compaction lag zero", args: []string{"--log-cleaner-max-compaction-lag=0"}, wantName: "--log-cleaner-max-compaction-lag"},
		{name: "max compaction lag words", args: []string{"--log-cleaner-max-compaction-lag=never"},
			wantName: "--log-cleaner-max-compaction-lag", wantText: []string{"or none"}},
		{name: "compaction lags crossed", args: []string{"--log-cleaner-min-compaction-lag=2h"},
			env:      map[string]string{"STREAMHOUSE_LOG_CLEANER_MAX_COMPACTION_LAG": "1h"},
			wantName: "--log-cleaner-min-compaction-lag", wantText: []string{"STREAMHOUSE_LOG_CLEANER_MAX_COMPACTION_LAG"}},
		{name: "delete retention zero", args: []string{"--log-cleaner-delete-retention=0"}, wantName: "--log-cleaner-delete-retention"},
		{name: "dedupe buffer zero", env: map[string]string{"STREAMHOUSE_LOG_CLEANER_DEDUPE_BUFFER_SIZE": "0"},
			wantName: "STREAMHOUSE_LOG_CLEANER_DEDUPE_BUFFER_SIZE"},
		{name: "io limit", args: []string{"--log-cleaner-io-max-bytes-per-second=fast"}, wantName: "--log-cleaner-io-max-bytes-per-second"},
		{name: "io limit negative", args: []string{"--log-cleaner-io-max-bytes-per-second=-1"}, wantName: "--log-cleaner-io-max-bytes-per-second"},
		{name: "cleaner backoff zero", env: map[string]string{"STREAMHOUSE_LOG_CLEANER_BACKOFF": "0"}, wantName: "STREAMHOUSE_LOG_CLEANER_BACKOFF"},
		{name: "delete delay negative", args: []string{"--log-cleaner-delete-delay=-1s"}, wantName: "--log-cleaner-delete-delay"},
		{name: "unknown flag", args: []string{"--nope"}, wantText: []string{"nope"}},
		{name: "stray argument", args: []string{"serve"}, wantText: []string{`unexpected argument "serve"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := LoadConfig(tt.args, env(tt.env))
			if err == nil {
				t.Fatal("LoadConfig succeeded, want an error")
			}
			var se *SettingError
			switch {
			case tt.wantName != "" && !errors.As(err, &se):
				t.Fatalf("error %q is not a *SettingError", err)
			case tt.wantName != "" && se.Name != tt.wantName:
				t.Errorf("error names %q, want %q (error: %v)", se.Name, tt.wantName, err)
			}
			for _, want := range append(tt.wantText, tt.wantName) {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not mention %q", err, want)
				}
			}
		})
	}
}

// TestCleanerConfig checks how the settings become log.Config.Cleaner:
// "none" and "at once", zero in Config, are not the log's zero
// ("default").
func TestCleanerConfig(t *testing.T) {
	c := defaultConfig()
	want := log.CleanerConfig{
		MinCleanableRatio: 0.5, MaxCompactionLag: log.DefaultMaxCompactionLag, DeleteRetention: 24 * time.Hour,
		DedupeBufferBytes: 128 << 20, Interval: 15 * time.Second, DeleteDelay: time.Minute,
	}
	if got := c.cleaner(); got != want {
		t.Errorf("defaults: got %+v, want %+v", got, want)
	}
	c.CleanerEnable, c.CleanerMinCompactionLag, c.CleanerMaxCompactionLag = false, time.Second, time.Hour
	c.CleanerIOBytesPerSecond, c.CleanerDeleteDelay = 1<<20, 0
	want.Disabled, want.MinCompactionLag, want.MaxCompactionLag, want.IOBytesPerSecond = true, time.Second, time.Hour, 1<<20
	got := c.cleaner()
	if got.DeleteDelay >= 0 {
		t.Errorf("delete delay 0 became %v, want negative (at once)", got.DeleteDelay)
	}
	got.DeleteDelay, want.DeleteDelay = 0, 0
	if got != want {
		t.Errorf("set: got %+v, want %+v", got, want)
	}
}

func TestParseSize(t *testing.T) {
	tests := []struct {
		in   string
		want int64
	}{
		{"0", 0}, {"268435456", 256 << 20}, {"1B", 1}, {"10b", 10},
		{"1KB", 1000}, {"1kb", 1000}, {"512MB", 512e6}, {"2GB", 2e9}, {"1TB", 1e12},
		{"1KiB", 1024}, {"256MiB", 256 << 20}, {"256mib", 256 << 20}, {"1GiB", 1 << 30},
		{"2TiB", 2 << 40}, {"64 MiB", 64 << 20}, {" 7 ", 7},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := parseSize(tt.in)
			if err != nil || got != tt.want {
				t.Errorf("parseSize(%q) = %d, %v; want %d", tt.in, got, err, tt.want)
			}
		})
	}
	for _, bad := range []string{"", "MiB", "12XB", "1.5GiB", "-1", "1 M", "1e6", "9223372036854775808", "9000000TiB"} {
		t.Run("bad "+bad, func(t *testing.T) {
			if got, err := parseSize(bad); err == nil {
				t.Errorf("parseSize(%q) = %d, want an error", bad, got)
			}
		})
	}
}

func TestMainCode(t *testing.T) {
	tests := []struct {
		name       string
		args       []string
		env        map[string]string
		wantCode   int
		wantStdout string
		wantStderr string
	}{
		{name: "help", args: []string{"--help"}, wantCode: exitOK, wantStdout: "--cache-size VALUE  (env STREAMHOUSE_CACHE_SIZE)"},
		{name: "bad env", env: map[string]string{"STREAMHOUSE_CACHE_SIZE": "12XB"}, wantCode: exitConfig,
			wantStderr: `streamhouse: invalid STREAMHOUSE_CACHE_SIZE "12XB": `},
		{name: "bad flag", args: []string{"--log-level=loud"}, wantCode: exitConfig,
			wantStderr: `streamhouse: invalid --log-level "loud": `},
		{name: "unknown flag", args: []string{"-x"}, wantCode: exitConfig, wantStderr: "streamhouse: flag provided but not defined: -x"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := mainCode(tt.args, env(tt.env), &stdout, &stderr, nil)
			if code != tt.wantCode {
				t.Errorf("exit code %d, want %d", code, tt.wantCode)
			}
			if !strings.Contains(stdout.String(), tt.wantStdout) {
				t.Errorf("stdout %q does not contain %q", stdout.String(), tt.wantStdout)
			}
			if !strings.Contains(stderr.String(), tt.wantStderr) {
				t.Errorf("stderr %q does not contain %q", stderr.String(), tt.wantStderr)
			}
		})
	}
}

func TestUsageListsEverySetting(t *testing.T) {
	var buf bytes.Buffer
	Usage(&buf)
	for _, s := range settings() {
		for _, want := range []string{"--" + s.flag, s.env} {
			if !strings.Contains(buf.String(), want) {
				t.Errorf("usage does not mention %s", want)
			}
		}
	}
	if _, err := LoadConfig([]string{"-h"}, env(nil)); !errors.Is(err, flag.ErrHelp) {
		t.Errorf("LoadConfig(-h) = %v, want flag.ErrHelp", err)
	}
}

// TestOperationsDocListsEverySetting checks that docs/OPERATIONS.md has a
// table row for every flag naming its environment variable.
func TestOperationsDocListsEverySetting(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join(repoRoot, "docs", "OPERATIONS.md"))
	if err != nil {
		t.Fatal(err)
	}
	rows := map[string]string{}
	for _, line := range strings.Split(string(doc), "\n") {
		if strings.HasPrefix(line, "| `--") {
			flag, _, _ := strings.Cut(strings.TrimPrefix(line, "| `--"), "`")
			rows[flag] = line
		}
	}
	for _, s := range settings() {
		row, ok := rows[s.flag]
		if !ok {
			t.Errorf("docs/OPERATIONS.md has no row for --%s", s.flag)
			continue
		}
		if !strings.Contains(row, "`"+s.env+"`") {
			t.Errorf("docs/OPERATIONS.md's row for --%s does not name %s: %s", s.flag, s.env, row)
		}
	}
}
