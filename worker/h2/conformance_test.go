package h2

import (
	"fmt"
	"testing"
	"time"

	"golang.org/x/net/http2"
)

// TestMalformedRequestsReset: requests RFC 9113 calls malformed, each a
// stream error PROTOCOL_ERROR (§8.1.1) with no handler run, the
// connection going on: fields with invalid names or values (§8.2.1),
// connection-specific fields (§8.2.2), pseudo-header fields without a
// valid value (§8.3.1: a :method that is no token, RFC 9110 §9.1; a
// :scheme that is no scheme, RFC 3986 §3.1; an empty :authority or one
// with userinfo for "http" and "https", RFC 9110 §4.2.1, §4.2.4; an
// empty :path, or one with spaces or controls, which RFC 3986's path and
// query exclude), and CONNECT requests with :scheme or :path or without
// :authority (§8.5). h2spec covers upper-case names, "connection", TE,
// unknown or response pseudo-headers, duplicates and missing ones.
func TestMalformedRequestsReset(t *testing.T) {
	ran := make(chan struct{}, 64)
	ts := startServer(t, Limits{}, HandlerFunc(func(s *Stream) { ran <- struct{}{}; helloHandler(s) }), nil, nil)
	req := func(kv ...string) []string {
		return append([]string{":method", "POST", ":scheme", "https", ":path", "/", ":authority", "example.com"}, kv...)
	}
	for _, c := range []struct {
		name   string
		fields []string
	}{
		{"space in a name", req("space force", "x")},
		{"control in a name", req("\x01invalid", "x")},
		{"DEL in a name", req("\x7finvalid", "x")},
		{"non-ASCII name", req("inválid", "x")},
		{"colon in a name", req("invalid:field", "x")},
		{"empty name", req("", "x")},
		{"CR in a value", req("x-v", "a\rb")},
		{"LF in a value", req("x-v", "a\nb")},
		{"NUL in a value", req("x-v", "a\x00b")},
		{"leading space in a value", req("x-v", " ab")},
		{"trailing tab in a value", req("x-v", "ab\t")},
		{"proxy-connection", req("proxy-connection", "keep-alive")},
		{"keep-alive", req("keep-alive", "timeout=5")},
		{"transfer-encoding", req("transfer-encoding", "chunked")},
		{"upgrade", req("upgrade", "h2c")},
		{"te other than trailers", req("te", "trailers, deflate")},
		{"host differing from :authority", req("host", "example.com.different")},
		{"empty :method", []string{":method", "", ":scheme", "https", ":path", "/", ":authority", "example.com"}},
		{":method with a space", []string{":method", "GE T", ":scheme", "https", ":path", "/", ":authority", "example.com"}},
		{":method with a slash", []string{":method", "GET/", ":scheme", "https", ":path", "/", ":authority", "example.com"}},
		{":scheme not a scheme", []string{":method", "GET", ":scheme", "ht tp", ":path", "/", ":authority", "example.com"}},
		{":scheme starting with a digit", []string{":method", "GET", ":scheme", "1http", ":path", "/", ":authority", "example.com"}},
		{"empty :authority", []string{":method", "GET", ":scheme", "https", ":path", "/", ":authority", ""}},
		{":authority with userinfo", []string{":method", "GET", ":scheme", "https", ":path", "/", ":authority", "user:pass@example.com"}},
		{":authority with a space", []string{":method", "GET", ":scheme", "https", ":path", "/", ":authority", "exa mple.com"}},
		{"host with userinfo", []string{":method", "GET", ":scheme", "http", ":path", "/", "host", "user@example.com"}},
		{"empty :path", []string{":method", "GET", ":scheme", "https", ":path", "", ":authority", "example.com"}},
		{":path with a space", []string{":method", "GET", ":scheme", "https", ":path", "/a b", ":authority", "example.com"}},
		{":path with a control", []string{":method", "GET", ":scheme", "https", ":path", "/a\x01b", ":authority", "example.com"}},
		{":path with DEL", []string{":method", "GET", ":scheme", "https", ":path", "/a\x7fb", ":authority", "example.com"}},
		{"CONNECT with :scheme", []string{":method", "CONNECT", ":scheme", "https", ":authority", "example.com:443"}},
		{"CONNECT with :path", []string{":method", "CONNECT", ":path", "/", ":authority", "example.com:443"}},
		{"CONNECT without :authority", []string{":method", "CONNECT"}},
		{"CONNECT with userinfo", []string{":method", "CONNECT", ":authority", "user@example.com:443"}},
		{"CONNECT without a port", []string{":method", "CONNECT", ":authority", "example.com"}},
		{"CONNECT with an empty port", []string{":method", "CONNECT", ":authority", "example.com:"}},
		{"CONNECT with port 0", []string{":method", "CONNECT", ":authority", "example.com:0"}},
		{"CONNECT with a port past 65535", []string{":method", "CONNECT", ":authority", "example.com:65536"}},
		{"CONNECT to an IPv6 literal without a port", []string{":method", "CONNECT", ":authority", "[::1]"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			for len(ran) > 0 {
				<-ran // a handler an earlier case ran (when it failed)
			}
			rc := dialRaw(t, ts.addr)
			rc.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: literalBlock(c.fields...), EndStream: true, EndHeaders: true})
			rc.expectRST(1, http2.ErrCodeProtocol)
			rc.stillServes("a malformed request")
			select {
			case <-ran:
				t.Fatal("the handler ran")
			default:
			}
		})
	}
	// Valid ones, for contrast: TE trailers, a non-http scheme's path, an
	// OPTIONS *, a method of another case, an authority with a port,
	// non-ASCII in :path.
	for _, fields := range [][]string{
		req("te", "trailers"),
		{":method", "GET", ":scheme", "foo+bar.baz-1", ":path", "x", ":authority", "example.com"},
		{":method", "OPTIONS", ":scheme", "https", ":path", "*", ":authority", "example.com:8443"},
		{":method", "get", ":scheme", "HTTPS", ":path", "/a?b=c%20d", ":authority", "[::1]:443"},
		{":method", "GET", ":scheme", "https", ":path", "/caf\xc3\xa9", ":authority", "example.com"},
	} {
		rc := dialRaw(t, ts.addr)
		rc.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: literalBlock(fields...), EndStream: true, EndHeaders: true})
		rc.awaitEnd(1)
		<-ran
	}
}

// TestPeerGoAwayConnectionLives: a client's GOAWAY, whatever its error
// code (an unknown one triggers no special behavior, RFC 9113 §7), ends
// nothing at once: the client may still send frames that alter the
// connection's state (§6.8), and gets its PING and SETTINGS answered.
// Once no stream is left, the connection ends when the client has been
// quiet for a moment (or closes it).
func TestPeerGoAwayConnectionLives(t *testing.T) {
	ts := startServer(t, Limits{}, helloHandler, nil, nil)
	for _, code := range []http2.ErrCode{0xff, http2.ErrCodeNo, http2.ErrCodeProtocol} {
		rc := dialRaw(t, ts.addr)
		rc.fr.WriteGoAway(0, code, nil)
		if ga := rc.expectGoAway(http2.ErrCodeNo); ga.LastStreamID != 0 {
			t.Fatalf("GOAWAY last stream %d, want 0", ga.LastStreamID)
		}
		time.Sleep(50 * time.Millisecond) // the scenario: a quiet moment (under peerGoAwayQuiet) the connection must outlive
		rc.stillServes(fmt.Sprintf("the client's GOAWAY(%v)", code))
		rc.fr.WriteSettings(http2.Setting{ID: http2.SettingInitialWindowSize, Val: 1 << 20})
		rc.waitFor("SETTINGS ACK", func(f http2.Frame) bool { s, ok := f.(*http2.SettingsFrame); return ok && s.IsAck() })
		start := time.Now()
		if f, err := rc.fr.ReadFrame(); err == nil {
			t.Fatalf("%v after the client went quiet, want the connection closed", f)
		}
		if d := time.Since(start); d > 5*peerGoAwayQuiet {
			t.Fatalf("closed %v after the client went quiet, want about %v", d, peerGoAwayQuiet)
		}
		rc.nc.Close()
		if err := ts.serveErr(); err != nil {
			t.Fatalf("Serve = %v", err)
		}
	}
}

// TestResponsesWithoutContent: no content goes in a response to HEAD
// (RFC 9110 §9.3.2) nor in a 204, 205 or 304 (§15.3.5, §15.3.6,
// §15.4.5), whatever the handler writes: the stream ends with no DATA
// payload. A 204 carries no content-length, nor does a 1xx (§8.6); a HEAD
// response and a 304 keep theirs, which describe the representation. A
// 205's is 0 (§15.3.6): RFC 9113 §8.1.1 lets only responses "defined to
// have no content" (§6.4.1: 1xx, 204, 304, and HEAD's) carry another
// length than their DATA's, so a 205 with "5" would be malformed.
func TestResponsesWithoutContent(t *testing.T) {
	h := HandlerFunc(func(s *Stream) {
		status := 200
		fmt.Sscan(string(s.Path()[1:]), &status)
		cl := []HeaderField{{Name: []byte("content-length"), Value: []byte("5")}}
		if status == 201 { // the whole response at once
			s.WriteResponse(200, cl, []byte("hello"))
			return
		}
		s.WriteInterim(103, cl)
		s.WriteHeader(status, cl)
		s.Write([]byte("hello"))
		s.Close()
	})
	ts := startServer(t, Limits{}, h, nil, nil)
	for _, c := range []struct {
		method, path string
		status       string
		cl           string // the content-length sent, "" for none
	}{
		{"HEAD", "/200", "200", "5"},
		{"HEAD", "/201", "200", "5"},
		{"GET", "/204", "204", ""},
		{"GET", "/205", "205", "0"},
		{"GET", "/304", "304", "5"},
		{"GET", "/200", "200", "5"}, // contrast: the body goes
	} {
		rc := dialRaw(t, ts.addr)
		rc.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, EndStream: true, EndHeaders: true,
			BlockFragment: literalBlock(":method", c.method, ":scheme", "http", ":path", c.path, ":authority", "localhost")})
		body, heads := 0, 0
		rc.waitFor("the response's end", func(f http2.Frame) bool {
			switch f := f.(type) {
			case *http2.HeadersFrame:
				heads++
				got := map[string]string{}
				for _, hf := range decodeBlock(t, f.HeaderBlockFragment()) {
					got[hf.Name] = hf.Value
				}
				cl, hasCL := got["content-length"]
				switch {
				case got[":status"] == "103" && hasCL:
					t.Errorf("%s %s: a 103 with content-length", c.method, c.path)
				case got[":status"] != "103" && got[":status"] != c.status:
					t.Errorf("%s %s: status %s", c.method, c.path, got[":status"])
				case got[":status"] != "103" && cl != c.cl:
					t.Errorf("%s %s: content-length %q, want %q", c.method, c.path, cl, c.cl)
				}
				return f.StreamEnded()
			case *http2.DataFrame:
				body += len(f.Data())
				return f.StreamEnded()
			case *http2.RSTStreamFrame, *http2.GoAwayFrame:
				t.Fatalf("%s %s: %v", c.method, c.path, f)
			}
			return false
		})
		want := 0
		if c.method == "GET" && c.status == "200" {
			want = 5
		}
		if body != want {
			t.Errorf("%s %s (status %s): %d bytes of content, want %d", c.method, c.path, c.status, body, want)
		}
	}
}
