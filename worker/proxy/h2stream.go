package proxy

import (
	"errors"
	"io"
	"math"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/net/http2"

	"github.com/sozu-go/sozu/worker/deadline"
	"github.com/sozu-go/sozu/worker/h2"
	"github.com/sozu-go/sozu/worker/http1"
)

// streamConn is the client connection of a stream session: a net.Conn over
// one HTTP/2 stream, with no pipe and no goroutine of its own. The session
// reads the request body from it (as is, or chunked when the request has no
// content-length or announces trailers, as the head given to the session
// says) and writes its
// HTTP/1.1 response into it; Write frames that response incrementally and
// hands it to the stream as HTTP/2: status and fields (the hop-by-hop ones,
// http1.IsHopByHop, and those the head's Connection names dropped), then
// the body as it comes, with the trailers of a chunked
// one. The session may give the head as parsed instead (setHead), then
// write only the body. Interim responses (1xx) go out as HEADERS frames of
// their own before the final head. Closing the connection ends the
// stream: a response cut short resets it (REFUSED_STREAM when nothing was
// answered and the request reached no backend, INTERNAL_ERROR otherwise).
// Nothing is buffered beyond a split response head (at most bufSize) and
// the stream's own bounded output.
//
// Read is for one goroutine at a time (the session's, or its body copier);
// Write for one at a time (the session's, or a tunnel's); Close and the
// deadline setters are safe from any goroutine while the stream's handler
// runs.
type streamConn struct {
	st            *h2.Stream
	local, remote net.Addr
	closed        atomic.Bool
	// forwarded: the request went (or began to go) to a backend; a reset
	// may then no longer say it was not processed (REFUSED_STREAM).
	forwarded atomic.Bool

	// Request side, owned by the reading goroutine.
	chunked bool   // the body is given chunked: no content-length, or trailers announced
	rpend   []byte // chunk framing not read yet
	reof    bool   // the stream's body ended

	// Response side, under wmu.
	wmu    sync.Mutex
	phase  uint8
	method []byte // of the request, for the response's framing
	head   []byte // a response head split across Writes
	scan   http1.HeadScanner
	resp   http1.Response
	left   int64 // body bytes to come in phaseLength
	dec    http1.ChunkedDecoder
	fields []h2.HeaderField
	tr     []h2.HeaderField

	// A head handed over by setHead, held until the first body bytes so
	// that a small body goes out with it: its status (its fields are
	// staged in the stream, Stream.AddField).
	held   bool
	status int
}

// Response phases of a streamConn.
const (
	phaseHead    uint8 = iota // waiting for a (final) response head
	phaseLength               // a Content-Length body: left bytes to come
	phaseChunked              // a chunked body, decoded by dec
	phaseRaw                  // a tunnel or close-delimited body: until Close
	phaseDone                 // the response is complete
)

var (
	errResponseOver = errors.New("h2 stream: response bytes after the end of the response")
	errResponseHead = errors.New("h2 stream: response head too large")
	errShortRead    = errors.New("h2 stream: read buffer too small for a chunk")
)

// writtenHeadLimits are those of the response heads Write scans and
// parses: heads the session writes itself, those of backend responses it
// parsed within the default limits plus the fields it adds (request id,
// HSTS, sticky cookie, the frontend's response edits), and its own answers
// (an operator's template may have any head). They are not a peer's input
// and are already in memory: whatever its size and field count, a head is
// taken, as the HTTP/1.1 client would get it, rather than the stream reset
// for what the proxy added; only a head split across Writes, which Write
// must hold, is bounded (bufSize, errResponseHead). The parsed fields'
// room is sized for the default count (ParseResponse would size it for
// MaxFields), grown only by a head that has more, and given back with the
// streamConn.
var writtenHeadLimits = &http1.Limits{MaxHeadBytes: math.MaxInt32, MaxStartLine: math.MaxInt32, MaxFields: math.MaxInt32}

var streamConnPool = sync.Pool{New: func() any {
	c := &streamConn{}
	c.scan.Response = true
	c.scan.Limits = writtenHeadLimits
	c.resp.Fields = make([]http1.Field, 0, http1.DefaultMaxFields)
	c.dec.Response = true
	return c
}}

// getStreamConn returns a streamConn for st, whose addresses are those of
// the HTTP/2 connection; chunked says whether its Reads frame the body
// as chunked (the request head the session reads says so: ServeStream).
func getStreamConn(st *h2.Stream, local, remote net.Addr, chunked bool) *streamConn {
	c := streamConnPool.Get().(*streamConn)
	c.st, c.local, c.remote = st, local, remote
	c.closed.Store(false)
	c.forwarded.Store(false)
	c.chunked = chunked
	c.rpend, c.reof = c.rpend[:0], false
	c.phase = phaseHead
	c.method = st.Method()
	c.head = c.head[:0]
	c.scan.Reset()
	c.left = 0
	c.held = false
	return c
}

// putStreamConn gives c back once its stream's handler is done with it.
func putStreamConn(c *streamConn) {
	c.st, c.local, c.remote, c.method = nil, nil, nil, nil
	if cap(c.head) > bufSize {
		c.head = nil
	}
	if cap(c.resp.Fields) > http1.DefaultMaxFields {
		c.resp.Fields = make([]http1.Field, 0, http1.DefaultMaxFields)
	}
	clear(c.fields[:cap(c.fields)])
	clear(c.tr[:cap(c.tr)])
	streamConnPool.Put(c)
}

func (c *streamConn) LocalAddr() net.Addr  { return c.local }
func (c *streamConn) RemoteAddr() net.Addr { return c.remote }

func (c *streamConn) SetDeadline(t time.Time) error      { return c.st.SetDeadline(t) }
func (c *streamConn) SetReadDeadline(t time.Time) error  { return c.st.SetReadDeadline(t) }
func (c *streamConn) SetWriteDeadline(t time.Time) error { return c.st.SetWriteDeadline(t) }

// chunkRoom is the room a chunk-size line takes before the data: 16 hex
// digits and CRLF at most.
const chunkRoom = 18

// Read reads the request body, chunked when c.chunked (the request
// trailers in the last chunk). Errors are the stream's: io.EOF at its end,
// os.ErrDeadlineExceeded past the read deadline, others when it is reset,
// its connection gone or c closed.
func (c *streamConn) Read(p []byte) (int, error) {
	if len(c.rpend) > 0 {
		n := copy(p, c.rpend)
		c.rpend = c.rpend[n:]
		return n, nil
	}
	if c.reof {
		return 0, io.EOF
	}
	if !c.chunked {
		return c.st.Read(p)
	}
	if len(p) < chunkRoom+3 {
		return 0, errShortRead
	}
	n, err := c.st.Read(p[chunkRoom : len(p)-2])
	if n > 0 {
		var hb [chunkRoom]byte
		h := http1.AppendChunkHeader(hb[:0], uint64(n))
		k := copy(p, h)
		copy(p[k:], p[chunkRoom:chunkRoom+n])
		return k + n + copy(p[k+n:], "\r\n"), nil
	}
	if err != io.EOF {
		return 0, err
	}
	c.reof = true
	var tr []http1.Field
	for _, f := range c.st.Trailer() {
		tr = append(tr, http1.Field{Name: f.Name, Value: f.Value})
	}
	c.rpend = http1.AppendLastChunk(c.rpend[:0], tr)
	n = copy(p, c.rpend)
	c.rpend = c.rpend[n:]
	return n, nil
}

// Write takes the next bytes of the session's HTTP/1.1 response. A response
// the stream cannot carry (a malformed head or chunked body) resets the
// stream with INTERNAL_ERROR.
func (c *streamConn) Write(p []byte) (int, error) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.closed.Load() {
		return 0, net.ErrClosed
	}
	n := len(p)
	if c.held && len(p) > 0 {
		c.held = false
		if c.phase == phaseLength && int64(len(p)) >= c.left && c.left <= smallBody {
			// The whole small body: one piece with its head.
			c.phase = phaseDone
			err := c.st.WriteResponse(c.status, nil, p[:c.left]) // the fields setHead staged
			p, c.left = p[c.left:], 0
			if err != nil {
				return 0, err
			}
		} else if err := c.st.WriteHeader(c.status, nil); err != nil {
			return 0, err
		}
	}
	for len(p) > 0 {
		switch c.phase {
		case phaseHead:
			used, err := c.writeHead(p)
			if err != nil {
				c.st.Reset(http2.ErrCodeInternal)
				return 0, err
			}
			p = p[used:]
		case phaseLength:
			k := int(min(int64(len(p)), c.left))
			if _, err := c.st.Write(p[:k]); err != nil {
				return 0, err
			}
			p = p[k:]
			if c.left -= int64(k); c.left == 0 {
				c.phase = phaseDone
				if err := c.st.Close(); err != nil {
					return 0, err
				}
			}
		case phaseChunked:
			data, used, err := c.dec.Feed(p)
			if err != nil {
				c.st.Reset(http2.ErrCodeInternal)
				return 0, err
			}
			p = p[used:]
			if len(data) > 0 {
				if _, err := c.st.Write(data); err != nil {
					return 0, err
				}
			}
			if c.dec.Done() {
				c.phase = phaseDone
				if err := c.endChunked(); err != nil {
					return 0, err
				}
			}
		case phaseRaw:
			if _, err := c.st.Write(p); err != nil {
				return 0, err
			}
			p = nil
		default:
			return 0, errResponseOver
		}
	}
	return n, nil
}

// writeHead scans p for the end of the response head (after the part of it
// held in c.head), and once it has it, sends it and enters the body's
// phase. It returns the bytes of p consumed.
func (c *streamConn) writeHead(p []byte) (int, error) {
	buf, prev := p, 0
	if len(c.head) > 0 {
		prev = len(c.head)
		c.head = append(c.head, p...)
		buf = c.head
	}
	n, err := c.scan.Scan(buf)
	if err != nil {
		return 0, err
	}
	if n == 0 {
		if prev == 0 {
			c.head = append(c.head, p...)
		}
		if len(c.head) > bufSize {
			return 0, errResponseHead
		}
		return len(p), nil
	}
	used := n - prev
	resp := &c.resp
	if err := http1.ParseResponse(resp, buf[:n], c.method, writtenHeadLimits); err != nil {
		return 0, err
	}
	// The head's fields alias the session's buffers, which a stream that
	// waits for its window gives back (session.streamRoom): nothing of
	// them is kept past this call.
	defer c.forgetHead()
	// The head may be the proxy's own answer, rendered from an operator's
	// template that keeps fields a backend's response would have lost in
	// the session (TE, Upgrade, Proxy-Connection…): the hop-by-hop fields
	// go, as in setHead, lest the client refuse the stream (RFC 9113
	// §8.2.2).
	fields := c.fields[:0]
	for _, f := range resp.Fields {
		if !http1.IsHopByHop(f.Name) && !isConnectionToken(resp, f.Name) {
			fields = append(fields, h2.HeaderField{Name: f.Name, Value: f.Value})
		}
	}
	c.fields = fields
	if resp.Status < 200 {
		// An interim response (the session forwards those an HTTP/1.1
		// client would get: 100 when the client expects it, 103…): a
		// HEADERS frame of its own before the final head.
		c.head = c.head[:0]
		return used, c.st.WriteInterim(resp.Status, fields)
	}
	rest := p[used:]
	switch {
	case resp.Body == http1.BodyNone:
		// A whole response with no body, or a body already here and small
		// enough: queued at once, to go out in one piece.
		c.phase = phaseDone
		err = c.st.WriteResponse(resp.Status, fields, nil)
		c.head = c.head[:0]
		return used, err
	case resp.Body == http1.BodyLength && resp.ContentLength <= int64(len(rest)) && resp.ContentLength <= smallBody:
		c.phase = phaseDone
		err = c.st.WriteResponse(resp.Status, fields, rest[:resp.ContentLength])
		c.head = c.head[:0]
		return used + int(resp.ContentLength), err
	}
	err = c.st.WriteHeader(resp.Status, fields) // copies the fields
	c.head = c.head[:0]
	if err != nil {
		return 0, err
	}
	switch resp.Body {
	case http1.BodyLength:
		if c.left = resp.ContentLength; c.left == 0 {
			c.phase = phaseDone
			err = c.st.Close()
		} else {
			c.phase = phaseLength
		}
	case http1.BodyChunked:
		c.phase = phaseChunked
		c.dec.Reset()
	default: // a tunnel, or until close
		c.phase = phaseRaw
	}
	return used, err
}

// forgetHead drops what of the response head aliases the bytes written.
func (c *streamConn) forgetHead() {
	c.resp.Detach()
	clear(c.fields)
}

// setHead is the hook by which a stream session gives its response head to
// the stream as parsed (session.streamHead), instead of writing it as
// HTTP/1.1 for Write to scan and parse back. resp must be a final response
// framed by a length, chunked or with no body; the fields sent are those
// http1.AppendResponse would write, then extra. The session's later Writes
// carry the body in HTTP/1.1 framing, as after a written head. The fields
// are staged in the stream as they are (one copy, Stream.AddField); a head
// with a body is held until the first body bytes, so that a small body
// goes out in one piece with it.
func (c *streamConn) setHead(resp *http1.Response, extra []http1.Field) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.closed.Load() {
		return net.ErrClosed
	}
	if c.phase != phaseHead || len(c.head) > 0 {
		return errResponseOver
	}
	for _, f := range resp.Fields {
		if http1.IsHopByHop(f.Name) || equalFoldBytes(f.Name, nameContentLength) || isConnectionToken(resp, f.Name) {
			continue
		}
		c.st.AddField(f.Name, f.Value)
	}
	var num [20]byte
	clen := resp.Body == http1.BodyLength ||
		resp.Body == http1.BodyNone && resp.ContentLength >= 0 && resp.Status != 204
	if clen {
		c.st.AddField(nameContentLength, strconv.AppendInt(num[:0], resp.ContentLength, 10))
	}
	for _, f := range extra {
		c.st.AddField(f.Name, f.Value)
	}
	c.status = resp.Status
	switch {
	case resp.Body == http1.BodyNone || resp.Body == http1.BodyLength && resp.ContentLength == 0:
		c.phase = phaseDone
		return c.st.WriteResponse(resp.Status, nil, nil)
	case resp.Body == http1.BodyLength:
		c.phase, c.left = phaseLength, resp.ContentLength
	default:
		c.phase = phaseChunked
		c.dec.Reset()
	}
	c.held = true
	return nil
}

// sendHeld sends a head held by setHead now, without body bytes: the
// session is about to wait (for the backend's body, or for window), and
// HEADERS are not flow-controlled (RFC 9113 §6.9). A no-op when no head is
// held.
func (c *streamConn) sendHeld() error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if !c.held || c.closed.Load() {
		return nil
	}
	c.held = false
	return c.st.WriteHeader(c.status, nil) // the fields setHead staged
}

// streamHead gives resp's head with extra straight to the stream when s is
// a stream session and the response is one setHead takes: not a tunnel, no
// frontend response lines to add. It reports whether it did; if not, the
// session writes the head as HTTP/1.1. A failure to queue it is the
// stream's (reset, or its connection gone): the session's next Write
// fails the same way.
func (s *session) streamHead(x *exchange, resp *http1.Response, extra []http1.Field) bool {
	if s.h2b == nil || x.http10 || resp.Upgrade || resp.Status < 200 ||
		resp.Body != http1.BodyNone && resp.Body != http1.BodyLength && resp.Body != http1.BodyChunked ||
		x.fe != nil && len(x.fe.Response.FieldLines()) > 0 {
		return false
	}
	sc, ok := s.conn.(*streamConn)
	if !ok {
		return false
	}
	if err := sc.setHead(resp, extra); err != nil {
		s.srv.opt.Log.Debugf("h2 stream: response head: %v", err)
	} else if s.mxOn() || s.lg.on {
		// bytes_out and the access record count a stream's head in its
		// HTTP/1.1 form, as the heads the session writes
		// (docs/metrics.md).
		n := int64(http1.ResponseLen(resp, extra...))
		s.mx.BytesOut += n
		s.lg.bytesOut += n
	}
	return true
}

// streamRoom returns how many response body bytes a session may read from
// its backend next: for a stream session, what its stream takes within the
// client's flow-control window (h2.Stream.Room), after sending a head
// setHead held (s.out was written by readBackend); any number for another
// session. While the stream takes nothing,
// the session waits (within the write timeout) with its backend and output
// buffers given back when nothing is left in them: a stream whose client
// stopped reading holds its read buffer and exchange state, and no more
// response bytes than its window. An error is the stream's (reset,
// connection gone, write timeout) or the flush's.
func (s *session) streamRoom(cfg *Listener) (int, error) {
	if s.h2b == nil {
		return math.MaxInt, nil
	}
	sc, ok := s.conn.(*streamConn)
	if !ok {
		return math.MaxInt, nil
	}
	if err := sc.sendHeld(); err != nil {
		return 0, err
	}
	for {
		if room := sc.st.Room(); room > 0 {
			return room, nil
		}
		parked := s.br == s.bw && s.bbufp != nil
		if parked {
			s.st.resp.Detach() // its head aliases bbuf, sent already
			putBuf(s.bbufp)
			s.bbufp, s.bbuf, s.br, s.bw = nil, nil, 0, 0
			putOut(s.outp, s.out)
			s.outp, s.out = nil, nil
		}
		deadline.Write(s.conn, &s.cwd, s.tick(), cfg.FrontTimeout)
		err := sc.st.WaitRoom()
		if parked {
			s.acquireExchangeBuffers() // the two given back
		}
		if err != nil {
			return 0, err
		}
	}
}

var nameContentLength = []byte("content-length")

// smallBody is the largest body a response head takes along in one
// WriteResponse (h2's output buffer per stream).
const smallBody = 32 << 10

// endChunked ends a chunked response: its trailers, else END_STREAM.
func (c *streamConn) endChunked() error {
	tr := c.dec.Trailers()
	if len(tr) == 0 {
		return c.st.Close()
	}
	out := c.tr[:0]
	for _, f := range tr {
		out = append(out, h2.HeaderField{Name: f.Name, Value: f.Value})
	}
	c.tr = out
	return c.st.WriteTrailers(out)
}

// Close ends the stream's response (see streamConn) and fails pending and
// later Reads. Closing during another goroutine's Write resets the stream.
func (c *streamConn) Close() error {
	if c.closed.Swap(true) {
		return nil
	}
	c.st.StopReading()
	if !c.wmu.TryLock() {
		c.st.Reset(http2.ErrCodeCancel)
		return nil
	}
	defer c.wmu.Unlock()
	switch c.phase {
	case phaseHead:
		// No response: the session ended without one (its client gone,
		// or the worker stopping). REFUSED_STREAM tells the client it may
		// retry (RFC 9113 §8.7), which is true only when the request
		// reached no backend.
		if c.forwarded.Load() {
			c.st.Reset(http2.ErrCodeInternal)
		} else {
			c.st.Reset(http2.ErrCodeRefusedStream)
		}
	case phaseLength, phaseChunked:
		c.st.Reset(http2.ErrCodeInternal)
	case phaseRaw:
		c.st.Close()
	}
	return nil
}

// peerAddr is a connection's address whose String is computed once: the
// streams of an HTTP/2 connection give it to their sessions.
type peerAddr struct {
	net.Addr
	s string
}

func newPeerAddr(a net.Addr) *peerAddr { return &peerAddr{Addr: a, s: a.String()} }

func (a *peerAddr) String() string { return a.s }

// peerReset reports whether s serves an HTTP/2 stream its client reset
// (RST_STREAM) before the stream's end: its record says so.
func (s *session) peerReset() bool {
	sc, ok := s.conn.(*streamConn)
	if !ok {
		return false
	}
	var se *h2.StreamError
	return errors.As(sc.st.Err(), &se) && se.Remote
}
