package e2e

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sozu-go/sozu/cmd/sozu/sozutest"
)

// parityReply is one response as a client saw it: status, fields (lower-case
// "name: value", Date left out, request ids masked) and body (request ids
// masked). data is the sum of the DATA frames' lengths (nghttp only, -1
// otherwise).
type parityReply struct {
	status string
	fields []string
	body   string
	data   int
}

var ulid = regexp.MustCompile(`[0-9A-HJKMNP-TV-Z]{26}`)

// hopByHop are the fields an HTTP/1.1 response may carry and an HTTP/2 one
// must not (RFC 9113 §8.2.2; nghttp2 refuses a te other than "trailers").
// "close" is reserved (RFC 9112 §9.6): the proxy drops it with them.
var hopByHop = []string{"connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade", "te", "close"}

func parityField(name, value string) string {
	return strings.ToLower(strings.TrimSpace(name)) + ": " + ulid.ReplaceAllString(strings.TrimSpace(value), "<ID>")
}

// TestHTTP2Parity sends the same requests through each frontend feature
// over HTTP/1.1 (curl --http1.1) and HTTP/2 (curl --http2, nghttp) to one
// HTTPS listener, and checks the answers are the same: status, fields
// (but the connection-specific ones, which never appear over HTTP/2), body,
// and what the backend received (it echoes its request head). Over HTTP/2
// the Content-Length of every answer matches the DATA sent, and a HEAD
// answer has no DATA.
func TestHTTP2Parity(t *testing.T) {
	dir := t.TempDir()
	ca := newTestCA(t)
	caPath := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(caPath, ca.pem, 0o600); err != nil {
		t.Fatal(err)
	}
	hosts := []string{"a.test", "old.test", "found.test", "moved.test", "closed.test", "secure.test", "shop.app.test",
		"down.test", "noback.test", "maint.test", "sticky.test", "nohsts.test", "zzz.test", "garbage.test", "capped.test", "bighead.test"}
	cp, kp := ca.issuePEM(t, func(c *x509.Certificate) { c.IPAddresses = []net.IP{net.IPv4(127, 0, 0, 1)} }, nil, hosts...)
	certPath, keyPath := filepath.Join(dir, "c.pem"), filepath.Join(dir, "c.key")
	os.WriteFile(certPath, cp, 0o600)
	os.WriteFile(keyPath, kp, 0o600)
	origin := startHTTPOrigin(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var names []string
		for k := range r.Header {
			names = append(names, k)
		}
		sort.Strings(names)
		var b strings.Builder
		fmt.Fprintf(&b, "%s %s %s\nhost: %s\n", r.Method, r.RequestURI, r.Proto, r.Host)
		for _, k := range names {
			for _, v := range r.Header[k] {
				fmt.Fprintf(&b, "%s: %s\n", strings.ToLower(k), v)
			}
		}
		fmt.Fprintf(&b, "body: %d\n", len(body))
		h := w.Header()
		h.Set("Server", "origin/1.0")
		h.Set("X-Frame-Options", "SAMEORIGIN")
		h.Set("Keep-Alive", "timeout=5")
		h.Add("Set-Cookie", "a=1")
		h.Add("Set-Cookie", "b=2")
		h.Set("Content-Type", "text/plain")
		if strings.HasSuffix(r.URL.Path, "/chunked") {
			w.(http.Flusher).Flush() // no Content-Length: chunked
		}
		io.WriteString(w, b.String())
	}))
	garbage := startRawOrigin(t, func(c net.Conn) {
		c.Read(make([]byte, 4096))
		io.WriteString(c, "garbage\r\n\r\n")
	})
	// bigHead answers with a head just within what the proxy takes from a
	// backend (http1.DefaultMaxHeadBytes, DefaultMaxFields): the head the
	// client gets, with the proxy's own fields, is over both.
	var bh strings.Builder
	bh.WriteString("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n")
	for i := 0; i < 124; i++ {
		fmt.Fprintf(&bh, "X-F%03d: v\r\n", i)
	}
	bh.WriteString("X-Big: ")
	bh.WriteString(strings.Repeat("b", 16<<10-64-bh.Len()))
	bh.WriteString("\r\n\r\nok")
	bigHead := startRawOrigin(t, func(c net.Conn) {
		br := bufio.NewReader(c)
		if _, err := http.ReadRequest(br); err == nil {
			io.WriteString(c, bh.String())
		}
	})
	digest := sha256.Sum256([]byte("s3cret"))
	port := sozutest.FreePort(t)
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	deadPort := sozutest.FreePort(t)
	sock := filepath.Join(dir, "sozu.sock")
	cfg := fmt.Sprintf(`command_socket = %[1]q
worker_count = 1
worker_timeout = 10
activate_listeners = true

[[listeners]]
protocol = "https"
address = %[2]q
certificate = %[3]q
key = %[4]q
hsts = { enabled = true, max_age = 600 }
sticky_name = "SOZUBALANCEID"
answers = { "404" = """HTTP/1.1 404 Not Found
X-Custom: yes

nothing for %%REQUEST_ID here""" }

[clusters.app]
protocol = "http"
backends = [ { address = %[5]q } ]

[[clusters.app.frontends]]
address = %[2]q
hostname = "old.test"
redirect = "permanent"
redirect_scheme = "use-https"
rewrite_host = "new.test"
rewrite_port = 8443

[[clusters.app.frontends]]
address = %[2]q
hostname = "found.test"
path = "^/u/([a-z]+)$"
path_type = "REGEX"
redirect = "found"
rewrite_path = "/users/$PATH[1]"

[[clusters.app.frontends]]
address = %[2]q
hostname = "moved.test"
redirect = "permanent_redirect"
redirect_template = """HTTP/1.1 308 Permanent Redirect
X-Moved: yes

<a href="%%REDIRECT_LOCATION">moved</a>"""

[[clusters.app.frontends]]
address = %[2]q
hostname = "closed.test"
redirect = "unauthorized"

[[clusters.app.frontends]]
address = %[2]q
hostname = "*.app.test"
path = "/api/"
rewrite_host = "$HOST[1].internal"
rewrite_path = "/v2/$PATH[1]"
rewrite_port = 8080
headers = [
  { position = "request", key = "X-Tenant", value = "t1" },
  { position = "request", key = "Cookie", value = "" },
  { position = "response", key = "Server", value = "" },
  { position = "response", key = "X-Frame-Options", value = "" },
  { position = "response", key = "X-Frame-Options", value = "DENY" },
]

[[clusters.app.frontends]]
address = %[2]q
hostname = "a.test"

[[clusters.app.frontends]]
address = %[2]q
hostname = "nohsts.test"
hsts = { enabled = false }

[clusters.secure]
protocol = "http"
authorized_hashes = [ "bob:%[6]s" ]
www_authenticate = 'Basic realm="secure"'
backends = [ { address = %[5]q } ]
frontends = [ { address = %[2]q, hostname = "secure.test", required_auth = true } ]

[clusters.down]
protocol = "http"
backends = [ { address = %[7]q } ]
frontends = [ { address = %[2]q, hostname = "down.test" } ]

[clusters.noback]
protocol = "http"
frontends = [ { address = %[2]q, hostname = "noback.test" } ]

[clusters.maint]
protocol = "http"
answers = { "503" = """HTTP/1.1 503 Service Unavailable
TE: gzip
Upgrade: h2c
Proxy-Connection: keep-alive
Close: now
Retry-After: 120
X-Pad: %[11]s

down for maintenance""" }
frontends = [ { address = %[2]q, hostname = "maint.test" } ]

[clusters.garbage]
protocol = "http"
backends = [ { address = %[8]q } ]
frontends = [ { address = %[2]q, hostname = "garbage.test" } ]

[clusters.capped]
protocol = "http"
max_connections_per_ip = 1
retry_after = 7
backends = [ { address = %[5]q } ]
frontends = [ { address = %[2]q, hostname = "capped.test" } ]

[clusters.big]
protocol = "http"
backends = [ { address = %[9]q } ]

[[clusters.big.frontends]]
address = %[2]q
hostname = "bighead.test"
headers = [
  { position = "response", key = "X-Added-1", value = "%[10]s" },
  { position = "response", key = "X-Added-2", value = "%[10]s" },
  { position = "response", key = "X-Added-3", value = "%[10]s" },
]

[clusters.sticky]
protocol = "http"
sticky_session = true
backends = [ { address = %[5]q, sticky_id = "s1" } ]
frontends = [ { address = %[2]q, hostname = "sticky.test" } ]
`, sock, addr, certPath, keyPath, origin.addr, hex.EncodeToString(digest[:]), fmt.Sprintf("127.0.0.1:%d", deadPort),
		garbage.addr, bigHead.addr, strings.Repeat("a", 100), strings.Repeat("p", 24<<10))
	startProxy(t, dir, sock, cfg, addr)

	curlReply := func(t *testing.T, proto, host, path string, extra ...string) parityReply {
		t.Helper()
		args := append([]string{"-sS", "-i", proto, "--max-time", "10", "--cacert", caPath, "--path-as-is",
			"--resolve", fmt.Sprintf("%s:%d:127.0.0.1", host, port)}, extra...)
		args = append(args, fmt.Sprintf("https://%s:%d%s", host, port, path))
		cmd := exec.Command("/usr/bin/curl", args...)
		var out, errOut bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errOut
		if err := sozutest.RunWithTimeout(cmd, 20*time.Second); err != nil {
			t.Fatalf("curl %s: %v: %s\n%s", proto, err, errOut.String(), out.String())
		}
		head, body, _ := strings.Cut(out.String(), "\r\n\r\n")
		lines := strings.Split(head, "\r\n")
		r := parityReply{status: strings.Fields(lines[0])[1], body: ulid.ReplaceAllString(body, "<ID>"), data: -1}
		for _, l := range lines[1:] {
			if k, v, ok := strings.Cut(l, ":"); ok && !strings.EqualFold(k, "date") {
				r.fields = append(r.fields, parityField(k, v))
			}
		}
		return r
	}
	// nghttpReply reads the frames nghttp logs: the fields of stream 13
	// (its first request), the lengths of the DATA frames, and fails on a
	// stream nghttp refused or the proxy reset. nghttp sends no SNI to an
	// IP address: the default certificate binds it to every name above.
	nghttpReply := func(t *testing.T, host, path string, extra ...string) parityReply {
		t.Helper()
		args := append([]string{"-v", "-t", "10", "-H", fmt.Sprintf(":authority: %s:%d", host, port), "-H", ":path: " + path}, extra...)
		cmd := exec.Command("/usr/bin/nghttp", append(args, fmt.Sprintf("https://127.0.0.1:%d/", port))...)
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		err := sozutest.RunWithTimeout(cmd, 20*time.Second)
		text := out.String()
		if err != nil || strings.Contains(text, "INVALID") || strings.Contains(text, "RST_STREAM") {
			t.Fatalf("nghttp: %v\n%s", err, text)
		}
		r := parityReply{}
		dataLen := regexp.MustCompile(`recv DATA frame <length=(\d+)`)
		for _, l := range strings.Split(text, "\n") {
			if _, f, ok := strings.Cut(l, "recv (stream_id=13) "); ok {
				k, v, _ := strings.Cut(f, ":")
				if k == "" { // a pseudo-header
					if p, v, _ := strings.Cut(v, ":"); p == "status" {
						r.status = strings.TrimSpace(v)
					}
					continue
				}
				if k != "date" {
					r.fields = append(r.fields, parityField(k, v))
				}
			} else if _, f, ok = strings.Cut(l, "recv (stream_id=13, sensitive) "); ok {
				k, v, _ := strings.Cut(f, ":")
				r.fields = append(r.fields, parityField(k, v))
			}
			if m := dataLen.FindStringSubmatch(l); m != nil {
				n, _ := strconv.Atoi(m[1])
				r.data += n
			}
		}
		return r
	}
	endToEnd := func(fields []string) []string {
		var out []string
		for _, f := range fields {
			name, _, _ := strings.Cut(f, ":")
			if !slices.Contains(hopByHop, name) {
				out = append(out, f)
			}
		}
		return out
	}
	sozutest.WaitFor(t, 20*time.Second, "the HTTPS listener serves HTTP/2", func() bool {
		cmd := exec.Command("/usr/bin/curl", "-sS", "-o", "/dev/null", "--http2", "--max-time", "5", "--cacert", caPath,
			"--resolve", fmt.Sprintf("a.test:%d:127.0.0.1", port), fmt.Sprintf("https://a.test:%d/", port))
		return sozutest.RunWithTimeout(cmd, 10*time.Second) == nil
	})

	// A keep-alive connection to capped.test holds the one slot of
	// 127.0.0.1 until the test ends.
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(ca.pem)
	held, err := tls.Dial("tcp", addr, &tls.Config{ServerName: "capped.test", RootCAs: pool, NextProtos: []string{"http/1.1"}})
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	fmt.Fprintf(held, "GET / HTTP/1.1\r\nHost: capped.test\r\n\r\n")
	if resp, err := http.ReadResponse(bufio.NewReader(held), nil); err != nil || resp.StatusCode != 200 {
		t.Fatalf("holding connection: %v %v", resp, err)
	}

	for _, tt := range []struct {
		name, host, path string
		head             bool
		curl             []string // curl's own options
		fields           []string // request fields, "name: value"
		status           string
		want             []string // in the HTTP/2 answer (fields or body)
	}{
		{name: "proxied", host: "a.test", path: "/x?y=1", fields: []string{"cookie: a=1", "x-forwarded-for: 1.2.3.4", "x-real-ip: 9.9.9.9"},
			status: "200", want: []string{"strict-transport-security: max-age=600", "GET /x?y=1 HTTP/1.1", "x-forwarded-proto: https",
				"x-forwarded-for: 1.2.3.4, 127.0.0.1", "sozu-id: <ID>"}},
		{name: "proxied HEAD", host: "a.test", path: "/x", head: true, status: "200"},
		{name: "proxied chunked", host: "a.test", path: "/chunked", status: "200"},
		{name: "request body", host: "a.test", path: "/up", curl: []string{"--data-binary", strings.Repeat("z", 70000)},
			status: "200", want: []string{"POST /up HTTP/1.1", "body: 70000"}},
		{name: "rewrites and header edits", host: "shop.app.test", path: "/api/users/7?full=1",
			fields: []string{"cookie: s=1", "x-forwarded-host: spoofed"}, status: "200",
			want: []string{"GET /v2/users/7?full=1 HTTP/1.1", "host: shop.internal:8080", "x-tenant: t1", "x-frame-options: DENY"}},
		{name: "header edits on a chunked response", host: "shop.app.test", path: "/api/chunked", status: "200",
			want: []string{"x-frame-options: DENY"}},
		{name: "header edits HEAD", host: "shop.app.test", path: "/api/x", head: true, status: "200"},
		{name: "frontend without HSTS", host: "nohsts.test", path: "/", status: "200"},
		{name: "sticky session", host: "sticky.test", path: "/", status: "200", want: []string{"set-cookie: SOZUBALANCEID=s1"}},
		{name: "sticky session cookie", host: "sticky.test", path: "/", fields: []string{"cookie: x=1; SOZUBALANCEID=s1"}, status: "200",
			want: []string{"cookie: x=1\n"}},
		{name: "redirect 301", host: "old.test", path: "/a/b?c=d", status: "301", want: []string{"location: https://new.test:8443/a/b?c=d"}},
		{name: "redirect 301 HEAD", host: "old.test", path: "/a", head: true, status: "301"},
		{name: "redirect 301 with a body", host: "old.test", path: "/a", curl: []string{"--data-binary", strings.Repeat("z", 70000)}, status: "301"},
		{name: "redirect 302", host: "found.test", path: "/u/bob", status: "302", want: []string{"/users/bob"}},
		{name: "redirect 308 template", host: "moved.test", path: "/x?y=1", status: "308", want: []string{"x-moved: yes", "<a href="}},
		{name: "redirect 308 template HEAD", host: "moved.test", path: "/x", head: true, status: "308"},
		{name: "unauthorized", host: "closed.test", path: "/", status: "401"},
		{name: "auth required", host: "secure.test", path: "/", status: "401", want: []string{`www-authenticate: Basic realm="secure"`}},
		{name: "auth required HEAD", host: "secure.test", path: "/", head: true, status: "401"},
		{name: "auth given", host: "secure.test", path: "/p", fields: []string{"authorization: Basic Ym9iOnMzY3JldA=="}, status: "200"},
		{name: "no frontend, listener template", host: "zzz.test", path: "/", status: "404", want: []string{"x-custom: yes", "nothing for <ID> here"}},
		{name: "strict SNI", host: "a.test", path: "/", fields: []string{"host: secure.test"}, status: "421"},
		{name: "no backend", host: "noback.test", path: "/", status: "503"},
		{name: "backend down", host: "down.test", path: "/", status: "503"},
		{name: "503 template with connection-specific fields and a 24 KiB head", host: "maint.test", path: "/", status: "503",
			want: []string{"retry-after: 120", "x-pad: ppp", "down for maintenance"}},
		{name: "503 template HEAD", host: "maint.test", path: "/", head: true, status: "503"},
		{name: "header edits on a head at the backend limits", host: "bighead.test", path: "/", status: "200",
			want: []string{"x-added-3: aaa", "x-f123: v"}},
		{name: "backend answers garbage", host: "garbage.test", path: "/", status: "502"},
		{name: "over the per-IP cap", host: "capped.test", path: "/", status: "429", want: []string{"retry-after: 7"}},
		{name: "dot segments", host: "a.test", path: "/a/../b", status: "400"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var extra []string
			for _, f := range tt.fields {
				extra = append(extra, "-H", f)
			}
			if tt.head {
				extra = append(extra, "-I")
			}
			extra = append(extra, tt.curl...)
			h1 := curlReply(t, "--http1.1", tt.host, tt.path, extra...)
			h2 := curlReply(t, "--http2", tt.host, tt.path, extra...)
			if h1.status != tt.status || h2.status != tt.status {
				t.Fatalf("status %s over HTTP/1.1, %s over HTTP/2, want %s\n%q\n%s", h1.status, h2.status, tt.status, h2.fields, h2.body)
			}
			if a, b := endToEnd(h1.fields), endToEnd(h2.fields); !slices.Equal(a, b) {
				t.Errorf("fields differ:\nHTTP/1.1 %q\nHTTP/2   %q", a, b)
			}
			if h1.body != h2.body {
				t.Errorf("bodies differ:\nHTTP/1.1 %q\nHTTP/2   %q", h1.body, h2.body)
			}
			for _, w := range tt.want {
				if !strings.Contains(strings.Join(h2.fields, "\n"), w) && !strings.Contains(h2.body, w) {
					t.Errorf("no %q over HTTP/2:\n%q\n%s", w, h2.fields, h2.body)
				}
			}

			if tt.curl != nil || strings.Contains(strings.Join(tt.fields, "\n"), "host: ") {
				return // a body, or a Host other than the SNI: curl covers it
			}
			var ng []string
			for _, f := range tt.fields {
				ng = append(ng, "-H", f)
			}
			if tt.head {
				ng = append(ng, "-H", ":method: HEAD")
			}
			r := nghttpReply(t, tt.host, tt.path, ng...)
			if r.status != tt.status {
				t.Fatalf("nghttp: status %s, want %s\n%q", r.status, tt.status, r.fields)
			}
			for _, f := range r.fields {
				if name, _, _ := strings.Cut(f, ":"); slices.Contains(hopByHop, name) {
					t.Errorf("nghttp: connection-specific field %q over HTTP/2", f)
				}
			}
			if tt.head && r.data != 0 {
				t.Errorf("nghttp: %d bytes of DATA answering HEAD", r.data)
			}
			for _, f := range r.fields {
				if v, ok := strings.CutPrefix(f, "content-length: "); ok && !tt.head && v != strconv.Itoa(r.data) {
					t.Errorf("nghttp: content-length %s, %d bytes of DATA", v, r.data)
				}
			}
		})
	}
}
