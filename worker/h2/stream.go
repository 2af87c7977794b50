package h2

import (
	"io"
	"sync"
	"time"

	"golang.org/x/net/http2"
)

// Handler serves one request stream. ServeStream runs in its own goroutine
// per stream; it must not use s after it returns. Returning without closing
// the response ends it: status 200 with no body if nothing was written,
// END_STREAM otherwise. Unread request body is discarded and, if the peer
// is still sending, the stream is closed with RST_STREAM(NO_ERROR).
type Handler interface {
	ServeStream(s *Stream)
}

// ResetObserver is implemented by a Handler that wants to know when a
// stream is reset, by either side, or its connection dies while the
// stream's handler runs: a handler blocked on work of its own (a backend)
// can then abandon it, and a reset stream costs no more than it took so
// far (rapid reset, CVE-2023-44487; MadeYouReset, CVE-2025-8671).
// StreamReset runs at most once per stream, in a goroutine of its own; it
// may run after ServeStream returned, so it must find what it cancels by
// the stream id (unique on its connection), not keep the *Stream.
type ResetObserver interface {
	StreamReset(id uint32)
}

// MalformedObserver is implemented by a Handler that wants to know of the
// requests the connection refuses as malformed (RFC 9113 §8.1.1: reset
// with PROTOCOL_ERROR, no handler runs), to log them. StreamMalformed runs
// on the connection's reader, with its lock held: it must not block nor
// call back into the connection. fields (the decoded head, pseudo-headers
// included, as the peer sent it) are valid only during the call.
type MalformedObserver interface {
	StreamMalformed(id uint32, fields []HeaderField, reason string)
}

// HandlerFunc adapts a function to Handler.
type HandlerFunc func(s *Stream)

// ServeStream calls f(s).
func (f HandlerFunc) ServeStream(s *Stream) { f(s) }

// outMax bounds response bytes buffered per stream between Write and the
// connection's writer.
const outMax = 32 << 10

// outBufs holds the streams' output buffers (outMax each). A stream takes
// one with its first body bytes and gives it back when it ends, or when it
// waits in WaitRoom with nothing queued: a stream whose client stopped
// reading then holds none.
var outBufs = sync.Pool{New: func() any { b := make([]byte, 0, outMax); return &b }}

// Stream is one HTTP/2 request/response exchange. The request accessors
// return data owned by the stream, valid until ServeStream returns. Read is
// for one goroutine at a time; the response methods (WriteHeader, Write,
// WriteTrailers, Close) likewise; Read may run concurrently with them, and
// Reset and Done are safe from any goroutine while ServeStream runs.
type Stream struct {
	c  *Conn
	id uint32

	// Request head: written by the connection's reader before the handler
	// starts, immutable afterwards.
	req   request
	arena []byte
	refs  []fieldRef
	hdrs  []HeaderField

	// Everything below is guarded by c.mu.
	canRead, canWrite sync.Cond
	inMap             bool // in c.streams: not yet closed at protocol level
	handlerDone       bool
	inReady           bool      // in the writer's ready queue
	remoteClosed      bool      // END_STREAM received
	localClosed       bool      // END_STREAM sent
	discard           bool      // handler gone: drop incoming DATA
	lingerUntil       time.Time // response complete, the peer still sending: RST_STREAM(NO_ERROR) then (lingerLocked)
	readStopped       bool      // StopReading: Read fails
	reset             *StreamError
	done              chan struct{}
	lastActivity      time.Time

	trArena  []byte
	trRefs   []fieldRef
	trailers []HeaderField

	rbuf        []byte
	roff        int
	recvWindow  int64
	recvUnacked int64
	recvLen     int64

	sendWindow int64
	status     int
	hdrQueued  bool
	hdrSent    bool
	respArena  []byte
	respRefs   []fieldRef
	out        []byte  // queued body bytes: out[outHead:]
	outp       *[]byte // the pooled buffer out is in; nil when out is nil
	outHead    int
	endQueued  bool
	trQueued   bool
	rtArena    []byte
	rtRefs     []fieldRef
	imStatus   int // an interim (1xx) head queued, not sent yet; 0 for none
	imArena    []byte
	imRefs     []fieldRef

	rdl, wdl     time.Time        // Read and Write deadlines (deadline.go); zero for none
	waitingRead  bool             // a Read waits on canRead
	waitingWrite bool             // a Write waits on canWrite
	notified     bool             // the ResetObserver was told of the reset
	dl           *streamDeadlines // the deadlines' timers, kept across reuse
}

var streamPool = sync.Pool{New: func() any { return new(Stream) }}

func (c *Conn) acquireStream(id uint32, now time.Time) *Stream {
	s := streamPool.Get().(*Stream)
	s.c = c
	s.id = id
	s.canRead.L = &c.mu
	s.canWrite.L = &c.mu
	s.recvWindow = int64(c.lim.InitialStreamWindow)
	s.sendWindow = c.peerInitWindow
	s.lastActivity = now
	return s
}

// release returns s to the pool. Called with c.mu held once s is out of the
// stream table, out of the ready queue and its handler has returned.
func (s *Stream) release() {
	s.unqueueLocked()
	s.dropOutLocked()
	const keep = 64 << 10
	// The request's head and trailers go to the connection's next header
	// block (endHeaderBlock): the bounds of the arrays it keeps.
	*s = Stream{
		arena:     reuse(s.arena, keptArena),
		refs:      reuse(s.refs, keptFields),
		hdrs:      reuse(clearFields(s.hdrs), keptFields),
		trArena:   reuse(s.trArena, keptArena),
		trRefs:    reuse(s.trRefs, keptFields),
		trailers:  reuse(clearFields(s.trailers), keptFields),
		rbuf:      reuse(s.rbuf, keep),
		respArena: reuse(s.respArena, keep),
		respRefs:  s.respRefs[:0],
		rtArena:   reuse(s.rtArena, keep),
		rtRefs:    s.rtRefs[:0],
		imArena:   reuse(s.imArena, keep),
		imRefs:    s.imRefs[:0],
		dl:        s.dl,
	}
	streamPool.Put(s)
}

// reuse returns s emptied for its next use, or nil when its capacity is
// over max: a large array is left to the collector, not kept by a pooled
// object for requests that do not need it.
func reuse[S ~[]E, E any](s S, max int) S {
	if cap(s) > max {
		return nil
	}
	return s[:0]
}

// clearFields empties f, its fields zeroed so that the pool keeps no
// pointer into a request's bytes.
func clearFields(f []HeaderField) []HeaderField {
	clear(f)
	return f[:0]
}

// ID returns the stream identifier.
func (s *Stream) ID() uint32 { return s.id }

// Method returns the :method pseudo-header.
func (s *Stream) Method() []byte { return s.req.method }

// Scheme returns :scheme; empty for CONNECT.
func (s *Stream) Scheme() []byte { return s.req.scheme }

// Authority returns :authority, or the Host field when :authority is absent.
func (s *Stream) Authority() []byte { return s.req.authority }

// Path returns :path; empty for CONNECT.
func (s *Stream) Path() []byte { return s.req.path }

// Header returns the regular request fields in arrival order, validated per
// RFC 9113 §8.2 (lower-case names, no connection-specific fields, TE only
// "trailers"). Cookie crumbs (RFC 9113 §8.2.3) are left split; a bridge to
// HTTP/1.1 joins them with "; ".
func (s *Stream) Header() []HeaderField { return s.hdrs }

// ContentLength returns the declared content-length, or -1. The connection
// enforces that the DATA received matches it.
func (s *Stream) ContentLength() int64 { return s.req.contentLength }

// HasBody reports whether the request may carry a body: its HEADERS frame
// did not end the stream.
func (s *Stream) HasBody() bool { return !s.req.endStream }

// Trailer returns the request trailers; meaningful once Read returned io.EOF.
func (s *Stream) Trailer() []HeaderField {
	s.c.mu.Lock()
	defer s.c.mu.Unlock()
	return s.trailers
}

// Read reads request body bytes. It returns io.EOF after END_STREAM, a
// *StreamError once the stream is reset, ErrConnClosed once the connection
// is gone. Consumed bytes are returned to the peer as WINDOW_UPDATE credit.
func (s *Stream) Read(p []byte) (int, error) {
	c := s.c
	c.mu.Lock()
	defer c.mu.Unlock()
	for {
		if s.reset != nil {
			return 0, s.reset
		}
		if s.readStopped {
			return 0, ErrReadStopped
		}
		if expired(s.rdl) {
			return 0, errDeadline
		}
		if s.roff < len(s.rbuf) {
			n := copy(p, s.rbuf[s.roff:])
			s.roff += n
			if s.roff == len(s.rbuf) {
				s.rbuf, s.roff = s.rbuf[:0], 0
			}
			c.creditLocked(s, int64(n))
			return n, nil
		}
		if s.remoteClosed {
			return 0, io.EOF
		}
		if c.dead {
			return 0, ErrConnClosed
		}
		if len(p) == 0 {
			return 0, nil
		}
		if !s.rdl.IsZero() {
			s.armLocked(true)
		}
		s.waitingRead = true
		s.canRead.Wait()
		s.waitingRead = false
	}
}

// StopReading makes a pending Read, and every later one, return
// ErrReadStopped, so that a handler whose response is complete can stop a
// goroutine still reading the request body before it returns. The unread
// body is discarded as when the handler returns. Safe from any goroutine
// while ServeStream runs.
func (s *Stream) StopReading() {
	c := s.c
	c.mu.Lock()
	defer c.mu.Unlock()
	s.readStopped = true
	s.canRead.Broadcast()
}

// WriteHeader queues the response head. status must be 200..599 (interim
// responses go by WriteInterim). Field names are lower-cased and
// connection-specific or invalid fields dropped, as HTTP/2 requires; fields
// are copied before WriteHeader returns.
func (s *Stream) WriteHeader(status int, fields []HeaderField) error {
	c := s.c
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := s.writableLocked(); err != nil {
		return err
	}
	if s.hdrQueued || status < 200 || status > 599 {
		return ErrBadResponse
	}
	for _, f := range fields {
		s.respArena, s.respRefs, _ = appendResponseField(s.respArena, s.respRefs, f.Name, f.Value)
	}
	s.status, s.hdrQueued = status, true
	c.enqueueLocked(s)
	return nil
}

// WriteInterim queues an interim response head (RFC 9110 §15.2: 100
// Continue, 103 Early Hints…), which goes out as a HEADERS frame without
// END_STREAM before the final head (RFC 9113 §8.1). status must be 1xx but
// 101 (HTTP/2 has no Upgrade, §8.6), and the final head not queued yet.
// Fields are taken as WriteHeader takes them. One interim head is queued
// at a time: WriteInterim waits, within the write deadline, while the
// previous one is not sent.
func (s *Stream) WriteInterim(status int, fields []HeaderField) error {
	c := s.c
	c.mu.Lock()
	defer c.mu.Unlock()
	if status < 100 || status > 199 || status == 101 {
		return ErrBadResponse
	}
	for {
		if err := s.writableLocked(); err != nil {
			return err
		}
		if s.hdrQueued {
			return ErrBadResponse
		}
		if s.imStatus == 0 {
			break
		}
		if err := s.waitWritableLocked(); err != nil {
			return err
		}
	}
	s.imArena, s.imRefs = s.imArena[:0], s.imRefs[:0]
	for _, f := range fields {
		s.imArena, s.imRefs, _ = appendResponseField(s.imArena, s.imRefs, f.Name, f.Value)
	}
	s.imStatus = status
	c.enqueueLocked(s)
	return nil
}

// AddField stages one response field for the head that the next
// WriteHeader, WriteResponse or Write sends (or the handler's return, when
// none does), in HTTP/2 form as WriteHeader takes its fields (name
// lower-cased; connection-specific or invalid fields dropped, and false
// reported). It copies name and value. Call it only before the head is
// queued, from the goroutine writing the response: the staged fields are
// the stream's alone until a response method takes them, so no lock is
// needed.
func (s *Stream) AddField(name, value []byte) bool {
	if s.hdrQueued {
		return false
	}
	var ok bool
	s.respArena, s.respRefs, ok = appendResponseField(s.respArena, s.respRefs, name, value)
	return ok
}

// WriteResponse queues a whole response at once: the head as WriteHeader
// does, then body, then END_STREAM, under one lock, so that the connection
// sends it in one go. body must fit the stream's output buffer (at most
// 32 KiB); else ErrBadResponse, and nothing is queued.
func (s *Stream) WriteResponse(status int, fields []HeaderField, body []byte) error {
	c := s.c
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := s.writableLocked(); err != nil {
		return err
	}
	noBody := bodyless(s.req.method, status)
	if s.hdrQueued || status < 200 || status > 599 || len(body) > outMax-(len(s.out)-s.outHead) && !noBody {
		return ErrBadResponse
	}
	for _, f := range fields {
		s.respArena, s.respRefs, _ = appendResponseField(s.respArena, s.respRefs, f.Name, f.Value)
	}
	s.status, s.hdrQueued = status, true
	if len(body) > 0 && !noBody {
		s.takeOutLocked()
		s.out = append(s.out, body...)
		c.outQueued += int64(len(body))
		s.lastActivity = c.now()
	}
	s.endQueued = true
	c.enqueueLocked(s)
	c.flushInlineLocked()
	return nil
}

// waitWritableLocked waits, within the write deadline, until the writer
// took some of s's output or s ended (canWrite); errDeadline once the
// deadline passed. c.mu is held.
func (s *Stream) waitWritableLocked() error {
	if expired(s.wdl) {
		return errDeadline
	}
	if !s.wdl.IsZero() {
		s.armLocked(false)
	}
	s.waitingWrite = true
	s.canWrite.Wait()
	s.waitingWrite = false
	return nil
}

func (s *Stream) writableLocked() error {
	switch {
	case s.reset != nil:
		return s.reset
	case s.c.dead:
		return ErrConnClosed
	case s.endQueued:
		return ErrBadResponse
	}
	return nil
}

// Write queues body bytes (implying status 200 if WriteHeader was not
// called); a response without content (to HEAD, a 204, 205 or 304) drops
// them. It copies p and returns once all of it is queued, blocking while
// the stream's buffer is full; the connection sends as the peer's
// flow-control windows and max frame size allow.
func (s *Stream) Write(p []byte) (int, error) {
	c := s.c
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := s.writableLocked(); err != nil {
		return 0, err
	}
	if !s.hdrQueued {
		s.status, s.hdrQueued = 200, true
	}
	if s.bodylessLocked() {
		return len(p), nil // no content in this response: dropped
	}
	n := 0
	for len(p) > 0 {
		if err := s.writableLocked(); err != nil {
			return n, err
		}
		pending := len(s.out) - s.outHead
		room := outMax - pending
		if room <= 0 {
			c.enqueueLocked(s)
			if err := s.waitWritableLocked(); err != nil {
				return n, err
			}
			continue
		}
		k := min(room, len(p))
		s.takeOutLocked()
		if s.outHead > 0 && cap(s.out)-len(s.out) < k {
			copy(s.out, s.out[s.outHead:])
			s.out, s.outHead = s.out[:pending], 0
		}
		s.out = append(s.out, p[:k]...)
		c.outQueued += int64(k)
		p = p[k:]
		n += k
		s.lastActivity = c.now()
		c.enqueueLocked(s)
	}
	return n, nil
}

// bodyless reports whether a response of status to a request of method
// carries no content: one to HEAD (RFC 9110 §9.3.2), a 204, 205 or 304
// (§15.3.5, §15.3.6, §15.4.5). What a handler writes of its body is
// dropped.
func bodyless(method []byte, status int) bool {
	return status == 204 || status == 205 || status == 304 || string(method) == "HEAD"
}

func (s *Stream) bodylessLocked() bool { return bodyless(s.req.method, s.status) }

// Room returns how many body bytes the stream takes now within its peer's
// flow-control window: the room left in its output buffer, capped by its
// send window less what is queued already, and by the connection's send
// window less what all its streams queued; 0 when it takes none (or is
// reset, or its connection gone). A handler that sizes its reads of what
// it relays by Room (and waits in WaitRoom when it is 0) holds, for a
// client that stopped reading, no more than the stream's window: Write
// never blocks on bytes read so. Only the peer's SETTINGS lowering the
// initial window can shrink Room between the call and the Write.
func (s *Stream) Room() int {
	c := s.c
	c.mu.Lock()
	defer c.mu.Unlock()
	return s.roomLocked()
}

func (s *Stream) roomLocked() int {
	if s.writableLocked() != nil {
		return 0
	}
	pending := int64(len(s.out) - s.outHead)
	room := min(outMax, s.sendWindow) - pending
	// The connection window is shared: what all streams queued counts
	// against it, so that a peer granting large stream windows and no
	// connection credit gets no output buffered beyond its window.
	room = min(room, s.c.sendWindow-s.c.outQueued)
	return int(max(room, 0))
}

// unqueueLocked drops s's queued output, unsent, and reports whether there
// was some.
func (s *Stream) unqueueLocked() bool {
	pending := len(s.out) - s.outHead
	s.out, s.outHead = s.out[:0], 0
	if pending > 0 && s.c != nil {
		s.c.outQueued -= int64(pending)
	}
	return pending > 0
}

// WaitRoom waits, within the write deadline, until Room is positive. The
// stream's output buffer goes back to its pool meanwhile when nothing is
// queued in it. It returns nil once there is room, else the stream's
// reset, ErrConnClosed, ErrBadResponse after the end of the response, or
// os.ErrDeadlineExceeded past the write deadline.
func (s *Stream) WaitRoom() error {
	c := s.c
	c.mu.Lock()
	defer c.mu.Unlock()
	for {
		if err := s.writableLocked(); err != nil {
			return err
		}
		if s.roomLocked() > 0 {
			return nil
		}
		s.dropOutLocked()
		if err := s.waitWritableLocked(); err != nil {
			return err
		}
	}
}

// roomGrewLocked wakes a WaitRoom (or Write) of s after its send window
// grew: with nothing queued, no frame the writer sends would.
func (s *Stream) roomGrewLocked() {
	if s.waitingWrite {
		s.canWrite.Signal()
	}
}

// takeOutLocked gives s an output buffer when it has none.
func (s *Stream) takeOutLocked() {
	if s.outp == nil {
		s.outp = outBufs.Get().(*[]byte)
		s.out, s.outHead = (*s.outp)[:0], 0
	}
}

// dropOutLocked gives s's output buffer back to the pool when nothing is
// queued in it.
func (s *Stream) dropOutLocked() {
	if s.outp == nil || len(s.out) > s.outHead {
		return
	}
	if cap(s.out) <= 2*outMax { // else grown past its size: left to the GC
		*s.outp = s.out[:0]
		outBufs.Put(s.outp)
	}
	s.outp, s.out, s.outHead = nil, nil, 0
}

// WriteTrailers queues trailer fields and ends the response.
func (s *Stream) WriteTrailers(fields []HeaderField) error {
	c := s.c
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := s.writableLocked(); err != nil {
		return err
	}
	if !s.hdrQueued {
		s.status, s.hdrQueued = 200, true
	}
	for _, f := range fields {
		s.rtArena, s.rtRefs, _ = appendResponseField(s.rtArena, s.rtRefs, f.Name, f.Value)
	}
	s.trQueued, s.endQueued = true, true
	c.enqueueLocked(s)
	return nil
}

// Close ends the response (END_STREAM), implying status 200 if nothing was
// written. Closing twice is a no-op.
func (s *Stream) Close() error {
	c := s.c
	c.mu.Lock()
	defer c.mu.Unlock()
	if s.endQueued {
		return nil
	}
	if err := s.writableLocked(); err != nil {
		return err
	}
	if !s.hdrQueued {
		s.status, s.hdrQueued = 200, true
	}
	s.endQueued = true
	c.enqueueLocked(s)
	return nil
}

// Reset abandons the stream with RST_STREAM(code); pending output is
// dropped. Resetting a closed stream is a no-op.
func (s *Stream) Reset(code http2.ErrCode) {
	c := s.c
	c.mu.Lock()
	defer c.mu.Unlock()
	if s.reset == nil && s.inMap {
		c.resetStreamLocked(s, code, false, "reset by handler")
	}
}

// Done returns a channel closed when the stream is reset (by either side)
// or the connection dies, so a handler can abandon backend work. The
// channel is allocated on first call.
func (s *Stream) Done() <-chan struct{} {
	c := s.c
	c.mu.Lock()
	defer c.mu.Unlock()
	if s.done == nil {
		s.done = make(chan struct{})
		if s.reset != nil || c.dead {
			close(s.done)
		}
	}
	return s.done
}

// Err returns the stream's reset error, ErrConnClosed, or nil.
func (s *Stream) Err() error {
	c := s.c
	c.mu.Lock()
	defer c.mu.Unlock()
	if s.reset != nil {
		return s.reset
	}
	if c.dead {
		return ErrConnClosed
	}
	return nil
}

// wakeLocked wakes everything waiting on s after a reset or connection death.
func (s *Stream) wakeLocked() {
	s.canRead.Broadcast()
	s.canWrite.Broadcast()
	if obs := s.c.resetObs; obs != nil && !s.handlerDone && !s.notified {
		s.notified = true
		go obs.StreamReset(s.id)
	}
	if s.done != nil {
		select {
		case <-s.done:
		default:
			close(s.done)
		}
	}
}
