package worker

import (
	"slices"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/sozu-go/sozu/proto/command"
	"github.com/sozu-go/sozu/proto/state"
	"github.com/sozu-go/sozu/worker/backends"
)

func TestQueryCertificatesFromWorkers(t *testing.T) {
	const a1, a2 = "127.0.0.1:9443", "127.0.0.1:9444"
	defC, defK := selfSigned(t, time.Now().Add(time.Hour), "default.test")
	aC, aK := selfSigned(t, time.Now().Add(time.Hour), "a.test", "*.w.test")
	// b.test expires later than a's certificate: it wins a.test.
	bC, bK := selfSigned(t, time.Now().Add(2*time.Hour), "b.test", "a.test")
	addCert := func(addr, c, k string) *command.Request {
		return &command.Request{RequestType: &command.Request_AddCertificate{AddCertificate: &command.AddCertificate{
			Address: sa(addr), Certificate: &command.CertificateAndKey{Certificate: proto.String(c), Key: proto.String(k)}}}}
	}
	listener := func(addr string, c, k *string) *command.Request {
		return &command.Request{RequestType: &command.Request_AddHttpsListener{AddHttpsListener: &command.HttpsListenerConfig{
			Address: sa(addr), Certificate: c, Key: k}}}
	}
	st := state.New()
	dispatch(t, st, listener(a1, proto.String(defC), proto.String(defK)), listener(a2, nil, nil),
		addCert(a1, aC, aK), addCert(a1, bC, bK), addCert(a2, aC, aK))
	reg := backends.NewRegistry(backends.Options{})
	defer reg.Close()
	snap := buildSnapshot(st, reg, false)
	if len(snap.warnings) != 0 {
		t.Fatalf("warnings: %v", snap.warnings)
	}
	w := &Worker{}
	w.certs.Swap(snap.https)
	fpA := snap.https[key(command.ListenerType_HTTPS, a2)].Certs()[0].Fingerprint
	fpB := snap.https[key(command.ListenerType_HTTPS, a1)].Lookup("b.test").Fingerprint
	fpDef := snap.https[key(command.ListenerType_HTTPS, a1)].Default().Fingerprint

	type row struct{ addr, domain, fp string }
	query := func(f *command.QueryCertificatesFilters) []row {
		t.Helper()
		rc, err := w.apply(&command.Request{RequestType: &command.Request_QueryCertificatesFromWorkers{QueryCertificatesFromWorkers: f}})
		if err != nil {
			t.Fatal(err)
		}
		var rows []row
		for _, c := range rc.GetCertificatesByAddress().GetCertificates() {
			for _, s := range c.GetCertificateSummaries() {
				rows = append(rows, row{c.GetAddress().Display(), s.GetDomain(), s.GetFingerprint()})
			}
		}
		return rows
	}
	tests := []struct {
		name string
		f    *command.QueryCertificatesFilters
		want []row
	}{
		{"all", &command.QueryCertificatesFilters{}, []row{
			{a1, "*.w.test", fpA}, {a1, "a.test", fpB}, {a1, "b.test", fpB}, {a1, "default.test", fpDef},
			{a2, "*.w.test", fpA}, {a2, "a.test", fpA}}},
		{"nil filters", nil, []row{
			{a1, "*.w.test", fpA}, {a1, "a.test", fpB}, {a1, "b.test", fpB}, {a1, "default.test", fpDef},
			{a2, "*.w.test", fpA}, {a2, "a.test", fpA}}},
		{"domain", &command.QueryCertificatesFilters{Domain: proto.String("A.test.")}, []row{{a1, "a.test", fpB}, {a2, "a.test", fpA}}},
		{"wildcard domain", &command.QueryCertificatesFilters{Domain: proto.String("*.w.test")}, []row{{a1, "*.w.test", fpA}, {a2, "*.w.test", fpA}}},
		{"unknown domain", &command.QueryCertificatesFilters{Domain: proto.String("x.test")}, nil},
		{"fingerprint", &command.QueryCertificatesFilters{Fingerprint: proto.String(fpA)}, []row{
			{a1, "*.w.test", fpA}, {a2, "*.w.test", fpA}, {a2, "a.test", fpA}}},
		{"default by fingerprint", &command.QueryCertificatesFilters{Fingerprint: proto.String(fpDef)}, []row{{a1, "default.test", fpDef}}},
	}
	for _, tt := range tests {
		if got := query(tt.f); !slices.Equal(got, tt.want) {
			t.Errorf("%s:\n got  %v\n want %v", tt.name, got, tt.want)
		}
	}

	// Before any snapshot: an empty answer, not a failure.
	empty := &Worker{}
	rc, err := empty.apply(&command.Request{RequestType: &command.Request_QueryCertificatesFromWorkers{QueryCertificatesFromWorkers: &command.QueryCertificatesFilters{}}})
	if err != nil || rc.GetCertificatesByAddress() == nil || len(rc.GetCertificatesByAddress().GetCertificates()) != 0 {
		t.Fatalf("empty worker: %v %v", rc, err)
	}
}
