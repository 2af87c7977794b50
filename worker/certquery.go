package worker

import (
	"fmt"
	"strings"

	"google.golang.org/protobuf/proto"

	"github.com/sozu-go/sozu/proto/command"
	"github.com/sozu-go/sozu/proto/state"
	"github.com/sozu-go/sozu/worker/tlsconf"
)

// queryCertificates answers query_certificates_from_workers as upstream's
// workers do (lib/src/server.rs, lib/src/https.rs):
//   - with a fingerprint filter, from the worker's state: the certificates
//     state.Certificates selects (by domain first when both filters are
//     set), as certificates_with_fingerprints, private keys blanked (keys
//     never leave the processes that hold them). None match: an empty
//     map, where upstream's worker fails with "Could not find certificate
//     for this fingerprint" and its supervisor then leaves the worker out
//     of an answer that is still OK;
//   - else certificatesByAddress, from what the worker serves.
func queryCertificates(st *state.ConfigState, store *tlsconf.Store, f *command.QueryCertificatesFilters) *command.ResponseContent {
	if f != nil && f.Fingerprint != nil {
		certs := &command.CertificatesWithFingerprints{Certs: map[string]*command.CertificateAndKey{}}
		if st != nil {
			certs = st.Certificates(f)
		}
		for _, ck := range certs.GetCerts() {
			ck.Key = proto.String("")
		}
		return &command.ResponseContent{ContentType: &command.ResponseContent_CertificatesWithFingerprints{
			CertificatesWithFingerprints: certs}}
	}
	return &command.ResponseContent{ContentType: &command.ResponseContent_CertificatesByAddress{
		CertificatesByAddress: certificatesByAddress(store, f)}}
}

// certificatesByAddress lists, for each HTTPS listener, from the SNI
// indexes the worker serves: without a domain, one summary per name a
// certificate (the listener's default one included) is served under
// (tlsconf.Index.Served); with a domain, at most the one the SNI lookup
// finds for it (tlsconf.Index.Match: "a.example.com" may answer
// "*.example.com"). Every listener is listed, with no summary when nothing
// matches. A fingerprint filter is not looked at (see queryCertificates).
func certificatesByAddress(store *tlsconf.Store, f *command.QueryCertificatesFilters) *command.ListOfCertificatesByAddress {
	prefix := key(command.ListenerType_HTTPS, "")
	out := &command.ListOfCertificatesByAddress{}
	for _, k := range store.Listeners() {
		addr, ok := strings.CutPrefix(k, prefix)
		if !ok {
			continue
		}
		sa, err := command.ParseSocketAddress(addr)
		if err != nil {
			continue
		}
		ix := store.Index(k)
		var served []tlsconf.Summary
		if f != nil && f.Domain != nil {
			if s, ok := ix.Match(f.GetDomain()); ok {
				served = append(served, s)
			}
		} else {
			served = ix.Served()
		}
		entry := &command.CertificatesByAddress{Address: sa}
		for _, s := range served {
			entry.CertificateSummaries = append(entry.CertificateSummaries, &command.CertificateSummary{
				Domain: proto.String(s.Name), Fingerprint: proto.String(s.Cert.Fingerprint)})
		}
		out.Certificates = append(out.Certificates, entry)
	}
	return out
}

// certificateListener refuses a certificate verb whose address is no HTTPS
// listener of st, with upstream's worker error (ProxyError::NoListenerFound,
// lib/src/https.rs): "found no listener with address 127.0.0.1:8443". The
// state has taken the request by then, as upstream's has: only the
// worker's answer tells the operator.
func certificateListener(st *state.ConfigState, req *command.Request) error {
	var addr *command.SocketAddress
	switch r := req.GetRequestType().(type) {
	case *command.Request_AddCertificate:
		addr = r.AddCertificate.GetAddress()
	case *command.Request_ReplaceCertificate:
		addr = r.ReplaceCertificate.GetAddress()
	case *command.Request_RemoveCertificate:
		addr = r.RemoveCertificate.GetAddress()
	default:
		return nil
	}
	if st.HTTPSListener(addr) == nil {
		return fmt.Errorf("found no listener with address %s", addr.Display())
	}
	return nil
}
