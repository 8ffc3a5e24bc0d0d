package grpcapi

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// unknownMethod is the method label of calls to methods the server does
// not register, so that callers cannot grow the label set.
const unknownMethod = "unknown"

// rpcMetrics count and time every call the server answers, from unary and
// stream interceptors:
//
//	streamhouse_grpc_requests_total{method,code}
//	streamhouse_grpc_request_duration_seconds{method}
//
// method is the full method name ("/streamhouse.StreamHouse/Produce") of
// a registered service (StreamHouse, health, reflection), or "unknown";
// code is the gRPC status code's name ("OK", "NotFound"). A streaming
// call (health Watch, reflection) is timed from its start to its end.
type rpcMetrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	// methods holds the series of every registered method. It is filled
	// by addMethods before the server serves and read-only afterwards.
	methods map[string]*methodMetrics
	unknown *methodMetrics
}

// methodMetrics are one method's series, resolved once so a call costs a
// map lookup, not a label hash.
type methodMetrics struct {
	name     string
	ok       prometheus.Counter // nil for unknownMethod
	duration prometheus.Observer
}

// newRPCMetrics creates the collectors and registers them with reg; with
// a nil reg they are kept but not exported.
func newRPCMetrics(reg prometheus.Registerer) *rpcMetrics {
	m := &rpcMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "streamhouse", Subsystem: "grpc", Name: "requests_total",
			Help: "gRPC calls answered, by full method name and status code.",
		}, []string{"method", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "streamhouse", Subsystem: "grpc", Name: "request_duration_seconds",
			Help:    "Duration of gRPC calls (streams: start to end), by full method name.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 17), // 0.5ms .. 33s (long polls wait up to 30s)
		}, []string{"method"}),
		methods: make(map[string]*methodMetrics),
	}
	if reg != nil {
		reg.MustRegister(m.requests, m.duration)
	}
	// No OK series for unknown methods: they never succeed.
	m.unknown = &methodMetrics{name: unknownMethod, duration: m.duration.WithLabelValues(unknownMethod)}
	return m
}

// method returns name's series, creating its OK and duration series so
// that they exist (at zero) before the first call.
func (m *rpcMetrics) method(name string) *methodMetrics {
	return &methodMetrics{
		name:     name,
		ok:       m.requests.WithLabelValues(name, codes.OK.String()),
		duration: m.duration.WithLabelValues(name),
	}
}

// addMethods adds every method of the registered services; call it after
// registering them and before serving.
func (m *rpcMetrics) addMethods(services map[string]grpc.ServiceInfo) {
	for svc, info := range services {
		for _, mi := range info.Methods {
			full := "/" + svc + "/" + mi.Name
			m.methods[full] = m.method(full)
		}
	}
}

// observe records one finished call.
func (m *rpcMetrics) observe(fullMethod string, start time.Time, err error) {
	mm, ok := m.methods[fullMethod]
	if !ok {
		mm = m.unknown
	}
	mm.duration.Observe(time.Since(start).Seconds())
	if code := status.Code(err); code != codes.OK || mm.ok == nil {
		m.requests.WithLabelValues(mm.name, code.String()).Inc()
		return
	}
	mm.ok.Inc()
}

// unary is the unary server interceptor.
func (m *rpcMetrics) unary(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	start := time.Now()
	resp, err := handler(ctx, req)
	m.observe(info.FullMethod, start, err)
	return resp, err
}

// stream is the stream server interceptor.
func (m *rpcMetrics) stream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	start := time.Now()
	err := handler(srv, ss)
	m.observe(info.FullMethod, start, err)
	return err
}

// unimplemented answers calls to methods no service registers, as gRPC
// would without it. Installed as the unknown-service handler, it lets the
// stream interceptor count such calls (as method "unknown").
func unimplemented(_ any, ss grpc.ServerStream) error {
	name, _ := grpc.MethodFromServerStream(ss)
	return status.Errorf(codes.Unimplemented, "unknown method %s", name)
}
