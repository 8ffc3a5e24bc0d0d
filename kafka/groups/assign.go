package groups

// Server-side assignors of KIP-848 consumer groups. A consumer group's
// target assignment is computed by the broker whenever the group epoch
// moves (a member joins, leaves or changes its subscription, or a
// subscribed topic gains partitions or appears). Two assignors are served,
// by the names Kafka uses (the client picks one with ServerAssignor; the
// group uses the one most members ask for, ties by name, as Kafka does):
//
//   - "uniform" (Kafka's default): every partition of a subscribed topic
//     goes to one of its subscribers, as evenly as the subscriptions
//     allow, moving as few partitions as possible from the previous
//     target (sticky). kgo's StickyBalancer asks for it.
//   - "range": per topic, the subscribers sorted by member ID each get a
//     contiguous range of partitions, the first ones one extra, so that
//     members subscribed to co-partitioned topics get the same partition
//     numbers of each. kgo's RangeBalancer asks for it.
//
// Both are deterministic: the same members, subscriptions and partition
// counts give the same answer.

import (
	"cmp"
	"slices"
	"sort"
)

// Assignor names (ConsumerGroupHeartbeat's ServerAssignor).
const (
	assignorUniform = "uniform"
	assignorRange   = "range"
)

// knownAssignor reports whether name is a served assignor.
func knownAssignor(name string) bool { return name == assignorUniform || name == assignorRange }

// tp is one topic partition, by topic name.
type tp struct {
	topic string
	part  int32
}

func compareTP(a, b tp) int {
	if c := cmp.Compare(a.topic, b.topic); c != 0 {
		return c
	}
	return cmp.Compare(a.part, b.part)
}

// partSet is a set of partitions.
type partSet map[tp]struct{}

// sorted returns the set's partitions in topic, partition order.
func (s partSet) sorted() []tp {
	out := make([]tp, 0, len(s))
	for p := range s {
		out = append(out, p)
	}
	slices.SortFunc(out, compareTP)
	return out
}

// equal reports whether both sets hold the same partitions.
func (s partSet) equal(o partSet) bool {
	if len(s) != len(o) {
		return false
	}
	for p := range s {
		if _, ok := o[p]; !ok {
			return false
		}
	}
	return true
}

// assignInput is what an assignor sees: each member's subscribed topics
// (already resolved from names and regex), the partition count of every
// subscribed topic, and the previous target assignment.
type assignInput struct {
	subs   map[string]map[string]bool // member ID -> subscribed topics
	parts  map[string]int32           // topic -> partition count
	target map[string]partSet         // previous target, member ID -> partitions
}

// assign runs the named assignor; every member gets an entry, possibly
// empty.
func assign(name string, in assignInput) map[string]partSet {
	out := make(map[string]partSet, len(in.subs))
	for id := range in.subs {
		out[id] = make(partSet)
	}
	if name == assignorRange {
		assignRange(in, out)
	} else {
		assignUniform(in, out)
	}
	return out
}

// subscribersOf returns, per topic with partitions, its subscribers
// sorted by member ID.
func (in assignInput) subscribersOf() map[string][]string {
	by := make(map[string][]string)
	for id, topics := range in.subs {
		for t := range topics {
			if in.parts[t] > 0 {
				by[t] = append(by[t], id)
			}
		}
	}
	for _, ids := range by {
		sort.Strings(ids)
	}
	return by
}

func assignRange(in assignInput, out map[string]partSet) {
	for topic, ids := range in.subscribersOf() {
		n, m := in.parts[topic], int32(len(ids))
		per, extra := n/m, n%m
		next := int32(0)
		for i, id := range ids {
			count := per
			if int32(i) < extra {
				count++
			}
			for p := next; p < next+count; p++ {
				out[id][tp{topic, p}] = struct{}{}
			}
			next += count
		}
	}
}

// assignUniform keeps every partition with its previous target owner
// while that owner still subscribes, hands the rest to the eligible member
// with the fewest partitions, then moves partitions from members holding
// at least two more than another eligible member until no such move is
// left.
func assignUniform(in assignInput, out map[string]partSet) {
	subscribers := in.subscribersOf()
	prev := make(map[tp]string)
	for id, ps := range in.target {
		for p := range ps {
			prev[p] = id
		}
	}
	topics := make([]string, 0, len(subscribers))
	for t := range subscribers {
		topics = append(topics, t)
	}
	sort.Strings(topics)
	var all []tp
	for _, t := range topics {
		for p := int32(0); p < in.parts[t]; p++ {
			all = append(all, tp{t, p})
		}
	}
	var free []tp
	for _, p := range all {
		if id, ok := prev[p]; ok && in.subs[id][p.topic] {
			out[id][p] = struct{}{}
			continue
		}
		free = append(free, p)
	}
	for _, p := range free {
		out[leastLoaded(subscribers[p.topic], out)][p] = struct{}{}
	}
	rebalanceUniform(all, subscribers, out)
}

// leastLoaded is the member among ids with the fewest partitions (ties by
// ID; ids are sorted).
func leastLoaded(ids []string, out map[string]partSet) string {
	best := ids[0]
	for _, id := range ids[1:] {
		if len(out[id]) < len(out[best]) {
			best = id
		}
	}
	return best
}

// rebalanceUniform moves single partitions from an owner to the least
// loaded eligible member while that lowers the spread. Every move makes
// the sum of squared loads smaller, so the loop ends.
func rebalanceUniform(all []tp, subscribers map[string][]string, out map[string]partSet) {
	owner := make(map[tp]string, len(all))
	for id, ps := range out {
		for p := range ps {
			owner[p] = id
		}
	}
	for moved := true; moved; {
		moved = false
		for _, p := range all {
			from := owner[p]
			to := leastLoaded(subscribers[p.topic], out)
			if len(out[from]) > len(out[to])+1 {
				delete(out[from], p)
				out[to][p] = struct{}{}
				owner[p] = to
				moved = true
			}
		}
	}
}
