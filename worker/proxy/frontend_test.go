package proxy

import (
	"bufio"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"io"
	"net"
	"strings"
	"testing"

	"github.com/sozu-go/sozu/worker/answers"
	"github.com/sozu-go/sozu/worker/http1"
	"github.com/sozu-go/sozu/worker/policy"
	"github.com/sozu-go/sozu/worker/router"
)

// headBackend answers every request with resp and sends the request heads
// it reads on heads.
func headBackend(t *testing.T, resp string) (*rawBackend, chan string) {
	heads := make(chan string, 16)
	b := newRawBackend(t, func(c net.Conn) {
		r := bufio.NewReader(c)
		for {
			h, err := readHeadFrom(r)
			if err != nil {
				return
			}
			heads <- h
			if _, err := io.WriteString(c, resp); err != nil {
				return
			}
		}
	})
	return b, heads
}

func mustTemplate(t *testing.T, src string, kind router.TemplateKind) *router.Template {
	t.Helper()
	tm, err := router.ParseTemplate(src, kind)
	if err != nil {
		t.Fatal(err)
	}
	return tm
}

func hashEntry(user, pass string) string {
	d := sha256.Sum256([]byte(pass))
	return user + ":" + hex.EncodeToString(d[:])
}

func basic(userPass string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(userPass))
}

// TestFrontendRedirects checks the Location of redirecting frontends:
// scheme, rewritten host, port and path, the query kept, the default port
// of the scheme left out, and the answer template used.
func TestFrontendRedirects(t *testing.T) {
	tmpl, err := answers.Compile(308, "HTTP/1.1 308 Permanent Redirect\nX-Frontend: yes\n\nto %REDIRECT_LOCATION")
	if err != nil {
		t.Fatal(err)
	}
	rules := []router.Rule{
		{Hostname: "old.test", Kind: router.Prefix, Path: "/", Route: router.Route{ClusterID: "c", Policy: &Frontend{Redirect: 301}}},
		{Hostname: "*.wild.test", Kind: router.Prefix, Path: "/docs/", Route: router.Route{ClusterID: "c", Policy: &Frontend{
			Redirect: 302, RedirectScheme: SchemeHTTPS,
			RewriteHost: mustTemplate(t, "$HOST[1].example.org", router.HostTemplate),
			RewritePath: mustTemplate(t, "/manual/$PATH[1]", router.PathTemplate)}}},
		{Hostname: "port.test", Kind: router.Prefix, Path: "/", Route: router.Route{ClusterID: "c", Policy: &Frontend{
			Redirect: 301, RedirectScheme: SchemeHTTP, RewritePort: 8080}}},
		{Hostname: "default.test", Kind: router.Prefix, Path: "/", Route: router.Route{ClusterID: "c", Policy: &Frontend{
			Redirect: 301, RedirectScheme: SchemeHTTP, RewritePort: 80}}},
		{Hostname: "https.test", Kind: router.Prefix, Path: "/", Route: router.Route{ClusterID: "c", Policy: &Frontend{
			Redirect: 301, RedirectScheme: SchemeHTTPS}}},
		{Hostname: "tmpl.test", Kind: router.Prefix, Path: "/", Route: router.Route{ClusterID: "c", Policy: &Frontend{
			Redirect: 308, RedirectTemplate: tmpl}}},
		{Hostname: "gone.test", Kind: router.Prefix, Path: "/", Route: router.Route{Deny: true, Policy: &Frontend{
			Redirect: 301, RewriteHost: mustTemplate(t, "new.test", router.HostTemplate)}}},
		{Hostname: "v6.test", Kind: router.Regex, Path: "^/r/([a-z]+)", Route: router.Route{ClusterID: "c", Policy: &Frontend{
			Redirect: 301, RewriteHost: mustTemplate(t, "[::1]", router.HostTemplate), RewritePath: mustTemplate(t, "$PATH[1]", router.PathTemplate)}}},
	}
	b, heads := headBackend(t, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
	f := newFixture(t, rules, map[string][]string{"c": {b.addr}}, func(l *Listener) {
		l.Clusters["c"].HTTPSRedirectPort = 8443
	})
	for _, tt := range []struct {
		req, status, location string
	}{
		{"GET /a/b?x=1&y=2 HTTP/1.1\r\nHost: old.test:9000\r\n", "301 Moved Permanently", "http://old.test/a/b?x=1&y=2"},
		{"GET /docs/install?v=2 HTTP/1.1\r\nHost: Beta.Wild.Test\r\n", "302 Found", "https://beta.example.org:8443/manual/install?v=2"},
		{"POST /x HTTP/1.1\r\nHost: port.test:1\r\nContent-Length: 0\r\n", "301 Moved Permanently", "http://port.test:8080/x"},
		{"GET / HTTP/1.1\r\nHost: default.test:1\r\n", "301 Moved Permanently", "http://default.test/"},
		{"GET /s HTTP/1.1\r\nHost: https.test\r\n", "301 Moved Permanently", "https://https.test:8443/s"},
		{"GET http://old.test?q HTTP/1.1\r\nHost: x\r\n", "301 Moved Permanently", "http://old.test/?q"},
		{"GET /p HTTP/1.1\r\nHost: gone.test\r\n", "301 Moved Permanently", "http://new.test/p"},
		{"GET /r/abc/d?e HTTP/1.1\r\nHost: v6.test\r\n", "301 Moved Permanently", "http://[::1]/abc?e"},
		{"GET /t HTTP/1.0\r\n", "404 Not Found", ""},
	} {
		got := exchangeRaw(t, f.addr, tt.req+closeReq)
		if statusOf(got) != "HTTP/1.1 "+tt.status {
			t.Errorf("%q: %q", tt.req, got)
			continue
		}
		if loc := fieldsOf(t, got, "Location"); tt.location != "" && (len(loc) != 1 || loc[0] != tt.location) {
			t.Errorf("%q: Location %q, want %s", tt.req, loc, tt.location)
		}
	}
	got := exchangeRaw(t, f.addr, "GET /z HTTP/1.1\r\nHost: tmpl.test\r\n"+closeReq)
	if statusOf(got) != "HTTP/1.1 308 Permanent Redirect" || !strings.Contains(got, "\r\nX-Frontend: yes\r\n") ||
		!strings.HasSuffix(got, "to http://tmpl.test/z") || fieldsOf(t, got, "Location")[0] != "http://tmpl.test/z" {
		t.Errorf("template: %q", got)
	}
	select {
	case h := <-heads:
		t.Errorf("a redirection reached the backend: %q", h)
	default:
	}
}

// TestFrontendAuth checks required_auth and UNAUTHORIZED frontends.
func TestFrontendAuth(t *testing.T) {
	rules := []router.Rule{
		{Hostname: "auth.test", Kind: router.Prefix, Path: "/", Route: router.Route{ClusterID: "c", Policy: &Frontend{RequiredAuth: true}}},
		{Hostname: "realm.test", Kind: router.Prefix, Path: "/", Route: router.Route{ClusterID: "r", Policy: &Frontend{RequiredAuth: true}}},
		{Hostname: "no.test", Kind: router.Prefix, Path: "/", Route: router.Route{ClusterID: "r", Policy: &Frontend{Redirect: 401}}},
		{Hostname: "no2.test", Kind: router.Prefix, Path: "/", Route: router.Route{ClusterID: "c", Policy: &Frontend{Redirect: 401}}},
		{Hostname: "redir.test", Kind: router.Prefix, Path: "/", Route: router.Route{ClusterID: "s", Policy: &Frontend{RequiredAuth: true}}},
	}
	b, heads := headBackend(t, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
	f := newFixture(t, rules, map[string][]string{"c": {b.addr}, "r": {b.addr}, "s": {b.addr}}, func(l *Listener) {
		creds, errs := policy.NewCredentials([]string{hashEntry("bob", "s3cret:x"), hashEntry("alice", "")})
		if len(errs) != 0 {
			t.Fatal(errs)
		}
		l.Clusters["c"].Credentials = creds
		l.Clusters["r"].Credentials = creds
		l.Clusters["r"].WWWAuthenticate = []byte(`Basic realm="shop"`)
		l.Clusters["s"].HTTPSRedirect = true
	})
	for _, tt := range []struct {
		name, host, fields, status, challenge string
	}{
		{"no credentials", "auth.test", "", "401 Unauthorized", DefaultChallenge},
		{"the cluster's challenge", "realm.test", "", "401 Unauthorized", `Basic realm="shop"`},
		{"wrong password", "auth.test", "Authorization: " + basic("bob:s3cret") + "\r\n", "401 Unauthorized", DefaultChallenge},
		{"unknown user", "auth.test", "Authorization: " + basic("eve:s3cret:x") + "\r\n", "401 Unauthorized", DefaultChallenge},
		{"another user's password", "auth.test", "Authorization: " + basic("alice:s3cret:x") + "\r\n", "401 Unauthorized", DefaultChallenge},
		{"not basic", "auth.test", "Authorization: Bearer " + base64.StdEncoding.EncodeToString([]byte("bob:s3cret:x")) + "\r\n", "401 Unauthorized", DefaultChallenge},
		{"bad base64", "auth.test", "Authorization: Basic !!!\r\n", "401 Unauthorized", DefaultChallenge},
		{"no colon", "auth.test", "Authorization: " + basic("bob") + "\r\n", "401 Unauthorized", DefaultChallenge},
		{"two fields", "auth.test", "Authorization: " + basic("bob:s3cret:x") + "\r\nAuthorization: " + basic("bob:s3cret:x") + "\r\n", "401 Unauthorized", DefaultChallenge},
		{"too long", "auth.test", "Authorization: " + basic("bob:"+strings.Repeat("x", maxCredential)) + "\r\n", "401 Unauthorized", DefaultChallenge},
		{"good", "auth.test", "Authorization: " + basic("bob:s3cret:x") + "\r\n", "200 OK", ""},
		{"scheme in lower case, extra spaces", "auth.test", "authorization: basic   " + base64.StdEncoding.EncodeToString([]byte("bob:s3cret:x")) + "\r\n", "200 OK", ""},
		{"empty password", "auth.test", "Authorization: " + basic("alice:") + "\r\n", "200 OK", ""},
		{"unauthorized with a challenge", "no.test", "Authorization: " + basic("bob:s3cret:x") + "\r\n", "401 Unauthorized", `Basic realm="shop"`},
		{"unauthorized without", "no2.test", "", "401 Unauthorized", ""},
		{"https_redirect comes first", "redir.test", "", "301 Moved Permanently", ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got := exchangeRaw(t, f.addr, "GET / HTTP/1.1\r\nHost: "+tt.host+"\r\n"+tt.fields+closeReq)
			if statusOf(got) != "HTTP/1.1 "+tt.status {
				t.Fatalf("%q", got)
			}
			if ch := fieldsOf(t, got, "WWW-Authenticate"); strings.Join(ch, "|") != tt.challenge {
				t.Fatalf("WWW-Authenticate %q, want %q", ch, tt.challenge)
			}
			if tt.status == "200 OK" {
				if h := <-heads; strings.Contains(strings.ToLower(h), "authorization") {
					t.Fatalf("credentials forwarded:\n%s", h)
				}
			}
			select {
			case h := <-heads:
				t.Fatalf("an unauthenticated request reached the backend: %q", h)
			default:
			}
		})
	}
}

// TestFrontendRewriteAndEdits checks what the backend and the client see
// of a forwarding frontend's rewrites and header edits.
func TestFrontendRewriteAndEdits(t *testing.T) {
	req, resp, errs := policy.CompileHeaderEdits([]HeaderEdit{
		{Position: HeaderRequest, Name: "Cookie", Value: ""},
		{Position: HeaderRequest, Name: "X-Tenant", Value: "t1"},
		{Position: HeaderBoth, Name: "X-Both", Value: "b"},
		{Position: HeaderResponse, Name: "Server", Value: ""},
		{Position: HeaderResponse, Name: "X-Frame-Options", Value: ""},
		{Position: HeaderResponse, Name: "X-Frame-Options", Value: "DENY"},
	}, DefaultIDHeader, true)
	if len(errs) != 0 {
		t.Fatal(errs)
	}
	rules := []router.Rule{
		{Hostname: "*.app.test", Kind: router.Prefix, Path: "/api/", Route: router.Route{ClusterID: "c", Policy: &Frontend{
			RewriteHost: mustTemplate(t, "$HOST[1].internal", router.HostTemplate),
			RewritePath: mustTemplate(t, "/v2/$PATH[1]", router.PathTemplate),
			RewritePort: 8080, Request: req, Response: resp}}},
		{Hostname: "port.test", Kind: router.Prefix, Path: "/", Route: router.Route{ClusterID: "c", Policy: &Frontend{RewritePort: 81}}},
		{Hostname: "dots.test", Kind: router.Prefix, Path: "/x", Route: router.Route{ClusterID: "c", Policy: &Frontend{
			RewritePath: mustTemplate(t, "/base/$PATH[1]", router.PathTemplate)}}},
		{Hostname: "big.test", Kind: router.Prefix, Path: "/", Route: router.Route{ClusterID: "c", Policy: &Frontend{
			RewritePath: mustTemplate(t, strings.Repeat("$PATH[0]", 20), router.PathTemplate)}}},
		{Hostname: "badhost.test", Kind: router.Prefix, Path: "/", Route: router.Route{ClusterID: "c", Policy: &Frontend{
			RewriteHost: mustTemplate(t, "$PATH[0]", router.HostTemplate)}}},
		{Hostname: "nobackend.test", Kind: router.Prefix, Path: "/", Route: router.Route{ClusterID: "empty", Policy: &Frontend{Response: resp}}},
	}
	b, heads := headBackend(t, "HTTP/1.1 200 OK\r\nServer: leaky/1.0\r\nX-Frame-Options: SAMEORIGIN\r\nX-Keep: 1\r\nContent-Length: 2\r\n\r\nok")
	f := newFixture(t, rules, map[string][]string{"c": {b.addr}}, func(l *Listener) {
		l.Clusters["empty"] = &Cluster{ID: "empty"}
	})

	got := exchangeRaw(t, f.addr, "GET /api/users/1?full=1 HTTP/1.1\r\nHost: Shop.App.Test:8000\r\nCookie: a=1\r\nX-Forwarded-Host: spoofed\r\nX-Keep: yes\r\n"+closeReq)
	if statusOf(got) != "HTTP/1.1 200 OK" {
		t.Fatalf("%q", got)
	}
	h := <-heads
	for _, want := range []string{
		"GET /v2/users/1?full=1 HTTP/1.1\r\n", "\r\nHost: shop.internal:8080\r\n", "\r\nX-Keep: yes\r\n",
		"\r\nX-Forwarded-Host: Shop.App.Test:8000\r\n", "\r\nX-Tenant: t1\r\n", "\r\nX-Both: b\r\n",
	} {
		if !strings.Contains(h, want) {
			t.Errorf("the backend's head lacks %q:\n%s", want, h)
		}
	}
	if strings.Contains(h, "Cookie") || strings.Contains(h, "spoofed") || strings.Count(h, "Host:") != 2 {
		t.Errorf("deleted or replaced fields reached the backend:\n%s", h)
	}
	if !strings.HasSuffix(h, "\r\n\r\n") || strings.Count(h, "\r\n\r\n") != 1 {
		t.Errorf("head framing:\n%q", h)
	}
	if v := fieldsOf(t, got, "Server"); len(v) != 0 {
		t.Errorf("Server %q not deleted", v)
	}
	if v := fieldsOf(t, got, "X-Frame-Options"); strings.Join(v, "|") != "DENY" {
		t.Errorf("X-Frame-Options %q, want DENY only", v)
	}
	if v := fieldsOf(t, got, "X-Both"); strings.Join(v, "|") != "b" || fieldsOf(t, got, "X-Keep")[0] != "1" {
		t.Errorf("response fields: %q", got)
	}

	got = exchangeRaw(t, f.addr, "GET /p HTTP/1.1\r\nHost: port.test:99\r\n"+closeReq)
	if statusOf(got) != "HTTP/1.1 200 OK" {
		t.Fatalf("%q", got)
	}
	if h := <-heads; !strings.Contains(h, "\r\nHost: port.test:81\r\n") || !strings.Contains(h, "\r\nX-Forwarded-Host: port.test:99\r\n") {
		t.Errorf("port rewrite:\n%s", h)
	}

	for _, tt := range []struct{ req, status string }{
		{"GET /x.. HTTP/1.1\r\nHost: dots.test\r\n", "400 Bad Request"}, // "/base/.." would climb out of /base
		{"GET /" + strings.Repeat("a", 500) + " HTTP/1.1\r\nHost: big.test\r\n", "414 URI Too Long"},
		{"GET /a/b HTTP/1.1\r\nHost: badhost.test\r\n", "400 Bad Request"},
		{"GET / HTTP/1.1\r\nHost: nobackend.test\r\n", "503 Service Unavailable"},
	} {
		got := exchangeRaw(t, f.addr, tt.req+closeReq)
		if statusOf(got) != "HTTP/1.1 "+tt.status {
			t.Errorf("%q: %q", tt.req, got)
		}
		if strings.Contains(got, "X-Both") || strings.Contains(got, "X-Frame-Options") {
			t.Errorf("response edits on the proxy's own answer: %q", got)
		}
	}
	select {
	case h := <-heads:
		t.Errorf("a refused request reached the backend: %q", h)
	default:
	}
}

func TestCompileHeaderEdits(t *testing.T) {
	for _, tt := range []struct {
		edit    HeaderEdit
		hostRW  bool
		refused string // the first refusal
		err     string // the malformed edit
	}{
		{edit: HeaderEdit{Position: HeaderRequest, Name: "X-A", Value: "1"}},
		{edit: HeaderEdit{Position: HeaderBoth, Name: "X-A", Value: "with\ttab and obs-text \xe9"}},
		{edit: HeaderEdit{Position: HeaderRequest, Name: "X-Forwarded-Host", Value: ""}},
		{edit: HeaderEdit{Position: HeaderRequest, Name: "X-Forwarded-Host", Value: ""}, hostRW: true, refused: "header edit 0: X-Forwarded-Host cannot be edited in requests: the proxy writes this field when it rewrites the host"},
		{edit: HeaderEdit{Position: HeaderRequest, Name: "Host", Value: "x"}, refused: "header edit 0: Host cannot be edited in requests: the proxy writes Host from the request (use rewrite_host)"},
		{edit: HeaderEdit{Position: HeaderResponse, Name: "Host", Value: "x"}},
		{edit: HeaderEdit{Position: HeaderBoth, Name: "transfer-encoding", Value: ""}, refused: "header edit 0: transfer-encoding cannot be edited in requests: the proxy frames messages itself"},
		{edit: HeaderEdit{Position: HeaderResponse, Name: "Connection", Value: "close"}, refused: "header edit 0: Connection cannot be edited in responses: a hop-by-hop field"},
		{edit: HeaderEdit{Position: HeaderRequest, Name: "TE", Value: "trailers"}, refused: "header edit 0: TE cannot be edited in requests: a hop-by-hop field"},
		{edit: HeaderEdit{Position: HeaderRequest, Name: "Upgrade", Value: ""}, refused: "header edit 0: Upgrade cannot be edited in requests: a hop-by-hop field"},
		{edit: HeaderEdit{Position: HeaderRequest, Name: "Keep-Alive", Value: ""}, refused: "header edit 0: Keep-Alive cannot be edited in requests: a hop-by-hop field"},
		{edit: HeaderEdit{Position: HeaderResponse, Name: "Trailer", Value: "x"}, refused: "header edit 0: Trailer cannot be edited in responses: a hop-by-hop field"},
		{edit: HeaderEdit{Position: HeaderRequest, Name: "Expect", Value: ""}, refused: "header edit 0: Expect cannot be edited in requests: the proxy handles 100-continue itself"},
		{edit: HeaderEdit{Position: HeaderRequest, Name: "X-Forwarded-For", Value: "1.2.3.4"}, refused: "header edit 0: X-Forwarded-For cannot be edited in requests: the proxy writes this field"},
		{edit: HeaderEdit{Position: HeaderResponse, Name: "sozu-id", Value: ""}, refused: "header edit 0: sozu-id cannot be edited in responses: the proxy writes the request id field"},
		{edit: HeaderEdit{Position: HeaderUnspecified, Name: "X-A", Value: ""}, err: `header edit 0: position of "X-A" unspecified (want request, response or both)`},
		{edit: HeaderEdit{Position: HeaderBoth + 1, Name: "X-A", Value: ""}, err: `header edit 0: position of "X-A" unspecified (want request, response or both)`},
		{edit: HeaderEdit{Position: HeaderRequest, Name: "", Value: "1"}, err: `header edit 0: "" is not a field name`},
		{edit: HeaderEdit{Position: HeaderRequest, Name: "X:A", Value: "1"}, err: `header edit 0: "X:A" is not a field name`},
		{edit: HeaderEdit{Position: HeaderRequest, Name: "X-A", Value: "1\nX-B: 2"}, err: `header edit 0: control character "\n" in the value of X-A`},
		{edit: HeaderEdit{Position: HeaderRequest, Name: "X-A", Value: "\x7f"}, err: `header edit 0: control character "\x7f" in the value of X-A`},
	} {
		req, resp, errs := policy.CompileHeaderEdits([]HeaderEdit{tt.edit}, DefaultIDHeader, tt.hostRW)
		var refused, malformed []*EditError
		for _, e := range errs {
			if e.Refused {
				refused = append(refused, e)
			} else {
				malformed = append(malformed, e)
			}
		}
		if tt.err != "" {
			if len(malformed) != 1 || malformed[0].Error() != tt.err || req != nil || resp != nil {
				t.Errorf("%+v: errors %v (edits %v %v), want %q and no edits", tt.edit, errs, req, resp, tt.err)
			}
			continue
		}
		if len(malformed) != 0 {
			t.Errorf("%+v: malformed %v", tt.edit, malformed)
			continue
		}
		if tt.refused == "" && len(refused) != 0 || tt.refused != "" && (len(refused) == 0 || refused[0].Error() != tt.refused) {
			t.Errorf("%+v: refused %v, want %q", tt.edit, refused, tt.refused)
		}
		if n := len(refused); tt.edit.Position == HeaderBoth && n == 0 && (req == nil || resp == nil) ||
			tt.edit.Position == HeaderRequest && resp != nil || tt.edit.Position == HeaderResponse && req != nil {
			t.Errorf("%+v: directions %v %v", tt.edit, req, resp)
		}
	}
	// After a malformed edit, the others are still checked and reported.
	_, _, errs := policy.CompileHeaderEdits([]HeaderEdit{
		{Position: HeaderRequest, Name: "X-A", Value: "\r"}, {Position: HeaderRequest, Name: "Connection", Value: ""}, {Position: HeaderUnspecified, Name: "X-B", Value: ""},
	}, DefaultIDHeader, false)
	if len(errs) != 3 || errs[0].Part != "value" || errs[0].Refused || errs[1].Index != 1 || !errs[1].Refused || errs[1].Part != "key" ||
		errs[2].Index != 2 || errs[2].Part != "position" {
		t.Errorf("errors %v", errs)
	}
}

func TestCredentials(t *testing.T) {
	creds, errs := policy.NewCredentials([]string{
		hashEntry("bob", "pw"),
		"ALICE:" + strings.ToUpper(hashEntry("x", "pw2")[2:]), // upper-case hex is accepted
		"nocolon", "a:b:" + strings.Repeat("0", 64), "c:" + strings.Repeat("0", 63), "d:" + strings.Repeat("g", 64),
		"e:" + strings.Repeat("0", 66), // longer than a digest: once a panic in hex.Decode
	})
	if creds.Len() != 2 || len(errs) != 5 {
		t.Fatalf("%d accounts, errors %v", creds.Len(), errs)
	}
	for i, e := range errs {
		var ce *CredentialError
		if !errors.As(e, &ce) || ce.Index != i+2 {
			t.Errorf("error %d: %#v, want a *CredentialError for entry %d", i, e, i+2)
		}
	}
	for _, e := range errs {
		if strings.Contains(e.Error(), strings.Repeat("0", 63)) {
			t.Errorf("an error shows the entry: %v", e)
		}
	}
	check := func(v ...string) bool {
		var r http1.Request
		for _, s := range v {
			r.Fields = append(r.Fields, http1.Field{Name: []byte("Authorization"), Value: []byte(s)})
		}
		return creds.Check(&r)
	}
	if !check(basic("bob:pw")) || !check(basic("ALICE:pw2")) || check(basic("alice:pw2")) || check(basic("bob:pw2")) || check() ||
		check("Basic") || check("Basic ") || check("Basicx "+base64.StdEncoding.EncodeToString([]byte("bob:pw"))) ||
		check("Basic\t"+base64.StdEncoding.EncodeToString([]byte("bob:pw"))) {
		t.Error("check")
	}
	var none *Credentials
	if none.Check(&http1.Request{Fields: []http1.Field{{Name: []byte("Authorization"), Value: []byte(basic("bob:pw"))}}}) {
		t.Error("nil credentials accept")
	}
	r := http1.Request{Fields: []http1.Field{{Name: []byte("Authorization"), Value: []byte(basic("bob:pw"))}}}
	if n := testing.AllocsPerRun(100, func() { creds.Check(&r) }); n != 0 {
		t.Errorf("check allocates %v times", n)
	}
}

func TestChallenge(t *testing.T) {
	for _, tt := range [][2]string{
		{`Basic realm="shop"`, `Basic realm="shop"`},
		{`basic realm=x`, `basic realm=x`},
		{`Basic`, `Basic`},
		{`shop`, `Basic realm="shop"`},
		{`My "big" \shop`, `Basic realm="My \"big\" \\shop"`},
		{`Basically`, `Basic realm="Basically"`},
		{"a\r\nb", "error"},
	} {
		got, err := policy.Challenge(tt[0])
		if err != nil {
			got = "error"
		}
		if got != tt[1] {
			t.Errorf("%q: %q, want %q", tt[0], got, tt[1])
		}
	}
}
