package config

import (
	"crypto/tls"
	"encoding/pem"
	"strings"

	"github.com/sozu-go/sozu/proto/command"
	"github.com/sozu-go/sozu/proto/state"
	"github.com/sozu-go/sozu/supervisor/safefile"
)

// certificate holds the PEM texts of a certificate, its chain and its key.
type certificate struct {
	cert  string
	chain []string // one PEM block per intermediate
	key   string
}

// certificate reads the certificate, certificate_chain and key named under
// key path p (any of them may be nil) and checks that they form a usable
// pair. It returns nil when none is set or something is wrong (reported).
// Error texts never contain key material.
func (b *builder) certificate(p string, certPath, chainPath, keyPath *string) *certificate {
	if certPath == nil && keyPath == nil && chainPath == nil {
		return nil
	}
	if certPath == nil {
		if keyPath != nil {
			b.errs.at(joinKey(p, "key"), "is set but certificate is not")
		}
		if chainPath != nil {
			b.errs.at(joinKey(p, "certificate_chain"), "is set but certificate is not")
		}
		return nil
	}
	if keyPath == nil {
		b.errs.at(joinKey(p, "certificate"), "has no key: set key to the private key file")
		return nil
	}
	var ok bool
	c := &certificate{}
	c.cert, ok = b.read(joinKey(p, "certificate"), *certPath, safefile.MaxPEMSize)
	if ok {
		// Only the CERTIFICATE blocks are kept: a file that also holds
		// the key (HAProxy's convention) must not put the key in the
		// certificate field, which clients may read.
		norm, err := state.CertificatePEM(c.cert)
		switch {
		case err != nil:
			b.errs.at(joinKey(p, "certificate"), "%s: %v", *certPath, err)
			ok = false
		case norm != "":
			c.cert = norm
		}
	}
	key, keyOK := b.read(joinKey(p, "key"), *keyPath, safefile.MaxPEMSize)
	c.key = key
	ok = ok && keyOK
	if chainPath != nil {
		text, chainOK := b.read(joinKey(p, "certificate_chain"), *chainPath, safefile.MaxPEMSize)
		if chainOK {
			var err error
			c.chain, err = splitChain(text)
			switch {
			case err != nil:
				b.errs.at(joinKey(p, "certificate_chain"), "%s: %v", *chainPath, err)
				chainOK = false
			case len(c.chain) == 0:
				b.errs.at(joinKey(p, "certificate_chain"), "%s holds no PEM certificate", *chainPath)
				chainOK = false
			}
		}
		ok = ok && chainOK
	}
	if !ok {
		return nil
	}
	full := c.cert + "\n" + strings.Join(c.chain, "\n")
	if _, err := tls.X509KeyPair([]byte(full), []byte(c.key)); err != nil {
		b.errs.at(joinKey(p, "certificate"), "%s and %s are not a usable certificate and key: %v",
			*certPath, *keyPath, strings.TrimPrefix(err.Error(), "tls: "))
		return nil
	}
	return c
}

// splitChain splits a PEM bundle into one text per CERTIFICATE block,
// with state.CertificatePEM's rules: a private key is dropped, another
// block type is an error naming it.
func splitChain(text string) ([]string, error) {
	norm, err := state.CertificatePEM(text)
	if err != nil {
		return nil, err
	}
	var certs []string
	rest := []byte(norm)
	for {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			return certs, nil
		}
		certs = append(certs, string(pem.EncodeToMemory(block)))
	}
}

// tlsVersions converts and checks a tls_versions list: TLS 1.2 and 1.3 only.
func (b *builder) tlsVersions(p string, vs []tlsVersion) []command.TlsVersion {
	if len(vs) == 0 {
		b.errs.at(p, "must list at least one TLS version")
		return nil
	}
	out := make([]command.TlsVersion, 0, len(vs))
	for i, v := range vs {
		tv := command.TlsVersion(v)
		if tv != command.TlsVersion_TLS_V1_2 && tv != command.TlsVersion_TLS_V1_3 {
			b.errs.at(joinIndex(p, i), "%s is not supported: only TLS_V12 and TLS_V13 are", tlsVersionNames[v])
			continue
		}
		out = append(out, tv)
	}
	return out
}
