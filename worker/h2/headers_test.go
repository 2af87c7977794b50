package h2

import "testing"

func fields(kv ...string) []HeaderField {
	var f []HeaderField
	for i := 0; i+1 < len(kv); i += 2 {
		f = append(f, HeaderField{Name: []byte(kv[i]), Value: []byte(kv[i+1])})
	}
	return f
}

func TestValidateRequest(t *testing.T) {
	base := []string{":method", "GET", ":scheme", "https", ":path", "/a", ":authority", "ex.com"}
	with := func(extra ...string) []string { return append(append([]string(nil), base...), extra...) }
	cases := []struct {
		name string
		in   []string
		want string
	}{
		{"ok", with("accept", "*/*", "te", "trailers"), ""},
		{"ok host fallback", []string{":method", "GET", ":scheme", "https", ":path", "/", "host", "ex.com"}, ""},
		{"upper-case name", with("Accept", "x"), "invalid field name"},
		{"connection", with("connection", "close"), "connection-specific field"},
		{"keep-alive", with("keep-alive", "1"), "connection-specific field"},
		{"te Trailers", with("te", "Trailers"), ""}, // a case-insensitive literal (RFC 5234 §2.3)
		{"te gzip", with("te", "gzip"), "te other than trailers"},
		{"unknown pseudo", with(":foo", "x"), "invalid pseudo-header field"},
		{"status in request", with(":status", "200"), "invalid pseudo-header field"},
		{"pseudo after regular", []string{":method", "GET", "a", "b", ":path", "/", ":scheme", "http"}, "pseudo-header field after regular field"},
		{"duplicate method", with(":method", "GET"), "duplicate pseudo-header field"},
		{"pseudo after regular 2", with("a", "b", ":method", "GET"), "pseudo-header field after regular field"},
		{"duplicate path", []string{":method", "GET", ":path", "/", ":path", "/", ":scheme", "http"}, "duplicate pseudo-header field"},
		{"missing method", []string{":scheme", "http", ":path", "/"}, "missing :method"},
		{"missing scheme", []string{":method", "GET", ":path", "/"}, "missing :scheme"},
		{"empty path", []string{":method", "GET", ":scheme", "http", ":path", ""}, "missing or empty :path"},
		{"relative path", []string{":method", "GET", ":scheme", "http", ":path", "a"}, "invalid :path"},
		{"options star", []string{":method", "OPTIONS", ":scheme", "http", ":path", "*"}, ""},
		{"connect ok", []string{":method", "CONNECT", ":authority", "ex.com:443"}, ""},
		{"connect with path", []string{":method", "CONNECT", ":authority", "ex.com:443", ":path", "/"}, "CONNECT with :scheme or :path"},
		{"connect no authority", []string{":method", "CONNECT"}, "CONNECT without :authority"},
		{"bad content-length", with("content-length", "1x"), "invalid content-length"},
		{"conflicting content-length", with("content-length", "1", "content-length", "2"), "conflicting content-length"},
		// 1*DIGIT (RFC 9110 §8.6), as HTTP/1.1 reads it: leading zeros and
		// 19 digits are valid; past int64 is not.
		{"content-length with leading zeros", with("content-length", "000000000000000000005"), ""},
		{"content-length of 19 digits", with("content-length", "1000000000000000000"), ""},
		{"content-length past int64", with("content-length", "9223372036854775808"), "invalid content-length"},
		{"host mismatch", with("host", "evil.com"), "host differs from :authority"},
		// Scheme-based normalization (RFC 9113 §8.3.1, RFC 3986 §6.2.3).
		{"host with default port", with("host", "EX.com:443"), ""},
		{"host with empty port", with("host", "ex.com:"), ""},
		{"authority with default port", []string{":method", "GET", ":scheme", "http", ":path", "/", ":authority", "ex.com:80", "host", "ex.com"}, ""},
		{"host with other port", with("host", "ex.com:8443"), "host differs from :authority"},
		{"host with the other scheme's port", with("host", "ex.com:80"), "host differs from :authority"},
		{"ipv6 default port", []string{":method", "GET", ":scheme", "https", ":path", "/", ":authority", "[::1]", "host", "[::1]:443"}, ""},
		{"ipv6 other host", []string{":method", "GET", ":scheme", "https", ":path", "/", ":authority", "[::1]", "host", "[::2]"}, "host differs from :authority"},
		{"value with LF", with("x", "a\nb"), "invalid field value"},
		{"value trailing space", with("x", "a "), "invalid field value"},
		// Pseudo-header values (RFC 9113 §8.3.1).
		{"method not a token", []string{":method", "GE T", ":scheme", "http", ":path", "/"}, "invalid :method"},
		{"empty method", []string{":method", "", ":scheme", "http", ":path", "/"}, "invalid :method"},
		{"scheme not a scheme", []string{":method", "GET", ":scheme", "h_t", ":path", "/"}, "invalid :scheme"},
		{"path with a space", []string{":method", "GET", ":scheme", "http", ":path", "/a b"}, "invalid :path"},
		{"userinfo", []string{":method", "GET", ":scheme", "https", ":path", "/", ":authority", "u@ex.com"}, "userinfo in :authority"},
		{"userinfo in host", []string{":method", "GET", ":scheme", "https", ":path", "/", "host", "u@ex.com"}, "userinfo in :authority"},
		{"userinfo, other scheme", []string{":method", "GET", ":scheme", "ftp", ":path", "/", ":authority", "u@ex.com"}, ""},
		{"empty authority", []string{":method", "GET", ":scheme", "https", ":path", "/", ":authority", ""}, "empty :authority"},
		{"empty host", []string{":method", "GET", ":scheme", "https", ":path", "/", "host", ""}, ""},
		{"upper-case scheme", []string{":method", "GET", ":scheme", "HTTPS", ":path", "x", ":authority", "ex.com"}, "invalid :path"},
	}
	for _, tc := range cases {
		var r request
		if got := validateRequest(fields(tc.in...), &r); got != tc.want {
			t.Errorf("%s: got %q, want %q", tc.name, got, tc.want)
		}
	}
	var r request
	validateRequest(fields(with("content-length", "12", "x-a", "1")...), &r)
	if r.contentLength != 12 || len(r.fields) != 2 || string(r.authority) != "ex.com" || string(r.path) != "/a" {
		t.Fatalf("parsed request %+v", r)
	}
	if got := validateTrailers(fields(":path", "/")); got != "pseudo-header field in trailers" {
		t.Fatalf("trailers: %q", got)
	}
}

func TestAppendResponseField(t *testing.T) {
	var arena []byte
	var refs []fieldRef
	for _, f := range fields("Content-Type", "text/html", "Connection", "close", "Transfer-Encoding", "chunked", "X-Bad Name", "v", "x-ok", "bad\r\nvalue") {
		arena, refs, _ = appendResponseField(arena, refs, f.Name, f.Value)
	}
	got := materialize(nil, arena, refs)
	if len(got) != 1 || string(got[0].Name) != "content-type" || string(got[0].Value) != "text/html" {
		t.Fatalf("kept %q", got)
	}
}
