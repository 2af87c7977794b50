package e2e

import (
	"strings"
	"testing"
)

// malformedCases are requests a strict HTTP/1.1 proxy must not forward:
// framing ambiguities that enable request smuggling, syntax that other
// hops read differently, and oversized heads. status is the answer
// expected before the proxy closes the connection ("" = a close without
// answer).
var malformedCases = []struct {
	name, raw, status string
}{
	// Content-Length and Transfer-Encoding together (CL.TE / TE.CL).
	{"CL then TE", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nG", "400"},
	{"TE then CL", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n8\r\nSMUGGLED\r\n0\r\n\r\n", "400"},
	{"TE in HTTP/1.0", "POST / HTTP/1.0\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", "400"},
	// Transfer-Encoding obfuscations.
	{"TE twice", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", "400"},
	{"TE chunked twice in a list", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, chunked\r\n\r\n0\r\n\r\n", "400"},
	{"TE xchunked", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: xchunked\r\n\r\n0\r\n\r\n", "400"},
	{"TE chunked then identity", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n", "400"},
	{"TE gzip, chunked", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n", "501"},
	{"TE quoted", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: \"chunked\"\r\n\r\n0\r\n\r\n", "400"},
	{"TE with parameter", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked;q=1\r\n\r\n0\r\n\r\n", "400"},
	{"TE vertical tab", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\x0b\r\n\r\n0\r\n\r\n", "400"},
	{"TE space before colon", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding : chunked\r\n\r\n0\r\n\r\n", "400"},
	{"TE underscore", "POST / HTTP/1.1\r\nHost: a\r\nTransfer_Encoding: chunked\r\n\r\n0\r\n\r\n", "400"},
	{"TE empty", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: \r\n\r\n", "400"},
	{"TE obs-fold", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding:\r\n chunked\r\n\r\n0\r\n\r\n", "400"},
	// Content-Length variants.
	{"CL twice, same value", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc", "400"},
	{"CL twice, different", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 30\r\n\r\nabc", "400"},
	{"CL list", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3, 3\r\n\r\nabc", "400"},
	{"CL negative", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: -3\r\n\r\nabc", "400"},
	{"CL plus sign", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +3\r\n\r\nabc", "400"},
	{"CL hex", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0x3\r\n\r\nabc", "400"},
	{"CL overflow", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 99999999999999999999\r\n\r\nabc", "400"},
	{"CL empty", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length:\r\n\r\nabc", "400"},
	{"CL space before colon", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length : 3\r\n\r\nabc", "400"},
	{"CL underscore", "POST / HTTP/1.1\r\nHost: a\r\nContent_Length: 3\r\n\r\nabc", "400"},
	// Line endings, folding and forbidden bytes.
	{"obs-fold", "GET / HTTP/1.1\r\nHost: a\r\nX-A: b\r\n c\r\n\r\n", "400"},
	{"whitespace before the first field", "GET / HTTP/1.1\r\n Host: a\r\n\r\n", "400"},
	{"bare LF everywhere", "GET / HTTP/1.1\nHost: a\n\n", "400"},
	{"bare LF in a field", "GET / HTTP/1.1\r\nHost: a\nX-A: b\r\n\r\n", "400"},
	{"bare CR in a field", "GET / HTTP/1.1\r\nHost: a\rX-A: b\r\n\r\n", "400"},
	{"CR in a value", "GET / HTTP/1.1\r\nHost: a\r\nX-A: b\rc\r\n\r\n", "400"},
	{"NUL in a value", "GET / HTTP/1.1\r\nHost: a\r\nX-A: b\x00c\r\n\r\n", "400"},
	{"NUL in the request-line", "GET /\x00 HTTP/1.1\r\nHost: a\r\n\r\n", "400"},
	{"control byte in a name", "GET / HTTP/1.1\r\nHost: a\r\nX\x01A: b\r\n\r\n", "400"},
	{"field without colon", "GET / HTTP/1.1\r\nHost: a\r\nX-A b\r\n\r\n", "400"},
	{"empty field name", "GET / HTTP/1.1\r\nHost: a\r\n: b\r\n\r\n", "400"},
	// Request-line.
	{"HTTP/0.9", "GET /\r\n\r\n", "400"},
	{"HTTP/2.0 over HTTP/1", "GET / HTTP/2.0\r\nHost: a\r\n\r\n", "505"},
	{"HTTP/1.2", "GET / HTTP/1.2\r\nHost: a\r\n\r\n", "505"},
	{"lower-case version", "GET / http/1.1\r\nHost: a\r\n\r\n", "400"},
	{"space in the target", "GET /a b HTTP/1.1\r\nHost: a\r\n\r\n", "400"},
	{"fragment in the target", "GET /a#b HTTP/1.1\r\nHost: a\r\n\r\n", "400"},
	{"backslash in the target", "GET /a\\..\\b HTTP/1.1\r\nHost: a\r\n\r\n", "400"},
	{"dot-segment", "GET /public/../admin HTTP/1.1\r\nHost: a\r\n\r\n", "400"},
	{"encoded unreserved character", "GET /%61dmin HTTP/1.1\r\nHost: a\r\n\r\n", "400"},
	{"bad percent-encoding", "GET /%zz HTTP/1.1\r\nHost: a\r\n\r\n", "400"},
	{"invalid byte in the method", "G(T / HTTP/1.1\r\nHost: a\r\n\r\n", "400"},
	{"CONNECT", "CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\n\r\n", "501"},
	// Host.
	{"no Host", "GET / HTTP/1.1\r\n\r\n", "400"},
	{"two Hosts", "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", "400"},
	{"Host port too large", "GET / HTTP/1.1\r\nHost: a:99999\r\n\r\n", "400"},
	{"Host port zero", "GET / HTTP/1.1\r\nHost: a:0\r\n\r\n", "400"},
	{"Host port not a number", "GET / HTTP/1.1\r\nHost: a:http\r\n\r\n", "400"},
	{"Host with userinfo", "GET / HTTP/1.1\r\nHost: user@a\r\n\r\n", "400"},
	// Hop-by-hop abuse.
	{"Connection names Content-Length", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nConnection: Content-Length\r\n\r\nabc", "400"},
	{"Connection names Host", "GET / HTTP/1.1\r\nHost: a\r\nConnection: host\r\n\r\n", "400"},
	{"Connection names X-Forwarded-For", "GET / HTTP/1.1\r\nHost: a\r\nConnection: close, X-Forwarded-For\r\n\r\n", "400"},
	{"unsupported expectation", "POST / HTTP/1.1\r\nHost: a\r\nExpect: 200-ok\r\nContent-Length: 0\r\n\r\n", "417"},
	// Chunked bodies (the whole request in one write: refused before
	// any byte goes to a backend).
	{"chunk size not hex", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nab\r\n0\r\n\r\n", "400"},
	{"chunk size 0x", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0x2\r\nab\r\n0\r\n\r\n", "400"},
	{"chunk size negative", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n-2\r\nab\r\n0\r\n\r\n", "400"},
	{"chunk size overflow", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n10000000000000002\r\nab\r\n0\r\n\r\n", "400"},
	{"chunk without CRLF after data", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabc\r\n0\r\n\r\n", "400"},
	{"chunk size with bare LF", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n2\nab\r\n0\r\n\r\n", "400"},
	{"bad chunk extension", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n2;\x01\r\nab\r\n0\r\n\r\n", "400"},
	{"obs-fold in trailers", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX-T: a\r\n b\r\n\r\n", "400"},
	// Oversized heads.
	{"request-line too long", "GET /" + strings.Repeat("a", 9000) + " HTTP/1.1\r\nHost: a\r\n\r\n", "414"},
	{"head too large", "GET / HTTP/1.1\r\nHost: a\r\nX-Big: " + strings.Repeat("b", 20000) + "\r\n\r\n", "431"},
	{"too many fields", "GET / HTTP/1.1\r\nHost: a\r\n" + strings.Repeat("X-F: 1\r\n", 200) + "\r\n", "431"},
}

func malformed(t *testing.T, e *env) {
	if len(malformedCases) < 40 {
		t.Fatalf("only %d cases", len(malformedCases))
	}
	failures := 0
	for _, tc := range malformedCases {
		if failures == 3 {
			t.Fatal("stopping after 3 failures")
		}
		out, err := rawExchange(t, e.main, []byte(tc.raw))
		got := ""
		if len(out) >= 12 && strings.HasPrefix(out, "HTTP/1.1 ") {
			got = out[9:12]
		}
		if got != tc.status || (out != "" && !strings.Contains(out, "\r\nConnection: close\r\n")) {
			t.Errorf("%s: got %q (read error %v), want status %q then close", tc.name, out, err, tc.status)
			failures++
		}
	}
	if n := e.raw.bytes.Load(); n != 0 {
		t.Errorf("the backend received %d bytes from malformed requests", n)
	}
	if n := e.raw.conns.Load(); n != 0 {
		t.Errorf("the backend accepted %d connections for malformed requests", n)
	}
	out, err := rawExchange(t, e.main, []byte("GET /valid HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"))
	if !strings.HasPrefix(out, "HTTP/1.1 200 OK\r\n") || !strings.HasSuffix(out, "raw") {
		t.Fatalf("a valid request after the malformed ones: %q %v", out, err)
	}
}
