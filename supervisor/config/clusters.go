package config

import (
	"fmt"
	"regexp"
	"strings"

	"google.golang.org/protobuf/proto"

	"github.com/sozu-go/sozu/proto/command"
	"github.com/sozu-go/sozu/worker/idna"
	"github.com/sozu-go/sozu/worker/settings"
)

// cluster checks one [clusters.<id>] table and emits ADD_CLUSTER, then its
// frontends, then its backends.
func (b *builder) cluster(id string, cl *rawCluster) {
	p := joinKey("clusters", id)
	if cl == nil {
		return // not a table: already reported
	}
	if !printable(id) {
		b.errs.atKey(p, "cluster id %q must not be empty or contain spaces or control characters", id)
	} else {
		b.identifier(p, true, id)
	}
	if cl.Protocol == nil {
		b.required(p, "protocol")
		return
	}
	c := &command.Cluster{
		ClusterId:           proto.String(id),
		StickySession:       proto.Bool(false),
		HttpsRedirect:       proto.Bool(false),
		LoadBalancing:       command.LoadBalancingAlgorithms(*cl.LoadBalancing).Enum(),
		MaxConnectionsPerIp: cl.MaxConnectionsPerIP,
		RetryAfter:          cl.RetryAfter,
		Answers:             map[string]string{},
	}
	if cl.LoadMetric != nil {
		c.LoadMetric = command.LoadMetric(*cl.LoadMetric).Enum()
	}
	c.HealthCheck = b.healthCheck(joinKey(p, "health_check"), cl.HealthCheck)

	var frontends []*command.Request
	switch *cl.Protocol {
	case clusterHTTP:
		b.httpCluster(p, cl, c)
		for i, f := range cl.Frontends {
			frontends = append(frontends, b.httpFrontend(joinIndex(joinKey(p, "frontends"), i), c, f)...)
		}
		b.clusterKeysUnused(p, c, frontends)
	case clusterTCP, clusterUDP:
		frontends = b.streamFrontends(p, id, cl, c)
	}
	b.emit(&command.Request{RequestType: &command.Request_AddCluster{AddCluster: c}})
	for _, r := range frontends {
		b.emit(r)
	}
	b.backends(p, id, cl.Backends)
	if !c.GetStickySession() {
		for i, be := range cl.Backends {
			if be != nil {
				b.warn(joinKey(joinIndex(joinKey(p, "backends"), i), "sticky_id"), Unused,
					"the cluster has no sticky_session = true: no sticky cookie names a backend")
			}
		}
	}
}

// clusterKeysUnused reports a cluster's https_redirect = true when none of
// its frontends (it has some) is on a plain HTTP listener, where alone the
// redirect fires; its https_redirect_port when nothing redirects to https
// with it (no https_redirect = true in force, no frontend
// redirecting to https without its own rewrite_port: worker/proxy
// redirectHTTPS, redirectTo), and its www_authenticate when no frontend
// answers 401 with it (redirect = "unauthorized", or required_auth on a
// forwarding frontend: serveFrontend).
func (b *builder) clusterKeysUnused(p string, c *command.Cluster, frontends []*command.Request) {
	port, challenge, plain := false, false, false
	for _, r := range frontends {
		f, https := r.GetAddHttpFrontend(), false
		if f == nil {
			f, https = r.GetAddHttpsFrontend(), true
		}
		if f == nil {
			continue
		}
		plain = plain || !https
		switch f.GetRedirect() {
		case command.RedirectPolicy_PERMANENT, command.RedirectPolicy_FOUND, command.RedirectPolicy_PERMANENT_REDIRECT:
			s := f.GetRedirectScheme()
			if f.GetRewritePort() == 0 && (s == command.RedirectScheme_USE_HTTPS || s == command.RedirectScheme_USE_SAME && https) {
				port = true
			}
		case command.RedirectPolicy_UNAUTHORIZED:
			challenge = true
		case command.RedirectPolicy_FORWARD:
			challenge = challenge || f.GetRequiredAuth()
		}
	}
	// https_redirect answers requests that came over plain HTTP only
	// (worker/proxy: a listener without TLS).
	redirects := c.GetHttpsRedirect() && (plain || len(frontends) == 0)
	port = port || redirects
	for _, u := range []struct {
		key  string
		used bool
		why  string
	}{
		{"https_redirect", redirects || !c.GetHttpsRedirect(), "none of the cluster's frontends is on a plain HTTP listener, " +
			"and the redirect answers requests that came over plain HTTP only"},
		{"https_redirect_port", port, "nothing redirects to https with it: the cluster has no https_redirect = true " +
			"with a frontend on a plain HTTP listener, and none of its frontends redirects to https without a rewrite_port of its own"},
		{"www_authenticate", challenge, "no frontend of the cluster answers 401 with it: none has redirect = \"unauthorized\" " +
			"or required_auth = true"},
	} {
		if !u.used {
			b.warn(joinKey(p, u.key), Unused, u.why)
		}
	}
}

// httpCluster checks and copies the keys only HTTP clusters have.
func (b *builder) httpCluster(p string, cl *rawCluster, c *command.Cluster) {
	c.StickySession, c.HttpsRedirect, c.Http2 = cl.StickySession, cl.HTTPSRedirect, cl.HTTP2
	if v := cl.HTTPSRedirectPort; v != nil {
		if *v < 1 || *v > 65535 {
			b.errs.at(joinKey(p, "https_redirect_port"), "must be a port number (1-65535)")
		}
		c.HttpsRedirectPort = v
	}
	if cl.Answer503 != nil {
		if body, ok := b.readAnswer(joinKey(p, "answer_503"), *cl.Answer503); ok {
			c.Answer_503 = proto.String(body)
		}
	}
	c.Answers = b.answers(joinKey(p, "answers"), cl.Answers, true)
	if cl.AuthorizedHashes != nil {
		c.AuthorizedHashes = append([]string(nil), *cl.AuthorizedHashes...)
	}
	c.WwwAuthenticate = cl.WWWAuthenticate
	// What workers would not honour (hashes, challenge, answers), checked
	// by the workers' own code. An authorized_hashes entry is named by
	// index only.
	for _, is := range settings.CheckCluster(c) {
		if is.Unused {
			continue // a warning at its key already (neverAnswered)
		}
		b.issue(p, is, nil)
	}
}

// issue records a setting workers would not honour (see settings.Issue) at
// its key below p, unless that key already has a problem. headerIndex maps
// an index of the headers the frontend carries to the one in the file.
func (b *builder) issue(p string, is settings.Issue, headerIndex []int) {
	k := joinKey(p, is.Field)
	if is.Index >= 0 {
		i := is.Index
		if is.Field == "headers" && i < len(headerIndex) {
			i = headerIndex[i]
		}
		k = joinIndex(k, i)
	}
	if is.Key != "" {
		k = joinKey(k, is.Key)
	}
	if b.errs.bad[k] {
		return
	}
	msg := is.Msg
	if is.Related {
		msg += ": " + is.Effect // the setting is fine; say what the combination does
	}
	b.errs.at(k, "%s", msg)
}

func (b *builder) healthCheck(p string, h *rawHealthCheck) *command.HealthCheckConfig {
	if h == nil {
		return nil
	}
	if h.URI == nil {
		b.required(p, "uri")
	} else if !strings.HasPrefix(*h.URI, "/") || !printable(*h.URI) {
		b.errs.at(joinKey(p, "uri"), "%q must be a path starting with / and without spaces", *h.URI)
	}
	for _, k := range []struct {
		key string
		v   uint32
	}{
		{"interval", *h.Interval}, {"timeout", *h.Timeout},
		{"healthy_threshold", *h.HealthyThreshold}, {"unhealthy_threshold", *h.UnhealthyThreshold},
	} {
		if k.v < 1 {
			b.errs.at(joinKey(p, k.key), "must be at least 1")
		}
	}
	if s := *h.ExpectedStatus; s != 0 && (s < 100 || s > 599) {
		b.errs.at(joinKey(p, "expected_status"), "must be 0 (any 2xx) or an HTTP status (100-599)")
	}
	return &command.HealthCheckConfig{
		Uri: h.URI, Interval: h.Interval, Timeout: h.Timeout,
		HealthyThreshold: h.HealthyThreshold, UnhealthyThreshold: h.UnhealthyThreshold,
		ExpectedStatus: h.ExpectedStatus,
	}
}

// aLabels returns hostname h with its internationalized labels as A-labels
// (bücher.example → xn--bcher-kva.example), the form clients send and the
// state keeps, so that two spellings of one name are one frontend. A name
// with regex segments is kept as written: the router converts its literal
// labels (and CheckFrontend reports what it cannot).
func (b *builder) aLabels(p, h string) string {
	if idna.IsASCII(h) || strings.Contains(h, "/") {
		return h
	}
	a, err := idna.ToASCII(strings.ToLower(h))
	if err != nil {
		b.errs.at(p, "internationalized name %q: %v", h, err)
		return h
	}
	return a
}

// httpFrontend checks one frontend of an HTTP cluster and returns its
// requests: ADD_CERTIFICATE + ADD_HTTPS_FRONTEND when it has its own
// certificate, else ADD_HTTPS_FRONTEND or ADD_HTTP_FRONTEND after the
// protocol of the listener at its address.
func (b *builder) httpFrontend(p string, c *command.Cluster, f *rawFrontend) []*command.Request {
	clusterID := c.GetClusterId()
	if f == nil {
		return nil
	}
	if f.Address == nil || f.Hostname == nil {
		if f.Address == nil {
			b.required(p, "address")
		}
		if f.Hostname == nil {
			b.required(p, "hostname")
		}
		return nil
	}
	addr := f.Address.AddrPort
	l := b.stream[addr]
	switch {
	case l == nil: // unreachable: implicitListeners made one
		b.errs.at(joinKey(p, "address"), "no http or https listener at %s: declare one in [[listeners]]", addr)
		return nil
	case l.protocol == ProtocolTCP:
		b.errs.at(joinKey(p, "address"), "%s is a tcp listener (%s); an http cluster needs an http or https listener", addr, l.path)
		return nil
	}
	if c.GetStickySession() {
		l.sticky = true
	}
	https := l.protocol == ProtocolHTTPS
	if !https {
		for _, k := range []struct {
			key string
			set bool
		}{
			{"certificate", f.Certificate != nil}, {"certificate_chain", f.CertificateChain != nil},
			{"key", f.Key != nil}, {"tls_versions", f.TLSVersions != nil}, {"hsts", f.HSTS != nil},
		} {
			if k.set {
				b.errs.atKey(joinKey(p, k.key), "only valid on an https listener; %s (%s) is http", addr, l.path)
			}
		}
	}

	host := *f.Hostname
	if !printable(host) {
		b.errs.at(joinKey(p, "hostname"), "%q must not be empty or contain spaces or control characters", host)
	} else if b.identifier(joinKey(p, "hostname"), false, host) {
		host = b.aLabels(joinKey(p, "hostname"), host)
	}
	kind := command.PathRuleKind(*f.PathType)
	path := *f.Path
	switch {
	case kind == command.PathRuleKind_REGEX:
		if _, err := regexp.Compile(path); err != nil {
			b.errs.at(joinKey(p, "path"), "invalid regular expression: %v", err)
		}
	case path != "" && !strings.HasPrefix(path, "/"):
		b.errs.at(joinKey(p, "path"), "%q must start with /", path)
	case hasControl(path) || strings.Contains(path, " "):
		b.errs.at(joinKey(p, "path"), "%q must not contain spaces or control characters", path)
	}
	if f.Method != nil && !isToken(*f.Method) {
		b.errs.at(joinKey(p, "method"), "%q is not an HTTP method", *f.Method)
	} else if f.Method != nil {
		b.identifier(joinKey(p, "method"), false, *f.Method)
	}
	b.tags(joinKey(p, "tags"), f.Tags)
	if f.RewritePort != nil && (*f.RewritePort < 1 || *f.RewritePort > 65535) {
		b.errs.at(joinKey(p, "rewrite_port"), "must be a port number (1-65535)")
	}

	// Two identical routing rules on one listener would be refused by the
	// state ("already exists"); say which one came first.
	key := fmt.Sprintf("%s;%s;%c%s", addr, host, "PR="[kind], path)
	if f.Method != nil {
		key += ";" + *f.Method
	}
	if first, dup := b.routes[key]; dup {
		b.errs.at(p, "same address, hostname, path and method as %s", first)
	} else {
		b.routes[key] = p
	}

	fr := &command.RequestHttpFrontend{
		ClusterId:        proto.String(clusterID),
		Address:          f.Address.proto(),
		Hostname:         proto.String(host),
		Path:             &command.PathRule{Kind: kind.Enum(), Value: proto.String(path)},
		Method:           f.Method,
		Position:         command.RulePosition(*f.Position).Enum(),
		Tags:             cloneMap(f.Tags),
		RequiredAuth:     f.RequiredAuth,
		RedirectTemplate: f.RedirectTemplate,
		RewriteHost:      f.RewriteHost,
		RewritePath:      f.RewritePath,
		RewritePort:      f.RewritePort,
		Hsts:             hstsConfig(f.HSTS),
	}
	var headerIndex []int
	fr.Headers, headerIndex = b.headers(joinKey(p, "headers"), f.Headers)
	if f.Redirect != nil {
		fr.Redirect = command.RedirectPolicy(*f.Redirect).Enum()
	}
	if f.RedirectScheme != nil {
		fr.RedirectScheme = command.RedirectScheme(*f.RedirectScheme).Enum()
	}
	// What workers would not honour (rewrite templates and their captures,
	// header edits, a redirect template, settings without effect on this
	// kind of frontend), checked by the workers' own code.
	for _, is := range settings.CheckFrontend(fr, c, l.idHeader) {
		b.issue(p, is, headerIndex)
	}

	var cert *certificate
	if https {
		cert = b.certificate(p, f.Certificate, f.CertificateChain, f.Key)
		if f.TLSVersions != nil && f.Certificate == nil {
			b.errs.atKey(joinKey(p, "tls_versions"), "applies to the frontend's certificate, and it has none")
		}
	}
	if cert == nil {
		if https {
			return []*command.Request{{RequestType: &command.Request_AddHttpsFrontend{AddHttpsFrontend: fr}}}
		}
		return []*command.Request{{RequestType: &command.Request_AddHttpFrontend{AddHttpFrontend: fr}}}
	}
	ck := &command.CertificateAndKey{
		Certificate:      proto.String(cert.cert),
		CertificateChain: cert.chain,
		Key:              proto.String(cert.key),
		// Names stay empty: the SNI names come from the certificate itself,
		// as upstream does (an explicit list would shadow a wildcard).
	}
	if f.TLSVersions != nil {
		ck.Versions = b.tlsVersions(joinKey(p, "tls_versions"), *f.TLSVersions)
	}
	return []*command.Request{
		{RequestType: &command.Request_AddCertificate{AddCertificate: &command.AddCertificate{Address: f.Address.proto(), Certificate: ck}}},
		{RequestType: &command.Request_AddHttpsFrontend{AddHttpsFrontend: fr}},
	}
}

// headers copies the complete header edits of a frontend; index gives,
// for each one returned, its index in the file. Their keys and values are
// checked with the frontend (settings.CheckFrontend).
func (b *builder) headers(p string, hs []*rawHeader) (out []*command.Header, index []int) {
	for i, h := range hs {
		hp := joinIndex(p, i)
		if h == nil {
			continue
		}
		if h.Position == nil || h.Key == nil || h.Value == nil {
			for _, k := range []struct {
				key string
				set bool
			}{{"position", h.Position != nil}, {"key", h.Key != nil}, {"value", h.Value != nil}} {
				if !k.set {
					b.required(hp, k.key)
				}
			}
			continue
		}
		out = append(out, &command.Header{
			Position: command.HeaderPosition(*h.Position).Enum(),
			Key:      h.Key,
			Val:      h.Value,
		})
		index = append(index, i)
	}
	return out, index
}

// streamFrontends checks the frontends of a tcp or udp cluster: each needs a
// listener that no other cluster uses, of the cluster's protocol; a tcp
// cluster's frontend may also sit on a UDP listener (upstream's shape for
// UDP balancing), which makes it an ADD_UDP_FRONTEND. For TCP frontends,
// the PROXY protocol mode follows send_proxy and the listeners'
// expect_proxy. The [clusters.<id>.udp] table is checked and copied when
// the cluster has a UDP frontend, and refused otherwise.
func (b *builder) streamFrontends(p, clusterID string, cl *rawCluster, c *command.Cluster) []*command.Request {
	udpCluster := *cl.Protocol == clusterUDP
	var out []*command.Request
	expect := map[bool]string{} // expect_proxy value -> first TCP frontend with it
	var tcpFronts, udpFronts, bad int
	for i, f := range cl.Frontends {
		fp := joinIndex(joinKey(p, "frontends"), i)
		if f == nil {
			continue
		}
		if f.Address == nil {
			b.required(fp, "address")
			bad++
			continue
		}
		b.tags(joinKey(fp, "tags"), f.Tags)
		addr := f.Address.AddrPort
		l, udp := b.stream[addr], false
		if ul := b.udp[addr]; ul != nil && (udpCluster || l == nil || l.protocol != ProtocolTCP) {
			l, udp = ul, true
		}
		switch {
		case udpCluster && (l == nil || l.protocol != ProtocolUDP):
			b.errs.at(joinKey(fp, "address"), "no udp listener at %s: declare one in [[listeners]]", addr)
			bad++
			continue
		case l == nil || (l.protocol != ProtocolTCP && l.protocol != ProtocolUDP):
			b.errs.at(joinKey(fp, "address"), "no tcp or udp listener at %s: declare one in [[listeners]]", addr)
			bad++
			continue
		}
		if owner, taken := b.tcpOwner[addr]; taken {
			b.errs.at(joinKey(fp, "address"), "the %s listener at %s already serves %s", l.protocol, addr, owner)
			bad++
			continue
		}
		b.tcpOwner[addr] = fp
		if udp {
			udpFronts++
			out = append(out, &command.Request{RequestType: &command.Request_AddUdpFrontend{AddUdpFrontend: &command.RequestUdpFrontend{
				ClusterId: proto.String(clusterID), Address: f.Address.proto(), Tags: cloneMap(f.Tags),
			}}})
			continue
		}
		tcpFronts++
		if _, seen := expect[l.expectProxy]; !seen {
			expect[l.expectProxy] = fp
		}
		out = append(out, &command.Request{RequestType: &command.Request_AddTcpFrontend{AddTcpFrontend: &command.RequestTcpFrontend{
			ClusterId: proto.String(clusterID), Address: f.Address.proto(), Tags: cloneMap(f.Tags),
		}}})
	}
	if len(expect) > 1 {
		b.errs.at(p, "the listener of %s expects a PROXY header but the one of %s does not; all listeners of a tcp cluster must agree on expect_proxy",
			expect[true], expect[false])
	}
	if !udpCluster {
		send := cl.SendProxy != nil && *cl.SendProxy
		_, expects := expect[true]
		switch {
		case send && expects:
			c.ProxyProtocol = command.ProxyProtocolConfig_RELAY_HEADER.Enum()
		case send:
			c.ProxyProtocol = command.ProxyProtocolConfig_SEND_HEADER.Enum()
		case expects:
			c.ProxyProtocol = command.ProxyProtocolConfig_EXPECT_HEADER.Enum()
		}
		if send && tcpFronts == 0 && udpFronts > 0 {
			b.errs.at(joinKey(p, "send_proxy"), "applies to TCP frontends and this cluster has only UDP ones: use udp.send_proxy_protocol")
		}
	}
	if udpFronts > 0 && cl.HealthCheck != nil {
		b.errs.at(joinKey(p, "health_check"), "does not probe UDP backends: use [%s.udp.health] (TCP_PROBE or UDP_PROBE)", p)
	}
	if cl.UDP != nil && udpFronts == 0 && bad == 0 {
		b.errs.at(joinKey(p, "udp"), "applies to UDP frontends and this cluster has none: give it a frontend on a udp listener")
	}
	if cl.UDP != nil || udpFronts > 0 {
		c.Udp = b.udpCluster(joinKey(p, "udp"), cl.UDP)
	}
	return out
}

// udpCluster checks and converts a [clusters.<id>.udp] table (nil: every
// default). udp_probe_payload is taken as the bytes of its string.
func (b *builder) udpCluster(p string, u *rawUDP) *command.UdpClusterConfig {
	if u == nil {
		return nil
	}
	c := &command.UdpClusterConfig{Responses: u.Responses, Requests: u.Requests,
		SendProxyProtocol: u.SendProxyProtocol, ProxyProtocolEveryDatagram: u.ProxyProtocolEveryDatagram}
	if u.AffinityKey != nil {
		c.AffinityKey = command.UdpAffinityKey(*u.AffinityKey).Enum()
	}
	if u.ProxyProtocolEveryDatagram != nil && *u.ProxyProtocolEveryDatagram && (u.SendProxyProtocol == nil || !*u.SendProxyProtocol) {
		b.errs.at(joinKey(p, "proxy_protocol_every_datagram"), "has no effect without send_proxy_protocol = true")
	}
	h := u.Health
	if h == nil {
		return c
	}
	hp := joinKey(p, "health")
	hc := &command.UdpHealthConfig{TcpPort: h.TCPPort, Rise: h.Rise, Fall: h.Fall, FailOpen: h.FailOpen,
		ProbeIntervalSeconds: h.ProbeIntervalSeconds, ProbeTimeoutSeconds: h.ProbeTimeoutSeconds}
	mode := command.UdpHealthMode_HEALTH_OFF
	if h.Mode != nil {
		mode = command.UdpHealthMode(*h.Mode)
		hc.Mode = mode.Enum()
	}
	if h.UDPProbePayload != nil {
		hc.UdpProbePayload = []byte(*h.UDPProbePayload)
	}
	for _, k := range []struct {
		key string
		v   *uint32
	}{{"rise", h.Rise}, {"fall", h.Fall}, {"probe_interval_seconds", h.ProbeIntervalSeconds}, {"probe_timeout_seconds", h.ProbeTimeoutSeconds}} {
		if k.v != nil && *k.v == 0 {
			b.errs.at(joinKey(hp, k.key), "must be at least 1")
		}
	}
	switch mode {
	case command.UdpHealthMode_TCP_PROBE:
		if h.TCPPort != nil && (*h.TCPPort < 1 || *h.TCPPort > 65535) {
			b.errs.at(joinKey(hp, "tcp_port"), "must be a port number (1-65535)")
		}
		if h.UDPProbePayload != nil {
			b.errs.at(joinKey(hp, "udp_probe_payload"), "only used by mode = \"UDP_PROBE\"")
		}
	case command.UdpHealthMode_UDP_PROBE:
		if h.TCPPort != nil {
			b.errs.at(joinKey(hp, "tcp_port"), "only used by mode = \"TCP_PROBE\"")
		}
	default:
		for _, k := range []struct {
			key string
			set bool
		}{{"tcp_port", h.TCPPort != nil}, {"rise", h.Rise != nil}, {"fall", h.Fall != nil}, {"fail_open", h.FailOpen != nil},
			{"udp_probe_payload", h.UDPProbePayload != nil}, {"probe_interval_seconds", h.ProbeIntervalSeconds != nil},
			{"probe_timeout_seconds", h.ProbeTimeoutSeconds != nil}} {
			if k.set {
				b.errs.at(joinKey(hp, k.key), "has no effect with mode = \"HEALTH_OFF\" (the default): set mode to \"TCP_PROBE\" or \"UDP_PROBE\"")
			}
		}
	}
	c.Health = hc
	return c
}

// backends checks a cluster's backends and emits ADD_BACKEND for each.
// A backend without backend_id gets <cluster_id>-<index>-<address>.
func (b *builder) backends(p, clusterID string, bs []*rawBackend) {
	ids := map[string]string{}
	for i, be := range bs {
		bp := joinIndex(joinKey(p, "backends"), i)
		if be == nil {
			continue
		}
		if be.Address == nil {
			b.required(bp, "address")
			continue
		}
		if be.Address.Addr().IsUnspecified() || be.Address.Port() == 0 {
			b.errs.at(joinKey(bp, "address"), "%s is not an address to connect to", be.Address.AddrPort)
		}
		id := fmt.Sprintf("%s-%d-%s", clusterID, i, be.Address.AddrPort)
		idKey := joinKey(bp, "address")
		if be.BackendID != nil {
			id, idKey = *be.BackendID, joinKey(bp, "backend_id")
			if !printable(id) {
				b.errs.at(idKey, "%q must not be empty or contain spaces or control characters", id)
			} else {
				b.identifier(idKey, false, id)
			}
		}
		if be.StickyID != nil {
			b.identifier(joinKey(bp, "sticky_id"), false, *be.StickyID)
		}
		if first, dup := ids[id]; dup {
			b.errs.at(idKey, "backend id %q is already used by %s", id, first)
		} else {
			ids[id] = bp
		}
		b.emit(&command.Request{RequestType: &command.Request_AddBackend{AddBackend: &command.AddBackend{
			ClusterId:               proto.String(clusterID),
			BackendId:               proto.String(id),
			Address:                 be.Address.proto(),
			StickyId:                be.StickyID,
			LoadBalancingParameters: &command.LoadBalancingParams{Weight: proto.Int32(int32(*be.Weight))},
			Backup:                  be.Backup,
		}}})
	}
}

func cloneMap(m map[string]string) map[string]string {
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}
