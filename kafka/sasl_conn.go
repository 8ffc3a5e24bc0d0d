package kafka

// SASL authentication of connections on SASL_PLAINTEXT and SASL_SSL
// listeners, Kafka's way (SaslServerAuthenticator):
//
//   - Until the connection is authenticated it may send only ApiVersions,
//     SaslHandshake (17) and SaslAuthenticate (36); any other request
//     closes it. Every frame before authentication is capped at
//     preAuthMaxRequestBytes, and authentication must be over within
//     Config.SASLHandshakeTimeout of the accept (and of the TLS handshake),
//     or the connection is closed at its next read.
//   - SaslHandshake v1 is followed by SaslAuthenticate requests carrying
//     the mechanism's messages. After SaslHandshake v0 the client sends the
//     messages as raw frames (a 4-byte size, then the bytes, no Kafka
//     header) and gets the answers the same way (readRawSASL); a failure
//     there just closes the connection.
//   - A failed authentication is counted
//     (streamhouse_kafka_sasl_authentications_total{result="failure"}),
//     logged at Info without anything the client sent, and answered only
//     after Config.FailedAuthenticationDelay; then the connection closes.
//   - Once authenticated the connection's principal is User:<name>, and
//     SaslHandshake and SaslAuthenticate get ILLEGAL_SASL_STATE (no
//     re-authentication, KIP-368, yet), as on PLAINTEXT and SSL
//     listeners.
//
// The mechanisms themselves are package sasl (kafka/sasl).

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/streamhouse/streamhouse/kafka/sasl"
)

// Defaults and limits of SASL authentication.
const (
	// DefaultSASLHandshakeTimeout bounds the time from accept to the end
	// of authentication on a SASL listener.
	DefaultSASLHandshakeTimeout = 10 * time.Second
	// DefaultFailedAuthenticationDelay is Kafka's
	// connection.failed.authentication.delay.ms default.
	DefaultFailedAuthenticationDelay = 100 * time.Millisecond
	// preAuthMaxRequestBytes caps every frame before authentication: the
	// requests allowed then are small (a SCRAM message is a few hundred
	// bytes), and an unauthenticated client must not make the broker
	// hold megabytes.
	preAuthMaxRequestBytes = 64 << 10
	// anonymous is the principal of a connection nothing authenticated.
	anonymous = "User:ANONYMOUS"
)

// saslStage is where a connection is in its SASL exchange.
type saslStage int8

const (
	saslBegin        saslStage = iota // expecting SaslHandshake
	saslRaw                           // after a v0 handshake: raw tokens
	saslAuthenticate                  // after a v1 handshake: SaslAuthenticate
	saslDone                          // authenticated
	saslFailed                        // failed: the answer goes out, then the connection closes
)

// connAuth is a connection's authentication state. Only the connection's
// reader goroutine, which runs its handlers, touches it.
type connAuth struct {
	// principal is the connection's principal: User:ANONYMOUS, User:<CN>
	// of a TLS client certificate, or User:<name> after SASL.
	principal string
	// sasl is nil unless the connection came in on a SASL listener.
	sasl *saslState
}

// saslState is a SASL listener connection's exchange.
type saslState struct {
	stage     saslStage
	deadline  time.Time // authentication must be over by then
	mechanism string
	session   sasl.Session
}

// authenticated reports whether the connection may send any request.
func (a *connAuth) authenticated() bool { return a.sasl == nil || a.sasl.stage == saslDone }

// preAuthAPI reports whether key may be sent before authentication.
func preAuthAPI(key int16) bool {
	return key == apiVersionsKey || key == saslHandshakeKey || key == saslAuthenticateKey
}

// API keys the connection treats specially before authentication.
const (
	saslHandshakeKey    = 17
	saslAuthenticateKey = 36
)

// isSASLListener reports whether a listener name is a SASL security
// protocol.
func isSASLListener(name string) bool { return name == "SASL_PLAINTEXT" || name == "SASL_SSL" }

// mechanismEnabled reports whether the broker serves mechanism.
func (s *Server) mechanismEnabled(mechanism string) bool {
	for _, m := range s.cfg.SASLMechanisms {
		if m == mechanism {
			return true
		}
	}
	return false
}

// authSucceeded records the end of a successful exchange.
func (s *Server) authSucceeded(a *connAuth, remote string) {
	st := a.sasl
	st.stage = saslDone
	a.principal = "User:" + st.session.User()
	st.session = nil
	s.metrics.saslAuth(st.mechanism, true)
	s.logger.Debug("kafka sasl authenticated", "remote", remote, "mechanism", st.mechanism, "principal", a.principal)
}

// authFailed records a failed exchange and waits FailedAuthenticationDelay
// (or until the connection closes) before its answer goes out. err never
// carries client bytes (package sasl's errors do not).
func (s *Server) authFailed(a *connAuth, remote string, err error, done <-chan struct{}) {
	st := a.sasl
	st.stage, st.session = saslFailed, nil
	s.metrics.saslAuth(st.mechanism, false)
	if errors.Is(err, sasl.ErrAuthFailed) || errors.Is(err, sasl.ErrMalformed) {
		s.logger.Info("kafka sasl authentication failed", "remote", remote, "mechanism", st.mechanism, "err", err)
	} else {
		s.logger.Warn("kafka sasl authentication failed", "remote", remote, "mechanism", st.mechanism, "err", err)
	}
	if d := s.cfg.FailedAuthenticationDelay; d > 0 {
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-t.C:
		case <-done:
		}
	}
}

// readRawSASL reads one raw SASL token (after a v0 handshake), runs the
// mechanism's step and returns the raw answer frame. An error closes the
// connection: a failed authentication (after the delay) or a bad frame.
func (c *conn) readRawSASL() (*outFrame, error) {
	st := c.auth.sasl
	c.nc.SetReadDeadline(st.deadline)
	var hdr [4]byte
	if _, err := io.ReadFull(c.nc, hdr[:]); err != nil {
		return nil, err
	}
	size := int32(binary.BigEndian.Uint32(hdr[:]))
	if size < 0 || size > c.maxFrameBytes() {
		return nil, fmt.Errorf("kafka: raw sasl token of %d bytes outside [0, %d]", size, c.maxFrameBytes())
	}
	if err := c.s.budget.acquire(c.ctx, int64(size)); err != nil {
		return nil, err
	}
	defer c.s.budget.release(int64(size))
	token := make([]byte, size)
	if _, err := io.ReadFull(c.nc, token); err != nil {
		return nil, fmt.Errorf("kafka: truncated raw sasl token: %w", err)
	}
	answer, done, err := st.session.Step(c.ctx, token)
	if err != nil {
		c.s.authFailed(&c.auth, c.remote, err, c.ctx.Done())
		return nil, fmt.Errorf("kafka: %w", err)
	}
	if done {
		c.s.authSucceeded(&c.auth, c.remote)
	}
	b := make([]byte, 4+len(answer))
	binary.BigEndian.PutUint32(b, uint32(len(answer)))
	copy(b[4:], answer)
	return &outFrame{bufs: net.Buffers{b}, n: len(b)}, nil
}

// maxFrameBytes is the largest frame the connection reads now.
func (c *conn) maxFrameBytes() int32 {
	if !c.auth.authenticated() {
		return min(c.s.cfg.MaxRequestBytes, preAuthMaxRequestBytes)
	}
	return c.s.cfg.MaxRequestBytes
}

// readDeadline is when the connection's next read gives up.
func (c *conn) readDeadline() time.Time {
	d := time.Now().Add(c.s.cfg.IdleTimeout)
	if !c.auth.authenticated() && c.auth.sasl.deadline.Before(d) {
		return c.auth.sasl.deadline
	}
	return d
}
