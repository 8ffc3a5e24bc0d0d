package meta

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"
)

// This file holds the transaction coordinator's durable state (tables of
// migration 0004): one Txn per transactional ID with the partitions and
// groups of its current transaction, and the offsets that transaction
// committed, pending until it ends. The query code is shared by both
// backends; only how a Txn's partition and group sets are inserted differs
// (db.insertTxnMembers).

// TxnState is a transaction's state as the transaction coordinator records it (Kafka's TransactionState).
type TxnState int8

// The states of Kafka's transaction state machine, numbered as stored.
// Never change the numbers: they are in the txns table.
const (
	TxnEmpty TxnState = iota
	TxnOngoing
	TxnPrepareCommit
	TxnPrepareAbort
	TxnCompleteCommit
	TxnCompleteAbort
	TxnDead
	TxnPrepareEpochFence
)

// txnStateNames holds Kafka's name of each TxnState, indexed by value.
var txnStateNames = [...]string{
	TxnEmpty:             "Empty",
	TxnOngoing:           "Ongoing",
	TxnPrepareCommit:     "PrepareCommit",
	TxnPrepareAbort:      "PrepareAbort",
	TxnCompleteCommit:    "CompleteCommit",
	TxnCompleteAbort:     "CompleteAbort",
	TxnDead:              "Dead",
	TxnPrepareEpochFence: "PrepareEpochFence",
}

// String returns Kafka's name of the state: "Empty", "Ongoing", "PrepareCommit", "PrepareAbort", "CompleteCommit", "CompleteAbort", "Dead", "PrepareEpochFence".
// A value outside the list prints as "TxnState(N)".
func (s TxnState) String() string {
	if s.valid() {
		return txnStateNames[s]
	}
	return "TxnState(" + strconv.Itoa(int(s)) + ")"
}

// valid reports whether s is one of the declared states.
func (s TxnState) valid() bool { return s >= TxnEmpty && int(s) < len(txnStateNames) }

// Txn is one transactional ID's coordinator state.
type Txn struct {
	TransactionalID   string
	ProducerID        int64
	ProducerEpoch     int16
	LastProducerID    int64 // -1 when none (KIP-360 / KIP-890 retries)
	LastProducerEpoch int16 // -1 when none
	State             TxnState
	TimeoutMs         int32
	// TxnVersion is the transaction version the current transaction runs at (0 or 1: classic, 2: KIP-890 part 2).
	TxnVersion int16
	StartedAt  time.Time        // when the current transaction began (zero when not Ongoing/Prepare*)
	UpdatedAt  time.Time        // set from the store's clock by PutTxn and CompleteTxn if zero
	Partitions []TopicPartition // sorted by topic, then partition; no duplicates
	Groups     []string         // consumer groups added by AddOffsetsToTxn, sorted, no duplicates
}

// TxnOffset is an offset committed inside a transaction (TxnOffsetCommit), pending until the transaction ends.
type TxnOffset struct {
	TransactionalID string
	Group           string
	Topic           string
	Partition       int32
	Offset          int64
	LeaderEpoch     int32
	Metadata        string
	ProducerID      int64
	ProducerEpoch   int16
	CommittedAt     time.Time // set from the store's clock by AddTxnOffsets if zero
}

// prepareTxn validates t and returns it as stored: Partitions and Groups
// copied and sorted (nil when empty), UpdatedAt stamped with now if zero,
// times rounded to milliseconds in UTC.
func prepareTxn(t Txn, now func() time.Time) (Txn, error) {
	switch {
	case t.TransactionalID == "":
		return Txn{}, fmt.Errorf("%w: empty transactional id", ErrInvalid)
	case t.ProducerID < 0:
		return Txn{}, fmt.Errorf("%w: negative producer id %d", ErrInvalid, t.ProducerID)
	case t.LastProducerID < -1:
		return Txn{}, fmt.Errorf("%w: last producer id %d, want >= -1", ErrInvalid, t.LastProducerID)
	case t.TimeoutMs < 0:
		return Txn{}, fmt.Errorf("%w: negative timeout %d ms", ErrInvalid, t.TimeoutMs)
	case !t.State.valid():
		return Txn{}, fmt.Errorf("%w: unknown state %v", ErrInvalid, t.State)
	}
	parts, err := sortedPartitions(t.Partitions)
	if err != nil {
		return Txn{}, err
	}
	groups, err := sortedGroups(t.Groups)
	if err != nil {
		return Txn{}, err
	}
	t.Partitions, t.Groups = parts, groups
	t.UpdatedAt = stamp(now, t.UpdatedAt)
	if !t.StartedAt.IsZero() {
		t.StartedAt = fromMillis(millis(t.StartedAt))
	}
	return t, nil
}

// sortedPartitions returns a sorted copy of tps (nil when empty),
// rejecting empty topics, negative partitions and duplicates.
func sortedPartitions(tps []TopicPartition) ([]TopicPartition, error) {
	if len(tps) == 0 {
		return nil, nil
	}
	out := slices.Clone(tps)
	slices.SortFunc(out, func(a, b TopicPartition) int {
		return cmp.Or(cmp.Compare(a.Topic, b.Topic), cmp.Compare(a.Partition, b.Partition))
	})
	for i, tp := range out {
		switch {
		case tp.Topic == "":
			return nil, fmt.Errorf("%w: empty topic in partitions", ErrInvalid)
		case tp.Partition < 0:
			return nil, fmt.Errorf("%w: negative partition %s/%d", ErrInvalid, tp.Topic, tp.Partition)
		case i > 0 && tp == out[i-1]:
			return nil, fmt.Errorf("%w: partition %s/%d listed twice", ErrInvalid, tp.Topic, tp.Partition)
		}
	}
	return out, nil
}

// sortedGroups returns a sorted copy of groups (nil when empty), rejecting
// empty names and duplicates.
func sortedGroups(groups []string) ([]string, error) {
	if len(groups) == 0 {
		return nil, nil
	}
	out := slices.Clone(groups)
	slices.Sort(out)
	for i, g := range out {
		switch {
		case g == "":
			return nil, fmt.Errorf("%w: empty group", ErrInvalid)
		case i > 0 && g == out[i-1]:
			return nil, fmt.Errorf("%w: group %q listed twice", ErrInvalid, g)
		}
	}
	return out, nil
}

// validateTxnOffsets checks every entry of an AddTxnOffsets batch.
func validateTxnOffsets(offsets []TxnOffset) error {
	for _, o := range offsets {
		switch {
		case o.TransactionalID == "":
			return fmt.Errorf("%w: empty transactional id", ErrInvalid)
		case o.Group == "":
			return fmt.Errorf("%w: empty group", ErrInvalid)
		case o.Topic == "":
			return fmt.Errorf("%w: empty topic", ErrInvalid)
		case o.Partition < 0:
			return fmt.Errorf("%w: negative partition %d", ErrInvalid, o.Partition)
		}
	}
	return nil
}

// PutTxn implements Store.
func (s *SQLite) PutTxn(ctx context.Context, t Txn) error {
	return putTxn(ctx, s, t, s.now)
}

// putTxn is PutTxn for either backend.
func putTxn(ctx context.Context, r txRunner, t Txn, now func() time.Time) error {
	stored, err := prepareTxn(t, now)
	if err == nil {
		err = r.write(ctx, func(q db) error { return writeTxn(ctx, q, stored) })
	}
	if err != nil {
		return fmt.Errorf("meta: put txn %q: %w", t.TransactionalID, err)
	}
	return nil
}

// writeTxn upserts t's row and replaces its partition and group sets; t
// comes from prepareTxn.
func writeTxn(ctx context.Context, q db, t Txn) error {
	var started any // NULL when no transaction is running
	if !t.StartedAt.IsZero() {
		started = millis(t.StartedAt)
	}
	_, err := q.exec(ctx, `INSERT INTO txns (transactional_id, producer_id, producer_epoch,
			last_producer_id, last_producer_epoch, state, timeout_ms, txn_version, started_at, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (transactional_id) DO UPDATE SET
			producer_id         = excluded.producer_id,
			producer_epoch      = excluded.producer_epoch,
			last_producer_id    = excluded.last_producer_id,
			last_producer_epoch = excluded.last_producer_epoch,
			state               = excluded.state,
			timeout_ms          = excluded.timeout_ms,
			txn_version         = excluded.txn_version,
			started_at          = excluded.started_at,
			updated_at          = excluded.updated_at`,
		t.TransactionalID, t.ProducerID, int64(t.ProducerEpoch), t.LastProducerID,
		int64(t.LastProducerEpoch), int64(t.State), int64(t.TimeoutMs), int64(t.TxnVersion),
		started, millis(t.UpdatedAt))
	if err != nil {
		return err
	}
	if _, err := q.exec(ctx, `DELETE FROM txn_partitions WHERE transactional_id = ?`, t.TransactionalID); err != nil {
		return err
	}
	if _, err := q.exec(ctx, `DELETE FROM txn_groups WHERE transactional_id = ?`, t.TransactionalID); err != nil {
		return err
	}
	return q.insertTxnMembers(ctx, t.TransactionalID, t.Partitions, t.Groups)
}

// insertTxnMembers implements db with one cached prepared statement per row.
func (d sqlDB) insertTxnMembers(ctx context.Context, transactionalID string, partitions []TopicPartition, groups []string) error {
	for _, tp := range partitions {
		if _, err := d.q.ExecContext(ctx,
			`INSERT INTO txn_partitions (transactional_id, topic, partition) VALUES (?, ?, ?)`,
			transactionalID, tp.Topic, tp.Partition); err != nil {
			return fmt.Errorf("partition %s/%d: %w", tp.Topic, tp.Partition, err)
		}
	}
	for _, g := range groups {
		if _, err := d.q.ExecContext(ctx,
			`INSERT INTO txn_groups (transactional_id, group_name) VALUES (?, ?)`,
			transactionalID, g); err != nil {
			return fmt.Errorf("group %q: %w", g, err)
		}
	}
	return nil
}

// GetTxn implements Store.
func (s *SQLite) GetTxn(ctx context.Context, transactionalID string) (Txn, bool, error) {
	return getTxn(ctx, s, transactionalID)
}

// getTxn is GetTxn for either backend.
func getTxn(ctx context.Context, r txRunner, transactionalID string) (Txn, bool, error) {
	var txns []Txn
	err := r.read(ctx, func(q db) error {
		var err error
		txns, err = queryTxns(ctx, q, `WHERE transactional_id = ?`, transactionalID)
		return err
	})
	if err != nil {
		return Txn{}, false, fmt.Errorf("meta: get txn %q: %w", transactionalID, err)
	}
	if len(txns) == 0 {
		return Txn{}, false, nil
	}
	return txns[0], true, nil
}

// ListTxns implements Store. The result is never nil.
func (s *SQLite) ListTxns(ctx context.Context) ([]Txn, error) {
	return listTxns(ctx, s)
}

// listTxns is ListTxns for either backend.
func listTxns(ctx context.Context, r txRunner) ([]Txn, error) {
	var txns []Txn
	err := r.read(ctx, func(q db) error {
		var err error
		txns, err = queryTxns(ctx, q, ``)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("meta: list txns: %w", err)
	}
	return txns, nil
}

// queryTxns returns the txns that where (empty, or "WHERE
// transactional_id = ?" with args) selects, sorted by transactional ID,
// with their partitions and groups: three queries, joined here, so q
// should be a snapshot. The result is never nil.
func queryTxns(ctx context.Context, q db, where string, args ...any) ([]Txn, error) {
	txns := []Txn{}
	rows, err := q.query(ctx, `SELECT transactional_id, producer_id, producer_epoch, last_producer_id,
		last_producer_epoch, state, timeout_ms, txn_version, started_at, updated_at
		FROM txns `+where+` ORDER BY transactional_id`, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		t, err := scanTxn(rows)
		if err != nil {
			return nil, err
		}
		txns = append(txns, t)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	if len(txns) == 0 {
		return txns, nil
	}
	index := make(map[string]*Txn, len(txns))
	for i := range txns {
		index[txns[i].TransactionalID] = &txns[i]
	}
	err = scanEach(ctx, q, `SELECT transactional_id, topic, partition FROM txn_partitions `+where+`
		ORDER BY transactional_id, topic, partition`, args, func(sc dbRow) error {
		var (
			id string
			tp TopicPartition
		)
		if err := sc.Scan(&id, &tp.Topic, &tp.Partition); err != nil {
			return err
		}
		if t := index[id]; t != nil {
			t.Partitions = append(t.Partitions, tp)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	err = scanEach(ctx, q, `SELECT transactional_id, group_name FROM txn_groups `+where+`
		ORDER BY transactional_id, group_name`, args, func(sc dbRow) error {
		var id, g string
		if err := sc.Scan(&id, &g); err != nil {
			return err
		}
		if t := index[id]; t != nil {
			t.Groups = append(t.Groups, g)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return txns, nil
}

// scanTxn scans one txns row as queryTxns selects it; Partitions and
// Groups stay nil.
func scanTxn(sc dbRow) (Txn, error) {
	var (
		t                                Txn
		epoch, lastEpoch, state, version int64
		started                          sql.NullInt64
		updated                          int64
	)
	err := sc.Scan(&t.TransactionalID, &t.ProducerID, &epoch, &t.LastProducerID,
		&lastEpoch, &state, &t.TimeoutMs, &version, &started, &updated)
	if err != nil {
		return Txn{}, err
	}
	t.ProducerEpoch, t.LastProducerEpoch = int16(epoch), int16(lastEpoch)
	t.State, t.TxnVersion = TxnState(state), int16(version)
	if started.Valid {
		t.StartedAt = fromMillis(started.Int64)
	}
	t.UpdatedAt = fromMillis(updated)
	return t, nil
}

// scanEach runs query and calls fn for each row.
func scanEach(ctx context.Context, q db, query string, args []any, fn func(sc dbRow) error) error {
	rows, err := q.query(ctx, query, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		if err := fn(rows); err != nil {
			return err
		}
	}
	return rows.Err()
}

// DeleteTxn implements Store.
func (s *SQLite) DeleteTxn(ctx context.Context, transactionalID string) error {
	return deleteTxn(ctx, s, transactionalID)
}

// deleteTxn is DeleteTxn for either backend.
func deleteTxn(ctx context.Context, r txRunner, transactionalID string) error {
	err := r.write(ctx, func(q db) error {
		// ON DELETE CASCADE removes the partitions, groups and pending offsets.
		_, err := q.exec(ctx, `DELETE FROM txns WHERE transactional_id = ?`, transactionalID)
		return err
	})
	if err != nil {
		return fmt.Errorf("meta: delete txn %q: %w", transactionalID, err)
	}
	return nil
}

// AddTxnOffsets implements Store. Rows with a zero CommittedAt get the
// store's clock. If any entry is invalid (ErrInvalid) nothing is written.
// Like CommitOffsets it records the group (so DeleteGroup reaches the
// pending offsets) but does not check that topics exist.
func (s *SQLite) AddTxnOffsets(ctx context.Context, offsets []TxnOffset) error {
	return addTxnOffsets(ctx, s, offsets, s.now)
}

// addTxnOffsets is AddTxnOffsets for either backend.
func addTxnOffsets(ctx context.Context, r txRunner, offsets []TxnOffset, now func() time.Time) error {
	if len(offsets) == 0 {
		return nil
	}
	id := offsets[0].TransactionalID
	if err := validateTxnOffsets(offsets); err != nil {
		return fmt.Errorf("meta: add txn offsets of %q: %w", id, err)
	}
	nowMs := millis(now())
	err := r.write(ctx, func(q db) error {
		lastTxn, lastGroup := "", ""
		for _, o := range offsets {
			if o.TransactionalID != lastTxn { // a batch is almost always one txn and group
				if err := txnExists(ctx, q, o.TransactionalID); err != nil {
					return err
				}
				lastTxn = o.TransactionalID
			}
			if o.Group != lastGroup {
				if _, err := q.exec(ctx, `INSERT INTO groups (name, created_at) VALUES (?, ?)
					ON CONFLICT (name) DO NOTHING`, o.Group, nowMs); err != nil {
					return fmt.Errorf("group %q: %w", o.Group, err)
				}
				lastGroup = o.Group
			}
			ct := nowMs
			if !o.CommittedAt.IsZero() {
				ct = millis(o.CommittedAt)
			}
			if _, err := q.exec(ctx, `INSERT INTO txn_offsets (transactional_id, group_name, topic,
					partition, committed_offset, leader_epoch, metadata, producer_id, producer_epoch, committed_at)
				VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
				ON CONFLICT (transactional_id, group_name, topic, partition) DO UPDATE SET
					committed_offset = excluded.committed_offset,
					leader_epoch     = excluded.leader_epoch,
					metadata         = excluded.metadata,
					producer_id      = excluded.producer_id,
					producer_epoch   = excluded.producer_epoch,
					committed_at     = excluded.committed_at`,
				o.TransactionalID, o.Group, o.Topic, o.Partition, o.Offset, o.LeaderEpoch,
				o.Metadata, o.ProducerID, int64(o.ProducerEpoch), ct); err != nil {
				return fmt.Errorf("%s/%d: %w", o.Topic, o.Partition, err)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("meta: add txn offsets of %q: %w", id, err)
	}
	return nil
}

// txnExists returns nil if a txns row names transactionalID, else an
// ErrInvalid error.
func txnExists(ctx context.Context, q db, transactionalID string) error {
	var one int
	err := q.queryRow(ctx, `SELECT 1 FROM txns WHERE transactional_id = ?`, transactionalID).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("%w: no txn %q", ErrInvalid, transactionalID)
	}
	return err
}

// PendingTxnOffsets implements Store. The result is never nil.
func (s *SQLite) PendingTxnOffsets(ctx context.Context, group string) ([]TxnOffset, error) {
	return pendingTxnOffsets(ctx, s.rq, group)
}

// pendingTxnOffsets is PendingTxnOffsets for either backend.
func pendingTxnOffsets(ctx context.Context, q db, group string) ([]TxnOffset, error) {
	out := []TxnOffset{}
	err := scanEach(ctx, q, `SELECT transactional_id, group_name, topic, partition, committed_offset,
			leader_epoch, metadata, producer_id, producer_epoch, committed_at
		FROM txn_offsets WHERE group_name = ? ORDER BY topic, partition, transactional_id`,
		[]any{group}, func(sc dbRow) error {
			var (
				o         TxnOffset
				epoch, ct int64
			)
			if err := sc.Scan(&o.TransactionalID, &o.Group, &o.Topic, &o.Partition, &o.Offset,
				&o.LeaderEpoch, &o.Metadata, &o.ProducerID, &epoch, &ct); err != nil {
				return err
			}
			o.ProducerEpoch, o.CommittedAt = int16(epoch), fromMillis(ct)
			out = append(out, o)
			return nil
		})
	if err != nil {
		return nil, fmt.Errorf("meta: pending txn offsets of group %q: %w", group, err)
	}
	return out, nil
}

// CompleteTxn implements Store. It validates t as PutTxn does before
// touching anything, so an invalid t changes nothing.
func (s *SQLite) CompleteTxn(ctx context.Context, t Txn, commit bool) error {
	return completeTxn(ctx, s, t, commit, s.now)
}

// completeTxn is CompleteTxn for either backend. Everything happens in one
// database transaction, so a crash leaves either the old state with the
// pending offsets or the new state with them applied (on commit) and gone.
func completeTxn(ctx context.Context, r txRunner, t Txn, commit bool, now func() time.Time) error {
	stored, err := prepareTxn(t, now)
	if err == nil {
		err = r.write(ctx, func(q db) error {
			if commit {
				// The groups rows exist: txn_offsets references them.
				// The WHERE clause is also what lets SQLite parse an
				// upsert on INSERT ... SELECT.
				if _, err := q.exec(ctx, `INSERT INTO committed_offsets
						(group_name, topic, partition, committed_offset, leader_epoch, metadata, commit_time)
					SELECT group_name, topic, partition, committed_offset, leader_epoch, metadata, committed_at
					FROM txn_offsets WHERE transactional_id = ?
					ON CONFLICT (group_name, topic, partition) DO UPDATE SET
						committed_offset = excluded.committed_offset,
						leader_epoch     = excluded.leader_epoch,
						metadata         = excluded.metadata,
						commit_time      = excluded.commit_time`, stored.TransactionalID); err != nil {
					return fmt.Errorf("apply pending offsets: %w", err)
				}
			}
			if _, err := q.exec(ctx, `DELETE FROM txn_offsets WHERE transactional_id = ?`,
				stored.TransactionalID); err != nil {
				return err
			}
			return writeTxn(ctx, q, stored)
		})
	}
	if err != nil {
		return fmt.Errorf("meta: complete txn %q (commit %t): %w", t.TransactionalID, commit, err)
	}
	return nil
}
