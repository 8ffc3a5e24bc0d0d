package clients

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/streamhouse/streamhouse/compat-tests/harness"
)

// txnCommand is one line of the script Compat.java's txn mode runs: a
// command for one of its transactional producers, with a record for "send".
type txnCommand struct {
	Cmd      string `json:"cmd"`
	Producer int    `json:"producer"`
	*harness.Record
}

// txnSend is one record of a scripted transaction and what became of it.
type txnSend struct {
	rec       harness.Record
	committed bool // its transaction was committed
	flushed   bool // flushed before the transaction ended
}

// TestJavaTransactions: two kafka-clients 4.4.0 transactional producers
// (transactional IDs txn-TOPIC-0 and -1) run 10 rounds on a topic of 3 partitions. In each round
// both begin a transaction and send 6 records (2 per partition, their sends
// interleaved); one commits and the other aborts, the roles alternating, so
// the 20 transactions' batches and markers interleave in every partition.
// In most rounds both flush first, so the aborted records are acknowledged
// (in the log) before the abort; in rounds 3 and 8 the abort follows the
// sends at once. Then KafkaConsumers read every partition to its end: at
// read_committed exactly the records of committed transactions, in order at
// their acknowledged offsets, none of an aborted one; at read_uncommitted
// exactly every acknowledged record (committed or aborted); never a commit or
// abort marker. With no transaction open, the last stable offset is the high
// watermark.
func TestJavaTransactions(t *testing.T) {
	b := harness.Start(t)
	topic := harness.Topic(t)
	const partitions, rounds, perTxn = 3, 10, 6
	harness.CreateTopic(t, b, topic, partitions)

	var script []txnCommand
	var sends []*txnSend
	cmd := func(c string, producer int) { script = append(script, txnCommand{Cmd: c, Producer: producer}) }
	now := time.Now()
	for r := range rounds {
		committer, aborter := r%2, 1-r%2
		quickAbort := r%5 == 3
		cmd("begin", 0)
		cmd("begin", 1)
		recs := [2][]harness.Record{}
		for p := range 2 {
			recs[p] = harness.Records(perTxn, partitions, fmt.Sprintf("txn-r%d-p%d", r, p), now.Add(time.Duration(r)*time.Second))
		}
		for j := range perTxn {
			for p := range 2 {
				rec := recs[p][j]
				rec.Key = fmt.Sprintf("r%d-p%d-%d", r, p, j)
				s := &txnSend{rec: rec, committed: p == committer, flushed: !quickAbort || p == committer}
				sends = append(sends, s)
				script = append(script, txnCommand{Cmd: "send", Producer: p, Record: &s.rec})
			}
		}
		switch {
		case quickAbort:
			cmd("abort", aborter)
			cmd("commit", committer)
		case r%3 == 0:
			cmd("flush", 0)
			cmd("flush", 1)
			cmd("abort", aborter)
			cmd("commit", committer)
		default:
			cmd("flush", 1)
			cmd("flush", 0)
			cmd("commit", committer)
			cmd("abort", aborter)
		}
	}
	var stdin strings.Builder
	enc := json.NewEncoder(&stdin)
	for _, c := range script {
		if err := enc.Encode(c); err != nil {
			t.Fatal(err)
		}
	}

	_, events := javaCompat(t, stdin.String(), "txn", b.Bootstrap(), topic, "txn-"+topic, "2")
	if ended := harness.Events(events, "ended"); len(ended) != 2*rounds {
		t.Fatalf("%d transactions ended, want %d: %v", len(ended), 2*rounds, ended)
	}
	acked := map[string]map[string]any{}
	failed := map[string]string{}
	for _, ev := range events {
		k, _ := ev["k"].(string)
		switch ev["op"] {
		case "ack":
			acked[k] = ev
		case "send_failed":
			failed[k] = fmt.Sprint(ev["error"])
		}
	}
	var wantCommitted, wantAll []harness.Record
	quickAborted, quickAbortedAcked := 0, 0
	for _, s := range sends {
		ack, ok := acked[s.rec.Key]
		if !ok {
			if s.flushed {
				t.Errorf("record %s (committed %v): send failed (%s), want it acknowledged", s.rec.Key, s.committed, failed[s.rec.Key])
			}
			quickAborted++
			continue
		}
		rec := s.rec
		rec.Partition, rec.Offset = int32(harness.Num(ack, "p")), harness.Num(ack, "o")
		if !s.flushed {
			quickAborted++
			quickAbortedAcked++
		}
		wantAll = append(wantAll, rec)
		if s.committed {
			wantCommitted = append(wantCommitted, rec)
		}
	}
	t.Logf("%d records sent in %d transactions: %d committed; of the %d aborted right after their sends, %d had reached the broker",
		len(sends), 2*rounds, len(wantCommitted), quickAborted, quickAbortedAcked)
	byOffset(wantCommitted)
	byOffset(wantAll)

	hwm := endOffsets(t, b, topic)
	got, ends := javaDrain(t, b, topic, partitions, "read_committed")
	harness.CheckRecords(t, got, wantCommitted, harness.Check{SparseOffsets: true})
	checkLSO(t, ends, hwm, "read_committed")
	got, ends = javaDrain(t, b, topic, partitions, "read_uncommitted")
	harness.CheckRecords(t, got, wantAll, harness.Check{SparseOffsets: true})
	checkLSO(t, ends, hwm, "read_uncommitted")
}

// byOffset sorts records by partition, then offset.
func byOffset(recs []harness.Record) {
	slices.SortFunc(recs, func(a, b harness.Record) int {
		return cmp.Or(cmp.Compare(a.Partition, b.Partition), cmp.Compare(a.Offset, b.Offset))
	})
}

// javaDrain reads every partition of topic to its end with a KafkaConsumer
// at isolation (read_committed or read_uncommitted) and returns the records
// and the end offsets the consumer went to (the last stable offsets under
// read_committed). A format of "long" prints 8-byte values as decimal longs.
func javaDrain(t *testing.T, b harness.Broker, topic string, partitions int, isolation string, format ...string) ([]harness.Record, map[int32]int64) {
	t.Helper()
	args := append([]string{"drain", b.Bootstrap(), topic, strconv.Itoa(partitions), isolation}, format...)
	got, events := javaCompat(t, "", args...)
	return got, drained(t, events, isolation)
}

// drained checks a driver's drain events ("end_offsets", then "drained"
// having reached them) and returns the end offsets.
func drained(t *testing.T, events []map[string]any, isolation string) map[int32]int64 {
	t.Helper()
	d, e := harness.Events(events, "drained"), harness.Events(events, "end_offsets")
	if len(d) != 1 || d[0]["reached_end"] != true || len(e) != 1 {
		t.Fatalf("%s drain: events %v, want end_offsets and drained with reached_end", isolation, events)
	}
	ends := map[int32]int64{}
	for k := range e[0] {
		if p, err := strconv.Atoi(k); err == nil {
			ends[int32(p)] = harness.Num(e[0], k)
		}
	}
	return ends
}

// endOffsets returns the high watermarks of topic's partitions.
func endOffsets(t *testing.T, b harness.Broker, topic string) map[int32]int64 {
	t.Helper()
	return listOffsets(t, b, topic, false)
}

// listOffsets lists the end offsets of topic's partitions: the last stable
// offsets if committed, else the high watermarks.
func listOffsets(t *testing.T, b harness.Broker, topic string, committed bool) map[int32]int64 {
	t.Helper()
	adm := kadm.NewClient(harness.Client(t, b))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	list := adm.ListEndOffsets
	if committed {
		list = adm.ListCommittedOffsets
	}
	los, err := list(ctx, topic)
	if err == nil {
		err = los.Error()
	}
	if err != nil {
		t.Fatalf("list offsets of %s (committed %v): %v", topic, committed, err)
	}
	out := map[int32]int64{}
	los.Each(func(o kadm.ListedOffset) { out[o.Partition] = o.Offset })
	return out
}

// checkLSO checks that a consumer's end offsets equal the high watermarks.
func checkLSO(t *testing.T, ends, hwm map[int32]int64, isolation string) {
	t.Helper()
	if fmt.Sprint(ends) != fmt.Sprint(hwm) {
		t.Errorf("%s consumer's end offsets %v, want the high watermarks %v (no transaction is open)", isolation, ends, hwm)
	}
}

// transactionsCommand is the main class bin/kafka-transactions.sh runs.
const transactionsCommand = "org.apache.kafka.tools.TransactionsCommand"

// hangingTimeoutMs is the transaction timeout of the transactions the CLI
// tests leave open: far longer than a test, so that only the test ends them.
const hangingTimeoutMs = 300000

// TestKafkaTransactionsCLI: a kafka-clients producer (transactional ID
// open-TOPIC, transaction.timeout.ms 5 min) begins a transaction, writes 5
// records to each of 2 partitions, and is killed (SIGKILL) with the
// transaction open. franz-go then writes 3 non-transactional records to
// partition 0; the last stable offset of both partitions stays at the
// transaction's first offset. kafka-transactions.sh (Kafka 4.4.0) must show it:
// list (its transactional ID Ongoing, with its producer ID and the broker as
// coordinator), describe --transactional-id (Ongoing, the timeout, its start
// time, both partitions), describe-producers (the producer's open transaction
// starting at offset 0 of partition 0, its last sequence 4; franz-go's
// producer with none), find-hanging --max-transaction-timeout 0 (nothing: the
// coordinator tracks both partitions, so the transaction is open, not
// hanging), and describe of an unknown transactional ID fails. Then a new
// producer with the same transactional ID (initTransactions) fences the dead
// one: the coordinator aborts its transaction, describe shows it ended with
// a newer epoch and no partitions, the last stable offsets reach the high
// watermarks, and read_committed sees franz-go's 3 records only.
func TestKafkaTransactionsCLI(t *testing.T) {
	b := harness.Start(t)
	topic := harness.Topic(t)
	harness.CreateTopic(t, b, topic, 2)
	txnID := "open-" + topic
	before := time.Now().UnixMilli()
	starts := openTransaction(t, b, topic, txnID, 2, 5)
	if fmt.Sprint(starts) != fmt.Sprint(map[int32]int64{0: 0, 1: 0}) {
		t.Fatalf("open transaction starts at %v, want offset 0 of both partitions", starts)
	}
	after := produceAfter(t, b, topic, 3)
	if lso := listOffsets(t, b, topic, true); fmt.Sprint(lso) != fmt.Sprint(map[int32]int64{0: 0, 1: 0}) {
		t.Errorf("last stable offsets %v with the transaction open, want 0 in both partitions", lso)
	}
	coordinator := strconv.Itoa(int(brokerID(t, b)))
	txnCLI := transactionsCLI(t, b)

	list := findRow(t, txnCLI("list"), "TransactionalId", txnID)
	checkColumns(t, "list", list, map[string]string{"Coordinator": coordinator, "TransactionState": "Ongoing"})
	pid := list["ProducerId"]

	rows := parseTxnTable(txnCLI("describe", "--transactional-id", txnID))
	if len(rows) != 1 {
		t.Fatalf("describe printed %d rows, want 1: %v", len(rows), rows)
	}
	desc := rows[0]
	checkColumns(t, "describe", desc, map[string]string{"CoordinatorId": coordinator, "TransactionalId": txnID,
		"ProducerId": pid, "TransactionState": "Ongoing", "TransactionTimeoutMs": strconv.Itoa(hangingTimeoutMs)})
	if got := splitSorted(desc["TopicPartitions"]); fmt.Sprint(got) != fmt.Sprint([]string{topic + "-0", topic + "-1"}) {
		t.Errorf("describe: TopicPartitions %v, want %s-0 and %s-1", got, topic, topic)
	}
	if st, err := strconv.ParseInt(desc["CurrentTransactionStartTimeMs"], 10, 64); err != nil || st < before-1000 || st > time.Now().UnixMilli()+1000 {
		t.Errorf("describe: CurrentTransactionStartTimeMs %q, want the time the transaction began (after %d)", desc["CurrentTransactionStartTimeMs"], before)
	}
	epoch := desc["ProducerEpoch"]

	prods := parseTxnTable(txnCLI("describe-producers", "--topic", topic, "--partition", "0"))
	if len(prods) != 2 {
		t.Errorf("describe-producers printed %d producers, want 2 (the transactional one and franz-go's): %v", len(prods), prods)
	}
	for _, r := range prods {
		want := map[string]string{"ProducerEpoch": epoch, "LastSequence": "4", "CurrentTransactionStartOffset": "0"}
		if r["ProducerId"] != pid {
			want = map[string]string{"LastSequence": "2", "CurrentTransactionStartOffset": "None"}
		}
		checkColumns(t, "describe-producers, producer "+r["ProducerId"], r, want)
	}

	if rows := parseTxnTable(txnCLI("find-hanging", "--topic", topic, "--max-transaction-timeout", "0")); len(rows) != 0 {
		t.Errorf("find-hanging listed %v; want nothing (the coordinator tracks the open transaction's partitions)", rows)
	}
	unknown := "no-such-" + txnID
	if stdout, stderr, err := harness.JavaErr(t, cliTimeout, "", nil, transactionsCommand, "--bootstrap-server", b.Bootstrap(),
		"describe", "--transactional-id", unknown); err == nil || !strings.Contains(stderr, "Failed to describe transaction state of transactional-id `"+unknown+"`") {
		t.Errorf("describe --transactional-id %s: %v, stdout %q, stderr %q; want a failure", unknown, err, stdout, clipLines(stderr, 5))
	}

	fence(t, b, txnID)
	rows = parseTxnTable(txnCLI("describe", "--transactional-id", txnID))
	if len(rows) != 1 {
		t.Fatalf("describe after the fence printed %d rows, want 1: %v", len(rows), rows)
	}
	desc = rows[0]
	if s := desc["TransactionState"]; s != "Empty" && s != "CompleteAbort" {
		t.Errorf("describe after the fence: TransactionState %q, want Empty or CompleteAbort", s)
	}
	newEpoch, _ := strconv.Atoi(desc["ProducerEpoch"])
	if oldEpoch, _ := strconv.Atoi(epoch); desc["ProducerId"] == pid && newEpoch <= oldEpoch {
		t.Errorf("describe after the fence: producer %s epoch %s, want a newer epoch than %s (or a new producer ID)", desc["ProducerId"], desc["ProducerEpoch"], epoch)
	}
	if desc["TopicPartitions"] != "" {
		t.Errorf("describe after the fence: TopicPartitions %q, want none", desc["TopicPartitions"])
	}
	waitStable(t, b, topic)
	got, _ := javaDrain(t, b, topic, 2, "read_committed")
	harness.CheckRecords(t, got, after, harness.Check{SparseOffsets: true})
}

// TestKafkaTransactionsCLIAbort: as in TestKafkaTransactionsCLI, a killed
// producer leaves a transaction open on 2 partitions (records at offsets 0-4
// of each) and franz-go writes 3 records to partition 0 after it. An operator
// finds the transaction's start offset with kafka-transactions.sh
// describe-producers and runs abort --topic --partition 0 --start-offset
// (DescribeProducers to find the producer, then WriteTxnMarkers to the
// partition's leader). Partition 0's last stable offset then reaches its high
// watermark, and read_committed sees franz-go's 3 records and none of the
// aborted ones, while partition 1 stays blocked at offset 0 (its part of the
// transaction is still open). A second abort at the same offset fails: no
// transaction starts there any more. Finally a new producer with the same
// transactional ID fences the dead one and the coordinator aborts the rest:
// both partitions become stable, and read_committed still sees only
// franz-go's records.
func TestKafkaTransactionsCLIAbort(t *testing.T) {
	b := harness.Start(t)
	topic := harness.Topic(t)
	harness.CreateTopic(t, b, topic, 2)
	txnID := "hanging-" + topic
	openTransaction(t, b, topic, txnID, 2, 5)
	after := produceAfter(t, b, topic, 3)
	txnCLI := transactionsCLI(t, b)

	start := ""
	for _, r := range parseTxnTable(txnCLI("describe-producers", "--topic", topic, "--partition", "0")) {
		if s := r["CurrentTransactionStartOffset"]; s != "None" {
			start = s
		}
	}
	if start != "0" {
		t.Fatalf("describe-producers: open transaction starting at %q, want 0", start)
	}
	txnCLI("abort", "--topic", topic, "--partition", "0", "--start-offset", start)
	hwm := endOffsets(t, b, topic)
	harness.Eventually(t, 30*time.Second, func() error {
		lso := listOffsets(t, b, topic, true)
		if lso[0] != hwm[0] || lso[1] != 0 {
			return fmt.Errorf("last stable offsets %v, want %d in partition 0 (aborted), 0 in partition 1 (still open)", lso, hwm[0])
		}
		return nil
	})
	for _, r := range parseTxnTable(txnCLI("describe-producers", "--topic", topic, "--partition", "0")) {
		checkColumns(t, "describe-producers after the abort, producer "+r["ProducerId"], r,
			map[string]string{"CurrentTransactionStartOffset": "None"})
	}
	got, _ := javaDrain(t, b, topic, 2, "read_committed")
	harness.CheckRecords(t, got, after, harness.Check{SparseOffsets: true})

	if stdout, stderr, err := harness.JavaErr(t, cliTimeout, "", nil, transactionsCommand, "--bootstrap-server", b.Bootstrap(),
		"abort", "--topic", topic, "--partition", "0", "--start-offset", start); err == nil ||
		!strings.Contains(stderr, "Could not find any open transactions starting at offset "+start) {
		t.Errorf("a second abort at offset %s: %v, stdout %q, stderr %q; want a failure", start, err, stdout, clipLines(stderr, 5))
	}

	fence(t, b, txnID)
	waitStable(t, b, topic)
	got, _ = javaDrain(t, b, topic, 2, "read_committed")
	harness.CheckRecords(t, got, after, harness.Check{SparseOffsets: true})
}

// openTransaction starts Compat.java's txn-open: a transactional producer
// (txnID, transaction.timeout.ms hangingTimeoutMs) begins a transaction,
// writes n records to each of the first partitions of topic, flushes, and
// is killed (SIGKILL) with the transaction open. It returns the offset of
// the transaction's first record in each partition.
func openTransaction(t *testing.T, b harness.Broker, topic, txnID string, partitions, n int) map[int32]int64 {
	t.Helper()
	app := harness.StartJava(t, "txn-open", "WARN", []string{javaClassDir(t)}, "Compat", "txn-open", b.Bootstrap(), topic,
		txnID, strconv.Itoa(hangingTimeoutMs), strconv.Itoa(partitions), strconv.Itoa(n))
	harness.Eventually(t, 60*time.Second, func() error {
		if len(harness.Events(app.Events(), "open")) == 1 {
			return nil
		}
		if err := app.Running(); err != nil {
			t.Fatal(err)
		}
		return fmt.Errorf("no open event yet from the transactional producer")
	})
	if err := app.Kill(); err != nil {
		t.Fatal(err)
	}
	events := app.Events()
	if f := harness.Events(events, "send_failed"); len(f) > 0 {
		t.Fatalf("sends failed in the open transaction: %v", f)
	}
	starts := map[int32]int64{}
	acks := harness.Events(events, "ack")
	for _, a := range acks {
		p, o := int32(harness.Num(a, "p")), harness.Num(a, "o")
		if s, ok := starts[p]; !ok || o < s {
			starts[p] = o
		}
	}
	if len(acks) != partitions*n || len(starts) != partitions {
		t.Fatalf("open transaction: %d acks in %d partitions, want %d in %d", len(acks), len(starts), partitions*n, partitions)
	}
	return starts
}

// produceAfter writes n records to partition 0 of topic with franz-go
// (idempotent, not transactional) and returns them with their offsets.
func produceAfter(t *testing.T, b harness.Broker, topic string, n int) []harness.Record {
	t.Helper()
	recs := harness.Records(n, 1, "after-"+topic, time.Now())
	return harness.Produce(t, b, topic, recs)
}

// fence runs Compat.java's txn-init: a new producer with txnID, whose
// initTransactions fences the earlier one and has the coordinator abort its
// open transaction.
func fence(t *testing.T, b harness.Broker, txnID string) {
	t.Helper()
	if _, events := javaCompat(t, "", "txn-init", b.Bootstrap(), txnID); len(harness.Events(events, "initialized")) != 1 {
		t.Fatalf("txn-init %s: events %v, want initialized", txnID, events)
	}
}

// waitStable polls until the last stable offsets of topic equal its high
// watermarks (no transaction open).
func waitStable(t *testing.T, b harness.Broker, topic string) {
	t.Helper()
	harness.Eventually(t, 30*time.Second, func() error {
		lso, hwm := listOffsets(t, b, topic, true), endOffsets(t, b, topic)
		if fmt.Sprint(lso) != fmt.Sprint(hwm) {
			return fmt.Errorf("last stable offsets %v, high watermarks %v", lso, hwm)
		}
		return nil
	})
}

// transactionsCLI returns a function running kafka-transactions.sh against b
// with args, failing t if it fails, and returning its stdout.
func transactionsCLI(t *testing.T, b harness.Broker) func(args ...string) string {
	return func(args ...string) string {
		t.Helper()
		out := harness.Java(t, cliTimeout, "", nil, transactionsCommand, append([]string{"--bootstrap-server", b.Bootstrap()}, args...)...)
		t.Logf("kafka-transactions.sh %s:\n%s", strings.Join(args, " "), out)
		return out
	}
}

// parseTxnTable parses kafka-transactions.sh's tables: a header line, then
// a line per row, columns padded and separated by tabs.
func parseTxnTable(out string) []map[string]string {
	var cols []string
	var rows []map[string]string
	for _, line := range strings.Split(strings.TrimRight(out, "\n"), "\n") {
		f := strings.Split(strings.TrimRight(line, "\t"), "\t")
		for i := range f {
			f[i] = strings.TrimSpace(f[i])
		}
		switch {
		case strings.TrimSpace(line) == "":
		case cols == nil:
			cols = f
		default:
			r := map[string]string{}
			for i, c := range cols {
				if i < len(f) {
					r[c] = f[i]
				}
			}
			rows = append(rows, r)
		}
	}
	return rows
}

// findRow returns the row of a kafka-transactions.sh table whose column col
// is val, failing t if there is not exactly one.
func findRow(t *testing.T, out, col, val string) map[string]string {
	t.Helper()
	var found []map[string]string
	for _, r := range parseTxnTable(out) {
		if r[col] == val {
			found = append(found, r)
		}
	}
	if len(found) != 1 {
		t.Fatalf("%d rows with %s %s, want 1:\n%s", len(found), col, val, out)
	}
	return found[0]
}

// checkColumns checks the columns of row named in want.
func checkColumns(t *testing.T, what string, row, want map[string]string) {
	t.Helper()
	for col, w := range want {
		if row[col] != w {
			t.Errorf("%s: %s %q, want %q (row %v)", what, col, row[col], w, row)
		}
	}
}

// splitSorted splits a comma-separated list and sorts it.
func splitSorted(s string) []string {
	f := strings.Split(s, ",")
	slices.Sort(f)
	return f
}

// brokerID returns the node ID of b's (only) broker.
func brokerID(t *testing.T, b harness.Broker) int32 {
	t.Helper()
	adm := kadm.NewClient(harness.Client(t, b))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	md, err := adm.BrokerMetadata(ctx)
	if err != nil || len(md.Brokers) != 1 {
		t.Fatalf("broker metadata: %v, %d brokers; want 1", err, len(md.Brokers))
	}
	return md.Brokers[0].NodeID
}

// TestConfluentTransactions: confluent-kafka 2.16.1 (librdkafka) runs a
// consume-transform-produce loop exactly once (python/confluent_compat.py
// txn-etl): a read_committed consumer in a group reads 60 records of 3
// partitions in batches; each batch is copied to an output topic (same
// partition, key, headers, timestamp; value prefixed "etl:") in a transaction
// that also commits the batch's input offsets (init_transactions,
// begin_transaction, produce, send_offsets_to_transaction, commit_transaction).
// Every third transaction is aborted after its records were delivered, and
// the loop rewinds and redoes the batch. A read_committed confluent consumer
// must then read exactly one copy of every input record, in input order per
// partition; a read_uncommitted one every delivered record (the aborted
// copies too); and the group's committed offsets are the input's end offsets.
func TestConfluentTransactions(t *testing.T) {
	b := harness.Start(t)
	base := harness.Topic(t)
	in, out, group := base+"-in", base+"-out", "g-"+base
	harness.CreateTopic(t, b, in, 3)
	harness.CreateTopic(t, b, out, 3)
	const n = 60
	input := harness.Produce(t, b, in, harness.Records(n, 3, "etl", time.Now()))

	_, events := confluent.run(t, "", "txn-etl", b.Bootstrap(), in, out, group, "etl-"+base, strconv.Itoa(n))
	var commits, aborts, abortedRecords int64
	for _, ev := range harness.Events(events, "txn") {
		if harness.Num(ev, "delivered") != harness.Num(ev, "records") {
			t.Errorf("transaction %v: not every record delivered before it ended", ev)
		}
		if ev["result"] == "abort" {
			aborts++
			abortedRecords += harness.Num(ev, "records")
		} else {
			commits++
		}
	}
	if d := harness.Events(events, "etl_done"); len(d) != 1 || harness.Num(d[0], "committed") != n {
		t.Fatalf("txn-etl ended with %v, want %d input records committed", d, n)
	}
	if aborts == 0 || commits == 0 {
		t.Fatalf("%d commits and %d aborts, want both", commits, aborts)
	}
	t.Logf("%d transactions committed, %d aborted (%d records aborted after delivery)", commits, aborts, abortedRecords)

	want := make([]harness.Record, len(input))
	for i, r := range input {
		r.Value, r.Offset = "etl:"+r.Value, -1
		want[i] = r
	}
	hwm := endOffsets(t, b, out)
	got, ends := confluentDrain(t, b, out, 3, "read_committed")
	harness.CheckRecords(t, got, want, harness.Check{SparseOffsets: true})
	checkLSO(t, ends, hwm, "read_committed")
	got, _ = confluentDrain(t, b, out, 3, "read_uncommitted")
	if len(got) != n+int(abortedRecords) {
		t.Errorf("read_uncommitted read %d records, want %d (%d committed, %d aborted)", len(got), n+int(abortedRecords), n, abortedRecords)
	}

	adm := kadm.NewClient(harness.Client(t, b))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	offs, err := adm.FetchOffsets(ctx, group)
	if err == nil {
		err = offs.Error()
	}
	if err != nil {
		t.Fatalf("fetch offsets of %s: %v", group, err)
	}
	inEnd := endOffsets(t, b, in)
	for p, end := range inEnd {
		if o, ok := offs.Lookup(in, p); !ok || o.At != end {
			t.Errorf("group %s: committed offset of %s[%d] %v (found %v), want %d", group, in, p, o.At, ok, end)
		}
	}
}

// confluentDrain reads every partition of topic to its end with a
// confluent-kafka consumer at isolation and returns the records and the
// high watermarks it reported (the last stable offsets under read_committed).
func confluentDrain(t *testing.T, b harness.Broker, topic string, partitions int, isolation string) ([]harness.Record, map[int32]int64) {
	t.Helper()
	got, events := confluent.run(t, "", "drain", b.Bootstrap(), topic, strconv.Itoa(partitions), isolation)
	return got, drained(t, events, isolation)
}
