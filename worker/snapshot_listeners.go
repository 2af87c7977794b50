package worker

import (
	"slices"
	"time"

	"github.com/sozu-go/sozu/proto/command"
	"github.com/sozu-go/sozu/proto/state"
	"github.com/sozu-go/sozu/worker/answers"
	"github.com/sozu-go/sozu/worker/backends"
	"github.com/sozu-go/sozu/worker/h2"
	"github.com/sozu-go/sozu/worker/proxy"
	"github.com/sozu-go/sozu/worker/settings"
	"github.com/sozu-go/sozu/worker/tcp"
	"github.com/sozu-go/sozu/worker/tlsconf"
	"github.com/sozu-go/sozu/worker/udp"
)

// How each listener of the state becomes a data-plane listener: timeouts,
// HSTS, answer templates, session tickets, the default certificate names.

// tcpListener builds the configuration of TCP listener l, whose frontend
// (if any) is in fronts, by listener address.
func tcpListener(l *command.TcpListenerConfig, fronts map[string]string, clusters map[string]*command.Cluster,
	sets map[string]*backends.Set, warn func(string, ...any)) *tcp.Listener {
	addr := l.GetAddress().Display()
	ap, err := l.GetAddress().AddrPort()
	if err != nil {
		warn("TCP listener %s: %v", addr, err)
		return nil
	}
	tl := &tcp.Listener{
		Addr:           ap,
		ExpectProxy:    l.GetExpectProxy(),
		FrontTimeout:   seconds(l.GetFrontTimeout()),
		BackTimeout:    seconds(l.GetBackTimeout()),
		ConnectTimeout: seconds(l.GetConnectTimeout()),
	}
	if id, ok := fronts[addr]; ok {
		// As upstream: EXPECT_HEADER reads the client's header, SEND_HEADER
		// writes one, RELAY_HEADER does both and forwards the header read.
		// A cluster without proxy_protocol neither reads nor writes one.
		tl.Cluster = &tcp.Cluster{ID: id, Backends: sets[id]}
		if cl := clusters[id]; cl != nil {
			tl.Cluster.MaxConnsPerIP = copyOf(cl.MaxConnectionsPerIp)
		}
		if cl := clusters[id]; cl != nil && cl.ProxyProtocol != nil {
			pp := cl.GetProxyProtocol()
			tl.Cluster.ExpectProxy = pp == command.ProxyProtocolConfig_EXPECT_HEADER || pp == command.ProxyProtocolConfig_RELAY_HEADER
			tl.Cluster.SendProxy = pp == command.ProxyProtocolConfig_SEND_HEADER || pp == command.ProxyProtocolConfig_RELAY_HEADER
			tl.Cluster.RelayProxy = pp == command.ProxyProtocolConfig_RELAY_HEADER
		}
	}
	return tl
}

// udpListener builds the configuration of UDP listener l, whose frontend
// (if any) is in fronts, by listener address. max_flows 0 is the worker's
// max_connections bound, or udp.DefaultMaxFlows (see udp.Listener).
func udpListener(l *command.UdpListenerConfig, fronts map[string]string, clusters map[string]*command.Cluster,
	sets map[string]*backends.Set, warn func(string, ...any)) *udp.Listener {
	addr := l.GetAddress().Display()
	ap, err := l.GetAddress().AddrPort()
	if err != nil {
		warn("UDP listener %s: %v", addr, err)
		return nil
	}
	ul := &udp.Listener{
		Addr:         ap,
		FrontTimeout: seconds(l.GetFrontTimeout()),
		BackTimeout:  seconds(l.GetBackTimeout()),
		MaxDatagram:  int(l.GetMaxRxDatagramSize()),
		MaxFlows:     int(l.GetMaxFlows()),
	}
	if pub := l.GetPublicAddress(); pub != nil {
		if pap, err := pub.AddrPort(); err == nil {
			ul.PublicAddr = pap
		}
	}
	if id, ok := fronts[addr]; ok {
		uc := clusters[id].GetUdp() // nil-safe: a cluster without udp takes the defaults
		ul.Cluster = &udp.Cluster{
			ID:                 id,
			Backends:           sets[id],
			BySourcePort:       uc.GetAffinityKey() == command.UdpAffinityKey_SOURCE_IP_PORT,
			Responses:          uc.GetResponses(),
			Requests:           uc.GetRequests(),
			SendProxy:          uc.GetSendProxyProtocol(),
			ProxyEveryDatagram: uc.GetProxyProtocolEveryDatagram(),
			FailOpen:           uc.GetHealth().GetFailOpen(), // true when absent (command.proto default)
		}
	}
	return ul
}

func seconds(s uint32) time.Duration { return time.Duration(s) * time.Second }

// hstsPolicy converts an HSTS configuration; a present but disabled one
// gives an empty policy (which, on a frontend, turns the listener's off).
func hstsPolicy(h *command.HstsConfig) *proxy.HSTS {
	if h == nil {
		return nil
	}
	p := proxy.NewHSTS(h.GetEnabled(), h.MaxAge, h.GetIncludeSubdomains(), h.GetPreload(), h.GetForceReplaceBackend())
	if p == nil {
		p = &proxy.HSTS{}
	}
	return p
}

// httpListenerConfig is what HTTP and HTTPS listener configurations share.
type httpListenerConfig interface {
	GetAddress() *command.SocketAddress
	GetPublicAddress() *command.SocketAddress
	GetFrontTimeout() uint32
	GetBackTimeout() uint32
	GetConnectTimeout() uint32
	GetRequestTimeout() uint32
	GetSendXRealIp() bool
	GetElideXRealIp() bool
	GetSozuIdHeader() string
	GetStickyName() string
	GetExpectProxy() bool
	GetHttpAnswers() *command.CustomHttpAnswers
	GetAnswers() map[string]string
}

// listenerAnswers merges the legacy http_answers bodies under the answers
// map, whose entries win (as upstream does).
func listenerAnswers(l httpListenerConfig) map[string]string {
	return settings.MergeAnswers(l.GetHttpAnswers(), l.GetAnswers())
}

func compileAnswers(m map[string]string, where string, warn func(string, ...any)) *answers.Set {
	if len(m) == 0 {
		return nil
	}
	set, errs := answers.NewSet(m)
	for _, err := range errs {
		warn("%s: %v (the default answer is used)", where, err)
	}
	return set
}

// ticketCount is the send_tls13_tickets of l, or 0 when the worker may not
// issue session tickets (tls_session_tickets off).
func ticketCount(allowed bool, l *command.HttpsListenerConfig) uint64 {
	if !allowed {
		return 0
	}
	return l.GetSendTls13Tickets()
}

// defaultHosts lists the hosts a listener's default certificate covers, for
// strict SNI binding of clients that sent no SNI: its indexed names and
// its IP address SANs (which tlsconf does not index: no client sends SNI
// for an address).
func defaultHosts(c *tlsconf.Cert) []string {
	out := slices.Clone(c.Names)
	if c.TLS != nil && c.TLS.Leaf != nil {
		for _, ip := range c.TLS.Leaf.IPAddresses {
			out = append(out, ip.String())
		}
	}
	return out
}

// h2Limits converts the h2_* keys of an HTTPS listener; an absent key keeps
// h2's default, which is upstream's. A key stated out of its range (0 above
// all, which only a state file record or a raw add_https_listener carries:
// the configuration and listener updates refuse it) is clamped into range
// as upstream clamps it (state.ClampH2Knobs): a stated 0 is the strictest bound,
// 1, never the default. A graceful shutdown deadline of 0 means none. An
// absent (or 0) stream idle timeout is, as upstream's, the listener's
// back_timeout floored at 30 s, so that a stream awaiting a slow backend is
// not reaped before back_timeout cuts it; the two falling due together,
// such a stream (its request complete, its response not begun) is left to
// the backend timeouts, which answer it 504 as an HTTP/1.1 request
// (h2.Limits.StreamIdleSparesAwaiting).
func h2Limits(l *command.HttpsListenerConfig) h2.Limits {
	idle := l.GetH2StreamIdleTimeoutSeconds() // as stated: 0 is back_timeout, not clamped to 1
	spare := idle == 0
	if idle == 0 {
		idle = max(30, l.GetBackTimeout())
	}
	l = state.ClampH2Knobs(l)
	lim := h2.Limits{
		MaxConcurrentStreams:            l.GetH2MaxConcurrentStreams(),
		MaxRstStreamPerWindow:           l.GetH2MaxRstStreamPerWindow(),
		MaxRstStreamLifetime:            l.GetH2MaxRstStreamLifetime(),
		MaxRstStreamAbusiveLifetime:     l.GetH2MaxRstStreamAbusiveLifetime(),
		MaxRstStreamEmittedLifetime:     l.GetH2MaxRstStreamEmittedLifetime(),
		MaxPingPerWindow:                l.GetH2MaxPingPerWindow(),
		MaxSettingsPerWindow:            l.GetH2MaxSettingsPerWindow(),
		MaxEmptyDataPerWindow:           l.GetH2MaxEmptyDataPerWindow(),
		MaxWindowUpdateStream0PerWindow: l.GetH2MaxWindowUpdateStream0PerWindow(),
		MaxContinuationFrames:           l.GetH2MaxContinuationFrames(),
		MaxHeaderFields:                 l.GetH2MaxHeaderFields(),
		MaxHeaderListSize:               l.GetH2MaxHeaderListSize(),
		MaxHeaderTableSize:              l.GetH2MaxHeaderTableSize(),
		InitialConnectionWindow:         l.GetH2InitialConnectionWindow(),
		StreamShrinkRatio:               l.GetH2StreamShrinkRatio(),
		StreamIdleTimeout:               time.Duration(idle) * time.Second,
		StreamIdleSparesAwaiting:        spare,
		MaxGlitchCount:                  l.GetH2MaxGlitchCount(),
	}
	if l.H2GracefulShutdownDeadlineSeconds != nil {
		lim.GracefulShutdownDeadline = time.Duration(*l.H2GracefulShutdownDeadlineSeconds) * time.Second
		if lim.GracefulShutdownDeadline == 0 {
			lim.GracefulShutdownDeadline = -1
		}
	}
	return lim
}
