package meta

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
)

// AllocateProducerID implements Store.
//
// IDs come from a single-row sequence, start at 1 and are never reused,
// even across restarts. A plain idempotent producer (empty transactional
// ID) leaves no row behind. A transactional ID keeps one row; each call
// bumps its epoch, which fences the previous incarnation of that producer.
// When the epoch is already math.MaxInt16 the transactional ID is moved to a
// fresh producer ID with epoch 0, as Kafka does.
func (s *SQLite) AllocateProducerID(ctx context.Context, transactionalID string) (ProducerID, error) {
	return allocateProducerID(ctx, s, transactionalID)
}

// allocateProducerID is AllocateProducerID for either backend. On
// PostgreSQL the SERIALIZABLE write transaction makes concurrent calls for
// one transactional ID bump its epoch once each.
func allocateProducerID(ctx context.Context, r txRunner, transactionalID string) (ProducerID, error) {
	var pid ProducerID
	err := r.write(ctx, func(q db) error {
		pid = ProducerID{TransactionalID: transactionalID}
		if transactionalID == "" {
			var err error
			pid.ID, err = nextProducerID(ctx, q)
			return err
		}
		var epoch int64
		err := q.queryRow(ctx,
			`SELECT id, epoch FROM producer_ids WHERE transactional_id = ?`,
			transactionalID).Scan(&pid.ID, &epoch)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			return insertTransactional(ctx, q, &pid)
		case err != nil:
			return err
		case epoch >= math.MaxInt16:
			if _, err := q.exec(ctx,
				`DELETE FROM producer_ids WHERE id = ?`, pid.ID); err != nil {
				return err
			}
			return insertTransactional(ctx, q, &pid)
		}
		pid.Epoch = int16(epoch + 1)
		_, err = q.exec(ctx,
			`UPDATE producer_ids SET epoch = ? WHERE id = ?`, pid.Epoch, pid.ID)
		return err
	})
	if err != nil {
		return ProducerID{}, fmt.Errorf("meta: allocate producer id (transactional id %q): %w", transactionalID, err)
	}
	return pid, nil
}

// insertTransactional gives pid.TransactionalID a new producer ID with
// epoch 0.
func insertTransactional(ctx context.Context, q db, pid *ProducerID) error {
	id, err := nextProducerID(ctx, q)
	if err != nil {
		return err
	}
	pid.ID, pid.Epoch = id, 0
	_, err = q.exec(ctx,
		`INSERT INTO producer_ids (id, epoch, transactional_id) VALUES (?, 0, ?)`,
		pid.ID, pid.TransactionalID)
	return err
}

// nextProducerID takes the next value of the producer ID sequence.
func nextProducerID(ctx context.Context, q db) (int64, error) {
	var id int64
	err := q.queryRow(ctx, `UPDATE producer_id_sequence SET next_id = next_id + 1
		WHERE singleton = 1 RETURNING next_id - 1`).Scan(&id)
	if err != nil {
		return 0, fmt.Errorf("next producer id: %w", err)
	}
	return id, nil
}
