package log

import (
	"context"
	"errors"
	"maps"
	"strconv"
	"testing"
)

func TestAddPartitions(t *testing.T) {
	e := newTestEnv(t)
	m := e.open()
	ctx := context.Background()
	mustCreate(t, m, "grow", 2, map[string]string{ConfigTimestampType: "LogAppendTime"})
	appendN(t, mustPartition(t, m, "grow", 0), 0, 2, 3, true)

	tp, err := m.AddPartitions(ctx, "grow", 4)
	if err != nil {
		t.Fatal(err)
	}
	if tp.PartitionCount != 4 {
		t.Fatalf("answer has %d partitions", tp.PartitionCount)
	}
	if mt, _ := m.Topic("grow"); mt.PartitionCount != 4 {
		t.Fatalf("topic has %d partitions", mt.PartitionCount)
	}
	p3 := mustPartition(t, m, "grow", 3)
	res, err := p3.Append(ctx, testBatch(t, 0, 5, CodecNone), AppendOptions{Sync: true})
	if err != nil {
		t.Fatal(err)
	}
	if res.BaseOffset != 0 || res.LogAppendTime < 0 {
		t.Fatalf("append to new partition: %+v (want offset 0 and the topic's LogAppendTime)", res)
	}

	for _, tc := range []struct {
		name  string
		topic string
		count int32
		want  error
	}{
		{"same count", "grow", 4, ErrInvalidPartitions},
		{"fewer", "grow", 3, ErrInvalidPartitions},
		{"unknown topic", "nope", 9, ErrUnknownTopic},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := m.AddPartitions(ctx, tc.topic, tc.count); !errors.Is(err, tc.want) {
				t.Fatalf("err %v, want %v", err, tc.want)
			}
		})
	}

	m = e.reopen()
	if mt, _ := m.Topic("grow"); mt.PartitionCount != 4 {
		t.Fatalf("after reopen: %d partitions", mt.PartitionCount)
	}
	p3 = mustPartition(t, m, "grow", 3)
	if _, hwm := p3.Offsets(); hwm != 5 {
		t.Fatalf("new partition's records after reopen: high watermark %d", hwm)
	}
	if _, err := m.Partition("grow", 4); !errors.Is(err, ErrUnknownPartition) {
		t.Fatalf("partition 4: %v", err)
	}
}

// segmentBases returns the base offsets of p's segments.
func segmentBases(p *Partition) []int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	var bases []int64
	for _, s := range p.segs {
		bases = append(bases, s.base)
	}
	return bases
}

func TestDeleteRecordsBefore(t *testing.T) {
	e := newTestEnv(t)
	m := e.open()
	ctx := context.Background()
	mustCreate(t, m, "dr", 1, map[string]string{ConfigSegmentBytes: "1024", ConfigRetentionMs: "-1"})
	p := mustPartition(t, m, "dr", 0)
	appendN(t, p, 0, 40, 4, true)
	waitUploaded(t, m, p)
	before := len(segmentBases(p))

	for _, tc := range []struct {
		name   string
		offset int64
		want   int64
		err    error
	}{
		{"move", 50, 50, nil},
		{"below is a no-op", 10, 50, nil},
		{"above high watermark", 161, 0, ErrOffsetOutOfRange},
		{"negative", -1, 0, ErrOffsetOutOfRange},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := p.DeleteRecordsBefore(ctx, tc.offset)
			if !errors.Is(err, tc.err) || (tc.err == nil && got != tc.want) {
				t.Fatalf("got %d, %v; want %d, %v", got, err, tc.want, tc.err)
			}
		})
	}
	checkLogStart := func(p *Partition, want int64) {
		t.Helper()
		if ls, hwm := p.Offsets(); ls != want || hwm != 160 {
			t.Fatalf("offsets %d..%d, want %d..160", ls, hwm, want)
		}
		if _, err := p.Read(ctx, want-1, 100); !errors.Is(err, ErrOffsetOutOfRange) {
			t.Fatalf("read below the log start: %v", err)
		}
		checkSequence(t, readAll(t, p, want), want, int(160-want))
	}
	checkLogStart(p, 50)
	if part, _ := e.meta.GetPartition(ctx, p.topicID, 0); part.LogStartOffset != 50 {
		t.Fatalf("meta log start %d", part.LogStartOffset)
	}

	m.RunHousekeeping(ctx)
	bases := segmentBases(p)
	if len(bases) >= before || bases[0] > 50 || (len(bases) > 1 && bases[1] <= 50) {
		t.Fatalf("retention kept segments %v (had %d); want the first to hold offset 50", bases, before)
	}
	objs, _ := e.objects.List(ctx, objectPrefix(p.topicID, 0))
	segs, _ := e.meta.ListSegments(ctx, p.topicID, 0)
	if len(objs) != len(segs) || len(segs) != len(bases)-1 {
		t.Fatalf("%d objects, %d meta segments, %d segments", len(objs), len(segs), len(bases))
	}
	checkLogStart(p, 50)

	m = e.reopen()
	p = mustPartition(t, m, "dr", 0)
	checkLogStart(p, 50)

	// Into the active segment, then on after a restart.
	if ls, err := p.DeleteRecordsBefore(ctx, 158); err != nil || ls != 158 {
		t.Fatalf("delete to 158: %d, %v", ls, err)
	}
	m = e.reopen()
	p = mustPartition(t, m, "dr", 0)
	checkLogStart(p, 158)
	appendN(t, p, 160, 1, 4, true)
	checkSequence(t, readAll(t, p, 158), 158, 6)
}

// TestRecoveryKeepsSegmentAcrossLogStart checks that recovery removes a
// local sealed segment wholly below the log start but keeps one that the
// log start falls inside (DeleteRecords moves it mid-segment).
func TestRecoveryKeepsSegmentAcrossLogStart(t *testing.T) {
	e := newTestEnv(t)
	m := e.open()
	ctx := context.Background()
	mustCreate(t, m, "keep", 1, nil)
	p := mustPartition(t, m, "keep", 0)
	stopBackground(m) // sealed segments stay local
	for i := 0; i < 3; i++ {
		appendN(t, p, i*8, 2, 4, true)
		if err := p.Roll(); err != nil {
			t.Fatal(err)
		}
	}
	appendN(t, p, 24, 1, 4, true) // active: 24..27
	if _, err := p.DeleteRecordsBefore(ctx, 12); err != nil {
		t.Fatal(err)
	}
	closeWithoutUploads(e, m)

	m = e.open()
	p = mustPartition(t, m, "keep", 0)
	if bases := segmentBases(p); len(bases) != 3 || bases[0] != 8 {
		t.Fatalf("segments %v, want [8 16 24]", bases)
	}
	if ls, hwm := p.Offsets(); ls != 12 || hwm != 28 {
		t.Fatalf("offsets %d..%d, want 12..28", ls, hwm)
	}
	checkSequence(t, readAll(t, p, 12), 12, 16)
}

func TestUpdateTopicConfigs(t *testing.T) {
	e := newTestEnv(t)
	m := e.open()
	ctx := context.Background()
	mustCreate(t, m, "cfg", 1, map[string]string{ConfigRetentionMs: "1000"})
	add := func(k, v string) func(map[string]string) (map[string]string, error) {
		return func(cur map[string]string) (map[string]string, error) {
			cur[k] = v
			return cur, nil
		}
	}
	if err := m.UpdateTopicConfigs(ctx, "cfg", add(ConfigRetentionBytes, "5000")); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{ConfigRetentionMs: "1000", ConfigRetentionBytes: "5000"}
	if mt, _ := m.Topic("cfg"); !maps.Equal(mt.Configs, want) {
		t.Fatalf("configs %v, want %v", mt.Configs, want)
	}
	boom := errors.New("boom")
	if err := m.UpdateTopicConfigs(ctx, "cfg", func(map[string]string) (map[string]string, error) { return nil, boom }); err != boom {
		t.Fatalf("update error: %v", err)
	}
	if err := m.UpdateTopicConfigs(ctx, "cfg", add("no.such", "1")); !errors.Is(err, ErrInvalidConfig) {
		t.Fatalf("unknown key: %v", err)
	}
	if err := m.UpdateTopicConfigs(ctx, "nope", add(ConfigRetentionMs, "1")); !errors.Is(err, ErrUnknownTopic) {
		t.Fatalf("unknown topic: %v", err)
	}
	if mt, _ := m.Topic("cfg"); !maps.Equal(mt.Configs, want) {
		t.Fatalf("failed updates changed configs to %v", mt.Configs)
	}
	m = e.reopen()
	if mt, _ := m.Topic("cfg"); !maps.Equal(mt.Configs, want) {
		t.Fatalf("after reopen: %v", mt.Configs)
	}
}

func TestBrokerValues(t *testing.T) {
	e := newTestEnv(t)
	m := e.open()
	mustCreate(t, m, "size", 1, nil)
	p := mustPartition(t, m, "size", 0)
	b := testBatch(t, 0, 3, CodecNone)
	n := int64(len(b))
	if _, err := p.Append(context.Background(), b, AppendOptions{}); err != nil {
		t.Fatal(err)
	}
	if got := p.StoredBytes(); got != n {
		t.Fatalf("stored bytes %d, want %d", got, n)
	}
	s := m.BrokerSettings()
	if s.SegmentBytes != DefaultSegmentBytes || s.Dir == "" {
		t.Fatalf("settings %+v", s)
	}
	if v, _ := m.TopicConfigDefault(ConfigSegmentMs); v != strconv.FormatInt(DefaultSegmentAge.Milliseconds(), 10) {
		t.Fatalf("segment.ms default %s", v)
	}
	if v, ok := m.TopicConfigDefault(ConfigRetentionMs); !ok || v != strconv.FormatInt(DefaultRetentionMs, 10) {
		t.Fatalf("retention.ms default %s", v)
	}
	if _, ok := m.TopicConfigDefault("no.such"); ok {
		t.Fatal("default for an unknown key")
	}
	total, usable, err := m.DiskSpace()
	if err != nil || total <= 0 || usable < 0 || usable > total {
		t.Fatalf("disk space %d / %d, %v", usable, total, err)
	}
}

// TestActiveSegmentBelowLogStart covers damage that leaves the recovered
// active segment ending below the log start: it is retired and appends
// go to a new segment at the log start, which survives another restart.
func TestActiveSegmentBelowLogStart(t *testing.T) {
	e := newTestEnv(t)
	m := e.open()
	ctx := context.Background()
	mustCreate(t, m, "gap", 1, nil)
	p := mustPartition(t, m, "gap", 0)
	appendN(t, p, 0, 2, 4, true)
	if err := e.meta.SetLogStartOffset(ctx, p.topicID, 0, 20); err != nil {
		t.Fatal(err)
	}
	m = e.reopen()
	p = mustPartition(t, m, "gap", 0)
	if ls, hwm := p.Offsets(); ls != 20 || hwm != 20 {
		t.Fatalf("offsets %d..%d, want 20..20", ls, hwm)
	}
	appendN(t, p, 20, 1, 4, true)
	m = e.reopen()
	p = mustPartition(t, m, "gap", 0)
	if bases := segmentBases(p); bases[len(bases)-1] != 20 {
		t.Fatalf("segments %v: the active one should start at 20", bases)
	}
	checkSequence(t, readAll(t, p, 20), 20, 4)
}
