package connlimit

import (
	"errors"
	"net"
	"time"
)

// Serve accepts connections from ln until ln is closed or stop is closed,
// and hands each one to handle with a slot of l. handle runs on the accept
// goroutine, or on a new goroutine for a connection that waited in the
// queue; it must start its own goroutine and Release the slot when the
// connection ends (or at once if it refuses the connection).
//
// At Max, a connection is not accepted and closed: accepted connections
// wait in l's queue (at most QueueLen, each closed after QueueTimeout), and
// once the queue is full Serve stops calling accept, so that new
// connections wait in the kernel's listen backlog, until a Release or a
// timeout makes room. (Only a Limit without a queue closes a connection
// at once: one accepted by a loop that lost the last slot to another
// listener's loop.) The connections this loop queued are closed when it
// returns. Temporary accept errors (EMFILE and the like) are retried with
// a growing pause, up to one second, reported through warnf.
//
// To stop Serve, close stop, then ln: a loop waiting for room sees only
// stop. Serve returns nil then, and the error that stopped accepting
// otherwise.
func (l *Limit) Serve(ln net.Listener, stop <-chan struct{}, warnf func(string, ...any), handle func(net.Conn)) error {
	me := &acceptor{}
	defer l.dropQueued(me)
	var backoff time.Duration
	for {
		if !l.waitRoom(stop) {
			return nil
		}
		c, err := ln.Accept()
		if err != nil {
			if closed(stop) || errors.Is(err, net.ErrClosed) {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() || isTemporary(err) {
				backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
				warnf("accept on %v: %v; retrying in %v", ln.Addr(), err, backoff)
				pause := time.NewTimer(backoff)
				select {
				case <-pause.C:
				case <-stop:
					pause.Stop()
					return nil
				}
				continue
			}
			return err
		}
		backoff = 0
		l.take(c, me, handle)
	}
}

// closed reports whether stop is closed (a nil stop never is).
func closed(stop <-chan struct{}) bool {
	select {
	case <-stop:
		return true
	default:
		return false
	}
}

func isTemporary(err error) bool {
	var t interface{ Temporary() bool }
	return errors.As(err, &t) && t.Temporary()
}
