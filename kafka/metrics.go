package kafka

// Request and connection metrics of the Kafka front. Every collector is
// created by New whether or not Config.Metrics is set (so the request path
// never checks for nil) and registered only when it is.
//
// Hot-path cost: the label children of every dispatch-table entry (one
// request counter per served version, the latency histogram and the byte
// counters of each API) are resolved once in New, so serving a request
// costs a slice index, two counter adds, one histogram observation and a
// walk over the response's error codes; Produce and Fetch responses are
// walked by hand-written functions, no reflection. Error counters are
// resolved on first use of an (API, code) pair and then read from an
// atomic slot.
//
// Cardinality: api is one of the dispatch table's names (kmsg.NameForKey),
// version one of the versions served, code one of Kafka's error names
// (kerr) or UNKNOWN_CODE.

import (
	"reflect"
	"strconv"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// errSlots is how many error codes have their own counter slot per API:
// codes -1 .. errSlots-2. Kafka's codes stay far below; anything else
// shares the last slot, labelled UNKNOWN_CODE.
const errSlots = 256

// unknownCodeName labels error codes kerr does not know.
const unknownCodeName = "UNKNOWN_CODE"

// frontMetrics are the Kafka front's collectors.
type frontMetrics struct {
	requests  *prometheus.CounterVec   // api, version
	errors    *prometheus.CounterVec   // api, code
	latency   *prometheus.HistogramVec // api
	bytesIn   *prometheus.CounterVec   // api
	bytesOut  *prometheus.CounterVec   // api
	connsOpen prometheus.Gauge
	accepted  prometheus.Counter
	rejected  prometheus.Counter
	// sasl counts SASL exchanges by mechanism (an enabled one) and result.
	sasl *prometheus.CounterVec
	// apis holds the resolved children, indexed by API key; nil for keys
	// outside the dispatch table.
	apis []*apiMetrics
}

// apiMetrics are one API's resolved label children.
type apiMetrics struct {
	name     string
	min      int16
	requests []prometheus.Counter // indexed by version - min
	latency  prometheus.Observer
	bytesIn  prometheus.Counter
	bytesOut prometheus.Counter
	// errors holds the error counters resolved so far, by code+1.
	errors [errSlots]atomic.Pointer[errCounter]
	vec    *prometheus.CounterVec
}

// errCounter boxes a counter for atomic.Pointer.
type errCounter struct{ c prometheus.Counter }

// newFrontMetrics builds the collectors and resolves the children of every
// API in apis; reg nil leaves them unregistered.
func newFrontMetrics(reg prometheus.Registerer, apis map[int16]api) *frontMetrics {
	opts := func(name, help string) prometheus.CounterOpts {
		return prometheus.CounterOpts{Namespace: "streamhouse", Subsystem: "kafka", Name: name, Help: help}
	}
	m := &frontMetrics{
		requests: prometheus.NewCounterVec(opts("requests_total",
			"Kafka requests served, by API and version."), []string{"api", "version"}),
		errors: prometheus.NewCounterVec(opts("errors_total",
			"Non-zero error codes in Kafka responses (top-level, per topic and per partition), by API and error name."),
			[]string{"api", "code"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "streamhouse", Subsystem: "kafka", Name: "request_duration_seconds",
			Help: "Time from a request frame read to its response encoded for the writer (Fetch long polls and " +
				"JoinGroup/SyncGroup rebalance waits included).",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2, 18), // 100µs .. 13s
		}, []string{"api"}),
		bytesIn: prometheus.NewCounterVec(opts("request_bytes_total",
			"Kafka request frame bytes received (size prefix included), by API."), []string{"api"}),
		bytesOut: prometheus.NewCounterVec(opts("response_bytes_total",
			"Kafka response frame bytes queued for the client (size prefix included), by API."), []string{"api"}),
		connsOpen: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: "streamhouse", Subsystem: "kafka",
			Name: "connections", Help: "Open Kafka client connections."}),
		accepted: prometheus.NewCounter(opts("connections_accepted_total", "Kafka client connections accepted.")),
		rejected: prometheus.NewCounter(opts("connections_rejected_total",
			"Kafka client connections closed at once because MaxConnections were open.")),
		sasl: prometheus.NewCounterVec(opts("sasl_authentications_total",
			"SASL authentications on SASL listeners, by mechanism and result (success or failure)."),
			[]string{"mechanism", "result"}),
	}
	maxKey := int16(0)
	for k := range apis {
		maxKey = max(maxKey, k)
	}
	m.apis = make([]*apiMetrics, int(maxKey)+1)
	for k, a := range apis {
		name := kmsg.NameForKey(k)
		if name == "" {
			name = strconv.Itoa(int(k))
		}
		am := &apiMetrics{name: name, min: a.min, vec: m.errors,
			latency:  m.latency.WithLabelValues(name),
			bytesIn:  m.bytesIn.WithLabelValues(name),
			bytesOut: m.bytesOut.WithLabelValues(name)}
		for v := a.min; v <= a.max; v++ {
			am.requests = append(am.requests, m.requests.WithLabelValues(name, strconv.Itoa(int(v))))
		}
		m.apis[k] = am
	}
	if reg != nil {
		reg.MustRegister(m.requests, m.errors, m.latency, m.bytesIn, m.bytesOut, m.connsOpen, m.accepted, m.rejected, m.sasl)
	}
	return m
}

// registerLimits registers the request-memory gauges (limits.go), read at
// scrape time from the budget.
func (m *frontMetrics) registerLimits(reg prometheus.Registerer, b *byteBudget, limit int64) {
	if reg == nil {
		return
	}
	reg.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "streamhouse", Subsystem: "kafka",
			Name: "queued_request_bytes", Help: "Request bytes held in memory across connections (limit: queued_max_request_bytes)."},
			func() float64 { return float64(limit - b.available()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "streamhouse", Subsystem: "kafka",
			Name: "queued_max_request_bytes", Help: "The limit on request bytes held in memory (QueuedMaxRequestBytes)."},
			func() float64 { return float64(limit) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "streamhouse", Subsystem: "kafka",
			Name: "connections_waiting_for_memory", Help: "Connections waiting for request memory before reading their next frame."},
			func() float64 { return float64(b.waiting()) }),
	)
}

// api returns key's children; the key must be in the dispatch table.
func (m *frontMetrics) api(key int16) *apiMetrics { return m.apis[key] }

// observe records one served request: its version, duration, frame sizes
// and, if it was answered, the response's error codes.
func (a *apiMetrics) observe(version int16, seconds float64, in, out int, resp kmsg.Response) {
	a.requests[version-a.min].Inc()
	a.latency.Observe(seconds)
	a.bytesIn.Add(float64(in))
	if resp != nil {
		a.bytesOut.Add(float64(out))
		responseErrors(resp, a.countError)
	}
}

// countError counts one non-zero error code (zero is ignored).
func (a *apiMetrics) countError(code int16) {
	if code == 0 {
		return
	}
	slot := int(code) + 1
	if slot < 0 || slot >= errSlots {
		slot = errSlots - 1
	}
	ec := a.errors[slot].Load()
	if ec == nil {
		ec = &errCounter{a.vec.WithLabelValues(a.name, errorName(code, slot))}
		if !a.errors[slot].CompareAndSwap(nil, ec) {
			ec = a.errors[slot].Load()
		}
	}
	ec.c.Inc()
}

// errorName is the code's Kafka name ("UNKNOWN_TOPIC_OR_PARTITION"), or
// UNKNOWN_CODE for a code without a name or without its own slot.
func errorName(code int16, slot int) string {
	if slot == errSlots-1 {
		return unknownCodeName
	}
	if e := kerr.TypedErrorForCode(code); e != nil && e.Code == code {
		return e.Message
	}
	return unknownCodeName
}

// responseErrors calls f with every error code of resp: top-level, per
// topic and per partition. The hot APIs are walked by hand; the rest by
// reflection over their ErrorCode fields.
func responseErrors(resp kmsg.Response, f func(int16)) {
	switch r := resp.(type) {
	case *kmsg.ProduceResponse:
		for i := range r.Topics {
			for j := range r.Topics[i].Partitions {
				f(r.Topics[i].Partitions[j].ErrorCode)
			}
		}
	case *kmsg.FetchResponse:
		f(r.ErrorCode)
		for i := range r.Topics {
			for j := range r.Topics[i].Partitions {
				f(r.Topics[i].Partitions[j].ErrorCode)
			}
		}
	case *kmsg.ListOffsetsResponse:
		for i := range r.Topics {
			for j := range r.Topics[i].Partitions {
				f(r.Topics[i].Partitions[j].ErrorCode)
			}
		}
	case *kmsg.OffsetCommitResponse:
		for i := range r.Topics {
			for j := range r.Topics[i].Partitions {
				f(r.Topics[i].Partitions[j].ErrorCode)
			}
		}
	case *kmsg.HeartbeatResponse:
		f(r.ErrorCode)
	case *kmsg.ApiVersionsResponse:
		f(r.ErrorCode)
	default:
		reflectErrors(reflect.ValueOf(resp), f)
	}
}

// reflectErrors walks v (structs, pointers to structs, slices of
// structs) and calls f with every int16 field named ErrorCode.
func reflectErrors(v reflect.Value, f func(int16)) {
	switch v.Kind() {
	case reflect.Pointer:
		if !v.IsNil() {
			reflectErrors(v.Elem(), f)
		}
	case reflect.Slice:
		if v.Type().Elem().Kind() != reflect.Struct {
			return
		}
		for i := range v.Len() {
			reflectErrors(v.Index(i), f)
		}
	case reflect.Struct:
		t := v.Type()
		for i := range t.NumField() {
			fv := v.Field(i)
			switch sf := t.Field(i); {
			case !sf.IsExported():
			case sf.Name == "ErrorCode" && fv.Kind() == reflect.Int16:
				f(int16(fv.Int()))
			case fv.Kind() == reflect.Slice || fv.Kind() == reflect.Struct ||
				fv.Kind() == reflect.Pointer && fv.Type().Elem().Kind() == reflect.Struct:
				reflectErrors(fv, f)
			}
		}
	}
}

// registerResponseQueue registers the gauges of responses queued in memory
// for connections' writers (conn.reserveMem).
func (m *frontMetrics) registerResponseQueue(reg prometheus.Registerer, queued, waiting *atomic.Int64) {
	if reg == nil {
		return
	}
	reg.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "streamhouse", Subsystem: "kafka",
			Name: "queued_response_bytes", Help: "Response bytes held in memory for connections' writers (file regions excluded)."},
			func() float64 { return float64(queued.Load()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "streamhouse", Subsystem: "kafka",
			Name: "connections_waiting_for_response_room", Help: "Connections whose reader waits because fetch-max-bytes of responses are queued unsent."},
			func() float64 { return float64(waiting.Load()) }),
	)
}

// saslAuth counts one SASL exchange's end. mechanism is one the broker
// enabled (checked by SaslHandshake), so the label stays bounded.
func (m *frontMetrics) saslAuth(mechanism string, ok bool) {
	result := "failure"
	if ok {
		result = "success"
	}
	m.sasl.WithLabelValues(mechanism, result).Inc()
}
