package objstore_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"

	"github.com/streamhouse/streamhouse/objstore"
)

// largeSize exceeds the multipart threshold the S3 tests configure (6 MiB)
// and spans three 5 MiB parts.
const largeSize = 12<<20 + 123

// runConformance checks the behaviour every Store must share. newStore
// returns an empty store; each subtest gets its own.
func runConformance(t *testing.T, newStore func(t *testing.T) objstore.Store) {
	t.Run("PutGet", func(t *testing.T) { testPutGet(t, newStore(t)) })
	t.Run("Overwrite", func(t *testing.T) { testOverwrite(t, newStore(t)) })
	t.Run("EmptyObject", func(t *testing.T) { testEmptyObject(t, newStore(t)) })
	t.Run("LargeObject", func(t *testing.T) { testLargeObject(t, newStore(t)) })
	t.Run("GetMissing", func(t *testing.T) { testGetMissing(t, newStore(t)) })
	t.Run("GetRange", func(t *testing.T) { testGetRange(t, newStore(t)) })
	t.Run("List", func(t *testing.T) { testList(t, newStore(t)) })
	t.Run("ListBadPrefix", func(t *testing.T) { testListBadPrefix(t, newStore(t)) })
	t.Run("Delete", func(t *testing.T) { testDelete(t, newStore(t)) })
	t.Run("BadKeys", func(t *testing.T) { testBadKeys(t, newStore(t)) })
	t.Run("UnusualKeys", func(t *testing.T) { testUnusualKeys(t, newStore(t)) })
	t.Run("ShortReader", func(t *testing.T) { testShortReader(t, newStore(t)) })
	t.Run("ReadsExactlySize", func(t *testing.T) { testReadsExactlySize(t, newStore(t)) })
	t.Run("ConcurrentPuts", func(t *testing.T) { testConcurrentPuts(t, newStore(t)) })
	t.Run("Canceled", func(t *testing.T) { testCanceled(t, newStore(t)) })
	t.Run("CanceledDuringPut", func(t *testing.T) { testCanceledDuringPut(t, newStore(t)) })
}

func testPutGet(t *testing.T, s objstore.Store) {
	data := randBytes(1000)
	put(t, s, "topic/0/00000000000000000000.seg", data)
	got := get(t, s, "topic/0/00000000000000000000.seg")
	if !bytes.Equal(got, data) {
		t.Fatalf("Get returned %d bytes, want the %d put", len(got), len(data))
	}
	got[0] ^= 0xff // the store must not share memory with callers
	if again := get(t, s, "topic/0/00000000000000000000.seg"); !bytes.Equal(again, data) {
		t.Fatal("changing a returned slice changed the stored object")
	}
}

func testOverwrite(t *testing.T, s objstore.Store) {
	put(t, s, "k", randBytes(500))
	v2 := randBytes(100)
	put(t, s, "k", v2)
	if got := get(t, s, "k"); !bytes.Equal(got, v2) {
		t.Fatalf("after overwrite Get returned %d bytes, want the second value (%d bytes)", len(got), len(v2))
	}
	assertList(t, s, "", []objstore.ObjectInfo{{Key: "k", Size: 100}})
}

func testEmptyObject(t *testing.T, s objstore.Store) {
	put(t, s, "empty", nil)
	if got := get(t, s, "empty"); len(got) != 0 {
		t.Fatalf("Get of empty object returned %d bytes", len(got))
	}
	got, err := s.GetRange(context.Background(), "empty", 0, 10)
	if err != nil || len(got) != 0 {
		t.Fatalf("GetRange(0, 10) of empty object = %d bytes, %v; want 0 bytes, nil", len(got), err)
	}
	assertList(t, s, "", []objstore.ObjectInfo{{Key: "empty", Size: 0}})
}

func testLargeObject(t *testing.T, s objstore.Store) {
	data := randBytes(largeSize)
	put(t, s, "big/object", data)
	if got := get(t, s, "big/object"); !bytes.Equal(got, data) {
		t.Fatalf("Get returned %d bytes that differ from the %d put", len(got), len(data))
	}
	// Across the boundary of the first two 5 MiB parts.
	off := int64(5<<20 - 10)
	got, err := s.GetRange(context.Background(), "big/object", off, 20)
	if err != nil || !bytes.Equal(got, data[off:off+20]) {
		t.Fatalf("GetRange across parts = %x, %v; want %x", got, err, data[off:off+20])
	}
	assertList(t, s, "big/", []objstore.ObjectInfo{{Key: "big/object", Size: largeSize}})
}

func testGetMissing(t *testing.T, s objstore.Store) {
	ctx := context.Background()
	put(t, s, "dir/x", []byte("x"))
	for _, key := range []string{"missing", "dir", "dir/y", "dir/x/z", "no/such/dir/key"} {
		if _, err := s.Get(ctx, key); !errors.Is(err, objstore.ErrNotFound) {
			t.Errorf("Get(%q) error = %v, want ErrNotFound", key, err)
		}
		if _, err := s.GetRange(ctx, key, 0, 1); !errors.Is(err, objstore.ErrNotFound) {
			t.Errorf("GetRange(%q) error = %v, want ErrNotFound", key, err)
		}
		if _, err := s.GetRange(ctx, key, 0, 0); !errors.Is(err, objstore.ErrNotFound) {
			t.Errorf("GetRange(%q, 0, 0) error = %v, want ErrNotFound", key, err)
		}
	}
}

func testGetRange(t *testing.T, s objstore.Store) {
	data := randBytes(100)
	put(t, s, "r", data)
	tests := []struct {
		name        string
		off, length int64
		want        []byte
		wantErr     error
	}{
		{"head", 0, 10, data[:10], nil},
		{"middle", 10, 20, data[10:30], nil},
		{"tail", 90, 10, data[90:], nil},
		{"whole", 0, 100, data, nil},
		{"past end", 95, 10, data[95:], nil},
		{"huge length", 10, math.MaxInt64, data[10:], nil},
		{"zero length", 50, 0, nil, nil},
		{"at end", 100, 5, nil, nil},
		{"at end zero length", 100, 0, nil, nil},
		{"beyond end", 101, 1, nil, objstore.ErrPermanent},
		{"far beyond end", 1 << 40, 1, nil, objstore.ErrPermanent},
		{"beyond end zero length", 101, 0, nil, objstore.ErrPermanent},
		{"negative offset", -1, 10, nil, objstore.ErrPermanent},
		{"negative length", 0, -1, nil, objstore.ErrPermanent},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := s.GetRange(context.Background(), "r", tt.off, tt.length)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("GetRange(%d, %d) error = %v, want %v", tt.off, tt.length, err, tt.wantErr)
				}
				return
			}
			if err != nil || !bytes.Equal(got, tt.want) {
				t.Fatalf("GetRange(%d, %d) = %d bytes, %v; want %d bytes", tt.off, tt.length, len(got), err, len(tt.want))
			}
		})
	}
}

func testList(t *testing.T, s objstore.Store) {
	keys := map[string]int{
		"topic-a/0/00001.seg": 1, "topic-a/0/00002.seg": 2, "topic-a/1/00001.seg": 3,
		"topic-ab/x": 4, "topic-b/0/00001.seg": 5, "x/y": 6, "x-y": 7, "zz": 8,
	}
	for k, n := range keys {
		put(t, s, k, randBytes(n))
	}
	infos := func(ks ...string) []objstore.ObjectInfo {
		out := []objstore.ObjectInfo{}
		for _, k := range ks {
			out = append(out, objstore.ObjectInfo{Key: k, Size: int64(keys[k])})
		}
		return out
	}
	tests := []struct {
		prefix string
		want   []objstore.ObjectInfo
	}{
		{"topic-a/", infos("topic-a/0/00001.seg", "topic-a/0/00002.seg", "topic-a/1/00001.seg")},
		{"topic-a", infos("topic-a/0/00001.seg", "topic-a/0/00002.seg", "topic-a/1/00001.seg", "topic-ab/x")},
		{"topic-a/0/0000", infos("topic-a/0/00001.seg", "topic-a/0/00002.seg")},
		{"topic-a/0/00002.seg", infos("topic-a/0/00002.seg")},
		{"x", infos("x-y", "x/y")}, // byte order: '-' < '/'
		{"", infos("topic-a/0/00001.seg", "topic-a/0/00002.seg", "topic-a/1/00001.seg",
			"topic-ab/x", "topic-b/0/00001.seg", "x-y", "x/y", "zz")},
		{"nothing", infos()},
		{"nothing/here/", infos()},
		{"zz/", infos()},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("prefix=%q", tt.prefix), func(t *testing.T) {
			assertList(t, s, tt.prefix, tt.want)
		})
	}
}

func testListBadPrefix(t *testing.T, s objstore.Store) {
	for _, prefix := range []string{"/", "/a", "a//", "../", "a/../b", "./", "a\\b", "a\x00"} {
		if _, err := s.List(context.Background(), prefix); !errors.Is(err, objstore.ErrPermanent) {
			t.Errorf("List(%q) error = %v, want ErrPermanent", prefix, err)
		}
	}
}

func testDelete(t *testing.T, s objstore.Store) {
	ctx := context.Background()
	put(t, s, "d/e/f", []byte("f"))
	put(t, s, "d/keep", []byte("keep"))
	if err := s.Delete(ctx, "d/e/f"); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	if _, err := s.Get(ctx, "d/e/f"); !errors.Is(err, objstore.ErrNotFound) {
		t.Fatalf("Get after Delete error = %v, want ErrNotFound", err)
	}
	assertList(t, s, "", []objstore.ObjectInfo{{Key: "d/keep", Size: 4}})
	for _, key := range []string{"d/e/f", "never/was", "d", "d/e"} {
		if err := s.Delete(ctx, key); err != nil {
			t.Errorf("Delete(%q) of a missing key: %v", key, err)
		}
	}
	// Keys whose directories were removed can be written again.
	put(t, s, "d/e/g", []byte("g"))
	if err := s.Delete(ctx, "d/e/g"); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete(ctx, "d/keep"); err != nil {
		t.Fatal(err)
	}
	put(t, s, "d", []byte("now an object"))
	assertList(t, s, "", []objstore.ObjectInfo{{Key: "d", Size: 13}})
}

func testBadKeys(t *testing.T, s objstore.Store) {
	ctx := context.Background()
	bad := []string{
		"", "/a", "a/", "a//b", ".", "..", "./a", "a/./b", "a/../b", "../a", "a/..",
		"a\\b", "a\x00b", ".tmp-x", "a/.tmp-1/b",
		strings.Repeat("k", objstore.MaxKeyLen+1),
		"a/" + strings.Repeat("e", objstore.MaxKeyElemLen+1),
	}
	for _, key := range bad {
		if err := objstore.CheckKey(key); !errors.Is(err, objstore.ErrPermanent) {
			t.Errorf("CheckKey(%q) = %v, want ErrPermanent", key, err)
		}
		if err := s.Put(ctx, key, bytes.NewReader([]byte("x")), 1); !errors.Is(err, objstore.ErrPermanent) {
			t.Errorf("Put(%q) error = %v, want ErrPermanent", key, err)
		}
		if _, err := s.Get(ctx, key); !errors.Is(err, objstore.ErrPermanent) {
			t.Errorf("Get(%q) error = %v, want ErrPermanent", key, err)
		}
		if _, err := s.GetRange(ctx, key, 0, 1); !errors.Is(err, objstore.ErrPermanent) {
			t.Errorf("GetRange(%q) error = %v, want ErrPermanent", key, err)
		}
		if err := s.Delete(ctx, key); !errors.Is(err, objstore.ErrPermanent) {
			t.Errorf("Delete(%q) error = %v, want ErrPermanent", key, err)
		}
	}
	if err := s.Put(ctx, "negative", bytes.NewReader(nil), -1); !errors.Is(err, objstore.ErrPermanent) {
		t.Errorf("Put with size -1 error = %v, want ErrPermanent", err)
	}
	assertList(t, s, "", nil)
}

func testUnusualKeys(t *testing.T, s objstore.Store) {
	keys := []string{
		"with space/a b", "ünïcödé/κλειδί", ".hidden", "a..b", "...", "tmp-.x", "a/.tmp",
		"x=1&y=2/%20+?#",
		strings.Repeat("k", 200) + "/" + strings.Repeat("e", objstore.MaxKeyElemLen),
	}
	for i, key := range keys {
		if err := objstore.CheckKey(key); err != nil {
			t.Errorf("CheckKey(%q) = %v, want nil", key, err)
			continue
		}
		put(t, s, key, []byte{byte(i)})
		if got := get(t, s, key); !bytes.Equal(got, []byte{byte(i)}) {
			t.Errorf("Get(%q) = %x, want %x", key, got, []byte{byte(i)})
		}
	}
	infos, err := s.List(context.Background(), "")
	if err != nil || len(infos) != len(keys) {
		t.Fatalf("List = %d objects, %v; want %d", len(infos), err, len(keys))
	}
}

func testShortReader(t *testing.T, s objstore.Store) {
	ctx := context.Background()
	for _, size := range []int64{100, largeSize} {
		key := fmt.Sprintf("short/%d", size)
		err := s.Put(ctx, key, bytes.NewReader(randBytes(int(size/2))), size)
		if !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Errorf("Put of %d bytes from a reader with half of them: error = %v, want io.ErrUnexpectedEOF", size, err)
		}
		if _, err := s.Get(ctx, key); !errors.Is(err, objstore.ErrNotFound) {
			t.Errorf("Get after failed Put: error = %v, want ErrNotFound", err)
		}
	}
	assertList(t, s, "", nil)
}

func testReadsExactlySize(t *testing.T, s objstore.Store) {
	r := bytes.NewReader([]byte("0123456789"))
	if err := s.Put(context.Background(), "k", r, 4); err != nil {
		t.Fatal(err)
	}
	if got := get(t, s, "k"); string(got) != "0123" {
		t.Fatalf("Get = %q, want %q", got, "0123")
	}
	if r.Len() != 6 {
		t.Errorf("Put left %d bytes unread, want 6", r.Len())
	}
}

func testConcurrentPuts(t *testing.T, s objstore.Store) {
	const n = 16
	want := make(map[string][]byte)
	for i := range n {
		want[fmt.Sprintf("c/%d/%02d", i%3, i)] = randBytes(1000 + i)
	}
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for key, data := range want {
		wg.Go(func() {
			errs <- s.Put(context.Background(), key, bytes.NewReader(data), int64(len(data)))
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("concurrent Put: %v", err)
		}
	}
	for key, data := range want {
		if got := get(t, s, key); !bytes.Equal(got, data) {
			t.Errorf("Get(%q) differs from what was put", key)
		}
	}
	infos, err := s.List(context.Background(), "c/")
	if err != nil || len(infos) != n {
		t.Fatalf("List = %d objects, %v; want %d", len(infos), err, n)
	}
}

func testCanceled(t *testing.T, s objstore.Store) {
	put(t, s, "k", []byte("v"))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	check := func(op string, err error) {
		t.Helper()
		if !errors.Is(err, context.Canceled) {
			t.Errorf("%s with a canceled context: error = %v, want context.Canceled", op, err)
		}
	}
	check("Put", s.Put(ctx, "k2", bytes.NewReader([]byte("v")), 1))
	_, err := s.Get(ctx, "k")
	check("Get", err)
	_, err = s.GetRange(ctx, "k", 0, 1)
	check("GetRange", err)
	_, err = s.List(ctx, "")
	check("List", err)
	check("Delete", s.Delete(ctx, "k"))
	// Nothing changed.
	assertList(t, s, "", []objstore.ObjectInfo{{Key: "k", Size: 1}})
}

func testCanceledDuringPut(t *testing.T, s objstore.Store) {
	for _, size := range []int64{1 << 20, largeSize} {
		ctx, cancel := context.WithCancel(context.Background())
		// The reader gives half of the object (for S3, past the first
		// part), then cancels.
		r := &cancelingReader{r: bytes.NewReader(randBytes(int(size))), after: size / 2, cancel: cancel}
		key := fmt.Sprintf("canceled/%d", size)
		err := s.Put(ctx, key, r, size)
		cancel()
		if !errors.Is(err, context.Canceled) {
			t.Errorf("Put of %d bytes canceled midway: error = %v, want context.Canceled", size, err)
		}
		if _, err := s.Get(context.Background(), key); !errors.Is(err, objstore.ErrNotFound) {
			t.Errorf("Get after canceled Put: error = %v, want ErrNotFound", err)
		}
	}
	assertList(t, s, "", nil)
}

// cancelingReader reads in chunks of at most 64 KiB, like a network
// stream, and calls cancel once more than after bytes were read.
type cancelingReader struct {
	r      io.Reader
	after  int64
	n      int64
	cancel func()
}

func (c *cancelingReader) Read(p []byte) (int, error) {
	if c.n >= c.after {
		c.cancel()
	}
	n, err := c.r.Read(p[:min(len(p), 64<<10)])
	c.n += int64(n)
	return n, err
}

func put(t *testing.T, s objstore.Store, key string, data []byte) {
	t.Helper()
	if err := s.Put(context.Background(), key, bytes.NewReader(data), int64(len(data))); err != nil {
		t.Fatalf("Put(%q, %d bytes): %v", key, len(data), err)
	}
}

func get(t *testing.T, s objstore.Store, key string) []byte {
	t.Helper()
	data, err := s.Get(context.Background(), key)
	if err != nil {
		t.Fatalf("Get(%q): %v", key, err)
	}
	return data
}

// assertList checks List's keys and sizes, and that times are set.
func assertList(t *testing.T, s objstore.Store, prefix string, want []objstore.ObjectInfo) {
	t.Helper()
	got, err := s.List(context.Background(), prefix)
	if err != nil {
		t.Fatalf("List(%q): %v", prefix, err)
	}
	if len(got) != len(want) {
		t.Fatalf("List(%q) = %v, want %v", prefix, keysOf(got), keysOf(want))
	}
	for i := range got {
		if got[i].Key != want[i].Key || got[i].Size != want[i].Size {
			t.Fatalf("List(%q)[%d] = %s (%d bytes), want %s (%d bytes); all: %v",
				prefix, i, got[i].Key, got[i].Size, want[i].Key, want[i].Size, keysOf(got))
		}
		if got[i].Modified.IsZero() {
			t.Errorf("List(%q)[%d] = %s has no modification time", prefix, i, got[i].Key)
		}
	}
}

func keysOf(infos []objstore.ObjectInfo) []string {
	keys := make([]string, len(infos))
	for i, o := range infos {
		keys[i] = o.Key
	}
	return keys
}

func randBytes(n int) []byte {
	b := make([]byte, n)
	var seed [32]byte
	binary.LittleEndian.PutUint64(seed[:], rand.Uint64())
	_, _ = rand.NewChaCha8(seed).Read(b)
	return b
}
