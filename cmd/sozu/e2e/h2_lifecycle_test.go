package e2e

import (
	"crypto/x509"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/sozu-go/sozu/cmd/sozu/sozutest"
	"golang.org/x/net/http2"
)

// startH2Proxy runs one HTTPS listener (front_timeout 1 s) for a.test in
// front of origin.
func startH2Proxy(t *testing.T, h http.Handler) (*sozutest.Proxy, string) {
	t.Helper()
	dir := t.TempDir()
	ca := newTestCA(t)
	cp, kp := ca.issuePEM(t, func(c *x509.Certificate) { c.IPAddresses = []net.IP{net.IPv4(127, 0, 0, 1)} }, nil, "a.test")
	certPath, keyPath := filepath.Join(dir, "c.pem"), filepath.Join(dir, "c.key")
	os.WriteFile(certPath, cp, 0o600)
	os.WriteFile(keyPath, kp, 0o600)
	origin := startHTTPOrigin(t, h)
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
front_timeout = 1
back_timeout = 30

[clusters.app]
protocol = "http"
backends = [ { address = %q } ]
frontends = [ { address = %q, hostname = "a.test" } ]
`, sock, addr, certPath, keyPath, origin.addr, addr)
	cfgPath := filepath.Join(dir, "config.toml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return sozutest.Start(t, dir, cfgPath, sock), addr
}

// TestHTTP2IdleTimeoutAndLongStream: an HTTP/2 connection without streams
// is closed after front_timeout with GOAWAY(NO_ERROR); one whose stream
// keeps progressing (a slow download, the client silent) is not, until
// its stream has ended and it has been idle that long.
func TestHTTP2IdleTimeoutAndLongStream(t *testing.T) {
	_, addr := startH2Proxy(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for i := range 8 {
			fmt.Fprintf(w, "chunk%d;", i)
			w.(http.Flusher).Flush()
			time.Sleep(300 * time.Millisecond)
		}
	}))
	// readUntilClose reads frames, ACKing SETTINGS, until the connection
	// closes; it returns the GOAWAY seen, when it came, and the body of
	// stream 1.
	readUntilClose := func(h *h2raw) (*http2.GoAwayFrame, time.Time, string, time.Time) {
		var ga *http2.GoAwayFrame
		var at, bodyEnd time.Time
		var body []byte
		for {
			f, err := h.next(t)
			if err != nil {
				return ga, at, string(body), bodyEnd
			}
			switch f := f.(type) {
			case *http2.SettingsFrame:
				if !f.IsAck() {
					h.fr.WriteSettingsAck()
				}
			case *http2.GoAwayFrame:
				ga, at = &http2.GoAwayFrame{LastStreamID: f.LastStreamID, ErrCode: f.ErrCode}, time.Now()
			case *http2.DataFrame:
				body = append(body, f.Data()...)
				if f.StreamEnded() {
					bodyEnd = time.Now()
				}
			case *http2.RSTStreamFrame:
				t.Errorf("RST_STREAM %v on stream %d", f.ErrCode, f.StreamID)
			}
		}
	}

	t.Run("idle", func(t *testing.T) {
		h := dialH2(t, addr)
		defer h.close()
		start := time.Now()
		ga, at, _, _ := readUntilClose(h)
		if ga == nil || ga.ErrCode != http2.ErrCodeNo || ga.LastStreamID != 0 {
			t.Fatalf("idle connection: GOAWAY %+v, want NO_ERROR, last stream 0", ga)
		}
		if d := at.Sub(start); d < 800*time.Millisecond || d > 4*time.Second {
			t.Fatalf("idle connection closed after %v, want front_timeout (1 s)", d)
		}
	})
	t.Run("long stream", func(t *testing.T) {
		h := dialH2(t, addr)
		defer h.close()
		start := time.Now()
		h.headers(1, true, "GET", "/slow")
		ga, at, body, end := readUntilClose(h)
		want := ""
		for i := range 8 {
			want += fmt.Sprintf("chunk%d;", i)
		}
		if body != want {
			t.Fatalf("body %q after %v, want %q: the stream was cut", body, time.Since(start), want)
		}
		if ga == nil || ga.ErrCode != http2.ErrCodeNo || ga.LastStreamID != 1 {
			t.Fatalf("GOAWAY %+v, want NO_ERROR, last stream 1", ga)
		}
		if at.Before(end) {
			t.Fatal("GOAWAY before the stream ended")
		}
	})
}

// TestHTTP2DrainOnStop: a soft stop or a listener's deactivation sends
// GOAWAY(NO_ERROR) naming the stream in flight, which completes; a stream
// the client opens after it is not processed; the connection then closes.
// So does a worker upgrade, for the old worker's connections. A hard
// stop closes the connection at once.
func TestHTTP2DrainOnStop(t *testing.T) {
	for _, tc := range []struct {
		name string
		stop func(p *sozutest.Proxy, addr string) (string, int)
		hard bool
	}{
		{"soft stop", func(p *sozutest.Proxy, _ string) (string, int) {
			o, e, c := p.CLI("shutdown")
			return o + e, c
		}, false},
		{"listener deactivate", func(p *sozutest.Proxy, addr string) (string, int) {
			o, e, c := p.CLI("listener", "https", "deactivate", "--address", addr)
			return o + e, c
		}, false},
		{"worker upgrade", func(p *sozutest.Proxy, _ string) (string, int) {
			ids, _ := workersOf(t, p.Sock)
			o, e, c := p.CLI("upgrade", "--worker", strconv.Itoa(int(ids[0])))
			return o + e, c
		}, false},
		{"hard stop", func(p *sozutest.Proxy, _ string) (string, int) {
			o, e, c := p.CLI("-t", "30000", "shutdown", "--hard")
			return o + e, c
		}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			late := make(chan string, 8)
			arrived := make(chan struct{}, 8)
			p, addr := startH2Proxy(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path == "/late" {
					late <- r.URL.Path
				}
				arrived <- struct{}{}
				time.Sleep(700 * time.Millisecond)
				fmt.Fprint(w, "done")
			}))
			h := dialH2(t, addr)
			defer h.close()
			h.headers(1, true, "GET", "/slow")
			<-arrived
			stopped := make(chan string, 1)
			start := time.Now()
			go func() {
				out, code := tc.stop(p, addr)
				stopped <- fmt.Sprint(code, out)
			}()
			// A soft stop's drain has two steps (RFC 9113 §6.8): the
			// advisory GOAWAY (2^31-1) and a PING, which the client
			// answers as real clients do, then the final GOAWAY naming
			// the last stream served.
			var ga, first *http2.GoAwayFrame
			body := ""
			for {
				f, err := h.next(t)
				if err != nil {
					break
				}
				switch f := f.(type) {
				case *http2.SettingsFrame:
					if !f.IsAck() {
						h.fr.WriteSettingsAck()
					}
				case *http2.PingFrame:
					if !f.IsAck() {
						h.fr.WritePing(true, f.Data)
					}
				case *http2.GoAwayFrame:
					ga = &http2.GoAwayFrame{LastStreamID: f.LastStreamID, ErrCode: f.ErrCode}
					if first == nil {
						first = ga
					}
					if !tc.hard && ga.LastStreamID < 1<<31-1 {
						h.headers(3, true, "GET", "/late") // above the final GOAWAY: not processed
					}
				case *http2.DataFrame:
					body += string(f.Data())
				}
			}
			d := time.Since(start)
			if tc.hard {
				if body != "" || d > 5*time.Second {
					t.Fatalf("hard stop: body %q, closed after %v", body, d)
				}
			} else {
				if first == nil || first.ErrCode != http2.ErrCodeNo || first.LastStreamID != 1<<31-1 {
					t.Fatalf("first GOAWAY %+v, want the advisory one: NO_ERROR, last stream 2^31-1", first)
				}
				if ga.ErrCode != http2.ErrCodeNo || ga.LastStreamID != 1 {
					t.Fatalf("final GOAWAY %+v, want NO_ERROR, last stream 1", ga)
				}
				if body != "done" {
					t.Fatalf("stream 1 body %q, want done", body)
				}
				if d > 4*time.Second {
					t.Fatalf("connection closed %v after the stop", d)
				}
			}
			select {
			case l := <-late:
				t.Fatalf("stream above the GOAWAY reached the backend: %s", l)
			case <-time.After(200 * time.Millisecond):
			}
			select {
			case s := <-stopped:
				t.Logf("stop: %s after %v", s, time.Since(start))
			case <-time.After(15 * time.Second):
				t.Fatal("stop did not return")
			}
		})
	}
}
