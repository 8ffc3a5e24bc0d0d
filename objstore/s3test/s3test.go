// Package s3test runs a real S3-compatible server for tests: versitygw
// (see Version) with its posix backend, on 127.0.0.1, one process per
// Start, stopped when the test ends.
//
//	srv := s3test.Start(t)
//	store, err := objstore.NewS3(ctx, srv.Config())
//
// Tests never skip for want of the server: Start fails the test with a
// message saying how to install it (see Binary).
package s3test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"

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
		p, err := srv.launch(bin)
		if err == nil {
			t.Cleanup(func() {
				if err := p.stop(); err != nil {
					t.Errorf("s3test: stop versitygw: %v", err)
				}
			})
			srv.CreateBucket(t, srv.Bucket)
			return srv
		}
		lastErr = err
	}
	t.Fatalf("s3test: start versitygw (%s): %v\n%s", bin, lastErr, tail(srv.Log))
	return nil
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
		t.Fatalf("s3test: create bucket %q: %v\n%s", name, err, tail(s.Log))
	}
}

// proc is one versitygw process. exited delivers cmd.Wait's result once.
type proc struct {
	cmd    *exec.Cmd
	exited chan error
}

// launch starts versitygw on a fresh port and waits until it answers.
func (s *Server) launch(bin string) (*proc, error) {
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	logf, err := os.OpenFile(s.Log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	defer logf.Close() // the child has its own copy
	cmd := exec.Command(bin,
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
	s.Endpoint = "http://" + addr
	if err := p.waitReady(s.Endpoint); err != nil {
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

// freeAddr returns a 127.0.0.1 address with a port free a moment ago.
func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// tail returns the end of the server's log for failure messages.
func tail(path string) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	const max = 4 << 10
	if len(data) > max {
		data = data[len(data)-max:]
	}
	return "versitygw log (" + path + "):\n" + string(data)
}
