package main

import (
	"context"
	"fmt"
	"net"
	"strconv"

	"github.com/streamhouse/streamhouse/kafka"
)

// kafkaFront runs the Kafka listener as a front.
type kafkaFront struct {
	addr string
	srv  *kafka.Server
	done chan error
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
		Cleaner:               b.cfg.cleaner(),
	}
	// Zero means "Kafka's default" to kafka.Config and "off" here.
	if cfg.Groups.InitialRebalanceDelay == 0 {
		cfg.Groups.InitialRebalanceDelay = -1
	}
	if cfg.GroupMetricsMaxSeries == 0 {
		cfg.GroupMetricsMaxSeries = -1
	}
	if a := b.cfg.KafkaAdvertisedAddr; a != "" {
		host, port, err := net.SplitHostPort(a)
		if err != nil {
			return nil, fmt.Errorf("kafka advertised address %q: %w", a, err)
		}
		p, err := strconv.ParseInt(port, 10, 32)
		if err != nil {
			return nil, fmt.Errorf("kafka advertised address %q: %w", a, err)
		}
		cfg.AdvertisedHost, cfg.AdvertisedPort = host, int32(p)
	}
	srv, err := kafka.New(cfg)
	if err != nil {
		return nil, err
	}
	return &kafkaFront{addr: b.cfg.KafkaAddr, srv: srv}, nil
}

func (f *kafkaFront) Name() string { return "kafka" }

func (f *kafkaFront) Start(ctx context.Context) (net.Addr, error) {
	l, err := net.Listen("tcp", f.addr)
	if err != nil {
		return nil, fmt.Errorf("listen on %s (STREAMHOUSE_KAFKA_ADDR): %w", f.addr, err)
	}
	f.done = make(chan error, 1)
	go func() { f.done <- f.srv.Serve(l) }()
	return l.Addr(), nil
}

// Stop closes the listener and every connection and waits for the
// handlers; an append already under way completes before the log closes.
func (f *kafkaFront) Stop(ctx context.Context) error {
	err := f.srv.Close()
	if serr := <-f.done; err == nil {
		err = serr
	}
	return err
}
