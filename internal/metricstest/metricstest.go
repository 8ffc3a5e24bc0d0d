// Package metricstest reads values out of a Prometheus registry for tests:
// the packages that export metrics check them by gathering, without
// client_golang's testutil (which pulls in another dependency).
package metricstest

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// Sample is one series of a family: its labels and its value (a
// counter's or gauge's value, a histogram's sample count).
type Sample struct {
	Labels map[string]string
	Key    string // the labels as "name=value" pairs joined with ",", in the registry's (name) order
	Value  float64
}

// Gather gathers g and returns the samples of the family name.
func Gather(t testing.TB, g prometheus.Gatherer, name string) []Sample {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	var out []Sample
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			s := Sample{Labels: map[string]string{}}
			var pairs []string
			for _, l := range m.GetLabel() {
				s.Labels[l.GetName()] = l.GetValue()
				pairs = append(pairs, l.GetName()+"="+l.GetValue())
			}
			s.Key = strings.Join(pairs, ",")
			switch {
			case m.Counter != nil:
				s.Value = m.GetCounter().GetValue()
			case m.Gauge != nil:
				s.Value = m.GetGauge().GetValue()
			case m.Histogram != nil:
				s.Value = float64(m.GetHistogram().GetSampleCount())
			}
			out = append(out, s)
		}
	}
	return out
}

// Family returns the samples of the family name keyed by Sample.Key.
func Family(t testing.TB, g prometheus.Gatherer, name string) map[string]float64 {
	t.Helper()
	out := map[string]float64{}
	for _, s := range Gather(t, g, name) {
		out[s.Key] = s.Value
	}
	return out
}

// Sum returns the sum over the samples of the family name whose labels
// include want, and how many matched.
func Sum(t testing.TB, g prometheus.Gatherer, name string, want map[string]string) (float64, int) {
	t.Helper()
	var sum float64
	n := 0
samples:
	for _, s := range Gather(t, g, name) {
		for k, v := range want {
			if s.Labels[k] != v {
				continue samples
			}
		}
		sum += s.Value
		n++
	}
	return sum, n
}
