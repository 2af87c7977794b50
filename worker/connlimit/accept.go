package connlimit

import (
	"errors"
	"net"
	"time"
)

// Serve accepts connections from ln until it is closed, and hands each one
// that l admits to handle (on the accept goroutine: handle must start its
// own goroutine and must Release the slot when the connection ends, or at
// once if it refuses the connection). A connection over the limit is
// closed. Temporary accept errors (EMFILE and the like) are retried with a
// growing pause, up to one second, reported through warnf. Serve returns
// nil once ln is closed or stopped reports true, and the error that stopped
// accepting otherwise.
func (l *Limit) Serve(ln net.Listener, stopped func() bool, warnf func(string, ...any), handle func(net.Conn)) error {
	var backoff time.Duration
	for {
		c, err := ln.Accept()
		if err != nil {
			if stopped() || errors.Is(err, net.ErrClosed) {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() || isTemporary(err) {
				backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
				warnf("accept on %v: %v; retrying in %v", ln.Addr(), err, backoff)
				time.Sleep(backoff)
				continue
			}
			return err
		}
		backoff = 0
		if !l.Acquire() {
			c.Close()
			continue
		}
		handle(c)
	}
}

func isTemporary(err error) bool {
	var t interface{ Temporary() bool }
	return errors.As(err, &t) && t.Temporary()
}
