// Package cluster is what lets several brokers share one metadata store
// (PostgreSQL) and one object store: the broker registry (Registry: each
// broker registers itself and heartbeats), leases (Leases: the broker
// acquires and renews the leases of the partitions and coordinator shards
// placement gives it, and tells its owner "now leading K at epoch E" and
// "lost K") and placement (Assign: which live broker should hold each
// lease, deterministic on every broker).
//
// Leases and epochs live in meta (meta.Store's RegisterBroker ...
// ListLeases); a lease's epoch is Kafka's leader epoch. The fence that
// makes "a fenced broker never acknowledges a write" true is in meta too:
// writes guarded by a meta.Fence check the lease in their own
// transaction. This package only decides what to acquire and when; the
// times it keeps locally are advisory.
//
// Not wired yet: cmd/streamhouse does not build a Registry or Leases, and
// log and the fronts do not ask this package anything (issue 14).
//
// Every component runs on an injectable Clock (timers, not goroutines of
// its own), is started by Start and stopped by Close, which waits for a
// running round to finish.
//
// Locks: Leases.mu may be held while taking Registry.mu (Leader asks the
// registry for this broker's ID), never the other way round; loop.mu is
// a leaf. Store calls and event callbacks run with no lock held.
package cluster
