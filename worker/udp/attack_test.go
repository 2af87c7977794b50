package udp

import (
	"bytes"
	"fmt"
	"net"
	"net/netip"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/sozu-go/sozu/worker/backends"
)

// TestUnreachableBackendEndsFlow: a backend port with nothing bound
// answers with ICMP port unreachable; the flow's connected socket reads
// ECONNREFUSED and the flow ends once ("backend error"), with one record,
// rather than spinning on the error or staying in the table.
func TestUnreachableBackendEndsFlow(t *testing.T) {
	dead, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	deadAddr := dead.LocalAddr().(*net.UDPAddr).AddrPort()
	dead.Close()
	reg := backends.NewRegistry(backends.Options{})
	cl := &Cluster{ID: "c", FailOpen: true, Backends: reg.Update([]backends.Spec{{ClusterID: "c", ID: "dead", Addr: deadAddr, Weight: 100}}, nil)["c"]}
	var mu sync.Mutex
	var ends []FlowEnd
	srv, addr := startServer(t, &Listener{Cluster: cl}, Options{OnFlowEnd: func(fe FlowEnd) { mu.Lock(); ends = append(ends, fe); mu.Unlock() }})
	c := dialClient(t, addr)
	c.pc.Write([]byte("q"))
	waitFor(t, "the flow to end", func() bool { mu.Lock(); defer mu.Unlock(); return len(ends) == 1 })
	waitFor(t, "the table to empty", func() bool { return srv.Sessions() == 0 })
	mu.Lock()
	fe := ends[0]
	mu.Unlock()
	if fe.Reason != "backend error" || fe.Requests != 1 || fe.BytesIn != 1 || fe.Responses != 0 {
		t.Fatalf("flow end %+v", fe)
	}
}

// TestEmptyDatagramStartsNoFlow: an empty datagram is not a flow trigger
// (upstream drops it before the flow lookup): it opens no flow, reaches
// no backend, and is counted; a datagram with a payload still is relayed.
func TestEmptyDatagramStartsNoFlow(t *testing.T) {
	reg := backends.NewRegistry(backends.Options{})
	e := startEcho(t, "a")
	cl := cluster(t, reg, e)
	cl.BySourcePort = true
	srv, addr := startServer(t, &Listener{Cluster: cl}, Options{})
	c, d := dialClient(t, addr), dialClient(t, addr)
	c.pc.Write(nil)
	// The listener reads in order: once d has its reply, c's empty
	// datagram was handled.
	if r := d.ask("d", 2*time.Second); r != "a|d" {
		t.Fatalf("reply %q", r)
	}
	if n := srv.Sessions(); n != 1 {
		t.Fatalf("%d flows, want 1: an empty datagram opened a flow", n)
	}
	if r := c.ask("q", 2*time.Second); r != "a|q" {
		t.Fatalf("reply %q", r)
	}
	c.pc.Write(nil) // on c's live flow now
	if r := c.ask("r", 2*time.Second); r != "a|r" {
		t.Fatalf("reply %q", r)
	}
	if got := e.received(); got != 3 {
		t.Fatalf("backend received %d datagrams, want 3 (no empty one)", got)
	}
	if n := srv.Drops.Invalid.Load(); n != 2 {
		t.Fatalf("%d empty datagrams counted, want 2", n)
	}
}

// TestOversizedReplyDropped: a backend reply over max_rx_datagram_size is
// dropped whole (counted), never cut to the bound and relayed as if
// whole; the flow goes on, and a reply at the bound passes.
func TestOversizedReplyDropped(t *testing.T) {
	cl := replyingCluster(t, func(msg []byte, reply func([]byte)) {
		size := 64
		if string(msg) == "big" {
			size = 65
		}
		reply(bytes.Repeat([]byte{'r'}, size))
	})
	srv, addr := startServer(t, &Listener{Cluster: cl, MaxDatagram: 64}, Options{})
	c := dialClient(t, addr)
	c.pc.Write([]byte("big"))
	waitFor(t, "the oversized reply to be dropped", func() bool { return srv.Drops.Oversized.Load() == 1 })
	if r := c.ask("small", 2*time.Second); len(r) != 64 {
		t.Fatalf("reply of %d bytes, want the 64-byte one (a cut one came first?)", len(r))
	}
}

// TestIdleFlowsHoldNoReceiveBuffer: a flow waiting for its backend holds
// no buffer of max_rx_datagram_size: 300 idle flows with 64 KiB datagrams
// allowed take a few MB, not 300 × 64 KiB (a spoofed flood keeps
// max_flows flows alive for the idle timeout).
func TestIdleFlowsHoldNoReceiveBuffer(t *testing.T) {
	reg := backends.NewRegistry(backends.Options{})
	e := startEcho(t, "a")
	e.mute.Store(true)
	cl := cluster(t, reg, e)
	srv, addr := startServer(t, &Listener{Cluster: cl, MaxFlows: 10_000, MaxDatagram: maxDatagram}, Options{})
	to := net.UDPAddrFromAddrPort(addr)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	const flows = 300
	for i := range flows {
		sendFrom(t, net.IPv4(127, 3, byte(i/200), byte(1+i%200)), to, "x")
		// One at a time: the listener's socket buffer must not drop them.
		waitFor(t, "the flow", func() bool { return srv.Sessions() == i+1 })
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	grown := int64(after.HeapInuse) - int64(before.HeapInuse)
	t.Logf("grown %d KB", grown/1024)
	if limit := int64(flows * maxDatagram / 4); grown > limit {
		t.Fatalf("%d idle flows grew the heap by %d KB (over %d KB): each holds a receive buffer", flows, grown/1024, limit/1024)
	}
}

// TestReplyReadAllocatesNothing: reading a flow's reply into a pooled
// buffer and giving it back allocates nothing per datagram.
func TestReplyReadAllocatesNothing(t *testing.T) {
	backend, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer backend.Close()
	conn, err := net.DialUDP("udp", nil, backend.LocalAddr().(*net.UDPAddr))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	rd, err := newReplyReader(conn)
	if err != nil {
		t.Fatal(err)
	}
	to := conn.LocalAddr().(*net.UDPAddr).AddrPort()
	msg := []byte("reply")
	n := testing.AllocsPerRun(200, func() {
		backend.WriteToUDPAddrPort(msg, to)
		if _, n, err := rd.read(); err != nil || n != len(msg) {
			t.Fatalf("read %d, %v", n, err)
		}
		rd.release()
	})
	if n != 0 {
		t.Errorf("%v allocations per reply", n)
	}
}

// TestMaxDatagramUpdateAppliesAtOnce: a listener update raising
// max_rx_datagram_size applies to the next datagram, the one the listener
// was already waiting for included (upstream resizes its receive buffer
// with the limit, LIFECYCLE.md "Listener update"); one lowering it applies
// to the replies of live flows too.
func TestMaxDatagramUpdateAppliesAtOnce(t *testing.T) {
	reg := backends.NewRegistry(backends.Options{})
	e := startEcho(t, "a")
	cfg := &Listener{Cluster: cluster(t, reg, e), MaxDatagram: 64}
	srv, addr := startServer(t, cfg, Options{})
	c := dialClient(t, addr)
	if r := c.ask("x", 2*time.Second); r != "a|x" {
		t.Fatalf("reply %q", r)
	}
	// The listener waits for the next datagram, with the 64-byte limit.
	up := *cfg
	up.MaxDatagram = 1000
	srv.Swap(&up)
	big := string(bytes.Repeat([]byte("y"), 500))
	if r := c.ask(big, 2*time.Second); r != "a|"+big {
		t.Fatalf("a 500-byte datagram after raising the limit to 1000: reply of %d bytes", len(r))
	}
	down := *cfg
	down.MaxDatagram = 32
	srv.Swap(&down)
	// Sent by the client within the old limit's flow: the reply (34
	// bytes) is over the new limit.
	before := srv.Drops.Oversized.Load()
	c.pc.Write([]byte(string(bytes.Repeat([]byte("z"), 32))))
	waitFor(t, "the reply over the lowered limit to be dropped", func() bool { return srv.Drops.Oversized.Load() > before })
}

// TestFlowEndsReleaseSockets: every way a flow ends (responses, idle,
// close) gives back its socket to the process-wide count, and each flow
// leaves one record.
func TestFlowEndsReleaseSockets(t *testing.T) {
	base := sockets.Load()
	reg := backends.NewRegistry(backends.Options{})
	cl := cluster(t, reg, startEcho(t, "a"))
	cl.BySourcePort = true
	var mu sync.Mutex
	ends := map[string]int{}
	srv, addr := startServer(t, &Listener{Cluster: cl, FrontTimeout: 50 * time.Millisecond, BackTimeout: 50 * time.Millisecond},
		Options{OnFlowEnd: func(fe FlowEnd) { mu.Lock(); ends[fe.Reason]++; mu.Unlock() }})
	for range 5 {
		if r := dialClient(t, addr).ask("q", 2*time.Second); r != "a|q" {
			t.Fatalf("reply %q", r)
		}
	}
	waitFor(t, "the idle flows to end", func() bool { return srv.Sessions() == 0 })
	if n := sockets.Load(); n != base {
		t.Fatalf("%d sockets counted after the flows ended, want %d", n, base)
	}
	cl2 := *cl
	cl2.Responses = 1
	srv.Swap(&Listener{Addr: addr, Cluster: &cl2})
	for range 3 {
		if r := dialClient(t, addr).ask("r", 2*time.Second); r != "a|r" {
			t.Fatalf("reply %q", r)
		}
	}
	for range 3 {
		dialClient(t, addr).ask("s", 2*time.Second)
	}
	cl3 := *cl
	srv.Swap(&Listener{Addr: addr, Cluster: &cl3})
	for range 4 {
		if r := dialClient(t, addr).ask("t", 2*time.Second); r != "a|t" {
			t.Fatalf("reply %q", r)
		}
	}
	srv.Close()
	if n := sockets.Load(); n != base {
		t.Fatalf("%d sockets counted after Close, want %d", n, base)
	}
	mu.Lock()
	defer mu.Unlock()
	if ends["idle"] != 5 || ends["responses"] != 6 || ends["closed"] != 4 {
		t.Fatalf("flow ends %v, want 5 idle, 6 responses, 4 closed", ends)
	}
}

// TestRemovedBackendFlows: a backend removed live keeps the flows it has
// (a flow keeps the backend it started with, as upstream's), and the new
// flows of the same client IP go to the remaining backend.
func TestRemovedBackendFlows(t *testing.T) {
	reg := backends.NewRegistry(backends.Options{})
	a, b := startEcho(t, "a"), startEcho(t, "b")
	cl := cluster(t, reg, a, b)
	srv, addr := startServer(t, &Listener{Cluster: cl}, Options{})
	c := dialClient(t, addr)
	first := backendOf(c.ask("1", 2*time.Second))
	keep := map[string]*echoBackend{"a": b, "b": a}[first]
	if keep == nil {
		t.Fatalf("first reply from %q", first)
	}
	cl2 := cluster(t, reg, keep)
	srv.Swap(&Listener{Addr: addr, Cluster: cl2})
	if got := backendOf(c.ask("2", 2*time.Second)); got != first {
		t.Fatalf("live flow moved from %s to %s", first, got)
	}
	if got := backendOf(dialClient(t, addr).ask("3", 2*time.Second)); got != keep.name {
		t.Fatalf("new flow of the same IP went to %q, want %q", got, keep.name)
	}
}

// TestResponsesBoundAmplification: a backend answering one datagram with
// many replies reaches the client with `responses` of them only (the
// per-flow response budget bounds what a spoofed client can be sent).
func TestResponsesBoundAmplification(t *testing.T) {
	cl := replyingCluster(t, func(msg []byte, reply func([]byte)) {
		for k := range 10 {
			reply([]byte(fmt.Sprintf("%s-%d", msg, k)))
		}
	})
	cl.Responses = 2
	ends := make(chan FlowEnd, 4)
	_, addr := startServer(t, &Listener{Cluster: cl}, Options{OnFlowEnd: func(fe FlowEnd) { ends <- fe }})
	c := dialClient(t, addr)
	if r := c.ask("1", 2*time.Second); r != "1-0" {
		t.Fatalf("first reply %q", r)
	}
	if r := c.read(2 * time.Second); r != "1-1" {
		t.Fatalf("second reply %q", r)
	}
	select {
	case fe := <-ends:
		if fe.Reason != "responses" || fe.Responses != 2 || fe.BytesOut != 6 {
			t.Fatalf("flow end %+v", fe)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the flow did not end after its responses")
	}
	if r := c.ask("2", 2*time.Second); r != "2-0" {
		t.Fatalf("after the budget, reply %q (a reply over the budget reached the client)", r)
	}
}

// TestProxyHeaderOverLargestPayload: with send_proxy_protocol, a client
// datagram that the PROXY header would push over the largest UDP payload
// cannot be sent: it is dropped and counted as oversized, not counted as
// relayed, and its flow is not ended as if the backend had failed.
func TestProxyHeaderOverLargestPayload(t *testing.T) {
	reg := backends.NewRegistry(backends.Options{})
	e := startEcho(t, "a")
	cl := cluster(t, reg, e)
	cl.SendProxy, cl.ProxyEveryDatagram = true, true
	var mu sync.Mutex
	var ends []FlowEnd
	srv, addr := startServer(t, &Listener{Cluster: cl, MaxDatagram: maxDatagram},
		Options{OnFlowEnd: func(fe FlowEnd) { mu.Lock(); ends = append(ends, fe); mu.Unlock() }})
	c := dialClient(t, addr)
	if r := c.ask("small", 2*time.Second); r == "" {
		t.Fatal("no reply")
	}
	if _, err := c.pc.Write(bytes.Repeat([]byte("x"), maxDatagram-10)); err != nil {
		t.Fatal(err)
	}
	if r := c.ask("again", 2*time.Second); r == "" || !bytes.HasSuffix([]byte(r), []byte("again")) {
		t.Fatalf("reply %q", r)
	}
	if n := srv.Drops.Oversized.Load(); n != 1 {
		t.Errorf("%d datagrams counted oversized, want 1", n)
	}
	srv.Close()
	mu.Lock()
	defer mu.Unlock()
	if len(ends) != 1 || ends[0].Reason != "closed" || ends[0].Requests != 2 || ends[0].BytesIn != 10 {
		t.Fatalf("flow ends %+v, want one, closed, 2 datagrams of 10 bytes relayed", ends)
	}
}

// TestHeaderLen: headerLen is the length of the header frame writes.
func TestHeaderLen(t *testing.T) {
	addrs := []string{"192.0.2.1:5", "[::ffff:192.0.2.1]:5", "[2001:db8::1]:5"}
	for _, c := range addrs {
		for _, d := range addrs {
			client, dst := netip.MustParseAddrPort(c), netip.MustParseAddrPort(d)
			if got, want := headerLen(client, dst), len(frame(nil, nil, client, dst)); got != want {
				t.Errorf("headerLen(%v, %v) = %d, frame writes %d", client, dst, got, want)
			}
		}
	}
}

// TestSourceIPAffinitySkipsDownBackend: with SOURCE_IP affinity, a new
// flow of an IP whose live flows use a backend the health check has taken
// out of rotation goes to a backend in rotation (a new selection skips
// unhealthy backends: upstream's lib/src/protocol/udp/LIFECYCLE.md,
// health "steering only new selections"); the live flow keeps its backend.
func TestSourceIPAffinitySkipsDownBackend(t *testing.T) {
	reg := backends.NewRegistry(backends.Options{})
	a, b := startEcho(t, "a"), startEcho(t, "b")
	cl := cluster(t, reg, a, b)
	_, addr := startServer(t, &Listener{Cluster: cl}, Options{})
	c := dialClient(t, addr)
	first := backendOf(c.ask("1", 2*time.Second))
	for _, be := range cl.Backends.Backends() {
		if be.ID == first {
			cl.Backends.SetHealth(be, false)
		}
	}
	if got := backendOf(dialClient(t, addr).ask("2", 2*time.Second)); got == first || got == "" {
		t.Fatalf("new flow of the same IP went to %q, the backend out of rotation", got)
	}
	if got := backendOf(c.ask("3", 2*time.Second)); got != first {
		t.Fatalf("live flow moved from %s to %s", first, got)
	}
}

// TestNoLoopBetweenListeners: a datagram to one UDP listener whose
// source is spoofed as another UDP listener of the process would have the
// two relay each other's replies without end (each backend answering
// what it gets); it is refused as a loop, as one from the listener's own
// address is.
func TestNoLoopBetweenListeners(t *testing.T) {
	pong := func() netip.AddrPort {
		pc, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { pc.Close() })
		go func() {
			buf := make([]byte, 2048)
			for {
				_, from, err := pc.ReadFromUDPAddrPort(buf)
				if err != nil {
					return
				}
				pc.WriteToUDPAddrPort([]byte("pong"), from)
			}
		}()
		return pc.LocalAddr().(*net.UDPAddr).AddrPort()
	}
	reg := backends.NewRegistry(backends.Options{})
	set := func(id string, addr netip.AddrPort) *Cluster {
		return &Cluster{ID: id, FailOpen: true, Backends: reg.Update([]backends.Spec{{ClusterID: id, ID: id, Addr: addr, Weight: 100}}, nil)[id]}
	}
	a, aAddr := startServer(t, &Listener{Cluster: set("a", pong())}, Options{})
	b, _ := startServer(t, &Listener{Cluster: set("b", pong())}, Options{})
	if _, err := b.pc.WriteToUDPAddrPort([]byte("ping"), aAddr); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the datagram from the other listener refused", func() bool { return a.Drops.Loop.Load() == 1 })
	if n := a.Sessions() + b.Sessions(); n != 0 {
		t.Fatalf("%d flows", n)
	}
}

// replyingCluster is a cluster "c" of one UDP backend, which answers each
// datagram it reads with what answer sends through reply.
func replyingCluster(t *testing.T, answer func(msg []byte, reply func([]byte))) *Cluster {
	be, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { be.Close() })
	go func() {
		buf := make([]byte, 2048)
		for {
			n, from, err := be.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			answer(buf[:n], func(b []byte) { be.WriteToUDPAddrPort(b, from) })
		}
	}()
	reg := backends.NewRegistry(backends.Options{})
	return &Cluster{ID: "c", FailOpen: true, Backends: reg.Update([]backends.Spec{{ClusterID: "c", ID: "b", Addr: be.LocalAddr().(*net.UDPAddr).AddrPort(), Weight: 100}}, nil)["c"]}
}
