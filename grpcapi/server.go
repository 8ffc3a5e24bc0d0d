package grpcapi

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/reflection"

	"github.com/streamhouse/streamhouse/log"
	"github.com/streamhouse/streamhouse/meta"
	pb "github.com/streamhouse/streamhouse/proto"
)

// DefaultAddr is where the gRPC API listens unless Config.Addr says
// otherwise.
const DefaultAddr = ":50051"

// Message size limits; see the package documentation.
const (
	// DefaultMaxRecvBytes caps a request message unless
	// Config.MaxRecvBytes says otherwise.
	DefaultMaxRecvBytes = 16 << 20
	// DefaultConsumeRecords is the max_records of a Consume that gives 0.
	DefaultConsumeRecords = 100
	// MaxConsumeRecords caps max_records.
	MaxConsumeRecords = 10_000
	// DefaultConsumeBytes is the max_bytes of a Consume that gives 0.
	DefaultConsumeBytes = 1 << 20
	// MaxConsumeBytes caps max_bytes. It keeps answers under the 4 MiB
	// that gRPC clients accept by default, unless one record is larger.
	MaxConsumeBytes = 3 << 20
	// MaxConsumeWait caps max_wait_ms.
	MaxConsumeWait = 30 * time.Second
	// MaxPartitions caps a new topic's partition_count: every partition
	// holds an open file.
	MaxPartitions = 10_000
)

// Config is what a Server needs. Log and Meta are required.
type Config struct {
	// Log is the storage engine both fronts share.
	Log *log.Manager
	// Meta holds committed offsets (the rows Kafka's OffsetCommit uses).
	Meta meta.Store
	// Logger receives one line per failed call that is not the caller's
	// fault; nil discards.
	Logger *slog.Logger
	// Addr is where Start listens; empty means DefaultAddr.
	Addr string
	// MaxRecvBytes caps a request message; 0 means DefaultMaxRecvBytes.
	MaxRecvBytes int
	// Now is the clock for record timestamps and commit times; nil means
	// time.Now.
	Now func() time.Time
	// Registerer receives the call metrics (metrics.go); nil means they
	// are kept but not exported.
	Registerer prometheus.Registerer
	// SlowRequestThreshold logs unary calls whose service time exceeds it
	// (slowlog.go); 0 turns the log off.
	SlowRequestThreshold time.Duration
	// TLS, when set, serves every connection (health and reflection
	// included) over TLS with this configuration; nil is plaintext.
	TLS *tls.Config
}

// Server is the native gRPC front: the StreamHouse service, server
// reflection and grpc.health.v1 on one grpc.Server. Start and Stop match
// the broker's front lifecycle; Serve runs it on a listener of your own.
type Server struct {
	pb.UnimplementedStreamHouseServer

	cfg    Config
	logger *slog.Logger
	grpc   *grpc.Server
	health *health.Server
	// stopping is closed when Stop begins, so long polls answer at once
	// instead of holding the graceful stop.
	stopping chan struct{}
	stopOnce sync.Once
	// polls counts long polls waiting for data (tests wait on it).
	polls atomic.Int32

	// mu guards served.
	mu sync.Mutex
	// served is closed when the Serve goroutine started by Start returns;
	// nil when Start has not served.
	served chan struct{}
}

// New builds a Server. It does not listen: call Start or Serve.
func New(cfg Config) *Server {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Addr == "" {
		cfg.Addr = DefaultAddr
	}
	if cfg.MaxRecvBytes <= 0 {
		cfg.MaxRecvBytes = DefaultMaxRecvBytes
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	s := &Server{
		cfg:      cfg,
		logger:   cfg.Logger,
		health:   health.NewServer(),
		stopping: make(chan struct{}),
	}
	rpcs := newRPCMetrics(cfg.Registerer)
	unary := []grpc.UnaryServerInterceptor{rpcs.unary}
	if cfg.SlowRequestThreshold > 0 {
		unary = append(unary, s.slowUnary)
	}
	opts := []grpc.ServerOption{grpc.MaxRecvMsgSize(cfg.MaxRecvBytes),
		grpc.ChainUnaryInterceptor(unary...), grpc.ChainStreamInterceptor(rpcs.stream),
		grpc.UnknownServiceHandler(unimplemented)}
	if cfg.TLS != nil {
		opts = append(opts, grpc.Creds(credentials.NewTLS(cfg.TLS)))
	}
	s.grpc = grpc.NewServer(opts...)
	pb.RegisterStreamHouseServer(s.grpc, s)
	healthpb.RegisterHealthServer(s.grpc, s.health)
	reflection.Register(s.grpc)
	rpcs.addMethods(s.grpc.GetServiceInfo())
	s.health.SetServingStatus(pb.StreamHouse_ServiceDesc.ServiceName, healthpb.HealthCheckResponse_SERVING)
	return s
}

// Name names the front in the broker's logs.
func (s *Server) Name() string { return "grpc" }

// Serve answers calls on lis until Stop; it returns nil after Stop.
func (s *Server) Serve(lis net.Listener) error {
	err := s.grpc.Serve(lis)
	if errors.Is(err, grpc.ErrServerStopped) {
		return nil
	}
	return err
}

// Start listens on Config.Addr, serves in the background and returns the
// bound address. A Server starts at most once.
func (s *Server) Start(ctx context.Context) (net.Addr, error) {
	var lc net.ListenConfig
	lis, err := lc.Listen(ctx, "tcp", s.cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("grpc: listen on %s: %w", s.cfg.Addr, err)
	}
	done := make(chan struct{})
	s.mu.Lock()
	s.served = done
	s.mu.Unlock()
	go func() {
		defer close(done)
		if err := s.Serve(lis); err != nil {
			s.logger.Error("grpc server failed", "addr", lis.Addr().String(), "err", err)
		}
	}()
	return lis.Addr(), nil
}

// Stop reports NOT_SERVING on the health service, stops accepting, ends
// long polls and lets calls in flight finish until ctx ends, then closes
// every connection. It returns once the server's goroutines have exited;
// the error is ctx's if the graceful stop did not finish in time.
func (s *Server) Stop(ctx context.Context) error {
	s.stopOnce.Do(func() {
		s.health.Shutdown()
		close(s.stopping)
	})
	graceful := make(chan struct{})
	go func() {
		s.grpc.GracefulStop()
		close(graceful)
	}()
	var err error
	select {
	case <-graceful:
	case <-ctx.Done():
		err = fmt.Errorf("grpc: graceful stop: %w", context.Cause(ctx))
		s.grpc.Stop()
		<-graceful
	}
	s.mu.Lock()
	served := s.served
	s.mu.Unlock()
	if served != nil {
		<-served
	}
	return err
}

// GracefulStop is Stop without a deadline.
func (s *Server) GracefulStop() {
	_ = s.Stop(context.Background())
}
