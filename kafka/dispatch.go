package kafka

import (
	"context"
	"sort"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// handlerFunc serves one decoded request. A nil response sends nothing
// (acks=0 produce); an error closes the connection.
type handlerFunc func(s *Server, ctx context.Context, req *request) (kmsg.Response, error)

// api is one dispatch-table entry: the versions served and the handler.
type api struct {
	min, max int16
	handle   handlerFunc
}

// apiVersionsKey is ApiVersions' key; the connection treats it specially
// (KIP-511 answers, v0 response header).
const apiVersionsKey = 18

// dispatchTable returns the dispatch table: API key -> versions served
// and handler. ApiVersions advertises exactly this table. Each Server
// builds it once in New and never modifies it (a function rather than a
// package variable because ApiVersions' handler reads the table).
// Version ranges are explained in each handler's file and UNSUPPORTED.md.
func dispatchTable() map[int16]api {
	return map[int16]api{
		0:  {3, 13, (*Server).handleProduce},
		1:  {4, 18, (*Server).handleFetch},
		2:  {1, 11, (*Server).handleListOffsets},
		3:  {0, 13, (*Server).handleMetadata},
		8:  {0, 10, (*Server).handleOffsetCommit},
		9:  {0, 10, (*Server).handleOffsetFetch},
		10: {0, 6, (*Server).handleFindCoordinator},
		11: {0, 9, (*Server).handleJoinGroup},
		12: {0, 4, (*Server).handleHeartbeat},
		13: {0, 5, (*Server).handleLeaveGroup},
		14: {0, 5, (*Server).handleSyncGroup},
		15: {0, 6, (*Server).handleDescribeGroups},
		16: {0, 5, (*Server).handleListGroups},
		17: {0, 1, (*Server).handleSASLHandshake},
		18: {0, 5, (*Server).handleAPIVersions},
		19: {0, 7, (*Server).handleCreateTopics},
		20: {0, 6, (*Server).handleDeleteTopics},
		21: {0, 2, (*Server).handleDeleteRecords},
		22: {0, 5, (*Server).handleInitProducerID},
		23: {0, 4, (*Server).handleOffsetForLeaderEpoch},
		24: {0, 5, (*Server).handleAddPartitionsToTxn},
		25: {0, 4, (*Server).handleAddOffsetsToTxn},
		26: {0, 5, (*Server).handleEndTxn},
		27: {1, 2, (*Server).handleWriteTxnMarkers},
		28: {0, 6, (*Server).handleTxnOffsetCommit},
		32: {0, 4, (*Server).handleDescribeConfigs},
		33: {0, 2, (*Server).handleAlterConfigs},
		35: {0, 5, (*Server).handleDescribeLogDirs},
		36: {0, 2, (*Server).handleSASLAuthenticate},
		37: {0, 3, (*Server).handleCreatePartitions},
		42: {0, 3, (*Server).handleDeleteGroups},
		43: {0, 2, (*Server).handleElectLeaders},
		44: {0, 1, (*Server).handleIncrementalAlterConfigs},
		45: {0, 1, (*Server).handleAlterPartitionReassignments},
		46: {0, 0, (*Server).handleListPartitionReassignments},
		47: {0, 0, (*Server).handleOffsetDelete},
		48: {0, 1, (*Server).handleDescribeClientQuotas},
		50: {0, 0, (*Server).handleDescribeUserSCRAMCredentials},
		51: {0, 0, (*Server).handleAlterUserSCRAMCredentials},
		60: {0, 2, (*Server).handleDescribeCluster},
		61: {0, 0, (*Server).handleDescribeProducers},
		65: {0, 0, (*Server).handleDescribeTransactions},
		66: {0, 2, (*Server).handleListTransactions},
		68: {0, 1, (*Server).handleConsumerGroupHeartbeat},
		69: {0, 1, (*Server).handleConsumerGroupDescribe},
		75: {0, 0, (*Server).handleDescribeTopicPartitions},
	}
}

// apiVersionsKeys lists a table for ApiVersions, sorted by key.
func apiVersionsKeys(apis map[int16]api) []kmsg.ApiVersionsResponseApiKey {
	keys := make([]kmsg.ApiVersionsResponseApiKey, 0, len(apis))
	for k, a := range apis {
		keys = append(keys, kmsg.ApiVersionsResponseApiKey{ApiKey: k, MinVersion: a.min, MaxVersion: a.max})
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i].ApiKey < keys[j].ApiKey })
	return keys
}
