package state

import (
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/sozu-go/sozu/proto/command"
	"github.com/sozu-go/sozu/proto/statefile"
)

// Fuzz input: a sequence of uvarint-length-prefixed protobuf Requests. A
// chunk that does not decode is skipped; a length past the end takes the
// rest.

func encodeRequests(t testing.TB, reqs []*command.Request) []byte {
	var out []byte
	for _, r := range reqs {
		b, err := proto.MarshalOptions{AllowPartial: true}.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		out = binary.AppendUvarint(out, uint64(len(b)))
		out = append(out, b...)
	}
	return out
}

func decodeRequests(data []byte) []*command.Request {
	var out []*command.Request
	for len(data) > 0 {
		n, l := binary.Uvarint(data)
		if l <= 0 {
			return out
		}
		data = data[l:]
		if n > uint64(len(data)) {
			n = uint64(len(data))
		}
		r := &command.Request{}
		if (proto.UnmarshalOptions{AllowPartial: true}).Unmarshal(data[:n], r) == nil {
			out = append(out, r)
		}
		data = data[n:]
	}
	return out
}

// fuzzSeeds are small request sequences covering every state verb.
func fuzzSeeds(t testing.TB) [][]*command.Request {
	certPEM, fp := testCert(t, "fuzz", "fuzz.example.com")
	all := sampleRequests(t)
	return [][]*command.Request{
		all,
		{addHTTPListener(httpListener("0.0.0.0:80")), activateListener("0.0.0.0:80", command.ListenerType_HTTP),
			updateHTTP(&command.UpdateHttpListenerConfig{Address: sa("0.0.0.0:80"), H2MaxPingPerWindow: proto.Uint32(0)}),
			updateHTTP(&command.UpdateHttpListenerConfig{Address: sa("0.0.0.0:80"), Answers: map[string]string{"404": "x"}}),
			deactivateListener("0.0.0.0:80", command.ListenerType_HTTP), removeListener("0.0.0.0:80", command.ListenerType_HTTP)},
		{addHTTPSListener(httpsListener("[::]:443")), addCert("[::]:443", certPEM), replaceCert("[::]:443", fp, certPEM),
			updateHTTPS(&command.UpdateHttpsListenerConfig{Address: sa("[::]:443"), AlpnProtocols: &command.AlpnProtocols{}}),
			removeCert("[::]:443", fp)},
		{addCluster(cluster("a")), setHealthCheck("a", healthCheck("/h")), addBackend(backend("a", "a-0", "10.0.0.1:80")),
			addTCP(tcpFront("a", "0.0.0.0:1", nil)), addUDP(udpFront("a", "0.0.0.0:2", nil)),
			removeBackend("a", "a-0", "10.0.0.1:80"), removeTCP(tcpFront("a", "0.0.0.0:1", nil)),
			removeUDP(udpFront("a", "0.0.0.0:2", nil)), removeHealthCheck("a"), removeCluster("a")},
		{addHTTP(front("a", "0.0.0.0:80", "h", command.PathRuleKind_PREFIX, "/")), addHTTP(front("a", "0.0.0.0:80", "h", command.PathRuleKind_PREFIX, "/")),
			removeHTTP(front("a", "0.0.0.0:80", "h", command.PathRuleKind_PREFIX, "/")), {}},
	}
}

func FuzzDispatch(f *testing.F) {
	for _, seed := range fuzzSeeds(f) {
		f.Add(encodeRequests(f, seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		s := New()
		for _, r := range decodeRequests(data) {
			before := s.GenerateRequests()
			if err := s.Dispatch(r); err != nil {
				if _, ok := err.(*Error); !ok {
					t.Fatalf("Dispatch returned %T, want *Error", err)
				}
				if !sameRequests(before, s.GenerateRequests()) {
					t.Fatalf("refused %s changed the state: %v", command.VerbName(r), err)
				}
			}
		}
		_ = s.ListFrontends(nil)
		_ = s.ClustersByDomain("a.example.com", proto.String("/"))
		requireRoundTrip(t, s)
		// Whatever the state accepted, save_state can write.
		for _, wr := range s.GenerateRequests() {
			if _, err := statefile.Marshal(wr); err != nil {
				t.Fatalf("the state holds a record save_state cannot write: %v", err)
			}
		}
		if !sameRequests(s.GenerateRequests(), s.Clone().GenerateRequests()) {
			t.Fatal("Clone differs")
		}
	})
}

// TestWriteFuzzCorpus rewrites testdata/fuzz/FuzzDispatch from fuzzSeeds
// when run with -update.
func TestWriteFuzzCorpus(t *testing.T) {
	if !*update {
		t.Skip("run with -update to rewrite the seed corpus")
	}
	dir := filepath.Join("testdata", "fuzz", "FuzzDispatch")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for i, seed := range fuzzSeeds(t) {
		body := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", encodeRequests(t, seed))
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("seed-%d", i)), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
