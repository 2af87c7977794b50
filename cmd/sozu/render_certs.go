package main

import (
	"cmp"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/sozu-go/sozu/proto/command"
)

// Text tables of `sozu certificate list`. The state's answer
// (certificates_with_fingerprints) holds whole certificates keyed by
// fingerprint, without their listener address; the workers' answer
// (certificates_by_address) holds, per HTTPS listener, the names each
// certificate is served under, without the certificates. Keys never reach
// these functions (see redact.go).

// renderCertificates prints one row per certificate of the state: its
// fingerprint, expiry (read from the PEM) and names.
func renderCertificates(b *strings.Builder, c *command.CertificatesWithFingerprints) {
	certs := c.GetCerts()
	if len(certs) == 0 {
		b.WriteString("no certificates\n")
		return
	}
	type row struct{ fp, expires, names string }
	rows := make([]row, 0, len(certs))
	for _, fp := range slices.Sorted(maps.Keys(certs)) {
		ck := certs[fp]
		names := make([]string, len(ck.GetNames()))
		for i, n := range ck.GetNames() {
			names[i] = cleanText(n, false)
		}
		nameText := strings.Join(names, ", ")
		if nameText == "" {
			nameText = "-"
		}
		rows = append(rows, row{cleanText(fp, false), expiryText(ck.GetCertificate()), nameText})
	}
	slices.SortStableFunc(rows, func(x, y row) int { return cmp.Or(strings.Compare(x.names, y.names), strings.Compare(x.fp, y.fp)) })
	tw := newTable(b)
	fmt.Fprintln(tw, "FINGERPRINT (SHA-256)\tEXPIRES\tNAMES")
	for _, r := range rows {
		fmt.Fprintf(tw, "%s\t%s\t%s\n", r.fp, r.expires, r.names)
	}
	tw.Flush()
	fmt.Fprintf(b, "%d %s\n", len(rows), plural(len(rows), "certificate"))
}

// expiryText is the NotAfter of the first certificate in certPEM, in UTC,
// or "?" when it does not parse.
func expiryText(certPEM string) string {
	for rest := []byte(certPEM); ; {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			return "?"
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		leaf, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return "?"
		}
		return leaf.NotAfter.UTC().Format(time.DateTime + " UTC")
	}
}

// renderCertificatesByAddress prints, per HTTPS listener, each name a
// certificate is served under and that certificate's fingerprint.
func renderCertificatesByAddress(b *strings.Builder, l *command.ListOfCertificatesByAddress) {
	list := slices.Clone(l.GetCertificates())
	if len(list) == 0 {
		b.WriteString("no HTTPS listeners\n")
		return
	}
	slices.SortStableFunc(list, func(x, y *command.CertificatesByAddress) int {
		xa, xerr := x.GetAddress().AddrPort()
		ya, yerr := y.GetAddress().AddrPort()
		if xerr != nil || yerr != nil {
			return strings.Compare(x.GetAddress().Display(), y.GetAddress().Display())
		}
		return xa.Compare(ya)
	})
	tw := newTable(b)
	fmt.Fprintln(tw, "ADDRESS\tNAME\tFINGERPRINT (SHA-256)")
	for _, e := range list {
		sums := slices.Clone(e.GetCertificateSummaries())
		if len(sums) == 0 {
			fmt.Fprintf(tw, "%s\t(no certificate)\t-\n", e.GetAddress().Display())
			continue
		}
		slices.SortStableFunc(sums, func(x, y *command.CertificateSummary) int {
			return cmp.Or(strings.Compare(x.GetDomain(), y.GetDomain()), strings.Compare(x.GetFingerprint(), y.GetFingerprint()))
		})
		for _, s := range sums {
			fmt.Fprintf(tw, "%s\t%s\t%s\n", e.GetAddress().Display(), cleanText(s.GetDomain(), false), cleanText(s.GetFingerprint(), false))
		}
	}
	tw.Flush()
}
