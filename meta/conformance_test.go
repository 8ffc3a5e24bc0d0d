package meta

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"path/filepath"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/streamhouse/streamhouse/meta/pgtest"
)

// This file is the backend-neutral conformance suite. TestConformance runs
// every case against every backend, as subtests named
// TestConformance/<backend>/<case>, e.g.
//
//	go test ./meta -run 'TestConformance/Postgres/DeleteTopic'
//
// A backend's open must return a fresh, empty store and register its Close
// with t.Cleanup. The suite uses only the Store interface and the sentinel
// errors, and compares times with Equal (backends may pick any location),
// so it holds every backend to exactly the contract in meta.go.

// conformanceBackends lists every Store backend with the opener the suite
// runs it through.
var conformanceBackends = []struct {
	name string
	open func(t *testing.T) Store
	// database, when set, makes a fresh database and returns a function
	// that opens a new store on it at each call (the caller closes it):
	// for the cases about reopening and about several stores sharing one
	// database. Nil for backends without such sharing (":memory:").
	database func(t *testing.T) func(ctx context.Context) (Store, error)
}{
	{"SQLite", func(t *testing.T) Store {
		return openTestSQLite(t, filepath.Join(t.TempDir(), "meta.db"))
	}, func(t *testing.T) func(ctx context.Context) (Store, error) {
		path := filepath.Join(t.TempDir(), "meta.db")
		return func(ctx context.Context) (Store, error) { return OpenSQLite(ctx, path) }
	}},
	{"SQLiteMemory", func(t *testing.T) Store { return openTestSQLite(t, ":memory:") }, nil},
	// A fresh database on one PostgreSQL server shared by the test
	// binary; skipped (or failed under CI) without PostgreSQL, see pgtest.
	{"Postgres", func(t *testing.T) Store { return openTestPostgres(t) },
		func(t *testing.T) func(ctx context.Context) (Store, error) {
			url := pgtest.DB(t)
			return func(ctx context.Context) (Store, error) { return OpenPostgres(ctx, url) }
		}},
}

// TestConformance runs the shared suite against every backend.
func TestConformance(t *testing.T) {
	for _, b := range conformanceBackends {
		t.Run(b.name, func(t *testing.T) {
			runConformance(t, b.open)
			t.Run("ClusterID", func(t *testing.T) { testClusterID(t, b.open, b.database) })
		})
	}
}

// runConformance runs the shared Store suite against the backend open makes.
func runConformance(t *testing.T, open func(t *testing.T) Store) {
	for _, c := range []struct {
		name string
		run  func(t *testing.T, open func(t *testing.T) Store)
	}{
		{"CreateTopic", testCreateTopic},
		{"GetTopic", testGetTopic},
		{"ListTopics", testListTopics},
		{"DeleteTopic", testDeleteTopic},
		{"DeletedTopics", testDeletedTopics},
		{"SetTopicConfigs", testSetTopicConfigs},
		{"AddPartitions", testAddPartitions},
		{"GetPartition", testGetPartition},
		{"SetLogStartOffset", testSetLogStartOffset},
		{"AddSegment", testAddSegment},
		{"ListSegments", testListSegments},
		{"DeleteSegments", testDeleteSegments},
		{"ReplaceSegments", testReplaceSegments},
		{"ReplaceSegmentsRacesDelete", testReplaceSegmentsRacesDelete},
		{"CommitOffsets", testCommitOffsets},
		{"FetchOffsets", testFetchOffsets},
		{"ListGroups", testListGroups},
		{"DeleteGroup", testDeleteGroup},
		{"DeleteOffsets", testDeleteOffsets},
		{"AllocateProducerID", testAllocateProducerID},
		{"TxnState", testTxnState},
		{"PutGetListTxns", testPutGetListTxns},
		{"DeleteTxn", testDeleteTxn},
		{"AddTxnOffsets", testAddTxnOffsets},
		{"PendingTxnOffsets", testPendingTxnOffsets},
		{"CompleteTxn", testCompleteTxn},
		{"TxnOffsetsFollowDeletes", testTxnOffsetsFollowDeletes},
		{"ScramCredentials", testScramCredentials},
		{"Acls", testAcls},
	} {
		t.Run(c.name, func(t *testing.T) { c.run(t, open) })
	}
}

// t0 is a fixed, millisecond-precise time every backend stores exactly.
var t0 = time.UnixMilli(1_700_000_000_123).UTC()

// wantErr fails t unless errors.Is(err, target); target nil means no error.
func wantErr(t *testing.T, err, target error) {
	t.Helper()
	if target == nil {
		if err != nil {
			t.Fatalf("unexpected error: %v", err)
		}
		return
	}
	if !errors.Is(err, target) {
		t.Fatalf("error = %v, want %v", err, target)
	}
}

// wantEqual fails t unless got and want are deeply equal.
func wantEqual(t *testing.T, what string, got, want any) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("%s:\n got  %+v\n want %+v", what, got, want)
	}
}

// normTopic puts times in UTC so DeepEqual compares instants only.
func normTopic(tp Topic) Topic {
	tp.CreatedAt = tp.CreatedAt.UTC()
	return tp
}

func normTopics(ts []Topic) []Topic {
	out := make([]Topic, len(ts))
	for i, tp := range ts {
		out[i] = normTopic(tp)
	}
	return out
}

func normSegments(ss []Segment) []Segment {
	out := make([]Segment, len(ss))
	for i, s := range ss {
		s.CreatedAt = s.CreatedAt.UTC()
		out[i] = s
	}
	return out
}

func normOffsets(os []CommittedOffset) []CommittedOffset {
	out := make([]CommittedOffset, len(os))
	for i, o := range os {
		o.CommitTime = o.CommitTime.UTC()
		out[i] = o
	}
	return out
}

// mustCreate creates a topic or fails the test.
func mustCreate(t *testing.T, s Store, tp Topic) Topic {
	t.Helper()
	got, err := s.CreateTopic(t.Context(), tp)
	if err != nil {
		t.Fatalf("CreateTopic(%q): %v", tp.Name, err)
	}
	return got
}

// seg builds a segment of p starting at base with a distinct object key.
func seg(topicID string, p int32, base int64) Segment {
	return Segment{
		TopicID: topicID, Partition: p, BaseOffset: base, LastOffset: base + 9,
		MaxTimestamp: 1_700_000_000_000 + base, ObjectKey: fmt.Sprintf("%s/%d/%020d.seg", topicID, p, base),
		Size: 4096, RecordCount: 10, CreatedAt: t0,
	}
}

// mustAddSegments records segs or fails the test.
func mustAddSegments(t *testing.T, s Store, segs ...Segment) {
	t.Helper()
	for _, sg := range segs {
		if err := s.AddSegment(t.Context(), sg); err != nil {
			t.Fatalf("AddSegment(%d@%d): %v", sg.Partition, sg.BaseOffset, err)
		}
	}
}

// off builds a committed offset at t0.
func off(group, topic string, p int32, offset int64) CommittedOffset {
	return CommittedOffset{Group: group, Topic: topic, Partition: p, Offset: offset,
		LeaderEpoch: -1, Metadata: "m", CommitTime: t0}
}

// mustCommit commits offsets or fails the test.
func mustCommit(t *testing.T, s Store, offsets ...CommittedOffset) {
	t.Helper()
	if err := s.CommitOffsets(t.Context(), offsets); err != nil {
		t.Fatalf("CommitOffsets: %v", err)
	}
}

// logStart returns the partition's log start offset or fails the test.
func logStart(t *testing.T, s Store, topicID string, p int32) int64 {
	t.Helper()
	got, err := s.GetPartition(t.Context(), topicID, p)
	if err != nil {
		t.Fatalf("GetPartition(%d): %v", p, err)
	}
	return got.LogStartOffset
}

func testCreateTopic(t *testing.T, open func(t *testing.T) Store) {
	t.Run("AssignsIDAndCreatedAt", func(t *testing.T) {
		s := open(t)
		before := time.Now().Truncate(time.Millisecond)
		got := mustCreate(t, s, Topic{Name: "orders", PartitionCount: 3})
		after := time.Now()
		if _, err := uuid.Parse(got.ID); err != nil {
			t.Fatalf("ID %q is not a UUID: %v", got.ID, err)
		}
		if got.CreatedAt.Before(before) || got.CreatedAt.After(after) {
			t.Fatalf("CreatedAt %v not in [%v, %v]", got.CreatedAt, before, after)
		}
		if got.Configs == nil || len(got.Configs) != 0 {
			t.Fatalf("Configs = %#v, want empty non-nil map", got.Configs)
		}
		stored, err := s.GetTopic(t.Context(), "orders")
		wantErr(t, err, nil)
		wantEqual(t, "stored topic", normTopic(stored), normTopic(got))
		other := mustCreate(t, s, Topic{Name: "other", PartitionCount: 1})
		if other.ID == got.ID {
			t.Fatalf("two topics share ID %s", got.ID)
		}
	})
	t.Run("KeepsGivenFields", func(t *testing.T) {
		s := open(t)
		cfg := map[string]string{"retention.ms": "60000", "cleanup.policy": "delete"}
		in := Topic{ID: uuid.NewString(), Name: "t", PartitionCount: 2, Configs: cfg, CreatedAt: t0}
		got := mustCreate(t, s, in)
		wantEqual(t, "returned topic", normTopic(got), in)
		cfg["retention.ms"] = "mutated after create"
		stored, err := s.GetTopicByID(t.Context(), in.ID)
		wantErr(t, err, nil)
		in.Configs = map[string]string{"retention.ms": "60000", "cleanup.policy": "delete"}
		wantEqual(t, "stored topic", normTopic(stored), in)
	})
	t.Run("CreatesPartitions", func(t *testing.T) {
		s := open(t)
		tp := mustCreate(t, s, Topic{Name: "t", PartitionCount: 4})
		for p := int32(0); p < 4; p++ {
			got, err := s.GetPartition(t.Context(), tp.ID, p)
			wantErr(t, err, nil)
			wantEqual(t, "partition", got, Partition{TopicID: tp.ID, Partition: p})
		}
		_, err := s.GetPartition(t.Context(), tp.ID, 4)
		wantErr(t, err, ErrPartitionRange)
	})
	t.Run("Invalid", func(t *testing.T) { testCreateTopicInvalid(t, open(t)) })
	testCreateTopicConflicts(t, open)
}

// testCreateTopicConflicts covers creates that collide with an existing
// topic, one after another and concurrently.
func testCreateTopicConflicts(t *testing.T, open func(t *testing.T) Store) {
	t.Run("DuplicateName", func(t *testing.T) {
		s := open(t)
		first := mustCreate(t, s, Topic{Name: "t", PartitionCount: 1})
		_, err := s.CreateTopic(t.Context(), Topic{Name: "t", PartitionCount: 5})
		wantErr(t, err, ErrTopicExists)
		stored, err := s.GetTopic(t.Context(), "t")
		wantErr(t, err, nil)
		wantEqual(t, "topic after duplicate", normTopic(stored), normTopic(first))
	})
	t.Run("DuplicateID", func(t *testing.T) {
		s := open(t)
		first := mustCreate(t, s, Topic{Name: "a", PartitionCount: 1})
		_, err := s.CreateTopic(t.Context(), Topic{ID: first.ID, Name: "b", PartitionCount: 1})
		wantErr(t, err, ErrTopicExists)
		_, err = s.GetTopic(t.Context(), "b")
		wantErr(t, err, ErrTopicNotFound)
	})
	t.Run("ConcurrentSameName", func(t *testing.T) {
		s := open(t)
		const n = 8
		errs := make([]error, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				_, errs[i] = s.CreateTopic(context.Background(), Topic{Name: "race", PartitionCount: 2})
			})
		}
		wg.Wait()
		won := 0
		for _, err := range errs {
			switch {
			case err == nil:
				won++
			case !errors.Is(err, ErrTopicExists):
				t.Fatalf("unexpected error: %v", err)
			}
		}
		if won != 1 {
			t.Fatalf("%d creates succeeded, want 1", won)
		}
	})
}

func testCreateTopicInvalid(t *testing.T, s Store) {
	for _, c := range []struct {
		name  string
		topic Topic
	}{
		{"EmptyName", Topic{Name: "", PartitionCount: 1}},
		{"ZeroPartitions", Topic{Name: "t", PartitionCount: 0}},
		{"NegativePartitions", Topic{Name: "t", PartitionCount: -1}},
		{"MalformedID", Topic{ID: "not-a-uuid", Name: "t", PartitionCount: 1}},
		{"NilUUID", Topic{ID: uuid.Nil.String(), Name: "t", PartitionCount: 1}},
		{"EmptyConfigKey", Topic{Name: "t", PartitionCount: 1, Configs: map[string]string{"": "x"}}},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := s.CreateTopic(t.Context(), c.topic)
			wantErr(t, err, ErrInvalid)
		})
	}
	topics, err := s.ListTopics(t.Context())
	wantErr(t, err, nil)
	if len(topics) != 0 {
		t.Fatalf("invalid creates left topics behind: %+v", topics)
	}
}

func testGetTopic(t *testing.T, open func(t *testing.T) Store) {
	s := open(t)
	want := mustCreate(t, s, Topic{Name: "t", PartitionCount: 2, Configs: map[string]string{"k": "v"}})
	t.Run("ByName", func(t *testing.T) {
		got, err := s.GetTopic(t.Context(), "t")
		wantErr(t, err, nil)
		wantEqual(t, "topic", normTopic(got), normTopic(want))
	})
	t.Run("ByID", func(t *testing.T) {
		got, err := s.GetTopicByID(t.Context(), want.ID)
		wantErr(t, err, nil)
		wantEqual(t, "topic", normTopic(got), normTopic(want))
	})
	t.Run("MissingName", func(t *testing.T) {
		_, err := s.GetTopic(t.Context(), "nope")
		wantErr(t, err, ErrTopicNotFound)
	})
	t.Run("MissingID", func(t *testing.T) {
		_, err := s.GetTopicByID(t.Context(), uuid.NewString())
		wantErr(t, err, ErrTopicNotFound)
	})
}

func testListTopics(t *testing.T, open func(t *testing.T) Store) {
	s := open(t)
	t.Run("Empty", func(t *testing.T) {
		got, err := s.ListTopics(t.Context())
		wantErr(t, err, nil)
		if len(got) != 0 {
			t.Fatalf("ListTopics = %+v, want none", got)
		}
	})
	t.Run("SortedByName", func(t *testing.T) {
		c := mustCreate(t, s, Topic{Name: "c", PartitionCount: 1})
		a := mustCreate(t, s, Topic{Name: "a", PartitionCount: 2, Configs: map[string]string{"x": "1"}})
		b := mustCreate(t, s, Topic{Name: "b", PartitionCount: 3})
		got, err := s.ListTopics(t.Context())
		wantErr(t, err, nil)
		wantEqual(t, "topics", normTopics(got), normTopics([]Topic{a, b, c}))
	})
}

func testDeleteTopic(t *testing.T, open func(t *testing.T) Store) {
	t.Run("RemovesEverything", func(t *testing.T) { testDeleteTopicRemoves(t, open(t)) })
	t.Run("Missing", func(t *testing.T) {
		s := open(t)
		_, _, err := s.DeleteTopic(t.Context(), "nope")
		wantErr(t, err, ErrTopicNotFound)
	})
	t.Run("Twice", func(t *testing.T) {
		s := open(t)
		mustCreate(t, s, Topic{Name: "t", PartitionCount: 1})
		_, _, err := s.DeleteTopic(t.Context(), "t")
		wantErr(t, err, nil)
		_, _, err = s.DeleteTopic(t.Context(), "t")
		wantErr(t, err, ErrTopicNotFound)
	})
}

func testDeleteTopicRemoves(t *testing.T, s Store) {
	ctx := t.Context()
	doomed := mustCreate(t, s, Topic{Name: "doomed", PartitionCount: 2, Configs: map[string]string{"k": "v"}})
	keep := mustCreate(t, s, Topic{Name: "keep", PartitionCount: 1})
	mustAddSegments(t, s, seg(doomed.ID, 1, 10), seg(doomed.ID, 0, 100), seg(doomed.ID, 0, 0), seg(keep.ID, 0, 0))
	mustCommit(t, s, off("g1", "doomed", 0, 5), off("g1", "keep", 0, 7))
	mustCommit(t, s, off("g2", "doomed", 1, 3))

	gotTopic, gotSegs, err := s.DeleteTopic(ctx, "doomed")
	wantErr(t, err, nil)
	wantEqual(t, "deleted topic", normTopic(gotTopic), normTopic(doomed))
	wantEqual(t, "deleted segments", normSegments(gotSegs),
		[]Segment{seg(doomed.ID, 0, 0), seg(doomed.ID, 0, 100), seg(doomed.ID, 1, 10)})

	_, err = s.GetTopic(ctx, "doomed")
	wantErr(t, err, ErrTopicNotFound)
	_, err = s.GetTopicByID(ctx, doomed.ID)
	wantErr(t, err, ErrTopicNotFound)
	_, err = s.GetPartition(ctx, doomed.ID, 0)
	wantErr(t, err, ErrTopicNotFound)
	_, err = s.ListSegments(ctx, doomed.ID, 0)
	wantErr(t, err, ErrTopicNotFound)

	g1, err := s.FetchOffsets(ctx, "g1")
	wantErr(t, err, nil)
	wantEqual(t, "g1 offsets", normOffsets(g1), []CommittedOffset{off("g1", "keep", 0, 7)})
	groups, err := s.ListGroups(ctx)
	wantErr(t, err, nil)
	wantEqual(t, "groups", groups, []string{"g1"})
	keepSegs, err := s.ListSegments(ctx, keep.ID, 0)
	wantErr(t, err, nil)
	wantEqual(t, "other topic's segments", normSegments(keepSegs), []Segment{seg(keep.ID, 0, 0)})

	again := mustCreate(t, s, Topic{Name: "doomed", PartitionCount: 1})
	if again.ID == doomed.ID {
		t.Fatalf("re-created topic reused ID %s", again.ID)
	}
	segs, err := s.ListSegments(ctx, again.ID, 0)
	wantErr(t, err, nil)
	if len(segs) != 0 {
		t.Fatalf("re-created topic has segments %+v", segs)
	}
	if _, found, err := s.FetchOffset(ctx, "g1", "doomed", 0); err != nil || found {
		t.Fatalf("re-created topic has offsets: found=%v err=%v", found, err)
	}
}

// deletedEntry is the Topic that DeletedTopics lists for tp: only ID, Name
// and PartitionCount are set.
func deletedEntry(tp Topic) Topic {
	return Topic{ID: tp.ID, Name: tp.Name, PartitionCount: tp.PartitionCount}
}

// mustDelete deletes the named topic or fails the test.
func mustDelete(t *testing.T, s Store, name string) Topic {
	t.Helper()
	tp, _, err := s.DeleteTopic(t.Context(), name)
	if err != nil {
		t.Fatalf("DeleteTopic(%q): %v", name, err)
	}
	return tp
}

// wantDeleted fails t unless DeletedTopics lists exactly want, in order.
func wantDeleted(t *testing.T, s Store, want ...Topic) {
	t.Helper()
	got, err := s.DeletedTopics(t.Context())
	wantErr(t, err, nil)
	if len(got) == 0 && len(want) == 0 {
		return // nil and empty both mean none
	}
	wantEqual(t, "deleted topics", got, want)
}

// testDeletedTopics covers the deleted-topics list that DeleteTopic fills
// and ForgetDeletedTopic drains.
func testDeletedTopics(t *testing.T, open func(t *testing.T) Store) {
	// IDs chosen so that ID order differs from creation order.
	const idLow, idHigh = "00000000-0000-4000-8000-000000000001", "ffffffff-ffff-4fff-bfff-ffffffffffff"
	for _, c := range []struct {
		name string
		run  func(t *testing.T, s Store)
	}{
		{"EmptyStore", func(t *testing.T, s Store) { wantDeleted(t, s) }},
		{"RecordedWithDeletion", func(t *testing.T, s Store) {
			tp := mustCreate(t, s, Topic{Name: "t", PartitionCount: 2, Configs: map[string]string{"k": "v"}})
			mustAddSegments(t, s, seg(tp.ID, 0, 0))
			mustCommit(t, s, off("g", "t", 0, 5))
			wantErr(t, s.AddPartitions(t.Context(), "t", 3), nil)
			wantDeleted(t, s)
			mustDelete(t, s, "t")
			_, err := s.GetTopicByID(t.Context(), tp.ID)
			wantErr(t, err, ErrTopicNotFound)
			// The count at deletion, partitions added later included.
			wantDeleted(t, s, Topic{ID: tp.ID, Name: "t", PartitionCount: 3})
		}},
		{"FailedDeleteRecordsNothing", func(t *testing.T, s Store) {
			keep := mustCreate(t, s, Topic{Name: "keep", PartitionCount: 1})
			_, _, err := s.DeleteTopic(t.Context(), "nope")
			wantErr(t, err, ErrTopicNotFound)
			wantDeleted(t, s)
			mustDelete(t, s, "keep")
			_, _, err = s.DeleteTopic(t.Context(), "keep")
			wantErr(t, err, ErrTopicNotFound)
			wantDeleted(t, s, deletedEntry(keep))
		}},
		{"SortedByNameThenID", func(t *testing.T, s Store) {
			b := mustCreate(t, s, Topic{Name: "b", PartitionCount: 1})
			mustDelete(t, s, "b")
			aHigh := mustCreate(t, s, Topic{ID: idHigh, Name: "a", PartitionCount: 2})
			mustDelete(t, s, "a")
			aLow := mustCreate(t, s, Topic{ID: idLow, Name: "a", PartitionCount: 4})
			mustDelete(t, s, "a")
			wantDeleted(t, s, deletedEntry(aLow), deletedEntry(aHigh), deletedEntry(b))
		}},
		{"ForgetRemovesAndIsIdempotent", func(t *testing.T, s Store) {
			a := mustCreate(t, s, Topic{Name: "a", PartitionCount: 1})
			b := mustCreate(t, s, Topic{Name: "b", PartitionCount: 1})
			mustDelete(t, s, "a")
			mustDelete(t, s, "b")
			wantErr(t, s.ForgetDeletedTopic(t.Context(), a.ID), nil)
			wantDeleted(t, s, deletedEntry(b))
			wantErr(t, s.ForgetDeletedTopic(t.Context(), a.ID), nil)
			wantErr(t, s.ForgetDeletedTopic(t.Context(), uuid.NewString()), nil)
			wantDeleted(t, s, deletedEntry(b))
			wantErr(t, s.ForgetDeletedTopic(t.Context(), b.ID), nil)
			wantDeleted(t, s)
		}},
		{"RecreateSameName", func(t *testing.T, s Store) {
			old := mustCreate(t, s, Topic{Name: "t", PartitionCount: 2})
			mustDelete(t, s, "t")
			again := mustCreate(t, s, Topic{Name: "t", PartitionCount: 1})
			if again.ID == old.ID {
				t.Fatalf("re-created topic reused ID %s", old.ID)
			}
			wantDeleted(t, s, deletedEntry(old))
			// Forgetting the old topic leaves the new one alone.
			wantErr(t, s.ForgetDeletedTopic(t.Context(), old.ID), nil)
			got, err := s.GetTopic(t.Context(), "t")
			wantErr(t, err, nil)
			wantEqual(t, "re-created topic", normTopic(got), normTopic(again))
			wantDeleted(t, s)
		}},
		{"DeletedIDStaysTaken", func(t *testing.T, s Store) {
			old := mustCreate(t, s, Topic{ID: idLow, Name: "t", PartitionCount: 1})
			mustDelete(t, s, "t")
			for _, name := range []string{"t", "other"} {
				_, err := s.CreateTopic(t.Context(), Topic{ID: idLow, Name: name, PartitionCount: 1})
				wantErr(t, err, ErrTopicExists)
			}
			topics, err := s.ListTopics(t.Context())
			wantErr(t, err, nil)
			if len(topics) != 0 {
				t.Fatalf("create under a deleted topic's ID left %+v", topics)
			}
			wantDeleted(t, s, deletedEntry(old))
		}},
	} {
		t.Run(c.name, func(t *testing.T) { c.run(t, open(t)) })
	}
}

func testSetTopicConfigs(t *testing.T, open func(t *testing.T) Store) {
	s := open(t)
	mustCreate(t, s, Topic{Name: "t", PartitionCount: 1, Configs: map[string]string{"a": "1", "b": "2"}})
	configs := func(t *testing.T) map[string]string {
		t.Helper()
		tp, err := s.GetTopic(t.Context(), "t")
		wantErr(t, err, nil)
		return tp.Configs
	}
	t.Run("Replaces", func(t *testing.T) {
		wantErr(t, s.SetTopicConfigs(t.Context(), "t", map[string]string{"b": "3", "c": "4"}), nil)
		wantEqual(t, "configs", configs(t), map[string]string{"b": "3", "c": "4"})
	})
	t.Run("EmptyKeyRejected", func(t *testing.T) {
		err := s.SetTopicConfigs(t.Context(), "t", map[string]string{"": "x", "d": "5"})
		wantErr(t, err, ErrInvalid)
		wantEqual(t, "configs", configs(t), map[string]string{"b": "3", "c": "4"})
	})
	t.Run("NilClears", func(t *testing.T) {
		wantErr(t, s.SetTopicConfigs(t.Context(), "t", nil), nil)
		wantEqual(t, "configs", configs(t), map[string]string{})
	})
	t.Run("MissingTopic", func(t *testing.T) {
		err := s.SetTopicConfigs(t.Context(), "nope", map[string]string{"a": "1"})
		wantErr(t, err, ErrTopicNotFound)
	})
}

func testAddPartitions(t *testing.T, open func(t *testing.T) Store) {
	s := open(t)
	tp := mustCreate(t, s, Topic{Name: "t", PartitionCount: 2})
	t.Run("Raises", func(t *testing.T) {
		wantErr(t, s.AddPartitions(t.Context(), "t", 5), nil)
		got, err := s.GetTopic(t.Context(), "t")
		wantErr(t, err, nil)
		if got.PartitionCount != 5 {
			t.Fatalf("PartitionCount = %d, want 5", got.PartitionCount)
		}
		for p := int32(0); p < 5; p++ {
			if ls := logStart(t, s, tp.ID, p); ls != 0 {
				t.Fatalf("partition %d log start = %d, want 0", p, ls)
			}
		}
		mustAddSegments(t, s, seg(tp.ID, 4, 0))
		_, err = s.GetPartition(t.Context(), tp.ID, 5)
		wantErr(t, err, ErrPartitionRange)
	})
	for _, c := range []struct {
		name  string
		topic string
		count int32
		want  error
	}{
		{"Same", "t", 5, ErrInvalid},
		{"Fewer", "t", 3, ErrInvalid},
		{"MissingTopic", "nope", 10, ErrTopicNotFound},
	} {
		t.Run(c.name, func(t *testing.T) {
			wantErr(t, s.AddPartitions(t.Context(), c.topic, c.count), c.want)
		})
	}
}

func testGetPartition(t *testing.T, open func(t *testing.T) Store) {
	s := open(t)
	tp := mustCreate(t, s, Topic{Name: "t", PartitionCount: 3})
	wantErr(t, s.SetLogStartOffset(t.Context(), tp.ID, 2, 42), nil)
	for _, c := range []struct {
		name      string
		topicID   string
		partition int32
		want      error
		wantLS    int64
	}{
		{"First", tp.ID, 0, nil, 0},
		{"Last", tp.ID, 2, nil, 42},
		{"Negative", tp.ID, -1, ErrPartitionRange, 0},
		{"PastEnd", tp.ID, 3, ErrPartitionRange, 0},
		{"MissingTopic", uuid.NewString(), 0, ErrTopicNotFound, 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := s.GetPartition(t.Context(), c.topicID, c.partition)
			wantErr(t, err, c.want)
			if c.want == nil {
				wantEqual(t, "partition", got,
					Partition{TopicID: c.topicID, Partition: c.partition, LogStartOffset: c.wantLS})
			}
		})
	}
}

func testSetLogStartOffset(t *testing.T, open func(t *testing.T) Store) {
	s := open(t)
	tp := mustCreate(t, s, Topic{Name: "t", PartitionCount: 2})
	t.Run("NeverBackwards", func(t *testing.T) {
		for _, step := range []struct{ set, want int64 }{{50, 50}, {30, 50}, {50, 50}, {80, 80}, {0, 80}} {
			wantErr(t, s.SetLogStartOffset(t.Context(), tp.ID, 0, step.set), nil)
			if got := logStart(t, s, tp.ID, 0); got != step.want {
				t.Fatalf("after set %d: log start = %d, want %d", step.set, got, step.want)
			}
		}
		if got := logStart(t, s, tp.ID, 1); got != 0 {
			t.Fatalf("other partition moved to %d", got)
		}
	})
	for _, c := range []struct {
		name      string
		topicID   string
		partition int32
		offset    int64
		want      error
	}{
		{"NegativeOffset", tp.ID, 0, -1, ErrInvalid},
		{"PartitionPastEnd", tp.ID, 2, 10, ErrPartitionRange},
		{"MissingTopic", uuid.NewString(), 0, 10, ErrTopicNotFound},
	} {
		t.Run(c.name, func(t *testing.T) {
			wantErr(t, s.SetLogStartOffset(t.Context(), c.topicID, c.partition, c.offset), c.want)
		})
	}
}

func testAddSegment(t *testing.T, open func(t *testing.T) Store) {
	s := open(t)
	tp := mustCreate(t, s, Topic{Name: "t", PartitionCount: 2})
	t.Run("RoundTrip", func(t *testing.T) {
		mustAddSegments(t, s, seg(tp.ID, 0, 0))
		got, err := s.ListSegments(t.Context(), tp.ID, 0)
		wantErr(t, err, nil)
		wantEqual(t, "segments", normSegments(got), []Segment{seg(tp.ID, 0, 0)})
	})
	t.Run("Duplicate", func(t *testing.T) {
		dup := seg(tp.ID, 0, 0)
		dup.ObjectKey, dup.LastOffset = "other-key", 99
		wantErr(t, s.AddSegment(t.Context(), dup), ErrSegmentExists)
		got, err := s.ListSegments(t.Context(), tp.ID, 0)
		wantErr(t, err, nil)
		wantEqual(t, "segments after duplicate", normSegments(got), []Segment{seg(tp.ID, 0, 0)})
	})
	t.Run("CreatedAtDefaulted", func(t *testing.T) {
		before := time.Now().Truncate(time.Millisecond)
		sg := seg(tp.ID, 1, 0)
		sg.CreatedAt = time.Time{}
		mustAddSegments(t, s, sg)
		got, err := s.ListSegments(t.Context(), tp.ID, 1)
		wantErr(t, err, nil)
		if len(got) != 1 || got[0].CreatedAt.Before(before) || got[0].CreatedAt.After(time.Now()) {
			t.Fatalf("segments = %+v, want one with CreatedAt >= %v", got, before)
		}
	})
	mod := func(f func(*Segment)) Segment { sg := seg(tp.ID, 0, 1000); f(&sg); return sg }
	for _, c := range []struct {
		name string
		seg  Segment
		want error
	}{
		{"NegativeBase", mod(func(sg *Segment) { sg.BaseOffset, sg.LastOffset = -1, 5 }), ErrInvalid},
		{"LastBeforeBase", mod(func(sg *Segment) { sg.LastOffset = sg.BaseOffset - 1 }), ErrInvalid},
		{"EmptyObjectKey", mod(func(sg *Segment) { sg.ObjectKey = "" }), ErrInvalid},
		{"NegativeSize", mod(func(sg *Segment) { sg.Size = -1 }), ErrInvalid},
		{"PartitionPastEnd", mod(func(sg *Segment) { sg.Partition = 2 }), ErrPartitionRange},
		{"NegativePartition", mod(func(sg *Segment) { sg.Partition = -1 }), ErrPartitionRange},
		{"MissingTopic", mod(func(sg *Segment) { sg.TopicID = uuid.NewString() }), ErrTopicNotFound},
	} {
		t.Run(c.name, func(t *testing.T) {
			wantErr(t, s.AddSegment(t.Context(), c.seg), c.want)
		})
	}
}

func testListSegments(t *testing.T, open func(t *testing.T) Store) {
	s := open(t)
	tp := mustCreate(t, s, Topic{Name: "t", PartitionCount: 3})
	mustAddSegments(t, s, seg(tp.ID, 0, 200), seg(tp.ID, 0, 0), seg(tp.ID, 1, 0), seg(tp.ID, 0, 100))
	for _, c := range []struct {
		name      string
		topicID   string
		partition int32
		want      []Segment
		wantErr   error
	}{
		{"SortedByBase", tp.ID, 0, []Segment{seg(tp.ID, 0, 0), seg(tp.ID, 0, 100), seg(tp.ID, 0, 200)}, nil},
		{"OnePartitionOnly", tp.ID, 1, []Segment{seg(tp.ID, 1, 0)}, nil},
		{"EmptyPartition", tp.ID, 2, []Segment{}, nil},
		{"PartitionPastEnd", tp.ID, 3, nil, ErrPartitionRange},
		{"MissingTopic", uuid.NewString(), 0, nil, ErrTopicNotFound},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := s.ListSegments(t.Context(), c.topicID, c.partition)
			wantErr(t, err, c.wantErr)
			if c.wantErr == nil {
				wantEqual(t, "segments", normSegments(got), c.want)
			}
		})
	}
}

func testDeleteSegments(t *testing.T, open func(t *testing.T) Store) {
	s := open(t)
	ctx := t.Context()
	tp := mustCreate(t, s, Topic{Name: "t", PartitionCount: 2})
	mustAddSegments(t, s, seg(tp.ID, 0, 0), seg(tp.ID, 0, 100), seg(tp.ID, 0, 200), seg(tp.ID, 1, 0))
	t.Run("DeletesAndRaisesLogStart", func(t *testing.T) {
		wantErr(t, s.DeleteSegments(ctx, tp.ID, 0, []int64{0, 100, 999}, 200), nil)
		got, err := s.ListSegments(ctx, tp.ID, 0)
		wantErr(t, err, nil)
		wantEqual(t, "remaining", normSegments(got), []Segment{seg(tp.ID, 0, 200)})
		if ls := logStart(t, s, tp.ID, 0); ls != 200 {
			t.Fatalf("log start = %d, want 200", ls)
		}
		other, err := s.ListSegments(ctx, tp.ID, 1)
		wantErr(t, err, nil)
		wantEqual(t, "other partition", normSegments(other), []Segment{seg(tp.ID, 1, 0)})
	})
	t.Run("LogStartNeverBackwards", func(t *testing.T) {
		wantErr(t, s.DeleteSegments(ctx, tp.ID, 0, nil, 150), nil)
		if ls := logStart(t, s, tp.ID, 0); ls != 200 {
			t.Fatalf("log start = %d, want 200", ls)
		}
	})
	for _, c := range []struct {
		name      string
		topicID   string
		partition int32
		logStart  int64
		want      error
	}{
		{"NegativeLogStart", tp.ID, 1, -1, ErrInvalid},
		{"PartitionPastEnd", tp.ID, 2, 10, ErrPartitionRange},
		{"MissingTopic", uuid.NewString(), 0, 10, ErrTopicNotFound},
	} {
		t.Run(c.name, func(t *testing.T) {
			wantErr(t, s.DeleteSegments(ctx, c.topicID, c.partition, []int64{0}, c.logStart), c.want)
			got, err := s.ListSegments(ctx, tp.ID, 1)
			wantErr(t, err, nil)
			wantEqual(t, "partition 1 untouched", normSegments(got), []Segment{seg(tp.ID, 1, 0)})
		})
	}
}

func testCommitOffsets(t *testing.T, open func(t *testing.T) Store) {
	s := open(t)
	ctx := t.Context()
	t.Run("InsertAndFetch", func(t *testing.T) {
		mustCommit(t, s, off("g", "t1", 1, 11), off("g", "t0", 3, 3), off("g", "t1", 0, 10))
		got, err := s.FetchOffsets(ctx, "g")
		wantErr(t, err, nil)
		wantEqual(t, "offsets", normOffsets(got),
			[]CommittedOffset{off("g", "t0", 3, 3), off("g", "t1", 0, 10), off("g", "t1", 1, 11)})
	})
	t.Run("Upserts", func(t *testing.T) {
		upd := CommittedOffset{Group: "g", Topic: "t1", Partition: 0, Offset: 20,
			LeaderEpoch: 4, Metadata: "new", CommitTime: t0.Add(time.Second)}
		mustCommit(t, s, upd)
		got, found, err := s.FetchOffset(ctx, "g", "t1", 0)
		wantErr(t, err, nil)
		if !found {
			t.Fatal("FetchOffset: not found")
		}
		wantEqual(t, "updated offset", normOffsets([]CommittedOffset{got}), []CommittedOffset{upd})
		all, err := s.FetchOffsets(ctx, "g")
		wantErr(t, err, nil)
		if len(all) != 3 {
			t.Fatalf("upsert changed the row count: %+v", all)
		}
	})
	t.Run("CommitTimeDefaulted", func(t *testing.T) {
		before := time.Now().Truncate(time.Millisecond)
		o := off("g", "t2", 0, 1)
		o.CommitTime = time.Time{}
		mustCommit(t, s, o)
		got, found, err := s.FetchOffset(ctx, "g", "t2", 0)
		if err != nil || !found || got.CommitTime.Before(before) || got.CommitTime.After(time.Now()) {
			t.Fatalf("FetchOffset = %+v, %v, %v; want CommitTime >= %v", got, found, err, before)
		}
	})
	t.Run("EmptyIsNoOp", func(t *testing.T) {
		wantErr(t, s.CommitOffsets(ctx, nil), nil)
		wantErr(t, s.CommitOffsets(ctx, []CommittedOffset{}), nil)
	})
	for _, c := range []struct {
		name string
		bad  CommittedOffset
	}{
		{"EmptyGroup", off("", "t", 0, 1)},
		{"EmptyTopic", off("h", "", 0, 1)},
		{"NegativePartition", off("h", "t", -1, 1)},
	} {
		t.Run("Invalid"+c.name, func(t *testing.T) {
			err := s.CommitOffsets(ctx, []CommittedOffset{off("h", "t", 0, 1), c.bad})
			wantErr(t, err, ErrInvalid)
			if _, found, err := s.FetchOffset(ctx, "h", "t", 0); err != nil || found {
				t.Fatalf("batch with an invalid entry was partly written: found=%v err=%v", found, err)
			}
		})
	}
}

func testFetchOffsets(t *testing.T, open func(t *testing.T) Store) {
	s := open(t)
	ctx := t.Context()
	mustCommit(t, s, off("g", "t", 0, 1), off("other", "t", 0, 2))
	t.Run("UnknownGroupEmpty", func(t *testing.T) {
		got, err := s.FetchOffsets(ctx, "nope")
		wantErr(t, err, nil)
		if len(got) != 0 {
			t.Fatalf("FetchOffsets = %+v, want empty", got)
		}
	})
	t.Run("OneGroupOnly", func(t *testing.T) {
		got, err := s.FetchOffsets(ctx, "g")
		wantErr(t, err, nil)
		wantEqual(t, "offsets", normOffsets(got), []CommittedOffset{off("g", "t", 0, 1)})
	})
	t.Run("FetchOffsetMissing", func(t *testing.T) {
		for _, k := range []struct {
			group, topic string
			partition    int32
		}{{"nope", "t", 0}, {"g", "nope", 0}, {"g", "t", 1}} {
			_, found, err := s.FetchOffset(ctx, k.group, k.topic, k.partition)
			if err != nil || found {
				t.Fatalf("FetchOffset(%v) = found %v, err %v; want not found", k, found, err)
			}
		}
	})
}

func testListGroups(t *testing.T, open func(t *testing.T) Store) {
	s := open(t)
	ctx := t.Context()
	got, err := s.ListGroups(ctx)
	wantErr(t, err, nil)
	if len(got) != 0 {
		t.Fatalf("ListGroups on empty store = %v", got)
	}
	mustCommit(t, s, off("c", "t", 0, 1))
	mustCommit(t, s, off("a", "t", 0, 1), off("b", "t", 0, 1), off("a", "u", 0, 1))
	got, err = s.ListGroups(ctx)
	wantErr(t, err, nil)
	wantEqual(t, "groups", got, []string{"a", "b", "c"})
}

func testDeleteGroup(t *testing.T, open func(t *testing.T) Store) {
	s := open(t)
	ctx := t.Context()
	mustCommit(t, s, off("a", "t", 0, 1), off("a", "t", 1, 2))
	mustCommit(t, s, off("b", "t", 0, 5))
	t.Run("RemovesOffsets", func(t *testing.T) {
		wantErr(t, s.DeleteGroup(ctx, "a"), nil)
		got, err := s.FetchOffsets(ctx, "a")
		wantErr(t, err, nil)
		if len(got) != 0 {
			t.Fatalf("offsets left after DeleteGroup: %+v", got)
		}
		groups, err := s.ListGroups(ctx)
		wantErr(t, err, nil)
		wantEqual(t, "groups", groups, []string{"b"})
	})
	t.Run("Unknown", func(t *testing.T) {
		wantErr(t, s.DeleteGroup(ctx, "nope"), nil)
	})
	t.Run("CommitAfterDelete", func(t *testing.T) {
		mustCommit(t, s, off("a", "t", 0, 9))
		got, err := s.FetchOffsets(ctx, "a")
		wantErr(t, err, nil)
		wantEqual(t, "offsets", normOffsets(got), []CommittedOffset{off("a", "t", 0, 9)})
	})
}

func testDeleteOffsets(t *testing.T, open func(t *testing.T) Store) {
	s := open(t)
	ctx := t.Context()
	mustCommit(t, s, off("a", "t", 0, 1), off("a", "t", 1, 2), off("a", "u", 0, 3))
	mustCommit(t, s, off("b", "t", 0, 5))
	t.Run("RemovesListedOnly", func(t *testing.T) {
		wantErr(t, s.DeleteOffsets(ctx, "a", []TopicPartition{{"t", 0}, {"u", 0}, {"t", 9}, {"nope", 0}}), nil)
		got, err := s.FetchOffsets(ctx, "a")
		wantErr(t, err, nil)
		wantEqual(t, "group a", normOffsets(got), []CommittedOffset{off("a", "t", 1, 2)})
		got, err = s.FetchOffsets(ctx, "b")
		wantErr(t, err, nil)
		wantEqual(t, "group b", normOffsets(got), []CommittedOffset{off("b", "t", 0, 5)})
	})
	t.Run("LastOffsetHidesGroup", func(t *testing.T) {
		wantErr(t, s.DeleteOffsets(ctx, "a", []TopicPartition{{"t", 1}}), nil)
		groups, err := s.ListGroups(ctx)
		wantErr(t, err, nil)
		wantEqual(t, "groups", groups, []string{"b"})
	})
	t.Run("UnknownGroupAndEmpty", func(t *testing.T) {
		wantErr(t, s.DeleteOffsets(ctx, "nope", []TopicPartition{{"t", 0}}), nil)
		wantErr(t, s.DeleteOffsets(ctx, "b", nil), nil)
	})
	t.Run("Invalid", func(t *testing.T) {
		wantErr(t, s.DeleteOffsets(ctx, "", []TopicPartition{{"t", 0}}), ErrInvalid)
		wantErr(t, s.DeleteOffsets(ctx, "b", []TopicPartition{{"t", 0}, {"", 0}}), ErrInvalid)
		if _, found, err := s.FetchOffset(ctx, "b", "t", 0); err != nil || !found {
			t.Fatalf("a rejected batch deleted something: found=%v err=%v", found, err)
		}
	})
}

func testAllocateProducerID(t *testing.T, open func(t *testing.T) Store) {
	t.Run("Idempotent", func(t *testing.T) {
		s := open(t)
		var last int64
		for range 3 {
			got, err := s.AllocateProducerID(t.Context(), "")
			wantErr(t, err, nil)
			if got.ID <= last || got.Epoch != 0 || got.TransactionalID != "" {
				t.Fatalf("AllocateProducerID = %+v after id %d; want a larger id, epoch 0", got, last)
			}
			last = got.ID
		}
	})
	t.Run("Transactional", func(t *testing.T) {
		s := open(t)
		ctx := t.Context()
		first, err := s.AllocateProducerID(ctx, "tx-a")
		wantErr(t, err, nil)
		if first.Epoch != 0 || first.TransactionalID != "tx-a" || first.ID < 1 {
			t.Fatalf("first allocation = %+v", first)
		}
		for epoch := int16(1); epoch <= 3; epoch++ {
			got, err := s.AllocateProducerID(ctx, "tx-a")
			wantErr(t, err, nil)
			wantEqual(t, "bumped", got, ProducerID{ID: first.ID, Epoch: epoch, TransactionalID: "tx-a"})
		}
		other, err := s.AllocateProducerID(ctx, "tx-b")
		wantErr(t, err, nil)
		plain, err := s.AllocateProducerID(ctx, "")
		wantErr(t, err, nil)
		if other.ID == first.ID || plain.ID == first.ID || plain.ID == other.ID || other.Epoch != 0 {
			t.Fatalf("ids not distinct: tx-a %+v, tx-b %+v, plain %+v", first, other, plain)
		}
	})
	t.Run("ConcurrentUnique", func(t *testing.T) {
		s := open(t)
		const workers, each = 8, 10
		ids := make(chan int64, workers*each)
		var wg sync.WaitGroup
		for range workers {
			wg.Go(func() {
				for range each {
					pid, err := s.AllocateProducerID(context.Background(), "")
					if err != nil {
						t.Errorf("AllocateProducerID: %v", err)
						return
					}
					ids <- pid.ID
				}
			})
		}
		wg.Wait()
		close(ids)
		seen := make(map[int64]bool)
		for id := range ids {
			if seen[id] {
				t.Fatalf("producer id %d allocated twice", id)
			}
			seen[id] = true
		}
	})
}

// replaceTopicID is the ID of the topic the ReplaceSegments cases create,
// fixed so the tables can spell out their rows.
const replaceTopicID = "5e9e0000-0000-4000-8000-00000000c0de"

// rseg is seg on partition p of the ReplaceSegments topic.
func rseg(p int32, base int64) Segment { return seg(replaceTopicID, p, base) }

// compacted is a segment that compaction wrote for [base, last] of
// partition p: a new object key, fewer records.
func compacted(p int32, base, last int64) Segment {
	sg := rseg(p, base)
	sg.LastOffset, sg.RecordCount, sg.Size = last, 3, 512
	sg.ObjectKey = fmt.Sprintf("%s/%d/%020d.compacted.seg", replaceTopicID, p, base)
	return sg
}

// with returns sg changed by f.
func with(sg Segment, f func(*Segment)) Segment { f(&sg); return sg }

// listed returns the partition's segments or fails the test.
func listed(t *testing.T, s Store, topicID string, p int32) []Segment {
	t.Helper()
	got, err := s.ListSegments(t.Context(), topicID, p)
	if err != nil {
		t.Fatalf("ListSegments(%d): %v", p, err)
	}
	return normSegments(got)
}

func testReplaceSegments(t *testing.T, open func(t *testing.T) Store) {
	// Every case starts from partition 0 holding 0, 100, 200, 300 with log
	// start 50, and partition 1 holding 0.
	initial := []Segment{rseg(0, 0), rseg(0, 100), rseg(0, 200), rseg(0, 300)}
	for _, c := range []struct {
		name      string
		prep      func(t *testing.T, s Store) // after the common setup, if set
		topicID   string                      // replaceTopicID if empty
		partition int32
		old, new  []Segment
		wantErr   error
		want      []Segment // partition 0 afterwards; initial (or after prep) on error
	}{
		{name: "ThreeByOneKeepsFirstBase",
			old:  []Segment{rseg(0, 0), rseg(0, 100), rseg(0, 200)},
			new:  []Segment{compacted(0, 0, 209)},
			want: []Segment{compacted(0, 0, 209), rseg(0, 300)}},
		{name: "TwoByTwoNewBases",
			old:  []Segment{rseg(0, 100), rseg(0, 200)},
			new:  []Segment{compacted(0, 150, 159), compacted(0, 100, 109)},
			want: []Segment{rseg(0, 0), compacted(0, 100, 109), compacted(0, 150, 159), rseg(0, 300)}},
		{name: "EmptyNew",
			old:  []Segment{rseg(0, 100), rseg(0, 200)},
			want: []Segment{rseg(0, 0), rseg(0, 300)}},
		{name: "OldRowsOtherFieldsIgnored",
			old:  []Segment{with(rseg(0, 300), func(sg *Segment) { sg.LastOffset, sg.Size = 999, 1 })},
			new:  []Segment{compacted(0, 300, 309)},
			want: []Segment{rseg(0, 0), rseg(0, 100), rseg(0, 200), compacted(0, 300, 309)}},
		{name: "StaleObjectKey",
			old: []Segment{rseg(0, 0), with(rseg(0, 100), func(sg *Segment) { sg.ObjectKey = "gone" })},
			new: []Segment{compacted(0, 0, 109)}, wantErr: ErrSegmentChanged, want: initial},
		{name: "AlreadyDeletedByRetention",
			prep: func(t *testing.T, s Store) {
				wantErr(t, s.DeleteSegments(t.Context(), replaceTopicID, 0, []int64{0}, 0), nil)
			},
			old: []Segment{rseg(0, 0), rseg(0, 100)}, new: []Segment{compacted(0, 0, 109)},
			wantErr: ErrSegmentChanged, want: initial[1:]},
		{name: "NeverRecorded",
			old: []Segment{rseg(0, 300), rseg(0, 400)}, new: []Segment{compacted(0, 300, 409)},
			wantErr: ErrSegmentChanged, want: initial},
		{name: "OldRowOfOtherPartitionKey",
			old:     []Segment{with(rseg(0, 0), func(sg *Segment) { sg.ObjectKey = rseg(1, 0).ObjectKey })},
			wantErr: ErrSegmentChanged, want: initial},
		{name: "CollidesWithRemaining",
			old: []Segment{rseg(0, 0), rseg(0, 100)}, new: []Segment{compacted(0, 0, 99), compacted(0, 200, 209)},
			wantErr: ErrSegmentExists, want: initial},
		{name: "NewTwiceSameBase",
			old: []Segment{rseg(0, 0), rseg(0, 100)}, new: []Segment{compacted(0, 0, 9), compacted(0, 0, 19)},
			wantErr: ErrInvalid, want: initial},
		{name: "OldTwiceSameBase",
			old: []Segment{rseg(0, 0), rseg(0, 0)}, wantErr: ErrInvalid, want: initial},
		{name: "NewLastBeforeBase",
			old:     []Segment{rseg(0, 0), rseg(0, 100)},
			new:     []Segment{with(compacted(0, 0, 109), func(sg *Segment) { sg.LastOffset = -1 })},
			wantErr: ErrInvalid, want: initial},
		{name: "NewEmptyObjectKey",
			old:     []Segment{rseg(0, 0), rseg(0, 100)},
			new:     []Segment{with(compacted(0, 0, 109), func(sg *Segment) { sg.ObjectKey = "" })},
			wantErr: ErrInvalid, want: initial},
		{name: "NewNegativeSize",
			old:     []Segment{rseg(0, 0)},
			new:     []Segment{with(compacted(0, 0, 9), func(sg *Segment) { sg.Size = -1 })},
			wantErr: ErrInvalid, want: initial},
		{name: "EmptyOld",
			new: []Segment{compacted(0, 400, 409)}, wantErr: ErrInvalid, want: initial},
		{name: "OldRowWrongTopic",
			old:     []Segment{rseg(0, 0), with(rseg(0, 100), func(sg *Segment) { sg.TopicID = uuid.NewString() })},
			wantErr: ErrInvalid, want: initial},
		{name: "NewRowWrongTopic",
			old:     []Segment{rseg(0, 0)},
			new:     []Segment{with(compacted(0, 0, 9), func(sg *Segment) { sg.TopicID = uuid.NewString() })},
			wantErr: ErrInvalid, want: initial},
		{name: "NewRowWrongPartition",
			old: []Segment{rseg(0, 0)}, new: []Segment{compacted(1, 0, 9)},
			wantErr: ErrInvalid, want: initial},
		{name: "PartitionPastEnd", partition: 2,
			old: []Segment{rseg(2, 0)}, new: []Segment{compacted(2, 0, 9)},
			wantErr: ErrPartitionRange, want: initial},
		{name: "MissingTopic", topicID: "5e9e0000-0000-4000-8000-00000000dead",
			old:     []Segment{seg("5e9e0000-0000-4000-8000-00000000dead", 0, 0)},
			wantErr: ErrTopicNotFound, want: initial},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := open(t)
			ctx := t.Context()
			mustCreate(t, s, Topic{ID: replaceTopicID, Name: "t", PartitionCount: 2})
			mustAddSegments(t, s, initial...)
			mustAddSegments(t, s, rseg(1, 0))
			wantErr(t, s.SetLogStartOffset(ctx, replaceTopicID, 0, 50), nil)
			if c.prep != nil {
				c.prep(t, s)
			}
			topicID := c.topicID
			if topicID == "" {
				topicID = replaceTopicID
			}
			err := s.ReplaceSegments(ctx, topicID, c.partition, c.old, c.new)
			wantErr(t, err, c.wantErr)
			wantEqual(t, "partition 0 segments", listed(t, s, replaceTopicID, 0), c.want)
			wantEqual(t, "partition 1 segments", listed(t, s, replaceTopicID, 1), []Segment{rseg(1, 0)})
			if ls := logStart(t, s, replaceTopicID, 0); ls != 50 {
				t.Fatalf("log start = %d, want 50 (untouched)", ls)
			}
		})
	}
	t.Run("CreatedAtDefaulted", func(t *testing.T) {
		s := open(t)
		mustCreate(t, s, Topic{ID: replaceTopicID, Name: "t", PartitionCount: 1})
		mustAddSegments(t, s, rseg(0, 0), rseg(0, 100))
		before := time.Now().Truncate(time.Millisecond)
		sg := compacted(0, 0, 109)
		sg.CreatedAt = time.Time{}
		wantErr(t, s.ReplaceSegments(t.Context(), replaceTopicID, 0, []Segment{rseg(0, 0), rseg(0, 100)}, []Segment{sg}), nil)
		got := listed(t, s, replaceTopicID, 0)
		if len(got) != 1 || got[0].CreatedAt.Before(before) || got[0].CreatedAt.After(time.Now()) {
			t.Fatalf("segments = %+v, want one with CreatedAt >= %v", got, before)
		}
	})
}

// testReplaceSegmentsRacesDelete runs ReplaceSegments against a
// DeleteSegments (retention) on overlapping rows, many times from two
// goroutines: afterwards the partition must hold what one of the two
// orders gives, and the replace must have succeeded exactly when it went
// first (otherwise ErrSegmentChanged).
func testReplaceSegmentsRacesDelete(t *testing.T, open func(t *testing.T) Store) {
	const rounds = 40
	// Compaction replaces 100 and 200 by one segment based at 100.
	old := func(p int32) []Segment { return []Segment{rseg(p, 100), rseg(p, 200)} }
	repl := func(p int32) []Segment { return []Segment{compacted(p, 100, 209)} }
	for _, c := range []struct {
		name     string
		deleted  []int64
		logStart int64
		// Partition p afterwards if the replace went first, and if the
		// delete did.
		replacedFirst, deletedFirst func(p int32) []Segment
	}{
		{"RetentionTakesPrefix", []int64{0, 100}, 200,
			func(p int32) []Segment { return []Segment{rseg(p, 300)} },
			func(p int32) []Segment { return []Segment{rseg(p, 200), rseg(p, 300)} }},
		{"RetentionTakesReplacedRow", []int64{200}, 0,
			func(p int32) []Segment { return []Segment{rseg(p, 0), compacted(p, 100, 209), rseg(p, 300)} },
			func(p int32) []Segment { return []Segment{rseg(p, 0), rseg(p, 100), rseg(p, 300)} }},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := open(t)
			mustCreate(t, s, Topic{ID: replaceTopicID, Name: "t", PartitionCount: rounds})
			var replaced, changed int
			for p := range int32(rounds) {
				mustAddSegments(t, s, rseg(p, 0), rseg(p, 100), rseg(p, 200), rseg(p, 300))
				var replErr, delErr error
				var wg sync.WaitGroup
				start := make(chan struct{})
				wg.Go(func() {
					<-start
					replErr = s.ReplaceSegments(t.Context(), replaceTopicID, p, old(p), repl(p))
				})
				wg.Go(func() {
					<-start
					delErr = s.DeleteSegments(t.Context(), replaceTopicID, p, c.deleted, c.logStart)
				})
				close(start)
				wg.Wait()
				wantErr(t, delErr, nil)
				got := listed(t, s, replaceTopicID, p)
				switch {
				case replErr == nil:
					replaced++
					wantEqual(t, fmt.Sprintf("round %d, replace succeeded", p), got, c.replacedFirst(p))
				case errors.Is(replErr, ErrSegmentChanged):
					changed++
					wantEqual(t, fmt.Sprintf("round %d, replace failed", p), got, c.deletedFirst(p))
				default:
					t.Fatalf("round %d: ReplaceSegments: %v", p, replErr)
				}
				if ls := logStart(t, s, replaceTopicID, p); ls != c.logStart {
					t.Fatalf("round %d: log start = %d, want %d", p, ls, c.logStart)
				}
			}
			t.Logf("%d rounds: replace went first %d times, delete %d times", rounds, replaced, changed)
		})
	}
}

// wantClusterIDForm fails t unless id has the form Kafka prints cluster IDs
// in: 22 characters of unpadded base64url holding a version-4 UUID, not
// starting with '-'.
func wantClusterIDForm(t *testing.T, id string) {
	t.Helper()
	b, err := base64.RawURLEncoding.Strict().DecodeString(id)
	if err != nil || len(id) != 22 || len(b) != 16 || id[0] == '-' {
		t.Fatalf("cluster id %q: want 22 characters of base64url holding 16 bytes, not starting with '-' (%v)", id, err)
	}
	if u := uuid.UUID(b); u.Version() != 4 || u.Variant() != uuid.RFC4122 {
		t.Fatalf("cluster id %q is UUID %s (version %d, variant %v), want a random (version 4) UUID", id, u, u.Version(), u.Variant())
	}
}

// testClusterID: a store has its cluster ID from the start, in Kafka's
// form, the same at every call; a reopened database keeps it; several
// stores opening one new database at once (brokers starting together) all
// end with the same ID; two databases get different IDs.
func testClusterID(t *testing.T, open func(t *testing.T) Store, database func(t *testing.T) func(ctx context.Context) (Store, error)) {
	ctx := t.Context()
	s := open(t)
	id, err := s.ClusterID(ctx)
	wantErr(t, err, nil)
	wantClusterIDForm(t, id)
	for range 3 {
		again, err := s.ClusterID(ctx)
		wantErr(t, err, nil)
		wantEqual(t, "cluster id at a later call", again, id)
	}
	other, err := open(t).ClusterID(ctx)
	wantErr(t, err, nil)
	if other == id {
		t.Fatalf("two databases share cluster id %q", id)
	}
	if database == nil {
		return
	}

	t.Run("Reopen", func(t *testing.T) {
		openDB := database(t)
		s1, err := openDB(ctx)
		wantErr(t, err, nil)
		id1, err := s1.ClusterID(ctx)
		wantErr(t, err, nil)
		wantErr(t, s1.Close(), nil)
		s2, err := openDB(ctx)
		wantErr(t, err, nil)
		defer s2.Close()
		id2, err := s2.ClusterID(ctx)
		wantErr(t, err, nil)
		wantEqual(t, "cluster id after reopen", id2, id1)
	})

	t.Run("ConcurrentOpen", func(t *testing.T) {
		openDB := database(t)
		const n = 6
		ids := make([]string, n)
		errs := make([]error, n)
		start := make(chan struct{})
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				<-start
				st, err := openDB(ctx)
				if err != nil {
					errs[i] = err
					return
				}
				ids[i], errs[i] = st.ClusterID(ctx)
				errs[i] = errors.Join(errs[i], st.Close())
			})
		}
		close(start)
		wg.Wait()
		for i := range n {
			if errs[i] != nil {
				t.Fatalf("store %d: %v", i, errs[i])
			}
			if ids[i] != ids[0] {
				t.Fatalf("concurrent opens disagree on the cluster id: %q", ids)
			}
		}
		wantClusterIDForm(t, ids[0])
	})
}
