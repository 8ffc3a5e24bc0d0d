package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/streamhouse/streamhouse/grpcapi"
	"github.com/streamhouse/streamhouse/log"
	"github.com/streamhouse/streamhouse/meta"
	"github.com/streamhouse/streamhouse/objstore"
)

// Time limits of startup and shutdown steps.
const (
	// checkBucketTimeout bounds the startup probe of the S3 bucket
	// (retries included).
	checkBucketTimeout = 30 * time.Second
	// frontStopTimeout is how long each front may drain in-flight requests.
	frontStopTimeout = 10 * time.Second
	// httpStopTimeout is how long in-flight scrapes and probes may finish.
	httpStopTimeout = 5 * time.Second
)

// front is a network front of the broker: a listener that turns its
// protocol's requests into calls on the storage engine (b.logs, b.meta).
//
// This is where the Kafka listener (kafka/, on Config.KafkaAddr) and the
// gRPC API (grpcapi/, on Config.GRPCAddr) plug in: build them in
// (*broker).newFronts. Fronts start in slice order once storage is open and
// before the broker reports ready; they stop in reverse order, after
// /readyz turns 503 and before the log closes, so every request they
// accepted finishes against open storage.
type front interface {
	// Name names the front in logs: "kafka", "grpc".
	Name() string
	// Start binds the front's address, serves in the background and
	// returns the bound address.
	Start(ctx context.Context) (net.Addr, error)
	// Stop stops accepting, lets requests in flight finish until ctx ends,
	// and returns once every goroutine of the front has exited.
	Stop(ctx context.Context) error
}

// broker is one running StreamHouse: what run built, in start order. Nil
// fields were not built (startup failed first) and are skipped by close.
type broker struct {
	cfg    Config
	logger *slog.Logger
	reg    *prometheus.Registry
	// ready is what /readyz reports: true from the end of start until
	// close begins.
	ready atomic.Bool

	http         *httpServer
	objects      objstore.Store
	closeObjects func() error
	meta         meta.Store
	// clusterID is meta's cluster ID, read once it is open: what the
	// Kafka front reports and streamhouse_cluster_info labels.
	clusterID string
	logs      *log.Manager
	// started holds the fronts that started, in start order.
	started []front
}

// run builds one broker from cfg, serves until ctx is done (SIGINT or
// SIGTERM in main) and then shuts down gracefully: /readyz turns 503, the
// fronts drain, the HTTP server stops, the log closes (appends in flight
// finish, active segments are synced), and the metadata store closes. It
// returns nil after a clean shutdown.
func run(ctx context.Context, cfg Config, logger *slog.Logger) error {
	b := &broker{cfg: cfg, logger: logger, reg: newRegistry()}
	err := b.start(ctx)
	if err == nil {
		b.ready.Store(true)
		logger.Info("ready")
		select {
		case <-ctx.Done():
			logger.Info("shutting down", "cause", context.Cause(ctx))
		case err = <-b.http.done:
			if err == nil {
				err = errors.New("http: server stopped unexpectedly")
			}
		}
	}
	if cerr := b.close(); cerr != nil {
		err = errors.Join(err, cerr)
	}
	if err == nil {
		logger.Info("stopped")
	}
	return err
}

// newRegistry returns the broker's metrics registry with the Go runtime,
// process and build-info collectors; the components add their own.
func newRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		collectors.NewBuildInfoCollector(),
	)
	return reg
}

// start builds the broker in order: HTTP first (so /healthz answers and
// /readyz says 503 while storage opens), then the object store, metadata,
// the log, and the fronts.
func (b *broker) start(ctx context.Context) error {
	cfg := b.cfg
	h, err := startHTTP(cfg.HTTPAddr, newHTTPHandler(b.reg, &b.ready, b.logger), b.logger)
	if err != nil {
		return err
	}
	b.http = h
	b.logger.Info("listening", "server", "http", "addr", h.addr.String(),
		"paths", "/metrics /healthz /readyz")

	b.logger.Info("storing", "data_dir", cfg.DataDir, "metadata", redactedMetadata(cfg.MetadataPath),
		"segments", cfg.SegmentsDir, b.objectsAttr(), "cache_bytes", cfg.CacheBytes)
	if err := log.MkdirAll(cfg.DataDir); err != nil {
		return fmt.Errorf("create data directory %s: %w", cfg.DataDir, err)
	}
	if !isPostgresURL(cfg.MetadataPath) {
		if err := log.MkdirAll(filepath.Dir(cfg.MetadataPath)); err != nil {
			return fmt.Errorf("create metadata directory: %w", err)
		}
	}
	if err := b.openObjects(ctx); err != nil {
		return err
	}
	if err := b.openMeta(ctx); err != nil {
		return err
	}
	if err := b.readClusterID(ctx); err != nil {
		return err
	}
	b.logs, err = log.Open(ctx, log.Config{
		Dir:           cfg.SegmentsDir,
		Objects:       b.objects,
		Meta:          b.meta,
		Logger:        b.logger.With("component", "log"),
		Registerer:    b.reg,
		CacheBytes:    cfg.CacheBytes,
		SegmentBytes:  cfg.SegmentBytes,
		SegmentAge:    cfg.SegmentAge,
		FlushInterval: cfg.FlushInterval,
		SyncScope:     cfg.FsyncScope,

		MaxUploadBacklog: cfg.MaxUploadBacklog,
		Cleaner:          cfg.cleaner(),

		PerPartitionMetrics: cfg.MetricsPerPartition,
	})
	if err != nil {
		return err
	}
	fronts, err := b.newFronts()
	if err != nil {
		return err
	}
	return b.startFronts(ctx, fronts)
}

// cleaner is the log's compaction config. Zero means "default" to
// log.CleanerConfig but "none" (max lag) or "at once" (delete delay) here.
func (c *Config) cleaner() log.CleanerConfig {
	cc := log.CleanerConfig{
		MinCleanableRatio: c.CleanerMinCleanableRatio,
		MinCompactionLag:  c.CleanerMinCompactionLag,
		MaxCompactionLag:  c.CleanerMaxCompactionLag,
		DeleteRetention:   c.CleanerDeleteRetention,
		DedupeBufferBytes: c.CleanerDedupeBufferBytes,
		IOBytesPerSecond:  c.CleanerIOBytesPerSecond,
		Interval:          c.CleanerBackoff,
		DeleteDelay:       c.CleanerDeleteDelay,
		Disabled:          !c.CleanerEnable,
	}
	if cc.MaxCompactionLag == 0 {
		cc.MaxCompactionLag = log.DefaultMaxCompactionLag
	}
	if cc.DeleteDelay == 0 {
		cc.DeleteDelay = -1
	}
	return cc
}

// newFronts builds the network fronts, in start order: the Kafka
// listener, then the gRPC API. They stop in reverse order.
func (b *broker) newFronts() ([]front, error) {
	k, err := b.newKafkaFront()
	if err != nil {
		return nil, err
	}
	gc := grpcapi.Config{
		Log: b.logs, Meta: b.meta, Logger: b.logger.With("component", "grpc"), Addr: b.cfg.GRPCAddr,
		Registerer: b.reg, SlowRequestThreshold: b.cfg.SlowRequestThreshold,
	}
	if b.cfg.GRPCTLS {
		if gc.TLS, err = b.cfg.serverTLS(); err != nil {
			return nil, err
		}
	}
	g := grpcapi.New(gc)
	return []front{k, g}, nil
}

// startFronts starts fronts in order, recording each that started so close
// stops exactly those.
func (b *broker) startFronts(ctx context.Context, fronts []front) error {
	for _, f := range fronts {
		addr, err := f.Start(ctx)
		if err != nil {
			return fmt.Errorf("start %s: %w", f.Name(), err)
		}
		b.started = append(b.started, f)
		b.logger.Info("listening", "server", f.Name(), "addr", addr.String())
	}
	return nil
}

// openObjects opens the configured object store, wrapped with metrics. An
// S3 bucket is probed so that bad credentials or a missing bucket fail now.
func (b *broker) openObjects(ctx context.Context) error {
	cfg := b.cfg
	if cfg.UseLocalStorage {
		if cfg.Bucket != "" {
			b.logger.Warn("bucket ignored: local storage is selected", "bucket", cfg.Bucket)
		}
		local, err := objstore.NewLocal(cfg.LocalStoragePath)
		if err != nil {
			return err
		}
		b.objects = objstore.Instrument(local, b.reg)
		return nil
	}
	s3, err := objstore.NewS3(ctx, objstore.S3Config{
		Bucket:    cfg.Bucket,
		Region:    cfg.AWSRegion,
		Endpoint:  cfg.S3Endpoint,
		PathStyle: cfg.S3PathStyle,
	})
	if err != nil {
		return err
	}
	b.closeObjects = s3.Close
	cctx, cancel := context.WithTimeout(ctx, checkBucketTimeout)
	defer cancel()
	if err := s3.CheckBucket(cctx); err != nil {
		return fmt.Errorf("check bucket (STREAMHOUSE_BUCKET %q): %w", cfg.Bucket, err)
	}
	b.objects = objstore.Instrument(s3, b.reg)
	return nil
}

// objectsAttr describes the object store for the "storing" log line.
func (b *broker) objectsAttr() slog.Attr {
	cfg := b.cfg
	if cfg.UseLocalStorage {
		return slog.Group("objects", "kind", "local", "path", cfg.LocalStoragePath)
	}
	endpoint := cfg.S3Endpoint
	if endpoint == "" {
		endpoint = "aws"
	}
	return slog.Group("objects", "kind", "s3", "bucket", cfg.Bucket, "endpoint", endpoint,
		"region", cfg.AWSRegion, "path_style", cfg.S3PathStyle)
}

// close shuts down whatever start built, in order: not ready, fronts in
// reverse, HTTP, log, metadata, object store. It returns every error.
func (b *broker) close() error {
	b.ready.Store(false)
	var errs []error
	for i := len(b.started) - 1; i >= 0; i-- {
		f := b.started[i]
		ctx, cancel := context.WithTimeout(context.Background(), frontStopTimeout)
		if err := f.Stop(ctx); err != nil {
			errs = append(errs, fmt.Errorf("stop %s: %w", f.Name(), err))
		}
		cancel()
	}
	b.started = nil
	if b.http != nil {
		ctx, cancel := context.WithTimeout(context.Background(), httpStopTimeout)
		errs = append(errs, b.http.shutdown(ctx))
		cancel()
	}
	if b.logs != nil {
		errs = append(errs, b.logs.Close())
	}
	if b.meta != nil {
		errs = append(errs, b.meta.Close())
	}
	if b.closeObjects != nil {
		errs = append(errs, b.closeObjects())
	}
	return errors.Join(errs...)
}

// readClusterID reads the cluster ID from meta (which generated it at the
// database's first open), logs it and exports it on /metrics as
// streamhouse_cluster_info{cluster_id="..."} 1, the usual form of an
// identity that is not a measurement.
func (b *broker) readClusterID(ctx context.Context) error {
	id, err := b.meta.ClusterID(ctx)
	if err != nil {
		return fmt.Errorf("read cluster id: %w", err)
	}
	b.clusterID = id
	b.logger.Info("cluster", "cluster_id", id)
	info := prometheus.NewGauge(prometheus.GaugeOpts{
		Namespace:   "streamhouse",
		Name:        "cluster_info",
		Help:        "Always 1; the cluster_id label is the cluster ID the Kafka front reports (Metadata, DescribeCluster), kept in the metadata store.",
		ConstLabels: prometheus.Labels{"cluster_id": id},
	})
	info.Set(1)
	return b.reg.Register(info)
}

// openMeta opens the metadata store --metadata names: PostgreSQL for a
// postgres:// URL, else a SQLite file.
func (b *broker) openMeta(ctx context.Context) error {
	opt := meta.WithLogger(b.logger.With("component", "meta"))
	var err error
	if isPostgresURL(b.cfg.MetadataPath) {
		var pg *meta.Postgres
		if pg, err = meta.OpenPostgres(ctx, b.cfg.MetadataPath, opt); err == nil {
			b.meta = pg
		}
	} else {
		var db *meta.SQLite
		if db, err = meta.OpenSQLite(ctx, b.cfg.MetadataPath, opt); err == nil {
			b.meta = db
		}
	}
	if err != nil {
		return fmt.Errorf("open metadata %s: %w", redactedMetadata(b.cfg.MetadataPath), err)
	}
	return nil
}
