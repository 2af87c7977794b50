package worker

import (
	"fmt"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/sozu-go/sozu/proto/command"
	"github.com/sozu-go/sozu/proto/state"
	"github.com/sozu-go/sozu/worker/backends"
	"github.com/sozu-go/sozu/worker/proxy"
)

// TestFrontendPolicy checks how the redirect, rewrite, authentication and
// header settings of a frontend become a proxy.Frontend, which settings
// deny the frontend (err) and which are only reported (warnings).
func TestFrontendPolicy(t *testing.T) {
	hdr := func(pos command.HeaderPosition, k, v string) *command.Header {
		return &command.Header{Position: pos.Enum(), Key: proto.String(k), Val: proto.String(v)}
	}
	tests := []struct {
		name    string
		cluster bool // the frontend has cluster "a"
		kind    command.PathRuleKind
		path    string
		mod     func(*command.RequestHttpFrontend)
		hashes  []string
		err     string   // "" for none
		warns   []string // substrings, in order
		check   func(*proxy.Frontend) bool
	}{
		{name: "plain forward", cluster: true, check: func(fe *proxy.Frontend) bool { return fe == nil }},
		{name: "deny rule with settings", mod: func(f *command.RequestHttpFrontend) {
			f.RequiredAuth = proto.Bool(true)
			f.RewriteHost = proto.String("$HOST[9]")
		}, check: func(fe *proxy.Frontend) bool { return fe == nil }},
		{name: "found, https, rewritten", cluster: true, mod: func(f *command.RequestHttpFrontend) {
			f.Redirect = command.RedirectPolicy_FOUND.Enum()
			f.RedirectScheme = command.RedirectScheme_USE_HTTPS.Enum()
			f.RewriteHost = proto.String("new.test")
			f.RewritePath = proto.String("/v2/$PATH[1]")
			f.RewritePort = proto.Uint32(8443)
			f.RequiredAuth = proto.Bool(true)
		}, warns: []string{"required_auth and headers are ignored: the frontend redirects"},
			check: func(fe *proxy.Frontend) bool {
				return fe.Redirect == 302 && fe.RedirectScheme == proxy.SchemeHTTPS && fe.RewriteHost.String() == "new.test" &&
					fe.RewritePath.String() == "/v2/$PATH[1]" && fe.RewritePort == 8443 && !fe.RequiredAuth
			}},
		{name: "clusterless permanent redirect", mod: func(f *command.RequestHttpFrontend) {
			f.Redirect = command.RedirectPolicy_PERMANENT.Enum()
		}, check: func(fe *proxy.Frontend) bool { return fe.Redirect == 301 && fe.RedirectScheme == proxy.SchemeSame }},
		{name: "permanent redirect with a template", cluster: true, mod: func(f *command.RequestHttpFrontend) {
			f.Redirect = command.RedirectPolicy_PERMANENT_REDIRECT.Enum()
			f.RedirectTemplate = proto.String("HTTP/1.1 308 Permanent Redirect\nLocation: %REDIRECT_LOCATION\n\nmoved")
		}, check: func(fe *proxy.Frontend) bool { return fe.Redirect == 308 && fe.RedirectTemplate.Status() == 308 }},
		{name: "bad redirect template", cluster: true, mod: func(f *command.RequestHttpFrontend) {
			f.Redirect = command.RedirectPolicy_PERMANENT.Enum()
			f.RedirectTemplate = proto.String("HTTP/1.1 3 x\n\n")
		}, warns: []string{"redirect_template: answer 301: line 1: status line"},
			check: func(fe *proxy.Frontend) bool { return fe.Redirect == 301 && fe.RedirectTemplate == nil }},
		{name: "redirect template answering 200", cluster: true, mod: func(f *command.RequestHttpFrontend) {
			f.Redirect = command.RedirectPolicy_PERMANENT.Enum()
			f.RedirectTemplate = proto.String("HTTP/1.1 200 OK\n\n")
		}, warns: []string{"redirect_template answers 200, not a redirection"},
			check: func(fe *proxy.Frontend) bool { return fe.RedirectTemplate == nil }},
		{name: "scheme without redirect", cluster: true, mod: func(f *command.RequestHttpFrontend) {
			f.RedirectScheme = command.RedirectScheme_USE_HTTPS.Enum()
		}, check: func(fe *proxy.Frontend) bool { return fe == nil }},
		{name: "template without redirect", cluster: true, mod: func(f *command.RequestHttpFrontend) {
			f.RedirectTemplate = proto.String("moved")
		}, warns: []string{"redirect_template is ignored"}, check: func(fe *proxy.Frontend) bool { return fe == nil }},
		{name: "unauthorized", cluster: true, mod: func(f *command.RequestHttpFrontend) {
			f.Redirect = command.RedirectPolicy_UNAUTHORIZED.Enum()
			f.RequiredAuth = proto.Bool(true)
			f.RewritePath = proto.String("$")
		}, warns: []string{"required_auth is ignored: the frontend answers 401 to every request"},
			check: func(fe *proxy.Frontend) bool { return fe.Redirect == 401 && fe.RewritePath == nil }},
		{name: "required auth", cluster: true, hashes: []string{"u:" + strings.Repeat("0", 64)}, mod: func(f *command.RequestHttpFrontend) {
			f.RequiredAuth = proto.Bool(true)
		}, check: func(fe *proxy.Frontend) bool { return fe.RequiredAuth && fe.Redirect == 0 }},
		{name: "required auth without accounts", cluster: true, mod: func(f *command.RequestHttpFrontend) {
			f.RequiredAuth = proto.Bool(true)
		}, warns: []string{"required_auth without authorized_hashes on cluster a: every request answers 401"},
			check: func(fe *proxy.Frontend) bool { return fe.RequiredAuth }},
		{name: "wildcard and regex captures", cluster: true, kind: command.PathRuleKind_REGEX, path: "^/u/([a-z]+)", mod: func(f *command.RequestHttpFrontend) {
			f.Hostname = proto.String("*.a.test")
			f.RewriteHost = proto.String("$HOST[1].internal")
			f.RewritePath = proto.String("/users/$PATH[1]")
		}, check: func(fe *proxy.Frontend) bool { return fe.RewriteHost != nil && fe.RewritePath.UsesGroups() }},
		{name: "capture the rule lacks", cluster: true, mod: func(f *command.RequestHttpFrontend) {
			f.RewriteHost = proto.String("$HOST[1].internal")
		}, err: `rewrite_host "$HOST[1].internal": $HOST[1]: hostname "a.test" has captures $HOST[0] to $HOST[0]`},
		{name: "malformed path template", cluster: true, mod: func(f *command.RequestHttpFrontend) {
			f.RewritePath = proto.String("/x\r\nEvil: 1")
		}, err: `rewrite_path "/x\r\nEvil: 1": at 2: byte "\r" is not allowed in a path`},
		{name: "port out of range", cluster: true, mod: func(f *command.RequestHttpFrontend) { f.RewritePort = proto.Uint32(70000) },
			err: "rewrite_port 70000 is not in 1-65535"},
		{name: "unknown redirect", cluster: true, mod: func(f *command.RequestHttpFrontend) { f.Redirect = command.RedirectPolicy(9).Enum() },
			err: "unknown redirect policy 9"},
		{name: "header edits", cluster: true, mod: func(f *command.RequestHttpFrontend) {
			f.Headers = []*command.Header{
				hdr(command.HeaderPosition_REQUEST, "X-Tenant", "t1"),
				hdr(command.HeaderPosition_RESPONSE, "Server", ""),
				hdr(command.HeaderPosition_BOTH, "Content-Length", "0"),
				hdr(command.HeaderPosition_REQUEST, "X-Trace", "1"),
				hdr(command.HeaderPosition_RESPONSE, "Strict-Transport-Security", "max-age=1"),
			}
		}, warns: []string{
			"request header edit Content-Length is ignored: the proxy frames messages itself",
			"response header edit Content-Length is ignored: the proxy frames messages itself",
			"request header edit X-Trace is ignored: the proxy writes the request id field",
			"response header edit Strict-Transport-Security is ignored: use the hsts setting",
		}, check: func(fe *proxy.Frontend) bool { return fe.Request != nil && fe.Response != nil }},
		{name: "unspecified header position", cluster: true, mod: func(f *command.RequestHttpFrontend) {
			f.Headers = []*command.Header{hdr(command.HeaderPosition_HEADER_POSITION_UNSPECIFIED, "Server", "")}
		}, err: `header edit 0 ("Server"): position unspecified`},
		{name: "out of range header position", cluster: true, mod: func(f *command.RequestHttpFrontend) {
			f.Headers = []*command.Header{hdr(command.HeaderPosition(257), "Server", "")}
		}, err: `header edit 0 ("Server"): position unspecified`},
		{name: "header value injection", cluster: true, mod: func(f *command.RequestHttpFrontend) {
			f.Headers = []*command.Header{hdr(command.HeaderPosition_RESPONSE, "X-A", "1\r\nSet-Cookie: x=1")}
		}, err: `header edit 0 (X-A): control character "\r" in the value`},
		{name: "header value NUL", cluster: true, mod: func(f *command.RequestHttpFrontend) {
			f.Headers = []*command.Header{hdr(command.HeaderPosition_REQUEST, "X-A", "a\x00")}
		}, err: `header edit 0 (X-A): control character "\x00" in the value`},
		{name: "header name", cluster: true, mod: func(f *command.RequestHttpFrontend) {
			f.Headers = []*command.Header{hdr(command.HeaderPosition_REQUEST, "X A", "1")}
		}, err: `header edit 0: "X A" is not a field name`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var id *string
			if tt.cluster {
				id = proto.String("a")
			}
			kind := tt.kind
			path := tt.path
			if path == "" {
				path = "/"
			}
			f := &command.RequestHttpFrontend{ClusterId: id, Address: sa("127.0.0.1:80"), Hostname: proto.String("a.test"),
				Path: &command.PathRule{Kind: kind.Enum(), Value: proto.String(path)}, Position: command.RulePosition_TREE.Enum()}
			if tt.mod != nil {
				tt.mod(f)
			}
			r, err := frontendRule(f)
			if err != nil {
				t.Fatal(err)
			}
			c := &command.Cluster{ClusterId: proto.String("a"), AuthorizedHashes: tt.hashes}
			var warns []string
			fe, err := frontendPolicy(f, &r, c, "X-Trace", func(format string, args ...any) {
				warns = append(warns, fmt.Sprintf(format, args...))
			})
			if tt.err != "" {
				if err == nil || err.Error() != tt.err {
					t.Fatalf("error %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(warns) != len(tt.warns) {
				t.Fatalf("warnings %q, want %q", warns, tt.warns)
			}
			for i := range warns {
				if !strings.Contains(warns[i], tt.warns[i]) {
					t.Errorf("warning %q, want %q", warns[i], tt.warns[i])
				}
			}
			if !tt.check(fe) {
				t.Errorf("policy %+v", fe)
			}
		})
	}
}

// TestSnapshotFrontendFeatures checks the wiring: a frontend with a policy
// carries it on its route, a frontend with a setting that cannot be
// honoured is a deny route (it does not fall through to "/"), and a
// cluster's credentials and challenge reach the proxy.
func TestSnapshotFrontendFeatures(t *testing.T) {
	const l = "127.0.0.1:8080"
	st := state.New()
	dispatch(t, st,
		httpListener(l, nil),
		cluster("a", func(c *command.Cluster) {
			c.AuthorizedHashes = []string{"admin:" + strings.Repeat("ab", 32), "broken", "x:y:" + strings.Repeat("0", 64), "u:zz"}
			c.WwwAuthenticate = proto.String("shop")
		}),
		cluster("b", func(c *command.Cluster) { c.WwwAuthenticate = proto.String("Basic realm=\"b\"\r\nX: 1") }),
		frontend(proto.String("a"), l, "a.test", "/", nil),
		frontend(proto.String("a"), l, "a.test", "/auth", func(f *command.RequestHttpFrontend) { f.RequiredAuth = proto.Bool(true) }),
		frontend(proto.String("a"), l, "a.test", "/bad", func(f *command.RequestHttpFrontend) { f.RewritePath = proto.String("$PATH[2]") }),
	)
	reg := backends.NewRegistry(backends.Options{})
	defer reg.Close()
	snap := buildSnapshot(st, reg, false)
	warnings := strings.Join(snap.warnings, "\n")
	for _, want := range []string{
		"cluster a: authorized_hashes entry 1 is not \"user:sha256hex\": it is ignored",
		"cluster a: authorized_hashes entry 2: a basic-auth user name has no ':': it is ignored",
		"cluster a: authorized_hashes entry 3: the password hash is not 64 hexadecimal digits: it is ignored",
		"cluster b: www_authenticate has a control character: it is ignored",
		`frontend 127.0.0.1:8080;a.test;P/bad: rewrite_path "$PATH[2]": $PATH[2]: path rule "/bad" has captures $PATH[0] to $PATH[1]: it answers 404`,
	} {
		if !strings.Contains(warnings, want) {
			t.Errorf("warnings lack %q:\n%s", want, warnings)
		}
	}
	if strings.Contains(warnings, strings.Repeat("ab", 32)) {
		t.Errorf("a password hash is in the warnings:\n%s", warnings)
	}
	pl := snap.http["HTTP "+l]
	lookup := func(path string) (*proxy.Frontend, bool) {
		r := pl.Routes.Lookup([]byte("a.test"), []byte(path), []byte("GET"))
		fe, _ := r.Policy.(*proxy.Frontend)
		return fe, r.Deny
	}
	if fe, deny := lookup("/"); fe != nil || deny {
		t.Errorf("/: %+v %v", fe, deny)
	}
	if fe, deny := lookup("/auth/x"); fe == nil || !fe.RequiredAuth || deny {
		t.Errorf("/auth: %+v %v", fe, deny)
	}
	if fe, deny := lookup("/bad/x"); fe != nil || !deny {
		t.Errorf("/bad: %+v %v, want a deny route", fe, deny)
	}
	a, b := pl.Clusters["a"], pl.Clusters["b"]
	if a.Credentials.Len() != 1 || string(a.WWWAuthenticate) != `Basic realm="shop"` {
		t.Errorf("cluster a: %d accounts, challenge %q", a.Credentials.Len(), a.WWWAuthenticate)
	}
	if b.Credentials != nil || b.WWWAuthenticate != nil {
		t.Errorf("cluster b: %+v %q", b.Credentials, b.WWWAuthenticate)
	}
}
