package state

import (
	"encoding/pem"
	"runtime"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/sozu-go/sozu/proto/command"
)

const fakeKey = "-----BEGIN PRIVATE KEY-----\nMIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg\n-----END PRIVATE KEY-----\n"

func TestCertificatePEM(t *testing.T) {
	cert, _ := testCert(t, "a.test", "a.test")
	other, _ := testCert(t, "b.test", "b.test")
	crl := string(pem.EncodeToMemory(&pem.Block{Type: "X509 CRL", Bytes: []byte{1, 2}}))
	withHeaders := string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Headers: map[string]string{"Note": "x"}, Bytes: mustBlock(t, cert).Bytes}))
	for _, tc := range []struct {
		name, in, want, err string
	}{
		{name: "one certificate", in: cert, want: cert},
		{name: "key after (HAProxy)", in: cert + fakeKey, want: cert},
		{name: "key before", in: fakeKey + cert, want: cert},
		{name: "rsa key between", in: cert + strings.ReplaceAll(fakeKey, "PRIVATE", "RSA PRIVATE") + other, want: cert + other},
		{name: "encrypted key", in: cert + strings.ReplaceAll(fakeKey, "PRIVATE", "ENCRYPTED PRIVATE"), want: cert},
		{name: "explanatory text", in: "subject=CN = a.test\n" + cert + "trailing words\n", want: cert},
		{name: "headers dropped", in: withHeaders, want: cert},
		{name: "no block", in: "not pem", want: ""},
		{name: "only a key", in: fakeKey, want: ""},
		{name: "other block type", in: cert + crl, err: `PEM block 2 is "X509 CRL": only CERTIFICATE blocks are accepted here`},
		{name: "cut short", in: cert + "-----BEGIN PRIVATE KEY-----\nMIGH", err: "the PEM block starting on line"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := CertificatePEM(tc.in)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error %v, want %q", err, tc.err)
				}
				if strings.Contains(err.Error(), "MIG") {
					t.Errorf("the error quotes PEM contents: %v", err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("got %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}

func mustBlock(t *testing.T, text string) *pem.Block {
	b, _ := pem.Decode([]byte(text))
	if b == nil {
		t.Fatal("no PEM block")
	}
	return b
}

// TestCertificateFieldsHoldNoKey: add_certificate, replace_certificate and
// add_https_listener with a certificate (and chain) that also holds the
// private key store the certificates only; another block type is refused,
// naming the field and the block.
func TestCertificateFieldsHoldNoKey(t *testing.T) {
	cert, _ := testCert(t, "a.test", "a.test")
	next, nextFP := testCert(t, "b.test", "b.test")
	crl := string(pem.EncodeToMemory(&pem.Block{Type: "X509 CRL", Bytes: []byte{1}}))
	withChain := func(r *command.Request, chain ...string) *command.Request {
		switch x := r.GetRequestType().(type) {
		case *command.Request_AddCertificate:
			x.AddCertificate.Certificate.CertificateChain = chain
		case *command.Request_ReplaceCertificate:
			x.ReplaceCertificate.NewCertificate.CertificateChain = chain
		}
		return r
	}
	listener := func(certPEM string, chain ...string) *command.Request {
		l := httpsListener("127.0.0.1:8443")
		l.Certificate, l.CertificateChain, l.Key = proto.String(certPEM), chain, proto.String("test key")
		return addHTTPSListener(l)
	}
	for _, tc := range []struct {
		name string
		reqs []*command.Request
		err  string
	}{
		{name: "add", reqs: []*command.Request{withChain(addCert("127.0.0.1:8443", cert+fakeKey), next+fakeKey, fakeKey)}},
		{name: "replace", reqs: []*command.Request{addCert("127.0.0.1:8443", next), withChain(replaceCert("127.0.0.1:8443", nextFP, fakeKey+cert), fakeKey+next)}},
		{name: "listener", reqs: []*command.Request{listener(cert+fakeKey, next+fakeKey)}},
		{name: "add, CRL in certificate", reqs: []*command.Request{addCert("127.0.0.1:8443", cert+crl)},
			err: `Could not add certificate: certificate: PEM block 2 is "X509 CRL"`},
		{name: "replace, CRL in chain", reqs: []*command.Request{addCert("127.0.0.1:8443", next), withChain(replaceCert("127.0.0.1:8443", nextFP, cert), crl)},
			err: `Could not replace certificate: new_certificate.certificate_chain[0]: PEM block 1 is "X509 CRL"`},
		{name: "listener, CRL in chain", reqs: []*command.Request{listener(cert, next, crl)},
			err: `Invalid value for field 'certificate_chain[1]': PEM block 1 is "X509 CRL"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := New()
			var err error
			for _, r := range tc.reqs {
				if err = s.Dispatch(r); err != nil {
					break
				}
			}
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var texts []string
			for _, ck := range s.Certificates(nil).GetCerts() {
				texts = append(texts, ck.GetCertificate())
				texts = append(texts, ck.GetCertificateChain()...)
			}
			for _, l := range s.ListListeners().GetHttpsListeners() {
				texts = append(texts, l.GetCertificate())
				texts = append(texts, l.GetCertificateChain()...)
			}
			all := strings.Join(texts, "")
			if strings.Contains(all, "PRIVATE KEY") || !strings.Contains(all, cert) || !strings.Contains(all, next) {
				t.Errorf("stored certificates:\n%s", all)
			}
		})
	}
}

// TestCertificateBlockEncoding: appendCertificateBlock writes what
// pem.EncodeToMemory writes, for every length around the line breaks; and
// CertificatePEM re-encodes a chain of 2 600 certificates allocating less
// than 4 times its size (pem.Encode, a 1 KiB base64 encoder and a doubling
// buffer for each block, took 8).
func TestCertificateBlockEncoding(t *testing.T) {
	for n := 0; n <= 200; n++ {
		der := make([]byte, n)
		for i := range der {
			der[i] = byte(i*7 + n)
		}
		var b strings.Builder
		appendCertificateBlock(&b, der)
		if want := string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})); b.String() != want {
			t.Fatalf("%d bytes: %q, want %q", n, b.String(), want)
		}
	}
	certPEM, _ := testCert(t, "a.example.com")
	chain := strings.Repeat(certPEM, 2600)
	var got string
	var err error
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	got, err = CertificatePEM(chain)
	runtime.ReadMemStats(&after)
	if err != nil || got != chain {
		t.Fatalf("the chain changed (%v)", err)
	}
	if n := after.TotalAlloc - before.TotalAlloc; n > 4*uint64(len(chain)) {
		t.Errorf("re-encoding a %d-byte chain allocated %d bytes (%.1f×)", len(chain), n, float64(n)/float64(len(chain)))
	}
}
