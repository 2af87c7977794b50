package proxy

import (
	"io"
	"net"
	"sync/atomic"
	"time"

	"github.com/sozu-go/sozu/worker/backends"
	"github.com/sozu-go/sozu/worker/deadline"
)

// A Content-Length body with at least spliceMin bytes left once the read
// buffer is drained goes from backend to client through splice(2) (Go's
// TCPConn.ReadFrom), when both ends are plain TCP: the kernel moves the
// bytes through a pipe, no copy passes through user space and no buffer of
// ours holds them. spliceChunk bounds one ReadFrom, between which the
// deadlines are re-armed.
const (
	spliceMin   = 16 << 10
	spliceChunk = 256 << 10
)

// spliced counts the body bytes moved by splice, for the tests.
var spliced atomic.Int64

// spliceEnds returns the client and backend TCP connections when a body can
// be spliced between them.
func (s *session) spliceEnds(bc *backends.Conn) (*net.TCPConn, *net.TCPConn, bool) {
	dst, ok := s.conn.(*net.TCPConn)
	if !ok {
		return nil, nil, false
	}
	src, ok := bc.Conn.(*net.TCPConn)
	return dst, src, ok
}

// spliceBody moves the remaining bytes of a Content-Length response body
// from src (the backend) to dst (the client); the read buffer holds none of
// them and s.out is flushed. It reports whether all of them arrived.
//
// One ReadFrom may wait for several reads: it is bounded by the deadlines
// armed before it. A deadline that fires after the call moved some bytes
// is re-armed and the copy goes on (the transfer was not idle); one that
// fires with no byte moved ends it, so that a stalled backend or client is
// given up after its timeout (up to twice it when it stalls mid-call).
func (s *session) spliceBody(cfg *Listener, bc *backends.Conn, dst, src *net.TCPConn, remaining int64) bool {
	for remaining > 0 {
		now := time.Now()
		deadline.Read(src, &bc.ReadDL, now, cfg.BackTimeout)
		deadline.Write(dst, &s.cwd, now, cfg.FrontTimeout)
		s.lr = io.LimitedReader{R: src, N: min(remaining, spliceChunk)}
		n, err := dst.ReadFrom(&s.lr)
		s.lr.R = nil
		s.mx.BytesOut += n
		s.lg.bytesOut += n
		spliced.Add(n)
		remaining -= n
		switch {
		case remaining == 0:
			return true
		case err == nil && s.lr.N > 0:
			return false // the backend closed before the end of the body
		case err != nil && !(isTimeout(err) && n > 0):
			return false
		}
	}
	return true
}
