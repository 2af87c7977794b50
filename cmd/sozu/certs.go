package main

import (
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"strings"

	"google.golang.org/protobuf/proto"

	"github.com/sozu-go/sozu/proto/command"
	"github.com/sozu-go/sozu/proto/state"
)

// The certificate verbs (`sozu certificate add|replace|remove|list`) work in
// two steps. Parsing stays pure: the builders below make the request with
// the PEM fields empty, and the file paths stay in the parsed flag values.
// Just before the request is sent, loadCertificateFiles reads the files and
// fills the request in. The CLI checks only the shape of the files (a
// CERTIFICATE block that parses, a PRIVATE KEY block); expiry, key strength
// and key match are the supervisor's to judge, so that its refusal (exit 1)
// is what the operator sees.

// fileError is a file named on the command line that cannot be used: it
// names the flag and the path, never the file's content. It is a usage
// error (exit 2) unless the file could not be read for lack of permission
// (exit 77).
type fileError struct {
	flag string // long name, without "--"
	path string
	err  error
}

func (e *fileError) Error() string {
	msg := e.err.Error()
	var pe *fs.PathError
	if errors.As(e.err, &pe) {
		msg = pe.Op + ": " + pe.Err.Error()
	}
	return "--" + e.flag + " " + quoteArg(e.path) + ": " + msg
}

func (e *fileError) Unwrap() error { return e.err }

// readFileFunc reads a whole file (os.ReadFile in the binary).
type readFileFunc func(path string) ([]byte, error)

// certificateAndKey is the CertificateAndKey of an add or replace, with the
// PEM fields left empty for loadCertificateFiles.
func certificateAndKey(v *values) (*command.CertificateAndKey, error) {
	ck := &command.CertificateAndKey{Certificate: ptr(""), Key: ptr("")}
	if v.has("tls-versions") {
		vs, err := parseTLSVersions(v.str("tls-versions"))
		if err != nil {
			return nil, err
		}
		ck.Versions = vs
	}
	if v.has("names") {
		for n := range strings.SplitSeq(v.str("names"), ",") {
			n = strings.TrimSpace(n)
			if n == "" || strings.ContainsRune(n, ' ') {
				return nil, fmt.Errorf("invalid value %q for --names: want NAME[,NAME…] without empty names or spaces", v.str("names"))
			}
			ck.Names = append(ck.Names, n)
		}
	}
	return ck, nil
}

// fingerprintFlag returns the --fingerprint value in lowercase, checked to
// be a SHA-256 in hex, or "" when the flag was not given.
func fingerprintFlag(v *values) (string, error) {
	if !v.has("fingerprint") {
		return "", nil
	}
	fp := v.str("fingerprint")
	if !isHex(fp, 64) {
		return "", fmt.Errorf("invalid value %q for --fingerprint: want the SHA-256 of the certificate, 64 hex digits", fp)
	}
	return strings.ToLower(fp), nil
}

func buildCertificateAdd(v *values) (*command.Request, error) {
	ck, err := certificateAndKey(v)
	if err != nil {
		return nil, err
	}
	return &command.Request{RequestType: &command.Request_AddCertificate{AddCertificate: &command.AddCertificate{
		Address: v.addr("address"), Certificate: ck}}}, nil
}

// buildCertificateReplace leaves old_fingerprint empty when the old
// certificate is given as a file.
func buildCertificateReplace(v *values) (*command.Request, error) {
	ck, err := certificateAndKey(v)
	if err != nil {
		return nil, err
	}
	fp, err := fingerprintFlag(v)
	if err != nil {
		return nil, err
	}
	return &command.Request{RequestType: &command.Request_ReplaceCertificate{ReplaceCertificate: &command.ReplaceCertificate{
		Address: v.addr("address"), NewCertificate: ck, OldFingerprint: ptr(fp)}}}, nil
}

// buildCertificateRemove leaves the fingerprint empty when the certificate
// is given as a file.
func buildCertificateRemove(v *values) (*command.Request, error) {
	fp, err := fingerprintFlag(v)
	if err != nil {
		return nil, err
	}
	return &command.Request{RequestType: &command.Request_RemoveCertificate{RemoveCertificate: &command.RemoveCertificate{
		Address: v.addr("address"), Fingerprint: ptr(fp)}}}, nil
}

// buildCertificateList asks the supervisor's state, or with --workers what
// each worker serves.
func buildCertificateList(v *values) (*command.Request, error) {
	f := &command.QueryCertificatesFilters{Domain: v.optStr("domain")}
	fp, err := fingerprintFlag(v)
	if err != nil {
		return nil, err
	}
	if fp != "" {
		f.Fingerprint = &fp
	}
	if v.flag("workers") {
		return &command.Request{RequestType: &command.Request_QueryCertificatesFromWorkers{QueryCertificatesFromWorkers: f}}, nil
	}
	return &command.Request{RequestType: &command.Request_QueryCertificatesFromTheState{QueryCertificatesFromTheState: f}}, nil
}

// loadCertificateFiles returns a copy of req with the content of the PEM
// files named by v: the certificate, chain and key of an add or replace,
// and the fingerprint of the certificate file of a replace or remove. The
// parsed request is left as it was.
func loadCertificateFiles(req *command.Request, v *values, read readFileFunc) (*command.Request, error) {
	req = proto.Clone(req).(*command.Request)
	switch r := req.GetRequestType().(type) {
	case *command.Request_AddCertificate:
		return req, fillCertificate(r.AddCertificate.GetCertificate(), v, read, "certificate", "certificate-chain", "key")
	case *command.Request_ReplaceCertificate:
		if err := fillCertificate(r.ReplaceCertificate.GetNewCertificate(), v, read, "new-certificate", "new-certificate-chain", "new-key"); err != nil {
			return nil, err
		}
		if v.has("old-certificate") {
			fp, err := fingerprintFile(v, read, "old-certificate")
			if err != nil {
				return nil, err
			}
			r.ReplaceCertificate.OldFingerprint = &fp
		}
	case *command.Request_RemoveCertificate:
		if v.has("certificate") {
			fp, err := fingerprintFile(v, read, "certificate")
			if err != nil {
				return nil, err
			}
			r.RemoveCertificate.Fingerprint = &fp
		}
	}
	return req, nil
}

// fillCertificate sets ck's leaf, chain and key from the files of the
// flags certFlag, chainFlag (optional) and keyFlag. The first CERTIFICATE
// block of the certificate file is the leaf; further ones (a "fullchain"
// file) start the chain, before those of the chain file. Only CERTIFICATE
// blocks are taken from those files and only the PRIVATE KEY block from
// the key file, so a combined certificate-and-key file can be given to
// both flags without the key ending up in a certificate field.
func fillCertificate(ck *command.CertificateAndKey, v *values, read readFileFunc, certFlag, chainFlag, keyFlag string) error {
	certs, err := certificateBlocks(v, read, certFlag)
	if err != nil {
		return err
	}
	ck.Certificate = ptr(certs[0])
	ck.CertificateChain = certs[1:]
	if v.has(chainFlag) {
		chain, err := certificateBlocks(v, read, chainFlag)
		if err != nil {
			return err
		}
		ck.CertificateChain = append(ck.CertificateChain, chain...)
	}
	if ck.CertificateChain == nil {
		ck.CertificateChain = []string{}
	}
	key, err := privateKeyBlock(v, read, keyFlag)
	if err != nil {
		return err
	}
	ck.Key = ptr(key)
	return nil
}

// readFlagFile reads the file named by a flag.
func readFlagFile(v *values, read readFileFunc, flag string) ([]byte, error) {
	b, err := read(v.str(flag))
	if err != nil {
		return nil, &fileError{flag: flag, path: v.str(flag), err: err}
	}
	return b, nil
}

// certificateBlocks returns the CERTIFICATE blocks of a flag's file, each
// as its own PEM; the first one must parse as X.509 (it is the leaf when
// the file is a certificate, and always a certificate in a chain).
func certificateBlocks(v *values, read readFileFunc, flag string) ([]string, error) {
	b, err := readFlagFile(v, read, flag)
	if err != nil {
		return nil, err
	}
	var out []string
	for rest := b; ; {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		if block.Type == "CERTIFICATE" {
			out = append(out, string(pem.EncodeToMemory(&pem.Block{Type: block.Type, Bytes: block.Bytes})))
		}
	}
	if len(out) == 0 {
		return nil, &fileError{flag: flag, path: v.str(flag), err: errors.New("no PEM CERTIFICATE block")}
	}
	if _, err := state.Fingerprint(out[0]); err != nil {
		return nil, &fileError{flag: flag, path: v.str(flag), err: err}
	}
	return out, nil
}

// fingerprintFile is the fingerprint of the certificate in a flag's file,
// computed as the supervisor does (state.Fingerprint).
func fingerprintFile(v *values, read readFileFunc, flag string) (string, error) {
	certs, err := certificateBlocks(v, read, flag)
	if err != nil {
		return "", err
	}
	return state.Fingerprint(certs[0])
}

// privateKeyBlock returns the first private key block of a flag's file as
// PEM ("PRIVATE KEY", "RSA PRIVATE KEY", "EC PRIVATE KEY"). Encrypted keys
// are refused: the proxy has no passphrase to open them.
func privateKeyBlock(v *values, read readFileFunc, flag string) (string, error) {
	b, err := readFlagFile(v, read, flag)
	if err != nil {
		return "", err
	}
	fail := func(msg string) (string, error) {
		return "", &fileError{flag: flag, path: v.str(flag), err: errors.New(msg)}
	}
	for rest := b; ; {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			return fail("no PEM PRIVATE KEY block")
		}
		switch {
		case block.Type == "ENCRYPTED PRIVATE KEY" || strings.Contains(block.Headers["Proc-Type"], "ENCRYPTED"):
			return fail("the private key is encrypted; give it unencrypted")
		case block.Type == "PRIVATE KEY" || strings.HasSuffix(block.Type, " PRIVATE KEY"):
			return string(pem.EncodeToMemory(&pem.Block{Type: block.Type, Bytes: block.Bytes})), nil
		}
	}
}
