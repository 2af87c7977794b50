package worker

import (
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/sozu-go/sozu/proto/command"
	"github.com/sozu-go/sozu/proto/state"
	"github.com/sozu-go/sozu/worker/answers"
	"github.com/sozu-go/sozu/worker/backends"
	"github.com/sozu-go/sozu/worker/health"
	"github.com/sozu-go/sozu/worker/http1"
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

	sets   map[string]*backends.Set // backends of each cluster, by cluster id
	health map[string]health.Config // health check of each cluster that has one, by cluster id
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
			c.ExpiredAt, _ = st.ExpiredAt(r.AddCertificate.GetAddress(), c.Fingerprint) // runtime only, not in the records
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
		policies[id] = backends.PolicyFrom(c)
	}
	sets := reg.Update(specs, policies)
	snap.sets = sets
	snap.health = healthChecks(clusters, tcpFronts)
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
		clusterPolicy(c, pc, func(is Issue) { warn("cluster %s: %v: %s", id, is, is.Effect) })
	}

	idHeaders := map[string]string{} // request id field of each HTTP(S) listener, by address
	for _, l := range listeners {
		if h := l.GetSozuIdHeader(); h != "" && http1.IsToken(h) {
			idHeaders[l.GetAddress().Display()] = h
		}
	}

	rules := map[string][]router.Rule{}              // by listener address
	fronthsts := map[string]map[string]*proxy.HSTS{} // by listener address, then frontend key
	for _, f := range fronts {
		k, _ := state.FrontendKey(f)
		note := func(is Issue) { warn("frontend %s: %v: %s", k, is, is.Effect) }
		r, ok := ruleOf(f, note)
		if !ok {
			continue
		}
		addr := f.GetAddress().Display()
		idHeader := idHeaders[addr]
		if idHeader == "" {
			idHeader = proxy.DefaultIDHeader
		}
		if fe, serve := frontendPolicy(f, &r, clusters[f.GetClusterId()], idHeader, note); !serve {
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
			if http1.IsToken(h) {
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
		// As upstream: EXPECT_HEADER reads the client's header, SEND_HEADER
		// writes one, RELAY_HEADER does both and forwards the header read.
		// A cluster without proxy_protocol neither reads nor writes one.
		tl.Cluster = &tcp.Cluster{ID: id, Backends: sets[id]}
		if cl := clusters[id]; cl != nil && cl.ProxyProtocol != nil {
			pp := cl.GetProxyProtocol()
			tl.Cluster.ExpectProxy = pp == command.ProxyProtocolConfig_EXPECT_HEADER || pp == command.ProxyProtocolConfig_RELAY_HEADER
			tl.Cluster.SendProxy = pp == command.ProxyProtocolConfig_SEND_HEADER || pp == command.ProxyProtocolConfig_RELAY_HEADER
			tl.Cluster.RelayProxy = pp == command.ProxyProtocolConfig_RELAY_HEADER
		}
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
	return mergeAnswers(l.GetHttpAnswers(), l.GetAnswers())
}

// CheckListenerAnswers reports the answer templates of a listener (the
// legacy http_answers merged under the answers map) that workers would
// leave out, answering with the default instead.
func CheckListenerAnswers(legacy *command.CustomHttpAnswers, m map[string]string) []Issue {
	merged := mergeAnswers(legacy, m)
	if len(merged) == 0 {
		return nil
	}
	var out []Issue
	_, errs := answers.NewSet(merged)
	for _, err := range errs {
		is := Issue{Field: "answers", Index: -1, Msg: err.Error(), Effect: effectDefault}
		var ke *answers.KeyError
		if errors.As(err, &ke) {
			is.Key = ke.Key
		}
		out = append(out, is)
	}
	return out
}

func mergeAnswers(h *command.CustomHttpAnswers, answersMap map[string]string) map[string]string {
	m := map[string]string{}
	if h != nil {
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
	for k, v := range answersMap {
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

// Issue is a setting of a frontend or a cluster that workers do not
// honour as written. A worker reports it in its log and falls back to
// Effect; the supervisor and the configuration loader refuse it before the
// state takes it (CheckFrontend, CheckCluster).
type Issue struct {
	// Field is the setting, by its configuration name ("rewrite_path",
	// "headers", "authorized_hashes", "answers"…).
	Field string
	// Index is the element of a list setting (headers, authorized_hashes),
	// -1 for none.
	Index int
	// Key is the part of that element at fault ("position", "key" or
	// "value" of a header edit) or the key of a map setting (an answers
	// status code), "" for none.
	Key string
	// Msg says what is wrong. It never holds a secret: an
	// authorized_hashes entry is named by Index only.
	Msg string
	// Effect is what a worker does instead: "it answers 404" (the
	// frontend is denied), "it is left out", "it is ignored", "the default
	// answer is used", "every request answers 401".
	Effect string
	// Related is set when the issue lies in another object (the
	// frontend's cluster) that a later change may fix: the setting itself
	// is well formed.
	Related bool
}

// Path names the setting: Field, then [Index], then .Key, e.g.
// "headers[2].value" or "answers.503".
func (is Issue) Path() string {
	p := is.Field
	if is.Index >= 0 {
		p += "[" + strconv.Itoa(is.Index) + "]"
	}
	if is.Key != "" {
		p += "." + is.Key
	}
	return p
}

// Error returns "<path>: <msg>".
func (is Issue) Error() string { return is.Path() + ": " + is.Msg }

// Effects of issues.
const (
	effectDeny    = "it answers 404"
	effectLeftOut = "it is left out"
	effectIgnored = "it is ignored"
	effectDefault = "the default answer is used"
	effect401     = "every request answers 401"
)

// CheckFrontend reports, in order, what a worker would not honour in
// frontend f as written (see frontendPolicy): an empty result means the
// worker serves it as configured. c is f's cluster, nil when there is none
// yet; idHeader is the request id field of the listener at f's address, ""
// for the default. Issues with Related set depend on c.
func CheckFrontend(f *command.RequestHttpFrontend, c *command.Cluster, idHeader string) []Issue {
	var out []Issue
	note := func(is Issue) { out = append(out, is) }
	r, ok := ruleOf(f, note)
	if !ok {
		return out
	}
	if idHeader == "" || !http1.IsToken(idHeader) {
		idHeader = proxy.DefaultIDHeader
	}
	frontendPolicy(f, &r, c, idHeader, note)
	return out
}

// CheckCluster reports, in order, what a worker would not honour in the
// HTTP settings of cluster c (authorized_hashes, www_authenticate,
// answers, answer_503, https_redirect_port).
func CheckCluster(c *command.Cluster) []Issue {
	var out []Issue
	clusterPolicy(c, &proxy.Cluster{}, func(is Issue) { out = append(out, is) })
	return out
}

// clusterPolicy sets the HTTP settings of cluster c on pc, and reports
// through note the ones it leaves out.
func clusterPolicy(c *command.Cluster, pc *proxy.Cluster, note func(Issue)) {
	pc.HTTPSRedirect = c.GetHttpsRedirect()
	if p := c.GetHttpsRedirectPort(); p <= 65535 {
		pc.HTTPSRedirectPort = uint16(p) // 0: none
	} else {
		note(Issue{Field: "https_redirect_port", Index: -1, Msg: fmt.Sprintf("%d is not a port (1-65535)", p), Effect: effectIgnored})
	}
	m := map[string]string{}
	if c.Answer_503 != nil {
		m["503"] = c.GetAnswer_503()
	}
	for k, v := range c.GetAnswers() {
		m[k] = v
	}
	if len(m) > 0 {
		set, errs := answers.NewSet(m)
		for _, err := range errs {
			is := Issue{Field: "answers", Index: -1, Msg: err.Error(), Effect: effectDefault}
			var ke *answers.KeyError
			if errors.As(err, &ke) {
				is.Key = ke.Key
				if _, inMap := c.GetAnswers()[ke.Key]; !inMap && ke.Key == "503" {
					is.Field, is.Key = "answer_503", ""
				}
			}
			note(is)
		}
		pc.Answers = set
	}
	if h := c.GetAuthorizedHashes(); len(h) > 0 {
		creds, errs := proxy.NewCredentials(h)
		for _, err := range errs {
			is := Issue{Field: "authorized_hashes", Index: -1, Msg: err.Error(), Effect: effectIgnored}
			var ce *proxy.CredentialError
			if errors.As(err, &ce) {
				is.Index, is.Msg = ce.Index, ce.Msg
			}
			note(is)
		}
		pc.Credentials = creds
	}
	if c.WwwAuthenticate != nil {
		if ch, err := proxy.Challenge(c.GetWwwAuthenticate()); err != nil {
			note(Issue{Field: "www_authenticate", Index: -1, Msg: err.Error(), Effect: effectIgnored})
		} else {
			pc.WWWAuthenticate = []byte(ch)
		}
	}
}

// ruleOf returns the router rule of frontend f, or reports through note
// why there is none (ok false): the router cannot match it, so it cannot
// even be a deny rule, and it is left out.
func ruleOf(f *command.RequestHttpFrontend, note func(Issue)) (r router.Rule, ok bool) {
	r, err := frontendRule(f)
	field := "path"
	if err == nil {
		field, err = router.CheckRule(&r)
	}
	if err != nil {
		note(Issue{Field: field, Index: -1, Msg: err.Error(), Effect: effectLeftOut})
		return r, false
	}
	return r, true
}

// frontendPolicy compiles what frontend f, whose rule is r and cluster c
// (maybe nil), asks beyond forwarding: nil when nothing. It reports through
// note every setting it does not honour as written. serve is false when
// one of them makes the frontend unsafe to serve (an unknown enum value, a
// malformed rewrite template, a malformed header edit, a port out of
// range): it must then answer 404. Other settings are ignored, the rest
// applied: those that have no effect on this kind of frontend, a redirect
// template that does not compile, and edits of fields the proxy keeps
// control of.
func frontendPolicy(f *command.RequestHttpFrontend, r *router.Rule, c *command.Cluster, idHeader string, note func(Issue)) (fe *proxy.Frontend, serve bool) {
	serve = true
	deny := func(field, format string, args ...any) {
		note(Issue{Field: field, Index: -1, Msg: fmt.Sprintf(format, args...), Effect: effectDeny})
		serve = false
	}
	ignored := func(field, why string) {
		note(Issue{Field: field, Index: -1, Msg: why, Effect: effectIgnored})
	}
	fe = &proxy.Frontend{}
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
		deny("redirect", "unknown redirect policy %d", f.GetRedirect())
		return nil, false
	}
	if f.ClusterId == nil && fe.Redirect == 0 {
		// A deny rule (404): nothing else applies.
		for _, s := range setSettings(f) {
			ignored(s, "has no effect: the frontend has no cluster_id and does not redirect (a deny rule, 404)")
		}
		return nil, true
	}
	switch f.GetRedirectScheme() {
	case command.RedirectScheme_USE_SAME:
	case command.RedirectScheme_USE_HTTP:
		fe.RedirectScheme = proxy.SchemeHTTP
	case command.RedirectScheme_USE_HTTPS:
		fe.RedirectScheme = proxy.SchemeHTTPS
	default:
		deny("redirect_scheme", "unknown redirect scheme %d", f.GetRedirectScheme())
		return nil, false
	}
	if fe.Redirect == 401 {
		// Upstream ignores the rest of an UNAUTHORIZED frontend too.
		for _, s := range setSettings(f) {
			ignored(s, "has no effect: the frontend answers 401 to every request")
		}
		return fe, true
	}
	redirects := fe.Redirect != 0
	if !redirects {
		if fe.RedirectScheme != proxy.SchemeSame {
			ignored("redirect_scheme", "has no effect: the frontend does not redirect")
		}
		fe.RedirectScheme = proxy.SchemeSame // unused: keep the route on the plain path
	}
	if tmpl := f.GetRedirectTemplate(); tmpl != "" && !redirects {
		ignored("redirect_template", "has no effect: the frontend does not redirect")
	} else if tmpl != "" {
		switch t, err := answers.Compile(fe.Redirect, tmpl); {
		case err != nil:
			note(Issue{Field: "redirect_template", Index: -1, Msg: err.Error(), Effect: effectDefault})
		case t.Status()/100 != 3:
			note(Issue{Field: "redirect_template", Index: -1, Msg: fmt.Sprintf("answers %d, not a redirection", t.Status()), Effect: effectDefault})
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
			deny(rt.name, "%q: %v", rt.src, err)
			continue
		}
		*rt.dst = t
	}
	if f.RewritePort != nil {
		if p := f.GetRewritePort(); p < 1 || p > 65535 {
			deny("rewrite_port", "%d is not in 1-65535", p)
		} else {
			fe.RewritePort = uint16(p)
		}
	}
	if redirects {
		if f.GetRequiredAuth() {
			ignored("required_auth", "has no effect: the frontend redirects")
		}
		if len(f.GetHeaders()) > 0 {
			ignored("headers", "has no effect: the frontend redirects")
		}
	} else {
		fe.RequiredAuth = f.GetRequiredAuth()
		if fe.RequiredAuth && len(c.GetAuthorizedHashes()) == 0 {
			note(Issue{Field: "required_auth", Index: -1, Msg: fmt.Sprintf("cluster %s has no authorized_hashes", f.GetClusterId()),
				Effect: effect401, Related: true})
		}
		edits := make([]proxy.HeaderEdit, 0, len(f.GetHeaders()))
		for _, h := range f.GetHeaders() {
			pos := proxy.HeaderUnspecified
			if p := h.GetPosition(); p >= command.HeaderPosition_REQUEST && p <= command.HeaderPosition_BOTH {
				pos = proxy.HeaderPosition(p)
			}
			edits = append(edits, proxy.HeaderEdit{Position: pos, Name: h.GetKey(), Value: h.GetVal()})
		}
		// From the settings rather than the compiled templates, so that
		// the edits are checked the same whether those are valid or not.
		rewritesHost := f.GetRewriteHost() != "" || f.RewritePort != nil
		req, resp, errs := proxy.CompileHeaderEdits(edits, idHeader, rewritesHost)
		for _, e := range errs {
			is := Issue{Field: "headers", Index: e.Index, Key: e.Part, Msg: e.Msg, Effect: effectIgnored}
			if !e.Refused {
				is.Effect, serve = effectDeny, false
			}
			note(is)
		}
		fe.Request, fe.Response = req, resp
	}
	if !serve {
		return nil, false
	}
	if *fe == (proxy.Frontend{}) {
		return nil, true
	}
	return fe, true
}

// setSettings lists the settings of f, beyond routing and redirect, that
// are not at their defaults, in the order of the configuration.
func setSettings(f *command.RequestHttpFrontend) []string {
	var out []string
	if f.GetRedirectScheme() != command.RedirectScheme_USE_SAME {
		out = append(out, "redirect_scheme")
	}
	if f.GetRedirectTemplate() != "" {
		out = append(out, "redirect_template")
	}
	if f.GetRewriteHost() != "" {
		out = append(out, "rewrite_host")
	}
	if f.GetRewritePath() != "" {
		out = append(out, "rewrite_path")
	}
	if f.RewritePort != nil {
		out = append(out, "rewrite_port")
	}
	if f.GetRequiredAuth() {
		out = append(out, "required_auth")
	}
	if len(f.GetHeaders()) > 0 {
		out = append(out, "headers")
	}
	return out
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

// ticketCount is the send_tls13_tickets of l, or 0 when the worker may not
// issue session tickets (tls_session_tickets off).
func ticketCount(allowed bool, l *command.HttpsListenerConfig) uint64 {
	if !allowed {
		return 0
	}
	return l.GetSendTls13Tickets()
}

// healthChecks returns the health check of each cluster that has one. A
// cluster bound to a TCP listener is probed by TCP connect, any other by
// HTTP GET.
func healthChecks(clusters map[string]*command.Cluster, tcpFronts map[string]string) map[string]health.Config {
	tcpClusters := map[string]bool{}
	for _, id := range tcpFronts {
		tcpClusters[id] = true
	}
	out := map[string]health.Config{}
	for id, c := range clusters {
		if hc := c.GetHealthCheck(); hc != nil {
			out[id] = health.ConfigFrom(hc, tcpClusters[id])
		}
	}
	return out
}
