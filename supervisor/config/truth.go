package config

import (
	"fmt"
	"reflect"
	"sort"
	"strings"

	"github.com/sozu-go/sozu/proto/command"
)

// The configuration tells the truth: every key of raw.go is either in force
// or, when written, reported by a Warning naming it and why it has no
// effect. forceTable is the one list of the keys that are not (or not for
// every value); a key absent from it is in force. TestForceTableComplete
// fails when a raw.go key is missing from inForce or forceTable, so a new
// key cannot be added without saying which it is.
//
// As a feature gets built, its entries leave forceTable for inForce, and
// the warning goes away.

// Class is why a key has no effect.
type Class string

const (
	// NotBuilt: the feature the key configures is not built yet.
	NotBuilt Class = "not built yet"
	// Meaningless: the key tunes a mechanism this implementation does not
	// have (upstream's event loop, buffer pools, slab allocator, …).
	Meaningless Class = "meaningless in this implementation"
	// Unsupported: the value names something this implementation cannot
	// do (a TLS cipher suite or group Go's crypto/tls lacks, a choice it
	// does not offer), or does not know; the rest of the key is in force.
	Unsupported Class = "not supported in this implementation"
	// OptIn: the feature is off here unless a switch of this
	// implementation turns it on (tls_session_tickets).
	OptIn Class = "off unless its switch is on"
	// Unused: what the key configures does not happen with the rest of
	// this configuration (colours for a target that is not stdout, statsd
	// keys without statsd, HTTP/2 limits on a listener that offers no h2).
	Unused Class = "unused by the rest of this configuration"
)

// notInForce says why a key has no effect. when, if not nil, limits the
// warning to some values (the key's field, never nil): a key whose other
// values are honoured.
type notInForce struct {
	class Class
	why   string
	when  func(v reflect.Value) bool
}

// onlyOn limits, by section and key, the warning of a forceTable entry to
// some owners (the struct holding the key, e.g. a listener): the key is
// honoured elsewhere, and is in inForce too.
var onlyOn = map[string]map[string]func(owner reflect.Value) bool{
	"":          {"log_colored": mainColorIgnored, "access_logs_colored": accessColorIgnored},
	"listeners": {}, // h2_* below
	"metrics":   {"prefix": noStatsd, "tagged_metrics": noStatsd},
	"clusters":  {"load_metric": noLoadMetric, "retry_after": notHTTPCluster},
}

// noLoadMetric: a rawCluster whose load_balancing weighs no load (all but
// LEAST_LOADED and POWER_OF_TWO; ROUND_ROBIN when unset).
func noLoadMetric(c reflect.Value) bool {
	lb := c.FieldByName("LoadBalancing")
	if lb.IsNil() {
		return true
	}
	a := command.LoadBalancingAlgorithms(lb.Elem().Int())
	return a != command.LoadBalancingAlgorithms_LEAST_LOADED && a != command.LoadBalancingAlgorithms_POWER_OF_TWO
}

// notHTTPCluster: a rawCluster whose protocol is tcp or udp.
func notHTTPCluster(c reflect.Value) bool {
	p := c.FieldByName("Protocol")
	return !p.IsNil() && p.Elem().Interface() != clusterHTTP
}

// noStatsd: a [metrics] table without a statsd address (prometheus_address
// only); prefix and tagged_metrics shape statsd keys only.
func noStatsd(m reflect.Value) bool { return m.FieldByName("Address").IsNil() }

// onStdout reports whether a log target (a *string key of rawConfig) is
// stdout; unset or empty is too when dflt is.
func onStdout(v reflect.Value, dflt bool) bool {
	if v.IsNil() || *v.Interface().(*string) == "" {
		return dflt
	}
	return strings.TrimSpace(*v.Interface().(*string)) == "stdout"
}

// accessColorable reports whether a rawConfig's access records can be
// coloured: they go to stdout (their own target, or the main one when
// they have none) as ascii (cmd/sozu supervisorLogs, as upstream).
func accessColorable(c reflect.Value) bool {
	main := onStdout(c.FieldByName("LogTarget"), true)
	if !onStdout(c.FieldByName("AccessLogsTarget"), main) {
		return false
	}
	f := c.FieldByName("AccessLogsFormat")
	return f.IsNil() || f.Elem().Interface() == accessLogFormat(command.ProtobufAccessLogFormat_Ascii)
}

// accessColorIgnored: access_logs_colored colours ascii records on stdout
// only.
func accessColorIgnored(c reflect.Value) bool { return !accessColorable(c) }

// mainColorIgnored: log_colored colours the main log on stdout, and is
// the default of access_logs_colored; elsewhere, and with
// access_logs_colored written or the access records not colourable, it
// does nothing.
func mainColorIgnored(c reflect.Value) bool {
	if onStdout(c.FieldByName("LogTarget"), true) {
		return false
	}
	return !c.FieldByName("AccessLogsColored").IsNil() || !accessColorable(c)
}

// Warning is a key written in the configuration that is not in force. Its
// text reads
//
//	<file>:<line>:<col>: <key path>: not in force (<class>): <why>
type Warning struct {
	File      string
	Line, Col int    // 1-based; 0 when unknown
	Key       string // dotted key path, as in Error
	Class     Class
	Why       string
	// Protection names the protection an operator would believe on
	// (flood limits, per-IP caps, health checks, …), or "" for keys whose
	// absence weakens nothing; `sozu compliance` fails a control on it.
	Protection string
}

func (w Warning) String() string {
	e := Error{File: w.File, Line: w.Line, Col: w.Col, Key: w.Key,
		Msg: fmt.Sprintf("not in force (%s): %s", w.Class, w.Why)}
	return e.Error()
}

// Protections an assessor relies on; the keys configuring them are listed
// in protectionOf.
const (
	ProtectH2Flood = "HTTP/2 flood limits"
	// ProtectTLS13Suites: a cipher list naming fewer than the three TLS
	// 1.3 suites (an AES-only list for FIPS, say), which Go's crypto/tls
	// cannot honour.
	ProtectTLS13Suites = "TLS 1.3 cipher suite restriction"
)

func always(reflect.Value) bool { return true }

func isTrue(v reflect.Value) bool { return v.Elem().Bool() }

// isHTTPListener reports whether a rawListener is a plain HTTP one.
func isHTTPListener(owner reflect.Value) bool {
	p := owner.FieldByName("Protocol")
	return p.IsValid() && !p.IsNil() && p.Elem().Interface() == ProtocolHTTP
}

var (
	// h2OnHTTP: HTTP/2 is served on HTTPS listeners (ALPN h2), where the
	// h2_* keys are in force; plain HTTP listeners have no HTTP/2.
	h2OnHTTP  = notInForce{NotBuilt, "on an HTTP listener: HTTP/2 is served on HTTPS listeners only (prior-knowledge h2c is not built)", nil}
	eventLoop = notInForce{Meaningless, "it sizes upstream's event loop and buffer pools; Go's runtime manages this memory", nil}
)

// forceTable lists the keys that are not in force, by section (see
// sectionOf) and TOML key.
var forceTable = map[string]map[string]notInForce{
	"": {
		"command_buffer_size":         {Meaningless, "command buffers grow as needed up to max_command_buffer_size; its one effect is upstream's rule that max_command_buffer_size is not below it", nil},
		"min_buffers":                 eventLoop,
		"max_buffers":                 eventLoop,
		"buffer_size":                 eventLoop,
		"slab_entries_per_connection": eventLoop,
		"zombie_check_interval":       {Meaningless, "every read and write has a deadline, so no session can become a zombie to look for", nil},
		// Upstream's rule: colours are written to stdout only.
		"log_colored": {Unused, "when log_target is not stdout: the main log is coloured on stdout only " +
			"(log_colored is also the default of access_logs_colored, for ascii access records on stdout)", isTrue},
		"access_logs_colored": {Unused, "when the access records are not ascii on stdout (access_logs_target, " +
			"or log_target without it): only those are coloured", isTrue},
		"handle_process_affinity":         {Meaningless, "workers are not pinned to CPUs; Go's scheduler places their threads", isTrue},
		"basic_auth_max_credential_bytes": {NotBuilt, "the decoded credential cap is fixed at 4096 bytes", func(v reflect.Value) bool { n := v.Elem().Uint(); return n != 0 && n != 4096 }},
		"evict_on_queue_full": {NotBuilt, "sessions are never evicted to make room: over max_connections, new connections wait " +
			"in the accept queue (accept_queue_timeout), then in the listen backlog", isTrue},
	},
	"listeners": {
		"answer_507":           {Meaningless, "this proxy never answers 507 itself; " + why507, nil},
		"signature_algorithms": {Meaningless, "Go's crypto/tls offers no server-side choice of signature algorithms", nil},
		"elide_x_real_ip": {Meaningless, "a client's X-Real-IP is always removed (docs/frontends.md, forwarding fields); false cannot let it through",
			func(v reflect.Value) bool { return !v.Elem().Bool() }},

		"h2_max_rst_stream_per_window":            h2OnHTTP,
		"h2_max_ping_per_window":                  h2OnHTTP,
		"h2_max_settings_per_window":              h2OnHTTP,
		"h2_max_empty_data_per_window":            h2OnHTTP,
		"h2_max_window_update_stream0_per_window": h2OnHTTP,
		"h2_max_continuation_frames":              h2OnHTTP,
		"h2_max_glitch_count":                     h2OnHTTP,
		"h2_initial_connection_window":            h2OnHTTP,
		"h2_max_concurrent_streams":               h2OnHTTP,
		"h2_stream_shrink_ratio":                  h2OnHTTP,
		"h2_max_rst_stream_lifetime":              h2OnHTTP,
		"h2_max_rst_stream_abusive_lifetime":      h2OnHTTP,
		"h2_max_rst_stream_emitted_lifetime":      h2OnHTTP,
		"h2_max_header_list_size":                 h2OnHTTP,
		"h2_max_header_table_size":                h2OnHTTP,
		"h2_stream_idle_timeout_seconds":          h2OnHTTP,
		"h2_graceful_shutdown_deadline_seconds":   h2OnHTTP,
		"h2_max_header_fields":                    h2OnHTTP,
		// Upstream 2.3's soft threshold: past this percentage of
		// h2_max_rst_stream_abusive_lifetime, a connection's new streams
		// are refused (RST_STREAM(REFUSED_STREAM)) until a flood window
		// passes without a cancel. Not on any listener here.
		"h2_stream_refusal_percent": {NotBuilt, "new streams are never refused for early cancels: a connection runs until " +
			"h2_max_rst_stream_abusive_lifetime ends it (GOAWAY(ENHANCE_YOUR_CALM))", nil},
	},
	"clusters": {
		"load_metric": {Unused, "when load_balancing is not LEAST_LOADED or POWER_OF_TWO: only those weigh " +
			"the backends' load", nil},
		"retry_after": {Unused, "on a tcp or udp cluster: Retry-After is a header of HTTP's 429; a TCP connection " +
			"over max_connections_per_ip is closed", nil},
	},
	"metrics": {
		"prefix": {Unused, "when [metrics] has no address (statsd): prefix names statsd keys only; Prometheus names are sozu_… " +
			"(docs/metrics.md)", nil},
		"tagged_metrics": {Unused, "when [metrics] has no address (statsd): tagged_metrics shapes statsd lines only; Prometheus " +
			"always labels cluster_id and backend_id (docs/metrics.md)", isTrue},
	},
	"frontends": {
		"tls_versions": {NotBuilt, "per-certificate TLS versions are not applied: the listener's tls_versions apply", nil},
	},
}

// protectionOf names the protection a not-in-force key would give, by
// section and key (see Warning.Protection).
var protectionOf = map[string]map[string]string{
	"":          {},
	"listeners": {}, // h2_* below
}

func init() {
	for k, nf := range forceTable["listeners"] {
		if strings.HasPrefix(k, "h2_") {
			protectionOf["listeners"][k] = ProtectH2Flood
			if nf.why == h2OnHTTP.why {
				onlyOn["listeners"][k] = isHTTPListener
			}
		}
	}
}

// inForce lists, by section, the keys honoured as documented
// (docs/configuration.md); TestForceTableComplete checks that inForce and
// forceTable cover raw.go exactly. A key may be in both when only some of
// its values are not in force (see notInForce.when).
var inForce = map[string][]string{
	"": {"command_socket", "max_command_buffer_size", "max_connections", "command_allowed_uids",
		"saved_state", "automatic_state_save", "log_level", "log_target", "log_colored",
		"access_logs_target", "access_logs_format", "access_logs_colored", "access_logs_query",
		"audit_logs_target", "audit_logs_json_target", "worker_count", "worker_threads", "worker_automatic_restart",
		"worker_timeout", "soft_stop_deadline", "listeners", "clusters", "activate_listeners", "ctl_command_timeout",
		"front_timeout", "back_timeout", "connect_timeout", "request_timeout", "accept_queue_timeout",
		"handle_process_affinity", "basic_auth_max_credential_bytes", "max_connections_per_ip",
		"retry_after", "evict_on_queue_full", "splice_pipe_capacity_bytes",
		"command_allowed_gids", "command_readonly_uids", "command_readonly_gids", "command_socket_group",
		"peer_user_cache_size", "peer_user_cache_ttl", "peer_lookup_timeout", "audit_hmac_key_file",
		"audit_fail_open", "audit_queries", "audit_fsync", "worker_user", "worker_group",
		"worker_allow_root", "sandbox_mode", "tls_session_tickets",
		"command_max_sessions_per_uid", "command_session_idle_timeout", "state_key_custodian_uids",
		"metrics", "disable_cluster_metrics", "pid_file_path"},
	"listeners": {"address", "protocol", "public_address", "expect_proxy", "front_timeout", "back_timeout",
		"connect_timeout", "request_timeout", "answer_301", "answer_400", "answer_401", "answer_404",
		"answer_408", "answer_413", "answer_421", "answer_429", "answer_502", "answer_503", "answer_504",
		"answers", "sozu_id_header", "elide_x_real_ip", "send_x_real_ip", "tls_versions",
		"cipher_list", "cipher_suites", "groups_list", "certificate", "certificate_chain", "key",
		"send_tls13_tickets", "strict_sni_binding", "hsts", "alpn_protocols", "disable_http11", "sticky_name",
		"max_rx_datagram_size", "max_flows", // UDP (worker/udp)
		// h2_*: in force on HTTPS listeners (onlyOn reports them on HTTP ones).
		"h2_max_rst_stream_per_window", "h2_max_ping_per_window", "h2_max_settings_per_window",
		"h2_max_empty_data_per_window", "h2_max_window_update_stream0_per_window", "h2_max_continuation_frames",
		"h2_max_glitch_count", "h2_initial_connection_window", "h2_max_concurrent_streams",
		"h2_stream_shrink_ratio", "h2_max_rst_stream_lifetime", "h2_max_rst_stream_abusive_lifetime",
		"h2_max_rst_stream_emitted_lifetime", "h2_max_header_list_size", "h2_max_header_table_size",
		"h2_stream_idle_timeout_seconds", "h2_graceful_shutdown_deadline_seconds", "h2_max_header_fields"},
	"clusters": {"protocol", "frontends", "backends", "load_balancing", "load_metric", "answers", "https_redirect",
		"https_redirect_port", "answer_503", "authorized_hashes", "www_authenticate", "send_proxy",
		"max_connections_per_ip", "retry_after", "sticky_session", "http2", "health_check", "udp"},
	"udp": {"affinity_key", "responses", "requests", "send_proxy_protocol", "proxy_protocol_every_datagram", "health"},
	"udp_health": {"mode", "tcp_port", "rise", "fall", "fail_open", "udp_probe_payload", "probe_interval_seconds",
		"probe_timeout_seconds"},
	"frontends": {"address", "tags", "hostname", "path", "path_type", "method", "position", "certificate",
		"key", "certificate_chain", "redirect", "redirect_scheme", "redirect_template", "rewrite_host",
		"rewrite_path", "rewrite_port", "required_auth", "headers", "hsts"},
	"backends":     {"address", "backend_id", "weight", "backup", "sticky_id"},
	"headers":      {"position", "key", "value"},
	"hsts":         {"enabled", "max_age", "include_subdomains", "preload", "force_replace_backend"},
	"metrics":      {"address", "tagged_metrics", "prefix", "detail", "prometheus_address", "disable_cluster_metrics"},
	"health_check": {"uri", "interval", "timeout", "healthy_threshold", "unhealthy_threshold", "expected_status"},
}

// checkForce reports every key of c that is written and not in force. It
// runs before defaults are applied, so only what the file says is reported.
func checkForce(errs *errorList, c *rawConfig) []Warning {
	var ws []Warning
	warnAll := func(p, section string, v reflect.Value) {
		t := v.Type()
		for i := range t.NumField() {
			f := v.Field(i)
			if f.IsNil() {
				continue
			}
			key := t.Field(i).Tag.Get("toml")
			nf, ok := forceTable[section][key]
			if !ok || (nf.when != nil && !nf.when(f)) || (onlyOn[section][key] != nil && !onlyOn[section][key](v)) {
				continue
			}
			kp := joinKey(p, key)
			at := errs.pos.key(kp)
			ws = append(ws, Warning{File: errs.file, Line: at.line, Col: at.col, Key: kp,
				Class: nf.class, Why: nf.why, Protection: protectionOf[section][key]})
		}
	}
	warnAll("", "", reflect.ValueOf(c).Elem())
	if c.Metrics != nil {
		warnAll("metrics", "metrics", reflect.ValueOf(c.Metrics).Elem())
	}
	for i, l := range c.Listeners {
		if l != nil {
			warnAll(joinIndex("listeners", i), "listeners", reflect.ValueOf(l).Elem())
		}
	}
	for id, cl := range c.Clusters {
		if cl == nil {
			continue
		}
		p := joinKey("clusters", id)
		warnAll(p, "clusters", reflect.ValueOf(cl).Elem())
		for j, f := range cl.Frontends {
			if f != nil {
				warnAll(joinIndex(joinKey(p, "frontends"), j), "frontends", reflect.ValueOf(f).Elem())
			}
		}
		for j, b := range cl.Backends {
			if b != nil {
				warnAll(joinIndex(joinKey(p, "backends"), j), "backends", reflect.ValueOf(b).Elem())
			}
		}
	}
	sortWarnings(ws)
	return ws
}

// sortWarnings sorts warnings in file order; those without a position
// last.
func sortWarnings(ws []Warning) {
	sort.SliceStable(ws, func(i, j int) bool {
		a, b := ws[i], ws[j]
		if (a.Line == 0) != (b.Line == 0) {
			return b.Line == 0
		}
		if a.Line != b.Line {
			return a.Line < b.Line
		}
		if a.Col != b.Col {
			return a.Col < b.Col
		}
		return a.Key < b.Key
	})
}
