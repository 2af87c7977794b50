package http1

import (
	"errors"
	"strings"
	"testing"
)

var badResponses = []struct {
	name   string
	method string
	in     string
}{
	{"code with two digits", "GET", head("HTTP/1.1 20 OK")},
	{"code with four digits", "GET", head("HTTP/1.1 2000 OK")},
	{"code not digits", "GET", head("HTTP/1.1 2x0 OK")},
	{"code 099", "GET", head("HTTP/1.1 099 Low")},
	{"code 600", "GET", head("HTTP/1.1 600 High")},
	{"two SP before code", "GET", head("HTTP/1.1  200 OK")},
	{"HTAB before code", "GET", head("HTTP/1.1\t200 OK")},
	{"HTAB after code", "GET", head("HTTP/1.1 200\tOK")},
	{"HTTP/2", "GET", head("HTTP/2 200 OK")},
	{"HTTP/2.0", "GET", head("HTTP/2.0 200 OK")},
	{"lower-case version", "GET", head("http/1.1 200 OK")},
	{"no version", "GET", head("200 OK")},
	{"control byte in reason", "GET", head("HTTP/1.1 200 O\x01K")},
	{"bare CR in reason", "GET", head("HTTP/1.1 200 O\rK")},
	{"bare LF", "GET", "HTTP/1.1 200 OK\nContent-Length: 0\r\n\r\n"},
	{"leading empty line", "GET", "\r\n" + head("HTTP/1.1 200 OK", "Content-Length: 0")},
	{"obs-fold", "GET", head("HTTP/1.1 200 OK", "X-A: a", " b", "Content-Length: 0")},
	{"space before colon", "GET", head("HTTP/1.1 200 OK", "Content-Length : 0")},
	{"NUL in value", "GET", head("HTTP/1.1 200 OK", "X-A: \x00", "Content-Length: 0")},
	{"differing CL lines", "GET", head("HTTP/1.1 200 OK", "Content-Length: 5", "Content-Length: 6")},
	{"differing CL list", "GET", head("HTTP/1.1 200 OK", "Content-Length: 5, 6")},
	{"CL with sign", "GET", head("HTTP/1.1 200 OK", "Content-Length: +5")},
	{"CL empty", "GET", head("HTTP/1.1 200 OK", "Content-Length:")},
	{"CL and TE", "GET", head("HTTP/1.1 200 OK", "Content-Length: 5", "Transfer-Encoding: chunked")},
	{"TE gzip only", "GET", head("HTTP/1.1 200 OK", "Transfer-Encoding: gzip")},
	{"TE gzip, chunked", "GET", head("HTTP/1.1 200 OK", "Transfer-Encoding: gzip, chunked")},
	{"TE chunked twice", "GET", head("HTTP/1.1 200 OK", "Transfer-Encoding: chunked, chunked")},
	{"TE on two lines", "GET", head("HTTP/1.1 200 OK", "Transfer-Encoding: chunked", "Transfer-Encoding: chunked")},
	{"TE in HTTP/1.0", "GET", head("HTTP/1.0 200 OK", "Transfer-Encoding: chunked")},
	{"TE obfuscated", "GET", head("HTTP/1.1 200 OK", "Transfer-Encoding: \x0bchunked")},
	{"Transfer_Encoding", "GET", head("HTTP/1.1 200 OK", "Transfer_Encoding: chunked", "Content-Length: 3")},
	{"invalid CL in 204", "GET", head("HTTP/1.1 204 No Content", "Content-Length: x")},
	{"101 without Upgrade", "GET", head("HTTP/1.1 101 Switching Protocols", "Connection: upgrade")},
	{"two Upgrade fields", "GET", head("HTTP/1.1 101 Switching Protocols", "Upgrade: a", "Upgrade: b")},
	{"too many fields", "GET", head("HTTP/1.1 200 OK", strings.Repeat("X: y\r\n", DefaultMaxFields)+"Content-Length: 0")},
	{"head too large", "GET", head("HTTP/1.1 200 OK", "X: "+strings.Repeat("y", DefaultMaxHeadBytes))},
	{"status-line too long", "GET", head("HTTP/1.1 200 " + strings.Repeat("y", DefaultMaxStartLine))},
	{"incomplete", "GET", "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n"},
}

func TestParseResponseRejects(t *testing.T) {
	var r Response
	for _, tc := range badResponses {
		t.Run(tc.name, func(t *testing.T) {
			err := ParseResponse(&r, []byte(tc.in), []byte(tc.method), nil)
			var e *Error
			if !errors.As(err, &e) || e.Status != 502 {
				t.Fatalf("ParseResponse(%q) = %v, want a 502 *Error", tc.in, err)
			}
		})
	}
}

type wantResp struct {
	status    int
	reason    string
	minor     int
	body      BodyKind
	cl        int64
	keepAlive bool
	upgrade   bool
}

var goodResponses = []struct {
	name   string
	method string
	in     string
	want   wantResp
}{
	{"200 with CL", "GET", head("HTTP/1.1 200 OK", "Content-Length: 12"), wantResp{200, "OK", 1, BodyLength, 12, true, false}},
	{"no SP after code", "GET", head("HTTP/1.1 200", "Content-Length: 0"), wantResp{200, "", 1, BodyLength, 0, true, false}},
	{"SP and empty reason", "GET", head("HTTP/1.1 200 ", "Content-Length: 0"), wantResp{200, "", 1, BodyLength, 0, true, false}},
	{"reason with SP, HTAB, obs-text", "GET", head("HTTP/1.1 404 Not \tFound \xe9", "Content-Length: 0"), wantResp{404, "Not \tFound \xe9", 1, BodyLength, 0, true, false}},
	{"chunked", "GET", head("HTTP/1.1 200 OK", "Transfer-Encoding: Chunked"), wantResp{200, "OK", 1, BodyChunked, -1, true, false}},
	{"close-delimited", "GET", head("HTTP/1.1 200 OK"), wantResp{200, "OK", 1, BodyClose, -1, false, false}},
	{"HTTP/1.0 default close", "GET", head("HTTP/1.0 200 OK", "Content-Length: 1"), wantResp{200, "OK", 0, BodyLength, 1, false, false}},
	{"HTTP/1.0 keep-alive", "GET", head("HTTP/1.0 200 OK", "Connection: keep-alive", "Content-Length: 1"), wantResp{200, "OK", 0, BodyLength, 1, true, false}},
	{"Connection close", "GET", head("HTTP/1.1 200 OK", "Connection: close", "Content-Length: 1"), wantResp{200, "OK", 1, BodyLength, 1, false, false}},
	{"equal CL lines", "GET", head("HTTP/1.1 200 OK", "Content-Length: 5", "Content-Length: 5"), wantResp{200, "OK", 1, BodyLength, 5, true, false}},
	{"equal CL list", "GET", head("HTTP/1.1 200 OK", "Content-Length: 5 , 5"), wantResp{200, "OK", 1, BodyLength, 5, true, false}},
	{"HEAD keeps CL, no body", "HEAD", head("HTTP/1.1 200 OK", "Content-Length: 99"), wantResp{200, "OK", 1, BodyNone, 99, true, false}},
	{"HEAD with chunked", "HEAD", head("HTTP/1.1 200 OK", "Transfer-Encoding: chunked"), wantResp{200, "OK", 1, BodyNone, -1, true, false}},
	{"204 ignores CL", "GET", head("HTTP/1.1 204 No Content", "Content-Length: 5"), wantResp{204, "No Content", 1, BodyNone, -1, true, false}},
	{"304 keeps CL", "GET", head("HTTP/1.1 304 Not Modified", "Content-Length: 5"), wantResp{304, "Not Modified", 1, BodyNone, 5, true, false}},
	{"100 Continue", "POST", head("HTTP/1.1 100 Continue"), wantResp{100, "Continue", 1, BodyNone, -1, true, false}},
	{"103 Early Hints", "GET", head("HTTP/1.1 103 Early Hints", "Link: </a.css>; rel=preload"), wantResp{103, "Early Hints", 1, BodyNone, -1, true, false}},
	{"101 upgrade", "GET", head("HTTP/1.1 101 Switching Protocols", "Connection: Upgrade", "Upgrade: websocket"), wantResp{101, "Switching Protocols", 1, BodyTunnel, -1, false, true}},
	{"CONNECT 200 tunnel ignores CL", "CONNECT", head("HTTP/1.1 200 Connection Established", "Content-Length: 5"), wantResp{200, "Connection Established", 1, BodyTunnel, -1, false, false}},
	{"CONNECT 407 has a body", "CONNECT", head("HTTP/1.1 407 Proxy Authentication Required", "Content-Length: 5"), wantResp{407, "Proxy Authentication Required", 1, BodyLength, 5, true, false}},
	{"599", "GET", head("HTTP/1.1 599 X", "Content-Length: 0"), wantResp{599, "X", 1, BodyLength, 0, true, false}},
}

func TestParseResponseAccepts(t *testing.T) {
	var r Response
	for _, tc := range goodResponses {
		t.Run(tc.name, func(t *testing.T) {
			in := []byte(tc.in + "BODY")
			if err := ParseResponse(&r, in, []byte(tc.method), nil); err != nil {
				t.Fatalf("ParseResponse(%q): %v", tc.in, err)
			}
			got := wantResp{r.Status, string(r.Reason), r.Minor, r.Body, r.ContentLength, r.KeepAlive, r.Upgrade}
			if got != tc.want {
				t.Fatalf("ParseResponse(%q)\n got %+v\nwant %+v", tc.in, got, tc.want)
			}
			if r.HeadLen != len(tc.in) {
				t.Fatalf("HeadLen = %d, want %d", r.HeadLen, len(tc.in))
			}
			if n, err := FindResponseHead(in, nil); n != len(tc.in) || err != nil {
				t.Fatalf("FindResponseHead = %d, %v; want %d", n, err, len(tc.in))
			}
		})
	}
}

func TestParseResponseZeroAllocs(t *testing.T) {
	in := []byte(typicalResponse)
	var r Response
	method := []byte("GET")
	if n := testing.AllocsPerRun(100, func() {
		if err := ParseResponse(&r, in, method, nil); err != nil {
			t.Fatal(err)
		}
	}); n != 0 {
		t.Fatalf("ParseResponse: %v allocs per run, want 0", n)
	}
}
