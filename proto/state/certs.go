package state

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"slices"

	"github.com/sozu-go/sozu/proto/command"
)

// Fingerprint returns the lowercase hex SHA-256 of the DER bytes of the
// leaf certificate: the first CERTIFICATE block of certPEM, which must
// parse as X.509. This is how certificates are identified on the wire.
func Fingerprint(certPEM string) (string, error) {
	fp, _, err := parseLeaf(certPEM)
	return fp, err
}

func parseLeaf(certPEM string) (string, *x509.Certificate, error) {
	rest := []byte(certPEM)
	for {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			return "", nil, errors.New("no CERTIFICATE PEM block found")
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		leaf, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return "", nil, fmt.Errorf("cannot parse the leaf certificate: %w", err)
		}
		sum := sha256.Sum256(block.Bytes)
		return hex.EncodeToString(sum[:]), leaf, nil
	}
}

// certNames returns the SNI names of a certificate: the explicit names when
// given, else the SAN DNS names, else the subject CN (none if it is empty).
func certNames(explicit []string, leaf *x509.Certificate) []string {
	switch {
	case len(explicit) > 0:
		return explicit
	case len(leaf.DNSNames) > 0:
		return slices.Clone(leaf.DNSNames)
	case leaf.Subject.CommonName != "":
		return []string{leaf.Subject.CommonName}
	}
	return nil
}

// normalizeFingerprint decodes a hex fingerprint (any case) and returns it
// in lowercase.
func normalizeFingerprint(fp string) (string, error) {
	b, err := hex.DecodeString(fp)
	if err != nil {
		return "", fmt.Errorf("invalid fingerprint %q: %w", fp, err)
	}
	return hex.EncodeToString(b), nil
}

// addCertificate stores a certificate for an address under its
// fingerprint, with its names filled in (certNames). The same fingerprint
// on the same address is accepted without change. The key and chain are
// kept as given; the address need not be a known HTTPS listener.
func (s *ConfigState) addCertificate(a *command.AddCertificate) *Error {
	ap, e := addrKey("address", a.GetAddress())
	if e != nil {
		return e
	}
	ck := orEmpty(a.GetCertificate())
	fp, leaf, err := parseLeaf(ck.GetCertificate())
	if err != nil {
		return certificateError("add", err.Error())
	}
	byFP := s.certs[ap]
	if _, dup := byFP[fp]; dup {
		return nil
	}
	ck.Names = certNames(ck.GetNames(), leaf)
	fillRequired(ck.ProtoReflect())
	if byFP == nil {
		byFP = map[string]*command.CertificateAndKey{}
		s.certs[ap] = byFP
	}
	byFP[fp] = ck
	return nil
}

// replaceCertificate swaps the certificate old_fingerprint for a new one on
// an address holding at least one certificate (else NotFound Certificate).
// An old fingerprint absent from that address is not an error: the new
// certificate is added. Names are filled in as for add_certificate.
func (s *ConfigState) replaceCertificate(r *command.ReplaceCertificate) *Error {
	ap, e := addrKey("address", r.GetAddress())
	if e != nil {
		return e
	}
	old, err := normalizeFingerprint(r.GetOldFingerprint())
	if err != nil {
		return certificateError("replace", "old_fingerprint: "+err.Error())
	}
	byFP := s.certs[ap]
	if len(byFP) == 0 {
		return notFound("Certificate", r.GetAddress().Display())
	}
	ck := orEmpty(r.GetNewCertificate())
	fp, leaf, err := parseLeaf(ck.GetCertificate())
	if err != nil {
		return certificateError("replace", err.Error())
	}
	ck.Names = certNames(ck.GetNames(), leaf)
	fillRequired(ck.ProtoReflect())
	delete(byFP, old)
	byFP[fp] = ck
	return nil
}

// removeCertificate drops a certificate by fingerprint (any hex case). An
// unknown address or fingerprint is accepted without change; bad hex is a
// Certificate error.
func (s *ConfigState) removeCertificate(r *command.RemoveCertificate) *Error {
	ap, e := addrKey("address", r.GetAddress())
	if e != nil {
		return e
	}
	fp, err := normalizeFingerprint(r.GetFingerprint())
	if err != nil {
		return certificateError("remove", err.Error())
	}
	if byFP := s.certs[ap]; byFP != nil {
		delete(byFP, fp)
		if len(byFP) == 0 {
			delete(s.certs, ap)
		}
	}
	return nil
}
