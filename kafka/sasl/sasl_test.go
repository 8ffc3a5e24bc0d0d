package sasl

import (
	"context"
	"encoding/base64"
	"errors"
	"testing"

	fsasl "github.com/twmb/franz-go/pkg/sasl"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/streamhouse/streamhouse/meta"
)

// memCreds is an in-memory Credentials.
type memCreds map[string]meta.ScramCredential

func (m memCreds) GetScramCredential(_ context.Context, user string, mech meta.ScramMechanism) (meta.ScramCredential, bool, error) {
	c, ok := m[mech.String()+"/"+user]
	return c, ok, nil
}

func (m memCreds) add(t *testing.T, user, password string, mech meta.ScramMechanism) {
	t.Helper()
	c, err := NewCredential(user, password, mech, MinIterations)
	if err != nil {
		t.Fatal(err)
	}
	m[mech.String()+"/"+user] = c
}

// exchange runs a franz-go client mechanism against a server session, as
// the broker would relay their messages.
func exchange(t *testing.T, a *Authenticator, m fsasl.Mechanism) (user string, err error) {
	t.Helper()
	ctx := context.Background()
	srv, err := a.Start(m.Name())
	if err != nil {
		t.Fatal(err)
	}
	cli, msg, err := m.Authenticate(ctx, "127.0.0.1:9092")
	if err != nil {
		t.Fatal(err)
	}
	for {
		answer, done, err := srv.Step(ctx, msg)
		if err != nil {
			return "", err
		}
		cdone, next, err := cli.Challenge(answer)
		if err != nil {
			t.Fatalf("client refused the server's answer: %v", err)
		}
		if done {
			if !cdone || len(next) > 0 {
				t.Fatalf("server done but client done=%v with %q to send", cdone, next)
			}
			return srv.User(), nil
		}
		msg = next
	}
}

func TestSCRAMAndPlainExchanges(t *testing.T) {
	creds := memCreds{}
	creds.add(t, "alice", "s3cret", meta.ScramSHA256)
	creds.add(t, "alice", "s3cret", meta.ScramSHA512)
	creds.add(t, "bo,b=", "pw", meta.ScramSHA512) // escaped in SCRAM names
	a := NewAuthenticator(creds)
	for _, c := range []struct {
		name    string
		mech    fsasl.Mechanism
		wantErr error
		want    string
	}{
		{"scram256", scram.Auth{User: "alice", Pass: "s3cret"}.AsSha256Mechanism(), nil, "alice"},
		{"scram512", scram.Auth{User: "alice", Pass: "s3cret"}.AsSha512Mechanism(), nil, "alice"},
		{"scram512 escaped name", scram.Auth{User: "bo,b=", Pass: "pw"}.AsSha512Mechanism(), nil, "bo,b="},
		{"scram256 wrong password", scram.Auth{User: "alice", Pass: "nope"}.AsSha256Mechanism(), ErrAuthFailed, ""},
		{"scram256 unknown user", scram.Auth{User: "mallory", Pass: "x"}.AsSha256Mechanism(), ErrAuthFailed, ""},
		{"scram256 no such mechanism credential", scram.Auth{User: "bo,b=", Pass: "pw"}.AsSha256Mechanism(), ErrAuthFailed, ""},
		{"scram authzid", scram.Auth{User: "alice", Pass: "s3cret", Zid: "alice"}.AsSha256Mechanism(), nil, "alice"},
		{"scram other authzid", scram.Auth{User: "alice", Pass: "s3cret", Zid: "root"}.AsSha256Mechanism(), ErrMalformed, ""},
		{"scram token extension", scram.Auth{User: "alice", Pass: "s3cret", IsToken: true}.AsSha256Mechanism(), ErrMalformed, ""},
		{"plain", plain.Auth{User: "alice", Pass: "s3cret"}.AsMechanism(), nil, "alice"},
		{"plain sha512 only", plain.Auth{User: "bo,b=", Pass: "pw"}.AsMechanism(), nil, "bo,b="},
		{"plain wrong password", plain.Auth{User: "alice", Pass: "s3cretX"}.AsMechanism(), ErrAuthFailed, ""},
		{"plain unknown user", plain.Auth{User: "mallory", Pass: "x"}.AsMechanism(), ErrAuthFailed, ""},
		{"plain other authzid", plain.Auth{User: "alice", Pass: "s3cret", Zid: "root"}.AsMechanism(), ErrMalformed, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			user, err := exchange(t, a, c.mech)
			if !errors.Is(err, c.wantErr) || (c.wantErr == nil && err != nil) {
				t.Fatalf("exchange: %v, want %v", err, c.wantErr)
			}
			if user != c.want {
				t.Errorf("user %q, want %q", user, c.want)
			}
		})
	}
}

// TestSCRAMUnknownUserLooksKnown checks that the server-first of an
// unknown user has the form of a known one's and a stable salt.
func TestSCRAMUnknownUserLooksKnown(t *testing.T) {
	a := NewAuthenticator(memCreds{})
	first := func() string {
		s, _ := a.Start(ScramSHA256)
		out, _, err := s.Step(context.Background(), []byte("n,,n=ghost,r=abc"))
		if err != nil {
			t.Fatal(err)
		}
		return string(out)
	}
	saltOf := func(sf string) string {
		_, rest, _ := cutAfter(sf, ",s=")
		return rest
	}
	if a, b := saltOf(first()), saltOf(first()); a != b || a == "" {
		t.Errorf("unknown user's salt changed between attempts: %q vs %q", a, b)
	}
}

func cutAfter(s, sep string) (string, string, bool) {
	for i := 0; i+len(sep) <= len(s); i++ {
		if s[i:i+len(sep)] == sep {
			return s[:i], s[i+len(sep):], true
		}
	}
	return s, "", false
}

func TestSCRAMBadFinal(t *testing.T) {
	creds := memCreds{}
	creds.add(t, "alice", "pw", meta.ScramSHA256)
	a := NewAuthenticator(creds)
	ctx := context.Background()
	for _, c := range []struct {
		name  string
		final func(nonce string) string
	}{
		{"wrong nonce", func(string) string { return "c=biws,r=abcXYZ,p=AAAA" }},
		{"client nonce only", func(string) string { return "c=biws,r=abc,p=AAAA" }},
		{"server nonce cut", func(n string) string { return "c=biws,r=" + n[:len(n)-1] + ",p=AAAA" }},
		{"wrong channel binding", func(n string) string { return "c=eSws,r=" + n + ",p=AAAA" }},
		{"short proof", func(n string) string { return "c=biws,r=" + n + ",p=AAAA" }},
		{"no proof", func(n string) string { return "c=biws,r=" + n }},
		{"garbage", func(string) string { return "\x00\xff" }},
	} {
		t.Run(c.name, func(t *testing.T) {
			s, _ := a.Start(ScramSHA256)
			sf, _, err := s.Step(ctx, []byte("n,,n=alice,r=abc"))
			if err != nil {
				t.Fatal(err)
			}
			nonce, _, _ := cutAfter(string(sf)[2:], ",")
			if _, done, err := s.Step(ctx, []byte(c.final(nonce))); err == nil || done {
				t.Fatalf("bad client-final accepted (done %v)", done)
			}
			if _, _, err := s.Step(ctx, []byte("anything")); err == nil {
				t.Fatal("a third step was accepted")
			}
		})
	}
}

func TestParseClientFirst(t *testing.T) {
	for _, c := range []struct {
		in   string
		ok   bool
		user string
	}{
		{"n,,n=alice,r=abc", true, "alice"},
		{"y,,n=alice,r=abc", true, "alice"},
		{"n,a=alice,n=alice,r=abc", true, "alice"},
		{"n,,n=a=3Db=2Cc,r=abc", true, "a=b,c"},
		{"p=tls-unique,,n=alice,r=abc", false, ""},
		{"n,,n=,r=abc", false, ""},
		{"n,,n=alice,r=", false, ""},
		{"n,,n=alice,r=a,b", false, ""},
		{"n,,n=al=ice,r=abc", false, ""},
		{"n,,r=abc,n=alice", false, ""},
		{"n,,m=x,n=alice,r=abc", false, ""},
		{"n,,n=alice,r=abc,tokenauth=true", false, ""},
		{"n,,n=alice,r=a\x7fb", false, ""},
		{"", false, ""},
		{"n,", false, ""},
	} {
		got, err := ParseClientFirst([]byte(c.in))
		if (err == nil) != c.ok || got.User != c.user {
			t.Errorf("ParseClientFirst(%q) = %+v, %v; want ok %v user %q", c.in, got, err, c.ok, c.user)
		}
	}
}

func TestParsePlain(t *testing.T) {
	for _, c := range []struct {
		in       string
		ok       bool
		user, pw string
	}{
		{"\x00alice\x00pw", true, "alice", "pw"},
		{"alice\x00alice\x00pw", true, "alice", "pw"},
		{"root\x00alice\x00pw", false, "", ""},
		{"\x00\x00pw", false, "", ""},
		{"\x00alice\x00", false, "", ""},
		{"\x00alice\x00pw\x00", false, "", ""},
		{"alice", false, "", ""},
		{"", false, "", ""},
	} {
		u, p, err := ParsePlain([]byte(c.in))
		if (err == nil) != c.ok || u != c.user || p != c.pw {
			t.Errorf("ParsePlain(%q) = %q, %q, %v", c.in, u, p, err)
		}
	}
}

func TestNewCredentialKeys(t *testing.T) {
	// RFC 7677's SCRAM-SHA-256 example: user, pencil, salt
	// W22ZaJ0SNY7soEsUEjb6gQ== and 4096 iterations give this StoredKey
	// and ServerKey (computed from its ClientProof/ServerSignature
	// derivation).
	salted, err := saltedPassword(meta.ScramSHA256, "pencil",
		[]byte{0x5b, 0x6d, 0x99, 0x68, 0x9d, 0x12, 0x35, 0x8e, 0xec, 0xa0, 0x4b, 0x14, 0x12, 0x36, 0xfa, 0x81}, 4096)
	if err != nil {
		t.Fatal(err)
	}
	c := CredentialFromSalted("user", meta.ScramSHA256, []byte("x"), 4096, salted)
	s := &scramSession{a: NewAuthenticator(memCreds{"SCRAM-SHA-256/user": c}), mech: meta.ScramSHA256}
	ctx := context.Background()
	// Force the RFC's server nonce by replaying its messages.
	if _, _, err := s.Step(ctx, []byte("n,,n=user,r=rOprNGfwEbeRWgbNEkqO")); err != nil {
		t.Fatal(err)
	}
	s.nonce = "rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0"
	s.serverFirst = "r=" + s.nonce + ",s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"
	out, done, err := s.Step(ctx, []byte("c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="))
	if err != nil || !done {
		t.Fatalf("RFC 7677 example refused: %v", err)
	}
	if want := "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="; string(out) != want {
		t.Errorf("server-final %q, want %q", out, want)
	}
}

// TestSCRAMLibrdkafkaNonce checks the client-final nonce librdkafka sends
// (its client nonce, then the whole server-first nonce) is accepted, as
// Kafka accepts it.
func TestSCRAMLibrdkafkaNonce(t *testing.T) {
	creds := memCreds{}
	creds.add(t, "alice", "pw", meta.ScramSHA256)
	s := &scramSession{a: NewAuthenticator(creds), mech: meta.ScramSHA256}
	ctx := context.Background()
	sf, _, err := s.Step(ctx, []byte("n,,n=alice,r=cn"))
	if err != nil {
		t.Fatal(err)
	}
	c := creds["SCRAM-SHA-256/alice"]
	salted, err := saltedPassword(meta.ScramSHA256, "pw", c.Salt, c.Iterations)
	if err != nil {
		t.Fatal(err)
	}
	withoutProof := "c=biws,r=cn" + s.nonce
	auth := []byte("n=alice,r=cn," + string(sf) + "," + withoutProof)
	clientKey := hmacSum(meta.ScramSHA256, salted, []byte("Client Key"))
	stored, _ := scramKeys(meta.ScramSHA256, salted)
	proof := hmacSum(meta.ScramSHA256, stored, auth)
	for i := range proof {
		proof[i] ^= clientKey[i]
	}
	final := withoutProof + ",p=" + base64.StdEncoding.EncodeToString(proof)
	if _, done, err := s.Step(ctx, []byte(final)); err != nil || !done {
		t.Fatalf("librdkafka-style client-final refused: %v", err)
	}
}
