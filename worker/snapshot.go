package worker

import (
	"fmt"
	"strings"
	"time"

	"github.com/sozu-go/sozu/proto/command"
	"github.com/sozu-go/sozu/proto/state"
	"github.com/sozu-go/sozu/worker/accesslog"
	"github.com/sozu-go/sozu/worker/backends"
	"github.com/sozu-go/sozu/worker/health"
	"github.com/sozu-go/sozu/worker/http1"
	"github.com/sozu-go/sozu/worker/proxy"
	"github.com/sozu-go/sozu/worker/router"
	"github.com/sozu-go/sozu/worker/settings"
	"github.com/sozu-go/sozu/worker/tcp"
	"github.com/sozu-go/sozu/worker/tlsconf"
	"github.com/sozu-go/sozu/worker/udp"
)

// defaultWeight is the weight of a backend without load_balancing_parameters
// (the configuration's default).
const defaultWeight = 100

// snapshot is what the data plane needs from one ConfigState: the
// configuration of each HTTP and TCP listener, by listener key.
type snapshot struct {
	http     map[string]*proxy.Listener // HTTP and HTTPS listeners
	https    map[string]*tlsconf.Index  // SNI index of each HTTPS listener (TLS left for the worker to set)
	tcp      map[string]*tcp.Listener
	udp      map[string]*udp.Listener
	warnings []string // problems that left a rule or an answer out

	sets   map[string]*backends.Set // backends of each cluster, by cluster id
	health map[string]health.Config // health check of each cluster that has one, by cluster id
}

// buildSnapshot turns st into listener configurations. It updates reg with
// the configured backends (kept backends keep their pools and failure
// counts). Invalid rules and answer templates are left out and reported
// in warnings, so that one bad frontend does not stop the others. tickets
// is whether HTTPS listeners may issue session tickets (ticketCount).
func buildSnapshot(st *state.ConfigState, reg *backends.Registry, tickets bool) *snapshot {
	snap := &snapshot{http: map[string]*proxy.Listener{}, https: map[string]*tlsconf.Index{}, tcp: map[string]*tcp.Listener{},
		udp: map[string]*udp.Listener{}}
	warn := func(format string, args ...any) { snap.warnings = append(snap.warnings, fmt.Sprintf(format, args...)) }

	var listeners []httpListenerConfig
	var httpsListeners []*command.HttpsListenerConfig
	certs := map[string][]*tlsconf.Cert{} // by listener address
	now := time.Now()
	clusters := map[string]*command.Cluster{}
	var fronts []*command.RequestHttpFrontend
	var tcpListeners []*command.TcpListenerConfig
	tcpFronts := map[string]string{}        // listener address -> cluster id
	tcpTags := map[string]*accesslog.Tags{} // listener address -> its frontend's tags
	var udpListeners []*command.UdpListenerConfig
	udpFronts := map[string]string{}        // listener address -> cluster id
	udpTags := map[string]*accesslog.Tags{} // listener address -> its frontend's tags
	var specs []backends.Spec
	for _, wr := range st.GenerateRequests() {
		switch r := wr.GetContent().GetRequestType().(type) {
		case *command.Request_AddHttpListener:
			listeners = append(listeners, r.AddHttpListener)
		case *command.Request_AddCluster:
			clusters[r.AddCluster.GetClusterId()] = r.AddCluster
		case *command.Request_AddHttpFrontend:
			fronts = append(fronts, r.AddHttpFrontend)
		case *command.Request_AddHttpsListener:
			listeners = append(listeners, r.AddHttpsListener)
			httpsListeners = append(httpsListeners, r.AddHttpsListener)
		case *command.Request_AddHttpsFrontend:
			fronts = append(fronts, r.AddHttpsFrontend)
		case *command.Request_AddCertificate:
			ck := r.AddCertificate.GetCertificate()
			addr := r.AddCertificate.GetAddress().Display()
			c, err := tlsconf.Load(ck.GetCertificate(), ck.GetCertificateChain(), ck.GetKey(), ck.GetNames(), now)
			if err != nil {
				warn("HTTPS listener %s: %v: it is not served", addr, err)
				continue
			}
			c.ExpiredAt, _ = st.ExpiredAt(r.AddCertificate.GetAddress(), c.Fingerprint) // runtime only, not in the records
			certs[addr] = append(certs[addr], c)
		case *command.Request_AddTcpListener:
			tcpListeners = append(tcpListeners, r.AddTcpListener)
		case *command.Request_AddTcpFrontend:
			tcpFronts[r.AddTcpFrontend.GetAddress().Display()] = r.AddTcpFrontend.GetClusterId()
			tcpTags[r.AddTcpFrontend.GetAddress().Display()] = accesslog.NewTags(r.AddTcpFrontend.GetTags())
		case *command.Request_AddUdpListener:
			udpListeners = append(udpListeners, r.AddUdpListener)
		case *command.Request_AddUdpFrontend:
			udpFronts[r.AddUdpFrontend.GetAddress().Display()] = r.AddUdpFrontend.GetClusterId()
			udpTags[r.AddUdpFrontend.GetAddress().Display()] = accesslog.NewTags(r.AddUdpFrontend.GetTags())
		case *command.Request_AddBackend:
			b := r.AddBackend
			ap, err := b.GetAddress().AddrPort()
			if err != nil {
				warn("backend %s of cluster %s: %v", b.GetBackendId(), b.GetClusterId(), err)
				continue
			}
			w := defaultWeight
			if p := b.GetLoadBalancingParameters(); p != nil {
				w = int(p.GetWeight())
			}
			sticky := b.GetStickyId()
			if sticky == "" {
				sticky = b.GetBackendId() // upstream's default
			}
			specs = append(specs, backends.Spec{ClusterID: b.GetClusterId(), ID: b.GetBackendId(),
				Addr: ap, Weight: w, Backup: b.GetBackup(), StickyID: sticky})
		}
	}

	stickyIDs(specs, clusters, warn)
	policies := map[string]backends.Policy{}
	for id, c := range clusters {
		policies[id] = backends.PolicyFrom(c)
	}
	sets := reg.Update(specs, policies)
	snap.sets = sets
	snap.health = healthChecks(clusters, tcpFronts, udpFronts)
	shared := map[string]*proxy.Cluster{}
	for id, set := range sets {
		shared[id] = &proxy.Cluster{ID: id, Backends: set}
	}
	for id, c := range clusters {
		pc := shared[id]
		if pc == nil {
			pc = &proxy.Cluster{ID: id}
			shared[id] = pc
		}
		var cp settings.Cluster
		settings.ClusterPolicy(c, &cp, func(is settings.Issue) {
			if !is.Unused { // the supervisor and the configuration check report those once; this runs on every change
				warn("cluster %s: %v: %s", id, is, is.Effect)
			}
		})
		pc.HTTPSRedirect, pc.HTTPSRedirectPort, pc.Answers, pc.Credentials, pc.WWWAuthenticate =
			cp.HTTPSRedirect, cp.HTTPSRedirectPort, cp.Answers, cp.Credentials, cp.WWWAuthenticate
		pc.MaxConnsPerIP, pc.RetryAfter = copyOf(c.MaxConnectionsPerIp), copyOf(c.RetryAfter)
		pc.Sticky = c.GetStickySession()
	}

	idHeaders := map[string]string{} // request id field of each HTTP(S) listener, by address
	for _, l := range listeners {
		if h := l.GetSozuIdHeader(); h != "" && http1.IsToken(h) {
			idHeaders[l.GetAddress().Display()] = h
		}
	}

	rules := map[string][]router.Rule{}                  // by listener address
	fronthsts := map[string]map[string]*proxy.HSTS{}     // by listener address, then frontend key
	fronttags := map[string]map[string]*accesslog.Tags{} // by listener address, then frontend key
	hosttags := map[string]map[string]*accesslog.Tags{}  // by listener address, then literal hostname
	for _, f := range fronts {
		k, _ := state.FrontendKey(f)
		note := func(is settings.Issue) { warn("frontend %s: %v: %s", k, is, is.Effect) }
		r, ok := settings.RuleOf(f, note)
		if !ok {
			continue
		}
		addr := f.GetAddress().Display()
		idHeader := idHeaders[addr]
		if idHeader == "" {
			idHeader = proxy.DefaultIDHeader
		}
		if fe, serve := settings.FrontendPolicy(f, &r, clusters[f.GetClusterId()], idHeader, note); !serve {
			// Fail closed, and keep the rule: left out, its requests would
			// fall through to a less specific frontend; forwarding while
			// ignoring a rewrite or an edit would serve what the operator
			// meant to send elsewhere or to strip.
			r.Route = router.Route{Deny: true, Key: r.Route.Key}
		} else if fe != nil {
			r.Route.Policy = fe
		}
		rules[addr] = append(rules[addr], r)
		if h := f.GetHsts(); h != nil {
			if fronthsts[addr] == nil {
				fronthsts[addr] = map[string]*proxy.HSTS{}
			}
			fronthsts[addr][r.Route.Key] = hstsPolicy(h)
		}
		if t := accesslog.NewTags(f.GetTags()); t != nil {
			if fronttags[addr] == nil {
				fronttags[addr] = map[string]*accesslog.Tags{}
			}
			fronttags[addr][r.Route.Key] = t
			if h := strings.ToLower(r.Hostname); literalHostname(h) {
				if hosttags[addr] == nil {
					hosttags[addr] = map[string]*accesslog.Tags{}
				}
				if _, seen := hosttags[addr][h]; !seen {
					hosttags[addr][h] = t
				}
			}
		}
	}

	for _, l := range listeners {
		addr := l.GetAddress().Display()
		kind, what := command.ListenerType_HTTP, "HTTP listener "+addr
		if _, ok := l.(*command.HttpsListenerConfig); ok {
			kind, what = command.ListenerType_HTTPS, "HTTPS listener "+addr
		}
		ap, err := l.GetAddress().AddrPort()
		if err != nil {
			warn("%s: %v", what, err)
			continue
		}
		tab, err := router.Build(rules[addr])
		if err != nil { // unreachable: each rule was checked
			warn("%s: %v", what, err)
			continue
		}
		for _, p := range tab.Shadowed() {
			served, shadowed := &rules[addr][p[0]].Route, &rules[addr][p[1]].Route
			warn("%s: frontend %s (%s) is not in force: frontend %s (%s) matches the same requests and is served (hostnames compare without case and as A-labels)",
				what, shadowed.Key, routeTarget(shadowed), served.Key, routeTarget(served))
		}
		pl := &proxy.Listener{
			Addr:           ap,
			FrontTimeout:   seconds(l.GetFrontTimeout()),
			BackTimeout:    seconds(l.GetBackTimeout()),
			ConnectTimeout: seconds(l.GetConnectTimeout()),
			RequestTimeout: seconds(l.GetRequestTimeout()),
			SendXRealIP:    l.GetSendXRealIp(),
			ElideXRealIP:   l.GetElideXRealIp(),
			Routes:         tab,
			Clusters:       shared,
			Tags:           fronttags[addr],
			HostTags:       hosttags[addr],
		}
		if pub := l.GetPublicAddress(); pub != nil {
			if pap, err := pub.AddrPort(); err == nil {
				pl.PublicAddr = pap
			}
		}
		if h := l.GetSozuIdHeader(); h != "" {
			if http1.IsToken(h) {
				pl.IDHeader = h
			} else {
				warn("%s: sozu_id_header %q is not a field name: using %s", what, h, proxy.DefaultIDHeader)
			}
		}
		if n := l.GetStickyName(); n != "" {
			if http1.IsToken(n) {
				pl.StickyName = n
			} else {
				warn("%s: sticky_name %q is not a cookie name: using %s", what, n, proxy.DefaultStickyName)
			}
		}
		pl.Answers = compileAnswers(listenerAnswers(l), what, warn)
		pl.ExpectProxy = l.GetExpectProxy()
		if hl, ok := l.(*command.HttpsListenerConfig); ok {
			// Strict SNI binding is on unless explicitly turned off.
			pl.StrictSNI = hl.StrictSniBinding == nil || *hl.StrictSniBinding
			pl.HSTS = hstsPolicy(hl.GetHsts())
			pl.FrontendHSTS = fronthsts[addr]
			pl.H2 = h2Limits(hl)
			pl.DisableHTTP11 = hl.GetDisableHttp11()
		} else if len(fronthsts[addr]) > 0 {
			warn("%s: hsts on its frontends is ignored: HSTS is only sent over HTTPS", what)
		}
		snap.http[key(kind, addr)] = pl
	}
	for _, l := range httpsListeners {
		addr := l.GetAddress().Display()
		var def *tlsconf.Cert
		if l.GetCertificate() != "" || l.GetKey() != "" {
			c, err := tlsconf.Load(l.GetCertificate(), l.GetCertificateChain(), l.GetKey(), nil, now)
			if err != nil {
				warn("HTTPS listener %s: default %v: handshakes without a matching certificate fail", addr, err)
			} else {
				def = c
			}
		}
		if pl := snap.http[key(command.ListenerType_HTTPS, addr)]; pl != nil && def != nil {
			pl.DefaultNames = defaultHosts(def)
		}
		pol, pw := tlsconf.ParsePolicy(l.GetVersions(), l.GetCipherList(), l.GetCipherSuites(), l.GetGroupsList(), ticketCount(tickets, l))
		for _, w := range pw {
			warn("HTTPS listener %s: %s", addr, w)
		}
		pol.ALPN = l.GetAlpnProtocols()
		snap.https[key(command.ListenerType_HTTPS, addr)] = tlsconf.NewIndex(certs[addr], def).WithPolicy(pol)
	}
	for _, l := range tcpListeners {
		if tl := tcpListener(l, tcpFronts, clusters, sets, warn); tl != nil {
			tl.Tags = tcpTags[l.GetAddress().Display()]
			snap.tcp[key(command.ListenerType_TCP, l.GetAddress().Display())] = tl
		}
	}
	for _, l := range udpListeners {
		if ul := udpListener(l, udpFronts, clusters, sets, warn); ul != nil {
			ul.Tags = udpTags[l.GetAddress().Display()]
			snap.udp[key(command.ListenerType_UDP, l.GetAddress().Display())] = ul
		}
	}
	return snap
}

// stickyIDs turns the sticky id of each backend in specs into its cookie
// value (proxy.StickyCookieValue), and clears it when another backend of
// the same cluster has it already: that backend takes no sticky clients,
// which is reported when its cluster has sticky sessions.
func stickyIDs(specs []backends.Spec, clusters map[string]*command.Cluster, warn func(string, ...any)) {
	owner := map[[2]string]string{} // (cluster, cookie value) -> backend id
	for i := range specs {
		sp := &specs[i]
		id := sp.StickyID
		sp.StickyID = proxy.StickyCookieValue(id)
		k := [2]string{sp.ClusterID, sp.StickyID}
		if first, dup := owner[k]; dup && first != sp.ID {
			if clusters[sp.ClusterID].GetStickySession() {
				warn("backend %s of cluster %s: sticky id %q is backend %s's already: it takes no sticky clients",
					sp.ID, sp.ClusterID, id, first)
			}
			sp.StickyID = ""
			continue
		}
		owner[k] = sp.ID
	}
}

// copyOf returns a copy of *p, or nil: snapshots share nothing mutable
// with the state's messages.
func copyOf[T any](p *T) *T {
	if p == nil {
		return nil
	}
	v := *p
	return &v
}

// healthChecks returns the health check of each cluster that has one. A
// cluster bound to a TCP listener is probed by TCP connect, any other by
// HTTP GET. A cluster bound to a UDP listener is probed as its
// udp.health says (TCP_PROBE or UDP_PROBE), which wins over a
// health_check; with HEALTH_OFF, or without udp.health, it is not probed
// (a health_check's HTTP GET means nothing to a UDP backend, and is
// reported).
func healthChecks(clusters map[string]*command.Cluster, tcpFronts, udpFronts map[string]string) map[string]health.Config {
	tcpClusters, udpClusters := map[string]bool{}, map[string]bool{}
	for _, id := range tcpFronts {
		tcpClusters[id] = true
	}
	for _, id := range udpFronts {
		udpClusters[id] = true
	}
	out := map[string]health.Config{}
	for id, c := range clusters {
		if udpClusters[id] {
			if uh := c.GetUdp().GetHealth(); uh != nil && uh.GetMode() != command.UdpHealthMode_HEALTH_OFF {
				out[id] = health.UDPConfigFrom(uh)
			}
			continue
		}
		if hc := c.GetHealthCheck(); hc != nil {
			cfg := health.ConfigFrom(hc, tcpClusters[id])
			// The probe speaks what the cluster's requests speak.
			cfg.H2C = c.GetHttp2() && !cfg.TCP
			out[id] = cfg
		}
	}
	return out
}

// literalHostname reports whether h (lower case) names one host, neither
// a wildcard nor a pattern: letters, digits, '-', '.' and '_' only.
func literalHostname(h string) bool {
	if h == "" {
		return false
	}
	for i := 0; i < len(h); i++ {
		c := h[i]
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '.' || c == '_') {
			return false
		}
	}
	return true
}

// routeTarget names where a route sends its requests, for warnings.
func routeTarget(r *router.Route) string {
	if r.Deny {
		return "deny"
	}
	return "cluster " + r.ClusterID
}
