package proxyproto

import (
	"bytes"
	"encoding/hex"
	"errors"
	"io"
	"net/netip"
	"strings"
	"testing"
)

const sig = "0d0a0d0a000d0a515549540a"

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestParse(t *testing.T) {
	v4 := Header{Command: Proxy, Source: netip.MustParseAddrPort("192.0.2.1:51000"), Destination: netip.MustParseAddrPort("198.51.100.7:443")}
	v6 := Header{Command: Proxy, Source: netip.MustParseAddrPort("[2001:db8::1]:1234"), Destination: netip.MustParseAddrPort("[2001:db8::2]:80")}
	tests := []struct {
		name string
		in   string
		max  int
		want Header
		n    int    // bytes consumed
		err  error  // errors.Is target
		text string // expected error text, when err is set
	}{
		{name: "inet", in: sig + "21 11 000c c0000201 c6336407 c738 01bb", want: v4, n: 28},
		{name: "inet with payload after", in: sig + "21 11 000c c0000201 c6336407 c738 01bb 474554", want: v4, n: 28},
		{name: "inet6", in: sig + "21 21 0024 20010db8000000000000000000000001 20010db8000000000000000000000002 04d2 0050", want: v6, n: 52},
		{name: "inet with TLVs", in: sig + "21 11 0014 c0000201 c6336407 c738 01bb 04 0000 05 0002 6869", want: v4, n: 36},
		{name: "local unspec", in: sig + "20 00 0000", want: Header{Command: Local}, n: 16},
		{name: "local inet ignores addresses", in: sig + "20 11 000c c0000201 c6336407 c738 01bb", want: Header{Command: Local}, n: 28},
		{name: "local unix family discarded", in: sig + "20 31 0003 010203", want: Header{Command: Local}, n: 19},
		{name: "bad signature", in: "0d0a0d0a000d0a515549540b 21 11 000c", err: ErrSignature,
			text: "proxyproto: not a PROXY protocol v2 signature"},
		{name: "v1 text", in: hex.EncodeToString([]byte("PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\n")), err: ErrSignature},
		{name: "version 1 nibble", in: sig + "11 11 000c c0000201 c6336407 c738 01bb", err: ErrVersion,
			text: "proxyproto: unsupported version 1"},
		{name: "command 2", in: sig + "22 11 000c c0000201 c6336407 c738 01bb", err: ErrCommand,
			text: "proxyproto: unknown command 0x2"},
		{name: "proxy unspec", in: sig + "21 00 0000", err: ErrFamily,
			text: "proxyproto: unsupported address family or transport protocol: UNSPEC with a PROXY command"},
		{name: "proxy udp", in: sig + "21 12 000c c0000201 c6336407 c738 01bb", err: ErrFamily,
			text: "proxyproto: unsupported address family or transport protocol: 0x12"},
		{name: "proxy unix", in: sig + "21 31 0000", err: ErrFamily},
		{name: "short inet", in: sig + "21 11 0008 c0000201 c6336407", err: ErrShort,
			text: "proxyproto: address block shorter than its family requires: 8 bytes, want 12"},
		{name: "short inet6", in: sig + "21 21 000c c0000201 c6336407 c738 01bb", err: ErrShort},
		{name: "tlv header cut", in: sig + "21 11 000e c0000201 c6336407 c738 01bb 0400", err: ErrTLV,
			text: "proxyproto: truncated TLV: 2 bytes left, a TLV needs 3"},
		{name: "tlv value cut", in: sig + "21 11 0010 c0000201 c6336407 c738 01bb 05 0002 68", err: ErrTLV,
			text: "proxyproto: truncated TLV: type 0x05 declares 2 bytes, 1 left"},
		{name: "too large", in: sig + "21 11 0fff", max: 64, err: ErrTooLarge,
			text: "proxyproto: header larger than the size bound: 4111 bytes, bound 64"},
		{name: "default bound", in: sig + "21 11 ffff", err: ErrTooLarge},
		{name: "cut in fixed part", in: sig + "21 11", err: io.ErrUnexpectedEOF},
		{name: "cut in body", in: sig + "21 11 000c c0000201", err: io.ErrUnexpectedEOF},
		{name: "empty", in: "", err: io.ErrUnexpectedEOF},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, n, err := ParseBytes(unhex(t, tt.in), tt.max)
			if tt.err != nil {
				if !errors.Is(err, tt.err) {
					t.Fatalf("err = %v, want %v", err, tt.err)
				}
				if tt.text != "" && err.Error() != tt.text {
					t.Fatalf("err text = %q, want %q", err, tt.text)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if h != tt.want || n != tt.n {
				t.Fatalf("got %+v (%d bytes), want %+v (%d bytes)", h, n, tt.want, tt.n)
			}
		})
	}
}

// TestParseLeavesPayload checks that Parse consumes the header only.
func TestParseLeavesPayload(t *testing.T) {
	in := append(Append(nil, netip.MustParseAddrPort("10.0.0.1:1"), netip.MustParseAddrPort("10.0.0.2:2")), "hello"...)
	r := bytes.NewReader(in)
	if _, err := Parse(r, 0); err != nil {
		t.Fatal(err)
	}
	rest, _ := io.ReadAll(r)
	if string(rest) != "hello" {
		t.Fatalf("rest = %q", rest)
	}
}

func TestAppend(t *testing.T) {
	tests := []struct {
		name     string
		src, dst string
		want     string
	}{
		{"inet", "192.0.2.1:51000", "198.51.100.7:443", sig + "21 11 000c c0000201 c6336407 c738 01bb"},
		{"inet6", "[2001:db8::1]:1234", "[2001:db8::2]:80",
			sig + "21 21 0024 20010db8000000000000000000000001 20010db8000000000000000000000002 04d2 0050"},
		{"mixed maps the IPv4 one", "192.0.2.1:1", "[2001:db8::2]:2",
			sig + "21 21 0024 00000000000000000000ffffc0000201 20010db8000000000000000000000002 0001 0002"},
		{"invalid gives LOCAL", "", "198.51.100.7:443", sig + "20 00 0000"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var src, dst netip.AddrPort
			if tt.src != "" {
				src = netip.MustParseAddrPort(tt.src)
			}
			dst = netip.MustParseAddrPort(tt.dst)
			got := Append([]byte("x"), src, dst)
			if want := append([]byte("x"), unhex(t, tt.want)...); !bytes.Equal(got, want) {
				t.Fatalf("got  %x\nwant %x", got, want)
			}
		})
	}
}

// encode writes h back as a header.
func encode(h Header) []byte {
	if h.Command == Local {
		return AppendLocal(nil)
	}
	return Append(nil, h.Source, h.Destination)
}

// FuzzParse checks that Parse never reads past the header it returns, and
// that parse → encode → parse gives back the same header and the same
// bytes.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		sig + "21 11 000c c0000201 c6336407 c738 01bb",
		sig + "21 21 0024 20010db8000000000000000000000001 20010db8000000000000000000000002 04d2 0050",
		sig + "21 11 0014 c0000201 c6336407 c738 01bb 04 0000 05 0002 6869",
		sig + "20 00 0000",
		sig + "20 31 0003 010203",
		sig + "21 11 0010 c0000201 c6336407 c738 01bb 05 0002 68",
	} {
		f.Add(unhex(f, s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		h, n, err := ParseBytes(b, 512)
		if err != nil {
			return
		}
		if n < fixedLen || n > len(b) || n > 512 {
			t.Fatalf("consumed %d of %d bytes", n, len(b))
		}
		if h.Command == Proxy && (!h.Source.IsValid() || !h.Destination.IsValid()) {
			t.Fatalf("PROXY header without addresses: %+v", h)
		}
		enc := encode(h)
		h2, n2, err := ParseBytes(enc, 0)
		if err != nil {
			t.Fatalf("re-parsing %x: %v", enc, err)
		}
		if h2 != h || n2 != len(enc) {
			t.Fatalf("round trip: %+v (%d bytes) → %x → %+v (%d bytes)", h, n, enc, h2, n2)
		}
		if enc2 := encode(h2); !bytes.Equal(enc, enc2) {
			t.Fatalf("encoding unstable: %x then %x", enc, enc2)
		}
	})
}
