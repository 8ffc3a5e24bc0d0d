package s3test_test

import (
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
