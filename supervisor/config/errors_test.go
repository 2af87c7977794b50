package config

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

// listen is a prefix declaring the listeners most cases route to.
const listen = `
[[listeners]]
protocol = "http"
address = "0.0.0.0:8080"

[[listeners]]
protocol = "https"
address = "0.0.0.0:8443"

[[listeners]]
protocol = "tcp"
address = "0.0.0.0:5432"
`

// TestErrors checks, for each bad configuration, the complete list of
// problems reported (one expected line per problem, in order). Files are
// named relative to the package directory, as the snippet's path is t.toml.
func TestErrors(t *testing.T) {
	cases := []struct {
		name string
		toml string
		want []string
	}{
		{
			name: "syntax error has line and column",
			toml: "worker_count = 2\nlog_level = \n",
			want: []string{`t.toml:2:13: syntax error: expected value but found '\n' instead`},
		},
		{
			name: "security keys",
			toml: "sandbox_mode = \"lax\"\ncommand_readonly_uids = []\ncommand_socket_group = \" \"\nworker_user = \"\"\n",
			want: []string{
				`t.toml:1:16: sandbox_mode: invalid sandbox mode "lax": want kill, errno or off`,
				`t.toml:2:25: command_readonly_uids: an empty list grants nothing; leave the key out instead`,
				`t.toml:3:24: command_socket_group: must name a group; leave the key out to keep the socket 0600`,
				`t.toml:4:15: worker_user: must name a user (or a numeric uid)`,
			},
		},
		{
			name: "unknown key with suggestion",
			toml: "worker_count = 2\n  worker_cout = 3\n",
			want: []string{`t.toml:2:3: worker_cout: unknown key (did you mean "worker_count"?)`},
		},
		{
			name: "a number TOML cannot hold names its key",
			toml: "[[listeners]]\nprotocol = \"http\"\naddress = \"0.0.0.0:80\"\nh2_max_concurrent_streams = 99999999999999999999\n",
			want: []string{`t.toml:4:29: listeners.h2_max_concurrent_streams: 99999999999999999999 is out of range for int64 (TOML numbers are 64-bit)`},
		},
		{
			name: "a key in the wrong table names its table",
			toml: "h2_max_concurrent_streams = 10\ntagged_metrics = true\n\n[[listeners]]\nprotocol = \"http\"\n" +
				"address = \"0.0.0.0:80\"\nlog_level = \"info\"\nsticky_session = true\n\n[clusters.a]\nprotocol = \"http\"\n" +
				"hostname = \"a.test\"\nexpected_status = 200\n",
			want: []string{
				`t.toml:1:1: h2_max_concurrent_streams: unknown key (a key of [[listeners]], not of this table)`,
				`t.toml:2:1: tagged_metrics: unknown key (a key of [metrics], not of this table)`,
				`t.toml:7:1: listeners[0].log_level: unknown key (a key of the top level, not of this table)`,
				`t.toml:8:1: listeners[0].sticky_session: unknown key (a key of [clusters.<id>], not of this table)`,
				`t.toml:12:1: clusters.a.hostname: unknown key (a key of a cluster's frontends, not of this table)`,
				`t.toml:13:1: clusters.a.expected_status: unknown key (a key of [clusters.<id>.health_check], not of this table)`,
			},
		},
		{
			name: "unknown key in the second element of an array of tables",
			toml: "[[listeners]]\nprotocol = \"http\"\naddress = \"0.0.0.0:80\"\n\n[[listeners]]\nprotocol = \"http\"\nadress = \"0.0.0.0:81\"\n",
			want: []string{
				`t.toml:5:1: listeners[1]: missing required key "address"`,
				`t.toml:7:1: listeners[1].adress: unknown key (did you mean "address"?)`,
			},
		},
		{
			name: "wrong type",
			toml: "worker_count = \"two\"\nactivate_listeners = 1\n",
			want: []string{
				`t.toml:1:16: worker_count: expected an integer, found a string`,
				`t.toml:2:22: activate_listeners: expected a boolean, found an integer`,
			},
		},
		{
			name: "invalid address in an inline array names the element",
			toml: listen + `
[clusters.shop]
protocol = "http"
backends = [
  { address = "10.0.0.1:80" },
  { address = "10.0.0.2" },
]`,
			want: []string{`t.toml:18:15: clusters.shop.backends[1].address: invalid socket address "10.0.0.2": want ip:port or [ipv6]:port`},
		},
		{
			name: "invalid enumeration value",
			toml: listen + "\n[clusters.shop]\nprotocol = \"http\"\nload_balancing = \"FASTEST\"\n",
			want: []string{`t.toml:16:18: clusters.shop.load_balancing: invalid load balancing algorithm "FASTEST": want one of "ROUND_ROBIN", "RANDOM", "LEAST_LOADED", "POWER_OF_TWO", "HRW", "MAGLEV"`},
		},
		{
			name: "out of range integer",
			toml: listen + "\n[clusters.shop]\nprotocol = \"http\"\nbackends = [{ address = \"10.0.0.1:80\", weight = 300 }]\n",
			want: []string{`t.toml:16:49: clusters.shop.backends[0].weight: 300 is out of range 0-255`},
		},
		{
			name: "duplicate listener address",
			toml: listen + "\n[[listeners]]\nprotocol = \"https\"\naddress = \"0.0.0.0:8080\"\n",
			want: []string{`t.toml:16:11: listeners[3].address: 0.0.0.0:8080 is already used by listeners[0]`},
		},
		{
			// The first frontend at an address without a listener makes it
			// http (see TestImplicitListeners); a certificate there is refused.
			name: "frontends without a listener that disagree on its protocol",
			toml: listen + "\n[clusters.shop]\nprotocol = \"http\"\nfrontends = [{ address = \"0.0.0.0:9090\", hostname = \"a\" }, { address = \"0.0.0.0:9090\", hostname = \"b\", certificate = \"testdata/tls/cert.pem\", key = \"testdata/tls/key.pem\" }]\n",
			want: []string{
				`t.toml:16:104: clusters.shop.frontends[1].certificate: only valid on an https listener; 0.0.0.0:9090 (clusters.shop.frontends[0]) is http`,
				`t.toml:16:143: clusters.shop.frontends[1].key: only valid on an https listener; 0.0.0.0:9090 (clusters.shop.frontends[0]) is http`,
			},
		},
		{
			name: "http frontend on a tcp listener",
			toml: listen + "\n[clusters.shop]\nprotocol = \"http\"\nfrontends = [{ address = \"0.0.0.0:5432\", hostname = \"a\" }]\n",
			want: []string{`t.toml:16:26: clusters.shop.frontends[0].address: 0.0.0.0:5432 is a tcp listener (listeners[2]); an http cluster needs an http or https listener`},
		},
		{
			name: "certificate without key",
			toml: listen + "\n[[clusters.shop.frontends]]\naddress = \"0.0.0.0:8443\"\nhostname = \"shop.example.com\"\ncertificate = \"testdata/tls/cert.pem\"\n[clusters.shop]\nprotocol = \"http\"\n",
			want: []string{`t.toml:17:15: clusters.shop.frontends[0].certificate: has no key: set key to the private key file`},
		},
		{
			name: "certificate on an http listener",
			toml: listen + "\n[clusters.shop]\nprotocol = \"http\"\nfrontends = [{ address = \"0.0.0.0:8080\", hostname = \"a\", certificate = \"testdata/tls/cert.pem\", key = \"testdata/tls/key.pem\" }]\n",
			want: []string{
				`t.toml:16:58: clusters.shop.frontends[0].certificate: only valid on an https listener; 0.0.0.0:8080 (listeners[0]) is http`,
				`t.toml:16:97: clusters.shop.frontends[0].key: only valid on an https listener; 0.0.0.0:8080 (listeners[0]) is http`,
			},
		},
		{
			name: "certificate and key that do not match",
			toml: listen + "\n[clusters.shop]\nprotocol = \"http\"\nfrontends = [{ address = \"0.0.0.0:8443\", hostname = \"a\", certificate = \"testdata/tls/cert.pem\", key = \"testdata/tls/other-key.pem\" }]\n",
			want: []string{`t.toml:16:72: clusters.shop.frontends[0].certificate: testdata/tls/cert.pem and testdata/tls/other-key.pem are not a usable certificate and key: private key does not match public key`},
		},
		{
			name: "tcp cluster with a hostname",
			toml: listen + "\n[clusters.db]\nprotocol = \"tcp\"\nfrontends = [{ address = \"0.0.0.0:5432\", hostname = \"db\" }]\n",
			want: []string{`t.toml:16:42: clusters.db.frontends[0].hostname: only valid for http clusters, not tcp`},
		},
		{
			name: "duplicate backend ids",
			toml: listen + `
[clusters.shop]
protocol = "http"
backends = [
  { address = "10.0.0.1:80", backend_id = "one" },
  { address = "10.0.0.2:80", backend_id = "one" },
]`,
			want: []string{`t.toml:18:43: clusters.shop.backends[1].backend_id: backend id "one" is already used by clusters.shop.backends[0]`},
		},
		{
			name: "prometheus addresses",
			toml: "[metrics]\nprometheus_address = \"localhost:9100\"\n",
			want: []string{`t.toml:2:22: metrics.prometheus_address: invalid address "localhost:9100": want ip:port (a port from 1 to 65535) or unix:/absolute/path`},
		},
		{
			name: "prometheus address without a port, relative unix path",
			toml: "[metrics]\nprometheus_address = \"unix:run/m.sock\"\n",
			want: []string{`t.toml:2:22: metrics.prometheus_address: unix socket path "run/m.sock" is not absolute`},
		},
		{
			name: "metrics with neither address",
			toml: "[metrics]\nprefix = \"p\"\n",
			want: []string{`t.toml:1:1: metrics: missing required key "address" (or "prometheus_address")`},
		},
		{
			name: "backend and metrics addresses that cannot be reached",
			toml: "[metrics]\naddress = \"0.0.0.0:8125\"\n[clusters.a]\nprotocol = \"tcp\"\nbackends = [{ address = \"0.0.0.0:80\" }, { address = \"10.0.0.1:0\" }]\n",
			want: []string{
				`t.toml:2:11: metrics.address: 0.0.0.0:8125 is not an address to send to`,
				`t.toml:5:25: clusters.a.backends[0].address: 0.0.0.0:80 is not an address to connect to`,
				`t.toml:5:53: clusters.a.backends[1].address: 10.0.0.1:0 is not an address to connect to`,
			},
		},
		{
			name: "statsd prefix that would forge lines",
			toml: "[metrics]\naddress = \"127.0.0.1:8125\"\nprefix = \"pre fix:1|c\\nevil\"\n",
			want: []string{`t.toml:3:10: metrics.prefix: "pre fix:1|c\nevil" may not hold whitespace, control characters or any of : | , = @ # (they would forge statsd lines)`},
		},
		{
			name: "log targets without a usable port",
			toml: "log_target = \"udp://127.0.0.1:70000\"\naccess_logs_target = \"tcp://127.0.0.1\"\n",
			want: []string{
				`t.toml:1:14: log_target: invalid log target "udp://127.0.0.1:70000": want udp://host:port, with a port from 1 to 65535`,
				`t.toml:2:22: access_logs_target: invalid log target "tcp://127.0.0.1": want tcp://host:port, with a port from 1 to 65535`,
			},
		},
		{
			name: "unix log target with a path longer than sun_path",
			toml: "log_target = \"unix:///run/" + strings.Repeat("l", 100) + ".sock\"\n",
			want: []string{`t.toml:1:14: log_target: invalid log target "unix:///run/` + strings.Repeat("l", 100) +
				`.sock": socket path is 110 bytes long; unix sockets allow at most 107`},
		},
		{
			name: "worker count and buffer sizes",
			toml: "worker_count = 0\ncommand_buffer_size = 20000\nmax_command_buffer_size = 17000\n",
			want: []string{
				`t.toml:1:16: worker_count: must be between 1 and 64, not 0`,
				`t.toml:3:27: max_command_buffer_size: must be at least command_buffer_size (20000): upstream refuses a maximum below command_buffer_size, and so does this proxy, though command_buffer_size sizes no buffer here`,
			},
		},
		{
			// No floor upstream: below some 64 bytes the supervisor did not
			// start ("worker 0: sending ServerConfig: frame length 64
			// exceeds maximum 20"); below a few KiB it could not carry a
			// certificate.
			name: "maximum below the floor",
			toml: "command_buffer_size = 100\nmax_command_buffer_size = 100\n",
			want: []string{"t.toml:2:27: max_command_buffer_size: must be at least 16384 bytes: every frame on the command socket and the worker channels must fit it, and a smaller maximum cannot carry a certificate with its key and chain (below some 64 bytes, not even a worker's start)"},
		},
		{
			name: "command buffer larger than the default maximum",
			toml: "worker_count = 65\ncommand_buffer_size = 3000000\n",
			want: []string{
				`t.toml:1:16: worker_count: must be between 1 and 64, not 65`,
				`t.toml:2:23: command_buffer_size: is larger than max_command_buffer_size (2000000 by default): upstream refuses a maximum below command_buffer_size, and so does this proxy, though command_buffer_size sizes no buffer here; leave it out, or raise max_command_buffer_size`,
			},
		},
		{
			// command_buffer_size unwritten: its default (the size of
			// nothing here) is the floor, and the message says what it is.
			name: "maximum below command_buffer_size's default",
			toml: "max_command_buffer_size = 500000\n",
			want: []string{"t.toml:1:27: max_command_buffer_size: must be at least 1000000 bytes (command_buffer_size's default): upstream refuses a maximum below command_buffer_size, and so does this proxy, though command_buffer_size sizes no buffer here"},
		},
		{
			name: "worker threads beyond the maximum",
			toml: "worker_threads = 257\n",
			want: []string{`t.toml:1:18: worker_threads: must be between 0 (one per CPU) and 256, not 257`},
		},
		{
			name: "zero timeouts",
			toml: "front_timeout = 0\nworker_timeout = 0\nsoft_stop_deadline = 0\n[[listeners]]\nprotocol = \"tcp\"\naddress = \"0.0.0.0:1\"\nconnect_timeout = 0\n",
			want: []string{
				`t.toml:1:17: front_timeout: must be at least 1 (seconds)`,
				`t.toml:2:18: worker_timeout: must be at least 1 (seconds)`,
				`t.toml:3:22: soft_stop_deadline: must be at least 1 (seconds)`,
				`t.toml:7:19: listeners[0].connect_timeout: must be at least 1 (seconds)`,
			},
		},
		{
			name: "h2 knobs out of range",
			toml: "[[listeners]]\nprotocol = \"https\"\naddress = \"0.0.0.0:443\"\nh2_max_concurrent_streams = 10001\nh2_stream_shrink_ratio = 1\nh2_max_ping_per_window = 0\n",
			want: []string{
				`t.toml:4:29: listeners[0].h2_max_concurrent_streams: must be at most 10000 (upstream clamps larger values to it)`,
				`t.toml:5:26: listeners[0].h2_stream_shrink_ratio: must be at least 2`,
				`t.toml:6:26: listeners[0].h2_max_ping_per_window: must be at least 1`,
			},
		},
		{
			name: "unreadable answer file names the key",
			toml: "[[listeners]]\nprotocol = \"http\"\naddress = \"0.0.0.0:80\"\nanswer_404 = \"testdata/answers/missing.http\"\n",
			want: []string{`t.toml:4:14: listeners[0].answer_404: cannot read testdata/answers/missing.http: no such file or directory`},
		},
		{
			name: "automatic state save needs a file",
			toml: "automatic_state_save = true\n",
			want: []string{`t.toml:1:24: automatic_state_save: needs saved_state, the file to save to`},
		},
		{
			name: "old TLS version, h2 buffer, disable_http11 with default ALPN",
			toml: "buffer_size = 8192\n[[listeners]]\nprotocol = \"https\"\naddress = \"0.0.0.0:443\"\ntls_versions = [\"TLS_V12\", \"TLS_V11\"]\ndisable_http11 = true\n",
			want: []string{
				`t.toml:1:15: buffer_size: 8192 is below 16393, the smallest buffer holding a full HTTP/2 frame, and listeners[0] offer h2; raise buffer_size or drop h2 from alpn_protocols`,
				`t.toml:5:28: listeners[0].tls_versions[1]: TLS_V11 is not supported: only TLS_V12 and TLS_V13 are`,
				`t.toml:6:18: listeners[0].disable_http11: conflicts with "http/1.1" in alpn_protocols (the default list has it): set alpn_protocols = ["h2"]`,
			},
		},
		{
			name: "keys outside their listener's protocol",
			toml: "[[listeners]]\nprotocol = \"tcp\"\naddress = \"0.0.0.0:1\"\nsticky_name = \"X\"\ncertificate = \"c.pem\"\n",
			want: []string{
				`t.toml:4:1: listeners[0].sticky_name: only valid for http and https listeners, not tcp`,
				`t.toml:5:1: listeners[0].certificate: only valid for https listeners, not tcp`,
			},
		},
		{
			name: "missing protocol, public address with expect_proxy",
			toml: "[[listeners]]\naddress = \"0.0.0.0:1\"\n[[listeners]]\nprotocol = \"http\"\naddress = \"0.0.0.0:2\"\nexpect_proxy = true\npublic_address = \"1.2.3.4:80\"\n",
			want: []string{
				`t.toml:1:1: listeners[0]: missing required key "protocol"`,
				`t.toml:7:18: listeners[1].public_address: cannot be combined with expect_proxy: the PROXY header gives the address`,
			},
		},
		{
			name: "same route twice across clusters",
			toml: listen + `
[clusters.a]
protocol = "http"
frontends = [{ address = "0.0.0.0:8080", hostname = "x", path = "/p" }]
[clusters.b]
protocol = "http"
frontends = [{ address = "0.0.0.0:8080", hostname = "x", path = "/p" }]
`,
			want: []string{`t.toml:19:14: clusters.b.frontends[0]: same address, hostname, path and method as clusters.a.frontends[0]`},
		},
		{
			name: "tcp listener shared by two clusters",
			toml: listen + `
[clusters.a]
protocol = "tcp"
frontends = [{ address = "0.0.0.0:5432" }]
[clusters.b]
protocol = "tcp"
frontends = [{ address = "0.0.0.0:5432" }]
`,
			want: []string{`t.toml:19:26: clusters.b.frontends[0].address: the tcp listener at 0.0.0.0:5432 already serves clusters.a.frontends[0]`},
		},
		{
			name: "bad regex, header position, answers key, quoted cluster id",
			toml: listen + `
[clusters."my.app"]
protocol = "http"
answers = { "5xx" = "x" }
[[clusters."my.app".frontends]]
address = "0.0.0.0:8080"
hostname = "x"
path = "(["
path_type = "REGEX"
headers = [{ position = "sideways", key = "a", value = "b" }]
`,
			want: []string{
				`t.toml:16:13: clusters."my.app".answers.5xx: answer keys are HTTP status codes (100-599), not "5xx"`,
				"t.toml:20:8: clusters.\"my.app\".frontends[0].path: invalid regular expression: error parsing regexp: missing closing ]: `[`",
				`t.toml:22:25: clusters."my.app".frontends[0].headers[0].position: invalid header position "sideways": want one of "request", "response", "both"`,
			},
		},
		{
			name: "table where a value is expected, and the reverse",
			toml: "metrics = \"127.0.0.1:8125\"\n[log_level]\nx = 1\n",
			want: []string{
				`t.toml:1:11: metrics: expected a table, found a string`,
				`t.toml:2:1: log_level: expected a string, found a table`,
			},
		},
		{
			name: "health check",
			toml: listen + "\n[clusters.a]\nprotocol = \"http\"\nhealth_check = { uri = \"health\", interval = 0, expected_status = 42 }\n",
			want: []string{
				`t.toml:16:24: clusters.a.health_check.uri: "health" must be a path starting with / and without spaces`,
				`t.toml:16:45: clusters.a.health_check.interval: must be at least 1`,
				`t.toml:16:66: clusters.a.health_check.expected_status: must be 0 (any 2xx) or an HTTP status (100-599)`,
			},
		},
		{
			// The api frontend of testdata/full.toml before it was fixed:
			// workers answered 404 for it, and the operator never knew.
			name: "captures the rule lacks, settings a redirect ignores",
			toml: listen + `
[[clusters.api.frontends]]
address = "0.0.0.0:8443"
hostname = "api.shop.example.com"
path = "^/v[0-9]+/"
path_type = "REGEX"
redirect = "permanent"
redirect_scheme = "use-https"
rewrite_host = "$HOST[1].internal"
rewrite_path = "/$PATH[1]"
rewrite_port = 8443
required_auth = true

[[clusters.api.frontends.headers]]
position = "request"
key = "X-Forwarded-Proto"
value = "https"

[clusters.api]
protocol = "http"
`,
			want: []string{
				`t.toml:21:16: clusters.api.frontends[0].rewrite_host: "$HOST[1].internal": $HOST[1]: hostname "api.shop.example.com" has captures $HOST[0] to $HOST[0]`,
				`t.toml:22:16: clusters.api.frontends[0].rewrite_path: "/$PATH[1]": $PATH[1]: path rule "^/v[0-9]+/" has captures $PATH[0] to $PATH[0]`,
				`t.toml:24:17: clusters.api.frontends[0].required_auth: has no effect: the frontend redirects`,
				`t.toml:26:1: clusters.api.frontends[0].headers: has no effect: the frontend redirects`,
			},
		},
		{
			name: "header edits: control characters, fields the proxy keeps, indices as in the file",
			toml: listen + `
[clusters.a]
protocol = "http"
authorized_hashes = ["u:` + strings.Repeat("0", 64) + `"]
[[clusters.a.frontends]]
address = "0.0.0.0:8080"
hostname = "a.test"
rewrite_port = 8080
headers = [
  { position = "request", key = "X-A" },
  { position = "response", key = "X-B", value = "1\r\nSet-Cookie: x=1" },
  { position = "both", key = "Connection", value = "" },
  { position = "request", key = "X-Forwarded-Host", value = "" },
  { position = "request", key = "X A", value = "1" },
  { position = "response", key = "Strict-Transport-Security", value = "max-age=1" },
  { position = "request", key = "X-Request-Id", value = "" },
]
`,
			want: []string{
				`t.toml:22:3: clusters.a.frontends[0].headers[0]: missing required key "value"`,
				`t.toml:23:49: clusters.a.frontends[0].headers[1].value: control character "\r" in the value of X-B`,
				`t.toml:24:30: clusters.a.frontends[0].headers[2].key: Connection cannot be edited in requests: a hop-by-hop field`,
				`t.toml:25:33: clusters.a.frontends[0].headers[3].key: X-Forwarded-Host cannot be edited in requests: the proxy writes this field when it rewrites the host`,
				`t.toml:26:33: clusters.a.frontends[0].headers[4].key: "X A" is not a field name`,
				`t.toml:27:34: clusters.a.frontends[0].headers[5].key: Strict-Transport-Security cannot be edited in responses: use the hsts setting`,
				`t.toml:28:33: clusters.a.frontends[0].headers[6].key: X-Request-Id cannot be edited in requests: the proxy writes this field`,
			},
		},
		{
			name: "an edit of the listener's own request id field",
			toml: "[[listeners]]\nprotocol = \"http\"\naddress = \"0.0.0.0:80\"\nsozu_id_header = \"X-Trace\"\n" + `
[clusters.a]
protocol = "http"
frontends = [{ address = "0.0.0.0:80", hostname = "a", headers = [{ position = "response", key = "x-trace", value = "" }] }]
`,
			want: []string{`t.toml:8:98: clusters.a.frontends[0].headers[0].key: x-trace cannot be edited in responses: the proxy writes the request id field`},
		},
		{
			name: "authorized_hashes by index, never by content; www_authenticate",
			toml: listen + `
[clusters.a]
protocol = "http"
authorized_hashes = [
  "ok:` + strings.Repeat("0", 64) + `",
  "secret-without-colon",
  "a:b:` + strings.Repeat("0", 64) + `",
  "c:` + strings.Repeat("f", 66) + `",
]
www_authenticate = "Basic realm=\"a\"\r\nX: 1"
`,
			want: []string{
				`t.toml:18:3: clusters.a.authorized_hashes[1]: no ':' between the user name and the password hash`,
				`t.toml:19:3: clusters.a.authorized_hashes[2]: a basic-auth user name has no ':'`,
				`t.toml:20:3: clusters.a.authorized_hashes[3]: the password hash is not 64 hexadecimal digits (the SHA-256 of the password)`,
				`t.toml:22:20: clusters.a.www_authenticate: control character "\r"`,
			},
		},
		{
			name: "redirect templates, required_auth without accounts, settings without effect",
			toml: listen + `
[clusters.a]
protocol = "http"
frontends = [
  { address = "0.0.0.0:8080", hostname = "a", redirect = "found", redirect_template = "HTTP/1.1 3xx Moved\n\n" },
  { address = "0.0.0.0:8080", hostname = "b", redirect = "found", redirect_template = "HTTP/1.1 200 OK\n\n" },
  { address = "0.0.0.0:8080", hostname = "c", redirect_template = "moved" },
  { address = "0.0.0.0:8080", hostname = "d", required_auth = true },
  { address = "0.0.0.0:8080", hostname = "e", redirect = "unauthorized", rewrite_path = "/x" },
  { address = "0.0.0.0:8080", hostname = "f", redirect_scheme = "use-https" },
]
`,
			want: []string{
				`t.toml:17:87: clusters.a.frontends[0].redirect_template: answer 302: line 1: status line "HTTP/1.1 3xx Moved" has no status code in 100-599`,
				`t.toml:18:87: clusters.a.frontends[1].redirect_template: answers 200, not a redirection`,
				`t.toml:19:67: clusters.a.frontends[2].redirect_template: has no effect: the frontend does not redirect`,
				`t.toml:20:63: clusters.a.frontends[3].required_auth: cluster a has no authorized_hashes: every request answers 401`,
				`t.toml:21:89: clusters.a.frontends[4].rewrite_path: has no effect: the frontend answers 401 to every request`,
				`t.toml:22:65: clusters.a.frontends[5].redirect_scheme: has no effect: the frontend does not redirect`,
			},
		},
		{
			name: "a hostname the router cannot match",
			toml: listen + "\n[clusters.a]\nprotocol = \"http\"\nfrontends = [{ address = \"0.0.0.0:8080\", hostname = \"a.*.test\" }]\n",
			want: []string{`t.toml:16:53: clusters.a.frontends[0].hostname: '*' is allowed only as "*" or as the whole first label`},
		},
		{
			name: "answer templates workers cannot compile",
			toml: `
[[listeners]]
protocol = "http"
address = "0.0.0.0:80"
answer_404 = "testdata/answers/503.http"
answers = { "502" = "HTTP/1.1 50 x\n\n", "503" = "fine" }
[clusters.a]
protocol = "http"
answer_503 = "testdata/answers/bad.http"
answers = { "504" = "HTTP/1.1 504 Gateway Timeout\nbad line\n\n" }
`,
			want: []string{
				`t.toml:6:21: listeners[0].answers.502: answer 502: line 1: status line "HTTP/1.1 50 x" has no status code in 100-599`,
				`t.toml:9:14: clusters.a.answer_503: answer 503: line 2: not a field line "oops"`,
				`t.toml:10:21: clusters.a.answers.504: answer 504: line 2: not a field line "bad line"`,
			},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Parse([]byte(tc.toml), "t.toml")
			if err == nil {
				t.Fatalf("Parse accepted the configuration (%d requests)", len(c.Requests()))
			}
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("error does not match ErrInvalid")
			}
			var errs Errors
			if !errors.As(err, &errs) {
				t.Fatalf("error is a %T, want Errors", err)
			}
			got := strings.Split(err.Error(), "\n")
			if strings.Join(got, "\n") != strings.Join(tc.want, "\n") {
				t.Errorf("errors:\n%s\nwant:\n%s", err, strings.Join(tc.want, "\n"))
			}
		})
	}
}

// TestErrorFields checks the structured form of one error.
func TestErrorFields(t *testing.T) {
	_, err := Parse([]byte("[metrics]\naddress = \"nowhere\"\n"), "/etc/sozu/config.toml")
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("err = %v", err)
	}
	want := Error{File: "/etc/sozu/config.toml", Line: 2, Col: 11, Key: "metrics.address",
		Msg: `invalid socket address "nowhere": want ip:port or [ipv6]:port`}
	if e.File != want.File || e.Line != want.Line || e.Col != want.Col || e.Key != want.Key || e.Msg != want.Msg {
		t.Errorf("got %+v\nwant %+v", *e, want)
	}
}

// TestKeyTablesComplete: every table a configuration file can hold (each
// raw struct reachable from rawConfig) is in keyTables, so that a key
// written in the wrong table is named as another table's, whichever it is.
func TestKeyTablesComplete(t *testing.T) {
	listed := map[reflect.Type]bool{}
	for _, kt := range keyTables {
		listed[kt.t] = true
	}
	seen := map[reflect.Type]bool{}
	var walk func(reflect.Type)
	walk = func(rt reflect.Type) {
		for rt.Kind() == reflect.Pointer || rt.Kind() == reflect.Slice || rt.Kind() == reflect.Map {
			rt = rt.Elem()
		}
		if rt.Kind() != reflect.Struct || !strings.HasPrefix(rt.Name(), "raw") || seen[rt] {
			return
		}
		seen[rt] = true
		if !listed[rt] {
			t.Errorf("%s decodes a table of the file but is not in keyTables", rt.Name())
		}
		for i := range rt.NumField() {
			walk(rt.Field(i).Type)
		}
	}
	walk(reflect.TypeOf(rawConfig{}))
	if len(seen) != len(keyTables) {
		t.Errorf("%d tables reachable from rawConfig, %d in keyTables", len(seen), len(keyTables))
	}
}
