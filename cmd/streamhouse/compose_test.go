package main

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/streamhouse/streamhouse/objstore/s3test"
)

// No Docker engine runs in CI, so these tests check what they can of
// docker-compose.yml: it parses, every file it mounts exists, and the S3
// settings it gives the broker work against a real S3 server (versitygw).

// repoRoot is the repository root, relative to this package.
const repoRoot = "../.."

// composeFile is docker-compose.yml at the repository root.
var composeFile = filepath.Join(repoRoot, "docker-compose.yml")

// loadCompose parses docker-compose.yml with PyYAML (python3 -c) into
// generic JSON values. The module has no YAML parser of its own; without
// python3 and PyYAML it returns false and the tests fall back to reading
// the file line by line.
func loadCompose(t *testing.T) (map[string]any, bool) {
	t.Helper()
	if exec.Command("python3", "-c", "import yaml").Run() != nil {
		t.Logf("python3 with PyYAML not found: checking %s line by line, not parsing it", composeFile)
		return nil, false
	}
	out, err := exec.Command("python3", "-c",
		"import json, sys, yaml; json.dump(yaml.safe_load(open(sys.argv[1])), sys.stdout)", composeFile).Output()
	if err != nil {
		t.Fatalf("%s does not parse as YAML: %v\n%s", composeFile, err, errOutput(err))
	}
	var doc map[string]any
	if err := json.Unmarshal(out, &doc); err != nil {
		t.Fatalf("decode the parsed %s: %v", composeFile, err)
	}
	return doc, true
}

func errOutput(err error) string {
	if ee, ok := err.(*exec.ExitError); ok {
		return string(ee.Stderr)
	}
	return ""
}

// hostPathRE matches a relative host path at the start of a volume entry
// or build context: ./deploy/prometheus/alerts.yml:/etc/... or ".".
var hostPathRE = regexp.MustCompile(`^\s*-?\s*"?(\.{1,2}(/[\w.\-]+)*)(:|"?\s*$)`)

// composeHostPaths returns every relative host path the compose file
// mounts or builds from.
func composeHostPaths(t *testing.T) []string {
	t.Helper()
	doc, ok := loadCompose(t)
	if !ok {
		raw, err := os.ReadFile(composeFile)
		if err != nil {
			t.Fatal(err)
		}
		var paths []string
		for _, line := range strings.Split(string(raw), "\n") {
			line = strings.TrimPrefix(strings.TrimSpace(line), "build:")
			if m := hostPathRE.FindStringSubmatch(line); m != nil {
				paths = append(paths, m[1])
			}
		}
		return paths
	}
	services, _ := doc["services"].(map[string]any)
	if len(services) == 0 {
		t.Fatalf("%s has no services", composeFile)
	}
	var paths []string
	for name, s := range services {
		svc, _ := s.(map[string]any)
		if svc["image"] == nil && svc["build"] == nil {
			t.Errorf("service %s has neither image nor build", name)
		}
		if b, ok := svc["build"].(string); ok {
			paths = append(paths, b)
		}
		vols, _ := svc["volumes"].([]any)
		for _, v := range vols {
			src, _, _ := strings.Cut(fmt.Sprint(v), ":")
			if strings.HasPrefix(src, ".") {
				paths = append(paths, src)
			}
		}
	}
	return paths
}

// TestComposeFilesExist checks that every file and directory
// docker-compose.yml mounts or builds from is in the repository.
func TestComposeFilesExist(t *testing.T) {
	paths := composeHostPaths(t)
	want := map[string]bool{
		".": false, "./deploy/prometheus/prometheus.yml": false, "./deploy/prometheus/alerts.yml": false,
		"./deploy/grafana/provisioning": false, "./deploy/grafana/dashboards": false,
	}
	for _, p := range paths {
		if _, ok := want[p]; ok {
			want[p] = true
		}
		if _, err := os.Stat(filepath.Join(repoRoot, p)); err != nil {
			t.Errorf("%s references %s: %v", composeFile, p, err)
		}
	}
	for p, seen := range want {
		if !seen {
			t.Errorf("%s does not reference %s (found %q)", composeFile, p, paths)
		}
	}
	// What the referenced directories must hold.
	for _, f := range []string{"Dockerfile", ".dockerignore",
		"deploy/grafana/provisioning/datasources/prometheus.yml",
		"deploy/grafana/provisioning/dashboards/streamhouse.yml"} {
		if _, err := os.Stat(filepath.Join(repoRoot, f)); err != nil {
			t.Error(err)
		}
	}
	dash, err := os.ReadFile(filepath.Join(repoRoot, "deploy/grafana/dashboards/streamhouse.json"))
	if err != nil {
		t.Fatal(err)
	}
	var v map[string]any
	if err := json.Unmarshal(dash, &v); err != nil {
		t.Errorf("deploy/grafana/dashboards/streamhouse.json: %v", err)
	}
}

// composeBrokerEnv returns the environment docker-compose.yml gives the
// streamhouse service.
func composeBrokerEnv(t *testing.T) map[string]string {
	t.Helper()
	env := map[string]string{}
	if doc, ok := loadCompose(t); ok {
		services, _ := doc["services"].(map[string]any)
		svc, _ := services["streamhouse"].(map[string]any)
		m, ok := svc["environment"].(map[string]any)
		if !ok {
			t.Fatalf("%s: services.streamhouse.environment is not a mapping", composeFile)
		}
		for k, v := range m {
			env[k] = fmt.Sprint(v)
		}
		return env
	}
	// Line by line: the mapping under "  streamhouse:" / "    environment:".
	raw, err := os.ReadFile(composeFile)
	if err != nil {
		t.Fatal(err)
	}
	section := ""
	for _, line := range strings.Split(string(raw), "\n") {
		trimmed := strings.TrimSpace(line)
		indent := len(line) - len(strings.TrimLeft(line, " "))
		switch {
		case trimmed == "" || strings.HasPrefix(trimmed, "#"):
		case indent == 2:
			section = trimmed
		case indent == 4 && section == "streamhouse:":
			if trimmed == "environment:" {
				section = "streamhouse.environment"
			}
		case indent == 4 && section == "streamhouse.environment":
			section = ""
		case indent == 6 && section == "streamhouse.environment":
			k, v, _ := strings.Cut(trimmed, ":")
			env[k] = strings.Trim(strings.TrimSpace(v), `"'`)
		}
	}
	if len(env) == 0 {
		t.Fatalf("%s: no environment for the streamhouse service", composeFile)
	}
	return env
}

// freePort returns a port of 127.0.0.1 that was free a moment ago, for
// servers that must know their address before they start.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// TestComposeS3Settings runs the broker with the environment
// docker-compose.yml gives it, against a real S3 server: only the values
// that name the MinIO service (endpoint, credentials) are swapped for the
// test server's. Path style, region, USE_LOCAL_STORAGE and the variable
// names are the compose file's own. It produces enough to roll and upload
// segments, so objects really go to the bucket that way.
func TestComposeS3Settings(t *testing.T) {
	env := composeBrokerEnv(t)

	// Every variable must be one the broker reads.
	help, _ := exec.Command(binary(t), "--help").CombinedOutput()
	for k := range env {
		if !strings.Contains(string(help), "(env "+k+")") && k != "AWS_ACCESS_KEY_ID" && k != "AWS_SECRET_ACCESS_KEY" {
			t.Errorf("compose sets %s, which is not a broker setting (--help):\n%s", k, help)
		}
	}
	srv := s3test.Start(t)
	for k, want := range map[string]string{
		"USE_LOCAL_STORAGE": "false", "STREAMHOUSE_S3_PATH_STYLE": "true", "AWS_REGION": srv.Region,
	} {
		if env[k] != want {
			t.Errorf("compose sets %s=%q, want %q (what this test runs against S3)", k, env[k], want)
		}
	}
	for _, k := range []string{"STREAMHOUSE_BUCKET", "S3_ENDPOINT", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "STREAMHOUSE_KAFKA_ADVERTISED_ADDR"} {
		if env[k] == "" {
			t.Errorf("compose does not set %s", k)
		}
	}
	if t.Failed() {
		t.FailNow()
	}
	if env["STREAMHOUSE_BUCKET"] != srv.Bucket {
		srv.CreateBucket(t, env["STREAMHOUSE_BUCKET"])
	}
	env["S3_ENDPOINT"] = srv.Endpoint
	env["AWS_ACCESS_KEY_ID"] = srv.AccessKey
	env["AWS_SECRET_ACCESS_KEY"] = srv.SecretKey

	kafkaAddr := "127.0.0.1:" + strconv.Itoa(freePort(t))
	p := startBroker(t, env, append(localArgs(t.TempDir()), "--kafka-addr="+kafkaAddr,
		"--kafka-advertised-addr="+kafkaAddr, "--segment-bytes=16KiB")...)
	httpAddr := p.ready(t)
	if _, ok := findLog(p.out.String(), "storing", "objects.kind", "s3",
		"objects.bucket", env["STREAMHOUSE_BUCKET"], "objects.endpoint", srv.Endpoint); !ok {
		t.Fatalf("no storing line naming the S3 bucket:\n%s", p.out.String())
	}
	out, err := exec.Command(binary(t), "bench", "--brokers", kafkaAddr, "--records", "1000",
		"--partitions", "1", "--rate", "4000", "--keep-topic", "--timeout", "1m").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "missing 0, duplicates 0") {
		t.Fatalf("bench: %v\n%s\nbroker log:\n%s", err, out, p.out.String())
	}
	waitFor(t, startTimeout, "segment uploads to S3", func() (bool, string) {
		_, body, err := httpGet("http://" + httpAddr + "/metrics")
		v := metricValue(body, "streamhouse_log_segment_uploads_total")
		return v > 0, fmt.Sprintf("uploads %v %s", v, errString(err))
	})
	p.stop(t)
}

// metricValue returns the value of the unlabelled sample name in an
// exposition-format body, or -1.
func metricValue(body, name string) float64 {
	for _, line := range strings.Split(body, "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err == nil {
				return f
			}
		}
	}
	return -1
}
