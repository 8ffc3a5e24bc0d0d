package kafka

import (
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kbin"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// conn is one client connection. Its reader goroutine reads a frame,
// decodes it, runs the handler and queues the encoded response; its writer
// goroutine writes queued responses. Requests are handled one at a time in
// arrival order (as Kafka does: an idempotent producer's pipelined produce
// requests must be appended in order), so responses leave in correlation
// order; reading the next request overlaps writing the previous response
// and, for an acks=all produce, waiting for its fsync (the writer does
// that wait before it encodes the response, see request.durable). The
// queue holds at most maxInFlight responses, and at most FetchMaxBytes of
// response bytes in memory (file regions aside) beyond the first one: a
// client that pipelines fetches without reading the answers holds about
// two responses' worth, not maxInFlight of them.
type conn struct {
	s      *Server
	nc     net.Conn
	remote string
	host   string          // remote's IP address
	adv    *endpoint       // advertised to this client; nil: Server.advertised
	ctx    context.Context // cancelled when the connection closes
	cancel context.CancelFunc
	out    chan *outFrame // encoded response frames; closed by the reader
	done   chan struct{}  // closed when both goroutines have exited

	// auth is the connection's principal and SASL exchange (sasl_conn.go);
	// only the reader goroutine touches it.
	auth connAuth

	closeOnce sync.Once
	running   atomic.Int32 // goroutines still running; the last closes done

	// memMu guards queuedMem and memClosed; memCond waits on it. The
	// reader adds a response's memBytes before queueing it and waits
	// while the queue already holds FetchMaxBytes; the writer subtracts
	// once the response is written or dropped.
	memMu     sync.Mutex
	memCond   *sync.Cond
	queuedMem int
	memClosed bool
	memWaits  atomic.Int64 // times the reader waited for room (tests)
}

// request is one decoded request.
type request struct {
	key, version  int16
	correlationID int32
	clientID      *string
	clientHost    string    // the client's IP address (DescribeGroups reports it)
	adv           *endpoint // the connection's advertised address (conn.adv)
	auth          *connAuth // the connection's authentication state (conn.auth)
	body          kmsg.Request
	received      time.Time
	// waited is the time the handler legitimately waited (a fetch's long
	// poll, a rebalance); the slow-request log does not count it.
	waited time.Duration
	// release, set by a handler whose response borrows read buffers
	// (Fetch), returns them once the response is written or dropped.
	release func()
	// regions are Fetch partitions whose batches are sent from segment
	// files (frame.go).
	regions []partRegion
	// durable, set by a handler whose response may only be sent once its
	// writes are durable (acks=all Produce), waits for that and may set
	// errors in the response. The writer runs it, in response order,
	// before the response is encoded; the reader goes on meanwhile.
	durable func()
}

// errCloseConn asks the reader to close the connection quietly (e.g. an
// acks=0 produce that failed, to make the client refresh its metadata).
var errCloseConn = errors.New("kafka: close connection")

func newConn(s *Server, nc net.Conn) *conn {
	ctx, cancel := context.WithCancel(s.ctx)
	c := &conn{s: s, nc: nc, remote: nc.RemoteAddr().String(), ctx: ctx, cancel: cancel,
		out: make(chan *outFrame, maxInFlight), done: make(chan struct{})}
	c.host = c.remote
	c.auth.principal = anonymous
	if h, _, err := net.SplitHostPort(c.remote); err == nil {
		c.host = h
	}
	c.memCond = sync.NewCond(&c.memMu)
	c.running.Store(2)
	return c
}

// reserveMem waits until the queue has room for a response holding n
// bytes in memory and counts them; false means the connection closed.
// An empty queue always has room, so one response larger than the limit
// still goes out.
func (c *conn) reserveMem(n int) bool {
	c.memMu.Lock()
	defer c.memMu.Unlock()
	waited := false
	for c.queuedMem > 0 && c.queuedMem+n > int(c.s.cfg.FetchMaxBytes) && !c.memClosed {
		if !waited {
			c.memWaits.Add(1)
			c.s.respWaiting.Add(1)
			waited = true
		}
		c.memCond.Wait()
	}
	if waited {
		c.s.respWaiting.Add(-1)
	}
	if c.memClosed {
		return false
	}
	c.queuedMem += n
	c.s.respQueued.Add(int64(n))
	return true
}

// releaseMem uncounts a written or dropped response's memory bytes.
func (c *conn) releaseMem(n int) {
	c.memMu.Lock()
	c.queuedMem -= n
	c.s.respQueued.Add(-int64(n))
	c.memCond.Broadcast()
	c.memMu.Unlock()
}

// exit is deferred by both goroutines.
func (c *conn) exit() {
	c.s.wg.Done()
	if c.running.Add(-1) == 0 {
		c.s.metrics.connsOpen.Dec()
		close(c.done)
	}
}

// close cancels handlers and closes the socket, which ends both loops,
// and wakes a reader waiting for queue room.
func (c *conn) close() {
	c.closeOnce.Do(func() {
		c.cancel()
		c.nc.Close()
		c.memMu.Lock()
		c.memClosed = true
		c.memCond.Broadcast()
		c.memMu.Unlock()
	})
}

// readLoop reads and serves requests until the client goes away, a frame
// is bad, or the server closes. Closing out then lets the writer flush the
// responses already queued before it closes the socket.
func (c *conn) readLoop() {
	defer c.exit()
	defer close(c.out)
	defer c.s.forget(c)
	if tc, ok := c.nc.(*tls.Conn); ok {
		if err := c.handshake(tc); err != nil {
			c.logClose("tls handshake", err)
			return
		}
	}
	for {
		if st := c.auth.sasl; st != nil && st.stage == saslRaw {
			resp, err := c.readRawSASL()
			if err != nil {
				c.logClose("sasl", err)
				return
			}
			if !c.queue(resp) {
				return
			}
			continue
		}
		frame, err := c.readFrame()
		if err != nil {
			c.logClose("read", err)
			return
		}
		resp, err := c.handleFrame(frame)
		c.s.budget.release(int64(len(frame)))
		if err != nil {
			c.logClose("handle", err)
			return
		}
		if resp != nil && !c.queue(resp) {
			return
		}
		if st := c.auth.sasl; st != nil && st.stage == saslFailed {
			// The failure answer is queued: the writer sends it and closes.
			c.s.logger.Debug("kafka connection closed", "remote", c.remote, "stage", "sasl")
			return
		}
	}
}

// queue hands resp to the writer; false means the connection closed.
func (c *conn) queue(resp *outFrame) bool {
	resp.mem = resp.memBytes()
	if !c.reserveMem(resp.mem) {
		resp.done()
		return false
	}
	select {
	case c.out <- resp:
		return true
	case <-c.ctx.Done():
		c.releaseMem(resp.mem)
		resp.done()
		return false
	}
}

// handshake runs the TLS handshake of a connection on an SSL or SASL_SSL
// listener, within tlsHandshakeTimeout, and logs the client's principal at
// Debug: User:<subject CN> of its verified certificate, or User:ANONYMOUS
// without one (Kafka's names); SASL, when the listener has it, replaces
// it. Nothing authorizes on it yet.
func (c *conn) handshake(tc *tls.Conn) error {
	ctx, cancel := context.WithTimeout(c.ctx, tlsHandshakeTimeout)
	defer cancel()
	if err := tc.HandshakeContext(ctx); err != nil {
		return err
	}
	if st := tc.ConnectionState(); len(st.PeerCertificates) > 0 {
		c.auth.principal = "User:" + st.PeerCertificates[0].Subject.CommonName
	}
	c.s.logger.Debug("kafka tls connection", "remote", c.remote, "principal", c.auth.principal)
	return nil
}

func (c *conn) logClose(stage string, err error) {
	switch {
	case errors.Is(err, io.EOF), errors.Is(err, net.ErrClosed), errors.Is(err, errCloseConn), c.ctx.Err() != nil:
		c.s.logger.Debug("kafka connection closed", "remote", c.remote, "stage", stage, "err", err)
	default:
		c.s.logger.Info("kafka connection closed", "remote", c.remote, "stage", stage, "err", err)
	}
}

// writeLoop writes queued responses in order, then closes the socket.
func (c *conn) writeLoop() {
	defer c.exit()
	defer c.close()
	for b := range c.out {
		mem := b.mem
		if c.ctx.Err() != nil {
			b.done()
			c.releaseMem(mem)
			continue // drain until the reader closes out
		}
		if b.finish != nil {
			b = b.finish()
		}
		c.nc.SetWriteDeadline(time.Now().Add(writeTimeout))
		err := b.writeTo(c.nc)
		b.done()
		c.releaseMem(mem)
		if err != nil {
			c.logClose("write", err)
			c.close()
		}
	}
}

// readFrame reads one size-prefixed frame. The size is checked against
// MaxRequestBytes (a much smaller cap before SASL authentication) before
// the frame is allocated.
func (c *conn) readFrame() ([]byte, error) {
	c.nc.SetReadDeadline(c.readDeadline())
	var hdr [4]byte
	if _, err := io.ReadFull(c.nc, hdr[:]); err != nil {
		return nil, err
	}
	size := int32(binary.BigEndian.Uint32(hdr[:]))
	if limit := c.maxFrameBytes(); size < minHeaderLen || size > limit {
		return nil, fmt.Errorf("kafka: frame of %d bytes outside [%d, %d]", size, minHeaderLen, limit)
	}
	// Reserve the frame's bytes before allocating it (limits.go); the
	// caller releases them once the request is handled.
	if err := c.s.budget.acquire(c.ctx, int64(size)); err != nil {
		return nil, err
	}
	frame := c.s.frames.get(int(size))
	if _, err := io.ReadFull(c.nc, frame); err != nil {
		c.s.budget.release(int64(size))
		return nil, fmt.Errorf("kafka: truncated frame: %w", err)
	}
	return frame, nil
}

// minHeaderLen is the smallest request header: api key, version,
// correlation ID and a null client ID.
const minHeaderLen = 2 + 2 + 4 + 2

// handleFrame decodes and serves one frame. It returns the encoded
// response frame (nil for none) or an error that closes the connection.
func (c *conn) handleFrame(frame []byte) (*outFrame, error) {
	r := kbin.Reader{Src: frame}
	req := &request{key: r.Int16(), version: r.Int16(), correlationID: r.Int32(), received: time.Now(),
		clientHost: c.host, adv: c.adv, auth: &c.auth}
	req.clientID = r.NullableString()
	if !r.Ok() {
		return nil, errors.New("kafka: bad request header")
	}
	if !c.auth.authenticated() && !preAuthAPI(req.key) {
		return nil, fmt.Errorf("kafka: api key %d before SASL authentication", req.key)
	}
	a, ok := c.s.apis[req.key]
	if !ok {
		return nil, fmt.Errorf("kafka: unknown api key %d", req.key)
	}
	if req.key == apiVersionsKey && req.version > a.max {
		// KIP-511: answer in v0 format whatever the client speaks.
		c.s.metrics.api(req.key).countError(kerr.UnsupportedVersion.Code)
		return encodeFrame(req, c.s.apiVersionsUnsupported()), nil
	}
	if req.version < a.min || req.version > a.max {
		return nil, fmt.Errorf("kafka: api key %d version %d outside [%d, %d]", req.key, req.version, a.min, a.max)
	}
	body := kmsg.RequestForKey(req.key)
	body.SetVersion(req.version)
	if body.IsFlexible() {
		skipTags(&r)
		if !r.Ok() {
			return nil, errors.New("kafka: bad tagged fields in request header")
		}
	}
	if err := body.ReadFrom(r.Src); err != nil {
		return nil, fmt.Errorf("kafka: decode api key %d v%d: %w", req.key, req.version, err)
	}
	req.body = body
	resp, err := c.serve(a, req)
	if req.key == produceKey {
		c.s.frames.put(frame) // the records are in the log: nothing keeps it
	}
	if err == nil && resp != nil && req.durable != nil {
		return &outFrame{finish: func() *outFrame {
			req.durable()
			out := encodeFrame(req, resp)
			c.served(req, len(frame), resp, out)
			return out
		}}, nil
	}
	var out *outFrame
	if err == nil && resp != nil {
		out = encodeFrame(req, resp)
		out.release = req.release
	} else if req.release != nil {
		req.release()
	}
	c.served(req, len(frame), resp, out)
	return out, err
}

// served records a request in the metrics and the slow-request log once
// its response (out; nil for none) is encoded.
func (c *conn) served(req *request, frameLen int, resp kmsg.Response, out *outFrame) {
	d := time.Since(req.received)
	outLen := 0
	if out == nil {
		resp = nil // not answered: its error codes reach no client
	} else {
		outLen = out.n
	}
	c.s.metrics.api(req.key).observe(req.version, d.Seconds(), 4+frameLen, outLen, resp)
	c.logSlow(req, d)
}

// serve runs a handler, turning a panic into an error that closes this
// connection only.
func (c *conn) serve(a api, req *request) (resp kmsg.Response, err error) {
	defer func() {
		if p := recover(); p != nil {
			c.s.logger.Error("kafka handler panicked; closing the connection",
				"api_key", req.key, "version", req.version, "remote", c.remote,
				"panic", fmt.Sprint(p), "stack", string(debug.Stack()))
			resp, err = nil, fmt.Errorf("kafka: handler for api key %d panicked: %v", req.key, p)
		}
	}()
	return a.handle(c.s, c.ctx, req)
}

// skipTags skips a tagged-field section (KIP-482).
func skipTags(r *kbin.Reader) {
	for n := r.Uvarint(); n > 0 && r.Ok(); n-- {
		r.Uvarint() // tag
		r.Span(int(r.Uvarint()))
	}
}

// encodeResponse frames a response: size, correlation ID, the empty
// tagged-field section of a flexible header (never for ApiVersions, whose
// response header stays v0 so that any client can read it), then the body.
func encodeResponse(correlationID int32, key int16, resp kmsg.Response) []byte {
	b := make([]byte, 8, responseSizeHint(resp))
	binary.BigEndian.PutUint32(b[4:], uint32(correlationID))
	if resp.IsFlexible() && key != apiVersionsKey {
		b = append(b, 0)
	}
	b = resp.AppendTo(b)
	binary.BigEndian.PutUint32(b, uint32(len(b)-4))
	return b
}

// responseSizeHint guesses the encoded size of resp so that encoding does
// not grow the buffer step by step: for a Fetch response, growing while
// copying the record batches cost more CPU than everything else in a
// produce-and-consume profile.
func responseSizeHint(resp kmsg.Response) int {
	f, ok := resp.(*kmsg.FetchResponse)
	if !ok {
		return 64
	}
	n := 64
	for i := range f.Topics {
		n += 64 + len(f.Topics[i].Topic)
		for j := range f.Topics[i].Partitions {
			n += 96 + len(f.Topics[i].Partitions[j].RecordBatches)
		}
	}
	return n
}
