package kafka

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/bits"
	"math/rand/v2"
	"net"
	"sync"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kbin"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/streamhouse/streamhouse/log"
)

// outFrame is one encoded response frame queued for the connection's
// writer: the size prefix and everything after it, in pieces. A Fetch
// response's record batches are pieces of their own, never copied into the
// response: byte slices pointing at the log's read buffers or cached
// segments (written with writev), or regions of segment files (written
// with sendfile). release (if set) returns the read buffers and closes the
// region files once the frame is written or dropped.
//
// A frame with finish set is not encoded yet: the writer calls finish (it
// may block, e.g. until an acks=all produce is fsynced) and writes the
// frame it returns.
type outFrame struct {
	bufs    net.Buffers
	files   []filePiece // in frame order
	n       int         // bytes in the frame
	mem     int         // memBytes counted against the connection's queue (conn.reserveMem)
	release func()
	finish  func() *outFrame
}

// filePiece is a file region that goes after bufs[:at].
type filePiece struct {
	at     int
	region *log.FileRegion
}

// partRegion is a Fetch partition whose batches are a file region.
type partRegion struct {
	out    *kmsg.FetchResponseTopicPartition
	region *log.FileRegion
}

// memBytes is what the frame holds in memory until it is written: all of
// it but the file regions, which sendfile reads from the page cache.
func (f *outFrame) memBytes() int {
	n := f.n
	for _, fp := range f.files {
		n -= fp.region.Len
	}
	return n
}

// done runs release once; the frame's pieces must not be used afterwards.
func (f *outFrame) done() {
	if f.release != nil {
		f.release()
		f.release = nil
	}
}

// writeTo writes the frame: byte pieces with writev, file pieces with
// sendfile, in order.
func (f *outFrame) writeTo(nc net.Conn) error {
	start := 0
	for _, fp := range f.files {
		if fp.at > start {
			b := f.bufs[start:fp.at]
			if _, err := b.WriteTo(nc); err != nil {
				return err
			}
		}
		if err := sendRegion(nc, fp.region); err != nil {
			return err
		}
		start = fp.at
	}
	rest := f.bufs[start:]
	_, err := rest.WriteTo(nc)
	return err
}

// sendRegion sends a file region with sendfile(2), through the socket's
// RawConn so that the poller waits out EAGAIN and write deadlines apply.
// The offset is passed by pointer: the file's own offset is not used.
// Connections that are not sockets get a plain copy.
func sendRegion(nc net.Conn, r *log.FileRegion) error {
	sc, ok := nc.(syscall.Conn)
	if !ok {
		return copyRegion(nc, r)
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return copyRegion(nc, r)
	}
	src, err := r.File.SyscallConn()
	if err != nil {
		return copyRegion(nc, r)
	}
	off, left := r.Offset, r.Len
	var serr error
	werr := src.Control(func(in uintptr) {
		err := rc.Write(func(out uintptr) bool {
			for left > 0 {
				n, err := syscall.Sendfile(int(out), int(in), &off, left)
				if n > 0 {
					left -= n
				}
				switch {
				case errors.Is(err, syscall.EAGAIN):
					return false // wait until writable
				case errors.Is(err, syscall.EINTR):
				case err != nil:
					serr = err
					return true
				case n == 0:
					serr = fmt.Errorf("kafka: segment file ended %d bytes before the fetched region", left)
					return true
				}
			}
			return true
		})
		if serr == nil {
			serr = err
		}
	})
	if werr != nil {
		return werr
	}
	if serr != nil {
		return fmt.Errorf("kafka: sendfile: %w", serr)
	}
	return nil
}

// copyRegion writes a file region by reading it.
func copyRegion(w io.Writer, r *log.FileRegion) error {
	_, err := io.Copy(w, io.NewSectionReader(r.File, r.Offset, int64(r.Len)))
	return err
}

// encodeFrame encodes resp as the response to req.
func encodeFrame(req *request, resp kmsg.Response) *outFrame {
	if f, ok := resp.(*kmsg.FetchResponse); ok {
		if out, ok := encodeFetchFrame(req.correlationID, f, req.regions); ok {
			return out
		}
		// Defensive: every region is read into memory and copied.
		for _, pr := range req.regions {
			pr.out.RecordBatches = readRegion(pr.region)
		}
	}
	b := encodeResponse(req.correlationID, req.key, resp)
	return &outFrame{bufs: net.Buffers{b}, n: len(b)}
}

func readRegion(r *log.FileRegion) []byte {
	b := make([]byte, r.Len)
	if _, err := r.File.ReadAt(b, r.Offset); err != nil {
		return []byte{} // cannot happen for an intact segment; send no batches
	}
	return b
}

// spliceMinBytes is the smallest RecordBatches worth a writev piece of its
// own; smaller ones are cheaper to copy.
const spliceMinBytes = 2048

// produceKey and fetchKey are the Produce and Fetch API keys.
const (
	produceKey = 0
	fetchKey   = 1
)

// splice is one partition whose batches are not copied into the frame.
type splice struct {
	p      *kmsg.FetchResponseTopicPartition
	data   []byte          // or
	region *log.FileRegion // (then RecordBatches is empty)
}

func (s splice) len() int {
	if s.region != nil {
		return s.region.Len
	}
	return len(s.data)
}

// encodeFetchFrame encodes a Fetch response without copying its large
// RecordBatches or its file regions. kmsg encodes the response with each
// of them replaced by a 16-byte random marker; each marker and the length
// prefix before it are then cut out and the frame is stitched together
// from the encoded pieces, the real length prefixes and the batches (or
// regions) themselves: byte for byte what encodeResponse would produce
// with the batches in place (TestEncodeFetchFrame). The size prefix is
// computed before anything is written. ok is false when there is nothing
// to splice (or, defensively, when a marker is not found where kmsg must
// have put it); the caller then copies.
func encodeFetchFrame(correlationID int32, resp *kmsg.FetchResponse, regions []partRegion) (*outFrame, bool) {
	var sp []splice
	for i := range resp.Topics {
		for j := range resp.Topics[i].Partitions {
			p := &resp.Topics[i].Partitions[j]
			if len(regions) > 0 && regions[0].out == p {
				sp = append(sp, splice{p: p, region: regions[0].region})
				regions = regions[1:]
			} else if len(p.RecordBatches) >= spliceMinBytes {
				sp = append(sp, splice{p: p, data: p.RecordBatches})
			}
		}
	}
	if len(sp) == 0 || len(regions) > 0 {
		return nil, false
	}
	marks := make([]byte, 16*len(sp))
	r0, r1 := rand.Uint64(), rand.Uint64()
	for k, s := range sp {
		m := marks[16*k : 16*k+16 : 16*k+16]
		binary.BigEndian.PutUint64(m, r0)
		binary.BigEndian.PutUint64(m[8:], r1^uint64(k))
		s.p.RecordBatches = m
	}
	b := encodeResponse(correlationID, fetchKey, resp)
	for _, s := range sp {
		s.p.RecordBatches = s.data
		if s.region != nil {
			s.p.RecordBatches = []byte{}
		}
	}

	flexible := resp.IsFlexible()
	markPrefix := kbin.AppendInt32(nil, 16)
	if flexible {
		markPrefix = kbin.AppendUvarint(nil, 17)
	}
	lens := make([]byte, 0, 5*len(sp)) // never grows: pieces point into it
	out := &outFrame{bufs: make(net.Buffers, 0, 3*len(sp)+1)}
	n, cur := len(b), 0
	for k, s := range sp {
		m := marks[16*k : 16*k+16]
		i := bytes.Index(b[cur:], m)
		if i < len(markPrefix) || !bytes.Equal(b[cur+i-len(markPrefix):cur+i], markPrefix) {
			return nil, false
		}
		i += cur
		start := len(lens)
		if flexible {
			lens = kbin.AppendUvarint(lens, 1+uint32(s.len()))
		} else {
			lens = kbin.AppendInt32(lens, int32(s.len()))
		}
		out.bufs = append(out.bufs, b[cur:i-len(markPrefix)], lens[start:])
		if s.region != nil {
			out.files = append(out.files, filePiece{at: len(out.bufs), region: s.region})
		} else {
			out.bufs = append(out.bufs, s.data)
		}
		n += len(lens) - start - len(markPrefix) + s.len() - len(m)
		cur = i + len(m)
	}
	out.bufs = append(out.bufs, b[cur:])
	out.n = n
	binary.BigEndian.PutUint32(b, uint32(n-4))
	return out, true
}

// framePool lends request frame buffers. A large produce frame used to be
// a fresh allocation, zeroed by Go before the socket read overwrote it and
// then collected: at full speed a quarter of the broker's CPU went to that
// allocation and the garbage collection it drove. Only Produce frames come
// back (handleFrame): their records are copied into the log by the append
// and nothing keeps them, while other requests' bodies may keep slices of
// their frame (kmsg does not copy bytes fields). Buffers are not zeroed:
// a frame is always read whole before it is used.
//
// It is a plain free list, not a sync.Pool: a sync.Pool keeps a returned
// buffer in the returning P's private slot, where a reader goroutine that
// wakes on the other P does not find it, and empties itself at every
// garbage collection; either way the next frame was a fresh megabyte,
// zeroed and page-faulted in. The list keeps at most framePoolPerClass
// buffers of a size class and framePoolMaxBytes in all; a returned buffer
// that does not fit pushes out buffers of other sizes, so the list follows
// the frame sizes clients send now (a producer of 1 KiB records sends 8 MB
// requests, one of 100 B records 1 MB ones). framePoolIdle after the last
// frame came back, the list lets everything go, so an idle broker does not
// keep it.
type framePool struct {
	// mu guards free, bytes and idle.
	mu    sync.Mutex
	free  [maxFrameShift - minFrameShift + 1][][]byte
	bytes int
	idle  *time.Timer // runs drop; armed by put, stopped by close
}

const (
	minFrameShift = 14 // 16 KiB: smaller frames are cheap to allocate
	maxFrameShift = 24 // 16 MiB: larger ones are allocated

	framePoolPerClass = 4
	framePoolMaxBytes = 16 << 20
	framePoolIdle     = 30 * time.Second
)

// frameClass returns the size class of an n-byte frame, or -1 for none.
func frameClass(n int) int {
	if n < 1<<minFrameShift || n > 1<<maxFrameShift {
		return -1
	}
	return bits.Len(uint(n-1)) - minFrameShift
}

// get returns an n-byte buffer with arbitrary contents.
func (fp *framePool) get(n int) []byte {
	c := frameClass(n)
	if c < 0 {
		return make([]byte, n)
	}
	fp.mu.Lock()
	if k := len(fp.free[c]); k > 0 {
		b := fp.free[c][k-1]
		fp.free[c][k-1] = nil
		fp.free[c] = fp.free[c][:k-1]
		fp.bytes -= cap(b)
		fp.mu.Unlock()
		return b[:n]
	}
	fp.mu.Unlock()
	return make([]byte, n, 1<<(c+minFrameShift))
}

// put returns a frame that get handed out; it must not be used afterwards.
// A buffer the list has no room for is left to the garbage collector.
func (fp *framePool) put(b []byte) {
	c := frameClass(cap(b))
	if c < 0 || cap(b) != 1<<(c+minFrameShift) {
		return
	}
	fp.mu.Lock()
	defer fp.mu.Unlock()
	if len(fp.free[c]) >= framePoolPerClass || cap(b) > framePoolMaxBytes {
		return
	}
	for o := range fp.free { // make room by dropping other sizes
		for fp.bytes+cap(b) > framePoolMaxBytes && o != c && len(fp.free[o]) > 0 {
			k := len(fp.free[o]) - 1
			fp.bytes -= cap(fp.free[o][k])
			fp.free[o][k] = nil
			fp.free[o] = fp.free[o][:k]
		}
	}
	if fp.bytes+cap(b) <= framePoolMaxBytes {
		fp.free[c] = append(fp.free[c], b[:cap(b)])
		fp.bytes += cap(b)
	}
	if fp.idle == nil {
		fp.idle = time.AfterFunc(framePoolIdle, fp.drop)
	} else {
		fp.idle.Reset(framePoolIdle)
	}
}

// drop lets every kept buffer go.
func (fp *framePool) drop() {
	fp.mu.Lock()
	defer fp.mu.Unlock()
	fp.dropLocked()
}

func (fp *framePool) dropLocked() {
	for c := range fp.free {
		clear(fp.free[c])
		fp.free[c] = fp.free[c][:0]
	}
	fp.bytes = 0
}

// close stops the idle timer and lets the buffers go (Server.Close).
func (fp *framePool) close() {
	fp.mu.Lock()
	defer fp.mu.Unlock()
	if fp.idle != nil {
		fp.idle.Stop()
	}
	fp.dropLocked()
}
