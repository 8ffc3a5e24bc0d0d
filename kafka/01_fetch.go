package kafka

// Fetch (key 1): versions 4-18.
//
// Reads whole record batches from each partition with
// Partition.ReadRegion and sends their bytes as stored: no decoding, no
// re-encoding, and no copy into the response. Batches of an active or
// sealed local segment (at least regionMinBytes) go from the file to the
// socket with sendfile(2); others sit in pooled read buffers or in cached
// sealed segments and go out with writev (frame.go). Partitions are served
// in request order:
//
//   - MaxBytes, capped at Config.FetchMaxBytes (Kafka's fetch.max.bytes,
//     55 MiB by default), bounds the whole response and PartitionMaxBytes each
//     partition, except that the first batch of the first partition with
//     data comes back even when larger (KIP-74), so a consumer never
//     stalls on a big batch. Later partitions return only whole batches
//     within what is left of the budget. A read stops at a segment end;
//     the client simply fetches again.
//   - Long polling: until the response holds MinBytes, the request waits
//     up to MaxWaitMillis for an append to any of its partitions
//     (Partition.Wait; nothing polls) and then reads again. A partition
//     error, or a partition holding more than it could return, answers at
//     once, as Kafka's fetch purgatory does.
//   - OFFSET_OUT_OF_RANGE when the offset is below the log start offset or
//     above the high watermark; UNKNOWN_TOPIC_OR_PARTITION (UNKNOWN_TOPIC_ID
//     from v13); FENCED_LEADER_EPOCH / UNKNOWN_LEADER_EPOCH when
//     CurrentLeaderEpoch is set and not 0.
//   - LastStableOffset is the partition's last stable offset (the first
//     offset of its oldest open transaction, else the high watermark) at
//     both isolation levels. READ_COMMITTED (IsolationLevel 1) returns only
//     batches below it, with AbortedTransactions listing the aborted
//     transactions that may hold records of what is returned
//     (Partition.AbortedTxns, from the segments' transaction sections);
//     clients drop those records and every control batch (the markers),
//     as with Kafka. The region sent from the segment file ends at the
//     LSO (Partition.ReadRegionBelow), and a read_committed fetch waiting
//     at the LSO wakes at the next transaction marker, not at every append
//     of the open transaction (Partition.WaitStable).
//   - Fetch sessions (KIP-227) are declined: SessionID 0 in every
//     response, so clients keep sending full fetches. SessionEpoch -1 and
//     0 are full fetches; a positive epoch names a session we never gave
//     out: FETCH_SESSION_ID_NOT_FOUND.
//
// Version notes:
//   - v4: RecordBatch v2, isolation level, LSO. v5: LogStartOffset.
//   - v7: sessions (declined). v9: CurrentLeaderEpoch. v11: rack and
//     PreferredReadReplica (-1: read from the leader).
//   - v12: flexible; LastFetchedEpoch is ignored (one leader epoch, no
//     divergence). v13: topics by ID. v15: ReplicaState (followers only).
//   - v16-v18: broker endpoints / replica tags, unused by consumers.

import (
	"context"
	"encoding/binary"
	"reflect"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/streamhouse/streamhouse/log"
	"github.com/streamhouse/streamhouse/meta"
)

// fetchPart is one requested partition.
type fetchPart struct {
	part     *log.Partition // nil when staticErr is set
	offset   int64
	maxBytes int32
	out      *kmsg.FetchResponseTopicPartition
	// staticErr is an error known before reading (unknown topic, leader
	// epoch); such a partition completes the fetch at once.
	staticErr int16
	// res is the last read, whose buffer out.RecordBatches may borrow
	// until the response is written (request.release).
	res log.ReadResult
}

func (s *Server) handleFetch(ctx context.Context, r *request) (kmsg.Response, error) {
	req := r.body.(*kmsg.FetchRequest)
	resp := req.ResponseKind().(*kmsg.FetchResponse)
	if req.Version >= 7 {
		if code := fetchSessionCode(req); code != 0 {
			resp.ErrorCode = code
			return resp, nil
		}
	}
	// The broker's fetch.max.bytes caps what a client may ask for, so
	// one response never holds more than that in memory.
	req.MaxBytes = min(req.MaxBytes, s.cfg.FetchMaxBytes)
	parts := s.fetchPlan(req, resp)
	r.release = func() {
		for i := range parts {
			parts[i].res.Release()
		}
	}
	defer func() { r.regions = fetchRegions(parts) }()
	deadline := r.received.Add(time.Duration(req.MaxWaitMillis) * time.Millisecond)
	var waits []<-chan struct{}
	for {
		var total int
		var done bool
		waits, total, done = s.fetchRead(ctx, req, parts, waits[:0])
		if done || total >= int(req.MinBytes) || !time.Now().Before(deadline) {
			return resp, nil
		}
		waitStart := time.Now()
		woke := waitAny(ctx, waits, deadline)
		r.waited += time.Since(waitStart)
		if !woke {
			return resp, nil
		}
	}
}

// fetchSessionCode declines KIP-227 sessions (see the file comment).
func fetchSessionCode(req *kmsg.FetchRequest) int16 {
	switch {
	case req.SessionEpoch == -1 || req.SessionEpoch == 0:
		return 0
	case req.SessionEpoch < -1:
		return kerr.InvalidFetchSessionEpoch.Code
	default:
		return kerr.FetchSessionIDNotFound.Code
	}
}

// fetchPlan resolves the requested partitions and lays out the response.
func (s *Server) fetchPlan(req *kmsg.FetchRequest, resp *kmsg.FetchResponse) []fetchPart {
	var byID map[[16]byte]meta.Topic
	if req.Version >= 13 {
		byID = s.topicsByID()
	}
	var parts []fetchPart
	resp.Topics = make([]kmsg.FetchResponseTopic, len(req.Topics))
	for i, rt := range req.Topics {
		st := &resp.Topics[i]
		st.Topic, st.TopicID = rt.Topic, rt.TopicID
		name, unknown := rt.Topic, kerr.UnknownTopicOrPartition.Code
		if req.Version >= 13 {
			name, unknown = byID[rt.TopicID].Name, kerr.UnknownTopicID.Code
		}
		st.Partitions = make([]kmsg.FetchResponseTopicPartition, len(rt.Partitions))
		for j, rp := range rt.Partitions {
			sp := &st.Partitions[j]
			sp.Default()
			sp.Partition, sp.HighWatermark, sp.RecordBatches = rp.Partition, -1, []byte{}
			if req.IsolationLevel == 1 {
				sp.AbortedTransactions = []kmsg.FetchResponseTopicPartitionAbortedTransaction{}
			}
			fp := fetchPart{offset: rp.FetchOffset, maxBytes: rp.PartitionMaxBytes, out: sp}
			p, err := s.cfg.Log.Partition(name, rp.Partition)
			switch {
			case name == "" || err != nil && errorCode(err) == kerr.UnknownTopicOrPartition.Code:
				fp.staticErr = unknown
			case err != nil:
				fp.staticErr = errorCode(err)
			default:
				fp.staticErr = epochCode(rp.CurrentLeaderEpoch)
				fp.part = p
			}
			sp.ErrorCode = fp.staticErr
			parts = append(parts, fp)
		}
	}
	return parts
}

// fetchRead reads every partition once, filling the response. It returns
// the channels to wait on for more data, the bytes gathered, and whether
// the fetch must answer now regardless of MinBytes.
func (s *Server) fetchRead(ctx context.Context, req *kmsg.FetchRequest, parts []fetchPart, waits []<-chan struct{}) ([]<-chan struct{}, int, bool) {
	total, done := 0, false
	for i := range parts {
		fp := &parts[i]
		if fp.staticErr != 0 {
			done = true
			continue
		}
		out := fp.out
		out.ErrorCode, out.RecordBatches = 0, []byte{}
		fp.res.Release() // a long poll's earlier read, now replaced
		limit := min(int(fp.maxBytes), int(req.MaxBytes)-total)
		lso, err := fp.part.LastStableOffset(ctx)
		if err == nil && limit <= 0 && total > 0 {
			// The response is full: report offsets only.
			logStart, hwm := fp.part.Offsets()
			out.HighWatermark, out.LastStableOffset, out.LogStartOffset = hwm, min(lso, hwm), logStart
			done = true
			continue
		}
		// read_committed stops at the last stable offset.
		committed := req.IsolationLevel == 1
		var res log.ReadResult
		if err == nil {
			upTo := int64(-1)
			if committed {
				upTo = lso
			}
			res, err = fp.part.ReadRegionBelow(ctx, fp.offset, max(limit, 0), regionMinBytes, upTo)
		}
		fp.res = res
		out.HighWatermark, out.LastStableOffset, out.LogStartOffset = res.HighWatermark, min(lso, res.HighWatermark), res.LogStartOffset
		// end is as far as a reader at this isolation level may read.
		end := res.HighWatermark
		if committed {
			end = out.LastStableOffset
		}
		if err != nil {
			out.ErrorCode = errorCode(err)
			if out.ErrorCode != kerr.OffsetOutOfRange.Code {
				s.logger.Warn("fetch read failed", "topic", fp.part.Topic(), "partition", fp.part.Index(), "offset", fp.offset, "err", err)
			}
			done = true
			continue
		}
		if rg := res.Region; rg != nil {
			if total == 0 || rg.Len <= limit {
				// Whole batches, sent from the segment file (frame.go);
				// RecordBatches stays empty until then.
				total += rg.Len
				if rg.NextOffset < end {
					done = true
				}
				s.fetchAborted(ctx, committed, fp, rg.NextOffset)
				continue
			}
			fp.res.Release() // over the limit: no data, as for bytes below
		}
		data := res.Batches
		if total > 0 { // KIP-74's exception is for the first data only
			data = data[:wholeBatchesWithin(data, limit)]
		}
		if len(data) > 0 {
			out.RecordBatches = data
			total += len(data)
			if batchesEnd(data) < end {
				done = true // more than fits: waiting would not help
			}
			s.fetchAborted(ctx, committed, fp, batchesEnd(data))
			continue
		}
		if committed {
			// Only a marker can move an LSO held by a transaction.
			waits = append(waits, fp.part.WaitStable(fp.offset))
		} else {
			waits = append(waits, fp.part.Wait(res.HighWatermark))
		}
	}
	return waits, total, done
}

// regionMinBytes is the least a partition's batches come to before a
// fetch sends them from the segment file with sendfile(2) rather than
// reading them into memory: below it the extra system calls (duplicate and
// close a descriptor, one more send) cost more than copying.
const regionMinBytes = 16 << 10

// fetchAborted fills a read_committed answer's AbortedTransactions: those
// that may hold records of the data read, up to offset end
// (Partition.AbortedTxns). A failure to read them fails the partition:
// without them aborted records would be handed out as committed.
func (s *Server) fetchAborted(ctx context.Context, committed bool, fp *fetchPart, end int64) {
	if !committed {
		return
	}
	out := fp.out
	list, err := fp.part.AbortedTxns(ctx, fp.offset, end)
	if err != nil {
		s.logger.Warn("fetch: reading aborted transactions failed", "topic", fp.part.Topic(), "partition", fp.part.Index(), "offset", fp.offset, "err", err)
		fp.res.Release()
		out.ErrorCode, out.RecordBatches = errorCode(err), []byte{}
		return
	}
	out.AbortedTransactions = out.AbortedTransactions[:0]
	for _, a := range list {
		out.AbortedTransactions = append(out.AbortedTransactions,
			kmsg.FetchResponseTopicPartitionAbortedTransaction{ProducerID: a.ProducerID, FirstOffset: a.FirstOffset})
	}
}

// fetchRegions lists the partitions whose batches are file regions, in
// response order.
func fetchRegions(parts []fetchPart) []partRegion {
	var out []partRegion
	for i := range parts {
		if rg := parts[i].res.Region; rg != nil {
			out = append(out, partRegion{out: parts[i].out, region: rg})
		}
	}
	return out
}

// wholeBatchesWithin returns the length of the longest prefix of b made of
// whole batches and at most limit bytes long.
func wholeBatchesWithin(b []byte, limit int) int {
	n := 0
	for len(b)-n >= 12 {
		size := 12 + int(int32(binary.BigEndian.Uint32(b[n+8:])))
		if size < 12 || n+size > len(b) || n+size > limit {
			break
		}
		n += size
	}
	return n
}

// batchesEnd returns the offset after the last whole batch of b (as
// Partition.Read returns them: whole, valid batches).
func batchesEnd(b []byte) int64 {
	var end int64
	for len(b) >= 61 {
		size := 12 + int(int32(binary.BigEndian.Uint32(b[8:])))
		if size < 61 || size > len(b) {
			break
		}
		base := int64(binary.BigEndian.Uint64(b))
		end = base + int64(int32(binary.BigEndian.Uint32(b[23:]))) + 1
		b = b[size:]
	}
	return end
}

// waitAny blocks until one of waits is closed (true), or ctx ends or the
// deadline passes (false).
func waitAny(ctx context.Context, waits []<-chan struct{}, deadline time.Time) bool {
	t := time.NewTimer(time.Until(deadline))
	defer t.Stop()
	cases := make([]reflect.SelectCase, 0, len(waits)+2)
	cases = append(cases,
		reflect.SelectCase{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(ctx.Done())},
		reflect.SelectCase{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(t.C)})
	for _, w := range waits {
		cases = append(cases, reflect.SelectCase{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(w)})
	}
	chosen, _, _ := reflect.Select(cases)
	return chosen >= 2
}
