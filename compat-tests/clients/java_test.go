package clients

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/streamhouse/streamhouse/compat-tests/harness"
)

// javaClasses holds every source under ../java/src (Compat, WordCount, the
// compat.Seq* connectors and their ServiceLoader manifests) compiled once
// per test binary.
var javaClasses struct {
	once sync.Once
	dir  string
	err  error
}

// javaClassDir compiles ../java/src once (against Kafka 4.4.0's jars) and
// returns the directory of the classes, for the classpath.
func javaClassDir(t *testing.T) string {
	t.Helper()
	javaClasses.once.Do(func() {
		javaClasses.dir, javaClasses.err = compileJava()
	})
	if javaClasses.err != nil {
		t.Fatal(javaClasses.err)
	}
	return javaClasses.dir
}

func compileJava() (string, error) {
	mod, err := harness.ModuleDir()
	if err != nil {
		return "", err
	}
	jars, err := harness.KafkaJars()
	if err != nil {
		return "", err
	}
	dir, err := harness.TempDir("compat-java-")
	if err != nil {
		return "", err
	}
	// Sources go to javac; other files (META-INF/services, for Connect's
	// plugin discovery) are copied beside the classes.
	root := filepath.Join(mod, "java", "src")
	var srcs []string
	err = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		if strings.HasSuffix(p, ".java") {
			srcs = append(srcs, p)
			return nil
		}
		rel, err := filepath.Rel(root, p)
		if err != nil {
			return err
		}
		b, err := os.ReadFile(p)
		if err == nil {
			err = os.MkdirAll(filepath.Dir(filepath.Join(dir, rel)), 0o755)
		}
		if err == nil {
			err = os.WriteFile(filepath.Join(dir, rel), b, 0o644)
		}
		return err
	})
	if err != nil {
		return "", err
	}
	args := append([]string{"-nowarn", "-d", dir, "-cp", filepath.Join(jars, "*")}, srcs...)
	if _, stderr, err := harness.RunErr(2*time.Minute, "", mod, "javac", args...); err != nil {
		return "", fmt.Errorf("javac %s: %v\n%s", strings.Join(srcs, " "), err, stderr)
	}
	return dir, nil
}

// javaCompat runs the Compat program (kafka-clients 4.4.0) and returns its
// records and events.
func javaCompat(t *testing.T, stdin string, args ...string) ([]harness.Record, []map[string]any) {
	t.Helper()
	out := harness.Java(t, 2*time.Minute, stdin, []string{javaClassDir(t)}, "Compat", args...)
	return harness.ParseJSONLines(t, out)
}

// TestJavaProducer: KafkaProducer with enable.idempotence=true, acks=all,
// in every codec; franz-go reads the records back.
func TestJavaProducer(t *testing.T) {
	b := harness.Start(t)
	for _, codec := range codecs {
		t.Run(codec, func(t *testing.T) {
			topic := harness.Topic(t)
			harness.CreateTopic(t, b, topic, 3)
			want := harness.Records(60, 3, "java-"+codec, time.Now())
			_, events := javaCompat(t, harness.JSONLines(want), "produce", b.Bootstrap(), topic, codec)
			harness.CheckAcks(t, events, want)
			harness.CheckRecords(t, harness.Consume(t, b, topic, len(want)), want, harness.Check{})
		})
	}
}

// TestJavaAssignConsumer: KafkaConsumer with assign + seekToBeginning, and
// assign + seek to an offset, on records franz-go produced.
func TestJavaAssignConsumer(t *testing.T) {
	b := harness.Start(t)
	topic := harness.Topic(t)
	harness.CreateTopic(t, b, topic, 3)
	want := harness.Records(90, 3, "java-consume", time.Now())
	harness.Produce(t, b, topic, want)
	got, _ := javaCompat(t, "", "consume", b.Bootstrap(), topic, "3", strconv.Itoa(len(want)))
	harness.CheckRecords(t, got, want, harness.Check{})

	got, _ = javaCompat(t, "", "consume", b.Bootstrap(), topic, "3", "10", "2:20")
	harness.CheckRecords(t, got, partitionFrom(want, 2, 20), harness.Check{StartOffset: 20})
}

// partitionFrom returns the records of partition p from its offset-th on.
func partitionFrom(recs []harness.Record, p int32, offset int) []harness.Record {
	var out []harness.Record
	for _, r := range recs {
		if r.Partition == p {
			out = append(out, r)
		}
	}
	return out[offset:]
}

// TestJavaListOffsets: beginningOffsets, endOffsets and offsetsForTimes.
func TestJavaListOffsets(t *testing.T) {
	b := harness.Start(t)
	topic := harness.Topic(t)
	harness.CreateTopic(t, b, topic, 2)
	base := time.Now().Add(-time.Hour)
	harness.Produce(t, b, topic, harness.Records(40, 2, "java-offsets", base))
	_, events := javaCompat(t, "", "offsets", b.Bootstrap(), topic, "2", strconv.FormatInt(base.UnixMilli()+20, 10))
	offs := harness.Events(events, "offsets")
	if len(offs) != 2 {
		t.Fatalf("%d offsets events, want 2: %v", len(offs), events)
	}
	for _, e := range offs {
		// Record 20 (partition 0, offset 10) is the first at base+20 ms; in
		// partition 1 it is record 21 (offset 10) at base+21 ms.
		p := harness.Num(e, "p")
		if harness.Num(e, "earliest") != 0 || harness.Num(e, "latest") != 20 || harness.Num(e, "by_ts") != 10 ||
			harness.Num(e, "by_ts_timestamp") != base.UnixMilli()+20+p {
			t.Errorf("partition %d: %v; want earliest 0, latest 20, by_ts 10 at %d", p, e, base.UnixMilli()+20+p)
		}
	}
}

// TestJavaAdmin: Admin createTopics, listTopics, describeTopics,
// describeCluster, deleteTopics.
func TestJavaAdmin(t *testing.T) {
	b := harness.Start(t)
	topic := harness.Topic(t)
	_, events := javaCompat(t, "", "admin", b.Bootstrap(), topic, "5")
	want := []string{"created", "listed", "described", "cluster", "deleted", "listed_after_delete"}
	if len(events) != len(want) {
		t.Fatalf("events %v, want ops %v", events, want)
	}
	for i, op := range want {
		if events[i]["op"] != op {
			t.Errorf("event %d: %v, want op %s", i, events[i], op)
		}
	}
	if events[1]["found"] != true || events[5]["found"] != false {
		t.Errorf("listed %v before delete, %v after; want true, false", events[1]["found"], events[5]["found"])
	}
	d := events[2]
	if harness.Num(d, "partitions") != 5 || harness.Num(d, "leaders") != 5 || d["topic_id"] == "AAAAAAAAAAAAAAAAAAAAAA" {
		t.Errorf("described %v; want 5 partitions with leaders and a topic ID", d)
	}
	if c := events[3]; harness.Num(c, "brokers") != 1 || c["cluster_id"] == "" {
		t.Errorf("cluster %v; want 1 broker and a cluster ID", c)
	}
}

// TestJavaGroupConsumer: KafkaConsumer.subscribe in a consumer group, then
// commitSync; the committed offsets must add up to the records read.
func TestJavaGroupConsumer(t *testing.T) {
	b := harness.Start(t)
	topic := harness.Topic(t)
	harness.CreateTopic(t, b, topic, 3)
	want := harness.Records(30, 3, "java-group", time.Now())
	harness.Produce(t, b, topic, want)
	got, events := javaCompat(t, "", "group", b.Bootstrap(), topic, strconv.Itoa(len(want)), "g-"+topic)
	harness.CheckRecords(t, got, want, harness.Check{})
	c := harness.Events(events, "consumed")
	if len(c) != 1 || harness.Num(c[0], "committed_total") != int64(len(want)) {
		t.Errorf("consumed events %v; want committed offsets adding up to %d", c, len(want))
	}
}
