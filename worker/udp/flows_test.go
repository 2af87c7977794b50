package udp

import (
	"net/netip"
	"testing"
	"time"
)

// An IPv6 host holds a /64 at least: it can send from as many addresses
// as it likes without spoofing. The per-source share is therefore taken
// per /64 for IPv6 (per address for IPv4 and IPv4-mapped IPv6): a client
// cycling through its /64 fills its share, not the table.
func TestIPv6PrefixHoldsOneShare(t *testing.T) {
	now := time.Unix(1000, 0)
	tab := newTable(64) // share: 16
	tests := []struct {
		name   string
		client func(i int) netip.AddrPort
		share  bool // the source's flows stop at its share
	}{
		{"one /64, many addresses", func(i int) netip.AddrPort {
			return netip.AddrPortFrom(netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 1, 8: byte(i >> 8), 15: byte(i)}), 53)
		}, true},
		{"one IPv4 address, many ports", func(i int) netip.AddrPort {
			return netip.AddrPortFrom(netip.MustParseAddr("192.0.2.9"), uint16(1000+i))
		}, true},
		{"IPv4-mapped, many ports", func(i int) netip.AddrPort {
			return netip.AddrPortFrom(netip.MustParseAddr("::ffff:192.0.2.10"), uint16(1000+i))
		}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			admitted := 0
			for i := range 40 {
				c := tt.client(i)
				_, _, err := tab.admit(c, now)
				if err != nil {
					if err != errSourceCap {
						t.Fatalf("flow %d from %v: %v, want errSourceCap or nil", i, c, err)
					}
					continue
				}
				tab.insert(&flow{client: c, lastClient: now, lastBackend: now})
				admitted++
			}
			if admitted != tab.perSource {
				t.Errorf("%d flows admitted, want the share %d", admitted, tab.perSource)
			}
			checkTable(t, tab)
		})
	}
	// Another /64 of the same /48 has a share of its own.
	other := netip.MustParseAddrPort("[2001:db8:0:2::1]:53")
	if _, _, err := tab.admit(other, now); err != nil {
		t.Errorf("a client of another /64: %v", err)
	}
}
