package state

import (
	"bytes"
	"io"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/sozu-go/sozu/proto/command"
	"github.com/sozu-go/sozu/proto/statefile"
)

// TestUpstreamCertificateStateFile loads testdata/upstream_certs.state,
// ADD_CERTIFICATE records written by hand in upstream's state file format
// (docs/protocol.md §4: every CertificateAndKey field present, versions as
// integers, names as upstream leaves them, expired_at null or a number),
// and checks the certificates the state takes and the records it writes
// back.
func TestUpstreamCertificateStateFile(t *testing.T) {
	data, err := os.ReadFile("testdata/upstream_certs.state")
	if err != nil {
		t.Fatal(err)
	}
	const (
		fpA = "0e0a34c35dc9d0621a351c998855fde63465ae13d3f1052a9fd5a6dd65104ffb" // SAN a.example, www.a.example
		fpB = "87e354f12a60bf0cba51a3b04e8454c711303493daec5076f1b130f9edc325cc" // SAN b.example
	)
	s := New()
	d := statefile.NewDecoder(bytes.NewReader(data))
	for {
		wr, err := d.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Dispatch(wr.GetContent()); err != nil {
			t.Fatalf("%s: %v", wr.GetId(), err)
		}
	}

	certs := s.Certificates(nil).GetCerts()
	if len(certs) != 2 {
		t.Fatalf("%d certificates, want 2", len(certs))
	}
	b := certs[fpB]
	if !slices.Equal(b.GetNames(), []string{"b.example"}) {
		t.Errorf("names of B (empty in the file): %q, want its SAN", b.GetNames())
	}
	if !strings.Contains(b.GetKey(), "BEGIN PRIVATE KEY") {
		t.Error("key of B not kept")
	}
	if at, ok := s.ExpiredAt(sa("127.0.0.1:8443"), fpB); !ok || at.Unix() != 1893456000 {
		t.Errorf("expired_at of B: %v %v", at, ok)
	}
	for _, tc := range []struct {
		addr, domain string
		want         []string
	}{
		{"127.0.0.1:8443", "*.w.example", []string{fpA}},
		{"[2001:db8::1]:443", "www.a.example", []string{fpA}},
		{"127.0.0.1:8443", "b.example", []string{fpB}},
	} {
		if got := sortedKeys(s.Certificates(&command.QueryCertificatesFilters{Domain: &tc.domain}).GetCerts()); !slices.Equal(got, tc.want) {
			t.Errorf("domain %s: %v, want %v", tc.domain, got, tc.want)
		}
	}

	// Written back: the same records, but B with the names computed when
	// it was added and expired_at null (upstream writes it so too).
	var buf bytes.Buffer
	e := statefile.NewEncoder(&buf)
	for _, wr := range s.GenerateRequests() {
		if err := e.Encode(wr); err != nil {
			t.Fatal(err)
		}
	}
	in, out := strings.Split(string(data), "\n\x00"), strings.Split(buf.String(), "\n\x00")
	if len(in) != 4 || len(out) != 4 {
		t.Fatalf("%d records in, %d out", len(in)-1, len(out)-1)
	}
	want := []string{in[0],
		strings.Replace(strings.Replace(in[1], `"names":[]`, `"names":["b.example"]`, 1), `"expired_at":1893456000`, `"expired_at":null`, 1),
		in[2], ""}
	for i := range want {
		if out[i] != want[i] {
			t.Errorf("record %d written as\n%s\nwant\n%s", i, out[i], want[i])
		}
	}
}
