package state

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/asn1"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/sozu-go/sozu/proto/command"
)

// Fingerprint returns the lowercase hex SHA-256 of the DER bytes of the
// leaf certificate: the first CERTIFICATE block of certPEM, which must
// parse as X.509. This is how certificates are identified on the wire.
func Fingerprint(certPEM string) (string, error) {
	fp, _, err := parseLeaf(certPEM)
	var le *leafError
	if errors.As(err, &le) {
		if le.noBlock {
			return "", errors.New("no CERTIFICATE PEM block found")
		}
		return "", fmt.Errorf("cannot parse the leaf certificate: %w", le.err)
	}
	return fp, err
}

// leafError is a certificate that does not parse; its text is upstream's
// (command/src/certificate.rs, CertificateError), as the state reports it.
type leafError struct {
	noBlock bool  // no CERTIFICATE PEM block
	err     error // else the X.509 parser's
}

func (e *leafError) Error() string {
	if e.noBlock {
		return "Could not parse PEM certificate from bytes: no CERTIFICATE PEM block found"
	}
	return "Could not parse X509 certificate from bytes: " + e.err.Error()
}

func (e *leafError) Unwrap() error { return e.err }

// parseLeaf returns the fingerprint and the parsed leaf of certPEM, or a
// *leafError.
func parseLeaf(certPEM string) (string, *x509.Certificate, error) {
	rest := []byte(certPEM)
	for {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			return "", nil, &leafError{noBlock: true}
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		leaf, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return "", nil, &leafError{err: err}
		}
		sum := sha256.Sum256(block.Bytes)
		return hex.EncodeToString(sum[:]), leaf, nil
	}
}

var oidCommonName = asn1.ObjectIdentifier{2, 5, 4, 3}

// certNames returns the SNI names of a certificate as upstream computes
// them when a certificate is added (CertificateAndKey::apply_overriding_names):
// the explicit names, verbatim, when given; else the SAN DNS names; else,
// when the certificate has no SAN DNS name (no SAN, or only IP/e-mail
// SANs), every subject CN. Consecutive duplicates are dropped. None when
// the certificate names nothing.
func certNames(explicit []string, leaf *x509.Certificate) []string {
	if len(explicit) > 0 {
		return explicit
	}
	var names []string
	if len(leaf.DNSNames) > 0 {
		names = slices.Clone(leaf.DNSNames)
	} else {
		for _, atv := range leaf.Subject.Names {
			if v, ok := atv.Value.(string); ok && atv.Type.Equal(oidCommonName) {
				names = append(names, v)
			}
		}
	}
	return slices.Compact(names)
}

// decodeFingerprint decodes a hex fingerprint (either case) and returns it
// in lowercase. Its errors are those of the hex crate upstream decodes
// with: "Odd number of digits" (checked first), "Invalid character 'z' at
// position 3".
func decodeFingerprint(fp string) (string, error) {
	if len(fp)%2 != 0 {
		return "", errors.New("Odd number of digits")
	}
	for i := 0; i < len(fp); i++ {
		c := fp[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
			return "", fmt.Errorf("Invalid character %s at position %d", rustChar(rune(c)), i)
		}
	}
	return strings.ToLower(fp), nil
}

// rustChar formats a character as Rust's Debug for char does for the
// characters a hex decoder meets: quoted, with \0, \t, \n, \r, \', \\ and
// other control characters (\u{7f}) escaped.
func rustChar(r rune) string {
	switch r {
	case 0:
		return `'\0'`
	case '\t':
		return `'\t'`
	case '\n':
		return `'\n'`
	case '\r':
		return `'\r'`
	case '\'':
		return `'\''`
	case '\\':
		return `'\\'`
	}
	if r < 0x20 || (r >= 0x7f && r < 0xa0) {
		return fmt.Sprintf(`'\u{%x}'`, r)
	}
	return "'" + string(r) + "'"
}

// addCertificate stores a certificate for an address under its
// fingerprint, with its names filled in (certNames), as upstream's state
// does (command/src/state.rs add_certificate):
//   - the address need not be an HTTPS listener: the state takes the
//     certificate (each worker then refuses it, naming the missing
//     listener, see worker.certificateListener);
//   - the same fingerprint again on the same address is accepted without
//     any change (names, key and expired_at of the first add stay);
//   - the same certificate on another address is another entry;
//   - expired_at, when set, is kept beside the certificate (ExpiredAt) but
//     never saved: upstream's workers use it in place of the leaf's expiry
//     to choose among certificates serving one name, and its state file
//     always writes null.
//
// The certificate and chain are stored as their CERTIFICATE blocks only
// (CertificatePEM: a private key in them is dropped, another block type
// refused); key and versions are kept as given.
func (s *ConfigState) addCertificate(a *command.AddCertificate) *Error {
	ap, e := addrKey("address", a.GetAddress())
	if e != nil {
		return e
	}
	ck := orEmpty(a.GetCertificate())
	if e := normalizeCertificate("add", "", ck); e != nil {
		return e
	}
	fp, leaf, err := parseLeaf(ck.GetCertificate())
	if err != nil {
		return certificateError("add", err.Error())
	}
	if _, dup := s.certs[ap][fp]; dup {
		return nil
	}
	s.storeCertificate(ap, fp, leaf, ck, a.ExpiredAt)
	return nil
}

func (s *ConfigState) storeCertificate(ap netip.AddrPort, fp string, leaf *x509.Certificate, ck *command.CertificateAndKey, expiredAt *int64) {
	ck.Names = certNames(ck.GetNames(), leaf)
	fillRequired(ck.ProtoReflect())
	if s.certs[ap] == nil {
		s.certs[ap] = map[string]*command.CertificateAndKey{}
	}
	s.certs[ap][fp] = ck
	if expiredAt == nil {
		if m := s.certExpiry[ap]; m != nil {
			delete(m, fp)
			if len(m) == 0 {
				delete(s.certExpiry, ap)
			}
		}
		return
	}
	if s.certExpiry[ap] == nil {
		s.certExpiry[ap] = map[string]int64{}
	}
	s.certExpiry[ap][fp] = *expiredAt
}

// dropCertificate forgets fp on ap. The address keeps its (maybe empty)
// entry, as upstream's map does: replace_certificate then still finds it.
func (s *ConfigState) dropCertificate(ap netip.AddrPort, fp string) {
	delete(s.certs[ap], fp)
	if m := s.certExpiry[ap]; m != nil {
		delete(m, fp)
		if len(m) == 0 {
			delete(s.certExpiry, ap)
		}
	}
}

// replaceCertificate swaps the certificate old_fingerprint for a new one on
// an address that was given a certificate before, even if all were removed
// since (else NotFound Certificate), as upstream's state does:
//   - old_fingerprint in either hex case; bad hex is refused with upstream's
//     quirk "Could not remove certificate: <hex error>";
//   - an old fingerprint absent from that address is not an error: the new
//     certificate is added;
//   - old equal to new keeps the certificate (with the new request's names);
//   - other addresses holding either certificate are not touched.
//
// Unlike upstream, a new certificate that does not parse leaves the old one
// in place, and the new certificate's names are filled in as for
// add_certificate (upstream stores them as given, often empty, so that a
// domain query would miss the replacement until the state is reloaded).
// new_expired_at is kept as expired_at is by add_certificate.
func (s *ConfigState) replaceCertificate(r *command.ReplaceCertificate) *Error {
	ap, e := addrKey("address", r.GetAddress())
	if e != nil {
		return e
	}
	old, err := decodeFingerprint(r.GetOldFingerprint())
	if err != nil {
		return certificateError("remove", err.Error())
	}
	if _, known := s.certs[ap]; !known {
		return notFound("Certificate", r.GetAddress().Display())
	}
	ck := orEmpty(r.GetNewCertificate())
	if e := normalizeCertificate("replace", "new_certificate.", ck); e != nil {
		return e
	}
	fp, leaf, err := parseLeaf(ck.GetCertificate())
	if err != nil {
		return certificateError("replace", err.Error())
	}
	s.dropCertificate(ap, old)
	s.storeCertificate(ap, fp, leaf, ck, r.NewExpiredAt)
	return nil
}

// removeCertificate drops a certificate by fingerprint (either hex case).
// An unknown address or fingerprint is accepted without change, as
// upstream's state does; bad hex is refused with the hex decoder's error
// ("Could not remove certificate: Odd number of digits"). A listener's
// default certificate (HttpsListenerConfig.certificate) is not among the
// certificates: removing its fingerprint changes nothing.
func (s *ConfigState) removeCertificate(r *command.RemoveCertificate) *Error {
	ap, e := addrKey("address", r.GetAddress())
	if e != nil {
		return e
	}
	fp, err := decodeFingerprint(r.GetFingerprint())
	if err != nil {
		return certificateError("remove", err.Error())
	}
	s.dropCertificate(ap, fp)
	return nil
}

// ExpiredAt returns the expired_at (Unix seconds) given with the
// certificate fingerprint (lowercase hex) on addr by the add_certificate
// or replace_certificate that stored it, if that request set one. It is
// runtime only: GenerateRequests never carries it (state files write
// null), so a worker started later, or a loaded state file, ranks the
// certificate by its leaf's expiry.
func (s *ConfigState) ExpiredAt(addr *command.SocketAddress, fingerprint string) (time.Time, bool) {
	if addr == nil {
		return time.Time{}, false
	}
	ap, err := addr.AddrPort()
	if err != nil {
		return time.Time{}, false
	}
	v, ok := s.certExpiry[ap][strings.ToLower(fingerprint)]
	if !ok {
		return time.Time{}, false
	}
	return time.Unix(v, 0), true
}
