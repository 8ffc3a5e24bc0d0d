package groups

import "github.com/streamhouse/streamhouse/meta"

// Topics is the broker's topics as KIP-848 consumer groups see them: the
// lookups that resolve subscriptions and translate topic IDs. Package
// kafka builds one per change of the topic list and shares it; nobody
// modifies one once built, and the coordinator takes the same pointer as
// "topics unchanged" (it then skips re-resolving subscriptions).
type Topics struct {
	// ByID maps a topic's 16-byte ID to the topic.
	ByID map[[16]byte]meta.Topic
	// IDs maps a topic name to its ID.
	IDs map[string][16]byte
	// Counts maps a topic name to its partition count.
	Counts map[string]int32
}
