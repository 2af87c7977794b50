// Package tlsconf is the worker's TLS termination policy: it validates
// certificates when they are loaded, indexes them by SNI name in immutable
// snapshots, and builds the tls.Config of each HTTPS listener, whose
// handshakes read the current snapshot without a lock.
package tlsconf

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/sozu-go/sozu/worker/idna"
)

// MinRSABits is the smallest RSA modulus accepted.
const MinRSABits = 2048

// Cert is a validated certificate, ready to serve.
type Cert struct {
	Fingerprint string    // lowercase hex SHA-256 of the leaf DER
	Names       []string  // SNI names it answers (lowercase A-labels; "*.x" wildcards)
	NotAfter    time.Time // leaf expiry
	// ExpiredAt, when not zero, replaces NotAfter when NewIndex chooses
	// among certificates serving one name (AddCertificate.expired_at, as
	// upstream's resolver uses it). It plays no part in validity.
	ExpiredAt time.Time
	TLS       *tls.Certificate
}

// rank is the expiry by which certificates compete for a name.
func (c *Cert) rank() time.Time {
	if !c.ExpiredAt.IsZero() {
		return c.ExpiredAt
	}
	return c.NotAfter
}

// Error is a refused certificate: Problem names what is wrong, Fingerprint
// identifies the leaf when it parsed ("" otherwise).
type Error struct {
	Fingerprint string
	Problem     string
}

func (e *Error) Error() string {
	if e.Fingerprint == "" {
		return "certificate refused: " + e.Problem
	}
	return "certificate " + e.Fingerprint + " refused: " + e.Problem
}

// Load parses and validates a PEM certificate, its chain (PEM, each entry
// may hold several blocks) and its PEM private key, at time now. names,
// when not empty, replaces the SAN DNS names (else the subject CN when the
// certificate has no SAN DNS name). The key is never part of an error.
func Load(certPEM string, chain []string, keyPEM string, names []string, now time.Time) (*Cert, error) {
	leafDER, err := firstCert([]byte(certPEM))
	if err != nil {
		return nil, &Error{Problem: err.Error()}
	}
	sum := sha256.Sum256(leafDER)
	fp := hex.EncodeToString(sum[:])
	refuse := func(format string, args ...any) error {
		return &Error{Fingerprint: fp, Problem: fmt.Sprintf(format, args...)}
	}
	leaf, err := x509.ParseCertificate(leafDER)
	if err != nil {
		return nil, refuse("the leaf certificate does not parse: %v", err)
	}
	der := [][]byte{leafDER}
	for i, c := range chain {
		rest := []byte(c)
		n := 0
		for {
			var b *pem.Block
			b, rest = pem.Decode(rest)
			if b == nil {
				break
			}
			if b.Type != "CERTIFICATE" {
				continue
			}
			if _, err := x509.ParseCertificate(b.Bytes); err != nil {
				return nil, refuse("chain certificate %d does not parse: %v", i+1, err)
			}
			der = append(der, b.Bytes)
			n++
		}
		if n == 0 && strings.TrimSpace(c) != "" {
			return nil, refuse("chain entry %d holds no CERTIFICATE PEM block", i+1)
		}
	}
	if now.Before(leaf.NotBefore) {
		return nil, refuse("not yet valid: valid from %s", leaf.NotBefore.UTC().Format(time.RFC3339))
	}
	if now.After(leaf.NotAfter) {
		return nil, refuse("expired on %s", leaf.NotAfter.UTC().Format(time.RFC3339))
	}
	if err := checkPublicKey(leaf.PublicKey); err != nil {
		return nil, refuse("%v", err)
	}
	key, err := parseKey([]byte(keyPEM))
	if err != nil {
		return nil, refuse("%v", err)
	}
	if !publicKeyOf(key).(interface{ Equal(crypto.PublicKey) bool }).Equal(leaf.PublicKey) {
		return nil, refuse("the private key does not match the certificate")
	}
	ns, err := certNames(names, leaf)
	if err != nil {
		return nil, refuse("%v", err)
	}
	return &Cert{Fingerprint: fp, Names: ns, NotAfter: leaf.NotAfter,
		TLS: &tls.Certificate{Certificate: der, PrivateKey: key, Leaf: leaf}}, nil
}

func firstCert(b []byte) ([]byte, error) {
	for {
		var block *pem.Block
		block, b = pem.Decode(b)
		if block == nil {
			return nil, errors.New("no CERTIFICATE PEM block found")
		}
		if block.Type == "CERTIFICATE" {
			return block.Bytes, nil
		}
	}
}

func checkPublicKey(pub any) error {
	switch k := pub.(type) {
	case *rsa.PublicKey:
		if k.N.BitLen() < MinRSABits {
			return fmt.Errorf("RSA key of %d bits is too weak (at least %d required)", k.N.BitLen(), MinRSABits)
		}
	case *ecdsa.PublicKey:
		if k.Curve != elliptic.P256() && k.Curve != elliptic.P384() {
			return fmt.Errorf("ECDSA curve %s is not accepted (P-256 or P-384 only)", k.Curve.Params().Name)
		}
	default:
		return fmt.Errorf("public key type %T is not accepted (RSA >= %d or ECDSA P-256/P-384)", pub, MinRSABits)
	}
	return nil
}

// parseKey reads the first private key PEM block (PKCS#8, PKCS#1 or SEC 1).
func parseKey(b []byte) (crypto.Signer, error) {
	for {
		var block *pem.Block
		block, b = pem.Decode(b)
		if block == nil {
			return nil, errors.New("no PRIVATE KEY PEM block found")
		}
		if block.Type != "PRIVATE KEY" && !strings.HasSuffix(block.Type, " PRIVATE KEY") {
			continue
		}
		var k any
		var err error
		switch block.Type {
		case "RSA PRIVATE KEY":
			k, err = x509.ParsePKCS1PrivateKey(block.Bytes)
		case "EC PRIVATE KEY":
			k, err = x509.ParseECPrivateKey(block.Bytes)
		default:
			k, err = x509.ParsePKCS8PrivateKey(block.Bytes)
		}
		if err != nil {
			// The parser's error never holds key material, but keep it short.
			return nil, fmt.Errorf("the private key (%s block) does not parse", block.Type)
		}
		switch s := k.(type) {
		case *rsa.PrivateKey, *ecdsa.PrivateKey:
			return s.(crypto.Signer), nil
		case ed25519.PrivateKey:
			return nil, errors.New("Ed25519 private keys are not accepted")
		default:
			return nil, fmt.Errorf("private key type %T is not accepted", k)
		}
	}
}

func publicKeyOf(k crypto.Signer) crypto.PublicKey { return k.Public() }

// certNames returns the names of a certificate, lowercase, without a
// trailing dot, and with internationalized labels in their A-label form
// ("bücher.example" is indexed as "xn--bcher-kva.example", the form clients
// send in SNI): explicit names when given, else the SAN DNS names, else the
// subject CN. IP address SANs are not names: clients send no SNI for an
// IP address, so such a certificate serves them as a listener's default.
func certNames(explicit []string, leaf *x509.Certificate) ([]string, error) {
	src := explicit
	if len(src) == 0 {
		src = leaf.DNSNames
	}
	if len(src) == 0 && leaf.Subject.CommonName != "" {
		src = []string{leaf.Subject.CommonName}
	}
	var out []string
	for _, n := range src {
		if !utf8.ValidString(n) {
			return nil, fmt.Errorf("name %q is not valid UTF-8", n)
		}
		n = strings.ToLower(strings.TrimSuffix(strings.TrimSpace(n), "."))
		if n == "" {
			continue
		}
		a, err := idna.ToASCII(n)
		if err != nil {
			return nil, fmt.Errorf("name %q: %v", n, err)
		}
		n = a
		if strings.Contains(strings.TrimPrefix(n, "*."), "*") {
			return nil, fmt.Errorf("name %q: only a leading \"*.\" wildcard label is supported", n)
		}
		if slices.Contains(strings.Split(strings.TrimPrefix(n, "*."), "."), "") {
			return nil, fmt.Errorf("name %q has an empty label", n)
		}
		out = append(out, n)
	}
	return out, nil
}

// Index is an immutable SNI index of one listener's certificates.
type Index struct {
	exact map[string]*Cert
	wild  map[string]*Cert // by the suffix after "*."
	def   *Cert
	certs []*Cert
	cfg   *tls.Config // the listener's policy (WithPolicy), nil: BaseConfig
	// refuse is cfg for a client offering none of its ALPN protocols
	// (refuseALPN), made with it.
	refuse *tls.Config
	// keyGen is the generation of the ticket keys last installed in cfg.
	keyGen atomic.Uint64
}

// WithPolicy sets the TLS policy of the listener whose index ix is, and
// returns ix. Call it before the index is published (Store.Swap): each
// snapshot carries its policy, so that a changed policy applies to the
// next handshakes at once, like a changed certificate.
func (ix *Index) WithPolicy(p Policy) *Index {
	c := BaseConfig()
	p.apply(c)
	c.GetCertificate = func(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
		if cert := ix.Lookup(hello.ServerName); cert != nil {
			return cert.TLS, nil
		}
		return nil, ErrNoCertificate
	}
	ix.cfg, ix.refuse = c, refuseALPN(c)
	return ix
}

// Summary is one name a loaded certificate answers for.
type Summary struct {
	Name string // as indexed: lowercase A-labels, maybe "*.x"
	Cert *Cert
}

// Served lists, sorted by name then fingerprint, the names under which
// the index serves each of its certificates, the default one included: a
// name shadowed by a certificate expiring later is left out.
func (ix *Index) Served() []Summary {
	if ix == nil {
		return nil
	}
	var out []Summary
	for k, c := range ix.exact {
		out = append(out, Summary{Name: k, Cert: c})
	}
	for k, c := range ix.wild {
		out = append(out, Summary{Name: "*." + k, Cert: c})
	}
	slices.SortFunc(out, func(a, b Summary) int {
		if c := strings.Compare(a.Name, b.Name); c != 0 {
			return c
		}
		return strings.Compare(a.Cert.Fingerprint, b.Cert.Fingerprint)
	})
	return out
}

// NewIndex indexes certs and def (maybe nil) by name, as upstream's
// resolver indexes a listener's certificate and the added ones together.
// Where names overlap, the certificate expiring last wins (ExpiredAt
// replacing NotAfter when set; ties: the smaller fingerprint, so that the
// result does not depend on the order). def also answers handshakes
// without SNI or for a name no certificate serves.
func NewIndex(certs []*Cert, def *Cert) *Index {
	ix := &Index{exact: map[string]*Cert{}, wild: map[string]*Cert{}, def: def, certs: certs}
	all := certs
	if def != nil {
		all = append(slices.Clip(certs), def)
	}
	for _, c := range all {
		for _, n := range c.Names {
			m, k := ix.exact, n
			if rest, ok := strings.CutPrefix(n, "*."); ok {
				m, k = ix.wild, rest
			}
			if old := m[k]; old == nil || better(c, old) {
				m[k] = c
			}
		}
	}
	return ix
}

func better(a, b *Cert) bool {
	if ra, rb := a.rank(), b.rank(); !ra.Equal(rb) {
		return ra.After(rb)
	}
	return a.Fingerprint < b.Fingerprint
}

// Match returns the name under which the index serves name, and the
// certificate: the exact name, else the one-label wildcard covering it
// (upstream's resolver lookup, as query_certificates_from_workers filters
// by domain). A name only the default certificate answers, as a fallback,
// has no match.
func (ix *Index) Match(name string) (Summary, bool) {
	if ix == nil {
		return Summary{}, false
	}
	name = normalizeSNI(name)
	if name == "" {
		return Summary{}, false
	}
	if c := ix.exact[name]; c != nil {
		return Summary{Name: name, Cert: c}, true
	}
	if label, rest, ok := strings.Cut(name, "."); ok && label != "" && rest != "" {
		if c := ix.wild[rest]; c != nil {
			return Summary{Name: "*." + rest, Cert: c}, true
		}
	}
	return Summary{}, false
}

// normalizeSNI is name as the index keys it: lowercase, no trailing dot,
// internationalized labels as A-labels (a name that cannot be converted
// is kept, and matches nothing).
func normalizeSNI(name string) string {
	name = strings.ToLower(strings.TrimSuffix(name, "."))
	if a, err := idna.ToASCII(name); err == nil {
		return a
	}
	return name
}

// Lookup returns the certificate for an SNI name (any case, maybe with a
// trailing dot or Unicode labels): an exact match, else a one-label
// wildcard match ("*.example.com" serves "a.example.com", neither
// "example.com" nor "a.b.example.com"), else the default (nil when none).
func (ix *Index) Lookup(name string) *Cert {
	if s, ok := ix.Match(name); ok {
		return s.Cert
	}
	if ix == nil {
		return nil
	}
	return ix.def
}

// Certs returns the indexed certificates (not the default), read-only.
func (ix *Index) Certs() []*Cert { return ix.certs }

// Default returns the default certificate, maybe nil.
func (ix *Index) Default() *Cert { return ix.def }

// Store holds the current SNI indexes of every HTTPS listener, by
// listener key. Swap replaces them all at once; handshakes in progress
// keep the snapshot they read.
type Store struct {
	p atomic.Pointer[map[string]*Index]

	mu    sync.Mutex
	rings map[string]*keyring // session ticket keys, by listener
}

// Swap makes m (which the store takes ownership of) the current indexes.
func (s *Store) Swap(m map[string]*Index) { s.p.Store(&m) }

// Index returns the current index of a listener, maybe nil.
func (s *Store) Index(listener string) *Index {
	if m := s.p.Load(); m != nil {
		return (*m)[listener]
	}
	return nil
}

// ErrNoCertificate fails a handshake for which no certificate applies.
var ErrNoCertificate = errors.New("no certificate for this server name and no default certificate")

// Config returns the tls.Config of a listener: TLS 1.2 and 1.3 only,
// ECDHE with AEAD suites only, X25519/P-256/P-384, ALPN h2 then http/1.1
// (the policy's ALPN when set), and the
// certificate chosen from the store's current index at each handshake.
// When the current index carries a policy (WithPolicy), each handshake
// uses it instead; when that policy enables session tickets, their keys
// are the listener's (rotated, see TicketKeyRotation), so that sessions
// resume across snapshots.
func (s *Store) Config(listener string) *tls.Config {
	s.mu.Lock()
	if s.rings == nil {
		s.rings = map[string]*keyring{}
	}
	ring := s.rings[listener]
	if ring == nil {
		ring = &keyring{}
		s.rings[listener] = ring
	}
	s.mu.Unlock()
	base := BaseConfig()
	base.GetCertificate = func(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
		if c := s.Index(listener).Lookup(hello.ServerName); c != nil {
			return c.TLS, nil
		}
		return nil, ErrNoCertificate
	}
	baseRefuse := refuseALPN(base)
	base.GetConfigForClient = func(hello *tls.ClientHelloInfo) (*tls.Config, error) {
		if ix := s.Index(listener); ix != nil && ix.cfg != nil {
			if !alpnOverlap(ix.cfg.NextProtos, hello.SupportedProtos) {
				return ix.refuse, nil
			}
			if !ix.cfg.SessionTicketsDisabled {
				ring.install(ix.cfg, &ix.keyGen, time.Now())
			}
			return ix.cfg, nil
		}
		if !alpnOverlap(base.NextProtos, hello.SupportedProtos) {
			return baseRefuse, nil
		}
		return nil, nil
	}
	return base
}

// alpnOverlap reports whether a client offering offered (ALPN) can be given
// one of protos: true when it offered none (it is served HTTP/1.1).
func alpnOverlap(protos, offered []string) bool {
	if len(offered) == 0 || len(protos) == 0 {
		return true
	}
	for _, p := range protos {
		if slices.Contains(offered, p) {
			return true
		}
	}
	return false
}

// refuseALPN returns a copy of c, made once with c, whose handshake fails with the
// no_application_protocol alert, for a client offering none of c's ALPN
// protocols (RFC 7301 §3.2; upstream's rustls refuses it so). c itself
// would not: Go's TLS completes the handshake of an "http/1.1" client
// without a protocol when the server offers "h2" (its http/1.1 fallback),
// and an h2-only listener would serve it HTTP/1.1. The copy offers a
// protocol no client names, so the negotiation fails.
func refuseALPN(c *tls.Config) *tls.Config {
	r := c.Clone()
	r.NextProtos = []string{"\x00sozu: no protocol in common"}
	r.GetConfigForClient = nil
	return r
}

// Listeners returns the keys of the listeners the store holds, sorted.
func (s *Store) Listeners() []string {
	m := s.p.Load()
	if m == nil {
		return nil
	}
	keys := make([]string, 0, len(*m))
	for k := range *m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// BaseConfig is the policy without certificates.
func BaseConfig() *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		MaxVersion: tls.VersionTLS13,
		CipherSuites: []uint16{ // TLS 1.2; TLS 1.3 suites are all AEAD
			tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
			tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
			tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
			tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
			tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
			tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
		},
		CurvePreferences:       []tls.CurveID{tls.X25519, tls.CurveP256, tls.CurveP384},
		NextProtos:             slices.Clone(DefaultALPN),
		SessionTicketsDisabled: true, // see Policy
	}
}
