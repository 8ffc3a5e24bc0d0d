package kafka

import (
	"context"
	"encoding/binary"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/streamhouse/streamhouse/log"
	"github.com/streamhouse/streamhouse/meta"
	"github.com/streamhouse/streamhouse/objstore"
)

// testBroker is a real broker on 127.0.0.1: log over SQLite and a local
// object store in a temp dir, and the Kafka listener.
type testBroker struct {
	t    testing.TB
	dir  string
	cfg  Config
	meta *meta.SQLite
	log  *log.Manager
	srv  *Server
	addr string
	done chan error
	// logHandler, when set before start, receives the broker's logs.
	logHandler slog.Handler
}

func newTestBroker(t testing.TB, tweak func(*Config)) *testBroker {
	t.Helper()
	return newTestBrokerLogging(t, tweak, nil)
}

// newTestBrokerLogging is newTestBroker with the broker's logs sent to h.
func newTestBrokerLogging(t testing.TB, tweak func(*Config), h slog.Handler) *testBroker {
	t.Helper()
	b := &testBroker{t: t, dir: t.TempDir(), logHandler: h}
	b.start(tweak)
	t.Cleanup(b.stop)
	return b
}

func (b *testBroker) start(tweak func(*Config)) {
	t := b.t
	t.Helper()
	ctx := context.Background()
	db, err := meta.OpenSQLite(ctx, filepath.Join(b.dir, "meta.db"))
	if err != nil {
		t.Fatal(err)
	}
	objs, err := objstore.NewLocal(filepath.Join(b.dir, "objects"))
	if err != nil {
		t.Fatal(err)
	}
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	if os.Getenv("KAFKA_TEST_LOG") != "" {
		logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	m, err := log.Open(ctx, log.Config{Dir: filepath.Join(b.dir, "data"), Objects: objs, Meta: db, Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	if b.logHandler != nil {
		logger = slog.New(b.logHandler)
	}
	cfg := Config{Log: m, Meta: db, Logger: logger, NodeID: 1}
	if tweak != nil {
		tweak(&cfg)
	}
	srv, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b.cfg, b.meta, b.log, b.srv, b.addr, b.done = cfg, db, m, srv, l.Addr().String(), make(chan error, 1)
	go func() { b.done <- srv.Serve(l) }()
}

// stop closes the server, then the log, then meta: the order
// cmd/streamhouse uses.
func (b *testBroker) stop() {
	if b.srv == nil {
		return
	}
	if err := b.srv.Close(); err != nil {
		b.t.Errorf("server close: %v", err)
	}
	if err := <-b.done; err != nil {
		b.t.Errorf("serve: %v", err)
	}
	if err := b.log.Close(); err != nil {
		b.t.Errorf("log close: %v", err)
	}
	if err := b.meta.Close(); err != nil {
		b.t.Errorf("meta close: %v", err)
	}
	b.srv = nil
}

// restart stops and starts the broker on the same data. The address
// changes.
func (b *testBroker) restart() {
	b.stop()
	b.start(nil)
}

func (b *testBroker) client(opts ...kgo.Opt) *kgo.Client {
	b.t.Helper()
	c, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(b.addr)}, opts...)...)
	if err != nil {
		b.t.Fatal(err)
	}
	b.t.Cleanup(c.Close)
	return c
}

func (b *testBroker) admin() *kadm.Client {
	return kadm.NewClient(b.client())
}

func (b *testBroker) createTopic(name string, parts int32, configs map[string]string) {
	b.t.Helper()
	if _, err := b.log.CreateTopic(context.Background(), name, parts, configs); err != nil {
		b.t.Fatal(err)
	}
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// rawConn is a plain TCP connection speaking framed requests by hand.
type rawConn struct {
	t  testing.TB
	nc net.Conn
}

func (b *testBroker) raw() *rawConn {
	b.t.Helper()
	nc, err := net.Dial("tcp", b.addr)
	if err != nil {
		b.t.Fatal(err)
	}
	b.t.Cleanup(func() { nc.Close() })
	nc.SetDeadline(time.Now().Add(20 * time.Second))
	return &rawConn{t: b.t, nc: nc}
}

func (c *rawConn) write(b []byte) {
	c.t.Helper()
	if _, err := c.nc.Write(b); err != nil {
		c.t.Fatal(err)
	}
}

// frame builds a request frame for req with a v1 or v2 header.
func frame(correlationID int32, req kmsg.Request) []byte {
	f := kmsg.NewRequestFormatter(kmsg.FormatterClientID("raw-test"))
	return f.AppendRequest(nil, req, correlationID)
}

// roundTrip sends req and decodes the response into resp.
func (c *rawConn) roundTrip(correlationID int32, req kmsg.Request) kmsg.Response {
	c.t.Helper()
	c.write(frame(correlationID, req))
	body, ok := c.readFrame()
	if !ok {
		c.t.Fatalf("connection closed instead of answering api key %d", req.Key())
	}
	if got := int32(binary.BigEndian.Uint32(body)); got != correlationID {
		c.t.Fatalf("correlation ID %d, want %d", got, correlationID)
	}
	body = body[4:]
	resp := req.ResponseKind()
	if resp.IsFlexible() && req.Key() != apiVersionsKey {
		body = body[1:] // empty header tags
	}
	if err := resp.ReadFrom(body); err != nil {
		c.t.Fatalf("decode response: %v", err)
	}
	return resp
}

// readFrame reads one response frame; ok is false when the broker closed
// the connection.
func (c *rawConn) readFrame() ([]byte, bool) {
	var hdr [4]byte
	if _, err := io.ReadFull(c.nc, hdr[:]); err != nil {
		return nil, false
	}
	body := make([]byte, binary.BigEndian.Uint32(hdr[:]))
	if _, err := io.ReadFull(c.nc, body); err != nil {
		return nil, false
	}
	return body, true
}

// expectClosed asserts the broker closes the connection without answering.
func (c *rawConn) expectClosed() {
	c.t.Helper()
	if body, ok := c.readFrame(); ok {
		c.t.Fatalf("got a %d-byte answer, want the connection closed", len(body))
	}
}

// waitFor polls cond until it holds or 10 s pass.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
