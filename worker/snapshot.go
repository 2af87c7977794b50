package worker

import (
	"fmt"
	"time"

	"github.com/sozu-go/sozu/proto/command"
	"github.com/sozu-go/sozu/proto/state"
	"github.com/sozu-go/sozu/worker/answers"
	"github.com/sozu-go/sozu/worker/backends"
	"github.com/sozu-go/sozu/worker/proxy"
	"github.com/sozu-go/sozu/worker/router"
	"github.com/sozu-go/sozu/worker/tcp"
	"github.com/sozu-go/sozu/worker/tlsconf"
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
	warnings []string // problems that left a rule or an answer out
}

// buildSnapshot turns st into listener configurations. It updates reg with
// the configured backends (kept backends keep their pools and failure
// counts). Invalid rules and answer templates are left out and reported
// in warnings, so that one bad frontend does not stop the others. tickets
// is whether HTTPS listeners may issue session tickets (ticketCount).
func buildSnapshot(st *state.ConfigState, reg *backends.Registry, tickets bool) *snapshot {
	snap := &snapshot{http: map[string]*proxy.Listener{}, https: map[string]*tlsconf.Index{}, tcp: map[string]*tcp.Listener{}}
	warn := func(format string, args ...any) { snap.warnings = append(snap.warnings, fmt.Sprintf(format, args...)) }

	var listeners []httpListenerConfig
	var httpsListeners []*command.HttpsListenerConfig
	certs := map[string][]*tlsconf.Cert{} // by listener address
	now := time.Now()
	clusters := map[string]*command.Cluster{}
	var fronts []*command.RequestHttpFrontend
	var tcpListeners []*command.TcpListenerConfig
	tcpFronts := map[string]string{} // listener address -> cluster id
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
			certs[addr] = append(certs[addr], c)
		case *command.Request_AddTcpListener:
			tcpListeners = append(tcpListeners, r.AddTcpListener)
		case *command.Request_AddTcpFrontend:
			tcpFronts[r.AddTcpFrontend.GetAddress().Display()] = r.AddTcpFrontend.GetClusterId()
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
			specs = append(specs, backends.Spec{ClusterID: b.GetClusterId(), ID: b.GetBackendId(),
				Addr: ap, Weight: w, Backup: b.GetBackup()})
		}
	}

	policies := map[string]backends.Policy{}
	for id, c := range clusters {
		policies[id] = backends.PolicyFrom(c.GetLoadBalancing())
	}
	sets := reg.Update(specs, policies)
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
		pc.HTTPSRedirect = c.GetHttpsRedirect()
		pc.HTTPSRedirectPort = uint16(c.GetHttpsRedirectPort()) // the config layer checks 1-65535
		m := map[string]string{}
		if c.Answer_503 != nil {
			m["503"] = c.GetAnswer_503()
		}
		for k, v := range c.GetAnswers() {
			m[k] = v
		}
		pc.Answers = compileAnswers(m, "cluster "+id, warn)
		if h := c.GetAuthorizedHashes(); len(h) > 0 {
			creds, errs := proxy.NewCredentials(h)
			for _, err := range errs {
				warn("cluster %s: %v: it is ignored", id, err)
			}
			pc.Credentials = creds
		}
		if c.WwwAuthenticate != nil {
			if ch, err := proxy.Challenge(c.GetWwwAuthenticate()); err != nil {
				warn("cluster %s: %v: it is ignored", id, err)
			} else {
				pc.WWWAuthenticate = []byte(ch)
			}
		}
	}

	idHeaders := map[string]string{} // request id field of each HTTP(S) listener, by address
	for _, l := range listeners {
		if h := l.GetSozuIdHeader(); h != "" && isToken(h) {
			idHeaders[l.GetAddress().Display()] = h
		}
	}

	rules := map[string][]router.Rule{}              // by listener address
	fronthsts := map[string]map[string]*proxy.HSTS{} // by listener address, then frontend key
	for _, f := range fronts {
		r, err := frontendRule(f)
		if err == nil {
			_, err = router.Build([]router.Rule{r})
		}
		if err != nil {
			warn("frontend %s: %v", r.Route.Key, err)
			continue
		}
		addr := f.GetAddress().Display()
		idHeader := idHeaders[addr]
		if idHeader == "" {
			idHeader = proxy.DefaultIDHeader
		}
		fe, err := frontendPolicy(f, &r, clusters[f.GetClusterId()], idHeader, func(format string, args ...any) {
			warn("frontend %s: "+format, append([]any{r.Route.Key}, args...)...)
		})
		if err != nil {
			// Fail closed, and keep the rule: left out, its requests would
			// fall through to a less specific frontend; forwarding while
			// ignoring a rewrite or an edit would serve what the operator
			// meant to send elsewhere or to strip.
			warn("frontend %s: %v: it answers 404", r.Route.Key, err)
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
		}
		if pub := l.GetPublicAddress(); pub != nil {
			if pap, err := pub.AddrPort(); err == nil {
				pl.PublicAddr = pap
			}
		}
		if h := l.GetSozuIdHeader(); h != "" {
			if isToken(h) {
				pl.IDHeader = h
			} else {
				warn("%s: sozu_id_header %q is not a field name: using %s", what, h, proxy.DefaultIDHeader)
			}
		}
		pl.Answers = compileAnswers(listenerAnswers(l), what, warn)
		pl.ExpectProxy = l.GetExpectProxy()
		if hl, ok := l.(*command.HttpsListenerConfig); ok {
			// Strict SNI binding is on unless explicitly turned off.
			pl.StrictSNI = hl.StrictSniBinding == nil || *hl.StrictSniBinding
			pl.HSTS = hstsPolicy(hl.GetHsts())
			pl.FrontendHSTS = fronthsts[addr]
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
		pol, pw := tlsconf.ParsePolicy(l.GetVersions(), l.GetCipherList(), l.GetCipherSuites(), l.GetGroupsList(), ticketCount(tickets, l))
		for _, w := range pw {
			warn("HTTPS listener %s: %s", addr, w)
		}
		snap.https[key(command.ListenerType_HTTPS, addr)] = tlsconf.NewIndex(certs[addr], def).WithPolicy(pol)
	}
	for _, l := range tcpListeners {
		if tl := tcpListener(l, tcpFronts, clusters, sets, warn); tl != nil {
			snap.tcp[key(command.ListenerType_TCP, l.GetAddress().Display())] = tl
		}
	}
	return snap
}

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
		pp := clusters[id].GetProxyProtocol()
		tl.Cluster = &tcp.Cluster{ID: id, Backends: sets[id], // a nil cluster gives EXPECT_HEADER, sending nothing
			SendProxy: pp == command.ProxyProtocolConfig_SEND_HEADER || pp == command.ProxyProtocolConfig_RELAY_HEADER}
	}
	return tl
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
	GetExpectProxy() bool
	GetHttpAnswers() *command.CustomHttpAnswers
	GetAnswers() map[string]string
}

// listenerAnswers merges the legacy http_answers bodies under the answers
// map, whose entries win (as upstream does).
func listenerAnswers(l httpListenerConfig) map[string]string {
	m := map[string]string{}
	if h := l.GetHttpAnswers(); h != nil {
		for code, v := range map[string]*string{
			"301": h.Answer_301, "400": h.Answer_400, "401": h.Answer_401, "404": h.Answer_404,
			"408": h.Answer_408, "413": h.Answer_413, "421": h.Answer_421, "429": h.Answer_429,
			"502": h.Answer_502, "503": h.Answer_503, "504": h.Answer_504, "507": h.Answer_507,
		} {
			if v != nil {
				m[code] = *v
			}
		}
	}
	for k, v := range l.GetAnswers() {
		m[k] = v
	}
	return m
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

// frontendPolicy compiles what frontend f, whose rule is r and cluster c
// (maybe nil), asks beyond forwarding: nil when nothing. It returns an
// error for a setting it cannot honour (an unknown enum value, a malformed
// rewrite template, a malformed header edit, a port out of range): the
// frontend must then not be served. Settings that are ignored (upstream
// ignores them too, or the proxy keeps control of what they would change)
// are reported through warn.
func frontendPolicy(f *command.RequestHttpFrontend, r *router.Rule, c *command.Cluster, idHeader string, warn func(string, ...any)) (*proxy.Frontend, error) {
	fe := &proxy.Frontend{}
	switch f.GetRedirect() {
	case command.RedirectPolicy_FORWARD:
	case command.RedirectPolicy_PERMANENT:
		fe.Redirect = 301
	case command.RedirectPolicy_FOUND:
		fe.Redirect = 302
	case command.RedirectPolicy_PERMANENT_REDIRECT:
		fe.Redirect = 308
	case command.RedirectPolicy_UNAUTHORIZED:
		fe.Redirect = 401
	default:
		return nil, fmt.Errorf("unknown redirect policy %d", f.GetRedirect())
	}
	if f.ClusterId == nil && fe.Redirect == 0 {
		return nil, nil // a deny rule (404): nothing else applies
	}
	switch f.GetRedirectScheme() {
	case command.RedirectScheme_USE_SAME:
	case command.RedirectScheme_USE_HTTP:
		fe.RedirectScheme = proxy.SchemeHTTP
	case command.RedirectScheme_USE_HTTPS:
		fe.RedirectScheme = proxy.SchemeHTTPS
	default:
		return nil, fmt.Errorf("unknown redirect scheme %d", f.GetRedirectScheme())
	}
	if fe.Redirect == 401 {
		// Upstream ignores the rest of an UNAUTHORIZED frontend too.
		if f.GetRequiredAuth() {
			warn("required_auth is ignored: the frontend answers 401 to every request")
		}
		return fe, nil
	}
	redirects := fe.Redirect != 0
	if !redirects {
		fe.RedirectScheme = proxy.SchemeSame // unused: keep the route on the plain path
	}
	if tmpl := f.GetRedirectTemplate(); tmpl != "" && !redirects {
		warn("redirect_template is ignored: the frontend does not redirect")
	} else if tmpl != "" {
		switch t, err := answers.Compile(fe.Redirect, tmpl); {
		case err != nil:
			warn("redirect_template: %v: the default answer is used", err)
		case t.Status()/100 != 3:
			warn("redirect_template answers %d, not a redirection: the default answer is used", t.Status())
		default:
			fe.RedirectTemplate = t
		}
	}
	for _, rt := range []struct {
		src  string
		kind router.TemplateKind
		dst  **router.Template
		name string
	}{{f.GetRewriteHost(), router.HostTemplate, &fe.RewriteHost, "rewrite_host"}, {f.GetRewritePath(), router.PathTemplate, &fe.RewritePath, "rewrite_path"}} {
		if rt.src == "" {
			continue
		}
		t, err := router.ParseTemplate(rt.src, rt.kind)
		if err == nil {
			err = t.Check(r)
		}
		if err != nil {
			return nil, fmt.Errorf("%s %q: %w", rt.name, rt.src, err)
		}
		*rt.dst = t
	}
	if f.RewritePort != nil {
		p := f.GetRewritePort()
		if p < 1 || p > 65535 {
			return nil, fmt.Errorf("rewrite_port %d is not in 1-65535", p)
		}
		fe.RewritePort = uint16(p)
	}
	if redirects {
		if f.GetRequiredAuth() || len(f.GetHeaders()) > 0 {
			warn("required_auth and headers are ignored: the frontend redirects")
		}
	} else {
		fe.RequiredAuth = f.GetRequiredAuth()
		if fe.RequiredAuth && len(c.GetAuthorizedHashes()) == 0 {
			warn("required_auth without authorized_hashes on cluster %s: every request answers 401", f.GetClusterId())
		}
		edits := make([]proxy.HeaderEdit, 0, len(f.GetHeaders()))
		for _, h := range f.GetHeaders() {
			pos := proxy.HeaderUnspecified
			if p := h.GetPosition(); p >= command.HeaderPosition_REQUEST && p <= command.HeaderPosition_BOTH {
				pos = proxy.HeaderPosition(p)
			}
			edits = append(edits, proxy.HeaderEdit{Position: pos, Name: h.GetKey(), Value: h.GetVal()})
		}
		req, resp, refused, err := proxy.CompileHeaderEdits(edits, idHeader, fe.RewriteHost != nil || fe.RewritePort != 0)
		if err != nil {
			return nil, err
		}
		for _, e := range refused {
			warn("%v", e)
		}
		fe.Request, fe.Response = req, resp
	}
	if *fe == (proxy.Frontend{}) {
		return nil, nil
	}
	return fe, nil
}

// frontendRule converts a frontend to a router rule; a frontend without
// cluster_id is a deny rule.
func frontendRule(f *command.RequestHttpFrontend) (router.Rule, error) {
	k, _ := state.FrontendKey(f)
	r := router.Rule{
		Hostname: f.GetHostname(),
		Path:     f.GetPath().GetValue(),
		Method:   f.GetMethod(),
		Route:    router.Route{ClusterID: f.GetClusterId(), Deny: f.ClusterId == nil, Key: k},
	}
	switch f.GetPath().GetKind() {
	case command.PathRuleKind_PREFIX:
		r.Kind = router.Prefix
	case command.PathRuleKind_REGEX:
		r.Kind = router.Regex
	case command.PathRuleKind_EQUALS:
		r.Kind = router.Equals
	default:
		return r, fmt.Errorf("unknown path rule kind %v", f.GetPath().GetKind())
	}
	switch f.GetPosition() {
	case command.RulePosition_PRE:
		r.Position = router.Pre
	case command.RulePosition_POST:
		r.Position = router.Post
	default:
		r.Position = router.Tree
	}
	return r, nil
}

// isToken reports whether s is an HTTP field name.
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case c == '!' || c == '#' || c == '$' || c == '%' || c == '&' || c == '\'' || c == '*' ||
			c == '+' || c == '-' || c == '.' || c == '^' || c == '_' || c == '`' || c == '|' || c == '~':
		default:
			return false
		}
	}
	return true
}

// ticketCount is the send_tls13_tickets of l, or 0 when the worker may not
// issue session tickets (tls_session_tickets off).
func ticketCount(allowed bool, l *command.HttpsListenerConfig) uint64 {
	if !allowed {
		return 0
	}
	return l.GetSendTls13Tickets()
}
