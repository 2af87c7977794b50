package udp

import (
	"errors"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/oklog/ulid/v2"
	"github.com/sirupsen/logrus"

	"github.com/sozu-go/sozu/worker/accesslog"
	"github.com/sozu-go/sozu/worker/backends"
	"github.com/sozu-go/sozu/worker/metrics"
	"github.com/sozu-go/sozu/worker/proxyproto"
)

// Options are the worker-wide settings of a Server.
type Options struct {
	Log *logrus.Entry // nil discards
	// Now is the clock (tests replace it); nil means time.Now.
	Now func() time.Time
	// OnFlowEnd receives one record per ended flow, after its access
	// record is logged, from the goroutine that ended it (never under the
	// server's lock); may be nil.
	OnFlowEnd func(FlowEnd)
	// Access receives one access record per ended flow (accesslog.go); nil
	// logs nothing.
	Access *accesslog.Logger
	// Metrics records flows, datagrams and bytes as they go; nil records
	// nothing.
	Metrics *metrics.Registry
	// NewID makes the flows' ids for the access log; nil means ulid.Make.
	NewID func() ulid.ULID
}

// FlowEnd describes a flow that ended.
type FlowEnd struct {
	Listener  netip.AddrPort // the listener's address
	Client    netip.AddrPort
	ClusterID string
	BackendID string
	Backend   netip.AddrPort
	Requests  uint32    // client datagrams relayed
	Responses uint32    // replies relayed
	BytesIn   uint64    // client payload bytes relayed (PROXY headers not counted)
	BytesOut  uint64    // reply bytes relayed
	Start     time.Time // the flow's first datagram
	Duration  time.Duration
	Reason    string          // "responses", "idle", "evicted", "backend error", "closed"
	Tags      *accesslog.Tags // the listener's frontend tags; nil for none
}

// Counters are a server's drop counts, by cause. Safe for concurrent use.
type Counters struct {
	Oversized  atomic.Int64 // datagrams over max_rx_datagram_size, either direction
	Invalid    atomic.Int64 // empty client datagrams
	NoCluster  atomic.Int64 // datagrams on a listener without a cluster
	NoBackend  atomic.Int64 // datagrams of a new flow that found no backend
	TableFull  atomic.Int64 // new flows refused: the table is full of active flows
	SourceCap  atomic.Int64 // new flows refused: the client source (IPv4 address, IPv6 /64) holds its share
	DialFailed atomic.Int64 // new flows whose backend socket could not be opened
	Loop       atomic.Int64 // datagrams from a UDP listener's address or a backend's (see loops)
	Panics     atomic.Int64 // recovered panics
}

// Server relays the datagrams of one UDP listener. Its methods are safe for
// concurrent use.
type Server struct {
	pc    *net.UDPConn
	local netip.AddrPort // pc's address, in the process's set (local)
	cfg   atomic.Pointer[Listener]
	opt   Options

	mu             sync.Mutex
	flows          *table
	closed         bool
	lastRefusalLog time.Time      // see refused
	wg             sync.WaitGroup // backend readers

	// Drops counts the datagrams and flows refused, by cause.
	Drops Counters
}

// NewServer returns a server for pc with the configuration cfg, which it
// takes ownership of. Call Serve to start relaying.
func NewServer(pc *net.UDPConn, cfg *Listener, opt Options) *Server {
	if opt.Log == nil {
		l := logrus.New()
		l.Out = discard{}
		opt.Log = logrus.NewEntry(l)
	}
	if opt.Now == nil {
		opt.Now = time.Now
	}
	s := &Server{pc: pc, opt: opt}
	if a, ok := pc.LocalAddr().(*net.UDPAddr); ok {
		s.local = netip.AddrPortFrom(a.AddrPort().Addr().Unmap(), a.AddrPort().Port())
		local.add(s.local)
	}
	c := cfg.withDefaults()
	s.cfg.Store(c)
	s.flows = newTable(c.MaxFlows)
	return s
}

type discard struct{}

func (discard) Write(b []byte) (int, error) { return len(b), nil }

// Swap makes cfg the configuration of the flows started from now on; live
// flows keep their cluster and backend. A smaller max_flows lets the live
// flows over it end on their own.
func (s *Server) Swap(cfg *Listener) {
	c := cfg.withDefaults()
	s.cfg.Store(c)
	s.mu.Lock()
	s.flows.resize(c.MaxFlows)
	s.mu.Unlock()
}

// Config returns the current configuration.
func (s *Server) Config() *Listener { return s.cfg.Load() }

// Addr returns the listener's address.
func (s *Server) Addr() net.Addr { return s.pc.LocalAddr() }

// Sessions returns the number of live flows.
func (s *Server) Sessions() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.flows.len()
}

// Serve reads the listener's datagrams until the socket is closed, and
// relays each to its flow's backend. It returns nil once Close or
// Shutdown closed the socket.
func (s *Server) Serve() error {
	// Room for the largest datagram, whatever the limit when the read
	// began: the limit is the one in force when the datagram came, and a
	// datagram over it is told from one at it.
	buf := make([]byte, maxDatagram+1)
	var scratch []byte // PROXY header and payload, when a header is sent
	for {
		n, _, flags, client, err := s.pc.ReadMsgUDPAddrPort(buf, nil)
		cfg := s.cfg.Load()
		if err != nil {
			if s.isClosed() || errors.Is(err, net.ErrClosed) {
				return nil
			}
			if isTransient(err) {
				continue
			}
			return err
		}
		if n > cfg.MaxDatagram || flags&syscall.MSG_TRUNC != 0 {
			s.Drops.Oversized.Add(1)
			continue
		}
		if n == 0 {
			// An empty datagram is not a valid flow trigger (upstream's
			// SourceTupleExtractor, "silence is a virtue"): dropped before
			// any lookup, as upstream drops it, so that it never opens a
			// socket and a goroutine.
			s.Drops.Invalid.Add(1)
			continue
		}
		scratch = s.relay(cfg, client, buf[:n], scratch)
	}
}

// isTransient reports whether a read error on the listener leaves it
// usable: an ICMP error queued on the socket (ECONNREFUSED and the like)
// for a reply sent to a client that is gone.
func isTransient(err error) bool {
	return errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.EHOSTUNREACH) ||
		errors.Is(err, syscall.ENETUNREACH) || errors.Is(err, syscall.EMSGSIZE)
}

// relay sends one client datagram to its flow's backend, starting a flow
// when the client has none. scratch is reused for the PROXY header and
// returned (possibly grown).
func (s *Server) relay(cfg *Listener, client netip.AddrPort, payload, scratch []byte) []byte {
	defer func() {
		if r := recover(); r != nil {
			s.Drops.Panics.Add(1)
			s.opt.Log.Errorf("client %v: panic relaying a datagram: %v", client, r)
		}
	}()
	client = netip.AddrPortFrom(client.Addr().Unmap(), client.Port())
	if !client.IsValid() || client.Port() == 0 {
		return scratch // no reply can reach it
	}
	f, out, scratch := s.prepare(cfg, client, payload, scratch)
	if f == nil {
		return scratch
	}
	if _, err := f.conn.Write(out); err != nil {
		// ECONNREFUSED: an earlier datagram drew an ICMP port unreachable
		// from the backend. The flow ends; the next datagram starts another.
		s.end(f, "backend error")
	}
	return scratch
}

// prepare finds or starts the flow of client and accounts payload to it,
// under mu (released even if something panics). It returns the flow (nil
// when the datagram is dropped), the bytes to send its backend (payload,
// or the PROXY header and payload in scratch) and scratch.
func (s *Server) prepare(cfg *Listener, client netip.AddrPort, payload, scratch []byte) (*flow, []byte, []byte) {
	now := s.opt.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, nil, scratch
	}
	f := s.flows.lookup(client)
	dst := cfg.Addr
	if cfg.PublicAddr.IsValid() {
		dst = cfg.PublicAddr
	}
	header := false // a PROXY header goes with this datagram
	if f != nil {
		header = f.cluster.SendProxy && (!f.proxySent || f.cluster.ProxyEveryDatagram)
	} else {
		header = cfg.Cluster != nil && cfg.Cluster.SendProxy
	}
	if header && len(payload)+headerLen(client, dst) > maxDatagram {
		// Header and payload make more than a UDP datagram holds: the
		// write would fail (EMSGSIZE). Dropped as oversized, before any
		// flow or count; the flow, if any, goes on.
		s.Drops.Oversized.Add(1)
		return nil, nil, scratch
	}
	if f == nil {
		var err error
		if f, err = s.start(cfg, client, now); err != nil || f == nil {
			return nil, nil, scratch
		}
	}
	f.requests++
	f.bytesIn += uint64(len(payload))
	f.metrics.In(len(payload))
	f.lastClient = now
	s.flows.touch(f)
	if r := f.cluster.Requests; r > 0 && f.requests >= r {
		s.flows.retire(f)
	}
	out := payload
	if f.cluster.SendProxy && (!f.proxySent || f.cluster.ProxyEveryDatagram) {
		f.proxySent = true
		scratch = frame(scratch[:0], payload, client, dst)
		out = scratch
	}
	return f, out, scratch
}

// headerLen is the length of the DGRAM PROXY header frame writes for a
// datagram from client to dst: 28 bytes when both are IPv4, 52 otherwise.
func headerLen(client, dst netip.AddrPort) int {
	if client.Addr().Unmap().Is4() && dst.Addr().Unmap().Is4() {
		return 16 + 12
	}
	return 16 + 36
}

// frame appends to b the datagram a backend receives when a PROXY header
// goes with payload: a DGRAM PROXY v2 header from client to dst (IPv4-mapped
// addresses unmapped), then payload unchanged.
func frame(b, payload []byte, client, dst netip.AddrPort) []byte {
	b = proxyproto.AppendDgram(b, netip.AddrPortFrom(client.Addr().Unmap(), client.Port()),
		netip.AddrPortFrom(dst.Addr().Unmap(), dst.Port()))
	return append(b, payload...)
}

// start opens a flow for client: admission (per-source cap, table bound),
// backend choice, backend socket, reader goroutine. It returns nil (and
// counts the drop) when the datagram cannot be relayed. Called under mu.
func (s *Server) start(cfg *Listener, client netip.AddrPort, now time.Time) (*flow, error) {
	cl := cfg.Cluster
	if cl == nil || cl.Backends == nil {
		s.Drops.NoCluster.Add(1)
		return nil, nil
	}
	if loops(cfg, cl, client) {
		s.refused(now, "datagram from %v, the address of a UDP listener or of a backend of cluster %s (spoofed): its flow would loop, refused", client, cl.ID)
		s.Drops.Loop.Add(1)
		return nil, nil
	}
	evict, affinity, err := s.flows.admit(client, now)
	switch {
	case errors.Is(err, errSourceCap):
		s.refused(now, "client %v: its source %v holds its share of the flow table (%d flows): new flow refused", client.Addr(), sourceOf(client.Addr()), s.flows.perSource)
		s.Drops.SourceCap.Add(1)
		return nil, err
	case err != nil:
		s.refused(now, "flow table full (%d flows, none idle for %v): new flow from %v refused", s.flows.max, evictIdle, client)
		s.Drops.TableFull.Add(1)
		return nil, err
	}
	b := affinity
	// The affinity backend takes the new flow only while it is in
	// rotation: a new flow is a new selection, which skips backends the
	// health check holds down (upstream's LIFECYCLE.md, "Health Checks").
	if cl.BySourcePort || b == nil || b.HealthDown() || !inSet(cl.Backends, b) {
		b = cl.Backends.Pick(balanceKey(client, cl.BySourcePort))
	}
	if b == nil || (!cl.FailOpen && b.HealthDown()) {
		s.Drops.NoBackend.Add(1)
		return nil, nil
	}
	if b.HealthDown() {
		cl.Backends.FailedOpen() // every backend down: fail_open admits the flow
	}
	if !takeSocket() && !s.evictForSocket(&evict, now) {
		s.refused(now, "the worker's UDP flows hold %d%% of its open-file limit: new flow from %v refused", fdSharePercent, client)
		s.Drops.TableFull.Add(1)
		return nil, errTableFull
	}
	conn, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(b.Addr))
	if err != nil {
		releaseSocket()
		s.Drops.DialFailed.Add(1)
		s.opt.Log.Infof("client %v: opening a socket to backend %s of cluster %s: %v", client, b.ID, cl.ID, err)
		return nil, err
	}
	if evict != nil {
		s.endLocked(evict, "evicted")
	}
	f := &flow{client: client, cluster: cl, backend: b, conn: conn, started: now, lastClient: now, lastBackend: now,
		listener: cfg.Addr, tags: cfg.Tags, metrics: s.opt.Metrics.FlowStart(cl.ID, b.ID)}
	s.flows.insert(f)
	s.wg.Add(1)
	go s.replies(f, cfg)
	return f, nil
}

// evictForSocket makes room for a new flow's socket when the flows hold
// their share of the open-file limit: it ends the flow to evict (*evict,
// or else the least recently active one if silent for evictIdle, as a
// full table does) and takes its descriptor. It reports false when no
// flow of this listener may go. Called under mu.
func (s *Server) evictForSocket(evict **flow, now time.Time) bool {
	f := *evict
	if f == nil {
		f = s.flows.oldestIdle(now)
	}
	if f == nil {
		return false
	}
	s.endLocked(f, "evicted")
	*evict = nil
	return takeSocket()
}

// refusalLogEvery bounds the warnings about refused flows: one per
// interval per listener, whatever the rate of refusals (a flood must not
// become a flood of log lines).
const refusalLogEvery = 10 * time.Second

// refused logs a refused flow, at most once per refusalLogEvery. Called
// under mu.
func (s *Server) refused(now time.Time, format string, args ...any) {
	if now.Sub(s.lastRefusalLog) < refusalLogEvery {
		return
	}
	s.lastRefusalLog = now
	s.opt.Log.Warnf("UDP listener %s: "+format, append([]any{s.cfg.Load().Addr}, args...)...)
}

// inSet reports whether b is still a backend of set.
// loops reports whether client is an address the proxy's own traffic
// comes from or goes to: the listener's (its public address, or, for a
// listener on a wildcard address, its port on a loopback address), another
// UDP listener's of the process (local), or a backend's of cl. A datagram
// from there is spoofed, and its flow's replies would come back in as new
// datagrams without end (the UDP application-loop attack, CVE-2024-2169's
// class).
func loops(cfg *Listener, cl *Cluster, client netip.AddrPort) bool {
	same := func(a netip.AddrPort) bool {
		return a.IsValid() && a.Port() == client.Port() && a.Addr().Unmap() == client.Addr()
	}
	if same(cfg.Addr) || same(cfg.PublicAddr) {
		return true
	}
	if cfg.Addr.Addr().IsUnspecified() && cfg.Addr.Port() == client.Port() && client.Addr().IsLoopback() {
		return true
	}
	if local.has(client) {
		return true // another UDP listener of this process: the two would relay each other's replies
	}
	for _, b := range cl.Backends.Backends() {
		if same(b.Addr) {
			return true
		}
	}
	return false
}

func inSet(set *backends.Set, b *backends.Backend) bool {
	for _, x := range set.Backends() {
		if x == b {
			return true
		}
	}
	return false
}

// replies relays f's backend replies to its client from the listener's
// socket, until the flow ends: after its responses, when both directions
// were idle past their timeouts, on a backend error, or when the flow is
// ended elsewhere (its socket closed).
func (s *Server) replies(f *flow, cfg *Listener) {
	defer s.wg.Done()
	defer func() {
		if r := recover(); r != nil {
			s.Drops.Panics.Add(1)
			s.opt.Log.Errorf("client %v: panic relaying replies: %v", f.client, r)
			s.end(f, "closed")
		}
	}()
	rd, err := newReplyReader(f.conn)
	if err != nil {
		s.end(f, "backend error")
		return
	}
	for {
		deadline, closed := s.idleDeadline(f, cfg)
		if closed {
			return
		}
		f.conn.SetReadDeadline(deadline)
		buf, n, err := rd.read()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				if d, _ := s.idleDeadline(f, cfg); !s.opt.Now().Before(d) {
					s.end(f, "idle")
					return
				}
				continue
			}
			reason := "backend error"
			if errors.Is(err, net.ErrClosed) {
				reason = "closed"
			}
			s.end(f, reason)
			return
		}
		if n > s.cfg.Load().MaxDatagram { // the limit in force now
			rd.release()
			s.Drops.Oversized.Add(1)
			continue
		}
		done := s.countReply(f, n)
		if _, err := s.pc.WriteToUDPAddrPort(buf[:n], f.client); err != nil {
			s.opt.Log.Debugf("client %v: sending a reply: %v", f.client, err)
		}
		rd.release()
		if done {
			s.end(f, "responses")
			return
		}
	}
}

// idleDeadline returns when f is idle (its client silent for FrontTimeout
// and its backend for BackTimeout), and whether f has ended.
func (s *Server) idleDeadline(f *flow, cfg *Listener) (time.Time, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	d := f.lastClient.Add(cfg.FrontTimeout)
	if b := f.lastBackend.Add(cfg.BackTimeout); b.After(d) {
		d = b
	}
	return d, f.closed
}

// countReply accounts a reply of n bytes to f and reports whether it is
// the flow's last (responses reached). The last one retires the flow
// before it leaves: a client that sends again as soon as it has its last
// reply starts a new flow, rather than reaching this one as it closes.
func (s *Server) countReply(f *flow, n int) (last bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f.responses++
	f.bytesOut += uint64(n)
	f.metrics.Out(n)
	f.lastBackend = s.opt.Now()
	s.flows.touch(f)
	last = f.cluster.Responses > 0 && f.responses >= f.cluster.Responses
	if last {
		s.flows.retire(f)
	}
	return last
}

// end ends f, once: it leaves the table, its socket closes (which stops
// its reader) and OnFlowEnd hears of it.
func (s *Server) end(f *flow, reason string) {
	s.mu.Lock()
	rec, ok := s.endRecord(f, reason)
	s.mu.Unlock()
	if ok {
		s.report(rec)
	}
}

// endLocked is end for a caller holding mu: the record is built now and
// reported from another goroutine, so that OnFlowEnd never runs under mu.
func (s *Server) endLocked(f *flow, reason string) {
	if rec, ok := s.endRecord(f, reason); ok {
		go s.report(rec) // never call out while holding mu
	}
}

func (s *Server) endRecord(f *flow, reason string) (FlowEnd, bool) {
	if f.closed {
		return FlowEnd{}, false
	}
	f.closed, f.reason = true, reason
	s.flows.remove(f)
	f.conn.Close()
	releaseSocket()
	f.metrics.End()
	return FlowEnd{Listener: f.listener, Client: f.client, ClusterID: f.cluster.ID, BackendID: f.backend.ID, Backend: f.backend.Addr,
		Requests: f.requests, Responses: f.responses, BytesIn: f.bytesIn, BytesOut: f.bytesOut,
		Start: f.started, Duration: s.opt.Now().Sub(f.started), Reason: reason, Tags: f.tags}, true
}

// report hands an ended flow to the access log and to OnFlowEnd. Never
// called under mu.
func (s *Server) report(rec FlowEnd) {
	s.logFlow(&rec)
	if s.opt.OnFlowEnd != nil {
		s.opt.OnFlowEnd(rec)
	}
}

func (s *Server) isClosed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}

// StopAccepting closes the listener's socket: no datagram is read any more.
// Live flows go on relaying replies until they end or Close.
func (s *Server) StopAccepting() {
	s.mu.Lock()
	first := !s.closed
	s.closed = true
	s.mu.Unlock()
	s.pc.Close()
	if first && s.local.IsValid() {
		local.remove(s.local)
	}
}

// Shutdown stops reading the listener and ends every flow (a datagram
// protocol has nothing in flight to wait for), then waits for the readers.
func (s *Server) Shutdown() { s.Close() }

// Close stops reading the listener and ends every flow.
func (s *Server) Close() {
	s.StopAccepting()
	s.mu.Lock()
	var recs []FlowEnd
	for _, f := range s.flows.all() {
		if rec, ok := s.endRecord(f, "closed"); ok {
			recs = append(recs, rec)
		}
	}
	s.mu.Unlock()
	for _, r := range recs {
		s.report(r)
	}
	s.wg.Wait()
}
