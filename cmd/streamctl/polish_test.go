package main

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/streamhouse/streamhouse/grpcapi/grpcapitest"
)

// TestVersion checks --version: the module version, the VCS revision the
// binary was built from (TestMain builds with -buildvcs=auto, so a
// checkout stamps it) and the toolchain.
func TestVersion(t *testing.T) {
	r := streamctl(t, "127.0.0.1:1", "", "--version")
	if r.code != 0 || r.stderr != "" || !strings.HasPrefix(r.stdout, "streamctl ") ||
		!strings.HasSuffix(r.stdout, " "+runtime.Version()+" "+runtime.GOOS+"/"+runtime.GOARCH+"\n") {
		t.Fatalf("--version: %+v", r)
	}
	head, err := exec.Command("git", "rev-parse", "HEAD").Output()
	if err != nil {
		t.Logf("not a git checkout (%v): the revision is not checked", err)
		return
	}
	if want := "(revision " + strings.TrimSpace(string(head))[:12]; !strings.Contains(r.stdout, want) {
		t.Fatalf("--version printed %q, want %q", r.stdout, want)
	}
}

// TestOutputFlag checks that -o and --output are the output format in
// every command, including consume and offset commit, where --offset is
// the offset and the old -o OFFSET still works with a warning on stderr.
func TestOutputFlag(t *testing.T) {
	e := startBroker(t)
	ok(t, e.Addr, "", "topic", "create", "t")
	ok(t, e.Addr, "a\nb\nc\n", "produce", "t", "--stdin")
	for _, args := range [][]string{
		{"topic", "list", "-o", "json"}, {"topic", "get", "t", "-o", "json"}, {"produce", "t", "-v", "d", "-o", "json"},
		{"consume", "t", "--offset", "3", "-o", "json"}, {"-o", "json", "consume", "t", "--offset", "3"},
		{"offset", "commit", "-g", "g", "-t", "t", "--offset", "1", "-o", "json"},
		{"offset", "get", "-g", "g", "-t", "t", "--output", "json"},
	} {
		out := ok(t, e.Addr, "", args...)
		var obj map[string]any
		if err := json.Unmarshal([]byte(strings.SplitN(out, "\n", 2)[0]), &obj); err != nil {
			t.Fatalf("streamctl %s printed %q, not JSON lines: %v", strings.Join(args, " "), out, err)
		}
	}

	want := ok(t, e.Addr, "", "consume", "t", "--offset", "1")
	r := streamctl(t, e.Addr, "", "consume", "t", "-o", "1")
	const warning = "streamctl: warning: -o OFFSET is deprecated and will stop working in a later release; " +
		"use --offset 1 (-o is the output format, as in every other command)\n"
	if r.code != 0 || r.stdout != want || r.stderr != warning {
		t.Fatalf("consume -o 1: %+v\nwant stdout %q and the warning", r, want)
	}
	r = streamctl(t, e.Addr, "", "offset", "commit", "-g", "g", "-t", "t", "-o", "2")
	if r.code != 0 || !strings.Contains(r.stdout, `Committed offset 2 for group "g" on t/0`) ||
		r.stderr != strings.ReplaceAll(warning, "--offset 1", "--offset 2") {
		t.Fatalf("offset commit -o 2: %+v", r)
	}
	wantContains(t, ok(t, e.Addr, "", "offset", "get", "-g", "g", "-t", "t"), `Group "g" on t/0: offset 2`)
}

// TestTopicGetOffsets checks topic get's partition table and its JSON,
// also once retention has moved a partition's log start past 0.
func TestTopicGetOffsets(t *testing.T) {
	e := grpcapitest.Start(t, grpcapitest.Options{RetentionInterval: 20 * time.Millisecond})
	ok(t, e.Addr, "", "topic", "create", "t", "-p", "3")
	ok(t, e.Addr, "a\nb\nc\n", "produce", "t", "-p", "2", "--stdin")
	out := ok(t, e.Addr, "", "topic", "get", "t")
	wantContains(t, out, "Config:      (broker defaults)\n\n"+
		"PARTITION  START-OFFSET  END-OFFSET  SIZE\n"+
		"0          0             0           0\n"+
		"1          0             0           0\n"+
		"2          0             3           ")

	ok(t, e.Addr, "", "topic", "create", "short", "-c", "segment.bytes=1024", "-c", "retention.bytes=0")
	var in strings.Builder
	for i := range 200 {
		fmt.Fprintf(&in, "record-%03d-%s\n", i, strings.Repeat("x", 40))
	}
	ok(t, e.Addr, in.String(), "produce", "short", "--stdin", "-b", "20")
	p, err := e.Log.Partition("short", 0)
	if err != nil {
		t.Fatal(err)
	}
	var start int64
	waitFor(t, "retention to delete a segment", func() bool { start, _ = p.Offsets(); return start > 0 })
	// Retention goes on deleting while the command runs: the size it
	// reports lies between what the log stores before and after it.
	before := uint64(p.StoredBytes())
	out = ok(t, e.Addr, "", "topic", "get", "short", "-o", "json")
	after := uint64(p.StoredBytes())
	var got struct {
		Parts []partitionInfo `json:"partition_offsets"`
	}
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("topic get -o json: %q: %v", out, err)
	}
	// Retention may move the start on between Offsets and the command.
	if len(got.Parts) != 1 || got.Parts[0].LogStartOffset < uint64(start) || got.Parts[0].HighWatermark != 200 {
		t.Fatalf("partition offsets %+v, want start >= %d and end 200", got.Parts, start)
	}
	if size := got.Parts[0].SizeBytes; size == 0 || size < after/2 || size > before*2 {
		t.Fatalf("partition size %d, the log stores %d before the command and %d after", size, before, after)
	}
}

// TestCompletion runs the bash script the binary prints the way bash's
// programmable completion does, topics included, and checks that the zsh
// script wraps the same one (and loads in zsh, where zsh is installed).
func TestCompletion(t *testing.T) {
	e := startBroker(t)
	ok(t, e.Addr, "", "topic", "create", "orders")
	ok(t, e.Addr, "", "topic", "create", "payments")
	bash := ok(t, "", "", "completion", "bash")
	script := filepath.Join(t.TempDir(), "streamctl.bash")
	if err := os.WriteFile(script, []byte(bash), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		line string // the command line up to the cursor
		want string
	}{
		{"streamctl ", "completion consume help offset produce topic"},
		{"streamctl to", "topic"},
		{"streamctl topic ", "create delete get list"},
		{"streamctl offset c", "commit"},
		{"streamctl completion ", "bash zsh"},
		{"streamctl consume --f", "--follow"},
		{"streamctl -o ", "json text"},
		{"streamctl consume orders -o j", "json"},
		{"streamctl topic create t -c cleanup.p", "cleanup.policy="},
		{"streamctl --v", "--version"},
		{"streamctl -s " + e.Addr + " consume ", "orders payments"},
		{"streamctl -s " + e.Addr + " topic get p", "payments"},
		{"streamctl -s " + e.Addr + " offset get -g g -t o", "orders"},
		{"streamctl -s " + e.Addr + " consume orders ", ""},
		{"streamctl -s 127.0.0.1:1 consume ", ""},
	} {
		t.Run(tc.line, func(t *testing.T) {
			// What bash sets for a completion at the end of the line.
			cmd := exec.Command("bash", "-c", fmt.Sprintf(
				`source %s; COMP_LINE=%q; COMP_POINT=${#COMP_LINE}; _streamctl; printf '%%s\n' "${COMPREPLY[@]}"`,
				script, tc.line))
			// The script runs streamctl as COMP_WORDS[0] names it.
			cmd.Env = append(os.Environ(), "PATH="+filepath.Dir(streamctlBin)+string(os.PathListSeparator)+os.Getenv("PATH"))
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("bash: %v\n%s", err, out)
			}
			got := strings.Fields(string(out))
			slices.Sort(got)
			if strings.Join(got, " ") != tc.want {
				t.Fatalf("completions %q, want %q", got, tc.want)
			}
		})
	}

	zsh := ok(t, "", "", "completion", "zsh")
	if !strings.HasSuffix(zsh, bash) || !strings.Contains(zsh, "bashcompinit") {
		t.Fatalf("the zsh script does not load the bash one through bashcompinit:\n%s", zsh)
	}
	zshBin, err := exec.LookPath("zsh")
	if err != nil {
		t.Logf("zsh not installed: the zsh script is not loaded into zsh")
		return
	}
	zscript := filepath.Join(t.TempDir(), "streamctl.zsh")
	if err := os.WriteFile(zscript, []byte(zsh), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(zshBin, "-f", "-c", "autoload -U compinit && compinit -u -D; source "+zscript+"; print -r -- ${_comps[streamctl]}").CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) == "" {
		t.Fatalf("zsh did not register the completion: %v\n%s", err, out)
	}
}

// TestServerUnreachable checks, on the built binary, that a failed
// connection names the address, the cause and a hint, exit status 1.
func TestServerUnreachable(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := lis.Addr().String()
	lis.Close()
	web := httptest.NewServer(http.NotFoundHandler()) // listens on 127.0.0.1
	defer web.Close()
	notGRPC := strings.TrimPrefix(web.URL, "http://")

	for _, tc := range []struct {
		name string
		env  string // STREAMHOUSE_ADDR
		args []string
		want []string
	}{
		{"refused, address from the environment", closed, nil, []string{
			"Error: cannot reach StreamHouse at " + closed + ": connection refused (nothing listens on that port)\n",
			"Hint: is the broker running? Start it with `go run ./cmd/streamhouse` (or `streamhouse`).\n",
			"      The address " + closed + " is from $STREAMHOUSE_ADDR; give the broker's gRPC address with -s HOST:PORT or $STREAMHOUSE_ADDR.\n",
		}},
		{"refused, address from -s", "127.0.0.1:9", []string{"-s", closed}, []string{
			"Error: cannot reach StreamHouse at " + closed + ": connection refused",
			"The address " + closed + " is from -s;",
		}},
		{"not a gRPC server", closed, []string{"-s", notGRPC}, []string{
			"Error: cannot reach StreamHouse at " + notGRPC + ": ",
			"Hint: something listens there but does not answer as a gRPC server: is it the Kafka port (9092) or the HTTP port (8080)?",
		}},
		{"unknown host", closed, []string{"-s", "no-such-host.invalid:50051"}, []string{
			"Error: cannot reach StreamHouse at no-such-host.invalid:50051: ",
			"Hint: ",
			"The address no-such-host.invalid:50051 is from -s;",
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := streamctl(t, tc.env, "", append(tc.args, "topic", "list")...)
			if r.code != 1 || r.stdout != "" {
				t.Fatalf("got %+v, want exit 1", r)
			}
			wantContains(t, r.stderr, tc.want...)
		})
	}
	// The default address is named as such.
	cmd := exec.Command(streamctlBin, "topic", "list")
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, envAddr+"=") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	out, err := cmd.CombinedOutput()
	if err == nil {
		t.Logf("a server answers on localhost:50051: the default address's message is not checked")
		return
	}
	wantContains(t, string(out), "Error: cannot reach StreamHouse at localhost:50051: ", "The address localhost:50051 is the default;")
}
