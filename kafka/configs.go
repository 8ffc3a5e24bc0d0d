package kafka

// Configs as the config APIs see them, shared by DescribeConfigs (32),
// AlterConfigs (33) and IncrementalAlterConfigs (44):
//   - topic configs: exactly the keys the log honours (log.TopicConfigKeys),
//     with Kafka's type, a line of documentation and the broker config that
//     supplies the default (reported as a synonym);
//   - broker configs: the values this broker runs with, all read-only
//     (they are set at startup; see UNSUPPORTED.md).
//
// Sources follow Kafka: a topic override is DYNAMIC_TOPIC_CONFIG; a broker
// value set at startup that differs from StreamHouse's built-in default is
// STATIC_BROKER_CONFIG; a built-in default is DEFAULT_CONFIG.

import (
	"fmt"
	"net"
	"path/filepath"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/streamhouse/streamhouse/log"
	"github.com/streamhouse/streamhouse/meta"
)

// topicConfigInfo describes one honoured topic config.
type topicConfigInfo struct {
	typ    kmsg.ConfigType
	broker string // the broker config supplying its default
	doc    string
}

// topicConfigInfos covers every key of log.TopicConfigKeys (a test checks).
// It is an immutable table.
var topicConfigInfos = map[string]topicConfigInfo{
	log.ConfigRetentionMs: {kmsg.ConfigTypeLong, "log.retention.ms",
		"How long a sealed segment is kept after its newest record, in ms; -1 keeps it forever."},
	log.ConfigRetentionBytes: {kmsg.ConfigTypeLong, "log.retention.bytes",
		"The size a partition may reach before its oldest sealed segments are deleted; -1 means no limit."},
	log.ConfigSegmentBytes: {kmsg.ConfigTypeInt, "log.segment.bytes",
		"The size at which the active segment is sealed and uploaded to the object store."},
	log.ConfigSegmentMs: {kmsg.ConfigTypeLong, "log.roll.ms",
		"The age in ms at which a non-empty active segment is sealed and uploaded."},
	log.ConfigMaxMessageBytes: {kmsg.ConfigTypeInt, "message.max.bytes",
		"The largest record batch a produce may append."},
	log.ConfigCleanupPolicy: {kmsg.ConfigTypeList, "log.cleanup.policy",
		"delete: retention removes whole segments by age and size; compact: keep at least the latest record of every key; or both."},
	log.ConfigTimestampType: {kmsg.ConfigTypeString, "log.message.timestamp.type",
		"CreateTime keeps producer timestamps; LogAppendTime stamps each batch with the broker's time."},
	log.ConfigMinInsyncReplica: {kmsg.ConfigTypeInt, "min.insync.replicas",
		"The replicas that must have an acks=all write; a partition has one replica here, so above 1 acks=all produce fails with NOT_ENOUGH_REPLICAS."},
	log.ConfigCompressionType: {kmsg.ConfigTypeString, "compression.type",
		"producer keeps each batch's codec; uncompressed, gzip, snappy, lz4 or zstd recompresses batches in another codec on append."},
	log.ConfigMinCleanableDirtyRatio: {kmsg.ConfigTypeDouble, "log.cleaner.min.cleanable.ratio",
		"Compaction starts once this share of the partition's sealed bytes has not been compacted yet."},
	log.ConfigMinCompactionLagMs: {kmsg.ConfigTypeLong, "log.cleaner.min.compaction.lag.ms",
		"A record stays uncompacted for at least this many ms after it was written."},
	log.ConfigMaxCompactionLagMs: {kmsg.ConfigTypeLong, "log.cleaner.max.compaction.lag.ms",
		"A sealed segment is compacted within this many ms of its newest record, whatever the dirty ratio."},
	log.ConfigDeleteRetentionMs: {kmsg.ConfigTypeLong, "log.cleaner.delete.retention.ms",
		"How long a tombstone (a null value) stays readable after compaction first reached it, in ms."},
}

// isListConfig reports whether APPEND and SUBTRACT apply to a topic config.
func isListConfig(key string) bool {
	return topicConfigInfos[key].typ == kmsg.ConfigTypeList
}

// sourceIf is STATIC_BROKER_CONFIG when a startup value differs from the
// built-in default, DEFAULT_CONFIG otherwise.
func sourceIf(changed bool) kmsg.ConfigSource {
	if changed {
		return kmsg.ConfigSourceStaticBrokerConfig
	}
	return kmsg.ConfigSourceDefaultConfig
}

// newConfigEntry builds one DescribeConfigs row; its only synonym is
// itself (Kafka lists the entry's own source first).
func newConfigEntry(name, value string, src kmsg.ConfigSource, typ kmsg.ConfigType, doc string) kmsg.DescribeConfigsResponseResourceConfig {
	c := kmsg.NewDescribeConfigsResponseResourceConfig()
	c.Name, c.Value, c.Source, c.ConfigType = name, &value, src, typ
	c.IsDefault = src == kmsg.ConfigSourceDefaultConfig
	c.Documentation = &doc
	c.ConfigSynonyms = []kmsg.DescribeConfigsResponseResourceConfigConfigSynonym{newSynonym(name, value, src)}
	return c
}

func newSynonym(name, value string, src kmsg.ConfigSource) kmsg.DescribeConfigsResponseResourceConfigConfigSynonym {
	syn := kmsg.NewDescribeConfigsResponseResourceConfigConfigSynonym()
	syn.Name, syn.Value, syn.Source = name, &value, src
	return syn
}

// topicConfigEntries describes every honoured config of a topic: its
// override, or the broker's effective default. Synonyms, in Kafka's order
// of precedence: the override, the broker config set at startup, the
// built-in default.
func (s *Server) topicConfigEntries(t meta.Topic) []kmsg.DescribeConfigsResponseResourceConfig {
	var out []kmsg.DescribeConfigsResponseResourceConfig
	for _, k := range log.TopicConfigKeys() {
		info := topicConfigInfos[k]
		builtin, _ := log.TopicConfigDefault(k)
		effective, _ := s.cfg.Log.TopicConfigDefault(k)
		var syns []kmsg.DescribeConfigsResponseResourceConfigConfigSynonym
		if v, ok := t.Configs[k]; ok {
			syns = append(syns, newSynonym(k, v, kmsg.ConfigSourceDynamicTopicConfig))
		}
		if effective != builtin {
			syns = append(syns, newSynonym(info.broker, effective, kmsg.ConfigSourceStaticBrokerConfig))
		}
		syns = append(syns, newSynonym(info.broker, builtin, kmsg.ConfigSourceDefaultConfig))
		c := newConfigEntry(k, *syns[0].Value, syns[0].Source, info.typ, info.doc)
		c.ConfigSynonyms = syns
		out = append(out, c)
	}
	return out
}

// brokerConfigEntries describes the broker configs this broker runs with.
// All are read-only.
func (s *Server) brokerConfigEntries() []kmsg.DescribeConfigsResponseResourceConfig {
	bs := s.cfg.Log.BrokerSettings()
	host, port := s.advertised()
	dir, err := filepath.Abs(bs.Dir)
	if err != nil {
		dir = bs.Dir
	}
	static := kmsg.ConfigSourceStaticBrokerConfig
	def := kmsg.ConfigSourceDefaultConfig
	topicDefault := func(k string) string { v, _ := s.cfg.Log.TopicConfigDefault(k); return v }
	itoa := func(n int64) string { return strconv.FormatInt(n, 10) }
	nodeID := itoa(int64(s.cfg.NodeID))
	type row = brokerConfigRow
	rows := []row{
		{"node.id", nodeID, static, kmsg.ConfigTypeInt, "This broker's ID."},
		{"broker.id", nodeID, static, kmsg.ConfigTypeInt, "This broker's ID (the pre-KRaft name of node.id)."},
		{"advertised.listeners", fmt.Sprintf("PLAINTEXT://%s", netJoin(host, port)), static, kmsg.ConfigTypeString, "The address clients are told to connect to."},
		{"log.dirs", dir, static, kmsg.ConfigTypeString, "The directory holding active segments and sealed segments waiting for upload."},
		{"auto.create.topics.enable", strconv.FormatBool(s.cfg.AutoCreateTopics), static, kmsg.ConfigTypeBoolean, "Whether Metadata creates unknown topics when the request allows it."},
		{"num.partitions", itoa(int64(s.cfg.DefaultPartitions)), sourceIf(s.cfg.DefaultPartitions != DefaultPartitions), kmsg.ConfigTypeInt, "The partition count of auto-created topics."},
		{"default.replication.factor", "1", def, kmsg.ConfigTypeInt, "Always 1: one broker."},
		{"socket.request.max.bytes", itoa(int64(s.cfg.MaxRequestBytes)), sourceIf(s.cfg.MaxRequestBytes != DefaultMaxRequestBytes), kmsg.ConfigTypeInt, "The largest request frame accepted."},
		{"connections.max.idle.ms", itoa(s.cfg.IdleTimeout.Milliseconds()), sourceIf(s.cfg.IdleTimeout != DefaultIdleTimeout), kmsg.ConfigTypeLong, "Idle connections are closed after this many ms."},
		{"log.segment.bytes", itoa(bs.SegmentBytes), sourceIf(bs.SegmentBytes != log.DefaultSegmentBytes), kmsg.ConfigTypeInt, topicConfigInfos[log.ConfigSegmentBytes].doc},
		{"log.roll.ms", itoa(bs.SegmentAge.Milliseconds()), sourceIf(bs.SegmentAge != log.DefaultSegmentAge), kmsg.ConfigTypeLong, topicConfigInfos[log.ConfigSegmentMs].doc},
		{"log.retention.check.interval.ms", itoa(bs.RetentionInterval.Milliseconds()), sourceIf(bs.RetentionInterval != log.DefaultRetentionInterval), kmsg.ConfigTypeLong, "How often age-based rolls and retention run, in ms."},
		{"log.retention.ms", topicDefault(log.ConfigRetentionMs), def, kmsg.ConfigTypeLong, topicConfigInfos[log.ConfigRetentionMs].doc},
		{"log.retention.bytes", topicDefault(log.ConfigRetentionBytes), def, kmsg.ConfigTypeLong, topicConfigInfos[log.ConfigRetentionBytes].doc},
		{"message.max.bytes", topicDefault(log.ConfigMaxMessageBytes), def, kmsg.ConfigTypeInt, topicConfigInfos[log.ConfigMaxMessageBytes].doc},
		{"log.cleanup.policy", topicDefault(log.ConfigCleanupPolicy), def, kmsg.ConfigTypeList, topicConfigInfos[log.ConfigCleanupPolicy].doc},
		{"log.message.timestamp.type", topicDefault(log.ConfigTimestampType), def, kmsg.ConfigTypeString, topicConfigInfos[log.ConfigTimestampType].doc},
		{"min.insync.replicas", topicDefault(log.ConfigMinInsyncReplica), def, kmsg.ConfigTypeInt, topicConfigInfos[log.ConfigMinInsyncReplica].doc},
		{"compression.type", topicDefault(log.ConfigCompressionType), def, kmsg.ConfigTypeString, topicConfigInfos[log.ConfigCompressionType].doc},
	}
	rows = append(rows, s.cleanerConfigRows()...)
	out := make([]kmsg.DescribeConfigsResponseResourceConfig, 0, len(rows))
	for _, r := range rows {
		c := newConfigEntry(r.name, r.value, r.src, r.typ, r.doc)
		c.ReadOnly = true
		out = append(out, c)
	}
	return out
}

// brokerConfigRow is one broker config as DescribeConfigs reports it.
type brokerConfigRow struct {
	name, value string
	src         kmsg.ConfigSource
	typ         kmsg.ConfigType
	doc         string
}

// cleanerConfigRows describes the log cleaner's broker configs: its own
// settings (Config.Cleaner, with the log's defaults for zero fields) and
// the broker defaults of the topic compaction configs, as the log reports
// them to topics.
func (s *Server) cleanerConfigRows() []brokerConfigRow {
	type row = brokerConfigRow
	itoa := func(n int64) string { return strconv.FormatInt(n, 10) }
	cl := s.cfg.Cleaner
	rows := []row{{"log.cleaner.enable", strconv.FormatBool(!cl.Disabled), sourceIf(cl.Disabled), kmsg.ConfigTypeBoolean,
		"Whether the log cleaner compacts topics whose cleanup.policy includes compact."}}
	for _, k := range []string{log.ConfigMinCleanableDirtyRatio, log.ConfigMinCompactionLagMs, log.ConfigMaxCompactionLagMs, log.ConfigDeleteRetentionMs} {
		info := topicConfigInfos[k]
		builtin, _ := log.TopicConfigDefault(k)
		v, _ := s.cfg.Log.TopicConfigDefault(k)
		rows = append(rows, row{info.broker, v, sourceIf(v != builtin), info.typ, info.doc})
	}
	dedupe, backoff := orDefault(cl.DedupeBufferBytes, log.DefaultDedupeBufferBytes), orDefault(cl.Interval, log.DefaultCleanerInterval)
	ioLimit := kafkaUnlimitedDouble
	if cl.IOBytesPerSecond > 0 {
		ioLimit = itoa(cl.IOBytesPerSecond)
	}
	return append(rows,
		row{"log.cleaner.dedupe.buffer.size", itoa(dedupe), sourceIf(dedupe != log.DefaultDedupeBufferBytes), kmsg.ConfigTypeLong,
			"Memory for the key map of one compaction run (24 bytes per distinct key)."},
		row{"log.cleaner.io.max.bytes.per.second", ioLimit, sourceIf(cl.IOBytesPerSecond > 0), kmsg.ConfigTypeDouble,
			"Most bytes per second the cleaner reads and writes; Double.MAX_VALUE (the default) means no limit."},
		row{"log.cleaner.backoff.ms", itoa(backoff.Milliseconds()), sourceIf(backoff != log.DefaultCleanerInterval), kmsg.ConfigTypeLong,
			"How often the cleaner looks for partitions to compact, in ms."},
	)
}

// kafkaUnlimitedDouble is how Kafka shows a DOUBLE config without a limit
// (Java's Double.toString(Double.MAX_VALUE)).
const kafkaUnlimitedDouble = "1.7976931348623157E308"

// orDefault is v, or def when v is zero or negative (how the log reads
// its Config).
func orDefault[T int64 | time.Duration](v, def T) T {
	if v <= 0 {
		return def
	}
	return v
}

// netJoin formats host:port (brackets for IPv6).
func netJoin(host string, port int32) string {
	return net.JoinHostPort(host, strconv.Itoa(int(port)))
}

// brokerResource checks a broker resource name: empty (the cluster-wide
// dynamic defaults) or this broker's ID. It returns INVALID_REQUEST and a
// message otherwise.
func (s *Server) brokerResource(name string) (code int16, msg string) {
	if name == "" {
		return 0, ""
	}
	id, err := strconv.ParseInt(name, 10, 32)
	if err != nil || int32(id) != s.cfg.NodeID {
		return kerr.InvalidRequest.Code, fmt.Sprintf("unexpected broker %q: expected %d or an empty name", name, s.cfg.NodeID)
	}
	return 0, ""
}

// topicResource checks a topic resource: a valid name of an existing
// topic. It returns the topic or an error code and message.
func (s *Server) topicResource(name string) (meta.Topic, int16, string) {
	if err := log.ValidateTopicName(name); err != nil {
		return meta.Topic{}, errorCode(err), err.Error()
	}
	t, err := s.cfg.Log.Topic(name)
	if err != nil {
		return meta.Topic{}, errorCode(err), err.Error()
	}
	return t, 0, ""
}

// resourceKey identifies a config resource within one request.
type resourceKey struct {
	typ  kmsg.ConfigResourceType
	name string
}

// countResources counts how often each resource appears in a request:
// Kafka answers every copy of a repeated resource with INVALID_REQUEST.
func countResources(keys []resourceKey) map[resourceKey]int {
	n := make(map[resourceKey]int, len(keys))
	for _, k := range keys {
		n[k]++
	}
	return n
}

// Messages of the alter APIs' request-shape checks (Kafka's wording).
const (
	msgDuplicateResource = "Each resource must appear at most once."
	msgDuplicateKeys     = "Error due to duplicate config keys"
)

// brokerAlterError is the answer to any change of a broker config: every
// broker config is read-only (set at startup).
func (s *Server) brokerAlterError(name string) (int16, string) {
	for _, c := range s.brokerConfigEntries() {
		if c.Name == name {
			return kerr.InvalidConfig.Code, fmt.Sprintf("broker config %q is read-only: set it when starting the broker", name)
		}
	}
	return kerr.InvalidConfig.Code, fmt.Sprintf("unknown broker config %q", name)
}

// errorText is err's message, empty for nil.
func errorText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// alterEach runs apply for each of n resources named by key, answering
// INVALID_REQUEST for a resource named more than once in the request (as
// Kafka does), and hands every result to set. AlterConfigs and
// IncrementalAlterConfigs share it.
func alterEach(n int, key func(int) resourceKey, apply func(int) (int16, string), set func(int, int16, string)) {
	keys := make([]resourceKey, n)
	for i := range keys {
		keys[i] = key(i)
	}
	counts := countResources(keys)
	for i := range keys {
		code, msg := kerr.InvalidRequest.Code, msgDuplicateResource
		if counts[keys[i]] == 1 {
			code, msg = apply(i)
		}
		set(i, code, msg)
	}
}
