package config

import (
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// sections maps each section of forceTable and inForce to its raw struct.
var sections = map[string]reflect.Type{
	"":             reflect.TypeOf(rawConfig{}),
	"metrics":      reflect.TypeOf(rawMetrics{}),
	"listeners":    reflect.TypeOf(rawListener{}),
	"hsts":         reflect.TypeOf(rawHSTS{}),
	"clusters":     reflect.TypeOf(rawCluster{}),
	"frontends":    reflect.TypeOf(rawFrontend{}),
	"headers":      reflect.TypeOf(rawHeader{}),
	"backends":     reflect.TypeOf(rawBackend{}),
	"health_check": reflect.TypeOf(rawHealthCheck{}),
	"udp":          reflect.TypeOf(rawUDP{}),
	"udp_health":   reflect.TypeOf(rawUDPHealth{}),
}

// wholeTable: sections reported as one key by their parent (forceTable
// names the parent key), so their own keys need no entry.
var wholeTable = map[string]bool{}

func tomlKeys(t reflect.Type) []string {
	var keys []string
	for i := range t.NumField() {
		if k := t.Field(i).Tag.Get("toml"); k != "" {
			keys = append(keys, k)
		}
	}
	return keys
}

// TestForceTableComplete: every key the decoder accepts is either in force
// (inForce) or reported (forceTable); both tables name only real keys; a
// key in both is reported for some values only.
func TestForceTableComplete(t *testing.T) {
	for name := range forceTable {
		if _, ok := sections[name]; !ok {
			t.Errorf("forceTable section %q has no raw struct", name)
		}
	}
	for name := range inForce {
		if _, ok := sections[name]; !ok {
			t.Errorf("inForce section %q has no raw struct", name)
		}
	}
	for name, typ := range sections {
		keys := tomlKeys(typ)
		for _, k := range keys {
			nf, reported := forceTable[name][k]
			partial := nf.when != nil || onlyOn[name][k] != nil
			enforced := slices.Contains(inForce[name], k)
			switch {
			case wholeTable[name]:
				if reported || enforced {
					t.Errorf("%s.%s: the whole [%s] table is reported by its parent key; no entry of its own", name, k, name)
				}
			case !reported && !enforced:
				t.Errorf("key %q of section %q is neither in inForce nor in forceTable: say which", k, name)
			case reported && enforced && !partial:
				t.Errorf("key %q of section %q is in inForce and in forceTable for every value", k, name)
			case reported && !enforced && partial:
				t.Errorf("key %q of section %q is reported for some values only: list it in inForce too", k, name)
			}
			if reported && (nf.class == "" || nf.why == "") {
				t.Errorf("key %q of section %q: no class or reason", k, name)
			}
		}
		for k := range forceTable[name] {
			if !slices.Contains(keys, k) {
				t.Errorf("forceTable names %s.%s, which the decoder does not accept", name, k)
			}
		}
		for _, k := range inForce[name] {
			if !slices.Contains(keys, k) {
				t.Errorf("inForce names %s.%s, which the decoder does not accept", name, k)
			}
		}
	}
}

// upstreamKeys is every key of upstream Sōzu's documented configuration
// (doc/configure.md, doc/health_checks.md), by section.
var upstreamKeys = map[string][]string{
	"": {"saved_state", "automatic_state_save", "log_level", "log_target", "log_colored",
		"access_logs_target", "access_logs_format", "access_logs_colored", "command_socket",
		"command_buffer_size", "max_command_buffer_size", "worker_count", "worker_automatic_restart",
		"worker_timeout", "disable_cluster_metrics", "handle_process_affinity", "max_connections",
		"max_buffers", "min_buffers", "buffer_size", "slab_entries_per_connection",
		"splice_pipe_capacity_bytes", "command_allowed_uids", "ctl_command_timeout", "pid_file_path",
		"front_timeout", "back_timeout", "connect_timeout", "accept_queue_timeout", "request_timeout",
		"zombie_check_interval", "evict_on_queue_full", "activate_listeners", "max_connections_per_ip",
		"retry_after", "basic_auth_max_credential_bytes", "metrics", "listeners", "clusters"},
	"metrics": {"address", "tagged_metrics", "prefix", "detail"},
	"listeners": {"protocol", "address", "public_address", "expect_proxy", "answer_301", "answer_400",
		"answer_401", "answer_404", "answer_408", "answer_413", "answer_502", "answer_503", "answer_504",
		"answer_507", "answers", "sticky_name", "tls_versions", "cipher_list", "cipher_suites",
		"signature_algorithms", "groups_list", "certificate", "certificate_chain", "key",
		"send_tls13_tickets", "alpn_protocols", "strict_sni_binding", "disable_http11", "sozu_id_header",
		"elide_x_real_ip", "send_x_real_ip", "front_timeout", "back_timeout", "connect_timeout",
		"request_timeout", "h2_max_rst_stream_per_window", "h2_max_ping_per_window",
		"h2_max_settings_per_window", "h2_max_empty_data_per_window",
		"h2_max_window_update_stream0_per_window", "h2_max_continuation_frames", "h2_max_glitch_count",
		"h2_initial_connection_window", "h2_max_concurrent_streams", "h2_stream_shrink_ratio",
		"h2_max_rst_stream_lifetime", "h2_max_rst_stream_abusive_lifetime",
		"h2_max_rst_stream_emitted_lifetime", "h2_max_header_list_size", "h2_max_header_table_size",
		"h2_stream_idle_timeout_seconds", "h2_graceful_shutdown_deadline_seconds",
		// Upstream 2.3 (HttpListenerConfig, HttpsListenerConfig): the share
		// of h2_max_rst_stream_abusive_lifetime past which new streams are
		// refused.
		"h2_stream_refusal_percent"},
	"clusters": {"protocol", "load_balancing", "load_metric", "https_redirect", "https_redirect_port",
		"frontends", "backends", "http2", "answers", "answer_503", "www_authenticate", "authorized_hashes",
		"health_check", "sticky_session", "max_connections_per_ip", "retry_after", "send_proxy"},
	"frontends": {"address", "hostname", "path", "path_type", "method", "position", "tags", "certificate",
		"key", "certificate_chain", "tls_versions", "redirect", "redirect_scheme", "redirect_template",
		"rewrite_host", "rewrite_path", "rewrite_port", "required_auth", "headers"},
	"headers":      {"position", "key", "value"},
	"backends":     {"address", "backend_id", "weight", "sticky_id", "backup"},
	"health_check": {"uri", "interval", "timeout", "healthy_threshold", "unhealthy_threshold", "expected_status"},
	"udp":          {"affinity_key", "responses", "requests", "send_proxy_protocol", "proxy_protocol_every_datagram", "health"},
	"udp_health": {"mode", "tcp_port", "rise", "fall", "fail_open", "udp_probe_payload", "probe_interval_seconds",
		"probe_timeout_seconds"},
}

// TestUpstreamKeysAccounted: every upstream key loads here, and is in force
// or reported.
func TestUpstreamKeysAccounted(t *testing.T) {
	for name, keys := range upstreamKeys {
		known := tomlKeys(sections[name])
		for _, k := range keys {
			if !slices.Contains(known, k) {
				t.Errorf("upstream key %s.%s is not accepted", name, k)
				continue
			}
			_, reported := forceTable[name][k]
			if !wholeTable[name] && !reported && !slices.Contains(inForce[name], k) {
				t.Errorf("upstream key %s.%s is neither in force nor reported", name, k)
			}
		}
	}
}

// TestWarnings: a configuration writing keys of each class gets one
// warning per such key, in file order, with its position (golden); keys
// reported for some values only are quiet for the others.
func TestWarnings(t *testing.T) {
	c, err := Load("testdata/truth/warnings.toml")
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, w := range c.Warnings {
		b.WriteString(w.String())
		if w.Protection != "" {
			b.WriteString(" [protection: " + w.Protection + "]")
		}
		b.WriteByte('\n')
	}
	checkGolden(t, "testdata/truth/warnings.golden", []byte(b.String()))
	for _, w := range c.Warnings {
		if strings.Contains(w.Key, "quiet") {
			t.Errorf("warned about a value in force: %s", w)
		}
	}

	c, err = Load("testdata/minimal.toml")
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Warnings) != 0 {
		t.Errorf("minimal.toml: %v", c.Warnings)
	}
}

func checkGolden(t *testing.T, golden string, got []byte) {
	t.Helper()
	if *update {
		if err := os.WriteFile(golden, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run go test -update)", err)
	}
	if string(want) != string(got) {
		t.Errorf("%s differs (go test -update rewrites it):\n%s", golden, diffLines(string(want), string(got)))
	}
}

// TestColoredWarnings: log_colored and access_logs_colored colour stdout
// only (upstream's rule); written true where they cannot, they are
// reported, and quiet where they are in force (log_colored as the default
// of access_logs_colored included).
func TestColoredWarnings(t *testing.T) {
	cases := []struct {
		toml string
		want []string // keys warned about
	}{
		{`log_colored = true`, nil},
		{`log_colored = true
log_target = "udp://127.0.0.1:9"`, []string{"log_colored"}},
		{`log_colored = true
log_target = "udp://127.0.0.1:9"
access_logs_target = "stdout"`, nil}, // the default of access_logs_colored
		{`log_colored = true
log_target = "udp://127.0.0.1:9"
access_logs_target = "stdout"
access_logs_colored = false`, []string{"log_colored"}},
		{`log_colored = false
log_target = "udp://127.0.0.1:9"`, nil},
		{`access_logs_colored = true`, nil},
		{`access_logs_colored = true
access_logs_format = "json"`, []string{"access_logs_colored"}},
		{`access_logs_colored = true
access_logs_target = "stderr"`, []string{"access_logs_colored"}},
		{`access_logs_colored = true
log_target = "stderr"`, []string{"access_logs_colored"}},
		{`access_logs_colored = true
log_target = "stderr"
access_logs_target = "stdout"`, nil},
		{`log_colored = true
access_logs_colored = true
access_logs_format = "protobuf"`, []string{"access_logs_colored"}},
	}
	for _, tc := range cases {
		checkWarned(t, "colored.toml", tc.toml, tc.want, func(w Warning) bool {
			return w.Line == 0 || !strings.Contains(w.String(), "colored.toml:") || !strings.Contains(w.Why, "stdout")
		})
	}
}

// TestTLSPolicyWarnings: entries of an HTTPS listener's TLS lists that the
// workers' policy leaves out (an unknown or refused suite or group, TLS
// 1.3 suites Go cannot restrict) are warnings at their key, so that
// config check shows them and --strict fails; they were only logged by
// each worker at start, without the file. Upstream's default lists, and
// what the policy honours, stay quiet.
func TestTLSPolicyWarnings(t *testing.T) {
	const head = "[[listeners]]\nprotocol = \"https\"\naddress = \"127.0.0.1:8443\"\n"
	cases := []struct {
		toml string
		want []string // "key: why" prefixes, in order
	}{
		{`cipher_list = ["TLS13_AES_256_GCM_SHA384", "TLS13_AES_128_GCM_SHA256", "TLS13_CHACHA20_POLY1305_SHA256",
  "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384", "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
  "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256", "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
  "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256"]
groups_list = ["X25519MLKEM768", "x25519", "P-256", "P-384", "P-521"]`, nil},
		{`cipher_list = ["ECDHE-RSA-AES128-GCM-SHA256", "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA25"]`,
			[]string{`listeners[0].cipher_list: "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA25" is not`}},
		{`cipher_list = ["AES128-SHA"]`, []string{
			"listeners[0].cipher_list: TLS_RSA_WITH_AES_128_CBC_SHA is refused",
			"listeners[0].cipher_list: no allowed TLS 1.2 suite left"}},
		{`cipher_list = ["TLS13_AES_256_GCM_SHA384", "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"]`,
			[]string{"listeners[0].cipher_list: TLS 1.3 suites cannot be restricted"}},
		{`cipher_suites = ["TLS_AES_256_GCM_SHA384", "TLS_AES_128_CCM_SHA256"]`, []string{
			`listeners[0].cipher_suites: "TLS_AES_128_CCM_SHA256" is not`,
			"listeners[0].cipher_suites: TLS 1.3 suites cannot be restricted"}},
		{`groups_list = ["x25519", "brainpoolP256r1"]`, []string{`listeners[0].groups_list: "brainpoolP256r1" is not`}},
	}
	for _, tc := range cases {
		c, err := Parse([]byte(head+tc.toml), "tls.toml")
		if err != nil {
			t.Fatalf("%s: %v", tc.toml, err)
		}
		if len(c.Warnings) != len(tc.want) {
			t.Errorf("%s:\n%d warnings, want %d: %v", tc.toml, len(c.Warnings), len(tc.want), c.Warnings)
			continue
		}
		for i, w := range c.Warnings {
			if got := w.Key + ": " + w.Why; !strings.HasPrefix(got, tc.want[i]) || w.Line != 4 || w.Class != Unsupported {
				t.Errorf("%s:\nwarning %d: %s (line %d, %s), want %q… at line 4", tc.toml, i, got, w.Line, w.Class, tc.want[i])
			}
			// An assessor would believe a restricted TLS 1.3 list on:
			// sozu compliance fails it.
			if restricts := strings.Contains(w.Why, "cannot be restricted"); restricts != (w.Protection == ProtectTLS13Suites) {
				t.Errorf("%s:\nwarning %d: protection %q", tc.toml, i, w.Protection)
			}
		}
	}
}

// TestStatsdKeysWarnings: prefix and tagged_metrics shape statsd lines
// only; in a [metrics] table with prometheus_address and no address they
// do nothing, and are reported.
func TestStatsdKeysWarnings(t *testing.T) {
	cases := []struct {
		toml string
		want []string
	}{
		{"[metrics]\nprometheus_address = \"127.0.0.1:9100\"\nprefix = \"edge\"\ntagged_metrics = true",
			[]string{"metrics.prefix", "metrics.tagged_metrics"}},
		{"[metrics]\nprometheus_address = \"127.0.0.1:9100\"\ntagged_metrics = false", nil},
		{"[metrics]\naddress = \"127.0.0.1:8125\"\nprometheus_address = \"127.0.0.1:9100\"\nprefix = \"edge\"\ntagged_metrics = true", nil},
	}
	for _, tc := range cases {
		checkWarned(t, "metrics.toml", tc.toml, tc.want, func(w Warning) bool { return w.Line == 0 || !strings.Contains(w.Why, "statsd") })
	}
}

// TestTicketsWarning: a written send_tls13_tickets above 0 issues no
// ticket unless tls_session_tickets = true (docs/tls.md); it loaded clean.
func TestTicketsWarning(t *testing.T) {
	const l = "[[listeners]]\nprotocol = \"https\"\naddress = \"127.0.0.1:8443\"\n"
	cases := []struct {
		toml string
		want bool
	}{
		{l + "send_tls13_tickets = 4", true},
		{l + "send_tls13_tickets = 0", false},
		{l, false}, // upstream's default 4, not written
		{"tls_session_tickets = true\n" + l + "send_tls13_tickets = 4", false},
	}
	for _, tc := range cases {
		c, err := Parse([]byte(tc.toml), "tickets.toml")
		if err != nil {
			t.Fatalf("%s: %v", tc.toml, err)
		}
		got := len(c.Warnings) == 1 && c.Warnings[0].Key == "listeners[0].send_tls13_tickets" &&
			c.Warnings[0].Line == 4 && strings.Contains(c.Warnings[0].Why, "tls_session_tickets")
		if got != tc.want || (!tc.want && len(c.Warnings) != 0) {
			t.Errorf("%s:\nwarnings %v, want the send_tls13_tickets one: %v", tc.toml, c.Warnings, tc.want)
		}
	}
}

// TestUnusedWarnings: h2_* limits on an HTTPS listener whose
// alpn_protocols offers no h2, and a [metrics] detail above the proxy
// level with disable_cluster_metrics = true, configure nothing that
// happens; they loaded clean.
func TestUnusedWarnings(t *testing.T) {
	const l = "[[listeners]]\nprotocol = \"https\"\naddress = \"127.0.0.1:8443\"\n"
	cases := []struct {
		toml string
		want []string
	}{
		{l + "alpn_protocols = [\"http/1.1\"]\nh2_max_concurrent_streams = 10\nh2_max_glitch_count = 50",
			[]string{"listeners[0].h2_max_concurrent_streams", "listeners[0].h2_max_glitch_count"}},
		{l + "alpn_protocols = [\"http/1.1\", \"h2\"]\nh2_max_concurrent_streams = 10", nil},
		{l + "h2_max_concurrent_streams = 10", nil},
		// not built: reported once, as such
		{l + "alpn_protocols = [\"http/1.1\"]\nh2_stream_refusal_percent = 50", []string{"listeners[0].h2_stream_refusal_percent"}},
		{"disable_cluster_metrics = true\n[metrics]\naddress = \"127.0.0.1:8125\"\ndetail = \"backend\"", []string{"metrics.detail"}},
		{"disable_cluster_metrics = true\n[metrics]\naddress = \"127.0.0.1:8125\"\ndetail = \"process\"", nil},
		{"[metrics]\naddress = \"127.0.0.1:8125\"\ndetail = \"backend\"", nil},
	}
	for _, tc := range cases {
		checkWarned(t, "unused.toml", tc.toml, tc.want, func(w Warning) bool { return w.Line == 0 })
	}
}

// TestClusterUnusedWarnings: load_metric weighs load for LEAST_LOADED and
// POWER_OF_TWO only; retry_after is an HTTP header, unused by tcp
// clusters (upstream: "TCP listeners ignore this value"). Both loaded
// clean where they do nothing.
func TestClusterUnusedWarnings(t *testing.T) {
	cl := func(proto, extra string) string {
		host := ""
		if proto == "http" {
			host = ", hostname = \"a.test\""
		}
		return "[clusters.a]\nprotocol = \"" + proto + "\"\n" + extra +
			"\nfrontends = [{ address = \"127.0.0.1:8081\"" + host + " }]\nbackends = [{ address = \"127.0.0.1:9\" }]\n"
	}
	cases := []struct {
		toml string
		want []string
	}{
		{cl("tcp", "load_metric = \"CONNECTIONS\""), []string{"clusters.a.load_metric"}},
		{cl("tcp", "load_balancing = \"RANDOM\"\nload_metric = \"REQUESTS\""), []string{"clusters.a.load_metric"}},
		{cl("tcp", "load_balancing = \"LEAST_LOADED\"\nload_metric = \"CONNECTIONS\""), nil},
		{cl("tcp", "load_balancing = \"POWER_OF_TWO\"\nload_metric = \"CONNECTION_TIME\""), nil},
		{cl("tcp", "retry_after = 5\nmax_connections_per_ip = 2"), []string{"clusters.a.retry_after"}},
		{cl("http", "retry_after = 5\nmax_connections_per_ip = 2"), nil},
	}
	for _, tc := range cases {
		checkWarned(t, "clusters.toml", tc.toml, tc.want, func(w Warning) bool { return w.Line != 3 && w.Line != 4 })
	}
}

// TestLogLevelModuleWarning: log_level takes upstream's env_logger
// filter, but the whole log here has one level: a module directive at
// another level has no effect ("info,sozu::http=debug" logs nothing at
// debug), and loaded clean.
func TestLogLevelModuleWarning(t *testing.T) {
	cases := []struct {
		spec string
		want string // in the reason; "" for no warning
	}{
		{"info,sozu::http=debug", "without effect: sozu::http=debug (module directives name upstream's Rust modules; the whole log is at info)"},
		{"sozu::http=trace, sozu=info", "without effect: sozu=info (module directives name upstream's Rust modules; the whole log is at trace)"},
		{"warn,sozu=error,sozu::h2=debug", "without effect: sozu=error, sozu::h2=debug ("},
		{"sozu=debug", ""},
		{"debug,sozu=debug", ""},
		{"info", ""},
	}
	for _, tc := range cases {
		c, err := Parse([]byte("log_level = \""+tc.spec+"\"\n"), "ll.toml")
		if err != nil {
			t.Fatalf("%s: %v", tc.spec, err)
		}
		switch {
		case tc.want == "" && len(c.Warnings) != 0:
			t.Errorf("%q: %v", tc.spec, c.Warnings)
		case tc.want != "" && (len(c.Warnings) != 1 || c.Warnings[0].Key != "log_level" || c.Warnings[0].Line != 1 ||
			!strings.HasPrefix(c.Warnings[0].Why, tc.want)):
			t.Errorf("%q: warnings %v, want one at log_level: %q…", tc.spec, c.Warnings, tc.want)
		}
	}
}

// TestNeverAnsweredWarnings: a custom answer for a status the proxy never
// answers itself (upstream's 507, a 200, a 418) is never sent; it loaded
// clean. Answers for statuses the proxy does answer stay quiet.
func TestNeverAnsweredWarnings(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "507.http")
	if err := os.WriteFile(file, []byte("HTTP/1.1 507 Insufficient Storage\r\nContent-Length: 0\r\n\r\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	const l = "[[listeners]]\nprotocol = \"http\"\naddress = \"127.0.0.1:8080\"\n"
	const tpl = `"HTTP/1.1 %d X\r\nContent-Length: 0\r\n\r\n"`
	cases := []struct {
		toml string
		want []string
	}{
		{l + "answer_507 = " + strconv.Quote(file), []string{"listeners[0].answer_507"}},
		{l + "answers = { \"200\" = " + fmt.Sprintf(tpl, 200) + ", \"418\" = " + fmt.Sprintf(tpl, 418) + ", \"503\" = " + fmt.Sprintf(tpl, 503) + " }",
			[]string{"listeners[0].answers.200", "listeners[0].answers.418"}},
		{"[clusters.a]\nprotocol = \"http\"\nanswers = { \"507\" = " + fmt.Sprintf(tpl, 507) + ", \"429\" = " + fmt.Sprintf(tpl, 429) + " }\n" +
			"frontends = [{ address = \"127.0.0.1:8080\", hostname = \"a.test\" }]\nbackends = [{ address = \"127.0.0.1:9\" }]\n",
			[]string{"clusters.a.answers.507"}},
		{l + "answers = { \"404\" = " + fmt.Sprintf(tpl, 404) + ", \"421\" = " + fmt.Sprintf(tpl, 421) + ", \"431\" = " + fmt.Sprintf(tpl, 431) + " }", nil},
		// A cluster's answers serve what is answered with the cluster
		// known (answers.ClusterAnswered): not 404 (no route), 421, 431,
		// 505, answered before any cluster is.
		{"[clusters.a]\nprotocol = \"http\"\nanswers = { \"404\" = " + fmt.Sprintf(tpl, 404) + ", \"421\" = " + fmt.Sprintf(tpl, 421) +
			", \"431\" = " + fmt.Sprintf(tpl, 431) + ", \"505\" = " + fmt.Sprintf(tpl, 505) + ", \"401\" = " + fmt.Sprintf(tpl, 401) +
			", \"400\" = " + fmt.Sprintf(tpl, 400) + ", \"504\" = " + fmt.Sprintf(tpl, 504) + " }\n" +
			"frontends = [{ address = \"127.0.0.1:8080\", hostname = \"a.test\" }]\nbackends = [{ address = \"127.0.0.1:9\" }]\n",
			[]string{"clusters.a.answers.404", "clusters.a.answers.421", "clusters.a.answers.431", "clusters.a.answers.505"}},
	}
	for _, tc := range cases {
		checkWarned(t, filepath.Join(dir, "answers.toml"), tc.toml, tc.want, func(w Warning) bool { return w.Line == 0 || !strings.Contains(w.Why, "never") })
	}
}

// TestStickyUnusedWarnings: the sticky cookie (its name a listener's
// sticky_name, its values backends' sticky_id) is read and set for
// clusters with sticky_session = true only; elsewhere both keys loaded
// clean and did nothing.
func TestStickyUnusedWarnings(t *testing.T) {
	const l = "[[listeners]]\nprotocol = \"http\"\naddress = \"127.0.0.1:8080\"\nsticky_name = \"S\"\n" +
		"[[listeners]]\nprotocol = \"http\"\naddress = \"127.0.0.1:8081\"\nsticky_name = \"T\"\n"
	cl := func(id, sticky, addr string) string {
		return "[clusters." + id + "]\nprotocol = \"http\"\n" + sticky + "\nfrontends = [{ address = \"" + addr +
			"\", hostname = \"" + id + ".test\" }]\nbackends = [{ address = \"127.0.0.1:9\", sticky_id = \"b\" }]\n"
	}
	cases := []struct {
		toml string
		want []string
	}{
		{l + cl("a", "", "127.0.0.1:8080"), []string{"listeners[0].sticky_name", "listeners[1].sticky_name", "clusters.a.backends[0].sticky_id"}},
		{l + cl("a", "sticky_session = true", "127.0.0.1:8080") + cl("b", "sticky_session = false", "127.0.0.1:8081"),
			[]string{"listeners[1].sticky_name", "clusters.b.backends[0].sticky_id"}},
		{l + cl("a", "sticky_session = true", "127.0.0.1:8080") + cl("b", "sticky_session = true", "127.0.0.1:8081"), nil},
	}
	for _, tc := range cases {
		checkWarned(t, "sticky.toml", tc.toml, tc.want, func(w Warning) bool { return w.Line == 0 || !strings.Contains(w.Why, "sticky_session") })
	}
}

// TestRedirectPortChallengeUnused: a cluster's https_redirect_port serves
// https redirections only (https_redirect = true, or a frontend
// redirecting to https without its own rewrite_port), its
// www_authenticate 401 answers only (redirect = "unauthorized", or
// required_auth); elsewhere both loaded clean and did nothing.
func TestRedirectPortChallengeUnused(t *testing.T) {
	hash := `"u:` + strings.Repeat("0", 64) + `"`
	cl := func(keys, fe string) string {
		return "[clusters.a]\nprotocol = \"http\"\nhttps_redirect_port = 8443\nwww_authenticate = \"Basic realm=\\\"a\\\"\"\n" +
			"authorized_hashes = [" + hash + "]\n" + keys + "\nfrontends = [{ address = \"127.0.0.1:8080\", hostname = \"a.test\"" + fe +
			" }]\nbackends = [{ address = \"127.0.0.1:9\" }]\n"
	}
	both := []string{"clusters.a.https_redirect_port", "clusters.a.www_authenticate"}
	cases := []struct {
		toml string
		want []string
	}{
		{cl("", ""), both},
		{cl("https_redirect = false", `, redirect = "permanent", redirect_scheme = "use-http"`), both},
		{cl("", `, redirect = "found", redirect_scheme = "use-https", rewrite_port = 9443`), both},
		{cl("https_redirect = true", ""), []string{"clusters.a.www_authenticate"}},
		{cl("", `, redirect = "permanent_redirect", redirect_scheme = "use-https"`), []string{"clusters.a.www_authenticate"}},
		{cl("", `, redirect = "unauthorized"`), []string{"clusters.a.https_redirect_port"}},
		{cl("", `, required_auth = true`), []string{"clusters.a.https_redirect_port"}},
		{cl("https_redirect = true", `, required_auth = true`), nil},
		// On HTTPS listeners only, https_redirect never fires.
		{"[[listeners]]\nprotocol = \"https\"\naddress = \"127.0.0.1:8080\"\n" + cl("https_redirect = true", `, required_auth = true`),
			[]string{"clusters.a.https_redirect_port", "clusters.a.https_redirect"}},
	}
	for _, tc := range cases {
		checkWarned(t, "unused.toml", tc.toml, tc.want, func(w Warning) bool { return w.Line == 0 || w.Class != Unused })
	}
}

// checkWarned parses toml as the file path and checks that it warns about
// the keys want, in this order, and that bad holds for none of the
// warnings (each names what it wants of them: a position, a reason…).
func checkWarned(t *testing.T, path, toml string, want []string, bad func(Warning) bool) {
	t.Helper()
	c, err := Parse([]byte(toml), path)
	if err != nil {
		t.Fatalf("%s: %v", toml, err)
	}
	var got []string
	for _, w := range c.Warnings {
		got = append(got, w.Key)
		if bad(w) {
			t.Errorf("%s: warning without the position, file, class or reason this case wants: %s", toml, w)
		}
	}
	if !slices.Equal(got, want) {
		t.Errorf("%s:\nwarned about %v, want %v", toml, got, want)
	}
}
