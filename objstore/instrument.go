package objstore

import (
	"context"
	"errors"
	"io"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Operation names, the values of the "op" label of Instrument's metrics.
const (
	opPut      = "put"
	opGet      = "get"
	opGetRange = "get_range"
	opList     = "list"
	opDelete   = "delete"
)

// storeMetrics are the collectors shared by every instrumented call.
type storeMetrics struct {
	requests *prometheus.CounterVec   // op
	errors   *prometheus.CounterVec   // op, kind
	duration *prometheus.HistogramVec // op
	bytes    *prometheus.CounterVec   // op
}

// instrumented wraps a Store with Prometheus metrics.
type instrumented struct {
	next Store
	m    *storeMetrics
}

// Instrument returns a Store that forwards to s and records, per
// operation ("put", "get", "get_range", "list", "delete"):
//
//	streamhouse_objstore_requests_total{op}
//	streamhouse_objstore_errors_total{op,kind}   kind: not_found, transient, permanent, canceled, other
//	streamhouse_objstore_request_duration_seconds{op}
//	streamhouse_objstore_bytes_total{op}         bytes written by put, read by get and get_range
//
// The returned Store also implements io.Closer, forwarding to s if s has a
// Close method (S3 does). With a nil reg the metrics are kept but not
// registered. If reg already
// holds these collectors (two instrumented stores, one registry) they are
// shared; any other registration failure panics, like MustRegister.
func Instrument(s Store, reg prometheus.Registerer) Store {
	return &instrumented{next: s, m: newStoreMetrics(reg)}
}

func newStoreMetrics(reg prometheus.Registerer) *storeMetrics {
	opts := func(name, help string) prometheus.Opts {
		return prometheus.Opts{Namespace: "streamhouse", Subsystem: "objstore", Name: name, Help: help}
	}
	m := &storeMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts(
			opts("requests_total", "Object store operations started.")), []string{"op"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts(
			opts("errors_total", "Object store operations that failed, by kind of failure.")), []string{"op", "kind"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "streamhouse", Subsystem: "objstore", Name: "request_duration_seconds",
			Help:    "Duration of object store operations, retries included.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 16), // 1ms .. 33s
		}, []string{"op"}),
		bytes: prometheus.NewCounterVec(prometheus.CounterOpts(
			opts("bytes_total", "Object bytes written by put and read by get and get_range.")), []string{"op"}),
	}
	if reg != nil {
		m.requests = register(reg, m.requests)
		m.errors = register(reg, m.errors)
		m.duration = register(reg, m.duration)
		m.bytes = register(reg, m.bytes)
	}
	return m
}

// register registers c, or returns the equal collector already there.
func register[C prometheus.Collector](reg prometheus.Registerer, c C) C {
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(C); ok {
				return existing
			}
		}
		panic(err)
	}
	return c
}

// observe records one finished operation.
func (m *storeMetrics) observe(op string, start time.Time, n int64, err error) {
	m.requests.WithLabelValues(op).Inc()
	m.duration.WithLabelValues(op).Observe(time.Since(start).Seconds())
	if err != nil {
		m.errors.WithLabelValues(op, errorKind(err)).Inc()
		return
	}
	if n > 0 {
		m.bytes.WithLabelValues(op).Add(float64(n))
	}
}

// errorKind names the class of err for the "kind" label.
func errorKind(err error) string {
	switch {
	case errors.Is(err, ErrNotFound):
		return "not_found"
	case errors.Is(err, ErrTransient):
		return "transient"
	case errors.Is(err, ErrPermanent):
		return "permanent"
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return "canceled"
	}
	return "other"
}

func (i *instrumented) Put(ctx context.Context, key string, r io.Reader, size int64) error {
	start := time.Now()
	err := i.next.Put(ctx, key, r, size)
	i.m.observe(opPut, start, size, err)
	return err
}

func (i *instrumented) Get(ctx context.Context, key string) ([]byte, error) {
	start := time.Now()
	data, err := i.next.Get(ctx, key)
	i.m.observe(opGet, start, int64(len(data)), err)
	return data, err
}

func (i *instrumented) GetRange(ctx context.Context, key string, off, length int64) ([]byte, error) {
	start := time.Now()
	data, err := i.next.GetRange(ctx, key, off, length)
	i.m.observe(opGetRange, start, int64(len(data)), err)
	return data, err
}

func (i *instrumented) List(ctx context.Context, prefix string) ([]ObjectInfo, error) {
	start := time.Now()
	infos, err := i.next.List(ctx, prefix)
	i.m.observe(opList, start, 0, err)
	return infos, err
}

func (i *instrumented) Delete(ctx context.Context, key string) error {
	start := time.Now()
	err := i.next.Delete(ctx, key)
	i.m.observe(opDelete, start, 0, err)
	return err
}

// Close closes the wrapped store if it can be closed.
func (i *instrumented) Close() error {
	if c, ok := i.next.(io.Closer); ok {
		return c.Close()
	}
	return nil
}
