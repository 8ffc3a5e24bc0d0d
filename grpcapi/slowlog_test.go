package grpcapi_test

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/streamhouse/streamhouse/grpcapi/grpcapitest"
	pb "github.com/streamhouse/streamhouse/proto"
)

// logBuffer collects JSON log lines from concurrent writers.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// lines returns the decoded lines whose msg is msg.
func (b *logBuffer) lines(t *testing.T, msg string) []map[string]any {
	t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(b.buf.String()), "\n") {
		var m map[string]any
		if l == "" {
			continue
		}
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("log line %q: %v", l, err)
		}
		if m["msg"] == msg {
			out = append(out, m)
		}
	}
	return out
}

// TestSlowCallLog checks the slow-call log line's fields with a threshold
// every call exceeds, and that a Consume's long-poll wait does not count
// toward the threshold.
func TestSlowCallLog(t *testing.T) {
	t.Run("logged", func(t *testing.T) {
		var logs logBuffer
		e := grpcapitest.Start(t, grpcapitest.Options{
			Logger:               slog.New(slog.NewJSONHandler(&logs, nil)),
			SlowRequestThreshold: time.Nanosecond,
		})
		createTopic(t, e, "slow", 1, nil)
		produceBatch(t, e, "slow", 0, 3, "v")
		var found bool
		for _, l := range logs.lines(t, "slow grpc request") {
			if l["method"] != "/streamhouse.StreamHouse/ProduceBatch" {
				continue
			}
			found = true
			if l["topic"] != "slow" || l["code"] != "OK" || l["level"] != "WARN" {
				t.Errorf("slow ProduceBatch line: %v", l)
			}
			if id, _ := l["client_id"].(string); !strings.Contains(id, "127.0.0.1:") || !strings.Contains(id, "grpc-go") {
				t.Errorf("client_id %q, want the peer address and user agent", id)
			}
			if d, _ := l["duration"].(float64); d <= 0 {
				t.Errorf("duration %v, want > 0", l["duration"])
			}
		}
		if !found {
			t.Fatalf("no slow-call line for ProduceBatch in:\n%s", logs.buf.String())
		}
	})
	t.Run("long poll excluded", func(t *testing.T) {
		var logs logBuffer
		const threshold = 100 * time.Millisecond
		e := grpcapitest.Start(t, grpcapitest.Options{
			Logger:               slog.New(slog.NewJSONHandler(&logs, nil)),
			SlowRequestThreshold: threshold,
		})
		createTopic(t, e, "idle", 1, nil)
		start := time.Now()
		resp, err := e.Client.Consume(ctx(t), &pb.ConsumeRequest{Topic: "idle", MaxRecords: 10, MaxWaitMs: 400})
		if err != nil {
			t.Fatal(err)
		}
		if took := time.Since(start); len(resp.GetRecords()) != 0 || took <= threshold {
			t.Fatalf("long poll returned %d records after %v; want none after more than %v", len(resp.GetRecords()), took, threshold)
		}
		if got := logs.lines(t, "slow grpc request"); len(got) != 0 {
			t.Fatalf("an idle long poll was logged as slow: %v", got)
		}
	})
}
