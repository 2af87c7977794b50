// Package tcp is the worker's TCP proxy: per listener, it accepts client
// connections and relays each, byte for byte, to a backend of one cluster.
package tcp

import (
	"net/netip"
	"time"

	"github.com/sozu-go/sozu/worker/accesslog"
	"github.com/sozu-go/sozu/worker/backends"
)

// Default timeouts, used for every zero field of Listener.
const (
	DefaultFrontTimeout   = 60 * time.Second
	DefaultBackTimeout    = 30 * time.Second
	DefaultConnectTimeout = 3 * time.Second
)

// Listener is the configuration snapshot of one TCP listener: immutable
// once given to a Server (NewServer or Swap), which then owns it.
type Listener struct {
	Addr netip.AddrPort // the listening address

	// ExpectProxy: each client connection starts with a PROXY protocol v2
	// header (so does it when the cluster's ExpectProxy is set), which must
	// arrive whole within FrontTimeout of the accept; its source is then the
	// client's address. A connection without a valid header is closed
	// before any backend is contacted, as soon as a byte rules it out.
	ExpectProxy bool

	// FrontTimeout bounds client inactivity: a wait for client bytes with
	// no traffic in either direction, and each write to the client.
	FrontTimeout time.Duration
	// BackTimeout is the same for the backend side.
	BackTimeout time.Duration
	// ConnectTimeout bounds each connect attempt to a backend.
	ConnectTimeout time.Duration

	// Cluster is where connections go; nil closes them at once (a
	// listener without frontend).
	Cluster *Cluster
	// Tags are the frontend's tags, for the access log; nil for none.
	Tags *accesslog.Tags
}

// Cluster is one TCP cluster in a snapshot.
type Cluster struct {
	ID       string
	Backends *backends.Set // nil or empty: connections are closed

	// ExpectProxy: the clients of this cluster start with a PROXY protocol
	// v2 header (proxy_protocol EXPECT_HEADER or RELAY_HEADER), as when the
	// listener's ExpectProxy is set; either one is enough.
	ExpectProxy bool

	// SendProxy: write a PROXY protocol v2 header to the backend before
	// any client byte, naming the client (or the source of the client's
	// own PROXY header when one was read).
	SendProxy bool

	// RelayProxy (proxy_protocol RELAY_HEADER), with SendProxy: when the
	// client sent a header, the backend gets that header as received, TLVs
	// included, rather than a new one.
	RelayProxy bool

	// MaxConnsPerIP overrides the worker's global cap on connections per
	// client IP (nil: inherit; 0: unlimited for this cluster). Over the
	// cap, a connection is closed (FIN) before any backend is contacted.
	MaxConnsPerIP *uint64
}

func orDefault(d, def time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return def
}

// withDefaults returns a copy of l with the zero timeouts defaulted.
func (l *Listener) withDefaults() *Listener {
	c := *l
	c.FrontTimeout = orDefault(c.FrontTimeout, DefaultFrontTimeout)
	c.BackTimeout = orDefault(c.BackTimeout, DefaultBackTimeout)
	c.ConnectTimeout = orDefault(c.ConnectTimeout, DefaultConnectTimeout)
	return &c
}
