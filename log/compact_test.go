package log

import (
	"context"
	"errors"
	"strings"
	"testing"
)

func TestCompactionConfigValidation(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  map[string]string
		ok   bool
	}{
		{"compact", map[string]string{ConfigCleanupPolicy: "compact"}, true},
		{"delete", map[string]string{ConfigCleanupPolicy: "delete"}, true},
		{"both", map[string]string{ConfigCleanupPolicy: "compact,delete"}, true},
		{"both reversed with spaces", map[string]string{ConfigCleanupPolicy: "delete, compact"}, true},
		{"empty", map[string]string{ConfigCleanupPolicy: ""}, false},
		{"unknown policy", map[string]string{ConfigCleanupPolicy: "compact,shred"}, false},
		{"twice", map[string]string{ConfigCleanupPolicy: "compact,compact"}, false},
		{"ratio", map[string]string{ConfigMinCleanableDirtyRatio: "0.1"}, true},
		{"ratio above 1", map[string]string{ConfigMinCleanableDirtyRatio: "1.5"}, false},
		{"ratio NaN", map[string]string{ConfigMinCleanableDirtyRatio: "NaN"}, false},
		{"lags", map[string]string{ConfigMinCompactionLagMs: "10", ConfigMaxCompactionLagMs: "20"}, true},
		{"min lag above max", map[string]string{ConfigMinCompactionLagMs: "30", ConfigMaxCompactionLagMs: "20"}, false},
		{"max lag zero", map[string]string{ConfigMaxCompactionLagMs: "0"}, false},
		{"delete retention", map[string]string{ConfigDeleteRetentionMs: "0"}, true},
		{"negative delete retention", map[string]string{ConfigDeleteRetentionMs: "-1"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := ValidateTopicConfigs(tc.cfg)
			if tc.ok && err != nil {
				t.Fatalf("refused: %v", err)
			}
			if !tc.ok && !errors.Is(err, ErrInvalidConfig) {
				t.Fatalf("err = %v, want ErrInvalidConfig", err)
			}
		})
	}
}

// A compacted topic refuses a record without a key, whatever the codec,
// with Kafka's message, and writes nothing; keyed records and other
// topics are unaffected.
func TestCompactedTopicRefusesKeylessRecords(t *testing.T) {
	e := newTestEnv(t)
	m := e.open()
	mustCreate(t, m, "table", 1, map[string]string{ConfigCleanupPolicy: "compact"})
	mustCreate(t, m, "stream", 1, nil)
	table, stream := mustPartition(t, m, "table", 0), mustPartition(t, m, "stream", 0)
	for _, codec := range []Codec{CodecNone, CodecGzip, CodecSnappy, CodecLZ4, CodecZstd} {
		recs := []Record{{Key: []byte("k"), Value: []byte("v")}, {Value: []byte("no key")}}
		b, err := EncodeBatch(recs, codec, 1_700_000_000_000)
		if err != nil {
			t.Fatal(err)
		}
		_, err = table.Append(context.Background(), append([]byte(nil), b...), AppendOptions{Sync: true})
		if !errors.Is(err, ErrInvalidBatch) || !strings.Contains(err.Error(), "Compacted topic cannot accept message without key") {
			t.Fatalf("%s: keyless append to a compacted topic: %v", codec, err)
		}
		if _, err := stream.Append(context.Background(), b, AppendOptions{Sync: true}); err != nil {
			t.Fatalf("%s: keyless append to a delete topic: %v", codec, err)
		}
	}
	if _, hwm := table.Offsets(); hwm != 0 {
		t.Fatalf("refused appends moved the high watermark to %d", hwm)
	}
	if _, err := table.Append(context.Background(), testBatch(t, 0, 3, CodecLZ4), AppendOptions{Sync: true}); err != nil {
		t.Fatal(err)
	}
}
