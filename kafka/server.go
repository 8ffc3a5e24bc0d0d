// Package kafka is StreamHouse's Kafka wire-protocol front: a TCP listener
// that frames requests, decodes them with franz-go's kmsg, answers them from
// the partition logs (package log) and the metadata store (package meta),
// and encodes the responses. Each API key has one file named after it
// (00_produce.go, 01_fetch.go, ...) and one entry in the dispatch table
// (dispatch.go). The group coordinator is package groups (kafka/groups)
// and the transaction coordinator package txn (kafka/txn); the group and
// transaction handlers call them. SASL listeners authenticate connections
// (sasl_conn.go) with the mechanisms of package sasl (kafka/sasl), against
// the SCRAM credentials in meta. Go errors from log and meta become Kafka
// error codes only here (errors.go). Fields the handlers knowingly ignore
// are listed in UNSUPPORTED.md.
package kafka

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/streamhouse/streamhouse/kafka/groups"
	"github.com/streamhouse/streamhouse/kafka/sasl"
	"github.com/streamhouse/streamhouse/kafka/txn"
	"github.com/streamhouse/streamhouse/log"
	"github.com/streamhouse/streamhouse/meta"
)

// Defaults for Config fields left zero.
const (
	// DefaultMaxRequestBytes is Kafka's socket.request.max.bytes default.
	DefaultMaxRequestBytes = 100 << 20
	// DefaultIdleTimeout is Kafka's connections.max.idle.ms default.
	DefaultIdleTimeout = 10 * time.Minute
	// DefaultPartitions is the partition count of auto-created topics and
	// of CreateTopics asking for -1 (Kafka's num.partitions default).
	DefaultPartitions = 1
	// DefaultMaxTopicPartitions caps the partition count CreateTopics
	// accepts: every partition costs a directory, an open file and meta
	// rows, created synchronously.
	DefaultMaxTopicPartitions = 10000
	// DefaultMaxConnections caps open client connections (limits.go). An
	// idle connection costs about 10 KiB (two goroutines and their
	// buffers; 2,000 idle connections measured 19 MiB), so 4096 of them
	// stay near 40 MiB.
	DefaultMaxConnections = 4096
	// DefaultQueuedMaxRequestBytes caps the request bytes in memory across
	// connections (limits.go); raised to MaxRequestBytes when that is
	// larger.
	DefaultQueuedMaxRequestBytes = 256 << 20
	// DefaultFetchMaxBytes caps a Fetch response's MaxBytes (Kafka's
	// fetch.max.bytes default, 55 MiB).
	DefaultFetchMaxBytes = 55 << 20
	// clusterIDTimeout bounds New's read of the cluster ID from meta.
	clusterIDTimeout = 30 * time.Second
	// txnStartTimeout bounds the transaction coordinator's Start in New:
	// loading its state and completing decided transactions (what is not
	// completed by then is retried in the background).
	txnStartTimeout = time.Minute
	// maxInFlight bounds the responses queued per connection: a client
	// that stops reading stalls its own connection, not the broker.
	maxInFlight = 32
	// writeTimeout bounds one response write.
	writeTimeout = 30 * time.Second
)

// The group coordinator is package groups; Config carries its settings
// under these names, so that the front is configured in one place.
type (
	// GroupConfig tunes the group coordinator (groups.Config).
	GroupConfig = groups.Config
	// Clock is the group coordinator's time source (groups.Clock).
	Clock = groups.Clock
	// Timer is a timer started by a Clock (groups.Timer).
	Timer = groups.Timer
)

// Group coordinator defaults (Kafka's broker defaults), for GroupConfig's
// zero fields.
const (
	// DefaultGroupInitialRebalanceDelay is group.initial.rebalance.delay.ms.
	DefaultGroupInitialRebalanceDelay = groups.DefaultInitialRebalanceDelay
	// DefaultGroupMinSessionTimeout is group.min.session.timeout.ms.
	DefaultGroupMinSessionTimeout = groups.DefaultMinSessionTimeout
	// DefaultGroupMaxSessionTimeout is group.max.session.timeout.ms.
	DefaultGroupMaxSessionTimeout = groups.DefaultMaxSessionTimeout
	// DefaultOffsetsRetention is offsets.retention.minutes (7 days).
	DefaultOffsetsRetention = groups.DefaultOffsetsRetention
	// DefaultOffsetsRetentionCheckInterval is
	// offsets.retention.check.interval.ms.
	DefaultOffsetsRetentionCheckInterval = groups.DefaultOffsetsRetentionCheckInterval
	// DefaultOffsetMetadataMaxBytes is offset.metadata.max.bytes.
	DefaultOffsetMetadataMaxBytes = groups.DefaultOffsetMetadataMaxBytes
	// DefaultConsumerSessionTimeout is group.consumer.session.timeout.ms
	// (KIP-848 consumer groups).
	DefaultConsumerSessionTimeout = groups.DefaultConsumerSessionTimeout
	// DefaultConsumerHeartbeatInterval is
	// group.consumer.heartbeat.interval.ms.
	DefaultConsumerHeartbeatInterval = groups.DefaultConsumerHeartbeatInterval
)

// TxnConfig tunes the transaction coordinator (txn.Config); zero fields
// take Kafka's defaults.
type TxnConfig = txn.Config

// Transaction coordinator defaults (Kafka's broker defaults), for
// TxnConfig's zero fields.
const (
	// DefaultTransactionMaxTimeout is transaction.max.timeout.ms.
	DefaultTransactionMaxTimeout = txn.DefaultTransactionMaxTimeout
	// DefaultTransactionAbortInterval is
	// transaction.abort.timed.out.transaction.cleanup.interval.ms.
	DefaultTransactionAbortInterval = txn.DefaultAbortTimedOutInterval
	// DefaultTransactionalIDExpiration is transactional.id.expiration.ms.
	DefaultTransactionalIDExpiration = txn.DefaultTransactionalIDExpiration
)

// Config is everything a Server needs. Log and Meta are required.
type Config struct {
	// Addr is the listen address (e.g. ":9092"); informational, the
	// caller passes the listener to Serve.
	Addr string
	// AdvertisedHost and AdvertisedPort are what Metadata tells clients of
	// a listener served with Serve to connect to (ServeListener takes its
	// own). Empty/zero: the listener's address (its host, or the
	// machine's host name when it listens on every interface).
	AdvertisedHost string
	AdvertisedPort int32
	// MaxRequestBytes caps a request frame; larger ones close the
	// connection before anything is allocated for them.
	MaxRequestBytes int32
	// IdleTimeout closes connections that send nothing for that long.
	IdleTimeout time.Duration
	// MaxConnections caps open connections; one past it is closed at once
	// (limits.go). Zero is DefaultMaxConnections.
	MaxConnections int
	// QueuedMaxRequestBytes caps the request bytes held in memory across
	// connections; past it connections wait before reading their next
	// frame (limits.go). Zero is DefaultQueuedMaxRequestBytes; never below
	// MaxRequestBytes.
	QueuedMaxRequestBytes int64
	// FetchMaxBytes caps the MaxBytes a Fetch may ask for (KIP-74 still
	// returns a first batch larger than it). Zero is DefaultFetchMaxBytes.
	FetchMaxBytes int32
	// Log holds the partitions; Meta allocates producer IDs.
	Log  *log.Manager
	Meta meta.Store
	// Logger receives connection and handler logs; nil discards them.
	Logger *slog.Logger
	// AutoCreateTopics is auto.create.topics.enable: Metadata creates
	// unknown topics with DefaultPartitions partitions when the request
	// allows it.
	AutoCreateTopics  bool
	DefaultPartitions int32
	// MaxTopicPartitions caps CreateTopics' partition count; larger asks
	// get INVALID_PARTITIONS.
	MaxTopicPartitions int32
	// ClusterID is reported by Metadata and DescribeCluster and checked
	// by ApiVersions v5. Empty: the metadata store's (meta.Store.ClusterID),
	// read once by New.
	ClusterID string
	NodeID    int32
	// NoFsyncOnAcksAll answers acks=-1 once the batch reached the OS, like
	// Kafka's default (no fsync before acking), instead of after fsync.
	// For like-for-like benchmarks; it weakens the durability contract.
	NoFsyncOnAcksAll bool
	// Clock drives the group coordinator's timers (session, rebalance,
	// initial delay, offset expiry) and the transaction coordinator's
	// (timeouts, expiry, retries); nil is the real clock. Tests inject a
	// fake one.
	Clock Clock
	// Groups tunes the group coordinator; zero fields take Kafka's
	// defaults.
	Groups GroupConfig
	// Txn tunes the transaction coordinator (its timers also run on
	// Clock); zero fields take Kafka's defaults.
	Txn TxnConfig
	// TransactionV2 advertises the feature transaction.version at level 2
	// in ApiVersions, which makes clients use transaction version 2
	// (KIP-890 part 2). Off, clients use version 1; the coordinator
	// serves both (18_api_versions.go).
	TransactionV2 bool
	// Metrics, when set, registers the front's request and connection
	// metrics (metrics.go) and the group collector (group_metrics.go).
	// Nil keeps them unregistered.
	Metrics prometheus.Registerer
	// GroupMetricsMaxSeries caps the per-group series the group collector
	// exports (group_metrics.go); 0 is DefaultGroupMetricsMaxSeries,
	// negative exports none.
	GroupMetricsMaxSeries int
	// SlowRequestThreshold logs requests whose service time exceeds it at
	// Warn (slow_request.go); 0 disables the log.
	SlowRequestThreshold time.Duration
	// SASLMechanisms are the mechanisms SASL_PLAINTEXT and SASL_SSL
	// listeners offer (sasl.Plain, sasl.ScramSHA256, sasl.ScramSHA512);
	// nil is sasl.DefaultMechanisms() (all of them).
	SASLMechanisms []string
	// SASLHandshakeTimeout bounds the time from accept to the end of
	// SASL authentication; zero is DefaultSASLHandshakeTimeout.
	SASLHandshakeTimeout time.Duration
	// FailedAuthenticationDelay delays the answer to a failed SASL
	// authentication (Kafka's connection.failed.authentication.delay.ms);
	// zero is DefaultFailedAuthenticationDelay, negative none.
	FailedAuthenticationDelay time.Duration
	// Cleaner is the compaction config the log was opened with
	// (log.Config.Cleaner). DescribeConfigs reports its Disabled,
	// DedupeBufferBytes, IOBytesPerSecond and Interval as the broker's
	// log.cleaner.* configs, zero fields with the log's defaults; the
	// other log.cleaner.* values come from Log.TopicConfigDefault.
	Cleaner log.CleanerConfig
}

// Server is one broker's Kafka listener. Serve may be called for several
// listeners; Close stops them all.
type Server struct {
	cfg    Config
	logger *slog.Logger
	ctx    context.Context // cancelled by Close; parent of every handler's
	cancel context.CancelFunc
	// apis is the dispatch table and apiKeys its ApiVersions listing;
	// features and featuresEpoch are the advertised features
	// (18_api_versions.go). All are built by New and never modified.
	apis          map[int16]api
	apiKeys       []kmsg.ApiVersionsResponseApiKey
	features      []feature
	featuresEpoch int64

	// mu guards the fields below.
	mu        sync.Mutex
	closed    bool
	listeners map[net.Listener]struct{}
	conns     map[*conn]struct{}
	advHost   string
	advPort   int32

	// wg counts connection goroutines; Close waits for it.
	wg sync.WaitGroup

	// groups is the group coordinator, stopped by Close.
	groups *groups.Coordinator
	// txn is the transaction coordinator, started by New and stopped by
	// Close. The Produce handler asks it about transactional batches
	// (txn.Coordinator.CheckProduce).
	txn *txn.Coordinator
	// internal tracks the internal topics (internal_topics.go).
	internal internalTopics
	// metrics are the request and connection metrics; never nil.
	metrics *frontMetrics
	// groupMetrics is the group collector, registered when
	// Config.Metrics is set.
	groupMetrics *groupCollector
	// topicIDs caches topicSnapshot (topics.go).
	topicIDs atomic.Pointer[topicSnapshot]
	// frames lends produce request frames (frame.go).
	frames framePool
	// budget holds the request bytes in memory (limits.go).
	budget *byteBudget
	// respQueued and respWaiting sum, across connections, the in-memory
	// response bytes queued for writers and the readers waiting for room
	// (conn.reserveMem), for /metrics.
	respQueued, respWaiting atomic.Int64
	// auth checks SASL exchanges against the credentials in Meta.
	auth *sasl.Authenticator
	// rejectLogged is when a rejected connection was last logged (unix
	// nanoseconds), to log at most one a second.
	rejectLogged atomic.Int64
}

// New checks cfg, fills in defaults and returns a Server ready to Serve.
func New(cfg Config) (*Server, error) {
	if cfg.Log == nil || cfg.Meta == nil {
		return nil, errors.New("kafka: Config needs Log and Meta")
	}
	if cfg.MaxRequestBytes <= 0 {
		cfg.MaxRequestBytes = DefaultMaxRequestBytes
	}
	if cfg.IdleTimeout <= 0 {
		cfg.IdleTimeout = DefaultIdleTimeout
	}
	if cfg.DefaultPartitions <= 0 {
		cfg.DefaultPartitions = DefaultPartitions
	}
	if cfg.MaxTopicPartitions <= 0 {
		cfg.MaxTopicPartitions = DefaultMaxTopicPartitions
	}
	if cfg.ClusterID == "" {
		ctx, cancel := context.WithTimeout(context.Background(), clusterIDTimeout)
		id, err := cfg.Meta.ClusterID(ctx)
		cancel()
		if err != nil {
			return nil, fmt.Errorf("kafka: cluster id: %w", err)
		}
		cfg.ClusterID = id
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.GroupMetricsMaxSeries == 0 {
		cfg.GroupMetricsMaxSeries = DefaultGroupMetricsMaxSeries
	}
	if cfg.MaxConnections <= 0 {
		cfg.MaxConnections = DefaultMaxConnections
	}
	if cfg.FetchMaxBytes <= 0 {
		cfg.FetchMaxBytes = DefaultFetchMaxBytes
	}
	if cfg.QueuedMaxRequestBytes <= 0 {
		cfg.QueuedMaxRequestBytes = DefaultQueuedMaxRequestBytes
	}
	cfg.QueuedMaxRequestBytes = max(cfg.QueuedMaxRequestBytes, int64(cfg.MaxRequestBytes))
	if cfg.SASLMechanisms == nil {
		cfg.SASLMechanisms = sasl.DefaultMechanisms()
	}
	for _, m := range cfg.SASLMechanisms {
		if !sasl.Supported(m) {
			return nil, fmt.Errorf("kafka: unsupported SASL mechanism %q", m)
		}
	}
	if cfg.SASLHandshakeTimeout <= 0 {
		cfg.SASLHandshakeTimeout = DefaultSASLHandshakeTimeout
	}
	if cfg.FailedAuthenticationDelay == 0 {
		cfg.FailedAuthenticationDelay = DefaultFailedAuthenticationDelay
	}
	ctx, cancel := context.WithCancel(context.Background())
	apis := dispatchTable()
	features, featEpoch := featureList(cfg.TransactionV2)
	s := &Server{
		cfg: cfg, logger: cfg.Logger.With("component", "kafka"), ctx: ctx, cancel: cancel,
		apis: apis, apiKeys: apiVersionsKeys(apis), features: features, featuresEpoch: featEpoch,
		listeners: make(map[net.Listener]struct{}), conns: make(map[*conn]struct{}),
		advHost: cfg.AdvertisedHost, advPort: cfg.AdvertisedPort,
		groups:  groups.New(cfg.Groups, cfg.Clock, cfg.Meta, cfg.Logger, errorCode),
		metrics: newFrontMetrics(cfg.Metrics, apis),
		budget:  newByteBudget(cfg.QueuedMaxRequestBytes),
		auth:    sasl.NewAuthenticator(cfg.Meta),
	}
	s.txn = txn.New(cfg.Txn, cfg.Clock, cfg.Meta, cfg.Log, cfg.Logger, cfg.Metrics)
	startCtx, cancelStart := context.WithTimeout(ctx, txnStartTimeout)
	err := s.txn.Start(startCtx)
	cancelStart()
	if err != nil {
		s.txn.Close()
		s.groups.Close()
		cancel()
		return nil, fmt.Errorf("kafka: %w", err)
	}
	s.metrics.registerLimits(cfg.Metrics, s.budget, cfg.QueuedMaxRequestBytes)
	s.metrics.registerResponseQueue(cfg.Metrics, &s.respQueued, &s.respWaiting)
	s.groupMetrics = newGroupCollector(s)
	if cfg.Metrics != nil {
		cfg.Metrics.MustRegister(s.groupMetrics)
	}
	return s, nil
}

// Listener describes one of Kafka's listeners (an entry of listeners and
// advertised.listeners): its name, the address clients are told to use
// and, for an SSL listener, its TLS configuration.
type Listener struct {
	// Name is the listener's name, which is also its security protocol in
	// this broker: "PLAINTEXT", "SSL", "SASL_PLAINTEXT" or "SASL_SSL"
	// (the SASL ones make connections authenticate, sasl_conn.go; TLS is
	// the TLS field's business). Empty is PLAINTEXT.
	Name string
	// AdvertisedHost and AdvertisedPort are what Metadata, FindCoordinator
	// and DescribeCluster tell a client that connected through this
	// listener. Empty/zero: the listener's own address (its host, or the
	// machine's host name when it listens on every interface).
	AdvertisedHost string
	AdvertisedPort int32
	// TLS, when set, makes every connection a TLS server connection with
	// this configuration (the handshake runs before the first request).
	TLS *tls.Config
}

// endpoint is the address advertised to a listener's connections.
type endpoint struct {
	host string
	port int32
}

// tlsHandshakeTimeout bounds a TLS handshake on an SSL listener.
const tlsHandshakeTimeout = 10 * time.Second

// Serve accepts connections on l until Close; it then returns nil. Other
// accept errors are returned (temporary ones are retried). It serves l as
// a PLAINTEXT listener advertising Config's AdvertisedHost and
// AdvertisedPort; ServeListener serves other listeners.
func (s *Server) Serve(l net.Listener) error {
	return s.ServeListener(l, Listener{Name: "PLAINTEXT",
		AdvertisedHost: s.cfg.AdvertisedHost, AdvertisedPort: s.cfg.AdvertisedPort})
}

// ServeListener is Serve for the listener ln describes. The first listener
// served also gives the broker-wide advertised address (DescribeConfigs'
// advertised.listeners).
func (s *Server) ServeListener(l net.Listener, ln Listener) error {
	if ln.Name == "" {
		ln.Name = "PLAINTEXT"
	}
	ep := &endpoint{host: ln.AdvertisedHost, port: ln.AdvertisedPort}
	fillAdvertised(&ep.host, &ep.port, l.Addr())
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		l.Close()
		return nil
	}
	s.listeners[l] = struct{}{}
	if len(s.listeners) == 1 {
		if s.advHost == "" {
			s.advHost = ep.host
		}
		if s.advPort == 0 {
			s.advPort = ep.port
		}
	}
	s.mu.Unlock()
	s.logger.Info("kafka listener serving", "listener", ln.Name, "addr", l.Addr().String(),
		"advertised", net.JoinHostPort(ep.host, strconv.Itoa(int(ep.port))))

	var backoff time.Duration
	for {
		nc, err := l.Accept()
		if err != nil {
			if s.isClosed() {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
				s.logger.Warn("accept failed; retrying", "err", err, "retry_in", backoff)
				time.Sleep(backoff)
				continue
			}
			return fmt.Errorf("kafka: accept: %w", err)
		}
		backoff = 0
		if ln.TLS != nil {
			nc = tls.Server(nc, ln.TLS)
		}
		s.serveConnOn(nc, ep, isSASLListener(ln.Name))
	}
}

// fillAdvertised fills in an empty advertised host and a zero port from
// the listener's address a.
func fillAdvertised(advHost *string, advPort *int32, a net.Addr) {
	host, port, err := net.SplitHostPort(a.String())
	if err != nil {
		return
	}
	if *advHost == "" {
		if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
			if h, err := os.Hostname(); err == nil {
				host = h
			}
		}
		*advHost = host
	}
	if *advPort == 0 {
		if p, err := strconv.Atoi(port); err == nil {
			*advPort = int32(p)
		}
	}
}

// advertised returns the host and port clients are told to use.
func (s *Server) advertised() (string, int32) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.advHost, s.advPort
}

// advertisedTo returns the host and port the client that sent r is told
// to use: those of the listener its connection came in on.
func (s *Server) advertisedTo(r *request) (string, int32) {
	if r.adv != nil {
		return r.adv.host, r.adv.port
	}
	return s.advertised()
}

func (s *Server) isClosed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}

// serveConn starts a connection's reader and writer and returns the
// connection (the fuzz test closes it and waits for c.done).
func (s *Server) serveConn(nc net.Conn) *conn { return s.serveConnOn(nc, nil, false) }

// serveConnOn is serveConn for a connection that came in on a listener
// advertising ep (nil: the broker-wide advertised address) and, with
// saslAuth, requiring SASL authentication.
func (s *Server) serveConnOn(nc net.Conn, ep *endpoint, saslAuth bool) *conn {
	c := newConn(s, nc)
	c.adv = ep
	if saslAuth {
		c.auth.sasl = &saslState{deadline: time.Now().Add(s.cfg.SASLHandshakeTimeout)}
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		nc.Close()
		close(c.done) // no goroutine was started
		return c
	}
	if len(s.conns) >= s.cfg.MaxConnections {
		s.mu.Unlock()
		s.metrics.rejected.Inc() // before the close a client (or test) sees
		nc.Close()
		close(c.done)
		if now := time.Now().UnixNano(); now-s.rejectLogged.Load() > int64(time.Second) {
			s.rejectLogged.Store(now)
			s.logger.Warn("connection refused: too many connections", "remote", c.remote, "max_connections", s.cfg.MaxConnections)
		}
		return c
	}
	s.conns[c] = struct{}{}
	s.wg.Add(2)
	s.mu.Unlock()
	s.metrics.accepted.Inc()
	s.metrics.connsOpen.Inc()
	go c.readLoop()
	go c.writeLoop()
	return c
}

func (s *Server) forget(c *conn) {
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
}

// Close stops accepting, closes every listener and connection, cancels
// in-flight handlers (long-polling fetches return at once) and waits for
// every connection goroutine to exit. It is safe to call more than once.
func (s *Server) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		s.wg.Wait()
		return nil
	}
	s.closed = true
	var err error
	for l := range s.listeners {
		if cerr := l.Close(); cerr != nil && !errors.Is(cerr, net.ErrClosed) && err == nil {
			err = cerr
		}
	}
	conns := make([]*conn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	s.cancel()
	for _, c := range conns {
		c.close()
	}
	s.wg.Wait()
	s.groups.Close()
	s.txn.Close()
	s.frames.close()
	return err
}
