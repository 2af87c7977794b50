package proxy

import (
	"bytes"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"strconv"
	"sync"

	"golang.org/x/net/http2"

	"github.com/sozu-go/sozu/worker/h2"
	"github.com/sozu-go/sozu/worker/http1"
	"github.com/sozu-go/sozu/worker/ipcap"
)

// HTTP/2 on HTTPS listeners. A connection whose TLS handshake selected "h2"
// by ALPN is served by worker/h2; each of its request streams is converted
// to an HTTP/1.1 request and served by a session of its own, reading the
// request from an in-memory pipe and writing the response into it, so that
// routing, frontend features (redirects, auth, rewrites, header edits,
// HSTS, strict SNI, answers), forwarding fields, timeouts and backends are
// exactly those of HTTP/1.1. The response the session writes is converted
// back to HTTP/2. Nothing is buffered whole: the pipe is synchronous, and a
// stream holds at most its flow-control window and h2's output buffer.

// alpnH2 is called after the TLS handshake of a session: it serves the
// connection in HTTP/2 when ALPN selected "h2", refuses it when the
// listener has disable_http11 and the client did not select h2, and
// reports whether the connection is done with (false: serve HTTP/1.1).
func (s *session) alpnH2(tc *tls.Conn) bool {
	cfg := s.srv.cfg.Load()
	if tc.ConnectionState().NegotiatedProtocol != "h2" {
		if cfg.DisableHTTP11 {
			s.srv.opt.Log.Debugf("%v: no h2 in ALPN and disable_http11 is set: connection closed", tc.RemoteAddr())
			return true
		}
		return false
	}
	lim := cfg.H2
	if lim.ReadTimeout == 0 {
		lim.ReadTimeout = cfg.FrontTimeout
	}
	b := &h2Bridge{parent: s}
	c := h2.NewConn(tc, lim, b, &h2.Options{Stats: &s.srv.H2Stats})
	s.h2c.Store(c)
	if s.srv.draining.Load() {
		c.Shutdown()
	}
	if err := c.Serve(); err != nil {
		s.srv.opt.Log.Debugf("HTTP/2 connection from %v: %v", tc.RemoteAddr(), err)
	}
	s.h2c.Store(nil)
	// Serve does not wait for the stream handlers: the connection's session
	// (and its count in Server.wg, which stream sessions join) ends after
	// the last of them.
	b.mu.Lock()
	b.closed = true
	b.mu.Unlock()
	b.wg.Wait()
	return true
}

// h2Bridge serves the streams of one HTTP/2 connection.
type h2Bridge struct {
	parent *session // the connection's session: its peer address and SNI

	mu     sync.Mutex
	closed bool           // the connection is over: no stream starts
	wg     sync.WaitGroup // stream handlers running
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

// streamConn is the session side of a stream's pipe; it reports the
// client connection's addresses.
type streamConn struct {
	net.Conn
	local, remote net.Addr
}

func (c *streamConn) LocalAddr() net.Addr  { return c.local }
func (c *streamConn) RemoteAddr() net.Addr { return c.remote }

var h2BufPool = sync.Pool{New: func() any { b := make([]byte, bufSize); return &b }}

// ServeStream converts st to an HTTP/1.1 request, has a stream session
// serve it, and converts the response back.
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
	bp := h2BufPool.Get().(*[]byte)
	defer h2BufPool.Put(bp)
	buf := *bp
	chunked := st.HasBody() && st.ContentLength() < 0
	head, ok := appendH1Head(buf[:0], st.Method(), st.Path(), st.Authority(), st.Header(), chunked)
	if !ok {
		st.Reset(http2.ErrCodeProtocol) // RFC 9113 §8.1.1: malformed
		return
	}
	if len(head) > bufSize-4<<10 {
		st.WriteHeader(http1.StatusRequestHeaderFieldsTooLarge, nil)
		st.Close()
		return
	}
	p := b.parent
	srv := p.srv
	cli, end := net.Pipe()
	ss := newSession(srv, &streamConn{Conn: end, local: p.conn.LocalAddr(), remote: p.conn.RemoteAddr()})
	ss.h2b = b
	if p.peerAddr.IsValid() {
		ss.setPeer(p.peerAddr)
	}
	ss.sessID, ss.client = p.sessID, p.client // one session in the access log
	ss.sni = append(ss.sni[:0], p.sni...)
	ss.w = copy(ss.buf, head)
	srv.mu.Lock()
	srv.sessions[ss] = struct{}{}
	srv.wg.Add(1)
	srv.mu.Unlock()
	// The stream's session may outlive this handler (a reset stream ends
	// the handler first): the connection waits for it too, before its
	// session gives back the per-IP slots the stream may be reading.
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		ss.runStream()
	}()

	stDone := st.Done()
	done := make(chan struct{})
	defer close(done)
	defer cli.Close()
	go func() {
		// A reset stream or a dead connection abandons the exchange: the
		// session sees its client gone and drops its backend connection.
		select {
		case <-stDone:
			cli.Close()
		case <-done:
		}
	}()
	if st.HasBody() {
		// The copier uses st: it must end before ServeStream returns.
		copied := make(chan struct{})
		go func() {
			defer close(copied)
			copyH2Body(st, cli, chunked)
		}()
		defer func() {
			st.StopReading()
			<-copied
		}()
	}
	writeH2Response(st, cli, buf, st.Method())
}

// runStream serves the one request a stream session was given (its head
// already in buf), then ends.
func (s *session) runStream() {
	defer s.finish()
	cfg := s.srv.cfg.Load()
	if n := s.readHead(cfg); n > 0 {
		s.serve(cfg, n)
	}
	s.logRequest(cfg)
}

// appendH1Head appends the HTTP/1.1 head of an HTTP/2 request: the
// request line from :method and :path (:authority for CONNECT), Host from
// :authority, the regular fields (pseudo-headers and host skipped) with
// cookie crumbs joined by "; " (RFC 9113 §8.2.3), "Transfer-Encoding:
// chunked" when a body comes without content-length, and "Connection:
// close" (one request per stream session). It reports false for a request
// that cannot be written as HTTP/1.1 without ambiguity: a method or field
// name that is not a token, a target or authority with spaces or controls,
// a field value with CR, LF or NUL (h2 refuses these first; this keeps the
// conversion safe on its own).
func appendH1Head(dst, method, path, authority []byte, fields []h2.HeaderField, chunked bool) ([]byte, bool) {
	target := path
	if string(method) == "CONNECT" {
		target = authority
	}
	if !http1.IsToken(method) || len(target) == 0 || !visible(target) || !visible(authority) {
		return dst, false
	}
	for _, f := range fields {
		if len(f.Name) > 0 && f.Name[0] == ':' {
			continue
		}
		if !http1.IsToken(f.Name) || bytes.ContainsAny(f.Value, "\r\n\x00") {
			return dst, false
		}
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
	dst = append(dst, "connection: close\r\n\r\n"...)
	return dst, true
}

func appendFieldLine(dst, name, value []byte) []byte {
	dst = append(dst, name...)
	dst = append(dst, ": "...)
	dst = append(dst, value...)
	return append(dst, "\r\n"...)
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

// copyH2Body copies the request body of st into the session's pipe, as is
// (content-length, which h2 checks against DATA) or chunked, with the
// request trailers. A reset stream closes the pipe, which fails the
// session's request.
func copyH2Body(st *h2.Stream, w net.Conn, chunked bool) {
	var buf [16 << 10]byte
	out := make([]byte, 0, 64)
	for {
		n, err := st.Read(buf[:])
		if n > 0 {
			var werr error
			if chunked {
				out = http1.AppendChunkHeader(out[:0], uint64(n))
				if _, werr = w.Write(out); werr == nil {
					_, werr = w.Write(append(buf[:n:n], '\r', '\n'))
				}
			} else {
				_, werr = w.Write(buf[:n])
			}
			if werr != nil {
				return
			}
		}
		if err == io.EOF {
			if chunked {
				var tr []http1.Field
				for _, f := range st.Trailer() {
					tr = append(tr, http1.Field{Name: f.Name, Value: f.Value})
				}
				w.Write(http1.AppendLastChunk(out[:0], tr))
			}
			return
		}
		if err != nil {
			w.Close()
			return
		}
	}
}

// writeH2Response reads the session's HTTP/1.1 response from r (interim
// responses skipped) and writes it to st: status, fields in HTTP/2 form
// (h2 drops connection-specific ones), then the body as it comes, with
// the trailers of a chunked one. A response cut short resets the stream.
func writeH2Response(st *h2.Stream, r net.Conn, buf []byte, method []byte) {
	var resp http1.Response
	var scan http1.HeadScanner
	scan.Response = true
	lo, hi := 0, 0
	for {
		scan.Reset()
		n := 0
		for {
			if lo < hi {
				var err error
				if n, err = scan.Scan(buf[lo:hi]); err != nil {
					st.Reset(http2.ErrCodeInternal)
					return
				}
				if n > 0 {
					break
				}
			}
			if hi == len(buf) {
				if lo == 0 {
					st.Reset(http2.ErrCodeInternal)
					return
				}
				hi = copy(buf, buf[lo:hi])
				lo = 0
			}
			m, err := r.Read(buf[hi:])
			hi += m
			if m == 0 && err != nil {
				// No response: the session ended without one (its client
				// gone, or the worker stopping); the request was not served.
				st.Reset(http2.ErrCodeRefusedStream)
				return
			}
		}
		if err := http1.ParseResponse(&resp, buf[lo:lo+n], method, nil); err != nil {
			st.Reset(http2.ErrCodeInternal)
			return
		}
		lo += n
		if resp.Status >= 200 {
			break
		}
	}
	fields := make([]h2.HeaderField, 0, len(resp.Fields))
	for _, f := range resp.Fields {
		if isConnectionToken(&resp, f.Name) {
			continue
		}
		fields = append(fields, h2.HeaderField{Name: f.Name, Value: f.Value})
	}
	if st.WriteHeader(resp.Status, fields) != nil {
		return
	}
	// The fields were copied: the head's bytes may be overwritten.
	switch resp.Body {
	case http1.BodyNone:
		st.Close()
	case http1.BodyLength:
		left := resp.ContentLength
		for left > 0 {
			if lo == hi {
				lo, hi = 0, 0
				m, err := r.Read(buf)
				if m == 0 && err != nil {
					st.Reset(http2.ErrCodeInternal)
					return
				}
				hi = m
			}
			k := int(min(int64(hi-lo), left))
			if _, err := st.Write(buf[lo : lo+k]); err != nil {
				return
			}
			lo += k
			left -= int64(k)
		}
		st.Close()
	case http1.BodyChunked:
		var dec http1.ChunkedDecoder
		dec.Response = true
		dec.Reset()
		for !dec.Done() {
			if lo == hi {
				lo, hi = 0, 0
				m, err := r.Read(buf)
				if m == 0 && err != nil {
					st.Reset(http2.ErrCodeInternal)
					return
				}
				hi = m
			}
			data, n, err := dec.Feed(buf[lo:hi])
			if err != nil {
				st.Reset(http2.ErrCodeInternal)
				return
			}
			lo += n
			if len(data) > 0 {
				if _, err := st.Write(data); err != nil {
					return
				}
			}
		}
		if tr := dec.Trailers(); len(tr) > 0 {
			out := make([]h2.HeaderField, 0, len(tr))
			for _, f := range tr {
				out = append(out, h2.HeaderField{Name: f.Name, Value: f.Value})
			}
			st.WriteTrailers(out)
			return
		}
		st.Close()
	default: // until close (a tunnel, or a close-delimited body)
		if lo < hi {
			if _, err := st.Write(buf[lo:hi]); err != nil {
				return
			}
		}
		for {
			m, err := r.Read(buf)
			if m > 0 {
				if _, werr := st.Write(buf[:m]); werr != nil {
					return
				}
			}
			if err != nil {
				if errors.Is(err, io.EOF) {
					st.Close()
				} else {
					st.Reset(http2.ErrCodeInternal)
				}
				return
			}
		}
	}
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
