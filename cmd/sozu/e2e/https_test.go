package e2e

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"math/big"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/sozu-go/sozu/cmd/sozu/sozutest"
	"github.com/sozu-go/sozu/proto/command"
)

// testCA signs server certificates for the HTTPS e2e tests.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pem  []byte
}

func newTestCA(t *testing.T) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "sozu e2e CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return &testCA{cert: cert, key: key, pem: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
}

// issuePEM returns a certificate for names signed by ca, and its key, in
// PEM; mutate (maybe nil) edits the template, key (nil: a new P-256 key)
// is the certificate's key.
func (ca *testCA) issuePEM(t *testing.T, mutate func(*x509.Certificate), key crypto.Signer, names ...string) (certPEM, keyPEM []byte) {
	t.Helper()
	if key == nil {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		key = k
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: names[0]},
		DNSNames: names, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	if mutate != nil {
		mutate(tmpl)
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, key.Public(), ca.key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder})
}

// issue writes a certificate for names and its key under dir, and returns
// their paths.
func (ca *testCA) issue(t *testing.T, dir, base string, names ...string) (certPath, keyPath string) {
	t.Helper()
	c, k := ca.issuePEM(t, nil, nil, names...)
	certPath, keyPath = filepath.Join(dir, base+".pem"), filepath.Join(dir, base+".key")
	if err := os.WriteFile(certPath, c, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyPath, k, 0o600); err != nil {
		t.Fatal(err)
	}
	return certPath, keyPath
}

// fingerprint is the lowercase hex SHA-256 of the first certificate in p.
func fingerprint(p []byte) string {
	b, _ := pem.Decode(p)
	sum := sha256.Sum256(b.Bytes)
	return hex.EncodeToString(sum[:])
}

// TestHTTPS runs sozu with two HTTPS listeners: sni (no default
// certificate; a.test and b.test routed by SNI to two clusters) and
// withDefault (a default certificate, one frontend without its own).
func TestHTTPS(t *testing.T) {
	dir := t.TempDir()
	ca := newTestCA(t)
	caPath := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(caPath, ca.pem, 0o600); err != nil {
		t.Fatal(err)
	}
	aCert, aKey := ca.issue(t, dir, "a", "a.test")
	bCert, bKey := ca.issue(t, dir, "b", "b.test")
	dCert, dKey := ca.issue(t, dir, "default", "default.test")
	origin := func(name string) *httpOrigin {
		return startHTTPOrigin(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprintf(w, "%s %s %s", name, r.Header.Get("X-Forwarded-Proto"), r.Host)
		}))
	}
	oa, ob, od := origin("A"), origin("B"), origin("D")
	sniPort, defPort := sozutest.FreePort(t), sozutest.FreePort(t)
	sni, withDefault := fmt.Sprintf("127.0.0.1:%d", sniPort), fmt.Sprintf("127.0.0.1:%d", defPort)
	sock := filepath.Join(dir, "sozu.sock")
	cfg := fmt.Sprintf(`command_socket = %q
worker_count = 2
worker_timeout = 10
activate_listeners = true

[[listeners]]
protocol = "https"
address = %[2]q

[[listeners]]
protocol = "https"
address = %[3]q
certificate = %[4]q
key = %[5]q

[clusters.a]
protocol = "http"
frontends = [ { address = %[2]q, hostname = "a.test", certificate = %[6]q, key = %[7]q } ]
backends = [ { address = %[10]q } ]

[clusters.b]
protocol = "http"
frontends = [ { address = %[2]q, hostname = "b.test", certificate = %[8]q, key = %[9]q } ]
backends = [ { address = %[11]q } ]

[clusters.d]
protocol = "http"
frontends = [ { address = %[3]q, hostname = "default.test" } ]
backends = [ { address = %[12]q } ]
`, sock, sni, withDefault, dCert, dKey, aCert, aKey, bCert, bKey, oa.addr, ob.addr, od.addr)
	cfgPath := filepath.Join(dir, "config.toml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	sozutest.Start(t, dir, cfgPath, sock)
	client := sozutest.Dial(t, sock)

	url := func(host string, port int) []string {
		return []string{"--cacert", caPath, "--resolve", fmt.Sprintf("%s:%d:127.0.0.1", host, port),
			fmt.Sprintf("https://%s:%d/", host, port)}
	}
	try := func(args ...string) (string, error) {
		cmd := exec.Command("/usr/bin/curl", append([]string{"-sS", "--max-time", "5"}, args...)...)
		var out, errOut bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errOut
		err := sozutest.RunWithTimeout(cmd, 10*time.Second)
		if err != nil {
			return errOut.String(), err
		}
		return out.String(), nil
	}
	sozutest.WaitFor(t, 20*time.Second, "the HTTPS listener serves a.test", func() bool {
		_, err := try(url("a.test", sniPort)...)
		return err == nil
	})

	t.Run("SNI routes two hostnames to two clusters", func(t *testing.T) {
		if got := curl(t, url("a.test", sniPort)...); got != fmt.Sprintf("A https a.test:%d", sniPort) {
			t.Fatalf("a.test: %q", got)
		}
		if got := curl(t, url("b.test", sniPort)...); got != fmt.Sprintf("B https b.test:%d", sniPort) {
			t.Fatalf("b.test: %q", got)
		}
	})

	t.Run("private keys never leave the supervisor", func(t *testing.T) {
		_, resp := client.Do(t, &command.Request{RequestType: &command.Request_QueryCertificatesFromTheState{
			QueryCertificatesFromTheState: &command.QueryCertificatesFilters{}}})
		certs := resp.GetContent().GetCertificatesWithFingerprints().GetCerts()
		if resp.GetStatus() != command.ResponseStatus_OK || len(certs) < 2 {
			t.Fatalf("query certificates: %v %q, %d certificates", resp.GetStatus(), resp.GetMessage(), len(certs))
		}
		for fp, ck := range certs {
			if ck.Key == nil || ck.GetKey() != "" || !strings.Contains(ck.GetCertificate(), "BEGIN CERTIFICATE") {
				t.Errorf("certificate %s: key %q, certificate %.40q", fp, ck.GetKey(), ck.GetCertificate())
			}
		}
		_, resp = client.Do(t, &command.Request{RequestType: &command.Request_ListListeners{ListListeners: &command.ListListeners{}}})
		hl := resp.GetContent().GetListenersList().GetHttpsListeners()[withDefault]
		if hl == nil || hl.GetKey() != "" || !strings.Contains(hl.GetCertificate(), "BEGIN CERTIFICATE") {
			t.Fatalf("listener %s in list_listeners: %v", withDefault, hl)
		}
		if raw, _ := proto.Marshal(resp); bytes.Contains(raw, []byte("PRIVATE KEY")) {
			t.Fatal("a private key is in the list_listeners answer")
		}
	})

	t.Run("unknown SNI without default certificate fails the handshake", func(t *testing.T) {
		if out, err := try(append([]string{"-k"}, url("c.test", sniPort)...)...); err == nil {
			t.Fatalf("handshake succeeded: %q", out)
		}
		// Without SNI at all (an IP address sends none).
		if out, err := try("-k", fmt.Sprintf("https://127.0.0.1:%d/", sniPort)); err == nil {
			t.Fatalf("handshake without SNI succeeded: %q", out)
		}
	})

	t.Run("default certificate answers without SNI", func(t *testing.T) {
		if got := curl(t, url("default.test", defPort)...); got != fmt.Sprintf("D https default.test:%d", defPort) {
			t.Fatalf("default.test: %q", got)
		}
		// No SNI (an IP address): the default certificate, and strict SNI
		// binding to its names: Host 127.0.0.1 is not one of them (421),
		// default.test is.
		if got, err := try("-k", "-o", "/dev/null", "-w", "%{http_code}", fmt.Sprintf("https://127.0.0.1:%d/", defPort)); err != nil || got != "421" {
			t.Fatalf("no SNI: %q, %v", got, err)
		}
		if got, err := try("-k", "-H", "Host: default.test", fmt.Sprintf("https://127.0.0.1:%d/", defPort)); err != nil || got != "D https default.test" {
			t.Fatalf("no SNI, Host default.test: %q, %v", got, err)
		}
		// An unknown name gets the default certificate, which curl then
		// rejects for its name: the handshake itself went through.
		out, err := try(url("other.test", defPort)...)
		if err == nil || !strings.Contains(out, "certificate") {
			t.Fatalf("other.test: %q, %v", out, err)
		}
	})

	sClient := func(version string) (string, error) {
		cmd := exec.Command("/usr/bin/openssl", "s_client", "-connect", sni, "-servername", "a.test",
			version, "-cipher", "DEFAULT@SECLEVEL=0")
		cmd.Stdin = strings.NewReader("")
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		err := sozutest.RunWithTimeout(cmd, 10*time.Second)
		return out.String(), err
	}

	t.Run("TLS 1.1 is refused, TLS 1.2 and 1.3 accepted", func(t *testing.T) {
		if out, err := sClient("-tls1_1"); err == nil {
			t.Fatalf("openssl s_client -tls1_1 succeeded:\n%s", out)
		}
		for _, v := range []string{"-tls1_2", "-tls1_3"} {
			if out, err := sClient(v); err != nil {
				t.Fatalf("openssl s_client %s: %v\n%s", v, err, out)
			}
		}
	})

	sniAddr := command.NewSocketAddress(netip.MustParseAddrPort(sni))
	t.Run("only ECDHE+AEAD suites are offered over TLS 1.2", func(t *testing.T) {
		cmd := exec.Command("/usr/bin/openssl", "ciphers", "-v", "ALL:COMPLEMENTOFALL:@SECLEVEL=0")
		list, err := cmd.Output()
		if err != nil {
			t.Fatalf("openssl ciphers: %v", err)
		}
		var accepted []string
		for _, line := range strings.Split(strings.TrimSpace(string(list)), "\n") {
			f := strings.Fields(line)
			if len(f) < 6 || f[1] == "TLSv1.3" {
				continue
			}
			name := f[0]
			c := exec.Command("/usr/bin/openssl", "s_client", "-connect", sni, "-servername", "a.test",
				"-tls1_2", "-cipher", name+":@SECLEVEL=0")
			c.Stdin = strings.NewReader("")
			if sozutest.RunWithTimeout(c, 10*time.Second) != nil {
				continue
			}
			accepted = append(accepted, name)
			if !strings.HasPrefix(f[2], "Kx=ECDH") || f[5] != "Mac=AEAD" {
				t.Errorf("suite %s accepted: %s", name, line)
			}
		}
		if len(accepted) == 0 {
			t.Fatal("no TLS 1.2 suite accepted")
		}
		t.Logf("TLS 1.2 suites accepted: %v", accepted)
	})

	t.Run("invalid certificates are refused, naming the problem", func(t *testing.T) {
		rsa1024, err := rsa.GenerateKey(rand.Reader, 1024)
		if err != nil {
			t.Fatal(err)
		}
		expC, expK := ca.issuePEM(t, func(c *x509.Certificate) {
			c.NotBefore, c.NotAfter = time.Now().Add(-48*time.Hour), time.Now().Add(-24*time.Hour)
		}, nil, "bad.test")
		futC, futK := ca.issuePEM(t, func(c *x509.Certificate) {
			c.NotBefore, c.NotAfter = time.Now().Add(24*time.Hour), time.Now().Add(48*time.Hour)
		}, nil, "bad.test")
		weakC, weakK := ca.issuePEM(t, nil, rsa1024, "bad.test")
		okC, _ := ca.issuePEM(t, nil, nil, "bad.test")
		_, otherK := ca.issuePEM(t, nil, nil, "bad.test")
		for _, tc := range []struct {
			name      string
			cert, key []byte
			wantInMsg string
		}{
			{"expired", expC, expK, "expired"},
			{"not yet valid", futC, futK, "not yet valid"},
			{"RSA-1024", weakC, weakK, "RSA key of 1024 bits is too weak"},
			{"mismatched key", okC, otherK, "private key does not match"},
		} {
			_, resp := client.Do(t, &command.Request{RequestType: &command.Request_AddCertificate{AddCertificate: &command.AddCertificate{
				Address: sniAddr, Certificate: &command.CertificateAndKey{Certificate: proto.String(string(tc.cert)), Key: proto.String(string(tc.key))}}}})
			msg := resp.GetMessage()
			if resp.GetStatus() != command.ResponseStatus_FAILURE || !strings.Contains(msg, tc.wantInMsg) || !strings.Contains(msg, fingerprint(tc.cert)) {
				t.Errorf("%s: %v %q; want a failure naming %q and the fingerprint", tc.name, resp.GetStatus(), msg, tc.wantInMsg)
			}
			if strings.Contains(msg, "PRIVATE KEY") {
				t.Errorf("%s: the key is in the answer", tc.name)
			}
		}
	})

	t.Run("replace_certificate while requests run", func(t *testing.T) {
		pool := x509.NewCertPool()
		pool.AddCert(ca.cert)
		served := func() (string, error) {
			c, err := tls.Dial("tcp", sni, &tls.Config{RootCAs: pool, ServerName: "a.test"})
			if err != nil {
				return "", err
			}
			defer c.Close()
			sum := sha256.Sum256(c.ConnectionState().PeerCertificates[0].Raw)
			return hex.EncodeToString(sum[:]), nil
		}
		oldPEM, err := os.ReadFile(aCert)
		if err != nil {
			t.Fatal(err)
		}
		if fp, err := served(); err != nil || fp != fingerprint(oldPEM) {
			t.Fatalf("before: %s, %v", fp, err)
		}
		var stop atomic.Bool
		var fails, oks atomic.Int64
		var wg sync.WaitGroup
		for range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for !stop.Load() {
					if _, err := served(); err != nil {
						fails.Add(1)
					} else {
						oks.Add(1)
					}
				}
			}()
		}
		newC, newK := ca.issuePEM(t, nil, nil, "a.test")
		// Handshakes before, during and after the replacement: wait for the
		// clients to have done some on each side rather than for a time.
		sozutest.WaitFor(t, 20*time.Second, "handshakes before the replacement", func() bool { return oks.Load() >= 20 })
		client.MustOK(t, &command.Request{RequestType: &command.Request_ReplaceCertificate{ReplaceCertificate: &command.ReplaceCertificate{
			Address: sniAddr, OldFingerprint: proto.String(fingerprint(oldPEM)),
			NewCertificate: &command.CertificateAndKey{Certificate: proto.String(string(newC)), Key: proto.String(string(newK))}}}})
		after := oks.Load()
		sozutest.WaitFor(t, 20*time.Second, "handshakes after the replacement", func() bool { return oks.Load() >= after+20 })
		stop.Store(true)
		wg.Wait()
		if fails.Load() != 0 || oks.Load() == 0 {
			t.Fatalf("%d failed handshakes, %d good ones", fails.Load(), oks.Load())
		}
		for range 8 { // every worker
			if fp, err := served(); err != nil || fp != fingerprint(newC) {
				t.Fatalf("after: %s, %v; want %s", fp, err, fingerprint(newC))
			}
		}
		if got := curl(t, url("a.test", sniPort)...); !strings.HasPrefix(got, "A https") {
			t.Fatalf("a.test after the replacement: %q", got)
		}
	})
}
