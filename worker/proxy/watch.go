package proxy

import (
	"net"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// A client that goes away while its request waits for the backend (or
// while the backend is silent in the middle of the response body) is seen
// by the server's watch, not by its session: the session goroutine is
// parked in a read of the backend connection, and the client's connection
// is read by nobody then. Upstream (an event loop) and nginx see the
// client's hang-up at once and give the backend connection up; without
// the watch, the session held it, its buffers and its goroutine until the
// backend answered or the back timeout (30 s), which a client sending
// requests to a slow endpoint and leaving at once turned into a way of
// pinning backend connections that no per-IP cap sees.
//
// One goroutine per Server, running while it has client connections,
// wakes every watchEvery and looks at the sessions whose exchange (s.bc
// set) began at least watchEvery ago (s.since): it peeks at each one's
// client connection (clientLeft: one recvmsg(MSG_PEEK|MSG_DONTWAIT), and a
// getsockopt(TCP_INFO) when bytes are waiting), and abandons the exchange
// of a client that left (session.leave). A client that leaves is thus
// noticed between 0.5 and 1 s after its request went out, or within 0.5 s
// when it leaves later. The session's own path is unchanged but for one
// atomic store per request (s.since): no system call, allocation, timer
// or goroutine per request, and the back timeout keeps its deadline
// (deadline.Lazy, untouched).
const watchEvery = 500 * time.Millisecond

// clientChecks counts the client connections the watch peeked at, for
// the tests.
var clientChecks atomic.Int64

// watchPicked, for the tests, is called by the watch in each round with
// the number of sessions picked, after picking them and before looking at
// their clients.
var watchPicked atomic.Pointer[func(n int)]

// watchStamp is t in milliseconds, wrapping, never 0 (s.since's "none").
func watchStamp(t time.Time) uint32 { return uint32(t.UnixMilli()) | 1 }

// watched is a session to look at, with the connection it served and the
// exchange it was in (its s.since) when it was picked: meanwhile the
// session may end, and be reused for another connection, and its exchange
// may end (the next one beginning, or the connection becoming a tunnel).
type watched struct {
	s     *session
	conn  net.Conn
	since uint32
}

// startWatch starts the watch if it does not run; s.mu is held.
func (s *Server) startWatch() {
	if !s.watching {
		s.watching = true
		go s.watch()
	}
}

// watch looks at the client connections of the exchanges in progress every
// watchEvery, until the server has no connection left (or is closed).
func (s *Server) watch() {
	t := time.NewTicker(watchEvery)
	defer t.Stop()
	var picked []watched
	for {
		select {
		case <-t.C:
		case <-s.ctx.Done():
			s.mu.Lock()
			s.watching = false
			s.mu.Unlock()
			return
		}
		now := watchStamp(time.Now())
		s.mu.Lock()
		if len(s.sessions) == 0 {
			s.watching = false
			s.mu.Unlock()
			return
		}
		for ss := range s.sessions {
			if since, ok := ss.exchangeOlder(now, uint32(watchEvery/time.Millisecond)); ok {
				// ss.conn is stable while ss is in s.sessions (admit sets
				// it before, finish clears it after forget).
				picked = append(picked, watched{ss, ss.conn, since})
			}
		}
		s.mu.Unlock()
		if h := watchPicked.Load(); h != nil {
			(*h)(len(picked))
		}
		// The system calls are made without the lock, which every accept
		// and every close takes.
		for i, w := range picked {
			if clientLeft(w.conn) {
				s.mu.Lock()
				// Still the connection and the exchange picked: the
				// client left while it waited for its backend. Another
				// exchange (the client's next request, a tunnel the
				// exchange became) is not judged by what the client did
				// since.
				if _, ok := s.sessions[w.s]; ok && w.s.conn == w.conn && w.s.inExchange(w.since) {
					w.s.leave()
				}
				s.mu.Unlock()
			}
			picked[i] = watched{}
		}
		picked = picked[:0]
	}
}

// exchangeOlder reports whether s is in an exchange with a backend that
// began at least age milliseconds before now (watchStamps), and returns
// its start. Safe from any goroutine.
func (s *session) exchangeOlder(now, age uint32) (uint32, bool) {
	if s.bc.Load() == nil {
		return 0, false
	}
	since := s.since.Load()
	d := now - since
	return since, since != 0 && d >= age && d < 1<<31
}

// inExchange reports whether s is still in the exchange with a backend
// that began at since (a watchStamp, not 0). Safe from any goroutine. bc
// is read first, as in exchangeOlder: a later exchange stores its since
// before its bc, so a bc of it comes with its own since, never since.
func (s *session) inExchange(since uint32) bool {
	return s.bc.Load() != nil && s.since.Load() == since
}

// leave abandons the exchange of a session whose client left: the
// backend connection is closed, which wakes the session goroutine (its
// read fails, and it finds left set), and is never pooled (aborted, as
// abort orders it: the flag first, then the connection). The client's
// connection is left to the session, which ends.
func (s *session) leave() {
	s.left.Store(true)
	s.aborted.Store(true)
	if bc := s.bc.Load(); bc != nil {
		bc.Conn.Close()
	}
}

// tcpCloseWait and tcpClose are the TCP states (tcp_info's tcpi_state) of
// a connection whose peer sent its FIN, and of one reset.
const (
	tcpCloseWait = 8
	tcpClose     = 7
)

// clientLeft reports whether the client of c (a TCP connection, or TLS
// over one) closed or reset it: its end (a FIN) or an error is what the
// next read would find; bytes waiting (a pipelined request, which stays
// unread for the session) are no end, unless the FIN came after them. A
// client that only half-closed is taken as gone, as upstream and nginx
// take it. Under TLS the bytes may be the close_notify alert before the
// FIN, and are judged the same way. c closed already, or no socket: false
// (the session sees that itself).
func clientLeft(c net.Conn) bool {
	clientChecks.Add(1)
	left := false
	return withFD(c, func(fd uintptr) { left = peerEnded(int(fd)) }) && left
}

// peerEnded peeks at the socket fd without waiting and without taking
// anything from it.
func peerEnded(fd int) bool {
	var b [1]byte
	for {
		n, _, _, _, err := unix.Recvmsg(fd, b[:], nil, unix.MSG_PEEK|unix.MSG_DONTWAIT)
		switch {
		case err == unix.EINTR:
			continue
		case err == unix.EAGAIN:
			return false // nothing to read: still there
		case err != nil:
			// A reset, or the connection timed out or became unreachable:
			// what the next read would report. Any other error (EPERM
			// from a sandbox in errno mode, EBADF) says nothing of the
			// client: the request is not abandoned for it.
			return err == unix.ECONNRESET || err == unix.ETIMEDOUT || err == unix.EHOSTUNREACH ||
				err == unix.ENETUNREACH || err == unix.EPIPE
		case n == 0:
			return true // the end: a FIN with nothing before it
		}
		// Bytes: the client is there unless its FIN followed them.
		info, err := unix.GetsockoptTCPInfo(fd, unix.IPPROTO_TCP, unix.TCP_INFO)
		return err == nil && (info.State == tcpCloseWait || info.State == tcpClose)
	}
}

// abandoned ends a request whose exchange abort or leave gave up, with no
// answer: its record says the client left when it did. It returns false,
// for the serve loop.
func (s *session) abandoned() bool {
	if s.left.Load() {
		s.lg.noteLeft()
	}
	return false
}
