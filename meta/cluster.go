package meta

import (
	"context"
	"database/sql"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/google/uuid"
)

// ClusterID implements Store.
func (s *SQLite) ClusterID(ctx context.Context) (string, error) {
	return clusterID(ctx, s, s.now, s.logger)
}

// ClusterID implements Store. Brokers sharing the database race only on
// the first call ever; the SERIALIZABLE write transaction makes the loser
// retry, and its retry reads the winner's row.
func (s *Postgres) ClusterID(ctx context.Context) (string, error) {
	return clusterID(ctx, s, s.now, s.logger.With("backend", "postgres"))
}

// clusterID is ClusterID for either backend: read the row; if there is
// none, insert a fresh ID unless a concurrent caller got there first, and
// read again, so every caller returns the one ID that was stored.
func clusterID(ctx context.Context, r txRunner, now func() time.Time, logger *slog.Logger) (string, error) {
	var id string
	err := r.read(ctx, func(q db) error { return scanClusterID(ctx, q, &id) })
	if err == nil {
		return id, nil
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return "", fmt.Errorf("meta: read cluster id: %w", err)
	}
	fresh, err := newClusterID()
	if err != nil {
		return "", fmt.Errorf("meta: generate cluster id: %w", err)
	}
	err = r.write(ctx, func(q db) error {
		if _, err := q.exec(ctx, `INSERT INTO cluster (singleton, id, created_at) VALUES (1, ?, ?)
			ON CONFLICT (singleton) DO NOTHING`, fresh, millis(now())); err != nil {
			return err
		}
		return scanClusterID(ctx, q, &id)
	})
	if err != nil {
		return "", fmt.Errorf("meta: store cluster id: %w", err)
	}
	if id == fresh {
		logger.Info("meta: generated cluster id", "cluster_id", id)
	}
	return id, nil
}

// scanClusterID reads the stored cluster ID into id; no row is an error
// for which errors.Is(err, sql.ErrNoRows) holds.
func scanClusterID(ctx context.Context, q db, id *string) error {
	return q.queryRow(ctx, `SELECT id FROM cluster WHERE singleton = 1`).Scan(id)
}

// newClusterID returns a random cluster ID the way Kafka's
// Uuid.randomUuid and `kafka-storage random-uuid` make one: a version-4
// UUID written as unpadded base64url (22 characters), drawn again while
// its text starts with '-' (which a command line would take for a flag).
// Kafka also never returns the all-zero UUID or the UUID 1; the version
// bits of a version-4 UUID already rule both out.
func newClusterID() (string, error) {
	for {
		u, err := uuid.NewRandom()
		if err != nil {
			return "", err
		}
		if s := base64.RawURLEncoding.EncodeToString(u[:]); s[0] != '-' {
			return s, nil
		}
	}
}
