package kafka

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestWriteTxnMarkersAbortsHangingTransaction does what
// kafka-transactions.sh abort does: DescribeProducers finds the open
// transaction's producer, WriteTxnMarkers aborts it in one partition, and
// the last stable offset of that partition moves to its high watermark.
func TestWriteTxnMarkersAbortsHangingTransaction(t *testing.T) {
	b := newTestBroker(t, nil)
	b.createTopic("hang", 2, nil)
	ctx := testCtx(t)
	prod := b.client(kgo.TransactionalID("hanging"), kgo.DefaultProduceTopic("hang"), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err := prod.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	for p := int32(0); p < 2; p++ {
		if err := prod.ProduceSync(ctx, &kgo.Record{Partition: p, Value: []byte("open")}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	adm := b.admin()
	lso := func(p int32) (int64, int64) {
		t.Helper()
		committed, err := adm.ListEndOffsets(ctx, "hang")
		if err != nil {
			t.Fatal(err)
		}
		c := b.client(kgo.FetchIsolationLevel(kgo.ReadCommitted()))
		stable, err := kadm.NewClient(c).ListCommittedOffsets(ctx, "hang")
		if err != nil {
			t.Fatal(err)
		}
		hw, _ := committed.Lookup("hang", p)
		st, _ := stable.Lookup("hang", p)
		return st.Offset, hw.Offset
	}
	if st, hw := lso(0); st != 0 || hw != 1 {
		t.Fatalf("partition 0 with an open transaction: last stable offset %d, high watermark %d", st, hw)
	}
	producers, err := adm.DescribeProducers(ctx, kadm.TopicsSet{"hang": {0: {}}})
	if err != nil {
		t.Fatal(err)
	}
	var pid int64 = -1
	var epoch int16
	producers.EachProducer(func(p kadm.DescribedProducer) {
		if p.CurrentTxnStartOffset == 0 {
			pid, epoch = p.ProducerID, p.ProducerEpoch
		}
	})
	if pid < 0 {
		t.Fatalf("DescribeProducers found no open transaction: %+v", producers)
	}
	c := &txnConn{t: t, c: b.raw()}
	req := kmsg.NewPtrWriteTxnMarkersRequest()
	req.Version = 2
	m := kmsg.NewWriteTxnMarkersRequestMarker()
	m.ProducerID, m.ProducerEpoch, m.Committed = pid, epoch, false
	mt := kmsg.NewWriteTxnMarkersRequestMarkerTopic()
	mt.Topic, mt.Partitions = "hang", []int32{0}
	gone := kmsg.NewWriteTxnMarkersRequestMarkerTopic()
	gone.Topic, gone.Partitions = "nope", []int32{0}
	m.Topics = []kmsg.WriteTxnMarkersRequestMarkerTopic{mt, gone}
	req.Markers = []kmsg.WriteTxnMarkersRequestMarker{m}
	resp := c.do(req).(*kmsg.WriteTxnMarkersResponse)
	wantCode(t, "marker for partition 0", resp.Markers[0].Topics[0].Partitions[0].ErrorCode, 0)
	wantCode(t, "marker for an unknown topic", resp.Markers[0].Topics[1].Partitions[0].ErrorCode, kerr.UnknownTopicOrPartition.Code)
	if st, hw := lso(0); st != hw || hw != 2 {
		t.Fatalf("partition 0 after the abort: last stable offset %d, high watermark %d; want both 2", st, hw)
	}
	if st, _ := lso(1); st != 0 {
		t.Fatalf("partition 1 (not aborted): last stable offset %d, want 0", st)
	}
	// An older epoch is a fenced incarnation's marker.
	if epoch > 0 {
		m.ProducerEpoch = epoch - 1
		req.Markers[0] = m
		resp = c.do(req).(*kmsg.WriteTxnMarkersResponse)
		wantCode(t, "marker of an older epoch", resp.Markers[0].Topics[0].Partitions[0].ErrorCode, kerr.InvalidProducerEpoch.Code)
	}
}
