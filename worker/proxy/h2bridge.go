package proxy

import (
	"bytes"
	"crypto/tls"
	"errors"
	"net"
	"strconv"
	"sync"
	"time"

	"golang.org/x/net/http2"

	"github.com/sozu-go/sozu/worker/accesslog"
	"github.com/sozu-go/sozu/worker/h2"
	"github.com/sozu-go/sozu/worker/http1"
	"github.com/sozu-go/sozu/worker/ipcap"
)

// HTTP/2 on HTTPS listeners. A connection whose TLS handshake selected "h2"
// by ALPN is served by worker/h2; each of its request streams is converted
// to an HTTP/1.1 request head and served, in the stream's goroutine, by a
// session of its own whose client connection is the stream (streamConn,
// h2stream.go), so that routing, frontend features (redirects, auth,
// rewrites, header edits, HSTS, strict SNI, answers), forwarding fields,
// timeouts and backends are exactly those of HTTP/1.1. The response the
// session writes is framed as it comes and handed to the stream as HTTP/2.
// Nothing is buffered whole: a session reads from its backend what its
// stream's window admits (session.streamRoom), and a stream whose client
// stopped reading holds its session's read buffer and exchange state and
// little more (docs/architecture.md), until the write timeout.

// alpnH2 is called after the TLS handshake of a session: it serves the
// connection in HTTP/2 when ALPN selected "h2", refuses it when the
// listener has disable_http11 and the client did not select h2, and
// reports whether the connection is done with (false: serve HTTP/1.1).
func (s *session) alpnH2(tc *tls.Conn) bool {
	c, b, done := s.newH2(tc)
	if c == nil {
		return done
	}
	if err := c.Serve(); err != nil {
		s.srv.opt.Log.Debugf("HTTP/2 connection from %v: %v", tc.RemoteAddr(), err)
	}
	s.h2c.Store(nil)
	if b.nc.pc != nil {
		b.nc.pc.dropPending() // what the last wait read and crypto/tls did not take
	}
	// Serve does not wait for the stream handlers: the connection's session
	// (in the server's sessions and Server.wg for its streams' sessions
	// too) ends after the last of them.
	b.mu.Lock()
	b.closed = true
	b.mu.Unlock()
	b.wg.Wait()
	s.h2br.Store(nil)
	return true
}

// newH2 makes the HTTP/2 connection of tc and its bridge, and publishes
// them in s (Shutdown already called when the server drains), when ALPN
// selected "h2"; else it returns no connection and whether the connection
// is done with (alpnH2). It is apart from alpnH2, whose goroutine then
// serves the connection (its reader): its frame, large (the TLS
// connection state, the limits), is gone by the time the reader parks for
// an idle connection's next frame, and so is not part of the stack the
// garbage collector sees in use (it shrinks a stack to 4 KiB only when
// less than about 1.2 KiB of it is).
//
//go:noinline
func (s *session) newH2(tc *tls.Conn) (*h2.Conn, *h2Bridge, bool) {
	cfg := s.srv.cfg.Load()
	if tc.ConnectionState().NegotiatedProtocol != "h2" {
		if cfg.DisableHTTP11 {
			s.srv.opt.Log.Debugf("%v: no h2 in ALPN and disable_http11 is set: connection closed", tc.RemoteAddr())
			return nil, nil, true
		}
		return nil, nil, false
	}
	lim := cfg.H2
	if lim.ReadTimeout == 0 {
		lim.ReadTimeout = cfg.FrontTimeout
	}
	if lim.HeaderTimeout == 0 {
		lim.HeaderTimeout = cfg.RequestTimeout
	}
	b := &h2Bridge{parent: s, local: newPeerAddr(tc.LocalAddr()), remote: newPeerAddr(tc.RemoteAddr())}
	var nc net.Conn = tc
	if pc, _ := tc.NetConn().(*polledConn); pc != nil {
		// Read through waitTLSConn: an idle connection holds no read buffer,
		// and its reader parks outside crypto/tls (idle.go).
		b.nc = waitTLSConn{Conn: tc, pc: pc}
		nc = &b.nc
	}
	c := h2.NewConn(nc, lim, b, &h2.Options{Stats: &s.srv.H2Stats})
	s.h2br.Store(b)
	s.h2c.Store(c)
	if s.srv.draining.Load() {
		c.Shutdown()
	}
	return c, b, true
}

// h2Bridge serves the streams of one HTTP/2 connection.
type h2Bridge struct {
	parent        *session    // the connection's session: its peer address and SNI
	local, remote net.Addr    // the connection's addresses, formatted once
	nc            waitTLSConn // the connection as worker/h2 reads it (alpnH2)

	mu      sync.Mutex
	closed  bool           // the connection is over: no stream starts
	wg      sync.WaitGroup // stream handlers running
	streams *session       // the stream sessions, linked by snext and sprev, for abort
	aborted bool           // abort ran: no stream session is linked any more
}

// link adds a stream session to b's list; false, adding nothing, after a
// hard stop aborted the others.
func (b *h2Bridge) link(ss *session) bool {
	b.mu.Lock()
	if b.aborted {
		b.mu.Unlock()
		return false
	}
	ss.sprev, ss.snext = nil, b.streams
	if b.streams != nil {
		b.streams.sprev = ss
	}
	b.streams = ss
	b.mu.Unlock()
	return true
}

// unlink removes a stream session from b's list as it ends, if link
// added it.
func (b *h2Bridge) unlink(ss *session) {
	b.mu.Lock()
	if ss.sprev == nil && b.streams != ss {
		b.mu.Unlock()
		return // refused by link
	}
	if ss.sprev != nil {
		ss.sprev.snext = ss.snext
	} else {
		b.streams = ss.snext
	}
	if ss.snext != nil {
		ss.snext.sprev = ss.sprev
	}
	ss.sprev, ss.snext = nil, nil
	b.mu.Unlock()
}

// abort aborts every stream session (hard stop): their streams and backend
// connections are closed at once.
func (b *h2Bridge) abort() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.aborted = true
	for ss := b.streams; ss != nil; ss = ss.snext {
		ss.abort()
	}
}

// StreamReset aborts the session of stream id, if it still runs, when the
// stream is reset or its connection dies (h2.ResetObserver): its backend
// connection is closed, so that the work a client cancels, or provokes
// and abandons, ends now rather than when the backend answers.
func (b *h2Bridge) StreamReset(id uint32) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for ss := b.streams; ss != nil; ss = ss.snext {
		if ss.h2id == id {
			ss.abort()
			return
		}
	}
}

// StreamMalformed logs a request the HTTP/2 connection refused as
// malformed (h2.MalformedObserver): like a malformed HTTP/1.1 request, it
// gets an access record (no status: it was reset, not answered) and
// counts in http.errors. The record shows what upstream's does of the
// fields decoded before the refusal: the first :method and :path, and the
// :authority only when there was one and no host field disputes it (a
// host field is never shown in its place).
func (b *h2Bridge) StreamMalformed(id uint32, fields []h2.HeaderField, reason string) {
	var method, path, authority []byte
	authorities := 0
	for _, f := range fields {
		switch string(f.Name) {
		case ":method":
			if method == nil {
				method = f.Value
			}
		case ":path":
			if path == nil {
				path = f.Value
			}
		case ":authority":
			if authorities++; authorities == 1 {
				authority = f.Value
			}
		}
	}
	if authorities != 1 {
		authority = nil
	}
	for _, f := range fields {
		if string(f.Name) == "host" && !bytes.EqualFold(f.Value, authority) {
			authority = nil
		}
	}
	ua, _ := fieldValue(fields, "user-agent")
	b.logMalformed(method, path, authority, ua, reason)
}

// logMalformed records a malformed request: http.errors, and an access
// record whose reason says why it was refused, with the tags of the
// frontend whose hostname is exactly its authority (hostTags), as a
// refused HTTP/1.1 head's record has (no frontend routed it).
func (b *h2Bridge) logMalformed(method, path, authority, ua []byte, reason string) {
	p := b.parent
	srv := p.srv
	srv.opt.Metrics.Malformed()
	al := srv.opt.Access
	if !al.Wants(true) {
		return
	}
	now := time.Now()
	cfg := srv.cfg.Load()
	rec := accesslog.Record{
		Protocol: accesslog.H2, SessionID: p.sessID, RequestID: srv.opt.NewID(now), Start: now, End: now,
		Client: p.client, Listener: cfg.addrText,
		Method: method, Host: authority, Target: path, UserAgent: ua, Tags: hostTags(cfg, authority),
		EndReason: "malformed HTTP/2 request: " + reason, TLS: p.tlsInfo,
	}
	al.Log(&rec)
}

// fieldValue returns the value of the first field of fields named name
// (a lowercase name, as HTTP/2 carries them), and whether there is one.
func fieldValue(fields []h2.HeaderField, name string) ([]byte, bool) {
	for _, f := range fields {
		if string(f.Name) == name {
			return f.Value, true
		}
	}
	return nil, false
}

// admitIP is session.admitIP for the session of one of the connection's
// streams: the per-IP cap counts the HTTP/2 connection once per cluster,
// like an HTTP/1.1 connection, whatever its streams. The slot is held in
// the connection's session, released when the connection ends (after its
// last stream: alpnH2 waits for them).
func (b *h2Bridge) admitIP(s *session, caps *ipcap.Limits, cl *Cluster) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	p := b.parent
	for _, sl := range p.slots {
		if sl.Cluster == cl.ID {
			return true
		}
	}
	sl := ipcap.Slot{Cluster: cl.ID, IP: p.peerAddr}
	ok, held := caps.Acquire(sl, caps.Cap(cl.MaxConnsPerIP))
	if held {
		p.slots = append(p.slots, sl)
	}
	if !ok {
		s.retry = s.retry[:0]
		if r := caps.RetryAfter(cl.RetryAfter); r > 0 {
			s.retry = strconv.AppendUint(s.retry, uint64(r), 10)
		}
	}
	return ok
}

// ServeStream converts st's request head to HTTP/1.1 in the buffer of a
// stream session of its own and has the session serve it, in this
// goroutine, over a streamConn: the session reads the body from the stream
// and its response goes back to the stream as HTTP/2 (h2stream.go).
func (b *h2Bridge) ServeStream(st *h2.Stream) {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		st.Reset(http2.ErrCodeRefusedStream)
		return
	}
	b.wg.Add(1)
	b.mu.Unlock()
	defer b.wg.Done()
	// A CONNECT stream's DATA would be a tunnel's, not a body: its head
	// goes without framing, and the session answers it 501, as it
	// answers an HTTP/1.1 CONNECT (refuse). A body goes chunked when it
	// has no content-length, and when trailers are announced (a trailer
	// field): HTTP/2 carries trailers after a body of known length,
	// HTTP/1.1 only after a chunked one (RFC 9112 §7.1.2), and the h2
	// layer has checked the DATA against the content-length.
	chunked := st.HasBody() && string(st.Method()) != "CONNECT" &&
		(st.ContentLength() < 0 || announcesTrailers(st.Header()))
	if !validH1Head(st.Method(), st.Path(), st.Authority(), st.Header()) {
		ua, _ := fieldValue(st.Header(), "user-agent")
		b.logMalformed(st.Method(), st.Path(), st.Authority(), ua, "not writable as HTTP/1.1 without ambiguity")
		st.Reset(http2.ErrCodeProtocol) // RFC 9113 §8.1.1: malformed
		return
	}
	p := b.parent
	srv := p.srv
	sc := getStreamConn(st, b.local, b.remote, chunked)
	defer putStreamConn(sc)
	ss := newStreamSession(p, sc)
	ss.h2b, ss.h2id = b, st.ID()
	ss.takeBuf()
	head := appendH1Fields(ss.buf[:0], st.Method(), st.Path(), st.Authority(), st.Header(), chunked)
	if !b.link(ss) { // not in the server's sessions: the connection's session stands for them
		ss.finish() // a hard stop came first: the stream is refused
		return
	}
	if st.Err() != nil {
		// Reset before the link (HEADERS and RST_STREAM in one read):
		// StreamReset found no session then; it finds this one from
		// now on (link and StreamReset hold b.mu), so this is the last
		// reset to look for.
		ss.finish()
		return
	}
	if len(head) > bufSize-4<<10 {
		// Beyond what an HTTP/1.1 client may send (appended past buf
		// when longer than it): answered as the HTTP/1.1 scanner answers
		// one, 414 when its request line alone is over the start-line
		// limit, else 431.
		defer ss.finish()
		status := http1.StatusRequestHeaderFieldsTooLarge
		var he *http1.Error
		if _, err := http1.FindRequestHead(head, nil); errors.As(err, &he) {
			status = he.Status
		}
		cfg := srv.cfg.Load()
		ss.begin()
		// Its head counts, in its HTTP/1.1 form as a stream's head does,
		// and its record shows its method and path (noteScanRefused).
		ss.noteUnparsed(len(head))
		ss.noteScanRefused(head)
		if _, host := fieldValue(st.Header(), "host"); !host && ss.lg.on && len(st.Authority()) > 0 {
			// Its :authority, undisputed, as a malformed stream's record
			// shows it (the HTTP/1.1 form's Host was not validated).
			ss.lg.host = ss.lg.put(st.Authority())
		}
		ss.answer(cfg, nil, status)
		ss.tick()
		ss.logRequest(cfg)
		return
	}
	ss.w = len(head)
	ss.runStream()
}

// runStream serves the one request a stream session was given (its head
// is all of buf[:w]), then ends. The head needs no scan for its end:
// serve's ParseRequest checks it as any head, limits included.
func (s *session) runStream() {
	defer s.finish()
	cfg := s.srv.cfg.Load()
	s.hasID, s.isHead, s.routeKey = false, false, ""
	s.begin()
	s.serve(cfg, s.w)
	s.tick() // the request's end
	s.endRequest()
	s.logRequest(cfg)
}

// appendH1Head appends the HTTP/1.1 head of an HTTP/2 request (see
// appendH1Fields) after checking it with validH1Head; it reports false,
// appending nothing, for a request that cannot be written as HTTP/1.1
// without ambiguity.
func appendH1Head(dst, method, path, authority []byte, fields []h2.HeaderField, chunked bool) ([]byte, bool) {
	if !validH1Head(method, path, authority, fields) {
		return dst, false
	}
	return appendH1Fields(dst, method, path, authority, fields, chunked), true
}

// validH1Head reports whether an HTTP/2 request can be written as
// HTTP/1.1 without ambiguity: false for a method or field name that is not
// a token, a target or authority with spaces or controls, a target not in
// origin form (but OPTIONS *, and CONNECT's authority), a field value
// with CR, LF or NUL (h2 refuses these first; this keeps the conversion
// safe on its own).
func validH1Head(method, path, authority []byte, fields []h2.HeaderField) bool {
	target := path
	if string(method) == "CONNECT" {
		target = authority
	}
	if !http1.IsToken(method) || len(target) == 0 || !visible(target) || !visible(authority) {
		return false
	}
	if string(method) != "CONNECT" && target[0] != '/' && (string(target) != "*" || string(method) != "OPTIONS") {
		// Whatever the :scheme, the target is the origin form (RFC 9113
		// §8.3.1): an absolute form would name a host other than
		// :authority's to the HTTP/1.1 parser (RFC 9112 §3.2.2).
		return false
	}
	for _, f := range fields {
		if len(f.Name) > 0 && f.Name[0] == ':' {
			continue
		}
		if !http1.IsToken(f.Name) || hasLineBreakOrNUL(f.Value) {
			return false
		}
	}
	return true
}

// announcesTrailers reports whether fields hold a trailer field naming
// the trailers the request will send (RFC 9110 §6.6.2).
func announcesTrailers(fields []h2.HeaderField) bool {
	for _, f := range fields {
		if string(f.Name) == "trailer" && len(f.Value) > 0 {
			return true
		}
	}
	return false
}

// appendH1Fields appends the HTTP/1.1 head of a request validH1Head
// accepts: the request line from :method and :path (:authority for
// CONNECT), Host from :authority, the regular fields (pseudo-headers and
// host skipped) with cookie crumbs joined by "; " (RFC 9113 §8.2.3),
// "Transfer-Encoding: chunked" when chunked (a body without
// content-length, or one followed by trailers: content-length is then
// left out, RFC 9112 §6.2), and "Connection: close" (one request per
// stream session).
func appendH1Fields(dst, method, path, authority []byte, fields []h2.HeaderField, chunked bool) []byte {
	target := path
	if string(method) == "CONNECT" {
		target = authority
	}
	dst = append(dst, method...)
	dst = append(dst, ' ')
	dst = append(dst, target...)
	dst = append(dst, " HTTP/1.1\r\n"...)
	if len(authority) > 0 {
		dst = append(dst, "host: "...)
		dst = append(dst, authority...)
		dst = append(dst, "\r\n"...)
	}
	cookies := 0
	for _, f := range fields {
		switch {
		case len(f.Name) > 0 && f.Name[0] == ':', string(f.Name) == "host":
			continue
		case string(f.Name) == "cookie":
			cookies++
			continue
		case chunked && string(f.Name) == "content-length":
			continue
		}
		dst = appendFieldLine(dst, f.Name, f.Value)
	}
	if cookies > 0 {
		dst = append(dst, "cookie: "...)
		first := true
		for _, f := range fields {
			if string(f.Name) != "cookie" {
				continue
			}
			if !first {
				dst = append(dst, "; "...)
			}
			first = false
			dst = append(dst, f.Value...)
		}
		dst = append(dst, "\r\n"...)
	}
	if chunked {
		dst = append(dst, "transfer-encoding: chunked\r\n"...)
	}
	return append(dst, "connection: close\r\n\r\n"...)
}

func appendFieldLine(dst, name, value []byte) []byte {
	dst = append(dst, name...)
	dst = append(dst, ": "...)
	dst = append(dst, value...)
	return append(dst, "\r\n"...)
}

// hasLineBreakOrNUL reports whether v holds CR, LF or NUL.
func hasLineBreakOrNUL(v []byte) bool {
	for _, c := range v {
		if c == '\r' || c == '\n' || c == 0 {
			return true
		}
	}
	return false
}

// visible reports whether b has no space, control or DEL byte.
func visible(b []byte) bool {
	for _, c := range b {
		if c <= ' ' || c == 0x7f {
			return false
		}
	}
	return true
}

// isConnectionToken reports whether name is a connection option of resp,
// which must not be forwarded (RFC 9110 §7.6.1).
func isConnectionToken(resp *http1.Response, name []byte) bool {
	for _, t := range resp.ConnectionTokens() {
		if equalFoldBytes(t, name) {
			return true
		}
	}
	return false
}
