package log

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/streamhouse/streamhouse/meta"
	"github.com/streamhouse/streamhouse/objstore"
)

// openPartition rebuilds a partition from meta (remote segments, log
// start), its local directory (sealed-not-uploaded and active segments)
// and the object store (reconciliation), then opens an active segment.
func (m *Manager) openPartition(ctx context.Context, t meta.Topic, index int32) (*Partition, error) {
	p := &Partition{
		m: m, topicID: t.ID, topic: t.Name, index: index,
		dir:      filepath.Join(m.cfg.Dir, t.ID, strconv.Itoa(int(index))),
		settings: settingsFor(t.Configs, &m.cfg),
		wake:     make(chan struct{}),
		markWake: make(chan struct{}),
	}
	p.syncCond = sync.NewCond(&p.syncMu)
	if err := mkdirDurable(m.fs, p.dir); err != nil {
		return nil, err
	}
	if err := p.removeCompactionLeftovers(); err != nil {
		return nil, err
	}
	if m.fss != nil {
		same, err := m.fss.covers(p.dir)
		if err != nil {
			return nil, err
		}
		if same {
			p.fss = m.fss
		}
	}
	part, err := m.cfg.Meta.GetPartition(ctx, t.ID, index)
	if err != nil {
		return nil, fmt.Errorf("log: open %s-%d: %w", t.Name, index, err)
	}
	p.logStart = part.LogStartOffset
	rows, err := m.cfg.Meta.ListSegments(ctx, t.ID, index)
	if err != nil {
		return nil, fmt.Errorf("log: open %s-%d: %w", t.Name, index, err)
	}
	recorded := make(map[int64]meta.Segment, len(rows))
	for _, r := range rows {
		recorded[r.BaseOffset] = r
		p.segs = append(p.segs, remoteSegment(r))
	}
	if err := p.recoverLocal(ctx, recorded); err != nil {
		p.closeFiles()
		return nil, err
	}
	if err := m.reconcile(ctx, p, recorded); err != nil {
		p.closeFiles()
		return nil, err
	}
	if err := p.openActive(); err != nil {
		p.closeFiles()
		return nil, err
	}
	for _, s := range p.segs {
		if s.remote {
			p.remoteBytes += s.size
		}
	}
	return p, nil
}

func remoteSegment(r meta.Segment) *segment {
	_, compacted, _ := parseObjectKey(r.ObjectKey)
	return &segment{
		base: r.BaseOffset, key: r.ObjectKey, next: r.LastOffset + 1, size: r.Size,
		maxTs: r.MaxTimestamp, records: r.RecordCount, sealed: true, remote: true, compacted: compacted,
	}
}

// localSegmentFiles lists the partition's segment files by base offset.
func localSegmentFiles(fsys fileSystem, dir string) ([]int64, error) {
	names, err := fsys.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("log: list %s: %w", dir, err)
	}
	var bases []int64
	for _, name := range names {
		if !strings.HasSuffix(name, ".log") {
			continue
		}
		b, err := strconv.ParseInt(strings.TrimSuffix(name, ".log"), 10, 64)
		if err != nil {
			continue
		}
		bases = append(bases, b)
	}
	sort.Slice(bases, func(i, j int) bool { return bases[i] < bases[j] })
	return bases, nil
}

// recoverLocal opens every local segment file. A file with a valid footer
// and batches that match it is sealed: already uploaded (meta has it and
// the object is there) -> removed, else queued for upload. Any other file
// is an active segment: its torn tail is truncated; if it is not the last
// file it is sealed now. Every file kept is fsynced before the partition
// serves, so that nothing a client is told about after a restart (a
// duplicate retry, a read) rests on bytes only in the page cache.
func (p *Partition) recoverLocal(ctx context.Context, recorded map[int64]meta.Segment) error {
	bases, err := localSegmentFiles(p.m.fs, p.dir)
	if err != nil {
		return err
	}
	for i, base := range bases {
		path := filepath.Join(p.dir, segmentFileName(base))
		if coveredBy(recorded, base) {
			// Compaction replaced the uploaded segment this file is a
			// copy of (its removal after upload failed): it is stale.
			p.m.logger.Warn("removing local copy of a segment compaction has replaced", "path", path)
			if err := p.removeDurably(path); err != nil {
				return err
			}
			continue
		}
		if r, ok := recorded[base]; ok {
			gone, err := p.dropUploadedCopy(ctx, path, r)
			if err != nil {
				return err
			}
			if gone {
				continue
			}
		} else if base < p.logStart {
			// DeleteRecords can move the log start into a segment: only
			// a sealed file that ends below it is wholly deleted.
			below, err := sealedBelow(p.m.fs, path, p.logStart)
			if err != nil {
				return err
			}
			if below {
				p.m.logger.Warn("removing local segment below the log start offset", "path", path, "log_start", p.logStart)
				if err := p.m.fs.Remove(path); err != nil {
					return fmt.Errorf("log: remove %s: %w", path, err)
				}
				continue
			}
		}
		seg, err := p.openLocalSegment(ctx, path, base, i == len(bases)-1)
		if err != nil {
			return err
		}
		if seg != nil {
			p.segs = append(p.segs, seg)
		}
	}
	sort.Slice(p.segs, func(i, j int) bool { return p.segs[i].base < p.segs[j].base })
	return nil
}

// dropUploadedCopy handles the local file of a segment meta records as
// uploaded. A file that is a valid sealed copy of that segment is removed
// once the object is known to hold the same segment (its footer matches);
// when the object is missing or differs, the file takes the remote
// entry's place and is uploaded again; when the store cannot be asked, it
// stays for the next start. A file that is not a valid copy (a leftover a
// power loss brought back, damage) holds nothing the object lacks, since
// only verified files are uploaded: it is removed if the object is there,
// and left alone if it is not (reads of the segment then fail with
// ErrSegmentMissing, as they should). gone reports that the file was
// removed or set aside.
func (p *Partition) dropUploadedCopy(ctx context.Context, path string, r meta.Segment) (gone bool, err error) {
	valid, err := p.sealedCopyOf(path, r)
	if err != nil {
		return false, err
	}
	if !valid {
		_, oerr := p.m.cfg.Objects.GetRange(ctx, r.ObjectKey, 0, 1)
		if oerr != nil {
			p.m.logger.Error("local file of a recorded segment is not a valid copy, and its object cannot be read; leaving both",
				"path", path, "key", r.ObjectKey, "err", oerr)
			return true, nil
		}
		p.m.logger.Warn("removing a local file that is not a valid copy of its uploaded segment", "path", path, "key", r.ObjectKey)
		return true, p.removeDurably(path)
	}
	same, err := p.m.objectMatchesFile(ctx, r.ObjectKey, path)
	switch {
	case err == nil && same:
		p.m.logger.Info("removing local copy of uploaded segment", "path", path)
		return true, p.removeDurably(path)
	case err != nil && !errors.Is(err, objstore.ErrNotFound):
		p.m.logger.Warn("cannot check the uploaded object of a local segment; keeping the local copy until the next start",
			"path", path, "key", r.ObjectKey, "err", err)
		return true, nil
	}
	p.m.logger.Error("segment recorded in meta is missing or different in the object store; uploading it again from the local copy",
		"path", path, "key", r.ObjectKey, "err", err)
	for i, s := range p.segs {
		if s.base == r.BaseOffset && s.remote {
			p.segs = append(p.segs[:i], p.segs[i+1:]...)
			break
		}
	}
	return false, nil
}

// sealedCopyOf reports whether the file at path is a valid sealed segment
// (footer, and every batch checked against it) with r's offsets.
func (p *Partition) sealedCopyOf(path string, r meta.Segment) (bool, error) {
	f, err := p.m.fs.OpenFile(path, os.O_RDONLY, 0)
	if err != nil {
		return false, fmt.Errorf("log: open %s: %w", path, err)
	}
	defer f.Close()
	ft, sealed, err := readFooterFile(f)
	if err != nil {
		return false, fmt.Errorf("log: read footer of %s: %w", path, err)
	}
	if !sealed || ft.BaseOffset != r.BaseOffset || ft.LastOffset != r.LastOffset {
		return false, nil
	}
	if err := verifySealedFile(f, ft); err != nil {
		if errors.Is(err, ErrCorruptSegment) {
			return false, nil
		}
		return false, err
	}
	return true, nil
}

// removeDurably removes a file of the partition and fsyncs its directory,
// so a power loss cannot bring it back.
func (p *Partition) removeDurably(path string) error {
	if err := p.m.fs.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("log: remove %s: %w", path, err)
	}
	return syncDir(p.m.fs, p.dir)
}

// objectMatchesFile reports whether the object at key ends with the same
// footer as the sealed local file at path: same size, same batches (the
// footer covers their offsets, count and the index CRC). A missing object
// is an error wrapping objstore.ErrNotFound.
func (m *Manager) objectMatchesFile(ctx context.Context, key, path string) (bool, error) {
	f, err := m.fs.OpenFile(path, os.O_RDONLY, 0)
	if err != nil {
		return false, fmt.Errorf("log: open %s: %w", path, err)
	}
	defer f.Close()
	size, err := f.Size()
	if err != nil || size < footerLen {
		return false, err
	}
	local := make([]byte, footerLen)
	if _, err := f.ReadAt(local, size-footerLen); err != nil {
		return false, fmt.Errorf("log: read footer of %s: %w", path, err)
	}
	return m.objectHasFooter(ctx, key, size, local)
}

// objectHasFooter reports whether the object at key is size bytes long and
// ends with footer.
func (m *Manager) objectHasFooter(ctx context.Context, key string, size int64, footer []byte) (bool, error) {
	remote, err := m.cfg.Objects.GetRange(ctx, key, size-footerLen, footerLen+1)
	if err != nil {
		if errors.Is(err, objstore.ErrPermanent) {
			return false, nil // shorter than size
		}
		return false, err
	}
	return bytes.Equal(remote, footer), nil
}

func (p *Partition) openLocalSegment(ctx context.Context, path string, base int64, last bool) (*segment, error) {
	f, err := p.m.fs.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return nil, fmt.Errorf("log: open segment %s: %w", path, err)
	}
	s, err := p.recoverSegmentFile(ctx, f, base, last)
	if err != nil || s == nil {
		f.Close()
	}
	return s, err
}

// recoverSegmentFile turns an open local segment file into a segment: a
// sealed one (verified, fsynced and queued for upload), the recovered
// active one (last), or nil for an empty file that is not the last.
func (p *Partition) recoverSegmentFile(ctx context.Context, f file, base int64, last bool) (*segment, error) {
	path := f.Name()
	footer, sealed, err := readFooterFile(f)
	if err != nil {
		return nil, fmt.Errorf("log: read footer of %s: %w", path, err)
	}
	if sealed {
		if err := verifySealedFile(f, footer); err != nil {
			if !errors.Is(err, ErrCorruptSegment) {
				return nil, err
			}
			// Only a seal torn by a power loss, or damage, gets here:
			// the footer vouches for batches that are not all there.
			p.m.logger.Warn("sealed segment's batches do not match its footer; recovering it as an active segment",
				"path", path, "err", err)
			sealed = false
		}
	}
	s := &segment{base: base, key: ObjectKey(p.topicID, p.index, base), path: path, file: f, maxTs: -1}
	if sealed {
		txn, err := readTxnFile(f, footer)
		if err != nil {
			// The footer vouches for the section (its length is in the
			// trailer the footer's version announces): damage, not a
			// torn seal.
			return nil, err
		}
		s.txn = txn
		idx, err := readIndexFile(f, footer)
		if err != nil {
			// Indexes are disposable: rebuild it from the batches and re-seal.
			p.m.logger.Warn("sealed segment index is bad; rebuilding it from the batches", "path", path, "err", err)
			if idx, err = rebuildSealedIndex(f, base, txn, footer); err != nil {
				return nil, err
			}
		}
		// A kill -9 during the seal's fsync leaves it in the page cache
		// only: make it durable before anything relies on it.
		if err := f.Sync(); err != nil {
			return nil, fmt.Errorf("log: fsync recovered segment %s: %w", path, err)
		}
		s.next, s.size, s.maxTs, s.records = footer.LastOffset+1, footer.BatchesLen, footer.MaxTimestamp, footer.RecordCount
		s.index, s.sealed = idx, true
		p.m.enqueueUpload(p, s)
		return s, nil
	}
	res, err := recoverActiveFile(f, base, p.m.logger)
	if err != nil {
		return nil, err
	}
	s.size, s.maxTs, s.records, s.index = res.ValidBytes, res.MaxTimestamp, res.RecordCount, res.Index
	s.next = base
	if res.NextOffset >= 0 {
		s.next = res.NextOffset
	}
	s.created = p.m.now()
	if last || s.size == 0 {
		if s.size == 0 && !last {
			if err := p.m.fs.Remove(path); err != nil {
				return nil, fmt.Errorf("log: remove %s: %w", path, err)
			}
			return nil, syncDir(p.m.fs, p.dir)
		}
		return s, nil
	}
	// An unsealed segment that is not the last: seal it now.
	txn, err := p.recoverTxnSection(ctx, f, s.size, s.next)
	if err != nil {
		return nil, fmt.Errorf("log: transactions of recovered segment %s: %w", path, err)
	}
	if err := sealFile(f, s.size, s.index, txn, Footer{BaseOffset: base, LastOffset: s.next - 1,
		MaxTimestamp: s.maxTs, RecordCount: s.records, BatchesLen: s.size}); err != nil {
		return nil, fmt.Errorf("log: seal recovered segment %s: %w", path, err)
	}
	s.sealed, s.txn = true, txn
	p.m.enqueueUpload(p, s)
	return s, nil
}

// readTxnFile reads a sealed local segment's transaction section (an
// empty one when its footer announces none).
func readTxnFile(f file, ft Footer) (*segTxn, error) {
	if !ft.Txn {
		return &segTxn{}, nil
	}
	at := ft.BatchesLen + int64(ft.IndexCount)*indexEntryLen
	buf := make([]byte, ft.TxnLen)
	if _, err := f.ReadAt(buf, at); err != nil && !errors.Is(err, io.EOF) {
		return nil, err
	}
	t, err := decodeTxnSection(buf, ft.BaseOffset, ft.LastOffset)
	if err != nil {
		return nil, &CorruptionError{Segment: f.Name(), Offset: at, Cause: err}
	}
	return &t, nil
}

// readIndexFile reads a sealed local segment's index.
func readIndexFile(f file, footer Footer) (*sparseIndex, error) {
	buf := make([]byte, int64(footer.IndexCount)*16)
	if _, err := f.ReadAt(buf, footer.BatchesLen); err != nil && !errors.Is(err, io.EOF) {
		return nil, err
	}
	if crc := crc32.Checksum(buf, castagnoli); crc != footer.IndexCRC {
		return nil, fmt.Errorf("index crc %08x, footer says %08x", crc, footer.IndexCRC)
	}
	entries, err := decodeIndex(buf)
	if err != nil {
		return nil, err
	}
	return newSparseIndexFrom(entries, defaultIndexInterval), nil
}

// rebuildSealedIndex scans a sealed file's batch region, which must be
// intact, and rewrites its index and footer.
func rebuildSealedIndex(f file, base int64, txn *segTxn, footer Footer) (*sparseIndex, error) {
	res, err := scanBatches(io.NewSectionReader(f, 0, footer.BatchesLen), base, defaultIndexInterval)
	if err != nil {
		return nil, fmt.Errorf("log: rescan %s: %w", f.Name(), err)
	}
	if res.Cause != nil || res.ValidBytes != footer.BatchesLen {
		return nil, &CorruptionError{Segment: f.Name(), Offset: res.ValidBytes, Cause: res.Cause}
	}
	if err := sealFile(f, footer.BatchesLen, res.Index, txn, footer); err != nil {
		return nil, fmt.Errorf("log: re-seal %s: %w", f.Name(), err)
	}
	return res.Index, nil
}

// openActive makes sure the last segment is an unsealed local one, and
// sets the high watermark.
func (p *Partition) openActive() error {
	if err := p.dropEmptySuccessor(); err != nil {
		return err
	}
	next := p.logStart
	if n := len(p.segs); n > 0 && p.segs[n-1].next > next {
		next = p.segs[n-1].next
	}
	p.hwm = next
	if n := len(p.segs); n > 0 && !p.segs[n-1].sealed && p.segs[n-1].file != nil {
		if p.segs[n-1].next >= next {
			return nil
		}
		if err := p.retireActive(p.segs[n-1]); err != nil {
			return err
		}
	}
	f, path, err := createSegmentFile(p.m.fs, p.dir, next)
	if err != nil {
		return err
	}
	p.segs = append(p.segs, p.newActive(next, f, path))
	return nil
}

// dropEmptySuccessor removes an empty active segment that starts past
// the end of the segment before it. Recovery cut the tail off that earlier
// segment (only records never acknowledged with acks=all can be there,
// since a seal fsyncs the batches first), and the empty segment would
// leave a hole in the offsets: the log continues where the intact records
// end instead.
func (p *Partition) dropEmptySuccessor() error {
	n := len(p.segs)
	if n == 0 {
		return nil
	}
	last := p.segs[n-1]
	end := p.logStart // where the records before last end
	if n >= 2 {
		end = max(end, p.segs[n-2].next)
	}
	if last.sealed || last.file == nil || last.size != 0 || end >= last.base {
		return nil
	}
	p.m.logger.Warn("records after a recovered segment's intact prefix are lost; the log continues at its end",
		"path", last.path, "segment_base", last.base, "log_end", end)
	last.file.Close()
	last.file = nil
	p.segs = p.segs[:n-1]
	if err := p.m.fs.Remove(last.path); err != nil {
		return fmt.Errorf("log: remove %s: %w", last.path, err)
	}
	return syncDir(p.m.fs, p.dir)
}

// reconcile compares the object store with meta and logs every mismatch:
// an object not recorded in meta is adopted (or, below the log start,
// deleted as a leftover of retention); a recorded segment whose object is
// missing is reported as an error and re-uploaded if a local copy exists.
func (m *Manager) reconcile(ctx context.Context, p *Partition, recorded map[int64]meta.Segment) error {
	objs, err := m.cfg.Objects.List(ctx, objectPrefix(p.topicID, p.index))
	if err != nil {
		return fmt.Errorf("log: list objects of %s-%d: %w", p.topic, p.index, err)
	}
	present := make(map[string]bool, len(objs))
	keys := make(map[string]bool, len(recorded))
	for _, r := range recorded {
		keys[r.ObjectKey] = true
	}
	for _, o := range objs {
		present[o.Key] = true
		base, compacted, ok := parseObjectKey(o.Key)
		if !ok {
			m.logger.Warn("ignoring unexpected object under partition prefix", "key", o.Key)
			continue
		}
		if keys[o.Key] {
			continue
		}
		if compacted || coveredBy(recorded, base) {
			// Written by a compaction run that never swapped it in, or
			// replaced by one that did (compact.go): either way no row
			// names it and its records are in the recorded set.
			m.logger.Warn("deleting segment object left over by compaction", "key", o.Key)
			if err := m.cfg.Objects.Delete(ctx, o.Key); err != nil {
				return fmt.Errorf("log: delete compaction leftover %s: %w", o.Key, err)
			}
			continue
		}
		if err := m.reconcileUnrecorded(ctx, p, o, base); err != nil {
			return err
		}
	}
	for base, r := range recorded {
		if !present[r.ObjectKey] {
			m.logger.Error("segment recorded in meta is missing from the object store; reads of it will fail",
				"topic", p.topic, "partition", p.index, "base_offset", base, "key", r.ObjectKey)
		}
	}
	sort.Slice(p.segs, func(i, j int) bool { return p.segs[i].base < p.segs[j].base })
	return nil
}

func (m *Manager) reconcileUnrecorded(ctx context.Context, p *Partition, o objstore.ObjectInfo, base int64) error {
	if base < p.logStart {
		m.logger.Warn("deleting object below the log start offset (left over by retention or deletion)",
			"key", o.Key, "log_start", p.logStart)
		return m.cfg.Objects.Delete(ctx, o.Key)
	}
	for _, s := range p.segs {
		if s.base == base && !s.remote {
			return nil // a local sealed copy exists and is queued for upload
		}
	}
	data, err := m.cfg.Objects.Get(ctx, o.Key)
	if err != nil {
		return fmt.Errorf("log: read unrecorded object %s: %w", o.Key, err)
	}
	s, err := openSealed(o.Key, data)
	if err != nil {
		m.logger.Error("object not recorded in meta is not a valid segment; leaving it alone", "key", o.Key, "err", err)
		return nil
	}
	f := s.footer()
	row := meta.Segment{
		TopicID: p.topicID, Partition: p.index, BaseOffset: f.BaseOffset, LastOffset: f.LastOffset,
		MaxTimestamp: f.MaxTimestamp, ObjectKey: o.Key, Size: int64(len(data)), RecordCount: f.RecordCount,
		CreatedAt: m.now(),
	}
	if err := m.cfg.Meta.AddSegment(ctx, row); err != nil && !errors.Is(err, meta.ErrSegmentExists) {
		return fmt.Errorf("log: record adopted segment %s: %w", o.Key, err)
	}
	m.logger.Warn("adopted uploaded segment that meta did not record (crash between upload and record)",
		"key", o.Key, "base_offset", f.BaseOffset, "last_offset", f.LastOffset)
	p.segs = append(p.segs, remoteSegment(row))
	return nil
}

// coveredBy reports whether offset base lies in the range of a recorded
// segment written by compaction. An uploaded object there under another
// key was replaced by compaction.
func coveredBy(recorded map[int64]meta.Segment, base int64) bool {
	for _, r := range recorded {
		if _, compacted, _ := parseObjectKey(r.ObjectKey); compacted && r.BaseOffset <= base && base <= r.LastOffset {
			return true
		}
	}
	return false
}

// closeFiles closes every open segment file (failed open).
func (p *Partition) closeFiles() {
	for _, s := range p.segs {
		if s.file != nil {
			s.file.Close()
			s.file = nil
		}
	}
}
