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
// set) began at least watchEvery ago (their slots' since, watchTable):
// it peeks at each one's client connection (clientLeft: one
// recvmsg(MSG_PEEK|MSG_DONTWAIT), and a getsockopt(TCP_INFO) when bytes
// are waiting), and abandons the exchange of a client that left
// (session.leave). A client that leaves is thus noticed between 0.5 and
// 1 s after its request went out, or within 0.5 s when it leaves later.
// The session's own path is unchanged but for two
// atomic stores per request, to a cache line of its own (watchFrom, as
// the exchange begins and ends): no system call, allocation, timer or
// goroutine per request, and the back timeout keeps its deadline
// (deadline.Lazy, untouched).
const watchEvery = 500 * time.Millisecond

// clientChecks counts the client connections the watch peeked at, for
// the tests.
var clientChecks atomic.Int64

// watchPicked, for the tests, is called by the watch in each round with
// the number of sessions picked, after picking them and before looking at
// their clients.
var watchPicked atomic.Pointer[func(n int)]

// watchStamp is t in milliseconds, wrapping, never 0 (watchSlot.since's "none").
func watchStamp(t time.Time) uint32 { return uint32(t.UnixMilli()) | 1 }

// watched is a session to look at, with the connection it served, the
// exchange it was in (its slot's since) and its slot when it was picked:
// meanwhile the session may end, and be reused for another connection,
// and its exchange may end (the next one beginning, or the connection
// becoming a tunnel).
type watched struct {
	s     *session
	conn  net.Conn
	since uint32
	slot  *watchSlot
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
		var more bool
		if picked, more = s.pickOld(picked, watchStamp(time.Now())); !more {
			return
		}
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

// watchSlot is a client connection's place in its server's watch table:
// when the exchange of its session with a backend began (a watchStamp; 0
// for none), and the session. A session's goroutine alone writes its
// since, twice per request (watchFrom); the slot fills a cache line of
// its own, so that those writes share it with no other session's.
type watchSlot struct {
	since atomic.Uint32
	s     atomic.Pointer[session]
	_     [48]byte
}

// watchPage is the number of slots the table allocates at once.
const watchPage = 1024

// watchTable holds the slots of a server's client connections, in pages
// that never move (a session keeps a pointer to its slot), so that the
// watch reads the exchanges' starts from a few megabytes read in order
// (64 bytes per connection), without the server's lock and without
// reaching each session: BenchmarkWatchPick, over 100 000 connections,
// found the walk of the sessions themselves, scattered in memory, taking
// 6 ms every watchEvery, with the lock that every accept and every close
// takes held all along. Its fields are guarded by Server.mu; the slots'
// are atomic.
type watchTable struct {
	pages [][]watchSlot
	free  []*watchSlot
}

// takeSlot gives ss a slot; s.mu is held.
func (s *Server) takeSlot(ss *session) *watchSlot {
	t := &s.slots
	if len(t.free) == 0 {
		p := make([]watchSlot, watchPage)
		t.pages = append(t.pages, p)
		for i := len(p) - 1; i >= 0; i-- {
			t.free = append(t.free, &p[i])
		}
	}
	sl := t.free[len(t.free)-1]
	t.free = t.free[:len(t.free)-1]
	sl.s.Store(ss)
	return sl
}

// putSlot gives back a slot (nil: none); s.mu is held.
func (s *Server) putSlot(sl *watchSlot) {
	if sl == nil {
		return
	}
	sl.since.Store(0)
	sl.s.Store(nil)
	s.slots.free = append(s.slots.free, sl)
}

// watchFrom notes that the session's exchange with a backend began at
// since (a watchStamp), or ended (0): the watch looks at the client of
// an exchange older than watchEvery. A stream session has no slot.
func (s *session) watchFrom(since uint32) {
	if sl := s.slot; sl != nil {
		sl.since.Store(since)
	}
}

// pickOld appends to picked the sessions whose exchange began at least
// watchEvery before now (a watchStamp), and returns it; false when the
// server has no connection left, the watch then stopped (s.watching
// false). The table is read without the lock; the lock is taken once,
// for the sessions found, to check that each is still the one in its
// slot and still in that exchange, and to take its connection.
func (s *Server) pickOld(picked []watched, now uint32) ([]watched, bool) {
	s.mu.Lock()
	if len(s.sessions) == 0 {
		s.watching = false
		s.mu.Unlock()
		return picked, false
	}
	pages := s.slots.pages // pages only grow; a new one holds no old exchange
	s.mu.Unlock()
	age := uint32(watchEvery / time.Millisecond)
	start := len(picked)
	for _, p := range pages {
		for i := range p {
			sl := &p[i]
			since := sl.since.Load()
			if d := now - since; since == 0 || d < age || d >= 1<<31 {
				continue
			}
			if ss := sl.s.Load(); ss != nil {
				picked = append(picked, watched{s: ss, since: since, slot: sl})
			}
		}
	}
	if len(picked) == start {
		return picked, true
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	kept := picked[:start]
	for _, w := range picked[start:] {
		// ss.conn is stable while ss is in s.sessions (admit sets it
		// before, finish clears it after forget).
		if _, ok := s.sessions[w.s]; ok && w.s.slot == w.slot && w.s.inExchange(w.since) {
			w.conn = w.s.conn
			kept = append(kept, w)
		}
	}
	clear(picked[len(kept):])
	return kept, true
}

// inExchange reports whether s is still in the exchange with a backend
// that began at since (a watchStamp, not 0). Safe from any goroutine
// while s holds its slot (s.mu held, s in s.sessions). bc is read
// first: a later exchange stores its since before its bc, so a bc of it
// comes with its own since, never since.
func (s *session) inExchange(since uint32) bool {
	return s.bc.Load() != nil && s.slot != nil && s.slot.since.Load() == since
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
