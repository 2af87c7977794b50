package audit

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"math/big"
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/sozu-go/sozu/proto/command"
)

// testCert returns a self-signed certificate and its PKCS#8 key in PEM,
// the certificate's DER and the key's DER.
func testCert(t *testing.T) (certPEM, keyPEM string, certDER, keyDER []byte) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "example.com"},
		DNSNames: []string{"example.com"}, NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour)}
	certDER, err = x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err = x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	certPEM = string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: certDER}))
	keyPEM = string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}))
	return
}

// TestNoSecretsInRecords: private keys, basic-auth hashes, Authorization
// and Cookie values never reach a record's bytes; fingerprints do.
func TestNoSecretsInRecords(t *testing.T) {
	certPEM, keyPEM, certDER, keyDER := testCert(t)
	addr := command.NewSocketAddress(netip.MustParseAddrPort("127.0.0.1:8443"))
	const hash = "5e884898da28047151d0e56f8dc6292773603d0d6aabbdd62a11ef721d1542d8"
	const basic, cookie = "Basic YWxpY2U6c2VjcmV0", "session=0123456789secret"
	reqs := []*command.Request{
		{RequestType: &command.Request_AddCertificate{AddCertificate: &command.AddCertificate{Address: addr,
			Certificate: &command.CertificateAndKey{Certificate: proto.String(certPEM), Key: proto.String(keyPEM), Names: []string{"example.com"}}}}},
		{RequestType: &command.Request_ReplaceCertificate{ReplaceCertificate: &command.ReplaceCertificate{Address: addr, OldFingerprint: proto.String("ab"),
			NewCertificate: &command.CertificateAndKey{Certificate: proto.String(certPEM), Key: proto.String(keyPEM)}}}},
		{RequestType: &command.Request_AddHttpsListener{AddHttpsListener: &command.HttpsListenerConfig{Address: addr,
			Certificate: proto.String(certPEM), Key: proto.String(keyPEM)}}},
		{RequestType: &command.Request_AddCluster{AddCluster: &command.Cluster{ClusterId: proto.String("app1"), AuthorizedHashes: []string{hash},
			WwwAuthenticate: proto.String("Basic realm=secret-realm")}}},
		{RequestType: &command.Request_AddHttpsFrontend{AddHttpsFrontend: &command.RequestHttpFrontend{ClusterId: proto.String("app1"), Address: addr,
			Hostname: proto.String("example.com"), Path: &command.PathRule{Kind: command.PathRuleKind_PREFIX.Enum(), Value: proto.String("/api")},
			Headers: []*command.Header{
				{Position: command.HeaderPosition_REQUEST.Enum(), Key: proto.String("Authorization"), Val: proto.String(basic)},
				{Position: command.HeaderPosition_BOTH.Enum(), Key: proto.String("Cookie"), Val: proto.String(cookie)},
			}}}},
	}
	e := newEnv(t)
	b := e.open(t)
	for _, req := range reqs {
		rec := &Record{Code: CodeCommandCompleted, Result: ResultOK}
		rec.SetRequest(req)
		as := &Record{Code: CodeCommandCompleted, Result: ResultOK}
		as.SetRequestAs(rec)
		if !reflect.DeepEqual(as, rec) {
			t.Errorf("%s: SetRequestAs gives %+v, SetRequest %+v", rec.Verb, as, rec)
		}
		if err := b.Log(rec); err != nil {
			t.Fatal(err)
		}
	}
	b.Close()
	keyB64 := base64.StdEncoding.EncodeToString(keyDER)
	secrets := []string{"PRIVATE KEY", "BEGIN CERTIFICATE", hash, basic, "YWxpY2U6c2VjcmV0", cookie, "0123456789secret", "secret-realm",
		hex.EncodeToString(keyDER[len(keyDER)-16:])}
	for i := 0; i+16 <= len(keyB64); i += 8 {
		secrets = append(secrets, keyB64[i:i+16])
	}
	for _, path := range []string{e.text, e.json} {
		data, _ := readAll(t, path)
		for _, s := range secrets {
			if bytes.Contains(data, []byte(s)) {
				t.Errorf("%s contains %q", path, s)
			}
		}
	}
	recs := decodeAll(t, e.json)
	certSum := sha256.Sum256(certDER)
	cert, _ := x509.ParseCertificate(certDER)
	spki := sha256.Sum256(cert.RawSubjectPublicKeyInfo)
	for _, r := range recs[1:4] {
		if r.Extras.CertSHA256 != hex.EncodeToString(certSum[:]) {
			t.Errorf("%s: cert_sha256 %q, want the DER's SHA-256", r.Verb, r.Extras.CertSHA256)
		}
		if r.Extras.KeySHA256 != hex.EncodeToString(spki[:]) {
			t.Errorf("%s: key_sha256 %q, want the SHA-256 of the certificate's SPKI", r.Verb, r.Extras.KeySHA256)
		}
	}
	if r := recs[1]; r.Target != "certificate on 127.0.0.1:8443 for example.com" || r.Verb != "certificate.add" || len(r.Extras.RequestSHA256) != 16 {
		t.Errorf("add_certificate record: %q %q %q", r.Target, r.Verb, r.Extras.RequestSHA256)
	}
	if r := recs[5]; r.Target != "https frontend example.com prefix:/api on 127.0.0.1:8443 for cluster app1" || r.ClusterID != "app1" {
		t.Errorf("frontend target %q", r.Target)
	}
}

func readAll(t *testing.T, path string) ([]byte, error) {
	t.Helper()
	f := mustOpen(t, path)
	var buf bytes.Buffer
	_, err := buf.ReadFrom(f)
	return buf.Bytes(), err
}

// TestSetRequestEveryVerb: every verb, with empty or absent content,
// gives a valid record (no nil dereference, schema-valid).
func TestSetRequestEveryVerb(t *testing.T) {
	fields := (&command.Request{}).ProtoReflect().Descriptor().Oneofs().ByName("request_type").Fields()
	e := newEnv(t)
	b := e.open(t)
	for i := range fields.Len() {
		fd := fields.Get(i)
		req := &command.Request{}
		m := req.ProtoReflect()
		if fd.Kind() == protoreflect.MessageKind {
			m.Set(fd, protoreflect.ValueOfMessage(m.NewField(fd).Message()))
		} else {
			m.Set(fd, m.NewField(fd))
		}
		rec := &Record{Code: CodeCommandAttempt, Result: ResultOK}
		rec.SetRequest(req)
		if rec.Verb != requestVerbs[string(fd.Name())].verb {
			t.Errorf("%s: verb %q", fd.Name(), rec.Verb)
		}
		as := &Record{Code: CodeCommandAttempt, Result: ResultOK}
		as.SetRequestAs(rec)
		if !reflect.DeepEqual(as, rec) {
			t.Errorf("%s: SetRequestAs gives %+v, SetRequest %+v", fd.Name(), as, rec)
		}
		if err := b.Log(rec); err != nil {
			t.Fatalf("%s: %v", fd.Name(), err)
		}
	}
	if recs := decodeAll(t, e.json); len(recs) != fields.Len()+1 {
		t.Errorf("%d records", len(recs))
	}
}

func TestFingerprintFallbacks(t *testing.T) {
	junk := "not a pem at all"
	sum := sha256.Sum256([]byte(junk))
	if got := CertFingerprint(junk); got != hex.EncodeToString(sum[:]) {
		t.Errorf("CertFingerprint(junk) = %s", got)
	}
	if got := KeyFingerprint(junk); got != "" {
		t.Errorf("KeyFingerprint(junk) = %q, want empty", got)
	}
	bad := string(pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: []byte("garbage")}))
	if got := KeyFingerprint(bad); got != "" || strings.Contains(got, "garbage") {
		t.Errorf("KeyFingerprint(bad) = %q", got)
	}
	if RequestSHA256(nil) != "" {
		t.Error("RequestSHA256(nil)")
	}
}

// TestRequestSHA256NoSecretOracle: the request fingerprint is computed over
// the request as the command socket shows it, so that it cannot be used to
// test guesses of a secret (a basic-auth hash, a header value, a key) the
// reader of the audit files was never shown.
func TestRequestSHA256NoSecretOracle(t *testing.T) {
	cluster := func(entry string) *command.Request {
		return &command.Request{RequestType: &command.Request_AddCluster{AddCluster: &command.Cluster{
			ClusterId:        proto.String("shop"),
			AuthorizedHashes: []string{entry},
		}}}
	}
	frontend := func(header string) *command.Request {
		return &command.Request{RequestType: &command.Request_AddHttpFrontend{AddHttpFrontend: &command.RequestHttpFrontend{
			ClusterId: proto.String("shop"),
			Hostname:  proto.String("shop.test"),
			Headers:   []*command.Header{{Key: proto.String("Authorization"), Val: proto.String(header)}},
		}}}
	}
	for _, c := range []struct {
		name     string
		one, two *command.Request
		shown    *command.Request
	}{
		{"authorized_hashes",
			cluster("alice:5e884898da28047151d0e56f8dc6292773603d0d6aabbdd62a11ef721d1542d8"),
			cluster("alice:ef92b778bafe771e89245b89ecbc08a44a4e166c06659911881f383d4473e94f"),
			cluster("<redacted>")},
		{"header value", frontend("Bearer one"), frontend("Bearer two"), frontend("<redacted>")},
	} {
		a, b := RequestSHA256(c.one), RequestSHA256(c.two)
		if a == "" || a != b {
			t.Errorf("%s: requests differing only in the secret: fingerprints %q and %q, want equal", c.name, a, b)
		}
		enc, err := proto.MarshalOptions{Deterministic: true, AllowPartial: true}.Marshal(c.shown)
		if err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(enc)
		if want := hex.EncodeToString(sum[:8]); a != want {
			t.Errorf("%s: fingerprint %s, want %s (the request as the socket shows it)", c.name, a, want)
		}
	}
	// What is not secret still tells requests apart.
	other := cluster("x")
	other.GetAddCluster().ClusterId = proto.String("bank")
	if RequestSHA256(other) == RequestSHA256(cluster("x")) {
		t.Error("requests for different clusters share a fingerprint")
	}
}
