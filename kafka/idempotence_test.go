package kafka

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func initProducerID(t *testing.T, c *rawConn) (int64, int16) {
	t.Helper()
	req := kmsg.NewPtrInitProducerIDRequest()
	req.Version = 4
	resp := c.roundTrip(100, req).(*kmsg.InitProducerIDResponse)
	if resp.ErrorCode != 0 || resp.ProducerID < 0 {
		t.Fatalf("InitProducerId: %+v", resp)
	}
	return resp.ProducerID, resp.ProducerEpoch
}

func TestIdempotentProduceDuplicatesAndRestart(t *testing.T) {
	b := newTestBroker(t, nil)
	b.createTopic("idem", 1, nil)
	c := b.raw()
	pid, epoch := initProducerID(t, c)
	if pid2, _ := initProducerID(t, c); pid2 == pid {
		t.Fatalf("two InitProducerId calls gave the same ID %d", pid)
	}
	send := func(c *rawConn, corr int32, seq int32, n int) kmsg.ProduceResponseTopicPartition {
		return producePart(t, c.roundTrip(corr, produceOne("idem", 0, idemBatch(t, pid, epoch, seq, n))))
	}
	expect := func(sp kmsg.ProduceResponseTopicPartition, code int16, base int64) {
		t.Helper()
		if sp.ErrorCode != code || (code == 0 && sp.BaseOffset != base) {
			t.Fatalf("answer code %d base %d, want code %d base %d", sp.ErrorCode, sp.BaseOffset, code, base)
		}
	}
	p := mustPartition(t, b, "idem", 0)
	expect(send(c, 1, 0, 3), 0, 0)
	expect(send(c, 2, 3, 2), 0, 3)
	expect(send(c, 3, 0, 3), 0, 0) // retry of the first batch: original offset
	expect(send(c, 4, 3, 2), 0, 3)
	if _, hwm := p.Offsets(); hwm != 5 {
		t.Fatalf("duplicates were written: high watermark %d", hwm)
	}
	expect(send(c, 5, 9, 1), kerr.OutOfOrderSequenceNumber.Code, 0)

	b.restart()
	c = b.raw()
	expect(send(c, 7, 3, 2), 0, 3) // still known after restart
	expect(send(c, 8, 9, 1), kerr.OutOfOrderSequenceNumber.Code, 0)
	expect(send(c, 9, 5, 1), 0, 5)
	bumped := producePart(t, c.roundTrip(10, produceOne("idem", 0, idemBatch(t, pid, epoch+1, 0, 1))))
	expect(bumped, 0, 6)
	expect(send(c, 11, 6, 1), kerr.InvalidProducerEpoch.Code, 0) // the old epoch is fenced
	got := consumeAll(t, b, "idem", 7)
	for i, r := range got {
		if r.Offset != int64(i) {
			t.Fatalf("record %d at offset %d", i, r.Offset)
		}
	}
}
