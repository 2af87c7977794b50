package tlsconf

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

type spec struct {
	names     []string
	notBefore time.Time
	notAfter  time.Time
	key       crypto.Signer // nil: a fresh P-256 key
}

var now = time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)

func p256(t testing.TB) crypto.Signer {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// gen returns a self-signed certificate and key in PEM.
func gen(t testing.TB, s spec) (certPEM, keyPEM string) {
	t.Helper()
	if s.key == nil {
		s.key = p256(t)
	}
	if s.notBefore.IsZero() {
		s.notBefore = now.Add(-time.Hour)
	}
	if s.notAfter.IsZero() {
		s.notAfter = now.Add(24 * time.Hour)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject: pkix.Name{CommonName: "test"}, DNSNames: s.names,
		NotBefore: s.notBefore, NotAfter: s.notAfter,
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, s.key.Public(), s.key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(s.key)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})),
		string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}))
}

func TestLoad(t *testing.T) {
	rsa1024, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	rsa2048, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	p224, _ := ecdsa.GenerateKey(elliptic.P224(), rand.Reader)
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	okCert, okKey := gen(t, spec{names: []string{"a.example"}})
	_, otherKey := gen(t, spec{names: []string{"a.example"}})
	tests := []struct {
		name      string
		cert, key string
		chain     []string
		want      string // "" accepted; else a substring of the error
	}{
		{"ecdsa p256", okCert, okKey, nil, ""},
		{"with chain", okCert, okKey, []string{okCert}, ""},
		{"rsa 2048", pair(t, spec{names: []string{"r"}, key: rsa2048})[0], pair(t, spec{key: rsa2048})[1], nil, ""},
		{"ecdsa p384", pair(t, spec{key: p384})[0], pair(t, spec{key: p384})[1], nil, ""},
		{"expired", pair(t, spec{notBefore: now.Add(-48 * time.Hour), notAfter: now.Add(-24 * time.Hour)})[0], "", nil, "expired"},
		{"not yet valid", pair(t, spec{notBefore: now.Add(time.Hour), notAfter: now.Add(48 * time.Hour)})[0], "", nil, "not yet valid"},
		{"rsa 1024", pair(t, spec{key: rsa1024})[0], pair(t, spec{key: rsa1024})[1], nil, "RSA key of 1024 bits is too weak"},
		{"ecdsa p224", pair(t, spec{key: p224})[0], pair(t, spec{key: p224})[1], nil, "P-224 is not accepted"},
		{"mismatched key", okCert, otherKey, nil, "private key does not match"},
		{"no key", okCert, "", nil, "no PRIVATE KEY"},
		{"garbage key", okCert, "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n", nil, "does not parse"},
		{"no cert", "hello", okKey, nil, "no CERTIFICATE"},
		{"bad chain", okCert, okKey, []string{"junk"}, "chain entry 1"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Load(tc.cert, tc.chain, tc.key, nil, now)
			if tc.want == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				if len(c.Fingerprint) != 64 || strings.ToLower(c.Fingerprint) != c.Fingerprint {
					t.Fatalf("fingerprint %q", c.Fingerprint)
				}
				return
			}
			if err == nil {
				t.Fatalf("accepted, want %q", tc.want)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q, want %q", err, tc.want)
			}
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("error %T", err)
			}
			if tc.want != "no CERTIFICATE" && len(e.Fingerprint) != 64 {
				t.Fatalf("error without fingerprint: %v", err)
			}
			if strings.Contains(err.Error(), "PRIVATE KEY-----") {
				t.Fatal("key material in the error")
			}
		})
	}
}

// pair memoizes a certificate per key so that cert and key columns match.
var pairs = map[any][2]string{}

func pair(t *testing.T, s spec) [2]string {
	if s.key != nil {
		if p, ok := pairs[s.key]; ok {
			return p
		}
	}
	c, k := gen(t, s)
	p := [2]string{c, k}
	if s.key != nil {
		pairs[s.key] = p
	}
	return p
}

func mustLoad(t testing.TB, s spec, names ...string) *Cert {
	t.Helper()
	c, k := gen(t, s)
	cert, err := Load(c, nil, k, names, now)
	if err != nil {
		t.Fatal(err)
	}
	return cert
}

func TestIndex(t *testing.T) {
	short := mustLoad(t, spec{names: []string{"a.example", "*.example"}, notAfter: now.Add(time.Hour)})
	long := mustLoad(t, spec{names: []string{"a.example"}, notAfter: now.Add(100 * time.Hour)})
	wildLong := mustLoad(t, spec{names: []string{"*.example"}, notAfter: now.Add(50 * time.Hour)})
	explicit := mustLoad(t, spec{names: []string{"ignored.example"}}, "Named.Example")
	def := mustLoad(t, spec{names: []string{"default.example"}})
	ix := NewIndex([]*Cert{short, long, wildLong, explicit}, def)
	noDef := NewIndex([]*Cert{short, long, wildLong, explicit}, nil)
	tests := []struct {
		ix   *Index
		name string
		want *Cert
	}{
		{ix, "a.example", long},
		{ix, "A.EXAMPLE.", long},
		{ix, "b.example", wildLong},
		{ix, "x.b.example", def},
		{ix, "example", def},
		{ix, "named.example", explicit},
		{ix, "ignored.example", wildLong},
		{ix, "", def},
		{ix, "unknown.test", def},
		{noDef, "unknown.test", nil},
		{noDef, "", nil},
		{nil, "a.example", nil},
	}
	for _, tc := range tests {
		if got := tc.ix.Lookup(tc.name); got != tc.want {
			t.Errorf("Lookup(%q) = %v, want %v", tc.name, got, tc.want)
		}
	}
}

// handshake dials a server using cfg and returns the leaf served, or the error.
func handshake(t *testing.T, cfg *tls.Config, client *tls.Config) (*x509.Certificate, error) {
	t.Helper()
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	go func() {
		s := tls.Server(b, cfg)
		s.Handshake()
		s.Close()
	}()
	c := tls.Client(a, client)
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if err := c.Handshake(); err != nil {
		return nil, err
	}
	st := c.ConnectionState()
	if st.NegotiatedProtocol != "http/1.1" {
		t.Errorf("ALPN %q", st.NegotiatedProtocol)
	}
	return st.PeerCertificates[0], nil
}

func TestConfigHandshake(t *testing.T) {
	// Certificates valid now (the handshake checks the real clock).
	real := time.Now()
	mk := func(names ...string) *Cert {
		c, k := gen(t, spec{names: names, notBefore: real.Add(-time.Hour), notAfter: real.Add(time.Hour)})
		cert, err := Load(c, nil, k, nil, real)
		if err != nil {
			t.Fatal(err)
		}
		return cert
	}
	a, b := mk("a.example"), mk("b.example")
	var st Store
	cfg := st.Config("L")
	client := func(sni string, v uint16) *tls.Config {
		return &tls.Config{InsecureSkipVerify: true, ServerName: sni, MinVersion: v, MaxVersion: v, NextProtos: []string{"http/1.1"}}
	}
	if _, err := handshake(t, cfg, client("a.example", 0)); err == nil {
		t.Fatal("handshake without any index succeeded")
	}
	st.Swap(map[string]*Index{"L": NewIndex([]*Cert{a, b}, nil)})
	for _, v := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
		leaf, err := handshake(t, cfg, client("b.example", v))
		if err != nil || !leaf.Equal(b.TLS.Leaf) {
			t.Fatalf("version %x: leaf %v, err %v", v, leaf, err)
		}
	}
	if _, err := handshake(t, cfg, client("c.example", 0)); err == nil {
		t.Fatal("unknown name without default succeeded")
	}
	if _, err := handshake(t, cfg, client("a.example", tls.VersionTLS11)); err == nil {
		t.Fatal("TLS 1.1 accepted")
	}
	weak := client("a.example", tls.VersionTLS12)
	weak.CipherSuites = []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA}
	if _, err := handshake(t, cfg, weak); err == nil {
		t.Fatal("CBC suite accepted")
	}
	// Replace: a with a2 under the same name; handshakes in parallel never fail.
	var stop atomic.Bool
	done := make(chan error)
	go func() {
		for !stop.Load() {
			if _, err := handshake(t, cfg, client("a.example", 0)); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	for range 50 {
		st.Swap(map[string]*Index{"L": NewIndex([]*Cert{mk("a.example"), b}, nil)})
	}
	stop.Store(true)
	if err := <-done; err != nil {
		t.Fatalf("handshake during replacement: %v", err)
	}
	st.Swap(map[string]*Index{"L": NewIndex([]*Cert{b}, a)})
	leaf, err := handshake(t, cfg, client("", 0))
	if err != nil || !leaf.Equal(a.TLS.Leaf) {
		t.Fatalf("no SNI: leaf %v, err %v", leaf, err)
	}
}

func FuzzLoad(f *testing.F) {
	c, k := gen(f, spec{names: []string{"fuzz.example", "*.fuzz.example"}})
	f.Add(c, k, "")
	f.Add(c, k, "x.fuzz.example")
	f.Add("-----BEGIN CERTIFICATE-----\nAA==\n-----END CERTIFICATE-----\n", k, "")
	f.Fuzz(func(t *testing.T, certPEM, keyPEM, name string) {
		cert, err := Load(certPEM, nil, keyPEM, nil, now)
		if err != nil {
			return
		}
		var names []string
		if name != "" {
			names = []string{name}
		}
		if cert, err = Load(certPEM, nil, keyPEM, names, now); err != nil {
			return
		}
		ix := NewIndex([]*Cert{cert}, nil)
		for _, n := range cert.Names {
			q := n
			if rest, ok := strings.CutPrefix(n, "*."); ok {
				q = "w." + rest
			}
			if ix.Lookup(q) != cert {
				t.Fatalf("name %q (query %q) not found", n, q)
			}
		}
	})
}

// TestIndexCorners covers SNI matching and the choice among certificates
// serving one name: wildcards, case, trailing dots, IDN, expiry and
// expired_at ranking, ties, the default certificate taking part, and
// falling back when the winner is removed (a new index without it).
func TestIndexCorners(t *testing.T) {
	wild := mustLoad(t, spec{names: []string{"*.example.com"}})
	bare := mustLoad(t, spec{names: []string{"example.com"}})
	idn := mustLoad(t, spec{names: []string{"ignored"}}, "Bücher.Example.")
	puny := mustLoad(t, spec{names: []string{"xn--mnchen-3ya.example"}})
	ix := NewIndex([]*Cert{wild, bare, idn, puny}, nil)
	if !slicesEqual(idn.Names, []string{"xn--bcher-kva.example"}) {
		t.Errorf("IDN names %q", idn.Names)
	}
	lookups := []struct {
		name      string
		want      *Cert
		wantMatch string // "" no match
	}{
		{"a.example.com", wild, "*.example.com"},
		{"A.Example.COM.", wild, "*.example.com"},
		{"example.com", bare, "example.com"},
		{"EXAMPLE.com", bare, "example.com"},
		{"a.b.example.com", nil, ""},
		{".example.com", nil, ""},
		{"*.example.com", wild, "*.example.com"}, // a literal "*" label is one label
		{"xn--bcher-kva.example", idn, "xn--bcher-kva.example"},
		{"bücher.example", idn, "xn--bcher-kva.example"},
		{"BÜCHER.example", idn, "xn--bcher-kva.example"},
		{"münchen.example", puny, "xn--mnchen-3ya.example"},
		{"127.0.0.1", nil, ""},
		{"", nil, ""},
	}
	for _, tc := range lookups {
		if got := ix.Lookup(tc.name); got != tc.want {
			t.Errorf("Lookup(%q) = %v, want %v", tc.name, got, tc.want)
		}
		s, ok := ix.Match(tc.name)
		if ok != (tc.wantMatch != "") || s.Name != tc.wantMatch || (ok && s.Cert != tc.want) {
			t.Errorf("Match(%q) = %q %v %v, want %q", tc.name, s.Name, s.Cert, ok, tc.wantMatch)
		}
	}

	// Expiry ranking, expired_at overriding it, ties by fingerprint.
	early := mustLoad(t, spec{names: []string{"a.test", "b.test"}, notAfter: now.Add(time.Hour)})
	late := mustLoad(t, spec{names: []string{"a.test"}, notAfter: now.Add(48 * time.Hour)})
	twin1 := mustLoad(t, spec{names: []string{"t.test"}, notAfter: now.Add(5 * time.Hour)})
	twin2 := mustLoad(t, spec{names: []string{"t.test"}, notAfter: now.Add(5 * time.Hour)})
	lowFP := twin1
	if twin2.Fingerprint < twin1.Fingerprint {
		lowFP = twin2
	}
	for _, order := range [][]*Cert{{early, late, twin1, twin2}, {twin2, twin1, late, early}} {
		ix := NewIndex(order, nil)
		if ix.Lookup("a.test") != late || ix.Lookup("b.test") != early || ix.Lookup("t.test") != lowFP {
			t.Errorf("ranking depends on order or expiry ignored")
		}
	}
	// Removing the winner: the other certificate serves the name again.
	if got := NewIndex([]*Cert{early}, nil).Lookup("a.test"); got != early {
		t.Errorf("after removing the winner: %v", got)
	}
	// expired_at of the early one, later than late's expiry, makes it win.
	override := *early
	override.ExpiredAt = now.Add(100 * time.Hour)
	if got := NewIndex([]*Cert{&override, late}, nil).Lookup("a.test"); got != &override {
		t.Errorf("expired_at ignored: %v", got)
	}
	override.ExpiredAt = now.Add(-time.Hour) // in the past: still only a rank
	if got := NewIndex([]*Cert{&override}, nil).Lookup("a.test"); got != &override {
		t.Errorf("expired_at in the past refused the certificate: %v", got)
	}

	// The default certificate takes part like the others: its exact name
	// beats a wildcard, and a certificate expiring later beats it.
	defShort := mustLoad(t, spec{names: []string{"a.example.com", "d.test"}, notAfter: now.Add(time.Hour)})
	dLate := mustLoad(t, spec{names: []string{"d.test"}, notAfter: now.Add(72 * time.Hour)})
	dix := NewIndex([]*Cert{wild, dLate}, defShort)
	if dix.Lookup("a.example.com") != defShort || dix.Lookup("d.test") != dLate || dix.Lookup("z.example.com") != wild ||
		dix.Lookup("nothing.test") != defShort || dix.Lookup("") != defShort {
		t.Error("default certificate ranking")
	}
	if _, ok := dix.Match("nothing.test"); ok {
		t.Error("a name only served as a fallback matched")
	}
	var served []string
	for _, s := range dix.Served() {
		served = append(served, s.Name+"="+s.Cert.Fingerprint[:8])
	}
	want := []string{"*.example.com=" + wild.Fingerprint[:8], "a.example.com=" + defShort.Fingerprint[:8], "d.test=" + dLate.Fingerprint[:8]}
	if !slicesEqual(served, want) {
		t.Errorf("Served = %q, want %q", served, want)
	}
	if len(dix.Certs()) != 2 {
		t.Errorf("Certs holds the default: %d", len(dix.Certs()))
	}
}

func slicesEqual(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestLoadNames(t *testing.T) {
	c, k := gen(t, spec{names: []string{"a.example"}})
	for _, tc := range []struct {
		names []string
		want  []string
		err   string
	}{
		{nil, []string{"a.example"}, ""},
		{[]string{" Mixed.Case.Example. "}, []string{"mixed.case.example"}, ""},
		{[]string{"*.Wild.Example"}, []string{"*.wild.example"}, ""},
		{[]string{"straße.example"}, []string{"xn--strae-oqa.example"}, ""},
		{[]string{"a.*.example"}, nil, `only a leading "*." wildcard label`},
		{[]string{"a..example"}, nil, "empty label"},
		{[]string{"bad\xff.example"}, nil, "not valid UTF-8"},
	} {
		cert, err := Load(c, nil, k, tc.names, now)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("names %q: %v, want %q", tc.names, err, tc.err)
			}
			continue
		}
		if err != nil || !slicesEqual(cert.Names, tc.want) {
			t.Errorf("names %q: %v %v, want %q", tc.names, cert, err, tc.want)
		}
	}
}
