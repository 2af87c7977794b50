package tcp

import (
	"io"
	"net"
	"sync"
	"sync/atomic"
	"syscall"

	"golang.org/x/sys/unix"
)

// bufSize is the size of a relay buffer.
const bufSize = 32 << 10

var (
	bufPool = sync.Pool{New: func() any { b := make([]byte, bufSize); return &b }}
	// buffersOut counts the relay buffers checked out.
	buffersOut atomic.Int64
)

// BuffersCheckedOut returns how many relay buffers the server's relays
// hold right now: one per direction that is moving bytes, none for a
// direction that waits for them.
func BuffersCheckedOut() int64 { return buffersOut.Load() }

func getBuf() *[]byte  { buffersOut.Add(1); return bufPool.Get().(*[]byte) }
func putBuf(p *[]byte) { buffersOut.Add(-1); bufPool.Put(p) }

// reader reads one direction of a relay and holds what it read only while
// the bytes are on hand. On a TCP connection it waits in the poller through
// syscall.RawConn.Read, whose callback takes a pipe (splice mode) or a
// buffer for the read and gives it back at once when that finds nothing
// (EAGAIN): a quiet direction holds neither, and the wait costs no extra
// system call. Between two plain TCP connections the bytes go through a
// pipe with splice(2) and never pass through user space (splice.go); when
// no pipe can be had (descriptors exhausted) that read falls back to a
// buffer. Splicing costs more than a copy for small reads: a direction
// splices only while its transfer is bulk, from a read that fills a whole
// buffer until a splice that moves less than bulkMin. Other connections
// (tests) read into a buffer checked out per read.
type reader struct {
	src net.Conn
	rc  syscall.RawConn // nil when src is no TCP connection
	fn  func(fd uintptr) bool
	bp  *[]byte // held between next and send
	n   int     // bytes on hand, in bp or p
	off int     // of those in bp, how many send wrote already
	// acked is the destination's last TCP_INFO tcpi_bytes_acked sampled by
	// a write past its deadline (send, session.go); 0 before any.
	acked uint64
	err   error

	sp   splicer // splice mode: the destination's raw connection is set
	bulk bool    // the last read filled a buffer: the next ones splice
}

// bulkMin is the smallest splice that keeps a direction splicing.
const bulkMin = 16 << 10

// newReader returns the reader of src, whose bytes go to dst.
func newReader(src, dst net.Conn) *reader {
	r := &reader{src: src}
	if tc, ok := src.(*net.TCPConn); ok {
		if rc, err := tc.SyscallConn(); err == nil {
			r.rc = rc
			r.fn = r.read
			r.sp.init(dst)
		}
	}
	return r
}

// read is the RawConn callback: false (park until readable) while the
// read finds nothing.
func (r *reader) read(fd uintptr) bool {
	if r.bulk && r.sp.on() && r.sp.take() {
		n, err, wait := r.sp.fill(fd)
		if wait {
			return false
		}
		r.n, r.err, r.bulk = n, err, n >= bulkMin
		if err != nil {
			r.err = r.opError("splice", err)
		}
		return true
	}
	if r.bp == nil {
		r.bp = getBuf()
	}
	for {
		n, err := unix.Read(int(fd), *r.bp)
		switch {
		case err == unix.EINTR:
			continue
		case err == unix.EAGAIN:
			putBuf(r.bp)
			r.bp = nil
			return false
		case err != nil:
			r.n, r.err = 0, r.opError("read", err)
		case n == 0:
			r.n, r.err = 0, io.EOF
		default:
			r.n, r.err, r.bulk = n, nil, n == len(*r.bp)
		}
		return true
	}
}

func (r *reader) opError(op string, err error) error {
	if err == io.EOF {
		return err
	}
	return &net.OpError{Op: op, Net: "tcp", Source: r.src.LocalAddr(), Addr: r.src.RemoteAddr(), Err: err}
}

// next waits, within src's read deadline, for the next bytes and returns
// how many are on hand (held until send); or the error (io.EOF, a
// deadline) that ended the wait, with nothing held.
func (r *reader) next() (int, error) {
	if r.rc == nil {
		r.bp = getBuf()
		n, err := r.src.Read(*r.bp)
		if n == 0 {
			r.release()
			if err == nil {
				err = io.ErrNoProgress
			}
			return 0, err
		}
		r.n = n
		return n, nil // a later error shows on the next read
	}
	r.n, r.err = 0, nil
	if err := r.rc.Read(r.fn); err != nil {
		r.release()
		return 0, err
	}
	if r.err != nil {
		r.release()
		return 0, r.err
	}
	return r.n, nil
}

// send writes the bytes on hand to dst, within its write deadline, and
// gives back what held them once all are written; it returns how many it
// wrote. After an error the rest stays on hand: send again to go on (the
// deadline passed while dst still took bytes), or release.
func (r *reader) send(dst net.Conn) (int, error) {
	if r.sp.holding() {
		n, err := r.sp.drain()
		if err == nil {
			r.release()
		}
		return n, err
	}
	n, err := dst.Write((*r.bp)[r.off:r.n])
	if r.off += n; err == nil {
		r.release()
	}
	return n, err
}

// peerAcked returns how many bytes the destination's peer has acknowledged
// on the connection so far (TCP_INFO's tcpi_bytes_acked); false when that
// is unknown (not a TCP connection, or a kernel older than 4.1, whose
// TCP_INFO stops before it).
func (r *reader) peerAcked() (uint64, bool) {
	if r.sp.dst == nil {
		return 0, false
	}
	var n uint64
	r.sp.dst.Control(func(fd uintptr) {
		if info, err := unix.GetsockoptTCPInfo(int(fd), unix.IPPROTO_TCP, unix.TCP_INFO); err == nil {
			n = info.Bytes_acked
		}
	})
	return n, n > 0
}

// release gives the buffer or pipe back.
func (r *reader) release() {
	r.n, r.off = 0, 0
	if r.bp != nil {
		putBuf(r.bp)
		r.bp = nil
	}
	r.sp.release()
}
