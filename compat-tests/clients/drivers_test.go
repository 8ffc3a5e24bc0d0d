package clients

import (
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/streamhouse/streamhouse/compat-tests/harness"
)

// A driver is a client program of another language that speaks the JSON
// lines protocol of ../java/src/Compat.java: produce, consume, offsets,
// admin and group modes. run returns its records and events.
type driver struct {
	name string
	run  func(t *testing.T, stdin string, args ...string) ([]harness.Record, []map[string]any)
}

// scriptDriver runs an interpreter (the venv's python, node) on a script
// of the module.
func scriptDriver(name, interpreter, script string) driver {
	return driver{name: name, run: func(t *testing.T, stdin string, args ...string) ([]harness.Record, []map[string]any) {
		t.Helper()
		mod, err := harness.ModuleDir()
		if err != nil {
			t.Fatal(err)
		}
		argv := append([]string{filepath.Join(mod, script)}, args...)
		out, errOut, err := harness.RunErr(2*time.Minute, stdin, mod, harness.Tool(t, interpreter), argv...)
		if errOut != "" {
			t.Logf("%s stderr:\n%s", name, errOut)
		}
		if err != nil {
			t.Fatalf("%s %v: %v\nstdout:\n%s", name, args, err, out)
		}
		return harness.ParseJSONLines(t, out)
	}}
}

// testDriverProduce: the driver produces to 3 partitions in each codec
// (idempotent, acks=all); every ack is checked, franz-go reads back.
func testDriverProduce(t *testing.T, d driver, codecs []string) {
	b := harness.Start(t)
	for _, codec := range codecs {
		t.Run(codec, func(t *testing.T) {
			topic := harness.Topic(t)
			harness.CreateTopic(t, b, topic, 3)
			want := harness.Records(60, 3, d.name+"-"+codec, time.Now())
			_, events := d.run(t, harness.JSONLines(want), "produce", b.Bootstrap(), topic, codec)
			harness.CheckAcks(t, events, want)
			harness.CheckRecords(t, harness.Consume(t, b, topic, len(want)), want, harness.Check{})
		})
	}
}

// testDriverAssignConsume: franz-go produces in each codec; the driver reads
// every partition from the beginning, then one partition from an offset.
func testDriverAssignConsume(t *testing.T, d driver, codecs []string) {
	b := harness.Start(t)
	for _, codec := range codecs {
		t.Run(codec, func(t *testing.T) {
			topic := harness.Topic(t)
			harness.CreateTopic(t, b, topic, 3)
			want := harness.Records(60, 3, d.name+"-consume-"+codec, time.Now())
			harness.Produce(t, b, topic, want, produceCodec(t, codec))
			got, _ := d.run(t, "", "consume", b.Bootstrap(), topic, "3", strconv.Itoa(len(want)))
			harness.CheckRecords(t, got, want, harness.Check{})
			got, _ = d.run(t, "", "consume", b.Bootstrap(), topic, "3", "5", "1:15")
			harness.CheckRecords(t, got, partitionFrom(want, 1, 15), harness.Check{StartOffset: 15})
		})
	}
}

// testDriverListOffsets: earliest, latest and by-timestamp offsets.
func testDriverListOffsets(t *testing.T, d driver) {
	b := harness.Start(t)
	topic := harness.Topic(t)
	harness.CreateTopic(t, b, topic, 2)
	base := time.Now().Add(-time.Hour)
	harness.Produce(t, b, topic, harness.Records(40, 2, d.name+"-offsets", base))
	_, events := d.run(t, "", "offsets", b.Bootstrap(), topic, "2", strconv.FormatInt(base.UnixMilli()+20, 10))
	offs := harness.Events(events, "offsets")
	if len(offs) != 2 {
		t.Fatalf("%d offsets events, want 2: %v", len(offs), events)
	}
	for _, e := range offs {
		if harness.Num(e, "earliest") != 0 || harness.Num(e, "latest") != 20 || harness.Num(e, "by_ts") != 10 {
			t.Errorf("%v; want earliest 0, latest 20, by_ts 10", e)
		}
	}
}

// testDriverAdmin: create, list, describe, delete, list again.
func testDriverAdmin(t *testing.T, d driver) {
	b := harness.Start(t)
	topic := harness.Topic(t)
	_, events := d.run(t, "", "admin", b.Bootstrap(), topic, "4")
	want := []string{"created", "listed", "deleted", "listed_after_delete"}
	var ops []string
	for _, e := range events {
		if e["op"] != "described" {
			ops = append(ops, e["op"].(string))
		} else if harness.Num(e, "partitions") != 4 || harness.Num(e, "error") != 0 {
			t.Errorf("described %v, want 4 partitions", e)
		}
	}
	if len(ops) != len(want) {
		t.Fatalf("events %v, want ops %v", events, want)
	}
	for i := range want {
		if ops[i] != want[i] {
			t.Fatalf("events %v, want ops %v", events, want)
		}
	}
	if ev := harness.Events(events, "listed")[0]; ev["found"] != true {
		t.Errorf("topic not listed after create: %v", ev)
	}
	if p, ok := harness.Events(events, "listed")[0]["partitions"]; ok && p != float64(4) {
		t.Errorf("listed with %v partitions, want 4", p)
	}
	if ev := harness.Events(events, "listed_after_delete")[0]; ev["found"] != false {
		t.Errorf("topic still listed after delete: %v", ev)
	}
}

// testDriverGroup: the driver consumes in a consumer group and commits; the
// committed offsets must add up to the records read. franz-go produces in codec.
func testDriverGroup(t *testing.T, d driver, codec string) {
	b := harness.Start(t)
	topic := harness.Topic(t)
	harness.CreateTopic(t, b, topic, 3)
	want := harness.Records(30, 3, d.name+"-group", time.Now())
	harness.Produce(t, b, topic, want, produceCodec(t, codec))
	got, events := d.run(t, "", "group", b.Bootstrap(), topic, strconv.Itoa(len(want)), "g-"+topic)
	harness.CheckRecords(t, got, want, harness.Check{})
	c := harness.Events(events, "consumed")
	if len(c) != 1 || harness.Num(c[0], "committed_total") != int64(len(want)) {
		t.Errorf("consumed events %v; want committed offsets adding up to %d", c, len(want))
	}
}
