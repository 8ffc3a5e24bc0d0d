// Package log holds StreamHouse's partition logs: segments of Kafka
// RecordBatch v2 bytes kept verbatim, append (validate, assign offsets,
// write, fsync per policy), read (raw batches for Kafka fetches, decoded
// records for the gRPC front), a sparse offset and time index per segment,
// the LRU cache of sealed segments and the read-ahead of sequential
// reads from the object store (readahead.go), recovery after a crash,
// roll and upload of sealed segments to the object store, retention, and
// compaction (cleanup.policy=compact, compact.go).
//
// # Record batches
//
// A segment holds Kafka RecordBatch v2 bytes exactly as the producer sent
// them, so a fetch needs no re-encoding. The 61-byte header is big-endian:
//
//	off len field
//	  0   8 baseOffset           int64   rewritten by the broker at append
//	  8   4 batchLength          int32   bytes after this field
//	 12   4 partitionLeaderEpoch int32
//	 16   1 magic                int8    always 2
//	 17   4 crc                  uint32  CRC-32C (Castagnoli) of bytes 21..end
//	 21   2 attributes           int16   bits 0-2 codec, 3 log append time,
//	                                     4 transactional, 5 control
//	 23   4 lastOffsetDelta      int32   recordCount-1
//	 27   8 firstTimestamp       int64
//	 35   8 maxTimestamp         int64
//	 43   8 producerId           int64
//	 51   2 producerEpoch        int16
//	 53   4 baseSequence         int32
//	 57   4 recordCount          int32
//	 61     records (compressed as a whole when the codec is not none)
//
// The broker assigns offsets by rewriting baseOffset, which the CRC does
// not cover, so the producer's CRC stays valid. A topic with log append
// time also gets attribute bit 3 and maxTimestamp set, and the CRC
// recomputed. Batches are validated on append (ValidateBatch: framing,
// magic, CRC, and every record decoded, compressed ones after
// decompression) and their CRC is checked again by recovery and when a
// sealed segment is loaded.
//
// # Active segment files
//
// An active segment is the local file
//
//	<dir>/<topic-id>/<partition>/<base offset, %020d>.log
//
// holding nothing but concatenated batches, the first at the base offset
// and each following at the previous one's baseOffset+lastOffsetDelta+1.
// Recovery (recoverActiveFile) walks it checking framing, magic, CRC and
// contiguous offsets, stops at the first short or bad frame, truncates the
// file there and logs a warning with the bytes dropped and why. It fsyncs
// the file whether or not it truncated: after a kill -9 the intact bytes
// may be in the page cache only, and a restarted broker answers from them.
// The in-memory index of an active segment is rebuilt by that walk.
//
// # Sealed segments
//
// Sealing appends the index and a footer to the batches, in the local file
// and in the object stored under
//
//	topics/<topic-id>/<partition>/<base offset, %020d>.seg
//
// as
//
//	batch region (BatchesLen bytes) || index (IndexCount*16 bytes) || footer (60 bytes)
//
// The footer sits at the very end, so a reader can fetch the last 60 bytes,
// then the index, with ranged reads. Everything is big-endian.
//
// Index entries (16 bytes each), in batch order: one for the first batch,
// then one for each batch starting at least 4096 bytes after the previous
// entry's batch (the interval is not stored; readers do not need it):
//
//	off len field
//	  0   4 relOffset          uint32  batch baseOffset - segment base offset
//	  4   4 position           uint32  byte position of the batch
//	  8   8 maxTimestampBefore int64   largest maxTimestamp of all batches
//	                                   before this one; -1 when none
//
// relOffset and position strictly increase; maxTimestampBefore never
// decreases. A batch at a position or relative offset beyond 32 bits gets
// no entry (lookups then start earlier and walk).
//
// Footer (60 bytes):
//
//	off len field
//	  0   4 magic        "SHSG" (0x53485347)        never change
//	  4   2 version      1                          never change meaning
//	  6   2 reserved     0
//	  8   8 baseOffset   int64   first batch's base offset
//	 16   8 lastOffset   int64   last record's offset (baseOffset-1 if empty)
//	 24   8 maxTimestamp int64   largest batch maxTimestamp, -1 if none
//	 32   8 recordCount  int64   records in all batches
//	 40   8 batchesLen   int64   bytes of the batch region
//	 48   4 indexCount   uint32  index entries
//	 52   4 indexCRC     uint32  CRC-32C of the index bytes
//	 56   4 footerCRC    uint32  CRC-32C of footer bytes 0..55
//
// All CRCs are CRC-32C (Castagnoli): each batch's own CRC covers its bytes
// from attributes to its end, indexCRC covers the index, footerCRC the
// footer before it. A sealed segment is valid only when footerCRC and
// indexCRC match and batchesLen + 16*indexCount + 60 is the object's size.
//
// Sealing fsyncs the batches, then writes index and footer and fsyncs
// again, so a footer on disk always vouches for batches on disk. Recovery
// still walks every batch of a local file with a valid footer and checks
// it against the footer (verifySealedFile); a file that fails either
// check is treated as an active segment (a sealing torn by a crash, or
// damage) and recovered by scanning. The uploader verifies the file the
// same way before it puts it in the object store and, after the put, reads
// the object's footer back before the local copy goes. Loading a sealed
// object walks every batch's frame and CRC and checks the footer and index
// against them; any mismatch is a *CorruptionError, never skipped.
//
// # Compacted segments (footer version 2)
//
// Compaction (compact.go) writes segment objects under
//
//	topics/<topic-id>/<partition>/<base offset, %020d>-<generation>.seg
//
// with exactly the layout above and footer version 2, which changes only
// what the batch region may hold:
//
//   - BaseOffset..LastOffset is the range of offsets the segment covers
//     (the union of the segments it replaced); its batches lie inside it
//     with strictly increasing offsets, but may start after BaseOffset,
//     end before LastOffset and leave gaps between them;
//   - a batch keeps its base offset, lastOffsetDelta and producer fields,
//     and may hold fewer records than its offset range (offset deltas
//     increasing, with gaps; maxTimestamp then that of the records left,
//     under CreateTime), or none: an empty batch (61 bytes, codec none,
//     maxTimestamp -1) keeps a producer's last sequence;
//   - a batch with attribute bit 6 set (KIP-534) carries a delete horizon
//     in firstTimestamp: its tombstones go once that time has passed. Its
//     record timestamp deltas are relative to it, so record times are
//     unchanged;
//   - RecordCount counts the records present, and may be 0 with batches.
//
// A version 2 footer on an empty batch region has RecordCount 0,
// IndexCount 0, MaxTimestamp -1 and any LastOffset >= BaseOffset-1.
// Readers of version 1 keep checking contiguous offsets.
//
// # Transaction section (footer versions 3 and 4)
//
// A segment that holds the ABORT marker of a transaction, or ends while a
// transaction is open, carries a transaction section (txnsection.go)
// between its index and its footer; its footer has version 3 (the layout
// of version 1 otherwise) or 4 (of version 2). Big-endian:
//
//	aborted entries, each 32 bytes, by marker offset:
//	  0 8 producerId   int64
//	  8 8 firstOffset  int64  the transaction's first batch in the partition
//	 16 8 lastOffset   int64  its ABORT marker, inside the segment
//	 24 8 lastStable   int64  the last stable offset right after the marker
//	open entries, each 16 bytes, by producer ID:
//	  0 8 producerId   int64
//	  8 8 firstOffset  int64  transactions still open at the segment's end
//	trailer, 12 bytes:
//	  0 4 abortedCount uint32
//	  4 4 openCount    uint32
//	  8 4 sectionCRC   uint32  CRC-32C of the entries and the two counts
//
// A reader reads the last 72 bytes (trailer and footer) to learn the
// section's length; the object's size is then batchesLen + 16*indexCount +
// 32*abortedCount + 16*openCount + 12 + 60. A section has at least one
// entry; segments without any keep versions 1 and 2.
//
// The magic, the version, the layouts above and the CRC polynomial never
// change; a new layout takes a new version and readers keep the old.
package log
