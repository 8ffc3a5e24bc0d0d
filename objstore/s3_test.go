package objstore_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/streamhouse/streamhouse/objstore"
	"github.com/streamhouse/streamhouse/objstore/s3test"
)

// s3TestConfig is srv's config with small multipart sizes, so largeSize
// objects go up in three parts, and short backoffs.
func s3TestConfig(srv *s3test.Server) objstore.S3Config {
	cfg := srv.Config()
	cfg.MultipartThreshold = 6 << 20
	cfg.PartSize = 5 << 20 // S3's minimum
	cfg.MaxBackoff = 50 * time.Millisecond
	return cfg
}

func newS3(t *testing.T, cfg objstore.S3Config) *objstore.S3 {
	t.Helper()
	s, err := objstore.NewS3(context.Background(), cfg)
	if err != nil {
		t.Fatalf("NewS3: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// TestS3Conformance runs the shared suite against a real versitygw: once
// with a fresh bucket per subtest, once with a fresh key prefix in one
// bucket.
func TestS3Conformance(t *testing.T) {
	srv := s3test.Start(t)
	n := 0
	t.Run("Bucket", func(t *testing.T) {
		runConformance(t, func(t *testing.T) objstore.Store {
			n++
			cfg := s3TestConfig(srv)
			cfg.Bucket = fmt.Sprintf("conformance-%d", n)
			srv.CreateBucket(t, cfg.Bucket)
			return newS3(t, cfg)
		})
	})
	t.Run("Prefix", func(t *testing.T) {
		runConformance(t, func(t *testing.T) objstore.Store {
			n++
			cfg := s3TestConfig(srv)
			cfg.Prefix = fmt.Sprintf("/cluster/%d/", n)
			return newS3(t, cfg)
		})
	})
}

func TestS3Prefix(t *testing.T) {
	srv := s3test.Start(t)
	ctx := context.Background()
	cfg := s3TestConfig(srv)
	cfg.Prefix = "/cluster-1/"
	s1 := newS3(t, cfg)
	put(t, s1, "t/0/seg", []byte("seg"))

	// The object is stored under the prefix.
	file := filepath.Join(srv.Dir, srv.Bucket, "cluster-1", "t", "0", "seg")
	if data, err := os.ReadFile(file); err != nil || string(data) != "seg" {
		t.Fatalf("object file %s = %q, %v; want %q", file, data, err, "seg")
	}
	whole := newS3(t, s3TestConfig(srv))
	assertList(t, whole, "", []objstore.ObjectInfo{{Key: "cluster-1/t/0/seg", Size: 3}})

	// A store with another prefix sees nothing of it.
	cfg.Prefix = "cluster-2"
	s2 := newS3(t, cfg)
	assertList(t, s2, "", nil)
	if _, err := s2.Get(ctx, "t/0/seg"); !errors.Is(err, objstore.ErrNotFound) {
		t.Fatalf("Get through another prefix: error = %v, want ErrNotFound", err)
	}
}

func TestS3WrongCredentials(t *testing.T) {
	srv := s3test.Start(t)
	ctx := context.Background()
	tests := []struct {
		name           string
		access, secret string
		code           string
	}{
		{"wrong secret", srv.AccessKey, "wrong-secret", "SignatureDoesNotMatch"},
		// AWS says InvalidAccessKeyId (403); versitygw XAdminUserNotFound (404).
		{"unknown access key", "no-such-user", srv.SecretKey, "XAdminUserNotFound"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := s3TestConfig(srv)
			cfg.AccessKey, cfg.SecretKey = tt.access, tt.secret
			s := newS3(t, cfg)
			err := s.Put(ctx, "k", bytes.NewReader([]byte("v")), 1)
			if !errors.Is(err, objstore.ErrPermanent) {
				t.Fatalf("Put with wrong credentials: error = %v, want ErrPermanent", err)
			}
			t.Logf("error: %v", err)
			msg := err.Error()
			for _, want := range []string{"credentials", `put "k"`, fmt.Sprintf("bucket %q", srv.Bucket), tt.code} {
				if !strings.Contains(msg, want) {
					t.Errorf("error %q does not mention %q", msg, want)
				}
			}
			if _, err := s.Get(ctx, "k"); !errors.Is(err, objstore.ErrPermanent) {
				t.Errorf("Get with wrong credentials: error = %v, want ErrPermanent", err)
			}
			if err := s.CheckBucket(ctx); !errors.Is(err, objstore.ErrPermanent) || !strings.Contains(err.Error(), "credentials") {
				t.Errorf("CheckBucket with wrong credentials: error = %v, want ErrPermanent mentioning credentials", err)
			}
		})
	}
}

func TestS3MissingBucket(t *testing.T) {
	srv := s3test.Start(t)
	ctx := context.Background()
	if err := newS3(t, s3TestConfig(srv)).CheckBucket(ctx); err != nil {
		t.Fatalf("CheckBucket of an existing bucket: %v", err)
	}
	cfg := s3TestConfig(srv)
	cfg.Bucket = "no-such-bucket"
	s := newS3(t, cfg)
	checks := map[string]error{
		"CheckBucket": s.CheckBucket(ctx),
		"Put":         s.Put(ctx, "k", bytes.NewReader([]byte("v")), 1),
	}
	_, checks["Get"] = s.Get(ctx, "k")
	_, checks["List"] = s.List(ctx, "")
	for op, err := range checks {
		if !errors.Is(err, objstore.ErrPermanent) || !strings.Contains(err.Error(), "bucket does not exist") {
			t.Errorf("%s on a missing bucket: error = %v, want ErrPermanent saying the bucket does not exist", op, err)
		}
	}
}

func TestNewS3Config(t *testing.T) {
	ok := objstore.S3Config{Bucket: "b", Region: "us-east-1", AccessKey: "k", SecretKey: "s"}
	tests := []struct {
		name   string
		change func(*objstore.S3Config)
	}{
		{"no bucket", func(c *objstore.S3Config) { c.Bucket = "" }},
		{"access key without secret", func(c *objstore.S3Config) { c.SecretKey = "" }},
		{"secret without access key", func(c *objstore.S3Config) { c.AccessKey = "" }},
		{"part too small", func(c *objstore.S3Config) { c.PartSize = 1 << 20 }},
		{"negative threshold", func(c *objstore.S3Config) { c.MultipartThreshold = -1 }},
		{"negative attempts", func(c *objstore.S3Config) { c.MaxAttempts = -1 }},
		{"bad prefix", func(c *objstore.S3Config) { c.Prefix = "a/../b" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := ok
			tt.change(&cfg)
			if _, err := objstore.NewS3(context.Background(), cfg); !errors.Is(err, objstore.ErrPermanent) {
				t.Fatalf("NewS3 error = %v, want ErrPermanent", err)
			}
		})
	}
	newS3(t, ok) // the unchanged config is accepted
}
