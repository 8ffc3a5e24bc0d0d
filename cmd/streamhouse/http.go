package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// HTTP server timeouts. Scrapes and probes are small; the write timeout
// leaves room for a slow /metrics gather.
const (
	httpReadHeaderTimeout = 5 * time.Second
	httpWriteTimeout      = 30 * time.Second
	httpIdleTimeout       = 2 * time.Minute
)

// newHTTPHandler serves the operational endpoints:
//
//	/healthz  200 "ok" while the process runs (liveness)
//	/readyz   200 "ready" while ready is true, else 503 "not ready"
//	/metrics  the registry in the Prometheus exposition format
func newHTTPHandler(reg *prometheus.Registry, ready *atomic.Bool, logger *slog.Logger) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		io.WriteString(w, "ok\n")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if !ready.Load() {
			w.WriteHeader(http.StatusServiceUnavailable)
			io.WriteString(w, "not ready\n")
			return
		}
		io.WriteString(w, "ready\n")
	})
	metrics := promhttp.HandlerFor(reg, promhttp.HandlerOpts{
		ErrorLog: slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
		Registry: reg, // counts its own errors in promhttp_metric_handler_errors_total
	})
	mux.Handle("GET /metrics", promhttp.InstrumentMetricHandler(reg, metrics))
	return mux
}

// httpServer is the running HTTP server. done delivers Serve's result once
// and is closed after.
type httpServer struct {
	srv  *http.Server
	addr net.Addr
	done chan error
}

// startHTTP binds addr and serves h in the background.
func startHTTP(addr string, h http.Handler, logger *slog.Logger) (*httpServer, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("http: listen on %s (--http-addr, STREAMHOUSE_HTTP_ADDR): %w", addr, err)
	}
	s := &httpServer{
		srv: &http.Server{
			Handler:           h,
			ReadHeaderTimeout: httpReadHeaderTimeout,
			WriteTimeout:      httpWriteTimeout,
			IdleTimeout:       httpIdleTimeout,
			ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
		},
		addr: ln.Addr(),
		done: make(chan error, 1),
	}
	go func() {
		err := s.srv.Serve(ln)
		if errors.Is(err, http.ErrServerClosed) {
			err = nil
		}
		s.done <- err
		close(s.done)
	}()
	return s, nil
}

// shutdown stops accepting, waits for requests in flight until ctx ends,
// then closes what is left, and returns once Serve has returned.
func (s *httpServer) shutdown(ctx context.Context) error {
	err := s.srv.Shutdown(ctx)
	if err != nil {
		err = errors.Join(fmt.Errorf("http: shutdown: %w", err), s.srv.Close())
	}
	if serr := <-s.done; serr != nil {
		err = errors.Join(err, fmt.Errorf("http: serve: %w", serr))
	}
	return err
}
