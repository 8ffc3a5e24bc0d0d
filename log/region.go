package log

import (
	"context"
	"errors"
	"os"
	"sync/atomic"
	"syscall"
)

// FileRegion is a run of whole batches in a local segment file, for a
// Kafka fetch to send with sendfile(2) instead of reading them into memory.
// File is a duplicate descriptor owned by the ReadResult: it stays valid
// when the segment's own file is closed (after upload) or removed, and
// ReadResult.Release closes it. The bytes of the region never change: a
// segment is append-only and the region ends at the size the segment had
// when the read was planned.
type FileRegion struct {
	File   *os.File
	Offset int64 // where the first batch starts in File
	Len    int
	// NextOffset is the offset after the region's last batch.
	NextOffset int64
	// open is the Manager's count of open regions, decremented by Release.
	open *atomic.Int64
}

// MaxOpenRegions caps the regions (each a duplicate file descriptor) open
// at once across the broker: a flood of fetches must not use up the
// process's descriptors, which accept and segment rolls need too. Past it
// ReadRegion answers with copied batches, as Read does.
const MaxOpenRegions = 512

// ReadRegion is Read for senders that can send from a file: when the
// batches Read would return come from a local segment and to at least
// minLen bytes, it returns them as res.Region (Batches empty); otherwise it
// answers exactly as Read does. Callers must call res.Release once done
// with the region.
func (p *Partition) ReadRegion(ctx context.Context, offset int64, maxBytes, minLen int) (ReadResult, error) {
	return p.ReadRegionBelow(ctx, offset, maxBytes, minLen, -1)
}

// ReadRegionBelow is ReadRegion for a read_committed reader: only batches
// that start below upTo (the last stable offset) are returned, as a region
// or copied; upTo < 0 means no bound. A batch at or past upTo ends the
// read, so it may return nothing below the high watermark.
func (p *Partition) ReadRegionBelow(ctx context.Context, offset int64, maxBytes, minLen int, upTo int64) (ReadResult, error) {
	plan, res, err := p.planRead(offset)
	if err != nil || plan.seg == nil {
		return res, err
	}
	if upTo >= 0 && offset >= upTo {
		return res, nil
	}
	if !plan.remote {
		r, err := p.regionLocal(plan, offset, maxBytes, minLen, upTo)
		if err != nil {
			return res, err
		}
		if r != nil {
			res.Region = r
			return res, nil
		}
	}
	res, err = p.Read(ctx, offset, maxBytes)
	if err == nil && upTo >= 0 {
		res.Batches = res.Batches[:BatchesBelow(res.Batches, upTo)]
	}
	return res, err
}

// regionLocal returns the region of the batches Read would return, or nil
// when it is not worth one (too short, or too many batches to walk) or the
// local file is gone.
func (p *Partition) regionLocal(plan readPlan, offset int64, maxBytes, minLen int, upTo int64) (*FileRegion, error) {
	p.fileMu.RLock()
	defer p.fileMu.RUnlock()
	f := plan.seg.file
	if f == nil {
		return nil, nil
	}
	if plan.limit-plan.pos < int64(minLen) {
		return nil, nil
	}
	var first BatchHeader
	pos := plan.pos
	for {
		if pos >= plan.limit {
			return nil, nil
		}
		h, err := p.localHeader(plan.seg, f, pos, plan.limit)
		if err != nil {
			return nil, err
		}
		if h.NextOffset() > offset {
			first = h
			break
		}
		pos += int64(h.Size())
	}
	if upTo >= 0 && first.BaseOffset >= upTo {
		return nil, nil
	}
	end, next, ok, err := p.regionEnd(f, plan, pos, first, maxBytes, upTo)
	if err != nil || !ok {
		return nil, err
	}
	n := end - pos
	if n < int64(minLen) {
		return nil, nil
	}
	if p.m.openRegions.Add(1) > MaxOpenRegions {
		p.m.openRegions.Add(-1)
		return nil, nil // Read copies instead
	}
	dup, err := dupFile(f)
	if err != nil {
		// Out of descriptors (EMFILE) must not fail a fetch: Read copies.
		p.m.openRegions.Add(-1)
		return nil, nil
	}
	// Offsets are contiguous within a segment, so the region holds every
	// record from the first batch's base offset to next.
	p.stats.countReadRegion(n, next-first.BaseOffset)
	return &FileRegion{File: dup, Offset: pos, Len: int(n), NextOffset: next, open: &p.m.openRegions}, nil
}

// maxRegionWalk caps the batch headers regionEnd reads to cut a region
// short of maxBytes: a log of tiny batches is cheaper to read than to walk.
const maxRegionWalk = 64

// regionEnd returns where a region starting with batch first at pos ends:
// plan.limit if the rest fits in maxBytes (and lies below upTo, when that
// is not negative), else after the last whole batch within maxBytes (at
// least the first batch, as Read does) that starts below upTo, with the
// offset after it. ok is false when that takes more than maxRegionWalk
// headers.
func (p *Partition) regionEnd(f file, plan readPlan, pos int64, first BatchHeader, maxBytes int, upTo int64) (end, next int64, ok bool, err error) {
	if plan.limit-pos <= int64(maxBytes) && (upTo < 0 || plan.next <= upTo) {
		return plan.limit, plan.next, true, nil
	}
	end, next = pos+int64(first.Size()), first.NextOffset()
	for range maxRegionWalk {
		if end >= plan.limit {
			return end, next, true, nil
		}
		h, err := p.localHeader(plan.seg, f, end, plan.limit)
		if err != nil {
			return 0, 0, false, err
		}
		if end+int64(h.Size())-pos > int64(maxBytes) || (upTo >= 0 && h.BaseOffset >= upTo) {
			return end, next, true, nil
		}
		end, next = end+int64(h.Size()), h.NextOffset()
	}
	return 0, 0, false, nil
}

// dupFile duplicates f's descriptor (close-on-exec). Only a file of the
// operating system has one.
func dupFile(ff file) (*os.File, error) {
	f, ok := ff.(osFile)
	if !ok {
		return nil, errors.ErrUnsupported
	}
	sc, err := f.SyscallConn()
	if err != nil {
		return nil, err
	}
	var nfd uintptr
	var errno syscall.Errno
	if err := sc.Control(func(fd uintptr) {
		nfd, _, errno = syscall.Syscall(syscall.SYS_FCNTL, fd, syscall.F_DUPFD_CLOEXEC, 0)
	}); err != nil {
		return nil, err
	}
	if errno != 0 {
		return nil, errno
	}
	return os.NewFile(nfd, f.Name()), nil
}
