package objstore_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/streamhouse/streamhouse/objstore"
)

// fakeS3 is an httptest server on 127.0.0.1 that answers the n-th request
// (from 0) with answer(n, w, r) and records what it was asked.
type fakeS3 struct {
	mu sync.Mutex
	// requests holds "METHOD /path?query" of every request so far.
	requests []string
	answer   func(n int, w http.ResponseWriter, r *http.Request)
}

func (f *fakeS3) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	n := len(f.requests)
	f.requests = append(f.requests, r.Method+" "+r.URL.RequestURI())
	f.mu.Unlock()
	f.answer(n, w, r)
}

func (f *fakeS3) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.requests)
}

func (f *fakeS3) saw(prefix string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, r := range f.requests {
		if strings.HasPrefix(r, prefix) {
			return true
		}
	}
	return false
}

const fakeAttempts = 3

// newFakeS3 starts a fake server and an S3 store for it that tries each
// request fakeAttempts times, with tiny backoffs.
func newFakeS3(t *testing.T, answer func(n int, w http.ResponseWriter, r *http.Request)) (*objstore.S3, *fakeS3) {
	t.Helper()
	f := &fakeS3{answer: answer}
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	return newS3(t, fakeConfig(srv.URL)), f
}

func fakeConfig(endpoint string) objstore.S3Config {
	return objstore.S3Config{
		Bucket: "b", Region: "us-east-1", Endpoint: endpoint, PathStyle: true,
		AccessKey: "k", SecretKey: "s",
		MaxAttempts: fakeAttempts, MaxBackoff: time.Millisecond,
		MultipartThreshold: 8, PartSize: 5 << 20,
	}
}

func s3Error(w http.ResponseWriter, status int, code string) {
	w.Header().Set("Content-Type", "application/xml")
	w.WriteHeader(status)
	fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?>`+
		`<Error><Code>%s</Code><Message>test</Message><RequestId>r</RequestId></Error>`, code)
}

func ok(body string) func(int, http.ResponseWriter, *http.Request) {
	return func(_ int, w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte(body)) }
}

// failFirst answers the first n requests with status and code, then next.
func failFirst(n, status int, code string, next func(int, http.ResponseWriter, *http.Request)) func(int, http.ResponseWriter, *http.Request) {
	return func(i int, w http.ResponseWriter, r *http.Request) {
		if i < n {
			s3Error(w, status, code)
			return
		}
		next(i, w, r)
	}
}

func TestS3Classification(t *testing.T) {
	tests := []struct {
		name     string
		answer   func(int, http.ResponseWriter, *http.Request)
		wantErr  error  // nil: Get succeeds and returns "hello"
		wantMsg  string // in the error
		requests int
	}{
		{"503 then 200 is retried", failFirst(1, 503, "ServiceUnavailable", ok("hello")), nil, "", 2},
		{"500 twice then 200 is retried", failFirst(2, 500, "InternalError", ok("hello")), nil, "", 3},
		{"always 503", failFirst(99, 503, "ServiceUnavailable", nil), objstore.ErrTransient,
			"gave up after 3 attempts", fakeAttempts},
		{"always SlowDown", failFirst(99, 503, "SlowDown", nil), objstore.ErrTransient, "SlowDown", fakeAttempts},
		{"always 429", failFirst(99, 429, "TooManyRequests", nil), objstore.ErrTransient, "HTTP 429", fakeAttempts},
		{"400 RequestTimeout is retried", failFirst(1, 400, "RequestTimeout", ok("hello")), nil, "", 2},
		{"403 AccessDenied", failFirst(99, 403, "AccessDenied", nil), objstore.ErrPermanent, "check credentials", 1},
		{"403 InvalidAccessKeyId", failFirst(99, 403, "InvalidAccessKeyId", nil), objstore.ErrPermanent,
			`s3 get "k" in bucket "b": permanent: access denied: check credentials`, 1},
		{"403 SignatureDoesNotMatch", failFirst(99, 403, "SignatureDoesNotMatch", nil), objstore.ErrPermanent,
			"SignatureDoesNotMatch", 1},
		{"404 NoSuchKey", failFirst(99, 404, "NoSuchKey", nil), objstore.ErrNotFound, "NoSuchKey", 1},
		{"404 NoSuchBucket", failFirst(99, 404, "NoSuchBucket", nil), objstore.ErrPermanent, "bucket does not exist", 1},
		{"400 InvalidArgument", failFirst(99, 400, "InvalidArgument", nil), objstore.ErrPermanent, "request rejected", 1},
		{"body cut short then whole", cutFirst(1), nil, "", 2},
		{"body always cut short", cutFirst(99), objstore.ErrTransient, "unexpected EOF", fakeAttempts},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, f := newFakeS3(t, tt.answer)
			got, err := s.Get(context.Background(), "k")
			if tt.wantErr == nil {
				if err != nil || string(got) != "hello" {
					t.Fatalf("Get = %q, %v; want %q, nil", got, err, "hello")
				}
			} else {
				t.Logf("error: %v", err)
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("Get error = %v, want %v", err, tt.wantErr)
				}
				if !strings.Contains(err.Error(), tt.wantMsg) {
					t.Errorf("error %q does not mention %q", err, tt.wantMsg)
				}
			}
			if n := f.count(); n != tt.requests {
				t.Errorf("server saw %d requests, want %d", n, tt.requests)
			}
		})
	}
}

// cutFirst sends the first n answers with only part of the promised body,
// then the whole "hello".
func cutFirst(n int) func(int, http.ResponseWriter, *http.Request) {
	return func(i int, w http.ResponseWriter, _ *http.Request) {
		if i >= n {
			_, _ = w.Write([]byte("hello"))
			return
		}
		w.Header().Set("Content-Length", "5")
		_, _ = w.Write([]byte("he"))
		w.(http.Flusher).Flush()
		panic(http.ErrAbortHandler) // drops the connection mid-body
	}
}

func TestS3NetworkError(t *testing.T) {
	// A port that was free a moment ago: connections are refused.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	endpoint := "http://" + l.Addr().String()
	l.Close()
	s := newS3(t, fakeConfig(endpoint))
	_, err = s.Get(context.Background(), "k")
	t.Logf("error: %v", err)
	if !errors.Is(err, objstore.ErrTransient) || !strings.Contains(err.Error(), "network error") {
		t.Fatalf("Get from a closed port: error = %v, want ErrTransient naming a network error", err)
	}
}

func TestS3RangeIgnored(t *testing.T) {
	// Some servers ignore Range and send the whole object with 200.
	s, _ := newFakeS3(t, ok("0123456789"))
	got, err := s.GetRange(context.Background(), "k", 2, 3)
	if err != nil || string(got) != "234" {
		t.Fatalf("GetRange(2, 3) = %q, %v; want %q", got, err, "234")
	}
}

func TestS3MultipartAbort(t *testing.T) {
	s, f := newFakeS3(t, func(_ int, w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		switch {
		case r.Method == http.MethodPost && q.Has("uploads"):
			fmt.Fprint(w, `<?xml version="1.0" encoding="UTF-8"?><InitiateMultipartUploadResult>`+
				`<Bucket>b</Bucket><Key>k</Key><UploadId>up-1</UploadId></InitiateMultipartUploadResult>`)
		case r.Method == http.MethodPut && q.Has("partNumber"):
			s3Error(w, 400, "EntityTooSmall")
		case r.Method == http.MethodDelete && q.Get("uploadId") == "up-1":
			w.WriteHeader(http.StatusNoContent)
		default:
			s3Error(w, 400, "Unexpected")
		}
	})
	err := s.Put(context.Background(), "k", bytes.NewReader([]byte("0123456789")), 10)
	if !errors.Is(err, objstore.ErrPermanent) || !strings.Contains(err.Error(), "EntityTooSmall") {
		t.Fatalf("Put with a failing part: error = %v, want ErrPermanent naming EntityTooSmall", err)
	}
	if !f.saw("DELETE /b/k?uploadId=up-1") {
		t.Errorf("failed multipart upload was not aborted; requests: %v", f.requests)
	}
}

func TestS3PutRetried(t *testing.T) {
	var mu sync.Mutex
	var bodies []string
	s, f := newFakeS3(t, func(n int, w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		bodies = append(bodies, string(body))
		mu.Unlock()
		if n == 0 {
			s3Error(w, 500, "InternalError")
			return
		}
		w.Header().Set("ETag", `"e"`)
	})
	if err := s.Put(context.Background(), "k", strings.NewReader("1234567"), 7); err != nil {
		t.Fatalf("Put after one 500: %v", err)
	}
	if f.count() != 2 {
		t.Fatalf("server saw %d requests, want 2", f.count())
	}
	mu.Lock()
	defer mu.Unlock()
	for i, b := range bodies {
		if b != "1234567" {
			t.Errorf("attempt %d sent body %q, want the whole object", i+1, b)
		}
	}
}
