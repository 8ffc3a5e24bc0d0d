package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/streamhouse/streamhouse/kafka"
)

// kafkaFront runs the Kafka listeners (Config.KafkaListeners) as a front.
type kafkaFront struct {
	listeners []KafkaListener
	tls       *tls.Config // for SSL and SASL_SSL listeners
	srv       *kafka.Server
	done      chan error // one value per listener served
	serving   int
}

func (b *broker) newKafkaFront() (*kafkaFront, error) {
	cfg := kafka.Config{
		Addr: b.cfg.KafkaAddr, Log: b.logs, Meta: b.meta, Logger: b.logger, ClusterID: b.clusterID,
		AutoCreateTopics: b.cfg.AutoCreateTopics, MaxRequestBytes: int32(b.cfg.MaxRequestBytes),
		MaxConnections: b.cfg.MaxConnections, QueuedMaxRequestBytes: b.cfg.QueuedMaxRequestBytes,
		FetchMaxBytes:        int32(b.cfg.FetchMaxBytes),
		NoFsyncOnAcksAll:     !b.cfg.FsyncAcksAll,
		Metrics:              b.reg,
		SlowRequestThreshold: b.cfg.SlowRequestThreshold,
		Groups: kafka.GroupConfig{
			InitialRebalanceDelay:         b.cfg.GroupInitialRebalanceDelay,
			MinSessionTimeout:             b.cfg.GroupMinSessionTimeout,
			MaxSessionTimeout:             b.cfg.GroupMaxSessionTimeout,
			OffsetsRetention:              b.cfg.OffsetsRetention,
			OffsetsRetentionCheckInterval: b.cfg.OffsetsRetentionCheckInterval,
			ConsumerSessionTimeout:        b.cfg.ConsumerSessionTimeout,
			ConsumerHeartbeatInterval:     b.cfg.ConsumerHeartbeatInterval,
		},
		GroupMetricsMaxSeries: b.cfg.GroupMetricsMaxSeries,
		TransactionV2:         b.cfg.TransactionVersion == 2,
		Txn: kafka.TxnConfig{
			TransactionMaxTimeout:     b.cfg.TransactionMaxTimeout,
			AbortTimedOutInterval:     b.cfg.TransactionAbortInterval,
			TransactionalIDExpiration: b.cfg.TransactionalIDExpiration,
		},
		Cleaner:                   b.cfg.cleaner(),
		SASLMechanisms:            b.cfg.SASLMechanisms,
		FailedAuthenticationDelay: b.cfg.FailedAuthenticationDelay,
	}
	// Zero means "Kafka's default" to kafka.Config and "off" here.
	if cfg.FailedAuthenticationDelay == 0 {
		cfg.FailedAuthenticationDelay = -1
	}
	if cfg.Groups.InitialRebalanceDelay == 0 {
		cfg.Groups.InitialRebalanceDelay = -1
	}
	if cfg.GroupMetricsMaxSeries == 0 {
		cfg.GroupMetricsMaxSeries = -1
	}
	tc, err := b.cfg.serverTLS()
	if err != nil {
		return nil, err
	}
	if u := b.cfg.BootstrapUser; u.Name != "" {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		err := createBootstrapUser(ctx, b.meta, u, b.logger)
		cancel()
		if err != nil {
			return nil, err
		}
	}
	srv, err := kafka.New(cfg)
	if err != nil {
		return nil, err
	}
	return &kafkaFront{listeners: b.cfg.KafkaListeners, tls: tc, srv: srv}, nil
}

func (f *kafkaFront) Name() string { return "kafka" }

// Start binds every listener, in order, and serves them; it returns the
// first one's address (the kafka server logs each listener it serves).
func (f *kafkaFront) Start(ctx context.Context) (net.Addr, error) {
	f.done = make(chan error, len(f.listeners))
	var first net.Addr
	for _, kl := range f.listeners {
		ln := kafka.Listener{Name: kl.Name}
		if usesTLS(kl.Name) {
			ln.TLS = f.tls
		}
		if a := kl.Advertised; a != "" {
			host, port, err := net.SplitHostPort(a)
			if err != nil {
				return nil, fmt.Errorf("kafka advertised address %q: %w", a, err)
			}
			p, err := strconv.ParseInt(port, 10, 32)
			if err != nil {
				return nil, fmt.Errorf("kafka advertised address %q: %w", a, err)
			}
			ln.AdvertisedHost, ln.AdvertisedPort = host, int32(p)
		}
		l, err := net.Listen("tcp", kl.Addr)
		if err != nil {
			// Listeners already serving stop with the front: Stop
			// runs only for started fronts, so close them here.
			f.Stop(ctx)
			return nil, fmt.Errorf("listen on %s (listener %s): %w", kl.Addr, kl.Name, err)
		}
		if first == nil {
			first = l.Addr()
		}
		f.serving++
		go func() { f.done <- f.srv.ServeListener(l, ln) }()
	}
	return first, nil
}

// Stop closes the listeners and every connection and waits for the
// handlers; an append already under way completes before the log closes.
func (f *kafkaFront) Stop(ctx context.Context) error {
	err := f.srv.Close()
	for ; f.serving > 0; f.serving-- {
		if serr := <-f.done; err == nil {
			err = serr
		}
	}
	return err
}
