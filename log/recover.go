package log

import (
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
	}
	p.syncCond = sync.NewCond(&p.syncMu)
	if err := os.MkdirAll(p.dir, 0o755); err != nil {
		return nil, fmt.Errorf("log: create partition dir %s: %w", p.dir, err)
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
	if err := p.recoverLocal(recorded); err != nil {
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
	return &segment{
		base: r.BaseOffset, key: r.ObjectKey, next: r.LastOffset + 1, size: r.Size,
		maxTs: r.MaxTimestamp, records: r.RecordCount, sealed: true, remote: true,
	}
}

// localSegmentFiles lists the partition's segment files by base offset.
func localSegmentFiles(dir string) ([]int64, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("log: list %s: %w", dir, err)
	}
	var bases []int64
	for _, e := range ents {
		name := e.Name()
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
// is sealed: already uploaded (meta has it) -> removed, else queued for
// upload. A file without one is an active segment: its torn tail is
// truncated; if it is not the last file it is sealed now.
func (p *Partition) recoverLocal(recorded map[int64]meta.Segment) error {
	bases, err := localSegmentFiles(p.dir)
	if err != nil {
		return err
	}
	for i, base := range bases {
		path := filepath.Join(p.dir, segmentFileName(base))
		if _, ok := recorded[base]; ok {
			p.m.logger.Info("removing local copy of uploaded segment", "path", path)
			if err := os.Remove(path); err != nil {
				return fmt.Errorf("log: remove %s: %w", path, err)
			}
			continue
		}
		if base < p.logStart {
			// DeleteRecords can move the log start into a segment: only
			// a sealed file that ends below it is wholly deleted.
			below, err := sealedBelow(path, p.logStart)
			if err != nil {
				return err
			}
			if below {
				p.m.logger.Warn("removing local segment below the log start offset", "path", path, "log_start", p.logStart)
				if err := os.Remove(path); err != nil {
					return fmt.Errorf("log: remove %s: %w", path, err)
				}
				continue
			}
		}
		seg, err := p.openLocalSegment(path, base, i == len(bases)-1)
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

func (p *Partition) openLocalSegment(path string, base int64, last bool) (*segment, error) {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return nil, fmt.Errorf("log: open segment %s: %w", path, err)
	}
	footer, sealed, err := readFooterFile(f)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("log: read footer of %s: %w", path, err)
	}
	s := &segment{base: base, key: ObjectKey(p.topicID, p.index, base), path: path, file: f, maxTs: -1}
	if sealed {
		idx, err := readIndexFile(f, footer)
		if err != nil {
			// Indexes are disposable: rebuild it from the batches and re-seal.
			p.m.logger.Warn("sealed segment index is bad; rebuilding it from the batches", "path", path, "err", err)
			if idx, err = rebuildSealedIndex(f, base, footer); err != nil {
				f.Close()
				return nil, err
			}
		}
		s.next, s.size, s.maxTs, s.records = footer.LastOffset+1, footer.BatchesLen, footer.MaxTimestamp, footer.RecordCount
		s.index, s.sealed = idx, true
		p.m.enqueueUpload(p, s)
		return s, nil
	}
	res, err := recoverActiveFile(path, base, p.m.logger)
	if err != nil {
		f.Close()
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
			f.Close()
			return nil, os.Remove(path)
		}
		return s, nil
	}
	// An unsealed segment that is not the last: seal it now.
	if err := sealFile(f, s.size, s.index, Footer{BaseOffset: base, LastOffset: s.next - 1,
		MaxTimestamp: s.maxTs, RecordCount: s.records, BatchesLen: s.size}); err != nil {
		f.Close()
		return nil, fmt.Errorf("log: seal recovered segment %s: %w", path, err)
	}
	s.sealed = true
	p.m.enqueueUpload(p, s)
	return s, nil
}

// readIndexFile reads a sealed local segment's index.
func readIndexFile(f *os.File, footer Footer) (*sparseIndex, error) {
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
func rebuildSealedIndex(f *os.File, base int64, footer Footer) (*sparseIndex, error) {
	res, err := scanBatches(io.NewSectionReader(f, 0, footer.BatchesLen), base, defaultIndexInterval)
	if err != nil {
		return nil, fmt.Errorf("log: rescan %s: %w", f.Name(), err)
	}
	if res.Cause != nil || res.ValidBytes != footer.BatchesLen {
		return nil, &CorruptionError{Segment: f.Name(), Offset: res.ValidBytes, Cause: res.Cause}
	}
	if err := sealFile(f, footer.BatchesLen, res.Index, footer); err != nil {
		return nil, fmt.Errorf("log: re-seal %s: %w", f.Name(), err)
	}
	return res.Index, nil
}

// openActive makes sure the last segment is an unsealed local one, and
// sets the high watermark.
func (p *Partition) openActive() error {
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
	f, path, err := createSegmentFile(p.dir, next)
	if err != nil {
		return err
	}
	p.segs = append(p.segs, p.newActive(next, f, path))
	return nil
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
	for _, o := range objs {
		present[o.Key] = true
		base, ok := baseFromKey(o.Key)
		if !ok {
			m.logger.Warn("ignoring unexpected object under partition prefix", "key", o.Key)
			continue
		}
		if _, ok := recorded[base]; ok {
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

// baseFromKey parses the base offset out of ".../<base>.seg".
func baseFromKey(key string) (int64, bool) {
	name := key[strings.LastIndexByte(key, '/')+1:]
	if !strings.HasSuffix(name, ".seg") {
		return 0, false
	}
	b, err := strconv.ParseInt(strings.TrimSuffix(name, ".seg"), 10, 64)
	return b, err == nil
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
