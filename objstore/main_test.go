package objstore_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package if a test leaves a goroutine behind: HTTP
// connections of S3 stores must be closed (S3.Close, httptest.Server.Close)
// and server processes reaped.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
