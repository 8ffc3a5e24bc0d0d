package kafka

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/streamhouse/streamhouse/internal/metricstest"
)

// Transactions end to end with franz-go's transactional producer and
// read_committed consumers against a real broker on 127.0.0.1.

// txnBroker is a test broker whose coordinators act fast: groups
// rebalance at once, timed-out transactions are looked for every 50 ms.
func txnBroker(t *testing.T, tweak func(*Config)) *testBroker {
	return newTestBroker(t, func(c *Config) {
		c.Groups.InitialRebalanceDelay = -1
		c.Groups.MinSessionTimeout = 100 * time.Millisecond
		c.Txn.AbortTimedOutInterval = 50 * time.Millisecond
		c.Txn.RetryBackoff = 50 * time.Millisecond
		if tweak != nil {
			tweak(c)
		}
	})
}

// forTxnVersions runs f against a broker serving transactions at version
// 1, then at version 2 (Config.TransactionV2: franz-go sees
// transaction.version 2 and uses KIP-890 part 2), and checks that the
// client ended its transactions with EndTxn v4 and v5 respectively.
func forTxnVersions(t *testing.T, f func(t *testing.T, b *testBroker)) {
	for _, v2 := range []bool{false, true} {
		name, want := "v1", "4"
		if v2 {
			name, want = "v2", "5"
		}
		t.Run(name, func(t *testing.T) {
			reg := prometheus.NewRegistry()
			b := txnBroker(t, func(c *Config) { c.TransactionV2, c.Metrics = v2, reg })
			f(t, b)
			for _, s := range metricstest.Gather(t, reg, "streamhouse_kafka_requests_total") {
				if s.Labels["api"] == "EndTxn" && s.Value > 0 && s.Labels["version"] != want {
					t.Errorf("EndTxn v%s used %v times, want only v%s", s.Labels["version"], s.Value, want)
				}
			}
		})
	}
}

// txnProducer is a transactional franz-go producer for txnID.
func (b *testBroker) txnProducer(txnID string, opts ...kgo.Opt) *kgo.Client {
	return b.client(append([]kgo.Opt{kgo.TransactionalID(txnID), kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.TransactionTimeout(10 * time.Second)}, opts...)...)
}

// produceTxn runs one transaction of n records with values prefix-i over
// parts partitions, ending it with commit.
func produceTxn(t *testing.T, cl *kgo.Client, topic string, parts int32, prefix string, n int, commit bool) {
	t.Helper()
	ctx := testCtx(t)
	if err := cl.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	recs := make([]*kgo.Record, n)
	for i := range recs {
		recs[i] = &kgo.Record{Topic: topic, Partition: int32(i) % parts, Value: fmt.Appendf(nil, "%s-%d", prefix, i)}
	}
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatalf("produce in transaction: %v", err)
	}
	if err := cl.EndTransaction(ctx, kgo.TransactionEndTry(commit)); err != nil {
		t.Fatalf("end transaction (commit %t): %v", commit, err)
	}
}

// consumeValues reads topic from the start with the given isolation level
// until want values arrived (or the context ends), then checks that no
// more arrive before the partitions' ends are reached.
func consumeValues(t *testing.T, b *testBroker, topic string, committed bool, want int) []string {
	t.Helper()
	level := kgo.ReadUncommitted()
	if committed {
		level = kgo.ReadCommitted()
	}
	cl := b.client(kgo.ConsumeTopics(topic), kgo.FetchIsolationLevel(level),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(100*time.Millisecond))
	ctx := testCtx(t)
	var got []string
	for len(got) < want {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("got %d values %v, want %d: %v", len(got), got, want, err)
		}
		fs.EachError(func(topic string, p int32, err error) { t.Fatalf("fetch %s/%d: %v", topic, p, err) })
		fs.EachRecord(func(r *kgo.Record) { got = append(got, string(r.Value)) })
	}
	// Nothing more: one more poll that ends at its deadline.
	short, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	fs := cl.PollFetches(short)
	fs.EachRecord(func(r *kgo.Record) { got = append(got, string(r.Value)) })
	sort.Strings(got)
	return got
}

func values(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s-%d", prefix, i)
	}
	return out
}

func TestTxnCommitAbortReadCommitted(t *testing.T) {
	forTxnVersions(t, func(t *testing.T, b *testBroker) {
		b.createTopic("tx", 3, nil)
		p := b.txnProducer("committer")
		var want []string
		for i := range 4 {
			commit := i%2 == 0
			prefix := fmt.Sprintf("txn%d", i)
			produceTxn(t, p, "tx", 3, prefix, 10, commit)
			if commit {
				want = append(want, values(prefix, 10)...)
			}
		}
		sort.Strings(want)
		if got := consumeValues(t, b, "tx", true, len(want)); !slices.Equal(got, want) {
			t.Fatalf("read_committed got %v, want %v", got, want)
		}
		// read_uncommitted sees the aborted records too, never the markers.
		if got := consumeValues(t, b, "tx", false, 40); len(got) != 40 {
			t.Fatalf("read_uncommitted got %d values", len(got))
		}
		// The last transaction aborted.
		adm := b.admin()
		ctx := testCtx(t)
		described, err := adm.DescribeTransactions(ctx, "committer")
		if err != nil {
			t.Fatal(err)
		}
		d, ok := described["committer"]
		if !ok || d.Err != nil || d.State != "CompleteAbort" || d.TimeoutMillis != 10_000 {
			t.Fatalf("described %+v", described)
		}
		listed, err := adm.ListTransactions(ctx, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		if s := listed.TransactionalIDs(); !slices.Equal(s, []string{"committer"}) {
			t.Fatalf("listed %v", s)
		}
	})
}

func TestTxnFencing(t *testing.T) {
	forTxnVersions(t, func(t *testing.T, b *testBroker) {
		b.createTopic("fenced", 1, nil)
		ctx := testCtx(t)
		zombie := b.txnProducer("shared")
		if err := zombie.BeginTransaction(); err != nil {
			t.Fatal(err)
		}
		if err := zombie.ProduceSync(ctx, &kgo.Record{Topic: "fenced", Value: []byte("zombie")}).FirstErr(); err != nil {
			t.Fatal(err)
		}
		// A second producer with the same transactional ID aborts the
		// zombie's transaction and fences it.
		fresh := b.txnProducer("shared")
		produceTxn(t, fresh, "fenced", 1, "fresh", 3, true)
		err := zombie.EndTransaction(ctx, kgo.TryCommit)
		if err == nil {
			t.Fatal("fenced producer committed")
		}
		if !errors.Is(err, kerr.ProducerFenced) && !errors.Is(err, kerr.InvalidProducerEpoch) {
			t.Fatalf("fenced producer's commit: %v", err)
		}
		if got := consumeValues(t, b, "fenced", true, 3); !slices.Equal(got, values("fresh", 3)) {
			t.Fatalf("read_committed got %v", got)
		}
	})
}

func TestTxnTimeoutAborts(t *testing.T) {
	forTxnVersions(t, func(t *testing.T, b *testBroker) {
		b.createTopic("slow", 1, nil)
		ctx := testCtx(t)
		p := b.txnProducer("slow", kgo.TransactionTimeout(time.Second))
		if err := p.BeginTransaction(); err != nil {
			t.Fatal(err)
		}
		if err := p.ProduceSync(ctx, &kgo.Record{Topic: "slow", Value: []byte("late")}).FirstErr(); err != nil {
			t.Fatal(err)
		}
		adm := b.admin()
		waitFor(t, "the broker to abort the timed-out transaction", func() bool {
			described, err := adm.DescribeTransactions(ctx, "slow")
			return err == nil && described["slow"].State == "CompleteAbort"
		})
		if err := p.EndTransaction(ctx, kgo.TryCommit); err == nil {
			t.Fatal("a timed-out transaction committed")
		}
		if got := consumeValues(t, b, "slow", true, 0); len(got) != 0 {
			t.Fatalf("read_committed got %v", got)
		}
		// The aborted transaction no longer holds back read_committed
		// consumers: a new producer's commit is visible.
		produceTxn(t, b.txnProducer("slow"), "slow", 1, "after", 2, true)
		if got := consumeValues(t, b, "slow", true, 2); !slices.Equal(got, values("after", 2)) {
			t.Fatalf("read_committed got %v", got)
		}
	})
}

// TestTxnGroupSession runs a consume-transform-produce loop with
// franz-go's GroupTransactSession: the output and the group's offsets
// commit together.
func TestTxnGroupSession(t *testing.T) {
	forTxnVersions(t, func(t *testing.T, b *testBroker) {
		b.createTopic("in", 2, nil)
		b.createTopic("out", 2, nil)
		const n = 40
		produceValues(t, b, "in", 2, "in", n)
		ctx := testCtx(t)
		sess, err := kgo.NewGroupTransactSession(kgo.SeedBrokers(b.addr), kgo.TransactionalID("etl"),
			kgo.ConsumerGroup("etl-group"), kgo.ConsumeTopics("in"), kgo.FetchIsolationLevel(kgo.ReadCommitted()),
			kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.RecordPartitioner(kgo.ManualPartitioner()),
			kgo.TransactionTimeout(10*time.Second), kgo.FetchMaxWait(100*time.Millisecond))
		if err != nil {
			t.Fatal(err)
		}
		defer sess.Close()
		done := 0
		for done < n {
			fs := sess.PollFetches(ctx)
			if ctx.Err() != nil {
				t.Fatalf("transformed %d of %d", done, n)
			}
			if err := sess.Begin(); err != nil {
				t.Fatal(err)
			}
			var recs []*kgo.Record
			fs.EachRecord(func(r *kgo.Record) {
				recs = append(recs, &kgo.Record{Topic: "out", Partition: r.Partition, Value: append([]byte("out-"), r.Value...)})
			})
			if err := sess.ProduceSync(ctx, recs...).FirstErr(); err != nil {
				t.Fatal(err)
			}
			committed, err := sess.End(ctx, kgo.TryCommit)
			if err != nil {
				t.Fatal(err)
			}
			if committed {
				done += len(recs)
			}
		}
		got := consumeValues(t, b, "out", true, n)
		want := make([]string, n)
		for i := range want {
			want[i] = fmt.Sprintf("out-in-%d", i)
		}
		sort.Strings(want)
		if !slices.Equal(got, want) {
			t.Fatalf("out got %v, want %v", got, want)
		}
		offsets, err := b.admin().FetchOffsets(ctx, "etl-group")
		if err != nil {
			t.Fatal(err)
		}
		var sum int64
		offsets.Each(func(o kadm.OffsetResponse) { sum += o.At })
		if sum != n {
			t.Fatalf("committed offsets sum to %d, want %d: %+v", sum, n, offsets)
		}
	})
}

// TestTxnOngoingSurvivesRestart leaves a transaction open across a broker
// restart: it holds back read_committed consumers until the restarted
// coordinator aborts it at its timeout, and its records never show.
func TestTxnOngoingSurvivesRestart(t *testing.T) {
	tweak := func(c *Config) {
		c.Txn.AbortTimedOutInterval = 50 * time.Millisecond
	}
	b := txnBroker(t, tweak)
	b.createTopic("rs", 1, nil)
	ctx := testCtx(t)
	open := b.txnProducer("rs-open", kgo.TransactionTimeout(2*time.Second))
	if err := open.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	if err := open.ProduceSync(ctx, &kgo.Record{Topic: "rs", Value: []byte("lost")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	produceTxn(t, b.txnProducer("rs-ok"), "rs", 1, "ok", 2, true)
	b.stop()
	b.start(func(c *Config) {
		c.Groups.InitialRebalanceDelay = -1
		tweak(c)
	})
	d, err := b.admin().DescribeTransactions(ctx, "rs-open")
	if err != nil || d["rs-open"].State != "Ongoing" && d["rs-open"].State != "CompleteAbort" {
		t.Fatalf("after restart: %+v, %v", d, err)
	}
	if got := consumeValues(t, b, "rs", true, 2); !slices.Equal(got, values("ok", 2)) {
		t.Fatalf("read_committed got %v", got)
	}
	waitFor(t, "the restarted coordinator to abort the open transaction", func() bool {
		d, err := b.admin().DescribeTransactions(ctx, "rs-open")
		return err == nil && d["rs-open"].State == "CompleteAbort"
	})
}
