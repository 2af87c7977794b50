package worker

import (
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/sozu-go/sozu/proto/command"
	"github.com/sozu-go/sozu/proto/state"
	"github.com/sozu-go/sozu/worker/backends"
)

func addCertReq(addr, c, k string) *command.Request {
	return &command.Request{RequestType: &command.Request_AddCertificate{AddCertificate: &command.AddCertificate{
		Address: sa(addr), Certificate: &command.CertificateAndKey{Certificate: proto.String(c), Key: proto.String(k)}}}}
}

func httpsListenerReq(addr string, c, k *string) *command.Request {
	return &command.Request{RequestType: &command.Request_AddHttpsListener{AddHttpsListener: &command.HttpsListenerConfig{
		Address: sa(addr), Certificate: c, Key: k}}}
}

func TestQueryCertificatesFromWorkers(t *testing.T) {
	const a1, a2 = "127.0.0.1:9443", "127.0.0.1:9444"
	defC, defK := selfSigned(t, time.Now().Add(time.Hour), "default.test")
	aC, aK := selfSigned(t, time.Now().Add(time.Hour), "a.test", "*.w.test")
	// b.test expires later than a's certificate: it wins a.test.
	bC, bK := selfSigned(t, time.Now().Add(2*time.Hour), "b.test", "a.test")
	st := state.New()
	dispatch(t, st, httpsListenerReq(a1, proto.String(defC), proto.String(defK)), httpsListenerReq(a2, nil, nil),
		addCertReq(a1, aC, aK), addCertReq(a1, bC, bK), addCertReq(a2, aC, aK))
	reg := backends.NewRegistry(backends.Options{})
	defer reg.Close()
	snap := buildSnapshot(st, reg, false)
	if len(snap.warnings) != 0 {
		t.Fatalf("warnings: %v", snap.warnings)
	}
	w := &Worker{state: st}
	w.certs.Swap(snap.https)
	fpA := snap.https[key(command.ListenerType_HTTPS, a2)].Certs()[0].Fingerprint
	fpB := snap.https[key(command.ListenerType_HTTPS, a1)].Lookup("b.test").Fingerprint
	fpDef := snap.https[key(command.ListenerType_HTTPS, a1)].Default().Fingerprint

	query := func(f *command.QueryCertificatesFilters) *command.ResponseContent {
		t.Helper()
		rc, err := w.apply(&command.Request{RequestType: &command.Request_QueryCertificatesFromWorkers{QueryCertificatesFromWorkers: f}})
		if err != nil {
			t.Fatal(err)
		}
		return rc
	}
	// rows flattens a certificates_by_address answer; a listener without
	// summaries is one row with an empty domain.
	type row struct{ addr, domain, fp string }
	rows := func(rc *command.ResponseContent) []row {
		t.Helper()
		l := rc.GetCertificatesByAddress()
		if l == nil {
			t.Fatalf("content %v, want certificates_by_address", rc)
		}
		var out []row
		for _, c := range l.GetCertificates() {
			if len(c.GetCertificateSummaries()) == 0 {
				out = append(out, row{c.GetAddress().Display(), "", ""})
			}
			for _, s := range c.GetCertificateSummaries() {
				out = append(out, row{c.GetAddress().Display(), s.GetDomain(), s.GetFingerprint()})
			}
		}
		return out
	}
	all := []row{
		{a1, "*.w.test", fpA}, {a1, "a.test", fpB}, {a1, "b.test", fpB}, {a1, "default.test", fpDef},
		{a2, "*.w.test", fpA}, {a2, "a.test", fpA}}
	str := proto.String
	byAddress := []struct {
		name string
		f    *command.QueryCertificatesFilters
		want []row
	}{
		{"all", &command.QueryCertificatesFilters{}, all},
		{"nil filters", nil, all},
		{"domain: the name served, per listener", &command.QueryCertificatesFilters{Domain: str("A.test.")}, []row{{a1, "a.test", fpB}, {a2, "a.test", fpA}}},
		{"domain under a wildcard", &command.QueryCertificatesFilters{Domain: str("x.w.test")}, []row{{a1, "*.w.test", fpA}, {a2, "*.w.test", fpA}}},
		{"wildcard domain itself", &command.QueryCertificatesFilters{Domain: str("*.w.test")}, []row{{a1, "*.w.test", fpA}, {a2, "*.w.test", fpA}}},
		{"wildcard is one label", &command.QueryCertificatesFilters{Domain: str("y.x.w.test")}, []row{{a1, "", ""}, {a2, "", ""}}},
		{"the default's own name", &command.QueryCertificatesFilters{Domain: str("default.test")}, []row{{a1, "default.test", fpDef}, {a2, "", ""}}},
		{"unknown domain: listeners without summaries", &command.QueryCertificatesFilters{Domain: str("x.test")}, []row{{a1, "", ""}, {a2, "", ""}}},
	}
	for _, tt := range byAddress {
		if got := rows(query(tt.f)); !slices.Equal(got, tt.want) {
			t.Errorf("%s:\n got  %v\n want %v", tt.name, got, tt.want)
		}
	}

	// A fingerprint: the worker state's certificates, without their keys.
	byFP := []struct {
		name string
		f    *command.QueryCertificatesFilters
		want []string
	}{
		{"fingerprint", &command.QueryCertificatesFilters{Fingerprint: str(strings.ToUpper(fpA))}, []string{fpA}},
		{"the default is no added certificate", &command.QueryCertificatesFilters{Fingerprint: str(fpDef)}, nil},
		{"unknown fingerprint", &command.QueryCertificatesFilters{Fingerprint: str("00")}, nil},
		{"domain first when both are set", &command.QueryCertificatesFilters{Domain: str("b.test"), Fingerprint: str(fpA)}, []string{fpB}},
	}
	for _, tt := range byFP {
		c := query(tt.f).GetCertificatesWithFingerprints()
		if c == nil {
			t.Errorf("%s: no certificates_with_fingerprints", tt.name)
			continue
		}
		var got []string
		for fp, ck := range c.GetCerts() {
			got = append(got, fp)
			if ck.Key == nil || ck.GetKey() != "" || !strings.Contains(ck.GetCertificate(), "BEGIN CERTIFICATE") {
				t.Errorf("%s: %s sent with key %q", tt.name, fp, ck.GetKey())
			}
		}
		slices.Sort(got)
		if !slices.Equal(got, tt.want) {
			t.Errorf("%s: %v, want %v", tt.name, got, tt.want)
		}
	}
	if k := st.Certificates(nil).GetCerts()[fpA].GetKey(); k != aK {
		t.Error("the answer blanked the key in the worker's state")
	}

	// Before any snapshot: an empty answer, not a failure.
	empty := &Worker{}
	rc, err := empty.apply(&command.Request{RequestType: &command.Request_QueryCertificatesFromWorkers{QueryCertificatesFromWorkers: &command.QueryCertificatesFilters{}}})
	if err != nil || rc.GetCertificatesByAddress() == nil || len(rc.GetCertificatesByAddress().GetCertificates()) != 0 {
		t.Fatalf("empty worker: %v %v", rc, err)
	}
	rc, err = empty.apply(&command.Request{RequestType: &command.Request_QueryCertificatesFromWorkers{QueryCertificatesFromWorkers: &command.QueryCertificatesFilters{Fingerprint: str(fpA)}}})
	if err != nil || rc.GetCertificatesWithFingerprints() == nil || len(rc.GetCertificatesWithFingerprints().GetCerts()) != 0 {
		t.Fatalf("empty worker by fingerprint: %v %v", rc, err)
	}
}

// TestCertificateVerbsNeedHTTPSListener checks the worker's answer to a
// certificate verb on an address that is no HTTPS listener: upstream's
// "found no listener with address …", the state keeping the change.
func TestCertificateVerbsNeedHTTPSListener(t *testing.T) {
	const https, tcp, none = "127.0.0.1:9443", "127.0.0.1:9445", "127.0.0.1:9446"
	aC, aK := selfSigned(t, time.Now().Add(time.Hour), "a.test")
	bC, bK := selfSigned(t, time.Now().Add(time.Hour), "b.test")
	st := state.New()
	dispatch(t, st, httpsListenerReq(https, nil, nil),
		&command.Request{RequestType: &command.Request_AddTcpListener{AddTcpListener: &command.TcpListenerConfig{Address: sa(tcp)}}})
	w := &Worker{state: st}
	fpA, err := state.Fingerprint(aC)
	if err != nil {
		t.Fatal(err)
	}
	replace := func(addr string) *command.Request {
		return &command.Request{RequestType: &command.Request_ReplaceCertificate{ReplaceCertificate: &command.ReplaceCertificate{
			Address: sa(addr), OldFingerprint: proto.String(fpA),
			NewCertificate: &command.CertificateAndKey{Certificate: proto.String(bC), Key: proto.String(bK)}}}}
	}
	remove := func(addr string) *command.Request {
		return &command.Request{RequestType: &command.Request_RemoveCertificate{RemoveCertificate: &command.RemoveCertificate{
			Address: sa(addr), Fingerprint: proto.String(fpA)}}}
	}
	tests := []struct {
		name string
		req  *command.Request
		want string // "" accepted
	}{
		{"add on the HTTPS listener", addCertReq(https, aC, aK), ""},
		{"add on a TCP listener", addCertReq(tcp, aC, aK), "found no listener with address " + tcp},
		{"add on no listener", addCertReq(none, aC, aK), "found no listener with address " + none},
		{"replace on no listener (the state knows the address)", replace(none), "found no listener with address " + none},
		{"replace on a never used address: the state's error", replace("127.0.0.1:9447"), "Did not find Certificate with address or id '127.0.0.1:9447'"},
		{"remove on no listener", remove(tcp), "found no listener with address " + tcp},
		{"remove bad hex: the state's error", &command.Request{RequestType: &command.Request_RemoveCertificate{RemoveCertificate: &command.RemoveCertificate{
			Address: sa(none), Fingerprint: proto.String("x")}}}, "Could not remove certificate: Odd number of digits"},
		{"replace on the HTTPS listener", replace(https), ""},
		{"remove on the HTTPS listener", remove(https), ""},
	}
	for _, tt := range tests {
		_, err := w.apply(tt.req)
		switch {
		case tt.want == "" && err != nil:
			t.Errorf("%s: %v", tt.name, err)
		case tt.want != "" && (err == nil || err.Error() != tt.want):
			t.Errorf("%s: %v, want %q", tt.name, err, tt.want)
		}
	}
	// The state took the refused add, replace and remove, as upstream's
	// does: B replaced A on none, A left tcp.
	var kept []string
	for _, wr := range st.GenerateRequests() {
		if a := wr.GetContent().GetAddCertificate(); a != nil {
			kept = append(kept, a.GetAddress().Display())
		}
	}
	if want := []string{https, none}; !slices.Equal(kept, want) {
		t.Errorf("certificates kept on %v, want %v", kept, want)
	}
}
