package main

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// Test time limits: generous, since -race on two cores is slow; the
// polling returns as soon as the condition holds.
const (
	startTimeout = 60 * time.Second
	stopTimeout  = 30 * time.Second
	pollEvery    = 20 * time.Millisecond
)

// waitFor polls cond until it returns true or timeout passes, then fails t
// with what it was waiting for and cond's last note.
func waitFor(t testing.TB, timeout time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(pollEvery)
	defer tick.Stop()
	for {
		ok, note := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s: %s", timeout, what, note)
		}
		<-tick.C
	}
}

// syncBuffer is a bytes.Buffer safe for one writer and many readers.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// logRecord is one JSON log line.
type logRecord map[string]any

// str returns a string attribute; a dotted key reaches into a group.
func (r logRecord) str(key string) string {
	var v any = map[string]any(r)
	for _, k := range strings.Split(key, ".") {
		m, ok := v.(map[string]any)
		if !ok {
			return ""
		}
		v = m[k]
	}
	s, _ := v.(string)
	return s
}

// findLog returns the first JSON record in out with the given msg whose
// attributes match the key/value pairs in kv.
func findLog(out, msg string, kv ...string) (logRecord, bool) {
	for _, line := range strings.Split(out, "\n") {
		var r logRecord
		if json.Unmarshal([]byte(line), &r) != nil || r.str("msg") != msg {
			continue
		}
		match := true
		for i := 0; i+1 < len(kv); i += 2 {
			match = match && r.str(kv[i]) == kv[i+1]
		}
		if match {
			return r, true
		}
	}
	return nil, false
}

// httpGet fetches url with a client that keeps no idle connections (so no
// goroutine outlives the call) and returns the status code and body.
func httpGet(url string) (int, string, error) {
	tr := &http.Transport{DisableKeepAlives: true}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	resp, err := client.Get(url)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body), err
}

// waitHTTPAddr waits for the "listening" log line of the HTTP server in
// the JSON log out() and returns its address. alive reports whether the
// broker still runs, so a broker that died fails at once.
func waitHTTPAddr(t testing.TB, out func() string, alive func() bool) string {
	t.Helper()
	var addr string
	waitFor(t, startTimeout, "the HTTP listening log line", func() (bool, string) {
		if r, ok := findLog(out(), "listening", "server", "http"); ok {
			addr = r.str("addr")
			return true, ""
		}
		if !alive() {
			t.Fatalf("broker stopped before listening; log:\n%s", out())
		}
		return false, "log so far:\n" + out()
	})
	return addr
}

// waitReady polls http://addr/readyz until it answers 200.
func waitReady(t testing.TB, addr string, out func() string, alive func() bool) {
	t.Helper()
	waitFor(t, startTimeout, "/readyz to answer 200", func() (bool, string) {
		code, body, err := httpGet("http://" + addr + "/readyz")
		if code == http.StatusOK {
			return true, ""
		}
		if !alive() {
			t.Fatalf("broker stopped before ready; log:\n%s", out())
		}
		return false, "last answer: " + http.StatusText(code) + " " + body + " " + errString(err)
	})
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
