package log

import (
	"context"
	"errors"
	"testing"
)

// TestInternalTopicClosedToWriters checks that the log itself refuses
// appends to and the deletion of __consumer_offsets, whichever front
// asks, with an error both fronts map (an ErrInvalidTopic).
func TestInternalTopicClosedToWriters(t *testing.T) {
	e := newTestEnv(t)
	m := e.open()
	mustCreate(t, m, OffsetsTopic, 1, nil)
	p := mustPartition(t, m, OffsetsTopic, 0)
	_, err := p.Append(context.Background(), testBatch(t, 0, 1, CodecNone), AppendOptions{Sync: true})
	if !errors.Is(err, ErrInternalTopic) || !errors.Is(err, ErrInvalidTopic) {
		t.Fatalf("append to %s: %v, want ErrInternalTopic", OffsetsTopic, err)
	}
	if _, hwm := p.Offsets(); hwm != 0 {
		t.Fatalf("refused append moved the high watermark to %d", hwm)
	}
	if err := m.DeleteTopic(context.Background(), OffsetsTopic); !errors.Is(err, ErrInternalTopic) {
		t.Fatalf("delete %s: %v, want ErrInternalTopic", OffsetsTopic, err)
	}
	if _, err := m.Topic(OffsetsTopic); err != nil {
		t.Fatalf("%s gone after a refused delete: %v", OffsetsTopic, err)
	}
	// Other topics are not internal.
	mustCreate(t, m, "__other", 1, nil)
	if _, err := mustPartition(t, m, "__other", 0).Append(context.Background(), testBatch(t, 0, 1, CodecNone), AppendOptions{}); err != nil {
		t.Fatalf("append to __other: %v", err)
	}
}
