package kafka

import (
	"bytes"
	"context"
	"encoding/binary"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/streamhouse/streamhouse/log"
)

// readAllBytes returns every stored batch byte of a partition.
func readAllBytes(t testing.TB, p *log.Partition) []byte {
	t.Helper()
	var out []byte
	for off := int64(0); ; {
		res, err := p.Read(context.Background(), off, 1<<20)
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Batches) == 0 {
			return out
		}
		out = append(out, res.Batches...)
		off = batchesEnd(res.Batches)
	}
}

func TestBadFramesCloseTheConnection(t *testing.T) {
	b := newTestBroker(t, func(c *Config) { c.MaxRequestBytes = 1 << 20 })
	header := func(key, version int16) []byte {
		h := binary.BigEndian.AppendUint16(nil, uint16(key))
		h = binary.BigEndian.AppendUint16(h, uint16(version))
		h = binary.BigEndian.AppendUint32(h, 1)
		return binary.BigEndian.AppendUint16(h, 0xffff) // null client ID
	}
	sized := func(body []byte) []byte {
		return append(binary.BigEndian.AppendUint32(nil, uint32(len(body))), body...)
	}
	tests := []struct {
		name  string
		bytes []byte
	}{
		// Only a size: the broker must not wait for (or allocate) 2 GiB.
		{"oversized frame", binary.BigEndian.AppendUint32(nil, 1<<31-1)},
		{"just over the maximum", binary.BigEndian.AppendUint32(nil, 1<<20+1)},
		{"negative size", binary.BigEndian.AppendUint32(nil, 0xffffffff)},
		{"frame too short for a header", sized([]byte{0, 3})},
		{"unknown api key", sized(header(999, 0))},
		{"unsupported produce version", sized(append(header(0, 2), make([]byte, 16)...))},
		{"undecodable body", sized(append(header(3, 12), 0xff, 0xff, 0xff))},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := b.raw()
			c.write(tc.bytes)
			c.expectClosed()
		})
	}
	t.Run("truncated frame", func(t *testing.T) {
		c := b.raw()
		c.write(binary.BigEndian.AppendUint32(nil, 100))
		c.write(header(18, 0))
		c.nc.(interface{ CloseWrite() error }).CloseWrite()
		c.expectClosed()
	})
	t.Run("answers queued before a bad frame are flushed", func(t *testing.T) {
		c := b.raw()
		req := kmsg.NewPtrApiVersionsRequest()
		c.write(append(frame(5, req), sized(header(999, 0))...))
		if body, ok := c.readFrame(); !ok || int32(binary.BigEndian.Uint32(body)) != 5 {
			t.Fatal("ApiVersions answer lost")
		}
		c.expectClosed()
	})
}

func TestApiVersions(t *testing.T) {
	b := newTestBroker(t, nil)
	t.Run("current", func(t *testing.T) {
		req := kmsg.NewPtrApiVersionsRequest()
		req.Version = 4
		resp := b.raw().roundTrip(1, req).(*kmsg.ApiVersionsResponse)
		if resp.ErrorCode != 0 || len(resp.ApiKeys) != len(dispatchTable()) {
			t.Fatalf("%+v", resp)
		}
	})
	t.Run("above our max (KIP-511)", func(t *testing.T) {
		c := b.raw()
		f := frame(9, kmsg.NewPtrApiVersionsRequest())
		binary.BigEndian.PutUint16(f[6:], 99) // version
		c.write(f)
		body, ok := c.readFrame()
		if !ok {
			t.Fatal("closed instead of answering")
		}
		resp := kmsg.NewPtrApiVersionsResponse() // v0 format
		if err := resp.ReadFrom(body[4:]); err != nil {
			t.Fatal(err)
		}
		if int32(binary.BigEndian.Uint32(body)) != 9 || resp.ErrorCode != kerr.UnsupportedVersion.Code || len(resp.ApiKeys) == 0 {
			t.Fatalf("%+v", resp)
		}
		for _, k := range resp.ApiKeys {
			if k.ApiKey == apiVersionsKey && k.MaxVersion != 5 {
				t.Fatalf("ApiVersions range %+v", k)
			}
		}
	})
}

func TestBadBatchesAreRefusedAndChangeNothing(t *testing.T) {
	b := newTestBroker(t, nil)
	b.createTopic("bad", 1, nil)
	c := b.raw()
	if sp := producePart(t, c.roundTrip(1, produceOne("bad", 0, plainBatch(t, "good")))); sp.ErrorCode != 0 {
		t.Fatalf("good batch: %d", sp.ErrorCode)
	}
	p := mustPartition(t, b, "bad", 0)
	before := readAllBytes(t, p)

	wrongCRC := plainBatch(t, "x")
	wrongCRC[len(wrongCRC)-1] ^= 0xff
	countLies := idemBatch(t, -1, -1, -1, 3)
	binary.BigEndian.PutUint32(countLies[57:], 2)         // record count
	binary.BigEndian.PutUint32(countLies[23:], uint32(1)) // lastOffsetDelta matching the lie
	fixCRC(countLies)
	twoBatches := append(plainBatch(t, "a"), plainBatch(t, "b")...)
	txn := plainBatch(t, "t")
	binary.BigEndian.PutUint16(txn[21:], binary.BigEndian.Uint16(txn[21:])|0x10)
	fixCRC(txn)
	control := plainBatch(t, "c")
	binary.BigEndian.PutUint16(control[21:], binary.BigEndian.Uint16(control[21:])|0x20)
	fixCRC(control)
	tests := []struct {
		name  string
		batch []byte
		want  int16
	}{
		{"wrong CRC", wrongCRC, kerr.CorruptMessage.Code},
		{"record count lies", countLies, kerr.InvalidRecord.Code},
		{"truncated", plainBatch(t, "y")[:40], kerr.CorruptMessage.Code},
		{"two batches", twoBatches, kerr.InvalidRecord.Code},
		// Without a TransactionalID in the request, as Kafka answers.
		{"transactional", txn, kerr.TransactionalIDAuthorizationFailed.Code},
		{"control batch", control, kerr.InvalidRecord.Code},
		{"empty", []byte{}, kerr.InvalidRecord.Code},
		{"too large", bytes.Repeat([]byte{1}, 2<<20), kerr.MessageTooLarge.Code},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			batch := tc.batch
			if tc.name == "too large" {
				b, err := log.EncodeBatch([]log.Record{{Value: batch}}, log.CodecNone, 1)
				if err != nil {
					t.Fatal(err)
				}
				batch = b
			}
			sp := producePart(t, c.roundTrip(int32(10+i), produceOne("bad", 0, batch)))
			if sp.ErrorCode != tc.want || sp.BaseOffset != -1 || sp.ErrorMessage == nil {
				t.Fatalf("answer %+v, want code %d", sp, tc.want)
			}
			if after := readAllBytes(t, p); !bytes.Equal(after, before) {
				t.Fatal("stored data changed")
			}
		})
	}
}
