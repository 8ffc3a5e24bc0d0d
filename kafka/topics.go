package kafka

import (
	"encoding/hex"
	"strings"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/streamhouse/streamhouse/kafka/groups"
	"github.com/streamhouse/streamhouse/meta"
)

// topicIDBytes converts a topic's UUID text (meta.Topic.ID) to Kafka's 16
// bytes; a malformed ID gives the zero UUID.
func topicIDBytes(id string) [16]byte {
	var out [16]byte
	h := strings.ReplaceAll(id, "-", "")
	if len(h) != 32 {
		return out
	}
	if _, err := hex.Decode(out[:], []byte(h)); err != nil {
		return [16]byte{}
	}
	return out
}

// topicsByID maps every topic's 16-byte ID to its name, for the request
// versions that address topics by ID. Callers must not modify it.
func (s *Server) topicsByID() map[[16]byte]meta.Topic { return s.topicSnapshot().byID }

// topicSnapshot returns the broker's topics and their lookups. Produce and
// Fetch (by ID) and every KIP-848 heartbeat ask, so it is built once per
// log.Manager.TopicsGeneration and shared: callers must not modify it.
func (s *Server) topicSnapshot() *topicSnapshot {
	if c := s.topicIDs.Load(); c != nil && c.gen == s.cfg.Log.TopicsGeneration() {
		return c
	}
	gen := s.cfg.Log.TopicsGeneration() // read before Topics: never newer than the snapshot
	c := newTopicSnapshot(gen, s.cfg.Log.Topics())
	s.topicIDs.Store(c)
	return c
}

// topicSnapshot is the broker's topics as of one topics generation, with
// lookups by ID and by name. It is never modified once built.
type topicSnapshot struct {
	gen  uint64
	list []meta.Topic
	byID map[[16]byte]meta.Topic
	// groups is the same topics as KIP-848 consumer groups take them
	// (sharing byID); one per snapshot, as the coordinator expects.
	groups *groups.Topics
}

func newTopicSnapshot(gen uint64, list []meta.Topic) *topicSnapshot {
	c := &topicSnapshot{gen: gen, list: list, byID: make(map[[16]byte]meta.Topic, len(list))}
	ids, counts := make(map[string][16]byte, len(list)), make(map[string]int32, len(list))
	for _, t := range list {
		id := topicIDBytes(t.ID)
		c.byID[id], ids[t.Name], counts[t.Name] = t, id, t.PartitionCount
	}
	c.groups = &groups.Topics{ByID: c.byID, IDs: ids, Counts: counts}
	return c
}

// leaderEpoch is every partition's leader epoch: one broker, never a new
// leader.
const leaderEpoch = 0

// epochCode checks a request's CurrentLeaderEpoch (KIP-320): -1 means the
// client does not know it; anything else must be ours.
func epochCode(current int32) int16 {
	switch {
	case current == -1 || current == leaderEpoch:
		return 0
	case current < leaderEpoch:
		return kerr.FencedLeaderEpoch.Code
	default:
		return kerr.UnknownLeaderEpoch.Code
	}
}
