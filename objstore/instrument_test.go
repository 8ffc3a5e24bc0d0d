package objstore_test

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/streamhouse/streamhouse/objstore"
)

func TestInstrumentConformance(t *testing.T) {
	runConformance(t, func(*testing.T) objstore.Store {
		return objstore.Instrument(objstore.NewMem(), prometheus.NewRegistry())
	})
}

func TestInstrumentMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	s := objstore.Instrument(objstore.NewMem(), reg)
	ctx := context.Background()
	put(t, s, "a", []byte("12345"))
	put(t, s, "b", []byte("123"))
	get(t, s, "a")
	if _, err := s.GetRange(ctx, "a", 1, 2); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(ctx, "missing"); err == nil {
		t.Fatal("Get of a missing key succeeded")
	}
	if err := s.Put(ctx, "/bad", bytes.NewReader(nil), 0); err == nil {
		t.Fatal("Put of a bad key succeeded")
	}
	if _, err := s.List(ctx, ""); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete(ctx, "a"); err != nil {
		t.Fatal(err)
	}

	got := gather(t, reg)
	want := map[string]float64{
		`streamhouse_objstore_requests_total{op="put"}`:                       3,
		`streamhouse_objstore_requests_total{op="get"}`:                       2,
		`streamhouse_objstore_requests_total{op="get_range"}`:                 1,
		`streamhouse_objstore_requests_total{op="list"}`:                      1,
		`streamhouse_objstore_requests_total{op="delete"}`:                    1,
		`streamhouse_objstore_errors_total{kind="not_found",op="get"}`:        1,
		`streamhouse_objstore_errors_total{kind="permanent",op="put"}`:        1,
		`streamhouse_objstore_bytes_total{op="put"}`:                          8,
		`streamhouse_objstore_bytes_total{op="get"}`:                          5,
		`streamhouse_objstore_bytes_total{op="get_range"}`:                    2,
		`streamhouse_objstore_request_duration_seconds_count{op="put"}`:       3,
		`streamhouse_objstore_request_duration_seconds_count{op="get_range"}`: 1,
	}
	for name, v := range want {
		if got[name] != v {
			t.Errorf("%s = %v, want %v", name, got[name], v)
		}
	}
	for name := range got {
		if strings.HasPrefix(name, "streamhouse_objstore_errors_total") {
			if _, ok := want[name]; !ok {
				t.Errorf("unexpected %s = %v", name, got[name])
			}
		}
	}
}

func TestInstrumentSharedRegistry(t *testing.T) {
	reg := prometheus.NewRegistry()
	a := objstore.Instrument(objstore.NewMem(), reg)
	b := objstore.Instrument(objstore.NewMem(), reg) // must not panic
	put(t, a, "k", []byte("1"))
	put(t, b, "k", []byte("2"))
	if got := gather(t, reg)[`streamhouse_objstore_requests_total{op="put"}`]; got != 2 {
		t.Fatalf("puts counted = %v, want 2 (both stores, one set of collectors)", got)
	}
	// A nil registerer records without registering.
	put(t, objstore.Instrument(objstore.NewMem(), nil), "k", []byte("3"))
}

// gather returns every sample in reg as `name{labels}` -> value, with
// histograms as their _count.
func gather(t *testing.T, reg *prometheus.Registry) map[string]float64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := make(map[string]float64)
	for _, f := range families {
		for _, m := range f.GetMetric() {
			var labels []string
			for _, l := range m.GetLabel() {
				labels = append(labels, l.GetName()+`="`+l.GetValue()+`"`)
			}
			ls := "{" + strings.Join(labels, ",") + "}"
			switch {
			case m.GetCounter() != nil:
				out[f.GetName()+ls] = m.GetCounter().GetValue()
			case m.GetHistogram() != nil:
				out[f.GetName()+"_count"+ls] = float64(m.GetHistogram().GetSampleCount())
			}
		}
	}
	return out
}
