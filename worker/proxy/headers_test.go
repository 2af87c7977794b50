package proxy

import (
	"bufio"
	"io"
	"net"
	"strings"
	"testing"

	"github.com/sozu-go/sozu/worker/policy"
	"github.com/sozu-go/sozu/worker/router"
)

// TestRequestHeadRewrite checks, on the head the backend receives, the
// forwarding fields, the request id, the fields the proxy drops, and the
// canonical framing.
func TestRequestHeadRewrite(t *testing.T) {
	heads := make(chan string, 1)
	b := newRawBackend(t, func(c net.Conn) {
		br := bufio.NewReader(c)
		for {
			head, err := readHeadFrom(br)
			if err != nil {
				return
			}
			if i := strings.Index(head, "Content-Length: "); i >= 0 {
				io.CopyN(io.Discard, br, int64(head[i+16]-'0'))
			}
			heads <- head
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
		}
	})
	tests := []struct {
		name    string
		setup   func(*Listener)
		request string
		want    []string // lines the head must contain (Sozu-Id values masked as ID)
		absent  []string // substrings it must not contain
	}{
		{"plain", nil, "GET /a?b HTTP/1.1\r\nHost: shop\r\nUser-Agent: t\r\nConnection: close\r\n\r\n",
			[]string{"GET /a?b HTTP/1.1", "Host: shop", "User-Agent: t", "X-Forwarded-Proto: http", "X-Forwarded-For: 127.0.0.1",
				"Forwarded: proto=http;for=127.0.0.1;by=\"127.0.0.1:PORT\"", "X-Request-Id: ID", "Sozu-Id: ID", "X-Forwarded-Port: PORT"},
			[]string{"Connection"}},
		{"client forwarding fields", nil, "GET / HTTP/1.1\r\nHost: shop\r\nX-Forwarded-For: 10.0.0.1\r\nX-Forwarded-For: 10.0.0.2\r\n" +
			"X-Forwarded-Proto: https\r\nX-Forwarded-Port: 443\r\nForwarded: for=10.0.0.1\r\nSozu-Id: forged\r\nX-Request-Id: abc\r\n\r\n",
			[]string{"X-Forwarded-For: 10.0.0.1, 10.0.0.2, 127.0.0.1", "X-Forwarded-Proto: http", "X-Request-Id: abc",
				"Forwarded: for=10.0.0.1, proto=http;for=127.0.0.1;by=\"127.0.0.1:PORT\""},
			[]string{"https", "forged", "X-Forwarded-Port: 443\r\n"}},
		{"custom id header, X-Real-IP set", func(l *Listener) { l.IDHeader = "X-Trace"; l.SendXRealIP = true },
			"GET / HTTP/1.1\r\nHost: shop\r\nX-Real-IP: 6.6.6.6\r\nX-Trace: forged\r\n\r\n",
			[]string{"X-Trace: ID", "X-Real-IP: 127.0.0.1"}, []string{"6.6.6.6", "forged", "Sozu-Id"}},
		{"X-Real-IP elided", func(l *Listener) { l.ElideXRealIP = true },
			"GET / HTTP/1.1\r\nHost: shop\r\nX-Real-IP: 6.6.6.6\r\n\r\n", nil, []string{"X-Real-IP"}},
		// By default the client's X-Real-IP never reaches the backend
		// (upstream forwards it unless elide_x_real_ip).
		{"X-Real-IP dropped by default", nil, "GET / HTTP/1.1\r\nHost: shop\r\nx-real-ip: 6.6.6.6\r\n\r\n", nil, []string{"6.6.6.6", "eal-"}},
		{"client fields only the proxy may assert dropped", nil, "GET / HTTP/1.1\r\nHost: shop\r\nConnection: True-Client-IP\r\n" +
			"X-Forwarded-Host: evil.test\r\nX-Forwarded-Server: evil-srv\r\nX-Forwarded-Scheme: https\r\nX-Forwarded-Protocol: https\r\n" +
			"X-Forwarded-Ssl: on\r\nFront-End-Https: on\r\nX-Url-Scheme: https\r\nX-Client-IP: 6.6.6.1\r\nTrue-Client-IP: 6.6.6.2\r\n" +
			"X-Cluster-Client-IP: 6.6.6.3\r\nX-Forwarded-Hosts: kept\r\n\r\n",
			[]string{"X-Forwarded-Hosts: kept", "X-Forwarded-Proto: http"},
			[]string{"evil", "https", ": on", "6.6.6.", "Client-IP", "Url-Scheme"}},
		// CGI, WSGI and the frameworks on them read X_Real_IP as
		// X-Real-IP (HTTP_X_REAL_IP): the '_' spellings of every field the
		// proxy drops or rewrites are dropped too; other '_' names pass.
		{"underscore spellings of forwarding fields dropped", func(l *Listener) { l.IDHeader = "X-Trace" },
			"GET / HTTP/1.1\r\nHost: shop\r\nX_Real_IP: 6.6.6.1\r\nx_forwarded_HOST: evil.test\r\nX_Forwarded_For: 6.6.6.2\r\n" +
				"X-Forwarded_Proto: https\r\nX_FORWARDED_PORT: 6666\r\nTrue_Client_IP: 6.6.6.3\r\nX_Client_Ip: 6.6.6.4\r\n" +
				"Front_End_Https: on\r\nX_Trace: forged\r\nX_App_Token: kept\r\n\r\n",
			[]string{"X_App_Token: kept", "X-Forwarded-Proto: http", "X-Forwarded-For: 127.0.0.1", "X-Trace: ID"},
			[]string{"6.6.6.", "evil", "https", "6666", ": on", "forged"}},
		{"absolute-form", nil, "GET http://Shop:8080?q HTTP/1.1\r\nHost: other\r\n\r\n", []string{"GET /?q HTTP/1.1", "Host: Shop:8080"}, []string{"other"}},
		{"HTTP/1.0 without Host", nil, "GET / HTTP/1.0\r\n\r\n", []string{"GET / HTTP/1.1", "Host: 127.0.0.1:PORT"}, nil},
		{"public address", func(l *Listener) { l.PublicAddr = mustAddrPort("[2001:db8::1]:443") },
			"GET / HTTP/1.1\r\nHost: shop\r\n\r\n", []string{"X-Forwarded-Port: 443", "Forwarded: proto=http;for=127.0.0.1;by=\"[2001:db8::1]:443\""}, nil},
		{"hop-by-hop dropped", nil, "POST / HTTP/1.1\r\nHost: shop\r\nConnection: keep-alive, X-Hop\r\nX-Hop: 1\r\nKeep-Alive: 5\r\nTE: gzip\r\nContent-Length: 3\r\n\r\nabc",
			[]string{"Content-Length: 3"}, []string{"X-Hop", "Keep-Alive", "TE:", "Connection"}},
		{"TE: trailers regenerated", nil, "POST / HTTP/1.1\r\nHost: shop\r\nConnection: TE\r\nTE: trailers, deflate\r\nContent-Length: 0\r\n\r\n",
			[]string{"TE: trailers", "Connection: te"}, []string{"deflate"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, anyHost("c"), map[string][]string{"c": {b.addr}}, tt.setup)
			port := f.addr[strings.LastIndexByte(f.addr, ':')+1:]
			out := exchangeRawUntil(t, f.addr, tt.request, "\r\n\r\n")
			if !strings.HasPrefix(out, "HTTP/1.1 200 OK\r\n") {
				t.Fatalf("answer %q", out)
			}
			head := <-heads
			lines := map[string]bool{}
			for _, l := range strings.Split(head, "\r\n") {
				for _, name := range []string{"Sozu-Id: ", "X-Trace: ", "X-Request-Id: "} {
					if strings.HasPrefix(l, name) && len(l) == len(name)+26 {
						l = name + "ID"
					}
				}
				lines[strings.ReplaceAll(l, ":"+port, ":PORT")] = true
			}
			lines["X-Forwarded-Port: PORT"] = lines["X-Forwarded-Port: "+port] || lines["X-Forwarded-Port: PORT"]
			for _, w := range tt.want {
				if !lines[w] {
					t.Errorf("head lacks %q:\n%s", w, head)
				}
			}
			for _, a := range tt.absent {
				if strings.Contains(head, a) {
					t.Errorf("head contains %q:\n%s", a, head)
				}
			}
		})
	}
}

// exchangeRawUntil sends raw and reads until the answer contains end.
func exchangeRawUntil(t *testing.T, addr, raw, end string) string {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	io.WriteString(c, raw)
	buf := make([]byte, 4096)
	out := ""
	for !strings.Contains(out, end) {
		n, err := c.Read(buf)
		out += string(buf[:n])
		if err != nil {
			break
		}
	}
	return out
}

func TestRefuse(t *testing.T) {
	cfg := &Listener{IDHeader: "X-Trace"}
	cfg.init()
	for _, tt := range []struct {
		conn string
		want bool
	}{
		{"close", false}, {"keep-alive, x-custom", false}, {"upgrade", false},
		{"host", true}, {"Content-Length", true}, {"transfer-encoding", true}, {"authorization", true},
		{"proxy-authorization", true}, {"forwarded", true}, {"x-forwarded-for", true}, {"X-Forwarded-Proto", true},
		{"x-forwarded-port", true}, {"x-forwarded-host", true}, {"x-real-ip", true}, {"x-request-id", true},
		{"x-trace", true}, {"close, Host", true},
	} {
		if got := protectedAny(tt.conn, cfg); got != tt.want {
			t.Errorf("Connection: %s refused %v, want %v", tt.conn, got, tt.want)
		}
	}
	if !hasToken([]byte("websocket, h2c/1"), "h2c") || hasToken([]byte("h2"), "h2c") || !hasToken([]byte(" H2C "), "h2c") {
		t.Error("hasToken")
	}
}

func protectedAny(list string, cfg *Listener) bool {
	for _, tok := range strings.Split(list, ",") {
		if protected([]byte(strings.TrimSpace(tok)), cfg) {
			return true
		}
	}
	return false
}

func TestAmbiguousPath(t *testing.T) {
	for _, tt := range []struct {
		path string
		want bool
	}{
		{"/", false}, {"/a/b.c", false}, {"/.well-known/x", false}, {"/a..b", false}, {"/a/...", false},
		{"/a%20b", false}, {"/a%2Fb", false}, {"/x?y=/../", false}, {"/x?%61", false}, {"", false}, {"*", false},
		{"/.", true}, {"/..", true}, {"/a/./b", true}, {"/a/../admin", true}, {"/a/..?q", true},
		{"/%61dmin", true}, {"/%2e%2e/x", true}, {"/%7E", true}, {"/%5f", true}, {"/a%2D", true},
	} {
		if got := ambiguousPath([]byte(tt.path)); got != tt.want {
			t.Errorf("ambiguousPath(%q) = %v, want %v", tt.path, got, tt.want)
		}
	}
}

// TestRequestTrailersForwardingFields: forwarding fields and the request
// id field sent as trailers of a chunked request (which a backend may
// merge into the head) never reach the backend; other trailers do.
func TestRequestTrailersForwardingFields(t *testing.T) {
	bodies := make(chan string, 1)
	b := newRawBackend(t, func(c net.Conn) {
		br := bufio.NewReader(c)
		if _, err := readHeadFrom(br); err != nil {
			return
		}
		var sb strings.Builder
		for { // chunks, then the last chunk, trailers and the empty line
			line, err := br.ReadString('\n')
			sb.WriteString(line)
			if err != nil || line == "\r\n" && strings.Contains(sb.String(), "0\r\n") {
				break
			}
		}
		bodies <- sb.String()
		io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
	})
	f := newFixture(t, anyHost("c"), map[string][]string{"c": {b.addr}}, nil)
	out := exchangeRawUntil(t, f.addr, "POST / HTTP/1.1\r\nHost: shop\r\nX_Internal_User: admin3\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"+
		"3\r\nabc\r\n0\r\nX-Real-IP: 6.6.6.6\r\nX-Forwarded-For: 6.6.6.7\r\nX-Forwarded-Host: evil.test\r\nForwarded: for=6.6.6.8\r\n"+
		"True-Client-IP: 6.6.6.9\r\nX_Real_IP: 6.6.6.10\r\nx_forwarded_host: evil2.test\r\nX-Forwarded_For: 6.6.6.11\r\n"+
		"FORWARDED: for=6.6.6.12\r\nTrue_Client_Ip: 6.6.6.13\r\nSozu-Id: 6.6.6.14\r\nsozu_id: 6.6.6.15\r\nX-Checksum: abc\r\n\r\n", "\r\n\r\n")
	if !strings.HasPrefix(out, "HTTP/1.1 200 OK\r\n") {
		t.Fatalf("answer %q", out)
	}
	body := <-bodies
	if !strings.Contains(body, "X-Checksum: abc\r\n") || strings.Contains(body, "6.6.6.") || strings.Contains(body, "evil") {
		t.Fatalf("the backend received the body %q", body)
	}
}

// TestTrailersNamedByConnectionDropped: a proxy MUST remove the header and
// trailer fields a message's Connection options name (RFC 9110 §7.6.1):
// trailers so named stay on their hop, the client's request's as the
// backend's response's, whatever the body the head was read into became
// meanwhile (a body of its own read after the head in the same buffer).
func TestTrailersNamedByConnectionDropped(t *testing.T) {
	bodies := make(chan string, 1)
	b := newRawBackend(t, func(c net.Conn) {
		br := bufio.NewReader(c)
		if _, err := readHeadFrom(br); err != nil {
			return
		}
		var sb strings.Builder
		for {
			line, err := br.ReadString('\n')
			sb.WriteString(line)
			if err != nil || line == "\r\n" && strings.Contains(sb.String(), "0\r\n") {
				break
			}
		}
		bodies <- sb.String()
		io.WriteString(c, "HTTP/1.1 200 OK\r\nConnection: X-Back-Hop\r\nTransfer-Encoding: chunked\r\n\r\n"+
			"4000\r\n"+strings.Repeat("r", 0x4000)+"\r\n0\r\nX-Back-Hop: secret\r\nX-Back-Sum: 1\r\n\r\n")
	})
	f := newFixture(t, anyHost("c"), map[string][]string{"c": {b.addr}}, nil)
	out := exchangeRawUntil(t, f.addr, "POST / HTTP/1.1\r\nHost: shop\r\nTransfer-Encoding: chunked\r\nConnection: X-Hop, close\r\n\r\n"+
		"4000\r\n"+strings.Repeat("q", 0x4000)+"\r\n0\r\nX-Hop: secret\r\nx-hop: again\r\nX-Checksum: abc\r\n\r\n", "X-Back-Sum: 1\r\n\r\n")
	if !strings.HasPrefix(out, "HTTP/1.1 200 OK\r\n") || strings.Contains(out, "X-Back-Hop: secret") {
		t.Fatalf("the client received %q", out[max(0, len(out)-200):])
	}
	body := <-bodies
	if !strings.Contains(body, "X-Checksum: abc\r\n") || strings.Contains(strings.ToLower(body), "x-hop") {
		t.Fatalf("the backend received the body ending %q", body[max(0, len(body)-200):])
	}
}

// TestDeletedFieldsDroppedFromTrailers: a field a frontend's header edits
// delete from the head is dropped from the trailers too, both ways, and
// in its '_' spelling from either (which CGI and WSGI read as the '-' one): a
// client could otherwise send the deleted field as a trailer to a backend
// that merges trailers into the head (as an HTTP/2 or HTTP/1.1 chunked
// request may), and a backend its deleted response field to the client.
func TestDeletedFieldsDroppedFromTrailers(t *testing.T) {
	bodies := make(chan string, 1)
	b := newRawBackend(t, func(c net.Conn) {
		br := bufio.NewReader(c)
		head, err := readHeadFrom(br)
		if err != nil {
			return
		}
		var sb strings.Builder
		sb.WriteString(head)
		for {
			line, err := br.ReadString('\n')
			sb.WriteString(line)
			if err != nil || line == "\r\n" && strings.Contains(sb.String(), "0\r\n") {
				break
			}
		}
		bodies <- sb.String()
		io.WriteString(c, "HTTP/1.1 200 OK\r\nX_Debug: secret3\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"+
			"2\r\nok\r\n0\r\nX-Debug: secret\r\nx_debug: secret2\r\nX-Kept: 1\r\n\r\n")
	})
	req, resp, errs := policy.CompileHeaderEdits([]HeaderEdit{
		{Position: HeaderRequest, Name: "X-Internal-User", Value: ""},
		{Position: HeaderResponse, Name: "X-Debug", Value: ""},
	}, DefaultIDHeader, false)
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	rules := []router.Rule{{Hostname: "*", Kind: router.Prefix, Path: "/", Route: router.Route{ClusterID: "c", Policy: &Frontend{Request: req, Response: resp}}}}
	f := newFixture(t, rules, map[string][]string{"c": {b.addr}}, nil)
	out := exchangeRawUntil(t, f.addr, "POST / HTTP/1.1\r\nHost: shop\r\nX_Internal_User: admin3\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"+
		"3\r\nabc\r\n0\r\nX-Internal-User: admin\r\nx_internal_user: admin2\r\nX-Checksum: abc\r\n\r\n", "X-Kept: 1\r\n\r\n")
	body := <-bodies
	if !strings.Contains(body, "X-Checksum: abc\r\n") || strings.Contains(body, "admin") {
		t.Errorf("the backend received %q", body)
	}
	if !strings.HasPrefix(out, "HTTP/1.1 200 OK\r\n") || !strings.Contains(out, "X-Kept: 1\r\n") || strings.Contains(out, "secret") {
		t.Errorf("the client received %q", out)
	}
}
