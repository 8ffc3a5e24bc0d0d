package groups

import "sort"

// ClassicStates are Kafka's names of the states a live classic group can
// be in, Empty first; a group known only from its committed offsets in
// meta is Empty.
func ClassicStates() []string {
	return []string{stateEmpty.String(), statePreparingRebalance.String(),
		stateCompletingRebalance.String(), stateStable.String()}
}

// Snapshot is one group as the group metrics (package kafka's
// group_metrics.go) see it at scrape time.
type Snapshot struct {
	// Group is the group's name.
	Group string
	// Type is the group type ListGroups reports: "classic" or "consumer"
	// (KIP-848).
	Type  string
	State string
	// Members is the number of members.
	Members int
	// Rebalances counts the rebalances the group completed since it was
	// created in memory (a classic group's generation).
	Rebalances uint64
}

// Snapshot returns every group in memory that is not dead, sorted by
// name. It takes each group's lock briefly and does no I/O. Groups with
// committed offsets in meta but not in memory are not included.
func (c *Coordinator) Snapshot() []Snapshot {
	c.mu.Lock()
	groups := make([]*group, 0, len(c.groups))
	for _, g := range c.groups {
		groups = append(groups, g)
	}
	c.mu.Unlock()
	out := make([]Snapshot, 0, len(groups))
	for _, g := range groups {
		g.mu.Lock()
		switch {
		case g.state != stateDead && g.cg != nil:
			// KIP-848: the group epoch counts its epoch moves.
			out = append(out, Snapshot{Group: g.name, Type: TypeConsumer, State: g.cg.stateName(),
				Members: len(g.cg.members), Rebalances: uint64(max(g.cg.epoch, 0))})
		case g.state != stateDead:
			out = append(out, Snapshot{Group: g.name, Type: TypeClassic, State: g.state.String(),
				Members: len(g.members), Rebalances: uint64(max(g.generation, 0))})
		}
		g.mu.Unlock()
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Group < out[j].Group })
	return out
}
