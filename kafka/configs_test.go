package kafka

import (
	"errors"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/streamhouse/streamhouse/log"
)

func TestTopicConfigInfosCoverHonouredKeys(t *testing.T) {
	keys := log.TopicConfigKeys()
	for _, k := range keys {
		if info, ok := topicConfigInfos[k]; !ok || info.broker == "" || info.doc == "" || info.typ == 0 {
			t.Errorf("config %q has no complete description", k)
		}
	}
	if len(topicConfigInfos) != len(keys) {
		t.Errorf("%d descriptions for %d honoured keys", len(topicConfigInfos), len(keys))
	}
}

func findConfig(t *testing.T, rc kadm.ResourceConfig, key string) kadm.Config {
	t.Helper()
	for _, c := range rc.Configs {
		if c.Key == key {
			return c
		}
	}
	t.Fatalf("config %q not in %s's answer", key, rc.Name)
	return kadm.Config{}
}

func TestDescribeConfigs(t *testing.T) {
	b := newTestBroker(t, func(c *Config) { c.DefaultPartitions = 3 })
	b.createTopic("dc", 1, map[string]string{log.ConfigRetentionMs: "1000"})
	adm := b.admin()
	ctx := testCtx(t)

	rcs, err := adm.DescribeTopicConfigs(ctx, "dc")
	if err != nil {
		t.Fatal(err)
	}
	rc, err := rcs.On("dc", nil)
	if err != nil || len(rc.Configs) != len(log.TopicConfigKeys()) {
		t.Fatalf("%v: %d configs", err, len(rc.Configs))
	}
	ret := findConfig(t, rc, log.ConfigRetentionMs)
	if ret.MaybeValue() != "1000" || ret.Source != kmsg.ConfigSourceDynamicTopicConfig ||
		len(ret.Synonyms) != 2 || ret.Synonyms[1].Key != "log.retention.ms" || ret.Synonyms[1].Source != kmsg.ConfigSourceDefaultConfig {
		t.Fatalf("retention.ms: %+v", ret)
	}
	seg := findConfig(t, rc, log.ConfigSegmentBytes)
	if def, _ := b.log.TopicConfigDefault(log.ConfigSegmentBytes); seg.MaybeValue() != def || seg.Source != kmsg.ConfigSourceDefaultConfig {
		t.Fatalf("segment.bytes: %+v", seg)
	}

	brokers, err := adm.DescribeBrokerConfigs(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	br, err := brokers.On("1", nil)
	if err != nil {
		t.Fatal(err)
	}
	if c := findConfig(t, br, "node.id"); c.MaybeValue() != "1" || c.Source != kmsg.ConfigSourceStaticBrokerConfig {
		t.Fatalf("node.id: %+v", c)
	}
	if c := findConfig(t, br, "num.partitions"); c.MaybeValue() != "3" || c.Source != kmsg.ConfigSourceStaticBrokerConfig {
		t.Fatalf("num.partitions: %+v", c)
	}
	if c := findConfig(t, br, "log.retention.ms"); c.Source != kmsg.ConfigSourceDefaultConfig {
		t.Fatalf("log.retention.ms: %+v", c)
	}
	cluster, err := adm.DescribeBrokerConfigs(ctx)
	if err != nil || len(cluster) != 1 || cluster[0].Err != nil || len(cluster[0].Configs) != 0 {
		t.Fatalf("cluster-wide dynamic defaults: %+v %v", cluster, err)
	}
}

func TestDescribeConfigsVersionsAndErrors(t *testing.T) {
	b := newTestBroker(t, nil)
	b.createTopic("dv", 1, nil)
	describe := func(version int16, synonyms, docs bool, rs ...kmsg.DescribeConfigsRequestResource) []kmsg.DescribeConfigsResponseResource {
		t.Helper()
		req := kmsg.NewPtrDescribeConfigsRequest()
		req.Version, req.IncludeSynonyms, req.IncludeDocumentation, req.Resources = version, synonyms, docs, rs
		return b.raw().roundTrip(1, req).(*kmsg.DescribeConfigsResponse).Resources
	}
	topic := kmsg.DescribeConfigsRequestResource{ResourceType: kmsg.ConfigResourceTypeTopic, ResourceName: "dv"}

	t.Run("v0 IsDefault", func(t *testing.T) {
		r := describe(0, false, false, topic)[0]
		if r.ErrorCode != 0 || len(r.Configs) == 0 || !r.Configs[0].IsDefault {
			t.Fatalf("%+v", r)
		}
	})
	t.Run("v4 with documentation, without synonyms", func(t *testing.T) {
		r := describe(4, false, true, topic)[0]
		for _, c := range r.Configs {
			if c.Documentation == nil || c.ConfigType == 0 || len(c.ConfigSynonyms) != 0 || c.ReadOnly {
				t.Fatalf("%s: %+v", c.Name, c)
			}
		}
	})
	t.Run("v4 without documentation", func(t *testing.T) {
		for _, c := range describe(4, true, false, topic)[0].Configs {
			if c.Documentation != nil || len(c.ConfigSynonyms) == 0 {
				t.Fatalf("%s: %+v", c.Name, c)
			}
		}
	})
	t.Run("broker configs are read-only", func(t *testing.T) {
		r := describe(4, false, false, kmsg.DescribeConfigsRequestResource{ResourceType: kmsg.ConfigResourceTypeBroker, ResourceName: "1"})[0]
		for _, c := range r.Configs {
			if !c.ReadOnly {
				t.Fatalf("%s is not read-only", c.Name)
			}
		}
	})
	t.Run("names filter", func(t *testing.T) {
		named := topic
		named.ConfigNames = []string{log.ConfigRetentionMs, "no.such"}
		r := describe(4, false, false, named)[0]
		if len(r.Configs) != 1 || r.Configs[0].Name != log.ConfigRetentionMs {
			t.Fatalf("%+v", r.Configs)
		}
	})
	for _, tc := range []struct {
		name string
		typ  kmsg.ConfigResourceType
		res  string
		want int16
	}{
		{"unknown topic", kmsg.ConfigResourceTypeTopic, "missing", kerr.UnknownTopicOrPartition.Code},
		{"bad topic name", kmsg.ConfigResourceTypeTopic, "bad/name", kerr.InvalidTopicException.Code},
		{"other broker", kmsg.ConfigResourceTypeBroker, "7", kerr.InvalidRequest.Code},
		{"broker loggers", kmsg.ConfigResourceTypeBrokerLogger, "1", kerr.InvalidRequest.Code},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := describe(4, false, false, kmsg.DescribeConfigsRequestResource{ResourceType: tc.typ, ResourceName: tc.res})[0]
			if r.ErrorCode != tc.want || r.ErrorMessage == nil {
				t.Fatalf("code %d, want %d", r.ErrorCode, tc.want)
			}
		})
	}
}

func str(s string) *string { return &s }

func topicConfigs(t *testing.T, b *testBroker, name string) map[string]string {
	t.Helper()
	mt, err := b.log.Topic(name)
	if err != nil {
		t.Fatal(err)
	}
	return mt.Configs
}

func TestAlterConfigs(t *testing.T) {
	b := newTestBroker(t, nil)
	b.createTopic("ac", 1, map[string]string{log.ConfigRetentionMs: "1000"})
	adm := b.admin()
	ctx := testCtx(t)
	set := []kadm.AlterConfig{{Name: log.ConfigRetentionBytes, Value: str("5000")}}

	resp, err := adm.ValidateAlterTopicConfigsState(ctx, set, "ac")
	if err != nil || resp[0].Err != nil {
		t.Fatalf("validate: %v %+v", err, resp)
	}
	if got := topicConfigs(t, b, "ac"); got[log.ConfigRetentionBytes] != "" {
		t.Fatalf("validate-only changed configs: %v", got)
	}
	resp, err = adm.AlterTopicConfigsState(ctx, set, "ac")
	if err != nil || resp[0].Err != nil {
		t.Fatalf("alter: %v %+v", err, resp)
	}
	// The legacy API replaces: retention.ms returns to its default.
	if got, want := topicConfigs(t, b, "ac"), map[string]string{log.ConfigRetentionBytes: "5000"}; !maps.Equal(got, want) {
		t.Fatalf("configs %v, want %v", got, want)
	}

	for _, tc := range []struct {
		name    string
		configs []kadm.AlterConfig
		topic   string
		want    error
	}{
		{"unknown key", []kadm.AlterConfig{{Name: "no.such", Value: str("1")}}, "ac", kerr.InvalidConfig},
		{"bad value", []kadm.AlterConfig{{Name: log.ConfigRetentionMs, Value: str("soon")}}, "ac", kerr.InvalidConfig},
		{"null value", []kadm.AlterConfig{{Name: log.ConfigRetentionMs}}, "ac", kerr.InvalidRequest},
		{"duplicate key", []kadm.AlterConfig{{Name: log.ConfigRetentionMs, Value: str("1")}, {Name: log.ConfigRetentionMs, Value: str("2")}}, "ac", kerr.InvalidRequest},
		{"unknown topic", set, "missing", kerr.UnknownTopicOrPartition},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, err := adm.AlterTopicConfigsState(ctx, tc.configs, tc.topic)
			if err != nil || len(resp) != 1 || !errors.Is(resp[0].Err, tc.want) {
				t.Fatalf("%v %+v, want %v", err, resp, tc.want)
			}
		})
	}
	if got := topicConfigs(t, b, "ac"); got[log.ConfigRetentionBytes] != "5000" || len(got) != 1 {
		t.Fatalf("failed alters changed configs: %v", got)
	}
	t.Run("broker", func(t *testing.T) {
		resp, err := adm.AlterBrokerConfigsState(ctx, []kadm.AlterConfig{{Name: "log.retention.ms", Value: str("1")}}, 1)
		if err != nil || !errors.Is(resp[0].Err, kerr.InvalidConfig) {
			t.Fatalf("%v %+v", err, resp)
		}
		resp, err = adm.AlterBrokerConfigsState(ctx, nil, 1)
		if err != nil || resp[0].Err != nil {
			t.Fatalf("empty broker alter: %v %+v", err, resp)
		}
	})
	t.Run("duplicate resource", func(t *testing.T) {
		req := kmsg.NewPtrAlterConfigsRequest()
		req.Version = 2
		r := kmsg.AlterConfigsRequestResource{ResourceType: kmsg.ConfigResourceTypeTopic, ResourceName: "ac"}
		req.Resources = []kmsg.AlterConfigsRequestResource{r, r}
		for _, sr := range b.raw().roundTrip(1, req).(*kmsg.AlterConfigsResponse).Resources {
			if sr.ErrorCode != kerr.InvalidRequest.Code {
				t.Fatalf("code %d", sr.ErrorCode)
			}
		}
	})
}

func TestIncrementalAlterConfigs(t *testing.T) {
	b := newTestBroker(t, nil)
	b.createTopic("ia", 1, map[string]string{log.ConfigRetentionMs: "1000"})
	adm := b.admin()
	ctx := testCtx(t)
	alter := func(validate bool, topic string, ops ...kadm.AlterConfig) error {
		t.Helper()
		f := adm.AlterTopicConfigs
		if validate {
			f = adm.ValidateAlterTopicConfigs
		}
		resp, err := f(ctx, ops, topic)
		if err != nil {
			t.Fatal(err)
		}
		return resp[0].Err
	}
	setBytes := kadm.AlterConfig{Op: kadm.SetConfig, Name: log.ConfigRetentionBytes, Value: str("5000")}
	if err := alter(true, "ia", setBytes); err != nil {
		t.Fatal(err)
	}
	if got := topicConfigs(t, b, "ia"); len(got) != 1 {
		t.Fatalf("validate-only changed configs: %v", got)
	}
	if err := alter(false, "ia", setBytes,
		kadm.AlterConfig{Op: kadm.DeleteConfig, Name: log.ConfigRetentionMs},
		kadm.AlterConfig{Op: kadm.AppendConfig, Name: log.ConfigCleanupPolicy, Value: str("delete")},
		kadm.AlterConfig{Op: kadm.DeleteConfig, Name: "never.set"}); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{log.ConfigRetentionBytes: "5000", log.ConfigCleanupPolicy: "delete"}
	if got := topicConfigs(t, b, "ia"); !maps.Equal(got, want) {
		t.Fatalf("configs %v, want %v", got, want)
	}

	b.restart()
	if got := topicConfigs(t, b, "ia"); !maps.Equal(got, want) {
		t.Fatalf("after restart: %v", got)
	}
}

func TestIncrementalAlterConfigsErrors(t *testing.T) {
	want := map[string]string{log.ConfigRetentionBytes: "5000", log.ConfigCleanupPolicy: "delete"}
	b := newTestBroker(t, nil)
	b.createTopic("ia", 1, want)
	adm := b.admin()
	ctx := testCtx(t)
	alter := func(topic string, ops ...kadm.AlterConfig) error {
		t.Helper()
		resp, err := adm.AlterTopicConfigs(ctx, ops, topic)
		if err != nil {
			t.Fatal(err)
		}
		return resp[0].Err
	}
	for _, tc := range []struct {
		name string
		op   kadm.AlterConfig
		want error
	}{
		{"unknown key", kadm.AlterConfig{Op: kadm.SetConfig, Name: "no.such", Value: str("1")}, kerr.InvalidConfig},
		{"bad value", kadm.AlterConfig{Op: kadm.SetConfig, Name: log.ConfigSegmentBytes, Value: str("-3")}, kerr.InvalidConfig},
		{"append unknown policy", kadm.AlterConfig{Op: kadm.AppendConfig, Name: log.ConfigCleanupPolicy, Value: str("shred")}, kerr.InvalidConfig},
		{"subtract to empty", kadm.AlterConfig{Op: kadm.SubtractConfig, Name: log.ConfigCleanupPolicy, Value: str("delete")}, kerr.InvalidConfig},
		{"append to a non-list", kadm.AlterConfig{Op: kadm.AppendConfig, Name: log.ConfigRetentionMs, Value: str("1")}, kerr.InvalidConfig},
		{"null set", kadm.AlterConfig{Op: kadm.SetConfig, Name: log.ConfigRetentionMs}, kerr.InvalidRequest},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := alter("ia", tc.op); !errors.Is(err, tc.want) {
				t.Fatalf("err %v, want %v", err, tc.want)
			}
		})
	}
	t.Run("unknown op and duplicate key", func(t *testing.T) {
		req := kmsg.NewPtrIncrementalAlterConfigsRequest()
		req.Version = 1
		op := kmsg.IncrementalAlterConfigsRequestResourceConfig{Op: 9, Name: log.ConfigRetentionMs, Value: str("1")}
		set := kmsg.IncrementalAlterConfigsRequestResourceConfig{Name: log.ConfigRetentionMs, Value: str("1")}
		req.Resources = []kmsg.IncrementalAlterConfigsRequestResource{
			{ResourceType: kmsg.ConfigResourceTypeTopic, ResourceName: "ia", Configs: []kmsg.IncrementalAlterConfigsRequestResourceConfig{op}},
			{ResourceType: kmsg.ConfigResourceTypeBroker, ResourceName: "1", Configs: []kmsg.IncrementalAlterConfigsRequestResourceConfig{set, set}},
		}
		for _, sr := range b.raw().roundTrip(1, req).(*kmsg.IncrementalAlterConfigsResponse).Resources {
			if sr.ErrorCode != kerr.InvalidRequest.Code || sr.ErrorMessage == nil {
				t.Fatalf("%s: code %d", sr.ResourceName, sr.ErrorCode)
			}
		}
	})
	if err := alter("missing", kadm.AlterConfig{Name: log.ConfigRetentionMs, Value: str("1")}); !errors.Is(err, kerr.UnknownTopicOrPartition) {
		t.Fatalf("unknown topic: %v", err)
	}
	if got := topicConfigs(t, b, "ia"); !maps.Equal(got, want) {
		t.Fatalf("failed alters changed configs to %v", got)
	}
	resp, err := adm.AlterBrokerConfigs(ctx, []kadm.AlterConfig{{Op: kadm.SetConfig, Name: "num.partitions", Value: str("4")}}, 1)
	if err != nil || !errors.Is(resp[0].Err, kerr.InvalidConfig) {
		t.Fatalf("broker alter: %v %+v", err, resp)
	}
	// Deleting dynamic broker configs that were never set succeeds, as
	// kafka-reassign-partitions --verify expects when it clears throttles.
	resp, err = adm.AlterBrokerConfigs(ctx, []kadm.AlterConfig{
		{Op: kadm.DeleteConfig, Name: "follower.replication.throttled.rate"},
		{Op: kadm.DeleteConfig, Name: "leader.replication.throttled.rate"}}, 1)
	if err != nil || resp[0].Err != nil {
		t.Fatalf("deleting unset broker configs: %v %+v", err, resp)
	}
}

// compactionDefaults are the topic compaction configs' values on a broker
// started with the log's default Config.Cleaner.
var compactionDefaults = map[string]string{
	log.ConfigMinCleanableDirtyRatio: "0.5",
	log.ConfigMinCompactionLagMs:     "0",
	log.ConfigMaxCompactionLagMs:     "9223372036854775807",
	log.ConfigDeleteRetentionMs:      "86400000",
}

// TestCreateCompactedTopics creates topics with cleanup.policy compact and
// "compact,delete" and the compaction configs through CreateTopics, and
// checks that DescribeConfigs reports the overrides as DYNAMIC_TOPIC_CONFIG
// and the configs not set as the broker defaults, DEFAULT_CONFIG.
func TestCreateCompactedTopics(t *testing.T) {
	b := newTestBroker(t, nil)
	adm := b.admin()
	ctx := testCtx(t)
	both := map[string]string{
		log.ConfigCleanupPolicy:          "compact,delete",
		log.ConfigMinCleanableDirtyRatio: "0.1",
		log.ConfigMinCompactionLagMs:     "1000",
		log.ConfigMaxCompactionLagMs:     "60000",
		log.ConfigDeleteRetentionMs:      "0",
	}
	for name, configs := range map[string]map[string]string{
		"table":  {log.ConfigCleanupPolicy: "compact"},
		"both":   both,
		"ratio":  {log.ConfigCleanupPolicy: "compact", log.ConfigMinCleanableDirtyRatio: "0.9"},
		"minlag": {log.ConfigCleanupPolicy: "compact", log.ConfigMinCompactionLagMs: "5000"},
		"maxlag": {log.ConfigCleanupPolicy: "compact", log.ConfigMaxCompactionLagMs: "7000"},
		"tomb":   {log.ConfigCleanupPolicy: "compact", log.ConfigDeleteRetentionMs: "3600000"},
	} {
		ptrs := make(map[string]*string, len(configs))
		for k, v := range configs {
			ptrs[k] = str(v)
		}
		res, err := adm.CreateTopic(ctx, 1, 1, ptrs, name)
		if err != nil || res.Err != nil {
			t.Fatalf("create %s: %v %v", name, err, res.Err)
		}
		rcs, err := adm.DescribeTopicConfigs(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		rc, err := rcs.On(name, nil)
		if err != nil {
			t.Fatal(err)
		}
		for _, k := range append([]string{log.ConfigCleanupPolicy}, slices.Sorted(maps.Keys(compactionDefaults))...) {
			c := findConfig(t, rc, k)
			want, src := configs[k], kmsg.ConfigSourceDynamicTopicConfig
			if _, set := configs[k]; !set {
				want, src = compactionDefaults[k], kmsg.ConfigSourceDefaultConfig
			}
			if c.MaybeValue() != want || c.Source != src {
				t.Errorf("%s: %s = %q (%s), want %q (%s)", name, k, c.MaybeValue(), c.Source, want, src)
			}
		}
	}
	if got := topicConfigs(t, b, "both"); !maps.Equal(got, both) {
		t.Errorf("stored configs %v, want %v", got, both)
	}

	for _, tc := range []struct {
		name    string
		configs map[string]*string
	}{
		{"unknown policy", map[string]*string{log.ConfigCleanupPolicy: str("compact,shred")}},
		{"empty policy", map[string]*string{log.ConfigCleanupPolicy: str("")}},
		{"ratio above 1", map[string]*string{log.ConfigMinCleanableDirtyRatio: str("1.5")}},
		{"min lag above max lag", map[string]*string{log.ConfigMinCompactionLagMs: str("2000"), log.ConfigMaxCompactionLagMs: str("1000")}},
		{"zero max lag", map[string]*string{log.ConfigMaxCompactionLagMs: str("0")}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if res, _ := adm.CreateTopic(ctx, 1, 1, tc.configs, "refused"); !errors.Is(res.Err, kerr.InvalidConfig) {
				t.Fatalf("%v, want INVALID_CONFIG", res.Err)
			}
		})
	}
}

// TestDescribeBrokerCleanerConfigs checks the broker's log.cleaner.*
// configs: Kafka's defaults with source DEFAULT_CONFIG on a default
// broker, and the started-with values as STATIC_BROKER_CONFIG.
func TestDescribeBrokerCleanerConfigs(t *testing.T) {
	describe := func(b *testBroker) kadm.ResourceConfig {
		t.Helper()
		rcs, err := b.admin().DescribeBrokerConfigs(testCtx(t), 1)
		if err != nil {
			t.Fatal(err)
		}
		rc, err := rcs.On("1", nil)
		if err != nil {
			t.Fatal(err)
		}
		return rc
	}
	check := func(rc kadm.ResourceConfig, want map[string]string, src kmsg.ConfigSource) {
		t.Helper()
		for k, v := range want {
			if c := findConfig(t, rc, k); c.MaybeValue() != v || c.Source != src {
				t.Errorf("%s = %q (%s), want %q (%s)", k, c.MaybeValue(), c.Source, v, src)
			}
		}
	}
	def := map[string]string{
		"log.cleaner.enable":                  "true",
		"log.cleaner.dedupe.buffer.size":      "134217728",
		"log.cleaner.io.max.bytes.per.second": "1.7976931348623157E308",
		"log.cleaner.backoff.ms":              "15000",
	}
	for k, v := range compactionDefaults {
		def[topicConfigInfos[k].broker] = v
	}
	check(describe(newTestBroker(t, nil)), def, kmsg.ConfigSourceDefaultConfig)

	b := newTestBroker(t, func(c *Config) {
		c.Cleaner = log.CleanerConfig{Disabled: true, DedupeBufferBytes: 1 << 20, IOBytesPerSecond: 5_000_000, Interval: 2 * time.Second}
	})
	check(describe(b), map[string]string{
		"log.cleaner.enable":                  "false",
		"log.cleaner.dedupe.buffer.size":      "1048576",
		"log.cleaner.io.max.bytes.per.second": "5000000",
		"log.cleaner.backoff.ms":              "2000",
	}, kmsg.ConfigSourceStaticBrokerConfig)
}

// TestAlterCleanupPolicy turns a delete topic into a compacted one and
// back with IncrementalAlterConfigs' list operations, and checks the
// compaction lags are validated together.
func TestAlterCleanupPolicy(t *testing.T) {
	b := newTestBroker(t, nil)
	b.createTopic("flip", 1, nil)
	adm := b.admin()
	ctx := testCtx(t)
	alter := func(ops ...kadm.AlterConfig) error {
		t.Helper()
		resp, err := adm.AlterTopicConfigs(ctx, ops, "flip")
		if err != nil {
			t.Fatal(err)
		}
		return resp[0].Err
	}
	policy := func() string {
		t.Helper()
		rcs, err := adm.DescribeTopicConfigs(ctx, "flip")
		if err != nil {
			t.Fatal(err)
		}
		rc, err := rcs.On("flip", nil)
		if err != nil {
			t.Fatal(err)
		}
		c := findConfig(t, rc, log.ConfigCleanupPolicy)
		return c.MaybeValue()
	}
	steps := []struct {
		name string
		op   kadm.AlterConfig
		want error
		then string
	}{
		{"append compact to the default", kadm.AlterConfig{Op: kadm.AppendConfig, Name: log.ConfigCleanupPolicy, Value: str("compact")}, nil, "delete,compact"},
		{"append compact again", kadm.AlterConfig{Op: kadm.AppendConfig, Name: log.ConfigCleanupPolicy, Value: str("compact")}, nil, "delete,compact"},
		{"subtract delete", kadm.AlterConfig{Op: kadm.SubtractConfig, Name: log.ConfigCleanupPolicy, Value: str("delete")}, nil, "compact"},
		{"subtract to empty", kadm.AlterConfig{Op: kadm.SubtractConfig, Name: log.ConfigCleanupPolicy, Value: str("compact")}, kerr.InvalidConfig, "compact"},
		{"append an unknown policy", kadm.AlterConfig{Op: kadm.AppendConfig, Name: log.ConfigCleanupPolicy, Value: str("shred")}, kerr.InvalidConfig, "compact"},
		{"set both", kadm.AlterConfig{Op: kadm.SetConfig, Name: log.ConfigCleanupPolicy, Value: str("compact,delete")}, nil, "compact,delete"},
	}
	for _, s := range steps {
		if err := alter(s.op); !errors.Is(err, s.want) {
			t.Fatalf("%s: err %v, want %v", s.name, err, s.want)
		}
		if got := policy(); got != s.then {
			t.Fatalf("%s: cleanup.policy %q, want %q", s.name, got, s.then)
		}
	}

	minLag := func(v string) kadm.AlterConfig {
		return kadm.AlterConfig{Op: kadm.SetConfig, Name: log.ConfigMinCompactionLagMs, Value: str(v)}
	}
	maxLag := func(v string) kadm.AlterConfig {
		return kadm.AlterConfig{Op: kadm.SetConfig, Name: log.ConfigMaxCompactionLagMs, Value: str(v)}
	}
	if err := alter(minLag("2000"), maxLag("1000")); !errors.Is(err, kerr.InvalidConfig) {
		t.Fatalf("min lag above max lag in one request: %v, want INVALID_CONFIG", err)
	}
	if err := alter(maxLag("1000")); err != nil {
		t.Fatal(err)
	}
	if err := alter(minLag("2000")); !errors.Is(err, kerr.InvalidConfig) {
		t.Fatalf("min lag above the topic's max lag: %v, want INVALID_CONFIG", err)
	}
	want := map[string]string{log.ConfigCleanupPolicy: "compact,delete", log.ConfigMaxCompactionLagMs: "1000"}
	if got := topicConfigs(t, b, "flip"); !maps.Equal(got, want) {
		t.Fatalf("configs %v, want %v", got, want)
	}
}
