package cluster

import (
	"testing"

	"go.uber.org/goleak"

	"github.com/streamhouse/streamhouse/meta/pgtest"
)

// TestMain checks for leaked goroutines after the tests, and stops the
// PostgreSQL server pgtest started (before goleak looks).
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(pgtest.Main(m))
}
