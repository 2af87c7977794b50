package http1

import (
	"errors"
	"strings"
	"testing"
)

// head joins lines with CRLF and ends the head with an empty line.
func head(lines ...string) string { return strings.Join(lines, "\r\n") + "\r\n\r\n" }

// get is a well-formed HTTP/1.1 GET head with extra field lines.
func get(fields ...string) string {
	return head(append([]string{"GET / HTTP/1.1", "Host: example.com"}, fields...)...)
}

// post is get with method POST.
func post(fields ...string) string {
	return head(append([]string{"POST /upload HTTP/1.1", "Host: example.com"}, fields...)...)
}

var badRequests = []struct {
	name   string
	in     string
	status int
}{
	// Content-Length and Transfer-Encoding together, and TE obfuscations.
	{"CL then TE", post("Content-Length: 5", "Transfer-Encoding: chunked"), 400},
	{"TE then CL", post("Transfer-Encoding: chunked", "Content-Length: 5"), 400},
	{"TE then CL 0", post("Transfer-Encoding: chunked", "Content-Length: 0"), 400},
	{"TE xchunked", post("Transfer-Encoding: xchunked"), 400},
	{"TE chunkedx", post("Transfer-Encoding: chunkedx"), 400},
	{"TE chunked, identity", post("Transfer-Encoding: chunked, identity"), 400},
	{"TE identity", post("Transfer-Encoding: identity"), 400},
	{"TE quoted", post(`Transfer-Encoding: "chunked"`), 400},
	{"TE VT before", post("Transfer-Encoding: \x0bchunked"), 400},
	{"TE FF after", post("Transfer-Encoding: chunked\x0c"), 400},
	{"TE NUL after", post("Transfer-Encoding: chunked\x00"), 400},
	{"TE gzip, chunked", post("Transfer-Encoding: gzip, chunked"), 501},
	{"TE gzip line then chunked line", post("Transfer-Encoding: gzip", "Transfer-Encoding: chunked"), 400},
	{"TE empty line then chunked line", post("Transfer-Encoding:", "Transfer-Encoding: chunked"), 400},
	{"TE chunked line then gzip line", post("Transfer-Encoding: chunked", "Transfer-Encoding: gzip"), 400},
	{"TE chunked twice in a list", post("Transfer-Encoding: chunked, chunked"), 400},
	{"TE chunked on two lines", post("Transfer-Encoding: chunked", "Transfer-Encoding: chunked"), 400},
	{"TE chunked with parameter", post("Transfer-Encoding: chunked;q=1"), 400},
	{"TE empty", post("Transfer-Encoding: "), 400},
	{"TE only commas", post("Transfer-Encoding: , ,"), 400},
	{"TE chunked and garbage", post("Transfer-Encoding: chunked foo"), 400},
	{"TE unterminated quote", post(`Transfer-Encoding: gzip;a="x, chunked`), 400},
	{"TE in HTTP/1.0", head("POST / HTTP/1.0", "Transfer-Encoding: chunked"), 400},
	{"TE space before colon", post("Transfer-Encoding : chunked"), 400},
	{"Transfer_Encoding", post("Transfer_Encoding: chunked"), 400},
	{"Content_Length", post("Content_Length: 5"), 400},

	// Content-Length syntax.
	{"CL plus sign", post("Content-Length: +5"), 400},
	{"CL minus sign", post("Content-Length: -5"), 400},
	{"CL inner space", post("Content-Length: 5 5"), 400},
	{"CL hex", post("Content-Length: 0x5"), 400},
	{"CL list of equal values", post("Content-Length: 5, 5"), 400},
	{"CL two equal lines", post("Content-Length: 5", "Content-Length: 5"), 400},
	{"CL two differing lines", post("Content-Length: 5", "Content-Length: 6"), 400},
	{"CL overflow", post("Content-Length: 99999999999999999999"), 400},
	{"CL int64 max plus one", post("Content-Length: 9223372036854775808"), 400},
	{"CL empty", post("Content-Length: "), 400},
	{"CL decimal point", post("Content-Length: 5.0"), 400},

	// Line endings and folding.
	{"bare LF after request-line", "GET / HTTP/1.1\nHost: a\r\n\r\n", 400},
	{"bare LF after field", "GET / HTTP/1.1\r\nHost: a\n\r\n", 400},
	{"bare LF as final line", "GET / HTTP/1.1\r\nHost: a\r\n\n", 400},
	{"bare LF before request-line", "\nGET / HTTP/1.1\r\nHost: a\r\n\r\n", 400},
	{"bare CR in value", get("X-A: a\rb"), 400},
	{"bare CR ending a value", "GET / HTTP/1.1\r\nHost: a\r\nX: b\r\r\n\r\n", 400},
	{"bare CR at line start", "GET / HTTP/1.1\r\nHost: a\r\n\rX: b\r\n\r\n", 400},
	{"bare CR in request-line", "GET /\r HTTP/1.1\r\nHost: a\r\n\r\n", 400},
	{"obs-fold with SP", get("X-A: a", " b"), 400},
	{"obs-fold with HTAB", get("X-A: a", "\tb"), 400},
	{"whitespace before first field", head("GET / HTTP/1.1", " Host: a"), 400},

	// Field syntax.
	{"NUL in value", get("X-A: a\x00b"), 400},
	{"DEL in value", get("X-A: a\x7fb"), 400},
	{"SOH in value", get("X-A: \x01"), 400},
	{"ESC in long value", get("X-A: 0123456789abcdef\x1b0123456789"), 400},
	{"space before colon", get("X-A : b"), 400},
	{"tab before colon", get("X-A\t: b"), 400},
	{"empty field name", get(": b"), 400},
	{"field line without colon", get("X-A b"), 400},
	{"non-token field name", get("X(A): b"), 400},
	{"non-ASCII field name", get("X-\xc3\xa9: b"), 400},

	// Request-line.
	{"non-token method", head("G(T / HTTP/1.1", "Host: a"), 400},
	{"empty method", head(" / HTTP/1.1", "Host: a"), 400},
	{"method too long", head(strings.Repeat("M", 40)+" / HTTP/1.1", "Host: a"), 501},
	{"HTTP/0.9 request", "GET /\r\n\r\n", 400},
	{"HTTP/2.0", head("GET / HTTP/2.0", "Host: a"), 505},
	{"HTTP/1.2", head("GET / HTTP/1.2", "Host: a"), 505},
	{"HTTP/0.9 version", head("GET / HTTP/0.9", "Host: a"), 505},
	{"lower-case version", head("GET / http/1.1", "Host: a"), 400},
	{"HTTP/1.10", head("GET / HTTP/1.10", "Host: a"), 400},
	{"HTTP/11", head("GET / HTTP/11", "Host: a"), 400},
	{"trailing SP after version", head("GET / HTTP/1.1 ", "Host: a"), 400},
	{"two SP before target", head("GET  / HTTP/1.1", "Host: a"), 400},
	{"two SP before version", head("GET /  HTTP/1.1", "Host: a"), 400},
	{"HTAB separator", head("GET\t/ HTTP/1.1", "Host: a"), 400},
	{"three parts with SP in target", head("GET /a b HTTP/1.1", "Host: a"), 400},

	// Host.
	{"missing Host in 1.1", head("GET / HTTP/1.1", "X-A: b"), 400},
	{"two Hosts", get("Host: example.com"), 400},
	{"two different Hosts", get("Host: evil.com"), 400},
	{"Host port 0", head("GET / HTTP/1.1", "Host: a:0"), 400},
	{"Host port 65536", head("GET / HTTP/1.1", "Host: a:65536"), 400},
	{"Host port abc", head("GET / HTTP/1.1", "Host: a:abc"), 400},
	{"Host port empty", head("GET / HTTP/1.1", "Host: a:"), 400},
	{"Host port leading zero", head("GET / HTTP/1.1", "Host: a:080"), 400},
	{"Host port sign", head("GET / HTTP/1.1", "Host: a:+80"), 400},
	{"Host empty", head("GET / HTTP/1.1", "Host: "), 400},
	{"Host userinfo", head("GET / HTTP/1.1", "Host: user@a"), 400},
	{"Host with space", head("GET / HTTP/1.1", "Host: a b"), 400},
	{"Host with path", head("GET / HTTP/1.1", "Host: a/b"), 400},
	{"Host percent-encoded", head("GET / HTTP/1.1", "Host: a%2eb"), 400},
	{"Host bad IPv6", head("GET / HTTP/1.1", "Host: [::g]"), 400},
	{"Host IPv6 zone", head("GET / HTTP/1.1", "Host: [fe80::1%25eth0]"), 400},
	{"Host IPv6 unterminated", head("GET / HTTP/1.1", "Host: [::1"), 400},
	{"Host IPv4 octet 256", head("GET / HTTP/1.1", "Host: 1.2.3.256"), 400},
	{"Host IPv4 leading zero", head("GET / HTTP/1.1", "Host: 01.2.3.4"), 400},
	{"Host three octets", head("GET / HTTP/1.1", "Host: 1.2.3"), 400},
	{"Host too long", head("GET / HTTP/1.1", "Host: "+strings.Repeat("a", 300)), 400},

	// Request-target.
	{"non-ASCII in target", head("GET /caf\xc3\xa9 HTTP/1.1", "Host: a"), 400},
	{"control byte in target", head("GET /a\x01 HTTP/1.1", "Host: a"), 400},
	{"DEL in target", head("GET /a\x7f HTTP/1.1", "Host: a"), 400},
	{"fragment in target", head("GET /a#b HTTP/1.1", "Host: a"), 400},
	{"bad percent-encoding", head("GET /a%zz HTTP/1.1", "Host: a"), 400},
	{"truncated percent-encoding", head("GET /a%2 HTTP/1.1", "Host: a"), 400},
	{"backslash in path", head("GET /a\\..\\b HTTP/1.1", "Host: a"), 400},
	{"quote in query", head("GET /a?b=\"c\" HTTP/1.1", "Host: a"), 400},
	{"angle bracket in path", head("GET /<script> HTTP/1.1", "Host: a"), 400},
	{"asterisk-form with GET", head("GET * HTTP/1.1", "Host: a"), 400},
	{"CONNECT origin-form", head("CONNECT / HTTP/1.1", "Host: a"), 400},
	{"CONNECT without port", head("CONNECT example.com HTTP/1.1", "Host: example.com"), 400},
	{"CONNECT port 0", head("CONNECT example.com:0 HTTP/1.1", "Host: example.com"), 400},
	{"CONNECT with content", head("CONNECT example.com:443 HTTP/1.1", "Host: example.com:443", "Content-Length: 1"), 400},
	{"authority-form with GET", head("GET example.com:80 HTTP/1.1", "Host: a"), 400},
	{"relative target", head("GET a/b HTTP/1.1", "Host: a"), 400},
	{"ftp absolute-form", head("GET ftp://a/b HTTP/1.1", "Host: a"), 400},
	{"absolute-form userinfo", head("GET http://u:p@a/b HTTP/1.1", "Host: a"), 400},
	{"absolute-form empty authority", head("GET http:///b HTTP/1.1", "Host: a"), 400},
	{"absolute-form bad port", head("GET http://a:99999/ HTTP/1.1", "Host: a"), 400},
	{"absolute-form one slash", head("GET http:/a/b HTTP/1.1", "Host: a"), 400},
	{"absolute-form without Host", head("GET http://a/b HTTP/1.1", "X: y"), 400},
	{"absolute-form with invalid Host", head("GET http://a/b HTTP/1.1", "Host: a b"), 400},

	// Expect, Upgrade, Connection.
	{"unknown expectation", post("Expect: 200-ok", "Content-Length: 1"), 417},
	{"expectation with parameter", post("Expect: 100-continue;x=1", "Content-Length: 1"), 417},
	{"two Upgrade fields", get("Connection: upgrade", "Upgrade: websocket", "Upgrade: h2c"), 400},
	{"malformed Upgrade", get("Connection: upgrade", "Upgrade: web socket"), 400},
	{"malformed Connection", get("Connection: close;x"), 400},
	{"too many Connection options", get("Connection: a,b,c,d,e,f,g,h,i,j,k,l,m,n,o,p,q"), 400},

	// Size limits.
	{"request-line too long", head("GET /"+strings.Repeat("a", DefaultMaxStartLine)+" HTTP/1.1", "Host: a"), 414},
	{"unterminated request-line too long", "GET /" + strings.Repeat("a", DefaultMaxStartLine), 414},
	{"request-line longer than a head", head("GET /"+strings.Repeat("a", DefaultMaxHeadBytes)+" HTTP/1.1", "Host: a"), 414},
	{"head too large", get("X-A: " + strings.Repeat("a", DefaultMaxHeadBytes)), 431},
	{"too many fields", get(strings.Repeat("X-A: b\r\n", DefaultMaxFields) + "X-A: b"), 431},
	{"incomplete head", "GET / HTTP/1.1\r\nHost: a\r\n", 400},
	{"empty input", "", 400},
}

func TestParseRequestRejects(t *testing.T) {
	if len(badRequests) < 60 {
		t.Fatalf("only %d malformed cases", len(badRequests))
	}
	var r Request
	for _, tc := range badRequests {
		t.Run(tc.name, func(t *testing.T) {
			err := ParseRequest(&r, []byte(tc.in), nil)
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("ParseRequest(%q) = %v, want an *Error with status %d", tc.in, err, tc.status)
			}
			if e.Status != tc.status {
				t.Fatalf("ParseRequest(%q): status %d (%v), want %d", tc.in, e.Status, e, tc.status)
			}
			if e.Offset < 0 || e.Offset > len(tc.in) {
				t.Errorf("offset %d outside the input (%d bytes)", e.Offset, len(tc.in))
			}
		})
	}
}

type wantReq struct {
	method, target, path, authority string
	form                            TargetForm
	minor                           int
	body                            BodyKind
	cl                              int64
	keepAlive, expect100, upgrade   bool
	upgradeProto                    string
	fields                          int
}

var goodRequests = []struct {
	name string
	in   string
	want wantReq
}{
	{"simple GET", get(),
		wantReq{"GET", "/", "/", "example.com", FormOrigin, 1, BodyNone, -1, true, false, false, "", 1}},
	{"HTTP/1.0 without Host", "GET /x HTTP/1.0\r\n\r\n",
		wantReq{"GET", "/x", "/x", "", FormOrigin, 0, BodyNone, -1, false, false, false, "", 0}},
	{"HTTP/1.0 keep-alive", head("GET / HTTP/1.0", "Connection: Keep-Alive", "Host: a"),
		wantReq{"GET", "/", "/", "a", FormOrigin, 0, BodyNone, -1, true, false, false, "", 2}},
	{"HTTP/1.1 close", get("Connection: keep-alive, close"),
		wantReq{"GET", "/", "/", "example.com", FormOrigin, 1, BodyNone, -1, false, false, false, "", 2}},
	{"lower-case method is a token", head("get / HTTP/1.1", "Host: a"),
		wantReq{"get", "/", "/", "a", FormOrigin, 1, BodyNone, -1, true, false, false, "", 1}},
	{"chunked", post("Transfer-Encoding: chunked"),
		wantReq{"POST", "/upload", "/upload", "example.com", FormOrigin, 1, BodyChunked, -1, true, false, false, "", 2}},
	{"chunked any case with OWS", post("Transfer-Encoding: \t CHUNKED \t"),
		wantReq{"POST", "/upload", "/upload", "example.com", FormOrigin, 1, BodyChunked, -1, true, false, false, "", 2}},
	{"chunked after empty list elements", post("Transfer-Encoding: , chunked,"),
		wantReq{"POST", "/upload", "/upload", "example.com", FormOrigin, 1, BodyChunked, -1, true, false, false, "", 2}},
	{"Content-Length with OWS and leading zeros", post("Content-Length:  007 "),
		wantReq{"POST", "/upload", "/upload", "example.com", FormOrigin, 1, BodyLength, 7, true, false, false, "", 2}},
	{"Content-Length 0", post("content-length: 0"),
		wantReq{"POST", "/upload", "/upload", "example.com", FormOrigin, 1, BodyLength, 0, true, false, false, "", 2}},
	{"Content-Length int64 max", post("Content-Length: 9223372036854775807"),
		wantReq{"POST", "/upload", "/upload", "example.com", FormOrigin, 1, BodyLength, 1<<63 - 1, true, false, false, "", 2}},
	{"absolute-form overrides Host", head("GET http://Other.example:8080/p?q=1 HTTP/1.1", "Host: example.com"),
		wantReq{"GET", "http://Other.example:8080/p?q=1", "/p?q=1", "Other.example:8080", FormAbsolute, 1, BodyNone, -1, true, false, false, "", 1}},
	{"absolute-form without path", head("GET HTTPS://a.example HTTP/1.1", "Host: a.example"),
		wantReq{"GET", "HTTPS://a.example", "", "a.example", FormAbsolute, 1, BodyNone, -1, true, false, false, "", 1}},
	{"absolute-form query only", head("GET http://a?x HTTP/1.1", "Host: a"),
		wantReq{"GET", "http://a?x", "?x", "a", FormAbsolute, 1, BodyNone, -1, true, false, false, "", 1}},
	{"CONNECT", head("CONNECT example.com:443 HTTP/1.1", "Host: example.com:443"),
		wantReq{"CONNECT", "example.com:443", "", "example.com:443", FormAuthority, 1, BodyNone, -1, true, false, false, "", 1}},
	{"CONNECT IPv6", head("CONNECT [2001:db8::1]:443 HTTP/1.1", "Host: [2001:db8::1]:443"),
		wantReq{"CONNECT", "[2001:db8::1]:443", "", "[2001:db8::1]:443", FormAuthority, 1, BodyNone, -1, true, false, false, "", 1}},
	{"OPTIONS *", head("OPTIONS * HTTP/1.1", "Host: a"),
		wantReq{"OPTIONS", "*", "*", "a", FormAsterisk, 1, BodyNone, -1, true, false, false, "", 1}},
	{"Expect 100-continue", post("Expect: 100-Continue", "Content-Length: 3"),
		wantReq{"POST", "/upload", "/upload", "example.com", FormOrigin, 1, BodyLength, 3, true, true, false, "", 3}},
	{"Expect ignored in 1.0", head("POST / HTTP/1.0", "Expect: 100-continue", "Content-Length: 3"),
		wantReq{"POST", "/", "/", "", FormOrigin, 0, BodyLength, 3, false, false, false, "", 2}},
	{"websocket upgrade", get("Connection: Upgrade", "Upgrade: websocket"),
		wantReq{"GET", "/", "/", "example.com", FormOrigin, 1, BodyNone, -1, true, false, true, "websocket", 3}},
	{"Upgrade without the connection option", get("Upgrade: websocket"),
		wantReq{"GET", "/", "/", "example.com", FormOrigin, 1, BodyNone, -1, true, false, false, "", 2}},
	{"Upgrade ignored in 1.0", head("GET / HTTP/1.0", "Connection: upgrade", "Upgrade: websocket"),
		wantReq{"GET", "/", "/", "", FormOrigin, 0, BodyNone, -1, false, false, false, "", 2}},
	{"leading empty lines", "\r\n\r\n" + get(),
		wantReq{"GET", "/", "/", "example.com", FormOrigin, 1, BodyNone, -1, true, false, false, "", 1}},
	{"obs-text and HTAB in a value", get("X-A: caf\xe9\tau lait"),
		wantReq{"GET", "/", "/", "example.com", FormOrigin, 1, BodyNone, -1, true, false, false, "", 2}},
	{"browser query bytes", head("GET /a|b^c/[d]?e[]=1&f={g}|`h`^\\ HTTP/1.1", "Host: a"),
		wantReq{"GET", "/a|b^c/[d]?e[]=1&f={g}|`h`^\\", "/a|b^c/[d]?e[]=1&f={g}|`h`^\\", "a", FormOrigin, 1, BodyNone, -1, true, false, false, "", 1}},
	{"percent-encoding", head("GET /%7e%2F?x=%20 HTTP/1.1", "Host: a"),
		wantReq{"GET", "/%7e%2F?x=%20", "/%7e%2F?x=%20", "a", FormOrigin, 1, BodyNone, -1, true, false, false, "", 1}},
	{"IPv6 Host with port", head("GET / HTTP/1.1", "Host: [::ffff:192.0.2.1]:8080"),
		wantReq{"GET", "/", "/", "[::ffff:192.0.2.1]:8080", FormOrigin, 1, BodyNone, -1, true, false, false, "", 1}},
	{"IPv4 Host, port 65535", head("GET / HTTP/1.1", "Host: 192.0.2.1:65535"),
		wantReq{"GET", "/", "/", "192.0.2.1:65535", FormOrigin, 1, BodyNone, -1, true, false, false, "", 1}},
	{"Host with trailing dot and OWS", head("GET / HTTP/1.1", "Host: \texample.com.  "),
		wantReq{"GET", "/", "/", "example.com.", FormOrigin, 1, BodyNone, -1, true, false, false, "", 1}},
	{"empty field value", get("X-Empty:"),
		wantReq{"GET", "/", "/", "example.com", FormOrigin, 1, BodyNone, -1, true, false, false, "", 2}},
}

func TestParseRequestAccepts(t *testing.T) {
	var r Request
	for _, tc := range goodRequests {
		t.Run(tc.name, func(t *testing.T) {
			in := []byte(tc.in + "BODY")
			if err := ParseRequest(&r, in, nil); err != nil {
				t.Fatalf("ParseRequest(%q): %v", tc.in, err)
			}
			got := wantReq{string(r.Method), string(r.Target), string(r.Path), string(r.Authority), r.Form, r.Minor,
				r.Body, r.ContentLength, r.KeepAlive, r.Expect100, r.Upgrade, string(r.UpgradeProto), len(r.Fields)}
			if got != tc.want {
				t.Fatalf("ParseRequest(%q)\n got %+v\nwant %+v", tc.in, got, tc.want)
			}
			if r.HeadLen != len(tc.in) {
				t.Fatalf("HeadLen = %d, want %d", r.HeadLen, len(tc.in))
			}
			if n, err := FindRequestHead(in, nil); n != len(tc.in) || err != nil {
				t.Fatalf("FindRequestHead = %d, %v; want %d", n, err, len(tc.in))
			}
		})
	}
}

func TestRequestAliasesInput(t *testing.T) {
	in := []byte(get("X-Long: " + strings.Repeat("v", 40)))
	var r Request
	if err := ParseRequest(&r, in, nil); err != nil {
		t.Fatal(err)
	}
	v, ok := r.Get("x-LONG")
	if !ok || len(v) != 40 {
		t.Fatalf("Get = %q, %v", v, ok)
	}
	v[0] = 'W' // aliasing: the input changes
	if !strings.Contains(string(in), "X-Long: Wvvv") {
		t.Fatal("field value does not alias the input")
	}
	if _, ok := r.Get("X-Missing"); ok {
		t.Fatal("Get found a missing field")
	}
	if n := Count(r.Fields, "host"); n != 1 {
		t.Fatalf("Count(host) = %d", n)
	}
}

func TestConnectionTokens(t *testing.T) {
	var r Request
	if err := ParseRequest(&r, []byte(get("Connection: keep-alive, X-Hop", "Connection: ,Upgrade")), nil); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, tok := range r.ConnectionTokens() {
		got = append(got, string(tok))
	}
	if strings.Join(got, "|") != "keep-alive|X-Hop|Upgrade" {
		t.Fatalf("ConnectionTokens = %q", got)
	}
	if !HasToken([]byte("a, Close ,b"), "close") || HasToken([]byte("closed"), "close") {
		t.Fatal("HasToken")
	}
}

func TestParseRequestZeroAllocs(t *testing.T) {
	in := []byte(browserRequest)
	var r Request
	if err := ParseRequest(&r, in, nil); err != nil {
		t.Fatal(err)
	}
	if n := testing.AllocsPerRun(100, func() {
		if err := ParseRequest(&r, in, nil); err != nil {
			t.Fatal(err)
		}
	}); n != 0 {
		t.Fatalf("ParseRequest: %v allocs per run, want 0", n)
	}
}

func TestLimits(t *testing.T) {
	lim := &Limits{MaxHeadBytes: 64, MaxStartLine: 20, MaxFields: 2}
	cases := []struct {
		in     string
		status int
	}{
		{head("GET /aaaaaaaaaaaaaaaaa HTTP/1.1", "Host: a"), 414},
		{head("GET / HTTP/1.1", "Host: a", "A: 1", "B: 2"), 431},
		{head("GET / HTTP/1.1", "Host: a", "A: "+strings.Repeat("x", 50)), 431},
	}
	var r Request
	for _, tc := range cases {
		err := ParseRequest(&r, []byte(tc.in), lim)
		var e *Error
		if !errors.As(err, &e) || e.Status != tc.status {
			t.Errorf("ParseRequest(%q) = %v, want status %d", tc.in, err, tc.status)
		}
	}
	if err := ParseRequest(&r, []byte(head("GET / HTTP/1.1", "Host: a", "A: 1")), lim); err != nil {
		t.Errorf("at the limits: %v", err)
	}
}
