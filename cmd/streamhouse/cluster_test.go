package main

import (
	"context"
	"encoding/base64"
	"fmt"
	"regexp"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/streamhouse/streamhouse/meta/pgtest"
)

// clusterInfoRE matches the cluster info gauge on /metrics.
var clusterInfoRE = regexp.MustCompile(`(?m)^streamhouse_cluster_info\{cluster_id="([^"]*)"\} 1$`)

// scrapeClusterID returns the cluster_id label of streamhouse_cluster_info
// on the broker's /metrics, failing t unless there is exactly one series.
func scrapeClusterID(t *testing.T, httpAddr string) string {
	t.Helper()
	code, body, err := httpGet("http://" + httpAddr + "/metrics")
	if err != nil || code != 200 {
		t.Fatalf("/metrics = %d, %v", code, err)
	}
	m := clusterInfoRE.FindAllStringSubmatch(body, -1)
	if len(m) != 1 {
		t.Fatalf("/metrics has %d streamhouse_cluster_info series with value 1, want 1:\n%s", len(m), body)
	}
	return m[0][1]
}

// kafkaClusterID returns the cluster ID the broker's Kafka listener reports
// in Metadata and in DescribeCluster, failing t if they differ.
func kafkaClusterID(t *testing.T, kafkaAddr string) string {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(kafkaAddr))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	m, err := kadm.NewClient(cl).BrokerMetadata(ctx)
	if err != nil {
		t.Fatalf("Metadata: %v", err)
	}
	req := kmsg.NewPtrDescribeClusterRequest()
	d, err := req.RequestWith(ctx, cl)
	if err != nil {
		t.Fatalf("DescribeCluster: %v", err)
	}
	if d.ClusterID != m.Cluster {
		t.Fatalf("DescribeCluster reports cluster id %q, Metadata %q", d.ClusterID, m.Cluster)
	}
	return m.Cluster
}

// wantClusterIDForm fails t unless id is a Kafka-style cluster ID: 22
// characters of unpadded base64url holding 16 bytes.
func wantClusterIDForm(t *testing.T, id string) {
	t.Helper()
	b, err := base64.RawURLEncoding.Strict().DecodeString(id)
	if err != nil || len(id) != 22 || len(b) != 16 {
		t.Fatalf("cluster id %q is not a base64url UUID (%v)", id, err)
	}
}

// TestClusterIDOnMetrics runs the broker binary: /metrics labels
// streamhouse_cluster_info with the cluster ID the Kafka listener reports,
// the log names it, and a restart on the same data keeps it.
func TestClusterIDOnMetrics(t *testing.T) {
	dir := t.TempDir()
	var ids []string
	for run := range 2 {
		p := startBroker(t, nil, localArgs(dir)...)
		httpAddr := p.ready(t)
		id := scrapeClusterID(t, httpAddr)
		wantClusterIDForm(t, id)
		if got := kafkaClusterID(t, p.listenAddr(t, "kafka")); got != id {
			t.Fatalf("run %d: Kafka reports cluster id %q, /metrics %q", run, got, id)
		}
		if _, ok := findLog(p.out.String(), "cluster", "cluster_id", id); !ok {
			t.Fatalf("run %d: no cluster log line naming %s:\n%s", run, id, p.out.String())
		}
		p.stop(t)
		ids = append(ids, id)
	}
	if ids[0] != ids[1] {
		t.Fatalf("cluster id %q before the restart, %q after", ids[0], ids[1])
	}
}

// TestClusterIDSharedOnPostgres starts two brokers at once on one new
// PostgreSQL database (each with its own data directory): both must come
// up reporting the same cluster ID.
func TestClusterIDSharedOnPostgres(t *testing.T) {
	url := pgtest.DB(t)
	var procs []*brokerProc
	for range 2 {
		procs = append(procs, startBroker(t, nil, append(localArgs(t.TempDir()), "--metadata", url)...))
	}
	var ids []string
	for i, p := range procs {
		id := scrapeClusterID(t, p.ready(t))
		if got := kafkaClusterID(t, p.listenAddr(t, "kafka")); got != id {
			t.Fatalf("broker %d: Kafka reports cluster id %q, /metrics %q", i, got, id)
		}
		ids = append(ids, id)
	}
	for _, p := range procs {
		p.stop(t)
	}
	if ids[0] != ids[1] {
		t.Fatalf("two brokers on one database report cluster ids %s", fmt.Sprint(ids))
	}
	wantClusterIDForm(t, ids[0])
}
