package lossyfs

import (
	"fmt"
	"maps"
	"slices"

	"golang.org/x/sys/unix"
)

// pageSize is the unit in which pending contents are kept.
const pageSize = 4096

// overlay is a file's contents as written but not yet fsynced, kept over
// the backing file, which holds the durable contents.
//
// Invariants: base <= size; every byte of a page at or past size is zero;
// and the backing file is at least base bytes long (it changes only in
// sync, which ends the overlay).
type overlay struct {
	pages map[int64][]byte // pending pages by index (offset / pageSize), pageSize bytes each
	size  int64            // the file's size as readers see it
	// base bounds what shows through from the backing file: its bytes
	// below base are visible where no page covers them, bytes at or past
	// base (cut off by a truncation) read as zeros.
	base int64
}

// newOverlay starts an overlay over the backing file fd.
func newOverlay(fd int) (*overlay, error) {
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return nil, err
	}
	return &overlay{pages: make(map[int64][]byte), size: st.Size, base: st.Size}, nil
}

// pendingBytes is how much the overlay holds: its pages.
func (o *overlay) pendingBytes() int64 { return int64(len(o.pages)) * pageSize }

// read reads at off as a reader of the file sees it, merging the pending
// pages over the backing file.
func (o *overlay) read(fd int, p []byte, off int64) (int, error) {
	if off >= o.size {
		return 0, nil
	}
	p = p[:min(int64(len(p)), o.size-off)]
	for done := 0; done < len(p); {
		pos := off + int64(done)
		idx, in := pos/pageSize, int(pos%pageSize)
		chunk := p[done:min(len(p), done+pageSize-in)]
		if pg, ok := o.pages[idx]; ok {
			copy(chunk, pg[in:])
		} else if err := readBacking(fd, chunk, pos, o.base); err != nil {
			return done, err
		}
		done += len(chunk)
	}
	return len(p), nil
}

// write writes p at off into pending pages.
func (o *overlay) write(fd int, p []byte, off int64) error {
	for done := 0; done < len(p); {
		pos := off + int64(done)
		pg, err := o.page(fd, pos/pageSize)
		if err != nil {
			return err
		}
		done += copy(pg[pos%pageSize:], p[done:])
	}
	o.size = max(o.size, off+int64(len(p)))
	return nil
}

// page returns the pending page idx, making one from what readers see if
// there is none.
func (o *overlay) page(fd int, idx int64) ([]byte, error) {
	if pg, ok := o.pages[idx]; ok {
		return pg, nil
	}
	pg := make([]byte, pageSize)
	if err := readBacking(fd, pg, idx*pageSize, o.base); err != nil {
		return nil, err
	}
	o.pages[idx] = pg
	return pg, nil
}

// truncate sets the size, as ftruncate(2): bytes past a smaller size are
// gone, and a larger size reads as zeros beyond the old one.
func (o *overlay) truncate(size int64) {
	if size < o.size {
		o.base = min(o.base, size)
		for idx, pg := range o.pages {
			start := idx * pageSize
			switch {
			case start >= size:
				delete(o.pages, idx)
			case size < start+pageSize:
				clear(pg[size-start:])
			}
		}
	}
	o.size = size
}

// sync writes the overlay to the backing file, which then holds exactly
// what readers saw. The overlay is done with afterwards.
func (o *overlay) sync(fd int) error {
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return err
	}
	if st.Size > o.base {
		if err := unix.Ftruncate(fd, o.base); err != nil {
			return err
		}
	}
	for _, idx := range slices.Sorted(maps.Keys(o.pages)) {
		start := idx * pageSize
		if start >= o.size {
			continue
		}
		if err := pwriteFull(fd, o.pages[idx][:min(pageSize, o.size-start)], start); err != nil {
			return err
		}
	}
	return unix.Ftruncate(fd, o.size)
}

// writeBack writes the pages for which keep returns true to the backing
// file, as a kernel's writeback before a power cut would, and returns how
// many bytes it wrote. The overlay must be dropped afterwards: the backing
// file no longer matches base.
func (o *overlay) writeBack(fd int, keep func() bool) (int64, error) {
	var kept int64
	for _, idx := range slices.Sorted(maps.Keys(o.pages)) {
		start := idx * pageSize
		if start >= o.size || !keep() {
			continue
		}
		p := o.pages[idx][:min(pageSize, o.size-start)]
		if err := pwriteFull(fd, p, start); err != nil {
			return kept, err
		}
		kept += int64(len(p))
	}
	return kept, nil
}

// readBacking fills p with the backing file's bytes at off, and with zeros
// from limit on (and past the backing file's end).
func readBacking(fd int, p []byte, off, limit int64) error {
	n := 0
	for off+int64(n) < limit && n < len(p) {
		want := p[n:min(int64(len(p)), limit-off)]
		m, err := unix.Pread(fd, want, off+int64(n))
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return err
		}
		if m == 0 {
			break
		}
		n += m
	}
	clear(p[n:])
	return nil
}

// pwriteFull writes all of p at off.
func pwriteFull(fd int, p []byte, off int64) error {
	for len(p) > 0 {
		n, err := unix.Pwrite(fd, p, off)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return err
		}
		if n == 0 {
			return fmt.Errorf("pwrite at %d: wrote nothing", off)
		}
		p, off = p[n:], off+int64(n)
	}
	return nil
}
