package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// streamctlBuild is streamctl, built once per test binary.
var streamctlBuild struct {
	once sync.Once
	path string
	err  error
}

// streamctlBinary returns the built streamctl (the same source as the
// user's command, built without -race: it is a short-lived client).
func streamctlBinary(t *testing.T) string {
	t.Helper()
	streamctlBuild.once.Do(func() {
		path := filepath.Join(buildDir, "streamctl")
		out, err := exec.Command("go", "build", "-o", path, "../streamctl").CombinedOutput()
		if err != nil {
			streamctlBuild.err = fmt.Errorf("go build streamctl: %w\n%s", err, out)
			return
		}
		streamctlBuild.path = path
	})
	if streamctlBuild.err != nil {
		t.Fatal(streamctlBuild.err)
	}
	return streamctlBuild.path
}

// runStreamctl runs streamctl against the gRPC address and returns stdout.
func runStreamctl(t *testing.T, grpcAddr string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, streamctlBinary(t), append([]string{"-s", grpcAddr}, args...)...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("streamctl %s: %v\nstdout: %s\nstderr: %s", strings.Join(args, " "), err, out, stderr.String())
	}
	return string(out)
}

// TestOffsetsCrossFronts commits a group's offset with a Kafka client and
// reads it with streamctl (gRPC GetOffset), then commits with streamctl
// (gRPC CommitOffset) and has a Kafka consumer group resume exactly there:
// both fronts share one set of committed-offset rows.
func TestOffsetsCrossFronts(t *testing.T) {
	p := startBroker(t, nil, localArgs(t.TempDir())...)
	p.ready(t)
	kafkaAddr, grpcAddr := p.listenAddr(t, "kafka"), p.listenAddr(t, "grpc")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	cl, err := kgo.NewClient(kgo.SeedBrokers(kafkaAddr))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	if _, err := adm.CreateTopic(ctx, 1, 1, nil, "cross"); err != nil {
		t.Fatal(err)
	}
	const n = 40
	for i := range n {
		if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "cross", Value: []byte(fmt.Sprintf("v%d", i))}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}

	// Kafka commits, streamctl reads.
	var commit kadm.Offsets
	commit.Add(kadm.Offset{Topic: "cross", Partition: 0, At: 17, LeaderEpoch: -1, Metadata: "from-kafka"})
	if resp, err := adm.CommitOffsets(ctx, "kafka-side", commit); err != nil || resp.Error() != nil {
		t.Fatalf("Kafka OffsetCommit: %v %v", err, resp.Error())
	}
	got := runStreamctl(t, grpcAddr, "offset", "get", "-g", "kafka-side", "-t", "cross", "-p", "0", "--output", "json")
	var shown struct {
		Offset   int64  `json:"offset"`
		Metadata string `json:"metadata"`
	}
	if err := json.Unmarshal([]byte(got), &shown); err != nil {
		t.Fatalf("streamctl offset get --output json: %v\n%s", err, got)
	}
	if shown.Offset != 17 || shown.Metadata != "from-kafka" {
		t.Fatalf("streamctl offset get of a Kafka commit: %s, want offset 17 metadata from-kafka", got)
	}

	// streamctl commits, a Kafka consumer group resumes there.
	runStreamctl(t, grpcAddr, "offset", "commit", "-g", "grpc-side", "-t", "cross", "-p", "0", "--offset", "30", "-m", "from-grpc")
	fetched, err := adm.FetchOffsets(ctx, "grpc-side")
	if err != nil {
		t.Fatal(err)
	}
	if o, ok := fetched.Lookup("cross", 0); !ok || o.Err != nil || o.At != 30 || o.Metadata != "from-grpc" {
		t.Fatalf("Kafka OffsetFetch of a streamctl commit: %+v (found %v), want 30 from-grpc", o, ok)
	}
	consumer, err := kgo.NewClient(kgo.SeedBrokers(kafkaAddr), kgo.ConsumerGroup("grpc-side"),
		kgo.ConsumeTopics("cross"), kgo.DisableAutoCommit())
	if err != nil {
		t.Fatal(err)
	}
	defer consumer.Close()
	var offsets []int64
	for len(offsets) < n-30 {
		fs := consumer.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("consumed %v before the deadline", offsets)
		}
		fs.EachError(func(topic string, part int32, err error) { t.Fatalf("fetch %s/%d: %v", topic, part, err) })
		fs.EachRecord(func(r *kgo.Record) { offsets = append(offsets, r.Offset) })
	}
	if offsets[0] != 30 || len(offsets) != n-30 || offsets[len(offsets)-1] != n-1 {
		t.Fatalf("group resumed at offsets %v, want 30..%d", offsets, n-1)
	}
	consumer.Close()
	cl.Close()
	p.stop(t)
}
