package kafka

// The slow-request log: with Config.SlowRequestThreshold set, a request
// whose service time exceeds it is logged at Warn ("slow kafka request")
// with its API, version, client ID, correlation ID, the client's address,
// its duration and, for requests that name topics, up to slowLogTopics
// topic names (topics) and their total count (topic_count).
//
// Service time is the time from the frame read to the response encoded,
// minus the time the request legitimately waited: a Fetch's long poll for
// data (up to MaxWaitMillis) and a JoinGroup's or SyncGroup's wait for the
// rebalance. An idle consumer's fetches are therefore never "slow"; a fetch
// that spent long reading segments is. The logged duration is the whole
// time and waited the part that was excluded.

import (
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/streamhouse/streamhouse/meta"
)

// slowLogTopics caps the topic names in one slow-request line.
const slowLogTopics = 5

// logSlow logs req if its service time (d minus its waits) exceeds the
// threshold.
func (c *conn) logSlow(req *request, d time.Duration) {
	t := c.s.cfg.SlowRequestThreshold
	if t <= 0 || d-req.waited <= t {
		return
	}
	clientID := ""
	if req.clientID != nil {
		clientID = *req.clientID
	}
	var byID map[[16]byte]meta.Topic // built on the first topic ID
	topics, n := requestTopics(req.body, func(id [16]byte) string {
		if byID == nil {
			byID = c.s.topicsByID()
		}
		return byID[id].Name
	})
	attrs := []any{"api", kmsg.NameForKey(req.key), "version", req.version,
		"client_id", clientID, "correlation_id", req.correlationID, "remote", c.remote}
	if n > 0 {
		attrs = append(attrs, "topics", topics, "topic_count", n)
	}
	attrs = append(attrs, "duration", d, "waited", req.waited, "threshold", t)
	c.s.logger.Warn("slow kafka request", attrs...)
}

// requestTopics returns up to slowLogTopics topic names a request names
// and how many topics it names in all. Topics given by ID are resolved
// with byID.
func requestTopics(body kmsg.Request, byID func([16]byte) string) ([]string, int) {
	var names []string
	n := 0
	add := func(name string) {
		if len(names) < slowLogTopics {
			names = append(names, name)
		}
		n++
	}
	addID := func(name string, id [16]byte) {
		if name == "" && id != [16]byte{} && len(names) < slowLogTopics {
			name = byID(id)
		}
		add(name)
	}
	switch r := body.(type) {
	case *kmsg.ProduceRequest:
		for i := range r.Topics {
			addID(r.Topics[i].Topic, r.Topics[i].TopicID)
		}
	case *kmsg.FetchRequest:
		for i := range r.Topics {
			addID(r.Topics[i].Topic, r.Topics[i].TopicID)
		}
	case *kmsg.ListOffsetsRequest:
		for i := range r.Topics {
			add(r.Topics[i].Topic)
		}
	case *kmsg.MetadataRequest:
		for i := range r.Topics {
			if r.Topics[i].Topic != nil {
				add(*r.Topics[i].Topic)
			}
		}
	case *kmsg.OffsetCommitRequest:
		for i := range r.Topics {
			add(r.Topics[i].Topic)
		}
	case *kmsg.OffsetFetchRequest:
		for i := range r.Topics {
			add(r.Topics[i].Topic)
		}
		for i := range r.Groups {
			for j := range r.Groups[i].Topics {
				add(r.Groups[i].Topics[j].Topic)
			}
		}
	case *kmsg.CreateTopicsRequest:
		for i := range r.Topics {
			add(r.Topics[i].Topic)
		}
	case *kmsg.DeleteTopicsRequest:
		for _, t := range r.TopicNames {
			add(t)
		}
		for i := range r.Topics {
			if r.Topics[i].Topic != nil {
				add(*r.Topics[i].Topic)
			}
		}
	case *kmsg.DeleteRecordsRequest:
		for i := range r.Topics {
			add(r.Topics[i].Topic)
		}
	case *kmsg.CreatePartitionsRequest:
		for i := range r.Topics {
			add(r.Topics[i].Topic)
		}
	case *kmsg.OffsetForLeaderEpochRequest:
		for i := range r.Topics {
			add(r.Topics[i].Topic)
		}
	case *kmsg.OffsetDeleteRequest:
		for i := range r.Topics {
			add(r.Topics[i].Topic)
		}
	}
	return names, n
}
