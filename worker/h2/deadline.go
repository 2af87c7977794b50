package h2

import (
	"os"
	"sync/atomic"
	"time"
)

// Deadlines on a stream's Read and Write, so that a handler can give a
// stream to code written for net.Conn (timeouts, and a deadline in the past
// to interrupt a goroutine blocked in Read). The deadlines live in the
// Stream under c.mu. A timer is armed only when a Read or Write actually
// waits with a deadline set, so that setting one costs no timer operation
// on the common path; the timers live in a streamDeadlines that the Stream
// keeps across its reuse from the pool, so that a warm Stream allocates
// none.

// streamDeadlines holds a stream's timers. conn is the stream's connection
// while its handler runs and nil otherwise: a timer firing then touches
// nothing (the Stream may already serve another connection). Every field
// but conn is guarded by the stream's c.mu.
type streamDeadlines struct {
	s      *Stream // immutable
	conn   atomic.Pointer[Conn]
	r, w   *time.Timer
	rArmed time.Time // the deadline r is armed for; zero when stopped
	wArmed time.Time
}

// fire wakes the stream's blocked Read and Write, which check their
// deadline (and re-arm the timer if it moved).
func (d *streamDeadlines) fire() {
	c := d.conn.Load()
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if d.conn.Load() != c {
		return // the handler is gone: the stream is not ours to touch
	}
	d.rArmed, d.wArmed = time.Time{}, time.Time{}
	d.s.canRead.Broadcast()
	d.s.canWrite.Broadcast()
}

// SetReadDeadline sets when a pending or later Read fails with
// os.ErrDeadlineExceeded; the zero time means never. Safe from any
// goroutine while ServeStream runs.
func (s *Stream) SetReadDeadline(t time.Time) error { return s.setDeadline(t, true, false) }

// SetWriteDeadline is SetReadDeadline for Write (a Write blocked on the
// stream's full output buffer).
func (s *Stream) SetWriteDeadline(t time.Time) error { return s.setDeadline(t, false, true) }

// SetDeadline sets both deadlines.
func (s *Stream) SetDeadline(t time.Time) error { return s.setDeadline(t, true, true) }

func (s *Stream) setDeadline(t time.Time, read, write bool) error {
	c := s.c
	c.mu.Lock()
	defer c.mu.Unlock()
	if read {
		s.rdl = t
		if s.waitingRead {
			s.canRead.Broadcast() // to fail now, or re-arm for t
		}
	}
	if write {
		s.wdl = t
		if s.waitingWrite {
			s.canWrite.Broadcast()
		}
	}
	return nil
}

// armLocked makes sure a timer wakes the stream's waiting Read (read) or
// Write at its deadline, which is set and not passed.
func (s *Stream) armLocked(read bool) {
	d := s.dl
	if d == nil {
		d = &streamDeadlines{s: s}
		s.dl = d
	}
	d.conn.Store(s.c)
	tm, armed, dl := &d.w, &d.wArmed, s.wdl
	if read {
		tm, armed, dl = &d.r, &d.rArmed, s.rdl
	}
	if armed.Equal(dl) {
		return
	}
	*armed = dl
	if *tm == nil {
		*tm = time.AfterFunc(time.Until(dl), d.fire)
	} else {
		(*tm).Reset(time.Until(dl))
	}
}

// stopDeadlinesLocked is called once the handler has returned, before the
// stream can be released: no timer touches it afterwards.
func (s *Stream) stopDeadlinesLocked() {
	d := s.dl
	if d == nil || d.conn.Load() == nil {
		return
	}
	d.conn.Store(nil)
	for _, tm := range [...]*time.Timer{d.r, d.w} {
		if tm != nil {
			tm.Stop()
		}
	}
	d.rArmed, d.wArmed = time.Time{}, time.Time{}
}

// expired reports whether the deadline dl is set and has passed.
func expired(dl time.Time) bool {
	return !dl.IsZero() && !time.Now().Before(dl)
}

// errDeadline is what Read and Write return past their deadline, as net.Conn does.
var errDeadline error = os.ErrDeadlineExceeded
