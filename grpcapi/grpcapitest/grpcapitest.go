// Package grpcapitest starts the real gRPC API on 127.0.0.1 over real
// storage (SQLite meta, local-directory object store, a log.Manager) for
// the tests of grpcapi and cmd/streamctl, and builds the pinned grpcurl.
package grpcapitest

import (
	"context"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/streamhouse/streamhouse/grpcapi"
	"github.com/streamhouse/streamhouse/log"
	"github.com/streamhouse/streamhouse/meta"
	"github.com/streamhouse/streamhouse/objstore"
	pb "github.com/streamhouse/streamhouse/proto"
)

// Options tune Start; the zero value is the broker's defaults.
type Options struct {
	// SegmentBytes is the broker-wide segment.bytes (0: log's default).
	SegmentBytes int64
	// RetentionInterval is how often retention runs (0: log's default).
	RetentionInterval time.Duration
	// MaxRecvBytes is passed to grpcapi.Config.
	MaxRecvBytes int
	// Now is the clock of the log and the API (nil: time.Now).
	Now func() time.Time
	// Logger receives the log's and the API's lines (nil: discarded).
	Logger *slog.Logger
	// Registerer receives the log's and the API's metrics (nil: none).
	Registerer prometheus.Registerer
	// SlowRequestThreshold is passed to grpcapi.Config.
	SlowRequestThreshold time.Duration
}

// Env is one running broker: storage and the gRPC API, with a client.
type Env struct {
	// Dir holds the meta DB, segments and objects.
	Dir    string
	Addr   string
	Log    *log.Manager
	Meta   *meta.SQLite
	Server *grpcapi.Server
	Conn   *grpc.ClientConn
	Client pb.StreamHouseClient
}

// Start opens storage in t.TempDir(), serves the API on a free port of
// 127.0.0.1 and connects a client; t.Cleanup stops everything in order.
func Start(t testing.TB, opts Options) *Env {
	t.Helper()
	ctx := context.Background()
	e := &Env{Dir: t.TempDir()}
	db, err := meta.OpenSQLite(ctx, filepath.Join(e.Dir, "meta.db"))
	if err != nil {
		t.Fatal(err)
	}
	e.Meta = db
	t.Cleanup(func() { _ = db.Close() })
	objects, err := objstore.NewLocal(filepath.Join(e.Dir, "objects"))
	if err != nil {
		t.Fatal(err)
	}
	e.Log, err = log.Open(ctx, log.Config{
		Dir: filepath.Join(e.Dir, "segments"), Objects: objects, Meta: db, Logger: opts.Logger,
		SegmentBytes: opts.SegmentBytes, RetentionInterval: opts.RetentionInterval, Now: opts.Now,
		Registerer: opts.Registerer,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := e.Log.Close(); err != nil {
			t.Errorf("close log: %v", err)
		}
	})
	e.Server = grpcapi.New(grpcapi.Config{
		Log: e.Log, Meta: db, Logger: opts.Logger, Addr: "127.0.0.1:0",
		MaxRecvBytes: opts.MaxRecvBytes, Now: opts.Now, Registerer: opts.Registerer,
		SlowRequestThreshold: opts.SlowRequestThreshold,
	})
	addr, err := e.Server.Start(ctx)
	if err != nil {
		t.Fatal(err)
	}
	e.Addr = addr.String()
	t.Cleanup(func() {
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := e.Server.Stop(sctx); err != nil {
			t.Errorf("stop grpc server: %v", err)
		}
	})
	e.Conn, err = grpc.NewClient(e.Addr,
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(64<<20), grpc.MaxCallSendMsgSize(64<<20)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.Conn.Close() })
	e.Client = pb.NewStreamHouseClient(e.Conn)
	return e
}
