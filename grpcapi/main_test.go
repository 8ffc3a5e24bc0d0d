package grpcapi_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/streamhouse/streamhouse/grpcapi/grpcapitest"
	pb "github.com/streamhouse/streamhouse/proto"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// ctx returns a context for one test's calls.
func ctx(t testing.TB) context.Context {
	t.Helper()
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}

// wantStatus fails t unless err is a status with code whose message
// contains every one of substrs.
func wantStatus(t testing.TB, err error, code codes.Code, substrs ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("got success, want %s", code)
	}
	st, ok := status.FromError(err)
	if !ok {
		t.Fatalf("got non-status error %v, want %s", err, code)
	}
	if st.Code() != code {
		t.Fatalf("got %s %q, want %s", st.Code(), st.Message(), code)
	}
	for _, s := range substrs {
		if !strings.Contains(st.Message(), s) {
			t.Fatalf("message %q does not contain %q", st.Message(), s)
		}
	}
}

// waitFor polls cond until it holds or 10 s pass.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// createTopic creates a topic or fails t.
func createTopic(t testing.TB, e *grpcapitest.Env, name string, parts uint32, cfg map[string]string) {
	t.Helper()
	_, err := e.Client.CreateTopic(ctx(t), &pb.CreateTopicRequest{Name: name, PartitionCount: parts, Config: cfg})
	if err != nil {
		t.Fatalf("create topic %s: %v", name, err)
	}
}

// consumeAll consumes a partition from offset from to the high watermark.
func consumeAll(t testing.TB, e *grpcapitest.Env, topic string, part uint32, from uint64) []*pb.ConsumedRecord {
	t.Helper()
	var out []*pb.ConsumedRecord
	for {
		res, err := e.Client.Consume(ctx(t), &pb.ConsumeRequest{Topic: topic, Partition: part, Offset: from, MaxRecords: 10_000})
		if err != nil {
			t.Fatalf("consume %s-%d at %d: %v", topic, part, from, err)
		}
		out = append(out, res.GetRecords()...)
		if !res.GetHasMore() {
			return out
		}
		if res.GetNextOffset() <= from {
			t.Fatalf("consume at %d: has_more but next_offset %d", from, res.GetNextOffset())
		}
		from = res.GetNextOffset()
	}
}
