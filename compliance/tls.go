package compliance

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"strings"
	"time"

	"github.com/sozu-go/sozu/proto/command"
	"github.com/sozu-go/sozu/worker/tlsconf"
)

// ExpiryWarning is how close to its expiry a certificate is reported warn.
const ExpiryWarning = 30 * 24 * time.Hour

const srcListeners = "list_listeners"

// tlsChecks: 4.2.1, per HTTPS listener, the policy the workers apply
// (tlsconf.ParsePolicy over the listener's knobs, as the workers do).
func tlsChecks(s *Snapshot) []Check {
	if s.ListenersErr != "" {
		return []Check{check("tls.versions", "HTTPS listeners", NA, "listeners unknown: "+s.ListenersErr)}
	}
	if len(s.HTTPS) == 0 {
		return []Check{check("tls.versions", "HTTPS listeners", NA, "no HTTPS listener",
			ev(srcListeners, "https_listeners: none"))}
	}
	var out []Check
	for _, l := range s.HTTPS {
		subject := "listener " + l.Address
		p, warnings := tlsconf.ParsePolicy(l.Versions, l.CipherList, l.CipherSuites, l.Groups, l.SendTLS13Tickets)
		base := tlsconf.BaseConfig()
		minV, maxV := base.MinVersion, base.MaxVersion
		if p.MinVersion != 0 {
			minV, maxV = p.MinVersion, p.MaxVersion
		}
		suites := base.CipherSuites
		if p.CipherSuites != nil {
			suites = p.CipherSuites
		}
		var vWarn, sWarn []string
		for _, w := range warnings {
			if w.Knob == "versions" {
				vWarn = append(vWarn, w.String())
			} else if strings.HasPrefix(w.Knob, "cipher_") {
				sWarn = append(sWarn, w.String())
			}
		}

		// versions
		{
			e := []Evidence{
				ev(srcListeners, "versions = %s", versionList(l.Versions)),
				ev("tlsconf.ParsePolicy", "effective: %s", versionSpan(minV, maxV)),
			}
			for _, w := range vWarn {
				e = append(e, ev("tlsconf.ParsePolicy", "%s", w))
			}
			st, sum := Pass, "only "+versionSpan(minV, maxV)
			switch {
			case minV < tls.VersionTLS12:
				st, sum = Fail, tls.VersionName(minV)+" is enabled"
			case len(vWarn) > 0:
				st, sum = Warn, "only "+versionSpan(minV, maxV)+"; the configuration asks for versions that were refused"
			}
			out = append(out, check("tls.versions", subject, st, sum, e...))
		}

		// cipher suites
		{
			var names, weak []string
			for _, id := range suites {
				n := tls.CipherSuiteName(id)
				names = append(names, n)
				if !strongSuite(n) {
					weak = append(weak, n)
				}
			}
			e := []Evidence{
				ev(srcListeners, "cipher_list = %s", list(l.CipherList)),
				ev("tlsconf.ParsePolicy", "effective TLS 1.2 suites: %s", strings.Join(names, ", ")),
			}
			if maxV >= tls.VersionTLS13 {
				e = append(e, ev("crypto/tls", "TLS 1.3 suites: TLS_AES_128_GCM_SHA256, TLS_AES_256_GCM_SHA384, TLS_CHACHA20_POLY1305_SHA256 (all AEAD)"))
			}
			for _, w := range sWarn {
				e = append(e, ev("tlsconf.ParsePolicy", "%s", w))
			}
			st, sum := Pass, "ECDHE key exchange with AEAD ciphers only"
			switch {
			case minV > tls.VersionTLS12:
				sum = "TLS 1.3 only: every suite is AEAD with ephemeral key exchange"
			case len(weak) > 0:
				st, sum = Fail, "suites without ECDHE or AEAD enabled: "+strings.Join(weak, ", ")
			}
			if st == Pass && len(sWarn) > 0 {
				st, sum = Warn, sum+"; the configuration names suites that were refused"
			}
			out = append(out, check("tls.cipher_suites", subject, st, sum, e...))
		}

		// session tickets: on only when both the global switch and the
		// listener's send_tls13_tickets say so.
		{
			on := s.Settings.TLSSessionTickets && p.Tickets
			e := []Evidence{
				ev("config", "tls_session_tickets = %t", s.Settings.TLSSessionTickets),
				ev(srcListeners, "send_tls13_tickets = %d", l.SendTLS13Tickets),
			}
			if on {
				out = append(out, check("tls.session_tickets", subject, Warn,
					"session tickets issued: a ticket key opens every session it sealed (keys rotate hourly, dropped after 24 h)", e...))
			} else {
				out = append(out, check("tls.session_tickets", subject, Pass, "no session tickets", e...))
			}
		}

		// strict SNI binding
		{
			on := l.StrictSNIBinding == nil || *l.StrictSNIBinding
			shown := "unset (default on)"
			if l.StrictSNIBinding != nil {
				shown = fmt.Sprint(*l.StrictSNIBinding)
			}
			e := ev(srcListeners, "strict_sni_binding = %s", shown)
			if on {
				out = append(out, check("tls.strict_sni", subject, Pass, "a Host other than the SNI name (without SNI: outside the default certificate's names) is answered 421", e))
			} else {
				out = append(out, check("tls.strict_sni", subject, Fail,
					"strict_sni_binding is off: a connection authenticated for one name can reach another", e))
			}
		}

		// HSTS
		{
			switch h := l.HSTS; {
			case h == nil || !h.Enabled:
				out = append(out, check("tls.hsts", subject, Warn, "no HSTS policy on the listener (frontends may set their own)",
					ev(srcListeners, "hsts: not enabled")))
			case h.MaxAge == 0:
				out = append(out, check("tls.hsts", subject, Warn, "HSTS max_age is 0: browsers forget the policy at once",
					ev(srcListeners, "hsts: enabled, max_age = 0")))
			default:
				out = append(out, check("tls.hsts", subject, Pass, "HSTS sent",
					ev(srcListeners, "hsts: enabled, max_age = %d, include_subdomains = %t", h.MaxAge, h.IncludeSubdomains)))
			}
		}
	}
	return out
}

// strongSuite: ECDHE key exchange and an AEAD cipher, by the IANA name.
func strongSuite(name string) bool {
	return strings.HasPrefix(name, "TLS_ECDHE_") &&
		(strings.Contains(name, "_GCM_") || strings.Contains(name, "CHACHA20_POLY1305"))
}

func versionSpan(minV, maxV uint16) string {
	if minV == maxV {
		return tls.VersionName(minV)
	}
	return tls.VersionName(minV) + " and " + tls.VersionName(maxV)
}

func versionList(vs []command.TlsVersion) string {
	if len(vs) == 0 {
		return "[] (the default)"
	}
	names := make([]string, len(vs))
	for i, v := range vs {
		names[i] = v.String()
	}
	return "[" + strings.Join(names, ", ") + "]"
}

func list(l []string) string {
	if len(l) == 0 {
		return "[] (the default)"
	}
	return "[" + strings.Join(l, ", ") + "]"
}

// certificateChecks: 4.2.1 asks for trusted, valid certificates; the
// proxy cannot judge trust, but it can see expiry and key strength.
func certificateChecks(s *Snapshot) []Check {
	var out []Check
	if s.CertificatesErr != "" {
		out = append(out, check("cert.expiry", "certificates of the state", NA,
			"certificates unknown: "+s.CertificatesErr))
	}
	if len(s.Certificates) == 0 && s.CertificatesErr == "" {
		return []Check{check("cert.expiry", "certificates", NA, "no certificate in the state nor on a listener",
			ev("query_certificates_from_the_state", "no certificate"))}
	}
	for _, c := range s.Certificates {
		leaf, err := leafOf(c.PEM)
		subject := certSubject(c, leaf)
		src := c.Source
		if err != nil {
			out = append(out, check("cert.expiry", subject, Fail, "the certificate does not parse: "+err.Error()))
			continue
		}
		e := []Evidence{
			ev(src, "not_before = %s, not_after = %s", leaf.NotBefore.UTC().Format(time.RFC3339), leaf.NotAfter.UTC().Format(time.RFC3339)),
			ev("report clock", "now = %s", s.Now.UTC().Format(time.RFC3339)),
		}
		left := leaf.NotAfter.Sub(s.Now)
		switch {
		case s.Now.After(leaf.NotAfter):
			out = append(out, check("cert.expiry", subject, Fail, "expired "+days(-left)+" ago", e...))
		case s.Now.Before(leaf.NotBefore):
			out = append(out, check("cert.expiry", subject, Fail, "not valid yet", e...))
		case left < ExpiryWarning:
			out = append(out, check("cert.expiry", subject, Warn, "expires in "+days(left)+" (under 30 days)", e...))
		default:
			out = append(out, check("cert.expiry", subject, Pass, "valid for "+days(left), e...))
		}
		desc, ok := keyStrength(leaf.PublicKey)
		st, sum := Pass, desc
		if !ok {
			st, sum = Fail, desc+": below RSA 2048 / ECDSA P-256, P-384"
		}
		out = append(out, check("cert.key", subject, st, sum, ev(src, "public key: %s", desc)))
	}
	return out
}

func certSubject(c Certificate, leaf *x509.Certificate) string {
	s := "certificate"
	if c.Fingerprint != "" {
		fp := c.Fingerprint
		if len(fp) > 16 {
			fp = fp[:16] + "…"
		}
		s += " " + fp
	}
	names := c.Names
	if len(names) == 0 && leaf != nil {
		names = leaf.DNSNames
		if len(names) == 0 && leaf.Subject.CommonName != "" {
			names = []string{leaf.Subject.CommonName}
		}
	}
	if len(names) > 0 {
		s += " (" + strings.Join(names, ", ") + ")"
	}
	return s
}

func leafOf(certPEM string) (*x509.Certificate, error) {
	for rest := []byte(certPEM); ; {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			return nil, fmt.Errorf("no CERTIFICATE PEM block")
		}
		if block.Type == "CERTIFICATE" {
			return x509.ParseCertificate(block.Bytes)
		}
	}
}

// keyStrength describes a public key and whether PCI reviewers count it as
// strong cryptography (the same bar as tlsconf's certificate check).
func keyStrength(pub any) (string, bool) {
	switch k := pub.(type) {
	case *rsa.PublicKey:
		return fmt.Sprintf("RSA %d bits", k.N.BitLen()), k.N.BitLen() >= tlsconf.MinRSABits
	case *ecdsa.PublicKey:
		return "ECDSA " + k.Curve.Params().Name, k.Curve == elliptic.P256() || k.Curve == elliptic.P384()
	}
	return fmt.Sprintf("%T", pub), false
}

func days(d time.Duration) string {
	n := int(d / (24 * time.Hour))
	if n == 1 {
		return "1 day"
	}
	if n == 0 {
		return "less than a day"
	}
	return fmt.Sprintf("%d days", n)
}

func sprintf(format string, args ...any) string {
	if len(args) == 0 {
		return format
	}
	return fmt.Sprintf(format, args...)
}
