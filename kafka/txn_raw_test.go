package kafka

import (
	"fmt"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Hand-built transaction requests: the error codes of misuse, per
// version, and that a refused request changes nothing.

// txnConn is a raw connection with a running correlation ID.
type txnConn struct {
	t    *testing.T
	c    *rawConn
	corr int32
}

func (c *txnConn) do(req kmsg.Request) kmsg.Response {
	c.t.Helper()
	c.corr++
	return c.c.roundTrip(c.corr, req)
}

func wantCode(t *testing.T, what string, got, want int16) {
	t.Helper()
	if got != want {
		t.Fatalf("%s: %v, want %v", what, kerr.ErrorForCode(got), kerr.ErrorForCode(want))
	}
}

func (c *txnConn) initPID(version int16, id *string, timeoutMs int32, pid int64, epoch int16) *kmsg.InitProducerIDResponse {
	req := kmsg.NewPtrInitProducerIDRequest()
	req.Version, req.TransactionalID, req.TransactionTimeoutMillis = version, id, timeoutMs
	req.ProducerID, req.ProducerEpoch = pid, epoch
	return c.do(req).(*kmsg.InitProducerIDResponse)
}

// addParts adds partitions (v0-v3 form) and returns the codes by
// "topic/partition".
func (c *txnConn) addParts(version int16, id string, pid int64, epoch int16, parts map[string][]int32) map[string]int16 {
	req := kmsg.NewPtrAddPartitionsToTxnRequest()
	req.Version, req.TransactionalID, req.ProducerID, req.ProducerEpoch = version, id, pid, epoch
	for topic, ps := range parts {
		req.Topics = append(req.Topics, kmsg.AddPartitionsToTxnRequestTopic{Topic: topic, Partitions: ps})
	}
	out := map[string]int16{}
	for _, t := range c.do(req).(*kmsg.AddPartitionsToTxnResponse).Topics {
		for _, p := range t.Partitions {
			out[partKey(t.Topic, p.Partition)] = p.ErrorCode
		}
	}
	return out
}

func partKey(topic string, p int32) string { return fmt.Sprintf("%s/%d", topic, p) }

func (c *txnConn) endTxn(version int16, id string, pid int64, epoch int16, commit bool) *kmsg.EndTxnResponse {
	req := kmsg.NewPtrEndTxnRequest()
	req.Version, req.TransactionalID, req.ProducerID, req.ProducerEpoch, req.Commit = version, id, pid, epoch, commit
	return c.do(req).(*kmsg.EndTxnResponse)
}

func (c *txnConn) txnCommit(version int16, id, group string, pid int64, epoch int16, topic string, p int32, offset int64) int16 {
	req := kmsg.NewPtrTxnOffsetCommitRequest()
	req.Version, req.TransactionalID, req.Group, req.ProducerID, req.ProducerEpoch = version, id, group, pid, epoch
	rp := kmsg.NewTxnOffsetCommitRequestTopicPartition()
	rp.Partition, rp.Offset = p, offset
	req.Topics = []kmsg.TxnOffsetCommitRequestTopic{{Topic: topic, Partitions: []kmsg.TxnOffsetCommitRequestTopicPartition{rp}}}
	resp := c.do(req).(*kmsg.TxnOffsetCommitResponse)
	return resp.Topics[0].Partitions[0].ErrorCode
}

// txnBatch is idemBatch with the transactional attribute.
func txnBatch(t *testing.T, pid int64, epoch int16, seq int32) []byte {
	b := idemBatch(t, pid, epoch, seq, 1)
	b[22] |= 0x10 // attributes (int16 at 21): transactional
	fixCRC(b)
	return b
}

func (c *txnConn) produceTxn(id string, topic string, p int32, batch []byte) int16 {
	req := produceOne(topic, p, batch)
	req.TransactionID = &id
	return produceCodes(c.do(req))[partKey(topic, p)]
}

func (c *txnConn) offsetFetch(group, topic string, p int32, requireStable bool) kmsg.OffsetFetchResponseTopicPartition {
	req := kmsg.NewPtrOffsetFetchRequest()
	req.Version, req.Group, req.RequireStable = 7, group, requireStable
	req.Topics = []kmsg.OffsetFetchRequestTopic{{Topic: topic, Partitions: []int32{p}}}
	return c.do(req).(*kmsg.OffsetFetchResponse).Topics[0].Partitions[0]
}

func TestTxnRawErrorCodes(t *testing.T) {
	b := txnBroker(t, nil)
	b.createTopic("raw", 2, nil)
	c := &txnConn{t: t, c: b.raw()}
	id, empty := "raw-txn", ""

	// InitProducerId.
	wantCode(t, "empty transactional ID", c.initPID(4, &empty, 60_000, -1, -1).ErrorCode, kerr.InvalidRequest.Code)
	wantCode(t, "zero timeout", c.initPID(4, &id, 0, -1, -1).ErrorCode, kerr.InvalidTransactionTimeout.Code)
	wantCode(t, "timeout over max", c.initPID(4, &id, 15*60_000+1, -1, -1).ErrorCode, kerr.InvalidTransactionTimeout.Code)
	wantCode(t, "half a KIP-360 identity", c.initPID(4, &id, 60_000, 5, -1).ErrorCode, kerr.InvalidRequest.Code)
	init := c.initPID(4, &id, 60_000, -1, -1)
	wantCode(t, "init", init.ErrorCode, 0)
	pid, epoch := init.ProducerID, init.ProducerEpoch
	if pid < 0 || epoch != 0 {
		t.Fatalf("init answered %d/%d", pid, epoch)
	}
	wantCode(t, "KIP-360 stale epoch v3", c.initPID(3, &id, 60_000, pid, epoch+5).ErrorCode, kerr.InvalidProducerEpoch.Code)
	wantCode(t, "KIP-360 stale epoch v4", c.initPID(4, &id, 60_000, pid, epoch+5).ErrorCode, kerr.ProducerFenced.Code)

	// AddPartitionsToTxn.
	raw0 := map[string][]int32{"raw": {0}}
	for k, code := range c.addParts(3, "nope", pid, epoch, raw0) {
		wantCode(t, "unknown transactional ID "+k, code, kerr.InvalidProducerIDMapping.Code)
	}
	wantCode(t, "wrong epoch v1", c.addParts(1, id, pid, epoch+1, raw0)["raw/0"], kerr.InvalidProducerEpoch.Code)
	wantCode(t, "wrong epoch v3", c.addParts(3, id, pid, epoch+1, raw0)["raw/0"], kerr.ProducerFenced.Code)
	wantCode(t, "other producer ID", c.addParts(3, id, pid+1, epoch, raw0)["raw/0"], kerr.InvalidProducerIDMapping.Code)
	codes := c.addParts(3, id, pid, epoch, map[string][]int32{"raw": {0, 5}, "missing": {0}})
	wantCode(t, "existing partition beside unknown ones", codes["raw/0"], kerr.OperationNotAttempted.Code)
	wantCode(t, "partition out of range", codes["raw/5"], kerr.UnknownTopicOrPartition.Code)
	wantCode(t, "unknown topic", codes["missing/0"], kerr.UnknownTopicOrPartition.Code)

	// Nothing was added: the transaction is Empty.
	wantCode(t, "EndTxn of an empty transaction", c.endTxn(3, id, pid, epoch, true).ErrorCode, kerr.InvalidTxnState.Code)
	wantCode(t, "TxnOffsetCommit outside a transaction v3", c.txnCommit(3, id, "g", pid, epoch, "raw", 0, 5), kerr.InvalidTxnState.Code)
	wantCode(t, "transactional produce outside a transaction", c.produceTxn(id, "raw", 0, txnBatch(t, pid, epoch, 0)), kerr.InvalidTxnState.Code)

	wantCode(t, "add raw/0", c.addParts(3, id, pid, epoch, raw0)["raw/0"], 0)
	wantCode(t, "produce to raw/1, not added", c.produceTxn(id, "raw", 1, txnBatch(t, pid, epoch, 0)), kerr.InvalidTxnState.Code)
	wantCode(t, "produce to raw/0", c.produceTxn(id, "raw", 0, txnBatch(t, pid, epoch, 0)), 0)
	wantCode(t, "TxnOffsetCommit without AddOffsetsToTxn v4", c.txnCommit(4, id, "g", pid, epoch, "raw", 0, 5), kerr.TransactionAbortable.Code)

	// AddPartitionsToTxn v4+ VerifyOnly.
	for _, v := range []int16{4, 5} {
		req := kmsg.NewPtrAddPartitionsToTxnRequest()
		req.Version = v
		req.Transactions = []kmsg.AddPartitionsToTxnRequestTransaction{{TransactionalID: id, ProducerID: pid, ProducerEpoch: epoch,
			VerifyOnly: true, Topics: []kmsg.AddPartitionsToTxnRequestTransactionTopic{{Topic: "raw", Partitions: []int32{0, 1}}}}}
		resp := c.do(req).(*kmsg.AddPartitionsToTxnResponse)
		ps := resp.Transactions[0].Topics[0].Partitions
		wantCode(t, "verify raw/0", ps[0].ErrorCode, 0)
		notIn := kerr.InvalidTxnState.Code
		if v >= 5 {
			notIn = kerr.TransactionAbortable.Code
		}
		wantCode(t, "verify raw/1", ps[1].ErrorCode, notIn)
	}

	// Offsets in the transaction: pending until it commits.
	aoreq := kmsg.NewPtrAddOffsetsToTxnRequest()
	aoreq.Version, aoreq.TransactionalID, aoreq.ProducerID, aoreq.ProducerEpoch, aoreq.Group = 3, id, pid, epoch, ""
	wantCode(t, "AddOffsetsToTxn empty group", c.do(aoreq).(*kmsg.AddOffsetsToTxnResponse).ErrorCode, kerr.InvalidGroupID.Code)
	aoreq.Group, aoreq.ProducerEpoch = "g", epoch+1
	wantCode(t, "AddOffsetsToTxn wrong epoch", c.do(aoreq).(*kmsg.AddOffsetsToTxnResponse).ErrorCode, kerr.ProducerFenced.Code)
	aoreq.ProducerEpoch = epoch
	wantCode(t, "AddOffsetsToTxn", c.do(aoreq).(*kmsg.AddOffsetsToTxnResponse).ErrorCode, 0)
	wantCode(t, "TxnOffsetCommit wrong epoch", c.txnCommit(3, id, "g", pid, epoch+1, "raw", 0, 5), kerr.InvalidProducerEpoch.Code)
	wantCode(t, "TxnOffsetCommit unknown topic", c.txnCommit(3, id, "g", pid, epoch, "missing", 0, 5), kerr.UnknownTopicOrPartition.Code)
	wantCode(t, "TxnOffsetCommit", c.txnCommit(3, id, "g", pid, epoch, "raw", 0, 5), 0)
	stable := c.offsetFetch("g", "raw", 0, true)
	wantCode(t, "OffsetFetch RequireStable", stable.ErrorCode, kerr.UnstableOffsetCommit.Code)
	if plain := c.offsetFetch("g", "raw", 0, false); plain.ErrorCode != 0 || plain.Offset != -1 {
		t.Fatalf("OffsetFetch without RequireStable: %+v", plain)
	}

	// EndTxn.
	wantCode(t, "EndTxn unknown ID", c.endTxn(3, "nope", pid, epoch, true).ErrorCode, kerr.InvalidProducerIDMapping.Code)
	wantCode(t, "EndTxn wrong epoch v1", c.endTxn(1, id, pid, epoch+1, true).ErrorCode, kerr.InvalidProducerEpoch.Code)
	wantCode(t, "EndTxn wrong epoch v3", c.endTxn(3, id, pid, epoch+1, true).ErrorCode, kerr.ProducerFenced.Code)
	wantCode(t, "EndTxn commit", c.endTxn(3, id, pid, epoch, true).ErrorCode, 0)
	wantCode(t, "EndTxn commit retried", c.endTxn(3, id, pid, epoch, true).ErrorCode, 0)
	wantCode(t, "EndTxn abort after commit", c.endTxn(3, id, pid, epoch, false).ErrorCode, kerr.InvalidTxnState.Code)
	if got := c.offsetFetch("g", "raw", 0, true); got.ErrorCode != 0 || got.Offset != 5 {
		t.Fatalf("offset after commit: %+v", got)
	}
	wantCode(t, "produce after the commit", c.produceTxn(id, "raw", 0, txnBatch(t, pid, epoch, 1)), kerr.InvalidTxnState.Code)

	// The admin views.
	dreq := kmsg.NewPtrDescribeTransactionsRequest()
	dreq.TransactionalIDs = []string{id, "nope", ""}
	states := c.do(dreq).(*kmsg.DescribeTransactionsResponse).TransactionStates
	wantCode(t, "describe", states[0].ErrorCode, 0)
	if s := states[0]; s.State != "CompleteCommit" || s.ProducerID != pid || s.ProducerEpoch != epoch || s.StartTimestamp != -1 {
		t.Fatalf("described %+v", s)
	}
	wantCode(t, "describe unknown", states[1].ErrorCode, kerr.TransactionalIDNotFound.Code)
	wantCode(t, "describe empty", states[2].ErrorCode, kerr.InvalidRequest.Code)
	lreq := kmsg.NewPtrListTransactionsRequest()
	lreq.Version, lreq.StateFilters = 2, []string{"CompleteCommit", "Bogus"}
	lresp := c.do(lreq).(*kmsg.ListTransactionsResponse)
	if len(lresp.TransactionStates) != 1 || lresp.TransactionStates[0].TransactionalID != id || len(lresp.UnknownStateFilters) != 1 {
		t.Fatalf("listed %+v", lresp)
	}
	bad := "("
	lreq.TransactionalIDPattern = &bad
	wantCode(t, "bad pattern", c.do(lreq).(*kmsg.ListTransactionsResponse).ErrorCode, kerr.InvalidRegularExpression.Code)
	pattern := "raw"
	lreq.TransactionalIDPattern, lreq.StateFilters = &pattern, nil
	if got := c.do(lreq).(*kmsg.ListTransactionsResponse).TransactionStates; len(got) != 0 {
		t.Fatalf("a partial pattern matched: %+v", got)
	}
	preq := kmsg.NewPtrDescribeProducersRequest()
	preq.Topics = []kmsg.DescribeProducersRequestTopic{{Topic: "raw", Partitions: []int32{0, 9}}, {Topic: "missing", Partitions: []int32{0}}}
	presp := c.do(preq).(*kmsg.DescribeProducersResponse)
	p0 := presp.Topics[0].Partitions[0]
	if p0.ErrorCode != 0 || len(p0.ActiveProducers) != 1 || p0.ActiveProducers[0].ProducerID != pid || p0.ActiveProducers[0].CurrentTxnStartOffset != -1 {
		t.Fatalf("producers of raw/0: %+v", p0)
	}
	wantCode(t, "producers of raw/9", presp.Topics[0].Partitions[1].ErrorCode, kerr.UnknownTopicOrPartition.Code)
	wantCode(t, "producers of missing/0", presp.Topics[1].Partitions[0].ErrorCode, kerr.UnknownTopicOrPartition.Code)
}

// TestTxnRawVersion2 drives a transaction at transaction version 2 by
// hand: Produce v12 and TxnOffsetCommit v5 add to the transaction
// themselves, EndTxn v5 bumps the epoch and answers it, and a retry with
// the epoch before the bump gets the same answer.
func TestTxnRawVersion2(t *testing.T) {
	b := txnBroker(t, func(c *Config) { c.TransactionV2 = true })
	b.createTopic("raw2", 2, nil)
	c := &txnConn{t: t, c: b.raw()}
	id := "v2-txn"

	vreq := kmsg.NewPtrApiVersionsRequest()
	vreq.Version = 4
	vresp := c.do(vreq).(*kmsg.ApiVersionsResponse)
	found := false
	for _, f := range vresp.FinalizedFeatures {
		found = found || f.Name == "transaction.version" && f.MaxVersionLevel == 2
	}
	if !found || vresp.FinalizedFeaturesEpoch != featuresEpochTxnV2 {
		t.Fatalf("finalized features %+v epoch %d", vresp.FinalizedFeatures, vresp.FinalizedFeaturesEpoch)
	}

	init := c.initPID(5, &id, 60_000, -1, -1)
	pid, epoch := init.ProducerID, init.ProducerEpoch
	req := produceOne("raw2", 1, txnBatch(t, pid, epoch, 0))
	req.Version, req.TransactionID = 12, &id
	wantCode(t, "produce v12 adds the partition", produceCodes(c.do(req))["raw2/1"], 0)
	wantCode(t, "TxnOffsetCommit v5 adds the group", c.txnCommit(5, id, "g2", pid, epoch, "raw2", 0, 3), 0)
	if got := c.offsetFetch("g2", "raw2", 0, true); got.ErrorCode != kerr.UnstableOffsetCommit.Code {
		t.Fatalf("offset before commit: %+v", got)
	}
	end := c.endTxn(5, id, pid, epoch, true)
	if end.ErrorCode != 0 || end.ProducerID != pid || end.ProducerEpoch != epoch+1 {
		t.Fatalf("EndTxn v5: %+v", end)
	}
	retry := c.endTxn(5, id, pid, epoch, true)
	if retry.ErrorCode != 0 || retry.ProducerEpoch != epoch+1 {
		t.Fatalf("EndTxn v5 retry: %+v", retry)
	}
	wantCode(t, "abort retry of a commit", c.endTxn(5, id, pid, epoch, false).ErrorCode, kerr.InvalidTxnState.Code)
	if got := c.offsetFetch("g2", "raw2", 0, true); got.ErrorCode != 0 || got.Offset != 3 {
		t.Fatalf("offset after commit: %+v", got)
	}
	// The old epoch is fenced in the partition; the new one starts the
	// next transaction.
	req = produceOne("raw2", 1, txnBatch(t, pid, epoch, 1))
	req.Version, req.TransactionID = 12, &id
	if code := produceCodes(c.do(req))["raw2/1"]; code == 0 {
		t.Fatal("a produce with the epoch before the bump was accepted")
	}
	req = produceOne("raw2", 1, txnBatch(t, pid, epoch+1, 0))
	req.Version, req.TransactionID = 12, &id
	wantCode(t, "produce with the bumped epoch", produceCodes(c.do(req))["raw2/1"], 0)
	end = c.endTxn(5, id, pid, epoch+1, false)
	if end.ErrorCode != 0 || end.ProducerEpoch != epoch+2 {
		t.Fatalf("EndTxn v5 abort: %+v", end)
	}
	// An abort with nothing in the transaction succeeds and bumps.
	end = c.endTxn(5, id, pid, epoch+2, false)
	if end.ErrorCode != 0 || end.ProducerEpoch != epoch+3 {
		t.Fatalf("EndTxn v5 empty abort: %+v", end)
	}
}
