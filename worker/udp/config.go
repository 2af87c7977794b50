// Package udp balances UDP datagrams over a cluster's backends: each client
// address gets a flow, with its own connected socket to one backend, and
// the backend's replies go back to the client from the listener's socket.
package udp

import (
	"net/netip"
	"time"

	"github.com/sozu-go/sozu/worker/accesslog"
	"github.com/sozu-go/sozu/worker/backends"
)

// Defaults of Listener, applied by withDefaults.
const (
	// DefaultMaxDatagram is max_rx_datagram_size's default (command.proto).
	DefaultMaxDatagram = 1500
	// DefaultMaxFlows bounds the flows of a Listener whose MaxFlows is 0
	// (the worker passes its max_connections for max_flows 0).
	DefaultMaxFlows = 10_000
	// DefaultTimeout is front_timeout's and back_timeout's default.
	DefaultTimeout = 30 * time.Second
	// maxDatagram is the largest UDP payload (65 535 − 8 − 20).
	maxDatagram = 65_507
)

// Cluster is what a listener's flows need of their cluster. A flow keeps
// the Cluster it started with: a change applies to new flows only.
type Cluster struct {
	ID       string
	Backends *backends.Set
	// BySourcePort: affinity SOURCE_IP_PORT, each client address is
	// balanced on its own. Otherwise (SOURCE_IP, the default) every flow
	// of one client IP goes to the backend of that IP's first live flow,
	// unless the health check holds it down (then the new flow is balanced).
	BySourcePort bool
	// Responses ends a flow after that many replies relayed; 0: no bound.
	Responses uint32
	// Requests: a flow takes at most that many client datagrams; the next
	// one from the same address starts a new flow. 0: no bound.
	Requests uint32
	// SendProxy prepends a PROXY v2 header (DGRAM) to the first datagram
	// of each flow, or to every datagram with ProxyEveryDatagram.
	SendProxy          bool
	ProxyEveryDatagram bool
	// FailOpen: when the health check holds every backend down, flows
	// still go to them (true, upstream's default) or are refused (false).
	FailOpen bool
}

// Listener is one UDP listener's configuration. The zero values of the
// numbers take the defaults above.
type Listener struct {
	Addr netip.AddrPort
	// PublicAddr, when valid, is the destination a PROXY header names
	// instead of Addr.
	PublicAddr netip.AddrPort
	// FrontTimeout: a flow whose client sent nothing for that long and
	// whose backend sent nothing for BackTimeout ends.
	FrontTimeout time.Duration
	BackTimeout  time.Duration
	// MaxDatagram is max_rx_datagram_size: a larger datagram, from a
	// client or a backend, is dropped whole (never truncated and relayed).
	MaxDatagram int
	// MaxFlows bounds the live flows (each holds one socket and one
	// goroutine).
	MaxFlows int
	// Cluster serves the listener's datagrams; nil drops them.
	Cluster *Cluster
	// Tags are the UDP frontend's tags, written in the access records of
	// the flows started under this configuration; nil for none.
	Tags *accesslog.Tags
}

func (l *Listener) withDefaults() *Listener {
	c := *l
	if c.FrontTimeout <= 0 {
		c.FrontTimeout = DefaultTimeout
	}
	if c.BackTimeout <= 0 {
		c.BackTimeout = DefaultTimeout
	}
	if c.MaxDatagram <= 0 {
		c.MaxDatagram = DefaultMaxDatagram
	}
	c.MaxDatagram = min(c.MaxDatagram, maxDatagram)
	if c.MaxFlows <= 0 {
		c.MaxFlows = DefaultMaxFlows
	}
	return &c
}

// perSourceCap is how many live flows one client IP may hold: an eighth
// of the table, at least 16 (so that a few NATed clients still fit in a
// small table). A client flooding from many ports fills its share, never
// the table.
func perSourceCap(maxFlows int) int { return max(16, maxFlows/8) }

// evictIdle is how long a flow must have been silent (both directions)
// before a new flow may take its place in a full table. A busy flow is
// never evicted: a flood of new flows cannot push out live ones.
const evictIdle = time.Second

// balanceKey is the load-balancing key of a client: its IP, and with
// bySourcePort its port too (HRW and Maglev use it; others ignore it).
func balanceKey(client netip.AddrPort, bySourcePort bool) uint64 {
	k := backends.KeyOf(client.Addr())
	if bySourcePort {
		k ^= (uint64(client.Port()) + 1) * 0x9E3779B97F4A7C15
	}
	return k
}
