// Package harness starts the broker under test for StreamHouse's compatibility
// suite and checks what stock clients read back.
//
// The broker is chosen by the environment:
//
//	COMPAT_BROKER=streamhouse (default)  go build ../cmd/streamhouse, one fresh broker
//	                                     (fresh data dir) per test
//	COMPAT_BROKER=kafka                  Apache Kafka 4.4.0, single-node KRaft, from the
//	                                     jars setup.sh fetched; one broker per test binary
//	                                     (it takes seconds to start), a fresh topic per
//	                                     test; COMPAT_FRESH_BROKER=1 starts one per test
//	COMPAT_BOOTSTRAP=host:port           an already-running broker; COMPAT_BROKER still
//	                                     says which kind it is (which tests to skip)
//
// Tests of SASL call StartSASL instead of Start: a fresh broker of either kind
// with a SASL_PLAINTEXT or SASL_SSL listener (SCRAM) besides PLAINTEXT.
//
// Every server binds 127.0.0.1 and is stopped when its test (or the binary) ends.
package harness

import (
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
)

// Kind names the broker implementation under test.
type Kind string

// The broker kinds COMPAT_BROKER selects.
const (
	StreamHouse Kind = "streamhouse"
	ApacheKafka Kind = "kafka"
)

// Broker is a running broker under test.
type Broker interface {
	// Kind says which implementation it is.
	Kind() Kind
	// Bootstrap is the host:port clients connect to.
	Bootstrap() string
	// Stop stops the broker (a no-op for one the harness did not start).
	Stop() error
	// LogTail returns the last lines of the broker's own log, for failures.
	LogTail() string
}

// SelectedKind is the kind named by COMPAT_BROKER.
func SelectedKind() Kind {
	switch k := Kind(strings.ToLower(os.Getenv("COMPAT_BROKER"))); k {
	case "", StreamHouse:
		return StreamHouse
	case ApacheKafka:
		return ApacheKafka
	default:
		panic(fmt.Sprintf("COMPAT_BROKER=%q: want streamhouse or kafka", k))
	}
}

// shared holds the broker a whole test binary shares (Apache Kafka takes
// seconds to start). It is the harness's one piece of process state: Main
// stops it when the tests are done.
var shared struct {
	mu   sync.Mutex
	b    Broker
	err  error
	dirs []string // made by TempDir, removed by Main
}

// TempDir makes a directory that lives as long as the test binary (Main
// removes it), for things built once and shared by tests.
func TempDir(prefix string) (string, error) {
	dir, err := os.MkdirTemp("", prefix)
	if err == nil {
		shared.mu.Lock()
		shared.dirs = append(shared.dirs, dir)
		shared.mu.Unlock()
	}
	return dir, err
}

// Main runs a test binary's tests, then stops the shared broker, if one was
// started, and removes the directories TempDir made. Call it from TestMain.
func Main(m *testing.M) {
	code := m.Run()
	shared.mu.Lock()
	if shared.b != nil {
		if err := shared.b.Stop(); err != nil {
			fmt.Fprintf(os.Stderr, "harness: stopping the shared broker: %v\n", err)
		}
	}
	for _, d := range shared.dirs {
		os.RemoveAll(d)
	}
	shared.mu.Unlock()
	os.Exit(code)
}

// Start returns the broker for test t: it first skips t, printing why, when
// the selected broker lacks a feature that t needs (see Requirements). The
// broker is fresh for StreamHouse, shared for Apache Kafka (unless
// COMPAT_FRESH_BROKER=1) and external with COMPAT_BOOTSTRAP.
func Start(t testing.TB) Broker {
	t.Helper()
	kind := SelectedKind()
	SkipUnsupported(t, kind)
	if addr := os.Getenv("COMPAT_BOOTSTRAP"); addr != "" {
		b := external{kind: kind, addr: addr}
		WaitReady(t, b)
		return b
	}
	if kind == ApacheKafka && os.Getenv("COMPAT_FRESH_BROKER") != "1" {
		return sharedKafka(t)
	}
	var b Broker
	var err error
	if kind == ApacheKafka {
		b, err = StartKafka(t.TempDir())
	} else {
		b, err = StartStreamHouse(t.TempDir())
	}
	if err != nil {
		t.Fatalf("start %s: %v", kind, err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("%s log tail:\n%s", kind, b.LogTail())
		}
		if err := b.Stop(); err != nil {
			t.Errorf("stop %s: %v", kind, err)
		}
	})
	return b
}

func sharedKafka(t testing.TB) Broker {
	t.Helper()
	shared.mu.Lock()
	defer shared.mu.Unlock()
	if shared.b == nil && shared.err == nil {
		dir, err := os.MkdirTemp("", "compat-kafka-") // not TempDir: shared.mu is held
		if err == nil {
			shared.dirs = append(shared.dirs, dir)
			shared.b, err = StartKafka(dir)
		}
		shared.err = err
	}
	if shared.err != nil {
		t.Fatalf("start Apache Kafka: %v", shared.err)
	}
	b := shared.b
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("kafka log tail:\n%s", b.LogTail())
		}
	})
	return b
}

// external is a broker the harness did not start (COMPAT_BOOTSTRAP).
type external struct {
	kind Kind
	addr string
}

func (e external) Kind() Kind        { return e.kind }
func (e external) Bootstrap() string { return e.addr }
func (e external) Stop() error       { return nil }
func (e external) LogTail() string   { return "(external broker: no log)" }
