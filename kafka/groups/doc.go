// Package groups is the Kafka group coordinator of one broker: classic
// consumer groups (JoinGroup, SyncGroup, Heartbeat, LeaveGroup), KIP-848
// consumer groups (ConsumerGroupHeartbeat, with server-side assignors),
// the group checks of offset commits and deletes, and the admin views
// (DescribeGroups, ListGroups, DeleteGroups, ConsumerGroupDescribe).
//
// A Coordinator holds its state machine (group state in memory), its
// clock (every timeout runs on a Clock, so tests drive it with a fake
// one) and its store (committed offsets in meta, the rows the gRPC front
// reads). Package kafka's handlers translate wire requests into its
// calls. Its API speaks kmsg, the wire codec's types, where the state
// machine keeps or answers Kafka messages (JoinGroup and SyncGroup wait
// for rebalances; behaviour differs per request version), and plain Go
// types elsewhere. It never imports package kafka. Lock order: LOCKS.md.
package groups
