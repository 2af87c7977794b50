package udp

import (
	"net"
	"net/netip"
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
	_ = netip.AddrPort{}
	_ = time.Second
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
