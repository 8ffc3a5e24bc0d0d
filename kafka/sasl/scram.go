package sasl

import (
	"context"
	"crypto/hmac"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"

	"github.com/streamhouse/streamhouse/meta"
)

// The server side of SCRAM (RFC 5802), two round trips:
//
//	client-first  n,[a=authzid],n=user,r=cnonce
//	server-first  r=cnonce+snonce,s=base64(salt),i=iterations
//	client-final  c=base64(gs2-header),r=cnonce+snonce,p=base64(proof)
//	server-final  v=base64(ServerSignature)
//
// Channel binding ("p=" flag) and extensions (Kafka's tokenauth, for
// delegation tokens) are refused. An unknown user gets a server-first
// like a known one (a fake salt, stable per name) and fails at the proof,
// so the first answer does not tell which users exist.

// ClientFirst is a parsed client-first message.
type ClientFirst struct {
	// GS2Header is "n,," or "y,," with the authzid, as sent; the client's
	// channel-binding attribute must encode it.
	GS2Header string
	// Bare is client-first-message-bare, part of the AuthMessage.
	Bare  string
	User  string
	Nonce string
}

// ParseClientFirst parses a client-first message.
func ParseClientFirst(msg []byte) (ClientFirst, error) {
	s := string(msg)
	flag, rest, ok := strings.Cut(s, ",")
	if !ok {
		return ClientFirst{}, fmt.Errorf("%w: client-first without a GS2 header", ErrMalformed)
	}
	switch {
	case flag == "n", flag == "y":
	case strings.HasPrefix(flag, "p="):
		return ClientFirst{}, fmt.Errorf("%w: channel binding is not supported", ErrMalformed)
	default:
		return ClientFirst{}, fmt.Errorf("%w: bad GS2 channel-binding flag", ErrMalformed)
	}
	authz, bare, ok := strings.Cut(rest, ",")
	if !ok {
		return ClientFirst{}, fmt.Errorf("%w: client-first without a GS2 header", ErrMalformed)
	}
	var authzID string
	if authz != "" {
		if !strings.HasPrefix(authz, "a=") {
			return ClientFirst{}, fmt.Errorf("%w: bad GS2 authzid", ErrMalformed)
		}
		var err error
		if authzID, err = decodeSaslname(authz[2:]); err != nil {
			return ClientFirst{}, err
		}
	}
	c := ClientFirst{GS2Header: flag + "," + authz + ",", Bare: bare}
	attrs := strings.Split(bare, ",")
	if len(attrs) < 2 || !strings.HasPrefix(attrs[0], "n=") || !strings.HasPrefix(attrs[1], "r=") {
		return ClientFirst{}, fmt.Errorf("%w: client-first needs n= then r=", ErrMalformed)
	}
	if len(attrs) > 2 {
		return ClientFirst{}, fmt.Errorf("%w: SCRAM extensions are not supported", ErrMalformed)
	}
	var err error
	if c.User, err = decodeSaslname(attrs[0][2:]); err != nil {
		return ClientFirst{}, err
	}
	if c.User == "" {
		return ClientFirst{}, fmt.Errorf("%w: empty user name", ErrMalformed)
	}
	if authzID != "" && authzID != c.User {
		return ClientFirst{}, fmt.Errorf("%w: authorization identity differs from the user", ErrMalformed)
	}
	c.Nonce = attrs[1][2:]
	if !validNonce(c.Nonce) {
		return ClientFirst{}, fmt.Errorf("%w: bad client nonce", ErrMalformed)
	}
	return c, nil
}

// decodeSaslname undoes RFC 5802's escaping: "=2C" is ',' and "=3D" '=';
// any other '=' is malformed.
func decodeSaslname(s string) (string, error) {
	if !strings.Contains(s, "=") {
		return s, nil
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '=' {
			b.WriteByte(s[i])
			continue
		}
		switch {
		case strings.HasPrefix(s[i:], "=2C"):
			b.WriteByte(',')
		case strings.HasPrefix(s[i:], "=3D"):
			b.WriteByte('=')
		default:
			return "", fmt.Errorf("%w: bad escape in a SCRAM name", ErrMalformed)
		}
		i += 2
	}
	return b.String(), nil
}

// validNonce reports whether n is a non-empty run of printable ASCII
// without ',' (RFC 5802's "printable").
func validNonce(n string) bool {
	if n == "" {
		return false
	}
	for i := 0; i < len(n); i++ {
		if n[i] < 0x21 || n[i] > 0x7e || n[i] == ',' {
			return false
		}
	}
	return true
}

// ClientFinal is a parsed client-final message.
type ClientFinal struct {
	// ChannelBinding is the decoded c= attribute.
	ChannelBinding []byte
	Nonce          string
	// WithoutProof is client-final-message-without-proof, part of the
	// AuthMessage.
	WithoutProof string
	Proof        []byte
}

// ParseClientFinal parses a client-final message.
func ParseClientFinal(msg []byte) (ClientFinal, error) {
	s := string(msg)
	i := strings.LastIndex(s, ",p=")
	if i < 0 {
		return ClientFinal{}, fmt.Errorf("%w: client-final without a proof", ErrMalformed)
	}
	c := ClientFinal{WithoutProof: s[:i]}
	var err error
	if c.Proof, err = base64.StdEncoding.Strict().DecodeString(s[i+3:]); err != nil || len(c.Proof) == 0 {
		return ClientFinal{}, fmt.Errorf("%w: bad proof encoding", ErrMalformed)
	}
	attrs := strings.Split(c.WithoutProof, ",")
	if len(attrs) != 2 || !strings.HasPrefix(attrs[0], "c=") || !strings.HasPrefix(attrs[1], "r=") {
		return ClientFinal{}, fmt.Errorf("%w: client-final needs c=, r=, then p=", ErrMalformed)
	}
	if c.ChannelBinding, err = base64.StdEncoding.Strict().DecodeString(attrs[0][2:]); err != nil {
		return ClientFinal{}, fmt.Errorf("%w: bad channel-binding encoding", ErrMalformed)
	}
	c.Nonce = attrs[1][2:]
	if !validNonce(c.Nonce) {
		return ClientFinal{}, fmt.Errorf("%w: bad nonce", ErrMalformed)
	}
	return c, nil
}

// scramSession is one SCRAM exchange.
type scramSession struct {
	a    *Authenticator
	mech meta.ScramMechanism
	// step is 0 before client-first, 1 before client-final, 2 after.
	step int
	// first and serverFirst are kept for the AuthMessage; cred is the
	// user's credential (a fake one for an unknown user, with known
	// false).
	first       ClientFirst
	serverFirst string
	nonce       string
	cred        meta.ScramCredential
	known       bool
	user        string
}

// Step implements Session.
func (s *scramSession) Step(ctx context.Context, msg []byte) ([]byte, bool, error) {
	switch s.step {
	case 0:
		s.step = 1
		return s.clientFirst(ctx, msg)
	case 1:
		s.step = 2
		return s.clientFinal(msg)
	}
	return nil, false, fmt.Errorf("%w: SCRAM exchange already over", ErrMalformed)
}

func (s *scramSession) clientFirst(ctx context.Context, msg []byte) ([]byte, bool, error) {
	first, err := ParseClientFirst(msg)
	if err != nil {
		return nil, false, err
	}
	cred, found, err := s.a.creds.GetScramCredential(ctx, first.User, s.mech)
	if err != nil {
		return nil, false, err
	}
	if !found {
		cred = s.fakeCredential(first.User)
	}
	s.first, s.cred, s.known = first, cred, found
	s.nonce = first.Nonce + base64.RawURLEncoding.EncodeToString(randomBytes(24))
	s.serverFirst = "r=" + s.nonce + ",s=" + base64.StdEncoding.EncodeToString(cred.Salt) +
		",i=" + strconv.Itoa(int(cred.Iterations))
	return []byte(s.serverFirst), false, nil
}

// fakeCredential is what an unknown user is shown: a salt derived from
// the name with the Authenticator's secret, the minimum iterations, and
// random keys no proof matches.
func (s *scramSession) fakeCredential(user string) meta.ScramCredential {
	mac := hmac.New(hashOf(meta.ScramSHA256), s.a.fakeKey)
	mac.Write([]byte(s.mech.String() + "\x00" + user))
	n := s.mech.KeyLen()
	return meta.ScramCredential{User: user, Mechanism: s.mech, Salt: mac.Sum(nil), Iterations: MinIterations,
		StoredKey: randomBytes(n), ServerKey: randomBytes(n)}
}

func (s *scramSession) clientFinal(msg []byte) ([]byte, bool, error) {
	final, err := ParseClientFinal(msg)
	if err != nil {
		return nil, false, err
	}
	if string(final.ChannelBinding) != s.first.GS2Header {
		return nil, false, fmt.Errorf("%w: channel binding does not match the GS2 header", ErrMalformed)
	}
	// RFC 5802 wants the nonce repeated exactly. librdkafka sends the
	// client nonce in front of it once more, and Kafka's ScramSaslServer
	// accepts a nonce that ends with the server-first one, so we do too:
	// the server's random part still has to come back.
	if !strings.HasSuffix(final.Nonce, s.nonce) {
		return nil, false, fmt.Errorf("%w: nonce does not match", ErrMalformed)
	}
	authMessage := []byte(s.first.Bare + "," + s.serverFirst + "," + final.WithoutProof)
	if len(final.Proof) != s.mech.KeyLen() || !s.known {
		return nil, false, ErrAuthFailed
	}
	clientKey := hmacSum(s.mech, s.cred.StoredKey, authMessage)
	subtle.XORBytes(clientKey, clientKey, final.Proof)
	h := hashOf(s.mech)()
	h.Write(clientKey)
	if subtle.ConstantTimeCompare(h.Sum(nil), s.cred.StoredKey) != 1 {
		return nil, false, ErrAuthFailed
	}
	s.user = s.first.User
	sig := hmacSum(s.mech, s.cred.ServerKey, authMessage)
	return []byte("v=" + base64.StdEncoding.EncodeToString(sig)), true, nil
}

// User implements Session.
func (s *scramSession) User() string { return s.user }
