package kafka

// SaslAuthenticate (key 36): versions 0-2.
//
// Carries one message of the mechanism chosen by a v1 SaslHandshake
// (package sasl runs it) and answers the server's next message. When the
// exchange succeeds the connection is authenticated as User:<name>
// (sasl_conn.go). When it fails (wrong password or proof, unknown user,
// malformed message) the answer is SASL_AUTHENTICATION_FAILED with a
// message that names the mechanism only, sent after
// Config.FailedAuthenticationDelay, and the connection then closes.
//
// Per version: v1 adds SessionLifetimeMillis, always 0 (sessions do not
// expire: no KIP-368 re-authentication yet); v2 is flexible.
//
// Before a v1 handshake, after a v0 one, or on a connection that needs no
// SASL or is authenticated, the answer is ILLEGAL_SASL_STATE (the
// unexpected-before-authentication cases also close the connection, as
// Kafka's SaslServerAuthenticator does).

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func (s *Server) handleSASLAuthenticate(ctx context.Context, r *request) (kmsg.Response, error) {
	req := r.body.(*kmsg.SASLAuthenticateRequest)
	resp := req.ResponseKind().(*kmsg.SASLAuthenticateResponse)
	st := r.auth.sasl
	if st == nil || st.stage == saslDone {
		resp.ErrorCode = kerr.IllegalSaslState.Code
		resp.ErrorMessage = kmsg.StringPtr("SaslAuthenticate request received after successful authentication")
		return resp, nil
	}
	if st.stage != saslAuthenticate {
		resp.ErrorCode = kerr.IllegalSaslState.Code
		resp.ErrorMessage = kmsg.StringPtr("SaslAuthenticate request received before a SaslHandshake v1")
		st.stage = saslFailed
		return resp, nil
	}
	answer, done, err := st.session.Step(ctx, req.SASLAuthBytes)
	if err != nil {
		mechanism := st.mechanism
		s.authFailed(r.auth, r.clientHost, err, ctx.Done())
		resp.ErrorCode = kerr.SaslAuthenticationFailed.Code
		resp.ErrorMessage = kmsg.StringPtr("Authentication failed during authentication due to invalid credentials with SASL mechanism " + mechanism)
		return resp, nil
	}
	resp.SASLAuthBytes = answer
	if done {
		s.authSucceeded(r.auth, r.clientHost)
	}
	return resp, nil
}
