package log

import (
	"flag"
	"fmt"
	"os"
	"testing"

	"go.uber.org/goleak"
)

// update rewrites golden files instead of comparing against them:
// go test ./log/ -run Golden -update
var update = flag.Bool("update", false, "rewrite golden files under testdata/golden")

func TestMain(m *testing.M) {
	if arg := os.Getenv(compactCrashChildEnv); arg != "" {
		// TestCompactionCrashAtEachStep's child: compact, stop at a step.
		fmt.Fprintln(os.Stderr, "compaction crash child:", compactCrashChild(arg))
		os.Exit(1)
	}
	if dir := os.Getenv(crashChildEnv); dir != "" {
		// This process is TestCrashRecovery's child: append until killed.
		fmt.Fprintln(os.Stderr, "crash child:", crashChild(dir))
		os.Exit(1)
	}
	goleak.VerifyTestMain(m)
}
