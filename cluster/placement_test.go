package cluster

import (
	"fmt"
	"maps"
	"slices"
	"testing"

	"github.com/streamhouse/streamhouse/meta"
)

// topicKeys returns the partition leases of n partitions of topic.
func topicKeys(topic string, n int) []meta.LeaseKey {
	keys := make([]meta.LeaseKey, n)
	for i := range keys {
		keys[i] = meta.PartitionLease(topic, int32(i))
	}
	return keys
}

// loads counts the keys each broker holds.
func loads(a map[meta.LeaseKey]int32) map[int32]int {
	out := make(map[int32]int)
	for _, b := range a {
		out[b]++
	}
	return out
}

// moved counts keys assigned differently by a and b.
func moved(a, b map[meta.LeaseKey]int32) int {
	n := 0
	for k, v := range a {
		if b[k] != v {
			n++
		}
	}
	return n
}

func brokerIDs(n int) []int32 {
	ids := make([]int32, n)
	for i := range ids {
		ids[i] = int32(i)
	}
	return ids
}

func TestAssignEvenAndDeterministic(t *testing.T) {
	for _, c := range []struct {
		name    string
		keys    []meta.LeaseKey
		brokers []int32
	}{
		{"OnePartitionPerBroker", topicKeys("t", 3), brokerIDs(3)},
		{"ManyPartitions", topicKeys("t", 100), brokerIDs(7)},
		{"FewerKeysThanBrokers", topicKeys("t", 2), brokerIDs(5)},
		{"CoordinatorShards", CoordinatorKeys(CoordinatorGroup, DefaultCoordinatorShards), brokerIDs(3)},
		{"SparseIDs", topicKeys("t", 12), []int32{3, 17, 1001, 4}},
		{"OneBroker", topicKeys("t", 5), []int32{9}},
	} {
		t.Run(c.name, func(t *testing.T) {
			a := Assign(c.keys, c.brokers)
			if len(a) != len(c.keys) {
				t.Fatalf("assigned %d of %d keys", len(a), len(c.keys))
			}
			limit := (len(c.keys) + len(c.brokers) - 1) / len(c.brokers)
			floor := len(c.keys) / len(c.brokers)
			l := loads(a)
			for _, b := range c.brokers {
				if l[b] > limit || l[b] < floor {
					t.Fatalf("broker %d holds %d keys, want %d..%d: %v", b, l[b], floor, limit, l)
				}
			}
			// Same answer whatever the order of the inputs.
			keys, brokers := slices.Clone(c.keys), slices.Clone(c.brokers)
			slices.Reverse(keys)
			slices.Reverse(brokers)
			if again := Assign(append(keys, keys[0]), append(brokers, brokers[0])); !maps.Equal(a, again) {
				t.Fatal("a reordered input with duplicates changed the assignment")
			}
		})
	}
	if got := Assign(topicKeys("t", 3), nil); len(got) != 0 {
		t.Fatalf("no brokers: got %v", got)
	}
}

// TestAssignPerTopicBalance places several topics at once: each topic's
// partitions spread evenly by itself.
func TestAssignPerTopicBalance(t *testing.T) {
	var keys []meta.LeaseKey
	for i := range 20 {
		keys = append(keys, topicKeys(fmt.Sprint("topic-", i), 3)...)
	}
	a := Assign(keys, brokerIDs(3))
	for i := range 20 {
		seen := make(map[int32]bool)
		for _, k := range topicKeys(fmt.Sprint("topic-", i), 3) {
			seen[a[k]] = true
		}
		if len(seen) != 3 {
			t.Fatalf("topic-%d's 3 partitions on brokers %v, want all three", i, seen)
		}
	}
}

// TestAssignMinimalMovement adds and removes a broker and bounds how many
// keys move: a change of one broker in n+1 must move about 1/(n+1) of the
// keys (ideal), not reshuffle them. Keeping every topic's loads at most
// one apart costs some extra moves: here up to about twice the ideal
// (the test logs the counts).
func TestAssignMinimalMovement(t *testing.T) {
	var keys []meta.LeaseKey
	for i := range 10 {
		keys = append(keys, topicKeys(fmt.Sprint("topic-", i), 24)...)
	}
	keys = append(keys, CoordinatorKeys(CoordinatorGroup, DefaultCoordinatorShards)...)
	for n := 2; n <= 8; n++ {
		before := Assign(keys, brokerIDs(n))
		after := Assign(keys, brokerIDs(n+1))
		ideal := len(keys) / (n + 1)
		got := moved(before, after)
		t.Logf("%d -> %d brokers: %d of %d keys moved (ideal %d)", n, n+1, got, len(keys), ideal)
		if got > ideal*2 {
			t.Errorf("%d -> %d brokers: %d keys moved, want at most %d", n, n+1, got, ideal*2)
		}
		// The new broker's keys are the bulk of what moved.
		if toNew := loads(after)[int32(n)]; toNew < got/2 {
			t.Errorf("%d -> %d brokers: only %d of %d moves went to the new broker", n, n+1, toNew, got)
		}
		// Removing it again restores the old assignment exactly.
		if !maps.Equal(Assign(keys, brokerIDs(n)), before) {
			t.Errorf("%d brokers: not deterministic", n)
		}
		// A broker leaving moves its own keys and few others.
		without := slices.Delete(brokerIDs(n+1), 0, 1)
		left := Assign(keys, without)
		others := 0
		for k, b := range after {
			if b != 0 && left[k] != b {
				others++
			}
		}
		t.Logf("%d -> %d brokers (broker 0 leaves): %d keys of surviving brokers moved", n+1, n, others)
		if others > ideal {
			t.Errorf("broker 0 leaving %d brokers moved %d keys of the others, want at most %d", n+1, others, ideal)
		}
	}
}

func TestCoordinatorKey(t *testing.T) {
	k := CoordinatorKey(CoordinatorGroup, "my-group", DefaultCoordinatorShards)
	if k.Kind != meta.LeaseCoordinator || !slices.Contains(CoordinatorKeys(CoordinatorGroup, DefaultCoordinatorShards), k) {
		t.Fatalf("CoordinatorKey = %v, not one of the shards", k)
	}
	if again := CoordinatorKey(CoordinatorGroup, "my-group", DefaultCoordinatorShards); again != k {
		t.Fatalf("CoordinatorKey not deterministic: %v then %v", k, again)
	}
	if txn := CoordinatorKey(CoordinatorTxn, "my-group", DefaultCoordinatorShards); txn.Key[:4] != "txn/" {
		t.Fatalf("txn coordinator key %v", txn)
	}
	// IDs spread over the shards.
	used := make(map[meta.LeaseKey]bool)
	for i := range 1000 {
		used[CoordinatorKey(CoordinatorGroup, fmt.Sprint("g", i), DefaultCoordinatorShards)] = true
	}
	if len(used) != DefaultCoordinatorShards {
		t.Fatalf("1000 group IDs hit %d of %d shards", len(used), DefaultCoordinatorShards)
	}
}
