// Package txn is the Kafka transaction coordinator of one broker: the
// state machine behind InitProducerId (with a transactional ID),
// AddPartitionsToTxn, AddOffsetsToTxn, TxnOffsetCommit, EndTxn,
// DescribeTransactions and ListTransactions, the check a transactional
// Produce passes before its batch is appended (CheckProduce), and the
// pending transactional offsets OffsetFetch's RequireStable asks about.
//
// A Coordinator holds its state machine (one meta.Txn per transactional ID
// in memory, loaded from the store by Start), its clock (timeouts, expiry
// and retries run on a Clock, so tests drive them with a fake one), its
// store (the meta.Txn rows and pending offsets: every state change is
// written there before it is answered) and the log's marker writer
// (Markers). Package kafka's handlers translate wire requests into its
// calls and its sentinel errors into Kafka error codes. It never imports
// package kafka. Locks: LOCKS.md.
//
// # State machine
//
// The states are Kafka's (meta.TxnState). InitProducerId moves a
// transactional ID to Empty with a new epoch (KIP-360 bumps, fencing);
// adding a partition or a group moves it to Ongoing; EndTxn records
// PrepareCommit or PrepareAbort, writes a marker to every partition of the
// transaction, then records CompleteCommit or CompleteAbort together with
// the fate of its pending offsets (meta.Store.CompleteTxn) and only then
// answers. A transaction whose Prepare state is recorded is decided: if
// the markers or the completion fail it is answered anyway and finished in
// the background (retried every Config.RetryBackoff, and by Start after a
// restart); meanwhile its transactional ID answers CONCURRENT_TRANSACTIONS.
//
// Fencing is synchronous: an InitProducerId that finds a transaction
// Ongoing bumps the epoch, aborts the transaction with the bumped epoch
// (the markers fence the old producer in every partition) and then bumps
// the epoch again for the caller, in one call, where Kafka answers
// CONCURRENT_TRANSACTIONS and bumps on the retry. Transactions older than
// their timeout are aborted the same way by a timer
// (Config.AbortTimedOutInterval); transactional IDs idle for
// Config.TransactionalIDExpiration are forgotten.
//
// Transaction version 2 (KIP-890 part 2) is served per request: EndTxn v5
// bumps the epoch on every commit and abort and answers the producer ID
// and epoch of the next transaction; CheckProduce with implicitAdd and
// TxnOffsetCommit v5 add partitions and groups to the transaction
// themselves.
package txn
