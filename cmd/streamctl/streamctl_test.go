package main

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"

	pb "github.com/streamhouse/streamhouse/proto"
)

func TestTopicCommands(t *testing.T) {
	e := startBroker(t)
	out := ok(t, e.Addr, "", "topic", "create", "orders", "-p", "3", "-r", "3600000", "-c", "segment.bytes=1048576")
	wantContains(t, out, `Created topic "orders" with 3 partitions (id `)
	// Global flags work before the command too; -o json gives one object.
	out = ok(t, "unused:1", "", "-s", e.Addr, "-o", "json", "topic", "create", "audit")
	var created map[string]any
	if err := json.Unmarshal([]byte(out), &created); err != nil || created["topic"] != "audit" || created["partitions"] != 1.0 {
		t.Fatalf("create -o json: %q %v", out, err)
	}

	out = ok(t, e.Addr, "", "topic", "list")
	wantContains(t, out, "NAME", "PARTITIONS", "audit", "orders", "3600000 ms (1h0m0s)", "default", "\n2 topics\n")
	out = ok(t, e.Addr, "", "topic", "list", "-o", "json")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 2 {
		t.Fatalf("list -o json: %q", out)
	}
	for _, l := range lines {
		var obj map[string]any
		if err := json.Unmarshal([]byte(l), &obj); err != nil {
			t.Fatalf("list -o json line %q: %v", l, err)
		}
	}

	out = ok(t, e.Addr, "", "topic", "get", "orders")
	wantContains(t, out, "Topic:       orders", "Partitions:  3", "retention.ms = 3600000", "segment.bytes = 1048576")
	out = ok(t, e.Addr, "", "topic", "get", "orders", "--output", "json")
	var got map[string]any
	if err := json.Unmarshal([]byte(out), &got); err != nil || got["retention_ms"] != 3600000.0 {
		t.Fatalf("get -o json: %q %v", out, err)
	}

	wantContains(t, ok(t, e.Addr, "", "topic", "delete", "orders"), `Deleted topic "orders"`)
	r := streamctl(t, e.Addr, "", "topic", "get", "orders")
	if r.code != 1 || !strings.Contains(r.stderr, "Topic not found: orders (NOT_FOUND)") {
		t.Fatalf("get deleted topic: %+v", r)
	}
	r = streamctl(t, e.Addr, "", "topic", "create", "bad/name")
	if r.code != 1 || !strings.Contains(r.stderr, "Invalid topic name") {
		t.Fatalf("create bad name: %+v", r)
	}
	wantContains(t, ok(t, e.Addr, "", "topic", "list"), "1 topic\n")
}

func TestProduceConsume(t *testing.T) {
	e := startBroker(t)
	ok(t, e.Addr, "", "topic", "create", "t", "-p", "2")
	out := ok(t, e.Addr, "", "produce", "t", "-p", "1", "-k", "user-1", "-v", `{"name":"ada","tags":["x"]}`,
		"-H", "trace=abc", "-H", "type=json", "-t", "1700000000000")
	wantContains(t, out, "Produced 1 record to t/1 at offset 0 (timestamp 2023-11-14T22:13:20.000Z)")
	out = ok(t, e.Addr, "line one\n\nline two\r\nline three", "produce", "t", "-p", "1", "--stdin", "-b", "2")
	wantContains(t, out, "Produced 3 records to t/1 (offsets 1-3) in 2 batches")
	// A binary value produced by another client.
	if _, err := e.Client.Produce(context.Background(), &pb.ProduceRequest{Topic: "t", Partition: 1, Value: []byte{0, 1, 2, 0xff}}); err != nil {
		t.Fatal(err)
	}

	out = ok(t, e.Addr, "", "consume", "t", "-p", "1")
	wantContains(t, out,
		"Offset: 0  Timestamp: 2023-11-14T22:13:20.000Z  Key: user-1\nHeaders: trace=abc, type=json\n  {\n    \"name\": \"ada\",\n    \"tags\": [\n      \"x\"\n    ]\n  }\n",
		"Offset: 2  Timestamp: ", "  line two\n",
		"  4 bytes (binary)\n",
		"Consumed 5 records from t/1 (offsets 0-4, high watermark 5)\n")

	out = ok(t, e.Addr, "", "consume", "t", "-p", "1", "--offset", "2", "-l", "2", "-o", "json")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 2 {
		t.Fatalf("consume --offset 2 -l 2 -o json: %q", out)
	}
	var rec map[string]any
	if err := json.Unmarshal([]byte(lines[0]), &rec); err != nil || rec["offset"] != 2.0 || rec["value"] != "line two" {
		t.Fatalf("json record %q: %v", lines[0], err)
	}
	out = ok(t, e.Addr, "", "consume", "t", "-p", "1", "--offset", "4", "--output", "json")
	if err := json.Unmarshal([]byte(out), &rec); err != nil || rec["value_base64"] != "AAEC/w==" {
		t.Fatalf("binary json record %q: %v", out, err)
	}

	wantContains(t, ok(t, e.Addr, "", "consume", "t"), "No records in t/0 at offset 0 (high watermark 0)")
	r := streamctl(t, e.Addr, "", "consume", "t", "-p", "1", "--offset", "99")
	if r.code != 1 || !strings.Contains(r.stderr, "high watermark 5") || !strings.Contains(r.stderr, "OUT_OF_RANGE") {
		t.Fatalf("consume past the end: %+v", r)
	}
	r = streamctl(t, e.Addr, "", "produce", "nope", "-v", "x")
	if r.code != 1 || r.stderr != "Error: Topic not found: nope (NOT_FOUND)\n" {
		t.Fatalf("produce to missing topic: %+v", r)
	}
	r = streamctl(t, e.Addr, "", "produce", "t", "-p", "5", "-v", "x")
	if r.code != 1 || !strings.Contains(r.stderr, "Invalid partition: 5 (topic has 2 partitions)") {
		t.Fatalf("produce to bad partition: %+v", r)
	}
}

// TestFollow checks that consume -f prints records as they arrive and
// exits 0 with its summary on SIGINT.
func TestFollow(t *testing.T) {
	e := startBroker(t)
	ok(t, e.Addr, "", "topic", "create", "t")
	ok(t, e.Addr, "", "produce", "t", "-v", "before")
	cmd := exec.Command(streamctlBin, "consume", "t", "-f")
	cmd.Env = append(os.Environ(), "STREAMHOUSE_ADDR="+e.Addr)
	var out, errOut syncBuffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the first record", func() bool { return strings.Contains(out.String(), "before") })
	ok(t, e.Addr, "", "produce", "t", "-v", "after")
	waitFor(t, "the new record", func() bool { return strings.Contains(out.String(), "after") })
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("consume -f after SIGINT: %v\nstderr: %s", err, errOut.String())
	}
	wantContains(t, out.String(), "Consumed 2 records from t/0 (offsets 0-1, high watermark 2)")
}

func TestOffsetCommands(t *testing.T) {
	e := startBroker(t)
	ok(t, e.Addr, "", "topic", "create", "t", "-p", "2")
	r := streamctl(t, e.Addr, "", "offset", "get", "-g", "g", "-t", "t", "-p", "1")
	if r.code != 1 || !strings.Contains(r.stderr, `No offset committed for group "g" on t-1 (NOT_FOUND)`) {
		t.Fatalf("get before commit: %+v", r)
	}
	wantContains(t, ok(t, e.Addr, "", "offset", "commit", "-g", "g", "-t", "t", "-p", "1", "--offset", "0"),
		`Committed offset 0 for group "g" on t/1`)
	wantContains(t, ok(t, e.Addr, "", "offset", "get", "-g", "g", "-t", "t", "-p", "1"), `Group "g" on t/1: offset 0`)
	ok(t, e.Addr, "", "offset", "commit", "--group", "g", "--topic", "t", "--partition", "1", "--offset", "42", "-m", "note")
	out := ok(t, e.Addr, "", "offset", "get", "-g", "g", "-t", "t", "-p", "1", "-o", "json")
	var got map[string]any
	if err := json.Unmarshal([]byte(out), &got); err != nil || got["offset"] != 42.0 || got["metadata"] != "note" {
		t.Fatalf("get -o json: %q %v", out, err)
	}
	r = streamctl(t, e.Addr, "", "offset", "commit", "-g", "g", "-t", "nope", "--offset", "1")
	if r.code != 1 || !strings.Contains(r.stderr, "Topic not found: nope") {
		t.Fatalf("commit to missing topic: %+v", r)
	}
}

// TestUsage checks exit status 2 and a pointer to the help for every kind
// of bad command line, and --help (exit 0, usage on stdout) everywhere.
func TestUsage(t *testing.T) {
	const addr = "127.0.0.1:1" // never dialled: usage errors come first
	bad := []struct {
		args []string
		want string
	}{
		{nil, "no command given"},
		{[]string{"bogus"}, `unknown command "bogus"`},
		{[]string{"--bogus"}, "flag provided but not defined: -bogus"},
		{[]string{"-o", "yaml", "topic", "list"}, `output format "yaml"`},
		{[]string{"topic"}, "topic needs a subcommand"},
		{[]string{"topic", "rename"}, `unknown subcommand "rename"`},
		{[]string{"topic", "create"}, "topic create needs NAME"},
		{[]string{"topic", "create", "a", "b"}, `unexpected argument "b"`},
		{[]string{"topic", "create", "a", "-p", "0"}, "at least 1"},
		{[]string{"topic", "create", "a", "-p", "x"}, "invalid value"},
		{[]string{"topic", "create", "a", "-c", "novalue"}, "is not KEY=VALUE"},
		{[]string{"topic", "get"}, "topic get needs NAME"},
		{[]string{"produce", "t"}, "give either -v VALUE or --stdin"},
		{[]string{"produce", "t", "-v", "x", "--stdin"}, "give either -v VALUE or --stdin"},
		{[]string{"produce", "-v", "x"}, "produce needs TOPIC"},
		{[]string{"consume", "t", "-l", "0"}, "--limit must be at least 1"},
		{[]string{"consume", "t", "-o", "yaml"}, `"yaml" is neither an output format (text, json) nor an offset (use --offset N)`},
		{[]string{"consume", "t", "--offset", "json"}, "invalid value"},
		{[]string{"offset", "commit", "-t", "t", "--offset", "1"}, "-g GROUP is required"},
		{[]string{"offset", "commit", "-g", "g", "--offset", "1"}, "-t TOPIC is required"},
		{[]string{"offset", "commit", "-g", "g", "-t", "t"}, "--offset N is required"},
		{[]string{"offset", "commit", "-g", "g", "-t", "t", "-o", "json"}, "--offset N is required"},
		{[]string{"completion"}, "completion needs a shell: bash or zsh"},
		{[]string{"completion", "fish"}, "completion needs a shell: bash or zsh"},
		{[]string{"offset", "get", "-g", "g"}, "-t TOPIC is required"},
		{[]string{"--timeout", "0s", "topic", "list"}, "--timeout must be positive"},
	}
	for _, tc := range bad {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			r := streamctl(t, addr, "", tc.args...)
			if r.code != 2 || !strings.Contains(r.stderr, tc.want) || !strings.Contains(r.stderr, "--help' for usage") {
				t.Fatalf("got exit %d, stderr %q; want 2 and %q", r.code, r.stderr, tc.want)
			}
		})
	}
	help := [][]string{
		{"--help"}, {"-h"}, {"help"}, {"topic", "--help"}, {"topic", "create", "--help"}, {"topic", "list", "--help"},
		{"topic", "get", "-h"}, {"topic", "delete", "--help"}, {"produce", "--help"}, {"consume", "--help"},
		{"offset", "--help"}, {"offset", "commit", "--help"}, {"offset", "get", "--help"}, {"completion", "--help"},
	}
	for _, args := range help {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			r := streamctl(t, addr, "", args...)
			if r.code != 0 || !strings.Contains(r.stdout, "Usage") || r.stderr != "" {
				t.Fatalf("got %+v", r)
			}
		})
	}
}

// TestCompactedTopic creates a topic with cleanup.policy=compact through
// -c, and checks that a produce without -k is refused with Kafka's
// message while a keyed one succeeds.
func TestCompactedTopic(t *testing.T) {
	e := startBroker(t)
	ok(t, e.Addr, "", "topic", "create", "table", "-c", "cleanup.policy=compact,delete", "-c", "min.compaction.lag.ms=1000")
	wantContains(t, ok(t, e.Addr, "", "topic", "get", "table"), "cleanup.policy = compact,delete", "min.compaction.lag.ms = 1000")
	r := streamctl(t, e.Addr, "", "produce", "table", "-v", "no key")
	if r.code != 1 || !strings.Contains(r.stderr, "Compacted topic cannot accept message without key") || !strings.Contains(r.stderr, "INVALID_ARGUMENT") {
		t.Fatalf("keyless produce: %+v", r)
	}
	wantContains(t, ok(t, e.Addr, "", "produce", "table", "-k", "user-1", "-v", "v"), "Produced 1 record to table/0 at offset 0")
	wantContains(t, ok(t, e.Addr, "", "topic", "create", "--help"), "cleanup.policy (delete, compact or compact,delete",
		"min.cleanable.dirty.ratio", "min.compaction.lag.ms", "max.compaction.lag.ms", "delete.retention.ms")
}
