package kafka

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"sort"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/streamhouse/streamhouse/log"
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// plainBatch is a one-record batch without a producer.
func plainBatch(t testing.TB, value string) []byte {
	t.Helper()
	b, err := log.EncodeBatch([]log.Record{{Key: []byte("k"), Value: []byte(value)}}, log.CodecNone, time.Now().UnixMilli())
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// idemBatch is an n-record batch of producer pid at epoch, starting at
// sequence seq.
func idemBatch(t testing.TB, pid int64, epoch int16, seq int32, n int) []byte {
	t.Helper()
	recs := make([]log.Record, n)
	for i := range recs {
		recs[i] = log.Record{Value: []byte(fmt.Sprintf("seq-%d", int(seq)+i))}
	}
	b, err := log.EncodeBatch(recs, log.CodecNone, time.Now().UnixMilli())
	if err != nil {
		t.Fatal(err)
	}
	binary.BigEndian.PutUint64(b[43:], uint64(pid))
	binary.BigEndian.PutUint16(b[51:], uint16(epoch))
	binary.BigEndian.PutUint32(b[53:], uint32(seq))
	fixCRC(b)
	return b
}

// fixCRC recomputes a batch's CRC-32C.
func fixCRC(b []byte) {
	binary.BigEndian.PutUint32(b[17:], crc32.Checksum(b[21:], castagnoli))
}

// produceReq builds a v9 produce request (topics and partitions sorted).
func produceReq(acks int16, parts map[string]map[int32][]byte) *kmsg.ProduceRequest {
	req := kmsg.NewPtrProduceRequest()
	req.Version, req.Acks, req.TimeoutMillis = 9, acks, 5000
	topics := make([]string, 0, len(parts))
	for t := range parts {
		topics = append(topics, t)
	}
	sort.Strings(topics)
	for _, name := range topics {
		rt := kmsg.NewProduceRequestTopic()
		rt.Topic = name
		ps := make([]int32, 0, len(parts[name]))
		for p := range parts[name] {
			ps = append(ps, p)
		}
		sort.Slice(ps, func(i, j int) bool { return ps[i] < ps[j] })
		for _, p := range ps {
			rp := kmsg.NewProduceRequestTopicPartition()
			rp.Partition, rp.Records = p, parts[name][p]
			rt.Partitions = append(rt.Partitions, rp)
		}
		req.Topics = append(req.Topics, rt)
	}
	return req
}

// produceOne is produceReq for a single partition.
func produceOne(topic string, p int32, batch []byte) *kmsg.ProduceRequest {
	return produceReq(-1, map[string]map[int32][]byte{topic: {p: batch}})
}

// produceCodes maps "topic/partition" to the answer's error code.
func produceCodes(resp kmsg.Response) map[string]int16 {
	out := map[string]int16{}
	for _, t := range resp.(*kmsg.ProduceResponse).Topics {
		for _, p := range t.Partitions {
			out[fmt.Sprintf("%s/%d", t.Topic, p.Partition)] = p.ErrorCode
		}
	}
	return out
}

// producePart returns the single partition answer of a produce.
func producePart(t *testing.T, resp kmsg.Response) kmsg.ProduceResponseTopicPartition {
	t.Helper()
	r := resp.(*kmsg.ProduceResponse)
	if len(r.Topics) != 1 || len(r.Topics[0].Partitions) != 1 {
		t.Fatalf("answer has %d topics", len(r.Topics))
	}
	return r.Topics[0].Partitions[0]
}

// fetchReq builds a v11 fetch of one partition.
func fetchReq(topic string, p int32, offset int64, maxWaitMs, minBytes int32) *kmsg.FetchRequest {
	req := kmsg.NewPtrFetchRequest()
	req.Version, req.MaxWaitMillis, req.MinBytes, req.MaxBytes = 11, maxWaitMs, minBytes, 1<<20
	req.SessionEpoch = -1
	rt := kmsg.NewFetchRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewFetchRequestTopicPartition()
	rp.Partition, rp.FetchOffset, rp.PartitionMaxBytes = p, offset, 1<<20
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	return req
}

// roundTripNoFatal is roundTrip for other goroutines: nil on failure.
func (c *rawConn) roundTripNoFatal(correlationID int32, req kmsg.Request) *kmsg.FetchResponse {
	if _, err := c.nc.Write(frame(correlationID, req)); err != nil {
		return nil
	}
	body, ok := c.readFrame()
	if !ok || len(body) < 5 {
		return nil
	}
	resp := kmsg.NewPtrFetchResponse()
	resp.Version = req.GetVersion()
	if err := resp.ReadFrom(body[4:]); err != nil {
		return nil
	}
	return resp
}

func mustPartition(t testing.TB, b *testBroker, topic string, idx int32) *log.Partition {
	t.Helper()
	p, err := b.log.Partition(topic, idx)
	if err != nil {
		t.Fatal(err)
	}
	return p
}
