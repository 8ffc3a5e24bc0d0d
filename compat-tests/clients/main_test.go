// Package clients holds the compatibility cases: stock Kafka clients of
// several languages against the broker the harness starts (see
// ../harness). Every case checks the records read back, not only errors.
package clients

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/streamhouse/streamhouse/compat-tests/harness"
)

func TestMain(m *testing.M) { harness.Main(m) }

// codecs are the compression codecs every client that can is run with.
var codecs = []string{"none", "gzip", "snappy", "lz4", "zstd"}

// TestRequirementsNameTests: every test harness.Requirements names exists,
// so a typo cannot silently run a test that should be skipped.
func TestRequirementsNameTests(t *testing.T) {
	files, err := filepath.Glob("*_test.go")
	if err != nil {
		t.Fatal(err)
	}
	var src strings.Builder
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		src.Write(b)
	}
	for name := range harness.Requirements {
		if !strings.Contains(src.String(), "func "+name+"(t *testing.T)") {
			t.Errorf("harness.Requirements names %s, which is not a test in clients/", name)
		}
	}
}
