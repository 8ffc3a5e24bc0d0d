package log

import "github.com/prometheus/client_golang/prometheus"

// metrics are the log's Prometheus collectors. They are always created
// (so code never checks for nil) and registered only when the Config has
// a Registerer.
type metrics struct {
	appends        prometheus.Counter
	appendRecords  prometheus.Counter
	appendBytes    prometheus.Counter
	appendErrors   prometheus.Counter
	fsyncSeconds   prometheus.Histogram
	rolls          prometheus.Counter
	uploads        prometheus.Counter
	uploadErrors   prometheus.Counter
	uploadSeconds  prometheus.Histogram
	uploadBytes    prometheus.Counter
	retentionSegs  prometheus.Counter
	cacheHits      prometheus.Counter
	cacheMisses    prometheus.Counter
	cacheEvictions prometheus.Counter
	cacheBytes     prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer) *metrics {
	c := func(name, help string) prometheus.Counter {
		return prometheus.NewCounter(prometheus.CounterOpts{Namespace: "streamhouse", Subsystem: "log", Name: name, Help: help})
	}
	m := &metrics{
		appends:       c("appends_total", "Append calls that succeeded."),
		appendRecords: c("appended_records_total", "Records appended."),
		appendBytes:   c("appended_bytes_total", "Record batch bytes appended."),
		appendErrors:  c("append_errors_total", "Append calls that failed."),
		fsyncSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: "streamhouse", Subsystem: "log", Name: "fsync_duration_seconds",
			Help:    "Duration of segment fsyncs (one fsync may serve many appends).",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2, 16),
		}),
		rolls:        c("segment_rolls_total", "Active segments sealed."),
		uploads:      c("segment_uploads_total", "Sealed segments uploaded to the object store."),
		uploadErrors: c("segment_upload_errors_total", "Failed segment upload attempts (retried)."),
		uploadSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: "streamhouse", Subsystem: "log", Name: "segment_upload_duration_seconds",
			Help:    "Duration of a segment upload including recording it in meta.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 16),
		}),
		uploadBytes:    c("segment_uploaded_bytes_total", "Bytes of sealed segments uploaded."),
		retentionSegs:  c("retention_deleted_segments_total", "Sealed segments deleted by retention."),
		cacheHits:      c("cache_hits_total", "Segment cache hits."),
		cacheMisses:    c("cache_misses_total", "Segment cache misses (object store reads)."),
		cacheEvictions: c("cache_evictions_total", "Segments evicted from the cache."),
		cacheBytes: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "streamhouse", Subsystem: "log", Name: "cache_bytes",
			Help: "Bytes of sealed segments held in the cache.",
		}),
	}
	if reg != nil {
		reg.MustRegister(m.appends, m.appendRecords, m.appendBytes, m.appendErrors, m.fsyncSeconds,
			m.rolls, m.uploads, m.uploadErrors, m.uploadSeconds, m.uploadBytes, m.retentionSegs,
			m.cacheHits, m.cacheMisses, m.cacheEvictions, m.cacheBytes)
	}
	return m
}
