package s3test_test

import (
	"bytes"
	"context"
	"net"
	"strings"
	"testing"

	"go.uber.org/goleak"

	"github.com/streamhouse/streamhouse/objstore"
	"github.com/streamhouse/streamhouse/objstore/s3test"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func TestStartStop(t *testing.T) {
	var endpoint string
	t.Run("running", func(t *testing.T) {
		srv := s3test.Start(t)
		endpoint = srv.Endpoint
		if !strings.HasPrefix(endpoint, "http://127.0.0.1:") {
			t.Errorf("Endpoint = %q, want http://127.0.0.1:PORT", endpoint)
		}
		s, err := objstore.NewS3(context.Background(), srv.Config())
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		if err := s.CheckBucket(context.Background()); err != nil {
			t.Fatalf("CheckBucket of the bucket Start created: %v", err)
		}
	})
	// The subtest's cleanup stopped the server.
	conn, err := net.Dial("tcp", strings.TrimPrefix(endpoint, "http://"))
	if err == nil {
		conn.Close()
		t.Fatalf("server at %s still accepts connections after its test ended", endpoint)
	}
}

// TestStopRestart stops the server, checks that it refuses connections and
// that a client's Put fails, restarts it and checks that the same endpoint
// serves the object stored before the stop and takes new ones.
func TestStopRestart(t *testing.T) {
	srv := s3test.Start(t)
	ctx := context.Background()
	s, err := objstore.NewS3(ctx, srv.Config())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	before := []byte("stored before the outage")
	if err := s.Put(ctx, "a", bytes.NewReader(before), int64(len(before))); err != nil {
		t.Fatal(err)
	}

	endpoint := srv.Endpoint
	srv.Stop(t)
	if conn, err := net.Dial("tcp", strings.TrimPrefix(endpoint, "http://")); err == nil {
		conn.Close()
		t.Fatalf("server at %s accepts connections after Stop", endpoint)
	}
	if err := s.Put(ctx, "b", strings.NewReader("x"), 1); err == nil {
		t.Fatal("Put succeeded while the server was stopped")
	}

	srv.Restart(t)
	if srv.Endpoint != endpoint {
		t.Fatalf("Endpoint %q after Restart, want %q", srv.Endpoint, endpoint)
	}
	got, err := s.Get(ctx, "a")
	if err != nil || !bytes.Equal(got, before) {
		t.Fatalf("Get of the object stored before Stop = %q, %v; want %q", got, err, before)
	}
	if err := s.Put(ctx, "b", strings.NewReader("x"), 1); err != nil {
		t.Fatalf("Put after Restart: %v", err)
	}
}
