package cluster

import (
	"cmp"
	"hash/fnv"
	"slices"
	"strconv"
	"strings"

	"github.com/streamhouse/streamhouse/meta"
)

// Placement decides which live broker should hold each lease. Every
// broker computes it alone, from the same inputs (the lease keys and the
// live broker IDs), and gets the same answer: it is a pure function, with
// no randomness and no state.
//
// Assign uses rendezvous (highest random weight) hashing with bounded
// loads: every (key, broker) pair gets a weight, a hash of both; pairs
// are taken by descending weight and each key goes to the first broker of
// its pairs that still has room, within the key's balance group (the
// partitions of one topic; the shards of one coordinator). So each
// topic's partitions spread evenly (loads at most one apart) over the
// live brokers, and a broker joining or leaving moves few keys: mostly
// those it wins or held, plus a few the loads push along.

// Coordinators, the names of coordinator shard leases' families.
const (
	CoordinatorGroup = "group" // consumer groups
	CoordinatorTxn   = "txn"   // transactional IDs
)

// DefaultCoordinatorShards is how many shards each coordinator's IDs hash
// into, as Kafka's offsets.topic.num.partitions and
// transaction.state.log.num.partitions default to.
const DefaultCoordinatorShards = 50

// CoordinatorKey returns the lease of the shard coordinating id (a group
// ID or transactional ID) for coordinator, one of shards (> 0) shards:
// {meta.LeaseCoordinator, "<coordinator>/<shard>"}. The broker holding it
// is id's coordinator (FindCoordinator's answer).
func CoordinatorKey(coordinator, id string, shards int) meta.LeaseKey {
	h := fnv.New32a()
	_, _ = h.Write([]byte(id))
	return coordinatorShard(coordinator, int(h.Sum32()%uint32(shards)))
}

// CoordinatorKeys returns the leases of all shards of coordinator.
func CoordinatorKeys(coordinator string, shards int) []meta.LeaseKey {
	keys := make([]meta.LeaseKey, shards)
	for i := range keys {
		keys[i] = coordinatorShard(coordinator, i)
	}
	return keys
}

func coordinatorShard(coordinator string, shard int) meta.LeaseKey {
	return meta.LeaseKey{Kind: meta.LeaseCoordinator, Key: coordinator + "/" + strconv.Itoa(shard)}
}

// Assign returns, for each of keys, the broker among brokers that should
// hold it; with no brokers, an empty map. The answer depends only on the
// sets keys and brokers, not on their order or duplicates.
func Assign(keys []meta.LeaseKey, brokers []int32) map[meta.LeaseKey]int32 {
	out := make(map[meta.LeaseKey]int32, len(keys))
	brokers = slices.Clone(brokers)
	slices.Sort(brokers)
	brokers = slices.Compact(brokers)
	if len(brokers) == 0 {
		return out
	}
	groups := make(map[string][]meta.LeaseKey)
	for _, k := range keys {
		g := balanceGroup(k)
		groups[g] = append(groups[g], k)
	}
	for _, group := range groups {
		assignGroup(group, brokers, out)
	}
	return out
}

// assignGroup places one balance group's keys on brokers (sorted, no
// duplicates) into out: every (key, broker) pair by descending weight,
// each key to the first broker of its pairs that has room (groupRoom), so
// loads differ by at most one. Going by weight rather than by key keeps each key on its
// top-ranked brokers as far as the loads allow, so a change of brokers
// moves little beyond the keys the change must move.
func assignGroup(keys []meta.LeaseKey, brokers []int32, out map[meta.LeaseKey]int32) {
	slices.SortFunc(keys, compareKeys)
	keys = slices.Compact(keys)
	type pair struct {
		w   uint64
		key int // index into keys
		b   int // index into brokers
	}
	pairs := make([]pair, 0, len(keys)*len(brokers))
	for i, k := range keys {
		kh := keyHash(k)
		for j, b := range brokers {
			pairs = append(pairs, pair{weight(kh, b), i, j})
		}
	}
	slices.SortFunc(pairs, func(a, b pair) int {
		return cmp.Or(cmp.Compare(b.w, a.w), cmp.Compare(a.key, b.key), cmp.Compare(a.b, b.b))
	})
	room := groupRoom(keys[0], len(keys), brokers)
	done := make([]bool, len(keys))
	left := len(keys)
	for _, p := range pairs {
		if left == 0 {
			break
		}
		if done[p.key] {
			continue
		}
		if room[p.b] == 0 {
			continue
		}
		room[p.b]--
		done[p.key] = true
		left--
		out[keys[p.key]] = brokers[p.b]
	}
}

// balanceGroup names the group within which Assign evens out loads: the
// key's kind and its key up to the last '/' (a partition's topic ID, a
// coordinator's name).
func balanceGroup(k meta.LeaseKey) string {
	prefix := k.Key
	if i := strings.LastIndexByte(prefix, '/'); i >= 0 {
		prefix = prefix[:i]
	}
	return k.Kind + "\x00" + prefix
}

func compareKeys(a, b meta.LeaseKey) int {
	return cmp.Or(cmp.Compare(a.Kind, b.Kind), cmp.Compare(a.Key, b.Key))
}

// groupRoom returns how many of a balance group's n keys each of
// brokers takes: n/len(brokers) each, and one more for the n%len(brokers)
// brokers ranked highest by the group's own rendezvous weight (key is any
// key of the group), so which brokers take one more also changes little
// when brokers come and go.
func groupRoom(key meta.LeaseKey, n int, brokers []int32) []int {
	room := make([]int, len(brokers))
	order := make([]int, len(brokers))
	gh := fnv.New64a()
	_, _ = gh.Write([]byte(balanceGroup(key)))
	h := gh.Sum64()
	for i := range brokers {
		room[i], order[i] = n/len(brokers), i
	}
	slices.SortFunc(order, func(a, b int) int {
		return cmp.Or(cmp.Compare(weight(h, brokers[b]), weight(h, brokers[a])), cmp.Compare(a, b))
	})
	for _, i := range order[:n%len(brokers)] {
		room[i]++
	}
	return room
}

// keyHash is the hash of a key that weight mixes with a broker ID.
// Never change: brokers of different versions must agree on placement.
func keyHash(key meta.LeaseKey) uint64 {
	h := fnv.New64a()
	_, _ = h.Write([]byte(key.Kind))
	_, _ = h.Write([]byte{0})
	_, _ = h.Write([]byte(key.Key))
	return h.Sum64()
}

// weight is broker's rendezvous weight for a key hashing to kh: the
// SplitMix64 finalizer of the two mixed, so every broker's ranking of keys
// is an independent-looking permutation. Never change: brokers of
// different versions must agree on placement.
func weight(kh uint64, broker int32) uint64 {
	z := kh ^ (uint64(uint32(broker)) * 0x9e3779b97f4a7c15)
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}
