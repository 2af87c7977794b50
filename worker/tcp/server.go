package tcp

import (
	"context"
	"github.com/oklog/ulid/v2"
	"io"
	"net"
	"sync"
	"sync/atomic"

	"github.com/sirupsen/logrus"

	"github.com/sozu-go/sozu/worker/accesslog"
	"github.com/sozu-go/sozu/worker/connlimit"
	"github.com/sozu-go/sozu/worker/ipcap"
	"github.com/sozu-go/sozu/worker/metrics"
)

// Options are the worker-wide settings of a Server.
type Options struct {
	Log   *logrus.Entry // nil discards
	Conns *ConnLimit    // shared cap on client connections; nil is unlimited
	// IPCaps caps the connections per (cluster, client IP); nil is
	// unlimited. Shared by the worker's servers.
	IPCaps *ipcap.Limits
	// Metrics records connections and sessions; nil records nothing.
	Metrics *metrics.Registry
	// Access is the access log: one record per session; nil logs
	// nothing, at no cost.
	Access *accesslog.Logger
	// NewID makes session ids for the access log; nil is ulid.Make.
	NewID func() ulid.ULID
}

// ConnLimit caps the client connections of every Server sharing it (one
// per worker, shared with the other protocols' servers).
type ConnLimit = connlimit.Limit

// Server relays the connections of one TCP listener. Its methods are safe
// for concurrent use.
type Server struct {
	ln     net.Listener
	cfg    atomic.Pointer[Listener]
	opt    Options
	ctx    context.Context // cancelled by Close: pending backend connects give up
	cancel context.CancelFunc

	mu       sync.Mutex
	sessions map[*session]struct{}
	wg       sync.WaitGroup
	draining bool // under mu: no new session
	stopped  atomic.Bool
	stop     chan struct{} // closed with stopped: wakes Serve waiting for a slot

	// Panics counts recovered panics of connection goroutines.
	Panics atomic.Int64
}

// NewServer returns a server for ln with the configuration cfg, which it
// takes ownership of. Call Serve to start accepting.
func NewServer(ln net.Listener, cfg *Listener, opt Options) *Server {
	if opt.Log == nil {
		l := logrus.New()
		l.SetOutput(io.Discard)
		opt.Log = logrus.NewEntry(l)
	}
	s := &Server{ln: ln, opt: opt, sessions: map[*session]struct{}{}, stop: make(chan struct{})}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.Swap(cfg)
	return s
}

// Swap makes cfg the configuration of the connections accepted from now
// on; established relays keep their backend and timeouts. The server
// takes ownership of cfg.
func (s *Server) Swap(cfg *Listener) { s.cfg.Store(cfg.withDefaults()) }

// Config returns the current configuration (read-only).
func (s *Server) Config() *Listener { return s.cfg.Load() }

// Addr returns the listener's address.
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// Serve accepts connections until the listener is closed (StopAccepting,
// Shutdown or Close), relaying each on its own goroutine. It returns nil
// then, or the error that stopped accepting.
func (s *Server) Serve() error {
	return s.opt.Conns.Serve(s.ln, s.stop, s.opt.Log.Warnf, s.admit)
}

// admit starts relaying an accepted connection, whose slot is taken.
func (s *Server) admit(c net.Conn) {
	ss := &session{srv: s, client: c}
	s.mu.Lock()
	if s.draining {
		s.mu.Unlock()
		s.opt.Conns.Release()
		c.Close()
		return
	}
	s.sessions[ss] = struct{}{}
	s.wg.Add(1)
	s.mu.Unlock()
	s.opt.Metrics.Accepted(metrics.TCP)
	go ss.run(s.cfg.Load())
}

func (s *Server) forget(ss *session) {
	s.mu.Lock()
	delete(s.sessions, ss)
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

// Shutdown stops accepting and waits for the established relays to end on
// their own (both sides closed, an error, or a timeout). It returns when
// every connection is closed, or with ctx's error when ctx ends first (the
// relays then go on; Close ends them).
func (s *Server) Shutdown(ctx context.Context) error {
	s.StopAccepting()
	s.mu.Lock()
	s.draining = true
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
	s.draining = true
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
