package answers

import (
	"strconv"
	"strings"
	"testing"

	"github.com/sozu-go/sozu/worker/http1"
)

func render(t *testing.T, tmpl *Template, v Vars) string {
	t.Helper()
	out := tmpl.Append(nil, &v)
	var resp http1.Response
	if err := http1.ParseResponse(&resp, out, []byte("GET"), nil); err != nil {
		t.Fatalf("answer is not a valid response: %v\n%q", err, out)
	}
	if !v.Head && int64(len(out)-resp.HeadLen) != resp.ContentLength {
		t.Fatalf("Content-Length %d, body %d bytes\n%q", resp.ContentLength, len(out)-resp.HeadLen, out)
	}
	if resp.KeepAlive {
		t.Fatalf("answer keeps the connection alive\n%q", out)
	}
	return string(out)
}

func TestDefaults(t *testing.T) {
	for _, code := range []int{400, 401, 404, 408, 413, 414, 417, 431, 501, 502, 503, 504, 505, 599} {
		out := render(t, Default(code), Vars{RequestID: []byte("01ARZ3NDEKTSV4RRFFQ69G5FAV"), IDHeader: "Sozu-Id"})
		if !strings.HasPrefix(out, "HTTP/1.1 "+strconv.Itoa(code)+" ") || !strings.Contains(out, "\r\nSozu-Id: 01ARZ3NDEKTSV4RRFFQ69G5FAV\r\n") {
			t.Errorf("default %d: %q", code, out)
		}
	}
	out := render(t, Default(404), Vars{Head: true})
	if !strings.HasSuffix(out, "\r\n\r\n") || !strings.Contains(out, "Content-Length: 14\r\n") {
		t.Errorf("HEAD answer: %q", out)
	}
}

func TestCompile(t *testing.T) {
	vars := Vars{RequestID: []byte("RID"), IDHeader: "Sozu-Id", ClusterID: "shop", BackendID: "b1"}
	tests := []struct {
		name, src string
		code      int
		want      string
	}{
		{"full response, LF newlines", "HTTP/1.1 503 Service Unavailable\nCache-Control: no-cache\nConnection: keep-alive\nContent-Length: 999\nSozu-Id: fake\nX-Cluster: %CLUSTER_ID\n\n<h1>down</h1> %REQUEST_ID %BACKEND_ID 100%\n", 503,
			"HTTP/1.1 503 Service Unavailable\r\nCache-Control: no-cache\r\nX-Cluster: shop\r\nSozu-Id: RID\r\nContent-Length: 26\r\nConnection: close\r\n\r\n<h1>down</h1> RID b1 100%\n"},
		{"full response, CRLF newlines", "HTTP/1.1 404 Nope\r\nX-A: 1\r\n\r\nnope", 404,
			"HTTP/1.1 404 Nope\r\nX-A: 1\r\nSozu-Id: RID\r\nContent-Length: 4\r\nConnection: close\r\n\r\nnope"},
		{"status differs from key", "HTTP/1.1 200 OK\n\nfine", 503,
			"HTTP/1.1 200 OK\r\nSozu-Id: RID\r\nContent-Length: 4\r\nConnection: close\r\n\r\nfine"},
		{"head only", "HTTP/1.1 404 Not Found\n", 404,
			"HTTP/1.1 404 Not Found\r\nSozu-Id: RID\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"},
		{"body only", "<p>%CLUSTER_ID is down</p>", 503,
			"HTTP/1.1 503 Service Unavailable\r\nCache-Control: no-cache\r\nContent-Type: text/html; charset=utf-8\r\nSozu-Id: RID\r\nContent-Length: 19\r\nConnection: close\r\n\r\n<p>shop is down</p>"},
		{"a template's Date dropped", "HTTP/1.1 404 Not Found\nDate: Tue, 15 Nov 1994 08:12:31 GMT\n\n", 404,
			"HTTP/1.1 404 Not Found\r\nSozu-Id: RID\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"},
	}
	for _, tt := range tests {
		tmpl, err := Compile(tt.code, tt.src)
		if err != nil {
			t.Errorf("%s: %v", tt.name, err)
			continue
		}
		if got := render(t, tmpl, vars); got != tt.want {
			t.Errorf("%s:\n got %q\nwant %q", tt.name, got, tt.want)
		}
	}
}

// TestDate: the Date of Vars is the answer's one Date field, a
// template's own being dropped when compiled (RFC 9110 §6.6.1: the proxy
// is the origin server of its answers).
func TestDate(t *testing.T) {
	tmpl, err := Compile(503, "HTTP/1.1 503 Down\nDate: Tue, 15 Nov 1994 08:12:31 GMT\n\ndown")
	if err != nil {
		t.Fatal(err)
	}
	const now = "Mon, 07 Dec 2026 13:00:00 GMT"
	for _, tm := range []*Template{tmpl, Default(404)} {
		out := render(t, tm, Vars{Date: []byte(now)})
		if strings.Count(out, "Date: ") != 1 || !strings.Contains(out, "\r\nDate: "+now+"\r\n") {
			t.Errorf("answer %q, want one Date: %s", out, now)
		}
	}
}

func TestCompileErrors(t *testing.T) {
	for _, tt := range []struct {
		src  string
		want string
	}{
		{"HTTP/1.1 5x3 Bad\n\n", "line 1: status line"},
		{"HTTP/2 503 Bad\n\n", "line 1: status line"},
		{"HTTP/1.1 503\x01 Bad\n\n", "line 1"},
		{"HTTP/1.1 503 Bad\nno colon\n\n", "line 2: not a field line"},
		{"HTTP/1.1 503 Bad\nX-A: 1\nBad Name: x\n\n", "line 3: not a field line"},
		{"HTTP/1.1 503 Bad\nX-A: a\x00b\n\n", "line 2: control character"},
		// No final response with a body: a client would read the body as
		// the next response (found by FuzzCompileAppend).
		{"HTTP/1.1 101 Switching Protocols\n\n", "line 1: status 101"},
		{"HTTP/1.1 100 Continue\n\nx", "line 1: status 100"},
		{"HTTP/1.1 204 No Content\n\n", "line 1: status 204"},
		{"HTTP/1.1 304 Not Modified\n\n", "line 1: status 304"},
	} {
		if _, err := Compile(503, tt.src); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Compile(%q) = %v, want %q", tt.src, err, tt.want)
		}
	}
	if _, err := Compile(42, "x"); err == nil {
		t.Error("status 42 accepted")
	}
	if _, err := Compile(101, "<p>down</p>"); err == nil || !strings.Contains(err.Error(), "answer 101: status 101") {
		t.Errorf("a body for 101 compiled: %v", err)
	}
}

func TestHeadValuesCannotInjectFields(t *testing.T) {
	tmpl, err := Compile(503, "HTTP/1.1 503 Down\nX-Cluster: %CLUSTER_ID\n\n")
	if err != nil {
		t.Fatal(err)
	}
	out := render(t, tmpl, Vars{ClusterID: "a\r\nSet-Cookie: x=1", RequestID: []byte("R\nX: y"), IDHeader: "Sozu-Id"})
	if strings.Contains(out, "\r\nSet-Cookie") || strings.Contains(out, "\nX: y") {
		t.Fatalf("a variable injected a field: %q", out)
	}
}

func TestSet(t *testing.T) {
	s, errs := NewSet(map[string]string{"503": "down", "404": "", "abc": "x", "502": "HTTP/1.1 50 x\n\n"})
	if len(errs) != 2 || !strings.Contains(errs[0].Error(), "502") || !strings.Contains(errs[1].Error(), `"abc"`) {
		t.Fatalf("errors %v", errs)
	}
	if s.Len() != 1 || s.Lookup(503) == nil || s.Lookup(404) != nil {
		t.Fatalf("set has %d answers", s.Len())
	}
	var nilSet *Set
	if nilSet.Lookup(503) != nil || nilSet.Len() != 0 {
		t.Fatal("nil set has answers")
	}
}

func TestRedirect(t *testing.T) {
	hsts := []byte("Strict-Transport-Security: max-age=600\r\n")
	loc := []byte(`https://a.test/x?q="<b>"&y`)
	tests := []struct {
		name string
		tmpl *Template
		v    Vars
		want string
	}{
		{"default", Default(301), Vars{Location: []byte("https://a.test/x"), IDHeader: "Sozu-Id", RequestID: []byte("RID")},
			"HTTP/1.1 301 Moved Permanently\r\nCache-Control: no-cache\r\nLocation: https://a.test/x\r\nSozu-Id: RID\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"},
		{"template with the location in the head and the body",
			mustCompile(t, 301, "HTTP/1.1 301 Moved Permanently\nLocation: %REDIRECT_LOCATION\nX-Where: there\n\n<a href=\"%REDIRECT_LOCATION\">moved</a>"),
			Vars{Location: loc},
			"HTTP/1.1 301 Moved Permanently\r\nLocation: " + string(loc) + "\r\nX-Where: there\r\nContent-Length: 64\r\nConnection: close\r\n\r\n" +
				`<a href="https://a.test/x?q=&#34;&lt;b&gt;&#34;&amp;y">moved</a>`},
		{"body template gets a Location field", mustCompile(t, 301, "moved to %REDIRECT_LOCATION"), Vars{Location: []byte("https://b.test/\r\nX-Evil: 1")},
			"HTTP/1.1 301 Moved Permanently\r\nCache-Control: no-cache\r\nContent-Type: text/html; charset=utf-8\r\nLocation: https://b.test/X-Evil: 1\r\nContent-Length: 33\r\nConnection: close\r\n\r\nmoved to https://b.test/X-Evil: 1"},
		{"302", Default(302), Vars{Location: []byte("http://a.test/")},
			"HTTP/1.1 302 Found\r\nCache-Control: no-cache\r\nLocation: http://a.test/\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"},
		{"308", Default(308), Vars{Location: []byte("http://a.test/")},
			"HTTP/1.1 308 Permanent Redirect\r\nCache-Control: no-cache\r\nLocation: http://a.test/\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"},
		{"extra fields", Default(404), Vars{Fields: hsts},
			"HTTP/1.1 404 Not Found\r\nCache-Control: no-cache\r\nContent-Type: text/plain; charset=utf-8\r\nStrict-Transport-Security: max-age=600\r\nContent-Length: 14\r\nConnection: close\r\n\r\n404 Not Found\n"},
	}
	for _, tt := range tests {
		if got := render(t, tt.tmpl, tt.v); got != tt.want {
			t.Errorf("%s:\n got %q\nwant %q", tt.name, got, tt.want)
		}
	}
}

func mustCompile(t *testing.T, code int, src string) *Template {
	t.Helper()
	tmpl, err := Compile(code, src)
	if err != nil {
		t.Fatal(err)
	}
	return tmpl
}

func TestUnauthorized(t *testing.T) {
	realm := []byte(`Basic realm="<shop>"`)
	tests := []struct {
		name string
		tmpl *Template
		v    Vars
		want string
	}{
		{"default with a challenge", Default(401), Vars{WWWAuthenticate: realm},
			"HTTP/1.1 401 Unauthorized\r\nCache-Control: no-cache\r\nContent-Type: text/plain; charset=utf-8\r\nWWW-Authenticate: Basic realm=\"<shop>\"\r\nContent-Length: 17\r\nConnection: close\r\n\r\n401 Unauthorized\n"},
		{"default without", Default(401), Vars{},
			"HTTP/1.1 401 Unauthorized\r\nCache-Control: no-cache\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 17\r\nConnection: close\r\n\r\n401 Unauthorized\n"},
		{"upstream-style line, elided without a challenge", mustCompile(t, 401, "HTTP/1.1 401 Unauthorized\nWWW-Authenticate: %WWW_AUTHENTICATE\nX-A: 1\n\n%WWW_AUTHENTICATE"), Vars{},
			"HTTP/1.1 401 Unauthorized\r\nX-A: 1\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"},
		{"upstream-style line, with a challenge (escaped in the body)", mustCompile(t, 401, "HTTP/1.1 401 Unauthorized\nWWW-Authenticate: %WWW_AUTHENTICATE\n\n%WWW_AUTHENTICATE"), Vars{WWWAuthenticate: realm},
			"HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Basic realm=\"<shop>\"\r\nContent-Length: 34\r\nConnection: close\r\n\r\nBasic realm=&#34;&lt;shop&gt;&#34;"},
		{"template with its own challenge", mustCompile(t, 401, "HTTP/1.1 401 Unauthorized\nWWW-Authenticate: Basic realm=\"fixed\"\n\n"), Vars{WWWAuthenticate: realm},
			"HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Basic realm=\"fixed\"\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"},
		{"a challenge cannot add a field", Default(401), Vars{WWWAuthenticate: []byte("Basic\r\nX-Evil: 1")},
			"HTTP/1.1 401 Unauthorized\r\nCache-Control: no-cache\r\nContent-Type: text/plain; charset=utf-8\r\nWWW-Authenticate: BasicX-Evil: 1\r\nContent-Length: 17\r\nConnection: close\r\n\r\n401 Unauthorized\n"},
	}
	for _, tt := range tests {
		if got := render(t, tt.tmpl, tt.v); got != tt.want {
			t.Errorf("%s:\n got %q\nwant %q", tt.name, got, tt.want)
		}
	}
}
