// Package relay moves the bytes of one way of a relay (a TCP session, an
// upgraded HTTP connection) from a source connection to a destination,
// holding a buffer or a pipe only while bytes are on hand.
//
// On a TCP connection a Reader waits in the poller through
// syscall.RawConn.Read, whose callback takes a pipe (splice mode) or a
// buffer for the read and gives it back at once when that finds nothing
// (EAGAIN): a quiet way holds neither, and the wait costs no extra system
// call. Between two plain TCP connections the bytes go through a pipe with
// splice(2) and never pass through user space; when no pipe can be had
// (descriptors exhausted) that read falls back to a buffer. Splicing costs
// more than a copy for small reads: a way splices only while its transfer
// is bulk, from a read that fills a whole buffer until a splice that moves
// less than bulkMin. Other connections (TLS, tests) are read with their
// Read into a buffer checked out for the read, after the wait when the
// connection is a Waiter (TLS over a TCP connection the caller polls), for
// the wait too when it is not.
package relay

import (
	"io"
	"net"
	"syscall"

	"golang.org/x/sys/unix"
)

// Buffers is where a Reader checks its buffers out (Get) and gives them
// back (Put): the caller's pool, which counts them. Every Get is matched
// by exactly one Put.
type Buffers interface {
	Get() *[]byte
	Put(*[]byte)
}

// Waiter is a connection that can wait until its next Read has bytes or
// an error to return at once, without a buffer: WaitReadable returns nil
// then, or the error (a deadline, the connection closed) that ended the
// wait.
type Waiter interface {
	WaitReadable() error
}

// Reader reads one way of a relay (see the package documentation). Used
// by one goroutine.
type Reader struct {
	src  net.Conn
	bufs Buffers
	rc   syscall.RawConn // nil when src is no TCP connection
	fn   func(fd uintptr) bool
	bp   *[]byte // held between Next and Send
	n    int     // bytes on hand, in bp or p
	off  int     // of those in bp, how many Send wrote already
	err  error

	sp   splicer // splice mode: the destination's raw connection is set
	bulk bool    // the last read filled a buffer: the next ones splice
}

// bulkMin is the smallest splice that keeps a way splicing.
const bulkMin = 16 << 10

// NewReader returns the reader of src, whose bytes go to dst, with
// buffers from bufs. rc is src's raw connection when the caller keeps one
// (nil: made here for a TCP connection); splicing says whether bulk
// transfers between two TCP connections may go through a pipe.
func NewReader(src, dst net.Conn, bufs Buffers, rc syscall.RawConn, splicing bool) *Reader {
	r := &Reader{src: src, bufs: bufs, rc: rc}
	if r.rc == nil {
		if tc, ok := src.(*net.TCPConn); ok {
			r.rc, _ = tc.SyscallConn()
		}
	}
	if r.rc != nil {
		r.fn = r.read
		if splicing {
			r.sp.init(dst)
		}
	}
	return r
}

// read is the RawConn callback: false (park until readable) while the
// read finds nothing.
func (r *Reader) read(fd uintptr) bool {
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
		r.bp = r.bufs.Get()
	}
	for {
		n, err := unix.Read(int(fd), *r.bp)
		switch {
		case err == unix.EINTR:
			continue
		case err == unix.EAGAIN:
			r.bufs.Put(r.bp)
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

func (r *Reader) opError(op string, err error) error {
	if err == io.EOF {
		return err
	}
	return &net.OpError{Op: op, Net: "tcp", Source: r.src.LocalAddr(), Addr: r.src.RemoteAddr(), Err: err}
}

// Next waits, within src's read deadline, for the next bytes and returns
// how many are on hand (held until Send); or the error (io.EOF, a
// deadline) that ended the wait, with nothing held.
func (r *Reader) Next() (int, error) {
	if r.rc == nil {
		if w, ok := r.src.(Waiter); ok {
			if err := w.WaitReadable(); err != nil {
				return 0, err
			}
		}
		r.bp = r.bufs.Get()
		n, err := r.src.Read(*r.bp)
		if n == 0 {
			r.Release()
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
		r.Release()
		return 0, err
	}
	if r.err != nil {
		r.Release()
		return 0, r.err
	}
	return r.n, nil
}

// Send writes the bytes on hand to dst, within its write deadline, and
// gives back what held them once all are written; it returns how many it
// wrote. After an error the rest stays on hand: Send again to go on (the
// deadline passed while dst still took bytes), or Release.
func (r *Reader) Send(dst net.Conn) (int, error) {
	if r.sp.holding() {
		n, err := r.sp.drain()
		if err == nil {
			r.Release()
		}
		return n, err
	}
	n, err := dst.Write((*r.bp)[r.off:r.n])
	if r.off += n; err == nil {
		r.Release()
	}
	return n, err
}

// PeerAcked returns how many bytes the destination's peer has
// acknowledged on the connection so far (TCP_INFO's tcpi_bytes_acked);
// false when that is unknown (no splice mode: not a TCP connection, or a
// kernel older than 4.1, whose TCP_INFO stops before it).
func (r *Reader) PeerAcked() (uint64, bool) {
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

// Release gives the buffer or pipe back.
func (r *Reader) Release() {
	r.n, r.off = 0, 0
	if r.bp != nil {
		r.bufs.Put(r.bp)
		r.bp = nil
	}
	r.sp.release()
}
