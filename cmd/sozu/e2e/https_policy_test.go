package e2e

import (
	"crypto/tls"
	"crypto/x509"
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

	"github.com/sozu-go/sozu/cmd/sozu/sozutest"
)

// TestHTTPSPolicy runs sozu with an HTTPS listener (strict SNI binding by
// default, an HSTS policy that frontend b.test turns off) and a plain HTTP
// listener whose cluster r has https_redirect, and checks them with curl.
func TestHTTPSPolicy(t *testing.T) {
	dir := t.TempDir()
	ca := newTestCA(t)
	caPath := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(caPath, ca.pem, 0o600); err != nil {
		t.Fatal(err)
	}
	aCert, aKey := ca.issue(t, dir, "a", "a.test")
	bCert, bKey := ca.issue(t, dir, "b", "b.test")
	origin := startHTTPOrigin(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "%s %s", r.Header.Get("X-Forwarded-Proto"), r.Host)
	}))
	tlsPort, httpPort := sozutest.FreePort(t), sozutest.FreePort(t)
	tlsAddr, httpAddr := fmt.Sprintf("127.0.0.1:%d", tlsPort), fmt.Sprintf("127.0.0.1:%d", httpPort)
	sock := filepath.Join(dir, "sozu.sock")
	cfg := fmt.Sprintf(`command_socket = %q
worker_count = 2
worker_timeout = 10
activate_listeners = true

[[listeners]]
protocol = "https"
address = %[2]q
hsts = { enabled = true, max_age = 600, include_subdomains = true }

[[listeners]]
protocol = "http"
address = %[3]q
answers = { "301" = """HTTP/1.1 301 Moved Permanently
Location: %%REDIRECT_LOCATION
X-Redirect: custom

<a href="%%REDIRECT_LOCATION">moved</a>""" }

[clusters.a]
protocol = "http"
frontends = [ { address = %[2]q, hostname = "a.test", certificate = %[4]q, key = %[5]q } ]
backends = [ { address = %[8]q } ]

[clusters.b]
protocol = "http"
frontends = [ { address = %[2]q, hostname = "b.test", certificate = %[6]q, key = %[7]q, hsts = { enabled = false } } ]
backends = [ { address = %[8]q } ]

[clusters.r]
protocol = "http"
https_redirect = true
https_redirect_port = %[9]d
frontends = [ { address = %[3]q, hostname = "r.test" } ]
backends = [ { address = %[8]q } ]
`, sock, tlsAddr, httpAddr, aCert, aKey, bCert, bKey, origin.addr, tlsPort)
	cfgPath := filepath.Join(dir, "config.toml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	sozutest.Start(t, dir, cfgPath, sock)

	resolve := func(host string, port int) []string {
		return []string{"--cacert", caPath, "--resolve", fmt.Sprintf("%s:%d:127.0.0.1", host, port)}
	}
	sozutest.WaitFor(t, 20*time.Second, "the HTTPS listener serves a.test", func() bool {
		cmd := exec.Command("/usr/bin/curl", append([]string{"-sS", "--max-time", "5", "-o", "/dev/null"},
			append(resolve("a.test", tlsPort), fmt.Sprintf("https://a.test:%d/", tlsPort))...)...)
		return sozutest.RunWithTimeout(cmd, 10*time.Second) == nil
	})

	t.Run("Host other than SNI gets 421", func(t *testing.T) {
		args := append(resolve("a.test", tlsPort), "-H", "Host: b.test", "-o", "/dev/null", "-w", "%{http_code}",
			fmt.Sprintf("https://a.test:%d/", tlsPort))
		if got := curl(t, args...); got != "421" {
			t.Fatalf("status %q, want 421", got)
		}
		// The same Host as the SNI, with another port and case, is served.
		args = append(resolve("a.test", tlsPort), "-H", fmt.Sprintf("Host: A.TEST:%d", tlsPort+1), fmt.Sprintf("https://a.test:%d/", tlsPort))
		if got := curl(t, args...); got != fmt.Sprintf("https A.TEST:%d", tlsPort+1) {
			t.Fatalf("matching Host: %q", got)
		}
	})

	hsts := func(t *testing.T, host string) string {
		t.Helper()
		// HTTP/1.1 (ALPN offers h2 first; http2_test.go covers HSTS over h2).
		head := curl(t, append(resolve(host, tlsPort), "--http1.1", "-D", "-", "-o", "/dev/null", fmt.Sprintf("https://%s:%d/", host, tlsPort))...)
		var v []string
		for _, line := range strings.Split(head, "\r\n") {
			if name, val, ok := strings.Cut(line, ":"); ok && strings.EqualFold(name, "Strict-Transport-Security") {
				v = append(v, strings.TrimSpace(val))
			}
		}
		if !strings.HasPrefix(head, "HTTP/1.1 200") {
			t.Fatalf("response %q", head)
		}
		return strings.Join(v, "|")
	}
	t.Run("HSTS from the listener", func(t *testing.T) {
		if got := hsts(t, "a.test"); got != "max-age=600; includeSubDomains" {
			t.Fatalf("Strict-Transport-Security %q", got)
		}
	})
	t.Run("HSTS turned off by a frontend", func(t *testing.T) {
		if got := hsts(t, "b.test"); got != "" {
			t.Fatalf("Strict-Transport-Security %q, want none", got)
		}
	})

	t.Run("HSTS on the proxy's own answers", func(t *testing.T) {
		args := append(resolve("a.test", tlsPort), "--http1.1", "-H", "Host: b.test", "-D", "-", "-o", "/dev/null", fmt.Sprintf("https://a.test:%d/", tlsPort))
		head := curl(t, args...)
		if !strings.HasPrefix(head, "HTTP/1.1 421") || !strings.Contains(head, "\r\nStrict-Transport-Security: max-age=600; includeSubDomains\r\n") {
			t.Fatalf("421 answer without the listener's HSTS:\n%s", head)
		}
	})

	t.Run("https_redirect over plain HTTP, with the listener's 301 template", func(t *testing.T) {
		args := append(resolve("r.test", httpPort), "-D", "-", "-w", "\n%{http_code} %{redirect_url}",
			fmt.Sprintf("http://r.test:%d/x/y?z=1&a='b'", httpPort))
		out := curl(t, args...)
		want := fmt.Sprintf("https://r.test:%d/x/y?z=1&a='b'", tlsPort)
		if !strings.HasSuffix(out, "\n301 "+want) {
			t.Fatalf("got %q, want a 301 to %s", out, want)
		}
		if !strings.Contains(out, "\r\nX-Redirect: custom\r\n") || strings.Contains(out, "Strict-Transport-Security") {
			t.Fatalf("not the template's head (or HSTS over plain HTTP):\n%s", out)
		}
		if body := fmt.Sprintf(`<a href="https://r.test:%d/x/y?z=1&amp;a=&#39;b&#39;">moved</a>`, tlsPort); !strings.Contains(out, body) {
			t.Fatalf("body not the template's, with the location escaped (%s):\n%s", body, out)
		}
	})

	t.Run("no session tickets by default", func(t *testing.T) {
		pool := x509.NewCertPool()
		pool.AddCert(ca.cert)
		for _, v := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
			cache := tls.NewLRUClientSessionCache(4)
			for i := range 3 {
				if resumedOnce(t, tlsAddr, &tls.Config{RootCAs: pool, ServerName: "a.test", MinVersion: v, MaxVersion: v, ClientSessionCache: cache}) {
					t.Fatalf("TLS %x: connection %d resumed a session", v, i)
				}
			}
		}
	})
}

// resumedOnce makes one HTTPS request with cfg (whose session cache
// persists across calls) and reports whether the handshake resumed.
func resumedOnce(t *testing.T, addr string, cfg *tls.Config) bool {
	t.Helper()
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr, cfg)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	// A whole request and answer, so that a TLS 1.3 ticket (sent after the
	// handshake) reaches the client's cache.
	fmt.Fprintf(c, "GET / HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n", cfg.ServerName)
	if _, err := io.ReadAll(c); err != nil {
		t.Fatalf("read from %s: %v", addr, err)
	}
	return c.ConnectionState().DidResume
}

// TestHTTPSSessionTickets: with tls_session_tickets, a listener whose
// send_tls13_tickets is not 0 lets sessions resume; one with 0 does not.
func TestHTTPSSessionTickets(t *testing.T) {
	dir := t.TempDir()
	ca := newTestCA(t)
	aCert, aKey := ca.issue(t, dir, "a", "a.test")
	origin := startHTTPOrigin(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "ok") }))
	on, off := fmt.Sprintf("127.0.0.1:%d", sozutest.FreePort(t)), fmt.Sprintf("127.0.0.1:%d", sozutest.FreePort(t))
	sock := filepath.Join(dir, "sozu.sock")
	cfg := fmt.Sprintf(`command_socket = %q
worker_count = 1
activate_listeners = true
tls_session_tickets = true

[[listeners]]
protocol = "https"
address = %[2]q
certificate = %[4]q
key = %[5]q

[[listeners]]
protocol = "https"
address = %[3]q
certificate = %[4]q
key = %[5]q
send_tls13_tickets = 0

[clusters.a]
protocol = "http"
frontends = [ { address = %[2]q, hostname = "a.test" }, { address = %[3]q, hostname = "a.test" } ]
backends = [ { address = %[6]q } ]
`, sock, on, off, aCert, aKey, origin.addr)
	cfgPath := filepath.Join(dir, "config.toml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	sozutest.Start(t, dir, cfgPath, sock)
	pool := x509.NewCertPool()
	pool.AddCert(ca.cert)
	sozutest.WaitFor(t, 20*time.Second, "both listeners accept", func() bool {
		for _, a := range []string{on, off} {
			c, err := tls.Dial("tcp", a, &tls.Config{RootCAs: pool, ServerName: "a.test"})
			if err != nil {
				return false
			}
			c.Close()
		}
		return true
	})
	for _, v := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
		for _, tc := range []struct {
			addr string
			want bool
		}{{on, true}, {off, false}} {
			cache := tls.NewLRUClientSessionCache(4)
			c := &tls.Config{RootCAs: pool, ServerName: "a.test", MinVersion: v, MaxVersion: v, ClientSessionCache: cache}
			resumedOnce(t, tc.addr, c)
			if got := resumedOnce(t, tc.addr, c); got != tc.want {
				t.Errorf("TLS %x on %s: resumed %v, want %v", v, tc.addr, got, tc.want)
			}
		}
	}
}
