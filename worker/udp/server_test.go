package udp

import (
	"bytes"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sozu-go/sozu/worker/backends"
	"github.com/sozu-go/sozu/worker/proxyproto"
)

// echoBackend is a UDP backend that answers each datagram with its name,
// "|", and the datagram (PROXY header included). It records the headers it
// saw. Once muted it reads and drops what it gets, allocating nothing.
type echoBackend struct {
	name string
	pc   *net.UDPConn
	addr netip.AddrPort
	mute atomic.Bool

	mu      sync.Mutex
	got     int
	headers []proxyproto.Header
}

func startEcho(t testing.TB, name string) *echoBackend {
	t.Helper()
	pc, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	e := &echoBackend{name: name, pc: pc, addr: pc.LocalAddr().(*net.UDPAddr).AddrPort()}
	t.Cleanup(func() { pc.Close() })
	go func() {
		buf := make([]byte, 70_000)
		for {
			n, from, err := pc.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			if e.mute.Load() {
				continue
			}
			e.mu.Lock()
			e.got++
			if h, _, err := proxyproto.ParseBytes(buf[:n], 0); err == nil {
				e.headers = append(e.headers, h)
			}
			e.mu.Unlock()
			pc.WriteToUDPAddrPort(append([]byte(name+"|"), buf[:n]...), from)
		}
	}()
	return e
}

func (e *echoBackend) received() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.got
}

// startServer runs a Server on a loopback UDP socket.
func startServer(t testing.TB, cfg *Listener, opt Options) (*Server, netip.AddrPort) {
	t.Helper()
	pc, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	ap := pc.LocalAddr().(*net.UDPAddr).AddrPort()
	cfg.Addr = ap
	s := NewServer(pc, cfg, opt)
	done := make(chan error, 1)
	go func() { done <- s.Serve() }()
	t.Cleanup(func() {
		s.Close()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return s, ap
}

func cluster(t testing.TB, reg *backends.Registry, es ...*echoBackend) *Cluster {
	var specs []backends.Spec
	for _, e := range es {
		specs = append(specs, backends.Spec{ClusterID: "c", ID: e.name, Addr: e.addr, Weight: 100})
	}
	return &Cluster{ID: "c", Backends: reg.Update(specs, nil)["c"], FailOpen: true}
}

// client is a UDP client socket talking to the server.
type client struct {
	t  testing.TB
	pc *net.UDPConn
}

func dialClient(t testing.TB, srv netip.AddrPort) *client {
	t.Helper()
	pc, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(srv))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	return &client{t: t, pc: pc}
}

// ask sends msg and returns the reply, or "" after timeout.
func (c *client) ask(msg string, timeout time.Duration) string {
	c.t.Helper()
	if _, err := c.pc.Write([]byte(msg)); err != nil {
		c.t.Fatal(err)
	}
	return c.read(timeout)
}

func (c *client) read(timeout time.Duration) string {
	buf := make([]byte, 70_000)
	c.pc.SetReadDeadline(time.Now().Add(timeout))
	n, err := c.pc.Read(buf)
	if err != nil {
		return ""
	}
	return string(buf[:n])
}

// backendOf returns the backend name a reply carries.
func backendOf(reply string) string {
	name, _, _ := bytes.Cut([]byte(reply), []byte("|"))
	return string(name)
}

// TestFlowsStickAndSpread: each client address keeps its backend for all
// its datagrams (SOURCE_IP_PORT), replies come back to the socket that
// sent, from the listener's address, and flows spread over the backends.
func TestFlowsStickAndSpread(t *testing.T) {
	reg := backends.NewRegistry(backends.Options{})
	es := []*echoBackend{startEcho(t, "a"), startEcho(t, "b"), startEcho(t, "c")}
	cl := cluster(t, reg, es...)
	cl.BySourcePort = true
	srv, addr := startServer(t, &Listener{Cluster: cl}, Options{})
	used := map[string]bool{}
	for i := range 6 {
		c := dialClient(t, addr)
		first := ""
		for j := range 10 {
			msg := fmt.Sprintf("c%d-%d", i, j)
			r := c.ask(msg, 2*time.Second)
			name, body, ok := bytes.Cut([]byte(r), []byte("|"))
			if !ok || string(body) != msg {
				t.Fatalf("client %d datagram %d: reply %q", i, j, r)
			}
			if first == "" {
				first = string(name)
			} else if string(name) != first {
				t.Fatalf("client %d: flow moved from backend %s to %s", i, first, name)
			}
		}
		used[first] = true
	}
	if len(used) < 2 {
		t.Fatalf("6 flows all went to %v: not balanced", used)
	}
	if n := srv.Sessions(); n != 6 {
		t.Fatalf("live flows: %d, want 6", n)
	}
}

// TestSourceIPAffinity: with SOURCE_IP, every address of one client IP
// goes to the same backend, even under round robin.
func TestSourceIPAffinity(t *testing.T) {
	reg := backends.NewRegistry(backends.Options{})
	cl := cluster(t, reg, startEcho(t, "a"), startEcho(t, "b"))
	_, addr := startServer(t, &Listener{Cluster: cl}, Options{})
	seen := map[string]bool{}
	for range 4 {
		seen[backendOf(dialClient(t, addr).ask("x", 2*time.Second))] = true
	}
	if len(seen) != 1 {
		t.Fatalf("one client IP reached backends %v", seen)
	}
}

// TestResponsesEndFlow: with responses = 1, each reply ends the flow; the
// next datagram of the same client starts a new one.
func TestResponsesEndFlow(t *testing.T) {
	reg := backends.NewRegistry(backends.Options{})
	cl := cluster(t, reg, startEcho(t, "a"))
	cl.Responses = 1
	ends := make(chan FlowEnd, 10)
	srv, addr := startServer(t, &Listener{Cluster: cl}, Options{OnFlowEnd: func(e FlowEnd) { ends <- e }})
	c := dialClient(t, addr)
	for i := range 3 {
		if r := c.ask("q", 2*time.Second); r != "a|q" {
			t.Fatalf("query %d: %q", i, r)
		}
		select {
		case e := <-ends:
			if e.Reason != "responses" || e.Responses != 1 || e.Requests != 1 {
				t.Fatalf("flow end %+v", e)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("the flow did not end after its response")
		}
	}
	if n := srv.Sessions(); n != 0 {
		t.Fatalf("live flows after their responses: %d", n)
	}
}

// TestRequestsRetireFlow: with requests = 2, the third datagram of a
// client starts a new flow (a new backend socket) while replies to the
// first two still arrive.
func TestRequestsRetireFlow(t *testing.T) {
	reg := backends.NewRegistry(backends.Options{})
	cl := cluster(t, reg, startEcho(t, "a"))
	cl.Requests = 2
	srv, addr := startServer(t, &Listener{Cluster: cl}, Options{})
	c := dialClient(t, addr)
	for i := range 3 {
		if r := c.ask(fmt.Sprint(i), 2*time.Second); r != fmt.Sprintf("a|%d", i) {
			t.Fatalf("datagram %d: %q", i, r)
		}
	}
	if n := srv.Sessions(); n != 2 {
		t.Fatalf("live flows: %d, want 2 (one retired after 2 requests, one new)", n)
	}
}

// TestIdleTimeoutEndsFlow: a flow silent in both directions for its
// timeouts ends.
func TestIdleTimeoutEndsFlow(t *testing.T) {
	reg := backends.NewRegistry(backends.Options{})
	cl := cluster(t, reg, startEcho(t, "a"))
	ends := make(chan FlowEnd, 1)
	_, addr := startServer(t, &Listener{Cluster: cl, FrontTimeout: 200 * time.Millisecond, BackTimeout: 200 * time.Millisecond},
		Options{OnFlowEnd: func(e FlowEnd) { ends <- e }})
	if r := dialClient(t, addr).ask("x", 2*time.Second); r != "a|x" {
		t.Fatalf("reply %q", r)
	}
	select {
	case e := <-ends:
		if e.Reason != "idle" {
			t.Fatalf("flow ended for %q, want idle", e.Reason)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("an idle flow did not end")
	}
}

// TestOversizedDropped: a datagram over max_rx_datagram_size is dropped
// whole, never truncated and relayed; one at the bound passes.
func TestOversizedDropped(t *testing.T) {
	reg := backends.NewRegistry(backends.Options{})
	e := startEcho(t, "a")
	_, addr := startServer(t, &Listener{Cluster: cluster(t, reg, e), MaxDatagram: 64}, Options{})
	c := dialClient(t, addr)
	if r := c.ask(string(bytes.Repeat([]byte("x"), 65)), 300*time.Millisecond); r != "" {
		t.Fatalf("oversized datagram relayed: %q", r)
	}
	// The reply "a|" + 62 bytes is itself at the bound.
	msg := string(bytes.Repeat([]byte("y"), 62))
	if r := c.ask(msg, 2*time.Second); r != "a|"+msg {
		t.Fatalf("datagram at the bound: %q", r)
	}
	if got := e.received(); got != 1 {
		t.Fatalf("backend received %d datagrams, want 1", got)
	}
}

// TestProxyHeader: send_proxy_protocol prepends a DGRAM PROXY v2 header
// naming the client and the listener to the first datagram of a flow, or
// to every one.
func TestProxyHeader(t *testing.T) {
	for _, every := range []bool{false, true} {
		t.Run(fmt.Sprintf("every=%v", every), func(t *testing.T) {
			reg := backends.NewRegistry(backends.Options{})
			e := startEcho(t, "a")
			cl := cluster(t, reg, e)
			cl.SendProxy, cl.ProxyEveryDatagram = true, every
			_, addr := startServer(t, &Listener{Cluster: cl}, Options{})
			c := dialClient(t, addr)
			for i := range 3 {
				r := c.ask("q", 2*time.Second)
				_, body, _ := bytes.Cut([]byte(r), []byte("|"))
				hasHeader := proxyproto.IsDgram(body)
				if want := every || i == 0; hasHeader != want {
					t.Fatalf("datagram %d: header %v, want %v (%q)", i, hasHeader, want, body)
				}
			}
			e.mu.Lock()
			defer e.mu.Unlock()
			h := e.headers[0]
			src := c.pc.LocalAddr().(*net.UDPAddr).AddrPort()
			if h.Command != proxyproto.Proxy || h.Source != src || h.Destination != addr {
				t.Fatalf("header %+v, want source %v destination %v", h, src, addr)
			}
		})
	}
}

// TestFloodDoesNotEvictOthers: a client opening flows from many ports
// fills its share of the table, not the table: other clients' flows are
// neither evicted nor refused. (All loopback clients share 127.0.0.1, so
// the flooder here uses 127.0.0.2.)
func TestFloodDoesNotEvictOthers(t *testing.T) {
	reg := backends.NewRegistry(backends.Options{})
	cl := cluster(t, reg, startEcho(t, "a"))
	cl.BySourcePort = true
	srv, addr := startServer(t, &Listener{Cluster: cl, MaxFlows: 200}, Options{})
	victim := dialClient(t, addr)
	if r := victim.ask("v", 2*time.Second); r != "a|v" {
		t.Fatalf("victim: %q", r)
	}
	var flooders []*net.UDPConn
	for range 60 {
		pc, err := net.DialUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 2)}, net.UDPAddrFromAddrPort(addr))
		if err != nil {
			t.Fatal(err)
		}
		defer pc.Close()
		flooders = append(flooders, pc)
		pc.Write([]byte("f"))
	}
	waitFor(t, "the flooder to reach its share", func() bool { return srv.Drops.SourceCap.Load() > 0 })
	if n := srv.Sessions(); n > 1+perSourceCap(200) {
		t.Fatalf("%d live flows: the flooder holds more than its share %d", n, perSourceCap(200))
	}
	// A new client, and the victim's existing flow, are served.
	if r := dialClient(t, addr).ask("n", 2*time.Second); r != "a|n" {
		t.Fatalf("new client during the flood: %q", r)
	}
	if r := victim.ask("v2", 2*time.Second); r != "a|v2" {
		t.Fatalf("victim during the flood: %q", r)
	}
}

// TestFullTableEvictsOnlyIdle: in a full table a new flow takes the place
// of the least recently active flow only when it has been idle evictIdle;
// otherwise the new flow is refused and the live ones stay.
func TestFullTableEvictsOnlyIdle(t *testing.T) {
	now := time.Unix(1000, 0)
	tab := newTable(2)
	add := func(port uint16) *flow {
		f := &flow{client: netip.AddrPortFrom(netip.MustParseAddr("192.0.2.1"), port), lastClient: now, lastBackend: now}
		tab.insert(f)
		return f
	}
	a := add(1)
	add(2)
	tab.perSource = 10
	newcomer := netip.MustParseAddrPort("198.51.100.1:9")
	if _, _, err := tab.admit(newcomer, now.Add(evictIdle/2)); err != errTableFull {
		t.Fatalf("admit with active flows: %v, want errTableFull", err)
	}
	evict, _, err := tab.admit(newcomer, now.Add(evictIdle))
	if err != nil || evict != a {
		t.Fatalf("admit after idle: evict %v, err %v; want the oldest flow", evict, err)
	}
}

func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestResponsesNextQueryNotLost: with responses = 1, a client that sends
// its next query the instant it has a reply is served by a new flow; the
// query never lands in the flow being closed (where it would be lost).
func TestResponsesNextQueryNotLost(t *testing.T) {
	reg := backends.NewRegistry(backends.Options{})
	cl := cluster(t, reg, startEcho(t, "a"))
	cl.Responses = 1
	_, addr := startServer(t, &Listener{Cluster: cl}, Options{})
	c := dialClient(t, addr)
	for i := range 300 {
		msg := fmt.Sprint(i)
		if r := c.ask(msg, 2*time.Second); r != "a|"+msg {
			t.Fatalf("query %d: reply %q (lost in a closing flow?)", i, r)
		}
	}
}

// TestIPv6: a listener, client and backend over IPv6; the PROXY header is
// the IPv6 DGRAM one (0x22).
func TestIPv6(t *testing.T) {
	lpc, err := net.ListenUDP("udp6", &net.UDPAddr{IP: net.IPv6loopback})
	if err != nil {
		t.Skipf("no IPv6 loopback: %v", err)
	}
	bpc, err := net.ListenUDP("udp6", &net.UDPAddr{IP: net.IPv6loopback})
	if err != nil {
		t.Skipf("no IPv6 loopback: %v", err)
	}
	defer bpc.Close()
	got := make(chan []byte, 1)
	go func() {
		buf := make([]byte, 512)
		n, from, err := bpc.ReadFromUDPAddrPort(buf)
		if err != nil {
			return
		}
		got <- append([]byte(nil), buf[:n]...)
		bpc.WriteToUDPAddrPort([]byte("pong"), from)
	}()
	reg := backends.NewRegistry(backends.Options{})
	set := reg.Update([]backends.Spec{{ClusterID: "c", ID: "v6", Addr: bpc.LocalAddr().(*net.UDPAddr).AddrPort(), Weight: 1}}, nil)["c"]
	addr := lpc.LocalAddr().(*net.UDPAddr).AddrPort()
	srv := NewServer(lpc, &Listener{Addr: addr, Cluster: &Cluster{ID: "c", Backends: set, SendProxy: true, FailOpen: true}}, Options{})
	go srv.Serve()
	defer srv.Close()
	c := dialClient(t, addr)
	if r := c.ask("ping", 2*time.Second); r != "pong" {
		t.Fatalf("reply %q", r)
	}
	b := <-got
	h, n, err := proxyproto.ParseBytes(b, 0)
	if err != nil || b[13] != 0x22 || string(b[n:]) != "ping" || h.Source != c.pc.LocalAddr().(*net.UDPAddr).AddrPort() || h.Destination != addr {
		t.Fatalf("backend got % x (header %+v, %v)", b, h, err)
	}
}

// TestNoLoopFromOwnAddresses: a datagram whose source is a backend of the
// cluster, or the listener itself (spoofed), opens no flow: its replies
// would come back as new datagrams without end (the UDP application-loop
// attack). It is counted.
func TestNoLoopFromOwnAddresses(t *testing.T) {
	reg := backends.NewRegistry(backends.Options{})
	echo := startEcho(t, "a")
	srv, addr := startServer(t, &Listener{Cluster: cluster(t, reg, echo)}, Options{})
	dst := net.UDPAddrFromAddrPort(addr)
	if _, err := echo.pc.WriteToUDP([]byte("from the backend"), dst); err != nil {
		t.Fatal(err)
	}
	if _, err := srv.pc.WriteToUDP([]byte("from the listener"), dst); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "both datagrams refused", func() bool { return srv.Drops.Loop.Load() == 2 })
	// A real client is still served, and the backend saw its datagram only.
	if r := dialClient(t, addr).ask("x", 2*time.Second); r != "a|x" {
		t.Fatalf("client: %q", r)
	}
	echo.mu.Lock()
	got := echo.got
	echo.mu.Unlock()
	if got != 1 {
		t.Fatalf("the backend got %d datagrams, want 1 (the client's)", got)
	}
}
