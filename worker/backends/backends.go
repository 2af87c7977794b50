// Package backends holds each cluster's backend servers for the proxy:
// selection (policy.go, hashing.go), keep-alive pools (pool.go), HTTP/2
// streams (h2.go, over package h2c), connect
// retries and passive failure counting (this file).
package backends

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sozu-go/sozu/proto/command"
	"github.com/sozu-go/sozu/worker/backends/h2c"
)

// Defaults of Options.
const (
	DefaultMaxFailures = 3
	DefaultMaxIdle     = 256
	DefaultIdleTimeout = 30 * time.Second
	DefaultAttempts    = 3

	// A backend marked down is tried again (one connection, as a probe)
	// once downRetryBase has passed since its last failure, then twice as
	// long after each new failure, up to downRetryMax: a restarted backend
	// gets traffic back without health checks, as upstream's exponential
	// backoff does (1 s to 64 s).
	downRetryBase = time.Second
	downRetryMax  = 64 * time.Second
)

// Options tune a Registry; zero fields take the defaults above.
type Options struct {
	MaxFailures int           // consecutive connect failures that mark a backend down
	MaxIdle     int           // idle keep-alive connections kept per backend
	IdleTimeout time.Duration // an idle connection older than this is closed, not reused
	Attempts    int           // connect attempts per request, each on another backend when there is one

	// OnEvent receives BACKEND_DOWN, BACKEND_UP, NO_AVAILABLE_BACKENDS
	// and REMOVED_BACKEND_HAS_NO_CONNECTIONS events (the last once per
	// removed backend, when its last connection in use is released, or
	// from Update when it had none). It is called from connection
	// goroutines and from Update, concurrently, and must not block for
	// long. May be nil.
	OnEvent func(*command.Event)
	// Dial opens a connection (tests replace it); nil means a net.Dialer.
	Dial func(ctx context.Context, addr string) (net.Conn, error)
	// Now is the clock of the retry backoff (tests replace it); nil means
	// time.Now.
	Now func() time.Time
}

func (o *Options) setDefaults() {
	if o.MaxFailures <= 0 {
		o.MaxFailures = DefaultMaxFailures
	}
	if o.MaxIdle <= 0 {
		o.MaxIdle = DefaultMaxIdle
	}
	if o.IdleTimeout <= 0 {
		o.IdleTimeout = DefaultIdleTimeout
	}
	if o.Attempts <= 0 {
		o.Attempts = DefaultAttempts
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Dial == nil {
		var d net.Dialer
		o.Dial = func(ctx context.Context, addr string) (net.Conn, error) {
			return d.DialContext(ctx, "tcp", addr)
		}
	}
}

// Spec is one backend as the configuration states it.
type Spec struct {
	ClusterID string
	ID        string
	Addr      netip.AddrPort
	Weight    int // relative weight for every algorithm; <= 0 only when no backend with a weight can serve
	Backup    bool
	// StickyID is the value of the sticky cookie that sends a client of a
	// sticky cluster to this backend (sticky.go); "" takes no sticky
	// clients. The caller gives a valid cookie value (see
	// proxy.StickyCookieValue).
	StickyID string
}

// Backend is one backend server of a cluster. It outlives configuration
// snapshots as long as its (cluster, id, address) stays configured, so its
// pool and failure count survive unrelated changes. Safe for concurrent use.
type Backend struct {
	ClusterID string
	ID        string
	Addr      netip.AddrPort
	addr      string // Addr formatted once

	weight   atomic.Int64
	backup   atomic.Bool
	stickyID atomic.Pointer[string] // see StickyID

	// StaleClosed counts idle keep-alive connections found closed by the
	// backend (or otherwise unusable) when they were taken from the pool.
	StaleClosed atomic.Int64

	seed        uint64       // hashing identity (seedOf)
	connectEWMA atomic.Int64 // peak-weighted moving average of connect times, ns

	fails    atomic.Int32 // consecutive connect failures
	lastFail atomic.Int64 // time of the last one (UnixNano of Options.Now)
	down     atomic.Bool
	hcDown   atomic.Bool  // marked down by the active health check (health.go)
	inflight atomic.Int64 // connections checked out
	removed  atomic.Bool
	drained  atomic.Bool // REMOVED_BACKEND_HAS_NO_CONNECTIONS sent (or never to be sent)

	h2 atomic.Pointer[h2c.Pool] // HTTP/2 connections (h2.go); nil until the first one

	mu   sync.Mutex
	idle []*Conn // LIFO
	reg  *Registry
}

// Down reports whether the backend is marked down by failure counting.
func (b *Backend) Down() bool { return b.down.Load() }

// Inflight returns the number of connections to b currently in use.
func (b *Backend) Inflight() int64 { return b.inflight.Load() }

// Idle returns the number of idle keep-alive connections pooled for b.
func (b *Backend) Idle() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.idle)
}

// AddrString is Addr formatted as "ip:port".
func (b *Backend) AddrString() string { return b.addr }

func key(s Spec) string { return s.ClusterID + "\x00" + s.ID + "\x00" + s.Addr.String() }

// Registry owns every Backend of a worker. Update is called by one goroutine
// (the worker's control loop); the Sets it returns are used concurrently.
type Registry struct {
	opt      Options
	backends map[string]*Backend
	failOpen atomic.Int64 // routing decisions that fell back to backends out of rotation
	// connectErrors counts the failed connects (failed), every backend.
	connectErrors atomic.Int64
}

// ConnectErrors returns how many backend connects failed (refused,
// unreachable, timed out: each attempt): upstream's
// backend.connections.error. Safe for concurrent use.
func (r *Registry) ConnectErrors() int64 { return r.connectErrors.Load() }

// FailOpen returns how many routing decisions found no backend of their
// cluster in rotation and took one out of it (fail open): upstream's
// backends.fail_open. Safe for concurrent use.
func (r *Registry) FailOpen() int64 { return r.failOpen.Load() }

// NewRegistry returns an empty registry.
func NewRegistry(opt Options) *Registry {
	opt.setDefaults()
	return &Registry{opt: opt, backends: map[string]*Backend{}}
}

// Update makes specs the configured backends and returns one Set per
// cluster id found in specs, with the policy policies[id] (RoundRobin when
// absent). Backends kept from the previous call keep their pools and
// failure counts; removed ones close their idle connections, and their
// connections in use are closed when released. Not safe for concurrent use
// with itself.
func (r *Registry) Update(specs []Spec, policies map[string]Policy) map[string]*Set {
	next := make(map[string]*Backend, len(specs))
	sets := map[string]*Set{}
	var primaries, backups = map[string][]*Backend{}, map[string][]*Backend{}
	for _, s := range specs {
		k := key(s)
		b := r.backends[k]
		if b == nil {
			b = &Backend{ClusterID: s.ClusterID, ID: s.ID, Addr: s.Addr, addr: s.Addr.String(), reg: r,
				seed: seedOf(s.ClusterID, s.ID)}
		}
		b.weight.Store(int64(s.Weight))
		b.backup.Store(s.Backup)
		if b.StickyID() != s.StickyID {
			id := s.StickyID
			b.stickyID.Store(&id)
		}
		next[k] = b
		set := sets[s.ClusterID]
		if set == nil {
			set = &Set{ClusterID: s.ClusterID, Policy: policies[s.ClusterID], reg: r}
			sets[s.ClusterID] = set
		}
		if s.Backup {
			backups[s.ClusterID] = append(backups[s.ClusterID], b)
		} else {
			primaries[s.ClusterID] = append(primaries[s.ClusterID], b)
		}
	}
	for id, set := range sets {
		set.primaries = newPool(primaries[id], set.Policy.Algorithm)
		set.backups = newPool(backups[id], set.Policy.Algorithm)
		set.buildSticky()
	}
	for k, b := range r.backends {
		if next[k] == nil {
			b.removed.Store(true)
			b.closeIdle()
			if b.inflight.Load() == 0 {
				b.reportDrained()
			}
		}
	}
	r.backends = next
	return sets
}

// Close closes every idle connection and marks every backend removed.
func (r *Registry) Close() {
	for _, b := range r.backends {
		b.drained.Store(true) // shutting down: no removal to report
		b.removed.Store(true)
		b.closeIdle()
	}
}

// putBack gives back one connection slot of b taken by connect; the last
// slot of a removed backend reports it drained.
func (b *Backend) putBack() {
	if b.inflight.Add(-1) == 0 && b.removed.Load() {
		b.reportDrained()
	}
}

// reportDrained emits REMOVED_BACKEND_HAS_NO_CONNECTIONS once for b.
// Update stores removed before it reads inflight and putBack decrements
// inflight before it reads removed, so at least one of them sees both
// conditions; drained makes it exactly one.
func (b *Backend) reportDrained() {
	if b.drained.CompareAndSwap(false, true) {
		b.reg.emit(command.EventKind_REMOVED_BACKEND_HAS_NO_CONNECTIONS, b, b.ClusterID)
	}
}

func (r *Registry) emit(kind command.EventKind, b *Backend, cluster string) {
	if r.opt.OnEvent == nil {
		return
	}
	ev := &command.Event{Kind: kind.Enum(), ClusterId: &cluster}
	if b != nil {
		id := b.ID
		ev.BackendId = &id
		ev.Address = command.NewSocketAddress(b.Addr)
	}
	r.opt.OnEvent(ev)
}

// Set is the immutable list of one cluster's backends in a snapshot. Its
// methods are safe for concurrent use.
type Set struct {
	ClusterID string
	Policy    Policy
	primaries *pool
	backups   *pool               // used only when no primary is up
	sticky    map[string]*Backend // by sticky id (sticky.go); nil when none has one
	rr        atomic.Uint64
	reg       *Registry
}

// Len returns the number of backends, backups included.
func (s *Set) Len() int {
	if s == nil {
		return 0
	}
	return len(s.primaries.l) + len(s.backups.l)
}

// Backends returns the backends, primaries first. The slice is new.
func (s *Set) Backends() []*Backend {
	if s == nil {
		return nil
	}
	return append(append([]*Backend(nil), s.primaries.l...), s.backups.l...)
}

// ErrNoBackend is returned by Connect for a cluster without backends.
var ErrNoBackend = errors.New("no backend")

// ConnectError reports that every connect attempt failed.
type ConnectError struct {
	ClusterID string
	Attempts  int
	Last      error
}

func (e *ConnectError) Error() string {
	return fmt.Sprintf("cluster %s: %d connect attempts failed, last: %v", e.ClusterID, e.Attempts, e.Last)
}

func (e *ConnectError) Unwrap() error { return e.Last }

// maxTried bounds the backends one Connect call remembers as tried.
const maxTried = 8

// Connect returns a connection to a backend of s: an idle pooled one when
// the picked backend has one (fresh false; checked alive first, see
// takeIdle), else a new one dialed within
// timeout. A failed dial counts against that backend and the next attempt
// picks another one when there is another; there are at most
// Options.Attempts dials. With fresh true the pool is bypassed (used to
// retry an exchange that failed on a reused connection). Errors:
// ErrNoBackend, or a *ConnectError.
//
// When the cluster's Policy.HTTP2 is set, the connection is a stream on a
// pooled HTTP/2 connection instead (see openStream); fresh is then
// irrelevant, since a pooled HTTP/2 connection that the backend closes
// refuses the streams it did not process.
//
// key is the client's balancing key (KeyOf its IP), used by HRW and
// Maglev; other algorithms ignore it.
func (s *Set) Connect(ctx context.Context, timeout time.Duration, fresh bool, key uint64) (*Conn, error) {
	return s.connect(ctx, time.Now(), timeout, fresh, key, nil)
}

// ConnectAt is Connect for a caller that has just read the clock: now
// judges the age of idle connections (the proxy's sessions read the clock
// once per wait, worker/proxy/clock.go).
func (s *Set) ConnectAt(ctx context.Context, now time.Time, timeout time.Duration, fresh bool, key uint64) (*Conn, error) {
	return s.connect(ctx, now, timeout, fresh, key, nil)
}

// connect is Connect whose first attempt goes to first when not nil; now
// is the time, read again after a failed dial.
func (s *Set) connect(ctx context.Context, now time.Time, timeout time.Duration, fresh bool, key uint64, first *Backend) (*Conn, error) {
	if s.Len() == 0 {
		return nil, ErrNoBackend
	}
	var tried [maxTried]*Backend
	nTried := 0
	var last error
	attempts := 0
	for attempts < s.reg.opt.Attempts {
		b := first
		if b != nil {
			first = nil
		} else {
			var failOpen bool
			b, failOpen = s.pickRound(tried[:nTried], key)
			if failOpen && nTried == 0 {
				s.FailedOpen() // the routing decision, not a retry after a failed connect
			}
		}
		if b == nil {
			break
		}
		if nTried < maxTried {
			tried[nTried] = b
			nTried++
		}
		b.inflight.Add(1)
		if s.Policy.HTTP2 {
			attempts++
			c, err := s.openStream(ctx, b, timeout)
			if err == nil {
				return c, nil
			}
			b.putBack()
			last = err
			if ctx.Err() != nil {
				break
			}
			continue
		}
		if !fresh {
			if c := b.takeIdle(now); c != nil {
				return c, nil
			}
		}
		attempts++
		dctx, cancel := context.WithTimeout(ctx, timeout)
		start := time.Now()
		nc, err := s.reg.opt.Dial(dctx, b.addr)
		cancel()
		var took time.Duration
		if err == nil {
			took = time.Since(start)
			b.observeConnect(took)
		}
		if err != nil {
			b.putBack()
			last = err
			s.failed(b)
			if ctx.Err() != nil {
				break
			}
			now = time.Now() // the dial took its time
			continue
		}
		s.succeeded(b)
		return &Conn{Conn: nc, Backend: b, ConnectTime: took}, nil
	}
	if last == nil {
		last = ErrNoBackend
	}
	return nil, &ConnectError{ClusterID: s.ClusterID, Attempts: attempts, Last: last}
}

// observeConnect folds a successful connect's duration into b's peak
// EWMA: a slower connect is taken at once, a faster one moves the average
// by 1/8.
func (b *Backend) observeConnect(d time.Duration) {
	for {
		old := b.connectEWMA.Load()
		v := int64(d)
		if old != 0 && v < old {
			v = old + (v-old)/8
		}
		if b.connectEWMA.CompareAndSwap(old, v) {
			return
		}
	}
}

// load is b's load under metric m (see Metric).
func (b *Backend) load(m Metric) int64 {
	n := b.inflight.Load()
	if m == ConnectionTime {
		return (n + 1) * max(b.connectEWMA.Load(), 1)
	}
	return n
}

// failed counts a connect failure and marks b down at the threshold.
func (s *Set) failed(b *Backend) {
	s.reg.connectErrors.Add(1)
	b.lastFail.Store(s.reg.opt.Now().UnixNano())
	if b.fails.Add(1) < int32(s.reg.opt.MaxFailures) {
		return
	}
	s.mark(b, &b.down, true, false)
}

// succeeded resets b's failure count and marks it up.
func (s *Set) succeeded(b *Backend) {
	if b.fails.Load() != 0 {
		b.fails.Store(0)
	}
	if b.down.Load() {
		s.mark(b, &b.down, false, false)
	}
}

// retryDue reports whether b, marked down, may be tried again: the wait
// after its last failure (see downRetryBase) is over.
func (b *Backend) retryDue() bool {
	extra := int(b.fails.Load()) - b.reg.opt.MaxFailures // failures since marked down
	wait := downRetryMax
	if extra < 6 {
		wait = downRetryBase << max(extra, 0)
	}
	return b.reg.opt.Now().UnixNano()-b.lastFail.Load() >= int64(wait)
}

func (s *Set) anyUp() bool {
	for _, l := range [2][]*Backend{s.primaries.l, s.backups.l} {
		for _, b := range l {
			if b.inRotation() {
				return true
			}
		}
	}
	return false
}
