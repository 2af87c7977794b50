package udp

import (
	"net/netip"
	"sync"
)

// local is the set of the addresses the process's UDP listeners are bound
// to. A datagram to one listener from another's address is spoofed: its
// flow's replies would reach the other listener as a client's datagrams,
// and that listener's replies come back, without end (the UDP
// application-loop attack, CVE-2024-2169's class, between two listeners of
// one proxy). Each worker holds every UDP listener of the configuration,
// so its set covers the other workers' addresses too.
var local localSet

type localSet struct {
	mu sync.RWMutex
	n  map[netip.AddrPort]int // listeners bound to the address (SO_REUSEPORT)
}

func (l *localSet) add(a netip.AddrPort) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.n == nil {
		l.n = map[netip.AddrPort]int{}
	}
	l.n[a]++
}

func (l *localSet) remove(a netip.AddrPort) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.n[a]--; l.n[a] <= 0 {
		delete(l.n, a)
	}
}

// has reports whether client is the address of a UDP listener of the
// process: exactly, or its port on a loopback address for a listener on
// a wildcard address (whose replies to a local client leave from there).
// Called for new flows only.
func (l *localSet) has(client netip.AddrPort) bool {
	l.mu.RLock()
	defer l.mu.RUnlock()
	for a := range l.n {
		if a.Port() != client.Port() {
			continue
		}
		if a.Addr() == client.Addr() || a.Addr().IsUnspecified() && client.Addr().IsLoopback() {
			return true
		}
	}
	return false
}
