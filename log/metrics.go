package log

import (
	"encoding/binary"
	"strconv"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the log's Prometheus collectors. They are always created
// (so code never checks for nil) and registered only when the Config has
// a Registerer.
type metrics struct {
	appends        prometheus.Counter
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

	cleanerRuns         prometheus.Counter
	cleanerErrors       prometheus.Counter
	cleanerReadBytes    prometheus.Counter
	cleanerWrittenBytes prometheus.Counter
	cleanerLastRun      prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer) *metrics {
	c := func(name, help string) prometheus.Counter {
		return prometheus.NewCounter(prometheus.CounterOpts{Namespace: "streamhouse", Subsystem: "log", Name: name, Help: help})
	}
	m := &metrics{
		appends:      c("appends_total", "Append calls that succeeded."),
		appendErrors: c("append_errors_total", "Append calls that failed."),
		fsyncSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: "streamhouse", Subsystem: "log", Name: "fsync_duration_seconds",
			Help:    "Duration of group-commit syncs: a syncfs for every partition, or one segment fsync (one sync may serve many appends).",
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
		cleanerRuns:         c("cleaner_runs_total", "Compaction runs (successful or not)."),
		cleanerErrors:       c("cleaner_errors_total", "Compaction runs that failed (retried at the next interval)."),
		cleanerReadBytes:    c("cleaner_read_bytes_total", "Bytes of segment objects compaction read."),
		cleanerWrittenBytes: c("cleaner_written_bytes_total", "Bytes of segment objects compaction wrote."),
		cleanerLastRun: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "streamhouse", Subsystem: "log", Name: "cleaner_last_success_timestamp_seconds",
			Help: "When the last successful compaction run ended (Unix time; 0 before the first).",
		}),
	}
	if reg != nil {
		reg.MustRegister(m.appends, m.appendErrors, m.fsyncSeconds,
			m.rolls, m.uploads, m.uploadErrors, m.uploadSeconds, m.uploadBytes, m.retentionSegs,
			m.cacheHits, m.cacheMisses, m.cacheEvictions, m.cacheBytes,
			m.cleanerRuns, m.cleanerErrors, m.cleanerReadBytes, m.cleanerWrittenBytes, m.cleanerLastRun)
	}
	return m
}

// partitionStats are one partition's throughput counters. The hot paths
// only add to them (an atomic add each, on memory the partition owns, so
// partitions never contend); topicCollector turns them into Prometheus
// series at scrape time.
type partitionStats struct {
	appendedRecords atomic.Int64
	appendedBytes   atomic.Int64
	readRecords     atomic.Int64
	readBytes       atomic.Int64
}

// countReadRegion adds a read returned as a file region.
func (s *partitionStats) countReadRegion(bytes, records int64) {
	s.readRecords.Add(records)
	s.readBytes.Add(bytes)
}

// countRead adds whole batches b, as returned by a read, to the read
// counters. It takes the record count from each batch header and decodes
// nothing.
func (s *partitionStats) countRead(b []byte) {
	if len(b) == 0 {
		return
	}
	var records int64
	for pos := 0; len(b)-pos >= batchHeaderLen; {
		records += int64(int32(binary.BigEndian.Uint32(b[pos+offRecordCount:])))
		size := int(int32(binary.BigEndian.Uint32(b[pos+offLength:]))) + batchLengthOverhead
		if size < batchHeaderLen {
			break // reads return validated batches; never loop on garbage
		}
		pos += size
	}
	s.readRecords.Add(records)
	s.readBytes.Add(int64(len(b)))
}

// partitionSample is what a scrape reads from one partition.
type partitionSample struct {
	appendedRecords, appendedBytes int64
	readRecords, readBytes         int64
	logStart, logEnd, hwm          int64
	objectBytes                    int64
	lsoLag, openTxns               int64
}

// sample returns the partition's counters and offsets for a scrape.
func (p *Partition) sample() partitionSample {
	s := partitionSample{
		appendedRecords: p.stats.appendedRecords.Load(),
		appendedBytes:   p.stats.appendedBytes.Load(),
		readRecords:     p.stats.readRecords.Load(),
		readBytes:       p.stats.readBytes.Load(),
	}
	p.mu.Lock()
	// One broker: the log end offset is the high watermark. They are
	// separate series so dashboards survive replication.
	s.logStart, s.logEnd, s.hwm = p.logStart, p.hwm, p.hwm
	s.objectBytes = p.remoteBytes
	if st := p.prod.state; st != nil {
		s.lsoLag, s.openTxns = p.hwm-p.lsoLocked(), int64(len(st.ongoing))
	}
	p.mu.Unlock()
	return s
}

func (s *partitionSample) add(o partitionSample) {
	s.appendedRecords += o.appendedRecords
	s.appendedBytes += o.appendedBytes
	s.readRecords += o.readRecords
	s.readBytes += o.readBytes
	s.logStart += o.logStart
	s.logEnd += o.logEnd
	s.hwm += o.hwm
	s.objectBytes += o.objectBytes
	s.lsoLag += o.lsoLag
	s.openTxns += o.openTxns
}

// topicCollector exports the per-topic families (per partition with
// Config.PerPartitionMetrics) at scrape time from the Manager's open
// partitions. A deleted topic is no longer open, so its series vanish
// with it; the series count is topics (or partitions) times families.
type topicCollector struct {
	m            *Manager
	perPartition bool
	descs        []*prometheus.Desc
}

// topicFamilies are the families topicCollector exports, in desc order.
var topicFamilies = []struct {
	name, help string
	counter    bool
	value      func(*partitionSample) int64
}{
	{"appended_records_total", "Records appended.", true,
		func(s *partitionSample) int64 { return s.appendedRecords }},
	{"appended_bytes_total", "Record batch bytes appended.", true,
		func(s *partitionSample) int64 { return s.appendedBytes }},
	{"read_records_total", "Records in the batches returned by reads (Kafka Fetch and gRPC Consume).", true,
		func(s *partitionSample) int64 { return s.readRecords }},
	{"read_bytes_total", "Record batch bytes returned by reads (Kafka Fetch and gRPC Consume).", true,
		func(s *partitionSample) int64 { return s.readBytes }},
	{"start_offset", "Log start offset (per topic: summed over its partitions).", false,
		func(s *partitionSample) int64 { return s.logStart }},
	{"end_offset", "Log end offset, the offset the next record gets (per topic: summed over its partitions).", false,
		func(s *partitionSample) int64 { return s.logEnd }},
	{"high_watermark", "High watermark (per topic: summed over its partitions).", false,
		func(s *partitionSample) int64 { return s.hwm }},
	{"object_store_bytes", "Bytes of uploaded segments in the object store.", false,
		func(s *partitionSample) int64 { return s.objectBytes }},
	{"last_stable_offset_lag", "High watermark minus last stable offset: offsets held back from read_committed readers by open transactions (per topic: summed over its partitions).", false,
		func(s *partitionSample) int64 { return s.lsoLag }},
	{"open_transactions", "Transactions open in the partition log (per topic: summed over its partitions).", false,
		func(s *partitionSample) int64 { return s.openTxns }},
}

func newTopicCollector(m *Manager, perPartition bool) *topicCollector {
	labels := []string{"topic"}
	if perPartition {
		labels = append(labels, "partition")
	}
	c := &topicCollector{m: m, perPartition: perPartition}
	for _, f := range topicFamilies {
		c.descs = append(c.descs, prometheus.NewDesc("streamhouse_log_"+f.name, f.help, labels, nil))
	}
	return c
}

// Describe implements prometheus.Collector.
func (c *topicCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range c.descs {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *topicCollector) Collect(ch chan<- prometheus.Metric) {
	for _, t := range c.m.openTopics() {
		var sum partitionSample
		for _, p := range t.parts {
			s := p.sample()
			if c.perPartition {
				c.emit(ch, &s, t.name, strconv.Itoa(int(p.index)))
			} else {
				sum.add(s)
			}
		}
		if !c.perPartition {
			c.emit(ch, &sum, t.name)
		}
	}
}

func (c *topicCollector) emit(ch chan<- prometheus.Metric, s *partitionSample, labels ...string) {
	for i, f := range topicFamilies {
		vt := prometheus.GaugeValue
		if f.counter {
			vt = prometheus.CounterValue
		}
		ch <- prometheus.MustNewConstMetric(c.descs[i], vt, float64(f.value(s)), labels...)
	}
}

// openTopic is a topic's name and partitions at one moment.
type openTopic struct {
	name  string
	parts []*Partition
}

// openTopics returns every open topic with its partitions.
func (m *Manager) openTopics() []openTopic {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]openTopic, 0, len(m.topics))
	for name, ts := range m.topics {
		out = append(out, openTopic{name: name, parts: ts.parts})
	}
	return out
}

// registerBacklogMetrics exports the upload backlog and free space (room.go).
func (m *Manager) registerBacklogMetrics(reg prometheus.Registerer) {
	opts := func(name, help string) prometheus.GaugeOpts {
		return prometheus.GaugeOpts{Namespace: "streamhouse", Subsystem: "log", Name: name, Help: help}
	}
	reg.MustRegister(
		prometheus.NewGaugeFunc(opts("upload_backlog_bytes", "Bytes of sealed segments on local disk waiting for upload to the object store."),
			func() float64 { return float64(m.room.backlog.Load()) }),
		prometheus.NewGaugeFunc(opts("upload_backlog_limit_bytes", "The upload backlog at which appends are refused (max upload backlog)."),
			func() float64 { return float64(m.room.limit) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Namespace: "streamhouse", Subsystem: "log", Name: "room_refusals_total",
			Help: "Appends refused before writing because the upload backlog was at its limit or the free space below the reserve."},
			func() float64 { return float64(m.room.refusals.Load()) }),
		prometheus.NewGaugeFunc(opts("readahead_reserved_bytes", "Bytes of the segment cache reserved by read-ahead prefetches in flight or waiting to be read (readahead.go)."),
			func() float64 { return float64(m.cache.reservedBytes()) }),
	)
}
