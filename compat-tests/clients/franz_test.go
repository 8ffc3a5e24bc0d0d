package clients

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/streamhouse/streamhouse/compat-tests/harness"
)

func franzCodec(t *testing.T, name string) kgo.CompressionCodec {
	switch name {
	case "none":
		return kgo.NoCompression()
	case "gzip":
		return kgo.GzipCompression()
	case "snappy":
		return kgo.SnappyCompression()
	case "lz4":
		return kgo.Lz4Compression()
	case "zstd":
		return kgo.ZstdCompression()
	}
	t.Fatalf("unknown codec %s", name)
	return kgo.NoCompression()
}

// TestFranzProduceConsume: franz-go kgo, idempotent (its default) with
// acks=all, in every codec; reads back from the earliest offsets.
func TestFranzProduceConsume(t *testing.T) {
	b := harness.Start(t)
	for _, codec := range codecs {
		t.Run(codec, func(t *testing.T) {
			topic := harness.Topic(t)
			harness.CreateTopic(t, b, topic, 3)
			want := harness.Records(60, 3, "franz-"+codec, time.Now())
			acked := harness.Produce(t, b, topic, want, kgo.ProducerBatchCompression(franzCodec(t, codec)),
				kgo.RequiredAcks(kgo.AllISRAcks()))
			checkOffsets(t, acked)
			got := harness.Consume(t, b, topic, len(want))
			harness.CheckRecords(t, got, want, harness.Check{})
		})
	}
}

// checkOffsets checks that records the producer got back carry offsets
// 0, 1, 2, ... per partition in the order they were sent.
func checkOffsets(t *testing.T, recs []harness.Record) {
	t.Helper()
	next := map[int32]int64{}
	for i, r := range recs {
		if r.Offset != next[r.Partition] {
			t.Errorf("record %d: partition %d offset %d, want %d", i, r.Partition, r.Offset, next[r.Partition])
		}
		next[r.Partition] = r.Offset + 1
	}
}

// TestFranzSeekListOffsets: kadm list offsets (earliest, latest, by
// timestamp) and consuming one partition from a chosen offset.
func TestFranzSeekListOffsets(t *testing.T) {
	b := harness.Start(t)
	topic := harness.Topic(t)
	harness.CreateTopic(t, b, topic, 2)
	base := time.Now().Add(-time.Minute)
	want := harness.Records(40, 2, "franz-seek", base)
	harness.Produce(t, b, topic, want)
	adm := kadm.NewClient(harness.Client(t, b))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	start, err := adm.ListStartOffsets(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	end, err := adm.ListEndOffsets(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	// Record 20 (partition 0, offset 10) has timestamp base+20 ms.
	byTS, err := adm.ListOffsetsAfterMilli(ctx, base.UnixMilli()+20, topic)
	if err != nil {
		t.Fatal(err)
	}
	for p := int32(0); p < 2; p++ {
		s, _ := start.Lookup(topic, p)
		e, _ := end.Lookup(topic, p)
		ts, _ := byTS.Lookup(topic, p)
		if s.Err != nil || e.Err != nil || ts.Err != nil || s.Offset != 0 || e.Offset != 20 || ts.Offset != 10 {
			t.Errorf("partition %d: start %d (%v), end %d (%v), after ts %d (%v); want 0, 20, 10",
				p, s.Offset, s.Err, e.Offset, e.Err, ts.Offset, ts.Err)
		}
	}
	cl := harness.Client(t, b, kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{
		topic: {1: kgo.NewOffset().At(15)}}))
	var got []harness.Record
	harness.Eventually(t, 30*time.Second, func() error {
		pctx, pcancel := context.WithTimeout(context.Background(), time.Second)
		defer pcancel()
		cl.PollFetches(pctx).EachRecord(func(r *kgo.Record) { got = append(got, harness.FromKgo(r)) })
		if len(got) < 5 {
			return context.DeadlineExceeded
		}
		return nil
	})
	var want1 []harness.Record
	for _, r := range want {
		if r.Partition == 1 {
			want1 = append(want1, r)
		}
	}
	harness.CheckRecords(t, got, want1[15:], harness.Check{StartOffset: 15})
}

// TestFranzAdminTopics: kadm create (incl. validate-only), list, describe
// and delete topics.
func TestFranzAdminTopics(t *testing.T) {
	b := harness.Start(t)
	adm := kadm.NewClient(harness.Client(t, b))
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	topic := harness.Topic(t)
	if r, err := adm.ValidateCreateTopics(ctx, 4, 1, nil, topic); err != nil || r.Error() != nil {
		t.Fatalf("validate-only create: %v %v", err, r.Error())
	}
	if md, err := adm.Metadata(ctx, topic); err == nil && md.Topics[topic].Err == nil {
		t.Fatalf("validate-only create made topic %s", topic)
	}
	if r, err := adm.CreateTopics(ctx, 4, 1, nil, topic); err != nil || r.Error() != nil {
		t.Fatalf("create: %v %v", err, r.Error())
	}
	if r, _ := adm.CreateTopics(ctx, 4, 1, nil, topic); r.Error() == nil {
		t.Errorf("creating %s twice succeeded", topic)
	}
	harness.WaitTopic(t, b, topic, 4)
	listed, err := adm.ListTopics(ctx)
	if err != nil || !listed.Has(topic) {
		t.Fatalf("list topics: %v, has %s: %v", err, topic, listed.Has(topic))
	}
	if r, err := adm.DeleteTopics(ctx, topic); err != nil || r.Error() != nil {
		t.Fatalf("delete: %v %v", err, r.Error())
	}
	harness.Eventually(t, 30*time.Second, func() error {
		l, err := adm.ListTopics(ctx)
		if err == nil && l.Has(topic) {
			return context.DeadlineExceeded
		}
		return err
	})
}

// produceCodec is harness.Produce's option for a codec name.
func produceCodec(t *testing.T, name string) kgo.Opt {
	return kgo.ProducerBatchCompression(franzCodec(t, name))
}
