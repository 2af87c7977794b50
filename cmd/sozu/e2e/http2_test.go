package e2e

import (
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
	"strings"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/sozu-go/sozu/cmd/sozu/sozutest"
	pm "github.com/sozu-go/sozu/proto/metrics"
)

// TestHTTP2 runs sozu (sandboxed workers) with two HTTPS listeners: main
// (default h2_* limits, frontend features) and strict (low h2_* limits).
// HTTP/2 is negotiated by ALPN and each stream is served like an HTTP/1.1
// request: h2spec passes, curl --http2 and nghttp reach the frontend
// features, and each flood class ends its connection with
// GOAWAY(ENHANCE_YOUR_CALM) exactly past the configured threshold while
// other connections are served.
func TestHTTP2(t *testing.T) {
	dir := t.TempDir()
	ca := newTestCA(t)
	caPath := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(caPath, ca.pem, 0o600); err != nil {
		t.Fatal(err)
	}
	cp, kp := ca.issuePEM(t, func(c *x509.Certificate) { c.IPAddresses = []net.IP{net.IPv4(127, 0, 0, 1)} }, nil,
		"a.test", "old.test", "secure.test")
	certPath, keyPath := filepath.Join(dir, "c.pem"), filepath.Join(dir, "c.key")
	os.WriteFile(certPath, cp, 0o600)
	os.WriteFile(keyPath, kp, 0o600)
	origin := startHTTPOrigin(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Frame-Options", "SAMEORIGIN")
		body, _ := io.ReadAll(r.Body)
		fmt.Fprintf(w, "proto=%s host=%s uri=%s xfp=%s cookie=%q len=%d", r.Proto, r.Host, r.RequestURI,
			r.Header.Get("X-Forwarded-Proto"), r.Header.Get("Cookie"), len(body))
	}))
	digest := sha256.Sum256([]byte("s3cret"))
	mainPort, strictPort, h2onlyPort := sozutest.FreePort(t), sozutest.FreePort(t), sozutest.FreePort(t)
	mainAddr, strictAddr := fmt.Sprintf("127.0.0.1:%d", mainPort), fmt.Sprintf("127.0.0.1:%d", strictPort)
	h2onlyAddr := fmt.Sprintf("127.0.0.1:%d", h2onlyPort)
	sock := filepath.Join(dir, "sozu.sock")
	cfg := fmt.Sprintf(`command_socket = %[1]q
worker_count = 1
worker_timeout = 10
activate_listeners = true

[[listeners]]
protocol = "https"
address = %[2]q
certificate = %[4]q
key = %[5]q
hsts = { enabled = true, max_age = 600 }

[[listeners]]
protocol = "https"
address = %[3]q
certificate = %[4]q
key = %[5]q
h2_max_ping_per_window = 10
h2_max_settings_per_window = 10
h2_max_empty_data_per_window = 10
h2_max_window_update_stream0_per_window = 10
h2_max_continuation_frames = 5
h2_max_rst_stream_per_window = 10
h2_max_rst_stream_abusive_lifetime = 1000
h2_max_rst_stream_emitted_lifetime = 5
h2_max_glitch_count = 1000
h2_max_header_list_size = 8192

[[listeners]]
protocol = "https"
address = %[8]q
certificate = %[4]q
key = %[5]q
alpn_protocols = ["h2"]
disable_http11 = true

[clusters.app]
protocol = "http"
backends = [ { address = %[6]q } ]

[[clusters.app.frontends]]
address = %[2]q
hostname = "old.test"
redirect = "permanent"
redirect_scheme = "use-https"
rewrite_host = "new.test"

[[clusters.app.frontends]]
address = %[2]q
hostname = "a.test"
path = "/api/"
rewrite_path = "/v2/$PATH[1]"

[[clusters.app.frontends.headers]]
position = "response"
key = "X-Frame-Options"
value = ""

[[clusters.app.frontends.headers]]
position = "response"
key = "X-Frame-Options"
value = "DENY"

[[clusters.app.frontends]]
address = %[2]q
hostname = "*"
path = "/"

[[clusters.app.frontends]]
address = %[3]q
hostname = "*"
path = "/"

[[clusters.app.frontends]]
address = %[8]q
hostname = "*"
path = "/"

[clusters.secure]
protocol = "http"
authorized_hashes = [ "bob:%[7]s" ]
backends = [ { address = %[6]q } ]
frontends = [ { address = %[2]q, hostname = "secure.test", required_auth = true } ]
`, sock, mainAddr, strictAddr, certPath, keyPath, origin.addr, hex.EncodeToString(digest[:]), h2onlyAddr)
	cfgPath := filepath.Join(dir, "config.toml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	sozutest.Start(t, dir, cfgPath, sock)
	curlH2 := func(host, path string, extra ...string) (string, error) {
		args := append([]string{"-sS", "-i", "--http2", "--max-time", "10", "--cacert", caPath,
			"--resolve", fmt.Sprintf("%s:%d:127.0.0.1", host, mainPort)}, extra...)
		args = append(args, fmt.Sprintf("https://%s:%d%s", host, mainPort, path))
		cmd := exec.Command("/usr/bin/curl", args...)
		var out, errOut bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errOut
		if err := sozutest.RunWithTimeout(cmd, 20*time.Second); err != nil {
			return errOut.String(), err
		}
		return out.String(), nil
	}
	sozutest.WaitFor(t, 20*time.Second, "the HTTPS listener serves HTTP/2", func() bool {
		out, err := curlH2("a.test", "/")
		return err == nil && strings.HasPrefix(out, "HTTP/2 200")
	})

	t.Run("curl --http2 through frontend features", func(t *testing.T) {
		for _, tt := range []struct {
			name, host, path string
			extra            []string
			want             []string
		}{
			{"proxied, cookie crumbs joined", "a.test", "/x?y=1", []string{"-b", "a=1; b=2"},
				[]string{"HTTP/2 200", "proto=HTTP/1.1 host=a.test:", "uri=/x?y=1", "xfp=https", `cookie="a=1; b=2"`, "strict-transport-security: max-age=600"}},
			{"path rewrite and response header edits", "a.test", "/api/items", nil,
				[]string{"HTTP/2 200", "uri=/v2/items", "x-frame-options: DENY"}},
			{"redirect", "old.test", "/p?q=1", nil, []string{"HTTP/2 301", "location: https://new.test/p?q=1"}},
			{"auth required", "secure.test", "/", nil, []string{"HTTP/2 401"}},
			{"auth given", "secure.test", "/", []string{"-u", "bob:s3cret"}, []string{"HTTP/2 200"}},
			{"strict SNI", "a.test", "/", []string{"-H", "Host: secure.test"}, []string{"HTTP/2 421"}},
			{"request body", "a.test", "/up", []string{"--data-binary", strings.Repeat("z", 100000)}, []string{"HTTP/2 200", "len=100000"}},
		} {
			t.Run(tt.name, func(t *testing.T) {
				out, err := curlH2(tt.host, tt.path, tt.extra...)
				if err != nil {
					t.Fatalf("curl: %v: %s", err, out)
				}
				for _, w := range tt.want {
					if !strings.Contains(out, w) {
						t.Errorf("no %q in\n%s", w, out)
					}
				}
			})
		}
	})

	t.Run("alpn_protocols h2 only and disable_http11", func(t *testing.T) {
		run := func(proto string) (string, error) {
			cmd := exec.Command("/usr/bin/curl", "-sS", "-i", proto, "--max-time", "10", "--cacert", caPath,
				"--resolve", fmt.Sprintf("a.test:%d:127.0.0.1", h2onlyPort), fmt.Sprintf("https://a.test:%d/", h2onlyPort))
			var out, errOut bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, &errOut
			err := sozutest.RunWithTimeout(cmd, 20*time.Second)
			return out.String() + errOut.String(), err
		}
		if out, err := run("--http2"); err != nil || !strings.HasPrefix(out, "HTTP/2 200") {
			t.Fatalf("h2 client: %v\n%s", err, out)
		}
		if out, err := run("--http1.1"); err == nil {
			t.Fatalf("HTTP/1.1 client served:\n%s", out)
		}
	})

	t.Run("nghttp", func(t *testing.T) {
		for _, tt := range []struct{ authority, path, want string }{
			{"a.test", "/n", "uri=/n"},
			{"a.test", "/api/n", "x-frame-options: DENY"},
			{"old.test", "/n", "location: https://new.test/n"},
		} {
			cmd := exec.Command("/usr/bin/nghttp", "-v", "-H", ":authority: "+tt.authority, fmt.Sprintf("https://127.0.0.1:%d%s", mainPort, tt.path))
			var out bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, &out
			if err := sozutest.RunWithTimeout(cmd, 20*time.Second); err != nil {
				t.Fatalf("nghttp %s%s: %v\n%s", tt.authority, tt.path, err, out.String())
			}
			if !strings.Contains(out.String(), tt.want) {
				t.Fatalf("nghttp %s%s: no %q in\n%s", tt.authority, tt.path, tt.want, out.String())
			}
		}
	})

	t.Run("h2spec", func(t *testing.T) {
		bin, err := exec.LookPath("h2spec")
		if err != nil {
			bin = "/root/go/bin/h2spec"
		}
		cmd := exec.Command(bin, "-t", "-k", "-h", "127.0.0.1", "-p", fmt.Sprint(mainPort), "-o", "2")
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		err = sozutest.RunWithTimeout(cmd, 300*time.Second)
		text := out.String()
		i := strings.LastIndex(text, "tests,")
		if err != nil || i < 0 || !strings.Contains(text[i:], " 0 failed") {
			t.Fatalf("h2spec: %v\n%s", err, text)
		}
		t.Logf("h2spec: %s", strings.TrimSpace(text[strings.LastIndex(text[:i], "\n")+1:]))
	})

	t.Run("flood budgets", func(t *testing.T) {
		pids := workerPIDs(t, sock)
		rss0 := vmRSS(t, pids[0])
		budget := 64 << 10 // KiB
		if raceEnabled {
			budget *= 4 // the race detector's shadow memory
		}
		served := func(t *testing.T) {
			t.Helper()
			c := &http.Client{Timeout: 10 * time.Second, Transport: &http2.Transport{
				TLSClientConfig: &tls.Config{InsecureSkipVerify: true, ServerName: "a.test"}}}
			req, _ := http.NewRequest("GET", fmt.Sprintf("https://%s/still", strictAddr), nil)
			req.Host = "a.test" // strict SNI: the Host the handshake named
			resp, err := c.Do(req)
			if err != nil {
				t.Fatalf("another connection: %v", err)
			}
			resp.Body.Close()
			if resp.StatusCode != 200 || resp.ProtoMajor != 2 {
				t.Fatalf("another connection: %s %d", resp.Proto, resp.StatusCode)
			}
		}
		// floodCounted: the violation shows in the metrics, by class and
		// by upstream's kind (each is broken once past its threshold, so
		// exactly once).
		floodCounted := func(t *testing.T, class, kind string) {
			t.Helper()
			for _, name := range []string{pm.H2Flood(class), pm.H2Flood(kind)} {
				var got int64
				sozutest.WaitFor(t, 5*time.Second, name+" counted", func() bool {
					got = countOf(queryMetrics(t, sock, nil).GetProxying(), name)
					return got >= 1
				})
				if got != 1 {
					t.Fatalf("%s = %d after one violation", name, got)
				}
			}
		}
		for _, tt := range []struct {
			name  string
			class string // its h2.flood.violation.<class> counter
			kind  string // and upstream's h2.flood.violation.<kind>
			n     int    // the configured threshold
			// drive sends k frames of the class.
			drive func(h *h2raw, k int)
		}{
			{"PING", "ping", "ping_window", 10, func(h *h2raw, k int) {
				for i := range k {
					h.fr.WritePing(false, [8]byte{byte(i)})
				}
			}},
			{"rapid reset", "rapid_reset", "rst_stream_window", 10, func(h *h2raw, k int) {
				for i := range k {
					id := uint32(2*i + 1)
					h.headers(id, false, "GET", "/rr")
					h.fr.WriteRSTStream(id, http2.ErrCodeCancel)
				}
			}},
			{"empty DATA", "empty_data", "empty_data_window", 10, func(h *h2raw, k int) {
				h.headers(1, false, "POST", "/d")
				for range k {
					h.fr.WriteData(1, false, nil)
				}
			}},
			{"stream-0 WINDOW_UPDATE", "window_update", "window_update_stream0_window", 10, func(h *h2raw, k int) {
				for range k {
					h.fr.WriteWindowUpdate(0, 1)
				}
			}},
			{"CONTINUATION", "continuation", "continuation_per_block", 5, func(h *h2raw, k int) {
				block := h.block("GET", "/c")
				h.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: block[:1], EndStream: true})
				for i := range k {
					if i == k-1 {
						h.fr.WriteContinuation(1, true, block[1:])
					} else {
						h.fr.WriteContinuation(1, false, nil)
					}
				}
			}},
			{"MadeYouReset (provoked resets)", "made_you_reset", "rst_stream_emitted_lifetime", 5, func(h *h2raw, k int) {
				for i := range k {
					// A stream depending on itself: stream error
					// PROTOCOL_ERROR, the proxy emits RST_STREAM.
					id := uint32(2*i + 1)
					h.fr.WritePriority(id, http2.PriorityParam{StreamDep: id})
				}
			}},
			{"HPACK bomb (header list size)", "headers", "header_size_per_block", 8192, func(h *h2raw, k int) {
				// One field whose list size (name + value + 32) makes the
				// request's list exactly k bytes.
				base := len(":method") + len("GET") + len(":scheme") + len("https") + len(":authority") + len("a.test") + len(":path") + len("/h") + 4*32
				h.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, EndStream: true, EndHeaders: true,
					BlockFragment: h.block("GET", "/h", "x-big", strings.Repeat("v", k-base-len("x-big")-32))})
			}},
		} {
			t.Run(tt.name, func(t *testing.T) {
				// At the threshold: still served (a request on the same
				// connection is answered).
				h := dialH2(t, strictAddr)
				tt.drive(h, tt.n)
				if tt.name == "PING" {
					h.expectPingAcks(t, tt.n)
				}
				h.headers(1001, true, "GET", "/alive")
				h.expectAlive(t, 1001)
				h.close()
				// One past it: GOAWAY(ENHANCE_YOUR_CALM), connection closed.
				h = dialH2(t, strictAddr)
				tt.drive(h, tt.n+1)
				if tt.name == "PING" {
					h.expectPingAcks(t, tt.n)
				}
				h.expectGoAway(t, http2.ErrCodeEnhanceYourCalm)
				h.close()
				served(t)
				floodCounted(t, tt.class, tt.kind)
			})
		}
		t.Run("SETTINGS", func(t *testing.T) {
			// At the threshold, the preface's SETTINGS included and the
			// ACK of the proxy's not counted (upstream counts no ACK):
			// served.
			h := dialH2(t, strictAddr)
			for range 9 {
				h.fr.WriteSettings()
			}
			h.headers(1001, true, "GET", "/alive")
			h.expectAlive(t, 1001)
			h.close()
			h = dialH2(t, strictAddr)
			for range 10 {
				h.fr.WriteSettings()
			}
			h.expectGoAway(t, http2.ErrCodeEnhanceYourCalm)
			h.close()
			served(t)
			floodCounted(t, "settings", "settings_window")
		})
		if grown := vmRSS(t, pids[0]) - rss0; grown > budget {
			t.Fatalf("worker RSS grew by %d KiB during the floods", grown)
		}
	})
}

// h2raw is a raw HTTP/2 client over TLS (ALPN h2) on golang.org/x/net's
// Framer.
type h2raw struct {
	c   *tls.Conn
	fr  *http2.Framer
	buf bytes.Buffer
	enc *hpack.Encoder
}

func dialH2(t *testing.T, addr string) *h2raw {
	t.Helper()
	c, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true, ServerName: "a.test", NextProtos: []string{"h2"}})
	if err != nil {
		t.Fatal(err)
	}
	if p := c.ConnectionState().NegotiatedProtocol; p != "h2" {
		t.Fatalf("ALPN %q", p)
	}
	c.SetDeadline(time.Now().Add(15 * time.Second))
	if _, err := io.WriteString(c, http2.ClientPreface); err != nil {
		t.Fatal(err)
	}
	h := &h2raw{c: c, fr: http2.NewFramer(c, c)}
	h.enc = hpack.NewEncoder(&h.buf)
	h.fr.WriteSettings()
	return h
}

func (h *h2raw) close() { h.c.Close() }

// block encodes a request header block for a.test, with extra fields.
func (h *h2raw) block(method, path string, extra ...string) []byte {
	h.buf.Reset()
	f := append([]string{":method", method, ":scheme", "https", ":authority", "a.test", ":path", path}, extra...)
	for i := 0; i+1 < len(f); i += 2 {
		h.enc.WriteField(hpack.HeaderField{Name: f[i], Value: f[i+1]})
	}
	return bytes.Clone(h.buf.Bytes())
}

func (h *h2raw) headers(id uint32, end bool, method, path string) {
	h.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: h.block(method, path), EndStream: end, EndHeaders: true})
}

// next reads the next frame, acknowledging the server's SETTINGS.
func (h *h2raw) next(t *testing.T) (http2.Frame, error) {
	t.Helper()
	f, err := h.fr.ReadFrame()
	if sf, ok := f.(*http2.SettingsFrame); ok && !sf.IsAck() {
		h.fr.WriteSettingsAck()
	}
	return f, err
}

// expectAlive waits for the response HEADERS of stream id; a GOAWAY fails.
func (h *h2raw) expectAlive(t *testing.T, id uint32) {
	t.Helper()
	for {
		f, err := h.next(t)
		if err != nil {
			t.Fatalf("at the threshold: connection failed: %v", err)
		}
		switch f := f.(type) {
		case *http2.GoAwayFrame:
			t.Fatalf("at the threshold: GOAWAY %v", f.ErrCode)
		case *http2.HeadersFrame:
			if f.StreamID == id {
				return
			}
		}
	}
}

// expectPingAcks reads until n PING ACKs arrived; a GOAWAY before fails.
func (h *h2raw) expectPingAcks(t *testing.T, n int) {
	t.Helper()
	got := 0
	for got < n {
		f, err := h.next(t)
		if err != nil {
			t.Fatalf("after %d PING ACKs: %v", got, err)
		}
		if p, ok := f.(*http2.PingFrame); ok && p.IsAck() {
			got++
		}
		if g, ok := f.(*http2.GoAwayFrame); ok {
			t.Fatalf("GOAWAY %v after %d PING ACKs, want %d first", g.ErrCode, got, n)
		}
	}
}

// expectGoAway reads until a GOAWAY, which must carry code, then until the
// connection closes.
func (h *h2raw) expectGoAway(t *testing.T, code http2.ErrCode) {
	t.Helper()
	for {
		f, err := h.next(t)
		if err != nil {
			t.Fatalf("no GOAWAY before: %v", err)
		}
		if g, ok := f.(*http2.GoAwayFrame); ok {
			if g.ErrCode != code {
				t.Fatalf("GOAWAY %v, want %v", g.ErrCode, code)
			}
			break
		}
	}
	for {
		if _, err := h.next(t); err != nil {
			return // closed
		}
	}
}

// TestHTTP2ListenerKnobsAndSoftStop: `sozu listener https update` sets the
// h2_* keys with upstream's flags (--h2-…) and the worker applies them to
// the next connection; a soft stop (`sozu shutdown`) sends
// GOAWAY(NO_ERROR) naming the last stream opened, lets a stream that
// finishes in time finish, and closes the connection once
// h2_graceful_shutdown_deadline_seconds has passed.
func TestHTTP2ListenerKnobsAndSoftStop(t *testing.T) {
	dir := t.TempDir()
	ca := newTestCA(t)
	cp, kp := ca.issuePEM(t, func(c *x509.Certificate) { c.IPAddresses = []net.IP{net.IPv4(127, 0, 0, 1)} }, nil, "a.test")
	certPath, keyPath := filepath.Join(dir, "c.pem"), filepath.Join(dir, "c.key")
	os.WriteFile(certPath, cp, 0o600)
	os.WriteFile(keyPath, kp, 0o600)
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	slow := make(chan struct{}, 4) // one per /slow request the origin has
	origin := startHTTPOrigin(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/hang": // never answered while the test runs
			select {
			case <-release:
			case <-r.Context().Done():
			}
			return
		case "/slow":
			slow <- struct{}{}
			time.Sleep(300 * time.Millisecond)
		}
		fmt.Fprint(w, "done")
	}))
	addr := fmt.Sprintf("127.0.0.1:%d", sozutest.FreePort(t))
	sock := filepath.Join(dir, "sozu.sock")
	cfg := fmt.Sprintf(`command_socket = %q
worker_count = 1
worker_timeout = 10
activate_listeners = true

[[listeners]]
protocol = "https"
address = %q
certificate = %q
key = %q

[clusters.app]
protocol = "http"
backends = [ { address = %q } ]
frontends = [ { address = %q, hostname = "a.test" } ]
`, sock, addr, certPath, keyPath, origin.addr, addr)
	cfgPath := filepath.Join(dir, "config.toml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	p := sozutest.Start(t, dir, cfgPath, sock)

	// settings returns the server's SETTINGS parameters and the connection
	// receive window it grants at once: RFC 9113's initial 65535 plus the
	// stream-0 WINDOW_UPDATE that follows its SETTINGS (§6.9.2).
	settings := func() (map[http2.SettingID]uint32, uint32) {
		h := dialH2(t, addr)
		defer h.close()
		var m map[http2.SettingID]uint32
		for {
			f, err := h.next(t)
			if err != nil {
				t.Fatal(err)
			}
			switch f := f.(type) {
			case *http2.SettingsFrame:
				if !f.IsAck() {
					m = map[http2.SettingID]uint32{}
					f.ForeachSetting(func(s http2.Setting) error { m[s.ID] = s.Val; return nil })
				}
			case *http2.WindowUpdateFrame:
				if f.StreamID == 0 {
					if m == nil {
						t.Fatal("WINDOW_UPDATE before the server's SETTINGS")
					}
					return m, 65535 + f.Increment
				}
			}
		}
	}
	// The defaults: 100 streams, a 1 MiB connection window, 256 KiB per
	// stream (docs/configuration.md).
	st, win := settings()
	if st[http2.SettingMaxConcurrentStreams] != 100 || st[http2.SettingInitialWindowSize] != 256<<10 ||
		st[http2.SettingMaxHeaderListSize] != 64<<10 || win != 1<<20 {
		t.Fatalf("by default: SETTINGS %v, connection window %d", st, win)
	}
	// A connection window below 256 KiB bounds the stream window too.
	p.MustCLI("listener", "https", "update", "--address", addr, "--h2-max-concurrent-streams", "7",
		"--h2-max-header-list-size", "9000", "--h2-graceful-shutdown-deadline-seconds", "1",
		"--h2-initial-connection-window", "100000")
	st, win = settings()
	if st[http2.SettingMaxConcurrentStreams] != 7 || st[http2.SettingMaxHeaderListSize] != 9000 ||
		st[http2.SettingInitialWindowSize] != 100000 || win != 100000 {
		t.Fatalf("after the update: SETTINGS %v, connection window %d", st, win)
	}

	h := dialH2(t, addr)
	defer h.close()
	h.headers(1, true, "GET", "/hang")
	h.headers(3, true, "GET", "/ok")
	for done := false; !done; {
		f, err := h.next(t)
		if err != nil {
			t.Fatal(err)
		}
		if d, ok := f.(*http2.DataFrame); ok && d.StreamID == 3 && d.StreamEnded() {
			done = true
		}
	}
	h.headers(5, true, "GET", "/slow")
	originHas(t, slow) // stream 5 is in flight when the soft stop comes
	stopped := make(chan string, 1)
	go func() {
		out, errOut, _ := p.CLI("shutdown")
		stopped <- out + errOut
	}()
	var goaway *http2.GoAwayFrame
	var at time.Time
	slowDone := false
	for {
		f, err := h.next(t)
		if err != nil {
			break // closed
		}
		switch f := f.(type) {
		case *http2.PingFrame:
			if !f.IsAck() {
				h.fr.WritePing(true, f.Data) // the drain's PING: its ACK brings the final GOAWAY
			}
		case *http2.GoAwayFrame:
			// The last one is the final GOAWAY; the deadline runs from
			// the first (the advisory one, last stream 2^31-1).
			goaway = &http2.GoAwayFrame{LastStreamID: f.LastStreamID, ErrCode: f.ErrCode}
			if at.IsZero() {
				at = time.Now()
			}
		case *http2.DataFrame:
			if f.StreamID == 5 && f.StreamEnded() {
				slowDone = true
			}
			if f.StreamID == 1 {
				t.Fatal("the stream whose backend never answers got DATA")
			}
		}
	}
	closed := time.Now()
	if goaway == nil || goaway.ErrCode != http2.ErrCodeNo || goaway.LastStreamID != 5 {
		t.Fatalf("soft stop: GOAWAY %+v, want NO_ERROR with last stream 5", goaway)
	}
	if !slowDone {
		t.Fatal("the stream in flight at the soft stop did not finish")
	}
	if d := closed.Sub(at); d < 800*time.Millisecond || d > 4*time.Second {
		t.Fatalf("connection closed %v after the GOAWAY, want h2_graceful_shutdown_deadline_seconds (1 s)", d)
	}
	select {
	case <-stopped:
	case <-time.After(30 * time.Second):
		t.Fatal("shutdown did not return")
	}
}
