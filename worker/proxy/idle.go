package proxy

import (
	"crypto/tls"
	"errors"
	"io"
	"net"
	"os"
	"runtime"
	"sync/atomic"
	"syscall"

	"golang.org/x/sys/unix"
)

// idleWait is how a session waits for the next request without holding a
// read buffer. On a plain TCP connection it parks in the poller through
// syscall.RawConn.Read, whose callback checks a buffer out of the pool only
// for the read(2) that may find data, and gives it back at once when the
// read finds nothing (EAGAIN): an idle connection holds no buffer, and the
// wait costs no system call more than a plain Read. A TLS connection
// (waitTLS) parks the same way, on its TCP connection, after crypto/tls
// found no record to decrypt: not within crypto/tls's Read, whose frames
// would keep the goroutine's stack at 8 KiB for as long as the connection
// is idle. Other connections read one byte into one first.
type idleWait struct {
	rc syscall.RawConn // the connection's, nil until the first wait on a TCP connection
	// of is the connection rc belongs to; or, on a TLS connection, the
	// polledConn under it (waitTLS), whose pending bytes forget gives
	// back.
	of  net.Conn
	fn  func(fd uintptr) bool
	n   int
	err error
	// yieldMark is pollWakes (its low 32 bits) when the session last
	// yielded, at each of the two sites (yield).
	yieldMark [2]uint32
	// calls counts idleRead's calls in one wait: a second one comes
	// after a park in the poller, counted in pollWakes.
	calls uint8
	one   [1]byte
	// drained: the session's last read of its TLS connection returned
	// fewer bytes than asked and no error, so crypto/tls holds no
	// decrypted byte for it and no error to give (waitTLS).
	drained bool
}

// pollWakes counts the reads, in every session of the process, that parked
// in the poller and were woken by it: the waits for a request (idleRead),
// the reads of a response head and those of the TCP connection under TLS
// (polledRead). When it changes, the poller has run.
var pollWakes atomic.Uint64

// gosched is runtime.Gosched; tests count the yields through it.
var gosched = runtime.Gosched

// yield lets the other runnable sessions run first (runtime.Gosched), so
// that the read this session makes next likely finds its bytes instead of
// nothing (a read(2) that fails, a park, a wake-up), but at most once per
// site between two wake-ups from the poller. Go's scheduler polls the network
// only when no goroutine is runnable (or every 10 ms, from sysmon): a
// session that yields stays runnable, and sessions yielding in turn
// without bound would leave those parked in the poller, with their bytes
// already there, waiting for sysmon (a p99 of 7 ms against HAProxy's 2 ms
// at 50 connections). Once every session has yielded since the last
// wake-up, they read at once, park when nothing is there, the run queue
// drains and the poller runs.
func (s *session) yield(site int) {
	w := &s.idle
	if m := uint32(pollWakes.Load()); m != w.yieldMark[site] {
		w.yieldMark[site] = m
		gosched()
	}
}

// The sites of yield: before the wait for a request, and before the read
// of the response to the request just sent.
const (
	yieldRequest = iota
	yieldResponse
)

// forget drops the raw connection when the session ends, and gives back
// the bytes read for TLS that it did not take (the connection is closed).
func (w *idleWait) forget() {
	if pc, ok := w.of.(*polledConn); ok {
		pc.dropPending()
	}
	w.rc, w.of, w.err, w.drained = nil, nil, nil, false
}

// noteRead records what a read of the client connection returned, of
// a buffer of size asked (idleWait.drained).
func (w *idleWait) noteRead(n, asked int, err error) { w.drained = err == nil && n < asked }

// idleRead is the RawConn callback: it reads into a pooled buffer and
// reports false (park until readable) while read(2) finds nothing.
func (s *session) idleRead(fd uintptr) bool {
	w := &s.idle
	if w.calls++; w.calls == 2 {
		pollWakes.Add(1) // called again: the wait parked, the poller woke it
	}
	s.takeBuf()
	n, again, err := readFD(fd, s.buf)
	if again {
		s.releaseBuf()
		return false
	}
	w.n, w.err = n, err
	return true
}

// readFD is the read(2) of a RawConn callback: again when it found
// nothing (EAGAIN: the callback reports false, to park until readable),
// else what it read and the error Read would give, io.EOF at the end (an
// errno as it is).
func readFD(fd uintptr, p []byte) (n int, again bool, err error) {
	for {
		n, err := unix.Read(int(fd), p)
		switch {
		case err == unix.EINTR:
			continue
		case err == unix.EAGAIN:
			return 0, true, nil
		case err != nil:
			return 0, false, err
		case n == 0:
			return 0, false, io.EOF
		}
		return n, false, nil
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
	s.yield(yieldRequest)
	if tc, ok := s.conn.(*tls.Conn); ok {
		if pc, ok := tc.NetConn().(*polledConn); ok {
			return s.waitTLS(tc, pc)
		}
	}
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
	w.n, w.err, w.calls = 0, nil, 0
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

// waitTLS is waitFirst on a TLS connection over pc: it asks crypto/tls for
// the first byte of the next request with pc in no-wait mode, where a read
// that would park returns errWouldBlock instead (crypto/tls keeps what it
// read of a record and gives the error back, as it does a deadline's);
// then it parks on pc's socket (pc.wait), with a shallow stack and no
// buffer, until bytes come, which pc keeps for crypto/tls's next read. The
// system calls are those of a Read: one read(2) that finds nothing, one
// that finds the bytes.
//
// When crypto/tls can give nothing without more bytes from the socket (no
// decrypted byte left, no error, no complete record read ahead: quiet),
// the session parks first: asking crypto/tls costs an allocation (its
// record reader) each time it finds the socket empty.
func (s *session) waitTLS(tc *tls.Conn, pc *polledConn) error {
	w := &s.idle
	w.of = pc
	if err := waitTLSByte(tc, pc, &w.one, w.drained); err != nil {
		return err
	}
	w.drained = false // more may be there
	s.takeBuf()
	s.buf[0] = w.one[0]
	s.w = 1
	return nil
}

// waitTLSByte reads the next byte of tc, over pc, into one, parking on
// pc's socket outside crypto/tls while none is there (waitTLS); it parks
// first when drained (the last read of tc returned fewer bytes than asked,
// and no error) and crypto/tls can give nothing without the socket
// (pc.quiet). On error it read nothing: the deadline, the end, crypto/tls's.
func waitTLSByte(tc *tls.Conn, pc *polledConn, one *[1]byte, drained bool) error {
	if drained && pc.quiet() {
		if err := pc.wait(); err != nil {
			return err
		}
	}
	for {
		pc.nowait = true
		n, err := tc.Read(one[:])
		pc.nowait = false
		if n > 0 {
			return nil
		}
		if err != errWouldBlock {
			if err == nil {
				err = io.ErrNoProgress
			}
			return err
		}
		if err := pc.wait(); err != nil {
			return err // the deadline, or the connection closed under us
		}
	}
}

// waitTLSConn is a TLS connection read by a loop that waits between its
// reads without a buffer: an HTTP/2 connection's (alpnH2, as worker/h2
// reads it: an h2.IdleWaiter) and an upgraded tunnel's client way (a
// relay.Waiter). WaitReadable's wait is waitTLS's (crypto/tls asked for
// one byte without waiting, then a park on the TCP connection under it,
// outside crypto/tls's frames and without a buffer), the byte kept for
// the next Read. One goroutine alone calls Read and WaitReadable; writers
// write through the embedded *tls.Conn.
type waitTLSConn struct {
	*tls.Conn
	pc  *polledConn // tc's TCP connection
	one [1]byte
	has bool // one holds the next byte
	// drained is idleWait.drained: the last Read returned fewer bytes
	// than asked, and no error.
	drained bool
}

// WaitReadable waits, within the read deadline, until the next Read has a
// byte or an error to return at once.
func (c *waitTLSConn) WaitReadable() error {
	if c.has {
		return nil
	}
	if err := waitTLSByte(c.Conn, c.pc, &c.one, c.drained); err != nil {
		return err
	}
	c.has, c.drained = true, false
	return nil
}

// Read gives the byte WaitReadable kept, with what crypto/tls holds
// decrypted after it (the rest of its record: no wait), else reads tc.
func (c *waitTLSConn) Read(p []byte) (int, error) {
	if !c.has || len(p) == 0 {
		n, err := c.Conn.Read(p)
		c.drained = err == nil && n < len(p)
		return n, err
	}
	p[0] = c.one[0]
	c.has = false
	if len(p) == 1 {
		c.drained = false
		return 1, nil
	}
	c.pc.nowait = true
	n, err := c.Conn.Read(p[1:])
	c.pc.nowait = false
	if err == errWouldBlock {
		err = nil
	}
	c.drained = err == nil && n < len(p)-1
	return n + 1, err
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

// polledRead reads a TCP connection as its Read does (read(2), a park in
// the poller while it finds nothing, within the connection's deadlines),
// but through its syscall.RawConn, so that a read that parked is seen and
// counted in pollWakes (yield). Other connections are read with Read.
type polledRead struct {
	of    net.Conn        // the connection rc belongs to
	rc    syscall.RawConn // nil when of is no TCP connection
	fn    func(fd uintptr) bool
	p     []byte
	n     int
	err   error
	calls int // callbacks of the last read: 1 when it found its bytes at once, 0 when no raw connection read it
	// ack: the read asks for quick ACKs (backends.Conn.QuickAck) before
	// it parks, when it finds nothing; acked is then set.
	ack, acked bool
}

// read is c.Read(p) for a p that is not empty.
func (r *polledRead) read(c net.Conn, p []byte) (int, error) {
	if r.of != c {
		var rc syscall.RawConn
		if tc, ok := c.(*net.TCPConn); ok {
			if x, err := tc.SyscallConn(); err == nil {
				rc = x
			}
		}
		r.use(c, rc)
	}
	return r.readRaw(c, p)
}

// readVia is read for a connection whose raw connection the caller keeps
// (nil when it is no socket): a backend connection's, made once for its
// life (backends.Conn.RawConn), where read would make one (an allocation)
// for every response, the exchange state forgetting the connection.
func (r *polledRead) readVia(c net.Conn, rc syscall.RawConn, p []byte) (int, error) {
	if r.of != c {
		r.use(c, rc)
	}
	return r.readRaw(c, p)
}

// use makes c, whose raw connection is rc, the connection read.
func (r *polledRead) use(c net.Conn, rc syscall.RawConn) {
	r.of, r.rc = c, rc
	if r.fn == nil {
		r.fn = r.call
	}
}

// readRaw reads r.of, c, through its raw connection when it has one.
func (r *polledRead) readRaw(c net.Conn, p []byte) (int, error) {
	if r.rc == nil || len(p) == 0 {
		r.calls = 0 // a wait of unknown length (readResponseHead ticks)
		return c.Read(p)
	}
	r.p, r.n, r.err, r.calls = p, 0, nil, 0
	err := r.rc.Read(r.fn)
	r.p = nil
	if err != nil {
		return 0, err // the deadline, or the connection closed under us
	}
	return r.n, r.err
}

// forget drops the connection (it is closed or given back).
func (r *polledRead) forget() { r.of, r.rc, r.p = nil, nil, nil }

// call is the RawConn callback of read.
func (r *polledRead) call(fd uintptr) bool {
	if r.calls++; r.calls == 2 {
		pollWakes.Add(1) // called again: the read parked, the poller woke it
	}
	n, again, err := readFD(fd, r.p)
	if again {
		if r.ack {
			r.ack, r.acked = false, true
			askQuickAck(fd)
		}
		return false
	}
	if err != nil && err != io.EOF {
		err = os.NewSyscallError("read", err) // as net.Conn's Read; errors.Is finds the errno
	}
	r.n, r.err = n, err
	return true
}

// polledConn is a TCP connection whose Read is a polledRead: the raw
// connection of a TLS session, whose waits then count in pollWakes. For
// waitTLS, it also waits for bytes outside crypto/tls (wait), keeping what
// it read for crypto/tls's next Read (pending). Only the goroutine that
// reads the TLS connection uses these, one at a time.
type polledConn struct {
	*net.TCPConn
	r polledRead
	// nowait: a Read that would park returns errWouldBlock (waitTLS).
	nowait bool
	// pend holds bytes wait read, pend[pr:pw] not yet read by crypto/tls:
	// a pooled read buffer, nil when there are none.
	pend   *[]byte
	pr, pw int
	// perr is the error wait's read(2) found instead of bytes (the end,
	// a reset), for the next Read.
	perr   error
	waitFn func(fd uintptr) bool
	calls  uint8
	// The TLS record framing of the bytes Read gave crypto/tls (frame):
	// hdr holds hn bytes of the header of the record being given, left
	// bytes of its body are still to come once hn is 5; ahead is set
	// when the last Read completed more than one record.
	hdr   [5]byte
	hn    uint8
	ahead bool
	left  int
	// began is set once a Read gave crypto/tls a byte: a connection that
	// ends before is no handshake (probe).
	began bool
	// g gathers the records of a response run (gather.go).
	g gathered
}

// errWouldBlock is what a polledConn in no-wait mode reads when no byte is
// there: a net.Error that crypto/tls takes as temporary (it keeps the
// connection's state and gives the error back, as a deadline's).
var errWouldBlock error = wouldBlock{}

type wouldBlock struct{}

func (wouldBlock) Error() string   { return "proxy: a read would wait" }
func (wouldBlock) Timeout() bool   { return false }
func (wouldBlock) Temporary() bool { return true }

// polled returns c as a polledConn when it is a TCP connection. It has a
// life of its own, the TLS connection's: it is not part of the session,
// which is pooled when it ends while the TLS connection may still be
// closed from elsewhere.
func polled(c net.Conn) net.Conn {
	if tc, ok := c.(*net.TCPConn); ok {
		return &polledConn{TCPConn: tc}
	}
	return c
}

// Read gives the bytes wait kept first (then wait's error), and reads the
// connection after them: errWouldBlock in no-wait mode.
func (c *polledConn) Read(p []byte) (n int, err error) {
	switch {
	case c.pend != nil:
		n = copy(p, (*c.pend)[c.pr:c.pw])
		if c.pr += n; c.pr == c.pw {
			c.dropPending()
		}
	case c.perr != nil:
		err, c.perr = c.perr, nil
	case len(p) == 0:
	case c.nowait:
		err = errWouldBlock
	default:
		n, err = c.r.read(c.TCPConn, p)
	}
	if n > 0 {
		c.began = true
	}
	c.frame(p[:n])
	return n, err
}

// frame follows the record framing over b, the bytes a Read gives
// crypto/tls, and sets ahead when b completes more than one record.
// crypto/tls reads (readFromUntil) only while it lacks bytes of the
// record it is opening, every record before it opened, and takes them
// from its buffer a whole record at a time: after a Read that completed
// at most one record (that one), it holds no complete record it has not
// opened.
func (c *polledConn) frame(b []byte) {
	k := 0
	for len(b) > 0 {
		if c.hn < 5 {
			m := copy(c.hdr[c.hn:], b)
			c.hn += uint8(m)
			b = b[m:]
			if c.hn < 5 {
				break
			}
			c.left = int(c.hdr[3])<<8 | int(c.hdr[4])
		}
		m := min(len(b), c.left)
		c.left -= m
		b = b[m:]
		if c.left == 0 {
			c.hn = 0
			k++
		}
	}
	c.ahead = k > 1
}

// framed restarts the record framing: the bytes read so far (a PROXY
// header) were not crypto/tls's.
func (c *polledConn) framed() { c.hn, c.left, c.ahead = 0, 0, false }

// quiet reports whether crypto/tls, its last read given nothing but
// bytes of the record it was opening, can read nothing more without
// bytes from the socket: none kept by wait for it, no error, no complete
// record read ahead.
func (c *polledConn) quiet() bool { return c.pend == nil && c.perr == nil && !c.ahead }

// wait parks until the connection is readable, within its read deadline,
// and reads what came into a pooled buffer (pending) or notes the error
// read(2) found (perr), for the next Read.
func (c *polledConn) wait() error {
	if c.r.of != c.TCPConn {
		rc, err := c.TCPConn.SyscallConn()
		if err != nil {
			return err
		}
		c.r.use(c.TCPConn, rc)
	}
	if c.waitFn == nil {
		c.waitFn = c.waitRead
	}
	c.calls = 0
	return c.r.rc.Read(c.waitFn)
}

// waitRead is wait's RawConn callback.
func (c *polledConn) waitRead(fd uintptr) bool {
	if c.calls++; c.calls == 2 {
		pollWakes.Add(1) // called again: the wait parked, the poller woke it
	}
	p := getBuf()
	n, again, err := readFD(fd, *p)
	if again {
		putBuf(p)
		return false
	}
	if n == 0 {
		putBuf(p)
		if err != io.EOF {
			err = os.NewSyscallError("read", err)
		}
		c.perr = err
		return true
	}
	c.pend, c.pr, c.pw = p, 0, n
	return true
}

// dropPending gives the pending buffer back.
func (c *polledConn) dropPending() {
	if c.pend != nil {
		putBuf(c.pend)
		c.pend = nil
	}
}
