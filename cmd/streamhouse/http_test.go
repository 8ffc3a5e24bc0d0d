package main

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
)

func TestHTTPHandler(t *testing.T) {
	var ready atomic.Bool
	h := newHTTPHandler(newRegistry(), &ready, slog.New(slog.DiscardHandler))
	get := func(path string) (int, string) {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
		body, _ := io.ReadAll(rec.Result().Body)
		return rec.Code, string(body)
	}
	tests := []struct {
		name     string
		ready    bool
		path     string
		wantCode int
		wantBody string
	}{
		{"healthz while starting", false, "/healthz", 200, "ok"},
		{"healthz while ready", true, "/healthz", 200, "ok"},
		{"readyz while starting or stopping", false, "/readyz", 503, "not ready"},
		{"readyz while ready", true, "/readyz", 200, "ready"},
		{"metrics", true, "/metrics", 200, "go_goroutines"},
		{"metrics count their scrapes", true, "/metrics", 200, "promhttp_metric_handler_requests_total"},
		{"unknown path", true, "/nope", 404, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ready.Store(tt.ready)
			code, body := get(tt.path)
			if code != tt.wantCode || !strings.Contains(body, tt.wantBody) {
				t.Errorf("GET %s = %d %q, want %d containing %q", tt.path, code, body, tt.wantCode, tt.wantBody)
			}
		})
	}
}
