package kafka

import (
	"context"
	"encoding/base64"
	"slices"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// The cluster ID (meta's, in Kafka's base64url UUID form) in Metadata,
// DescribeCluster and ApiVersions v5, and the features ApiVersions v3+
// advertises.

// clusterID is the ID the broker's metadata store holds.
func (b *testBroker) clusterID() string {
	b.t.Helper()
	id, err := b.meta.ClusterID(context.Background())
	if err != nil {
		b.t.Fatal(err)
	}
	return id
}

// wantKafkaClusterID fails t unless id looks like a Kafka cluster ID: 22
// characters of unpadded base64url holding 16 bytes.
func wantKafkaClusterID(t *testing.T, id string) {
	t.Helper()
	raw, err := base64.RawURLEncoding.Strict().DecodeString(id)
	if err != nil || len(id) != 22 || len(raw) != 16 || id[0] == '-' {
		t.Fatalf("cluster id %q is not a base64url UUID (%v)", id, err)
	}
}

// metadataClusterID asks Metadata at version v for no topics and returns
// the cluster ID it reports ("" for null).
func metadataClusterID(c *rawConn, v int16) string {
	req := kmsg.NewPtrMetadataRequest()
	req.Version = v
	req.Topics = []kmsg.MetadataRequestTopic{}
	resp := c.roundTrip(int32(v)+1, req).(*kmsg.MetadataResponse)
	if resp.ClusterID == nil {
		return ""
	}
	return *resp.ClusterID
}

func TestClusterIDEverywhere(t *testing.T) {
	b := newTestBroker(t, nil)
	id := b.clusterID()
	wantKafkaClusterID(t, id)
	if b.srv.cfg.ClusterID != id {
		t.Fatalf("server reports cluster id %q, meta holds %q", b.srv.cfg.ClusterID, id)
	}
	c := b.raw()
	t.Run("Metadata", func(t *testing.T) {
		if got := metadataClusterID(c, 1); got != "" {
			t.Fatalf("Metadata v1 carries cluster id %q; the field arrived in v2", got)
		}
		for v := int16(2); v <= 13; v++ {
			if got := metadataClusterID(c, v); got != id {
				t.Fatalf("Metadata v%d: cluster id %q, want %q", v, got, id)
			}
		}
	})
	t.Run("DescribeCluster", func(t *testing.T) {
		for v := int16(0); v <= 2; v++ {
			req := kmsg.NewPtrDescribeClusterRequest()
			req.Version = v
			resp := c.roundTrip(100+int32(v), req).(*kmsg.DescribeClusterResponse)
			if resp.ErrorCode != 0 || resp.ClusterID != id {
				t.Fatalf("DescribeCluster v%d: code %d, cluster id %q, want %q", v, resp.ErrorCode, resp.ClusterID, id)
			}
		}
	})
	t.Run("ApiVersionsV5", func(t *testing.T) {
		for _, tc := range []struct {
			name    string
			cluster string
			node    int32
			want    int16
		}{
			{"ours", id, 1, 0},
			{"other cluster", "streamhouse", 1, kerr.RebootstrapRequired.Code},
			{"other node", id, 2, kerr.RebootstrapRequired.Code},
			{"node not given", "streamhouse", -1, 0},
		} {
			req := kmsg.NewPtrApiVersionsRequest()
			req.Version, req.ClusterID, req.NodeID = 5, &tc.cluster, tc.node
			resp := c.roundTrip(200, req).(*kmsg.ApiVersionsResponse)
			if resp.ErrorCode != tc.want {
				t.Fatalf("%s: code %d, want %d", tc.name, resp.ErrorCode, tc.want)
			}
		}
	})
	t.Run("kadm", func(t *testing.T) {
		m, err := b.admin().BrokerMetadata(testCtx(t))
		if err != nil || m.Cluster != id {
			t.Fatalf("kadm BrokerMetadata: cluster %q, %v; want %q", m.Cluster, err, id)
		}
	})
}

// TestClusterIDSurvivesRestart restarts the broker on its data: the ID is
// the one meta stored at the first start.
func TestClusterIDSurvivesRestart(t *testing.T) {
	b := newTestBroker(t, nil)
	ctx := testCtx(t)
	before, err := b.admin().BrokerMetadata(ctx)
	if err != nil {
		t.Fatal(err)
	}
	wantKafkaClusterID(t, before.Cluster)
	b.restart()
	after, err := b.admin().BrokerMetadata(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if after.Cluster != before.Cluster || b.clusterID() != before.Cluster {
		t.Fatalf("cluster id %q before the restart, %q after (meta: %q)", before.Cluster, after.Cluster, b.clusterID())
	}
	resp := b.raw().roundTrip(1, kmsg.NewPtrDescribeClusterRequest()).(*kmsg.DescribeClusterResponse)
	if resp.ClusterID != before.Cluster {
		t.Fatalf("DescribeCluster after the restart: %q, want %q", resp.ClusterID, before.Cluster)
	}
}

// TestConfiguredClusterID: a ClusterID set in Config wins over meta's.
func TestConfiguredClusterID(t *testing.T) {
	b := newTestBroker(t, func(c *Config) { c.ClusterID = "configured" })
	if got := metadataClusterID(b.raw(), 13); got != "configured" {
		t.Fatalf("Metadata cluster id %q, want the configured one", got)
	}
}

// featureRow is a feature as the tests compare it: name, min, max.
type featureRow struct {
	name     string
	min, max int16
}

func TestApiVersionsFeatures(t *testing.T) {
	b := newTestBroker(t, nil)
	all := []featureRow{{"group.version", 0, 1}, {"metadata.version", 7, 33}}
	finalized := []featureRow{{"group.version", 1, 1}, {"metadata.version", 33, 33}}
	for _, tc := range []struct {
		version       int16
		wantSupported []featureRow
		wantFinalized []featureRow
		wantEpoch     int64
	}{
		// Before v3 the fields do not exist; decoding leaves the defaults.
		{0, nil, nil, -1},
		{2, nil, nil, -1},
		// v3 leaves out supported features with minimum 0 (KAFKA-17492).
		{3, []featureRow{{"metadata.version", 7, 33}}, finalized, featuresEpoch},
		{4, all, finalized, featuresEpoch},
		{5, all, finalized, featuresEpoch},
	} {
		req := kmsg.NewPtrApiVersionsRequest()
		req.Version = tc.version
		req.ClientSoftwareName, req.ClientSoftwareVersion = "raw-test", "1"
		resp := b.raw().roundTrip(1, req).(*kmsg.ApiVersionsResponse)
		var supported, final []featureRow
		for _, f := range resp.SupportedFeatures {
			supported = append(supported, featureRow{f.Name, f.MinVersion, f.MaxVersion})
		}
		for _, f := range resp.FinalizedFeatures {
			final = append(final, featureRow{f.Name, f.MinVersionLevel, f.MaxVersionLevel})
		}
		if resp.ErrorCode != 0 || !slices.Equal(supported, tc.wantSupported) || !slices.Equal(final, tc.wantFinalized) ||
			resp.FinalizedFeaturesEpoch != tc.wantEpoch || resp.ZkMigrationReady {
			t.Errorf("v%d: code %d, supported %v, finalized %v, epoch %d, zk migration ready %v;\nwant supported %v, finalized %v, epoch %d",
				tc.version, resp.ErrorCode, supported, final, resp.FinalizedFeaturesEpoch, resp.ZkMigrationReady,
				tc.wantSupported, tc.wantFinalized, tc.wantEpoch)
		}
	}
}

// TestApiVersionsFeaturesServed checks each advertised feature against
// what is served, through kadm: group.version 1 needs the KIP-848 APIs;
// transaction.version must stay absent while transactions are not served
// (clients that see it at 2 take the KIP-890 paths), and so must the
// features of other things not served.
func TestApiVersionsFeaturesServed(t *testing.T) {
	b := newTestBroker(t, nil)
	vs, err := b.admin().ApiVersions(testCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	v, ok := vs[1]
	if !ok || v.Err != nil {
		t.Fatalf("ApiVersions of node 1: %+v", vs)
	}
	raw := v.Raw()
	levels := make(map[string]int16)
	for _, f := range raw.FinalizedFeatures {
		levels[f.Name] = f.MaxVersionLevel
	}
	if levels["group.version"] != 1 {
		t.Fatalf("group.version finalized at %d, want 1", levels["group.version"])
	}
	for _, key := range []int16{68, 69} { // ConsumerGroupHeartbeat, ConsumerGroupDescribe
		if _, ok := v.KeyMaxVersion(key); !ok {
			t.Fatalf("group.version 1 advertised, but api key %d is not served", key)
		}
	}
	if _, served := v.KeyMaxVersion(26); !served { // EndTxn
		for _, f := range raw.SupportedFeatures {
			if f.Name == "transaction.version" {
				t.Fatalf("transaction.version advertised without transactions: %+v", f)
			}
		}
		if _, ok := levels["transaction.version"]; ok {
			t.Fatal("transaction.version finalized without transactions")
		}
	}
	for _, name := range []string{"kraft.version", "share.version", "streams.version", "eligible.leader.replicas.version"} {
		if _, ok := levels[name]; ok {
			t.Errorf("%s finalized, but what it announces is not served", name)
		}
	}
}
