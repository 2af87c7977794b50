package state

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"math/big"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/sozu-go/sozu/proto/command"
)

// makeCert returns a self-signed certificate edited by mutate, in PEM, and
// its fingerprint.
func makeCert(t testing.TB, mutate func(*x509.Certificate)) (certPEM, fingerprint string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()),
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	mutate(tmpl)
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(der)
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})), hex.EncodeToString(sum[:])
}

func withExpiry(r *command.Request, at int64) *command.Request {
	switch v := r.GetRequestType().(type) {
	case *command.Request_AddCertificate:
		v.AddCertificate.ExpiredAt = proto.Int64(at)
	case *command.Request_ReplaceCertificate:
		v.ReplaceCertificate.NewExpiredAt = proto.Int64(at)
	}
	return r
}

// namesOf returns the names stored for fingerprint fp, failing when the
// state does not hold it.
func namesOf(t *testing.T, s *ConfigState, fp string) []string {
	t.Helper()
	ck := s.Certificates(nil).GetCerts()[fp]
	if ck == nil {
		t.Fatalf("certificate %s not in the state", fp)
	}
	return ck.GetNames()
}

func wantNames(want ...string) func(t *testing.T, s *ConfigState, fp string) {
	return func(t *testing.T, s *ConfigState, fp string) {
		t.Helper()
		if got := namesOf(t, s, fp); !slices.Equal(got, want) {
			t.Errorf("names = %q, want %q", got, want)
		}
	}
}

// TestCertificateNames checks which names add_certificate stores
// (upstream: explicit names verbatim, else SAN DNS names, else the CN).
func TestCertificateNames(t *testing.T) {
	cn2 := func(c *x509.Certificate) {
		c.Subject.ExtraNames = []pkix.AttributeTypeAndValue{
			{Type: asn1.ObjectIdentifier{2, 5, 4, 3}, Value: "one.example"},
			{Type: asn1.ObjectIdentifier{2, 5, 4, 3}, Value: "two.example"}}
	}
	tests := []struct {
		name     string
		mutate   func(*x509.Certificate)
		explicit []string
		check    func(t *testing.T, s *ConfigState, fp string)
	}{
		{"SAN names, CN ignored", func(c *x509.Certificate) {
			c.Subject.CommonName, c.DNSNames = "cn.example", []string{"a.example", "*.b.example"}
		}, nil, wantNames("a.example", "*.b.example")},
		{"no SAN: the CN", func(c *x509.Certificate) { c.Subject.CommonName = "cn.example" }, nil, wantNames("cn.example")},
		{"only an IP SAN: the CN", func(c *x509.Certificate) {
			c.Subject.CommonName, c.IPAddresses = "cn.example", []net.IP{net.ParseIP("127.0.0.1")}
		}, nil, wantNames("cn.example")},
		{"only an IP SAN, no CN: no names", func(c *x509.Certificate) { c.IPAddresses = []net.IP{net.ParseIP("127.0.0.1")} },
			nil, wantNames()},
		{"every CN", cn2, nil, wantNames("one.example", "two.example")},
		{"consecutive duplicate SANs once", func(c *x509.Certificate) {
			c.DNSNames = []string{"a.example", "a.example", "b.example", "a.example"}
		}, nil, wantNames("a.example", "b.example", "a.example")},
		{"explicit names verbatim, SAN ignored", func(c *x509.Certificate) { c.DNSNames = []string{"a.example"} },
			[]string{"Named.Example.", "*.x.example"}, wantNames("Named.Example.", "*.x.example")},
		{"IDN SAN kept as the A-label it is", func(c *x509.Certificate) { c.DNSNames = []string{"xn--bcher-kva.example"} },
			nil, wantNames("xn--bcher-kva.example")},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			certPEM, fp := makeCert(t, tc.mutate)
			s := New()
			mustDispatch(t, s, addCert("127.0.0.1:443", certPEM, tc.explicit...))
			tc.check(t, s, fp)
			// The names travel in the generated record, so a state file
			// written with them loads to the same names.
			rec := s.GenerateRequests()[0].GetContent().GetAddCertificate()
			if !slices.Equal(rec.GetCertificate().GetNames(), namesOf(t, s, fp)) || rec.ExpiredAt != nil {
				t.Errorf("generated record: %v", rec)
			}
			requireRoundTrip(t, s)
		})
	}
}

func TestCertificates(t *testing.T) {
	sanPEM, sanFP := testCert(t, "ignored-cn", "a.example.com", "b.example.com")
	cnPEM, cnFP := testCert(t, "cn.example.com")
	otherPEM, otherFP := testCert(t, "other.example.com")
	count := func(n int) func(t *testing.T, s *ConfigState) {
		return func(t *testing.T, s *ConfigState) {
			t.Helper()
			if got := len(s.GenerateRequests()); got != n {
				t.Errorf("%d records, want %d", got, n)
			}
		}
	}
	holds := func(addr string, fps ...string) func(t *testing.T, s *ConfigState) {
		return func(t *testing.T, s *ConfigState) {
			t.Helper()
			var got []string
			for _, wr := range s.GenerateRequests() {
				if a := wr.GetContent().GetAddCertificate(); a != nil && a.GetAddress().Display() == addr {
					f, err := Fingerprint(a.GetCertificate().GetCertificate())
					if err != nil {
						t.Fatal(err)
					}
					got = append(got, f)
				}
			}
			slices.Sort(got)
			fps = slices.Sorted(slices.Values(fps))
			if !slices.Equal(got, fps) {
				t.Errorf("%s holds %v, want %v", addr, got, fps)
			}
		}
	}
	both := func(checks ...func(*testing.T, *ConfigState)) func(*testing.T, *ConfigState) {
		return func(t *testing.T, s *ConfigState) {
			for _, c := range checks {
				c(t, s)
			}
		}
	}
	versioned := addCert("0.0.0.0:443", sanPEM)
	versioned.GetAddCertificate().Certificate.Versions = []command.TlsVersion{command.TlsVersion_TLS_V1_2, command.TlsVersion_TLS_V1_3}
	versioned.GetAddCertificate().Certificate.CertificateChain = []string{otherPEM}

	runDispatchCases(t, []dispatchCase{
		{name: "add certificate with SAN names", req: addCert("0.0.0.0:443", sanPEM),
			check: func(t *testing.T, s *ConfigState) {
				got := s.Certificates(nil).GetCerts()[sanFP]
				if got == nil || !slices.Equal(got.GetNames(), []string{"a.example.com", "b.example.com"}) {
					t.Fatalf("certificate %s: %v", sanFP, got)
				}
				if got.GetCertificate() != sanPEM || got.GetKey() != "test key" {
					t.Error("certificate and key not kept as given")
				}
			}},
		{name: "add to an address without HTTPS listener is accepted", setup: []*command.Request{addHTTPSListener(httpsListener("0.0.0.0:443"))},
			req: addCert("10.0.0.1:8443", sanPEM), check: holds("10.0.0.1:8443", sanFP)},
		{name: "versions and chain kept", req: versioned,
			check: func(t *testing.T, s *ConfigState) {
				got := s.GenerateRequests()[0].GetContent().GetAddCertificate().GetCertificate()
				if !slices.Equal(got.GetVersions(), []command.TlsVersion{command.TlsVersion_TLS_V1_2, command.TlsVersion_TLS_V1_3}) ||
					!slices.Equal(got.GetCertificateChain(), []string{otherPEM}) {
					t.Errorf("record: %v", got)
				}
			}},
		{name: "same fingerprint same address is a no-op",
			setup: []*command.Request{addCert("0.0.0.0:443", sanPEM)},
			req:   withExpiry(addCert("0.0.0.0:443", sanPEM, "other-name"), 99),
			check: func(t *testing.T, s *ConfigState) {
				if got := namesOf(t, s, sanFP); len(got) != 2 {
					t.Errorf("no-op add changed names to %v", got)
				}
				if _, ok := s.ExpiredAt(sa("0.0.0.0:443"), sanFP); ok {
					t.Error("no-op add set expired_at")
				}
				count(1)(t, s)
			}},
		{name: "same certificate on another address", setup: []*command.Request{addCert("0.0.0.0:443", sanPEM)},
			req: addCert("0.0.0.0:8443", sanPEM), check: both(count(2), holds("0.0.0.0:443", sanFP), holds("0.0.0.0:8443", sanFP))},
		{name: "add bad PEM", req: addCert("0.0.0.0:443", "not a pem"), kind: Certificate,
			text: "Could not add certificate: Could not parse PEM certificate from bytes: no CERTIFICATE PEM block found"},
		{name: "add bad DER", req: addCert("0.0.0.0:443", "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"),
			kind: Certificate, text: "Could not add certificate: Could not parse X509 certificate from bytes: x509: malformed certificate"},
		{name: "add without address", req: &command.Request{RequestType: &command.Request_AddCertificate{AddCertificate: &command.AddCertificate{
			Certificate: &command.CertificateAndKey{Certificate: proto.String(sanPEM)}}}},
			kind: InvalidValue, text: "Invalid value for field 'address': is required"},

		{name: "remove certificate any hex case", setup: []*command.Request{addCert("0.0.0.0:443", sanPEM)},
			req: removeCert("0.0.0.0:443", strings.ToUpper(sanFP)), check: count(0)},
		{name: "remove one address leaves the other", setup: []*command.Request{addCert("0.0.0.0:443", sanPEM), addCert("0.0.0.0:8443", sanPEM)},
			req: removeCert("0.0.0.0:443", sanFP), check: both(holds("0.0.0.0:443"), holds("0.0.0.0:8443", sanFP))},
		{name: "remove unknown certificate is accepted", setup: []*command.Request{addCert("0.0.0.0:443", sanPEM)},
			req: removeCert("0.0.0.0:443", otherFP), check: holds("0.0.0.0:443", sanFP)},
		{name: "remove on unknown address is accepted", req: removeCert("0.0.0.0:443", otherFP)},
		{name: "remove the listener's default certificate changes nothing",
			setup: []*command.Request{addHTTPSListener(&command.HttpsListenerConfig{Address: sa("0.0.0.0:443"), Certificate: proto.String(cnPEM)})},
			req:   removeCert("0.0.0.0:443", cnFP),
			check: func(t *testing.T, s *ConfigState) {
				if s.HTTPSListener(sa("0.0.0.0:443")).GetCertificate() != cnPEM {
					t.Error("the listener lost its certificate")
				}
			}},
		{name: "remove bad hex", req: removeCert("0.0.0.0:443", "zz"), kind: Certificate,
			text: "Could not remove certificate: Invalid character 'z' at position 0"},
		{name: "remove bad hex later", req: removeCert("0.0.0.0:443", "ab0g"), kind: Certificate,
			text: "Could not remove certificate: Invalid character 'g' at position 3"},
		{name: "remove odd hex", req: removeCert("0.0.0.0:443", "abc"), kind: Certificate,
			text: "Could not remove certificate: Odd number of digits"},
		{name: "remove odd length is checked before characters", req: removeCert("0.0.0.0:443", "xyz"), kind: Certificate,
			text: "Could not remove certificate: Odd number of digits"},

		{name: "replace certificate", setup: []*command.Request{addCert("0.0.0.0:443", sanPEM)},
			req: replaceCert("0.0.0.0:443", sanFP, otherPEM),
			check: func(t *testing.T, s *ConfigState) {
				holds("0.0.0.0:443", otherFP)(t, s)
				if got := namesOf(t, s, otherFP); !slices.Equal(got, []string{"other.example.com"}) {
					t.Errorf("replacement names = %v", got)
				}
			}},
		{name: "replace old fingerprint in upper case", setup: []*command.Request{addCert("0.0.0.0:443", sanPEM)},
			req: replaceCert("0.0.0.0:443", strings.ToUpper(sanFP), otherPEM), check: holds("0.0.0.0:443", otherFP)},
		{name: "replace on one address leaves the other", setup: []*command.Request{addCert("0.0.0.0:443", sanPEM), addCert("0.0.0.0:8443", sanPEM)},
			req: replaceCert("0.0.0.0:443", sanFP, otherPEM), check: both(holds("0.0.0.0:443", otherFP), holds("0.0.0.0:8443", sanFP))},
		{name: "replace unknown old fingerprint adds", setup: []*command.Request{addCert("0.0.0.0:443", sanPEM)},
			req: replaceCert("0.0.0.0:443", cnFP, otherPEM), check: holds("0.0.0.0:443", sanFP, otherFP)},
		{name: "replace with itself keeps it", setup: []*command.Request{addCert("0.0.0.0:443", sanPEM)},
			req: replaceCert("0.0.0.0:443", sanFP, sanPEM), check: holds("0.0.0.0:443", sanFP)},
		{name: "replace on unknown address", setup: []*command.Request{addCert("0.0.0.0:443", sanPEM)},
			req: replaceCert("0.0.0.0:8443", sanFP, otherPEM), kind: NotFound,
			text: "Did not find Certificate with address or id '0.0.0.0:8443'"},
		{name: "replace on an address emptied by removals adds", setup: []*command.Request{addCert("0.0.0.0:443", sanPEM), removeCert("0.0.0.0:443", sanFP)},
			req: replaceCert("0.0.0.0:443", sanFP, otherPEM), check: holds("0.0.0.0:443", otherFP)},
		{name: "replace with bad PEM", setup: []*command.Request{addCert("0.0.0.0:443", sanPEM)},
			req: replaceCert("0.0.0.0:443", sanFP, "junk"), kind: Certificate,
			text: "Could not replace certificate: Could not parse PEM certificate from bytes: no CERTIFICATE PEM block found"},
		{name: "replace bad old fingerprint: upstream's remove wording", setup: []*command.Request{addCert("0.0.0.0:443", sanPEM)},
			req: replaceCert("0.0.0.0:443", "abc", otherPEM), kind: Certificate,
			text: "Could not remove certificate: Odd number of digits"},
		{name: "replace bad old fingerprint before unknown address", req: replaceCert("0.0.0.0:443", "zz", otherPEM), kind: Certificate,
			text: "Could not remove certificate: Invalid character 'z' at position 0"},
	})
}

// TestCertificateExpiredAt checks that expired_at and new_expired_at are
// kept for the worker (ExpiredAt) but never generated (state files write
// null), and leave with their certificate.
func TestCertificateExpiredAt(t *testing.T) {
	aPEM, aFP := testCert(t, "a", "a.example")
	bPEM, bFP := testCert(t, "b", "b.example")
	addr := sa("0.0.0.0:443")
	expiry := func(s *ConfigState, fp string) int64 {
		if at, ok := s.ExpiredAt(addr, fp); ok {
			return at.Unix()
		}
		return -1
	}
	s := New()
	mustDispatch(t, s, withExpiry(addCert("0.0.0.0:443", aPEM), 4102444800), addCert("0.0.0.0:8443", aPEM))
	if got := expiry(s, strings.ToUpper(aFP)); got != 4102444800 {
		t.Errorf("expired_at of a = %d", got)
	}
	if _, ok := s.ExpiredAt(sa("0.0.0.0:8443"), aFP); ok {
		t.Error("expired_at leaked to another address")
	}
	for _, wr := range s.GenerateRequests() {
		if wr.GetContent().GetAddCertificate().ExpiredAt != nil {
			t.Errorf("%s carries expired_at", wr.GetId())
		}
	}
	c := s.Clone()
	mustDispatch(t, s, withExpiry(replaceCert("0.0.0.0:443", aFP, bPEM), 42))
	if expiry(s, aFP) != -1 || expiry(s, bFP) != 42 {
		t.Errorf("after replace: a %d, b %d", expiry(s, aFP), expiry(s, bFP))
	}
	if expiry(c, aFP) != 4102444800 || expiry(c, bFP) != -1 {
		t.Errorf("the clone changed: a %d, b %d", expiry(c, aFP), expiry(c, bFP))
	}
	mustDispatch(t, s, replaceCert("0.0.0.0:443", bFP, bPEM))
	if expiry(s, bFP) != -1 {
		t.Error("a replace without new_expired_at kept the old one")
	}
	mustDispatch(t, s, withExpiry(replaceCert("0.0.0.0:443", bFP, bPEM), 7), removeCert("0.0.0.0:443", bFP), addCert("0.0.0.0:443", bPEM))
	if expiry(s, bFP) != -1 {
		t.Error("expired_at survived the removal of its certificate")
	}
	if _, ok := s.ExpiredAt(nil, bFP); ok {
		t.Error("nil address")
	}
}

func TestFingerprint(t *testing.T) {
	certPEM, fp := testCert(t, "x")
	// A key block before the certificate is skipped.
	got, err := Fingerprint("-----BEGIN EC PRIVATE KEY-----\nAAAA\n-----END EC PRIVATE KEY-----\n" + certPEM)
	if err != nil || got != fp {
		t.Errorf("Fingerprint = %q, %v; want %q", got, err, fp)
	}
	if _, err := Fingerprint(""); err == nil {
		t.Error("empty PEM accepted")
	}
}

func TestDecodeFingerprint(t *testing.T) {
	tests := []struct{ in, want, err string }{
		{"", "", ""},
		{"ABcd09", "abcd09", ""},
		{"a", "", "Odd number of digits"},
		{"0x", "", "Invalid character 'x' at position 1"},
		{"\x00a", "", `Invalid character '\0' at position 0`},
		{"a\n", "", `Invalid character '\n' at position 1`},
		{"'a", "", `Invalid character '\'' at position 0`},
		{"\x7fa", "", `Invalid character '\u{7f}' at position 0`},
		{"é", "", "Invalid character 'Ã' at position 0"}, // the first byte, as Rust's `byte as char`
	}
	for _, tc := range tests {
		got, err := decodeFingerprint(tc.in)
		if tc.err != "" {
			if err == nil || err.Error() != tc.err {
				t.Errorf("decodeFingerprint(%q) error %v, want %q", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("decodeFingerprint(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
}

func TestCertificateQueries(t *testing.T) {
	aPEM, aFP := testCert(t, "a", "a.example.com")
	bPEM, bFP := testCert(t, "b", "b.example.com", "*.w.example.com")
	s := New()
	mustDispatch(t, s, addCert("0.0.0.0:443", aPEM), addCert("[::]:443", bPEM), addCert("[::]:443", aPEM))
	keys := func(c *command.CertificatesWithFingerprints) []string { return sortedKeys(c.GetCerts()) }
	str := proto.String
	tests := []struct {
		name string
		f    *command.QueryCertificatesFilters
		want []string
	}{
		{"nil filters", nil, sortedKeys(map[string]bool{aFP: true, bFP: true})},
		{"no filter", &command.QueryCertificatesFilters{}, sortedKeys(map[string]bool{aFP: true, bFP: true})},
		{"domain", &command.QueryCertificatesFilters{Domain: str("b.example.com")}, []string{bFP}},
		{"domain is exact: no wildcard matching", &command.QueryCertificatesFilters{Domain: str("x.w.example.com")}, nil},
		{"a wildcard name matches itself", &command.QueryCertificatesFilters{Domain: str("*.w.example.com")}, []string{bFP}},
		{"domain is case-sensitive, as upstream", &command.QueryCertificatesFilters{Domain: str("B.example.com")}, nil},
		{"unknown domain", &command.QueryCertificatesFilters{Domain: str("nope.example.com")}, nil},
		{"fingerprint any case", &command.QueryCertificatesFilters{Fingerprint: str(strings.ToUpper(aFP))}, []string{aFP}},
		{"unknown fingerprint", &command.QueryCertificatesFilters{Fingerprint: str("00")}, nil},
		{"domain wins over fingerprint", &command.QueryCertificatesFilters{Domain: str("b.example.com"), Fingerprint: str(aFP)}, []string{bFP}},
	}
	for _, tc := range tests {
		if got := keys(s.Certificates(tc.f)); !slices.Equal(got, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
	var se *Error
	if err := s.Dispatch(removeCert("0.0.0.0:443", "0")); !errors.As(err, &se) || se.Kind != Certificate {
		t.Errorf("odd hex: %v", err)
	}
}

func TestFingerprintErrors(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"", "no CERTIFICATE PEM block found"},
		{"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", "cannot parse the leaf certificate: x509: malformed certificate"},
	} {
		if _, err := Fingerprint(tc.in); err == nil || err.Error() != tc.want {
			t.Errorf("Fingerprint(%q): %v, want %q", tc.in, err, tc.want)
		}
	}
}
