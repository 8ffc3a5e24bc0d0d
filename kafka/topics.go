package kafka

import (
	"encoding/hex"
	"strings"

	"github.com/twmb/franz-go/pkg/kerr"

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
// versions that address topics by ID. Produce and Fetch ask on every
// request, so the map is built once per log.Manager.TopicsGeneration and
// shared: callers must not modify it.
func (s *Server) topicsByID() map[[16]byte]meta.Topic {
	if c := s.topicIDs.Load(); c != nil && c.gen == s.cfg.Log.TopicsGeneration() {
		return c.byID
	}
	gen := s.cfg.Log.TopicsGeneration() // read before Topics: never newer than the map
	ts := s.cfg.Log.Topics()
	m := make(map[[16]byte]meta.Topic, len(ts))
	for _, t := range ts {
		m[topicIDBytes(t.ID)] = t
	}
	s.topicIDs.Store(&topicIDCache{gen: gen, byID: m})
	return m
}

// topicIDCache is topicsByID's map as of one topics generation.
type topicIDCache struct {
	gen  uint64
	byID map[[16]byte]meta.Topic
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
