package proxy

import (
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/http2"

	"github.com/sozu-go/sozu/worker/backends"
	"github.com/sozu-go/sozu/worker/h2"
	"github.com/sozu-go/sozu/worker/http1"
	"github.com/sozu-go/sozu/worker/ipcap"
	"github.com/sozu-go/sozu/worker/router"
)

// h2Client is an HTTP/2-only client (ALPN h2) with SNI sni.
func h2Client(sni string) *http.Client {
	return &http.Client{Timeout: 10 * time.Second, Transport: &http2.Transport{
		TLSClientConfig: &tls.Config{ServerName: sni, InsecureSkipVerify: true, NextProtos: []string{"h2"}},
	}}
}

// h2Backend echoes what the bridge sent: method, target, Host, Cookie,
// Transfer-Encoding, Content-Length, forwarding fields and the body's
// length and SHA-256; /big answers 1 MiB, chunked, with a trailer.
func h2Backend(t *testing.T) *httpBackend {
	return newHTTPBackend(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/big" {
			w.Header().Set("Trailer", "X-Sum")
			w.Header().Set("Connection", "x-hop")
			w.Header().Set("X-Hop", "dropped")
			h := sha256.New()
			chunk := bytes.Repeat([]byte("0123456789abcdef"), 4096)
			for range 16 {
				w.Write(chunk)
				h.Write(chunk)
				w.(http.Flusher).Flush()
			}
			w.Header().Set("X-Sum", hex.EncodeToString(h.Sum(nil)))
			return
		}
		if r.URL.Path == "/205" { // a 205 with content, as HTTP/1.1 frames it
			w.Header().Set("Content-Length", "5")
			w.WriteHeader(205)
			io.WriteString(w, "hello")
			return
		}
		body, _ := io.ReadAll(r.Body)
		sum := sha256.Sum256(body)
		fmt.Fprintf(w, "%s %s host=%s cookie=%s te=%v cl=%d xfp=%s len=%d sum=%x trailer=%v",
			r.Method, r.RequestURI, r.Host, r.Header.Get("Cookie"), r.TransferEncoding, r.ContentLength,
			r.Header.Get("X-Forwarded-Proto"), len(body), sum[:4], r.Trailer)
	})
}

func h2Fixture(t *testing.T, rules []router.Rule, setup func(*Listener)) (*fixture, *httpBackend) {
	b := h2Backend(t)
	conf := testTLSConfig(t, "a.test", "b.test")
	conf.NextProtos = []string{"h2", "http/1.1"}
	f := newFixture(t, rules, map[string][]string{"c": {b.addr}}, func(l *Listener) {
		l.TLS, l.StrictSNI = conf, true
		if setup != nil {
			setup(l)
		}
	})
	return f, b
}

// TestH2Bridge sends HTTP/2 requests through an HTTPS listener to an
// HTTP/1.1 backend and checks the exact conversion both ways.
func TestH2Bridge(t *testing.T) {
	f, _ := h2Fixture(t, anyHost("c"), nil)
	c := h2Client("a.test")
	base := "https://" + f.addr
	body := bytes.Repeat([]byte("x"), 300<<10) // beyond the stream window
	bodySum := sha256.Sum256(body)
	for _, tt := range []struct {
		name    string
		req     func() *http.Request
		status  int
		want    []string
		notWant []string
	}{
		{"get", func() *http.Request {
			r, _ := http.NewRequest("GET", base+"/p?q=1", nil)
			r.Host = "a.test"
			return r
		}, 200, []string{"GET /p?q=1 ", "host=a.test ", "xfp=https", "len=0"}, []string{"te=[chunked]"}},
		{"cookie crumbs joined", func() *http.Request {
			r, _ := http.NewRequest("GET", base+"/", nil)
			r.Host = "a.test"
			r.Header.Add("Cookie", "a=1")
			r.Header.Add("Cookie", "b=2")
			return r
		}, 200, []string{"cookie=a=1; b=2 "}, nil},
		{"post with content-length", func() *http.Request {
			r, _ := http.NewRequest("POST", base+"/up", bytes.NewReader(body))
			r.Host = "a.test"
			return r
		}, 200, []string{"POST /up ", fmt.Sprintf("cl=%d ", len(body)), fmt.Sprintf("len=%d sum=%x", len(body), bodySum[:4])}, nil},
		{"post without content-length is chunked", func() *http.Request {
			r, _ := http.NewRequest("POST", base+"/up", io.MultiReader(bytes.NewReader(body)))
			r.Host = "a.test"
			r.ContentLength = -1
			return r
		}, 200, []string{"te=[chunked]", fmt.Sprintf("len=%d sum=%x", len(body), bodySum[:4])}, nil},
		{"post with content-length and trailers is chunked", func() *http.Request {
			// As nghttp -d --trailer sends it: HTTP/1.1 carries trailers
			// after a chunked body only.
			r, _ := http.NewRequest("POST", base+"/up", bytes.NewReader(body))
			r.Host = "a.test"
			r.Trailer = http.Header{"X-Sum": {"5"}}
			return r
		}, 200, []string{"te=[chunked] cl=-1 ", fmt.Sprintf("len=%d sum=%x", len(body), bodySum[:4]), "trailer=map[X-Sum:[5]]"}, nil},
		{"strict SNI", func() *http.Request {
			r, _ := http.NewRequest("GET", base+"/", nil)
			r.Host = "b.test"
			return r
		}, 421, nil, nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			resp, err := c.Do(tt.req())
			if err != nil {
				t.Fatal(err)
			}
			got, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.ProtoMajor != 2 || resp.StatusCode != tt.status {
				t.Fatalf("%s %d: %q", resp.Proto, resp.StatusCode, got)
			}
			for _, w := range tt.want {
				if !strings.Contains(string(got), w) {
					t.Errorf("body %q lacks %q", got, w)
				}
			}
			for _, w := range tt.notWant {
				if strings.Contains(string(got), w) {
					t.Errorf("body %q has %q", got, w)
				}
			}
			if resp.Header.Get(DefaultIDHeader) == "" {
				t.Errorf("no %s in %v", DefaultIDHeader, resp.Header)
			}
		})
	}

	t.Run("streamed chunked response with trailer", func(t *testing.T) {
		r, _ := http.NewRequest("GET", base+"/big", nil)
		r.Host = "a.test"
		resp, err := c.Do(r)
		if err != nil {
			t.Fatal(err)
		}
		h := sha256.New()
		n, err := io.Copy(h, resp.Body)
		resp.Body.Close()
		if err != nil || n != 1<<20 {
			t.Fatalf("read %d bytes: %v", n, err)
		}
		if got := resp.Trailer.Get("X-Sum"); got != hex.EncodeToString(h.Sum(nil)) {
			t.Fatalf("trailer X-Sum %q, body sum %x", got, h.Sum(nil))
		}
		if resp.Header.Get("X-Hop") != "" {
			t.Fatalf("a connection option reached the client: %v", resp.Header)
		}
	})

	// A 205 has no content (RFC 9110 §15.3.6): what the backend framed as
	// its body is dropped, its content-length becomes 0 (any other would
	// make the response malformed, RFC 9113 §8.1.1), and the backend
	// connection stays in step for the next request.
	t.Run("205 without content", func(t *testing.T) {
		for i := range 2 {
			r, _ := http.NewRequest("GET", base+"/205", nil)
			r.Host = "a.test"
			resp, err := c.Do(r)
			if err != nil {
				t.Fatal(err)
			}
			got, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil || resp.StatusCode != 205 || len(got) != 0 || resp.ContentLength != 0 ||
				resp.Header.Get("Content-Length") != "0" {
				t.Fatalf("request %d: %d, content-length %q (%d), body %q, %v", i, resp.StatusCode,
					resp.Header.Get("Content-Length"), resp.ContentLength, got, err)
			}
			r, _ = http.NewRequest("GET", base+"/after205", nil)
			r.Host = "a.test"
			resp, err = c.Do(r)
			if err != nil {
				t.Fatal(err)
			}
			got, _ = io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 || !strings.HasPrefix(string(got), "GET /after205 ") {
				t.Fatalf("after the 205: %d %q", resp.StatusCode, got)
			}
		}
	})

	t.Run("many concurrent streams", func(t *testing.T) {
		errs := make(chan error, 50)
		for i := range 50 {
			go func() {
				r, _ := http.NewRequest("GET", fmt.Sprintf("%s/s%d", base, i), nil)
				r.Host = "a.test"
				resp, err := c.Do(r)
				if err != nil {
					errs <- err
					return
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if !strings.Contains(string(b), fmt.Sprintf("GET /s%d ", i)) {
					err = fmt.Errorf("stream %d: %q", i, b)
				}
				errs <- err
			}()
		}
		for range 50 {
			if err := <-errs; err != nil {
				t.Fatal(err)
			}
		}
	})
}

// TestH2Answers checks that the proxy's own answers (no route: 404) and
// header edits of HTTP/1.1 reach an HTTP/2 client.
func TestH2Answers(t *testing.T) {
	rules := []router.Rule{{Hostname: "a.test", Kind: router.Prefix, Path: "/ok", Route: router.Route{ClusterID: "c"}}}
	f, _ := h2Fixture(t, rules, func(l *Listener) { l.HSTS = NewHSTS(true, nil, false, false, false) })
	c := h2Client("a.test")
	r, _ := http.NewRequest("GET", "https://"+f.addr+"/nothing", nil)
	r.Host = "a.test"
	resp, err := c.Do(r)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.ProtoMajor != 2 || resp.StatusCode != 404 {
		t.Fatalf("%s %d, want HTTP/2.0 404", resp.Proto, resp.StatusCode)
	}
	if resp.Header.Get("Strict-Transport-Security") == "" {
		t.Fatalf("no HSTS on the answer: %v", resp.Header)
	}
}

// TestH2DisableHTTP11: with disable_http11 a client that does not select
// h2 is refused, an h2 client is served.
func TestH2DisableHTTP11(t *testing.T) {
	f, _ := h2Fixture(t, anyHost("c"), func(l *Listener) {
		l.DisableHTTP11 = true
		l.TLS.NextProtos = []string{"h2"}
	})
	// No ALPN at all: the handshake succeeds, then the proxy closes.
	got := tlsExchange(t, f.addr, "", "a.test", "GET / HTTP/1.1\r\nHost: a.test\r\n"+closeReq)
	if got != "" {
		t.Fatalf("HTTP/1.1 client served: %q", got)
	}
	// ALPN http/1.1 only: Go's TLS lets the handshake succeed without a
	// protocol (its http/1.1 fallback); the proxy closes.
	nc, err := net.Dial("tcp", f.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	nc.SetDeadline(time.Now().Add(5 * time.Second))
	tc := tls.Client(nc, &tls.Config{ServerName: "a.test", InsecureSkipVerify: true, NextProtos: []string{"http/1.1"}})
	if err := tc.Handshake(); err == nil {
		io.WriteString(tc, "GET / HTTP/1.1\r\nHost: a.test\r\n"+closeReq)
		if b, _ := io.ReadAll(tc); len(b) != 0 {
			t.Fatalf("client offering only http/1.1 served: %q", b)
		}
	}
	r, _ := http.NewRequest("GET", "https://"+f.addr+"/", nil)
	r.Host = "a.test"
	resp, err := h2Client("a.test").Do(r)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("h2 client: %d", resp.StatusCode)
	}
}

// TestH2Stop: a soft stop lets the streams in flight finish (GOAWAY, then
// the connection closes) and Shutdown returns; a hard stop (Close) returns
// while streams wait on a backend, leaving no session behind.
func TestH2Stop(t *testing.T) {
	for _, hard := range []bool{false, true} {
		t.Run(map[bool]string{false: "soft", true: "hard"}[hard], func(t *testing.T) {
			release := make(chan struct{})
			arrived := make(chan struct{}, 10)
			b := newHTTPBackend(t, func(w http.ResponseWriter, r *http.Request) {
				arrived <- struct{}{}
				select {
				case <-release:
				case <-r.Context().Done():
				}
				io.WriteString(w, "done")
			})
			defer close(release)
			conf := testTLSConfig(t, "a.test")
			conf.NextProtos = []string{"h2"}
			f := newFixture(t, anyHost("c"), map[string][]string{"c": {b.addr}}, func(l *Listener) { l.TLS = conf })
			c := h2Client("a.test")
			const n = 5
			results := make(chan string, n)
			for i := range n {
				go func() {
					r, _ := http.NewRequest("GET", fmt.Sprintf("https://%s/%d", f.addr, i), nil)
					r.Host = "a.test"
					resp, err := c.Do(r)
					if err != nil {
						results <- err.Error()
						return
					}
					body, _ := io.ReadAll(resp.Body)
					resp.Body.Close()
					results <- string(body)
				}()
			}
			for range n {
				<-arrived
			}
			stopped := make(chan error, 1)
			if hard {
				go func() { f.srv.Close(); stopped <- nil }()
			} else {
				go func() { stopped <- f.srv.Shutdown(context.Background()) }()
				// The streams in flight still finish.
				waitFor(t, "draining", func() bool { return f.srv.draining.Load() })
				release <- struct{}{}
				for range n - 1 {
					release <- struct{}{}
				}
			}
			select {
			case err := <-stopped:
				if err != nil {
					t.Fatal(err)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("the server did not stop")
			}
			for range n {
				got := <-results
				if !hard && got != "done" {
					t.Errorf("soft stop: a stream in flight got %q", got)
				}
			}
			if s := f.srv.Sessions(); s != 0 {
				t.Fatalf("%d sessions left", s)
			}
		})
	}
}

// FuzzH2Head: whatever an HTTP/2 request holds, the HTTP/1.1 head the
// bridge writes for it is one head, ending where the bridge ends it, and
// carrying the request's method and target (no field can smuggle a line
// or a second request).
func FuzzH2Head(f *testing.F) {
	f.Add("GET", "/a?b", "a.test", "cookie", "x=1", "cookie", "y=2", false)
	f.Add("POST", "/", "a.test:8443", "content-type", "text/plain", "x", "", true)
	f.Add("CONNECT", "", "a.test:443", "a", "b", "c", "d", false)
	f.Add("GET", "/ HTTP/1.1\r\nX: y", "a", "x", "a", "host", "b", false)
	f.Add("GET", "/", "a", "x", "a\r\n\r\nGET /evil HTTP/1.1", "y", "z", false)
	f.Fuzz(func(t *testing.T, method, path, authority, n1, v1, n2, v2 string, chunked bool) {
		fields := []h2.HeaderField{{Name: []byte(n1), Value: []byte(v1)}, {Name: []byte(n2), Value: []byte(v2)}}
		head, ok := appendH1Head(nil, []byte(method), []byte(path), []byte(authority), fields, chunked)
		if !ok {
			return
		}
		// A stream's session parses its head as it is, without a scan for
		// its end (runStream): it must be all of it.
		var req http1.Request
		if err := http1.ParseRequest(&req, head, nil); err != nil {
			return // refused by the HTTP/1.1 side: answered 400/414/431, never forwarded
		}
		if req.HeadLen != len(head) {
			t.Fatalf("head of %d bytes parsed as %d: %q", len(head), req.HeadLen, head)
		}
		target := path
		if method == "CONNECT" {
			target = authority
		}
		if string(req.Method) != method || string(req.Target) != target {
			t.Fatalf("method %q target %q became %q %q", method, target, req.Method, req.Target)
		}
		if req.Body == http1.BodyChunked != chunked && !strings.EqualFold(n1, "transfer-encoding") && !strings.EqualFold(n2, "transfer-encoding") {
			t.Fatalf("chunked %v, parsed body %v: %q", chunked, req.Body, head)
		}
	})
}

// TestH2MalformedNeverForwarded: requests RFC 9113 §8 calls malformed are
// reset (PROTOCOL_ERROR) and never reach the backend whole. A head is
// forwarded as soon as it is valid (bodies stream), so a body that turns
// out not to match its content-length reaches the backend cut short: the
// backend sees an incomplete request, never a complete one.
func TestH2MalformedNeverForwarded(t *testing.T) {
	seen := make(chan string, 100)
	b := newHTTPBackend(t, func(w http.ResponseWriter, r *http.Request) {
		_, err := io.Copy(io.Discard, r.Body)
		seen <- fmt.Sprintf("%s complete=%v", r.URL.Path, err == nil)
	})
	conf := testTLSConfig(t, "a.test")
	conf.NextProtos = []string{"h2"}
	f := newFixture(t, anyHost("c"), map[string][]string{"c": {b.addr}}, func(l *Listener) { l.TLS = conf })
	for _, tt := range []struct {
		name   string
		fields []string
		data   string // sent with END_STREAM after the head; "" sends none
		scheme string // "": https
		path   string // "": /bad
	}{
		{"absolute-form :path under another :scheme", nil, "", "foo", "http://evil.example/bad"},
		{"authority-form :path", nil, "", "https", "evil.example:80"},
		{"transfer-encoding", []string{"transfer-encoding", "chunked"}, "0\r\n\r\n", "", ""},
		{"connection", []string{"connection", "keep-alive"}, "", "", ""},
		{"te other than trailers", []string{"te", "gzip"}, "", "", ""},
		{"upper-case name", []string{"X-Up", "1"}, "", "", ""},
		{"content-length larger than DATA", []string{"content-length", "10"}, "abc", "", ""},
		{"content-length smaller than DATA", []string{"content-length", "1"}, "abc", "", ""},
		{"host differs from :authority", []string{"host", "b.test"}, "", "", ""},
		{"value with CR LF", []string{"x-a", "1\r\nx-b: 2"}, "", "", ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			h := dialH2(t, f)
			fr := h.fr
			fields := append([]string{":method", "POST", ":scheme", cmp.Or(tt.scheme, "https")}, tt.fields...)
			fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: h.block(cmp.Or(tt.path, "/bad"), fields...), EndHeaders: true, EndStream: tt.data == ""})
			if tt.data != "" {
				fr.WriteData(1, true, []byte(tt.data))
			}
			reset := false
			for {
				fr2, err := fr.ReadFrame()
				if err != nil {
					t.Fatalf("connection failed: %v", err)
				}
				switch fr2 := fr2.(type) {
				case *http2.SettingsFrame:
					if !fr2.IsAck() {
						fr.WriteSettingsAck()
					}
				case *http2.GoAwayFrame:
					t.Fatalf("GOAWAY %v, want a stream error", fr2.ErrCode)
				case *http2.HeadersFrame:
					if fr2.StreamID == 1 {
						t.Fatal("the malformed request got a response")
					}
				case *http2.RSTStreamFrame:
					if fr2.StreamID != 1 || fr2.ErrCode != http2.ErrCodeProtocol {
						t.Fatalf("RST_STREAM %d %v, want 1 PROTOCOL_ERROR", fr2.StreamID, fr2.ErrCode)
					}
					reset = true
					// A well-formed request on the same connection is served.
					h.get(3, "/ok")
				}
				if h, ok := fr2.(*http2.HeadersFrame); ok && h.StreamID == 3 && reset {
					break
				}
			}
			for {
				select {
				case s := <-seen:
					if s == "/bad complete=true" {
						t.Fatalf("the backend got the malformed request whole")
					}
					if s == "/ok complete=true" {
						return
					}
				case <-time.After(5 * time.Second):
					t.Fatal("the well-formed request did not reach the backend")
				}
			}
		})
	}
}

// TestH2SlowReader: a client that never returns flow-control credit stalls
// its stream's response, and with it the backend (nothing is buffered
// beyond the window, h2's output buffer, the pipe and socket buffers);
// the stalled stream is reaped after h2_stream_idle_timeout_seconds.
func TestH2SlowReader(t *testing.T) {
	var written atomic.Int64
	b := newHTTPBackend(t, func(w http.ResponseWriter, r *http.Request) {
		chunk := make([]byte, 64<<10)
		for range 1024 { // 64 MiB
			if _, err := w.Write(chunk); err != nil {
				return
			}
			written.Add(int64(len(chunk)))
		}
	})
	conf := testTLSConfig(t, "a.test")
	conf.NextProtos = []string{"h2"}
	f := newFixture(t, anyHost("c"), map[string][]string{"c": {b.addr}}, func(l *Listener) {
		l.TLS = conf
		l.H2.StreamIdleTimeout = 300 * time.Millisecond
	})
	fr := dialH2Raw(t, f.addr, "a.test", 10*time.Second, 1024)
	writeH2Get(fr, 1, "a.test", "/big")
	got := 0
	for {
		fr2, err := fr.ReadFrame()
		if err != nil {
			t.Fatalf("no reset of the stalled stream: %v", err)
		}
		switch fr2 := fr2.(type) {
		case *http2.SettingsFrame:
			if !fr2.IsAck() {
				fr.WriteSettingsAck()
			}
		case *http2.DataFrame:
			got += len(fr2.Data())
		case *http2.RSTStreamFrame:
			if fr2.ErrCode != http2.ErrCodeCancel {
				t.Fatalf("RST_STREAM %v, want CANCEL", fr2.ErrCode)
			}
			if got > 1024 {
				t.Fatalf("%d DATA bytes past a 1024-byte window", got)
			}
			if n := written.Load(); n > 16<<20 {
				t.Fatalf("the backend wrote %d bytes to a stalled client", n)
			}
			t.Logf("stalled: client got %d bytes, backend wrote %d", got, written.Load())
			return
		}
	}
}

// TestH2PerIPCap: the per-IP cap counts an HTTP/2 connection once per
// cluster, like an HTTP/1.1 connection: its concurrent streams share the
// slot; another connection from the same IP is refused (429) while the
// first holds it.
func TestH2PerIPCap(t *testing.T) {
	release := make(chan struct{})
	arrived := make(chan struct{}, 10)
	b := newHTTPBackend(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/wait" {
			arrived <- struct{}{}
			<-release
		}
		io.WriteString(w, "ok")
	})
	reg := backends.NewRegistry(backends.Options{})
	defer reg.Close()
	sets := reg.Update([]backends.Spec{{ClusterID: "c", ID: "c-a", Addr: netip.MustParseAddrPort(b.addr), Weight: 100}}, nil)
	tab, err := router.Build(anyHost("c"))
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	conf := testTLSConfig(t, "a.test")
	conf.NextProtos = []string{"h2"}
	cfg := &Listener{Addr: netip.MustParseAddrPort(ln.Addr().String()), Routes: tab, TLS: conf,
		Clusters: map[string]*Cluster{"c": {ID: "c", Backends: sets["c"]}}}
	srv := NewServer(ln, cfg, Options{IPCaps: ipcap.New(1, 7)})
	go srv.Serve()
	defer srv.Close()
	get := func(c *http.Client, path string) (int, string) {
		r, _ := http.NewRequest("GET", "https://"+ln.Addr().String()+path, nil)
		r.Host = "a.test"
		resp, err := c.Do(r)
		if err != nil {
			return 0, err.Error()
		}
		defer resp.Body.Close()
		return resp.StatusCode, resp.Header.Get("Retry-After")
	}
	first := h2Client("a.test")
	const n = 5
	codes := make(chan int, n)
	for range n {
		go func() { c, _ := get(first, "/wait"); codes <- c }()
	}
	for i := range n { // n concurrent streams of one connection reach the backend
		select {
		case <-arrived:
		case c := <-codes:
			close(release)
			t.Fatalf("stream %d of the first connection answered %d", i+1, c)
		case <-time.After(10 * time.Second):
			close(release)
			t.Fatalf("only %d streams reached the backend", i)
		}
	}
	if code, retry := get(h2Client("a.test"), "/"); code != 429 || retry != "7" {
		t.Fatalf("second connection: %d Retry-After %q, want 429 7", code, retry)
	}
	close(release)
	for range n {
		if c := <-codes; c != 200 {
			t.Fatalf("a stream of the first connection got %d", c)
		}
	}
}

// TestBridgeList: stream sessions link into their bridge and unlink in any
// order; after abort, link refuses and unlinking a refused session leaves
// the others linked.
func TestBridgeList(t *testing.T) {
	var b h2Bridge
	ss := []*session{{}, {}, {}}
	for _, s := range ss {
		if !b.link(s) {
			t.Fatal("link refused before abort")
		}
	}
	count := func() (n int) {
		for s := b.streams; s != nil; s = s.snext {
			n++
		}
		return n
	}
	b.unlink(ss[1]) // the middle one
	if n := count(); n != 2 {
		t.Fatalf("%d linked after one unlink, want 2", n)
	}
	b.mu.Lock()
	b.aborted = true // as abort does, without sessions to close
	b.mu.Unlock()
	late := &session{}
	if b.link(late) {
		t.Fatal("link accepted after abort")
	}
	b.unlink(late)
	if n := count(); n != 2 {
		t.Fatalf("unlinking a refused session left %d linked, want 2", n)
	}
	b.unlink(ss[2]) // the head
	b.unlink(ss[0])
	if b.streams != nil {
		t.Fatal("list not empty")
	}
}
