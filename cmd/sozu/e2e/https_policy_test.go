package e2e

import (
	"fmt"
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
		head := curl(t, append(resolve(host, tlsPort), "-D", "-", "-o", "/dev/null", fmt.Sprintf("https://%s:%d/", host, tlsPort))...)
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

	t.Run("https_redirect over plain HTTP", func(t *testing.T) {
		args := append(resolve("r.test", httpPort), "-o", "/dev/null", "-w", "%{http_code} %{redirect_url}",
			fmt.Sprintf("http://r.test:%d/x/y?z=1", httpPort))
		if got, want := curl(t, args...), fmt.Sprintf("301 https://r.test:%d/x/y?z=1", tlsPort); got != want {
			t.Fatalf("got %q, want %q", got, want)
		}
	})
}
