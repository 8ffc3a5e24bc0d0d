package meta

import (
	"bytes"
	"context"
	"testing"
	"time"
)

// This file holds the conformance cases for SCRAM credentials (scram.go);
// runConformance runs them against every backend.

// scramCred builds a valid credential of user for m whose keys are filled
// with fill.
func scramCred(user string, m ScramMechanism, iter int32, fill byte) ScramCredential {
	return ScramCredential{User: user, Mechanism: m, Salt: []byte("salt-" + user), Iterations: iter,
		StoredKey: bytes.Repeat([]byte{fill}, m.KeyLen()), ServerKey: bytes.Repeat([]byte{fill + 1}, m.KeyLen()),
		UpdatedAt: t0}
}

func normScram(cs []ScramCredential) []ScramCredential {
	out := make([]ScramCredential, len(cs))
	for i, c := range cs {
		c.UpdatedAt = c.UpdatedAt.UTC()
		out[i] = c
	}
	return out
}

func testScramCredentials(t *testing.T, open func(t *testing.T) Store) {
	ctx := context.Background()
	s := open(t)

	list, err := s.ListScramCredentials(ctx)
	wantErr(t, err, nil)
	if list == nil || len(list) != 0 {
		t.Fatalf("ListScramCredentials on an empty store = %#v, want an empty non-nil slice", list)
	}
	if _, found, err := s.GetScramCredential(ctx, "alice", ScramSHA256); err != nil || found {
		t.Fatalf("GetScramCredential of a missing user = found %v, %v", found, err)
	}

	bob512 := scramCred("bob", ScramSHA512, 8192, 7)
	alice256 := scramCred("alice", ScramSHA256, 4096, 1)
	alice512 := scramCred("alice", ScramSHA512, 4096, 3)
	for _, c := range []ScramCredential{bob512, alice512, alice256} {
		wantErr(t, s.PutScramCredential(ctx, c), nil)
	}
	got, found, err := s.GetScramCredential(ctx, "alice", ScramSHA256)
	wantErr(t, err, nil)
	if !found {
		t.Fatal("alice's SCRAM-SHA-256 credential not found")
	}
	wantEqual(t, "alice 256", normScram([]ScramCredential{got}), []ScramCredential{alice256})
	list, err = s.ListScramCredentials(ctx)
	wantErr(t, err, nil)
	wantEqual(t, "list", normScram(list), []ScramCredential{alice256, alice512, bob512})

	// An upsert replaces every field; a zero UpdatedAt takes the clock.
	alice256b := scramCred("alice", ScramSHA256, 10000, 9)
	alice256b.Salt = []byte{0, 1, 2, 0xff}
	alice256b.UpdatedAt = time.Time{}
	wantErr(t, s.PutScramCredential(ctx, alice256b), nil)
	got, _, err = s.GetScramCredential(ctx, "alice", ScramSHA256)
	wantErr(t, err, nil)
	if got.UpdatedAt.IsZero() {
		t.Error("a zero UpdatedAt was stored as zero, want the store's clock")
	}
	got.UpdatedAt = time.Time{}
	wantEqual(t, "alice 256 replaced", got, alice256b)

	deleted, err := s.DeleteScramCredential(ctx, "alice", ScramSHA512)
	wantErr(t, err, nil)
	if !deleted {
		t.Error("DeleteScramCredential of an existing credential = false")
	}
	deleted, err = s.DeleteScramCredential(ctx, "alice", ScramSHA512)
	wantErr(t, err, nil)
	if deleted {
		t.Error("DeleteScramCredential of a missing credential = true")
	}
	if _, found, _ := s.GetScramCredential(ctx, "alice", ScramSHA512); found {
		t.Error("deleted credential still found")
	}
	if _, found, _ := s.GetScramCredential(ctx, "alice", ScramSHA256); !found {
		t.Error("deleting one mechanism removed the other")
	}

	for _, c := range []struct {
		name string
		mod  func(*ScramCredential)
	}{
		{"empty user", func(c *ScramCredential) { c.User = "" }},
		{"unknown mechanism", func(c *ScramCredential) { c.Mechanism = 3 }},
		{"zero mechanism", func(c *ScramCredential) { c.Mechanism = 0 }},
		{"empty salt", func(c *ScramCredential) { c.Salt = nil }},
		{"zero iterations", func(c *ScramCredential) { c.Iterations = 0 }},
		{"short stored key", func(c *ScramCredential) { c.StoredKey = c.StoredKey[1:] }},
		{"long server key", func(c *ScramCredential) { c.ServerKey = append(c.ServerKey, 0) }},
	} {
		t.Run(c.name, func(t *testing.T) {
			cred := scramCred("carol", ScramSHA256, 4096, 5)
			c.mod(&cred)
			wantErr(t, s.PutScramCredential(ctx, cred), ErrInvalid)
			if _, found, _ := s.GetScramCredential(ctx, "carol", cred.Mechanism); found {
				t.Error("an invalid credential was stored")
			}
		})
	}
}

func TestScramMechanismString(t *testing.T) {
	for m, want := range map[ScramMechanism]string{ScramSHA256: "SCRAM-SHA-256", ScramSHA512: "SCRAM-SHA-512", 9: "ScramMechanism(9)"} {
		if got := m.String(); got != want {
			t.Errorf("%d.String() = %q, want %q", m, got, want)
		}
	}
}
