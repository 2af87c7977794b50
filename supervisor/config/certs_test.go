package config

import (
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"google.golang.org/protobuf/encoding/prototext"
)

// TestCertificateFileWithKey: a certificate file that also holds its key
// (HAProxy's convention), named as a listener's or a frontend's
// certificate (and chain), gives certificate fields with CERTIFICATE
// blocks only; the key reaches only the key fields. A block of another
// type is refused, naming it, its position and the file.
func TestCertificateFileWithKey(t *testing.T) {
	cert, err := os.ReadFile("testdata/tls/cert.pem")
	if err != nil {
		t.Fatal(err)
	}
	key, err := os.ReadFile("testdata/tls/key.pem")
	if err != nil {
		t.Fatal(err)
	}
	chain, err := os.ReadFile("testdata/tls/chain.pem")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	write := func(name string, parts ...[]byte) string {
		path := filepath.Join(dir, name)
		var b []byte
		for _, p := range parts {
			b = append(b, p...)
		}
		if err := os.WriteFile(path, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	combined := write("combined.pem", cert, key)
	chainWithKey := write("chain-key.pem", key, chain)
	crl := write("crl.pem", cert, pem.EncodeToMemory(&pem.Block{Type: "X509 CRL", Bytes: []byte{1}}))

	t.Run("accepted, key dropped", func(t *testing.T) {
		toml := fmt.Sprintf(`
[[listeners]]
protocol = "https"
address = "0.0.0.0:8443"
certificate = %[1]q
certificate_chain = %[2]q
key = %[1]q

[clusters.shop]
protocol = "http"
frontends = [{ address = "0.0.0.0:8443", hostname = "shop.example.com", certificate = %[1]q, certificate_chain = %[2]q, key = %[1]q }]
`, combined, chainWithKey)
		c, err := Parse([]byte(toml), "t.toml")
		if err != nil {
			t.Fatal(err)
		}
		var certs, keys int
		for _, wr := range c.Requests() {
			r := wr.GetContent()
			var certTexts []string
			if l := r.GetAddHttpsListener(); l != nil {
				certTexts = append([]string{l.GetCertificate()}, l.GetCertificateChain()...)
				if strings.Contains(l.GetKey(), "PRIVATE KEY") {
					keys++
				}
			}
			if a := r.GetAddCertificate(); a != nil {
				certTexts = append([]string{a.GetCertificate().GetCertificate()}, a.GetCertificate().GetCertificateChain()...)
				if strings.Contains(a.GetCertificate().GetKey(), "PRIVATE KEY") {
					keys++
				}
			}
			for _, text := range certTexts {
				if strings.Contains(text, "PRIVATE KEY") {
					t.Errorf("a certificate field holds the key: %s", prototext.Format(r))
				}
				if strings.Contains(text, "CERTIFICATE") {
					certs++
				}
			}
		}
		if certs != 4 || keys != 2 {
			t.Errorf("%d certificate texts and %d keys, want 4 and 2", certs, keys)
		}
	})

	t.Run("other block type refused", func(t *testing.T) {
		toml := fmt.Sprintf(`
[[listeners]]
protocol = "https"
address = "0.0.0.0:8443"
certificate = %[1]q
key = %[2]q
`, crl, combined)
		_, err := Parse([]byte(toml), "t.toml")
		want := fmt.Sprintf(`listeners[0].certificate: %s: PEM block 2 is "X509 CRL": only CERTIFICATE blocks are accepted here`, crl)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v, want %q", err, want)
		}
	})
}
