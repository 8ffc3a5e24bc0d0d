package txn

import "github.com/prometheus/client_golang/prometheus"

// metrics are the coordinator's collectors, created whether or not a
// registerer is given and registered only when one is. No labels: the
// cardinality is fixed.
type metrics struct {
	// open counts transactional IDs with a running transaction
	// (Ongoing, or decided and not yet complete).
	open prometheus.Gauge
	// commits and aborts count completed transactions; aborts include
	// those aborted by fencing and timeouts, timeouts only the latter.
	commits, aborts, timeouts prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) *metrics {
	counter := func(name, help string) prometheus.Counter {
		return prometheus.NewCounter(prometheus.CounterOpts{Namespace: "streamhouse", Subsystem: "kafka", Name: name, Help: help})
	}
	m := &metrics{
		open: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: "streamhouse", Subsystem: "kafka", Name: "txn_open",
			Help: "Transactional IDs with a running transaction (Ongoing, or committing or aborting)."}),
		commits: counter("txn_commits_total", "Transactions committed."),
		aborts: counter("txn_aborts_total",
			"Transactions aborted, by the producer, by fencing or by the transaction timeout."),
		timeouts: counter("txn_timeouts_total", "Transactions aborted by the broker because they exceeded their timeout."),
	}
	if reg != nil {
		reg.MustRegister(m.open, m.commits, m.aborts, m.timeouts)
	}
	return m
}
