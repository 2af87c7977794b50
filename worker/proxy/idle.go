package proxy

import (
	"errors"
	"io"
	"net"
	"runtime"
	"syscall"

	"golang.org/x/sys/unix"
)

// idleWait is how a session waits for the next request without holding a
// read buffer. On a plain TCP connection it parks in the poller through
// syscall.RawConn.Read, whose callback checks a buffer out of the pool only
// for the read(2) that may find data, and gives it back at once when the
// read finds nothing (EAGAIN): an idle connection holds no buffer, and the
// wait costs no system call more than a plain Read. Other connections (TLS,
// which keeps its own record buffers) read one byte into one first.
type idleWait struct {
	rc  syscall.RawConn // the connection's, nil until the first wait on a TCP connection
	of  net.Conn        // the connection rc belongs to
	fn  func(fd uintptr) bool
	n   int
	err error
	one [1]byte
}

// forget drops the raw connection when the session ends.
func (w *idleWait) forget() { w.rc, w.of, w.err = nil, nil, nil }

// idleRead is the RawConn callback: it reads into a pooled buffer and
// reports false (park until readable) while read(2) finds nothing.
func (s *session) idleRead(fd uintptr) bool {
	w := &s.idle
	s.takeBuf()
	for {
		n, err := unix.Read(int(fd), s.buf)
		switch {
		case err == unix.EINTR:
			continue
		case err == unix.EAGAIN:
			s.releaseBuf()
			return false
		case err != nil:
			w.n, w.err = 0, err
		case n == 0:
			w.n, w.err = 0, io.EOF
		default:
			w.n, w.err = n, nil
		}
		return true
	}
}

// waitFirst waits, within the read deadline armed on the connection, for
// the first bytes of the next request: on return with nil, the session
// holds its read buffer with them in buf[:w]. Otherwise it holds no buffer
// and the error ended the wait: io.EOF, a deadline, a reset.
func (s *session) waitFirst() error {
	w := &s.idle
	// Let the other sessions run first: a keep-alive client sends its next
	// request as soon as it has the response just written, so it is likely
	// here by then, and the read below finds it instead of nothing (one
	// read(2), one park and one wake-up fewer); with no other session to
	// run, this returns at once.
	runtime.Gosched()
	tc, ok := s.conn.(*net.TCPConn)
	if !ok {
		n, err := s.conn.Read(w.one[:])
		if n > 0 {
			s.takeBuf()
			s.buf[0] = w.one[0]
			s.w = 1
			return nil
		}
		if err == nil {
			err = io.ErrNoProgress
		}
		return err
	}
	if w.of != s.conn {
		rc, err := tc.SyscallConn()
		if err != nil {
			return err
		}
		w.rc, w.of = rc, s.conn
	}
	if w.fn == nil {
		w.fn = s.idleRead
	}
	w.n, w.err = 0, nil
	err := w.rc.Read(w.fn)
	if err == nil && w.err != nil {
		err = w.err
		if errors.Is(err, unix.ECONNRESET) {
			err = io.EOF
		}
	}
	if err != nil {
		s.releaseBuf()
		return err // the deadline, the connection closed under us, or the read's error
	}
	s.w = w.n
	return nil
}

// takeBuf checks out the session's read buffer, if it holds none.
func (s *session) takeBuf() {
	if s.bufp == nil {
		s.bufp = getBuf()
		s.buf = *s.bufp
	}
}

// releaseBuf gives the read buffer back; no unread client byte may be in it.
func (s *session) releaseBuf() {
	if s.bufp != nil {
		putBuf(s.bufp)
		s.bufp, s.buf = nil, nil
	}
}
