package kafka

// ApiVersions (key 18): versions 0-5.
//
// Answers with the dispatch table: exactly the API keys and versions this
// broker serves, and (v3+, KIP-584) the features in force (featureTable):
//
//   - metadata.version, finalized at 4.4-IV2 (level 33), supported 3.3-IV3
//     (7) to 4.4-IV2: what Apache Kafka 4.4 finalizes by default. The
//     level names the Kafka release whose protocol we speak; what it gates
//     in Kafka is either the KRaft metadata log's record formats (we have
//     no KRaft log) or broker-to-broker request versions (Fetch v18 from
//     4.1-IV1, ListOffsets v11 from 4.2-IV1, which we serve to clients), and
//     nothing it gates changes a Metadata or DescribeCluster answer.
//     Clients do not branch on it (Kafka 4.4's Java clients read only
//     transaction.version; franz-go likewise); kafka-features prints it.
//   - group.version, finalized at 1, supported 0-1: the KIP-848 consumer
//     group protocol (ConsumerGroupHeartbeat, ConsumerGroupDescribe) is
//     served beside the classic one, as in Kafka 4.x.
//
// Kafka 4.4 also finalizes kraft.version 1, transaction.version 2,
// eligible.leader.replicas.version 1, share.version 2 and streams.version
// 1. They are left out, because what they announce is not served: no KRaft
// quorum, no replicas to elect from, no share groups, no streams groups.
// Their levels are 0 here, which is how kafka-features and clients read a
// missing one.
//
// transaction.version (supported 0-2, finalized 2) is advertised when
// Config.TransactionV2 is set (the binary's default, --transaction-version=2,
// as Kafka 4.x finalizes it). A client seeing level 2 (the Java producer,
// franz-go) takes the KIP-890 part 2 paths: EndTxn v5 bumping the epoch,
// Produce v12 adding partitions to the transaction without
// AddPartitionsToTxn, TxnOffsetCommit v5 adding the group without
// AddOffsetsToTxn. The coordinator serves both versions either way (the
// version is the request's); without the feature clients stay at version 1
// (EndTxn v4, Produce v11). kafka/txn_client_test.go runs the franz-go
// tests at both versions; compat-tests runs the Java clients, Kafka Streams
// and kafka-transactions.sh against the binary's default.
//
// FinalizedFeaturesEpoch is featuresEpoch (featuresEpochTxnV2 with
// transaction.version): the feature levels are fixed per build and
// configuration, and clients keep the features of the highest epoch they
// saw, so the epoch is raised whenever featureTable changes.
//
// A request above our highest version is answered by the connection, not
// here: KIP-511 asks for a v0-format response with UNSUPPORTED_VERSION and
// our ranges, so that the client can retry with a version we know. That
// response (apiVersionsUnsupported) is also the reason the ApiVersions
// response header is always v0.
//
// Version notes:
//   - v1: ThrottleMillis.
//   - v3: flexible; ClientSoftwareName/Version (accepted, not validated);
//     SupportedFeatures, FinalizedFeaturesEpoch, FinalizedFeatures,
//     ZkMigrationReady (always false) as tags. Below v4, supported
//     features whose minimum level is 0 are left out, as Kafka does
//     (KAFKA-17492: older clients fail to parse a minimum of 0).
//   - v5: ClusterID and NodeID (KIP-1242): when both are given and either
//     is not ours, REBOOTSTRAP_REQUIRED.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// feature is one advertised feature: the range of levels this broker
// supports and the level in force.
type feature struct {
	name           string
	minLevel       int16
	maxLevel       int16
	finalizedLevel int16
}

// featureTable lists the advertised features, sorted by name; see the
// file comment for why each is here and why the others are not.
var featureTable = [...]feature{
	{name: "group.version", minLevel: 0, maxLevel: 1, finalizedLevel: 1},
	{name: "metadata.version", minLevel: 7, maxLevel: 33, finalizedLevel: 33}, // 3.3-IV3 .. 4.4-IV2
}

// txnV2Feature is transaction.version as Config.TransactionV2 advertises
// it: what Kafka 4.4 supports and finalizes.
var txnV2Feature = feature{name: "transaction.version", minLevel: 0, maxLevel: 2, finalizedLevel: 2}

// featuresEpoch is the FinalizedFeaturesEpoch of every answer, and
// featuresEpochTxnV2 that of a broker advertising transaction.version.
// Raise them whenever featureTable changes; never lower them.
const (
	featuresEpoch      = 1
	featuresEpochTxnV2 = 2
)

// featureList returns the features a broker advertises, sorted by name,
// and their epoch.
func featureList(txnV2 bool) ([]feature, int64) {
	if !txnV2 {
		return featureTable[:], featuresEpoch
	}
	return append(featureTable[:len(featureTable):len(featureTable)], txnV2Feature), featuresEpochTxnV2
}

func (s *Server) handleAPIVersions(_ context.Context, r *request) (kmsg.Response, error) {
	req := r.body.(*kmsg.ApiVersionsRequest)
	resp := req.ResponseKind().(*kmsg.ApiVersionsResponse)
	resp.ApiKeys = s.apiKeys
	resp.FinalizedFeaturesEpoch = s.featuresEpoch
	for _, f := range s.features {
		if req.Version >= 4 || f.minLevel > 0 {
			resp.SupportedFeatures = append(resp.SupportedFeatures, kmsg.ApiVersionsResponseSupportedFeature{
				Name: f.name, MinVersion: f.minLevel, MaxVersion: f.maxLevel,
			})
		}
		resp.FinalizedFeatures = append(resp.FinalizedFeatures, kmsg.ApiVersionsResponseFinalizedFeature{
			Name: f.name, MinVersionLevel: f.finalizedLevel, MaxVersionLevel: f.finalizedLevel,
		})
	}
	if req.Version >= 5 && req.ClusterID != nil && req.NodeID >= 0 &&
		(*req.ClusterID != s.cfg.ClusterID || req.NodeID != s.cfg.NodeID) {
		resp.ErrorCode = kerr.RebootstrapRequired.Code
	}
	return resp, nil
}

// apiVersionsUnsupported is the KIP-511 answer to an ApiVersions request
// whose version is above ours.
func (s *Server) apiVersionsUnsupported() kmsg.Response {
	resp := kmsg.NewPtrApiVersionsResponse()
	resp.Version = 0
	resp.ErrorCode = kerr.UnsupportedVersion.Code
	resp.ApiKeys = s.apiKeys
	return resp
}
