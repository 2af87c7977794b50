package h2c

import (
	"errors"
	"io"
	"math"
	"net"
	"os"
	"time"

	"golang.org/x/net/http2"

	"github.com/sozu-go/sozu/worker/http1"
)

// stream is one request/response exchange on a backend connection, seen
// as a net.Conn speaking HTTP/1.1: Write takes one request (head, then body
// as Content-Length bytes or chunked, as the proxy's canonical
// serialisation writes it) and sends it as HEADERS and DATA; Read returns
// the response as an HTTP/1.1 message (convert.go). One goroutine may
// Write while another Reads; Close may be called from any goroutine and
// interrupts both. Read and Write report ErrRefused when the backend did
// not process the request (Stream then replays it).
type stream struct {
	c *clientConn

	// Request side, owned by the writer.
	wrote    bool
	head     []byte // request head gathered until complete
	req      http1.Request
	reqState uint8
	reqLeft  int64 // BodyLength: bytes still to send
	dec      http1.ChunkedDecoder

	// Guarded by c.mu.
	id      uint32 // 0 until HEADERS are sent
	method  string
	sendWin int64
	recvWin int64 // what the backend may still send us on this stream
	credit  int64 // consumed, not yet given back in WINDOW_UPDATE
	bufData int64 // DATA bytes in rbuf, credited once rbuf is drained
	rbuf    []byte
	// chunk holds the DATA of a chunked response not yet framed into
	// rbuf: it is framed as one chunk when rbuf drains (or the response
	// ends), so that a backend's tiny DATA frames cost no framing each
	// (a 1-byte frame would take 6 bytes of rbuf, out of the window's
	// reckoning). Its bytes are credited once framed and drained.
	chunk      []byte
	roff       int
	resp       respState
	remoteDone bool // the response is complete in rbuf
	localDone  bool // END_STREAM sent
	wireClosed bool // slot freed
	userClosed bool
	err        error
	readDL     time.Time
	writeDL    time.Time
	rwake      chan struct{}
	wwake      chan struct{}
}

const (
	reqHead uint8 = iota
	reqLength
	reqChunked
	reqDone
)

// maxRequestHead bounds a request head gathered across Writes.
const maxRequestHead = 64 << 10

// headLimits are those of the request heads Write scans and parses: the
// proxy's own serialisation of a request its frontend took within the
// frontend's limits, plus the fields the proxy adds (X-Forwarded-*,
// Forwarded, request ids, the frontend's header edits), which may take it
// past them. The HTTP/1.1 path sends that head as it is; a stream takes it
// too, bounded only by maxRequestHead.
var headLimits = &http1.Limits{MaxHeadBytes: maxRequestHead, MaxStartLine: maxRequestHead, MaxFields: math.MaxInt32}

// newStream is called with c.mu held.
func newStream(c *clientConn) *stream {
	return &stream{c: c, rwake: make(chan struct{}, 1), wwake: make(chan struct{}, 1),
		recvWin: int64(c.p.opt.StreamWindow), resp: respState{cl: -1}}
}

// wake tells a blocked Read and Write to look again.
func (s *stream) wake() {
	select {
	case s.rwake <- struct{}{}:
	default:
	}
	select {
	case s.wwake <- struct{}{}:
	default:
	}
}

// failLocked records the stream's terminal error (the first one wins).
func (s *stream) failLocked(err error) {
	if s.err == nil {
		s.err = err
	}
}

// wait blocks until ch fires or dl passes; it returns false on the latter.
func wait(ch chan struct{}, dl time.Time) bool {
	if dl.IsZero() {
		<-ch
		return true
	}
	d := time.Until(dl)
	if d <= 0 {
		return false
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ch:
		return true
	case <-t.C:
		return false
	}
}

// Read returns response bytes in HTTP/1.1 form. It gives back the
// stream's flow-control window as rbuf is drained, so a reader that stops
// stops the backend within one window.
func (s *stream) Read(p []byte) (int, error) {
	c := s.c
	for {
		c.mu.Lock()
		if s.roff == len(s.rbuf) && len(s.chunk) > 0 {
			s.frameChunkLocked()
		}
		if s.roff < len(s.rbuf) {
			n := copy(p, s.rbuf[s.roff:])
			s.roff += n
			var credit int64
			if s.roff == len(s.rbuf) {
				s.rbuf, s.roff = s.rbuf[:0], 0
				s.credit += s.bufData
				s.bufData = 0
				if !s.remoteDone && s.err == nil && !s.wireClosed && s.credit >= int64(c.p.opt.StreamWindow)/4 {
					credit, s.credit = s.credit, 0
					s.recvWin += credit
				}
			}
			id := s.id
			c.mu.Unlock()
			if credit > 0 {
				c.write(func() error { return c.fr.WriteWindowUpdate(id, uint32(credit)) })
			}
			return n, nil
		}
		switch {
		case s.err != nil:
			err := s.err
			c.mu.Unlock()
			return 0, err
		case s.remoteDone:
			c.mu.Unlock()
			return 0, io.EOF
		case s.userClosed:
			c.mu.Unlock()
			return 0, net.ErrClosed
		case !s.readDL.IsZero() && !time.Now().Before(s.readDL):
			c.mu.Unlock()
			c.probe() // a backend that stopped answering altogether is dropped
			return 0, os.ErrDeadlineExceeded
		}
		dl := s.readDL
		c.mu.Unlock()
		wait(s.rwake, dl)
	}
}

// Write takes the next bytes of the request. Its first call must hold the
// complete head (the proxy writes it in one call). An error on that first
// call means the request was not sent (it may be sent again elsewhere);
// once HEADERS are out, a failure is reported by Read instead, as a reset
// TCP connection would be.
func (s *stream) Write(p []byte) (int, error) {
	first := !s.wrote
	s.wrote = true
	n, err := s.write(p)
	if err != nil {
		s.c.mu.Lock()
		refused, sent := errors.Is(s.err, ErrRefused), s.id != 0
		s.c.mu.Unlock()
		switch {
		case refused:
			// Whatever failed the write (often the socket the backend
			// closed after its GOAWAY), the backend did not process it.
			return 0, ErrRefused
		case first && sent:
			return len(p), nil
		}
	}
	return n, err
}

func (s *stream) write(p []byte) (int, error) {
	total := len(p)
	if s.reqState == reqHead {
		s.head = append(s.head, p...)
		n, err := http1.FindRequestHead(s.head, headLimits)
		if err != nil {
			return 0, err
		}
		if n == 0 {
			if len(s.head) > maxRequestHead {
				return 0, errors.New("h2c: request head too large")
			}
			return total, nil
		}
		if err := http1.ParseRequest(&s.req, s.head[:n], headLimits); err != nil {
			return 0, err
		}
		fields, err := requestFields(&s.req)
		if err != nil {
			return 0, err
		}
		end := false
		switch s.req.Body {
		case http1.BodyLength:
			s.reqState, s.reqLeft = reqLength, s.req.ContentLength
			end = s.reqLeft == 0
		case http1.BodyChunked:
			s.reqState = reqChunked
			s.dec.Reset()
		default:
			end = true
		}
		if end {
			s.reqState = reqDone
		}
		if err := s.sendHeaders(fields, end, string(s.req.Method)); err != nil {
			return 0, err
		}
		p = s.head[n:]
		if len(p) == 0 {
			return total, nil
		}
	}
	switch s.reqState {
	case reqLength:
		if int64(len(p)) > s.reqLeft {
			return 0, errors.New("h2c: bytes after the request body")
		}
		s.reqLeft -= int64(len(p))
		end := s.reqLeft == 0
		if end {
			s.reqState = reqDone
		}
		if err := s.sendData(p, end); err != nil {
			return 0, err
		}
	case reqChunked:
		for len(p) > 0 && !s.dec.Done() {
			data, n, err := s.dec.Feed(p)
			if err != nil {
				return 0, err
			}
			p = p[n:]
			if len(data) > 0 {
				if err := s.sendData(data, false); err != nil {
					return 0, err
				}
			}
		}
		if s.dec.Done() {
			s.reqState = reqDone
			if err := s.sendEnd(s.dec.Trailers()); err != nil {
				return 0, err
			}
		}
		if len(p) > 0 {
			return 0, errors.New("h2c: bytes after the request body")
		}
	default:
		return 0, errors.New("h2c: bytes after the request")
	}
	return total, nil
}

// lockWrite takes the connection's write lock, waiting no longer than the
// stream's write deadline (a write stuck on a backend that stopped reading
// holds it up to Options.WriteTimeout). It reports whether it took it.
func (s *stream) lockWrite() bool {
	s.c.mu.Lock()
	dl := s.writeDL
	s.c.mu.Unlock()
	return s.c.wmu.LockBefore(dl)
}

// sendHeaders opens the stream: an id, then HEADERS (and CONTINUATION).
// Stream ids go out in order since they are taken under wmu.
func (s *stream) sendHeaders(fields []headerField, end bool, method string) error {
	c := s.c
	exhausted := false // c gave out its last stream id: out of the pool
	defer func() {     // after wmu is unlocked (lock order)
		if exhausted {
			c.p.remove(c)
		}
	}()
	if !s.lockWrite() {
		// Another stream's write is stuck on a backend that stopped
		// reading: this request was not sent. The connection takes no
		// new stream (its own finish; it closes once they have), so
		// that the replay (Stream) goes to another one.
		c.mu.Lock()
		c.goAway = true
		c.mu.Unlock()
		c.p.remove(c)
		return ErrRefused
	}
	defer c.wmu.Unlock()
	if c.werr != nil {
		return ErrRefused
	}
	c.mu.Lock()
	if s.userClosed {
		c.mu.Unlock()
		return net.ErrClosed
	}
	if c.dead || c.goAway || s.err != nil {
		s.failLocked(ErrRefused)
		c.mu.Unlock()
		return ErrRefused
	}
	s.id = c.nextID
	c.nextID += 2
	if c.nextID > 1<<31-1 {
		// No id left (RFC 9113 §5.1.1): the streams reserved beside this
		// one are refused, and sent again on another connection.
		c.goAway, exhausted = true, true
	}
	c.streams[s.id] = s
	s.method = method
	s.sendWin += c.peerWindow
	s.localDone = end
	maxFrame := int(c.peerMaxFrame)
	c.mu.Unlock()

	c.hbuf.Reset()
	for _, f := range fields {
		c.henc.WriteField(f.hpack())
	}
	block := c.hbuf.Bytes()
	c.nc.SetWriteDeadline(time.Now().Add(c.p.opt.WriteTimeout))
	frag := block[:min(len(block), maxFrame)]
	err := c.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: s.id, BlockFragment: frag,
		EndStream: end, EndHeaders: len(frag) == len(block)})
	for block = block[len(frag):]; err == nil && len(block) > 0; block = block[len(frag):] {
		frag = block[:min(len(block), maxFrame)]
		err = c.fr.WriteContinuation(s.id, len(frag) == len(block), frag)
	}
	if err == nil {
		err = c.bw.Flush()
	}
	if err != nil {
		c.werr = err
		go c.fail(err, 0)
		return err
	}
	return nil
}

// sendData sends data within the flow-control windows, waiting (up to the
// write deadline) for WINDOW_UPDATEs and for wmu; end sets END_STREAM on
// the last frame. The windows are debited under wmu, by the write that
// spends them.
func (s *stream) sendData(data []byte, end bool) error {
	c := s.c
	for {
		if !s.lockWrite() {
			return os.ErrDeadlineExceeded
		}
		c.mu.Lock()
		if err := s.writableLocked(); err != nil {
			c.mu.Unlock()
			c.wmu.Unlock()
			return err
		}
		avail := max(0, min(s.sendWin, c.sendWin, int64(c.peerMaxFrame), int64(len(data))))
		if avail == 0 && len(data) > 0 {
			dl := s.writeDL
			c.mu.Unlock()
			c.wmu.Unlock()
			if !dl.IsZero() && !time.Now().Before(dl) {
				return os.ErrDeadlineExceeded
			}
			wait(s.wwake, dl)
			continue
		}
		s.sendWin -= avail
		c.sendWin -= avail
		last := end && int(avail) == len(data)
		if last {
			s.localDone = true
		}
		done := last && s.remoteDone
		if done {
			c.closeWireLocked(s)
		}
		id := s.id
		c.mu.Unlock()
		chunk := data[:avail]
		err := c.writeLocked(func() error { return c.fr.WriteData(id, last, chunk) })
		c.wmu.Unlock()
		if err != nil {
			return err
		}
		if done {
			c.released()
		}
		data = data[avail:]
		if len(data) == 0 {
			return nil
		}
	}
}

// sendEnd ends the request: trailers in a HEADERS frame, or an empty DATA.
func (s *stream) sendEnd(trailers []http1.Field) error {
	fields := trailerFields(trailers)
	if len(fields) == 0 {
		return s.sendData(nil, true)
	}
	c := s.c
	if !s.lockWrite() {
		return os.ErrDeadlineExceeded
	}
	c.mu.Lock()
	if err := s.writableLocked(); err != nil {
		c.mu.Unlock()
		c.wmu.Unlock()
		return err
	}
	s.localDone = true
	done := s.remoteDone
	if done {
		c.closeWireLocked(s)
	}
	id := s.id
	c.mu.Unlock()
	err := c.writeLocked(func() error {
		c.hbuf.Reset()
		for _, f := range fields {
			c.henc.WriteField(f.hpack())
		}
		block := c.hbuf.Bytes()
		if len(block) > int(c.peerMaxFrame) {
			return errors.New("h2c: request trailers larger than one frame")
		}
		return c.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: block, EndStream: true, EndHeaders: true})
	})
	c.wmu.Unlock()
	if done {
		c.released()
	}
	return err
}

func (s *stream) writableLocked() error {
	switch {
	case s.userClosed:
		return net.ErrClosed
	case s.err != nil:
		return s.err
	case s.wireClosed || s.localDone:
		return errors.New("h2c: stream closed for writing")
	}
	return nil
}

// Close ends the stream: one not finished on the wire is reset
// (RST_STREAM CANCEL), its slot freed. Idempotent.
func (s *stream) Close() error {
	c := s.c
	c.mu.Lock()
	if s.userClosed {
		c.mu.Unlock()
		return nil
	}
	s.userClosed = true
	rst := s.id != 0 && !s.wireClosed
	freed := !s.wireClosed
	if rst {
		c.unmapLocked(s) // its slot is freed once the RST_STREAM is out
	} else {
		c.closeWireLocked(s)
	}
	id := s.id
	c.mu.Unlock()
	s.wake()
	if rst {
		c.cancelStream(id)
	} else if freed {
		c.released()
	}
	return nil
}

// responded reports whether any response byte came.
func (s *stream) responded() bool {
	s.c.mu.Lock()
	defer s.c.mu.Unlock()
	return s.resp.any
}

// SetReadDeadline bounds Read (os.ErrDeadlineExceeded past it), also while
// it waits.
func (s *stream) SetReadDeadline(t time.Time) error {
	s.c.mu.Lock()
	s.readDL = t
	s.c.mu.Unlock()
	s.wake()
	return nil
}

// SetWriteDeadline bounds Write's wait for flow-control window.
func (s *stream) SetWriteDeadline(t time.Time) error {
	s.c.mu.Lock()
	s.writeDL = t
	s.c.mu.Unlock()
	s.wake()
	return nil
}
