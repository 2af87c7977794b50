package state

import (
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"strings"

	"github.com/sozu-go/sozu/proto/command"
)

// CertificatePEM returns the CERTIFICATE blocks of text, re-encoded (no
// headers, standard line length) one after the other: what a certificate
// or certificate_chain field may hold once stored. A private key block (a
// label containing "PRIVATE KEY": the HAProxy convention of one file for
// the certificate and its key) is dropped, so that the key can never
// reach a client through a certificate field; the key is taken from the
// key field only. Explanatory text between blocks (RFC 7468 §5, e.g.
// openssl's "subject=" lines) is dropped too. Any other block type is an
// error naming it and its position (1-based); so is a block that starts
// but does not parse (cut short, bad base64). Text without any block
// gives "" and no error: the caller reports the missing certificate.
func CertificatePEM(text string) (string, error) {
	var out strings.Builder
	out.Grow(len(text) + len(text)/32) // re-encoded, the blocks take about as much as the text
	rest := []byte(text)
	for n := 1; ; n++ {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		switch {
		case block.Type == "CERTIFICATE":
			appendCertificateBlock(&out, block.Bytes)
		case strings.Contains(strings.ToUpper(block.Type), "PRIVATE KEY"):
			// dropped: see above
		default:
			return "", fmt.Errorf("PEM block %d is %q: only CERTIFICATE blocks are accepted here (and a private key, which is dropped)", n, block.Type)
		}
	}
	if i := strings.Index(string(rest), "-----BEGIN"); i >= 0 {
		line := 1 + strings.Count(text[:len(text)-len(rest)+i], "\n")
		return "", fmt.Errorf("the PEM block starting on line %d is cut short or malformed", line)
	}
	return out.String(), nil
}

// pemFieldError is a certificate or chain text CertificatePEM refused.
type pemFieldError struct {
	field string // "certificate", "new_certificate.certificate_chain[1]"...
	err   error
}

func (e *pemFieldError) Error() string { return e.field + ": " + e.err.Error() }

// normalizeCertificate rewrites the certificate and certificate_chain of
// ck with CertificatePEM, for verb op ("add", "replace"); prefix goes
// before the field names in errors ("" or "new_certificate."). A chain
// entry left empty (it held only a key) is removed. On error ck is
// unchanged.
func normalizeCertificate(op, prefix string, ck *command.CertificateAndKey) *Error {
	cert, chain, err := normalizePEMs(prefix, ck.GetCertificate(), ck.GetCertificateChain())
	if err != nil {
		return certificateError(op, err.Error())
	}
	if ck.Certificate != nil {
		ck.Certificate = &cert
	}
	ck.CertificateChain = chain
	return nil
}

// normalizeListenerCertificate does for an HTTPS listener's default
// certificate and chain what normalizeCertificate does for
// add_certificate.
func normalizeListenerCertificate(l *command.HttpsListenerConfig) *Error {
	if l.Certificate == nil && len(l.CertificateChain) == 0 {
		return nil
	}
	cert, chain, err := normalizePEMs("", l.GetCertificate(), l.GetCertificateChain())
	if err != nil {
		return invalidValue(err.field, err.err.Error())
	}
	if l.Certificate != nil {
		l.Certificate = &cert
	}
	l.CertificateChain = chain
	return nil
}

// normalizePEMs applies CertificatePEM to a certificate and its chain.
func normalizePEMs(prefix, cert string, chain []string) (string, []string, *pemFieldError) {
	c, err := CertificatePEM(cert)
	if err != nil {
		return "", nil, &pemFieldError{prefix + "certificate", err}
	}
	if c == "" {
		c = cert // no block at all: left for the leaf parser to report
	}
	var out []string
	for i, entry := range chain {
		e, err := CertificatePEM(entry)
		if err != nil {
			return "", nil, &pemFieldError{fmt.Sprintf("%scertificate_chain[%d]", prefix, i), err}
		}
		if e != "" {
			out = append(out, e)
		}
	}
	return c, out, nil
}

// appendCertificateBlock writes der as pem.EncodeToMemory writes a
// CERTIFICATE block without headers (64 base64 characters a line), straight
// into out: pem.Encode takes a base64 encoder of 1 KiB and a buffer grown
// by doubling for each block, which for a long chain cost 4 times its size.
func appendCertificateBlock(out *strings.Builder, der []byte) {
	const lineBytes = 48 // 64 base64 characters
	out.WriteString("-----BEGIN CERTIFICATE-----\n")
	var line [64]byte
	for len(der) > 0 {
		n := min(len(der), lineBytes)
		m := base64.StdEncoding.EncodedLen(n)
		base64.StdEncoding.Encode(line[:m], der[:n])
		out.Write(line[:m])
		out.WriteByte('\n')
		der = der[n:]
	}
	out.WriteString("-----END CERTIFICATE-----\n")
}
