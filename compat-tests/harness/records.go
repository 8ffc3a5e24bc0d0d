package harness

import (
	"bufio"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"
)

// Header is one record header.
type Header struct {
	Key   string `json:"k"`
	Value string `json:"v"`
}

// Record is one record as the drivers of every language exchange it with the
// Go tests: JSON lines with these field names. Offset is -1 when unknown.
type Record struct {
	Partition int32    `json:"p"`
	Offset    int64    `json:"o"`
	Key       string   `json:"k"`
	Value     string   `json:"v"`
	Headers   []Header `json:"h"`
	Timestamp int64    `json:"ts"` // milliseconds since the epoch
}

// Records returns n records for a topic of the given partitions: record i goes
// to partition i%partitions, with key "k-i", a value naming tag and i (with a
// non-ASCII rune, so encodings show), headers {"idx": i, "tag": tag} and
// timestamp base+i ms. Offsets are -1.
func Records(n, partitions int, tag string, base time.Time) []Record {
	recs := make([]Record, n)
	for i := range recs {
		recs[i] = Record{
			Partition: int32(i % partitions),
			Offset:    -1,
			Key:       fmt.Sprintf("k-%d", i),
			Value:     fmt.Sprintf("%s-value-%d-é-%s", tag, i, strings.Repeat("x", i%7)),
			Headers:   []Header{{"idx", fmt.Sprint(i)}, {"tag", tag}},
			Timestamp: base.UnixMilli() + int64(i),
		}
	}
	return recs
}

// JSONLines encodes records one per line, for a driver's stdin.
func JSONLines(recs []Record) string {
	var b strings.Builder
	enc := json.NewEncoder(&b)
	for _, r := range recs {
		_ = enc.Encode(r)
	}
	return b.String()
}

// ParseJSONLines decodes a driver's stdout: lines that start with '{' are
// JSON objects; with "op" set they are events (returned separately),
// otherwise records. Other lines (tools' chatter) are only logged.
func ParseJSONLines(t testing.TB, out string) (recs []Record, events []map[string]any) {
	t.Helper()
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if !strings.HasPrefix(line, "{") {
			if line != "" {
				t.Logf("output: %s", line)
			}
			continue
		}
		var ev map[string]any
		if err := json.Unmarshal([]byte(line), &ev); err != nil {
			t.Fatalf("bad JSON line %q: %v", line, err)
		}
		if _, ok := ev["op"]; ok {
			events = append(events, ev)
			continue
		}
		var r Record
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("bad record line %q: %v", line, err)
		}
		recs = append(recs, r)
	}
	return recs, events
}

// Check says how strictly CheckRecords compares.
type Check struct {
	// NoHeaders: the producer could not set per-record headers; Headers in
	// got must equal FixedHeaders instead.
	NoHeaders    bool
	FixedHeaders []Header
	// TimestampsBetween: the producer set no timestamps; each must lie in
	// [From, To] (milliseconds) instead of equalling want's.
	TimestampsBetween *[2]int64
	// StartOffset is the first offset expected in every partition (default 0).
	StartOffset int64
	// SparseOffsets: a transactional topic, where aborted records and
	// commit/abort markers take offsets too. A record's offset must equal
	// want's where that is known (>= 0), else only exceed the one before.
	SparseOffsets bool
}

// CheckRecords compares records read back (in the order a consumer returned
// them) with want: the same count; per partition the same keys, values,
// headers and timestamps in order, at consecutive offsets from StartOffset
// (or as c.SparseOffsets says).
func CheckRecords(t testing.TB, got, want []Record, c Check) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("read %d records, want %d", len(got), len(want))
	}
	gotBy, wantBy := byPartition(got), byPartition(want)
	parts := make([]int32, 0, len(wantBy))
	for p := range wantBy {
		parts = append(parts, p)
	}
	sort.Slice(parts, func(i, j int) bool { return parts[i] < parts[j] })
	for p := range gotBy {
		if _, ok := wantBy[p]; !ok {
			t.Errorf("partition %d: %d records, want none", p, len(gotBy[p]))
		}
	}
	bad := 0
	for _, p := range parts {
		g, w := gotBy[p], wantBy[p]
		if len(g) != len(w) {
			t.Errorf("partition %d: %d records, want %d", p, len(g), len(w))
		}
		prev := int64(-1)
		for i := 0; i < len(g) && i < len(w) && bad < 10; i++ {
			offset := c.StartOffset + int64(i)
			if c.SparseOffsets {
				switch offset = w[i].Offset; {
				case offset >= 0:
				case g[i].Offset > prev:
					offset = g[i].Offset
				default:
					offset = prev + 1 // (at least)
				}
			}
			prev = g[i].Offset
			if msg := diffRecord(g[i], w[i], offset, c); msg != "" {
				t.Errorf("partition %d record %d: %s", p, i, msg)
				bad++
			}
		}
	}
}

func byPartition(recs []Record) map[int32][]Record {
	m := map[int32][]Record{}
	for _, r := range recs {
		m[r.Partition] = append(m[r.Partition], r)
	}
	return m
}

// diffRecord says how g differs from w, or returns "".
func diffRecord(g, w Record, offset int64, c Check) string {
	var d []string
	if g.Offset != offset {
		d = append(d, fmt.Sprintf("offset %d, want %d", g.Offset, offset))
	}
	if g.Key != w.Key {
		d = append(d, fmt.Sprintf("key %q, want %q", g.Key, w.Key))
	}
	if g.Value != w.Value {
		d = append(d, fmt.Sprintf("value %q, want %q", g.Value, w.Value))
	}
	wh := w.Headers
	if c.NoHeaders {
		wh = c.FixedHeaders
	}
	if fmt.Sprint(normHeaders(g.Headers)) != fmt.Sprint(normHeaders(wh)) {
		d = append(d, fmt.Sprintf("headers %v, want %v", g.Headers, wh))
	}
	if tb := c.TimestampsBetween; tb != nil {
		if g.Timestamp < tb[0] || g.Timestamp > tb[1] {
			d = append(d, fmt.Sprintf("timestamp %d, want within [%d, %d]", g.Timestamp, tb[0], tb[1]))
		}
	} else if g.Timestamp != w.Timestamp {
		d = append(d, fmt.Sprintf("timestamp %d, want %d", g.Timestamp, w.Timestamp))
	}
	return strings.Join(d, "; ")
}

func normHeaders(h []Header) []Header {
	if len(h) == 0 {
		return nil
	}
	return h
}

// CheckAcks checks a producer's acknowledgements (events with op "ack", "p"
// and "o"): one per record, and per partition offsets 0, 1, 2, ... in the
// order the records were sent.
func CheckAcks(t testing.TB, events []map[string]any, want []Record) {
	t.Helper()
	next := map[int32]int64{}
	n := 0
	for _, ev := range events {
		if ev["op"] != "ack" {
			continue
		}
		p, o := int32(num(ev["p"])), int64(num(ev["o"]))
		if o != next[p] {
			t.Errorf("ack %d: partition %d offset %d, want %d", n, p, o, next[p])
		}
		next[p] = o + 1
		n++
	}
	if n != len(want) {
		t.Errorf("%d acks, want %d", n, len(want))
	}
}

// Events returns the events with op == op.
func Events(events []map[string]any, op string) []map[string]any {
	var out []map[string]any
	for _, ev := range events {
		if ev["op"] == op {
			out = append(out, ev)
		}
	}
	return out
}

func num(v any) float64 {
	f, _ := v.(float64)
	return f
}

// Num returns a JSON number field of an event (0 when absent).
func Num(ev map[string]any, key string) int64 { return int64(num(ev[key])) }
