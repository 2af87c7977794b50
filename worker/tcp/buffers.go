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

// reader reads one direction of a relay into a pooled buffer that it holds
// only while bytes are on hand. On a TCP connection it waits in the poller
// through syscall.RawConn.Read, whose callback checks the buffer out for
// the read(2) and gives it back at once when that finds nothing (EAGAIN):
// a quiet direction holds no buffer, and the wait costs no extra system
// call. Other connections (tests) read into a buffer checked out per read.
type reader struct {
	src net.Conn
	rc  syscall.RawConn // nil when src is no TCP connection
	fn  func(fd uintptr) bool
	bp  *[]byte // held between next and release
	n   int
	err error
}

func newReader(src net.Conn) *reader {
	r := &reader{src: src}
	if tc, ok := src.(*net.TCPConn); ok {
		if rc, err := tc.SyscallConn(); err == nil {
			r.rc = rc
			r.fn = r.read
		}
	}
	return r
}

// read is the RawConn callback: false (park until readable) while read(2)
// finds nothing.
func (r *reader) read(fd uintptr) bool {
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
			r.n, r.err = 0, &net.OpError{Op: "read", Net: "tcp", Source: r.src.LocalAddr(), Addr: r.src.RemoteAddr(), Err: err}
		case n == 0:
			r.n, r.err = 0, io.EOF
		default:
			r.n, r.err = n, nil
		}
		return true
	}
}

// next waits, within src's read deadline, for the next bytes and returns
// them in a pooled buffer held until release; or the error (io.EOF, a
// deadline) that ended the wait, with no buffer held.
func (r *reader) next() ([]byte, error) {
	if r.rc == nil {
		r.bp = getBuf()
		n, err := r.src.Read(*r.bp)
		if n == 0 {
			r.release()
			if err == nil {
				err = io.ErrNoProgress
			}
			return nil, err
		}
		return (*r.bp)[:n], nil // a later error shows on the next read
	}
	r.n, r.err = 0, nil
	if err := r.rc.Read(r.fn); err != nil {
		r.release()
		return nil, err
	}
	if r.err != nil {
		r.release()
		return nil, r.err
	}
	return (*r.bp)[:r.n], nil
}

// release gives the buffer back.
func (r *reader) release() {
	if r.bp != nil {
		putBuf(r.bp)
		r.bp = nil
	}
}
