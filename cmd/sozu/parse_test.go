package main

import (
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/prototext"
	"google.golang.org/protobuf/proto"

	"github.com/sozu-go/sozu/proto/command"
)

// addrRE lets expected requests write addresses as addr(ip:port).
var addrRE = regexp.MustCompile(`addr\(([^)]*)\)`)

// wantRequest parses an expected request written in prototext, with
// addr(ip:port) standing for a SocketAddress message.
func wantRequest(t *testing.T, text string) *command.Request {
	t.Helper()
	var bad error
	text = addrRE.ReplaceAllStringFunc(text, func(m string) string {
		sa, err := command.ParseSocketAddress(addrRE.FindStringSubmatch(m)[1])
		if err != nil {
			bad = err
			return ""
		}
		b, _ := prototext.MarshalOptions{}.Marshal(sa)
		return "{" + string(b) + "}"
	})
	if bad != nil {
		t.Fatal(bad)
	}
	r := &command.Request{}
	if err := prototext.Unmarshal([]byte(text), r); err != nil {
		t.Fatalf("bad expected request %q: %v", text, err)
	}
	return r
}

func TestParseRequests(t *testing.T) {
	tests := []struct {
		line string
		want string // prototext of the Request
	}{
		{"status", `status:{}`},
		{"-j status", `status:{}`},
		{"status --json -c /x.toml -t 5", `status:{}`},
		{"cluster list", `query_clusters_hashes:{}`},
		{"events", `subscribe_events:{}`},
		{"events -j", `subscribe_events:{}`},
		{"logging info", `Logging:"info"`},
		{"logging warn,sozu::http=debug", `Logging:"warn,sozu::http=debug"`},
		{"logging -- off", `Logging:"off"`},
		{"cluster list --id shop", `query_cluster_by_id:"shop"`},
		{"cluster list -i shop", `query_cluster_by_id:"shop"`},
		{"cluster list --id=shop", `query_cluster_by_id:"shop"`},
		{"cluster list --domain example.com", `query_clusters_by_domain:{hostname:"example.com"}`},
		{"cluster list -d example.com/api/v1", `query_clusters_by_domain:{hostname:"example.com" path:"/api/v1"}`},
		{"cluster add --id shop",
			`add_cluster:{cluster_id:"shop" sticky_session:false https_redirect:false load_balancing:ROUND_ROBIN}`},
		{"cluster add --id shop --load-balancing-policy power_of_two --sticky-session --https-redirect --send-proxy --load-metric requests",
			`add_cluster:{cluster_id:"shop" sticky_session:true https_redirect:true proxy_protocol:SEND_HEADER load_balancing:POWER_OF_TWO load_metric:REQUESTS}`},
		{"cluster add --id shop --load-balancing-policy LEAST-LOADED --expect-proxy -s=false",
			`add_cluster:{cluster_id:"shop" sticky_session:false https_redirect:false proxy_protocol:EXPECT_HEADER load_balancing:LEAST_LOADED}`},
		{"cluster add --id shop --load-balancing-policy roundrobin --http2 --https-redirect-port 8443 --retry-after 5 --max-connections-per-ip 10",
			`add_cluster:{cluster_id:"shop" sticky_session:false https_redirect:false load_balancing:ROUND_ROBIN http2:true https_redirect_port:8443 max_connections_per_ip:10 retry_after:5}`},
		{"cluster add --id shop --www-authenticate shop --authorized-hash a:" + strings.Repeat("ab", 32) + " --authorized-hash b:" + strings.Repeat("CD", 32),
			`add_cluster:{cluster_id:"shop" sticky_session:false https_redirect:false load_balancing:ROUND_ROBIN www_authenticate:"shop" authorized_hashes:"a:` + strings.Repeat("ab", 32) + `" authorized_hashes:"b:` + strings.Repeat("CD", 32) + `"}`},
		{"cluster remove --id shop", `remove_cluster:"shop"`},
		{"backend add --id shop --backend-id shop-0 --address 10.0.0.10:8000",
			`add_backend:{cluster_id:"shop" backend_id:"shop-0" address:addr(10.0.0.10:8000)}`},
		{"backend add -i shop --backend-id b -a [2001:db8::1]:443 --sticky-id s1 --backup --weight 50",
			`add_backend:{cluster_id:"shop" backend_id:"b" address:addr([2001:db8::1]:443) sticky_id:"s1" load_balancing_parameters:{weight:50} backup:true}`},
		{"backend remove --id shop --backend-id b --address 10.0.0.10:8000",
			`remove_backend:{cluster_id:"shop" backend_id:"b" address:addr(10.0.0.10:8000)}`},
		{"frontend http add --address 0.0.0.0:80 --hostname example.com --id shop",
			`add_http_frontend:{cluster_id:"shop" address:addr(0.0.0.0:80) hostname:"example.com" path:{kind:PREFIX value:""} position:TREE}`},
		{"frontend http add --address 0.0.0.0:80 --hostname example.com",
			`add_http_frontend:{address:addr(0.0.0.0:80) hostname:"example.com" path:{kind:PREFIX value:""} position:TREE}`},
		{"frontend https add --address 0.0.0.0:443 --hostname *.example.com --path-regex ^/a+$ --method GET --id shop --tags env=prod,owner=a --tags x=1",
			`add_https_frontend:{cluster_id:"shop" address:addr(0.0.0.0:443) hostname:"*.example.com" path:{kind:REGEX value:"^/a+$"} method:"GET" position:TREE tags:{key:"env" value:"prod"} tags:{key:"owner" value:"a"} tags:{key:"x" value:"1"}}`},
		{"frontend http remove --address 0.0.0.0:80 --hostname example.com --path-equals /x",
			`remove_http_frontend:{address:addr(0.0.0.0:80) hostname:"example.com" path:{kind:EQUALS value:"/x"} position:TREE}`},
		{"frontend https remove --address 0.0.0.0:443 --hostname example.com -p /api --id shop",
			`remove_https_frontend:{cluster_id:"shop" address:addr(0.0.0.0:443) hostname:"example.com" path:{kind:PREFIX value:"/api"} position:TREE}`},
		{"frontend tcp add --address 0.0.0.0:5432 --id db --tags k=v",
			`add_tcp_frontend:{cluster_id:"db" address:addr(0.0.0.0:5432) tags:{key:"k" value:"v"}}`},
		{"frontend tcp remove --address 0.0.0.0:5432 --id db",
			`remove_tcp_frontend:{cluster_id:"db" address:addr(0.0.0.0:5432)}`},
		{"frontend list", `list_frontends:{http:true https:true tcp:true}`},
		{"frontend list --https --domain example", `list_frontends:{http:false https:true tcp:false domain:"example"}`},
		{"listener http add --address 0.0.0.0:80",
			`add_http_listener:{address:addr(0.0.0.0:80) expect_proxy:false sticky_name:"SOZUBALANCEID" front_timeout:60 back_timeout:30 connect_timeout:3 request_timeout:10 active:false}`},
		{"listener http add --address 0.0.0.0:80 --public-address 1.2.3.4:80 --expect-proxy --sticky-name S --front-timeout 1 --back-timeout 2 --connect-timeout 3 --request-timeout 4",
			`add_http_listener:{address:addr(0.0.0.0:80) public_address:addr(1.2.3.4:80) expect_proxy:true sticky_name:"S" front_timeout:1 back_timeout:2 connect_timeout:3 request_timeout:4 active:false}`},
		{"listener https add --address [::]:443",
			`add_https_listener:{address:addr([::]:443) expect_proxy:false sticky_name:"SOZUBALANCEID" front_timeout:60 back_timeout:30 connect_timeout:3 request_timeout:10 active:false versions:TLS_V1_2 versions:TLS_V1_3 send_tls13_tickets:4}`},
		{"listener https add --address 0.0.0.0:443 --tls-versions TLSv1.3",
			`add_https_listener:{address:addr(0.0.0.0:443) expect_proxy:false sticky_name:"SOZUBALANCEID" front_timeout:60 back_timeout:30 connect_timeout:3 request_timeout:10 active:false versions:TLS_V1_3 send_tls13_tickets:4}`},
		{"listener tcp add --address 0.0.0.0:5432 --back-timeout 300",
			`add_tcp_listener:{address:addr(0.0.0.0:5432) expect_proxy:false front_timeout:60 back_timeout:300 connect_timeout:3 active:false}`},
		{"listener http remove --address 0.0.0.0:80", `remove_listener:{address:addr(0.0.0.0:80) proxy:HTTP}`},
		{"listener https activate -a 0.0.0.0:443", `activate_listener:{address:addr(0.0.0.0:443) proxy:HTTPS from_scm:false}`},
		{"listener tcp deactivate --address 0.0.0.0:5432", `deactivate_listener:{address:addr(0.0.0.0:5432) proxy:TCP to_scm:false}`},
		{"listener list", `list_listeners:{}`},
		// update: only the flags given are in the patch.
		{"listener http update --address 0.0.0.0:80 --front-timeout 120",
			`update_http_listener:{address:addr(0.0.0.0:80) front_timeout:120}`},
		{"listener http update --address 0.0.0.0:80 --expect-proxy=false --sticky-name S --back-timeout 1 --connect-timeout 2 --request-timeout 3 --public-address 1.2.3.4:80 --answer 404=/a/404.http",
			`update_http_listener:{address:addr(0.0.0.0:80) public_address:addr(1.2.3.4:80) expect_proxy:false sticky_name:"S" back_timeout:1 connect_timeout:2 request_timeout:3 answers:{key:"404" value:"/a/404.http"}}`},
		{"listener https update --address 0.0.0.0:443 --strict-sni-binding --disable-http11=false --alpn-protocols h2,http/1.1 --hsts-max-age 63072000 --hsts-preload",
			`update_https_listener:{address:addr(0.0.0.0:443) alpn_protocols:{values:"h2" values:"http/1.1"} strict_sni_binding:true disable_http11:false hsts:{enabled:true max_age:63072000 preload:true}}`},
		{"listener tcp update --address 0.0.0.0:5432 --expect-proxy --back-timeout 300",
			`update_tcp_listener:{address:addr(0.0.0.0:5432) expect_proxy:true back_timeout:300}`},
		// the h2_* knobs, spelled as upstream's CLI spells them.
		{"listener https update --address 0.0.0.0:443 --h2-max-concurrent-streams 5 --h2-max-rst-stream-per-window 7 --h2-max-ping-per-window 8 --h2-max-settings-per-window 9 --h2-max-empty-data-per-window 10 --h2-max-window-update-stream0-per-window 11 --h2-max-continuation-frames 12 --h2-max-glitch-count 13 --h2-initial-connection-window 70000 --h2-stream-shrink-ratio 3 --h2-max-rst-stream-lifetime 10000000000 --h2-max-rst-stream-abusive-lifetime 15 --h2-max-rst-stream-emitted-lifetime 16 --h2-max-header-list-size 17 --h2-max-header-table-size 18 --h2-max-header-fields 19 --h2-stream-idle-timeout-seconds 20 --h2-graceful-shutdown-deadline-seconds 0 --sozu-id-header X-Id",
			`update_https_listener:{address:addr(0.0.0.0:443) h2_max_rst_stream_per_window:7 h2_max_ping_per_window:8 h2_max_settings_per_window:9 h2_max_empty_data_per_window:10 h2_max_continuation_frames:12 h2_max_glitch_count:13 h2_initial_connection_window:70000 h2_max_concurrent_streams:5 h2_stream_shrink_ratio:3 h2_max_rst_stream_lifetime:10000000000 h2_max_rst_stream_abusive_lifetime:15 h2_max_rst_stream_emitted_lifetime:16 h2_max_header_list_size:17 h2_max_header_table_size:18 h2_stream_idle_timeout_seconds:20 h2_graceful_shutdown_deadline_seconds:0 h2_max_window_update_stream0_per_window:11 sozu_id_header:"X-Id" h2_max_header_fields:19}`},
		{"listener http update --address 0.0.0.0:80 --h2-max-concurrent-streams 5 --h2-graceful-shutdown-deadline-seconds 9",
			`update_http_listener:{address:addr(0.0.0.0:80) h2_max_concurrent_streams:5 h2_graceful_shutdown_deadline_seconds:9}`},
		// frontend policy flags
		{"frontend http add --address 0.0.0.0:80 --hostname old.test --redirect permanent --redirect-scheme use_https --rewrite-host new.test --rewrite-path /x$PATH[1] --rewrite-port 8443",
			`add_http_frontend:{address:addr(0.0.0.0:80) hostname:"old.test" path:{kind:PREFIX value:""} position:TREE redirect:PERMANENT redirect_scheme:USE_HTTPS rewrite_host:"new.test" rewrite_path:"/x$PATH[1]" rewrite_port:8443}`},
		{"frontend http add --address 0.0.0.0:80 --hostname a.test --id shop --required-auth --redirect unauthorized --redirect-template tpl --header response:X-Frame-Options=DENY --header both:X-Debug= --header REQUEST:X-A=b=c",
			`add_http_frontend:{cluster_id:"shop" address:addr(0.0.0.0:80) hostname:"a.test" path:{kind:PREFIX value:""} position:TREE redirect:UNAUTHORIZED required_auth:true redirect_template:"tpl" headers:{position:RESPONSE key:"X-Frame-Options" val:"DENY"} headers:{position:BOTH key:"X-Debug" val:""} headers:{position:REQUEST key:"X-A" val:"b=c"}}`},
		{"frontend https add --address 0.0.0.0:443 --hostname a.test --id shop --hsts --hsts-include-subdomains --hsts-force-replace-backend",
			`add_https_frontend:{cluster_id:"shop" address:addr(0.0.0.0:443) hostname:"a.test" path:{kind:PREFIX value:""} position:TREE hsts:{enabled:true include_subdomains:true force_replace_backend:true}}`},
		{"frontend https add --address 0.0.0.0:443 --hostname a.test --id shop --hsts=false",
			`add_https_frontend:{cluster_id:"shop" address:addr(0.0.0.0:443) hostname:"a.test" path:{kind:PREFIX value:""} position:TREE hsts:{enabled:false}}`},
		// cluster answers: file names here, contents after loadAnswerFiles.
		{"cluster add --id shop --answer 503=/a/503.http --answer 404=/a/404.http --answer-503 /a/legacy.http",
			`add_cluster:{cluster_id:"shop" sticky_session:false https_redirect:false load_balancing:ROUND_ROBIN answer_503:"" answers:{key:"404" value:"/a/404.http"} answers:{key:"503" value:"/a/503.http"}}`},
		{"state stats", `count_requests:{}`},
		{"state save --file state.json", `save_state:"state.json"`},
		{"state load -f /var/lib/sozu/state.json", `load_state:"/var/lib/sozu/state.json"`},
		{"shutdown", `soft_stop:{}`},
		{"shutdown --hard", `hard_stop:{}`},
		{"-t 100 shutdown --hard -j", `hard_stop:{}`},
		// Certificate verbs: the PEM fields are filled from the files later
		// (certs_test.go); parsing leaves them empty.
		{"certificate add --address 0.0.0.0:443 --certificate c.pem --key k.pem",
			`add_certificate:{address:addr(0.0.0.0:443) certificate:{certificate:"" key:""}}`},
		{"certificate add -a 0.0.0.0:443 --certificate c.pem --certificate-chain ch.pem --key k.pem --tls-versions tls_v13 --names a.test,b.test",
			`add_certificate:{address:addr(0.0.0.0:443) certificate:{certificate:"" key:"" versions:TLS_V1_3 names:"a.test" names:"b.test"}}`},
		{"certificate replace -a 0.0.0.0:443 --new-certificate c.pem --new-key k.pem --fingerprint 78F0E7416301E5B0DD9BBF48B1B50D873A025432310F65F21DB2B98BCEF67C50",
			`replace_certificate:{address:addr(0.0.0.0:443) new_certificate:{certificate:"" key:""} old_fingerprint:"78f0e7416301e5b0dd9bbf48b1b50d873a025432310f65f21db2b98bcef67c50"}`},
		{"certificate replace -a 0.0.0.0:443 --new-certificate c.pem --new-key k.pem --old-certificate o.pem",
			`replace_certificate:{address:addr(0.0.0.0:443) new_certificate:{certificate:"" key:""} old_fingerprint:""}`},
		{"certificate remove -a 0.0.0.0:443 -f 78f0e7416301e5b0dd9bbf48b1b50d873a025432310f65f21db2b98bcef67c50", `remove_certificate:{address:addr(0.0.0.0:443) fingerprint:"78f0e7416301e5b0dd9bbf48b1b50d873a025432310f65f21db2b98bcef67c50"}`},
		{"certificate remove -a 0.0.0.0:443 --certificate c.pem", `remove_certificate:{address:addr(0.0.0.0:443) fingerprint:""}`},
		{"certificate list", `query_certificates_from_the_state:{}`},
		{"certificate list -d shop.example.com", `query_certificates_from_the_state:{domain:"shop.example.com"}`},
		{"certificate list --workers --fingerprint 78f0e7416301e5b0dd9bbf48b1b50d873a025432310f65f21db2b98bcef67c50", `query_certificates_from_workers:{fingerprint:"78f0e7416301e5b0dd9bbf48b1b50d873a025432310f65f21db2b98bcef67c50"}`},
		{"certificate list -w", `query_certificates_from_workers:{}`},
	}
	for _, tt := range tests {
		t.Run(tt.line, func(t *testing.T) {
			inv, err := parseArgs(strings.Fields(tt.line))
			if err != nil {
				t.Fatalf("parseArgs: %v", err)
			}
			want := wantRequest(t, tt.want)
			if !proto.Equal(inv.req, want) {
				t.Errorf("request\n got %v\nwant %v", prototext.Format(inv.req), prototext.Format(want))
			}
			// Every builder sets all proto2 required fields.
			if _, err := proto.Marshal(inv.req); err != nil {
				t.Errorf("request does not marshal strictly: %v", err)
			}
		})
	}
}

func TestParseGlobals(t *testing.T) {
	tests := []struct {
		line       string
		config     string
		timeout    time.Duration
		timeoutSet bool
		json       bool
	}{
		{line: "status"},
		{line: "-c /a.toml status", config: "/a.toml"},
		{line: "status --config=/b.toml", config: "/b.toml"},
		{line: "--timeout 250 status", timeout: 250 * time.Millisecond, timeoutSet: true},
		{line: "status -t 0", timeoutSet: true},
		{line: "status -j", json: true},
		{line: "--json=false status"},
		{line: "-j -c /c.toml -t 5 cluster list", config: "/c.toml", timeout: 5 * time.Millisecond, timeoutSet: true, json: true},
	}
	for _, tt := range tests {
		inv, err := parseArgs(strings.Fields(tt.line))
		if err != nil {
			t.Fatalf("%s: %v", tt.line, err)
		}
		if inv.configPath != tt.config || inv.timeout != tt.timeout || inv.timeoutSet != tt.timeoutSet || inv.json != tt.json {
			t.Errorf("%s: got config=%q timeout=%v/%v json=%v", tt.line, inv.configPath, inv.timeout, inv.timeoutSet, inv.json)
		}
	}
}

func TestParseLocalVerbs(t *testing.T) {
	tests := []struct {
		args []string
		verb string
		rest []string
	}{
		{[]string{"start"}, "start", nil},
		{[]string{"-c", "/x", "start", "--foreground"}, "start", []string{"--foreground"}},
		{[]string{"worker", "--id", "3", "-c", "x", "--fd", "4"}, "worker", []string{"--id", "3", "-c", "x", "--fd", "4"}},
		{[]string{"help"}, "help", nil},
		{[]string{"help", "cluster", "add"}, "help", []string{"cluster", "add"}},
		{[]string{"completion", "zsh"}, "completion", []string{"zsh"}},
		{[]string{"config", "check", "-c", "/x"}, "config check", nil},
		{[]string{"version"}, "version", nil},
		{[]string{"status", "--", "-j"}, "", nil}, // "-j" after -- is an argument: refused below
	}
	for _, tt := range tests {
		inv, err := parseArgs(tt.args)
		if tt.verb == "" {
			if err == nil {
				t.Errorf("%q: want an error", tt.args)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%q: %v", tt.args, err)
		}
		if inv.verb.path != tt.verb || strings.Join(inv.args, " ") != strings.Join(tt.rest, " ") {
			t.Errorf("%q: got verb %q args %q", tt.args, inv.verb.path, inv.args)
		}
	}
}

func TestParseHelpFlag(t *testing.T) {
	for line, path := range map[string]string{
		"-h":                          "",
		"--help":                      "",
		"cluster -h":                  "cluster",
		"cluster add --help":          "cluster add",
		"cluster add --bogus -h":      "cluster add",
		"frontend http add -h --id x": "frontend http add",
	} {
		inv, err := parseArgs(strings.Fields(line))
		if err != nil {
			t.Fatalf("%s: %v", line, err)
		}
		if !inv.help || inv.node.path != path {
			t.Errorf("%s: help=%v node=%q, want help on %q", line, inv.help, inv.node.path, path)
		}
	}
}

func TestParseUsageErrors(t *testing.T) {
	tests := []struct {
		line string
		want []string // substrings of the message, in the usage text
	}{
		{"", []string{"sozu: missing verb", "usage: sozu"}},
		{"bogus", []string{`unknown verb bogus`}},
		{"cluster", []string{"sozu cluster: missing verb: want one of list, add, remove"}},
		{"cluster frob", []string{"unknown verb frob (want one of list, add, remove, health-check)"}},
		{"cluster --id x add", []string{"unknown flag --id", "verb flags go after the verb"}},
		{"status --bogus", []string{"sozu status: unknown flag --bogus", "usage: sozu status"}},
		{"status extra", []string{"unexpected argument extra"}},
		{"events extra", []string{"unexpected argument extra"}},
		{"listener http update --address 0.0.0.0:80", []string{"nothing to update: give at least one flag besides --address"}},
		{"listener tcp update --address 0.0.0.0:80 --sticky-name S", []string{"unknown flag --sticky-name"}},
		{"listener tcp update --address 0.0.0.0:80 --h2-max-concurrent-streams 5", []string{"unknown flag --h2-max-concurrent-streams"}},
		{"listener https update --address 0.0.0.0:80 --h2-max-concurrent-streams 4294967296", []string{`invalid value "4294967296" for --h2-max-concurrent-streams: want an integer from 0 to 4294967295`}},
		{"listener http update --address 0.0.0.0:80 --hsts", []string{"unknown flag --hsts"}},
		{"listener http update --address 0.0.0.0:80 --answer 404", []string{`invalid value "404" for --answer: want CODE=FILE`}},
		{"cluster add --id shop --answer 99=/x", []string{`invalid value "99=/x" for --answer`}},
		{"cluster add --id shop --answer 503=/x --answer 503=/y", []string{"--answer 503 given more than once"}},
		{"frontend http add --address 0.0.0.0:80 --hostname h --hsts", []string{"unknown flag --hsts"}},
		{"frontend http remove --address 0.0.0.0:80 --hostname h --redirect permanent", []string{"unknown flag --redirect"}},
		{"frontend http add --address 0.0.0.0:80 --hostname h --redirect moved", []string{`invalid value "moved" for --redirect: want one of forward, permanent, found, permanent_redirect, unauthorized`}},
		{"frontend http add --address 0.0.0.0:80 --hostname h --header X-A=1", []string{`invalid value "X-A=1" for --header: it does not start with request:, response: or both:`}},
		{"frontend http add --address 0.0.0.0:80 --hostname h --header response:X-A", []string{`no = after the header name`}},
		{"frontend http add --address 0.0.0.0:80 --hostname h --header response:X(A)=1", []string{`header name "X(A)" is not an HTTP token`}},
		{"frontend http add --address 0.0.0.0:80 --hostname h --rewrite-port 70000", []string{`invalid value "70000" for --rewrite-port`}},
		// The filter is checked by the parser the proxy uses: refused here,
		// with its list of problems, and never sent.
		{"logging", []string{"sozu logging: missing FILTER", "usage: sozu logging FILTER"}},
		{"logging loud", []string{`invalid FILTER "loud"`, `- invalid level "loud" in directive "loud"`}},
		{"logging info,=debug,x=y", []string{`- empty target in directive "=debug"`, `- invalid level "y" in directive "x=y"`}},
		{"logging ,", []string{`invalid FILTER ","`, "- empty filter"}},
		{"logging info debug", []string{"unexpected argument debug"}},
		{"cluster add", []string{"sozu cluster add: missing required flag --id CLUSTER", "usage: sozu cluster add --id CLUSTER", "sozu help cluster add"}},
		{"cluster add --id", []string{"flag --id needs a value (CLUSTER)"}},
		{"cluster add --id shop --id other", []string{"--id given more than once"}},
		{"cluster add --id ''", []string{`invalid value "" for --id: must not be empty`}}, // '' = empty argument
		{"cluster add --id shop --load-balancing-policy fastest", []string{`invalid value "fastest" for --load-balancing-policy: want one of round_robin, random, least_loaded, power_of_two`}},
		{"cluster add --id shop --send-proxy --expect-proxy", []string{"--send-proxy and --expect-proxy cannot be used together"}},
		{"cluster add --id shop --sticky-session=maybe", []string{`invalid value "maybe" for --sticky-session: want true or false`}},
		{"cluster add --id shop --https-redirect-port 70000", []string{`invalid value "70000" for --https-redirect-port: want an integer from 0 to 65535`}},
		{"cluster add --id shop --authorized-hash admin:xyz", []string{`invalid value "admin:xyz" for --authorized-hash`}},
		{"cluster list --id a --domain b", []string{"--id and --domain cannot be used together"}},
		{"cluster list --domain /x", []string{`invalid value "/x" for --domain`}},
		{"backend add --id shop --backend-id b", []string{"missing required flag --address IP:PORT"}},
		{"backend add --id shop --backend-id b --address 10.0.0.1", []string{`invalid value "10.0.0.1" for --address: want ip:port or [ipv6]:port`, "usage: sozu backend add"}},
		{"backend add --id shop --backend-id b --address localhost:80", []string{`invalid value "localhost:80" for --address`}},
		{"backend add --id shop --backend-id b --address 10.0.0.1:0", []string{`invalid value "10.0.0.1:0" for --address: port must be from 1 to 65535`}},
		{"backend add --id shop --backend-id b --address 10.0.0.1:99999", []string{`invalid value "10.0.0.1:99999" for --address`}},
		{"backend add --id shop --backend-id b --address 10.0.0.1:80 --weight -1", []string{`invalid value "-1" for --weight`}},
		{"frontend http add --address 0.0.0.0:80", []string{"missing required flag --hostname HOST"}},
		{"frontend http add --address 0.0.0.0:80 --hostname h --path-prefix /a --path-regex b", []string{"--path-prefix and --path-regex cannot be used together"}},
		{"frontend http add --address 0.0.0.0:80 --hostname h --tags novalue", []string{`invalid value "novalue" for --tags: want key=value`}},
		{"frontend http add --address 0.0.0.0:80 --hostname h --tags a=1 --tags a=2", []string{`tag "a" given more than once`}},
		{"frontend http remove --address 0.0.0.0:80 --hostname h --tags a=1", []string{"unknown flag --tags"}},
		{"frontend tcp add --address 0.0.0.0:80", []string{"missing required flag --id CLUSTER"}},
		{"listener http add --address 0.0.0.0:80 --tls-versions TLSv1.3", []string{"unknown flag --tls-versions"}},
		{"listener https add --address 0.0.0.0:443 --tls-versions SSLv3", []string{`invalid value "SSLv3" for --tls-versions`}},
		{"listener tcp add --address 0.0.0.0:80 --sticky-name x", []string{"unknown flag --sticky-name"}},
		{"listener udp add --address 0.0.0.0:80 --expect-proxy", []string{"unknown flag --expect-proxy"}},
		{"listener udp add --address 0.0.0.0:53 --max-rx-datagram-size 70000", []string{`invalid value "70000" for --max-rx-datagram-size`}},
		{"listener udp update --max-flows 10", []string{"missing required flag --address"}},
		{"frontend udp add --address 0.0.0.0:53", []string{"missing required flag --id CLUSTER"}},
		{"listener http remove", []string{"missing required flag --address"}},
		{"state save", []string{"missing required flag --file FILE"}},
		{"status -t soon", []string{`invalid value "soon" for --timeout`}},
		{"status -t -5", []string{`invalid value "-5" for --timeout`}},
		{"completion", []string{"missing SHELL: want one of bash, zsh, fish"}},
		{"completion tcsh", []string{"invalid SHELL tcsh: want one of bash, zsh, fish"}},
		{"completion bash zsh", []string{"unexpected argument zsh"}},
		{"certificate", []string{"sozu certificate: missing verb: want one of list, add, replace, remove"}},
		{"certificate add --address 0.0.0.0:443 --certificate c.pem", []string{"missing required flag --key FILE", "usage: sozu certificate add --address IP:PORT --certificate FILE"}},
		{"certificate add --address 0.0.0.0:443 --key k.pem", []string{"missing required flag --certificate FILE"}},
		{"certificate add --certificate c.pem --key k.pem", []string{"missing required flag --address IP:PORT"}},
		{"certificate add -a 0.0.0.0:443 --certificate c.pem --key k.pem --names a,,b", []string{`invalid value "a,,b" for --names`}},
		{"certificate add -a 0.0.0.0:443 --certificate c.pem --key k.pem --tls-versions TLSv1.1", []string{`invalid value "TLSv1.1" for --tls-versions`}},
		{"certificate add -a 0.0.0.0:443 --certificate c.pem --key k.pem --fingerprint 78f0e7416301e5b0dd9bbf48b1b50d873a025432310f65f21db2b98bcef67c50", []string{"unknown flag --fingerprint"}},
		{"certificate remove --address 0.0.0.0:443", []string{"sozu certificate remove: missing --certificate FILE or --fingerprint HEX: one of them is required",
			"usage: sozu certificate remove --address IP:PORT", "(--certificate FILE | --fingerprint HEX)"}},
		{"certificate remove --address 0.0.0.0:443 --certificate c.pem --fingerprint 78f0e7416301e5b0dd9bbf48b1b50d873a025432310f65f21db2b98bcef67c50", []string{"--certificate and --fingerprint cannot be used together"}},
		{"certificate remove --address 0.0.0.0:443 --fingerprint 78f0e741", []string{`invalid value "78f0e741" for --fingerprint: want the SHA-256 of the certificate, 64 hex digits`}},
		{"certificate remove --address 0.0.0.0:443 --fingerprint 78f0e7416301e5b0dd9bbf48b1b50d873a025432310f65f21db2b98bcef67c5g", []string{`for --fingerprint: want the SHA-256`}},
		{"certificate replace -a 0.0.0.0:443 --new-certificate c.pem --new-key k.pem", []string{"missing --old-certificate FILE or --fingerprint HEX: one of them is required"}},
		{"certificate replace -a 0.0.0.0:443 --new-certificate c.pem --new-key k.pem --old-certificate o.pem -f 78f0e7416301e5b0dd9bbf48b1b50d873a025432310f65f21db2b98bcef67c50", []string{"--old-certificate and --fingerprint cannot be used together"}},
		{"certificate replace -a 0.0.0.0:443 --new-certificate c.pem --old-certificate o.pem", []string{"missing required flag --new-key FILE"}},
		{"certificate list --domain a.test --fingerprint 78f0e7416301e5b0dd9bbf48b1b50d873a025432310f65f21db2b98bcef67c50", []string{"--fingerprint and --domain cannot be used together"}},
		{"certificate list --workers=maybe", []string{`invalid value "maybe" for --workers: want true or false`}},
		{"certificate list --address 0.0.0.0:443", []string{"unknown flag --address"}},
		{"status -x", []string{"unknown flag -x"}},
		{"status -jt", []string{"unknown flag -jt"}},
		{"status ---json", []string{"unknown flag ---json"}},
	}
	for _, tt := range tests {
		t.Run(tt.line, func(t *testing.T) {
			args := strings.Fields(tt.line)
			for i, a := range args {
				if a == "''" {
					args[i] = ""
				}
			}
			_, err := parseArgs(args)
			ue, ok := err.(*usageError)
			if !ok {
				t.Fatalf("err = %v (%T), want *usageError", err, err)
			}
			if exitCodeFor(err) != exitUsage {
				t.Errorf("exit code %d, want %d", exitCodeFor(err), exitUsage)
			}
			text := usageErrorText(ue)
			for _, w := range tt.want {
				if !strings.Contains(text, w) {
					t.Errorf("usage text lacks %q:\n%s", w, text)
				}
			}
		})
	}
}

// TestRunUsageExitCode checks the whole path: stderr gets the message and
// the synopsis, stdout nothing, exit 2.
func TestRunUsageExitCode(t *testing.T) {
	a, out, errOut := testApp(t)
	code := a.run([]string{"backend", "add", "--id", "x", "--backend-id", "b", "--address", "nowhere"})
	if code != exitUsage {
		t.Errorf("exit %d, want %d", code, exitUsage)
	}
	if out.Len() != 0 {
		t.Errorf("stdout: %q", out)
	}
	want := fmt.Sprintf("sozu backend add: invalid value %q for --address: want ip:port or [ipv6]:port\nusage: sozu backend add", "nowhere")
	if !strings.HasPrefix(errOut.String(), want) {
		t.Errorf("stderr:\n%s\nwant prefix:\n%s", errOut, want)
	}
}
