// Package proxy is the worker's HTTP/1.1 reverse proxy: per listener, it accepts
// client connections, routes each request and streams it to a backend and the answer back.
package proxy

import (
	"crypto/tls"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/sozu-go/sozu/worker/accesslog"
	"github.com/sozu-go/sozu/worker/answers"
	"github.com/sozu-go/sozu/worker/backends"
	"github.com/sozu-go/sozu/worker/h2"
	"github.com/sozu-go/sozu/worker/policy"
	"github.com/sozu-go/sozu/worker/router"
)

// Default timeouts, used for every zero field of Listener.
const (
	DefaultFrontTimeout   = 60 * time.Second
	DefaultBackTimeout    = 30 * time.Second
	DefaultConnectTimeout = 3 * time.Second
	DefaultRequestTimeout = 10 * time.Second
	DefaultIDHeader       = policy.DefaultIDHeader
)

// Listener is the configuration snapshot of one HTTP listener: immutable
// once given to a Server (NewServer or Swap), which then owns it.
type Listener struct {
	Addr       netip.AddrPort // the listening address
	PublicAddr netip.AddrPort // the address advertised to backends (X-Forwarded-Port, Forwarded by=); Addr when invalid

	// FrontTimeout bounds the wait for a client's next request on an idle
	// keep-alive connection (one that has sent a request), and each write
	// to the client.
	FrontTimeout time.Duration
	// BackTimeout bounds each read from and write to a backend: no answer
	// within it is a 504.
	BackTimeout time.Duration
	// ConnectTimeout bounds each connect attempt to a backend.
	ConnectTimeout time.Duration
	// RequestTimeout bounds the time from a request's first byte to the
	// end of its head (slow heads get 408), each wait for request body
	// bytes, and, with FrontTimeout when that is shorter, a new
	// connection's TLS handshake and the wait for its first request.
	RequestTimeout time.Duration

	// MaxBody bounds request bodies (chunked ones as received, framing
	// included): a larger one gets 413. 0 is unlimited.
	MaxBody int64

	IDHeader    string // name of the request ULID field on requests and responses ("Sozu-Id" when empty)
	SendXRealIP bool   // set X-Real-IP to the client's address
	// ElideXRealIP is upstream's elide_x_real_ip. It changes nothing: a
	// client's X-Real-IP is always dropped (with the other fields only the
	// proxy may assert, see strippedFields).
	ElideXRealIP bool

	// TLS, when set, makes this an HTTPS listener: each connection is
	// wrapped with tls.Server and its handshake bounded by RequestTimeout
	// (FrontTimeout when shorter).
	// The config picks certificates itself (tlsconf.Store), so that they
	// change without a Swap.
	TLS *tls.Config

	// StrictSNI, on an HTTPS listener, answers 421 Misdirected Request
	// (and closes the connection) to a request whose Host, port ignored
	// and case-insensitively, is not the server name the client sent in
	// its TLS handshake. A client that sent no SNI (one addressing the
	// proxy by IP address) got the listener's default certificate, and is
	// bound to the hosts that certificate covers (DefaultNames): any
	// other Host gets 421, as does every Host when DefaultNames is empty.
	StrictSNI bool
	// DefaultNames are the hosts the listener's default certificate
	// covers, for StrictSNI: DNS names as tlsconf indexes them (lowercase
	// A-labels, "*.example.com" covering exactly one more label) and IP
	// address literals (its IP SANs). Read-only.
	DefaultNames []string
	// HSTS is the listener's Strict-Transport-Security policy, nil for
	// none; FrontendHSTS overrides it per frontend (by router.Route.Key).
	// Both apply on HTTPS listeners only (TLS set).
	HSTS         *HSTS
	FrontendHSTS map[string]*HSTS
	// ExpectProxy makes each connection start with a PROXY protocol v2
	// header (read within FrontTimeout, before TLS); its source address
	// is then the client's address.
	ExpectProxy bool
	// H2 bounds each HTTP/2 connection of an HTTPS listener (the h2_*
	// keys; zero fields take h2's defaults, ReadTimeout FrontTimeout).
	// HTTP/2 is served when the TLS config's ALPN selects "h2".
	H2 h2.Limits
	// DisableHTTP11, on an HTTPS listener, closes a connection whose
	// handshake did not select "h2" (a client without ALPN).
	DisableHTTP11 bool
	// StickyName is the name of the sticky session cookie of the clusters
	// with Sticky (sticky.go); DefaultStickyName when empty. A token.
	StickyName string

	// Tags are the frontends' tags for the access log, by router.Route.Key;
	// read-only, may be nil.
	Tags map[string]*accesslog.Tags
	// HostTags are the tags of the frontends whose hostname is a literal,
	// by that hostname in lower case (the first frontend of a hostname):
	// the record of a request no frontend routed shows those of its host,
	// as upstream's exact-authority lookup does. Read-only, may be nil.
	HostTags map[string]*accesslog.Tags

	Routes   *router.Table       // nil routes nothing
	Answers  *answers.Set        // the listener's custom answers; may be nil
	Clusters map[string]*Cluster // by id; shared by the listeners of one snapshot, read-only

	// derived by init
	ready      bool
	addrText   string // Addr formatted, for the access log
	xfPort     []byte // X-Forwarded-Port value
	byNode     []byte // Forwarded by= value
	idHeader   []byte
	stickyName []byte
	hostValue  []byte // Host sent for an HTTP/1.0 request without one
	defNames   map[string]bool
	defIPs     []netip.Addr
}

// Cluster is one cluster in a snapshot.
type Cluster struct {
	ID       string
	Backends *backends.Set // nil or empty: 503
	Answers  *answers.Set  // custom answers, tried before the listener's; may be nil

	// HTTPSRedirect answers requests arriving on plain HTTP listeners
	// with 301 to the same URL over https, on HTTPSRedirectPort when set
	// (and not 443).
	HTTPSRedirect     bool
	HTTPSRedirectPort uint16

	// Credentials are the accounts of authorized_hashes, for frontends
	// with required_auth; nil accepts nobody.
	Credentials *Credentials
	// WWWAuthenticate is the challenge of the cluster's 401 answers (see
	// Challenge), read-only; empty for none: a frontend with
	// required_auth then sends DefaultChallenge, an UNAUTHORIZED one none.
	WWWAuthenticate []byte

	// MaxConnsPerIP and RetryAfter override the worker's global cap on
	// connections per client IP and its Retry-After (nil: inherit; a cap
	// of 0: unlimited for this cluster). See package ipcap.
	MaxConnsPerIP *uint64
	RetryAfter    *uint32

	// Sticky pins each client to one backend with a cookie (sticky.go):
	// upstream's sticky_session.
	Sticky bool
}

// HSTS is a Strict-Transport-Security policy. A nil *HSTS or an empty
// Value sends nothing (an empty Value in FrontendHSTS disables the
// listener's policy for that frontend).
type HSTS struct {
	Value string // the field value, e.g. "max-age=31536000; includeSubDomains"
	// ForceReplace replaces the backend's own Strict-Transport-Security
	// fields; otherwise a backend that sends one keeps it.
	ForceReplace bool

	value []byte // Value, set by NewHSTS
}

// DefaultHSTSMaxAge is the max-age of an enabled policy without one (a year).
const DefaultHSTSMaxAge = 31536000

// NewHSTS builds a policy: nil when not enabled; maxAge nil gives
// DefaultHSTSMaxAge (0 is kept: it tells browsers to forget the policy).
func NewHSTS(enabled bool, maxAge *uint32, includeSubdomains, preload, forceReplace bool) *HSTS {
	if !enabled {
		return nil
	}
	age := uint64(DefaultHSTSMaxAge)
	if maxAge != nil {
		age = uint64(*maxAge)
	}
	v := "max-age=" + strconv.FormatUint(age, 10)
	if includeSubdomains {
		v += "; includeSubDomains"
	}
	if preload {
		v += "; preload"
	}
	return &HSTS{Value: v, ForceReplace: forceReplace, value: []byte(v)}
}

func orDefault(d, def time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return def
}

// init applies defaults and derives the values sessions use.
func (l *Listener) init() {
	if l.ready {
		return
	}
	l.FrontTimeout = orDefault(l.FrontTimeout, DefaultFrontTimeout)
	l.BackTimeout = orDefault(l.BackTimeout, DefaultBackTimeout)
	l.ConnectTimeout = orDefault(l.ConnectTimeout, DefaultConnectTimeout)
	l.RequestTimeout = orDefault(l.RequestTimeout, DefaultRequestTimeout)
	if l.IDHeader == "" {
		l.IDHeader = DefaultIDHeader
	}
	l.idHeader = []byte(l.IDHeader)
	l.addrText = l.Addr.String()
	if l.StickyName == "" {
		l.StickyName = DefaultStickyName
	}
	l.stickyName = []byte(l.StickyName)
	pub := l.PublicAddr
	if !pub.IsValid() {
		pub = l.Addr
	}
	l.xfPort = strconv.AppendUint(nil, uint64(pub.Port()), 10)
	l.byNode = forwardedNode(nil, pub.Addr(), pub.Port())
	l.hostValue = []byte(pub.String())
	l.defNames = map[string]bool{}
	for _, n := range l.DefaultNames {
		if ip, err := netip.ParseAddr(n); err == nil {
			l.defIPs = append(l.defIPs, ip.Unmap())
		} else {
			l.defNames[strings.ToLower(strings.TrimSuffix(n, "."))] = true
		}
	}
	l.ready = true
}

// forwardedNode formats an RFC 7239 node: a bare IPv4 address, or a quoted
// string for an IPv6 address or any address with a port.
func forwardedNode(dst []byte, ip netip.Addr, port uint16) []byte {
	ip = ip.Unmap()
	if ip.Is4() && port == 0 {
		return ip.AppendTo(dst)
	}
	dst = append(dst, '"')
	if ip.Is6() {
		dst = append(dst, '[')
		dst = ip.AppendTo(dst)
		dst = append(dst, ']')
	} else {
		dst = ip.AppendTo(dst)
	}
	if port != 0 {
		dst = append(dst, ':')
		dst = strconv.AppendUint(dst, uint64(port), 10)
	}
	return append(dst, '"')
}
