package log

import (
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// segment is one segment of a partition log. A segment is active (the
// last one, taking appends), sealed (index and footer written, waiting for
// upload) or remote (in the object store and meta, local copy gone).
type segment struct {
	base int64  // offset of its first batch; never changes
	key  string // object key; never changes
	path string // local file path; never changes

	// The fields below are guarded by the owning Partition's mu.
	next    int64        // offset after its last batch
	size    int64        // bytes of the batch region
	maxTs   int64        // largest batch MaxTimestamp, -1 when none
	records int64        // records in it
	index   *sparseIndex // nil once remote
	sealed  bool
	remote  bool
	created time.Time // when its first batch arrived (age-based roll)
	// compacted marks a remote segment written by compaction (its key is
	// a compactedObjectKey); replaced, one compaction has swapped out.
	compacted bool
	replaced  bool
	// txn is the segment's transaction section: for the active segment
	// the aborted list so far (the open list is the partition's), once
	// sealed the whole section. nil for a remote segment not yet read
	// (AbortedTxns then reads it from the object's tail) and for a local
	// one before the producer state is rebuilt.
	txn *segTxn

	// file is guarded by the owning Partition's fileMu; nil once the local
	// copy is gone (or for a segment known only from meta).
	file file
}

// segmentFileName is the local file name of the segment starting at base.
func segmentFileName(base int64) string { return fmt.Sprintf("%020d.log", base) }

// ObjectKey is the stable object-store key of a sealed segment.
func ObjectKey(topicID string, partition int32, base int64) string {
	return fmt.Sprintf("topics/%s/%d/%020d.seg", topicID, partition, base)
}

// objectPrefix is the object-store prefix holding one partition's segments.
func objectPrefix(topicID string, partition int32) string {
	return fmt.Sprintf("topics/%s/%d/", topicID, partition)
}

// createSegmentFile creates an empty segment file and makes its directory
// entry durable, so that a crash never loses a file that took appends.
func createSegmentFile(fsys fileSystem, dir string, base int64) (file, string, error) {
	path := filepath.Join(dir, segmentFileName(base))
	f, err := fsys.OpenFile(path, os.O_CREATE|os.O_RDWR|os.O_EXCL, 0o644)
	if err != nil {
		return nil, "", fmt.Errorf("log: create segment %s: %w", path, err)
	}
	if err := syncDir(fsys, dir); err != nil {
		f.Close()
		fsys.Remove(path) //nolint:errcheck // best effort: the error above is what matters
		return nil, "", err
	}
	return f, path, nil
}
