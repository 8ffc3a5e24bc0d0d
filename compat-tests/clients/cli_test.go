package clients

import (
	"context"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/streamhouse/streamhouse/compat-tests/harness"
)

// Main classes of Apache Kafka 4.4.0's CLI tools (bin/kafka-*.sh run these).
const (
	topicCommand    = "org.apache.kafka.tools.TopicCommand"             // kafka-topics.sh
	consoleProducer = "org.apache.kafka.tools.ConsoleProducer"          // kafka-console-producer.sh
	consoleConsumer = "org.apache.kafka.tools.consumer.ConsoleConsumer" // kafka-console-consumer.sh
	perfTest        = "org.apache.kafka.tools.ProducerPerformance"      // kafka-producer-perf-test.sh
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
