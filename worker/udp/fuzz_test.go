package udp

import (
	"bytes"
	"net/netip"
	"testing"
	"time"

	"github.com/sozu-go/sozu/worker/proxyproto"
)

// FuzzFrame: whatever the payload and addresses, the datagram a backend
// receives parses as one DGRAM PROXY v2 header naming the client and the
// listener, followed by the payload unchanged.
func FuzzFrame(f *testing.F) {
	f.Add([]byte("q"), []byte{192, 0, 2, 1}, uint16(5353), []byte{198, 51, 100, 1}, uint16(53))
	f.Add([]byte{}, bytes.Repeat([]byte{0x20}, 16), uint16(1), []byte{127, 0, 0, 1}, uint16(65535))
	f.Add(append(proxyproto.AppendLocal(nil), "x"...), []byte{0, 0, 0, 0}, uint16(0), bytes.Repeat([]byte{1}, 16), uint16(9))
	f.Fuzz(func(t *testing.T, payload, srcIP []byte, srcPort uint16, dstIP []byte, dstPort uint16) {
		src, ok1 := netip.AddrFromSlice(srcIP)
		dst, ok2 := netip.AddrFromSlice(dstIP)
		if !ok1 || !ok2 {
			return
		}
		client, listener := netip.AddrPortFrom(src, srcPort), netip.AddrPortFrom(dst, dstPort)
		out := frame(nil, payload, client, listener)
		if !proxyproto.IsDgram(out) {
			t.Fatalf("header not DGRAM: % x", out[:16])
		}
		h, n, err := proxyproto.ParseBytes(out, 0)
		if err != nil {
			t.Fatalf("the header we write does not parse: %v", err)
		}
		if !bytes.Equal(out[n:], payload) {
			t.Fatalf("payload changed: %q -> %q", payload, out[n:])
		}
		wantSrc := netip.AddrPortFrom(src.Unmap(), srcPort)
		wantDst := netip.AddrPortFrom(dst.Unmap(), dstPort)
		if wantSrc.Addr().Is4() != wantDst.Addr().Is4() { // mixed: both sent as IPv6
			wantSrc = netip.AddrPortFrom(netip.AddrFrom16(wantSrc.Addr().As16()), srcPort)
			wantDst = netip.AddrPortFrom(netip.AddrFrom16(wantDst.Addr().As16()), dstPort)
		}
		if h.Command != proxyproto.Proxy || h.Source != wantSrc || h.Destination != wantDst {
			t.Fatalf("header %+v, want %v -> %v", h, wantSrc, wantDst)
		}
	})
}

// FuzzTable drives the flow table with an arbitrary sequence of datagrams
// (client, clock step) and flow ends, as the server does, and checks its
// invariants after every step: the table never exceeds its bound, no IP
// holds more than its share, an admitted newcomer only ever evicts a flow
// idle for evictIdle, and the indexes agree.
func FuzzTable(f *testing.F) {
	f.Add([]byte{0, 1, 0, 0, 1, 0, 2, 3, 1, 0, 4, 0, 255, 7, 2, 1})
	f.Add(bytes.Repeat([]byte{0, 9, 0, 0}, 64))
	f.Fuzz(func(t *testing.T, ops []byte) {
		const maxFlows = 20
		tab := newTable(maxFlows)
		now := time.Unix(0, 0)
		for len(ops) >= 4 {
			op, ip, port, step := ops[0]%4, ops[1]%4, ops[2], ops[3]
			ops = ops[4:]
			now = now.Add(time.Duration(step) * 10 * time.Millisecond)
			client := netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 0, 0, ip}), uint16(port)+1)
			switch op {
			case 0, 1: // a datagram
				if fl := tab.lookup(client); fl != nil {
					fl.lastClient = now
					tab.touch(fl)
					if op == 1 {
						tab.retire(fl)
					}
					break
				}
				evict, _, err := tab.admit(client, now)
				if err != nil {
					break
				}
				if evict != nil {
					if now.Sub(evict.lastActive()) < evictIdle {
						t.Fatalf("evicted a flow active %v ago", now.Sub(evict.lastActive()))
					}
					tab.remove(evict)
				}
				tab.insert(&flow{client: client, lastClient: now, lastBackend: now})
			case 2: // a reply ends the oldest flow
				if e := tab.lru.Back(); e != nil {
					tab.remove(e.Value.(*flow))
				}
			case 3: // a reply to the newest flow
				if e := tab.lru.Front(); e != nil {
					fl := e.Value.(*flow)
					fl.lastBackend = now
					tab.touch(fl)
				}
			}
			checkTable(t, tab)
		}
	})
}

func checkTable(t *testing.T, tab *table) {
	t.Helper()
	if tab.len() > tab.max {
		t.Fatalf("%d flows over the bound %d", tab.len(), tab.max)
	}
	perIP := map[netip.Addr]int{}
	for _, fl := range tab.all() {
		perIP[sourceOf(fl.client.Addr())]++
		if fl.current && tab.byKey[fl.client] != fl {
			t.Fatalf("current flow of %v not indexed", fl.client)
		}
	}
	for ip, n := range perIP {
		if n > tab.perSource {
			t.Fatalf("%v holds %d flows, share %d", ip, n, tab.perSource)
		}
		if src := tab.bySource[ip]; src == nil || src.flows != n {
			t.Fatalf("%v: source index says %v, table holds %d", ip, src, n)
		}
	}
	if len(perIP) != len(tab.bySource) {
		t.Fatalf("source index has %d IPs, table %d", len(tab.bySource), len(perIP))
	}
	for k, fl := range tab.byKey {
		if fl.elem == nil || fl.client != k {
			t.Fatalf("index entry %v points to a removed or foreign flow", k)
		}
	}
}
