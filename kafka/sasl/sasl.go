// Package sasl is the server side of the SASL mechanisms the Kafka front
// serves: PLAIN (RFC 4616) and SCRAM-SHA-256 and SCRAM-SHA-512 (RFC 5802,
// RFC 7677), checked against the SCRAM credentials in meta. It knows the
// mechanisms' messages, not Kafka's framing: the connection hands it each
// token the client sent (a SaslAuthenticate request's bytes, or a raw
// token after a v0 SaslHandshake) and sends back what it returns.
//
// Credentials hold the salt, iteration count, StoredKey and ServerKey of
// RFC 5802, never a password: SCRAM checks the client's proof against
// StoredKey, and PLAIN derives the keys from the password it is given,
// with the stored salt and iterations, and compares them.
package sasl

import (
	"context"
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/subtle"
	"errors"
	"fmt"
	"hash"
	"strings"

	"github.com/streamhouse/streamhouse/meta"
)

// Mechanism names, as clients send them in SaslHandshake.
const (
	Plain       = "PLAIN"
	ScramSHA256 = "SCRAM-SHA-256"
	ScramSHA512 = "SCRAM-SHA-512"
)

// Iteration bounds of SCRAM credentials: Kafka's (ScramMechanism's
// minIterations, and the 16384 AlterUserScramCredentials allows at most).
const (
	MinIterations = 4096
	MaxIterations = 16384
)

// DefaultMechanisms lists the mechanisms this package serves, in the
// order a broker offers them by default.
func DefaultMechanisms() []string { return []string{ScramSHA512, ScramSHA256, Plain} }

// ScramMechanism returns meta's number of a SCRAM mechanism name; false
// for any other name (PLAIN included).
func ScramMechanism(name string) (meta.ScramMechanism, bool) {
	switch name {
	case ScramSHA256:
		return meta.ScramSHA256, true
	case ScramSHA512:
		return meta.ScramSHA512, true
	}
	return 0, false
}

// Supported reports whether the package serves mechanism.
func Supported(mechanism string) bool {
	_, scram := ScramMechanism(mechanism)
	return scram || mechanism == Plain
}

// Errors of Step. Both end the authentication; neither message carries
// anything the client sent.
var (
	// ErrAuthFailed is a wrong password or proof, or an unknown user.
	ErrAuthFailed = errors.New("sasl: authentication failed: invalid credentials")
	// ErrMalformed is a message that does not parse, or that breaks the
	// mechanism's rules (nonce, channel binding, extensions).
	ErrMalformed = errors.New("sasl: malformed message")
)

// Credentials is what the mechanisms read: meta.Store has it.
type Credentials interface {
	GetScramCredential(ctx context.Context, user string, m meta.ScramMechanism) (meta.ScramCredential, bool, error)
}

// Session is one authentication exchange of one mechanism.
type Session interface {
	// Step takes the client's next message and returns the server's
	// answer; done is true once the client is authenticated. An error
	// ends the exchange: ErrAuthFailed, ErrMalformed, or a store error.
	Step(ctx context.Context, msg []byte) (answer []byte, done bool, err error)
	// User is the authenticated user's name once done.
	User() string
}

// Authenticator starts sessions against one credential store.
type Authenticator struct {
	creds Credentials
	// fakeKey makes the salt a SCRAM exchange shows for an unknown user:
	// stable per user name, so that a client cannot tell unknown users
	// from known ones by their salt changing between attempts.
	fakeKey []byte
}

// NewAuthenticator returns an Authenticator reading creds.
func NewAuthenticator(creds Credentials) *Authenticator {
	return &Authenticator{creds: creds, fakeKey: randomBytes(32)}
}

// Start begins a session of mechanism (Plain, ScramSHA256, ScramSHA512).
func (a *Authenticator) Start(mechanism string) (Session, error) {
	if mechanism == Plain {
		return &plainSession{a: a}, nil
	}
	if m, ok := ScramMechanism(mechanism); ok {
		return &scramSession{a: a, mech: m}, nil
	}
	return nil, fmt.Errorf("sasl: unsupported mechanism %q", mechanism)
}

// hashOf returns the hash function of a SCRAM mechanism.
func hashOf(m meta.ScramMechanism) func() hash.Hash {
	if m == meta.ScramSHA512 {
		return sha512.New
	}
	return sha256.New
}

// NewCredential derives user's credential for mechanism m from password:
// a random 32-byte salt, iterations rounds of PBKDF2 (RFC 5802's Hi), and
// the StoredKey and ServerKey of the salted password.
func NewCredential(user, password string, m meta.ScramMechanism, iterations int32) (meta.ScramCredential, error) {
	if m.KeyLen() == 0 {
		return meta.ScramCredential{}, fmt.Errorf("sasl: unknown SCRAM mechanism %v", m)
	}
	salt := randomBytes(32)
	salted, err := saltedPassword(m, password, salt, iterations)
	if err != nil {
		return meta.ScramCredential{}, err
	}
	return CredentialFromSalted(user, m, salt, iterations, salted), nil
}

// CredentialFromSalted builds a credential from a salted password
// (AlterUserScramCredentials sends those, never passwords).
func CredentialFromSalted(user string, m meta.ScramMechanism, salt []byte, iterations int32, salted []byte) meta.ScramCredential {
	stored, server := scramKeys(m, salted)
	return meta.ScramCredential{User: user, Mechanism: m, Salt: salt, Iterations: iterations,
		StoredKey: stored, ServerKey: server}
}

// saltedPassword is RFC 5802's Hi(Normalize(password), salt, i).
// SASLprep is not applied: like Kafka, passwords are taken as their UTF-8
// bytes.
func saltedPassword(m meta.ScramMechanism, password string, salt []byte, iterations int32) ([]byte, error) {
	if iterations <= 0 {
		return nil, fmt.Errorf("sasl: iterations %d, want > 0", iterations)
	}
	return pbkdf2.Key(hashOf(m), password, salt, int(iterations), m.KeyLen())
}

// scramKeys returns StoredKey = H(HMAC(salted, "Client Key")) and
// ServerKey = HMAC(salted, "Server Key").
func scramKeys(m meta.ScramMechanism, salted []byte) (stored, server []byte) {
	clientKey := hmacSum(m, salted, []byte("Client Key"))
	h := hashOf(m)()
	h.Write(clientKey)
	return h.Sum(nil), hmacSum(m, salted, []byte("Server Key"))
}

func hmacSum(m meta.ScramMechanism, key, msg []byte) []byte {
	mac := hmac.New(hashOf(m), key)
	mac.Write(msg)
	return mac.Sum(nil)
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b) // never fails (crypto/rand)
	return b
}

// plainSession checks one PLAIN token against the stored SCRAM
// credentials: the first of SCRAM-SHA-512 and SCRAM-SHA-256 the user has.
type plainSession struct {
	a    *Authenticator
	user string
}

// Step implements Session.
func (p *plainSession) Step(ctx context.Context, msg []byte) ([]byte, bool, error) {
	user, password, err := ParsePlain(msg)
	if err != nil {
		return nil, false, err
	}
	for _, m := range []meta.ScramMechanism{meta.ScramSHA512, meta.ScramSHA256} {
		c, found, err := p.a.creds.GetScramCredential(ctx, user, m)
		if err != nil {
			return nil, false, err
		}
		if !found {
			continue
		}
		salted, err := saltedPassword(m, password, c.Salt, c.Iterations)
		if err != nil {
			return nil, false, ErrAuthFailed
		}
		stored, _ := scramKeys(m, salted)
		if subtle.ConstantTimeCompare(stored, c.StoredKey) != 1 {
			return nil, false, ErrAuthFailed
		}
		p.user = user
		return []byte{}, true, nil
	}
	return nil, false, ErrAuthFailed
}

// User implements Session.
func (p *plainSession) User() string { return p.user }

// ParsePlain parses a PLAIN token (RFC 4616): [authzid] NUL authcid NUL
// passwd. The authorization identity must be empty or the authentication
// identity (as Kafka requires); user and password must not be empty.
func ParsePlain(msg []byte) (user, password string, err error) {
	parts := strings.Split(string(msg), "\x00")
	if len(parts) != 3 {
		return "", "", fmt.Errorf("%w: PLAIN token needs authzid, user and password separated by NUL", ErrMalformed)
	}
	authz, user, password := parts[0], parts[1], parts[2]
	switch {
	case user == "":
		return "", "", fmt.Errorf("%w: PLAIN token without a user name", ErrMalformed)
	case password == "":
		return "", "", fmt.Errorf("%w: PLAIN token without a password", ErrMalformed)
	case authz != "" && authz != user:
		return "", "", fmt.Errorf("%w: PLAIN authorization identity differs from the user", ErrMalformed)
	}
	return user, password, nil
}
