package harness

import (
	"os"
	"strings"
	"testing"
)

// Feature is a broker capability some compatibility tests need.
type Feature string

// Features that StreamHouse does not serve yet (see kafka/UNSUPPORTED.md).
const (
	ConsumerGroups  Feature = "consumer groups (FindCoordinator, JoinGroup/SyncGroup/Heartbeat/LeaveGroup, OffsetCommit/OffsetFetch)"
	DescribeConfigs Feature = "DescribeConfigs (API 32)"
	// Transactions is issue 13's transaction protocol as clients and
	// kafka-transactions.sh use it.
	Transactions Feature = "transactions (transactional IDs in InitProducerId, AddPartitionsToTxn, AddOffsetsToTxn, " +
		"TxnOffsetCommit, EndTxn; read_committed; List/DescribeTransactions, DescribeProducers; issue 13)"
	// WriteTxnMarkers is what kafka-transactions.sh abort sends to the
	// partition's leader (Admin.abortTransaction), after DescribeProducers.
	WriteTxnMarkers Feature = "WriteTxnMarkers (API 27), which kafka-transactions.sh abort sends to the partition leader"
)

// served lists, per broker kind, the features above that it has. Apache
// Kafka has them all. Move a feature into StreamHouse's list when it lands.
var served = map[Kind][]Feature{
	ApacheKafka: {ConsumerGroups, DescribeConfigs, Transactions, WriteTxnMarkers},
	StreamHouse: {ConsumerGroups, DescribeConfigs, Transactions, WriteTxnMarkers},
}

// Requirements maps a test's top-level name to the features it needs; a test
// not listed needs none beyond produce, fetch, list offsets, metadata and
// topic create/delete. Start skips a listed test, printing the reason, when
// the broker under test lacks one of them.
// clients/main_test.go checks that every name here is a test.
var Requirements = map[string][]Feature{
	"TestJavaGroupConsumer":         {ConsumerGroups},
	"TestKafkaJSGroupConsumer":      {ConsumerGroups},
	"TestConsoleConsumerGroup":      {ConsumerGroups},
	"TestConfluentGroupConsumer":    {ConsumerGroups},
	"TestKafkaPythonGroupConsumer":  {ConsumerGroups},
	"TestSaramaGroupConsumer":       {ConsumerGroups},
	"TestGroupsSameTopic":           {ConsumerGroups},
	"TestConsumerGroupsDescribeCLI": {ConsumerGroups},
	"TestKafkaTopicsDescribeCLI":    {DescribeConfigs},
	"TestSaramaListTopics":          {DescribeConfigs},
	"TestKafkaConfigsCompactedCLI":  {DescribeConfigs},
	"TestStreamsWordCountRestore":   {ConsumerGroups, DescribeConfigs},
	"TestConnectDistributedRestart": {ConsumerGroups, DescribeConfigs},
	"TestJavaTransactions":          {Transactions},
	"TestConfluentTransactions":     {ConsumerGroups, Transactions},
	"TestStreamsExactlyOnce":        {ConsumerGroups, DescribeConfigs, Transactions},
	"TestKafkaTransactionsCLI":      {Transactions},
	"TestKafkaTransactionsCLIAbort": {Transactions, WriteTxnMarkers},
}

// SkipUnsupported skips t when kind lacks a feature Requirements lists for
// it, unless COMPAT_IGNORE_REQUIREMENTS=1 (to see whether a feature works now).
func SkipUnsupported(t testing.TB, kind Kind) {
	t.Helper()
	if os.Getenv("COMPAT_IGNORE_REQUIREMENTS") == "1" {
		return
	}
	name, _, _ := strings.Cut(t.Name(), "/")
	for _, f := range Requirements[name] {
		if !Serves(kind, f) {
			t.Skipf("%s does not serve %s yet (harness.Requirements)", kind, f)
		}
	}
}

// Serves reports whether brokers of kind have feature f.
func Serves(kind Kind, f Feature) bool {
	for _, s := range served[kind] {
		if s == f {
			return true
		}
	}
	return false
}
