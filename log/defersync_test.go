package log

import (
	"context"
	"testing"
)

// TestAppendDeferSync checks that DeferSync appends are written at once,
// that Durable returns only once they are synced, and that pipelined
// appends keep their order and offsets.
func TestAppendDeferSync(t *testing.T) {
	e := newTestEnv(t)
	m := e.open()
	mustCreate(t, m, "t", 1, nil)
	p := mustPartition(t, m, "t", 0)
	var durables []func() error
	var marks []int64
	for i := 0; i < 5; i++ {
		res, err := p.Append(context.Background(), testBatch(t, i*3, 3, CodecNone), AppendOptions{Sync: true, DeferSync: true})
		if err != nil {
			t.Fatal(err)
		}
		if res.Durable == nil {
			t.Fatal("DeferSync append without Durable")
		}
		if res.BaseOffset != int64(i*3) || res.LastOffset != int64(i*3+2) {
			t.Fatalf("append %d got offsets %d..%d", i, res.BaseOffset, res.LastOffset)
		}
		p.mu.Lock()
		marks = append(marks, p.written)
		p.mu.Unlock()
		durables = append(durables, res.Durable)
	}
	checkSequence(t, readAll(t, p, 0), 0, 15)
	for i, d := range durables {
		if err := d(); err != nil {
			t.Fatal(err)
		}
		p.syncMu.Lock()
		synced := p.synced
		p.syncMu.Unlock()
		if synced < marks[i] {
			t.Fatalf("Durable %d returned with %d bytes synced, %d written", i, synced, marks[i])
		}
	}
	res, err := p.Append(context.Background(), testBatch(t, 15, 1, CodecNone), AppendOptions{Sync: true})
	if err != nil || res.Durable != nil {
		t.Fatalf("plain synced append: Durable set %v, err %v", res.Durable != nil, err)
	}
}
