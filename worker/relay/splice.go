package relay

import (
	"io"
	"net"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/sozu-go/sozu/worker/splice"
)

// Between two plain TCP connections a relay way moves its bulk
// transfers with splice(2) (worker/splice): from the source socket into a
// pipe in the read callback, then from the pipe into the destination
// socket, so that the bytes are never copied to user space. The pipe is
// held only while bytes are in it, like a relay buffer: a way waiting
// for bytes holds none.

// splicer is the splice mode of a Reader: its destination's raw connection
// and the pipe holding the bytes on hand. Used by one goroutine.
type splicer struct {
	dst syscall.RawConn // nil: no splice mode
	p   *splice.Pipe    // held while bytes are in it, or during a fill
}

// init enters splice mode when dst is a TCP connection.
func (s *splicer) init(dst net.Conn) {
	if tc, ok := dst.(*net.TCPConn); ok {
		if rc, err := tc.SyscallConn(); err == nil {
			s.dst = rc
		}
	}
}

func (s *splicer) on() bool { return s.dst != nil }

// take makes sure a pipe is held; false when none can be had.
func (s *splicer) take() bool {
	if s.p == nil {
		p, err := splice.Get()
		if err != nil {
			return false
		}
		s.p = p
	}
	return true
}

// fill splices what fd has into the held (empty) pipe, in the Reader's
// RawConn callback. wait reports that fd had nothing (EAGAIN): the pipe is
// then given back.
func (s *splicer) fill(fd uintptr) (n int, err error, wait bool) {
	n, err = s.p.Fill(int(fd), 1<<20)
	switch {
	case err == unix.EAGAIN:
		s.release()
		return 0, nil, true
	case err != nil:
		return 0, err, false
	case n == 0:
		return 0, io.EOF, false
	}
	return n, nil, false
}

func (s *splicer) holding() bool { return s.p != nil && s.p.Len() > 0 }

// drain splices the pipe's bytes into the destination, waiting in the
// poller while its socket is full (within its write deadline).
func (s *splicer) drain() (int, error) { return s.p.DrainTo(s.dst) }

// release gives the pipe back (closed if bytes are left in it: a failed
// write, whose bytes go with the connection).
func (s *splicer) release() {
	if s.p != nil {
		s.p.Put()
		s.p = nil
	}
}
