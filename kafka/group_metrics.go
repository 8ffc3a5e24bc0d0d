package kafka

// The group collector: consumer-group metrics computed at scrape time from
// the coordinator's snapshot (groups.Coordinator.Snapshot) and the committed
// offsets in meta.
//
//	streamhouse_kafka_groups{type,state}                          gauge
//	streamhouse_kafka_group_members{group}                        gauge
//	streamhouse_kafka_group_rebalances_total{group}               counter
//	streamhouse_kafka_group_committed_offset{group,topic,partition} gauge
//	streamhouse_kafka_group_lag{group,topic,partition}            gauge
//	streamhouse_kafka_group_metrics_dropped_series                gauge
//
// Cardinality is bounded by Config.GroupMetricsMaxSeries: each group
// (its members and rebalances series) and each committed group-partition
// (its offset and lag series) takes one unit of that budget, groups first,
// in name order. What does not fit is left out and counted in
// dropped_series; a group whose offsets were not read at all counts once.
// The groups gauge is not capped (type and state are fixed sets).
//
// Cost: the snapshot is in memory. Committed offsets are read from meta at
// most once per groupOffsetsTTL (later scrapes reuse them), one query per
// group, and reading stops once the budget is spent. Lag is the
// partition's high watermark now minus the cached committed offset
// (never below 0), so it can be up to groupOffsetsTTL stale.

import (
	"context"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/streamhouse/streamhouse/kafka/groups"
	"github.com/streamhouse/streamhouse/meta"
)

const (
	// DefaultGroupMetricsMaxSeries is Config.GroupMetricsMaxSeries' default.
	DefaultGroupMetricsMaxSeries = 10000
	// groupOffsetsTTL is how long committed offsets read from meta serve
	// scrapes.
	groupOffsetsTTL = 5 * time.Second
	// groupOffsetsTimeout bounds one refresh of the committed offsets.
	groupOffsetsTimeout = 5 * time.Second
)

// groupCollector is the prometheus.Collector of the group metrics.
type groupCollector struct {
	s   *Server
	ttl time.Duration

	groups, members, rebalances, committed, lag, dropped *prometheus.Desc

	// mu guards the cached offsets below and serializes refreshes.
	mu sync.Mutex
	// read is when the cache was filled; stored lists every group with
	// offsets in meta; offsets holds the offsets read, in group order;
	// unread counts the stored groups whose offsets were not read.
	read    time.Time
	stored  []string
	offsets []meta.CommittedOffset
	unread  int
}

func newGroupCollector(s *Server) *groupCollector {
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc("streamhouse_kafka_"+name, help, labels, nil)
	}
	return &groupCollector{s: s, ttl: groupOffsetsTTL,
		groups:     d("groups", "Consumer groups by type and state (groups with only committed offsets count as classic Empty).", "type", "state"),
		members:    d("group_members", "Members of a consumer group.", "group"),
		rebalances: d("group_rebalances_total", "Rebalances a consumer group completed since the broker loaded it.", "group"),
		committed:  d("group_committed_offset", "A consumer group's committed offset of a partition.", "group", "topic", "partition"),
		lag:        d("group_lag", "Records between a partition's high watermark and the group's committed offset.", "group", "topic", "partition"),
		dropped: d("group_metrics_dropped_series",
			"Per-group series left out of the last scrape by the series cap (Config.GroupMetricsMaxSeries)."),
	}
}

// Describe implements prometheus.Collector.
func (gc *groupCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{gc.groups, gc.members, gc.rebalances, gc.committed, gc.lag, gc.dropped} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (gc *groupCollector) Collect(ch chan<- prometheus.Metric) {
	snap := gc.s.groups.Snapshot()
	budget := max(gc.s.cfg.GroupMetricsMaxSeries, 0)
	stored, offsets, unread := gc.storedOffsets(max(budget-len(snap), 0))

	type typeState struct{ typ, state string }
	counts := make(map[typeState]int)
	// The classic states are always exported (zero when no group is in
	// them), so series do not vanish.
	classic := groups.ClassicStates()
	for _, st := range classic {
		counts[typeState{groups.TypeClassic, st}] = 0
	}
	inMemory := make(map[string]bool, len(snap))
	for _, g := range snap {
		counts[typeState{g.Type, g.State}]++
		inMemory[g.Group] = true
	}
	for _, name := range stored {
		if !inMemory[name] {
			counts[typeState{groups.TypeClassic, classic[0]}]++ // Empty
		}
	}
	for k, n := range counts {
		ch <- prometheus.MustNewConstMetric(gc.groups, prometheus.GaugeValue, float64(n), k.typ, k.state)
	}

	dropped := unread
	for _, g := range snap {
		if budget == 0 {
			dropped++
			continue
		}
		budget--
		ch <- prometheus.MustNewConstMetric(gc.members, prometheus.GaugeValue, float64(g.Members), g.Group)
		ch <- prometheus.MustNewConstMetric(gc.rebalances, prometheus.CounterValue, float64(g.Rebalances), g.Group)
	}
	for _, o := range offsets {
		if budget == 0 {
			dropped++
			continue
		}
		budget--
		part := strconv.Itoa(int(o.Partition))
		ch <- prometheus.MustNewConstMetric(gc.committed, prometheus.GaugeValue, float64(o.Offset), o.Group, o.Topic, part)
		if p, err := gc.s.cfg.Log.Partition(o.Topic, o.Partition); err == nil {
			_, hwm := p.Offsets()
			ch <- prometheus.MustNewConstMetric(gc.lag, prometheus.GaugeValue, float64(max(hwm-o.Offset, 0)), o.Group, o.Topic, part)
		}
	}
	ch <- prometheus.MustNewConstMetric(gc.dropped, prometheus.GaugeValue, float64(dropped))
}

// storedOffsets returns the groups with committed offsets in meta, the
// offsets of as many of them as fit in limit (whole groups, in name
// order), and how many groups were not read. The result is cached for
// gc.ttl; on a meta error the previous result is kept (and logged).
func (gc *groupCollector) storedOffsets(limit int) ([]string, []meta.CommittedOffset, int) {
	gc.mu.Lock()
	defer gc.mu.Unlock()
	if !gc.read.IsZero() && time.Since(gc.read) < gc.ttl || gc.s.ctx.Err() != nil {
		// Fresh enough, or the server closed (meta may be closing too).
		return gc.stored, gc.offsets, gc.unread
	}
	ctx, cancel := context.WithTimeout(gc.s.ctx, groupOffsetsTimeout)
	defer cancel()
	names, err := gc.s.cfg.Meta.ListGroups(ctx)
	if err != nil {
		gc.s.logger.Warn("group metrics: list groups failed", "err", err)
		return gc.stored, gc.offsets, gc.unread
	}
	var offsets []meta.CommittedOffset
	unread := 0
	for _, name := range names {
		if len(offsets) >= limit {
			unread++
			continue
		}
		got, err := gc.s.cfg.Meta.FetchOffsets(ctx, name)
		if err != nil {
			gc.s.logger.Warn("group metrics: fetch offsets failed", "group", name, "err", err)
			return gc.stored, gc.offsets, gc.unread
		}
		offsets = append(offsets, got...)
	}
	gc.read, gc.stored, gc.offsets, gc.unread = time.Now(), names, offsets, unread
	return names, offsets, unread
}
