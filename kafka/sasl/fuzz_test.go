package sasl

import (
	"bytes"
	"context"
	"testing"

	"github.com/streamhouse/streamhouse/meta"
)

// The SASL parsers read bytes from unauthenticated clients. Each fuzz
// target is seeded with empty, truncated, valid and valid-plus-garbage
// inputs, and checks that parsing never panics and that what it accepts
// is consistent.

func FuzzParsePlain(f *testing.F) {
	valid := []byte("\x00alice\x00s3cret")
	for _, seed := range [][]byte{nil, valid[:7], valid, append(bytes.Clone(valid), "\x00\xff"...), []byte("alice\x00alice\x00pw")} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, msg []byte) {
		user, pw, err := ParsePlain(msg)
		if err == nil && (user == "" || pw == "") {
			t.Fatalf("accepted %q with an empty user or password", msg)
		}
	})
}

func FuzzParseClientFirst(f *testing.F) {
	valid := []byte("n,,n=alice,r=fyko+d2lbbFgONRv9qkxdawL")
	for _, seed := range [][]byte{nil, valid[:9], valid, append(bytes.Clone(valid), ",\x00garbage"...), []byte("n,a=a=3Db,n=a=3Db,r=x")} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, msg []byte) {
		c, err := ParseClientFirst(msg)
		if err != nil {
			return
		}
		if c.User == "" || !validNonce(c.Nonce) || !bytes.HasSuffix(msg, []byte(c.Bare)) {
			t.Fatalf("accepted %q as %+v", msg, c)
		}
	})
}

func FuzzParseClientFinal(f *testing.F) {
	valid := []byte("c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=")
	for _, seed := range [][]byte{nil, valid[:20], valid, append(bytes.Clone(valid), "garbage"...), append(bytes.Clone(valid), ",p=AAAA"...)} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, msg []byte) {
		c, err := ParseClientFinal(msg)
		if err == nil && (len(c.Proof) == 0 || !validNonce(c.Nonce)) {
			t.Fatalf("accepted %q as %+v", msg, c)
		}
	})
}

// FuzzSCRAMSession drives a whole server session with two fuzzed client
// messages: it must never panic nor authenticate.
func FuzzSCRAMSession(f *testing.F) {
	f.Add([]byte("n,,n=alice,r=abc"), []byte("c=biws,r=abc,p=AAAA"))
	f.Add([]byte{}, []byte{})
	f.Add([]byte("n,,n=alice,r=abc\x00"), []byte("c=biws"))
	creds := memCreds{}
	c, err := NewCredential("alice", "pw", meta.ScramSHA256, MinIterations)
	if err != nil {
		f.Fatal(err)
	}
	creds["SCRAM-SHA-256/alice"] = c
	a := NewAuthenticator(creds)
	f.Fuzz(func(t *testing.T, first, final []byte) {
		s, _ := a.Start(ScramSHA256)
		if _, _, err := s.Step(context.Background(), first); err != nil {
			return
		}
		if _, done, err := s.Step(context.Background(), final); err == nil || done {
			t.Fatalf("authenticated with %q, %q", first, final)
		}
	})
}
