package main

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	streamhousepb "github.com/streamhouse/streamhouse/proto"
)

// TestTransactionsCrossFronts: records of a Kafka transaction reach gRPC
// Consume only once committed, never when aborted, and the markers never
// show up as records; Consume waits at the last stable offset and
// HasMore tells whether committed records lie beyond.
func TestTransactionsCrossFronts(t *testing.T) {
	p := startBroker(t, nil, localArgs(t.TempDir())...)
	p.ready(t)
	kafkaAddr, grpcAddr := p.listenAddr(t, "kafka"), p.listenAddr(t, "grpc")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	adm, err := kgo.NewClient(kgo.SeedBrokers(kafkaAddr))
	if err != nil {
		t.Fatal(err)
	}
	defer adm.Close()
	if _, err := kadm.NewClient(adm).CreateTopic(ctx, 1, 1, nil, "txcross"); err != nil {
		t.Fatal(err)
	}
	prod, err := kgo.NewClient(kgo.SeedBrokers(kafkaAddr), kgo.TransactionalID("txcross-producer"),
		kgo.DefaultProduceTopic("txcross"))
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()
	txn := func(commit bool, values ...string) {
		t.Helper()
		if err := prod.BeginTransaction(); err != nil {
			t.Fatal(err)
		}
		for _, v := range values {
			if err := prod.ProduceSync(ctx, kgo.StringRecord(v)).FirstErr(); err != nil {
				t.Fatal(err)
			}
		}
		end := kgo.TryAbort
		if commit {
			end = kgo.TryCommit
		}
		if err := prod.EndTransaction(ctx, end); err != nil {
			t.Fatal(err)
		}
	}
	txn(true, "c1", "c2")
	txn(false, "a1", "a2")
	txn(true, "c3")

	gc := newCompGRPC(t, grpcAddr)
	consume := func(from uint64, wait uint32) *streamhousepb.ConsumeResponse {
		t.Helper()
		resp, err := gc.Consume(ctx, &streamhousepb.ConsumeRequest{Topic: "txcross", Offset: from, MaxRecords: 100, MaxWaitMs: wait})
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	values := func(resp *streamhousepb.ConsumeResponse) []string {
		var out []string
		for _, r := range resp.Records {
			out = append(out, string(r.Value))
		}
		return out
	}
	resp := consume(0, 0)
	if got, want := values(resp), []string{"c1", "c2", "c3"}; !slices.Equal(got, want) {
		t.Fatalf("gRPC Consume: %q, want %q (the aborted transaction and the markers left out)", got, want)
	}
	// c1 c2 commit a1 a2 abort c3 commit: the high watermark is 8.
	if resp.HighWatermark != 8 || resp.NextOffset != 8 || resp.HasMore {
		t.Fatalf("gRPC Consume: high watermark %d, next offset %d, has more %v; want 8, 8, false", resp.HighWatermark, resp.NextOffset, resp.HasMore)
	}

	// An open transaction holds Consume at its first offset.
	if err := prod.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	if err := prod.ProduceSync(ctx, kgo.StringRecord("open")).FirstErr(); err != nil {
		t.Fatal(err)
	}
	if resp := consume(8, 0); len(resp.Records) != 0 || resp.HasMore || resp.NextOffset != 8 {
		t.Fatalf("gRPC Consume past the last stable offset: %q, has more %v, next %d", values(resp), resp.HasMore, resp.NextOffset)
	}
	// A long poll at the LSO returns once the transaction commits.
	done := make(chan *streamhousepb.ConsumeResponse, 1)
	go func() {
		r, err := gc.Consume(ctx, &streamhousepb.ConsumeRequest{Topic: "txcross", Offset: 8, MaxRecords: 100, MaxWaitMs: 30_000})
		if err != nil {
			t.Error(err)
		}
		done <- r
	}()
	if err := prod.EndTransaction(ctx, kgo.TryCommit); err != nil {
		t.Fatal(err)
	}
	select {
	case r := <-done:
		if r == nil || !slices.Equal(values(r), []string{"open"}) {
			t.Fatalf("long poll answered %v", r)
		}
	case <-ctx.Done():
		t.Fatal("long poll at the last stable offset did not return after the commit")
	}
}
