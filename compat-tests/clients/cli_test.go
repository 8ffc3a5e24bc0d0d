package clients

import (
	"context"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/streamhouse/streamhouse/compat-tests/harness"
)

// Main classes of Apache Kafka 4.4.0's CLI tools (bin/kafka-*.sh run these).
const (
	topicCommand    = "org.apache.kafka.tools.TopicCommand"                        // kafka-topics.sh
	consoleProducer = "org.apache.kafka.tools.ConsoleProducer"                     // kafka-console-producer.sh
	consoleConsumer = "org.apache.kafka.tools.consumer.ConsoleConsumer"            // kafka-console-consumer.sh
	perfTest        = "org.apache.kafka.tools.ProducerPerformance"                 // kafka-producer-perf-test.sh
	groupCommand    = "org.apache.kafka.tools.consumer.group.ConsumerGroupCommand" // kafka-consumer-groups.sh
	configCommand   = "org.apache.kafka.tools.ConfigCommand"                       // kafka-configs.sh
	cliTimeout      = 2 * time.Minute
)

// TestKafkaTopicsCLI: kafka-topics --create, --list, --delete.
func TestKafkaTopicsCLI(t *testing.T) {
	b := harness.Start(t)
	topic := harness.Topic(t)
	bs := []string{"--bootstrap-server", b.Bootstrap()}
	out := harness.Java(t, cliTimeout, "", nil, topicCommand, append(bs, "--create", "--topic", topic,
		"--partitions", "3", "--replication-factor", "1")...)
	if !strings.Contains(out, "Created topic "+topic) {
		t.Errorf("create said %q", out)
	}
	harness.WaitTopic(t, b, topic, 3)
	out = harness.Java(t, cliTimeout, "", nil, topicCommand, append(bs, "--list")...)
	if !containsLine(out, topic) {
		t.Errorf("--list printed %q, want a line %q", out, topic)
	}
	harness.Java(t, cliTimeout, "", nil, topicCommand, append(bs, "--delete", "--topic", topic)...)
	harness.Eventually(t, 30*time.Second, func() error {
		out := harness.Java(t, cliTimeout, "", nil, topicCommand, append(bs, "--list")...)
		if containsLine(out, topic) {
			return fmt.Errorf("%s still listed after --delete", topic)
		}
		return nil
	})
}

// TestKafkaTopicsDescribeCLI: kafka-topics --describe, which also asks for
// the topic's configuration (DescribeConfigs).
func TestKafkaTopicsDescribeCLI(t *testing.T) {
	b := harness.Start(t)
	topic := harness.Topic(t)
	harness.CreateTopic(t, b, topic, 3)
	out := harness.Java(t, cliTimeout, "", nil, topicCommand, "--bootstrap-server", b.Bootstrap(),
		"--describe", "--topic", topic)
	if !strings.Contains(out, "PartitionCount: 3") || !strings.Contains(out, "ReplicationFactor: 1") {
		t.Errorf("--describe printed %q, want PartitionCount: 3, ReplicationFactor: 1", out)
	}
	for p := 0; p < 3; p++ {
		if !regexp.MustCompile(fmt.Sprintf(`Partition: %d\s+Leader: \d+`, p)).MatchString(out) {
			t.Errorf("--describe printed %q, want partition %d with a leader", out, p)
		}
	}
}

// TestKafkaConfigsCompactedCLI: kafka-topics --create of a compacted topic
// with compaction configs (--config), then --describe after each change:
// kafka-configs --alter --add-config 'cleanup.policy=[compact,delete]' (a
// list value), --alter --delete-config min.compaction.lag.ms (back to its
// default), and an invalid --add-config, which must fail and change nothing.
// kafka-configs --describe must list exactly the topic's overrides. Of the
// cleanup and compaction configs, kafka-topics --describe (which prints the
// configs not reported as defaults) must list exactly the overrides too;
// others may be there (Apache Kafka's KRaft sets min.insync.replicas for the
// cluster). kafka-configs --describe --all must show Kafka's defaults for
// those not overridden: max.compaction.lag.ms, and min.compaction.lag.ms
// once its override is deleted.
func TestKafkaConfigsCompactedCLI(t *testing.T) {
	b := harness.Start(t)
	topic := harness.Topic(t)
	bs := []string{"--bootstrap-server", b.Bootstrap()}
	entity := slices.Concat(bs, []string{"--entity-type", "topics", "--entity-name", topic})
	want := map[string]string{"cleanup.policy": "compact", "min.compaction.lag.ms": "60000",
		"min.cleanable.dirty.ratio": "0.1", "delete.retention.ms": "5000"}
	create := slices.Concat(bs, []string{"--create", "--topic", topic, "--partitions", "1", "--replication-factor", "1"})
	for _, k := range slices.Sorted(maps.Keys(want)) {
		create = append(create, "--config", k+"="+want[k])
	}
	if out := harness.Java(t, cliTimeout, "", nil, topicCommand, create...); !strings.Contains(out, "Created topic "+topic) {
		t.Errorf("create said %q", out)
	}
	harness.WaitTopic(t, b, topic, 1)
	describe := func(step string) {
		t.Helper()
		out := harness.Java(t, cliTimeout, "", nil, topicCommand, slices.Concat(bs, []string{"--describe", "--topic", topic})...)
		printed := parseTopicsConfigs(t, out)
		if got := filterKeys(printed, compactionConfigs); !maps.Equal(got, want) {
			t.Errorf("%s: kafka-topics --describe printed cleanup and compaction configs %v, want %v:\n%s", step, got, want, out)
		}
		if others := filterKeys(printed, func(k string) bool { return !compactionConfigs(k) }); len(others) > 0 {
			t.Logf("%s: kafka-topics --describe also printed %v", step, others)
		}
		out = harness.Java(t, cliTimeout, "", nil, configCommand, slices.Concat(entity, []string{"--describe"})...)
		if got := parseConfigsDescribe(out); !maps.Equal(got, want) {
			t.Errorf("%s: kafka-configs --describe printed %v, want %v:\n%s", step, got, want, out)
		}
	}
	describe("after --create")

	alter := func(args ...string) {
		t.Helper()
		out := harness.Java(t, cliTimeout, "", nil, configCommand, slices.Concat(entity, []string{"--alter"}, args)...)
		if !strings.Contains(out, "Completed updating config for topic "+topic) {
			t.Errorf("kafka-configs --alter %v said %q", args, out)
		}
	}
	alter("--add-config", "cleanup.policy=[compact,delete]")
	want["cleanup.policy"] = "compact,delete"
	describe("after --add-config cleanup.policy=[compact,delete]")

	alter("--delete-config", "min.compaction.lag.ms")
	delete(want, "min.compaction.lag.ms")
	describe("after --delete-config min.compaction.lag.ms")
	out := harness.Java(t, cliTimeout, "", nil, configCommand, slices.Concat(entity, []string{"--describe", "--all"})...)
	all := parseConfigsDescribe(out)
	for k, v := range map[string]string{"min.compaction.lag.ms": "0", "max.compaction.lag.ms": "9223372036854775807"} {
		if all[k] != v {
			t.Errorf("kafka-configs --describe --all: %s=%q, want Kafka's default %s", k, all[k], v)
		}
	}

	stdout, stderr, err := harness.JavaErr(t, cliTimeout, "", nil, configCommand,
		slices.Concat(entity, []string{"--alter", "--add-config", "cleanup.policy=bogus"})...)
	if err == nil || !strings.Contains(stderr, "InvalidConfigurationException") {
		t.Errorf("--add-config cleanup.policy=bogus: %v; stdout %q, stderr %q; want a failure with InvalidConfigurationException", err, stdout, clipLines(stderr, 5))
	}
	describe("after the invalid --add-config")
}

// compactionConfigs reports whether key is cleanup.policy or one of the
// topic configs of compaction.
func compactionConfigs(key string) bool {
	switch key {
	case "cleanup.policy", "min.cleanable.dirty.ratio", "min.compaction.lag.ms", "max.compaction.lag.ms",
		"delete.retention.ms":
		return true
	}
	return false
}

// filterKeys returns the entries of m whose keys keep accepts.
func filterKeys(m map[string]string, keep func(string) bool) map[string]string {
	out := map[string]string{}
	for k, v := range m {
		if keep(k) {
			out[k] = v
		}
	}
	return out
}

// parseTopicsConfigs parses the "Configs:" field of kafka-topics --describe's
// topic line: key=value pairs separated by commas, where a list value
// (cleanup.policy=compact,delete) has commas too.
func parseTopicsConfigs(t *testing.T, out string) map[string]string {
	t.Helper()
	got := map[string]string{}
	for _, line := range strings.Split(out, "\n") {
		_, cfgs, ok := strings.Cut(line, "Configs:")
		if !ok || strings.Contains(line, "Partition: ") {
			continue
		}
		last := ""
		for _, kv := range strings.Split(strings.TrimSpace(cfgs), ",") {
			if k, v, ok := strings.Cut(kv, "="); ok {
				got[k], last = v, k
			} else if last != "" {
				got[last] += "," + kv
			}
		}
		return got
	}
	t.Fatalf("kafka-topics --describe printed no Configs: field:\n%s", out)
	return nil
}

// parseConfigsDescribe parses kafka-configs --describe: lines
// "  key=value sensitive=false synonyms={...}".
func parseConfigsDescribe(out string) map[string]string {
	got := map[string]string{}
	for _, line := range strings.Split(out, "\n") {
		kv, _, ok := strings.Cut(strings.TrimSpace(line), " sensitive=")
		if k, v, ok2 := strings.Cut(kv, "="); ok && ok2 {
			got[k] = v
		}
	}
	return got
}

// clipLines keeps the first n lines of s.
func clipLines(s string, n int) string {
	lines := strings.SplitN(s, "\n", n+1)
	return strings.Join(lines[:min(n, len(lines))], "\n")
}

func containsLine(out, line string) bool {
	for _, l := range strings.Split(out, "\n") {
		if strings.TrimSpace(l) == line {
			return true
		}
	}
	return false
}

// TestConsoleProducer: kafka-console-producer with keys and headers parsed
// from each line, in every codec, idempotent (its default); franz-go reads back.
func TestConsoleProducer(t *testing.T) {
	b := harness.Start(t)
	for _, codec := range codecs {
		t.Run(codec, func(t *testing.T) {
			topic := harness.Topic(t)
			harness.CreateTopic(t, b, topic, 1)
			want := harness.Records(50, 1, "console-"+codec, time.Now())
			var in strings.Builder
			for _, r := range want {
				fmt.Fprintf(&in, "idx:%s,tag:%s\t%s\t%s\n", r.Headers[0].Value, r.Headers[1].Value, r.Key, r.Value)
			}
			from := time.Now().UnixMilli()
			harness.Java(t, cliTimeout, in.String(), nil, consoleProducer, "--bootstrap-server", b.Bootstrap(),
				"--topic", topic, "--compression-codec", codec, "--property", "parse.key=true",
				"--property", "parse.headers=true", "--producer-property", "acks=all",
				"--producer-property", "enable.idempotence=true")
			to := time.Now().UnixMilli()
			got := harness.Consume(t, b, topic, len(want))
			harness.CheckRecords(t, got, want, harness.Check{TimestampsBetween: &[2]int64{from, to}})
		})
	}
}

// TestConsoleConsumer: kafka-console-consumer --partition --offset earliest
// (no group) printing partition, offset, timestamp, headers, key and value.
func TestConsoleConsumer(t *testing.T) {
	b := harness.Start(t)
	topic := harness.Topic(t)
	harness.CreateTopic(t, b, topic, 2)
	want := harness.Records(40, 2, "console-consumer", time.Now())
	harness.Produce(t, b, topic, want)
	out := harness.Java(t, cliTimeout, "", nil, consoleConsumer, consoleFormatArgs(b, topic, "20",
		"--partition", "1", "--offset", "earliest")...)
	harness.CheckRecords(t, parseConsole(t, out), partitionFrom(want, 1, 0), harness.Check{})

	out = harness.Java(t, cliTimeout, "", nil, consoleConsumer, consoleFormatArgs(b, topic, "5",
		"--partition", "0", "--offset", "15")...)
	harness.CheckRecords(t, parseConsole(t, out), partitionFrom(want, 0, 15), harness.Check{StartOffset: 15})
}

// TestConsoleConsumerGroup: kafka-console-consumer --group --from-beginning.
func TestConsoleConsumerGroup(t *testing.T) {
	b := harness.Start(t)
	topic := harness.Topic(t)
	harness.CreateTopic(t, b, topic, 2)
	want := harness.Records(40, 2, "console-group", time.Now())
	harness.Produce(t, b, topic, want)
	out := harness.Java(t, cliTimeout, "", nil, consoleConsumer, consoleFormatArgs(b, topic, "40",
		"--group", "g-"+topic, "--from-beginning")...)
	harness.CheckRecords(t, parseConsole(t, out), want, harness.Check{})
}

func consoleFormatArgs(b harness.Broker, topic, max string, extra ...string) []string {
	args := []string{"--bootstrap-server", b.Bootstrap(), "--topic", topic, "--max-messages", max,
		"--timeout-ms", "60000",
		"--formatter-property", "print.timestamp=true", "--formatter-property", "print.partition=true",
		"--formatter-property", "print.offset=true", "--formatter-property", "print.headers=true",
		"--formatter-property", "print.key=true", "--formatter-property", "print.value=true"}
	return append(args, extra...)
}

// parseConsole parses DefaultMessageFormatter lines:
// CreateTime:TS \t Partition:P \t Offset:O \t h1:v1,h2:v2 \t KEY \t VALUE
func parseConsole(t *testing.T, out string) []harness.Record {
	t.Helper()
	var recs []harness.Record
	for _, line := range strings.Split(strings.TrimRight(out, "\n"), "\n") {
		f := strings.Split(line, "\t")
		if len(f) != 6 || !strings.HasPrefix(f[0], "CreateTime:") {
			if strings.TrimSpace(line) != "" && !strings.HasPrefix(line, "Processed a total") {
				t.Errorf("unexpected console consumer line %q", line)
			}
			continue
		}
		var r harness.Record
		r.Timestamp, _ = strconv.ParseInt(strings.TrimPrefix(f[0], "CreateTime:"), 10, 64)
		p, _ := strconv.Atoi(strings.TrimPrefix(f[1], "Partition:"))
		r.Partition = int32(p)
		r.Offset, _ = strconv.ParseInt(strings.TrimPrefix(f[2], "Offset:"), 10, 64)
		if f[3] != "NO_HEADERS" {
			for _, kv := range strings.Split(f[3], ",") {
				k, v, _ := strings.Cut(kv, ":")
				r.Headers = append(r.Headers, harness.Header{Key: k, Value: v})
			}
		}
		r.Key, r.Value = f[4], f[5]
		recs = append(recs, r)
	}
	return recs
}

// TestProducerPerfTest: kafka-producer-perf-test, bounded: 20,000 records of
// 100 bytes, acks=all; the end offsets must add up to exactly that many.
func TestProducerPerfTest(t *testing.T) {
	b := harness.Start(t)
	topic := harness.Topic(t)
	harness.CreateTopic(t, b, topic, 4)
	const n = 20000
	out := harness.Java(t, cliTimeout, "", nil, perfTest, "--topic", topic, "--num-records", strconv.Itoa(n),
		"--record-size", "100", "--throughput", "-1", "--producer-props", "bootstrap.servers="+b.Bootstrap(),
		"acks=all", "compression.type=lz4", "linger.ms=5")
	if !strings.Contains(out, fmt.Sprintf("%d records sent", n)) {
		t.Fatalf("perf test printed %q, want %d records sent", out, n)
	}
	adm := kadm.NewClient(harness.Client(t, b))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	end, err := adm.ListEndOffsets(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	var total int64
	end.Each(func(o kadm.ListedOffset) { total += o.Offset })
	if total != n {
		t.Errorf("end offsets add up to %d, want %d", total, n)
	}
	if got := len(harness.Consume(t, b, topic, n)); got != n {
		t.Errorf("read %d records back, want %d", got, n)
	}
}

// TestConsumerGroupsDescribeCLI: kafka-consumer-groups --list, --describe,
// --describe --members and --describe --state while a franz-go group member
// (cooperative-sticky, its default) is active. The member read 10 records of
// each of 3 partitions and committed; then 1, 2 and 3 more records went to
// partitions 0, 1 and 2, so the tool must show CURRENT-OFFSET 10,
// LOG-END-OFFSET 11, 12, 13 and LAG 1, 2, 3, with the member's consumer ID,
// client ID and host; --state shows the group Stable with one member, its
// assignor and the coordinator's address.
func TestConsumerGroupsDescribeCLI(t *testing.T) {
	b := harness.Start(t)
	topic := harness.Topic(t)
	harness.CreateTopic(t, b, topic, 3)
	first := harness.Records(30, 3, "cli-group", time.Now())
	harness.Produce(t, b, topic, first)
	group, clientID := "g-"+topic, "compat-cli-member"
	cl := harness.Client(t, b, kgo.ConsumerGroup(group), kgo.ConsumeTopics(topic), kgo.ClientID(clientID),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.DisableAutoCommit(),
		kgo.FetchMaxWait(200*time.Millisecond))
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var got []harness.Record
	for len(got) < len(first) && ctx.Err() == nil {
		fs := cl.PollFetches(ctx)
		for _, fe := range fs.Errors() {
			if ctx.Err() == nil {
				t.Fatalf("group fetch %s[%d]: %v", fe.Topic, fe.Partition, fe.Err)
			}
		}
		fs.EachRecord(func(r *kgo.Record) { got = append(got, harness.FromKgo(r)) })
	}
	if len(got) < len(first) {
		t.Fatalf("group member read %d records within 60s, want %d", len(got), len(first))
	}
	harness.CheckRecords(t, got, first, harness.Check{})
	if err := cl.CommitUncommittedOffsets(ctx); err != nil {
		t.Fatalf("commit: %v", err)
	}
	var more []harness.Record
	for p := int32(0); p < 3; p++ {
		for i := int32(0); i <= p; i++ {
			r := harness.Records(1, 1, fmt.Sprintf("cli-group-more-%d-%d", p, i), time.Now())[0]
			r.Partition = p
			more = append(more, r)
		}
	}
	harness.Produce(t, b, topic, more)
	memberID := waitStableMember(t, b, group, topic, cl)

	bs := []string{"--bootstrap-server", b.Bootstrap()}
	if out := harness.Java(t, cliTimeout, "", nil, groupCommand, append(bs, "--list")...); !containsLine(out, group) {
		t.Errorf("--list printed %q, want a line %q", out, group)
	}
	out := harness.Java(t, cliTimeout, "", nil, groupCommand, append(bs, "--describe", "--group", group)...)
	t.Logf("--describe --group %s:\n%s", group, out)
	rows := parseCLITable(out)
	if len(rows) != 3 {
		t.Fatalf("--describe printed %q: %d partition rows, want 3", out, len(rows))
	}
	for _, r := range rows {
		p, _ := strconv.Atoi(r["PARTITION"])
		want := map[string]string{"GROUP": group, "TOPIC": topic, "CURRENT-OFFSET": "10",
			"LOG-END-OFFSET": strconv.Itoa(11 + p), "LAG": strconv.Itoa(1 + p),
			"CONSUMER-ID": memberID, "HOST": "/127.0.0.1", "CLIENT-ID": clientID}
		for col, w := range want {
			if r[col] != w {
				t.Errorf("--describe partition %d: %s %q, want %q (row %v)", p, col, r[col], w, r)
			}
		}
	}
	out = harness.Java(t, cliTimeout, "", nil, groupCommand, append(bs, "--describe", "--group", group, "--members")...)
	t.Logf("--describe --group %s --members:\n%s", group, out)
	rows = parseCLITable(out)
	want := map[string]string{"GROUP": group, "CONSUMER-ID": memberID, "HOST": "/127.0.0.1",
		"CLIENT-ID": clientID, "#PARTITIONS": "3"}
	if len(rows) != 1 {
		t.Fatalf("--describe --members printed %q: %d member rows, want 1", out, len(rows))
	}
	for col, w := range want {
		if rows[0][col] != w {
			t.Errorf("--describe --members: %s %q, want %q (row %v)", col, rows[0][col], w, rows[0])
		}
	}
	// --state: "COORDINATOR (ID)" is two words in the header and in the row.
	out = harness.Java(t, cliTimeout, "", nil, groupCommand, append(bs, "--describe", "--group", group, "--state")...)
	t.Logf("--describe --group %s --state:\n%s", group, out)
	rows = parseCLITable(out)
	want = map[string]string{"GROUP": group, "COORDINATOR": b.Bootstrap(),
		"ASSIGNMENT-STRATEGY": "cooperative-sticky", "STATE": "Stable", "#MEMBERS": "1"}
	if len(rows) != 1 {
		t.Fatalf("--describe --state printed %q: %d rows, want 1", out, len(rows))
	}
	for col, w := range want {
		if rows[0][col] != w {
			t.Errorf("--describe --state: %s %q, want %q (row %v)", col, rows[0][col], w, rows[0])
		}
	}
}

// waitStableMember polls DescribeGroups until group is Stable with one member,
// cl's, assigned all 3 partitions of topic, and returns its member ID.
func waitStableMember(t *testing.T, b harness.Broker, group, topic string, cl *kgo.Client) string {
	t.Helper()
	adm := kadm.NewClient(harness.Client(t, b))
	var memberID string
	harness.Eventually(t, 30*time.Second, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		ds, err := adm.DescribeGroups(ctx, group)
		if err != nil {
			return err
		}
		d := ds[group]
		id, _ := cl.GroupMetadata()
		if d.Err != nil || d.State != "Stable" || len(d.Members) != 1 || d.Members[0].MemberID != id {
			return fmt.Errorf("group %s: state %q, err %v, %d members; want Stable with member %q", group, d.State, d.Err, len(d.Members), id)
		}
		if ps := d.AssignedPartitions()[topic]; len(ps) != 3 {
			return fmt.Errorf("group %s: assigned %v, want 3 partitions of %s", group, d.AssignedPartitions(), topic)
		}
		memberID = id
		return nil
	})
	return memberID
}

// parseCLITable parses the whitespace-aligned tables kafka-consumer-groups
// prints: a header line starting with GROUP names the columns of the rows
// below it (values have no spaces). Other lines are ignored.
func parseCLITable(out string) []map[string]string {
	var cols []string
	var rows []map[string]string
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		switch {
		case len(f) == 0:
			cols = nil
		case f[0] == "GROUP":
			cols = f
		case cols != nil && len(f) == len(cols):
			r := map[string]string{}
			for i, c := range cols {
				r[c] = f[i]
			}
			rows = append(rows, r)
		}
	}
	return rows
}
