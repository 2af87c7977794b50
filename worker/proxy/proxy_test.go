package proxy

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/sozu-go/sozu/worker/answers"
	"github.com/sozu-go/sozu/worker/router"
)

func TestGetAndForwardingHeaders(t *testing.T) {
	var got http.Header
	var gotHost string
	b := newHTTPBackend(t, func(w http.ResponseWriter, r *http.Request) {
		got, gotHost = r.Header.Clone(), r.Host
		w.Header().Set("Sozu-Id", "forged-by-backend")
		io.WriteString(w, "hello")
	})
	f := newFixture(t, anyHost("c"), map[string][]string{"c": {b.addr}}, nil)
	req, _ := http.NewRequest("GET", "http://"+f.addr+"/x?y=1", nil)
	req.Host = "shop.example.com"
	req.Header.Set("X-Forwarded-For", "203.0.113.9")
	req.Header.Set("X-Forwarded-Proto", "https")
	req.Header.Set("X-Forwarded-Port", "1")
	req.Header.Set("Forwarded", "for=203.0.113.9")
	req.Header.Set("Sozu-Id", "forged-by-client")
	resp, err := client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(body) != "hello" {
		t.Fatalf("got %d %q", resp.StatusCode, body)
	}
	port := f.addr[strings.LastIndexByte(f.addr, ':')+1:]
	id := resp.Header.Get("Sozu-Id")
	for k, want := range map[string]string{
		"X-Forwarded-For":   "203.0.113.9, 127.0.0.1",
		"X-Forwarded-Proto": "http",
		"X-Forwarded-Port":  port,
		"Forwarded":         `for=203.0.113.9, proto=http;for=127.0.0.1;by="127.0.0.1:` + port + `"`,
		"Sozu-Id":           id,
		"X-Request-Id":      id,
	} {
		if v := got.Values(k); len(v) != 1 || v[0] != want {
			t.Errorf("backend got %s %q, want %q", k, v, want)
		}
	}
	if len(id) != 26 {
		t.Errorf("response Sozu-Id %q is not a ULID", resp.Header.Values("Sozu-Id"))
	}
	if gotHost != "shop.example.com" {
		t.Errorf("backend got Host %q", gotHost)
	}
}

func TestKeepAliveBothSides(t *testing.T) {
	b := newHTTPBackend(t, func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, r.URL.Path) })
	f := newFixture(t, anyHost("c"), map[string][]string{"c": {b.addr}}, nil)
	c := client()
	for i := 0; i < 20; i++ {
		resp, err := c.Get(fmt.Sprintf("http://%s/%d", f.addr, i))
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if string(body) != fmt.Sprintf("/%d", i) {
			t.Fatalf("request %d: %q", i, body)
		}
	}
	if n := b.conns.Load(); n != 1 {
		t.Errorf("backend saw %d connections for 20 sequential requests", n)
	}
	if n := f.srv.Sessions(); n != 1 {
		t.Errorf("%d client sessions, want 1", n)
	}
}

func TestPipelinedRequestsAnsweredInOrder(t *testing.T) {
	b := newHTTPBackend(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			time.Sleep(50 * time.Millisecond)
		}
		body, _ := io.ReadAll(r.Body)
		fmt.Fprintf(w, "%s %s %s", r.Method, r.URL.Path, body)
	})
	f := newFixture(t, anyHost("c"), map[string][]string{"c": {b.addr}}, nil)
	raw := "GET /slow HTTP/1.1\r\nHost: a\r\n\r\n" +
		"POST /post HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc" +
		"POST /chunked HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nxy\r\n0\r\n\r\n" +
		"GET /last HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"
	out := exchangeRaw(t, f.addr, raw)
	br := bufio.NewReader(strings.NewReader(out))
	for _, want := range []string{"GET /slow ", "POST /post abc", "POST /chunked xy", "GET /last "} {
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("reading the answer %q: %v\n%s", want, err, out)
		}
		body, _ := io.ReadAll(resp.Body)
		if string(body) != want {
			t.Fatalf("got %q, want %q", body, want)
		}
	}
}

func TestLargeBodiesStream(t *testing.T) {
	const size = 4 << 20
	b := newHTTPBackend(t, func(w http.ResponseWriter, r *http.Request) {
		h := sha256.New()
		n, _ := io.Copy(h, r.Body)
		if r.URL.Path == "/download" {
			w.Header().Set("Content-Length", fmt.Sprint(size))
			w.Write(bytes.Repeat([]byte("z"), size))
			return
		}
		fmt.Fprintf(w, "%d %x", n, h.Sum(nil))
	})
	f := newFixture(t, anyHost("c"), map[string][]string{"c": {b.addr}}, nil)
	payload := bytes.Repeat([]byte("0123456789abcdef"), size/16)
	sum := sha256.Sum256(payload)
	want := fmt.Sprintf("%d %x", size, sum)
	c := client()
	// Content-Length upload.
	resp, err := c.Post("http://"+f.addr+"/upload", "application/octet-stream", bytes.NewReader(payload))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != want {
		t.Fatalf("CL upload: backend saw %q, want %q", body, want)
	}
	// Chunked upload (unknown length).
	resp, err = c.Post("http://"+f.addr+"/upload", "application/octet-stream", io.MultiReader(bytes.NewReader(payload)))
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != want {
		t.Fatalf("chunked upload: backend saw %q, want %q", body, want)
	}
	// Large download.
	resp, err = c.Get("http://" + f.addr + "/download")
	if err != nil {
		t.Fatal(err)
	}
	n, err := io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if err != nil || n != size {
		t.Fatalf("download: %d bytes, %v", n, err)
	}
	if b.conns.Load() != 1 {
		t.Errorf("backend saw %d connections", b.conns.Load())
	}
}

// rawResponder answers each request head it reads with resp (a function
// of the head), keeping the connection open.
func rawResponder(resp func(head string) string) func(net.Conn) {
	return func(c net.Conn) {
		br := bufio.NewReader(c)
		for {
			head, err := readHeadFrom(br)
			if err != nil {
				return
			}
			if _, err := io.WriteString(c, resp(head)); err != nil {
				return
			}
		}
	}
}

func TestResponseFraming(t *testing.T) {
	tests := []struct {
		name, request, backend, want string
		reuse                        bool // the backend connection is reusable afterwards
	}{
		{"chunked re-encoded", "GET / HTTP/1.1\r\nHost: a\r\n\r\n",
			"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n003;ext=1\r\nabc\r\n0\r\nX-T: 1\r\n\r\n",
			"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nSozu-Id: ID\r\nDate: D\r\n\r\n3\r\nabc\r\n0\r\nX-T: 1\r\n\r\n", true},
		{"chunked to an HTTP/1.0 client", "GET / HTTP/1.0\r\n\r\n",
			"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
			"HTTP/1.1 200 OK\r\nConnection: close\r\nSozu-Id: ID\r\nDate: D\r\n\r\nabc", true},
		{"HEAD keeps Content-Length", "HEAD / HTTP/1.1\r\nHost: a\r\n\r\n",
			"HTTP/1.1 200 OK\r\nContent-Length: 1234\r\n\r\n",
			"HTTP/1.1 200 OK\r\nContent-Length: 1234\r\nSozu-Id: ID\r\nDate: D\r\n\r\n", true},
		{"204 without body", "GET / HTTP/1.1\r\nHost: a\r\n\r\n",
			"HTTP/1.1 204 No Content\r\n\r\n",
			"HTTP/1.1 204 No Content\r\nSozu-Id: ID\r\nDate: D\r\n\r\n", true},
		{"304 without body", "GET / HTTP/1.1\r\nHost: a\r\n\r\n",
			"HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n\r\n",
			"HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\nSozu-Id: ID\r\nDate: D\r\n\r\n", true},
		{"hop-by-hop dropped", "GET / HTTP/1.1\r\nHost: a\r\n\r\n",
			"HTTP/1.1 200 OK\r\nConnection: X-Secret, keep-alive\r\nX-Secret: 1\r\nKeep-Alive: timeout=5\r\nContent-Length: 0\r\n\r\n",
			"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nSozu-Id: ID\r\nDate: D\r\n\r\n", true},
		{"backend closes", "GET / HTTP/1.1\r\nHost: a\r\n\r\n",
			"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok",
			"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nSozu-Id: ID\r\nDate: D\r\n\r\nok", false},
		{"extra bytes after the response", "GET / HTTP/1.1\r\nHost: a\r\n\r\n",
			"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokHTTP/1.1 200 OK\r\n\r\n",
			"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nSozu-Id: ID\r\nDate: D\r\n\r\nok", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := newRawBackend(t, rawResponder(func(string) string { return tt.backend }))
			f := newFixture(t, anyHost("c"), map[string][]string{"c": {b.addr}}, nil)
			c, err := net.Dial("tcp", f.addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(5 * time.Second))
			io.WriteString(c, tt.request)
			buf := make([]byte, 4096)
			got := ""
			for !strings.Contains(got, "\r\n\r\n") || len(got) < len(tt.want)+20 {
				n, err := c.Read(buf)
				got += string(buf[:n])
				if err != nil {
					break
				}
			}
			got = maskDate(maskID(got))
			if got != tt.want {
				t.Fatalf("got  %q\nwant %q", got, tt.want)
			}
			if tt.reuse {
				waitFor(t, "the backend connection back in the pool", func() bool {
					return f.srv.Config().Clusters["c"].Backends.Backends()[0].Idle() == 1
				})
			} else if n := f.srv.Config().Clusters["c"].Backends.Backends()[0].Idle(); n != 0 {
				t.Fatalf("%d pooled backend connections after an unclean exchange", n)
			}
		})
	}
}

// maskID replaces Sozu-Id values with "ID".
// maskDate replaces the value of the first Date field by "D".
func maskDate(s string) string {
	i := strings.Index(s, "\r\nDate: ")
	if i < 0 || len(s) < i+8+len(imfFixdate) {
		return s
	}
	return s[:i+8] + "D" + s[i+8+len(imfFixdate):]
}

func maskID(s string) string {
	i := strings.Index(s, "Sozu-Id: ")
	if i < 0 {
		return s
	}
	return s[:i+9] + "ID" + s[i+9+26:]
}

func TestCloseDelimitedResponseRechunked(t *testing.T) {
	b := newRawBackend(t, func(c net.Conn) {
		readHeadFrom(bufio.NewReader(c))
		io.WriteString(c, "HTTP/1.1 200 OK\r\n\r\nall of it")
	})
	f := newFixture(t, anyHost("c"), map[string][]string{"c": {b.addr}}, nil)
	c := client()
	for i := 0; i < 2; i++ {
		resp, err := c.Get("http://" + f.addr + "/")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if string(body) != "all of it" || resp.TransferEncoding[0] != "chunked" {
			t.Fatalf("got %q %v", body, resp.TransferEncoding)
		}
	}
	if f.srv.Sessions() != 1 {
		t.Errorf("the client connection did not survive: %d sessions", f.srv.Sessions())
	}
}

// TestInterimResponsesForwarded: a proxy MUST forward the 1xx responses
// it did not ask for (RFC 9110 §15.2): a 100 Continue the backend sends to
// a request without Expect reaches an HTTP/1.1 client, before the final
// response, as a 103 does; an HTTP/1.0 client gets none (a server MUST
// NOT send it one), only the final response.
func TestInterimResponsesForwarded(t *testing.T) {
	b := newRawBackend(t, func(c net.Conn) {
		br := bufio.NewReader(c)
		for {
			if _, err := readHeadFrom(br); err != nil {
				return
			}
			io.WriteString(c, "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </s.css>; rel=preload\r\n\r\n"+
				"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
		}
	})
	f := newFixture(t, anyHost("c"), map[string][]string{"c": {b.addr}}, nil)
	statuses := func(out string) []string {
		var st []string
		for _, l := range strings.Split(out, "\r\n") {
			if strings.HasPrefix(l, "HTTP/1.") {
				st = append(st, l)
			}
		}
		return st
	}
	got := statuses(exchangeRaw(t, f.addr, "POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\nConnection: close\r\n\r\nhi"))
	if want := []string{"HTTP/1.1 100 Continue", "HTTP/1.1 103 Early Hints", "HTTP/1.1 200 OK"}; strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("HTTP/1.1 client got %q, want %q", got, want)
	}
	got = statuses(exchangeRaw(t, f.addr, "POST /x HTTP/1.0\r\nHost: a\r\nContent-Length: 2\r\n\r\nhi"))
	if want := []string{"HTTP/1.1 200 OK"}; strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("HTTP/1.0 client got %q, want %q", got, want)
	}
}

func TestExpectContinue(t *testing.T) {
	b := newHTTPBackend(t, func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		fmt.Fprintf(w, "got %s", body)
	})
	f := newFixture(t, anyHost("c"), map[string][]string{"c": {b.addr}}, nil)
	c, err := net.Dial("tcp", f.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	io.WriteString(c, "PUT /x HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n")
	br := bufio.NewReader(c)
	line, err := br.ReadString('\n')
	if err != nil || line != "HTTP/1.1 100 Continue\r\n" {
		t.Fatalf("got %q %v before sending the body", line, err)
	}
	if l, _ := br.ReadString('\n'); l != "\r\n" {
		t.Fatalf("100 Continue followed by %q", l)
	}
	io.WriteString(c, "hello")
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	if string(body) != "got hello" {
		t.Fatalf("got %q", body)
	}
}

func TestWebSocketTunnel(t *testing.T) {
	b := wsEchoBackend(t, "")
	f := newFixture(t, anyHost("c"), map[string][]string{"c": {b.addr}}, nil)
	c, br := openWebSocket(t, f.addr, "")
	for _, msg := range []string{"ping", strings.Repeat("x", 100000)} {
		io.WriteString(c, msg)
		got := make([]byte, len(msg))
		if _, err := io.ReadFull(br, got); err != nil || string(got) != msg {
			t.Fatalf("echo: %v", err)
		}
	}
	c.(*net.TCPConn).CloseWrite()
	if rest, err := io.ReadAll(br); err != nil || len(rest) != 0 {
		t.Fatalf("after half-close: %q %v", rest, err)
	}
}

func TestH2CUpgradeNotForwarded(t *testing.T) {
	var head string
	b := newRawBackend(t, func(c net.Conn) {
		head, _ = readHeadFrom(bufio.NewReader(c))
		io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
	})
	f := newFixture(t, anyHost("c"), map[string][]string{"c": {b.addr}}, nil)
	out := exchangeRaw(t, f.addr, "GET / HTTP/1.1\r\nHost: a\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQCAAAAAAIAAAAA\r\nConnection: Upgrade, HTTP2-Settings, close\r\n\r\n")
	if !strings.HasPrefix(out, "HTTP/1.1 200 OK\r\n") {
		t.Fatalf("got %q", out)
	}
	if strings.Contains(strings.ToLower(head), "upgrade") || strings.Contains(head, "HTTP2-Settings") {
		t.Fatalf("backend got %q", head)
	}
}

func TestProxyAnswers(t *testing.T) {
	slow := newRawBackend(t, func(c net.Conn) {
		io.Copy(io.Discard, c) // never answers; returns when the proxy gives up
	})
	bad := newRawBackend(t, rawResponder(func(string) string { return "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n" }))
	deadAddr := func() string {
		ln, _ := net.Listen("tcp", "127.0.0.1:0")
		defer ln.Close()
		return ln.Addr().String()
	}()
	rules := []router.Rule{
		{Hostname: "slow", Kind: router.Prefix, Route: router.Route{ClusterID: "slow"}},
		{Hostname: "bad", Kind: router.Prefix, Route: router.Route{ClusterID: "bad"}},
		{Hostname: "dead", Kind: router.Prefix, Route: router.Route{ClusterID: "dead"}},
		{Hostname: "empty", Kind: router.Prefix, Route: router.Route{ClusterID: "empty"}},
		{Hostname: "ghost", Kind: router.Prefix, Route: router.Route{ClusterID: "ghost"}},
		{Hostname: "deny", Kind: router.Prefix, Route: router.Route{Deny: true}},
		{Hostname: "custom", Kind: router.Prefix, Route: router.Route{ClusterID: "custom"}},
	}
	custom, errs := answers.NewSet(map[string]string{"503": "HTTP/1.1 503 Custom\nX-Cluster: %CLUSTER_ID\n\ncluster %CLUSTER_ID down"})
	if errs != nil {
		t.Fatal(errs)
	}
	listenerAnswers, _ := answers.NewSet(map[string]string{"404": "<p>nothing here</p>"})
	f := newFixture(t, rules, map[string][]string{"slow": {slow.addr}, "bad": {bad.addr}, "dead": {deadAddr}, "empty": nil, "custom": nil}, func(l *Listener) {
		l.BackTimeout = 200 * time.Millisecond
		l.RequestTimeout = 200 * time.Millisecond
		l.MaxBody = 100
		l.Answers = listenerAnswers
	})
	f.srv.Config().Clusters["custom"].Answers = custom
	tests := []struct {
		name, raw, status string
		contains          string
	}{
		{"no route", "GET / HTTP/1.1\r\nHost: nowhere\r\n\r\n", "404", "<p>nothing here</p>"},
		{"deny", "GET / HTTP/1.1\r\nHost: deny\r\n\r\n", "404", ""},
		{"no backends", "GET / HTTP/1.1\r\nHost: empty\r\n\r\n", "503", "503 Service Unavailable"},
		{"unknown cluster", "GET / HTTP/1.1\r\nHost: ghost\r\n\r\n", "503", ""},
		{"custom cluster answer", "GET / HTTP/1.1\r\nHost: custom\r\n\r\n", "503 Custom", "X-Cluster: custom\r\n"},
		{"connect refused", "GET / HTTP/1.1\r\nHost: dead\r\n\r\n", "503", ""},
		{"slow backend", "GET / HTTP/1.1\r\nHost: slow\r\n\r\n", "504", "504 Gateway Timeout"},
		{"malformed response", "GET / HTTP/1.1\r\nHost: bad\r\n\r\n", "502", ""},
		{"slow head", "GET / HTTP/1.1\r\nHost: slow\r\n", "408", ""},
		{"body over MaxBody", "POST / HTTP/1.1\r\nHost: slow\r\nContent-Length: 101\r\n\r\n", "413", ""},
		{"chunked over MaxBody", "POST / HTTP/1.1\r\nHost: slow\r\nTransfer-Encoding: chunked\r\n\r\n" + "65\r\n" + strings.Repeat("x", 101) + "\r\n", "413", ""},
		{"Connection names Authorization", "GET / HTTP/1.1\r\nHost: bad\r\nAuthorization: x\r\nConnection: Authorization\r\n\r\n", "400", ""},
		{"Connection names X-Forwarded-For", "GET / HTTP/1.1\r\nHost: bad\r\nConnection: x-forwarded-for\r\n\r\n", "400", ""},
		{"Connection names the id header", "GET / HTTP/1.1\r\nHost: bad\r\nConnection: sozu-id\r\n\r\n", "400", ""},
		{"CONNECT", "CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\n\r\n", "501", ""},
		{"HEAD answer has no body", "HEAD / HTTP/1.1\r\nHost: nowhere\r\n\r\n", "404", "Connection: close\r\n\r\n"},
	}
	for _, tt := range tests {
		out := exchangeRaw(t, f.addr, tt.raw)
		if !strings.HasPrefix(out, "HTTP/1.1 "+tt.status) || !strings.Contains(out, tt.contains) || !strings.Contains(out, "\r\nSozu-Id: ") {
			t.Errorf("%s: got %q, want status %s containing %q", tt.name, out, tt.status, tt.contains)
		}
		if tt.name == "HEAD answer has no body" && !strings.HasSuffix(out, "\r\n\r\n") {
			t.Errorf("HEAD answer with a body: %q", out)
		}
	}
	// Two more refused connects: the third consecutive failure marks the
	// backend down.
	for i := 0; i < 2; i++ {
		exchangeRaw(t, f.addr, "GET / HTTP/1.1\r\nHost: dead\r\n\r\n")
	}
	if got := strings.Join(f.events(), " "); got != "BACKEND_DOWN NO_AVAILABLE_BACKENDS" {
		t.Errorf("events %q after 3 refused connects", got)
	}
}

func TestStaleKeepAliveRetried(t *testing.T) {
	// The backend answers one request per connection, announcing
	// keep-alive, then closes: the proxy must retry on a new connection.
	b := newRawBackend(t, func(c net.Conn) {
		if _, err := readHeadFrom(bufio.NewReader(c)); err != nil {
			return
		}
		io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
	})
	f := newFixture(t, anyHost("c"), map[string][]string{"c": {b.addr}}, nil)
	c := client()
	for i := 0; i < 5; i++ {
		resp, err := c.Get("http://" + f.addr + "/")
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("request %d: %d", i, resp.StatusCode)
		}
	}
}

func TestSlowRequestBodyTimesOut(t *testing.T) {
	b := newHTTPBackend(t, func(w http.ResponseWriter, r *http.Request) { io.Copy(io.Discard, r.Body) })
	f := newFixture(t, anyHost("c"), map[string][]string{"c": {b.addr}}, func(l *Listener) { l.RequestTimeout = 200 * time.Millisecond })
	out := exchangeRaw(t, f.addr, "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\nabc")
	if !strings.HasPrefix(out, "HTTP/1.1 408 ") {
		t.Fatalf("got %q", out)
	}
	out = exchangeRaw(t, f.addr, "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\nzz\r\n")
	if !strings.HasPrefix(out, "HTTP/1.1 400 ") {
		t.Fatalf("bad chunk: got %q", out)
	}
}

func TestShutdownDrains(t *testing.T) {
	release := make(chan struct{})
	b := newHTTPBackend(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			<-release
		}
		io.WriteString(w, "done")
	})
	f := newFixture(t, anyHost("c"), map[string][]string{"c": {b.addr}}, nil)
	idle, err := net.Dial("tcp", f.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer idle.Close()
	result := make(chan string, 1)
	go func() {
		resp, err := client().Get("http://" + f.addr + "/slow")
		if err != nil {
			result <- err.Error()
			return
		}
		body, _ := io.ReadAll(resp.Body)
		result <- fmt.Sprintf("close=%v %s", resp.Close, body)
	}()
	waitFor(t, "two sessions", func() bool { return f.srv.Sessions() == 2 })
	shut := make(chan error, 1)
	go func() { shut <- f.srv.Shutdown(context.Background()) }()
	// The idle connection is closed at once; the busy one finishes.
	idle.SetReadDeadline(time.Now().Add(5 * time.Second))
	if n, err := idle.Read(make([]byte, 1)); n != 0 || err != io.EOF {
		t.Fatalf("idle connection: %d %v, want EOF", n, err)
	}
	if _, err := net.DialTimeout("tcp", f.addr, time.Second); err == nil {
		t.Fatal("still accepting after Shutdown")
	}
	select {
	case err := <-shut:
		t.Fatalf("Shutdown returned %v before the request finished", err)
	default:
	}
	close(release)
	if got := <-result; got != "close=true done" {
		t.Fatalf("in-flight request got %q", got)
	}
	if err := <-shut; err != nil {
		t.Fatal(err)
	}
}

func TestCloseIsImmediate(t *testing.T) {
	block := make(chan struct{})
	defer close(block)
	b := newHTTPBackend(t, func(w http.ResponseWriter, r *http.Request) { <-block })
	f := newFixture(t, anyHost("c"), map[string][]string{"c": {b.addr}}, nil)
	errc := make(chan error, 1)
	go func() {
		_, err := client().Get("http://" + f.addr + "/")
		errc <- err
	}()
	waitFor(t, "a session", func() bool { return f.srv.Sessions() == 1 })
	waitFor(t, "the request at the backend", func() bool { return b.conns.Load() == 1 })
	f.srv.Close()
	if err := <-errc; err == nil {
		t.Fatal("request succeeded through a hard stop")
	}
}

func TestSwapChangesRoutes(t *testing.T) {
	b := newHTTPBackend(t, func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") })
	f := newFixture(t, nil, map[string][]string{"c": {b.addr}}, nil)
	c := client()
	get := func() int {
		resp, err := c.Get("http://" + f.addr + "/")
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	if s := get(); s != 404 {
		t.Fatalf("before: %d", s)
	}
	old := f.srv.Config()
	tab, _ := router.Build(anyHost("c"))
	f.srv.Swap(&Listener{Addr: old.Addr, Routes: tab, Clusters: old.Clusters})
	if s := get(); s != 200 {
		t.Fatalf("after: %d", s)
	}
}

// TestSwapReachesIdleConnection: a request that starts after Swap on a
// keep-alive connection already waiting for it is served with the new
// configuration (the session took its configuration before the wait).
func TestSwapReachesIdleConnection(t *testing.T) {
	old := newHTTPBackend(t, func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "old") })
	next := newHTTPBackend(t, func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "new") })
	f := newFixture(t, anyHost("c"), map[string][]string{"c": {old.addr}, "d": {next.addr}}, nil)
	c, br := dialProxy(t, f.addr)
	if body, _ := stickyGet(t, c, br, ""); body != "old" {
		t.Fatalf("before: %q", body)
	}
	waitFor(t, "the session waiting for its next request", func() bool {
		f.srv.mu.Lock()
		defer f.srv.mu.Unlock()
		for ss := range f.srv.sessions {
			if ss.state.Load() != stateIdle {
				return false
			}
		}
		return len(f.srv.sessions) == 1
	})
	cfg := *f.srv.Config()
	cfg.Routes, _ = router.Build(anyHost("d"))
	f.srv.Swap(&cfg)
	if body, _ := stickyGet(t, c, br, ""); body != "new" {
		t.Fatalf("after Swap, the idle connection's request got %q", body)
	}
}

// TestUploadLongerThanBackTimeout: an upload that keeps flowing to the
// backend is not cut at the back timeout counted from its head: the
// backend is not silent while it reads (the timeout runs from the body's
// last write), through the copying path and the splice path alike.
func TestUploadLongerThanBackTimeout(t *testing.T) {
	b := newHTTPBackend(t, func(w http.ResponseWriter, r *http.Request) {
		n, _ := io.Copy(io.Discard, r.Body)
		fmt.Fprintf(w, "got %d", n)
	})
	f := newFixture(t, anyHost("c"), map[string][]string{"c": {b.addr}}, func(l *Listener) {
		l.BackTimeout = time.Second // a pause of the test's goroutine this long would fail it
	})
	for _, tc := range []struct {
		name  string
		piece int
	}{{"copied", 1 << 10}, {"spliced", 40 << 10}} {
		t.Run(tc.name, func(t *testing.T) {
			const pieces = 20 // one every 100 ms: 2 back timeouts in all
			c, err := net.Dial("tcp", f.addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(20 * time.Second))
			fmt.Fprintf(c, "POST /up HTTP/1.1\r\nHost: a\r\nContent-Length: %d\r\n\r\n", pieces*tc.piece)
			tick := time.NewTicker(100 * time.Millisecond) // the upload's pace, not a synchronisation
			defer tick.Stop()
			piece := bytes.Repeat([]byte("u"), tc.piece)
			for range pieces {
				<-tick.C
				if _, err := c.Write(piece); err != nil {
					t.Fatal(err)
				}
			}
			resp, err := http.ReadResponse(bufio.NewReader(c), nil)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			if want := fmt.Sprintf("got %d", pieces*tc.piece); resp.StatusCode != 200 || string(body) != want {
				t.Fatalf("%d %q, want 200 %q", resp.StatusCode, body, want)
			}
		})
	}
}

// TestBackendStalledMidUpload: a backend that stops reading a request body
// and does not answer is silent: 504 after the back timeout, through the
// copying and splice paths alike (not 502, as for a backend that failed).
func TestBackendStalledMidUpload(t *testing.T) {
	for _, tc := range []struct {
		name  string
		piece int
	}{{"copied", 1 << 10}, {"spliced", 64 << 10}} {
		t.Run(tc.name, func(t *testing.T) {
			stop := make(chan struct{})
			defer close(stop)
			b := newRawBackend(t, func(c net.Conn) {
				br := bufio.NewReader(c)
				if _, err := readHeadFrom(br); err != nil {
					return
				}
				io.CopyN(io.Discard, br, 256<<10) // then neither reads nor answers
				<-stop
			})
			f := newFixture(t, anyHost("c"), map[string][]string{"c": {b.addr}}, func(l *Listener) {
				l.BackTimeout = 300 * time.Millisecond
				l.RequestTimeout = 10 * time.Second
			})
			c, err := net.Dial("tcp", f.addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(20 * time.Second))
			const total = 256 << 20
			fmt.Fprintf(c, "POST /up HTTP/1.1\r\nHost: a\r\nContent-Length: %d\r\n\r\n", total)
			go func() {
				piece := bytes.Repeat([]byte("u"), tc.piece)
				for sent := 0; sent < total; sent += len(piece) {
					if _, err := c.Write(piece); err != nil {
						return
					}
				}
			}()
			resp, err := http.ReadResponse(bufio.NewReader(c), nil)
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != 504 {
				t.Fatalf("status %d, want 504", resp.StatusCode)
			}
		})
	}
}

// TestBackendCloseKeepsTheClientConnection: a backend's "Connection:
// close" ends that backend connection only (it is hop-by-hop): the
// client's connection stays open, its next requests going out on other
// backend connections, so that a backend which closes after every
// response (an HTTP/1.0 server) does not cost every client a new
// connection and, over HTTPS, a handshake per request. Upstream closes
// the client connection too (its backend connections belong to the
// client's session); docs/backends.md says so.
func TestBackendCloseKeepsTheClientConnection(t *testing.T) {
	b := newRawBackend(t, func(c net.Conn) {
		head, err := readHeadFrom(bufio.NewReader(c))
		if err != nil {
			return
		}
		path := strings.Fields(head)[1]
		fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s", len(path), path)
	})
	f := newFixture(t, anyHost("c"), map[string][]string{"c": {b.addr}}, nil)
	out := exchangeRaw(t, f.addr, "GET /1 HTTP/1.1\r\nHost: a\r\n\r\nGET /2 HTTP/1.1\r\nHost: a\r\n\r\nGET /3 HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
	br := bufio.NewReader(strings.NewReader(out))
	for i := 1; i <= 3; i++ {
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("response %d: %v in %q", i, err, out)
		}
		body, _ := io.ReadAll(resp.Body)
		if want := fmt.Sprintf("/%d", i); string(body) != want {
			t.Fatalf("response %d: %q, want %q", i, body, want)
		}
		if resp.Close != (i == 3) {
			t.Fatalf("response %d: Connection: close is %v: %q", i, resp.Close, out)
		}
	}
	if n := b.conns.Load(); n != 3 {
		t.Fatalf("the backend saw %d connections, want 3", n)
	}
}
