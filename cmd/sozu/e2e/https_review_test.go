package e2e

import (
	"bytes"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/sozu-go/sozu/cmd/sozu/sozutest"
	"github.com/sozu-go/sozu/proto/command"
)

// TestHTTPSReview checks the certificate verbs against upstream's
// semantics on a running proxy (two workers): l1 has no default
// certificate, l2 has one (default.test). Which certificate a name gets is
// read from TLS handshakes (Go's client, openssl s_client, curl).
func TestHTTPSReview(t *testing.T) {
	dir := t.TempDir()
	ca := newTestCA(t)
	caPath := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(caPath, ca.pem, 0o600); err != nil {
		t.Fatal(err)
	}
	dCert, dKey := ca.issue(t, dir, "default", "default.test")
	p1, p2 := sozutest.FreePort(t), sozutest.FreePort(t)
	l1, l2 := fmt.Sprintf("127.0.0.1:%d", p1), fmt.Sprintf("127.0.0.1:%d", p2)
	nowhere := fmt.Sprintf("127.0.0.1:%d", sozutest.FreePort(t))
	unused := fmt.Sprintf("127.0.0.1:%d", sozutest.FreePort(t)) // never given a certificate
	cfgPath, sock, _ := sozutest.WriteConfig(t, dir, 2, fmt.Sprintf(`activate_listeners = true

[[listeners]]
protocol = "https"
address = %q

[[listeners]]
protocol = "https"
address = %q
certificate = %q
key = %q
`, l1, l2, dCert, dKey))
	sozutest.Start(t, dir, cfgPath, sock)
	client := sozutest.Dial(t, sock)
	dPEM, err := os.ReadFile(dCert)
	if err != nil {
		t.Fatal(err)
	}
	fpDefault := fingerprint(dPEM)

	type cert struct{ pem, key, fp string }
	issue := func(mutate func(*x509.Certificate), names ...string) cert {
		c, k := ca.issuePEM(t, mutate, nil, names...)
		return cert{string(c), string(k), fingerprint(c)}
	}
	sa := func(addr string) *command.SocketAddress {
		return command.NewSocketAddress(netip.MustParseAddrPort(addr))
	}
	add := func(addr string, c cert, names ...string) *command.Request {
		return &command.Request{RequestType: &command.Request_AddCertificate{AddCertificate: &command.AddCertificate{
			Address: sa(addr), Certificate: &command.CertificateAndKey{Certificate: proto.String(c.pem), Key: proto.String(c.key), Names: names}}}}
	}
	replace := func(addr, old string, c cert) *command.Request {
		return &command.Request{RequestType: &command.Request_ReplaceCertificate{ReplaceCertificate: &command.ReplaceCertificate{
			Address: sa(addr), OldFingerprint: proto.String(old),
			NewCertificate: &command.CertificateAndKey{Certificate: proto.String(c.pem), Key: proto.String(c.key)}}}}
	}
	remove := func(addr, fp string) *command.Request {
		return &command.Request{RequestType: &command.Request_RemoveCertificate{RemoveCertificate: &command.RemoveCertificate{
			Address: sa(addr), Fingerprint: proto.String(fp)}}}
	}
	ok := func(t *testing.T, reqs ...*command.Request) {
		t.Helper()
		for _, r := range reqs {
			client.MustOK(t, r)
		}
	}
	// fail sends req and wants a FAILURE whose message contains every want.
	fail := func(t *testing.T, req *command.Request, want ...string) {
		t.Helper()
		_, resp := client.Do(t, req)
		if resp.GetStatus() != command.ResponseStatus_FAILURE {
			t.Fatalf("%s: %v %q, want a failure", command.VerbName(req), resp.GetStatus(), resp.GetMessage())
		}
		for _, w := range want {
			if !strings.Contains(resp.GetMessage(), w) {
				t.Errorf("%s: %q, want it to contain %q", command.VerbName(req), resp.GetMessage(), w)
			}
		}
	}
	stateCerts := func(t *testing.T, f *command.QueryCertificatesFilters) map[string]*command.CertificateAndKey {
		t.Helper()
		return client.MustOK(t, &command.Request{RequestType: &command.Request_QueryCertificatesFromTheState{
			QueryCertificatesFromTheState: f}}).GetContent().GetCertificatesWithFingerprints().GetCerts()
	}

	// served handshakes with Go's client (no SNI when sni is "") and
	// returns the fingerprint of the leaf presented.
	served := func(addr, sni string) (string, error) {
		d := &net.Dialer{Timeout: 5 * time.Second}
		c, err := tls.DialWithDialer(d, "tcp", addr, &tls.Config{InsecureSkipVerify: true, ServerName: sni})
		if err != nil {
			return "", err
		}
		defer c.Close()
		sum := sha256.Sum256(c.ConnectionState().PeerCertificates[0].Raw)
		return hex.EncodeToString(sum[:]), nil
	}
	// mustServe wants fp for sni on addr from several handshakes, so that
	// both workers answer; fp "" wants the handshake to fail.
	mustServe := func(t *testing.T, addr, sni, fp string) {
		t.Helper()
		for range 6 {
			got, err := served(addr, sni)
			if fp == "" && err == nil {
				t.Fatalf("%s %q: served %s, want a failed handshake", addr, sni, got)
			}
			if fp != "" && (err != nil || got != fp) {
				t.Fatalf("%s %q: served %s, %v; want %s", addr, sni, got, err, fp)
			}
		}
	}
	// opensslServed handshakes with openssl s_client, sending sni as is.
	opensslServed := func(t *testing.T, addr, sni string) string {
		t.Helper()
		cmd := exec.Command("/usr/bin/openssl", "s_client", "-connect", addr, "-servername", sni)
		cmd.Stdin = strings.NewReader("")
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := sozutest.RunWithTimeout(cmd, 10*time.Second); err != nil {
			t.Fatalf("openssl s_client -servername %s: %v\n%s", sni, err, out.String())
		}
		i := strings.Index(out.String(), "-----BEGIN CERTIFICATE-----")
		if i < 0 {
			t.Fatalf("openssl s_client -servername %s printed no certificate:\n%s", sni, out.String())
		}
		return fingerprint(out.Bytes()[i:])
	}

	a := issue(nil, "a.test")
	aL1 := a // a's certificate on l1, replaced below
	t.Run("add_certificate on an address without HTTPS listener: workers refuse, the state keeps it", func(t *testing.T) {
		fail(t, add(nowhere, a), "0: found no listener with address "+nowhere, "1: found no listener with address "+nowhere)
		if stateCerts(t, &command.QueryCertificatesFilters{})[a.fp] == nil {
			t.Fatal("the state did not keep the certificate (upstream's does)")
		}
		fail(t, remove(nowhere, a.fp), "found no listener with address "+nowhere)
		if len(stateCerts(t, &command.QueryCertificatesFilters{})) != 0 {
			t.Fatal("remove_certificate left the certificate in the state")
		}
	})

	t.Run("the same certificate twice, and on both listeners", func(t *testing.T) {
		ok(t, add(l1, a), add(l1, a), add(l2, a))
		mustServe(t, l1, "a.test", a.fp)
		mustServe(t, l2, "a.test", a.fp)
		if certs := stateCerts(t, &command.QueryCertificatesFilters{}); len(certs) != 1 || !slices.Equal(certs[a.fp].GetNames(), []string{"a.test"}) {
			t.Fatalf("state: %v", certs)
		}
	})

	t.Run("explicit names replace the SAN, the CN serves when there is no SAN", func(t *testing.T) {
		named := issue(nil, "san.test")
		cnOnly := issue(func(c *x509.Certificate) { c.Subject.CommonName, c.DNSNames = "cn.test", nil }, "cn.test")
		ok(t, add(l1, named, "named.test"), add(l1, cnOnly))
		mustServe(t, l1, "named.test", named.fp)
		mustServe(t, l1, "san.test", "")
		mustServe(t, l1, "cn.test", cnOnly.fp)
		// curl checks the name against the certificate, over HTTP: the
		// handshake with cn.test passes only for a certificate naming it
		// in a SAN (curl ignores the CN), so this one is refused.
		cmd := exec.Command("/usr/bin/curl", "-sS", "--max-time", "5", "--cacert", caPath,
			"--resolve", fmt.Sprintf("named.test:%d:127.0.0.1", p1), fmt.Sprintf("https://named.test:%d/", p1))
		var errOut bytes.Buffer
		cmd.Stderr = &errOut
		if err := sozutest.RunWithTimeout(cmd, 10*time.Second); err == nil || !strings.Contains(errOut.String(), "named.test") {
			t.Errorf("curl named.test (the certificate's SAN is san.test): %v %s", err, errOut.String())
		}
		ok(t, remove(l1, named.fp), remove(l1, cnOnly.fp))
	})

	t.Run("wildcard, case, IDN and IP-address names", func(t *testing.T) {
		w := issue(nil, "*.w.test")
		idn := issue(nil, "idn.test")
		ip := issue(func(c *x509.Certificate) {
			c.Subject.CommonName, c.DNSNames, c.IPAddresses = "", nil, []net.IP{net.ParseIP("127.0.0.1")}
		}, "unused")
		ok(t, add(l1, w), add(l1, idn, "bücher.test"), add(l1, ip))
		mustServe(t, l1, "x.w.test", w.fp)
		mustServe(t, l1, "w.test", "")
		mustServe(t, l1, "y.x.w.test", "")
		if got := opensslServed(t, l1, "X.W.TEST"); got != w.fp {
			t.Errorf("X.W.TEST: %s, want %s", got, w.fp)
		}
		if got := opensslServed(t, l1, "xn--bcher-kva.test"); got != idn.fp {
			t.Errorf("xn--bcher-kva.test: %s, want %s", got, idn.fp)
		}
		if names := stateCerts(t, &command.QueryCertificatesFilters{Fingerprint: proto.String(ip.fp)})[ip.fp].GetNames(); len(names) != 0 {
			t.Errorf("names of the IP-address certificate: %q", names)
		}
		// No SNI: l1 has no default, and an IP SAN is no SNI name.
		mustServe(t, l1, "", "")
		mustServe(t, l2, "", fpDefault)
		ok(t, remove(l1, idn.fp), remove(l1, ip.fp))
		mustServe(t, l1, "xn--bcher-kva.test", "")
		t.Cleanup(func() { client.MustOK(t, remove(l1, w.fp)) })
	})

	t.Run("the certificate expiring last wins; removing it falls back", func(t *testing.T) {
		short := issue(func(c *x509.Certificate) { c.NotAfter = time.Now().Add(2 * time.Hour) }, "x.test")
		long := issue(nil, "x.test") // 24 hours
		ok(t, add(l1, short), add(l1, long), add(l2, long))
		mustServe(t, l1, "x.test", long.fp)
		ok(t, remove(l1, long.fp))
		mustServe(t, l1, "x.test", short.fp)
		ok(t, remove(l1, short.fp))
		mustServe(t, l1, "x.test", "")
		mustServe(t, l2, "x.test", long.fp)
		ok(t, remove(l2, long.fp))
		mustServe(t, l2, "x.test", fpDefault)
		// expired_at ranks a certificate as upstream's resolver does.
		withExpiry := add(l1, short)
		withExpiry.GetAddCertificate().ExpiredAt = proto.Int64(time.Now().Add(240 * time.Hour).Unix())
		ok(t, withExpiry, add(l1, long))
		mustServe(t, l1, "x.test", short.fp)
		ok(t, remove(l1, short.fp), remove(l1, long.fp))
	})

	t.Run("replace_certificate", func(t *testing.T) {
		a2 := issue(nil, "a.test")
		ok(t, replace(l1, strings.ToUpper(a.fp), a2))
		mustServe(t, l1, "a.test", a2.fp)
		mustServe(t, l2, "a.test", a.fp) // the other listener keeps its copy
		fail(t, replace(unused, a.fp, a2),
			"could not dispatch request on the main process state: Did not find Certificate with address or id '"+unused+"'")
		fail(t, replace(l1, "abc", a2), "could not dispatch request on the main process state: Could not remove certificate: Odd number of digits")
		expired := issue(func(c *x509.Certificate) {
			c.NotBefore, c.NotAfter = time.Now().Add(-48*time.Hour), time.Now().Add(-time.Hour)
		}, "a.test")
		fail(t, replace(l1, a2.fp, expired), "could not dispatch request on the main process state:", expired.fp, "expired on")
		mustServe(t, l1, "a.test", a2.fp)
		// An unknown old fingerprint adds the new certificate; old == new
		// keeps it.
		b := issue(nil, "b.test")
		ok(t, replace(l1, b.fp, b), replace(l1, b.fp, b))
		mustServe(t, l1, "b.test", b.fp)
		mustServe(t, l1, "a.test", a2.fp)
		ok(t, remove(l1, b.fp))
		aL1 = a2
	})

	t.Run("remove_certificate", func(t *testing.T) {
		ok(t, remove(l1, strings.Repeat("ab", 32)))
		fail(t, remove(l1, "zz"), "could not dispatch request on the main process state: Could not remove certificate: Invalid character 'z' at position 0")
		// The listener's default certificate is no added certificate.
		ok(t, remove(l2, fpDefault))
		mustServe(t, l2, "default.test", fpDefault)
		mustServe(t, l2, "a.test", a.fp)
		mustServe(t, l1, "a.test", aL1.fp)
	})

	t.Run("query_certificates_from_workers", func(t *testing.T) {
		w := issue(nil, "*.q.test")
		ok(t, add(l2, w))
		defer ok(t, remove(l2, w.fp))
		answers := func(f *command.QueryCertificatesFilters) map[string]*command.ResponseContent {
			resp := client.MustOK(t, &command.Request{RequestType: &command.Request_QueryCertificatesFromWorkers{QueryCertificatesFromWorkers: f}})
			m := resp.GetContent().GetWorkerResponses().GetMap()
			if len(m) != 2 || m["main"] != nil {
				t.Fatalf("worker_responses: %v", m)
			}
			return m
		}
		for id, c := range answers(&command.QueryCertificatesFilters{Domain: proto.String("Z.Q.test")}) {
			var got []string
			for _, e := range c.GetCertificatesByAddress().GetCertificates() {
				for _, s := range e.GetCertificateSummaries() {
					got = append(got, e.GetAddress().Display()+" "+s.GetDomain()+" "+s.GetFingerprint())
				}
				if len(e.GetCertificateSummaries()) == 0 {
					got = append(got, e.GetAddress().Display()+" -")
				}
			}
			slices.Sort(got)
			want := []string{l1 + " -", l2 + " *.q.test " + w.fp}
			slices.Sort(want)
			if !slices.Equal(got, want) {
				t.Errorf("worker %s, domain z.q.test: %q, want %q", id, got, want)
			}
		}
		for id, c := range answers(&command.QueryCertificatesFilters{}) {
			got := map[string]string{}
			for _, e := range c.GetCertificatesByAddress().GetCertificates() {
				for _, s := range e.GetCertificateSummaries() {
					got[e.GetAddress().Display()+" "+s.GetDomain()] = s.GetFingerprint()
				}
			}
			want := map[string]string{l1 + " a.test": aL1.fp, l2 + " a.test": a.fp, l2 + " default.test": fpDefault, l2 + " *.q.test": w.fp}
			for k, fp := range want {
				if got[k] != fp {
					t.Errorf("worker %s, no filter: %s served by %q, want %s (all: %v)", id, k, got[k], fp, got)
				}
			}
		}
		for id, c := range answers(&command.QueryCertificatesFilters{Fingerprint: proto.String(strings.ToUpper(w.fp))}) {
			certs := c.GetCertificatesWithFingerprints().GetCerts()
			if len(certs) != 1 || certs[w.fp] == nil || certs[w.fp].GetKey() != "" || !slices.Equal(certs[w.fp].GetNames(), []string{"*.q.test"}) {
				t.Errorf("worker %s, fingerprint: %v", id, certs)
			}
		}
	})

	t.Run("save_state and load_state carry the certificates in upstream's format", func(t *testing.T) {
		saved := filepath.Join(dir, "saved.state")
		ok(t, &command.Request{RequestType: &command.Request_SaveState{SaveState: saved}})
		data, err := os.ReadFile(saved)
		if err != nil {
			t.Fatal(err)
		}
		var records []string
		for _, r := range strings.Split(string(data), "\n\x00") {
			if strings.Contains(r, `"ADD_CERTIFICATE"`) {
				records = append(records, r)
			}
		}
		if len(records) != 2 {
			t.Fatalf("%d ADD_CERTIFICATE records, want 2 (a on both listeners)", len(records))
		}
		for _, r := range records {
			if !strings.Contains(r, `"certificate_chain":[],"key":"-----BEGIN PRIVATE KEY-----`) ||
				!strings.Contains(r, `"versions":[],"names":["a.test"]},"expired_at":null}`) {
				t.Errorf("record: %.300s…", r)
			}
		}

		// A record as upstream writes it (names left empty, as after its
		// replace_certificate), on l1.
		up := issue(nil, "loaded.test")
		ip := netip.MustParseAddrPort(l1).Addr().As4()
		rec := fmt.Sprintf(`{"id":"SAVE-7","content":{"request_type":{"ADD_CERTIFICATE":{"address":{"ip":{"inner":{"V4":%d}},"port":%d},`+
			`"certificate":{"certificate":%s,"certificate_chain":[],"key":%s,"versions":[4,5],"names":[]},"expired_at":null}}}}`+"\n\x00",
			uint32(ip[0])<<24|uint32(ip[1])<<16|uint32(ip[2])<<8|uint32(ip[3]), p1, jsonString(up.pem), jsonString(up.key))
		upstream := filepath.Join(dir, "upstream.state")
		if err := os.WriteFile(upstream, []byte(rec), 0o600); err != nil {
			t.Fatal(err)
		}
		ok(t, &command.Request{RequestType: &command.Request_LoadState{LoadState: upstream}})
		mustServe(t, l1, "loaded.test", up.fp)
		got := stateCerts(t, &command.QueryCertificatesFilters{Domain: proto.String("loaded.test")})[up.fp]
		if got == nil || !slices.Equal(got.GetVersions(), []command.TlsVersion{command.TlsVersion_TLS_V1_2, command.TlsVersion_TLS_V1_3}) {
			t.Errorf("loaded certificate in the state: %v", got)
		}
	})
}

func jsonString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}
