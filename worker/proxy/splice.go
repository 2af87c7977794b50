package proxy

import (
	"io"
	"net"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/sozu-go/sozu/worker/backends"
	"github.com/sozu-go/sozu/worker/deadline"
	"github.com/sozu-go/sozu/worker/splice"
)

// A Content-Length body with at least spliceMin bytes left once the read
// buffer is drained goes through splice(2) when both ends are plain TCP: a
// response from backend to client through Go's TCPConn.ReadFrom, a request
// body from client to backend through a pipe of worker/splice
// (spliceRequest). The kernel moves the bytes through a pipe, no copy
// passes through user space and no buffer of ours holds them. spliceChunk
// bounds one ReadFrom or one fill of the pipe, between which the deadlines
// are re-armed.
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
//
// A body that a pipe of worker/splice holds goes through one (spliceFirst),
// which asks for quick ACKs (backends.Conn.QuickAck) only when the body is
// not all there yet; a longer one, or the rest, if any, through ReadFrom,
// with quick ACKs.
func (s *session) spliceBody(cfg *Listener, bc *backends.Conn, dst, src *net.TCPConn, remaining int64) bool {
	if remaining <= int64(splice.Capacity()) {
		// A body longer than a pipe takes more than one run anyway: it
		// goes through ReadFrom alone, whose pipes hold more.
		now := time.Now()
		deadline.Read(src, &bc.ReadDL, now, cfg.BackTimeout)
		deadline.Write(dst, &s.cwd, now, cfg.FrontTimeout)
		if n, ok, used := s.spliceFirst(cfg, bc, dst, remaining); used {
			if !ok {
				return false
			}
			if remaining -= n; remaining == 0 {
				return true
			}
		}
	}
	s.quickAck(bc)
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
			s.lg.noteCut(io.ErrUnexpectedEOF)
			return false // the backend closed before the end of the body
		case err != nil && !(isTimeout(err) && n > 0):
			return false
		}
	}
	return true
}

// quickAcks counts the responses for which quick ACKs were asked
// (quickAck, askQuickAck), for the tests.
var quickAcks atomic.Int64

// askQuickAck asks the kernel to acknowledge at once what the backend
// socket fd holds, from within a callback of its RawConn, before a read
// of the response waits (backends.QuickAckFD).
func askQuickAck(fd uintptr) {
	quickAcks.Add(1)
	backends.QuickAckFD(fd)
}

// spliceFirst moves the first run of a spliced body, up to a pipe's
// capacity, from the backend bc to the client dst through a pipe: what the
// backend sent by then, or its first bytes once they come, within the
// deadlines armed. A response whose body is all there once its head was
// read (the common case of a body up to the pipe's capacity) needs no
// quick ACK: nothing more waits for our ACK. One whose fill finds the
// socket empty or takes less than the whole body asks for them then,
// before any wait (the kernel sends the ACKs it held at once), as a
// response needing more reads did before: one setsockopt(2) fewer per
// response that comes whole, and the same waits otherwise. It returns the
// bytes moved; ok is false when the transfer failed (the backend ended, a
// deadline, an error), used false when it moved nothing for want of a
// pipe or a raw connection (the caller goes on with ReadFrom).
func (s *session) spliceFirst(cfg *Listener, bc *backends.Conn, dst *net.TCPConn, remaining int64) (moved int64, ok, used bool) {
	brc := bc.RawConn()
	crc := s.clientRaw(dst)
	if brc == nil || crc == nil {
		return 0, false, false
	}
	p, err := splice.Get()
	if err != nil {
		return 0, false, false
	}
	defer p.Put()
	n, asked, err := p.FillFromAsking(brc, int(min(remaining, spliceChunk)), askQuickAck, s.ackAsked)
	s.ackAsked = asked
	if err == nil && n == 0 {
		s.lg.noteCut(io.ErrUnexpectedEOF)
		return 0, false, true // the backend closed before the end of the body
	}
	if err != nil {
		return 0, false, true // the back timeout, a reset
	}
	for {
		n, err := p.DrainTo(crc)
		s.mx.BytesOut += int64(n)
		s.lg.bytesOut += int64(n)
		spliced.Add(int64(n))
		moved += int64(n)
		switch {
		case err == nil:
			return moved, true, true
		case isTimeout(err) && n > 0:
			// The client took some bytes within its timeout: not idle,
			// the deadline is re-armed (as spliceBody's ReadFrom).
			s.cwd.Forget()
			deadline.Write(dst, &s.cwd, time.Now(), cfg.FrontTimeout)
		default:
			return moved, false, true
		}
	}
}

// clientRaw returns the raw connection of the client connection c, the
// session's, made once for it (waitFirst's); nil when it cannot be had.
func (s *session) clientRaw(c *net.TCPConn) syscall.RawConn {
	w := &s.idle
	if w.of != s.conn || w.rc == nil {
		rc, err := c.SyscallConn()
		if err != nil {
			return nil
		}
		w.rc, w.of = rc, s.conn
	}
	return w.rc
}

// spliceRequest sends the remaining bytes of a Content-Length request body
// from client to the backend bc through a pipe (worker/splice), on the body
// copier's goroutine once the read buffer is drained (copyBody): filled
// from the client within the request timeout, drained into the backend
// within the back timeout, so that a failure is known to be the client's
// or the backend's, as on the copying path. ok is false when no pipe could
// be had: nothing was moved and the caller copies instead.
func (s *session) spliceRequest(cfg *Listener, bc *backends.Conn, client, backend *net.TCPConn, remaining int64) (res bodyResult, ok bool) {
	crc, err := client.SyscallConn()
	if err != nil {
		return res, false
	}
	brc, err := backend.SyscallConn()
	if err != nil {
		return res, false
	}
	p, err := splice.Get()
	if err != nil {
		return res, false
	}
	defer p.Put()
	for remaining > 0 {
		deadline.Read(client, &s.crd, time.Now(), cfg.RequestTimeout)
		n, err := p.FillFrom(crc, int(min(remaining, spliceChunk)))
		if err == nil && n == 0 {
			err = io.ErrUnexpectedEOF // the client ended before its body did
		}
		if err != nil {
			return clientReadFault(err), true
		}
		s.lg.bytesIn += int64(n)
		s.mx.BytesIn += int64(n)
		if remaining -= int64(n); remaining == 0 {
			s.bodyComplete.Store(true)
		}
		deadline.Write(backend, &bc.WriteDL, time.Now(), cfg.BackTimeout)
		if _, err := p.DrainTo(brc); err != nil {
			return bodyResult{err: err}, true
		}
		s.bodyWrote.Store(time.Now().UnixNano())
	}
	return res, true
}
