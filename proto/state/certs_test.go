package state

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/sozu-go/sozu/proto/command"
)

func TestCertificates(t *testing.T) {
	sanPEM, sanFP := testCert(t, "ignored-cn", "a.example.com", "b.example.com")
	cnPEM, cnFP := testCert(t, "cn.example.com")
	otherPEM, otherFP := testCert(t, "other.example.com")

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
		{name: "add certificate names from CN", req: addCert("0.0.0.0:443", cnPEM),
			check: func(t *testing.T, s *ConfigState) {
				if got := s.Certificates(nil).GetCerts()[cnFP].GetNames(); !slices.Equal(got, []string{"cn.example.com"}) {
					t.Errorf("names = %v", got)
				}
			}},
		{name: "explicit names win", req: addCert("0.0.0.0:443", sanPEM, "override.example.com"),
			check: func(t *testing.T, s *ConfigState) {
				if got := s.Certificates(nil).GetCerts()[sanFP].GetNames(); !slices.Equal(got, []string{"override.example.com"}) {
					t.Errorf("names = %v", got)
				}
			}},
		{name: "same fingerprint same address is a no-op",
			setup: []*command.Request{addCert("0.0.0.0:443", sanPEM)},
			req:   addCert("0.0.0.0:443", sanPEM, "other-name"),
			check: func(t *testing.T, s *ConfigState) {
				if got := s.Certificates(nil).GetCerts()[sanFP].GetNames(); len(got) != 2 {
					t.Errorf("no-op add changed names to %v", got)
				}
			}},
		{name: "same certificate on another address", setup: []*command.Request{addCert("0.0.0.0:443", sanPEM)},
			req: addCert("0.0.0.0:8443", sanPEM),
			check: func(t *testing.T, s *ConfigState) {
				if n := len(s.GenerateRequests()); n != 2 {
					t.Errorf("%d records, want 2", n)
				}
			}},
		{name: "add bad PEM", req: addCert("0.0.0.0:443", "not a pem"), kind: Certificate,
			text: "Could not add certificate: no CERTIFICATE PEM block found"},
		{name: "add bad DER", req: addCert("0.0.0.0:443", "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"),
			kind: Certificate, text: "Could not add certificate: cannot parse the leaf certificate: x509: malformed certificate"},
		{name: "remove certificate any hex case", setup: []*command.Request{addCert("0.0.0.0:443", sanPEM)},
			req: removeCert("0.0.0.0:443", strings.ToUpper(sanFP)),
			check: func(t *testing.T, s *ConfigState) {
				if n := len(s.Certificates(nil).GetCerts()); n != 0 {
					t.Errorf("%d certificates left", n)
				}
			}},
		{name: "remove unknown certificate is accepted", setup: []*command.Request{addCert("0.0.0.0:443", sanPEM)},
			req: removeCert("0.0.0.0:443", otherFP)},
		{name: "remove on unknown address is accepted", req: removeCert("0.0.0.0:443", otherFP)},
		{name: "remove bad hex", req: removeCert("0.0.0.0:443", "zz"), kind: Certificate,
			text: `Could not remove certificate: invalid fingerprint "zz": encoding/hex: invalid byte: U+007A 'z'`},
		{name: "replace certificate", setup: []*command.Request{addCert("0.0.0.0:443", sanPEM)},
			req: replaceCert("0.0.0.0:443", sanFP, otherPEM),
			check: func(t *testing.T, s *ConfigState) {
				certs := s.Certificates(nil).GetCerts()
				if certs[sanFP] != nil || certs[otherFP] == nil || len(certs) != 1 {
					t.Errorf("after replace: %v", certs)
				}
				if got := certs[otherFP].GetNames(); !slices.Equal(got, []string{"other.example.com"}) {
					t.Errorf("replacement names = %v", got)
				}
			}},
		{name: "replace unknown old fingerprint adds", setup: []*command.Request{addCert("0.0.0.0:443", sanPEM)},
			req: replaceCert("0.0.0.0:443", cnFP, otherPEM),
			check: func(t *testing.T, s *ConfigState) {
				if n := len(s.Certificates(nil).GetCerts()); n != 2 {
					t.Errorf("%d certificates, want 2", n)
				}
			}},
		{name: "replace on unknown address", setup: []*command.Request{addCert("0.0.0.0:443", sanPEM)},
			req: replaceCert("0.0.0.0:8443", sanFP, otherPEM), kind: NotFound,
			text: "Did not find Certificate with address or id '0.0.0.0:8443'"},
		{name: "replace after last removal", setup: []*command.Request{addCert("0.0.0.0:443", sanPEM), removeCert("0.0.0.0:443", sanFP)},
			req: replaceCert("0.0.0.0:443", sanFP, otherPEM), kind: NotFound,
			text: "Did not find Certificate with address or id '0.0.0.0:443'"},
		{name: "replace with bad PEM", setup: []*command.Request{addCert("0.0.0.0:443", sanPEM)},
			req: replaceCert("0.0.0.0:443", sanFP, "junk"), kind: Certificate,
			text: "Could not replace certificate: no CERTIFICATE PEM block found"},
		{name: "replace bad old fingerprint", setup: []*command.Request{addCert("0.0.0.0:443", sanPEM)},
			req: replaceCert("0.0.0.0:443", "abc", otherPEM), kind: Certificate,
			text: `Could not replace certificate: old_fingerprint: invalid fingerprint "abc": encoding/hex: odd length hex string`},
	})
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

func TestCertificateQueries(t *testing.T) {
	aPEM, aFP := testCert(t, "a", "a.example.com")
	bPEM, bFP := testCert(t, "b", "b.example.com")
	s := New()
	mustDispatch(t, s, addCert("0.0.0.0:443", aPEM), addCert("[::]:443", bPEM), addCert("[::]:443", aPEM))
	keys := func(c *command.CertificatesWithFingerprints) []string { return sortedKeys(c.GetCerts()) }

	if got, want := keys(s.Certificates(nil)), sortedKeys(map[string]bool{aFP: true, bFP: true}); !slices.Equal(got, want) {
		t.Errorf("all = %v, want %v", got, want)
	}
	dom := "b.example.com"
	if got := keys(s.Certificates(&command.QueryCertificatesFilters{Domain: &dom})); !slices.Equal(got, []string{bFP}) {
		t.Errorf("by domain = %v", got)
	}
	up := strings.ToUpper(aFP)
	if got := keys(s.Certificates(&command.QueryCertificatesFilters{Fingerprint: &up})); !slices.Equal(got, []string{aFP}) {
		t.Errorf("by fingerprint = %v", got)
	}
	none := "nope.example.com"
	if got := keys(s.Certificates(&command.QueryCertificatesFilters{Domain: &none})); len(got) != 0 {
		t.Errorf("unknown domain = %v", got)
	}
	var se *Error
	if err := s.Dispatch(removeCert("0.0.0.0:443", "0")); !errors.As(err, &se) || se.Kind != Certificate {
		t.Errorf("odd hex: %v", err)
	}
}
