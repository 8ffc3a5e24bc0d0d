package grpcapitest

import (
	"testing"

	"github.com/streamhouse/streamhouse/internal/toolbin"
)

// GrpcurlVersion is the grpcurl release the tests run; tools/go.mod pins it.
const GrpcurlVersion = "v1.9.4"

// EnvGrpcurl names the environment variable that, when set, gives the path
// of the grpcurl binary to use.
const EnvGrpcurl = "STREAMHOUSE_GRPCURL"

const grpcurlPkg = "github.com/fullstorydev/grpcurl/cmd/grpcurl"

// Grpcurl returns the path of the pinned grpcurl, failing t (never
// skipping) when there is none and it cannot be built. It uses
// $STREAMHOUSE_GRPCURL, else <user cache dir>/streamhouse/grpcurl-v1.9.4,
// building it there from the tools module on first use (which needs the Go
// toolchain and the Go module proxy or a warm module cache).
func Grpcurl(t testing.TB) string {
	t.Helper()
	path, err := findGrpcurl()
	if err != nil {
		t.Fatalf("grpcapitest: no grpcurl: %v\nBuild it with `go build -C tools -o <path> %s` and set %s to <path>.",
			err, grpcurlPkg, EnvGrpcurl)
	}
	return path
}

func findGrpcurl() (string, error) {
	return toolbin.Tool{Name: "grpcurl", Version: GrpcurlVersion, Pkg: grpcurlPkg, Env: EnvGrpcurl}.Find()
}
