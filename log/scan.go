package log

import (
	"bufio"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"log/slog"
)

// scanBufferSize is the read buffer of a recovery scan.
const scanBufferSize = 256 << 10

// scanResult is what a recovery scan found in a segment file.
type scanResult struct {
	// ValidBytes is the length of the intact prefix of whole batches;
	// Dropped the bytes after it.
	ValidBytes, Dropped int64
	// Cause says why the scan stopped before the end (a *BatchError or an
	// *OffsetGapError); nil when Dropped is 0.
	Cause error
	// BaseOffset and NextOffset are the first batch's base offset and the
	// offset after the last batch; both -1 when no batch is intact.
	BaseOffset, NextOffset int64
	// MaxTimestamp is the largest batch MaxTimestamp, -1 when none.
	MaxTimestamp int64
	RecordCount  int64
	Batches      int
	// Index covers the intact batches.
	Index *sparseIndex
}

// OffsetGapError means a batch's base offset is not the offset following
// the previous batch (or, for the first batch, the segment's base offset).
// The CRC does not cover the base offset, so this is how damage to it
// shows. It matches ErrCorruptSegment.
type OffsetGapError struct {
	Want, Got int64
}

// Error implements error.
func (e *OffsetGapError) Error() string {
	return fmt.Sprintf("log: batch base offset %d, want %d", e.Got, e.Want)
}

// Unwrap returns ErrCorruptSegment.
func (e *OffsetGapError) Unwrap() error { return ErrCorruptSegment }

// scanBatches walks whole batches from the start of r, checking framing,
// magic, CRC-32C, record count against lastOffsetDelta and contiguous
// offsets starting at segBase. Records are not decoded: the CRC covers
// them and they were validated on append. It stops at the first short or
// bad frame, with Cause set and Dropped counting the rest of r. It streams
// r and holds at most one buffer of it. The error is only for I/O errors.
func scanBatches(r io.Reader, segBase int64, indexInterval int) (scanResult, error) {
	cr := &countingReader{r: r}
	br := bufio.NewReaderSize(cr, scanBufferSize)
	res := scanResult{BaseOffset: -1, NextOffset: -1, MaxTimestamp: noTimestamp,
		Index: newSparseIndex(indexInterval)}
	next := segBase
	for {
		h, cause, err := scanOne(br, next)
		if err != nil {
			return res, err
		}
		if cause != nil {
			res.Cause = cause
			break
		}
		if h.Length == 0 { // clean end of r
			return res, nil
		}
		res.Index.add(h, segBase, res.ValidBytes)
		if res.Batches == 0 {
			res.BaseOffset = h.BaseOffset
		}
		next = h.NextOffset()
		res.NextOffset, res.Batches = next, res.Batches+1
		res.MaxTimestamp = max(res.MaxTimestamp, h.MaxTimestamp)
		res.RecordCount += int64(h.NumRecords)
		res.ValidBytes += int64(h.Size())
	}
	// Count what is dropped: the rest of r.
	if _, err := br.WriteTo(io.Discard); err != nil {
		return res, fmt.Errorf("scan segment: %w", err)
	}
	res.Dropped = cr.n - res.ValidBytes
	return res, nil
}

// scanOne reads and checks the next batch of br, which should start at
// offset want. At a clean end it returns a zero header. cause is set when
// the batch is short or bad; err only for I/O errors.
func scanOne(br *bufio.Reader, want int64) (h BatchHeader, cause, err error) {
	var hdr [batchHeaderLen]byte
	n, err := io.ReadFull(br, hdr[:])
	switch {
	case err == io.EOF:
		return BatchHeader{}, nil, nil
	case err == io.ErrUnexpectedEOF:
		return h, corruptf("torn batch header: %d of %d bytes", n, batchHeaderLen), nil
	case err != nil:
		return h, nil, fmt.Errorf("scan segment: %w", err)
	}
	h, _ = ParseBatchHeader(hdr[:])
	if h.Length < minBatchLength {
		return h, corruptf("length %d below minimum %d", h.Length, minBatchLength), nil
	}
	// Every batch was validated on append, so on disk a bad magic or
	// count is damage too: all frame failures here are ErrCorruptBatch.
	if h.Magic != batchMagic {
		return h, corruptf("magic %d, want %d", h.Magic, batchMagic), nil
	}
	if bad := badCounts(h); bad != "" {
		return h, corruptf("%s", bad), nil
	}
	if h.BaseOffset != want {
		return h, &OffsetGapError{Want: want, Got: h.BaseOffset}, nil
	}
	// CRC the rest straight out of the read buffer: a garbage length
	// costs reading to the end of the file, never an allocation.
	crc := crc32.Update(0, castagnoli, hdr[offAttributes:])
	for left := h.Size() - batchHeaderLen; left > 0; {
		chunk, err := br.Peek(min(left, br.Size()))
		crc = crc32.Update(crc, castagnoli, chunk)
		br.Discard(len(chunk)) //nolint:errcheck // Peek made these bytes available
		left -= len(chunk)
		if errors.Is(err, io.EOF) {
			return h, corruptf("torn batch: %d of %d bytes", h.Size()-left, h.Size()), nil
		}
		if err != nil && !errors.Is(err, bufio.ErrBufferFull) {
			return h, nil, fmt.Errorf("scan segment: %w", err)
		}
	}
	if crc != h.CRC {
		return h, corruptf("crc %08x, computed %08x", h.CRC, crc), nil
	}
	return h, nil, nil
}

// countingReader counts the bytes read through it.
type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// recoverActiveFile scans the active segment file f and, when its tail is
// torn or bad, truncates it to the intact prefix and logs a warning with
// what was dropped and why; it never drops silently. It fsyncs f either
// way: after a kill -9 the intact prefix may be in the page cache only,
// and nothing may rest on it (a duplicate retry answered from it, the
// group commit's count of synced bytes) until it is durable.
func recoverActiveFile(f file, segBase int64, logger *slog.Logger) (scanResult, error) {
	if logger == nil {
		logger = slog.Default()
	}
	path := f.Name()
	size, err := f.Size()
	if err != nil {
		return scanResult{}, fmt.Errorf("log: recover segment %s: %w", path, err)
	}
	res, err := scanBatches(io.NewSectionReader(f, 0, size), segBase, defaultIndexInterval)
	if err != nil {
		return res, fmt.Errorf("log: recover segment %s: %w", path, err)
	}
	if res.Dropped > 0 {
		if err := f.Truncate(res.ValidBytes); err != nil {
			return res, fmt.Errorf("log: recover segment %s: truncate to %d: %w", path, res.ValidBytes, err)
		}
	}
	if err := f.Sync(); err != nil {
		return res, fmt.Errorf("log: recover segment %s: fsync: %w", path, err)
	}
	if res.Dropped > 0 {
		logger.Warn("log: truncated damaged tail of active segment",
			slog.String("segment", path),
			slog.Int64("valid_bytes", res.ValidBytes),
			slog.Int64("dropped_bytes", res.Dropped),
			slog.Int("intact_batches", res.Batches),
			slog.Any("cause", res.Cause))
	}
	return res, nil
}
