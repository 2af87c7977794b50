package supervisor

import (
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/sozu-go/sozu/proto/command"
)

// TestBindUDPOneSocketPerSlot: a UDP listener is one socket per worker
// slot on one port, and every datagram of one client address lands on the
// same socket (the kernel's SO_REUSEPORT hash), so a flow is only ever
// seen by one worker. Eight client sockets, twenty datagrams each.
func TestBindUDPOneSocketPerSlot(t *testing.T) {
	sa := command.NewSocketAddress(netip.MustParseAddrPort("127.0.0.1:0"))
	bl, err := bindUDP(sa, 3)
	if err != nil {
		t.Fatal(err)
	}
	defer bl.shut()
	if len(bl.slots) != 3 {
		t.Fatalf("%d sockets, want 3", len(bl.slots))
	}
	var conns []*net.UDPConn
	var port uint16
	for slot := range 3 {
		pc, err := net.FilePacketConn(bl.fileFor(slot))
		if err != nil {
			t.Fatal(err)
		}
		defer pc.Close()
		uc := pc.(*net.UDPConn)
		p := uc.LocalAddr().(*net.UDPAddr).AddrPort().Port()
		if slot > 0 && p != port {
			t.Fatalf("slot %d bound port %d, slot 0 port %d", slot, p, port)
		}
		port = p
		conns = append(conns, uc)
	}
	dst := net.UDPAddrFromAddrPort(netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), port))
	for range 8 {
		cl, err := net.DialUDP("udp", nil, dst)
		if err != nil {
			t.Fatal(err)
		}
		defer cl.Close()
		for range 20 {
			cl.Write([]byte("x"))
		}
	}
	// Drain each socket in turn: what it holds is what the kernel gave it.
	seen := map[netip.AddrPort]map[int]int{} // client -> slot -> datagrams
	total := 0
	buf := make([]byte, 64)
	for slot, c := range conns {
		for {
			c.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
			_, from, err := c.ReadFromUDPAddrPort(buf)
			if err != nil {
				break
			}
			if seen[from] == nil {
				seen[from] = map[int]int{}
			}
			seen[from][slot]++
			total++
		}
	}
	if total != 160 || len(seen) != 8 {
		t.Fatalf("received %d datagrams from %d clients, want 160 from 8", total, len(seen))
	}
	used := map[int]bool{}
	for from, slots := range seen {
		if len(slots) != 1 {
			t.Errorf("client %v reached sockets %v: its flow would split over workers", from, slots)
		}
		for s := range slots {
			used[s] = true
		}
	}
	if len(used) < 2 {
		t.Errorf("8 clients all reached socket(s) %v: the sockets do not share the load", used)
	}
}
