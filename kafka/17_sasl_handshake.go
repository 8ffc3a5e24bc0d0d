package kafka

// SaslHandshake (key 17): versions 0-1.
//
// On a SASL_PLAINTEXT or SASL_SSL listener, before authentication: picks
// the mechanism of the exchange (sasl_conn.go). A mechanism the broker
// does not offer (Config.SASLMechanisms) gets UNSUPPORTED_SASL_MECHANISM
// with the list, and the client may try another on the same connection.
// Every answer lists the offered mechanisms.
//
// Per version: after v0 the exchange runs as raw frames (no Kafka header;
// conn.readRawSASL); after v1 it runs in SaslAuthenticate requests.
//
// Anywhere else (a PLAINTEXT or SSL listener, an authenticated
// connection, or a second handshake) the answer is ILLEGAL_SASL_STATE, as
// Kafka's KafkaApis answers; there is no re-authentication (KIP-368) yet.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func (s *Server) handleSASLHandshake(_ context.Context, r *request) (kmsg.Response, error) {
	req := r.body.(*kmsg.SASLHandshakeRequest)
	resp := req.ResponseKind().(*kmsg.SASLHandshakeResponse)
	st := r.auth.sasl
	if st == nil || st.stage != saslBegin {
		resp.ErrorCode = kerr.IllegalSaslState.Code
		return resp, nil
	}
	resp.SupportedMechanisms = s.cfg.SASLMechanisms
	if !s.mechanismEnabled(req.Mechanism) {
		resp.ErrorCode = kerr.UnsupportedSaslMechanism.Code
		return resp, nil
	}
	session, err := s.auth.Start(req.Mechanism)
	if err != nil { // an enabled mechanism is always supported (New)
		resp.ErrorCode = kerr.UnsupportedSaslMechanism.Code
		return resp, nil
	}
	st.mechanism, st.session = req.Mechanism, session
	st.stage = saslAuthenticate
	if req.Version == 0 {
		st.stage = saslRaw
	}
	return resp, nil
}
