// Package backends holds each cluster's backend servers for the proxy: selection
// (round robin, weighted random, least loaded, power of two), keep-alive pools, connect retries and passive failure counting.
package backends

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/sozu-go/sozu/proto/command"
	"github.com/sozu-go/sozu/worker/deadline"
)

// Policy is a load-balancing algorithm.
type Policy uint8

// Policies (upstream's LoadBalancingAlgorithms; HRW and MAGLEV, meant for
// UDP flows, fall back to RoundRobin).
const (
	RoundRobin  Policy = iota // rotate through the backends
	Random                    // random pick, proportional to the weights
	LeastLoaded               // fewest requests in flight
	PowerOfTwo                // the less loaded of two random picks
)

// PolicyFrom maps a cluster's load_balancing value to a Policy.
func PolicyFrom(a command.LoadBalancingAlgorithms) Policy {
	switch a {
	case command.LoadBalancingAlgorithms_RANDOM:
		return Random
	case command.LoadBalancingAlgorithms_LEAST_LOADED:
		return LeastLoaded
	case command.LoadBalancingAlgorithms_POWER_OF_TWO:
		return PowerOfTwo
	}
	return RoundRobin
}

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

	// OnEvent receives BACKEND_DOWN, BACKEND_UP and NO_AVAILABLE_BACKENDS
	// events. It is called from connection goroutines, concurrently, and
	// must not block for long. May be nil.
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
	Weight    int // relative weight for Random; <= 0 never picked by Random
	Backup    bool
}

// Backend is one backend server of a cluster. It outlives configuration
// snapshots as long as its (cluster, id, address) stays configured, so its
// pool and failure count survive unrelated changes. Safe for concurrent use.
type Backend struct {
	ClusterID string
	ID        string
	Addr      netip.AddrPort
	addr      string // Addr formatted once

	weight atomic.Int64
	backup atomic.Bool

	// StaleClosed counts idle keep-alive connections found closed by the
	// backend (or otherwise unusable) when they were taken from the pool.
	StaleClosed atomic.Int64

	fails    atomic.Int32 // consecutive connect failures
	lastFail atomic.Int64 // time of the last one (UnixNano of Options.Now)
	down     atomic.Bool
	inflight atomic.Int64 // connections checked out
	removed  atomic.Bool

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

// Conn is a connection to a backend, checked out of its pool or freshly
// dialed. It must be given back with Release exactly once.
type Conn struct {
	net.Conn
	Backend *Backend
	Reused  bool // it served an earlier exchange: a failure before any answer byte may be a stale keep-alive close
	idleAt  time.Time
	probe   *idleProbe // see idleAlive; nil until the first check

	// ReadDL and WriteDL remember the deadlines armed on the connection
	// (see package deadline); they belong to whoever holds the Conn.
	ReadDL, WriteDL deadline.Lazy
}

// Release returns c to its backend: to the idle pool when reusable is true
// (the exchange finished cleanly and both sides keep the connection alive),
// else it is closed.
func (c *Conn) Release(reusable bool) {
	b := c.Backend
	b.inflight.Add(-1)
	if reusable && !b.removed.Load() {
		c.Reused = true
		c.idleAt = time.Now()
		b.mu.Lock()
		if len(b.idle) < b.reg.opt.MaxIdle {
			b.idle = append(b.idle, c)
			b.mu.Unlock()
			return
		}
		b.mu.Unlock()
	}
	c.Conn.Close()
}

// takeIdle pops the most recently used idle connection that is still
// young enough and still open: one the backend closed (or reset, or wrote
// to, unasked) while it was idle is closed and the next one is tried, so
// that no request is sent on a connection known to be dead (see
// idleAlive).
func (b *Backend) takeIdle(now time.Time) *Conn {
	for {
		b.mu.Lock()
		n := len(b.idle)
		if n == 0 {
			b.mu.Unlock()
			return nil
		}
		c := b.idle[n-1]
		b.idle[n-1] = nil
		b.idle = b.idle[:n-1]
		b.mu.Unlock()
		if now.Sub(c.idleAt) < b.reg.opt.IdleTimeout && c.idleAlive() {
			return c
		}
		b.StaleClosed.Add(1)
		c.Conn.Close()
	}
}

// idleAlive reports whether an idle keep-alive connection is still usable,
// without blocking: one non-blocking read(2) must find nothing to read
// (EAGAIN). End of file (the backend closed it, as servers do after their
// own idle timeout), a reset, or bytes nobody asked for all mean the
// connection must not carry a request. Connections that are no sockets
// (tests) are taken as alive. The probe is made once per connection, so
// that a check allocates nothing.
func (c *Conn) idleAlive() bool {
	if c.probe == nil {
		sc, ok := c.Conn.(syscall.Conn)
		if !ok {
			return true
		}
		rc, err := sc.SyscallConn()
		if err != nil {
			return false
		}
		c.probe = &idleProbe{rc: rc}
		c.probe.fn = c.probe.read
	}
	return c.probe.check()
}

// idleProbe is the state of Conn.idleAlive.
type idleProbe struct {
	rc    syscall.RawConn
	fn    func(fd uintptr) bool // read, bound once
	alive bool
	buf   [1]byte
}

func (p *idleProbe) read(fd uintptr) bool {
	_, err := unix.Read(int(fd), p.buf[:])
	p.alive = err == unix.EAGAIN
	return true // never wait for readability
}

func (p *idleProbe) check() bool {
	p.alive = false
	if err := p.rc.Read(p.fn); err != nil {
		return false
	}
	return p.alive
}

func (b *Backend) closeIdle() {
	b.mu.Lock()
	idle := b.idle
	b.idle = nil
	b.mu.Unlock()
	for _, c := range idle {
		c.Conn.Close()
	}
}

func key(s Spec) string { return s.ClusterID + "\x00" + s.ID + "\x00" + s.Addr.String() }

// Registry owns every Backend of a worker. Update is called by one goroutine
// (the worker's control loop); the Sets it returns are used concurrently.
type Registry struct {
	opt      Options
	backends map[string]*Backend
}

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
	for _, s := range specs {
		k := key(s)
		b := r.backends[k]
		if b == nil {
			b = &Backend{ClusterID: s.ClusterID, ID: s.ID, Addr: s.Addr, addr: s.Addr.String(), reg: r}
		}
		b.weight.Store(int64(s.Weight))
		b.backup.Store(s.Backup)
		next[k] = b
		set := sets[s.ClusterID]
		if set == nil {
			set = &Set{ClusterID: s.ClusterID, Policy: policies[s.ClusterID], reg: r}
			sets[s.ClusterID] = set
		}
		if s.Backup {
			set.backups = append(set.backups, b)
		} else {
			set.primaries = append(set.primaries, b)
		}
	}
	for k, b := range r.backends {
		if next[k] == nil {
			b.removed.Store(true)
			b.closeIdle()
		}
	}
	r.backends = next
	return sets
}

// Close closes every idle connection and marks every backend removed.
func (r *Registry) Close() {
	for _, b := range r.backends {
		b.removed.Store(true)
		b.closeIdle()
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
	primaries []*Backend
	backups   []*Backend // used only when no primary is up
	rr        atomic.Uint64
	reg       *Registry
}

// Len returns the number of backends, backups included.
func (s *Set) Len() int {
	if s == nil {
		return 0
	}
	return len(s.primaries) + len(s.backups)
}

// Backends returns the backends, primaries first. The slice is new.
func (s *Set) Backends() []*Backend {
	if s == nil {
		return nil
	}
	return append(append([]*Backend(nil), s.primaries...), s.backups...)
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
// the picked backend has one (fresh false), else a new one dialed within
// timeout. A failed dial counts against that backend and the next attempt
// picks another one when there is another; there are at most
// Options.Attempts dials. With fresh true the pool is bypassed (used to
// retry an exchange that failed on a reused connection). Errors:
// ErrNoBackend, or a *ConnectError.
func (s *Set) Connect(ctx context.Context, timeout time.Duration, fresh bool) (*Conn, error) {
	if s.Len() == 0 {
		return nil, ErrNoBackend
	}
	var tried [maxTried]*Backend
	nTried := 0
	var last error
	attempts := 0
	for attempts < s.reg.opt.Attempts {
		b := s.pick(tried[:nTried])
		if b == nil {
			break
		}
		if nTried < maxTried {
			tried[nTried] = b
			nTried++
		}
		b.inflight.Add(1)
		if !fresh {
			if c := b.takeIdle(time.Now()); c != nil {
				return c, nil
			}
		}
		attempts++
		dctx, cancel := context.WithTimeout(ctx, timeout)
		nc, err := s.reg.opt.Dial(dctx, b.addr)
		cancel()
		if err != nil {
			b.inflight.Add(-1)
			last = err
			s.failed(b)
			if ctx.Err() != nil {
				break
			}
			continue
		}
		s.succeeded(b)
		return &Conn{Conn: nc, Backend: b}, nil
	}
	if last == nil {
		last = ErrNoBackend
	}
	return nil, &ConnectError{ClusterID: s.ClusterID, Attempts: attempts, Last: last}
}

// failed counts a connect failure and marks b down at the threshold.
func (s *Set) failed(b *Backend) {
	b.lastFail.Store(s.reg.opt.Now().UnixNano())
	if b.fails.Add(1) < int32(s.reg.opt.MaxFailures) || !b.down.CompareAndSwap(false, true) {
		return
	}
	s.reg.emit(command.EventKind_BACKEND_DOWN, b, s.ClusterID)
	if !s.anyUp() {
		s.reg.emit(command.EventKind_NO_AVAILABLE_BACKENDS, nil, s.ClusterID)
	}
}

// succeeded resets b's failure count and marks it up.
func (s *Set) succeeded(b *Backend) {
	if b.fails.Load() != 0 {
		b.fails.Store(0)
	}
	if b.down.Load() && b.down.CompareAndSwap(true, false) {
		s.reg.emit(command.EventKind_BACKEND_UP, b, s.ClusterID)
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
	for _, l := range [2][]*Backend{s.primaries, s.backups} {
		for _, b := range l {
			if !b.down.Load() {
				return true
			}
		}
	}
	return false
}

// pick selects a backend not in tried: among the primaries that are up (or
// down but due for a retry), else the backups that are, else (so that a
// recovered backend is found without active health checks) among all the
// untried backends, primaries first. nil when every backend was tried.
func (s *Set) pick(tried []*Backend) *Backend {
	if b := s.choose(s.primaries, tried, true); b != nil {
		return b
	}
	if b := s.choose(s.backups, tried, true); b != nil {
		return b
	}
	if b := s.choose(s.primaries, tried, false); b != nil {
		return b
	}
	return s.choose(s.backups, tried, false)
}

func eligible(b *Backend, tried []*Backend, upOnly bool) bool {
	if upOnly && b.down.Load() && !b.retryDue() {
		return false
	}
	for _, t := range tried {
		if t == b {
			return false
		}
	}
	return true
}

// choose applies the policy to the eligible backends of l.
func (s *Set) choose(l []*Backend, tried []*Backend, upOnly bool) *Backend {
	n := len(l)
	if n == 0 {
		return nil
	}
	switch s.Policy {
	case Random:
		total := int64(0)
		for _, b := range l {
			if w := b.weight.Load(); w > 0 && eligible(b, tried, upOnly) {
				total += w
			}
		}
		if total == 0 {
			return s.nth(l, tried, upOnly, rand.Uint64()) // no weights: uniform
		}
		x := rand.Int64N(total)
		for _, b := range l {
			if w := b.weight.Load(); w > 0 && eligible(b, tried, upOnly) {
				if x < w {
					return b
				}
				x -= w
			}
		}
		return nil
	case LeastLoaded:
		var best *Backend
		for _, b := range l {
			if eligible(b, tried, upOnly) && (best == nil || b.inflight.Load() < best.inflight.Load()) {
				best = b
			}
		}
		return best
	case PowerOfTwo:
		a := s.nth(l, tried, upOnly, rand.Uint64())
		b := s.nth(l, tried, upOnly, rand.Uint64())
		if a == nil || (b != nil && b.inflight.Load() < a.inflight.Load()) {
			return b
		}
		return a
	}
	return s.nth(l, tried, upOnly, s.rr.Add(1)-1)
}

// nth picks the backend of turn i among the eligible backends of l.
//
// A first pick (nothing tried yet) counts eligible backends only: the
// backends up share the turns of those down evenly, instead of handing
// them all to their successor (upstream's round robin runs over the
// available backends the same way). A retry takes the first eligible
// backend from position i mod len(l), as turns advance one per pick: the
// retries after a failing backend still up go round like the turns.
func (s *Set) nth(l []*Backend, tried []*Backend, upOnly bool, i uint64) *Backend {
	n := len(l)
	if len(tried) > 0 {
		start := int(i % uint64(n))
		for k := 0; k < n; k++ {
			if b := l[(start+k)%n]; eligible(b, tried, upOnly) {
				return b
			}
		}
		return nil
	}
	m := 0
	for _, b := range l {
		if eligible(b, tried, upOnly) {
			m++
		}
	}
	if m == 0 {
		return nil
	}
	k := int(i % uint64(m))
	for _, b := range l {
		if eligible(b, tried, upOnly) {
			if k == 0 {
				return b
			}
			k--
		}
	}
	return nil // the eligible set changed meanwhile
}
