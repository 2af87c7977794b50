package accesslog

import (
	"bytes"
	"encoding/json"
	"net/netip"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protodelim"

	"github.com/sozu-go/sozu/proto/command"
)

func udpRecord() *Record {
	return &Record{
		Protocol: UDP, SessionID: sessionID, Start: t0, End: t0.Add(2 * time.Second),
		Client: netip.MustParseAddrPort("192.0.2.7:5353"), Backend: netip.MustParseAddrPort("10.0.0.2:53"),
		Listener: "0.0.0.0:53", ClusterID: "dns", BackendID: "dns-0",
		BytesIn: 40, BytesOut: 300, DatagramsIn: 2, DatagramsOut: 3, EndReason: "idle", BackendTime: 2 * time.Second,
		Tags: NewTags(map[string]string{"svc": "resolver"}),
	}
}

// A UDP flow's record in each format: upstream's TCP-like ascii line with
// protocol UDP, a protobuf ProtobufAccessLog with protocol "UDP", and
// JSON with network.transport "udp", the datagrams each way and the end
// reason.
func TestUDPRecordInEveryFormat(t *testing.T) {
	for _, tt := range []struct {
		name  string
		check func(t *testing.T, b []byte)
	}{
		{"ascii", func(t *testing.T, b []byte) {
			want := "2026-12-06T08:00:02.000000Z 1796544002000000000 42 INFO-ACCESS  WRK-00\t[" + sessionID.String() +
				" " + sessionID.String() + " dns dns-0] 192.0.2.7:5353 10.0.0.2:53 2000ms/0ns/2000ms/-/- 40 300 [svc=resolver] None UDP -\n"
			if string(b) != want {
				t.Errorf("\n got %q\nwant %q", b, want)
			}
		}},
		{"protobuf", func(t *testing.T, b []byte) {
			var m command.ProtobufAccessLog
			if err := protodelim.UnmarshalFrom(bytes.NewReader(b), &m); err != nil {
				t.Fatal(err)
			}
			if m.GetProtocol() != "UDP" || m.GetBytesIn() != 40 || m.GetBytesOut() != 300 || m.GetClusterId() != "dns" ||
				m.GetBackendId() != "dns-0" || m.GetSessionAddress().GetPort() != 5353 || m.GetBackendAddress().GetPort() != 53 ||
				m.GetTags()["svc"] != "resolver" || m.GetRequestTime() != 2e6 || m.GetEndpoint().GetTcp() == nil {
				t.Errorf("record %v", &m)
			}
		}},
		{"json", func(t *testing.T, b []byte) {
			var m map[string]any
			if err := json.Unmarshal(b, &m); err != nil {
				t.Fatalf("%v: %s", err, b)
			}
			want := map[string]any{"network.transport": "udp", "network.packets": float64(5), "network.bytes": float64(340),
				"event.reason": "idle", "event.duration": float64(2e9), "source.port": float64(5353), "destination.ip": "10.0.0.2",
				"sozu.protocol": "UDP", "sozu.datagrams_in": float64(2), "sozu.datagrams_out": float64(3),
				"sozu.bytes_in": float64(40), "sozu.bytes_out": float64(300), "labels.svc": "resolver", "trace.id": sessionID.String()}
			for k, v := range want {
				if got, _ := lookup(m, k); got != v {
					t.Errorf("%s = %v, want %v (%s)", k, got, v, b)
				}
			}
			if c, _ := lookup(m, "event.category"); len(c.([]any)) != 1 || c.([]any)[0] != "network" {
				t.Errorf("event.category %v, want [network]", c)
			}
			if _, ok := lookup(m, "http"); ok {
				t.Errorf("a UDP record with an http object: %s", b)
			}
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f, err := ParseFormat(tt.name)
			if err != nil {
				t.Fatal(err)
			}
			e := Encoder{Format: f, Tag: "WRK-00", PID: 42}
			tt.check(t, e.Append(nil, udpRecord()))
		})
	}
}
