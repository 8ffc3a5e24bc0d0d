package grpcapi

import (
	"bytes"
	"context"
	"errors"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/streamhouse/streamhouse/log"
	"github.com/streamhouse/streamhouse/meta"
	pb "github.com/streamhouse/streamhouse/proto"
)

// produceCodec is how the gRPC front compresses the batches it builds, as
// the seed format did.
const produceCodec = log.CodecLZ4

// Produce appends one record and answers once it is fsynced.
func (s *Server) Produce(ctx context.Context, req *pb.ProduceRequest) (*pb.ProduceResponse, error) {
	const method = "Produce"
	ts, err := toInt64("timestamp", req.GetTimestamp())
	if err != nil {
		return nil, err
	}
	if ts == 0 {
		ts = s.cfg.Now().UnixMilli()
	}
	rec := log.Record{
		Timestamp: ts,
		Key:       keyBytes(req.GetKey()),
		Value:     valueBytes(req.GetValue()),
		Headers:   headersFromMap(req.GetHeaders()),
	}
	res, err := s.append(ctx, method, req.GetTopic(), req.GetPartition(), []log.Record{rec})
	if err != nil {
		return nil, err
	}
	if res.LogAppendTime >= 0 {
		ts = res.LogAppendTime
	}
	return &pb.ProduceResponse{Offset: uint64(res.BaseOffset), Timestamp: uint64(ts)}, nil
}

// ProduceBatch appends records atomically at consecutive offsets and
// answers once they are fsynced.
func (s *Server) ProduceBatch(ctx context.Context, req *pb.ProduceBatchRequest) (*pb.ProduceBatchResponse, error) {
	const method = "ProduceBatch"
	in := req.GetRecords()
	if len(in) == 0 {
		return nil, invalidf("records is empty: send at least one record")
	}
	now := s.cfg.Now().UnixMilli()
	recs := make([]log.Record, len(in))
	for i, r := range in {
		ts, err := toInt64("records["+strconv.Itoa(i)+"].timestamp", r.GetTimestamp())
		if err != nil {
			return nil, err
		}
		if ts == 0 {
			ts = now
		}
		recs[i] = log.Record{
			Timestamp: ts,
			Key:       keyBytes(r.GetKey()),
			Value:     valueBytes(r.GetValue()),
			Headers:   headersFromMap(r.GetHeaders()),
		}
	}
	res, err := s.append(ctx, method, req.GetTopic(), req.GetPartition(), recs)
	if err != nil {
		return nil, err
	}
	return &pb.ProduceBatchResponse{
		FirstOffset: uint64(res.BaseOffset),
		LastOffset:  uint64(res.LastOffset),
		Count:       uint32(len(recs)),
	}, nil
}

// append encodes recs as RecordBatches and appends them in one durable
// (fsynced) append, so they land together or not at all.
func (s *Server) append(ctx context.Context, method, topic string, idx uint32, recs []log.Record) (log.AppendResult, error) {
	p, t, err := s.partition(method, topic, idx)
	if err != nil {
		return log.AppendResult{}, err
	}
	data, err := encodeBatches(recs, maxMessageBytes(t), runtime.GOMAXPROCS(0))
	if err != nil {
		return log.AppendResult{}, s.toStatus(method, topic, err)
	}
	if err := p.CheckInsync(); err != nil {
		return log.AppendResult{}, s.toStatus(method, topic, err)
	}
	res, err := p.Append(ctx, data, log.AppendOptions{Sync: true})
	if err != nil {
		return log.AppendResult{}, s.toStatus(method, topic, err)
	}
	return res, nil
}

// partition looks up a topic's partition and answers a missing topic or
// a partition out of range in the seed's words.
func (s *Server) partition(method, topic string, idx uint32) (*log.Partition, meta.Topic, error) {
	if err := checkName("topic", topic); err != nil {
		return nil, meta.Topic{}, err
	}
	t, err := s.cfg.Log.Topic(topic)
	if err != nil {
		return nil, meta.Topic{}, s.toStatus(method, topic, err)
	}
	if idx >= uint32(t.PartitionCount) {
		return nil, meta.Topic{}, invalidPartition(idx, t.PartitionCount)
	}
	p, err := s.cfg.Log.Partition(topic, int32(idx))
	if err != nil {
		return nil, meta.Topic{}, s.toStatus(method, topic, err)
	}
	return p, t, nil
}

// maxMessageBytes is the topic's max.message.bytes.
func maxMessageBytes(t meta.Topic) int64 {
	v, ok := t.Configs[log.ConfigMaxMessageBytes]
	if !ok {
		v, _ = log.TopicConfigDefault(log.ConfigMaxMessageBytes)
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return log.DefaultMaxMessageBytes
	}
	return n
}

// Sizes used to split records into batches that fit max.message.bytes.
const (
	// batchOverhead is a RecordBatch v2 header (61 bytes) plus the LZ4
	// frame's header, block headers and end mark, generously.
	batchOverhead = 61 + 64
	// recordOverhead bounds a record's length prefix, attributes,
	// timestamp and offset deltas and key/value/header-count varints.
	recordOverhead = 5 + 1 + 10 + 5 + 5 + 5 + 5
	// headerOverhead bounds one header's two length varints.
	headerOverhead = 10
)

// parallelChunkBytes is the least uncompressed size worth compressing on
// a goroutine of its own (see encodeBatches).
const parallelChunkBytes = 32 << 10

// span is a range of records that goes into one batch.
type span struct{ start, end int }

// encodeBatches builds LZ4 RecordBatches holding recs in order and returns
// them concatenated, for one append.
//
// Records are split into batches that fit max.message.bytes uncompressed
// (compression only shrinks them, except for LZ4's tiny expansion of
// incompressible data, which the 1% margin covers). A record too large on
// its own still gets a batch: the log then rejects it with
// ErrMessageTooLarge, by its compressed size as Kafka does.
//
// Compression dominates the CPU cost of a produce, so a large request is
// also split into up to workers batches compressed concurrently: a lone
// producer then uses every core, not one.
func encodeBatches(recs []log.Record, maxBytes int64, workers int) ([]byte, error) {
	spans := batchSpans(recs, maxBytes, workers)
	if len(spans) == 1 {
		return log.EncodeBatch(recs, produceCodec, recs[0].Timestamp)
	}
	batches := make([][]byte, len(spans))
	errs := make([]error, len(spans))
	var next atomic.Int32
	var wg sync.WaitGroup
	for range min(workers, len(spans)) {
		wg.Go(func() {
			for i := int(next.Add(1)) - 1; i < len(spans); i = int(next.Add(1)) - 1 {
				r := recs[spans[i].start:spans[i].end]
				batches[i], errs[i] = log.EncodeBatch(r, produceCodec, r[0].Timestamp)
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return bytes.Join(batches, nil), nil
}

// batchSpans splits recs greedily into spans of at most the smaller of
// max.message.bytes (less margins) and an even share of the total for
// each worker (when that share is at least parallelChunkBytes).
func batchSpans(recs []log.Record, maxBytes int64, workers int) []span {
	limit := maxBytes - maxBytes/100 - batchOverhead
	var total int64
	for i := range recs {
		total += recordSize(&recs[i])
	}
	if share := (total + int64(workers) - 1) / int64(max(workers, 1)); workers > 1 && share >= parallelChunkBytes {
		limit = min(limit, share)
	}
	var spans []span
	start, size := 0, int64(0)
	for i := range recs {
		n := recordSize(&recs[i])
		if i > start && size+n > limit {
			spans = append(spans, span{start, i})
			start, size = i, 0
		}
		size += n
	}
	return append(spans, span{start, len(recs)})
}

// recordSize bounds the encoded size of a record inside a batch.
func recordSize(r *log.Record) int64 {
	n := int64(recordOverhead + len(r.Key) + len(r.Value))
	for _, h := range r.Headers {
		n += int64(headerOverhead + len(h.Key) + len(h.Value))
	}
	return n
}

// keyBytes maps an empty key to Kafka's null key.
func keyBytes(b []byte) []byte {
	if len(b) == 0 {
		return nil
	}
	return b
}

// valueBytes maps an empty value to an empty (not null) value: only
// Kafka's tombstones are null, and the gRPC API cannot express one.
func valueBytes(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}

// headersFromMap turns the API's header map into Kafka headers, sorted by
// key so the stored bytes do not depend on map iteration order.
func headersFromMap(m map[string]string) []log.Header {
	if len(m) == 0 {
		return nil
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	hs := make([]log.Header, len(keys))
	for i, k := range keys {
		hs[i] = log.Header{Key: k, Value: []byte(m[k])}
	}
	return hs
}
