package harness

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// shBinary is the streamhouse binary built once per test binary.
var shBinary struct {
	once sync.Once
	path string
	err  error
}

// streamhouseBinary returns $COMPAT_STREAMHOUSE_BIN, or builds ../cmd/streamhouse
// (the repository that holds compat-tests/) into a temp dir once.
func streamhouseBinary() (string, error) {
	if p := os.Getenv("COMPAT_STREAMHOUSE_BIN"); p != "" {
		return p, nil
	}
	shBinary.once.Do(func() {
		root, err := ModuleDir()
		if err != nil {
			shBinary.err = err
			return
		}
		dir, err := TempDir("compat-streamhouse-bin-")
		if err != nil {
			shBinary.err = err
			return
		}
		out := filepath.Join(dir, "streamhouse")
		cmd := exec.Command("go", "build", "-o", out, "./cmd/streamhouse")
		cmd.Dir = filepath.Dir(root)
		fmt.Fprintf(os.Stderr, "harness: go build ./cmd/streamhouse in %s\n", cmd.Dir)
		if b, err := cmd.CombinedOutput(); err != nil {
			shBinary.err = fmt.Errorf("go build ./cmd/streamhouse: %v\n%s", err, b)
			return
		}
		shBinary.path = out
	})
	return shBinary.path, shBinary.err
}

// streamhouseBroker is a streamhouse process with its own data dir.
type streamhouseBroker struct {
	addr string
	proc *process
}

// StartStreamHouse starts the streamhouse binary with its data under dir,
// its Kafka listener on a free 127.0.0.1 port (advertised as that address)
// and gRPC and HTTP on ephemeral 127.0.0.1 ports, and waits until its Kafka
// listener answers ApiVersions.
func StartStreamHouse(dir string) (Broker, error) {
	return startStreamHouse(dir, nil)
}

// startStreamHouse is StartStreamHouse; with sasl not nil the Kafka
// listeners are --kafka-listeners PLAINTEXT (the returned broker's
// Bootstrap) and sasl's SASL listener, with sasl's admin user as
// --bootstrap-user (passed in the environment) and, for SASL_SSL, its
// certificate.
func startStreamHouse(dir string, sasl *saslListener) (Broker, error) {
	bin, err := streamhouseBinary()
	if err != nil {
		return nil, err
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	listener := []string{"--kafka-addr", addr}
	env := streamhouseEnv()
	if sasl != nil {
		listener = []string{"--kafka-listeners", fmt.Sprintf("PLAINTEXT://%s,%s://%s", addr, sasl.protocol, sasl.addr)}
		if sasl.protocol == "SASL_SSL" {
			listener = append(listener, "--tls-cert", sasl.certFile, "--tls-key", sasl.keyFile)
		}
		env = append(env, "STREAMHOUSE_BOOTSTRAP_USER="+SASLAdminUser+":"+SASLAdminPassword)
	}
	args := append([]string{
		"--data-dir", filepath.Join(dir, "data")}, listener...)
	args = append(args,
		"--grpc-addr", "127.0.0.1:0",
		"--http-addr", "127.0.0.1:0",
		// As the harness's Kafka runs (log.cleaner.backoff.ms=1000), so
		// compaction happens within the compacted-topic tests.
		"--log-cleaner-backoff", "1s")
	cmd := exec.Command(bin, args...)
	cmd.Env = env
	p, err := startProcess(cmd, filepath.Join(dir, "streamhouse.log"))
	if err != nil {
		return nil, err
	}
	b := &streamhouseBroker{addr: addr, proc: p}
	if err := waitAPIVersions(addr, p, 30*time.Second); err != nil {
		_ = p.stop(5 * time.Second)
		return nil, fmt.Errorf("streamhouse on %s: %w", addr, err)
	}
	return b, nil
}

// streamhouseEnv is the environment without STREAMHOUSE_* settings, so a
// developer's shell cannot change the broker under test.
func streamhouseEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "STREAMHOUSE_") {
			env = append(env, kv)
		}
	}
	return env
}

func (b *streamhouseBroker) Kind() Kind        { return StreamHouse }
func (b *streamhouseBroker) Bootstrap() string { return b.addr }
func (b *streamhouseBroker) Stop() error       { return b.proc.stop(15 * time.Second) }
func (b *streamhouseBroker) LogTail() string   { return b.proc.logTail() }

// waitAPIVersions polls until addr answers ApiVersions, p exits, or timeout.
func waitAPIVersions(addr string, p *process, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		err := apiVersions(addr, 2*time.Second)
		if err == nil {
			return nil
		}
		if perr := p.running(); perr != nil {
			return perr
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("no ApiVersions answer within %v: %v\n%s", timeout, err, p.logTail())
		}
		time.Sleep(100 * time.Millisecond)
	}
}
