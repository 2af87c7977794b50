package tlsconf

import (
	"crypto/tls"
	"fmt"
	"slices"
	"strings"

	"github.com/sozu-go/sozu/proto/command"
)

// Policy is the TLS policy of one HTTPS listener, parsed from upstream's
// HttpsListenerConfig knobs (versions, cipher_list, cipher_suites,
// groups_list). Its zero value is the default policy of BaseConfig.
//
// What Go's crypto/tls allows, and therefore what is honoured:
//
//   - versions: only TLS 1.2 and TLS 1.3 can be enabled; older versions are
//     ignored with a warning. Go takes a range (min, max), so enabling 1.2
//     and 1.3 gives both, one of them gives only that one.
//
//   - cipher_list: TLS 1.2 suites, spelt as OpenSSL ("ECDHE-ECDSA-AES256-
//     GCM-SHA384"), IANA ("TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384") or
//     rustls/upstream ("TLS12_ECDHE_...") do. Only ECDHE key exchange with
//     an AEAD cipher may be enabled; anything else is refused with a
//     warning. Go ignores the order of the list (it chooses by hardware).
//     TLS 1.3 names found there are accepted (upstream's default list holds
//     them) and treated as cipher_suites.
//
//   - cipher_suites: TLS 1.3 suites ("TLS_AES_128_GCM_SHA256",
//     "TLS13_AES_128_GCM_SHA256", ...). Go does not let TLS 1.3 suites be
//     chosen: all three (AEAD only) stay enabled; a list naming fewer is
//     accepted with a warning. TLS 1.2 names there are ignored (upstream's
//     default for cipher_suites is the whole cipher list).
//
//   - groups_list: "x25519", "P-256", "P-384", "P-521", "X25519MLKEM768",
//     "SecP256r1MLKEM768", "SecP384r1MLKEM1024" (and OpenSSL's aliases
//     "secp256r1", "prime256v1", "secp384r1", "secp521r1"). Go ignores the
//     order of the list.
//
//   - send_tls13_tickets: 0 (the default of this proxy) disables session
//     tickets, for TLS 1.2 and TLS 1.3; any other number enables them (Go
//     sends one TLS 1.3 ticket per handshake, whatever the number). A
//     ticket key can decrypt every session it sealed, so tickets weaken
//     forward secrecy: when enabled, each worker seals them with keys of
//     its own, rotated every TicketKeyRotation and dropped after
//     TicketKeyLifetime (Go still advertises a 7-day lifetime hint, which
//     scanners such as testssl report as LOW).
//
// An empty list, or one from which nothing valid remains, keeps the
// default for that knob.
type Policy struct {
	MinVersion, MaxVersion uint16        // 0: TLS 1.2 and TLS 1.3
	CipherSuites           []uint16      // TLS 1.2 suites; nil: the defaults
	Curves                 []tls.CurveID // nil: the defaults
	Tickets                bool          // session tickets enabled
	// ALPN is the listener's alpn_protocols, in order of preference ("h2",
	// "http/1.1"); nil: DefaultALPN.
	ALPN []string
}

// DefaultALPN is upstream's default ALPN order: HTTP/2 first.
var DefaultALPN = []string{"h2", "http/1.1"}

// defaultSuites are the TLS 1.2 suites enabled by default: ECDHE with AEAD.
var defaultSuites = []uint16{
	tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
	tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
	tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
	tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
	tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
	tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
}

var defaultCurves = []tls.CurveID{tls.X25519, tls.CurveP256, tls.CurveP384}

// openSSLNames maps OpenSSL's names of TLS 1.2 suites that Go knows to
// their IANA names (the allowed ones and common refused ones, so that the
// warning says why a name is refused rather than "unknown").
var openSSLNames = map[string]string{
	"ECDHE-ECDSA-AES128-GCM-SHA256": "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
	"ECDHE-RSA-AES128-GCM-SHA256":   "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
	"ECDHE-ECDSA-AES256-GCM-SHA384": "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
	"ECDHE-RSA-AES256-GCM-SHA384":   "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
	"ECDHE-ECDSA-CHACHA20-POLY1305": "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
	"ECDHE-RSA-CHACHA20-POLY1305":   "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
	"ECDHE-ECDSA-AES128-SHA256":     "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256",
	"ECDHE-RSA-AES128-SHA256":       "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256",
	"ECDHE-ECDSA-AES128-SHA":        "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA",
	"ECDHE-RSA-AES128-SHA":          "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA",
	"ECDHE-ECDSA-AES256-SHA":        "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA",
	"ECDHE-RSA-AES256-SHA":          "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA",
	"ECDHE-ECDSA-RC4-SHA":           "TLS_ECDHE_ECDSA_WITH_RC4_128_SHA",
	"ECDHE-RSA-RC4-SHA":             "TLS_ECDHE_RSA_WITH_RC4_128_SHA",
	"ECDHE-RSA-DES-CBC3-SHA":        "TLS_ECDHE_RSA_WITH_3DES_EDE_CBC_SHA",
	"AES128-GCM-SHA256":             "TLS_RSA_WITH_AES_128_GCM_SHA256",
	"AES256-GCM-SHA384":             "TLS_RSA_WITH_AES_256_GCM_SHA384",
	"AES128-SHA256":                 "TLS_RSA_WITH_AES_128_CBC_SHA256",
	"AES128-SHA":                    "TLS_RSA_WITH_AES_128_CBC_SHA",
	"AES256-SHA":                    "TLS_RSA_WITH_AES_256_CBC_SHA",
	"DES-CBC3-SHA":                  "TLS_RSA_WITH_3DES_EDE_CBC_SHA",
	"RC4-SHA":                       "TLS_RSA_WITH_RC4_128_SHA",
}

// tls13Names are the TLS 1.3 suites, by the names upstream and OpenSSL use.
var tls13Names = map[string]uint16{
	"TLS_AES_128_GCM_SHA256":         tls.TLS_AES_128_GCM_SHA256,
	"TLS_AES_256_GCM_SHA384":         tls.TLS_AES_256_GCM_SHA384,
	"TLS_CHACHA20_POLY1305_SHA256":   tls.TLS_CHACHA20_POLY1305_SHA256,
	"TLS13_AES_128_GCM_SHA256":       tls.TLS_AES_128_GCM_SHA256,
	"TLS13_AES_256_GCM_SHA384":       tls.TLS_AES_256_GCM_SHA384,
	"TLS13_CHACHA20_POLY1305_SHA256": tls.TLS_CHACHA20_POLY1305_SHA256,
}

var groupNames = map[string]tls.CurveID{
	"x25519":             tls.X25519,
	"p-256":              tls.CurveP256,
	"secp256r1":          tls.CurveP256,
	"prime256v1":         tls.CurveP256,
	"p-384":              tls.CurveP384,
	"secp384r1":          tls.CurveP384,
	"p-521":              tls.CurveP521,
	"secp521r1":          tls.CurveP521,
	"x25519mlkem768":     tls.X25519MLKEM768,
	"secp256r1mlkem768":  tls.SecP256r1MLKEM768,
	"secp384r1mlkem1024": tls.SecP384r1MLKEM1024,
}

// suiteByIANA finds a TLS 1.2 suite Go implements by its IANA name.
func suiteByIANA(name string) *tls.CipherSuite {
	for _, list := range [][]*tls.CipherSuite{tls.CipherSuites(), tls.InsecureCipherSuites()} {
		for _, s := range list {
			if s.Name == name && slices.Contains(s.SupportedVersions, tls.VersionTLS12) {
				return s
			}
		}
	}
	return nil
}

// allowed reports whether a TLS 1.2 suite is ECDHE with an AEAD cipher.
func allowed(id uint16) bool { return slices.Contains(defaultSuites, id) }

// PolicyWarning is what ParsePolicy says of a listener's TLS knob: an
// entry ignored or refused, or the knob read otherwise than written.
type PolicyWarning struct {
	Knob string // versions, cipher_list, cipher_suites or groups_list
	Msg  string
	Kind PolicyWarningKind
}

// String reads "knob: msg".
func (w PolicyWarning) String() string { return w.Knob + ": " + w.Msg }

// PolicyWarningKind says what a PolicyWarning means for the operator's
// intent.
type PolicyWarningKind uint8

const (
	// Ignored: an entry left out, or the defaults used for want of one.
	Ignored PolicyWarningKind = iota
	// TLS13Unrestricted: the lists name fewer than the three TLS 1.3
	// suites, which Go's crypto/tls keeps enabled all the same.
	TLS13Unrestricted
	// TLS13Only: cipher_list names TLS 1.3 suites only, so TLS 1.2 is
	// disabled, as that asks.
	TLS13Only
)

// ParsePolicy reads a listener's TLS knobs. Every ignored or refused
// entry, and a knob read otherwise than written, is reported in warnings.
func ParsePolicy(versions []command.TlsVersion, cipherList, cipherSuites, groups []string, tickets uint64) (p Policy, warnings []PolicyWarning) {
	warnAs := func(kind PolicyWarningKind, knob, format string, args ...any) {
		warnings = append(warnings, PolicyWarning{Knob: knob, Msg: fmt.Sprintf(format, args...), Kind: kind})
	}
	warn := func(knob, format string, args ...any) { warnAs(Ignored, knob, format, args...) }
	p.Tickets = tickets > 0

	// versions
	var v12, v13 bool
	for _, v := range versions {
		switch v {
		case command.TlsVersion_TLS_V1_2:
			v12 = true
		case command.TlsVersion_TLS_V1_3:
			v13 = true
		default:
			warn("versions", "%s is not allowed (TLS 1.2 and TLS 1.3 only): ignored", v)
		}
	}
	switch {
	case v12 && !v13:
		p.MinVersion, p.MaxVersion = tls.VersionTLS12, tls.VersionTLS12
	case v13 && !v12:
		p.MinVersion, p.MaxVersion = tls.VersionTLS13, tls.VersionTLS13
	case !v12 && !v13 && len(versions) > 0:
		warn("versions", "no allowed version left: TLS 1.2 and TLS 1.3 are enabled")
	}

	// cipher_list and cipher_suites
	var suites []uint16
	tls13 := map[uint16]bool{}
	sawTLS13 := false
	for _, name := range splitList(cipherList) {
		if id, ok := tls13Names[name]; ok {
			tls13[id], sawTLS13 = true, true
			continue
		}
		iana := name
		if rest, ok := strings.CutPrefix(name, "TLS12_"); ok {
			iana = "TLS_" + rest
		} else if o, ok := openSSLNames[strings.ToUpper(name)]; ok {
			iana = o
		}
		s := suiteByIANA(iana)
		switch {
		case s == nil:
			warn("cipher_list", "%q is not a TLS 1.2 cipher suite this proxy knows: ignored", name)
		case !allowed(s.ID):
			warn("cipher_list", "%s is refused (only ECDHE key exchange with an AEAD cipher is allowed)", s.Name)
		case !slices.Contains(suites, s.ID):
			suites = append(suites, s.ID)
		}
	}
	for _, name := range splitList(cipherSuites) {
		if id, ok := tls13Names[name]; ok {
			tls13[id], sawTLS13 = true, true
			continue
		}
		if _, ok := openSSLNames[strings.ToUpper(name)]; ok || strings.HasPrefix(name, "TLS12_") || suiteByIANA(name) != nil {
			continue // a TLS 1.2 name: cipher_list decides
		}
		warn("cipher_suites", "%q is not a TLS 1.3 cipher suite: ignored", name)
	}
	if sawTLS13 && len(tls13) < 3 {
		warnAs(TLS13Unrestricted, "cipher_suites", "TLS 1.3 suites cannot be restricted with Go's crypto/tls: all three (AEAD) stay enabled")
	}
	switch {
	case len(suites) > 0:
		p.CipherSuites = suites
	case len(splitList(cipherList)) > 0 && sawTLS13 && p.MaxVersion != tls.VersionTLS12:
		// Only TLS 1.3 names: the operator asks for TLS 1.3 only.
		if p.MinVersion != tls.VersionTLS13 {
			warnAs(TLS13Only, "cipher_list", "no TLS 1.2 suite enabled: TLS 1.2 is disabled")
		}
		p.MinVersion, p.MaxVersion = tls.VersionTLS13, tls.VersionTLS13
	case len(splitList(cipherList)) > 0:
		warn("cipher_list", "no allowed TLS 1.2 suite left: the default suites are enabled")
	}

	// groups_list
	for _, name := range splitList(groups) {
		id, ok := groupNames[strings.ToLower(name)]
		if !ok {
			warn("groups_list", "%q is not a supported group: ignored", name)
			continue
		}
		if !slices.Contains(p.Curves, id) {
			p.Curves = append(p.Curves, id)
		}
	}
	if len(p.Curves) == 0 && len(splitList(groups)) > 0 {
		warn("groups_list", "no supported group left: the default groups are enabled")
	}
	return p, warnings
}

// splitList trims the entries of a list and splits those holding an
// OpenSSL colon-separated list.
func splitList(list []string) []string {
	var out []string
	for _, e := range list {
		for _, f := range strings.Split(e, ":") {
			if f = strings.TrimSpace(f); f != "" {
				out = append(out, f)
			}
		}
	}
	return out
}

// apply sets the policy on c (a BaseConfig).
func (p Policy) apply(c *tls.Config) {
	if p.MinVersion != 0 {
		c.MinVersion, c.MaxVersion = p.MinVersion, p.MaxVersion
	}
	if p.CipherSuites != nil {
		c.CipherSuites = slices.Clone(p.CipherSuites)
	}
	if p.Curves != nil {
		c.CurvePreferences = slices.Clone(p.Curves)
	}
	c.SessionTicketsDisabled = !p.Tickets
	if len(p.ALPN) > 0 {
		c.NextProtos = slices.Clone(p.ALPN)
	}
}
