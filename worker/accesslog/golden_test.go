package accesslog

import (
	"bytes"
	"crypto/tls"
	"flag"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/sozu-go/sozu/worker/logmask"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden")

// goldenRecords are the records of the golden files: every protocol, with
// and without a backend, tags, a user agent, a query, an UDP end reason, a
// whole-second timestamp, an IPv4-mapped client, ids of both kinds.
func goldenRecords() []*Record {
	plain := httpRecord()
	plain.Protocol, plain.Target, plain.UserAgent, plain.Host, plain.Tags = HTTP, []byte("/"), nil, []byte("127.0.0.1:18281"), nil
	plain.Backend = netip.MustParseAddrPort("127.0.0.1:18280")
	h2 := httpRecord()
	h2.Protocol, h2.Status, h2.Backend, h2.BackendID, h2.BackendTime = H2, 404, netip.AddrPort{}, "", 0
	h2.Client = netip.MustParseAddrPort("[::ffff:192.0.2.9]:1234")
	h2.TLS = NewTLSInfo(&tls.ConnectionState{Version: tls.VersionTLS13, CipherSuite: tls.TLS_AES_128_GCM_SHA256,
		ServerName: "shop.example.com", NegotiatedProtocol: "h2"})
	https := httpRecord()
	https.TLS = NewTLSInfo(&tls.ConnectionState{Version: tls.VersionTLS12, CipherSuite: tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
		ServerName: "4111111111111111.example.com"})
	noAnswer := httpRecord()
	noAnswer.Status, noAnswer.RequestID, noAnswer.End = 0, [16]byte{}, t0
	tcp := &Record{Protocol: TCP, SessionID: sessionID, Start: t0, End: t0.Add(3*time.Second + 7),
		Client: netip.MustParseAddrPort("192.0.2.7:40000"), Backend: netip.MustParseAddrPort("10.1.2.3:5432"),
		Listener: "0.0.0.0:5432", ClusterID: "db", BackendID: "db-1", BytesIn: 5, BytesOut: 1 << 40, BackendTime: time.Second}
	big := httpRecord()
	big.BytesIn, big.BytesOut, big.Status = 1<<62, 0, 999
	big.End = t0.Add(100*time.Hour + 123456789)
	return []*Record{httpRecord(), plain, h2, https, noAnswer, tcp, udpRecord(), big}
}

// TestGolden compares every format's encoding of goldenRecords with
// testdata/FORMAT.golden (go test -update rewrites them): a change of
// layout shows in review.
func TestGolden(t *testing.T) {
	for _, f := range []Format{Ascii, JSON, Protobuf} {
		for _, q := range []logmask.QueryMode{logmask.QueryMask, logmask.QueryKeep} {
			e := Encoder{Format: f, Query: q, Tag: "WRK-00", PID: 42}
			var got []byte
			for _, r := range goldenRecords() {
				got = e.Append(got, r)
			}
			name := filepath.Join("testdata", f.String()+"-"+q.String()+".golden")
			if *update {
				if err := os.WriteFile(name, got, 0o644); err != nil {
					t.Fatal(err)
				}
				continue
			}
			want, err := os.ReadFile(name)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("%s: encoding changed:\n got %q\nwant %q", name, got, want)
			}
		}
	}
}
