package s3test

import (
	"testing"

	"github.com/streamhouse/streamhouse/internal/toolbin"
)

// Version is the versitygw release the project tests against; the tools
// module (tools/go.mod) pins it.
const Version = "v1.8.0"

// EnvBinary names the environment variable that, when set, gives the path
// of the versitygw binary to use.
const EnvBinary = "STREAMHOUSE_VERSITYGW"

const versitygwPkg = "github.com/versity/versitygw/cmd/versitygw"

// Binary returns the path of a versitygw binary, failing t with a clear
// message if there is none and it cannot be built. It looks, in order, at
// $STREAMHOUSE_VERSITYGW, "versitygw" in PATH, $GOBIN and $GOPATH/bin, and
// the build cache <user cache dir>/streamhouse/versitygw-v1.8.0; failing
// those it builds the version pinned in the repository's tools module into
// that cache (which needs the Go toolchain and the Go module proxy).
func Binary(t testing.TB) string {
	t.Helper()
	path, err := findBinary()
	if err != nil {
		t.Fatalf("s3test: no versitygw server for the S3 tests: %v\n"+
			"Install it with `go install -C tools %s`, or set %s to its path.",
			err, versitygwPkg, EnvBinary)
	}
	return path
}

func findBinary() (string, error) {
	return toolbin.Tool{Name: "versitygw", Version: Version, Pkg: versitygwPkg, Env: EnvBinary, SearchPath: true}.Find()
}
