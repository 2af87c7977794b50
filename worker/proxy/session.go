package proxy

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/oklog/ulid/v2"
	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"

	"github.com/sozu-go/sozu/worker/accesslog"
	"github.com/sozu-go/sozu/worker/answers"
	"github.com/sozu-go/sozu/worker/backends"
	"github.com/sozu-go/sozu/worker/deadline"
	"github.com/sozu-go/sozu/worker/h2"
	"github.com/sozu-go/sozu/worker/http1"
	"github.com/sozu-go/sozu/worker/ipcap"
	"github.com/sozu-go/sozu/worker/logmask"
	"github.com/sozu-go/sozu/worker/metrics"
	"github.com/sozu-go/sozu/worker/proxyproto"
)

const (
	lingerTime = 500 * time.Millisecond // how long a closing connection drains what the client still sends
	lingerMax  = 256 << 10              // and how many bytes at most
)

// sessionPool keeps sessions, with the field arrays of their parsed heads,
// between connections.
var sessionPool = sync.Pool{New: func() any { return new(session) }}

// Session states, for Shutdown.
const (
	stateBusy uint32 = iota
	stateIdle        // waiting for the first byte of a request
)

// session is one client connection. Its goroutine owns every field but
// state and bc; while a request body is being copied (copyBody), the copier
// goroutine owns buf, r, w, st.dec, bout and idle.drained.
type session struct {
	srv      *Server
	conn     net.Conn
	peerIP   []byte // the client's IP, formatted
	peerNode []byte // the client's RFC 7239 node
	peerKey  uint64 // the client's balancing key (backends.KeyOf its IP)
	peerAddr netip.Addr
	slots    []ipcap.Slot // per-IP cap slots held (released by finish)
	retry    []byte       // Retry-After of the 429 being answered
	sni      []byte       // the server name of the TLS handshake, lower case; empty without TLS or SNI

	idle  idleWait // the wait for a request, without a buffer (idle.go)
	state atomic.Uint32
	// slot is the connection's place in the server's watch table
	// (watch.go), which holds when the exchange with the backend
	// connection in bc began; nil for a stream session (its HTTP/2
	// connection's session is watched) and once the connection ended.
	slot  *watchSlot
	bc    atomic.Pointer[backends.Conn] // the backend connection in use, for abort
	h2c   atomic.Pointer[h2.Conn]       // the HTTP/2 connection served, for Shutdown (h2bridge.go)
	h2b   *h2Bridge                     // serves one stream of this HTTP/2 connection: holds no slot of its own
	h2br  atomic.Pointer[h2Bridge]      // the bridge of the HTTP/2 connection served, for abort
	snext *session                      // the next and previous stream sessions of h2b (h2Bridge.link)
	sprev *session
	h2id  uint32 // the stream served, when h2b is set: how StreamReset finds the session
	// aborted: abort ran (a hard stop, or the stream's reset), or leave
	// (the client left, watch.go): no backend connection is tried or
	// pooled any more.
	aborted atomic.Bool

	buf    []byte // client bytes; unread ones in buf[r:w]
	r, w   int
	bbuf   []byte // backend bytes; unread ones in bbuf[br:bw]
	br     int
	bw     int
	out    []byte // what the session goroutine writes
	bout   []byte // what the body copier writes
	bufp   *[]byte
	lr     io.LimitedReader // the backend side of a spliced body (splice.go)
	vec    net.Buffers      // a head and a body run written together (flushWith)
	vecArr [2][]byte        // vec's array
	bbufp  *[]byte          // nil while the connection is idle, as bufp, outp and boutp
	outp   *[]byte
	boutp  *[]byte

	st      *exchState // heads, decoders: nil while idle (buffers.go)
	scan    http1.HeadScanner
	bscan   http1.HeadScanner
	scratch []byte // values of the fields the proxy adds: exchState.scratch while a request is in flight
	rw      []byte // a frontend's rewritten authority and target
	xfHost  []byte // the authority the client sent, when a frontend rewrote it

	stickyIn  []byte // the value of the client's sticky cookie (sticky.go); empty for none
	cookieBuf []byte // rewritten Cookie values, then the Set-Cookie value

	id       [ulid.EncodedSize]byte // the request's id as text, when hasID
	idBin    ulid.ULID              // and as it was made, for the access record
	hasID    bool
	isHead   bool
	ackAsked bool               // quickAck was asked for on the response being read (body.go)
	served   bool               // a request came on this connection: the wait for the next is the front timeout's, not the request timeout's
	linger   bool               // the connection ends with request bytes unread: run lingers before closing it (respond)
	sessID   ulid.ULID          // the connection's id for the access log, made at accept when it is on; a stream's is its connection's
	tlsInfo  *accesslog.TLSInfo // the handshake as the access log shows it, when it is on; a stream's is its connection's
	client   netip.AddrPort     // the client's address and port (the PROXY header's source when one came)
	lg       reqLog             // the access log's view of the request in flight (accesslog.go)
	routeKey string             // the frontend that routed the request ("" before routing), for HSTS

	mx metrics.Request // the metrics record of the request in progress (metrics.go)

	now time.Time // the clock as read after the session goroutine's last wait (clock.go)

	crd, cwd     deadline.Lazy   // client read and write deadlines
	copying      *backends.Conn  // the copier runs, writing to this connection
	copyDone     chan bodyResult // made for the session's first request body copier
	bodyComplete atomic.Bool     // the copier consumed the whole request body from the client
	left         atomic.Bool     // the server's watch found the client gone during the exchange (watch.go)
	bodyWrote    atomic.Int64    // when the copier last wrote body bytes to the backend (UnixNano)
}

// newSession returns a session serving the client connection c.
func newSession(srv *Server, c net.Conn) *session {
	s := resetSession(srv, c)
	if s.lg.on {
		s.sessID = srv.opt.NewID(time.Now())
	}
	if ap, err := netip.ParseAddrPort(c.RemoteAddr().String()); err == nil {
		s.setPeer(ap.Addr())
		s.client = netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	} else {
		s.client = netip.AddrPort{}
		s.peerIP = append(s.peerIP[:0], "unknown"...)
		s.peerKey, s.peerAddr = 0, netip.Addr{}
		s.peerNode = append(s.peerNode[:0], "unknown"...)
	}
	return s
}

// newStreamSession returns a session serving one HTTP/2 stream of the
// connection p serves, over c: its client, peer and SNI are p's, and so
// is its session id (one session in the access log).
func newStreamSession(p *session, c net.Conn) *session {
	s := resetSession(p.srv, c)
	s.sessID, s.client, s.tlsInfo = p.sessID, p.client, p.tlsInfo
	s.peerKey, s.peerAddr = p.peerKey, p.peerAddr
	s.peerIP = append(s.peerIP[:0], p.peerIP...)
	s.peerNode = append(s.peerNode[:0], p.peerNode...)
	s.sni = append(s.sni, p.sni...)
	return s
}

// resetSession takes a session from the pool and readies it for c.
func resetSession(srv *Server, c net.Conn) *session {
	s := sessionPool.Get().(*session)
	s.srv, s.conn = srv, c
	s.crd.Forget()
	s.cwd.Forget()
	s.state.Store(stateBusy)
	s.h2b, s.snext, s.sprev, s.h2id = nil, nil, nil, 0
	s.served, s.linger = false, false
	// What a request leaves of itself, for a session that answers before
	// readHead or runStream resets them (an HTTP/2 head too large): never
	// an earlier request's id, HEAD-ness or route.
	s.hasID, s.isHead, s.routeKey = false, false, ""
	s.aborted.Store(false)
	s.left.Store(false)
	s.slot = nil
	s.h2br.Store(nil)
	s.mx = metrics.Request{}
	s.r, s.w = 0, 0 // buf is taken when the first request byte arrives (idle.go)
	s.bscan.Response = true
	s.sni = s.sni[:0]
	s.sessID, s.tlsInfo = ulid.ULID{}, nil
	s.lg = reqLog{on: srv.opt.Access != nil, head: s.lg.head[:0]}
	return s
}

// setPeer makes ip the client's address in the fields the proxy adds.
func (s *session) setPeer(ip netip.Addr) {
	ip = ip.Unmap()
	s.peerKey = backends.KeyOf(ip)
	s.peerAddr = ip
	s.peerIP = ip.AppendTo(s.peerIP[:0])
	s.peerNode = forwardedNode(s.peerNode[:0], ip, 0)
}

// run serves the connection until it closes; it recovers any panic.
func (s *session) run() {
	defer s.finish()
	if s.srv.cfg.Load().ExpectProxy && !s.readProxyHeader() {
		return
	}
	if tc, ok := s.conn.(*tls.Conn); ok && (!s.handshake(tc) || s.alpnH2(tc)) {
		return
	}
	s.tick() // after the handshake: readHead arms the wait with s.now
	for {
		n := s.readHead(s.srv.cfg.Load())
		// The request is served with the configuration in force when its
		// head arrived, not when the wait for it began: a Swap meanwhile
		// (a backend removed, a route changed) applies to it.
		// A response that kept the connection open promised the client
		// one more request: even when draining, readHead waits for it
		// (drainIdleGrace) and its answer closes the connection.
		cfg := s.srv.cfg.Load()
		more := n > 0 && s.serve(cfg, n)
		s.served = true
		s.tick()          // the request's end, and the start of the wait for the next
		s.endRequest()    // the request's end: its metrics
		s.logRequest(cfg) // the request's end: its access record
		if !more {
			if s.linger {
				s.lingerClose()
			}
			return
		}
	}
}

// handshake runs the TLS handshake within the request timeout (the front
// timeout when shorter): a client sends its ClientHello as it connects,
// and one that trickles it, or sends nothing, is a slow head, not an idle
// keep-alive connection (upstream bounds a new session by its request
// timeout too). It reports whether the connection can serve requests.
func (s *session) handshake(tc *tls.Conn) bool {
	cfg := s.srv.cfg.Load()
	tc.SetDeadline(time.Now().Add(min(cfg.RequestTimeout, cfg.FrontTimeout)))
	if err := handshakeApart(s.srv.ctx, tc); err != nil {
		if log := s.srv.opt.Log; log.Logger.IsLevelEnabled(logrus.DebugLevel) {
			// crypto/tls quotes what the client offered (its ALPN
			// protocols): PANs masked, as in an access record.
			log.Debugf("TLS handshake with %v: %s", tc.RemoteAddr(), logmask.AppendPANMasked(nil, []byte(err.Error())))
		}
		if !probe(tc, err) {
			s.srv.opt.Metrics.Handshake(0, "")
		}
		return false
	}
	tc.SetDeadline(time.Time{})
	s.crd.Forget()
	s.cwd.Forget()
	st := tc.ConnectionState()
	s.srv.opt.Metrics.Handshake(st.Version, st.NegotiatedProtocol)
	if s.lg.on {
		s.tlsInfo = accesslog.NewTLSInfo(&st)
	}
	if sn := st.ServerName; sn != "" {
		s.sni = append(s.sni[:0], strings.ToLower(strings.TrimSuffix(sn, "."))...)
	}
	return true
}

// probe reports whether a handshake that failed with err was no attempt
// at one: the client closed the connection (a FIN or a reset) before
// sending a byte, as a load balancer's TCP health check or a port scan
// does (HAProxy's and kubelet's checks reset). It is no failed handshake
// in the metrics. A client that sent anything, even a part of a
// ClientHello, made an attempt.
func probe(tc *tls.Conn, err error) bool {
	if !errors.Is(err, io.EOF) && !errors.Is(err, syscall.ECONNRESET) {
		return false
	}
	if pc, ok := tc.NetConn().(*polledConn); ok {
		return !pc.began
	}
	return err == io.EOF && tc.ConnectionState().Version == 0 // a clean end before a ClientHello
}

// handshakeApart runs tc's handshake on a goroutine of its own and waits
// for it: the deep stack of the key exchange and signatures is freed when
// that goroutine ends, instead of staying with the session's goroutine,
// and so with an idle connection, for the connection's life (about 24 KiB
// per idle TLS connection).
func handshakeApart(ctx context.Context, tc *tls.Conn) error {
	errc := make(chan error, 1)
	go func() {
		defer func() {
			if p := recover(); p != nil {
				errc <- fmt.Errorf("panic in the TLS handshake: %v", p)
			}
		}()
		errc <- tc.HandshakeContext(ctx)
	}()
	return <-errc
}

// readProxyHeader reads the PROXY protocol v2 header that starts the
// connection (under TLS, from the raw connection: the header precedes the
// handshake), within the front timeout. A PROXY command's source becomes
// the client's address; a LOCAL one keeps the connection's. It reports
// whether the connection can go on.
func (s *session) readProxyHeader() bool {
	raw := s.conn
	if tc, ok := raw.(*tls.Conn); ok {
		raw = tc.NetConn()
	}
	cfg := s.srv.cfg.Load()
	raw.SetReadDeadline(time.Now().Add(cfg.FrontTimeout))
	h, err := proxyproto.Parse(raw, 0)
	if err != nil {
		s.srv.opt.Log.Debugf("PROXY header from %v: %v", raw.RemoteAddr(), err)
		if proxyproto.Malformed(err) {
			s.srv.opt.Metrics.ProxyProtocolError()
		}
		return false
	}
	raw.SetReadDeadline(time.Time{})
	s.crd.Forget()
	if pc, ok := raw.(*polledConn); ok {
		pc.framed() // TLS records begin after the header
	}
	if h.Command == proxyproto.Proxy {
		s.setPeer(h.Source.Addr())
		s.client = netip.AddrPortFrom(h.Source.Addr().Unmap(), h.Source.Port())
	}
	return true
}

func (s *session) finish() {
	if p := recover(); p != nil {
		s.srv.Panics.Add(1)
		s.srv.opt.Log.Errorf("panic serving %v: %v\n%s", s.conn.RemoteAddr(), p, debug.Stack())
		if bc := s.copying; bc != nil {
			// The copier uses the session's buffers: stop it first.
			bc.Conn.Close()
			s.conn.Close()
			<-s.copyDone
			s.copying = nil
		}
		if bc := s.bc.Swap(nil); bc != nil {
			bc.Release(false)
		}
	}
	s.conn.Close()
	for _, sl := range s.slots {
		s.srv.opt.IPCaps.Release(sl)
	}
	s.slots = s.slots[:0]
	if s.h2b != nil {
		s.h2b.unlink(s)
	} else {
		s.srv.forget(s)
	}
	s.releaseBuf()
	s.releaseExchangeBuffers()
	s.trimIdle()
	s.idle.forget()
	s.conn, s.srv, s.h2b = nil, nil, nil
	sessionPool.Put(s)
}

// acquireExchangeBuffers gets the buffers needed while a request is in flight.
func (s *session) acquireExchangeBuffers() {
	if s.bbufp == nil {
		s.bbufp = getBuf()
		s.bbuf = *s.bbufp
	}
	if s.outp == nil {
		s.outp = getOut()
		s.out = (*s.outp)[:0]
	}
	if s.st == nil {
		s.st = getExch()
		s.scratch = s.st.scratch[:0]
	}
}

// releaseExchangeBuffers gives them back while the connection is idle.
func (s *session) releaseExchangeBuffers() {
	if s.bbufp != nil {
		putBuf(s.bbufp)
		s.bbufp, s.bbuf = nil, nil
	}
	if s.outp != nil {
		putOut(s.outp, s.out)
		s.outp, s.out = nil, nil
	}
	if s.boutp != nil {
		putOut(s.boutp, s.bout)
		s.boutp, s.bout = nil, nil
	}
	if s.st != nil {
		s.st.scratch, s.scratch = s.scratch[:0], nil
		putExch(s.st)
		s.st = nil
	}
}

// idleKeep bounds each buffer of its own that a session keeps between
// requests, and in the pool between connections: its access record's
// copy of the request (reqLog.head), the sticky cookie's value and the
// rewritten cookies (sticky.go), a frontend's rewritten authority and
// target and the authority the client sent (frontend.go). An ordinary
// request's fit; a larger one's are dropped once it is over (trimIdle),
// so that an idle connection costs no more after a 16 KiB head than
// after a small one, and a larger request costs an allocation or two.
const idleKeep = 1 << 10

// trimIdle drops the session's own buffers grown past idleKeep, when no
// request is in flight (the connection waits for the next, or ends).
func (s *session) trimIdle() {
	s.lg.head = keepIdle(s.lg.head)
	s.stickyIn = keepIdle(s.stickyIn)
	s.cookieBuf = keepIdle(s.cookieBuf)
	s.rw = keepIdle(s.rw)
	s.xfHost = keepIdle(s.xfHost)
}

// keepIdle returns b, or nil when it is larger than idleKeep.
func keepIdle(b []byte) []byte {
	if cap(b) > idleKeep {
		return nil
	}
	return b
}

// drainIdleGrace is how long an idle keep-alive connection of a draining
// server (soft stop, worker upgrade) waits for one more request, which is
// answered with Connection: close, before it is closed. Closing it at once
// would race with a request the client is already sending, which it would
// see as a reset (RFC 9112 §9.6); a busy client instead gets its answer
// and reconnects, to the worker that took over the listener.
const drainIdleGrace = time.Second

// wakeIfIdle bounds an idle session's pending read to drainIdleGrace, so
// that it closes (soft stop) unless a last request arrives. A busy session
// sees Server.draining after its request.
func (s *session) wakeIfIdle() {
	if c := s.h2c.Load(); c != nil {
		c.Shutdown() // GOAWAY; the streams in flight finish
		return
	}
	if s.state.Load() == stateIdle {
		s.conn.SetReadDeadline(time.Now().Add(drainIdleGrace))
	}
}

// abort closes the client and backend connections at once: a hard stop,
// or the reset of the stream a stream session serves.
func (s *session) abort() {
	// The flag first: a session that then gives its backend connection
	// back finds it and does not pool it; one that gave it back before
	// has stored nil, which the load below then reads (seq-cst atomics).
	s.aborted.Store(true)
	s.conn.Close()
	if bc := s.bc.Load(); bc != nil {
		bc.Conn.Close()
	}
	if b := s.h2br.Load(); b != nil {
		b.abort()
	}
}

func isTimeout(err error) bool { return errors.Is(err, os.ErrDeadlineExceeded) }

// readHead waits for the next request head and returns its length: the
// head is buf[r:r+n]. It returns 0 when the connection must close, after
// answering when there is something to answer (408, 400, 414, 431).
func (s *session) readHead(cfg *Listener) int {
	s.scan.Reset()
	s.hasID, s.isHead, s.routeKey = false, false, ""
	if s.r == s.w {
		s.r, s.w = 0, 0
	}
	// The wait for a request is bounded by the front timeout; once its
	// first byte is here, the rest of the head must come within the
	// request timeout (a slow head is answered 408).
	started := s.r < s.w
	if started {
		s.begin()
	} else {
		// Idle: no buffer is held while the client thinks (idle.go).
		s.releaseExchangeBuffers()
		s.releaseBuf()
		s.trimIdle()
		wait := cfg.FrontTimeout
		if !s.served {
			// A new connection sends its first request within the
			// request timeout, as HAProxy's timeout http-request and
			// upstream's new sessions have it: one that connects and
			// waits holds no slot for the front timeout of a keep-alive
			// connection between two requests.
			wait = min(wait, cfg.RequestTimeout)
		}
		deadline.Read(s.conn, &s.crd, s.now, wait)
		s.state.Store(stateIdle)
		if s.srv.draining.Load() {
			// Draining already: one last request within the grace.
			s.crd.Forget()
			deadline.Read(s.conn, &s.crd, s.now, min(drainIdleGrace, cfg.FrontTimeout))
		}
		if err := s.waitFirst(); err != nil {
			if !isTimeout(err) && !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) {
				s.srv.opt.Log.Debugf("waiting for a request from %v: %v", s.conn.RemoteAddr(), err)
			}
			return 0
		}
		started = true
		s.begin()
		s.state.Store(stateBusy)
	}
	s.takeBuf()
	headDeadline := false
	waited := false // a read since the last tick: the head's arrival needs one
	for {
		if s.r < s.w {
			n, err := s.scan.Scan(s.buf[s.r:s.w])
			if err != nil {
				s.noteUnparsed(s.w - s.r)
				s.noteScanRefused(s.buf[s.r:s.w])
				return s.headError(cfg, err)
			}
			if n > 0 {
				s.state.Store(stateBusy)
				if waited {
					s.tick() // the head arrived now
				}
				return n
			}
		}
		if s.w == len(s.buf) {
			if s.r == 0 {
				// Unreachable: the scanner refuses a head longer than its limit first.
				s.answer(cfg, nil, http1.StatusRequestHeaderFieldsTooLarge)
				return 0
			}
			s.w = copy(s.buf, s.buf[s.r:s.w])
			s.r = 0
		}
		if started && !headDeadline {
			headDeadline = true
			s.crd.Forget()
			deadline.Read(s.conn, &s.crd, s.now, cfg.RequestTimeout)
		}
		m, err := s.conn.Read(s.buf[s.w:])
		s.idle.noteRead(m, len(s.buf)-s.w, err)
		if m > 0 {
			s.w += m
			if !started {
				started = true
				s.begin()
				s.state.Store(stateBusy)
			} else {
				waited = true
			}
			continue
		}
		if err != nil {
			s.noteUnparsed(s.w - s.r)
			if started && isTimeout(err) && !s.srv.draining.Load() {
				s.answer(cfg, nil, 408)
			}
			return 0
		}
	}
}

func (s *session) headError(cfg *Listener, err error) int {
	status := http1.StatusBadRequest
	var he *http1.Error
	if errors.As(err, &he) {
		status = he.Status
	}
	s.answer(cfg, nil, status)
	return 0
}

// newID gives the request its ULID.
func (s *session) newID() {
	id := s.srv.opt.NewID(s.now)
	id.MarshalTextTo(s.id[:])
	s.idBin, s.hasID = id, true
}

// answer writes the proxy's own response (custom from cl, then from the
// listener, else the default) and closes the connection gently. It returns
// false, for the serve loop.
func (s *session) answer(cfg *Listener, cl *Cluster, code int) bool {
	return s.answerTo(cfg, cl, code, nil)
}

// answerTo is answer with the target of a redirection (nil for other
// answers).
func (s *session) answerTo(cfg *Listener, cl *Cluster, code int, location []byte) bool {
	return s.answerWith(cfg, cl, code, nil, location, nil)
}

// answerWith is answer with a template t that comes first (nil for none),
// the target of a redirection and the challenge of a 401 (nil for none).
// Over HTTPS, the answer carries the Strict-Transport-Security policy of
// the frontend that routed the request, else the listener's.
func (s *session) answerWith(cfg *Listener, cl *Cluster, code int, t *answers.Template, location, challenge []byte) bool {
	if !s.hasID {
		s.newID()
	}
	// The clock is read before the answer is built: its Date (the proxy
	// is the origin server of its answers, RFC 9110 §6.6.1) and the
	// write's deadline take that reading.
	v := answers.Vars{RequestID: s.id[:], IDHeader: cfg.IDHeader, Head: s.isHead, Location: location, WWWAuthenticate: challenge,
		Date: httpDate(s.tick())}
	if code == 429 {
		v.RetryAfter = s.retry
	}
	if h := hstsFor(cfg, s.routeKey); h != nil {
		f := append(s.scratch[len(s.scratch):], nameHSTS...)
		f = append(f, ": "...)
		f = append(f, h.Value...)
		v.Fields = append(f, "\r\n"...)
	}
	if cl != nil {
		if t == nil {
			t = cl.Answers.Lookup(code)
		}
		v.ClusterID = cl.ID
		if s.mx.Cluster == nil {
			s.mxCluster(cl)
		}
	}
	if t == nil {
		t = cfg.Answers.Lookup(code)
	}
	if t == nil {
		t = defaultAnswer(code)
	}
	s.acquireExchangeBuffers()
	s.out = t.Append(s.out[:0], &v)
	deadline.Write(s.conn, &s.cwd, s.now, cfg.FrontTimeout)
	n, err := s.conn.Write(s.out)
	s.tick()
	sent := code
	if n == 0 && err != nil {
		// Nothing was sent (the client reset its connection or HTTP/2
		// stream, or abort closed it): no answer to count, and the
		// access record shows no status.
		sent = 0
	} else {
		s.mx.Status, s.mx.Own = code, true
	}
	s.mx.BytesOut += int64(n)
	s.lg.noteAnswer(sent, cl, n, s.now)
	s.endRequest() // before the linger: it is not the request's time
	if err == nil {
		s.lingerClose()
	}
	return false
}

// lingerClose half-closes the connection (after a TLS close_notify) and
// reads, discarding, what the client still sends, so that unread request
// bytes do not make the kernel reset the connection before the client has
// read the answer (RFC 9112 §9.6): a close with bytes unread sends a RST
// and drops what was not sent yet. It drains for lingerTime (at most
// lingerMax bytes), and on while the kernel still holds answer bytes the
// client has not acknowledged, up to the front timeout (the bound of any
// write to a client that does not read); the client's end (EOF) ends it
// at once.
func (s *session) lingerClose() {
	raw := s.conn
	if tc, ok := raw.(*tls.Conn); ok {
		tc.SetWriteDeadline(time.Now().Add(lingerTime)) // for the close_notify
		raw = tc.NetConn()
	}
	if !closeWrite(s.conn) {
		return
	}
	s.crd.Forget()
	s.takeBuf()
	now := time.Now()
	limit := now.Add(s.srv.cfg.Load().FrontTimeout)
	raw.SetReadDeadline(now.Add(lingerTime))
	for total := 0; ; {
		n, err := raw.Read(s.buf)
		total += n
		if err == nil && total < lingerMax {
			continue
		}
		if err != nil && !isTimeout(err) {
			return // the client's end, or a reset: nothing left to wait for
		}
		if now = time.Now(); !now.Before(limit) || !unacknowledged(raw) {
			return
		}
		next := now.Add(lingerTime)
		if next.After(limit) {
			next = limit
		}
		raw.SetReadDeadline(next)
		total = 0
	}
}

// unacknowledged reports whether the kernel holds bytes written to c
// (a TCP connection) that the peer has not acknowledged yet, unsent or in
// flight (TCP_INFO); false when it cannot tell.
func unacknowledged(c net.Conn) bool {
	pending := false
	withFD(c, func(fd uintptr) {
		info, err := unix.GetsockoptTCPInfo(int(fd), unix.IPPROTO_TCP, unix.TCP_INFO)
		pending = err == nil && (info.Unacked > 0 || info.Notsent_bytes > 0)
	})
	return pending
}

// withFD runs f with the socket of c (a TCP connection, or the one under
// a TLS connection), without taking it from the poller; false when c has
// no socket or it is closed.
func withFD(c net.Conn, f func(fd uintptr)) bool {
	if tc, ok := c.(*tls.Conn); ok {
		c = tc.NetConn()
	}
	sc, ok := c.(syscall.Conn)
	if !ok {
		return false
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	return rc.Control(f) == nil
}
