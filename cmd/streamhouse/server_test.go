package main

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// testConfig is a local-storage config under dir with every listener on a
// kernel-chosen port of 127.0.0.1.
func testConfig(t *testing.T, dir string) Config {
	t.Helper()
	cfg, err := LoadConfig([]string{"--data-dir=" + dir, "--http-addr=127.0.0.1:0",
		"--kafka-addr=127.0.0.1:0", "--grpc-addr=127.0.0.1:0"}, env(nil))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// TestRunInProcess runs the broker in this process, so that goleak (in
// TestMain) sees every goroutine it started stop with it.
func TestRunInProcess(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig(t, dir)
	var out syncBuffer
	logger := slog.New(slog.NewJSONHandler(&out, nil))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var running atomic.Bool
	running.Store(true)
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, cfg, logger)
		running.Store(false)
	}()

	addr := waitHTTPAddr(t, out.String, running.Load)
	waitReady(t, addr, out.String, running.Load)
	if code, body, err := httpGet("http://" + addr + "/metrics"); err != nil || code != 200 ||
		!strings.Contains(body, "# TYPE streamhouse_") {
		t.Errorf("/metrics = %d, %v; want 200 with streamhouse_ families:\n%s", code, err, body)
	}
	for _, p := range []string{"metadata.db", "segments", "objects"} {
		if _, err := os.Stat(filepath.Join(dir, p)); err != nil {
			t.Errorf("data dir lacks %s: %v", p, err)
		}
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("run: %v", err)
		}
	case <-time.After(stopTimeout):
		t.Fatalf("run did not return after cancel; log:\n%s", out.String())
	}
	if _, ok := findLog(out.String(), "stopped"); !ok {
		t.Errorf("no stopped log line:\n%s", out.String())
	}
}

// TestRunStartupFailure checks that a failed start closes what it opened
// and reports the cause: here the HTTP port is taken.
func TestRunStartupFailure(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	cfg := testConfig(t, t.TempDir())
	cfg.HTTPAddr = ln.Addr().String()
	err = run(context.Background(), cfg, slog.New(slog.DiscardHandler))
	if err == nil || !strings.Contains(err.Error(), "STREAMHOUSE_HTTP_ADDR") {
		t.Fatalf("run = %v, want a listen error naming STREAMHOUSE_HTTP_ADDR", err)
	}
}

// fakeFront records starts and stops in a shared event list.
type fakeFront struct {
	name     string
	events   *[]string
	startErr error
}

func (f *fakeFront) Name() string { return f.name }

func (f *fakeFront) Start(context.Context) (net.Addr, error) {
	*f.events = append(*f.events, "start "+f.name)
	return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)}, f.startErr
}

func (f *fakeFront) Stop(context.Context) error {
	*f.events = append(*f.events, "stop "+f.name)
	return nil
}

func TestFrontsStartInOrderStopInReverse(t *testing.T) {
	tests := []struct {
		name    string
		failOn  string
		wantErr bool
		want    []string
	}{
		{name: "all start", want: []string{"start kafka", "start grpc", "start extra",
			"stop extra", "stop grpc", "stop kafka"}},
		{name: "third fails", failOn: "extra", wantErr: true, want: []string{"start kafka", "start grpc", "start extra",
			"stop grpc", "stop kafka"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var events []string
			var fronts []front
			for _, n := range []string{"kafka", "grpc", "extra"} {
				f := &fakeFront{name: n, events: &events}
				if n == tt.failOn {
					f.startErr = errors.New("port taken")
				}
				fronts = append(fronts, f)
			}
			b := &broker{logger: slog.New(slog.DiscardHandler)}
			b.ready.Store(true)
			err := b.startFronts(context.Background(), fronts)
			if (err != nil) != tt.wantErr {
				t.Errorf("startFronts = %v, want error %v", err, tt.wantErr)
			}
			if err := b.close(); err != nil {
				t.Errorf("close: %v", err)
			}
			if b.ready.Load() {
				t.Error("still ready after close")
			}
			if !reflect.DeepEqual(events, tt.want) {
				t.Errorf("events %q, want %q", events, tt.want)
			}
		})
	}
}
