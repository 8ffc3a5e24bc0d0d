package version

import (
	"runtime"
	"testing"
)

func TestString(t *testing.T) {
	platform := " " + runtime.GOOS + "/" + runtime.GOARCH
	for _, tc := range []struct {
		name string
		info Info
		want string
	}{
		{"unstamped", Info{Version: "(devel)", Go: "go1.26.8"}, "(devel) (revision unknown) go1.26.8"},
		{"tagged", Info{Version: "v1.2.3", Revision: "958932c74f389815ea3b6e23957ee121a21b477b", Time: "2026-12-02T11:17:34Z", Go: "go1.26.8"},
			"v1.2.3 (revision 958932c74f38, 2026-12-02T11:17:34Z) go1.26.8"},
		{"modified", Info{Version: "v0.0.0-20261202111734-958932c74f38+dirty", Revision: "958932c74f38", Modified: true, Go: "go1.26.8"},
			"v0.0.0-20261202111734-958932c74f38+dirty (revision 958932c74f38, modified) go1.26.8"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.info.String(); got != tc.want+platform {
				t.Fatalf("got %q, want %q", got, tc.want+platform)
			}
		})
	}
	if got := Read(); got.Version == "" || got.Go != runtime.Version() {
		t.Fatalf("Read() = %+v", got)
	}
}
