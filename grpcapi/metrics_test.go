package grpcapi_test

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/streamhouse/streamhouse/grpcapi/grpcapitest"
	pb "github.com/streamhouse/streamhouse/proto"

	"github.com/streamhouse/streamhouse/internal/metricstest"
)

// TestMetricsCountCalls makes successful, failing and unknown calls and
// checks the call counters and durations, and that records consumed over
// gRPC count in the log's read metrics.
func TestMetricsCountCalls(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	e := grpcapitest.Start(t, grpcapitest.Options{Registerer: reg})
	const svc = "/streamhouse.StreamHouse/"

	createTopic(t, e, "m", 1, nil)
	produceBatch(t, e, "m", 0, 7, "v")
	_, err := e.Client.GetTopic(ctx(t), &pb.GetTopicRequest{Name: "nope"})
	wantStatus(t, err, codes.NotFound)
	_, err = e.Client.Consume(ctx(t), &pb.ConsumeRequest{Topic: "m", MaxRecords: 100})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := healthpb.NewHealthClient(e.Conn).Check(ctx(t), &healthpb.HealthCheckRequest{}); err != nil {
		t.Fatal(err)
	}
	err = e.Conn.Invoke(ctx(t), svc+"NoSuchMethod", &pb.GetTopicRequest{}, &pb.GetTopicResponse{})
	wantStatus(t, err, codes.Unimplemented, "NoSuchMethod")
	err = e.Conn.Invoke(ctx(t), "/no.Such/Service", &pb.GetTopicRequest{}, &pb.GetTopicResponse{})
	wantStatus(t, err, codes.Unimplemented)

	// The interceptors count before the answer is sent, so no waiting.
	requests := metricstest.Family(t, reg, "streamhouse_grpc_requests_total")
	for labels, want := range map[string]float64{
		"code=OK,method=" + svc + "CreateTopic":           1,
		"code=OK,method=" + svc + "ProduceBatch":          1,
		"code=NotFound,method=" + svc + "GetTopic":        1,
		"code=OK,method=" + svc + "GetTopic":              0, // registered methods start at zero
		"code=OK,method=" + svc + "Consume":               1,
		"code=OK,method=/grpc.health.v1.Health/Check":     1,
		"code=Unimplemented,method=unknown":               2,
		"code=OK,method=" + svc + "DeleteTopic":           0,
		"code=OK,method=unknown":                          -1,
		"code=OK,method=/grpc.health.v1.Health/Watch":     0,
		"code=OK,method=" + svc + "CommitOffset":          0,
		"code=NotFound,method=" + svc + "CreateTopic":     -1, // absent
		"code=Unimplemented,method=" + svc + "NoSuchMeth": -1,
	} {
		got, ok := requests[labels]
		if want < 0 {
			if ok {
				t.Errorf("requests{%s} exists (%v), want no such series", labels, got)
			}
			continue
		}
		if !ok || got != want {
			t.Errorf("requests{%s} = %v (present %v), want %v", labels, got, ok, want)
		}
	}
	for labels := range requests {
		if m := labels[strings.Index(labels, "method=")+len("method="):]; m != "unknown" && !strings.HasPrefix(m, "/") {
			t.Errorf("method label %q is neither a full method name nor unknown", m)
		}
	}
	durations := metricstest.Family(t, reg, "streamhouse_grpc_request_duration_seconds")
	for labels, want := range map[string]float64{
		"method=" + svc + "CreateTopic": 1,
		"method=" + svc + "GetTopic":    1,
		"method=unknown":                2,
		"method=" + svc + "DeleteTopic": 0,
	} {
		if got := durations[labels]; got != want {
			t.Errorf("duration{%s} has %v samples, want %v", labels, got, want)
		}
	}

	// Consume reads through the log, which counts per topic.
	if got := metricstest.Family(t, reg, "streamhouse_log_read_records_total")["topic=m"]; got != 7 {
		t.Errorf("log read records for topic m = %v, want 7", got)
	}

	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	if problems, err := promlint.NewWithMetricFamilies(mfs).Lint(); err != nil || len(problems) > 0 {
		t.Fatalf("lint: %v %+v", err, problems)
	}
}
