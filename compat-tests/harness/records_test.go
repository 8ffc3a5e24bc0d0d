package harness

import (
	"fmt"
	"testing"
	"time"
)

// recorder is a testing.TB that collects errors instead of failing.
type recorder struct {
	testing.TB
	errs []string
}

func (r *recorder) Helper() {}
func (r *recorder) Errorf(format string, a ...any) {
	r.errs = append(r.errs, fmt.Sprintf(format, a...))
}

// TestCheckRecords: the record check catches every kind of difference the
// compatibility cases rely on it for.
func TestCheckRecords(t *testing.T) {
	want := Records(6, 2, "tag", time.UnixMilli(1_000_000))
	read := func() []Record { // as a consumer would return them: offsets set
		out := make([]Record, len(want))
		next := map[int32]int64{}
		for i, r := range want {
			r.Offset = next[r.Partition]
			next[r.Partition]++
			r.Headers = append([]Header(nil), r.Headers...)
			out[i] = r
		}
		return out
	}
	cases := []struct {
		name   string
		mutate func([]Record) []Record
		check  Check
		bad    bool
	}{
		{"identical", func(r []Record) []Record { return r }, Check{}, false},
		{"partitions interleaved differently", func(r []Record) []Record {
			return []Record{r[1], r[3], r[5], r[0], r[2], r[4]}
		}, Check{}, false},
		{"missing record", func(r []Record) []Record { return r[:5] }, Check{}, true},
		{"duplicate record", func(r []Record) []Record { return append(r, r[5]) }, Check{}, true},
		{"reordered within a partition", func(r []Record) []Record { r[0], r[2] = r[2], r[0]; return r }, Check{}, true},
		{"wrong key", func(r []Record) []Record { r[3].Key = "x"; return r }, Check{}, true},
		{"wrong value", func(r []Record) []Record { r[3].Value = "x"; return r }, Check{}, true},
		{"wrong header", func(r []Record) []Record { r[3].Headers[1].Value = "x"; return r }, Check{}, true},
		{"wrong timestamp", func(r []Record) []Record { r[3].Timestamp++; return r }, Check{}, true},
		{"wrong partition", func(r []Record) []Record { r[3].Partition = 5; return r }, Check{}, true},
		{"offset gap", func(r []Record) []Record { r[4].Offset = 7; return r }, Check{}, true},
		{"timestamps in range", func(r []Record) []Record { return r },
			Check{TimestampsBetween: &[2]int64{1_000_000, 1_000_005}}, false},
		{"timestamp out of range", func(r []Record) []Record { return r },
			Check{TimestampsBetween: &[2]int64{1_000_001, 1_000_005}}, true},
		{"fixed headers expected", func(r []Record) []Record { return r },
			Check{NoHeaders: true, FixedHeaders: []Header{{"tag", "tag"}}}, true},
		{"sparse offsets: a gap", func(r []Record) []Record { r[4].Offset = 7; return r },
			Check{SparseOffsets: true}, false},
		{"sparse offsets: going back", func(r []Record) []Record { r[2].Offset = 5; r[4].Offset = 5; return r },
			Check{SparseOffsets: true}, true},
		{"sparse offsets: a duplicate", func(r []Record) []Record { return append(r, r[5]) },
			Check{SparseOffsets: true}, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			rec := &recorder{TB: t}
			CheckRecords(rec, c.mutate(read()), want, c.check)
			if bad := len(rec.errs) > 0; bad != c.bad {
				t.Errorf("reported %q, want failure: %v", rec.errs, c.bad)
			}
		})
	}
}

// TestCheckRecordsSparseKnownOffsets: with SparseOffsets, the offsets want
// knows (>= 0) must be matched exactly.
func TestCheckRecordsSparseKnownOffsets(t *testing.T) {
	want := Records(3, 1, "tag", time.UnixMilli(1_000_000))
	for i := range want {
		want[i].Offset = int64(2 * i) // 0, 2, 4: a marker or aborted record between
	}
	for _, c := range []struct {
		name    string
		offsets []int64
		bad     bool
	}{
		{"as known", []int64{0, 2, 4}, false},
		{"consecutive instead", []int64{0, 1, 2}, true},
		{"one off", []int64{0, 2, 5}, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			got := append([]Record(nil), want...)
			for i, o := range c.offsets {
				got[i].Offset = o
			}
			rec := &recorder{TB: t}
			CheckRecords(rec, got, want, Check{SparseOffsets: true})
			if bad := len(rec.errs) > 0; bad != c.bad {
				t.Errorf("reported %q, want failure: %v", rec.errs, c.bad)
			}
		})
	}
}
