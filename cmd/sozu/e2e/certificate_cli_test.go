package e2e

import (
	"bytes"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sozu-go/sozu/cmd/sozu/sozutest"
)

// TestCertificateCLI drives `sozu certificate add|list|replace|remove`
// against a running proxy with one HTTPS listener (two workers, no default
// certificate) and checks, by TLS handshakes, which certificate is served.
func TestCertificateCLI(t *testing.T) {
	dir := t.TempDir()
	ca := newTestCA(t)
	pool := x509.NewCertPool()
	pool.AddCert(ca.cert)
	httpsPort := sozutest.FreePort(t)
	listener := fmt.Sprintf("127.0.0.1:%d", httpsPort)
	cfgPath, sock, _ := sozutest.WriteConfig(t, dir, 2, fmt.Sprintf(`activate_listeners = true

[[listeners]]
protocol = "https"
address = %q
`, listener))
	p := sozutest.Start(t, dir, cfgPath, sock)

	// write stores the concatenation of PEM blobs under dir and returns
	// its path.
	write := func(name string, content ...[]byte) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, bytes.Join(content, nil), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	type pair struct {
		cert, key string // paths
		fp        string
		notAfter  time.Time
	}
	issue := func(base string, mutate func(*x509.Certificate), names ...string) pair {
		c, k := ca.issuePEM(t, mutate, nil, names...)
		block, _ := pem.Decode(c)
		leaf, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		return pair{cert: write(base+".pem", c), key: write(base+".key", k), fp: fingerprint(c), notAfter: leaf.NotAfter}
	}
	// served handshakes with SNI name and returns the fingerprint of the
	// leaf the proxy presented and the length of the chain it sent.
	served := func(name string) (string, int, error) {
		d := &net.Dialer{Timeout: 5 * time.Second}
		c, err := tls.DialWithDialer(d, "tcp", listener, &tls.Config{RootCAs: pool, ServerName: name})
		if err != nil {
			return "", 0, err
		}
		defer c.Close()
		certs := c.ConnectionState().PeerCertificates
		sum := sha256.Sum256(certs[0].Raw)
		return hex.EncodeToString(sum[:]), len(certs), nil
	}
	// mustServe checks several handshakes (so that both workers answer).
	mustServe := func(t *testing.T, name, fp string, chainLen int) {
		t.Helper()
		for range 8 {
			got, n, err := served(name)
			if err != nil || got != fp || n != chainLen {
				t.Fatalf("%s: served %s (chain of %d), %v; want %s (chain of %d)", name, got, n, err, fp, chainLen)
			}
		}
	}
	mustRefuse := func(t *testing.T, name string) {
		t.Helper()
		for range 8 {
			if got, _, err := served(name); err == nil {
				t.Fatalf("%s: a handshake succeeded with %s", name, got)
			}
		}
	}
	// listJSON runs `sozu -j certificate list ARGS` and decodes it.
	listJSON := func(t *testing.T, args ...string) map[string]any {
		t.Helper()
		out := p.MustCLI(append([]string{"-j", "certificate", "list"}, args...)...)
		if strings.Contains(out, "PRIVATE KEY") {
			t.Fatalf("a private key was printed:\n%s", out)
		}
		var doc map[string]any
		if err := json.Unmarshal([]byte(out), &doc); err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
		return doc
	}
	stateCerts := func(doc map[string]any) map[string]any {
		c, _ := doc["content"].(map[string]any)
		s, _ := c["certificates_with_fingerprints"].(map[string]any)
		certs, _ := s["certs"].(map[string]any)
		return certs
	}

	// The workers are up and their listener has no certificate yet.
	if out := p.MustCLI("certificate", "list", "--workers"); !strings.Contains(out, listener+"  (no certificate)") ||
		!strings.Contains(out, "== worker 0, worker 1 ==") {
		t.Fatalf("certificate list --workers before any certificate:\n%s", out)
	}
	mustRefuse(t, "a.test")

	a1 := issue("a1", nil, "a.test")
	b1 := issue("b1", nil, "b.test")

	t.Run("add", func(t *testing.T) {
		p.MustCLI("certificate", "add", "--address", listener, "--certificate", a1.cert, "--key", a1.key)
		p.MustCLI("certificate", "add", "-a", listener, "--certificate", b1.cert, "--certificate-chain", write("ca.pem", ca.pem),
			"--key", b1.key, "--tls-versions", "TLSv1.2,TLSv1.3")
		mustServe(t, "a.test", a1.fp, 1)
		mustServe(t, "b.test", b1.fp, 2)
	})

	t.Run("list from the state, text and JSON", func(t *testing.T) {
		out := p.MustCLI("certificate", "list")
		for _, c := range []pair{a1, b1} {
			row := ""
			for _, line := range strings.Split(out, "\n") {
				if strings.HasPrefix(line, c.fp+" ") {
					row = line
				}
			}
			if !strings.Contains(row, c.notAfter.UTC().Format(time.DateTime+" UTC")) {
				t.Errorf("no row with %s and its expiry:\n%s", c.fp, out)
			}
		}
		if !strings.Contains(out, "a.test") || !strings.Contains(out, "2 certificates") {
			t.Errorf("certificate list:\n%s", out)
		}
		certs := stateCerts(listJSON(t))
		a, _ := certs[a1.fp].(map[string]any)
		if len(certs) != 2 || a == nil || fmt.Sprint(a["names"]) != "[a.test]" || (a["key"] != "" && a["key"] != "<redacted>") { // the supervisor sends no key; the CLI would redact one
			t.Errorf("-j certificate list: %v", certs)
		}
		if certs := stateCerts(listJSON(t, "--domain", "b.test")); len(certs) != 1 || certs[b1.fp] == nil {
			t.Errorf("--domain b.test: %v", certs)
		}
		if certs := stateCerts(listJSON(t, "--fingerprint", strings.ToUpper(a1.fp))); len(certs) != 1 || certs[a1.fp] == nil {
			t.Errorf("--fingerprint: %v", certs)
		}
		if out := p.MustCLI("certificate", "list", "--domain", "c.test"); out != "no certificates\n" {
			t.Errorf("--domain c.test: %q", out)
		}
	})

	t.Run("list from the workers, text and JSON", func(t *testing.T) {
		out := p.MustCLI("certificate", "list", "--workers")
		if !strings.Contains(out, "== worker 0, worker 1 ==") || !strings.Contains(out, listener+"  a.test  "+a1.fp) ||
			!strings.Contains(out, listener+"  b.test  "+b1.fp) {
			t.Errorf("certificate list --workers:\n%s", out)
		}
		doc := listJSON(t, "-w", "-d", "a.test")
		c, _ := doc["content"].(map[string]any)
		wr, _ := c["worker_responses"].(map[string]any)
		m, _ := wr["map"].(map[string]any)
		if len(m) != 2 {
			t.Fatalf("worker_responses: %v", doc)
		}
		for id, content := range m {
			js, _ := json.Marshal(content)
			if !strings.Contains(string(js), `"fingerprint":"`+a1.fp+`"`) || strings.Contains(string(js), b1.fp) {
				t.Errorf("worker %s: %s", id, js)
			}
		}
	})

	a2 := issue("a2", nil, "a.test")
	a2PEM, err := os.ReadFile(a2.cert)
	if err != nil {
		t.Fatal(err)
	}
	a2full := write("a2-full.pem", a2PEM, ca.pem)
	t.Run("replace by old certificate file", func(t *testing.T) {
		p.MustCLI("certificate", "replace", "--address", listener, "--new-certificate", a2full, "--new-key", a2.key,
			"--old-certificate", a1.cert)
		mustServe(t, "a.test", a2.fp, 2) // the CA from the fullchain file went to the chain
		if certs := stateCerts(listJSON(t)); len(certs) != 2 || certs[a2.fp] == nil || certs[a1.fp] != nil {
			t.Errorf("after replace: %v", certs)
		}
	})

	a3 := issue("a3", nil, "a.test")
	t.Run("replace by fingerprint", func(t *testing.T) {
		p.MustCLI("certificate", "replace", "-a", listener, "--new-certificate", a3.cert, "--new-key", a3.key,
			"--fingerprint", a2.fp)
		mustServe(t, "a.test", a3.fp, 1)
		if certs := stateCerts(listJSON(t)); len(certs) != 2 || certs[a3.fp] == nil || certs[a2.fp] != nil {
			t.Errorf("after replace: %v", certs)
		}
	})

	t.Run("an expired certificate is refused by the supervisor", func(t *testing.T) {
		exp := issue("expired", func(c *x509.Certificate) {
			c.NotBefore, c.NotAfter = time.Now().Add(-48*time.Hour), time.Now().Add(-24*time.Hour)
		}, "a.test")
		out, errOut, code := p.CLI("certificate", "add", "--address", listener, "--certificate", exp.cert, "--key", exp.key)
		want := "could not dispatch request on the main process state: Could not add certificate: invalid certificate: certificate " + exp.fp + " refused: expired on "
		if code != 1 || out != "" || !strings.Contains(errOut, "error: "+want) {
			t.Errorf("exit %d\nstdout: %s\nstderr: %s\nwant stderr with %q", code, out, errOut, want)
		}
		out, errOut, code = p.CLI("-j", "certificate", "replace", "--address", listener, "--new-certificate", exp.cert,
			"--new-key", exp.key, "--old-certificate", a3.cert)
		var doc struct{ Status, Message string }
		if err := json.Unmarshal([]byte(out), &doc); err != nil || code != 1 || doc.Status != "FAILURE" || !strings.Contains(doc.Message, "expired on") {
			t.Errorf("-j replace with an expired certificate: exit %d, %v\nstdout: %s\nstderr: %s", code, err, out, errOut)
		}
		if strings.Contains(out+errOut, "PRIVATE KEY") {
			t.Error("a private key was printed")
		}
		mustServe(t, "a.test", a3.fp, 1)
		if certs := stateCerts(listJSON(t)); len(certs) != 2 || certs[exp.fp] != nil {
			t.Errorf("the state took the expired certificate: %v", certs)
		}
	})

	t.Run("usage errors", func(t *testing.T) {
		_, errOut, code := p.CLI("certificate", "remove", "--address", listener)
		if code != 2 || !strings.Contains(errOut, "missing --certificate FILE or --fingerprint HEX") {
			t.Errorf("remove without certificate: exit %d: %s", code, errOut)
		}
		missing := filepath.Join(dir, "nope", "k.pem")
		_, errOut, code = p.CLI("certificate", "add", "--address", listener, "--certificate", a3.cert, "--key", missing)
		if code != 2 || errOut != "sozu certificate add: --key "+missing+": open: no such file or directory\n" {
			t.Errorf("missing key file: exit %d: %q", code, errOut)
		}
		_, errOut, code = p.CLI("certificate", "add", "--address", listener, "--certificate", a3.key, "--key", a3.key)
		if code != 2 || !strings.Contains(errOut, "--certificate "+a3.key+": no PEM CERTIFICATE block") || strings.Contains(errOut, "PRIVATE") {
			t.Errorf("key given as certificate: exit %d: %q", code, errOut)
		}
	})

	t.Run("remove by fingerprint and by certificate file", func(t *testing.T) {
		p.MustCLI("certificate", "remove", "--address", listener, "--fingerprint", b1.fp)
		mustRefuse(t, "b.test")
		mustServe(t, "a.test", a3.fp, 1)
		p.MustCLI("certificate", "remove", "-a", listener, "--certificate", a3.cert)
		mustRefuse(t, "a.test")
		if out := p.MustCLI("certificate", "list"); out != "no certificates\n" {
			t.Errorf("certificate list after removals: %q", out)
		}
		if out := p.MustCLI("certificate", "list", "-w"); !strings.Contains(out, listener+"  (no certificate)") {
			t.Errorf("certificate list -w after removals:\n%s", out)
		}
	})
}
