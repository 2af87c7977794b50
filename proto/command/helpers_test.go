package command

import (
	"net/netip"
	"testing"

	"google.golang.org/protobuf/proto"
)

func TestSocketAddressRoundTrip(t *testing.T) {
	tests := []struct {
		in      string
		v4      uint32
		lo, hi  uint64
		display string
	}{
		{in: "127.0.0.1:8080", v4: 0x7F000001, display: "127.0.0.1:8080"},
		{in: "10.0.0.10:8000", v4: 167772170, display: "10.0.0.10:8000"},
		{in: "[::1]:443", lo: 1, hi: 0, display: "[::1]:443"},
		{in: "[2001:db8::1]:443", lo: 1, hi: 2306139568115548160, display: "[2001:db8::1]:443"},
	}
	for _, tt := range tests {
		sa, err := ParseSocketAddress(tt.in)
		if err != nil {
			t.Fatalf("%s: %v", tt.in, err)
		}
		switch v := sa.GetIp().GetInner().(type) {
		case *IpAddress_V4:
			if v.V4 != tt.v4 {
				t.Errorf("%s: v4 = %d, want %d", tt.in, v.V4, tt.v4)
			}
		case *IpAddress_V6:
			if v.V6.GetLow() != tt.lo || v.V6.GetHigh() != tt.hi {
				t.Errorf("%s: v6 = (%d,%d), want (%d,%d)", tt.in, v.V6.GetLow(), v.V6.GetHigh(), tt.lo, tt.hi)
			}
		}
		if got := sa.Display(); got != tt.display {
			t.Errorf("%s: Display = %q", tt.in, got)
		}
		ap, err := sa.AddrPort()
		if err != nil || ap != netip.MustParseAddrPort(tt.in) {
			t.Errorf("%s: AddrPort = %v, %v", tt.in, ap, err)
		}
	}
	if _, err := ParseSocketAddress("localhost:80"); err == nil {
		t.Error("hostname accepted as socket address")
	}
}

func TestWireV4LittleEndian(t *testing.T) {
	sa, _ := ParseSocketAddress("127.0.0.1:0")
	b, err := proto.Marshal(sa.GetIp())
	if err != nil {
		t.Fatal(err)
	}
	want := []byte{0x0d, 0x01, 0x00, 0x00, 0x7f}
	if string(b) != string(want) {
		t.Fatalf("IpAddress 127.0.0.1 = % x, want % x", b, want)
	}
}

func TestVerbNames(t *testing.T) {
	r := &Request{RequestType: &Request_QueryClustersHashes{QueryClustersHashes: &QueryClustersHashes{}}}
	if VerbName(r) != "QueryClustersHashes" || StateKey(r) != "QUERY_CLUSTERS_HASHES" {
		t.Errorf("got %q %q", VerbName(r), StateKey(r))
	}
	r = &Request{RequestType: &Request_Logging{Logging: "info"}}
	if VerbName(r) != "Logging" || StateKey(r) != "LOGGING" || VerbKey(r) != "Logging" {
		t.Errorf("got %q %q", VerbName(r), StateKey(r))
	}
	if VerbName(&Request{}) != "" || VerbName(nil) != "" {
		t.Error("empty request has a verb name")
	}
}
