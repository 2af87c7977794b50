// Package deadline re-arms connection deadlines lazily: an inactivity timeout
// is moved only when it has drifted by more than an eighth of its length.
//
// Each SetReadDeadline or SetWriteDeadline updates a runtime timer; a proxied
// request would do four of them. With Lazy, a busy keep-alive connection
// re-arms a 60 s timeout about once every 7.5 s instead, at the cost of
// timeouts firing between 7/8 and 8/8 of their nominal length.
package deadline

import "time"

// Lazy remembers the deadline armed on one direction of one connection. The
// zero value knows nothing (the next Due re-arms). Not safe for concurrent
// use: each direction has one user at a time.
type Lazy struct {
	at time.Time
}

// Due returns now+timeout and true when that deadline must be armed: the
// armed one is later (the timeout got shorter) or earlier by more than
// timeout/8. It then records it as armed; the caller must arm it.
func (l *Lazy) Due(now time.Time, timeout time.Duration) (time.Time, bool) {
	want := now.Add(timeout)
	if !l.at.After(want) && want.Sub(l.at) <= timeout/8 {
		return want, false
	}
	l.at = want
	return want, true
}

// Forget records that the deadline was set by other means (to the past, to
// wake a reader): the next Due re-arms.
func (l *Lazy) Forget() { l.at = time.Time{} }

// Conn is the part of net.Conn that Read and Write arm.
type Conn interface {
	SetReadDeadline(time.Time) error
	SetWriteDeadline(time.Time) error
}

// Read arms c's read deadline to now+timeout when l says it is due.
func Read(c Conn, l *Lazy, now time.Time, timeout time.Duration) {
	if at, ok := l.Due(now, timeout); ok {
		c.SetReadDeadline(at)
	}
}

// Write arms c's write deadline to now+timeout when l says it is due.
func Write(c Conn, l *Lazy, now time.Time, timeout time.Duration) {
	if at, ok := l.Due(now, timeout); ok {
		c.SetWriteDeadline(at)
	}
}
