package settings

import (
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/sozu-go/sozu/proto/command"
	"github.com/sozu-go/sozu/worker/policy"
)

// TestFrontendPolicy checks how the redirect, rewrite, authentication and
// header settings of a frontend become a policy.Frontend, which settings
// deny the frontend (serve false, "it answers 404") and which are only
// ignored; each issue is "<path>: <msg> => <effect>".
func TestFrontendPolicy(t *testing.T) {
	hdr := func(pos command.HeaderPosition, k, v string) *command.Header {
		return &command.Header{Position: pos.Enum(), Key: proto.String(k), Val: proto.String(v)}
	}
	const deny = " => it answers 404"
	const ignored = " => it is ignored"
	tests := []struct {
		name    string
		cluster bool // the frontend has cluster "a"
		kind    command.PathRuleKind
		path    string
		mod     func(*command.RequestHttpFrontend)
		hashes  []string
		issues  []string                    // exact, in order
		check   func(*policy.Frontend) bool // nil: the frontend is denied
	}{
		{name: "plain forward", cluster: true, check: func(fe *policy.Frontend) bool { return fe == nil }},
		{name: "deny rule with settings", mod: func(f *command.RequestHttpFrontend) {
			f.RequiredAuth = proto.Bool(true)
			f.RewriteHost = proto.String("$HOST[9]")
		}, issues: []string{
			"rewrite_host: has no effect: the frontend has no cluster_id and does not redirect (a deny rule, 404)" + ignored,
			"required_auth: has no effect: the frontend has no cluster_id and does not redirect (a deny rule, 404)" + ignored,
		}, check: func(fe *policy.Frontend) bool { return fe == nil }},
		{name: "found, https, rewritten", cluster: true, mod: func(f *command.RequestHttpFrontend) {
			f.Redirect = command.RedirectPolicy_FOUND.Enum()
			f.RedirectScheme = command.RedirectScheme_USE_HTTPS.Enum()
			f.RewriteHost = proto.String("new.test")
			f.RewritePath = proto.String("/v2/$PATH[1]")
			f.RewritePort = proto.Uint32(8443)
			f.RequiredAuth = proto.Bool(true)
			f.Headers = []*command.Header{hdr(command.HeaderPosition_RESPONSE, "X-A", "1")}
		}, issues: []string{"required_auth: has no effect: the frontend redirects" + ignored, "headers: has no effect: the frontend redirects" + ignored},
			check: func(fe *policy.Frontend) bool {
				return fe.Redirect == 302 && fe.RedirectScheme == policy.SchemeHTTPS && fe.RewriteHost.String() == "new.test" &&
					fe.RewritePath.String() == "/v2/$PATH[1]" && fe.RewritePort == 8443 && !fe.RequiredAuth && fe.Response == nil
			}},
		{name: "clusterless permanent redirect", mod: func(f *command.RequestHttpFrontend) {
			f.Redirect = command.RedirectPolicy_PERMANENT.Enum()
		}, check: func(fe *policy.Frontend) bool { return fe.Redirect == 301 && fe.RedirectScheme == policy.SchemeSame }},
		{name: "permanent redirect with a template", cluster: true, mod: func(f *command.RequestHttpFrontend) {
			f.Redirect = command.RedirectPolicy_PERMANENT_REDIRECT.Enum()
			f.RedirectTemplate = proto.String("HTTP/1.1 308 Permanent Redirect\nLocation: %REDIRECT_LOCATION\n\nmoved")
		}, check: func(fe *policy.Frontend) bool { return fe.Redirect == 308 && fe.RedirectTemplate.Status() == 308 }},
		{name: "bad redirect template", cluster: true, mod: func(f *command.RequestHttpFrontend) {
			f.Redirect = command.RedirectPolicy_PERMANENT.Enum()
			f.RedirectTemplate = proto.String("HTTP/1.1 3 x\n\n")
		}, issues: []string{`redirect_template: answer 301: line 1: status line "HTTP/1.1 3 x" has no status code in 100-599 => the default answer is used`},
			check: func(fe *policy.Frontend) bool { return fe.Redirect == 301 && fe.RedirectTemplate == nil }},
		{name: "redirect template answering 200", cluster: true, mod: func(f *command.RequestHttpFrontend) {
			f.Redirect = command.RedirectPolicy_PERMANENT.Enum()
			f.RedirectTemplate = proto.String("HTTP/1.1 200 OK\n\n")
		}, issues: []string{"redirect_template: answers 200, not a redirection => the default answer is used"},
			check: func(fe *policy.Frontend) bool { return fe.RedirectTemplate == nil }},
		{name: "scheme without redirect", cluster: true, mod: func(f *command.RequestHttpFrontend) {
			f.RedirectScheme = command.RedirectScheme_USE_HTTPS.Enum()
		}, issues: []string{"redirect_scheme: has no effect: the frontend does not redirect" + ignored}, check: func(fe *policy.Frontend) bool { return fe == nil }},
		{name: "explicit default scheme without redirect", cluster: true, mod: func(f *command.RequestHttpFrontend) {
			f.RedirectScheme = command.RedirectScheme_USE_SAME.Enum()
			f.Redirect = command.RedirectPolicy_FORWARD.Enum()
			f.RequiredAuth = proto.Bool(false)
		}, check: func(fe *policy.Frontend) bool { return fe == nil }},
		{name: "template without redirect", cluster: true, mod: func(f *command.RequestHttpFrontend) {
			f.RedirectTemplate = proto.String("moved")
		}, issues: []string{"redirect_template: has no effect: the frontend does not redirect" + ignored}, check: func(fe *policy.Frontend) bool { return fe == nil }},
		{name: "unauthorized", cluster: true, mod: func(f *command.RequestHttpFrontend) {
			f.Redirect = command.RedirectPolicy_UNAUTHORIZED.Enum()
			f.RequiredAuth = proto.Bool(true)
			f.RewritePath = proto.String("$")
		}, issues: []string{
			"rewrite_path: has no effect: the frontend answers 401 to every request" + ignored,
			"required_auth: has no effect: the frontend answers 401 to every request" + ignored,
		}, check: func(fe *policy.Frontend) bool { return fe.Redirect == 401 && fe.RewritePath == nil }},
		{name: "required auth", cluster: true, hashes: []string{"u:" + strings.Repeat("0", 64)}, mod: func(f *command.RequestHttpFrontend) {
			f.RequiredAuth = proto.Bool(true)
		}, check: func(fe *policy.Frontend) bool { return fe.RequiredAuth && fe.Redirect == 0 }},
		{name: "required auth without accounts", cluster: true, mod: func(f *command.RequestHttpFrontend) {
			f.RequiredAuth = proto.Bool(true)
		}, issues: []string{"required_auth: cluster a has no authorized_hashes => every request answers 401"},
			check: func(fe *policy.Frontend) bool { return fe.RequiredAuth }},
		{name: "wildcard and regex captures", cluster: true, kind: command.PathRuleKind_REGEX, path: "^/u/([a-z]+)", mod: func(f *command.RequestHttpFrontend) {
			f.Hostname = proto.String("*.a.test")
			f.RewriteHost = proto.String("$HOST[1].internal")
			f.RewritePath = proto.String("/users/$PATH[1]")
		}, check: func(fe *policy.Frontend) bool { return fe.RewriteHost != nil && fe.RewritePath.UsesGroups() }},
		{name: "captures the rule lacks, all reported", cluster: true, kind: command.PathRuleKind_REGEX, path: "^/v[0-9]+/", mod: func(f *command.RequestHttpFrontend) {
			f.RewriteHost = proto.String("$HOST[1].internal")
			f.RewritePath = proto.String("/$PATH[1]")
		}, issues: []string{
			`rewrite_host: "$HOST[1].internal": $HOST[1]: hostname "a.test" has captures $HOST[0] to $HOST[0]` + deny,
			`rewrite_path: "/$PATH[1]": $PATH[1]: path rule "^/v[0-9]+/" has captures $PATH[0] to $PATH[0]` + deny,
		}},
		{name: "malformed path template", cluster: true, mod: func(f *command.RequestHttpFrontend) {
			f.RewritePath = proto.String("/x\r\nEvil: 1")
		}, issues: []string{`rewrite_path: "/x\r\nEvil: 1": at 2: byte "\r" is not allowed in a path` + deny}},
		{name: "port out of range", cluster: true, mod: func(f *command.RequestHttpFrontend) { f.RewritePort = proto.Uint32(70000) },
			issues: []string{"rewrite_port: 70000 is not in 1-65535" + deny}},
		{name: "unknown redirect", cluster: true, mod: func(f *command.RequestHttpFrontend) { f.Redirect = command.RedirectPolicy(9).Enum() },
			issues: []string{"redirect: unknown redirect policy 9" + deny}},
		{name: "unknown redirect scheme", cluster: true, mod: func(f *command.RequestHttpFrontend) { f.RedirectScheme = command.RedirectScheme(9).Enum() },
			issues: []string{"redirect_scheme: unknown redirect scheme 9" + deny}},
		{name: "header edits", cluster: true, mod: func(f *command.RequestHttpFrontend) {
			f.Headers = []*command.Header{
				hdr(command.HeaderPosition_REQUEST, "X-Tenant", "t1"),
				hdr(command.HeaderPosition_RESPONSE, "Server", ""),
				hdr(command.HeaderPosition_BOTH, "Content-Length", "0"),
				hdr(command.HeaderPosition_REQUEST, "X-Trace", "1"),
				hdr(command.HeaderPosition_RESPONSE, "Strict-Transport-Security", "max-age=1"),
			}
		}, issues: []string{
			"headers[2].key: Content-Length cannot be edited in requests: the proxy frames messages itself" + ignored,
			"headers[2].key: Content-Length cannot be edited in responses: the proxy frames messages itself" + ignored,
			"headers[3].key: X-Trace cannot be edited in requests: the proxy writes the request id field" + ignored,
			"headers[4].key: Strict-Transport-Security cannot be edited in responses: use the hsts setting" + ignored,
		}, check: func(fe *policy.Frontend) bool { return fe.Request != nil && fe.Response != nil }},
		{name: "X-Forwarded-Host with a port rewrite", cluster: true, mod: func(f *command.RequestHttpFrontend) {
			f.RewritePort = proto.Uint32(8080)
			f.Headers = []*command.Header{hdr(command.HeaderPosition_REQUEST, "X-Forwarded-Host", "")}
		}, issues: []string{"headers[0].key: X-Forwarded-Host cannot be edited in requests: the proxy writes this field when it rewrites the host" + ignored},
			check: func(fe *policy.Frontend) bool { return fe.RewritePort == 8080 && fe.Request == nil }},
		{name: "unspecified header position", cluster: true, mod: func(f *command.RequestHttpFrontend) {
			f.Headers = []*command.Header{hdr(command.HeaderPosition_HEADER_POSITION_UNSPECIFIED, "Server", "")}
		}, issues: []string{`headers[0].position: position of "Server" unspecified (want request, response or both)` + deny}},
		{name: "out of range header position", cluster: true, mod: func(f *command.RequestHttpFrontend) {
			f.Headers = []*command.Header{hdr(command.HeaderPosition(257), "Server", "")}
		}, issues: []string{`headers[0].position: position of "Server" unspecified (want request, response or both)` + deny}},
		{name: "header value injection, and every malformed edit reported", cluster: true, mod: func(f *command.RequestHttpFrontend) {
			f.Headers = []*command.Header{
				hdr(command.HeaderPosition_RESPONSE, "X-A", "1\r\nSet-Cookie: x=1"),
				hdr(command.HeaderPosition_REQUEST, "Connection", "close"),
				hdr(command.HeaderPosition_REQUEST, "X-B", "a\x00"),
			}
		}, issues: []string{
			`headers[0].value: control character "\r" in the value of X-A` + deny,
			"headers[1].key: Connection cannot be edited in requests: a hop-by-hop field" + ignored,
			`headers[2].value: control character "\x00" in the value of X-B` + deny,
		}},
		{name: "header name", cluster: true, mod: func(f *command.RequestHttpFrontend) {
			f.Headers = []*command.Header{hdr(command.HeaderPosition_REQUEST, "X A", "1")}
		}, issues: []string{`headers[0].key: "X A" is not a field name` + deny}},
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
			var issues []string
			fe, serve := FrontendPolicy(f, &r, c, "X-Trace", func(is Issue) {
				issues = append(issues, is.Error()+" => "+is.Effect)
			})
			if strings.Join(issues, "\n") != strings.Join(tt.issues, "\n") {
				t.Errorf("issues:\n%s\nwant:\n%s", strings.Join(issues, "\n"), strings.Join(tt.issues, "\n"))
			}
			if tt.check == nil {
				if serve || fe != nil {
					t.Errorf("served (%+v), want a denied frontend", fe)
				}
				return
			}
			if !serve {
				t.Fatal("denied")
			}
			if !tt.check(fe) {
				t.Errorf("policy %+v", fe)
			}
			// CheckFrontend reports the same issues.
			var checked []string
			for _, is := range CheckFrontend(f, c, "X-Trace") {
				checked = append(checked, is.Error()+" => "+is.Effect)
			}
			if strings.Join(checked, "\n") != strings.Join(issues, "\n") {
				t.Errorf("CheckFrontend:\n%s\nwant:\n%s", strings.Join(checked, "\n"), strings.Join(issues, "\n"))
			}
		})
	}
}

// TestCheckFrontendRule checks that a frontend the router cannot build is
// reported (the snapshot leaves it out), naming the part at fault.
func TestCheckFrontendRule(t *testing.T) {
	for _, tt := range []struct {
		host, path string
		kind       command.PathRuleKind
		want       string
	}{
		{"a.*.test", "/", command.PathRuleKind_PREFIX, `hostname: '*' is allowed only as "*" or as the whole first label => it is left out`},
		{"a.test", "x", command.PathRuleKind_EQUALS, "path: an EQUALS path starts with '/' => it is left out"},
		{"a.test", "([", command.PathRuleKind_REGEX, "path: path regex: error parsing regexp: missing closing ]: `[` => it is left out"},
	} {
		f := &command.RequestHttpFrontend{ClusterId: proto.String("a"), Address: sa("127.0.0.1:80"), Hostname: proto.String(tt.host),
			Path: &command.PathRule{Kind: tt.kind.Enum(), Value: proto.String(tt.path)}, RewritePath: proto.String("$PATH[5]")}
		var got []string
		for _, is := range CheckFrontend(f, nil, "") {
			got = append(got, is.Error()+" => "+is.Effect)
		}
		if strings.Join(got, "\n") != tt.want {
			t.Errorf("%s %s: %q, want %q", tt.host, tt.path, got, tt.want)
		}
	}
}

// TestCheckFrontendIDHeader checks that an edit of the listener's request
// id field is reported, and that an invalid id header falls back to the
// default one as the snapshot does.
func TestCheckFrontendIDHeader(t *testing.T) {
	f := &command.RequestHttpFrontend{ClusterId: proto.String("a"), Address: sa("127.0.0.1:80"), Hostname: proto.String("a.test"),
		Path: &command.PathRule{Kind: command.PathRuleKind_PREFIX.Enum(), Value: proto.String("/")},
		Headers: []*command.Header{
			{Position: command.HeaderPosition_RESPONSE.Enum(), Key: proto.String("X-Trace"), Val: proto.String("")},
			{Position: command.HeaderPosition_RESPONSE.Enum(), Key: proto.String("Sozu-Id"), Val: proto.String("")},
		}}
	for _, tt := range []struct{ idHeader, want string }{
		{"x-trace", "headers[0].key: X-Trace cannot be edited in responses: the proxy writes the request id field"},
		{"", "headers[1].key: Sozu-Id cannot be edited in responses: the proxy writes the request id field"},
		{"bad header", "headers[1].key: Sozu-Id cannot be edited in responses: the proxy writes the request id field"},
	} {
		var got []string
		for _, is := range CheckFrontend(f, nil, tt.idHeader) {
			got = append(got, is.Error())
		}
		if strings.Join(got, "\n") != tt.want {
			t.Errorf("id header %q: %q, want %q", tt.idHeader, got, tt.want)
		}
	}
}

// TestCheckCluster checks the issues of a cluster's HTTP settings: each
// named by its path, hashes by index only.
func TestCheckCluster(t *testing.T) {
	secret := strings.Repeat("ab", 33)
	c := &command.Cluster{
		ClusterId:         proto.String("a"),
		AuthorizedHashes:  []string{"ok:" + strings.Repeat("0", 64), "broken", "x:y:" + strings.Repeat("0", 64), "u:" + secret},
		WwwAuthenticate:   proto.String("Basic realm=\"a\"\r\nX: 1"),
		Answer_503:        proto.String("HTTP/1.1 5 x\n\n"),
		Answers:           map[string]string{"404": "HTTP/2 404\n\n", "abc": "x", "502": "fine", "421": "kept"},
		HttpsRedirectPort: proto.Uint32(70000),
	}
	want := []string{
		"https_redirect_port: 70000 is not a port (1-65535) => it is ignored",
		`answers.404: answer 404: line 1: status line "HTTP/2 404" is not "HTTP/1.1 NNN reason" => the default answer is used`,
		`answer_503: answer 503: line 1: status line "HTTP/1.1 5 x" has no status code in 100-599 => the default answer is used`,
		`answers.abc: answer "abc": the key is not a status code => the default answer is used`,
		// Well formed, but answered before a request reaches a cluster.
		"answers.421: a cluster's answer for 421 is never sent: the proxy answers 421 before a request reaches a cluster; " +
			"set it in the listener's answers (a cluster's answers serve 301, 302, 308, 400, 401, 408, 413, 414, 429, 502, 503, 504) => it is kept and never sent",
		"authorized_hashes[1]: no ':' between the user name and the password hash => it is ignored",
		"authorized_hashes[2]: a basic-auth user name has no ':' => it is ignored",
		"authorized_hashes[3]: the password hash is not 64 hexadecimal digits (the SHA-256 of the password) => it is ignored",
		`www_authenticate: control character "\r" => it is ignored`,
	}
	var got []string
	for _, is := range CheckCluster(c) {
		got = append(got, is.Error()+" => "+is.Effect)
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("issues:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if strings.Contains(strings.Join(got, "\n"), secret) {
		t.Error("an issue shows a password hash")
	}
	if is := CheckCluster(&command.Cluster{ClusterId: proto.String("b"), AuthorizedHashes: []string{"u:" + strings.Repeat("0", 64)},
		Answers: map[string]string{"503": "down"}, Answer_503: proto.String("HTTP/1.1 5 x\n\n")}); len(is) != 0 {
		t.Errorf("a valid cluster (its answer_503 overridden by answers) has issues: %v", is)
	}
}

func sa(s string) *command.SocketAddress {
	a, err := command.ParseSocketAddress(s)
	if err != nil {
		panic(err)
	}
	return a
}
