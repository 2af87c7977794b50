package worker

import (
	"strings"

	"github.com/sozu-go/sozu/proto/command"
	"github.com/sozu-go/sozu/worker/tlsconf"
	"google.golang.org/protobuf/proto"
)

// certificatesByAddress answers query_certificates_from_workers from what
// the worker serves (the SNI indexes in its store), not from its state: for
// each HTTPS listener, one summary per name a loaded certificate is served
// under (see tlsconf.Index.Served). With a domain filter, only that exact
// name (case and a trailing dot aside, as the state's query compares
// names); else with a fingerprint filter, only that certificate (hex case
// aside). Listeners left without a summary by a filter are left out.
func certificatesByAddress(store *tlsconf.Store, f *command.QueryCertificatesFilters) *command.ListOfCertificatesByAddress {
	byDomain := f != nil && f.Domain != nil
	byFP := !byDomain && f != nil && f.Fingerprint != nil
	domain := strings.ToLower(strings.TrimSuffix(strings.TrimSpace(f.GetDomain()), "."))
	fp := strings.ToLower(strings.TrimSpace(f.GetFingerprint()))
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
		entry := &command.CertificatesByAddress{Address: sa}
		for _, s := range store.Index(k).Served() {
			if (byDomain && s.Name != domain) || (byFP && s.Cert.Fingerprint != fp) {
				continue
			}
			entry.CertificateSummaries = append(entry.CertificateSummaries, &command.CertificateSummary{
				Domain: proto.String(s.Name), Fingerprint: proto.String(s.Cert.Fingerprint)})
		}
		if len(entry.CertificateSummaries) == 0 && (byDomain || byFP) {
			continue
		}
		out.Certificates = append(out.Certificates, entry)
	}
	return out
}
