package supervisor_test

import (
	"bytes"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/sozu-go/sozu/proto/command"
	"github.com/sozu-go/sozu/proto/statefile"
)

// TestSettingsWorkersWouldNotHonour checks that add_http_frontend,
// add_https_frontend and add_cluster are refused, naming each setting and
// its problem, when workers would deny the frontend or ignore a setting:
// the state is unchanged and nothing reaches the workers (their cluster
// hashes stay those of the state before the verb). A record of a state
// file with the same settings is applied, as before these checks, and the
// worker denies the frontend.
func TestSettingsWorkersWouldNotHonour(t *testing.T) {
	dir := t.TempDir()
	cfg, sock, port := writeConfig(t, dir, 2, "")
	p := startProxy(t, dir, cfg, sock)
	c := dial(t, sock)
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	sa, _ := command.ParseSocketAddress(addr)

	c.MustOK(t, addCluster("shop"))
	c.MustOK(t, addFrontend("shop", addr, "shop.test", "/"))
	before := hashes(t, c)
	assertAgree(t, before, 2, 1)

	secret := strings.Repeat("5e", 33) // 66 digits: once a panic in the workers
	frontend := func(mod func(*command.RequestHttpFrontend)) *command.RequestHttpFrontend {
		f := &command.RequestHttpFrontend{ClusterId: proto.String("shop"), Address: sa, Hostname: proto.String("api.shop.test"),
			Path: &command.PathRule{Kind: command.PathRuleKind_REGEX.Enum(), Value: proto.String("^/v[0-9]+/")}, Position: command.RulePosition_TREE.Enum()}
		mod(f)
		return f
	}
	for _, tt := range []struct {
		name string
		req  *command.Request
		want string // the whole message
	}{
		{"http frontend: captures the rule lacks, a header injection, a hop-by-hop edit",
			&command.Request{RequestType: &command.Request_AddHttpFrontend{AddHttpFrontend: frontend(func(f *command.RequestHttpFrontend) {
				f.RewriteHost = proto.String("$HOST[1].internal")
				f.RewritePath = proto.String("/$PATH[1]")
				f.Headers = []*command.Header{
					{Position: command.HeaderPosition_RESPONSE.Enum(), Key: proto.String("X-A"), Val: proto.String("1\r\nSet-Cookie: x=1")},
					{Position: command.HeaderPosition_REQUEST.Enum(), Key: proto.String("Connection"), Val: proto.String("")},
					{Key: proto.String("Server"), Val: proto.String("")},
				}
			})}},
			"could not dispatch request on the main process state: invalid frontend " + addr + ";api.shop.test;R^/v[0-9]+/: " +
				`rewrite_host: "$HOST[1].internal": $HOST[1]: hostname "api.shop.test" has captures $HOST[0] to $HOST[0]; ` +
				`rewrite_path: "/$PATH[1]": $PATH[1]: path rule "^/v[0-9]+/" has captures $PATH[0] to $PATH[0]; ` +
				`headers[0].value: control character "\r" in the value of X-A; ` +
				`headers[1].key: Connection cannot be edited in requests: a hop-by-hop field; ` +
				`headers[2].position: position of "Server" unspecified (want request, response or both)`},
		{"https frontend: a redirect template that does not compile, settings a redirect ignores",
			&command.Request{RequestType: &command.Request_AddHttpsFrontend{AddHttpsFrontend: frontend(func(f *command.RequestHttpFrontend) {
				f.Redirect = command.RedirectPolicy_PERMANENT.Enum()
				f.RedirectTemplate = proto.String("HTTP/1.1 3 Moved\n\n")
				f.RequiredAuth = proto.Bool(true)
				f.Headers = []*command.Header{{Key: proto.String("Server"), Val: proto.String("")}}
			})}},
			"could not dispatch request on the main process state: invalid frontend " + addr + ";api.shop.test;R^/v[0-9]+/: " +
				`redirect_template: answer 301: line 1: status line "HTTP/1.1 3 Moved" has no status code in 100-599; ` +
				`required_auth: has no effect: the frontend redirects; headers: has no effect: the frontend redirects`},
		{"cluster: hashes by index only, challenge, answers",
			&command.Request{RequestType: &command.Request_AddCluster{AddCluster: &command.Cluster{
				ClusterId: proto.String("vault"), StickySession: proto.Bool(false), HttpsRedirect: proto.Bool(false),
				LoadBalancing:    command.LoadBalancingAlgorithms_ROUND_ROBIN.Enum(),
				AuthorizedHashes: []string{"ok:" + strings.Repeat("0", 64), "u:" + secret, "nocolon" + secret},
				WwwAuthenticate:  proto.String("Basic realm=\"v\"\nX: 1"),
				Answers:          map[string]string{"503": "HTTP/1.1 503\nbad\n\n"},
			}}},
			"could not dispatch request on the main process state: invalid cluster vault: " +
				`answers.503: answer 503: line 2: not a field line "bad"; ` +
				"authorized_hashes[1]: the password hash is not 64 hexadecimal digits (the SHA-256 of the password); " +
				"authorized_hashes[2]: no ':' between the user name and the password hash; " +
				`www_authenticate: control character "\n"`},
		{"http frontend: hsts over plain HTTP",
			&command.Request{RequestType: &command.Request_AddHttpFrontend{AddHttpFrontend: &command.RequestHttpFrontend{
				ClusterId: proto.String("shop"), Address: sa, Hostname: proto.String("hsts.shop.test"),
				Path: &command.PathRule{Kind: command.PathRuleKind_PREFIX.Enum(), Value: proto.String("/")}, Position: command.RulePosition_TREE.Enum(),
				Hsts: &command.HstsConfig{Enabled: proto.Bool(true)}}}},
			"could not dispatch request on the main process state: invalid frontend " + addr + ";hsts.shop.test;P/: " +
				"hsts: HSTS is only sent over HTTPS: set it on an HTTPS frontend or listener"},
		{"listener: an answer template that does not compile",
			&command.Request{RequestType: &command.Request_AddHttpListener{AddHttpListener: &command.HttpListenerConfig{
				Address: command.NewSocketAddress(netip.MustParseAddrPort("127.0.0.1:1")), Answers: map[string]string{"404": "HTTP/1.1 404 Nope\nno colon\n\n"},
				ExpectProxy: proto.Bool(false), StickyName: proto.String("SOZUBALANCEID"), FrontTimeout: proto.Uint32(60), BackTimeout: proto.Uint32(30),
				ConnectTimeout: proto.Uint32(3), RequestTimeout: proto.Uint32(10), Active: proto.Bool(false)}}},
			"could not dispatch request on the main process state: invalid listener 127.0.0.1:1: " +
				`answers.404: answer 404: line 2: not a field line "no colon"`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, resp := c.Do(t, tt.req)
			if resp.GetStatus() != command.ResponseStatus_FAILURE || resp.GetMessage() != tt.want {
				t.Errorf("%v %q\nwant FAILURE %q", resp.GetStatus(), resp.GetMessage(), tt.want)
			}
			if strings.Contains(resp.GetMessage(), secret) {
				t.Error("the answer shows an authorized_hashes entry")
			}
			after := hashes(t, c)
			if fmt.Sprint(after) != fmt.Sprint(before) {
				t.Errorf("the state or a worker changed: %v, before %v", after, before)
			}
		})
	}
	list := c.MustOK(t, &command.Request{RequestType: &command.Request_ListFrontends{ListFrontends: &command.FrontendFilters{}}})
	if n := len(list.GetContent().GetFrontendList().GetHttpFrontends()) + len(list.GetContent().GetFrontendList().GetHttpsFrontends()); n != 1 {
		t.Errorf("%d HTTP(S) frontends in the state, want 1: %v", n, list.GetContent().GetFrontendList())
	}
	if strings.Contains(p.Out.String(), secret) {
		t.Error("an authorized_hashes entry is in the logs")
	}

	// The same settings, well formed, are taken; required_auth while the
	// cluster has no authorized_hashes too (a later add_cluster may set
	// them), with a warning.
	c.MustOK(t, &command.Request{RequestType: &command.Request_AddHttpFrontend{AddHttpFrontend: frontend(func(f *command.RequestHttpFrontend) {
		f.Hostname = proto.String("*.shop.test")
		f.Path.Value = proto.String("^/v([0-9]+)/")
		f.RewriteHost = proto.String("$HOST[1].internal")
		f.RewritePath = proto.String("/api/$PATH[1]")
		f.RequiredAuth = proto.Bool(true)
		f.Headers = []*command.Header{{Position: command.HeaderPosition_RESPONSE.Enum(), Key: proto.String("Server"), Val: proto.String("")}}
	})}})
	logged := func(parts ...string) bool {
		for _, line := range strings.Split(p.Out.String(), "\n") {
			n := 0
			for _, s := range parts {
				if strings.Contains(line, s) {
					n++
				}
			}
			if n == len(parts) {
				return true
			}
		}
		return false
	}
	waitFor(t, 5*time.Second, "the supervisor's warning about required_auth", func() bool {
		return logged("verb=AddHttpFrontend", "required_auth: cluster shop has no authorized_hashes: every request answers 401")
	})
	assertAgree(t, hashes(t, c), 2, 1)

	// A state file record is applied as before: the worker denies the
	// frontend (404) rather than the supervisor leaving it out.
	var b bytes.Buffer
	enc := statefile.NewEncoder(&b)
	if err := enc.Encode(&command.WorkerRequest{Id: proto.String("SAVE-0"), Content: &command.Request{RequestType: &command.Request_AddHttpFrontend{
		AddHttpFrontend: frontend(func(f *command.RequestHttpFrontend) {
			f.Hostname = proto.String("old.shop.test")
			f.RewritePath = proto.String("/$PATH[1]")
		})}}}); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "old.state")
	if err := os.WriteFile(path, b.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	c.MustOK(t, req(func(r *command.Request, s string) { r.RequestType = &command.Request_LoadState{LoadState: s} }, path))
	list = c.MustOK(t, &command.Request{RequestType: &command.Request_ListFrontends{ListFrontends: &command.FrontendFilters{}}})
	if n := len(list.GetContent().GetFrontendList().GetHttpFrontends()); n != 3 {
		t.Errorf("%d HTTP frontends after load_state, want 3", n)
	}
	waitFor(t, 5*time.Second, "the supervisor's and a worker's warnings about the loaded frontend", func() bool {
		return logged("verb=AddHttpFrontend", "old.shop.test;R^/v[0-9]+/ (state file record): rewrite_path", "it answers 404") &&
			logged("worker=", "old.shop.test;R^/v[0-9]+/: rewrite_path", "it answers 404")
	})
	assertAgree(t, hashes(t, c), 2, 1)
}
