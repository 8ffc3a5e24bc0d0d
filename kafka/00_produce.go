package kafka

// Produce (key 0): versions 3-13.
//
// Each partition's bytes (one Kafka RecordBatch v2, any codec) are handed
// to Partition.Append, which validates them (framing, CRC-32C, every
// record), assigns offsets and stores them untouched. Errors are per
// partition and never fail the rest of the request:
// UNKNOWN_TOPIC_OR_PARTITION (UNKNOWN_TOPIC_ID at v13), CORRUPT_MESSAGE
// (bad CRC, length or records), INVALID_RECORD (bad magic, a record count
// that does not match the records, more than one batch, a control batch,
// a record without a key on a topic whose cleanup.policy includes
// compact: Kafka's "Compacted topic cannot accept message without key"
// in ErrorMessage), MESSAGE_TOO_LARGE (over max.message.bytes),
// OUT_OF_ORDER_SEQUENCE_NUMBER and INVALID_PRODUCER_EPOCH (idempotent
// producers, see log/producer.go), INVALID_REQUIRED_ACKS.
//
// Durability follows DESIGN.md: acks=-1 appends with Sync (answered after
// fsync) unless Config.NoFsyncOnAcksAll selects Kafka's own default policy
// (answer once written; the background flush syncs); acks=1 answers once the bytes reached the OS; acks=0 sends no
// response at all, and, as Kafka does, closes the connection when any
// partition failed so that the client refreshes its metadata. Partitions
// are appended in request order. With acks=-1 the handler does not wait
// for the fsyncs: the connection's writer does (request.durable), for all
// partitions of the request concurrently, before it sends the response in
// its turn. Meanwhile the connection reads and appends the producer's next
// pipelined request, whose fsync the group commit can then share; no
// response is ever sent before its records are fsynced.
//
// An idempotent retry of one of a producer's last five batches is answered
// with the original batch's offsets and nothing is written.
// LogAppendTime is the broker time stamped on the batch for topics with
// message.timestamp.type=LogAppendTime, else -1.
//
// Transactions: a transactional batch (attribute bit 4) must come with a
// TransactionalID, else the whole request gets
// TRANSACTIONAL_ID_AUTHORIZATION_FAILED, as Kafka answers. Before its
// append the transaction coordinator (kafka/txn, ProduceGuard) confirms
// that the partition is in the producer's ongoing transaction at its
// epoch: KIP-890 part 1's verification, done in process because the
// coordinator is this broker. The guard keeps the transaction from ending
// until the request's batches are appended, so a marker can never come
// between the check and the append. A partition not in the transaction
// gets INVALID_TXN_STATE (TRANSACTION_ABORTABLE from v11), an old epoch
// PRODUCER_FENCED.
// From v12 on (transaction version 2) the first produce to a partition adds
// it to the transaction. The log then tracks the open transaction for the
// last stable offset (log/txn.go). The internal topic __consumer_offsets
// answers INVALID_TOPIC_EXCEPTION (internal_topics.go).
//
// Version notes:
//   - v3: RecordBatch v2 only (older message formats are not served).
//   - v5: LogStartOffset. v8: ErrorMessage (ErrorRecords left empty).
//   - v9: flexible. v10-v11: CurrentLeader/NodeEndpoints tags are only
//     for NOT_LEADER_OR_FOLLOWER, which one broker never answers.
//   - v12: transaction version 2: a transactional produce adds its
//     partition to the transaction (KIP-890 part 2).
//   - v13: topics by ID.

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/streamhouse/streamhouse/kafka/txn"
	"github.com/streamhouse/streamhouse/log"
	"github.com/streamhouse/streamhouse/meta"
)

// produceJob is one partition's part of a produce request.
type produceJob struct {
	part    *log.Partition
	records []byte
	out     *kmsg.ProduceResponseTopicPartition
	txn     bool // a transactional batch, checked under the guard
}

func (s *Server) handleProduce(ctx context.Context, r *request) (kmsg.Response, error) {
	req := r.body.(*kmsg.ProduceRequest)
	resp := req.ResponseKind().(*kmsg.ProduceResponse)
	preErr := int16(0)
	switch {
	case req.Acks != -1 && req.Acks != 0 && req.Acks != 1:
		preErr = kerr.InvalidRequiredAcks.Code
	case req.TransactionID == nil && hasTransactionalBatch(req):
		preErr = kerr.TransactionalIDAuthorizationFailed.Code
	}
	var byID map[[16]byte]meta.Topic
	if req.Version >= 13 {
		byID = s.topicsByID()
	}
	var jobs []produceJob
	failed := false
	// guard holds the transactional ID still from the first check to the
	// last append (txn.ProduceGuard); guardErr is why there is none.
	var guard *txn.ProduceGuard
	var guardErr error
	defer func() {
		if guard != nil {
			guard.Release()
		}
	}()
	resp.Topics = make([]kmsg.ProduceResponseTopic, len(req.Topics))
	for i, rt := range req.Topics {
		st := &resp.Topics[i]
		st.Topic, st.TopicID = rt.Topic, rt.TopicID
		name, topicErr := rt.Topic, preErr
		if req.Version >= 13 {
			t, ok := byID[rt.TopicID]
			name = t.Name
			if !ok && topicErr == 0 {
				topicErr = kerr.UnknownTopicID.Code
			}
		}
		if topicErr == 0 && log.IsInternalTopic(name) {
			topicErr = kerr.InvalidTopicException.Code
		}
		st.Partitions = make([]kmsg.ProduceResponseTopicPartition, len(rt.Partitions))
		for j, rp := range rt.Partitions {
			sp := &st.Partitions[j]
			sp.Default()
			sp.Partition, sp.BaseOffset = rp.Partition, -1
			if topicErr != 0 {
				sp.ErrorCode, failed = topicErr, true
				if topicErr == kerr.TransactionalIDAuthorizationFailed.Code && req.Version >= 8 {
					msg := "transactional record batches need the request's TransactionalID"
					sp.ErrorMessage = &msg
				}
				continue
			}
			p, err := s.cfg.Log.Partition(name, rp.Partition)
			var h log.BatchHeader
			if err == nil {
				h, err = checkProduceBatches(rp.Records)
			}
			if err == nil && h.IsTransactional() {
				if guard == nil && guardErr == nil {
					guard, guardErr = s.txn.GuardProduce(*req.TransactionID, h.ProducerID, h.ProducerEpoch)
				}
				err = guardErr
				if err == nil {
					err = guard.Check(ctx, h.ProducerID, h.ProducerEpoch, name, rp.Partition, req.Version >= 12)
				}
				if err != nil {
					s.setProduceError(sp, err, req.Version)
					sp.ErrorCode = txnCode(err, req.Version, 0, 11)
					failed = true
					continue
				}
			}
			if err != nil {
				s.setProduceError(sp, err, req.Version)
				failed = true
				continue
			}
			jobs = append(jobs, produceJob{part: p, records: rp.Records, out: sp, txn: h.IsTransactional()})
		}
	}
	if guard != nil {
		if err := guard.Add(ctx); err != nil {
			// The partitions added by producing (transaction version 2)
			// could not be stored: append none of the transaction's
			// batches.
			jobs = s.failTxnJobs(jobs, err, req.Version)
			failed = true
		}
	}
	if s.runProduce(ctx, r, jobs, req.Acks, req.Version) {
		failed = true
	}
	if guard != nil {
		guard.Release() // the appends are written; their fsyncs need no guard
		guard = nil
	}
	if req.Acks == 0 {
		if failed {
			return nil, errCloseConn
		}
		return nil, nil
	}
	return resp, nil
}

// failTxnJobs answers err for the jobs of transactional batches and
// returns the others.
func (s *Server) failTxnJobs(jobs []produceJob, err error, version int16) []produceJob {
	kept := jobs[:0]
	for _, j := range jobs {
		if j.txn {
			s.setProduceError(j.out, err, version)
			j.out.ErrorCode = txnCode(err, version, 0, 11)
			continue
		}
		kept = append(kept, j)
	}
	return kept
}

// runProduce appends the jobs in request order and fills their responses.
// It reports whether any failed. For acks=-1 the appends do not wait for
// their fsyncs: r.durable does, and the connection runs it before it
// encodes and sends this response (in order), so the connection can append
// its next pipelined request meanwhile and one group-commit fsync can serve
// both. The response is never sent before its fsync.
func (s *Server) runProduce(ctx context.Context, r *request, jobs []produceJob, acks, version int16) bool {
	durable := acks == -1 && !s.cfg.NoFsyncOnAcksAll
	failed := false
	var waits []func() error
	if durable {
		waits = make([]func() error, len(jobs))
	}
	for i, j := range jobs {
		if acks == -1 {
			if err := j.part.CheckInsync(); err != nil {
				s.setProduceError(j.out, err, version)
				failed = true
				continue
			}
		}
		res, err := j.part.Append(ctx, j.records, log.AppendOptions{Sync: durable, DeferSync: durable})
		if err != nil {
			s.setProduceError(j.out, err, version)
			failed = true
			continue
		}
		j.out.BaseOffset, j.out.LogAppendTime, j.out.LogStartOffset = res.BaseOffset, res.LogAppendTime, res.LogStartOffset
		if durable {
			waits[i] = res.Durable
		}
	}
	if durable && len(jobs) > 0 {
		r.durable = func() { s.waitDurable(jobs, waits, version) }
	}
	return failed
}

// waitDurable waits for the fsyncs of a request's appends and turns a
// failed one into that partition's error.
func (s *Server) waitDurable(jobs []produceJob, waits []func() error, version int16) {
	s.cfg.Log.AwaitDurable(waits, func(i int, err error) { s.setProduceError(jobs[i].out, err, version) })
}

func (s *Server) setProduceError(sp *kmsg.ProduceResponseTopicPartition, err error, version int16) {
	sp.ErrorCode = errorCode(err)
	sp.BaseOffset, sp.LogAppendTime, sp.LogStartOffset = -1, -1, -1
	if version >= 8 {
		sp.ErrorMessage = errorMessage(err)
	}
	switch {
	case errors.Is(err, log.ErrDiskFull), errors.Is(err, log.ErrUploadBacklog):
		// Expected while the disk is full or the object store is down,
		// once per client retry; the log's gauges and the broker's own
		// warnings say why.
		s.logger.Debug("produce refused", "err", err)
	case sp.ErrorCode == kerr.UnknownServerError.Code || sp.ErrorCode == kerr.KafkaStorageError.Code:
		s.logger.Error("produce failed", "err", err)
	}
}

// checkProduceBatches enforces what Kafka asks of a v3+ produce beyond
// what the log validates: exactly one batch, not a control batch. It
// returns the batch's header. Damage (short or bad frames) is left to the
// log to report.
func checkProduceBatches(records []byte) (log.BatchHeader, error) {
	batches, err := log.SplitBatches(records)
	if err != nil || len(batches) == 0 {
		return log.BatchHeader{}, nil
	}
	if len(batches) > 1 {
		return log.BatchHeader{}, fmt.Errorf("%w: %d record batches; produce v3+ allows exactly one per partition", log.ErrInvalidBatch, len(batches))
	}
	h, err := log.ParseBatchHeader(batches[0])
	if err != nil {
		return log.BatchHeader{}, nil
	}
	if h.IsControl() {
		return h, fmt.Errorf("%w: control batches are written by the broker only", log.ErrInvalidBatch)
	}
	return h, nil
}

// hasTransactionalBatch reports whether any partition of req carries a
// transactional batch.
func hasTransactionalBatch(req *kmsg.ProduceRequest) bool {
	for _, t := range req.Topics {
		for _, p := range t.Partitions {
			if b := p.Records; len(b) >= 23 && binary.BigEndian.Uint16(b[21:])&0x10 != 0 {
				return true
			}
		}
	}
	return false
}
