package grpcapi

import (
	"context"
	"errors"
	"strings"
	"time"
	"unicode/utf8"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/streamhouse/streamhouse/log"
	pb "github.com/streamhouse/streamhouse/proto"
)

// firstReadBytes is the size of a Consume's first read from the log; each
// further read doubles it (up to the byte budget left), so a small
// max_records decodes little and a large one needs few reads.
const firstReadBytes = 64 << 10

// Consume reads up to max_records records (and about max_bytes of them)
// from offset on, across segments.
func (s *Server) Consume(ctx context.Context, req *pb.ConsumeRequest) (*pb.ConsumeResponse, error) {
	const method = "Consume"
	p, _, err := s.partition(method, req.GetTopic(), req.GetPartition())
	if err != nil {
		return nil, err
	}
	from, err := toInt64("offset", req.GetOffset())
	if err != nil {
		return nil, status.Errorf(codes.OutOfRange, "offset %d is past the end of %s-%d", req.GetOffset(), p.Topic(), p.Index())
	}
	maxRecs, maxBytes, wait := consumeLimits(req)
	if err := s.checkRange(p, from); err != nil {
		return nil, err
	}
	if wait > 0 {
		s.waitForData(ctx, p, from, wait)
	}
	b, err := readRecords(ctx, p, from, maxRecs, maxBytes)
	if err != nil {
		if errors.Is(err, log.ErrOffsetOutOfRange) {
			// Retention moved the log start past from while we waited.
			if rerr := s.checkRange(p, from); rerr != nil {
				return nil, rerr
			}
		}
		return nil, s.toStatus(method, req.GetTopic(), err)
	}
	out := &pb.ConsumeResponse{
		Records:        make([]*pb.ConsumedRecord, len(b.recs)),
		HighWatermark:  uint64(b.hwm),
		HasMore:        b.next < b.lso,
		LogStartOffset: uint64(b.logStart),
		NextOffset:     uint64(b.next),
	}
	for i := range b.recs {
		out.Records[i] = consumedProto(&b.recs[i])
	}
	return out, nil
}

// consumeLimits applies the defaults and caps of max_records, max_bytes
// and max_wait_ms.
func consumeLimits(req *pb.ConsumeRequest) (maxRecs, maxBytes int, wait time.Duration) {
	maxRecs = int(req.GetMaxRecords())
	if maxRecs == 0 {
		maxRecs = DefaultConsumeRecords
	}
	maxRecs = min(maxRecs, MaxConsumeRecords)
	maxBytes = int(req.GetMaxBytes())
	if maxBytes == 0 {
		maxBytes = DefaultConsumeBytes
	}
	maxBytes = min(maxBytes, MaxConsumeBytes)
	wait = min(time.Duration(req.GetMaxWaitMs())*time.Millisecond, MaxConsumeWait)
	return maxRecs, maxBytes, wait
}

// checkRange answers an offset outside [log start, high watermark] with
// OUT_OF_RANGE naming the bound to use.
func (s *Server) checkRange(p *log.Partition, from int64) error {
	logStart, hwm := p.Offsets()
	if from < logStart {
		return status.Errorf(codes.OutOfRange,
			"offset %d is before the log start offset %d of %s-%d (older records were deleted by retention); consume from %d",
			from, logStart, p.Topic(), p.Index(), logStart)
	}
	if from > hwm {
		return status.Errorf(codes.OutOfRange,
			"offset %d is past the high watermark %d of %s-%d; the next record produced gets offset %d",
			from, hwm, p.Topic(), p.Index(), hwm)
	}
	return nil
}

// waitForData blocks until a committed record at from or later may exist
// (the last stable offset passed from), wait passes, the call ends or the
// server stops. Partition.WaitStable wakes it at an append, or while a
// transaction holds the LSO only at a marker.
func (s *Server) waitForData(ctx context.Context, p *log.Partition, from int64, wait time.Duration) {
	stable := func() bool {
		lso, err := p.LastStableOffset(ctx)
		return err != nil || lso > from // an error shows in the read that follows
	}
	if stable() {
		return
	}
	s.polls.Add(1)
	defer s.polls.Add(-1)
	t := time.NewTimer(wait)
	defer t.Stop()
	for {
		select {
		case <-p.WaitStable(from):
			if stable() {
				return
			}
		case <-t.C:
			return
		case <-ctx.Done():
			return
		case <-s.stopping:
			return
		}
	}
}

// readBatch is what readRecords gathered.
type readBatch struct {
	recs          []log.Record
	next          int64 // offset to read from next
	hwm, logStart int64
	lso           int64 // the last stable offset the read stopped at
}

// readRecords decodes records from offset from on, reading segment after
// segment, until maxRecs records or about maxBytes of them (at least one
// record when any exists) or the last stable offset. It reads as Kafka's
// read_committed consumers do: never past the last stable offset, and
// without the records of aborted transactions or any control batch.
func readRecords(ctx context.Context, p *log.Partition, from int64, maxRecs, maxBytes int) (readBatch, error) {
	b := readBatch{next: from}
	lso, err := p.LastStableOffset(ctx)
	if err != nil {
		return b, err
	}
	b.lso = lso
	b.logStart, b.hwm = p.Offsets()
	chunk, used := firstReadBytes, 0
	for len(b.recs) < maxRecs && used < maxBytes && b.next < lso {
		res, err := p.Read(ctx, b.next, min(chunk, max(maxBytes-used, 1)))
		if err != nil {
			if len(b.recs) > 0 && errors.Is(err, log.ErrOffsetOutOfRange) {
				break // retention raced the read; answer what we have
			}
			return b, err
		}
		b.hwm, b.logStart = res.HighWatermark, res.LogStartOffset
		data := res.Batches[:log.BatchesBelow(res.Batches, lso)]
		if len(data) == 0 {
			break // at the last stable offset
		}
		aborted, err := p.AbortedTxns(ctx, b.next, batchesEnd(data))
		if err != nil {
			return b, err
		}
		recs, err := log.DecodeCommitted(data, b.next, aborted)
		if err != nil {
			return b, err
		}
		for i := range recs {
			n := recordBytes(&recs[i])
			if len(b.recs) == maxRecs || (len(b.recs) > 0 && used+n > maxBytes) {
				b.next = recs[i].Offset
				return b, nil
			}
			b.recs = append(b.recs, recs[i])
			used += n
			b.next = recs[i].Offset + 1
		}
		// Skip what held no records to return (control batches, offsets
		// a producer left unused) so the next read moves on.
		b.next = max(b.next, batchesEnd(data))
		chunk *= 2
	}
	return b, nil
}

// batchesEnd returns the offset after the last of whole batches b, or 0
// if b cannot be parsed (the decoder has already vouched for it).
func batchesEnd(b []byte) int64 {
	batches, err := log.SplitBatches(b)
	if err != nil || len(batches) == 0 {
		return 0
	}
	h, err := log.ParseBatchHeader(batches[len(batches)-1])
	if err != nil {
		return 0
	}
	return h.NextOffset()
}

// recordBytes is what a record adds to a Consume answer: key, value and
// header bytes (headers count twice: the map and the list).
func recordBytes(r *log.Record) int {
	n := len(r.Key) + len(r.Value)
	for _, h := range r.Headers {
		n += 2 * (len(h.Key) + len(h.Value))
	}
	return n
}

// consumedProto converts a stored record. The header map holds headers
// whose key and value are valid UTF-8 (proto3 strings must be); the list
// holds every header with its raw value.
func consumedProto(r *log.Record) *pb.ConsumedRecord {
	out := &pb.ConsumedRecord{
		Offset:    fromInt64(r.Offset),
		Timestamp: fromInt64(r.Timestamp),
		Key:       r.Key,
		Value:     r.Value,
	}
	if len(r.Headers) == 0 {
		return out
	}
	out.Headers = make(map[string]string, len(r.Headers))
	out.HeaderList = make([]*pb.Header, len(r.Headers))
	for i, h := range r.Headers {
		key := h.Key
		if !utf8.ValidString(key) {
			key = strings.ToValidUTF8(key, "\uFFFD")
		} else if utf8.Valid(h.Value) {
			out.Headers[key] = string(h.Value)
		}
		out.HeaderList[i] = &pb.Header{Key: key, Value: h.Value}
	}
	return out
}
