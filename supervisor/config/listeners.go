package config

import (
	"reflect"
	"slices"
	"strings"

	"google.golang.org/protobuf/proto"

	"github.com/sozu-go/sozu/proto/command"
	"github.com/sozu-go/sozu/worker/tlsconf"
)

// listener checks one [[listeners]] entry and emits its ADD_*_LISTENER.
func (b *builder) listener(p string, l *rawListener) {
	if l == nil {
		return // not a table: already reported
	}
	if l.Protocol == nil || l.Address == nil {
		if l.Protocol == nil {
			b.required(p, "protocol")
		}
		if l.Address == nil {
			b.required(p, "address")
		}
		return
	}
	info := &listenerInfo{path: p, protocol: *l.Protocol, addr: l.Address.AddrPort}
	taken := b.stream
	if info.protocol == ProtocolUDP {
		taken = b.udp
	}
	if other, dup := taken[info.addr]; dup {
		b.errs.at(joinKey(p, "address"), "%s is already used by %s", info.addr, other.path)
		return
	}
	taken[info.addr] = info
	b.listeners = append(b.listeners, info)
	b.cfg.Listeners = append(b.cfg.Listeners, Listener{Protocol: info.protocol, Address: info.addr})

	var public *command.SocketAddress
	if l.PublicAddress != nil {
		public = l.PublicAddress.proto()
		if l.ExpectProxy != nil && *l.ExpectProxy {
			b.errs.at(joinKey(p, "public_address"), "cannot be combined with expect_proxy: the PROXY header gives the address")
		}
	}
	b.ownSeconds(p, "front_timeout", *l.FrontTimeout)
	b.ownSeconds(p, "back_timeout", *l.BackTimeout)

	switch info.protocol {
	case ProtocolUDP:
		if *l.MaxRxDatagramSize < 1 || *l.MaxRxDatagramSize > 65535 {
			b.errs.at(joinKey(p, "max_rx_datagram_size"), "must be between 1 and 65535")
		}
		b.emit(&command.Request{RequestType: &command.Request_AddUdpListener{AddUdpListener: &command.UdpListenerConfig{
			Address:           l.Address.proto(),
			PublicAddress:     public,
			FrontTimeout:      l.FrontTimeout,
			BackTimeout:       l.BackTimeout,
			MaxRxDatagramSize: l.MaxRxDatagramSize,
			MaxFlows:          l.MaxFlows,
			Active:            proto.Bool(false),
		}}})
		return
	case ProtocolTCP:
		info.expectProxy = *l.ExpectProxy
		b.ownSeconds(p, "connect_timeout", *l.ConnectTimeout)
		b.emit(&command.Request{RequestType: &command.Request_AddTcpListener{AddTcpListener: &command.TcpListenerConfig{
			Address:        l.Address.proto(),
			PublicAddress:  public,
			ExpectProxy:    l.ExpectProxy,
			FrontTimeout:   l.FrontTimeout,
			BackTimeout:    l.BackTimeout,
			ConnectTimeout: l.ConnectTimeout,
			Active:         proto.Bool(false),
		}}})
		return
	}

	// HTTP and HTTPS.
	info.expectProxy = *l.ExpectProxy
	b.ownSeconds(p, "connect_timeout", *l.ConnectTimeout)
	b.ownSeconds(p, "request_timeout", *l.RequestTimeout)
	if !isToken(*l.StickyName) {
		b.errs.at(joinKey(p, "sticky_name"), "%q is not a valid cookie name", *l.StickyName)
	} else {
		b.identifier(joinKey(p, "sticky_name"), false, *l.StickyName)
	}
	if l.SozuIDHeader != nil && !isToken(*l.SozuIDHeader) {
		b.errs.at(joinKey(p, "sozu_id_header"), "%q is not a valid header name", *l.SozuIDHeader)
	} else if l.SozuIDHeader != nil && b.identifier(joinKey(p, "sozu_id_header"), false, *l.SozuIDHeader) {
		info.idHeader = *l.SozuIDHeader
	}
	legacy, answers := b.listenerAnswers(p, l)
	b.h2Limits(p, l)

	if info.protocol == ProtocolHTTP {
		b.emit(&command.Request{RequestType: &command.Request_AddHttpListener{AddHttpListener: &command.HttpListenerConfig{
			Address:                           l.Address.proto(),
			PublicAddress:                     public,
			ExpectProxy:                       l.ExpectProxy,
			StickyName:                        l.StickyName,
			FrontTimeout:                      l.FrontTimeout,
			BackTimeout:                       l.BackTimeout,
			ConnectTimeout:                    l.ConnectTimeout,
			RequestTimeout:                    l.RequestTimeout,
			Active:                            proto.Bool(false),
			HttpAnswers:                       legacy,
			H2MaxRstStreamPerWindow:           l.H2MaxRstStreamPerWindow,
			H2MaxPingPerWindow:                l.H2MaxPingPerWindow,
			H2MaxSettingsPerWindow:            l.H2MaxSettingsPerWindow,
			H2MaxEmptyDataPerWindow:           l.H2MaxEmptyDataPerWindow,
			H2MaxContinuationFrames:           l.H2MaxContinuationFrames,
			H2MaxGlitchCount:                  l.H2MaxGlitchCount,
			H2InitialConnectionWindow:         l.H2InitialConnectionWindow,
			H2MaxConcurrentStreams:            l.H2MaxConcurrentStreams,
			H2StreamShrinkRatio:               l.H2StreamShrinkRatio,
			H2MaxRstStreamLifetime:            l.H2MaxRstStreamLifetime,
			H2MaxRstStreamAbusiveLifetime:     l.H2MaxRstStreamAbusiveLifetime,
			H2MaxRstStreamEmittedLifetime:     l.H2MaxRstStreamEmittedLifetime,
			H2MaxHeaderListSize:               l.H2MaxHeaderListSize,
			H2StreamIdleTimeoutSeconds:        l.H2StreamIdleTimeoutSeconds,
			H2MaxHeaderTableSize:              l.H2MaxHeaderTableSize,
			H2GracefulShutdownDeadlineSeconds: l.H2GracefulShutdownDeadlineSeconds,
			H2MaxWindowUpdateStream0PerWindow: l.H2MaxWindowUpdateStream0PerWindow,
			SozuIdHeader:                      l.SozuIDHeader,
			Answers:                           answers,
			ElideXRealIp:                      l.ElideXRealIP,
			SendXRealIp:                       l.SendXRealIP,
			H2MaxHeaderFields:                 l.H2MaxHeaderFields,
		}}})
		return
	}

	// HTTPS.
	alpn := b.alpn(p, l)
	info.h2 = slices.Contains(alpn, "h2")
	if !info.h2 {
		b.h2Unused(p, l)
	}
	hl := &command.HttpsListenerConfig{
		Address:                           l.Address.proto(),
		PublicAddress:                     public,
		ExpectProxy:                       l.ExpectProxy,
		StickyName:                        l.StickyName,
		FrontTimeout:                      l.FrontTimeout,
		BackTimeout:                       l.BackTimeout,
		ConnectTimeout:                    l.ConnectTimeout,
		RequestTimeout:                    l.RequestTimeout,
		Active:                            proto.Bool(false),
		Versions:                          b.tlsVersions(joinKey(p, "tls_versions"), *l.TLSVersions),
		CipherList:                        b.names(joinKey(p, "cipher_list"), *l.CipherList),
		CipherSuites:                      b.names(joinKey(p, "cipher_suites"), *l.CipherSuites),
		SignatureAlgorithms:               b.names(joinKey(p, "signature_algorithms"), *l.SignatureAlgorithms),
		GroupsList:                        b.names(joinKey(p, "groups_list"), *l.GroupsList),
		SendTls13Tickets:                  l.SendTLS13Tickets,
		HttpAnswers:                       legacy,
		AlpnProtocols:                     alpn,
		H2MaxRstStreamPerWindow:           l.H2MaxRstStreamPerWindow,
		H2MaxPingPerWindow:                l.H2MaxPingPerWindow,
		H2MaxSettingsPerWindow:            l.H2MaxSettingsPerWindow,
		H2MaxEmptyDataPerWindow:           l.H2MaxEmptyDataPerWindow,
		H2MaxContinuationFrames:           l.H2MaxContinuationFrames,
		H2MaxGlitchCount:                  l.H2MaxGlitchCount,
		H2InitialConnectionWindow:         l.H2InitialConnectionWindow,
		H2MaxConcurrentStreams:            l.H2MaxConcurrentStreams,
		H2StreamShrinkRatio:               l.H2StreamShrinkRatio,
		H2MaxRstStreamLifetime:            l.H2MaxRstStreamLifetime,
		H2MaxRstStreamAbusiveLifetime:     l.H2MaxRstStreamAbusiveLifetime,
		H2MaxRstStreamEmittedLifetime:     l.H2MaxRstStreamEmittedLifetime,
		H2MaxHeaderListSize:               l.H2MaxHeaderListSize,
		StrictSniBinding:                  l.StrictSNIBinding,
		DisableHttp11:                     l.DisableHTTP11,
		H2StreamIdleTimeoutSeconds:        l.H2StreamIdleTimeoutSeconds,
		H2MaxHeaderTableSize:              l.H2MaxHeaderTableSize,
		H2GracefulShutdownDeadlineSeconds: l.H2GracefulShutdownDeadlineSeconds,
		H2MaxWindowUpdateStream0PerWindow: l.H2MaxWindowUpdateStream0PerWindow,
		SozuIdHeader:                      l.SozuIDHeader,
		Answers:                           answers,
		ElideXRealIp:                      l.ElideXRealIP,
		SendXRealIp:                       l.SendXRealIP,
		Hsts:                              hstsConfig(l.HSTS),
		H2MaxHeaderFields:                 l.H2MaxHeaderFields,
	}
	if c := b.certificate(p, l.Certificate, l.CertificateChain, l.Key); c != nil {
		hl.Certificate, hl.CertificateChain, hl.Key = proto.String(c.cert), c.chain, proto.String(c.key)
	}
	b.tlsPolicy(p, hl)
	b.emit(&command.Request{RequestType: &command.Request_AddHttpsListener{AddHttpsListener: hl}})
}

// h2Unused reports the h2_* keys written on an HTTPS listener whose
// alpn_protocols offers no h2: no connection of it speaks HTTP/2 (until
// `listener https update --alpn` adds h2). Keys not built are reported
// by checkForce already.
func (b *builder) h2Unused(p string, l *rawListener) {
	v := reflect.ValueOf(l).Elem()
	for i := range v.NumField() {
		key := v.Type().Field(i).Tag.Get("toml")
		if !strings.HasPrefix(key, "h2_") || forceTable["listeners"][key].class == NotBuilt && onlyOn["listeners"][key] == nil {
			continue
		}
		b.warn(joinKey(p, key), Unused,
			"alpn_protocols offers no h2 on this listener: no connection to apply it to (until `sozu listener https update --alpn-protocols` adds h2)")
	}
}

// policyKeys maps the knob a tlsconf.ParsePolicy warning names to the
// keys it may come from, the first written one taking it (TLS 1.3 names
// may be in either cipher list).
var policyKeys = map[string][]string{
	"versions":      {"tls_versions"},
	"cipher_list":   {"cipher_list", "cipher_suites"},
	"cipher_suites": {"cipher_suites", "cipher_list"},
	"groups_list":   {"groups_list"},
}

// tlsPolicy reports, as warnings at their keys, a written
// send_tls13_tickets above 0 while tls_session_tickets is off (no ticket
// is issued), and the entries of a
// listener's written TLS lists that the workers' policy leaves out
// (tlsconf.ParsePolicy, which the workers apply: unknown or refused
// suites and groups, TLS 1.3 suites Go cannot restrict). The workers log
// the same lines at start, without the file; config check did not show
// them and --strict let them pass.
func (b *builder) tlsPolicy(p string, hl *command.HttpsListenerConfig) {
	// Lists left to their default are read as absent: the default
	// cipher_suites names every TLS 1.3 suite, which would hide that a
	// cipher_list naming fewer cannot restrict them.
	written := func(k string, v []string) []string {
		if b.written(joinKey(p, k)) {
			return v
		}
		return nil
	}
	if hl.GetSendTls13Tickets() > 0 && !b.cfg.Sandbox.TLSSessionTickets {
		b.warn(joinKey(p, "send_tls13_tickets"), OptIn,
			"session tickets are issued only with tls_session_tickets = true (docs/tls.md: a ticket key opens every session it sealed)")
	}
	_, ws := tlsconf.ParsePolicy(hl.GetVersions(), written("cipher_list", hl.GetCipherList()),
		written("cipher_suites", hl.GetCipherSuites()), written("groups_list", hl.GetGroupsList()), hl.GetSendTls13Tickets())
	for _, w := range ws {
		if w.Kind == tlsconf.TLS13Only {
			continue // what a list of TLS 1.3 suites only asks for: in force
		}
		protection := ""
		if w.Kind == tlsconf.TLS13Unrestricted {
			protection = ProtectTLS13Suites
		}
		for _, k := range policyKeys[w.Knob] {
			if b.warnProtecting(joinKey(p, k), Unsupported, w.Msg, protection) {
				break
			}
		}
	}
}

// ownSeconds checks a listener timeout the file gave; an inherited global
// value was checked (and reported) at its own key.
func (b *builder) ownSeconds(p, key string, v uint32) {
	if b.written(joinKey(p, key)) {
		b.seconds(joinKey(p, key), v)
	}
}

// listenerAnswers reads the answer_NNN files (legacy form) and the answers
// map. Legacy bodies go to http_answers and, like upstream, are merged into
// answers, where the map's own entries win.
func (b *builder) listenerAnswers(p string, l *rawListener) (*command.CustomHttpAnswers, map[string]string) {
	legacy := &command.CustomHttpAnswers{}
	merged := map[string]string{}
	found := false
	for _, a := range []struct {
		code string
		file *string
		dst  **string
	}{
		{"301", l.Answer301, &legacy.Answer_301},
		{"400", l.Answer400, &legacy.Answer_400},
		{"401", l.Answer401, &legacy.Answer_401},
		{"404", l.Answer404, &legacy.Answer_404},
		{"408", l.Answer408, &legacy.Answer_408},
		{"413", l.Answer413, &legacy.Answer_413},
		{"421", l.Answer421, &legacy.Answer_421},
		{"429", l.Answer429, &legacy.Answer_429},
		{"502", l.Answer502, &legacy.Answer_502},
		{"503", l.Answer503, &legacy.Answer_503},
		{"504", l.Answer504, &legacy.Answer_504},
		{"507", l.Answer507, &legacy.Answer_507},
	} {
		if a.file == nil {
			continue
		}
		if body, ok := b.readAnswer(joinKey(p, "answer_"+a.code), *a.file); ok {
			*a.dst = proto.String(body)
			merged[a.code] = body
			found = true
			b.compileAnswers(map[string]string{a.code: body}, func(string) string { return joinKey(p, "answer_"+a.code) })
		}
	}
	m := b.answers(joinKey(p, "answers"), l.Answers, false)
	b.compileAnswers(m, func(code string) string { return joinKey(joinKey(p, "answers"), code) })
	for code, body := range m {
		merged[code] = body
	}
	if !found {
		legacy = nil
	}
	return legacy, merged
}

// h2MaxConcurrentStreams is the most streams per connection a worker
// allows (worker/h2.MaxConcurrentStreamsCap, upstream's clamp).
const h2MaxConcurrentStreams = 10000

// h2Limits applies the rules of the listener update verbs to the HTTP/2
// knobs: at least 1, the shrink ratio at least 2, the graceful shutdown
// deadline may be 0, the connection window within RFC 9113's bounds.
func (b *builder) h2Limits(p string, l *rawListener) {
	for _, k := range []struct {
		key string
		v   *uint32
	}{
		{"h2_max_rst_stream_per_window", l.H2MaxRstStreamPerWindow},
		{"h2_max_ping_per_window", l.H2MaxPingPerWindow},
		{"h2_max_settings_per_window", l.H2MaxSettingsPerWindow},
		{"h2_max_empty_data_per_window", l.H2MaxEmptyDataPerWindow},
		{"h2_max_window_update_stream0_per_window", l.H2MaxWindowUpdateStream0PerWindow},
		{"h2_max_continuation_frames", l.H2MaxContinuationFrames},
		{"h2_max_glitch_count", l.H2MaxGlitchCount},
		{"h2_max_concurrent_streams", l.H2MaxConcurrentStreams},
		{"h2_max_header_list_size", l.H2MaxHeaderListSize},
		{"h2_max_header_table_size", l.H2MaxHeaderTableSize},
		{"h2_stream_idle_timeout_seconds", l.H2StreamIdleTimeoutSeconds},
		{"h2_max_header_fields", l.H2MaxHeaderFields},
	} {
		if k.v != nil && *k.v < 1 {
			b.errs.at(joinKey(p, k.key), "must be at least 1")
		}
	}
	for _, k := range []struct {
		key string
		v   *uint64
	}{
		{"h2_max_rst_stream_lifetime", l.H2MaxRstStreamLifetime},
		{"h2_max_rst_stream_abusive_lifetime", l.H2MaxRstStreamAbusiveLifetime},
		{"h2_max_rst_stream_emitted_lifetime", l.H2MaxRstStreamEmittedLifetime},
	} {
		if k.v != nil && *k.v < 1 {
			b.errs.at(joinKey(p, k.key), "must be at least 1")
		}
	}
	if v := l.H2MaxConcurrentStreams; v != nil && *v > h2MaxConcurrentStreams {
		b.errs.at(joinKey(p, "h2_max_concurrent_streams"), "must be at most %d (upstream clamps larger values to it)", h2MaxConcurrentStreams)
	}
	if v := l.H2StreamShrinkRatio; v != nil && *v < 2 {
		b.errs.at(joinKey(p, "h2_stream_shrink_ratio"), "must be at least 2")
	}
	if v := l.H2InitialConnectionWindow; v != nil && (*v < 65535 || *v > 1<<31-1) {
		b.errs.at(joinKey(p, "h2_initial_connection_window"), "must be between 65535 and 2147483647")
	}
}

// alpn checks alpn_protocols (h2 and http/1.1 only, duplicates dropped) and
// its combination with disable_http11.
func (b *builder) alpn(p string, l *rawListener) []string {
	var out []string
	for i, a := range *l.AlpnProtocols {
		if a != "h2" && a != "http/1.1" {
			b.errs.at(joinIndex(joinKey(p, "alpn_protocols"), i), "invalid ALPN protocol %q: want \"h2\" or \"http/1.1\"", a)
			continue
		}
		if !slices.Contains(out, a) {
			out = append(out, a)
		}
	}
	if l.DisableHTTP11 != nil && *l.DisableHTTP11 && slices.Contains(out, "http/1.1") {
		b.errs.at(joinKey(p, "disable_http11"), "conflicts with \"http/1.1\" in alpn_protocols (the default list has it): set alpn_protocols = [\"h2\"]")
	}
	return out
}

// names checks a list of TLS algorithm or group names.
func (b *builder) names(p string, list []string) []string {
	if len(list) == 0 {
		b.errs.at(p, "must not be empty; leave the key out for the default list")
	}
	for i, n := range list {
		if !printable(n) {
			b.errs.at(joinIndex(p, i), "invalid name %q", n)
		}
	}
	return slices.Clone(list)
}

// hsts converts an hsts table (max_age = 0 is valid: it clears the policy).
func hstsConfig(h *rawHSTS) *command.HstsConfig {
	if h == nil {
		return nil
	}
	return &command.HstsConfig{
		Enabled:             h.Enabled,
		MaxAge:              h.MaxAge,
		IncludeSubdomains:   h.IncludeSubdomains,
		Preload:             h.Preload,
		ForceReplaceBackend: h.ForceReplaceBackend,
	}
}
