// Package s3test runs a real S3-compatible server for tests: versitygw
// (see Version) with its posix backend, on 127.0.0.1, one process per
// Start, stopped when the test ends.
//
//	srv := s3test.Start(t)
//	store, err := objstore.NewS3(ctx, srv.Config())
//
// A test of an outage stops the server and starts it again on the same
// address and data (Stop, Restart), so clients keep their endpoint.
//
// Tests never skip for want of the server: Start fails the test with a
// message saying how to install it (see Binary).
package s3test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/streamhouse/streamhouse/internal/testproc"
	"github.com/streamhouse/streamhouse/objstore"
)

// Server is a running versitygw.
type Server struct {
	// Endpoint is the server's URL, "http://127.0.0.1:PORT".
	Endpoint string
	// Region is the region the server signs for.
	Region string
	// Bucket is a bucket that Start created, empty.
	Bucket string
	// AccessKey and SecretKey are the root user's credentials.
	AccessKey string
	SecretKey string
	// Dir is the posix backend's root: each bucket is a subdirectory.
	Dir string
	// Log is the file holding the server's output.
	Log string

	bin string
	// mu guards p, the running process (nil while stopped).
	mu sync.Mutex
	p  *proc
}

// Timeouts for starting and stopping the server.
const (
	startTimeout = 30 * time.Second
	stopTimeout  = 10 * time.Second
	startTries   = 3
)

// Start starts a versitygw on a free port of 127.0.0.1, waits until it
// answers, creates the bucket "streamhouse" and registers a t.Cleanup that
// stops the server. It fails t if any of that fails.
func Start(t testing.TB) *Server {
	t.Helper()
	bin := Binary(t)
	base := t.TempDir()
	srv := &Server{
		bin:       bin,
		Region:    "us-east-1",
		Bucket:    "streamhouse",
		AccessKey: "streamhouse-test",
		SecretKey: "streamhouse-test-secret",
		Dir:       filepath.Join(base, "root"),
		Log:       filepath.Join(base, "versitygw.log"),
	}
	if err := os.Mkdir(srv.Dir, 0o755); err != nil {
		t.Fatalf("s3test: %v", err)
	}
	// The free port may be taken between our probe and the server's bind:
	// then the server exits and we try another port.
	var lastErr error
	for range startTries {
		addr, err := testproc.FreeAddr()
		if err != nil {
			t.Fatalf("s3test: %v", err)
		}
		p, err := srv.launch(addr)
		if err == nil {
			srv.Endpoint, srv.p = "http://"+addr, p
			t.Cleanup(func() {
				srv.mu.Lock()
				p := srv.p
				srv.p = nil
				srv.mu.Unlock()
				if p == nil {
					return // stopped by the test and not restarted
				}
				if err := p.stop(); err != nil {
					t.Errorf("s3test: stop versitygw: %v", err)
				}
			})
			srv.CreateBucket(t, srv.Bucket)
			return srv
		}
		lastErr = err
	}
	t.Fatalf("s3test: start versitygw (%s): %v\n%s", bin, lastErr, testproc.LogTail("versitygw", srv.Log))
	return nil
}

// Stop stops the server (SIGTERM, then SIGKILL after a grace period),
// as an outage would: clients then get connection errors. The bucket
// and its objects stay in Dir for Restart. It fails t if the server is
// not running or does not stop.
func (s *Server) Stop(t testing.TB) {
	t.Helper()
	s.mu.Lock()
	p := s.p
	s.p = nil
	s.mu.Unlock()
	if p == nil {
		t.Fatalf("s3test: Stop: versitygw at %s is not running", s.Endpoint)
	}
	if err := p.stop(); err != nil {
		t.Fatalf("s3test: stop versitygw: %v\n%s", err, testproc.LogTail("versitygw", s.Log))
	}
}

// Restart starts the server again after Stop, on the same address (so
// Endpoint stays valid) and over the same Dir (so every bucket and object
// is back), and waits until it answers. It fails t if the server is
// running, or if it cannot start within startTimeout, for instance
// because another process took the port meanwhile.
func (s *Server) Restart(t testing.TB) {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.p != nil {
		t.Fatalf("s3test: Restart: versitygw at %s is running; Stop it first", s.Endpoint)
	}
	addr := strings.TrimPrefix(s.Endpoint, "http://")
	p, err := s.launch(addr)
	if err != nil {
		t.Fatalf("s3test: restart versitygw on %s: %v\n%s", addr, err, testproc.LogTail("versitygw", s.Log))
	}
	s.p = p
}

// Config returns an objstore.S3Config for the server's bucket.
func (s *Server) Config() objstore.S3Config {
	return objstore.S3Config{
		Bucket:    s.Bucket,
		Region:    s.Region,
		Endpoint:  s.Endpoint,
		PathStyle: true,
		AccessKey: s.AccessKey,
		SecretKey: s.SecretKey,
	}
}

// CreateBucket creates another bucket on the server.
func (s *Server) CreateBucket(t testing.TB, name string) {
	t.Helper()
	tr := &http.Transport{DisableKeepAlives: true}
	defer tr.CloseIdleConnections()
	client := s3.New(s3.Options{
		Region:       s.Region,
		BaseEndpoint: aws.String(s.Endpoint),
		UsePathStyle: true,
		Credentials:  credentials.NewStaticCredentialsProvider(s.AccessKey, s.SecretKey, ""),
		HTTPClient:   &http.Client{Transport: tr},
	})
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	if _, err := client.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(name)}); err != nil {
		t.Fatalf("s3test: create bucket %q: %v\n%s", name, err, testproc.LogTail("versitygw", s.Log))
	}
}

// proc is one versitygw process. exited delivers cmd.Wait's result once.
type proc struct {
	cmd    *exec.Cmd
	exited chan error
}

// launch starts versitygw on addr and waits until it answers.
func (s *Server) launch(addr string) (*proc, error) {
	logf, err := os.OpenFile(s.Log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	defer logf.Close() // the child has its own copy
	cmd := exec.Command(s.bin,
		"--port", addr,
		"--access", s.AccessKey,
		"--secret", s.SecretKey,
		"--region", s.Region,
		"--keep-alive",
		"--quiet",
		"posix", s.Dir)
	cmd.Stdout, cmd.Stderr = logf, logf
	dieWithParent(cmd)
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &proc{cmd: cmd, exited: make(chan error, 1)}
	go func() { p.exited <- cmd.Wait() }()
	if err := p.waitReady("http://" + addr); err != nil {
		_ = p.stop()
		return nil, err
	}
	return p, nil
}

// waitReady polls the server until it answers as versitygw, it exits, or
// startTimeout passes.
func (p *proc) waitReady(endpoint string) error {
	tr := &http.Transport{DisableKeepAlives: true}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: time.Second}
	deadline := time.Now().Add(startTimeout)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		resp, err := client.Get(endpoint)
		if err == nil {
			resp.Body.Close()
			if resp.Header.Get("Server") == "VERSITYGW" {
				return nil
			}
		}
		select {
		case err := <-p.exited:
			p.exited <- err // keep it for stop
			return fmt.Errorf("versitygw exited before answering: %v", err)
		case <-tick.C:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("versitygw did not answer at %s within %s", endpoint, startTimeout)
		}
	}
}

// stop ends the process: SIGTERM, then SIGKILL after stopTimeout.
func (p *proc) stop() error {
	select {
	case <-p.exited:
		return nil // already gone
	default:
	}
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return err
	}
	select {
	case <-p.exited:
		return nil
	case <-time.After(stopTimeout):
	}
	if err := p.cmd.Process.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return err
	}
	<-p.exited
	return fmt.Errorf("versitygw ignored SIGTERM for %s and was killed", stopTimeout)
}
