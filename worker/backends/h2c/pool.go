// Package h2c speaks HTTP/2 with prior knowledge (RFC 9113 §3.3) to one
// backend: a Pool multiplexes requests as streams over a few connections,
// and each Stream presents itself as a net.Conn carrying one HTTP/1.1
// exchange, so that the proxy's HTTP/1.1 exchange serves HTTP/2 backends
// unchanged (convert.go does the translation both ways).
package h2c

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// Defaults of Options.
const (
	DefaultMaxConns          = 4
	DefaultMaxStreams        = 256
	DefaultStreamWindow      = 64 << 10
	DefaultIdleTimeout       = 30 * time.Second
	DefaultWriteTimeout      = 30 * time.Second
	DefaultMaxHeaderListSize = 64 << 10
	DefaultPingTimeout       = 5 * time.Second

	// connWindow is the connection-level receive window we grant: large
	// enough never to bind, since each stream's window already bounds what
	// a backend may make us buffer (streams × StreamWindow).
	connWindow = 1 << 30
)

// Options tune a Pool; zero fields take the defaults above.
type Options struct {
	MaxConns          int           // connections to the backend at most
	MaxStreams        uint32        // concurrent streams per connection at most, even when the backend allows more
	StreamWindow      uint32        // receive window per stream: what a stalled stream may cost us in memory
	IdleTimeout       time.Duration // a connection without a stream for this long is closed
	WriteTimeout      time.Duration // bound on one write to the backend's socket; past it the connection fails
	MaxHeaderListSize uint32        // bound on a response head (HPACK-decoded size)
	// PingTimeout: when a stream times out waiting for its response, the
	// connection is checked with a PING; without its ACK within this time
	// the connection is taken as dead and closed (its streams fail).
	PingTimeout time.Duration
}

func (o *Options) setDefaults() {
	if o.MaxConns <= 0 {
		o.MaxConns = DefaultMaxConns
	}
	if o.MaxStreams == 0 {
		o.MaxStreams = DefaultMaxStreams
	}
	if o.StreamWindow == 0 {
		o.StreamWindow = DefaultStreamWindow
	}
	if o.IdleTimeout <= 0 {
		o.IdleTimeout = DefaultIdleTimeout
	}
	if o.WriteTimeout <= 0 {
		o.WriteTimeout = DefaultWriteTimeout
	}
	if o.MaxHeaderListSize == 0 {
		o.MaxHeaderListSize = DefaultMaxHeaderListSize
	}
	if o.PingTimeout <= 0 {
		o.PingTimeout = DefaultPingTimeout
	}
}

// Errors of Open.
var (
	ErrPoolClosed = errors.New("h2c: backend removed")
	ErrPoolFull   = errors.New("h2c: every connection to the backend is at its stream limit")
)

// Pool is the set of HTTP/2 connections to one backend. Safe for
// concurrent use.
type Pool struct {
	addr string // for errors
	dial func(ctx context.Context) (net.Conn, error)
	opt  Options

	afterFrame func(*clientConn) // test hook: called by the reader after each frame; nil in production

	// Dials counts connections opened (handshake done); Conns the ones
	// open now.
	Dials atomic.Int64

	mu      sync.Mutex
	conns   []*clientConn
	dialing int
	closed  bool
	waiters int
	freed   chan struct{} // closed (and replaced) when a stream slot or a dial slot frees, while waiters > 0
}

// NewPool returns a pool for the backend at addr (named in errors), whose
// connections dial opens.
func NewPool(addr string, dial func(ctx context.Context) (net.Conn, error), opt Options) *Pool {
	opt.setDefaults()
	return &Pool{addr: addr, dial: dial, opt: opt, freed: make(chan struct{})}
}

// Conns returns the number of connections open now.
func (p *Pool) Conns() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.conns)
}

// Open reserves a stream on a connection that has room for one, dialing
// a new connection (within timeout, handshake included) when every one is
// full and there are fewer than MaxConns, else waiting up to timeout for a
// slot. dialed reports that Open dialed a connection: with err != nil the
// backend failed to connect or to speak HTTP/2, and should be counted as
// failing. The Stream must be closed once.
func (p *Pool) Open(ctx context.Context, timeout time.Duration) (*Stream, bool, error) {
	st, dialed, err := p.open(ctx, timeout)
	if err != nil {
		return nil, dialed, err
	}
	o := &Stream{p: p, replayOK: true}
	o.cur.Store(st)
	return o, dialed, nil
}

// open is Open without the replay wrapper.
func (p *Pool) open(ctx context.Context, timeout time.Duration) (st *stream, dialed bool, err error) {
	deadlineAt := time.Now().Add(timeout)
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for {
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			return nil, dialed, ErrPoolClosed
		}
		for _, c := range p.conns {
			if st := c.reserve(); st != nil {
				p.mu.Unlock()
				return st, dialed, nil
			}
		}
		if len(p.conns)+p.dialing < p.opt.MaxConns {
			p.dialing++
			p.mu.Unlock()
			dialed = true
			c, err := p.connect(ctx, deadlineAt)
			p.mu.Lock()
			p.dialing--
			if err != nil {
				p.signalLocked()
				p.mu.Unlock()
				return nil, true, err
			}
			if p.closed {
				p.mu.Unlock()
				c.close()
				return nil, true, ErrPoolClosed
			}
			p.conns = append(p.conns, c)
			p.signalLocked() // waiters may take its other slots
			p.mu.Unlock()
			continue
		}
		p.waiters++
		ch := p.freed
		p.mu.Unlock()
		if timer == nil {
			timer = time.NewTimer(time.Until(deadlineAt))
		}
		var werr error
		select {
		case <-ch:
		case <-timer.C:
			werr = fmt.Errorf("backend %s: %w", p.addr, ErrPoolFull)
		case <-ctx.Done():
			werr = ctx.Err()
		}
		p.mu.Lock()
		p.waiters--
		p.mu.Unlock()
		if werr != nil {
			return nil, dialed, werr
		}
	}
}

// connect dials a connection and waits for the backend's SETTINGS.
func (p *Pool) connect(ctx context.Context, deadlineAt time.Time) (*clientConn, error) {
	dctx, cancel := context.WithDeadline(ctx, deadlineAt)
	defer cancel()
	nc, err := p.dial(dctx)
	if err != nil {
		return nil, err
	}
	c, err := newClientConn(p, nc, deadlineAt)
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("backend %s: HTTP/2 handshake: %w", p.addr, err)
	}
	p.Dials.Add(1)
	return c, nil
}

// Close stops p from opening streams: idle connections are closed now
// (GOAWAY NO_ERROR), the others once their last stream ends.
func (p *Pool) Close() {
	p.mu.Lock()
	p.closed = true
	conns := append([]*clientConn(nil), p.conns...)
	p.signalLocked()
	p.mu.Unlock()
	for _, c := range conns {
		c.drain()
	}
}

// signal wakes the goroutines waiting in Open.
func (p *Pool) signal() {
	p.mu.Lock()
	p.signalLocked()
	p.mu.Unlock()
}

func (p *Pool) signalLocked() {
	if p.waiters > 0 {
		close(p.freed)
		p.freed = make(chan struct{})
	}
}

// remove forgets a connection that is closed or takes no new stream.
func (p *Pool) remove(c *clientConn) {
	p.mu.Lock()
	for i, x := range p.conns {
		if x == c {
			p.conns = append(p.conns[:i], p.conns[i+1:]...)
			break
		}
	}
	p.signalLocked()
	p.mu.Unlock()
}
