//go:build linux

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// promTimeout bounds each wait on Prometheus (start, first scrape, the
// produced records showing up, rule evaluation).
const promTimeout = 90 * time.Second

// promBinaries returns prometheus and promtool (Debian package prometheus).
// .ci/run installs them; elsewhere the test is skipped with the reason
// printed, and under CI a missing one fails.
func promBinaries(t *testing.T) (prometheus, promtool string) {
	t.Helper()
	var paths [2]string
	for i, name := range []string{"prometheus", "promtool"} {
		p, err := exec.LookPath(name)
		if err != nil {
			if os.Getenv("CI") != "" {
				t.Fatalf("%s not installed (apt-get install prometheus): %v", name, err)
			}
			t.Skipf("%s not installed (apt-get install prometheus; .ci/run does): %v", name, err)
		}
		paths[i] = p
	}
	return paths[0], paths[1]
}

// promtoolRun runs promtool with args (and stdin, if not nil) and fails t,
// printing promtool's findings, unless it exits 0 with nothing to report.
func promtoolRun(t *testing.T, promtool string, stdin []byte, args ...string) {
	t.Helper()
	cmd := exec.Command(promtool, args...)
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Errorf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
		return
	}
	if args[1] == "metrics" && len(bytes.TrimSpace(out)) > 0 {
		t.Errorf("promtool check metrics reports problems:\n%s", out)
	}
}

// derivePromConfig writes dir/prometheus.yml: deploy/prometheus/prometheus.yml
// with the compose target replaced by target and 1s intervals, next to a
// copy of alerts.yml (rule_files is relative to the config file).
func derivePromConfig(t *testing.T, dir, target string) string {
	t.Helper()
	src := filepath.Join(repoRoot, "deploy", "prometheus")
	raw, err := os.ReadFile(filepath.Join(src, "prometheus.yml"))
	if err != nil {
		t.Fatal(err)
	}
	cfg := string(raw)
	if n := strings.Count(cfg, `"streamhouse:8080"`); n != 1 {
		t.Fatalf("deploy/prometheus/prometheus.yml names the target \"streamhouse:8080\" %d times, want 1", n)
	}
	cfg = strings.Replace(cfg, `"streamhouse:8080"`, strconv.Quote(target), 1)
	interval := regexp.MustCompile(`(?m)^(\s*(scrape|evaluation)_interval:\s*)\S+`)
	if n := len(interval.FindAllString(cfg, -1)); n != 2 {
		t.Fatalf("deploy/prometheus/prometheus.yml has %d scrape/evaluation intervals, want 2", n)
	}
	cfg = interval.ReplaceAllString(cfg, "${1}1s")
	alerts, err := os.ReadFile(filepath.Join(src, "alerts.yml"))
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "alerts.yml"), alerts, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// startPrometheus runs prometheus with config on a free port of 127.0.0.1
// until the test ends and returns its base URL once it is ready.
func startPrometheus(t *testing.T, bin, config string) string {
	t.Helper()
	addr := "127.0.0.1:" + strconv.Itoa(freePort(t))
	cmd := exec.Command(bin, "--config.file="+config, "--web.listen-address="+addr,
		"--storage.tsdb.path="+filepath.Join(t.TempDir(), "tsdb"), "--log.level=warn")
	var out syncBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL} // never outlive the test
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(stopTimeout):
			_ = cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			t.Logf("prometheus log:\n%s", out.String())
		}
	})
	base := "http://" + addr
	waitFor(t, promTimeout, "prometheus /-/ready", func() (bool, string) {
		select {
		case <-done:
			t.Fatalf("prometheus exited; log:\n%s", out.String())
		default:
		}
		code, body, err := httpGet(base + "/-/ready")
		return code == 200, fmt.Sprintf("%d %s %s", code, body, errString(err))
	})
	return base
}

// promQuery runs an instant query and returns the first sample's value
// (false if the result is empty) and a note for waitFor.
func promQuery(base, query string) (float64, bool, string) {
	code, body, err := httpGet(base + "/api/v1/query?query=" + url.QueryEscape(query))
	if err != nil || code != 200 {
		return 0, false, fmt.Sprintf("query %s: %d %s %s", query, code, body, errString(err))
	}
	var resp struct {
		Data struct {
			Result []struct {
				Value [2]any `json:"value"`
			} `json:"result"`
		} `json:"data"`
	}
	if err := json.Unmarshal([]byte(body), &resp); err != nil || len(resp.Data.Result) == 0 {
		return 0, false, fmt.Sprintf("query %s: %s", query, body)
	}
	s, _ := resp.Data.Result[0].Value[1].(string)
	v, err := strconv.ParseFloat(s, 64)
	return v, err == nil, fmt.Sprintf("query %s: %s", query, body)
}

// TestPrometheusScrapesBroker runs a real Prometheus with the shipped
// configuration and alerting rules against the broker binary, produces
// 1000 records over Kafka and waits until Prometheus' HTTP API shows them.
// It also runs promtool on the broker's /metrics, the rules and the config,
// and checks that the dashboard and the rules name only metrics the broker
// exports.
func TestPrometheusScrapesBroker(t *testing.T) {
	prometheus, promtool := promBinaries(t)

	// Small segments, so rolls and uploads (and object-store metrics) happen.
	p := startBroker(t, nil, append(localArgs(t.TempDir()), "--segment-bytes=16KiB")...)
	httpAddr := p.ready(t)
	kafkaAddr := p.listenAddr(t, "kafka")

	dir := t.TempDir()
	config := derivePromConfig(t, dir, httpAddr)
	promtoolRun(t, promtool, nil, "check", "config", config)
	promtoolRun(t, promtool, nil, "check", "rules", filepath.Join(repoRoot, "deploy", "prometheus", "alerts.yml"))
	base := startPrometheus(t, prometheus, config)

	waitFor(t, promTimeout, "prometheus to scrape the broker (up == 1)", func() (bool, string) {
		v, ok, note := promQuery(base, `up{job="streamhouse"}`)
		return ok && v == 1, note
	})
	out, err := exec.Command(binary(t), "bench", "--brokers", kafkaAddr, "--records", "1000",
		"--partitions", "1", "--rate", "4000", "--keep-topic", "--topic", "prom-bench", "--timeout", "1m").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "missing 0, duplicates 0") {
		t.Fatalf("bench: %v\n%s", err, out)
	}
	waitFor(t, promTimeout, "streamhouse_log_appended_records_total >= 1000 in prometheus", func() (bool, string) {
		v, ok, note := promQuery(base, `sum(streamhouse_log_appended_records_total{job="streamhouse"})`)
		return ok && v >= 1000, note
	})
	commitGroupLag(t, kafkaAddr)
	waitFor(t, promTimeout, "consumer lag 2 of group prom-lag in prometheus", func() (bool, string) {
		v, ok, note := promQuery(base, `sum(streamhouse_kafka_group_lag{job="streamhouse",group="prom-lag"})`)
		return ok && v == 2, note
	})
	waitFor(t, promTimeout, "Kafka produce requests in prometheus", func() (bool, string) {
		v, ok, note := promQuery(base, `sum(streamhouse_kafka_requests_total{job="streamhouse",api="Produce"})`)
		return ok && v > 0, note
	})
	waitFor(t, promTimeout, "segment uploads in prometheus", func() (bool, string) {
		v, ok, note := promQuery(base, `sum(streamhouse_log_segment_uploads_total{job="streamhouse"})`)
		return ok && v > 0, note
	})
	// Per-topic series: the bench's consumer read the records back, its
	// partition's high watermark is 1000, and sealed segments were uploaded.
	for query, want := range map[string]func(float64) bool{
		`streamhouse_log_appended_records_total{job="streamhouse",topic="prom-bench"}`: func(v float64) bool { return v == 1000 },
		`streamhouse_log_read_records_total{job="streamhouse",topic="prom-bench"}`:     func(v float64) bool { return v >= 1000 },
		`streamhouse_log_high_watermark{job="streamhouse",topic="prom-bench"}`:         func(v float64) bool { return v == 1000 },
		`streamhouse_log_object_store_bytes{job="streamhouse",topic="prom-bench"}`:     func(v float64) bool { return v > 0 },
	} {
		waitFor(t, promTimeout, query+" in prometheus", func() (bool, string) {
			v, ok, note := promQuery(base, query)
			return ok && want(v), note
		})
	}
	waitFor(t, promTimeout, "every alerting rule evaluated without error", func() (bool, string) {
		return rulesHealthy(base)
	})

	_, body, err := httpGet("http://" + httpAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	promtoolRun(t, promtool, []byte(body), "check", "metrics")
	// The gRPC front's call metrics exist (at zero) before any call.
	for _, want := range []string{`streamhouse_grpc_requests_total{code="OK",method="/streamhouse.StreamHouse/Produce"}`,
		`streamhouse_grpc_request_duration_seconds_count{method="/streamhouse.StreamHouse/Consume"}`} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics has no %s", want)
		}
	}
	checkReferencedMetrics(t, body)
	checkDocumented(t, body)
	p.stop(t)
}

// rulesHealthy reports whether Prometheus has evaluated every rule of
// alerts.yml, all with health "ok".
func rulesHealthy(base string) (bool, string) {
	code, body, err := httpGet(base + "/api/v1/rules")
	if err != nil || code != 200 {
		return false, fmt.Sprintf("/api/v1/rules: %d %s %s", code, body, errString(err))
	}
	var resp struct {
		Data struct {
			Groups []struct {
				Rules []struct {
					Name, Health, LastError string
				} `json:"rules"`
			} `json:"groups"`
		} `json:"data"`
	}
	if err := json.Unmarshal([]byte(body), &resp); err != nil {
		return false, err.Error()
	}
	n := 0
	for _, g := range resp.Data.Groups {
		for _, r := range g.Rules {
			n++
			if r.Health != "ok" {
				return false, fmt.Sprintf("rule %s: health %q %s", r.Name, r.Health, r.LastError)
			}
		}
	}
	return n >= 6, fmt.Sprintf("%d rules loaded: %s", n, body)
}

// seriesNames returns the sample names an exposition-format body can hold,
// from its TYPE lines (a histogram gives _bucket, _sum and _count).
func seriesNames(body string) map[string]bool {
	names := map[string]bool{}
	for _, line := range strings.Split(body, "\n") {
		f := strings.Fields(line)
		if len(f) != 4 || f[0] != "#" || f[1] != "TYPE" {
			continue
		}
		names[f[2]] = true
		if f[3] == "histogram" || f[3] == "summary" {
			for _, s := range []string{"_bucket", "_sum", "_count"} {
				names[f[2]+s] = true
			}
		}
	}
	return names
}

// checkReferencedMetrics checks that every streamhouse_* name in the
// Grafana dashboard and the alerting rules is one the broker exports.
func checkReferencedMetrics(t *testing.T, body string) {
	t.Helper()
	known := seriesNames(body)
	// A labelled family appears only once it has a series; no object-store
	// operation fails in this test (objstore/instrument.go defines it).
	known["streamhouse_objstore_errors_total"] = true
	// Likewise Kafka error codes (kafka/metrics.go): none need occur here.
	known["streamhouse_kafka_errors_total"] = true
	nameRE := regexp.MustCompile(`streamhouse_[a-z0-9_]+`)
	for _, f := range []string{"deploy/grafana/dashboards/streamhouse.json", "deploy/prometheus/alerts.yml"} {
		raw, err := os.ReadFile(filepath.Join(repoRoot, f))
		if err != nil {
			t.Fatal(err)
		}
		var unknown []string
		for _, name := range nameRE.FindAllString(string(raw), -1) {
			if !known[name] && !strings.HasSuffix(name, "_") { // a prefix in a comment
				unknown = append(unknown, name)
			}
		}
		sort.Strings(unknown)
		if len(unknown) > 0 {
			t.Errorf("%s names metrics the broker does not export: %v", f, unknown)
		}
	}
}

// commitGroupLag produces 3 records to topic prom-lag and commits offset 1
// for group prom-lag, so the group metrics have a lag of 2 to export.
func commitGroupLag(t *testing.T, kafkaAddr string) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(kafkaAddr), kgo.AllowAutoTopicCreation())
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for i := range 3 {
		if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "prom-lag", Value: []byte{byte(i)}}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	var offsets kadm.Offsets
	offsets.AddOffset("prom-lag", 0, 1, -1)
	if err := kadm.NewClient(cl).CommitAllOffsets(ctx, "prom-lag", offsets); err != nil {
		t.Fatal(err)
	}
}

// checkDocumented fails for every streamhouse_ metric family in the
// /metrics body that docs/OPERATIONS.md does not name.
func checkDocumented(t *testing.T, body string) {
	t.Helper()
	doc, err := os.ReadFile(filepath.Join(repoRoot, "docs", "OPERATIONS.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(body, "\n") {
		f := strings.Fields(line)
		if len(f) != 4 || f[0] != "#" || f[1] != "TYPE" || !strings.HasPrefix(f[2], "streamhouse_") {
			continue
		}
		if !bytes.Contains(doc, []byte(f[2])) {
			t.Errorf("metric %s is served but docs/OPERATIONS.md does not describe it", f[2])
		}
	}
}
