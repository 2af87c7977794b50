package e2e

import (
	"crypto/x509"
	"fmt"
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

// TestStrictSNIWithoutSNI: a client that sends no SNI (curl and openssl
// addressing the proxy by IP address) gets the listener's default
// certificate, and under strict_sni_binding (the default) is bound to the
// names that certificate covers: another Host gets 421, a Host among its
// names (wildcard and IP address included) is served.
func TestStrictSNIWithoutSNI(t *testing.T) {
	dir := t.TempDir()
	ca := newTestCA(t)
	caPath := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(caPath, ca.pem, 0o600); err != nil {
		t.Fatal(err)
	}
	defC, defK := ca.issuePEM(t, func(c *x509.Certificate) {
		c.IPAddresses = []net.IP{net.ParseIP("127.0.0.1")}
	}, nil, "default.test", "*.wild.test")
	defCert, defKey := filepath.Join(dir, "default.pem"), filepath.Join(dir, "default.key")
	if err := os.WriteFile(defCert, defC, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(defKey, defK, 0o600); err != nil {
		t.Fatal(err)
	}
	origin := startHTTPOrigin(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "served %s", r.Host)
	}))
	tlsPort := sozutest.FreePort(t)
	tlsAddr := fmt.Sprintf("127.0.0.1:%d", tlsPort)
	cfgPath, sock, _ := sozutest.WriteConfig(t, dir, 1, fmt.Sprintf(`activate_listeners = true

[[listeners]]
protocol = "https"
address = %[1]q
certificate = %[2]q
key = %[3]q

[clusters.c]
protocol = "http"
frontends = [
  { address = %[1]q, hostname = "default.test" },
  { address = %[1]q, hostname = "x.wild.test" },
  { address = %[1]q, hostname = "other.test" },
  { address = %[1]q, hostname = "127.0.0.1" },
]
backends = [ { address = %[4]q } ]
`, tlsAddr, defCert, defKey, origin.addr))
	sozutest.Start(t, dir, cfgPath, sock)
	url := fmt.Sprintf("https://127.0.0.1:%d/", tlsPort) // an IP literal: curl sends no SNI
	sozutest.WaitFor(t, 20*time.Second, "the HTTPS listener answers", func() bool {
		cmd := exec.Command("/usr/bin/curl", "-sS", "--max-time", "5", "-o", "/dev/null", "--cacert", caPath, url)
		return sozutest.RunWithTimeout(cmd, 10*time.Second) == nil
	})

	for _, tc := range []struct{ host, want string }{
		{"other.test", "421"},
		{"default.test", "200 served default.test"},
		{"x.wild.test", "200 served x.wild.test"},
		{"y.x.wild.test", "421"},
		{fmt.Sprintf("127.0.0.1:%d", tlsPort), fmt.Sprintf("200 served 127.0.0.1:%d", tlsPort)},
	} {
		t.Run("curl without SNI, Host "+tc.host, func(t *testing.T) {
			got := curl(t, "--cacert", caPath, "-H", "Host: "+tc.host, "-w", " %{http_code}", "-o", "-", url)
			if !matchStatus(got, tc.want) {
				t.Fatalf("curl answered %q, want %s", got, tc.want)
			}
		})
	}

	t.Run("openssl without SNI, Host other.test", func(t *testing.T) {
		cmd := exec.Command("openssl", "s_client", "-quiet", "-noservername", "-CAfile", caPath, "-connect", tlsAddr)
		cmd.Stdin = strings.NewReader("GET / HTTP/1.1\r\nHost: other.test\r\nConnection: close\r\n\r\n")
		var out strings.Builder
		cmd.Stdout = &out
		if err := sozutest.RunWithTimeout(cmd, 20*time.Second); err != nil && !strings.Contains(out.String(), "HTTP/1.1") {
			t.Fatalf("openssl s_client: %v\n%s", err, out.String())
		}
		if !strings.HasPrefix(out.String(), "HTTP/1.1 421 ") {
			t.Fatalf("openssl got %q, want 421", out.String())
		}
	})

	t.Run("SNI still binds: SNI other.test, Host other.test is served", func(t *testing.T) {
		got := curl(t, "-k", "--resolve", fmt.Sprintf("other.test:%d:127.0.0.1", tlsPort), "-w", " %{http_code}", "-o", "-",
			fmt.Sprintf("https://other.test:%d/", tlsPort))
		if !matchStatus(got, fmt.Sprintf("200 served other.test:%d", tlsPort)) {
			t.Fatalf("curl answered %q", got)
		}
	})
}

// matchStatus checks curl's output (body, then " <status>") against want:
// "421", or "200 <body>".
func matchStatus(got, want string) bool {
	i := strings.LastIndexByte(got, ' ')
	if i < 0 {
		return false
	}
	body, code := got[:i], got[i+1:]
	wantCode, wantBody, _ := strings.Cut(want, " ")
	if code != wantCode {
		return false
	}
	return wantBody == "" || body == wantBody
}
