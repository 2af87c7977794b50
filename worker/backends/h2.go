package backends

import (
	"context"
	"net"
	"time"

	"github.com/sozu-go/sozu/worker/backends/h2c"
)

// openStream returns a stream to b on one of its pooled HTTP/2
// connections (package h2c), dialing one within timeout when they are
// all full. A failed dial or handshake counts against b as a failed
// connect does; a successful one, like a successful connect, brings b up.
// The returned Conn has Stream and Reused set: Release closes the stream.
func (s *Set) openStream(ctx context.Context, b *Backend, timeout time.Duration) (*Conn, error) {
	p := b.h2.Load()
	if p == nil {
		np := h2c.NewPool(b.addr, func(ctx context.Context) (net.Conn, error) {
			return s.reg.opt.Dial(ctx, b.addr)
		}, h2c.Options{IdleTimeout: s.reg.opt.IdleTimeout})
		if b.h2.CompareAndSwap(nil, np) {
			p = np
		} else {
			p = b.h2.Load()
		}
		if b.removed.Load() {
			p.Close()
		}
	}
	start := time.Now()
	st, dialed, err := p.Open(ctx, timeout)
	if err != nil {
		if dialed {
			s.failed(b)
		}
		return nil, err
	}
	if dialed {
		b.observeConnect(time.Since(start))
		s.succeeded(b)
	}
	return &Conn{Conn: st, Backend: b, Reused: true, Stream: true}, nil
}

// H2Conns returns the number of HTTP/2 connections open to b (0 when the
// cluster speaks HTTP/1.1 to it).
func (b *Backend) H2Conns() int {
	if p := b.h2.Load(); p != nil {
		return p.Conns()
	}
	return 0
}
