package meta

import (
	"context"
	"fmt"
	"strconv"
	"time"
)

// This file holds users' SASL/SCRAM credentials (the table of migration
// 0005): per user and mechanism, the salt, the iteration count, StoredKey
// and ServerKey of RFC 5802, never the password. A user exists while it
// has a credential. The query code is shared by both backends.

// ScramMechanism is a SCRAM mechanism, numbered as Kafka numbers them
// (AlterUserScramCredentials, DescribeUserScramCredentials). Never change
// the numbers: they are in the scram_credentials table.
type ScramMechanism int8

// The SCRAM mechanisms.
const (
	ScramSHA256 ScramMechanism = 1
	ScramSHA512 ScramMechanism = 2
)

// String returns the SASL name: "SCRAM-SHA-256" or "SCRAM-SHA-512"; any
// other value prints as "ScramMechanism(N)".
func (m ScramMechanism) String() string {
	switch m {
	case ScramSHA256:
		return "SCRAM-SHA-256"
	case ScramSHA512:
		return "SCRAM-SHA-512"
	}
	return "ScramMechanism(" + strconv.Itoa(int(m)) + ")"
}

// KeyLen returns the length of the mechanism's keys (its hash's size),
// 0 for an unknown mechanism.
func (m ScramMechanism) KeyLen() int {
	switch m {
	case ScramSHA256:
		return 32
	case ScramSHA512:
		return 64
	}
	return 0
}

// ScramCredential is one user's credential for one SCRAM mechanism.
type ScramCredential struct {
	User       string
	Mechanism  ScramMechanism
	Salt       []byte
	Iterations int32
	// StoredKey is H(ClientKey) and ServerKey HMAC(SaltedPassword,
	// "Server Key"), each Mechanism.KeyLen() bytes.
	StoredKey []byte
	ServerKey []byte
	UpdatedAt time.Time // set from the store's clock by PutScramCredential if zero
}

// validateScram checks c as PutScramCredential stores it.
func validateScram(c ScramCredential) error {
	switch {
	case c.User == "":
		return fmt.Errorf("%w: empty user name", ErrInvalid)
	case c.Mechanism.KeyLen() == 0:
		return fmt.Errorf("%w: unknown mechanism %v", ErrInvalid, c.Mechanism)
	case len(c.Salt) == 0:
		return fmt.Errorf("%w: empty salt", ErrInvalid)
	case c.Iterations <= 0:
		return fmt.Errorf("%w: iterations %d, want > 0", ErrInvalid, c.Iterations)
	case len(c.StoredKey) != c.Mechanism.KeyLen() || len(c.ServerKey) != c.Mechanism.KeyLen():
		return fmt.Errorf("%w: %v keys must be %d bytes", ErrInvalid, c.Mechanism, c.Mechanism.KeyLen())
	}
	return nil
}

// PutScramCredential implements Store.
func (s *SQLite) PutScramCredential(ctx context.Context, c ScramCredential) error {
	return putScram(ctx, s, c, s.now)
}

// PutScramCredential implements Store.
func (s *Postgres) PutScramCredential(ctx context.Context, c ScramCredential) error {
	return putScram(ctx, s, c, s.now)
}

// putScram is PutScramCredential for either backend.
func putScram(ctx context.Context, r txRunner, c ScramCredential, now func() time.Time) error {
	err := validateScram(c)
	if err == nil {
		updated := millis(stamp(now, c.UpdatedAt))
		err = r.write(ctx, func(q db) error {
			_, err := q.exec(ctx, `INSERT INTO scram_credentials
					(user_name, mechanism, salt, iterations, stored_key, server_key, updated_at)
				VALUES (?, ?, ?, ?, ?, ?, ?)
				ON CONFLICT (user_name, mechanism) DO UPDATE SET
					salt       = excluded.salt,
					iterations = excluded.iterations,
					stored_key = excluded.stored_key,
					server_key = excluded.server_key,
					updated_at = excluded.updated_at`,
				c.User, int64(c.Mechanism), c.Salt, int64(c.Iterations), c.StoredKey, c.ServerKey, updated)
			return err
		})
	}
	if err != nil {
		return fmt.Errorf("meta: put %v credential of %q: %w", c.Mechanism, c.User, err)
	}
	return nil
}

// GetScramCredential implements Store.
func (s *SQLite) GetScramCredential(ctx context.Context, user string, m ScramMechanism) (ScramCredential, bool, error) {
	return getScram(ctx, s, user, m)
}

// GetScramCredential implements Store.
func (s *Postgres) GetScramCredential(ctx context.Context, user string, m ScramMechanism) (ScramCredential, bool, error) {
	return getScram(ctx, s, user, m)
}

// getScram is GetScramCredential for either backend.
func getScram(ctx context.Context, r txRunner, user string, m ScramMechanism) (ScramCredential, bool, error) {
	var cs []ScramCredential
	err := r.read(ctx, func(q db) error {
		var err error
		cs, err = queryScram(ctx, q, `WHERE user_name = ? AND mechanism = ?`, user, int64(m))
		return err
	})
	if err != nil {
		return ScramCredential{}, false, fmt.Errorf("meta: get %v credential of %q: %w", m, user, err)
	}
	if len(cs) == 0 {
		return ScramCredential{}, false, nil
	}
	return cs[0], true, nil
}

// ListScramCredentials implements Store. The result is never nil.
func (s *SQLite) ListScramCredentials(ctx context.Context) ([]ScramCredential, error) {
	return listScram(ctx, s)
}

// ListScramCredentials implements Store. The result is never nil.
func (s *Postgres) ListScramCredentials(ctx context.Context) ([]ScramCredential, error) {
	return listScram(ctx, s)
}

// listScram is ListScramCredentials for either backend.
func listScram(ctx context.Context, r txRunner) ([]ScramCredential, error) {
	var cs []ScramCredential
	err := r.read(ctx, func(q db) error {
		var err error
		cs, err = queryScram(ctx, q, ``)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("meta: list scram credentials: %w", err)
	}
	return cs, nil
}

// queryScram returns the credentials where selects, sorted by user then
// mechanism; never nil.
func queryScram(ctx context.Context, q db, where string, args ...any) ([]ScramCredential, error) {
	cs := []ScramCredential{}
	err := scanEach(ctx, q, `SELECT user_name, mechanism, salt, iterations, stored_key, server_key, updated_at
		FROM scram_credentials `+where+` ORDER BY user_name, mechanism`, args, func(sc dbRow) error {
		var (
			c          ScramCredential
			mech, iter int64
			updated    int64
		)
		if err := sc.Scan(&c.User, &mech, &c.Salt, &iter, &c.StoredKey, &c.ServerKey, &updated); err != nil {
			return err
		}
		c.Mechanism, c.Iterations, c.UpdatedAt = ScramMechanism(mech), int32(iter), fromMillis(updated)
		cs = append(cs, c)
		return nil
	})
	return cs, err
}

// DeleteScramCredential implements Store.
func (s *SQLite) DeleteScramCredential(ctx context.Context, user string, m ScramMechanism) (bool, error) {
	return deleteScram(ctx, s, user, m)
}

// DeleteScramCredential implements Store.
func (s *Postgres) DeleteScramCredential(ctx context.Context, user string, m ScramMechanism) (bool, error) {
	return deleteScram(ctx, s, user, m)
}

// deleteScram is DeleteScramCredential for either backend.
func deleteScram(ctx context.Context, r txRunner, user string, m ScramMechanism) (bool, error) {
	var n int64
	err := r.write(ctx, func(q db) error {
		var err error
		n, err = q.exec(ctx, `DELETE FROM scram_credentials WHERE user_name = ? AND mechanism = ?`, user, int64(m))
		return err
	})
	if err != nil {
		return false, fmt.Errorf("meta: delete %v credential of %q: %w", m, user, err)
	}
	return n > 0, nil
}
