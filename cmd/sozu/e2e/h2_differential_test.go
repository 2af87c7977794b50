package e2e

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"crypto/tls"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/sozu-go/sozu/cmd/sozu/sozutest"
)

// diffRequest is one logical request, which diffH1 writes as HTTP/1.1 and
// diffH2 as HTTP/2 frames: a field list the same for both, but for what
// each protocol spells its own way (the authority, cookies, a body
// without a length, the te option).
type diffRequest struct {
	method, path string
	authority    string   // :authority, or the Host field; "" for a.test
	sni          string   // "" for the authority's host
	fields       []string // "name: value", as both protocols send them
	cookies      []string // one Cookie line over HTTP/1.1, crumbs over HTTP/2 (RFC 9113 §8.2.3)
	te           bool     // te: trailers (HTTP/1.1: with the te connection option)
	hostOnly     bool     // HTTP/2: a host field and no :authority (RFC 9113 §8.3.1)
	body         string
	noLength     bool     // the body goes without content-length: chunked over HTTP/1.1
	trailers     []string // request trailers: chunked over HTTP/1.1, after DATA over HTTP/2 (with content-length unless noLength)
	proxied      string   // the client's address a PROXY v2 header gives (the expect_proxy listener); "" for none
}

// diffReply is what a client saw: the interim statuses, the final status,
// the end-to-end fields (lower-case names, sorted by name, the order of
// each name's values kept; Date and hop-by-hop fields left out, request
// ids masked), the body (request ids masked) and the trailers.
type diffReply struct {
	interim  []string
	status   string
	fields   []string
	body     string
	trailers []string
}

func (r diffReply) String() string {
	return fmt.Sprintf("interim %q\nstatus %s\nfields %q\nbody %q\ntrailers %q", r.interim, r.status, r.fields, r.body, r.trailers)
}

// endToEndFields lower-cases, filters and sorts fields (see diffReply).
func endToEndFields(fields []string) []string {
	var out []string
	for _, f := range fields {
		name, value, _ := strings.Cut(f, ":")
		name = strings.ToLower(strings.TrimSpace(name))
		if name == "date" || slices.Contains(hopByHop, name) {
			continue
		}
		out = append(out, parityField(name, value))
	}
	sort.SliceStable(out, func(i, j int) bool {
		a, _, _ := strings.Cut(out[i], ":")
		b, _, _ := strings.Cut(out[j], ":")
		return a < b
	})
	return out
}

// diffEcho is the recording backend: for each request it answers, in the
// body, what it received: the request line, the head's fields as they came
// (names as written), how the body was framed, the body and the trailers.
// A segment of the path chooses the response: /trailers (chunked, with
// trailers), /early (103 first), /hop (connection options), /sts (its own
// Strict-Transport-Security), /slow (after 3 s), /continue (100 Continue
// first when asked for); any other path a 200 with a length.
func diffEcho(c net.Conn) {
	var raw bytes.Buffer
	br := bufio.NewReader(io.TeeReader(c, &raw))
	for {
		raw.Reset()
		req, err := http.ReadRequest(br)
		if err != nil {
			return
		}
		head, _, _ := strings.Cut(raw.String(), "\r\n\r\n")
		if req.Header.Get("Expect") == "100-continue" && strings.Contains(req.URL.Path, "/continue") {
			io.WriteString(c, "HTTP/1.1 100 Continue\r\n\r\n")
		}
		body, err := io.ReadAll(req.Body)
		if err != nil {
			return
		}
		var echo strings.Builder
		echo.WriteString(head)
		fmt.Fprintf(&echo, "\r\n\r\nframing: length %d, %q\nbody: %q\n", req.ContentLength, req.TransferEncoding, body)
		var tr []string
		for k, vs := range req.Trailer {
			for _, v := range vs {
				tr = append(tr, strings.ToLower(k)+": "+v)
			}
		}
		sort.Strings(tr)
		for _, f := range tr {
			fmt.Fprintf(&echo, "trailer %s\n", f)
		}
		e := echo.String()
		switch p := req.URL.Path; {
		case strings.Contains(p, "/slow"):
			time.Sleep(3 * time.Second)
			fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s", len(e), e)
		case strings.Contains(p, "/trailers"):
			fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-Sum\r\n\r\n%x\r\n%s\r\n0\r\nX-Sum: 42\r\nKeep-Alive: timeout=5\r\n\r\n", len(e), e)
		case strings.Contains(p, "/early"):
			fmt.Fprintf(c, "HTTP/1.1 103 Early Hints\r\nLink: </s.css>; rel=preload\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s", len(e), e)
		case strings.Contains(p, "/hop"):
			fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nConnection: X-Hop\r\nX-Hop: 1\r\nKeep-Alive: timeout=5\r\nX-Keep: 2\r\nContent-Length: %d\r\n\r\n%s", len(e), e)
		case strings.Contains(p, "/sts"):
			fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nStrict-Transport-Security: max-age=1\r\nContent-Length: %d\r\n\r\n%s", len(e), e)
		default:
			fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nX-Multi: a\r\nX-Multi: b\r\nServer: echo\r\nContent-Length: %d\r\n\r\n%s", len(e), e)
		}
	}
}

// normalizeEcho puts a backend echo (diffEcho) in a form where the two
// protocols' spellings of one request agree: field names lower-cased and
// sorted as endToEndFields does (an HTTP/2 request's cookie field comes
// last, its Host first), request ids masked.
func normalizeEcho(body string) string {
	head, rest, ok := strings.Cut(body, "\r\n\r\n")
	if !ok {
		return ulid.ReplaceAllString(body, "<ID>")
	}
	lines := strings.Split(head, "\r\n")
	var fields []string
	for _, l := range lines[1:] {
		k, v, _ := strings.Cut(l, ":")
		fields = append(fields, parityField(k, v))
	}
	sort.SliceStable(fields, func(i, j int) bool {
		a, _, _ := strings.Cut(fields[i], ":")
		b, _, _ := strings.Cut(fields[j], ":")
		return a < b
	})
	return lines[0] + "\n" + strings.Join(fields, "\n") + "\n" + ulid.ReplaceAllString(rest, "<ID>")
}

// diffH1 sends r over HTTP/1.1 (TLS, ALPN http/1.1) and reads the answer.
func diffH1(t *testing.T, addr string, r diffRequest) diffReply {
	t.Helper()
	c := r.dial(t, addr, "http/1.1")
	defer c.Close()
	c.SetDeadline(time.Now().Add(15 * time.Second))
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s HTTP/1.1\r\nHost: %s\r\n", r.method, r.path, r.authorityName())
	for _, f := range r.fields {
		b.WriteString(f + "\r\n")
	}
	if len(r.cookies) > 0 {
		b.WriteString("Cookie: " + strings.Join(r.cookies, "; ") + "\r\n")
	}
	conn := "close"
	if r.te {
		b.WriteString("TE: trailers\r\n")
		conn = "TE, close"
	}
	fmt.Fprintf(&b, "Connection: %s\r\n", conn)
	if r.noLength || len(r.trailers) > 0 {
		b.WriteString("Transfer-Encoding: chunked\r\n\r\n")
		if r.body != "" {
			fmt.Fprintf(&b, "%x\r\n%s\r\n", len(r.body), r.body)
		}
		b.WriteString("0\r\n")
		for _, f := range r.trailers {
			b.WriteString(f + "\r\n")
		}
		b.WriteString("\r\n")
	} else {
		if r.body != "" {
			fmt.Fprintf(&b, "Content-Length: %d\r\n", len(r.body))
		}
		b.WriteString("\r\n" + r.body)
	}
	if _, err := io.WriteString(c, b.String()); err != nil {
		t.Fatal(err)
	}
	var out diffReply
	br := bufio.NewReader(c)
	for {
		resp, err := http.ReadResponse(br, &http.Request{Method: r.method})
		if err != nil {
			t.Fatalf("HTTP/1.1: %v", err)
		}
		// Header is a map: its names in order, each name's values in theirs
		// (endToEndFields sorts by name only).
		var fields []string
		for _, k := range slices.Sorted(maps.Keys(resp.Header)) {
			for _, v := range resp.Header[k] {
				fields = append(fields, k+": "+v)
			}
		}
		if resp.StatusCode < 200 {
			out.interim = append(out.interim, strconv.Itoa(resp.StatusCode)+" "+strings.Join(endToEndFields(fields), ", "))
			continue
		}
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatalf("HTTP/1.1 body: %v", err)
		}
		out.body = normalizeEcho(string(body))
		var tr, declared []string
		for k, vs := range resp.Trailer {
			declared = append(declared, k)
			for _, v := range vs {
				tr = append(tr, k+": "+v)
			}
		}
		sort.Strings(declared)
		for _, k := range declared { // ReadResponse took the Trailer field out of the head
			fields = append(fields, "Trailer: "+k)
		}
		out.status, out.fields = strconv.Itoa(resp.StatusCode), endToEndFields(fields)
		out.trailers = endToEndFields(tr)
		return out
	}
}

// diffH2 sends r over HTTP/2 (TLS, ALPN h2) on stream 1 and reads the
// answer; a reset stream or a GOAWAY fails the test.
func diffH2(t *testing.T, addr string, r diffRequest) diffReply {
	t.Helper()
	c := r.dial(t, addr, "h2")
	defer c.Close()
	c.SetDeadline(time.Now().Add(15 * time.Second))
	io.WriteString(c, http2.ClientPreface)
	fr := http2.NewFramer(c, c)
	fr.ReadMetaHeaders = hpack.NewDecoder(65536, nil)
	fr.MaxHeaderListSize = 1 << 20
	fr.WriteSettings()
	var blk bytes.Buffer
	enc := hpack.NewEncoder(&blk)
	field := func(name, value string) { enc.WriteField(hpack.HeaderField{Name: name, Value: value}) }
	field(":method", r.method)
	if r.method != "CONNECT" {
		field(":scheme", "https")
	}
	if !r.hostOnly {
		field(":authority", r.authorityName())
	}
	if r.method != "CONNECT" {
		field(":path", r.path)
	}
	if r.hostOnly {
		field("host", r.authorityName())
	}
	for _, f := range r.fields {
		k, v, _ := strings.Cut(f, ":")
		field(strings.ToLower(k), strings.TrimSpace(v))
	}
	for _, ck := range r.cookies {
		field("cookie", ck)
	}
	if r.te {
		field("te", "trailers")
	}
	if r.body != "" && !r.noLength {
		field("content-length", strconv.Itoa(len(r.body)))
	}
	hasBody := r.body != "" || r.noLength
	const frame = 16384 // SETTINGS_MAX_FRAME_SIZE's initial value (RFC 9113 §6.5.2)
	b := blk.Bytes()
	first := b[:min(len(b), frame)]
	fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: first, EndStream: !hasBody, EndHeaders: len(b) <= frame})
	for off := frame; off < len(b); off += frame {
		fr.WriteContinuation(1, off+frame >= len(b), b[off:min(off+frame, len(b))])
	}
	if hasBody {
		fr.WriteData(1, len(r.trailers) == 0, []byte(r.body))
		if len(r.trailers) > 0 {
			blk.Reset()
			for _, f := range r.trailers {
				k, v, _ := strings.Cut(f, ":")
				field(strings.ToLower(k), strings.TrimSpace(v))
			}
			fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: blk.Bytes(), EndStream: true, EndHeaders: true})
		}
	}
	var out diffReply
	var body strings.Builder
	final := false
	for {
		f, err := fr.ReadFrame()
		if err != nil {
			t.Fatalf("HTTP/2: %v", err)
		}
		switch f := f.(type) {
		case *http2.SettingsFrame:
			if !f.IsAck() {
				fr.WriteSettingsAck()
			}
		case *http2.MetaHeadersFrame:
			if f.StreamID != 1 {
				t.Fatalf("HTTP/2: HEADERS on stream %d", f.StreamID)
			}
			var fields []string
			status := ""
			for _, h := range f.Fields {
				if h.Name == ":status" {
					status = h.Value
				} else if h.IsPseudo() {
					t.Fatalf("HTTP/2: pseudo-header %s in a response", h.Name)
				} else {
					if name := h.Name; slices.Contains(hopByHop, name) {
						t.Errorf("HTTP/2: connection-specific field %q (RFC 9113 §8.2.2)", name)
					}
					fields = append(fields, h.Name+": "+h.Value)
				}
			}
			switch {
			case final:
				out.trailers = endToEndFields(fields)
			case strings.HasPrefix(status, "1"):
				out.interim = append(out.interim, status+" "+strings.Join(endToEndFields(fields), ", "))
			default:
				final = true
				out.status, out.fields = status, endToEndFields(fields)
			}
			if f.StreamEnded() {
				out.body = normalizeEcho(body.String())
				return out
			}
		case *http2.DataFrame:
			body.Write(f.Data())
			if f.StreamEnded() {
				out.body = normalizeEcho(body.String())
				return out
			}
		case *http2.RSTStreamFrame:
			t.Fatalf("HTTP/2: RST_STREAM %v after %s", f.ErrCode, out)
		case *http2.GoAwayFrame:
			t.Fatalf("HTTP/2: GOAWAY %v %q", f.ErrCode, f.DebugData())
		}
	}
}

// dial opens r's TLS connection to addr, ALPN alpn, after a PROXY v2
// header when r has a proxied source.
func (r diffRequest) dial(t *testing.T, addr, alpn string) *tls.Conn {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	if r.proxied != "" {
		src, dst := netip.MustParseAddrPort(r.proxied), netip.MustParseAddrPort(addr)
		h := append([]byte("\r\n\r\n\x00\r\nQUIT\n"), 0x21, 0x11, 0, 12) // v2, PROXY, TCP over IPv4
		h = append(h, src.Addr().AsSlice()...)
		h = append(h, dst.Addr().AsSlice()...)
		h = binary.BigEndian.AppendUint16(h, src.Port())
		h = binary.BigEndian.AppendUint16(h, dst.Port())
		if _, err := nc.Write(h); err != nil {
			t.Fatal(err)
		}
	}
	c := tls.Client(nc, &tls.Config{InsecureSkipVerify: true, ServerName: r.sniName(), NextProtos: []string{alpn}})
	c.SetDeadline(time.Now().Add(15 * time.Second))
	if err := c.Handshake(); err != nil {
		nc.Close()
		t.Fatal(err)
	}
	if p := c.ConnectionState().NegotiatedProtocol; p != alpn {
		c.Close()
		t.Fatalf("ALPN %q, want %q", p, alpn)
	}
	return c
}

func (r diffRequest) authorityName() string {
	if r.authority == "" {
		return "a.test"
	}
	return r.authority
}

func (r diffRequest) sniName() string {
	if r.sni != "" {
		return r.sni
	}
	h, _, err := net.SplitHostPort(r.authorityName())
	if err != nil {
		return r.authorityName()
	}
	return h
}

// TestHTTP2Differential sends each logical request of one table over
// HTTP/1.1 and over HTTP/2, on raw connections (so that each protocol's
// spelling of the request is exactly the one chosen: cookie crumbs, te,
// bodies without a length, trailers, a host field without :authority),
// through every frontend feature of one HTTPS listener, and checks that
// the two answers agree: interim responses, status, end-to-end fields,
// body and trailers, and what the backend received (it echoes its request:
// request line, fields, framing, body and trailers). An HTTP/2 request
// reaches an HTTP/1.1 backend as its HTTP/1.1 twin does (RFC 9113 §8.2.3,
// §8.3.1; the conversion is worker/proxy/h2bridge.go).
func TestHTTP2Differential(t *testing.T) {
	dir := t.TempDir()
	ca := newTestCA(t)
	hosts := []string{"a.test", "b.test", "app.test", "shop.app.test", "old.test", "found.test", "moved.test", "closed.test",
		"secure.test", "down.test", "noback.test", "maint.test", "zzz.test", "nohsts.test", "force.test", "grpc.test"}
	cp, kp := ca.issuePEM(t, nil, nil, hosts...)
	certPath, keyPath := filepath.Join(dir, "c.pem"), filepath.Join(dir, "c.key")
	if err := os.WriteFile(certPath, cp, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyPath, kp, 0o600); err != nil {
		t.Fatal(err)
	}
	origin := startRawOrigin(t, diffEcho)
	// An HTTP/2 backend (http2 = true) that echoes its request, and
	// answers with a length and the trailers it announces, as a gRPC
	// server may.
	h2cEcho := startH2COrigin(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var lines []string
		for k, vs := range r.Header {
			for _, v := range vs {
				lines = append(lines, strings.ToLower(k)+": "+v)
			}
		}
		for k, vs := range r.Trailer {
			for _, v := range vs {
				lines = append(lines, "trailer "+strings.ToLower(k)+": "+v)
			}
		}
		sort.Strings(lines)
		e := fmt.Sprintf("%s %s host=%s length=%d body=%q\n%s\n", r.Method, r.RequestURI, r.Host, r.ContentLength, body, strings.Join(lines, "\n"))
		w.Header().Set("Trailer", "X-Status")
		w.Header().Set("Content-Length", strconv.Itoa(len(e)))
		io.WriteString(w, e)
		w.Header().Set("X-Status", "0")
	}), 0)
	digest := sha256.Sum256([]byte("s3cret"))
	port := sozutest.FreePort(t)
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	proxyAddr := fmt.Sprintf("127.0.0.1:%d", sozutest.FreePort(t)) // expect_proxy
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
strict_sni_binding = true
send_x_real_ip = true
back_timeout = 1
hsts = { enabled = true, max_age = 600 }
answers = { "404" = """HTTP/1.1 404 Not Found
X-Custom: yes

nothing for %%REQUEST_ID here""" }

[[listeners]]
protocol = "https"
address = %[9]q
certificate = %[3]q
key = %[4]q
expect_proxy = true
send_x_real_ip = true

[clusters.app]
protocol = "http"
backends = [ { address = %[5]q } ]

[[clusters.app.frontends]]
address = %[9]q
hostname = "a.test"

[[clusters.app.frontends]]
address = %[2]q
hostname = "a.test"

[[clusters.app.frontends]]
address = %[2]q
hostname = "b.test"

[[clusters.app.frontends]]
address = %[2]q
hostname = "nohsts.test"
hsts = { enabled = false }

[[clusters.app.frontends]]
address = %[2]q
hostname = "force.test"
hsts = { enabled = true, max_age = 60, force_replace_backend = true }

[[clusters.app.frontends]]
address = %[2]q
hostname = "*.app.test"
path = "^/api/v([0-9]+)/(.*)$"
path_type = "REGEX"
rewrite_host = "$HOST[1].internal"
rewrite_path = "/v$PATH[1]/$PATH[2]"
rewrite_port = 8080
headers = [
  { position = "request", key = "X-Tenant", value = "t1" },
  { position = "request", key = "Cookie", value = "" },
  { position = "response", key = "Server", value = "" },
  { position = "response", key = "X-Frame-Options", value = "DENY" },
  { position = "both", key = "X-Both", value = "yes" },
]

[[clusters.app.frontends]]
address = %[2]q
hostname = "old.test"
redirect = "permanent"
redirect_scheme = "use-http"
rewrite_host = "new.test"
rewrite_port = 8080

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

see %%REDIRECT_LOCATION"""

[[clusters.app.frontends]]
address = %[2]q
hostname = "closed.test"
redirect = "unauthorized"

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

[clusters.grpc]
protocol = "http"
http2 = true
backends = [ { address = %[8]q } ]
frontends = [ { address = %[2]q, hostname = "grpc.test" } ]

[clusters.maint]
protocol = "http"
answers = { "503" = """HTTP/1.1 503 Service Unavailable
Retry-After: 120
Connection: close

down for maintenance""" }
frontends = [ { address = %[2]q, hostname = "maint.test" } ]
`, sock, addr, certPath, keyPath, origin.addr, hex.EncodeToString(digest[:]), fmt.Sprintf("127.0.0.1:%d", sozutest.FreePort(t)), h2cEcho.addr, proxyAddr)
	startProxy(t, dir, sock, cfg, addr, proxyAddr)
	sozutest.WaitFor(t, 20*time.Second, "the HTTPS listener serves HTTP/2", func() bool {
		c, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true, ServerName: "a.test", NextProtos: []string{"h2"}})
		if err != nil {
			return false
		}
		c.Close()
		return true
	})

	// nghttp -d sends a content-length with the body, and --trailer its
	// trailers after it: both reach an HTTP/1.1 backend (chunked) and an
	// HTTP/2 one. nghttp sends no SNI to an IP address: the host is the
	// :authority alone.
	t.Run("nghttp upload with trailers", func(t *testing.T) {
		up := filepath.Join(dir, "up.txt")
		if err := os.WriteFile(up, []byte("hello nghttp"), 0o600); err != nil {
			t.Fatal(err)
		}
		for _, host := range []string{"a.test", "grpc.test"} {
			cmd := exec.Command("/usr/bin/nghttp", "-t", "10", "-d", up, "--trailer", "x-sum: 9", "-H", ":authority: "+host,
				fmt.Sprintf("https://127.0.0.1:%d/ng", port))
			var out bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, &out
			if err := sozutest.RunWithTimeout(cmd, 20*time.Second); err != nil {
				t.Fatalf("nghttp %s: %v\n%s", host, err, out.String())
			}
			got := strings.ToLower(out.String())
			for _, w := range []string{"hello nghttp", "trailer x-sum: 9"} {
				if !strings.Contains(got, w) {
					t.Errorf("%s: the backend did not receive %q:\n%s", host, w, out.String())
				}
			}
		}
	})

	big := strings.Repeat("z", 20000)
	for _, tt := range []struct {
		name   string
		req    diffRequest
		status string
		want   []string // in the HTTP/2 reply (interim, fields, body or trailers)
		not    []string // nowhere in it
	}{
		{name: "GET with query and forwarding fields from the client", status: "200",
			req: diffRequest{method: "GET", path: "/x?y=1&z", fields: []string{"User-Agent: diff/1", "Accept: */*",
				"X-Forwarded-For: 1.2.3.4", "X-Real-IP: 9.9.9.9", "Forwarded: for=6.6.6.6", "X-Forwarded-Host: evil"}},
			want: []string{"GET /x?y=1&z HTTP/1.1", "host: a.test", "x-forwarded-for: 1.2.3.4, 127.0.0.1", "x-real-ip: 127.0.0.1",
				"x-forwarded-proto: https", fmt.Sprintf("x-forwarded-port: %d", port), "forwarded: for=6.6.6.6", "sozu-id: <ID>",
				"strict-transport-security: max-age=600", "x-multi: a", "x-multi: b"},
			not: []string{"9.9.9.9", "evil"}},
		{name: "PROXY protocol source", status: "200",
			req:  diffRequest{method: "GET", path: "/pp", proxied: "203.0.113.7:4444", fields: []string{"X-Forwarded-For: 1.2.3.4"}},
			want: []string{"x-forwarded-for: 1.2.3.4, 203.0.113.7", "x-real-ip: 203.0.113.7", "for=203.0.113.7"}},
		{name: "authority with a port", status: "200", req: diffRequest{method: "GET", path: "/p", authority: fmt.Sprintf("a.test:%d", port)},
			want: []string{fmt.Sprintf("host: a.test:%d", port)}},
		{name: "host field without :authority", status: "200", req: diffRequest{method: "GET", path: "/h", hostOnly: true},
			want: []string{"host: a.test"}},
		{name: "cookie crumbs joined", status: "200", req: diffRequest{method: "GET", path: "/c", cookies: []string{"a=1", "b=2", "c=3"}},
			want: []string{"cookie: a=1; b=2; c=3"}},
		{name: "te trailers", status: "200", req: diffRequest{method: "GET", path: "/te", te: true},
			want: []string{"te: trailers", "connection: te"}},
		{name: "body with a length", status: "200", req: diffRequest{method: "POST", path: "/up", body: "hello world",
			fields: []string{"Content-Type: text/plain"}},
			want: []string{"content-length: 11", `body: "hello world"`}},
		{name: "body without a length, with trailers", status: "200",
			req: diffRequest{method: "PUT", path: "/up", body: "hello", noLength: true,
				trailers: []string{"X-Sum: 5", "X-Forwarded-For: 6.6.6.6", "X_Real_IP: 6.6.6.6"}},
			want: []string{"transfer-encoding: chunked", `body: "hello"`, "trailer x-sum: 5"}, not: []string{"6.6.6.6"}},
		{name: "body with a length, with trailers", status: "200",
			req: diffRequest{method: "POST", path: "/up", body: "hello", fields: []string{"Trailer: X-Sum"},
				trailers: []string{"X-Sum: 5"}},
			want: []string{"transfer-encoding: chunked", "framing: length -1", `body: "hello"`, "trailer x-sum: 5"}},
		{name: "empty body without a length", status: "200", req: diffRequest{method: "POST", path: "/empty", noLength: true},
			want: []string{"transfer-encoding: chunked", `body: ""`}},
		{name: "HEAD", status: "200", req: diffRequest{method: "HEAD", path: "/head"}, want: []string{"x-multi: a"}},
		{name: "OPTIONS *", status: "200", req: diffRequest{method: "OPTIONS", path: "*"}, want: []string{"OPTIONS * HTTP/1.1"}},
		{name: "OPTIONS with Max-Forwards 0", status: "200", req: diffRequest{method: "OPTIONS", path: "/mf", fields: []string{"Max-Forwards: 0"}},
			not: []string{"x-multi"}},
		{name: "CONNECT", status: "501", req: diffRequest{method: "CONNECT", path: "a.test:443", authority: "a.test:443"}},
		{name: "expect 100-continue", status: "200",
			req:  diffRequest{method: "POST", path: "/continue", body: "payload", fields: []string{"Expect: 100-continue"}},
			want: []string{"100 ", "expect: 100-continue", `body: "payload"`}},
		{name: "early hints", status: "200", req: diffRequest{method: "GET", path: "/early"}, want: []string{"103 link: </s.css>; rel=preload"}},
		{name: "response trailers", status: "200", req: diffRequest{method: "GET", path: "/trailers", te: true},
			want: []string{"x-sum: 42"}, not: []string{"keep-alive"}},
		{name: "response connection options", status: "200", req: diffRequest{method: "GET", path: "/hop"},
			want: []string{"x-keep: 2"}, not: []string{"x-hop"}},
		{name: "rewrites and header edits", status: "200",
			req: diffRequest{method: "GET", path: "/api/v2/users/7?full=1", authority: "shop.app.test",
				cookies: []string{"s=1", "t=2"}, fields: []string{"X-Both: client"}},
			want: []string{"GET /v2/users/7?full=1 HTTP/1.1", "host: shop.internal:8080", "x-forwarded-host: shop.app.test",
				"x-tenant: t1", "x-both: client", "x-both: yes", "x-frame-options: DENY"},
			not: []string{"cookie", "server: echo"}},
		{name: "header edits on a chunked response with trailers", status: "200",
			req:  diffRequest{method: "GET", path: "/api/v1/trailers", authority: "shop.app.test", te: true},
			want: []string{"x-frame-options: DENY", "x-both: yes", "x-sum: 42"}},
		{name: "header edits with early hints", status: "200", req: diffRequest{method: "GET", path: "/api/v1/early", authority: "shop.app.test"},
			want: []string{"103 link: </s.css>; rel=preload", "x-frame-options: DENY"}},
		{name: "header edits HEAD", status: "200", req: diffRequest{method: "HEAD", path: "/api/v1/x", authority: "shop.app.test"},
			want: []string{"x-frame-options: DENY"}},
		{name: "header edits with a body without a length", status: "200",
			req: diffRequest{method: "POST", path: "/api/v1/continue", authority: "shop.app.test", body: "abc", noLength: true,
				fields: []string{"Expect: 100-continue"}, trailers: []string{"X-Sum: 3"}},
			want: []string{"100 ", `body: "abc"`, "trailer x-sum: 3", "x-frame-options: DENY"}},
		{name: "HTTP/2 backend: a length and trailers", status: "200", req: diffRequest{method: "GET", path: "/g", authority: "grpc.test", te: true},
			want: []string{"GET /g host=grpc.test", "te: trailers", "x-status: 0"}},
		{name: "HTTP/2 backend: request trailers", status: "200",
			req: diffRequest{method: "POST", path: "/g", authority: "grpc.test", body: "hello", fields: []string{"Trailer: X-Sum"},
				trailers: []string{"X-Sum: 5"}},
			want: []string{`body="hello"`, "trailer x-sum: 5", "x-status: 0"}},
		{name: "redirect 301 with rewrites", status: "301", req: diffRequest{method: "GET", path: "/a/b?c=d", authority: "old.test"},
			want: []string{"location: http://new.test:8080/a/b?c=d", "strict-transport-security: max-age=600"}},
		{name: "redirect 302 with a captured path", status: "302", req: diffRequest{method: "GET", path: "/u/bob", authority: "found.test"},
			want: []string{"location: https://found.test/users/bob"}},
		{name: "redirect 308 template", status: "308", req: diffRequest{method: "GET", path: "/x?y=1", authority: "moved.test"},
			want: []string{"x-moved: yes", "see https://moved.test/x?y=1"}},
		{name: "redirect with a body", status: "301", req: diffRequest{method: "POST", path: "/a", authority: "old.test", body: "data"}},
		{name: "unauthorized frontend", status: "401", req: diffRequest{method: "GET", path: "/", authority: "closed.test"}},
		{name: "auth required", status: "401", req: diffRequest{method: "GET", path: "/", authority: "secure.test"},
			want: []string{`www-authenticate: Basic realm="secure"`}},
		{name: "auth wrong", status: "401", req: diffRequest{method: "GET", path: "/", authority: "secure.test",
			fields: []string{"Authorization: Basic Ym9iOndyb25n"}}, want: []string{`www-authenticate: Basic realm="secure"`}},
		{name: "auth given", status: "200", req: diffRequest{method: "GET", path: "/in", authority: "secure.test",
			fields: []string{"Authorization: Basic Ym9iOnMzY3JldA=="}}, want: []string{"GET /in HTTP/1.1"}, not: []string{"authorization"}},
		{name: "frontend without HSTS", status: "200", req: diffRequest{method: "GET", path: "/", authority: "nohsts.test"},
			not: []string{"strict-transport-security"}},
		{name: "HSTS kept from the backend", status: "200", req: diffRequest{method: "GET", path: "/sts"},
			want: []string{"strict-transport-security: max-age=1"}},
		{name: "HSTS replacing the backend's", status: "200", req: diffRequest{method: "GET", path: "/sts", authority: "force.test"},
			want: []string{"strict-transport-security: max-age=60"}, not: []string{"max-age=1\n"}},
		{name: "strict SNI", status: "421", req: diffRequest{method: "GET", path: "/", authority: "b.test", sni: "a.test"}},
		{name: "unknown host, listener template", status: "404", req: diffRequest{method: "GET", path: "/", authority: "zzz.test"},
			want: []string{"x-custom: yes", "nothing for <ID> here"}},
		{name: "no backend", status: "503", req: diffRequest{method: "GET", path: "/", authority: "noback.test"}},
		{name: "backend down", status: "503", req: diffRequest{method: "GET", path: "/", authority: "down.test"}},
		{name: "cluster template", status: "503", req: diffRequest{method: "GET", path: "/", authority: "maint.test"},
			want: []string{"retry-after: 120", "down for maintenance"}},
		{name: "backend timeout", status: "504", req: diffRequest{method: "GET", path: "/slow"}},
		{name: "head too large", status: "431", req: diffRequest{method: "GET", path: "/big", fields: []string{"X-Big: " + big}}},
		{name: "dot segments", status: "400", req: diffRequest{method: "GET", path: "/a/../b"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			to := addr
			if tt.req.proxied != "" {
				to = proxyAddr
			}
			h1 := diffH1(t, to, tt.req)
			h2 := diffH2(t, to, tt.req)
			if h1.status != tt.status || h2.status != tt.status {
				t.Fatalf("status %s over HTTP/1.1, %s over HTTP/2, want %s\nHTTP/2 %s", h1.status, h2.status, tt.status, h2)
			}
			if !slices.Equal(h1.interim, h2.interim) {
				t.Errorf("interim responses differ:\nHTTP/1.1 %q\nHTTP/2   %q", h1.interim, h2.interim)
			}
			if !slices.Equal(h1.fields, h2.fields) {
				t.Errorf("fields differ:\nHTTP/1.1 %q\nHTTP/2   %q", h1.fields, h2.fields)
			}
			if h1.body != h2.body {
				t.Errorf("bodies differ:\nHTTP/1.1 %q\nHTTP/2   %q", h1.body, h2.body)
			}
			if !slices.Equal(h1.trailers, h2.trailers) {
				t.Errorf("trailers differ:\nHTTP/1.1 %q\nHTTP/2   %q", h1.trailers, h2.trailers)
			}
			all := strings.ToLower(strings.Join(h2.interim, "\n") + "\n" + strings.Join(h2.fields, "\n") + "\n" +
				h2.body + "\n" + strings.Join(h2.trailers, "\n") + "\n")
			for _, w := range tt.want {
				if !strings.Contains(all, strings.ToLower(w)) {
					t.Errorf("no %q over HTTP/2:\n%s", w, h2)
				}
			}
			for _, n := range tt.not {
				if strings.Contains(all, strings.ToLower(n)) {
					t.Errorf("%q over HTTP/2:\n%s", n, h2)
				}
			}
		})
	}
}
