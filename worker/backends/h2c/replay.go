package h2c

import (
	"context"
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// maxReplay bounds the request bytes a Stream keeps to send them again on
// another connection when the backend refuses the stream unprocessed.
const maxReplay = 32 << 10

// maxReplays bounds the replays of one request: each refusal is a
// promise that the backend did not process it, but every connection of
// the pool may go away at once (a backend restarting sends GOAWAY on all
// of them within a few microseconds), and a connection that said GOAWAY
// takes no new stream: a request refused by each, in turn, still gets a
// new connection. Refusals without end (a backend answering every stream
// REFUSED_STREAM, or going away on every new connection) are cut short.
func (p *Pool) maxReplays() int { return p.opt.MaxConns + 1 }

// reopenTimeout bounds getting another stream for a replay.
const reopenTimeout = 5 * time.Second

// Stream is one request/response exchange with the backend, seen as a
// net.Conn speaking HTTP/1.1: Write takes one request (head, then body as
// Content-Length bytes or chunked, as the proxy's canonical serialisation
// writes it) and sends it as HEADERS and DATA; Read returns the response
// as an HTTP/1.1 message (see convert.go for the conversion rules). One
// goroutine may Write while another Reads; Close may be called from any
// goroutine and interrupts both; deadlines work as net.Conn's.
//
// When the backend refuses the stream unprocessed (GOAWAY with a lower
// last-stream-id, REFUSED_STREAM, or a connection gone before the request
// went out), Stream sends the request again on another stream of the
// pool (up to maxReplays times: once per connection of the pool, and one more), provided it still holds every byte written so far (at most
// maxReplay). When it cannot, Read returns io.EOF before any response
// byte, which the proxy's replay rule reads as "nothing answered" (it
// sends the request again when it still holds it whole). Any other failure
// is an error: a reset stream (*ResetError), a lost connection
// (ErrConnLost), a malformed response.
type Stream struct {
	p   *Pool
	cur atomic.Pointer[stream]

	mu       sync.Mutex // held by Write throughout, and by a replay
	replay   []byte     // every request byte written, while replayOK
	replayOK bool
	replays  int

	dmu     sync.Mutex // guards the deadlines, re-applied to a new stream
	readDL  time.Time
	writeDL time.Time

	closed atomic.Bool
}

// Write sends request bytes (see Stream).
func (s *Stream) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.replayOK {
		if len(s.replay)+len(p) <= maxReplay {
			s.replay = append(s.replay, p...)
		} else {
			s.replayOK, s.replay = false, nil
		}
	}
	cur := s.cur.Load()
	n, err := cur.Write(p)
	if err != nil && errors.Is(err, ErrRefused) && s.reopenLocked(cur) {
		return len(p), nil // the replay carried p
	}
	return n, err
}

// Read returns response bytes (see Stream).
func (s *Stream) Read(p []byte) (int, error) {
	for {
		cur := s.cur.Load()
		n, err := cur.Read(p)
		if err == nil || !errors.Is(err, ErrRefused) {
			return n, err
		}
		if cur.responded() {
			return 0, err
		}
		s.mu.Lock()
		ok := s.reopenLocked(cur)
		s.mu.Unlock()
		if !ok {
			return 0, io.EOF
		}
	}
}

// reopenLocked replaces the refused stream old by a new one and sends it
// the request bytes written so far. It reports whether s now has a stream
// other than old that took them.
func (s *Stream) reopenLocked(old *stream) bool {
	if s.cur.Load() != old {
		return true // replayed already, by the other side
	}
	if s.replays >= s.p.maxReplays() || !s.replayOK || s.closed.Load() || old.responded() {
		return false
	}
	s.replays++
	ns, _, err := s.p.open(context.Background(), reopenTimeout)
	if err != nil {
		return false
	}
	old.Close()
	s.dmu.Lock()
	ns.SetReadDeadline(s.readDL)
	ns.SetWriteDeadline(s.writeDL)
	s.cur.Store(ns)
	s.dmu.Unlock()
	if s.closed.Load() {
		ns.Close()
		return false
	}
	if len(s.replay) == 0 {
		return true
	}
	if _, err = ns.Write(s.replay); errors.Is(err, ErrRefused) {
		return s.reopenLocked(ns)
	}
	return err == nil
}

// Close ends the exchange; a stream not finished on the wire is reset.
func (s *Stream) Close() error {
	if s.closed.Swap(true) {
		return nil
	}
	return s.cur.Load().Close()
}

// LocalAddr is the backend connection's local address.
func (s *Stream) LocalAddr() net.Addr { return s.cur.Load().c.nc.LocalAddr() }

// RemoteAddr is the backend's address.
func (s *Stream) RemoteAddr() net.Addr { return s.cur.Load().c.nc.RemoteAddr() }

// SetDeadline sets both deadlines.
func (s *Stream) SetDeadline(t time.Time) error {
	s.SetReadDeadline(t)
	return s.SetWriteDeadline(t)
}

// SetReadDeadline bounds Read (os.ErrDeadlineExceeded past it), also while
// it waits.
func (s *Stream) SetReadDeadline(t time.Time) error {
	s.dmu.Lock()
	defer s.dmu.Unlock()
	s.readDL = t
	return s.cur.Load().SetReadDeadline(t)
}

// SetWriteDeadline bounds Write's wait for flow-control window.
func (s *Stream) SetWriteDeadline(t time.Time) error {
	s.dmu.Lock()
	defer s.dmu.Unlock()
	s.writeDL = t
	return s.cur.Load().SetWriteDeadline(t)
}
