// Package pgtest runs a throwaway PostgreSQL server for tests: initdb into
// a temporary directory, postgres on a free port of 127.0.0.1, fsync off.
// One server serves the whole test binary; each test gets a fresh database
// of its own.
//
//	func TestMain(m *testing.M) { goleak.VerifyTestMain(pgtest.Main(m)) }
//
//	func TestSomething(t *testing.T) {
//		store, err := meta.OpenPostgres(ctx, pgtest.DB(t))
//
// The server starts at the first DB call and stops when the function Main
// wrapped returns (on Linux the kernel also kills it if the test binary
// dies first). PostgreSQL refuses to run as root, so a test binary running
// as root runs initdb and postgres as the user "postgres".
//
// The binaries are found with pg_config --bindir, then in
// /usr/lib/postgresql/*/bin (newest version first), then on PATH. Without
// them DB skips the test saying so, unless the environment variable CI is
// set: then it fails, so CI never passes by skipping.
package pgtest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/streamhouse/streamhouse/internal/testproc"
)

// Timeouts for starting and stopping the server.
const (
	startTimeout = 60 * time.Second
	stopTimeout  = 15 * time.Second
	startTries   = 3
	// adminTimeout bounds CREATE DATABASE and DROP DATABASE.
	adminTimeout = 30 * time.Second
)

// superuser is the role initdb creates; it needs no password (trust).
const superuser = "postgres"

// M is what Main wraps and returns: *testing.M, or anything with its Run.
type M interface{ Run() int }

// shared is the one server of this test binary. A package variable
// because the server outlives any single test: it is started by the first
// DB call and stopped by Main.
var shared struct {
	// mu guards every field below.
	mu  sync.Mutex
	srv *server // nil until started, and again after stop
	// err is why the server could not start, so later tests fail or
	// skip at once with the same reason instead of trying again.
	err  error
	skip bool // err means "not installed here", not a failure
	// seq numbers the databases handed out.
	seq int
}

// Main returns m wrapped so that its Run also stops the shared server
// (and removes its directory) after the tests, before goleak or anything
// else that wraps it looks for leftovers.
func Main(m M) M { return mainM{m} }

// mainM is Main's result.
type mainM struct{ m M }

// Run runs the tests, then stops the shared server if one was started.
func (w mainM) Run() int {
	code := w.m.Run()
	if err := Stop(); err != nil {
		fmt.Fprintf(os.Stderr, "pgtest: %v\n", err)
		if code == 0 {
			code = 1
		}
	}
	return code
}

// Stop stops the shared server, if running, and removes its directory.
// Main calls it; call it yourself only from a TestMain that does not use
// Main. A later DB starts a new server.
func Stop() error {
	shared.mu.Lock()
	defer shared.mu.Unlock()
	srv := shared.srv
	shared.srv = nil
	if srv == nil {
		return nil
	}
	return srv.stop()
}

// DB creates a new, empty database on the shared server (starting the
// server first if need be), registers a t.Cleanup that drops it, and
// returns its connection URL, "postgres://postgres@127.0.0.1:PORT/NAME".
// It skips t if PostgreSQL is not installed and CI is unset, and fails t
// if the server cannot be started or the database created.
func DB(t testing.TB) string {
	t.Helper()
	srv, name := acquire(t)
	ctx, cancel := context.WithTimeout(context.Background(), adminTimeout)
	defer cancel()
	if err := srv.admin(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		t.Fatalf("pgtest: create database %s: %v\n%s", name, err, testproc.LogTail("postgres", srv.log))
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), adminTimeout)
		defer cancel()
		// FORCE ends sessions a failed test left open.
		err := srv.admin(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)")
		if err != nil {
			t.Errorf("pgtest: drop database %s: %v", name, err)
		}
	})
	return srv.url(name)
}

// acquire returns the shared server, starting it if need be, and a fresh
// database name for t.
func acquire(t testing.TB) (*server, string) {
	t.Helper()
	shared.mu.Lock()
	defer shared.mu.Unlock()
	if shared.srv == nil && shared.err == nil {
		shared.srv, shared.skip, shared.err = start()
	}
	if shared.err != nil {
		if shared.skip && os.Getenv("CI") == "" {
			t.Skipf("pgtest: %v (CI unset, so skipping)", shared.err)
		}
		t.Fatalf("pgtest: %v", shared.err)
	}
	shared.seq++
	return shared.srv, dbName(shared.seq, t.Name())
}

// nonIdent matches what dbName drops from a test name.
var nonIdent = regexp.MustCompile(`[^a-z0-9_]+`)

// dbName builds a unique database name that says which test owns it,
// within PostgreSQL's 63-byte identifier limit.
func dbName(seq int, test string) string {
	s := nonIdent.ReplaceAllString(strings.ToLower(test), "_")
	const maxTest = 48
	if len(s) > maxTest {
		s = s[len(s)-maxTest:]
	}
	return fmt.Sprintf("t%d_%s", seq, s)
}

// server is one running postgres with its directory.
type server struct {
	dir  string // temporary directory, owned by the server's user
	data string // the cluster's data directory, under dir
	log  string // the server's output, under dir
	bin  string // directory holding initdb and postgres
	addr string // 127.0.0.1:PORT
	cred *syscall.Credential
	cmd  *exec.Cmd
	// exited delivers cmd.Wait's result once.
	exited chan error
}

// start finds the binaries, runs initdb and starts postgres. skip reports
// that err means PostgreSQL is not installed (or not runnable here) rather
// than a failure of an installed one.
func start() (srv *server, skip bool, err error) {
	bin, err := binDir()
	if err != nil {
		return nil, true, err
	}
	cred, err := credential()
	if err != nil {
		return nil, true, err
	}
	dir, err := os.MkdirTemp("", "pgtest-")
	if err != nil {
		return nil, false, err
	}
	srv = &server{
		dir:  dir,
		data: filepath.Join(dir, "data"),
		log:  filepath.Join(dir, "postgres.log"),
		bin:  bin,
		cred: cred,
	}
	if err := srv.initdb(); err != nil {
		_ = os.RemoveAll(dir)
		return nil, false, err
	}
	// The free port may be taken between our probe and the server's bind:
	// then the server exits and we try another port.
	for range startTries {
		if err = srv.launch(); err == nil {
			return srv, false, nil
		}
	}
	_ = os.RemoveAll(dir)
	return nil, false, fmt.Errorf("start postgres (%s): %w\n%s", bin, err, testproc.LogTail("postgres", srv.log))
}

// binDir returns the directory holding initdb and postgres.
func binDir() (string, error) {
	var candidates []string
	if out, err := exec.Command("pg_config", "--bindir").Output(); err == nil {
		candidates = append(candidates, strings.TrimSpace(string(out)))
	}
	versions, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(versions, func(i, j int) bool { return versionOf(versions[i]) > versionOf(versions[j]) })
	candidates = append(candidates, versions...)
	if p, err := exec.LookPath("initdb"); err == nil {
		candidates = append(candidates, filepath.Dir(p))
	}
	for _, dir := range candidates {
		if isExec(filepath.Join(dir, "initdb")) && isExec(filepath.Join(dir, "postgres")) {
			return dir, nil
		}
	}
	return "", errors.New("PostgreSQL not installed: no initdb and postgres via pg_config --bindir, " +
		"in /usr/lib/postgresql/*/bin or on PATH (Debian/Ubuntu: apt-get install postgresql)")
}

// versionOf returns N of /usr/lib/postgresql/N/bin, or 0.
func versionOf(bin string) int {
	v, _ := strconv.Atoi(filepath.Base(filepath.Dir(bin)))
	return v
}

// isExec reports whether path is an executable regular file.
func isExec(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0
}

// credential returns whom to run the server as: nil (ourselves) unless we
// are root, which PostgreSQL refuses; then the user "postgres".
func credential() (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, fmt.Errorf("running as root, and PostgreSQL refuses root: need the user \"postgres\" to run it as: %w", err)
	}
	uid, err1 := strconv.ParseUint(u.Uid, 10, 32)
	gid, err2 := strconv.ParseUint(u.Gid, 10, 32)
	if err := errors.Join(err1, err2); err != nil {
		return nil, fmt.Errorf("user postgres: %w", err)
	}
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
}

// command builds a command running one of the server's binaries as the
// server's user, in its directory, with output appended to the log.
func (s *server) command(logf *os.File, name string, args ...string) *exec.Cmd {
	cmd := exec.Command(filepath.Join(s.bin, name), args...)
	cmd.Dir = s.dir
	cmd.Env = append(os.Environ(), "LC_ALL=C", "TZ=UTC")
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = sysProcAttr(s.cred)
	return cmd
}

// openLog opens the log file for appending.
func (s *server) openLog() (*os.File, error) {
	return os.OpenFile(s.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
}

// initdb creates the cluster: superuser postgres, trust authentication
// (the server listens on 127.0.0.1 only), UTF-8, C locale.
func (s *server) initdb() error {
	if s.cred != nil {
		if err := os.Chown(s.dir, int(s.cred.Uid), int(s.cred.Gid)); err != nil {
			return fmt.Errorf("chown %s: %w", s.dir, err)
		}
	}
	logf, err := s.openLog()
	if err != nil {
		return err
	}
	defer logf.Close()
	cmd := s.command(logf, "initdb",
		"--pgdata", s.data,
		"--username", superuser,
		"--auth", "trust",
		"--encoding", "UTF8",
		"--locale", "C",
		"--no-sync")
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("initdb: %w\n%s", err, testproc.LogTail("postgres", s.log))
	}
	return nil
}

// launch starts postgres on a free port and waits until it accepts
// connections.
func (s *server) launch() error {
	addr, err := testproc.FreeAddr()
	if err != nil {
		return err
	}
	_, port, _ := net.SplitHostPort(addr)
	logf, err := s.openLog()
	if err != nil {
		return err
	}
	defer logf.Close() // the child has its own copy
	// Durability is worthless for a throwaway server; speed is not.
	cmd := s.command(logf, "postgres",
		"-D", s.data,
		"-c", "listen_addresses=127.0.0.1",
		"-c", "port="+port,
		"-c", "unix_socket_directories=",
		"-c", "fsync=off",
		"-c", "synchronous_commit=off",
		"-c", "full_page_writes=off",
		"-c", "max_connections=300")
	if err := cmd.Start(); err != nil {
		return err
	}
	s.cmd, s.addr, s.exited = cmd, addr, make(chan error, 1)
	go func() { s.exited <- cmd.Wait() }()
	if err := s.waitReady(); err != nil {
		_ = s.stopProcess()
		return err
	}
	return nil
}

// waitReady polls the server until it accepts a connection, it exits, or
// startTimeout passes.
func (s *server) waitReady() error {
	deadline := time.Now().Add(startTimeout)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		conn, err := pgx.Connect(ctx, s.url("postgres"))
		cancel()
		if err == nil {
			return conn.Close(context.Background())
		}
		select {
		case err := <-s.exited:
			s.exited <- err // keep it for stopProcess
			return fmt.Errorf("postgres exited before accepting connections: %v", err)
		case <-tick.C:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("postgres did not accept connections at %s within %s: %v", s.addr, startTimeout, err)
		}
	}
}

// url returns the connection URL of database name.
func (s *server) url(name string) string {
	return "postgres://" + superuser + "@" + s.addr + "/" + name + "?sslmode=disable"
}

// admin runs one statement in the maintenance database "postgres".
func (s *server) admin(ctx context.Context, stmt string) error {
	conn, err := pgx.Connect(ctx, s.url("postgres"))
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	_, err = conn.Exec(ctx, stmt)
	return err
}

// stop stops the process and removes the directory.
func (s *server) stop() error {
	err := s.stopProcess()
	return errors.Join(err, os.RemoveAll(s.dir))
}

// stopProcess ends postgres: SIGINT (fast shutdown: roll back open
// transactions, disconnect clients), then SIGKILL after stopTimeout.
func (s *server) stopProcess() error {
	select {
	case err := <-s.exited:
		s.exited <- err
		return nil // already gone
	default:
	}
	if err := s.cmd.Process.Signal(os.Interrupt); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return err
	}
	select {
	case err := <-s.exited:
		s.exited <- err
		return nil
	case <-time.After(stopTimeout):
	}
	if err := s.cmd.Process.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return err
	}
	err := <-s.exited
	s.exited <- err
	return fmt.Errorf("postgres ignored SIGINT for %s and was killed", stopTimeout)
}
