package proxy

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/sozu-go/sozu/worker/backends"
	"github.com/sozu-go/sozu/worker/deadline"
	"github.com/sozu-go/sozu/worker/http1"
	"github.com/sozu-go/sozu/worker/relay"
)

// bodyResult is how the request body copier ended.
type bodyResult struct {
	err        error // nil: the whole body reached the backend
	status     int   // a fault of the client to answer: 400 (framing), 408 (too slow), 413 (too large)
	clientGone bool  // the client closed or reset its connection
	aborted    bool  // the session goroutine interrupted the copier
}

// flushAt is the output size from which a body's bytes are written out.
const flushAt = bufSize

// copyBody runs on its own goroutine while the session goroutine waits for
// the response: it streams the rest of the request body from the client to
// bc (remaining bytes for a Content-Length body; for a chunked one, until
// s.st.dec is done, remaining counting the bytes received so far). It owns
// buf, r, w, dec and bout until it has sent its result on copyDone; on a
// failure it then closes bc, which wakes the session goroutine.
func (s *session) copyBody(cfg *Listener, bc *backends.Conn, chunked bool, remaining int64) {
	var res bodyResult
	defer func() {
		if p := recover(); p != nil {
			s.srv.Panics.Add(1)
			res = bodyResult{err: fmt.Errorf("panic copying a request body: %v", p)}
		}
		s.copyDone <- res
		if res.err != nil {
			bc.Conn.Close()
		}
	}()
	if chunked && s.boutp == nil {
		s.boutp = getOut()
		s.bout = (*s.boutp)[:0]
	}
	for {
		if chunked && s.st.dec.Done() || !chunked && remaining == 0 {
			return
		}
		if s.r == s.w {
			if !chunked && remaining >= spliceMin {
				if client, backend, ok := s.spliceEnds(bc); ok {
					var spliced bool
					if res, spliced = s.spliceRequest(cfg, bc, client, backend, remaining); spliced {
						return
					}
				}
			}
			s.r, s.w = 0, 0
			deadline.Read(s.conn, &s.crd, time.Now(), cfg.RequestTimeout)
			n, err := s.conn.Read(s.buf)
			s.idle.noteRead(n, len(s.buf), err)
			s.lg.bytesIn += int64(n)
			s.mx.BytesIn += int64(n)
			if n == 0 {
				res = clientReadFault(err)
				return
			}
			s.w = n
		}
		var data []byte
		if chunked {
			var used int
			var err error
			s.bout, used, err = s.st.dec.Reencode(s.bout[:0], s.buf[s.r:s.w])
			s.r += used
			if err != nil {
				res = bodyResult{err: err, status: http1.StatusBadRequest}
				return
			}
			if remaining += int64(used); cfg.MaxBody > 0 && remaining > cfg.MaxBody {
				res = bodyResult{err: errors.New("request body too large"), status: 413}
				return
			}
			data = s.bout
			if s.st.dec.Done() {
				s.bodyComplete.Store(true)
			}
		} else {
			take := min(remaining, int64(s.w-s.r))
			data = s.buf[s.r : s.r+int(take)]
			s.r += int(take)
			if remaining -= take; remaining == 0 {
				s.bodyComplete.Store(true)
			}
		}
		if len(data) > 0 {
			deadline.Write(bc, &bc.WriteDL, time.Now(), cfg.BackTimeout)
			if _, err := bc.Write(data); err != nil {
				res = bodyResult{err: err}
				return
			}
			s.bodyWrote.Store(time.Now().UnixNano())
		}
	}
}

func clientReadFault(err error) bodyResult {
	if err == nil {
		err = io.ErrNoProgress
	}
	if isTimeout(err) {
		return bodyResult{err: err, status: 408}
	}
	return bodyResult{err: err, clientGone: true}
}

// Ways of forwarding a response body.
const (
	bodyPlain      = iota // none, or Content-Length: as is
	bodyReencode          // chunked: re-encoded canonically
	bodyDechunk           // chunked, to an HTTP/1.0 client: decoded, then close
	bodyRechunk           // close-delimited, to an HTTP/1.1 client: chunked
	bodyUntilClose        // close-delimited, to an HTTP/1.0 client: as is, then close
)

// flush writes s.out to the client and empties it.
func (s *session) flush(cfg *Listener) error {
	if len(s.out) == 0 {
		return nil
	}
	deadline.Write(s.conn, &s.cwd, s.tick(), cfg.FrontTimeout)
	n, err := s.writeClient(s.out)
	s.mx.BytesOut += int64(n)
	s.lg.bytesOut += int64(n)
	s.out = s.out[:0]
	return err
}

// flushWith writes s.out, then data, to the client in one vectored write
// (writev(2) on TCP; under TLS, their records in one write(2), gather.go),
// and empties s.out.
func (s *session) flushWith(cfg *Listener, data []byte) error {
	deadline.Write(s.conn, &s.cwd, s.tick(), cfg.FrontTimeout)
	var n int64
	var err error
	if len(s.out) == 0 {
		m, werr := s.writeClient(data)
		n, err = int64(m), werr
	} else if pc := s.gatherOn(); pc != nil {
		// TLS: the head's records and the body's, in one write(2).
		m, werr := s.conn.Write(s.out)
		if werr == nil {
			var k int
			k, werr = s.conn.Write(data)
			m += k
		}
		if ferr := pc.flushGather(); ferr != nil && werr == nil {
			m, werr = 0, ferr
		}
		n, err = int64(m), werr
	} else {
		s.vec = append(s.vecArr[:0], s.out, data)
		n, err = s.vec.WriteTo(s.conn)
		s.vecArr, s.vec = [2][]byte{}, nil
	}
	s.mx.BytesOut += n
	s.lg.bytesOut += n
	s.out = s.out[:0]
	return err
}

// readBackend reads more response body bytes into bbuf, after those not
// yet consumed (which it first moves to the start). What s.out holds (the
// head, body bytes) is written first: the read may wait long (server-sent
// events, long polling), and what the backend sent must not wait with it.
// A stream session reads no more than its stream takes (streamRoom).
func (s *session) readBackend(cfg *Listener, bc *backends.Conn) (int, error) {
	if err := s.flush(cfg); err != nil {
		return 0, err
	}
	room, err := s.streamRoom(cfg)
	if err != nil {
		return 0, err
	}
	if s.br == s.bw {
		s.br, s.bw = 0, 0
	} else if s.bw == len(s.bbuf) {
		s.bw = copy(s.bbuf, s.bbuf[s.br:s.bw])
		s.br = 0
	}
	deadline.Read(bc, &bc.ReadDL, s.tick(), cfg.BackTimeout)
	end := len(s.bbuf)
	if room < end-s.bw {
		end = s.bw + room
	}
	// Quick ACKs are asked for once per response, when a read of its
	// body would wait (polledRead.ack): a body already there when it is
	// read needs none.
	rd := &s.st.bread
	rd.ack, rd.acked = !s.ackAsked, false
	n, err := rd.readVia(bc.Conn, bc.RawConn(), s.bbuf[s.bw:end])
	if rd.acked {
		s.ackAsked = true
	}
	rd.ack = false
	s.bw += n
	if n > 0 {
		return n, nil
	}
	if err == nil {
		err = io.ErrNoProgress
	}
	// The backend ended or failed within the body: the response is cut,
	// unless its end is the connection's (sendBody's close-delimited
	// modes take an io.EOF back).
	s.lg.noteCut(err)
	return 0, err
}

// quickAck asks the kernel to acknowledge the backend's bytes at once
// (backends.Conn.QuickAck), once per response, before a ReadFrom that may
// wait (spliceBody).
func (s *session) quickAck(bc *backends.Conn) {
	if !s.ackAsked {
		s.ackAsked = true
		quickAcks.Add(1)
		bc.QuickAck()
	}
}

// sendBody writes the response head in s.out, then the body. clean tells
// whether the backend exchange ended exactly at the end of the response;
// clientOK whether everything reached the client.
func (s *session) sendBody(x *exchange, bc *backends.Conn, mode int) (clean, clientOK bool) {
	cfg := x.cfg
	resp := &s.st.resp
	switch mode {
	case bodyPlain:
		if resp.Body != http1.BodyLength {
			return s.br == s.bw, s.flush(cfg) == nil
		}
		remaining := resp.ContentLength
		for {
			take := int(min(remaining, int64(s.bw-s.br)))
			if take > flushAt/2 {
				// Large runs go out straight from the read buffer, in one
				// vectored write with what s.out holds (the head).
				if s.flushWith(cfg, s.bbuf[s.br:s.br+take]) != nil {
					return false, false
				}
			} else {
				if len(s.out)+take > flushAt && len(s.out) > 0 {
					if s.flush(cfg) != nil {
						return false, false
					}
				}
				s.out = append(s.out, s.bbuf[s.br:s.br+take]...)
			}
			s.br += take
			if remaining -= int64(take); remaining == 0 {
				return s.br == s.bw, s.flush(cfg) == nil
			}
			if remaining >= spliceMin && s.br == s.bw {
				if dst, src, ok := s.spliceEnds(bc); ok {
					if s.flush(cfg) != nil {
						return false, false
					}
					ok := s.spliceBody(cfg, bc, dst, src, remaining)
					return ok, ok
				}
			}
			if _, err := s.readBackend(cfg, bc); err != nil {
				s.flush(cfg)
				return false, false
			}
		}
	case bodyReencode, bodyDechunk:
		s.st.rdec.Reset()
		s.st.rdec.Hop = s.st.respHop.keep(resp.ConnectionTokens(), cfg.idHeader) // before bbuf is reused
		if x.fe != nil {
			s.st.rdec.Drop = x.fe.Response.Deleted() // deleted from the head: from the trailers too
		}
		for {
			var used int
			var err error
			if mode == bodyReencode {
				s.out, used, err = s.st.rdec.Reencode(s.out, s.bbuf[s.br:s.bw])
			} else {
				var data []byte
				data, used, err = s.st.rdec.Feed(s.bbuf[s.br:s.bw])
				s.out = append(s.out, data...)
			}
			s.br += used
			if err != nil {
				s.srv.opt.Log.Debugf("backend %s: %v", bc.Backend.AddrString(), err)
				s.flush(cfg)
				return false, false
			}
			if s.st.rdec.Done() {
				return s.br == s.bw, s.flush(cfg) == nil && mode == bodyReencode
			}
			if s.br < s.bw {
				continue // Feed stops after each data run
			}
			if len(s.out) >= flushAt/2 {
				if s.flush(cfg) != nil {
					return false, false
				}
			}
			if _, err := s.readBackend(cfg, bc); err != nil {
				s.flush(cfg)
				return false, false
			}
		}
	default: // bodyRechunk, bodyUntilClose
		for {
			if s.br < s.bw {
				if mode == bodyRechunk {
					s.out = http1.AppendChunk(s.out, s.bbuf[s.br:s.bw])
				} else {
					s.out = append(s.out, s.bbuf[s.br:s.bw]...)
				}
				s.br = s.bw
			}
			if s.flush(cfg) != nil {
				return false, false
			}
			_, err := s.readBackend(cfg, bc)
			if err == io.EOF {
				s.lg.cut = notCut // the end of a close-delimited body
				if mode == bodyRechunk {
					s.out = http1.AppendLastChunk(s.out, nil)
					return false, s.flush(cfg) == nil
				}
				return false, false
			}
			if err != nil {
				return false, false
			}
		}
	}
}

// tunnel relays bytes both ways after a 101 response (WebSocket and other
// upgrades) until both sides have closed, or one fails or stays idle past
// its timeout. The 101 head is in s.out.
func (s *session) tunnel(x *exchange, bc *backends.Conn) {
	cfg := x.cfg
	s.out = append(s.out, s.bbuf[s.br:s.bw]...)
	s.br = s.bw
	if s.flush(cfg) != nil {
		s.releaseBackend(bc, false)
		return
	}
	// The tunnel holds no buffer of the exchange's: each way holds a
	// pooled one, or a pipe between plain TCP connections, only while
	// bytes are on hand (worker/relay), so that an idle WebSocket costs
	// what an idle keep-alive connection does.
	s.releaseExchangeBuffers()
	done := make(chan struct{})
	var in int64         // client → backend, written by the goroutine, read after done
	var tr relay.Traffic // its timeouts bound the silence of the whole tunnel, as a TCP relay's
	tr.Moved(time.Now())
	go func() {
		defer close(done)
		defer func() {
			if p := recover(); p != nil {
				s.srv.Panics.Add(1)
				s.conn.Close()
				bc.Conn.Close()
			}
		}()
		if s.r < s.w {
			deadline.Write(bc, &bc.WriteDL, time.Now(), cfg.BackTimeout)
			n, err := bc.Write(s.buf[s.r:s.w])
			in += int64(n)
			if err != nil {
				s.conn.Close()
				return
			}
			s.r = s.w
		}
		s.releaseBuf() // only this goroutine touches s.buf until done
		src := s.conn
		if tc, ok := src.(*tls.Conn); ok {
			if pc, ok := tc.NetConn().(*polledConn); ok {
				// Waits without a buffer, as over TCP (idle.go).
				src = &waitTLSConn{Conn: tc, pc: pc}
			}
		}
		r := relay.NewReader(src, bc.Conn, tunnelBuffers{}, nil, true)
		in += pipe(bc.Conn, src, r, &bc.WriteDL, &s.crd, cfg.BackTimeout, cfg.FrontTimeout, &tr)
	}()
	r := relay.NewReader(bc.Conn, s.conn, tunnelBuffers{}, bc.RawConn(), true)
	out := pipe(s.conn, bc.Conn, r, &s.cwd, &bc.ReadDL, cfg.FrontTimeout, cfg.BackTimeout, &tr)
	<-done
	// The tunnel's bytes count in bytes_in and bytes_out, as upstream's
	// pipe counts them (docs/metrics.md), and in the access record.
	s.mx.BytesIn += in
	s.mx.BytesOut += out
	s.lg.bytesIn += in
	s.lg.bytesOut += out
	s.releaseBackend(bc, false)
}

// pipe copies what r reads from src to dst until src ends: then it
// half-closes dst. On any other error, or when the tunnel stays idle past
// readTimeout (no byte read from the source, nor moved the other way, for
// that long; the other way in a write is not idle), it closes both. It
// returns the number of bytes written to dst.
func pipe(dst, src net.Conn, r *relay.Reader, wdl, rdl *deadline.Lazy, writeTimeout, readTimeout time.Duration, tr *relay.Traffic) (copied int64) {
	defer r.Release()
	arm := true
	for {
		if arm {
			deadline.Read(src, rdl, time.Now(), readTimeout)
		}
		arm = true
		n, err := r.Next()
		if n > 0 {
			now := time.Now()
			tr.Moved(now)
			deadline.Write(dst, wdl, now, writeTimeout)
			tr.BeginWrite()
			w, werr := r.Send(dst)
			tr.EndWrite()
			copied += int64(w)
			if w > 0 {
				tr.Moved(time.Now())
			}
			if werr != nil {
				dst.Close()
				src.Close()
				return copied
			}
			continue
		}
		if isTimeout(err) {
			// Not idle if the other way moved bytes meanwhile, or is
			// writing still: idle only readTimeout after that.
			if at, ok := tr.ReadAgainUntil(time.Now(), readTimeout); ok {
				rdl.Forget()
				src.SetReadDeadline(at)
				arm = false
				continue
			}
		}
		if err == io.EOF && closeWrite(dst) {
			return copied
		}
		dst.Close()
		src.Close()
		return copied
	}
}

// tunnelBuffers are the read buffers of a tunnel's relay.Readers,
// counted in BuffersCheckedOut.
type tunnelBuffers struct{}

func (tunnelBuffers) Get() *[]byte  { return getBuf() }
func (tunnelBuffers) Put(p *[]byte) { putBuf(p) }

// closeWrite half-closes c, a TCP connection or TLS over one (a
// close_notify, then the FIN), and reports whether it could.
func closeWrite(c net.Conn) bool {
	if tc, ok := c.(*tls.Conn); ok {
		if tc.CloseWrite() != nil {
			return false
		}
		c = tc.NetConn()
	}
	cw, ok := c.(interface{ CloseWrite() error })
	return ok && cw.CloseWrite() == nil
}
