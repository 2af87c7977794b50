package backends

import (
	"errors"
	"net"
	"os"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/sozu-go/sozu/worker/deadline"
)

// Conn is a connection to a backend, checked out of its pool or freshly
// dialed. It must be given back with Release exactly once.
type Conn struct {
	net.Conn
	Backend *Backend
	Reused  bool // it served an earlier exchange: a failure before any answer byte may be a stale keep-alive close
	// ConnectTime is how long the dial of a fresh connection took; zero
	// once the connection is reused.
	ConnectTime time.Duration
	// Stream: Conn is an HTTP/2 stream (h2.go), never pooled here; Reused
	// is then always true, since its Read reports io.EOF before any
	// answer byte only for a request the backend did not process.
	Stream bool
	idleAt time.Time
	probe  *idleProbe // see idleAlive; nil until the first check

	// ReadDL and WriteDL remember the deadlines armed on the connection
	// (see package deadline); they belong to whoever holds the Conn.
	ReadDL, WriteDL deadline.Lazy
}

// Release returns c to its backend: to the idle pool when reusable is true
// (the exchange finished cleanly and both sides keep the connection alive),
// else it is closed.
func (c *Conn) Release(reusable bool) { c.ReleaseAt(reusable, time.Now()) }

// ReleaseAt is Release for a caller that read the clock at now, which may
// be somewhat old (a write since): the connection is then judged older
// than it is when next taken, never younger.
func (c *Conn) ReleaseAt(reusable bool, now time.Time) {
	b := c.Backend
	b.putBack()
	if reusable && !b.removed.Load() && !c.Stream {
		c.Reused = true
		c.ConnectTime = 0
		c.idleAt = now
		b.mu.Lock()
		if len(b.idle) < b.reg.opt.MaxIdle {
			b.idle = append(b.idle, c)
			b.mu.Unlock()
			return
		}
		b.mu.Unlock()
	}
	c.Conn.Close()
}

// takeIdle pops the most recently used idle connection that is still
// young enough and still open: one the backend closed (or reset, or wrote
// to, unasked) while it was idle is closed and the next one is tried, so
// that no request is sent on a connection known to be dead (idleAlive).
// Every one is checked, however young: bytes a faulty backend sent after a
// complete response (a HEAD or 204 answered with a body in a write of its
// own, a body longer than its Content-Length past a spliced copy) would
// be taken for the next request's response, one client getting
// another's (response queue poisoning). The check is one read(2), about
// 1.5 % of a small request's CPU.
func (b *Backend) takeIdle(now time.Time) *Conn {
	for {
		b.mu.Lock()
		n := len(b.idle)
		if n == 0 {
			b.mu.Unlock()
			return nil
		}
		c := b.idle[n-1]
		b.idle[n-1] = nil
		b.idle = b.idle[:n-1]
		b.mu.Unlock()
		if now.Sub(c.idleAt) < b.reg.opt.IdleTimeout && c.idleAlive() {
			return c
		}
		b.StaleClosed.Add(1)
		c.Conn.Close()
	}
}

// idleAlive reports whether an idle keep-alive connection is still usable,
// without blocking: one non-blocking read(2) must find nothing to read
// (EAGAIN). End of file (the backend closed it, as servers do after their
// own idle timeout), a reset, or bytes nobody asked for all mean the
// connection must not carry a request. Connections that are no sockets
// (tests) are taken as alive. The probe is made once per connection, so
// that a check allocates nothing. A read deadline of the connection's last
// exchange that has passed meanwhile says nothing of the connection: it is
// cleared and the probe made again.
func (c *Conn) idleAlive() bool {
	p, err := c.raw()
	if p == nil {
		return err == nil
	}
	alive, err := p.check()
	if errors.Is(err, os.ErrDeadlineExceeded) {
		c.Conn.SetReadDeadline(time.Time{})
		c.ReadDL.Forget()
		alive, _ = p.check()
	}
	return alive
}

// QuickAck makes the kernel acknowledge at once what the backend sends on
// c from now on, and what it holds unacknowledged, instead of after the
// delayed-ACK timer (up to 40 ms on Linux): a request-response connection
// is in the kernel's "pingpong" mode, where ACKs wait to ride on the next
// request. Call it when a response needs more than one read: a backend
// whose send buffer or congestion window is full, or whose Nagle holds a
// short last segment, sends the rest only once it has our ACK (measured:
// 64 KiB bodies from nginx, p99 31 ms, max 53 ms; with it, 5.3 ms and
// 12 ms). One setsockopt(2) per such response; nothing on connections
// that are no sockets.
func (c *Conn) QuickAck() {
	if p, _ := c.raw(); p != nil {
		p.rc.Control(QuickAckFD)
	}
}

// RawConn returns the raw connection of c, made once for its life (the
// idle check's): nil when c is no socket (an HTTP/2 stream, tests).
func (c *Conn) RawConn() syscall.RawConn {
	if p, _ := c.raw(); p != nil {
		return p.rc
	}
	return nil
}

// raw returns the probe of c, which holds its syscall.RawConn, made on
// first use: nil, nil when c is no socket (tests); nil and the error when
// its raw connection cannot be had.
func (c *Conn) raw() (*idleProbe, error) {
	if c.probe == nil {
		sc, ok := c.Conn.(syscall.Conn)
		if !ok {
			return nil, nil
		}
		rc, err := sc.SyscallConn()
		if err != nil {
			return nil, err
		}
		c.probe = &idleProbe{rc: rc}
		c.probe.fn = c.probe.read
	}
	return c.probe, nil
}

// QuickAckFD is QuickAck for the socket fd, from within a callback of its
// syscall.RawConn (one setsockopt(2)).
func QuickAckFD(fd uintptr) {
	unix.SetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_QUICKACK, 1)
}

// idleProbe is the state of Conn.idleAlive.
type idleProbe struct {
	rc    syscall.RawConn
	fn    func(fd uintptr) bool // read, bound once
	alive bool
	buf   [1]byte
}

func (p *idleProbe) read(fd uintptr) bool {
	_, err := unix.Read(int(fd), p.buf[:])
	p.alive = err == unix.EAGAIN
	return true // never wait for readability
}

func (p *idleProbe) check() (bool, error) {
	p.alive = false
	if err := p.rc.Read(p.fn); err != nil {
		return false, err
	}
	return p.alive, nil
}

func (b *Backend) closeIdle() {
	if p := b.h2.Load(); p != nil {
		p.Close()
	}
	b.mu.Lock()
	idle := b.idle
	b.idle = nil
	b.mu.Unlock()
	for _, c := range idle {
		c.Conn.Close()
	}
}
