package proxy

import (
	"context"
	"crypto/tls"
	"encoding/binary"
	"io"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/oklog/ulid/v2"
	"github.com/sirupsen/logrus"

	"github.com/sozu-go/sozu/worker/accesslog"
	"github.com/sozu-go/sozu/worker/connlimit"
	"github.com/sozu-go/sozu/worker/h2"
	"github.com/sozu-go/sozu/worker/ipcap"
	"github.com/sozu-go/sozu/worker/metrics"
)

// Options are the worker-wide settings of a Server.
type Options struct {
	Log   *logrus.Entry                 // nil discards
	NewID func(now time.Time) ulid.ULID // request and session ids for the millisecond of now; nil is NewULID
	Conns *ConnLimit                    // shared cap on client connections; nil is unlimited
	// IPCaps caps the connections per (cluster, client IP); nil is
	// unlimited. Shared by the worker's servers.
	IPCaps *ipcap.Limits
	// Metrics records the requests and connections (metrics.go); nil
	// records nothing. Shared by the worker's servers.
	Metrics *metrics.Registry
	// Access is the access log: one record per request; nil logs
	// nothing, at no cost.
	Access *accesslog.Logger
}

// ConnLimit caps the client connections of every Server sharing it (one
// per worker, shared with the other protocols' servers).
type ConnLimit = connlimit.Limit

// Server serves HTTP/1.1 on one listener. Its methods are safe for
// concurrent use.
type Server struct {
	ln     net.Listener
	cfg    atomic.Pointer[Listener]
	opt    Options
	ctx    context.Context // cancelled by Close: pending backend connects give up
	cancel context.CancelFunc

	mu       sync.Mutex
	sessions map[*session]struct{}
	watching bool       // watch runs (watch.go)
	slots    watchTable // the sessions' exchanges, for the watch (watch.go)
	wg       sync.WaitGroup
	draining atomic.Bool
	stopped  atomic.Bool
	stop     chan struct{} // closed with stopped: wakes Serve waiting for a slot

	// Panics counts recovered panics of connection goroutines.
	Panics atomic.Int64
	// ReplayImpossible counts requests answered 502 because a reused
	// backend connection closed before any answer byte and they could not
	// be sent again: the request body was already streaming, or the
	// method is not idempotent (the backend may have processed it).
	ReplayImpossible atomic.Int64
	// H2Stats counts the HTTP/2 connections' events (flood GOAWAYs, resets).
	H2Stats h2.Stats
}

// NewServer returns a server for ln with the configuration cfg, which it
// takes ownership of. Call Serve to start accepting.
func NewServer(ln net.Listener, cfg *Listener, opt Options) *Server {
	if opt.Log == nil {
		l := logrus.New()
		l.SetOutput(io.Discard)
		opt.Log = logrus.NewEntry(l)
	}
	if opt.NewID == nil {
		opt.NewID = NewULID
	}
	s := &Server{ln: ln, opt: opt, sessions: map[*session]struct{}{}, stop: make(chan struct{})}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.Swap(cfg)
	return s
}

// Swap makes cfg the configuration of every request that starts from now
// on, on new and existing connections. The server takes ownership of cfg.
func (s *Server) Swap(cfg *Listener) {
	cfg.init()
	s.cfg.Store(cfg)
}

// Config returns the current configuration (read-only).
func (s *Server) Config() *Listener { return s.cfg.Load() }

// Addr returns the listener's address.
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// Serve accepts connections until the listener is closed (StopAccepting,
// Shutdown or Close), serving each on its own goroutine. It returns nil
// then, or the error that stopped accepting.
func (s *Server) Serve() error {
	return s.opt.Conns.Serve(s.ln, s.stop, s.opt.Log.Warnf, s.admit)
}

// admit starts serving an accepted connection, whose slot is taken.
func (s *Server) admit(c net.Conn) {
	if tc := s.cfg.Load().TLS; tc != nil {
		c = tls.Server(polled(c), tc)
	}
	ss := newSession(s, c)
	s.mu.Lock()
	if s.draining.Load() {
		s.mu.Unlock()
		s.opt.Conns.Release()
		c.Close()
		return
	}
	s.sessions[ss] = struct{}{}
	ss.slot = s.takeSlot(ss)
	s.wg.Add(1)
	s.startWatch()
	s.mu.Unlock()
	kind := metrics.HTTP
	if _, ok := c.(*tls.Conn); ok {
		kind = metrics.HTTPS
	}
	s.opt.Metrics.Accepted(kind)
	go ss.run()
}

// NewULID returns a ULID for the millisecond of now with 80 random bits
// (math/rand/v2's per-thread ChaCha8: no lock, no allocation). Unlike
// ulid.Make it is not monotonic within a millisecond; ids stay unique.
func NewULID(now time.Time) ulid.ULID {
	var id ulid.ULID
	id.SetTime(ulid.Timestamp(now))
	var e [10]byte
	binary.LittleEndian.PutUint64(e[:8], rand.Uint64())
	binary.LittleEndian.PutUint16(e[8:], uint16(rand.Uint32()))
	id.SetEntropy(e[:])
	return id
}

// forget removes a connection's session as it ends (stream sessions are
// their bridge's: h2Bridge.unlink).
func (s *Server) forget(ss *session) {
	s.mu.Lock()
	delete(s.sessions, ss)
	s.putSlot(ss.slot)
	ss.slot = nil
	s.mu.Unlock()
	s.opt.Conns.Release()
	s.opt.Metrics.Closed()
	s.wg.Done()
}

// StopAccepting closes the listener: Serve returns and no new connection
// is accepted; established ones go on.
func (s *Server) StopAccepting() {
	if s.stopped.CompareAndSwap(false, true) {
		close(s.stop)
		s.ln.Close()
	}
}

// Shutdown stops accepting, closes idle keep-alive connections, and lets
// each busy connection finish its current request (announcing
// "Connection: close") before closing it. It returns when every
// connection is closed, or with ctx's error when ctx ends first.
func (s *Server) Shutdown(ctx context.Context) error {
	s.StopAccepting()
	s.mu.Lock()
	s.draining.Store(true)
	for ss := range s.sessions {
		ss.wakeIfIdle()
	}
	s.mu.Unlock()
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Close stops accepting and closes every connection at once (hard stop).
// It waits for the connection goroutines to return.
func (s *Server) Close() {
	s.StopAccepting()
	s.cancel()
	s.mu.Lock()
	s.draining.Store(true)
	for ss := range s.sessions {
		ss.abort()
	}
	s.mu.Unlock()
	s.wg.Wait()
}

// Sessions returns the number of open client connections.
func (s *Server) Sessions() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.sessions)
}
