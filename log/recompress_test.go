package log

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/streamhouse/streamhouse/objstore"
)

// A topic's compression.type other than producer stores every batch in
// that codec: a batch in another codec is recompressed on append, its
// records, offsets and producer fields unchanged and its CRC valid.
func TestCompressionTypeRecompresses(t *testing.T) {
	e := newTestEnv(t)
	m := e.open()
	for _, target := range []string{"uncompressed", "gzip", "snappy", "lz4", "zstd", "producer"} {
		mustCreate(t, m, "t-"+target, 1, map[string]string{ConfigCompressionType: target})
		p := mustPartition(t, m, "t-"+target, 0)
		var sent []Codec
		for i, codec := range []Codec{CodecNone, CodecGzip, CodecSnappy, CodecLZ4, CodecZstd} {
			b := idemBatch(t, 9, 0, int32(i*4), 4)
			if codec != CodecNone {
				var err error
				if b, err = recompress(b, mustHeader(t, b), codec); err != nil {
					t.Fatal(err)
				}
			}
			res, err := p.Append(context.Background(), b, AppendOptions{Sync: true})
			if err != nil || res.BaseOffset != int64(i*4) {
				t.Fatalf("%s: append %s: %v at %d", target, codec, err, res.BaseOffset)
			}
			sent = append(sent, codec)
		}
		res, err := p.Read(context.Background(), 0, 1<<20)
		if err != nil {
			t.Fatal(err)
		}
		i := 0
		for b := res.Batches; len(b) > 0; i++ {
			h := mustHeader(t, b)
			batch := b[:h.Size()]
			b = b[h.Size():]
			if _, err := ValidateBatch(batch); err != nil {
				t.Fatalf("%s: stored batch %d: %v", target, i, err)
			}
			want := sent[i]
			if target != "producer" {
				want = codecByName[target]
			}
			if h.Codec() != want || h.ProducerID != 9 || h.BaseSequence != int32(i*4) || h.BaseOffset != int64(i*4) {
				t.Fatalf("%s: batch %d stored as %s (producer %d seq %d at %d), want %s", target, i, h.Codec(), h.ProducerID, h.BaseSequence, h.BaseOffset, want)
			}
		}
		checkSequence(t, readAll(t, p, 0), 0, 20)
	}
	if err := ValidateTopicConfigs(map[string]string{ConfigCompressionType: "brotli"}); !errors.Is(err, ErrInvalidConfig) {
		t.Fatalf("compression.type=brotli: %v", err)
	}
}

func mustHeader(t *testing.T, b []byte) BatchHeader {
	t.Helper()
	h, err := ParseBatchHeader(b)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// BenchmarkAppendRecompress measures the append path when the topic's
// compression.type differs from the producer's codec (lz4 batches of 100
// × 1 KiB records into a zstd topic) against the same append kept as sent.
//
//	go test -run '^$' -bench AppendRecompress ./log/
func BenchmarkAppendRecompress(b *testing.B) {
	for _, target := range []string{"producer", "zstd"} {
		b.Run(target, func(b *testing.B) {
			m := benchManager(b, objstore.NewMem(), 0)
			if _, err := m.CreateTopic(context.Background(), "t", 1, map[string]string{ConfigCompressionType: target}); err != nil {
				b.Fatal(err)
			}
			p, err := m.Partition("t", 0)
			if err != nil {
				b.Fatal(err)
			}
			src := benchBatch(b, 100, 1024)
			batch, err := recompress(src, mustHeaderB(b, src), CodecLZ4)
			if err != nil {
				b.Fatal(err)
			}
			b.SetBytes(int64(len(src)))
			b.ResetTimer()
			for range b.N {
				if _, err := p.Append(context.Background(), append([]byte(nil), batch...), AppendOptions{}); err != nil {
					b.Fatal(fmt.Errorf("append: %w", err))
				}
			}
		})
	}
}

func mustHeaderB(b *testing.B, batch []byte) BatchHeader {
	h, err := ParseBatchHeader(batch)
	if err != nil {
		b.Fatal(err)
	}
	return h
}
