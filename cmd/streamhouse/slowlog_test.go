package main

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// TestProcessLogsSlowKafkaRequestsAsJSON runs the broker binary with JSON
// logs and a 1ns slow-request threshold, produces one record with a known
// client ID, and finds the JSON slow-request line naming the API, client,
// topic and duration, then does the same for a gRPC call (streamctl).
// /metrics then counts the request.
func TestProcessLogsSlowKafkaRequestsAsJSON(t *testing.T) {
	p := startBroker(t, map[string]string{"STREAMHOUSE_SLOW_REQUEST_THRESHOLD": "1ns"}, localArgs(t.TempDir())...)
	httpAddr := p.ready(t)
	cl, err := kgo.NewClient(kgo.SeedBrokers(p.listenAddr(t, "kafka")), kgo.ClientID("slow-log-test"),
		kgo.AllowAutoTopicCreation())
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "slow-topic", Value: []byte("v")}).FirstErr(); err != nil {
		t.Fatal(err)
	}

	var (
		line logRecord
		ok   bool
	)
	waitFor(t, 10*time.Second, "a JSON slow-request line for the produce", func() (bool, string) {
		line, ok = findLog(p.out.String(), "slow kafka request", "api", "Produce", "client_id", "slow-log-test", "level", "WARN")
		return ok, p.out.String()
	})
	topics, _ := line["topics"].([]any)
	if len(topics) != 1 || topics[0] != "slow-topic" || line["topic_count"] != 1.0 {
		t.Errorf("topics %v (count %v), want [slow-topic]", line["topics"], line["topic_count"])
	}
	if d, ok := line["duration"].(float64); !ok || d <= 0 {
		t.Errorf("duration %v, want a positive number of nanoseconds", line["duration"])
	}
	if line.str("remote") == "" || line["correlation_id"] == nil || line["version"] == nil {
		t.Errorf("slow-request line lacks remote, correlation_id or version: %v", line)
	}

	// The same threshold logs gRPC calls.
	runStreamctl(t, p.listenAddr(t, "grpc"), "offset", "commit", "-g", "slow-group", "-t", "slow-topic", "--offset", "1")
	waitFor(t, 10*time.Second, "a JSON slow-request line for the gRPC commit", func() (bool, string) {
		line, ok = findLog(p.out.String(), "slow grpc request", "method", "/streamhouse.StreamHouse/CommitOffset",
			"topic", "slow-topic", "code", "OK", "level", "WARN")
		return ok, p.out.String()
	})
	if line.str("client_id") == "" {
		t.Errorf("gRPC slow-request line lacks client_id: %v", line)
	}

	_, body, err := httpGet("http://" + httpAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	if !hasSample(body, `streamhouse_kafka_requests_total{api="Produce"`) ||
		!strings.Contains(body, "streamhouse_kafka_connections_accepted_total ") {
		t.Errorf("/metrics lacks the Kafka request metrics:\n%s", body)
	}
	p.stop(t)
}

// hasSample reports whether body has a sample line starting with prefix
// and a value above zero.
func hasSample(body, prefix string) bool {
	for _, line := range strings.Split(body, "\n") {
		if !strings.HasPrefix(line, prefix) {
			continue
		}
		var v float64
		if i := strings.LastIndexByte(line, ' '); i > 0 {
			if _, err := fmt.Sscan(line[i+1:], &v); err == nil && v > 0 {
				return true
			}
		}
	}
	return false
}
