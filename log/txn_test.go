package log

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// txnBatch is idemBatch with the transactional bit set.
func txnBatch(t testing.TB, pid int64, epoch int16, seq int32, n int) []byte {
	t.Helper()
	b := idemBatch(t, pid, epoch, seq, n)
	binary.BigEndian.PutUint16(b[offAttributes:], binary.BigEndian.Uint16(b[offAttributes:])|attrTransactional)
	binary.BigEndian.PutUint32(b[offCRC:], crc32.Checksum(b[offAttributes:], castagnoli))
	return b
}

func appendTxn(t *testing.T, p *Partition, pid int64, epoch int16, seq int32, n int) int64 {
	t.Helper()
	res, err := p.Append(context.Background(), txnBatch(t, pid, epoch, seq, n), AppendOptions{Sync: true})
	if err != nil {
		t.Fatalf("append producer %d seq %d: %v", pid, seq, err)
	}
	return res.BaseOffset
}

func mark(t *testing.T, m *Manager, p *Partition, pid int64, epoch int16, commit bool) {
	t.Helper()
	err := m.WriteTxnMarkers(context.Background(), []TxnMarker{{Topic: p.Topic(), Partition: p.Index(),
		ProducerID: pid, ProducerEpoch: epoch, Commit: commit}})
	if err != nil {
		t.Fatalf("marker of producer %d: %v", pid, err)
	}
}

func wantLSO(t *testing.T, p *Partition, want int64) {
	t.Helper()
	got, err := p.LastStableOffset(context.Background())
	if err != nil || got != want {
		t.Fatalf("last stable offset %d (%v), want %d", got, err, want)
	}
}

func wantAborted(t *testing.T, p *Partition, from, to int64, want ...AbortedTxn) {
	t.Helper()
	got, err := p.AbortedTxns(context.Background(), from, to)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) == 0 && len(want) == 0 {
		return
	}
	if !slices.Equal(got, want) {
		t.Fatalf("aborted transactions in [%d, %d): %+v, want %+v", from, to, got, want)
	}
}

// TestTxnMarkersMoveLastStableOffset walks two interleaved transactions and
// a plain batch through their markers.
func TestTxnMarkersMoveLastStableOffset(t *testing.T) {
	e := newTestEnv(t)
	m := e.open()
	mustCreate(t, m, "t", 1, nil)
	p := mustPartition(t, m, "t", 0)
	wantLSO(t, p, 0)
	if off := appendTxn(t, p, 1, 0, 0, 2); off != 0 {
		t.Fatalf("first batch at %d", off)
	}
	wantLSO(t, p, 0)
	if _, err := p.Append(context.Background(), testBatch(t, 0, 1, CodecNone), AppendOptions{}); err != nil {
		t.Fatal(err)
	}
	appendTxn(t, p, 2, 0, 0, 2) // 3-4
	appendTxn(t, p, 1, 0, 2, 1) // 5: same transaction, first offset stays 0
	wantLSO(t, p, 0)
	mark(t, m, p, 1, 0, true) // 6
	wantLSO(t, p, 3)
	if s := p.sample(); s.lsoLag != 4 || s.openTxns != 1 {
		t.Fatalf("metrics sample: LSO lag %d, open transactions %d; want 4 and 1", s.lsoLag, s.openTxns)
	}
	mark(t, m, p, 2, 0, false) // 7
	wantLSO(t, p, 8)
	abortedTwo := AbortedTxn{ProducerID: 2, FirstOffset: 3, LastOffset: 7, LastStable: 8}
	wantAborted(t, p, 0, 8, abortedTwo)
	wantAborted(t, p, 0, 3) // before its first batch
	wantAborted(t, p, 8, 8) // after its marker
	wantAborted(t, p, 4, 5, abortedTwo)

	infos, err := p.Producers(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	want := []ProducerInfo{
		{ProducerID: 1, Epoch: 0, LastSequence: 2, CoordinatorEpoch: -1, TxnStartOffset: -1},
		{ProducerID: 2, Epoch: 0, LastSequence: 1, CoordinatorEpoch: -1, TxnStartOffset: -1},
	}
	for i := range infos {
		infos[i].LastTimestamp = 0
	}
	if !slices.Equal(infos, want) {
		t.Fatalf("producers %+v, want %+v", infos, want)
	}

	// Markers are control batches: in the log, never records.
	res, err := p.Read(context.Background(), 6, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	h, _ := ParseBatchHeader(res.Batches)
	if !h.IsControl() || !h.IsTransactional() || h.ProducerID != 1 || h.BaseOffset != 6 {
		t.Fatalf("marker batch header %+v", h)
	}
	if commit, err := controlIsCommit(res.Batches[:h.Size()]); err != nil || !commit {
		t.Fatalf("marker type: commit %v, %v", commit, err)
	}
	if recs, err := DecodeBatches(res.Batches, 6); err != nil || len(recs) != 0 {
		t.Fatalf("markers decoded as %d records (%v)", len(recs), err)
	}
}

// TestTxnMarkerFencing: a marker moves its producer to its epoch, an older
// marker is refused, and the producer's older epoch is fenced.
func TestTxnMarkerFencing(t *testing.T) {
	e := newTestEnv(t)
	m := e.open()
	mustCreate(t, m, "t", 1, nil)
	p := mustPartition(t, m, "t", 0)
	appendTxn(t, p, 7, 5, 0, 1)
	err := m.WriteTxnMarkers(context.Background(), []TxnMarker{{Topic: "t", ProducerID: 7, ProducerEpoch: 4}})
	if !errors.Is(err, ErrInvalidProducerEpoch) {
		t.Fatalf("marker of an older epoch: %v", err)
	}
	mark(t, m, p, 7, 6, false) // a timed-out transaction: aborted with a bumped epoch
	wantLSO(t, p, 2)
	if _, err := p.Append(context.Background(), txnBatch(t, 7, 5, 1, 1), AppendOptions{}); !errors.Is(err, ErrInvalidProducerEpoch) {
		t.Fatalf("zombie append: %v", err)
	}
	if _, err := p.Append(context.Background(), txnBatch(t, 7, 6, 3, 1), AppendOptions{}); !errors.Is(err, ErrOutOfOrderSequence) {
		t.Fatalf("new epoch not at sequence 0: %v", err)
	}
	appendTxn(t, p, 7, 6, 0, 1)
	wantLSO(t, p, 2)
	// Unknown topics and partitions are skipped, not errors.
	if err := m.WriteTxnMarkers(context.Background(), []TxnMarker{{Topic: "gone", ProducerID: 7}, {Topic: "t", Partition: 9, ProducerID: 7}}); err != nil {
		t.Fatalf("markers for missing partitions: %v", err)
	}
	// A client may not write control batches.
	ctl := encodeControlBatch(TxnMarker{ProducerID: 7, ProducerEpoch: 6, Commit: true}, 1)
	if _, err := p.Append(context.Background(), ctl, AppendOptions{}); !errors.Is(err, ErrInvalidBatch) {
		t.Fatalf("client control batch: %v", err)
	}
	wantLSO(t, p, 2)
}

// TestTxnStateSurvivesRestart: open transactions and aborted lists come
// back after a reopen, from the active segment, a sealed local segment's
// section, or an uploaded segment's tail.
func TestTxnStateSurvivesRestart(t *testing.T) {
	for _, tc := range []struct {
		name string
		roll bool
		wait bool
	}{{"active segment", false, false}, {"sealed local segment", true, false}, {"uploaded segment", true, true}} {
		t.Run(tc.name, func(t *testing.T) {
			e := newTestEnv(t)
			fs := &faultStore{Store: e.objects}
			if !tc.wait {
				fs.failNextPuts(1 << 30) // the sealed segment stays local
			}
			e.objects = fs
			m := e.open()
			mustCreate(t, m, "t", 1, nil)
			p := mustPartition(t, m, "t", 0)
			appendTxn(t, p, 1, 0, 0, 2) // 0-1, stays open across the restart
			appendTxn(t, p, 2, 0, 0, 2) // 2-3
			mark(t, m, p, 2, 0, false)  // 4
			appendTxn(t, p, 1, 0, 2, 1) // 5
			abortedTwo := AbortedTxn{ProducerID: 2, FirstOffset: 2, LastOffset: 4, LastStable: 0}
			wantAborted(t, p, 0, 6, abortedTwo)
			if tc.roll {
				if err := p.Roll(); err != nil {
					t.Fatal(err)
				}
			}
			if tc.wait {
				waitUploaded(t, m, p)
			}
			m = e.reopen()
			p = mustPartition(t, m, "t", 0)
			wantLSO(t, p, 0)
			wantAborted(t, p, 0, 6, abortedTwo)
			appendTxn(t, p, 1, 0, 3, 1) // 6: the open transaction goes on
			mark(t, m, p, 1, 0, false)  // 7
			wantLSO(t, p, 8)
			wantAborted(t, p, 0, 8, abortedTwo, AbortedTxn{ProducerID: 1, FirstOffset: 0, LastOffset: 7, LastStable: 8})
			wantAborted(t, p, 5, 6, AbortedTxn{ProducerID: 1, FirstOffset: 0, LastOffset: 7, LastStable: 8})
		})
	}
}

// TestTxnSectionRoundTrip encodes and decodes sections and refuses damage.
func TestTxnSectionRoundTrip(t *testing.T) {
	txn := &segTxn{
		aborted: []AbortedTxn{{ProducerID: 1, FirstOffset: 3, LastOffset: 10, LastStable: 11}, {ProducerID: 2, FirstOffset: 0, LastOffset: 12, LastStable: 5}},
		open:    []openTxn{{producerID: 4, firstOffset: 5}},
	}
	b := txn.encode()
	if int64(len(b)) != txn.sectionLen() {
		t.Fatalf("encoded %d bytes, sectionLen %d", len(b), txn.sectionLen())
	}
	got, err := decodeTxnSection(b, 0, 12)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got.aborted, txn.aborted) || !slices.Equal(got.open, txn.open) {
		t.Fatalf("decoded %+v, want %+v", got, *txn)
	}
	if (&segTxn{}).encode() != nil || (*segTxn)(nil).sectionLen() != 0 {
		t.Fatal("an empty section must encode to nothing")
	}
	for name, bad := range map[string][]byte{
		"empty":           nil,
		"truncated":       b[1:],
		"bit flip":        func() []byte { c := bytes.Clone(b); c[3] ^= 1; return c }(),
		"marker past end": b, // decoded below against a shorter segment
	} {
		t.Run(name, func(t *testing.T) {
			last := int64(12)
			if name == "marker past end" {
				last = 11
			}
			if _, err := decodeTxnSection(bad, 0, last); !errors.Is(err, errBadTxnSection) {
				t.Fatalf("err %v", err)
			}
		})
	}
}

func FuzzDecodeTxnSection(f *testing.F) {
	good := (&segTxn{aborted: []AbortedTxn{{ProducerID: 1, FirstOffset: 3, LastOffset: 10, LastStable: 11}},
		open: []openTxn{{producerID: 4, firstOffset: 5}}}).encode()
	f.Add([]byte{})
	f.Add(good[:len(good)-1])
	f.Add(good)
	f.Add(append(bytes.Clone(good), 0, 1, 2))
	f.Fuzz(func(t *testing.T, b []byte) {
		txn, err := decodeTxnSection(b, 0, 100)
		if err != nil {
			return
		}
		if again := txn.encode(); !bytes.Equal(again, b) {
			t.Fatalf("decoded section re-encodes differently")
		}
	})
}

// formatTxnSegment is the segment behind testdata/golden/sealed_v3_txn.seg:
// the golden version 1 segment with a transaction section (one aborted
// transaction, one open at its end).
func formatTxnSegment(tb testing.TB) []byte {
	s := formatGoldenSegment(tb)
	txn := &segTxn{
		aborted: []AbortedTxn{{ProducerID: 42, FirstOffset: 4090, LastOffset: 4100, LastStable: 4101}},
		open:    []openTxn{{producerID: 43, firstOffset: 4105}},
	}
	return append(bytes.Clone(s.batches), encodeSealTail(s.idx.entries(), txn, s.ft)...)
}

// TestGoldenTxnSegment pins the bytes of a segment with a transaction
// section (footer version 3) and checks it reads back.
func TestGoldenTxnSegment(t *testing.T) {
	obj := formatTxnSegment(t)
	seg, err := openSealed("txn", obj)
	if err != nil {
		t.Fatal(err)
	}
	if !seg.ft.Txn || seg.txn.aborted[0].ProducerID != 42 || seg.txn.open[0].producerID != 43 {
		t.Fatalf("footer %+v, section %+v", seg.ft, seg.txn)
	}
	describe := func(b []byte) string {
		ft := seg.ft
		sec := b[min(int64(len(b)), ft.BatchesLen+int64(ft.IndexCount)*indexEntryLen):max(0, len(b)-footerLen)]
		var sb strings.Builder
		fmt.Fprintf(&sb, "footer version %s\n", hex.EncodeToString(b[len(b)-footerLen+4:len(b)-footerLen+6]))
		for i := 0; i < len(sec); i += 16 {
			fmt.Fprintf(&sb, "section %3d: %s\n", i, hex.EncodeToString(sec[i:min(i+16, len(sec))]))
		}
		return sb.String()
	}
	checkGolden(t, "sealed_v3_txn", obj, describe)
	// The old golden segment still reads, without a section.
	old, err := os.ReadFile(filepath.Join("testdata", "golden", "sealed_v1.seg"))
	if err != nil {
		t.Fatal(err)
	}
	if s, err := openSealed("v1", old); err != nil || s.ft.Txn || !s.txn.empty() {
		t.Fatalf("version 1 segment: %v, footer %+v", err, s.ft)
	}
}

// TestCompactionDropsAbortedRecords: an aborted transaction's value never
// replaces a committed one, markers and sections survive the rewrite, and
// compaction stops at the last stable offset.
func TestCompactionDropsAbortedRecords(t *testing.T) {
	e := newCompactEnv(t, -1)
	e.open()
	p := e.compactTopic("c", nil)
	ts := e.clock.UnixMilli()
	appendKV(t, p, CodecNone, ts, kv{key: "a", value: "good"})
	b := txnKV(t, 5, 0, ts, kv{key: "a", value: "aborted"})
	if _, err := p.Append(context.Background(), b, AppendOptions{Sync: true}); err != nil {
		t.Fatal(err)
	}
	mark(t, e.m, p, 5, 0, false)
	appendKV(t, p, CodecNone, ts, kv{key: "b", value: "1"})
	e.rollAndUpload(p)
	// An open transaction in the next segment holds compaction back there.
	b = txnKV(t, 6, 0, ts, kv{key: "b", value: "open"})
	if _, err := p.Append(context.Background(), b, AppendOptions{Sync: true}); err != nil {
		t.Fatal(err)
	}
	appendKV(t, p, CodecNone, ts, kv{key: "b", value: "2"})
	e.rollAndUpload(p)
	res := mustCompact(t, p)
	if !res.Ran || res.SegmentsIn != 1 {
		t.Fatalf("compaction %+v: want one segment (the second is above the last stable offset)", res)
	}
	wantAborted(t, p, 0, 3, AbortedTxn{ProducerID: 5, FirstOffset: 1, LastOffset: 2, LastStable: 3})
	var vals []string
	for _, r := range readAll(t, p, 0) {
		if r.Offset < 4 {
			vals = append(vals, string(r.Key)+"="+string(r.Value))
		}
	}
	if want := []string{"a=good", "b=1"}; !slices.Equal(vals, want) {
		t.Fatalf("records after compaction %v, want %v", vals, want)
	}
}

// txnKV is appendKV's batch from a transactional producer.
func txnKV(t *testing.T, pid int64, seq int32, ts int64, recs ...kv) []byte {
	t.Helper()
	rs := make([]Record, len(recs))
	for i, r := range recs {
		rs[i] = r.record(ts)
	}
	b, err := EncodeBatch(rs, CodecNone, ts)
	if err != nil {
		t.Fatal(err)
	}
	be := binary.BigEndian
	be.PutUint64(b[offProducerID:], uint64(pid))
	be.PutUint16(b[offProducerEpoch:], 0)
	be.PutUint32(b[offBaseSequence:], uint32(seq))
	be.PutUint16(b[offAttributes:], be.Uint16(b[offAttributes:])|attrTransactional)
	be.PutUint32(b[offCRC:], crc32.Checksum(b[offAttributes:], castagnoli))
	return b
}

// TestTxnSectionOfSegmentSealedAtRecovery: a sealed segment whose tail was
// lost (a torn seal) is sealed again at open; its transaction section is
// rebuilt from the previous segment's open list and its own batches.
func TestTxnSectionOfSegmentSealedAtRecovery(t *testing.T) {
	e := newTestEnv(t)
	fs := &faultStore{Store: e.objects}
	fs.failNextPuts(1 << 30) // every segment stays local
	e.objects = fs
	m := e.open()
	mustCreate(t, m, "t", 1, nil)
	p := mustPartition(t, m, "t", 0)
	appendTxn(t, p, 1, 0, 0, 1) // 0: open across both rolls
	if err := p.Roll(); err != nil {
		t.Fatal(err)
	}
	appendTxn(t, p, 2, 0, 0, 2) // 1-2
	mark(t, m, p, 2, 0, false)  // 3
	appendTxn(t, p, 3, 0, 0, 1) // 4: open at the second segment's end
	if err := p.Roll(); err != nil {
		t.Fatal(err)
	}
	p.mu.Lock()
	torn := p.segs[1]
	path, batches := torn.path, torn.size
	p.mu.Unlock()
	appendTxn(t, p, 1, 0, 1, 1) // 5
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	e.m = nil
	if err := os.Truncate(path, batches); err != nil { // the seal's tail is gone
		t.Fatal(err)
	}
	m = e.open()
	p = mustPartition(t, m, "t", 0)
	p.mu.Lock()
	got := p.segs[1].txn
	p.mu.Unlock()
	want := segTxn{aborted: []AbortedTxn{{ProducerID: 2, FirstOffset: 1, LastOffset: 3, LastStable: 0}},
		open: []openTxn{{producerID: 1, firstOffset: 0}, {producerID: 3, firstOffset: 4}}}
	if got == nil || !slices.Equal(got.aborted, want.aborted) || !slices.Equal(got.open, want.open) {
		t.Fatalf("section of the resealed segment %+v, want %+v", got, want)
	}
	wantLSO(t, p, 0)
	mark(t, m, p, 1, 0, true)
	wantLSO(t, p, 4)
	mark(t, m, p, 3, 0, true)
	wantLSO(t, p, 8)
}

// TestTxnLastStableOffsetNotBelowLogStart: DeleteRecords into an open
// transaction moves the last stable offset with the log start, as Kafka's.
func TestTxnLastStableOffsetNotBelowLogStart(t *testing.T) {
	e := newTestEnv(t)
	m := e.open()
	mustCreate(t, m, "t", 1, nil)
	p := mustPartition(t, m, "t", 0)
	appendTxn(t, p, 1, 0, 0, 3) // 0-2
	if _, err := p.Append(context.Background(), testBatch(t, 0, 2, CodecNone), AppendOptions{}); err != nil {
		t.Fatal(err)
	}
	wantLSO(t, p, 0)
	if _, err := p.DeleteRecordsBefore(context.Background(), 2); err != nil {
		t.Fatal(err)
	}
	wantLSO(t, p, 2)
	mark(t, m, p, 1, 0, false) // 5
	wantLSO(t, p, 6)
	wantAborted(t, p, 2, 6, AbortedTxn{ProducerID: 1, FirstOffset: 0, LastOffset: 5, LastStable: 6})
}

// TestReadBelowAndWaitStable: a read_committed read ends at the last
// stable offset, as a file region or copied, and its waiter wakes at the
// marker, not at appends of the open transaction.
func TestReadBelowAndWaitStable(t *testing.T) {
	e := newTestEnv(t)
	m := e.open()
	mustCreate(t, m, "t", 1, nil)
	p := mustPartition(t, m, "t", 0)
	ctx := context.Background()
	if _, err := p.Append(ctx, testBatch(t, 0, 3, CodecNone), AppendOptions{}); err != nil { // 0-2
		t.Fatal(err)
	}
	appendTxn(t, p, 1, 0, 0, 2)                                                              // 3-4
	if _, err := p.Append(ctx, testBatch(t, 5, 1, CodecNone), AppendOptions{}); err != nil { // 5
		t.Fatal(err)
	}
	wantLSO(t, p, 3)
	for _, minLen := range []int{0, 1 << 30} { // a region, then a copy
		res, err := p.ReadRegionBelow(ctx, 1, 1<<20, minLen, 3)
		if err != nil {
			t.Fatal(err)
		}
		next := int64(-1)
		switch {
		case res.Region != nil:
			next = res.Region.NextOffset
		case len(res.Batches) > 0:
			h, _ := ParseBatchHeader(res.Batches)
			if len(res.Batches) != h.Size() {
				t.Fatalf("minLen %d: %d bytes, want the first batch only (%d)", minLen, len(res.Batches), h.Size())
			}
			next = h.NextOffset()
		}
		res.Release()
		if next != 3 {
			t.Fatalf("minLen %d: read below the LSO ends at %d, want 3", minLen, next)
		}
		res, err = p.ReadRegionBelow(ctx, 3, 1<<20, minLen, 3)
		if err != nil || res.Region != nil || len(res.Batches) != 0 {
			t.Fatalf("minLen %d: read at the LSO returned data (%v)", minLen, err)
		}
	}
	w := p.WaitStable(3)
	appendTxn(t, p, 1, 0, 2, 1)
	select {
	case <-w:
		t.Fatal("an append of the open transaction woke a read_committed waiter")
	default:
	}
	mark(t, m, p, 1, 0, true)
	select {
	case <-w:
	default:
		t.Fatal("the marker did not wake the read_committed waiter")
	}
	select {
	case <-p.WaitStable(3):
	default:
		t.Fatal("WaitStable below the last stable offset must not block")
	}
}
