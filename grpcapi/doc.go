// Package grpcapi is StreamHouse's native gRPC front: the StreamHouse
// service of proto/streamhouse.proto (9 RPCs), server reflection (so
// grpcurl works without the .proto) and grpc.health.v1, all on one
// grpc.Server, by default on :50051.
//
// It sits on the same storage engine as the Kafka front (log.Manager for
// topics and partition logs, meta.Store for committed offsets) and never
// imports kafka/. It is the only package that turns log and meta errors
// into gRPC status codes (errors.go).
//
// # Behaviour
//
//   - Produce and ProduceBatch encode their records as Kafka RecordBatch v2,
//     LZ4-compressed, with headers and timestamps (the broker's clock when
//     a record has none), and answer only after the append is fsynced
//     (log.AppendOptions{Sync: true}). A ProduceBatch larger than the
//     topic's max.message.bytes is split into several batches appended
//     together, atomically; a single record over the limit is
//     INVALID_ARGUMENT. A large request is also split into one batch per
//     core, compressed concurrently (compression dominates its CPU cost).
//   - Consume decodes records across segments; records read through the
//     Kafka front and this one are identical (key, value, headers,
//     timestamp).
//   - CommitOffset and GetOffset use the committed-offset rows of Kafka's
//     OffsetCommit and OffsetFetch.
//
// # Limits
//
//   - A request message is at most Config.MaxRecvBytes (DefaultMaxRecvBytes,
//     16 MiB); larger ones fail with RESOURCE_EXHAUSTED.
//   - A record, or rather the batch holding it, is at most the topic's
//     max.message.bytes (1 MiB by default) after compression.
//   - Consume returns at most max_records records (default
//     DefaultConsumeRecords = 100, capped at MaxConsumeRecords = 10,000)
//     and about max_bytes of key, value and header bytes (default
//     DefaultConsumeBytes = 1 MiB, capped at MaxConsumeBytes = 3 MiB), but
//     always at least one record when one is available. Answers therefore
//     fit the 4 MiB gRPC clients accept by default unless one record is
//     larger; clients reading such records must raise their limit.
//   - Consume long-polls for at most MaxConsumeWait (30 s).
//   - CreateTopic accepts at most MaxPartitions (10,000) partitions.
package grpcapi
