package proxyproto

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"strings"
	"testing"
	"testing/iotest"
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
		{name: "local unspec discards its block", in: sig + "20 00 0003 ffffff", want: Header{Command: Local}, n: 19},
		{name: "local inet ignores addresses", in: sig + "20 11 000c c0000201 c6336407 c738 01bb", want: Header{Command: Local}, n: 28},
		{name: "local inet ignores a malformed tail", in: sig + "20 11 000e c0000201 c6336407 c738 01bb 0400", want: Header{Command: Local}, n: 30},
		{name: "local inet with no block", in: sig + "20 11 0000", want: Header{Command: Local}, n: 16},
		{name: "local inet6 with a short block", in: sig + "20 21 0004 01020304", want: Header{Command: Local}, n: 20},
		{name: "local inet6 with a 16-byte block", in: sig + "20 21 0010 00000000000000000000000000000001", want: Header{Command: Local}, n: 32},
		{name: "local unix family discarded", in: sig + "20 31 0003 010203", want: Header{Command: Local}, n: 19},
		{name: "proxy unspec uses the real endpoints", in: sig + "21 00 0000", want: Header{Command: Local}, n: 16},
		{name: "proxy unspec discards its block", in: sig + "21 00 0004 01020304", want: Header{Command: Local}, n: 20},
		{name: "proxy udp over inet", in: sig + "21 12 000c c0000201 c6336407 c738 01bb", want: v4, n: 28},
		{name: "proxy udp over inet6", in: sig + "21 22 0024 20010db8000000000000000000000001 20010db8000000000000000000000002 04d2 0050", want: v6, n: 52},
		{name: "bad signature", in: "0d0a0d0a000d0a515549540b 21 11 000c", err: ErrSignature,
			text: "proxyproto: not a PROXY protocol v2 signature"},
		{name: "v1 text", in: hex.EncodeToString([]byte("PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\n")), err: ErrSignature},
		{name: "v1 short text", in: hex.EncodeToString([]byte("PROXY UNKNOWN\r\n")), err: ErrSignature},
		{name: "version 1 nibble", in: sig + "11 11 000c c0000201 c6336407 c738 01bb", err: ErrVersion,
			text: "proxyproto: unsupported version 1"},
		{name: "version 3 nibble", in: sig + "30", err: ErrVersion},
		{name: "command 2", in: sig + "22 11 000c c0000201 c6336407 c738 01bb", err: ErrCommand,
			text: "proxyproto: unknown command 0x2"},
		{name: "command 3", in: sig + "23", err: ErrCommand},
		{name: "proxy unix", in: sig + "21 31 00d8" + strings.Repeat("00", 216), err: ErrFamily,
			text: "proxyproto: unsupported address family or transport protocol: AF_UNIX addresses (0x31) with a PROXY command"},
		{name: "family 0x30 refused", in: sig + "20 30 0000", err: ErrFamily,
			text: "proxyproto: unsupported address family or transport protocol: 0x30"},
		{name: "family 0x10 refused", in: sig + "21 10 000c c0000201 c6336407 c738 01bb", err: ErrFamily},
		{name: "family 0x13 refused", in: sig + "21 13 000c c0000201 c6336407 c738 01bb", err: ErrFamily},
		{name: "family 0x41 refused", in: sig + "20 41 0000", err: ErrFamily},
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
		{name: "one byte over the default bound", in: sig + "21 11 00d9", err: ErrTooLarge,
			text: "proxyproto: header larger than the size bound: 233 bytes, bound 232"},
		{name: "exactly the default bound", in: sig + "21 11 00d8 c0000201 c6336407 c738 01bb 04 00c9" + strings.Repeat("00", 201),
			want: v4, n: 232},
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

// stingy hands out its bytes one at a time, then fails the test on any
// further read instead of blocking (as a socket would, waiting for bytes
// the peer never sends).
type stingy struct {
	t *testing.T
	b []byte
}

func (s *stingy) Read(p []byte) (int, error) {
	if len(s.b) == 0 {
		s.t.Fatal("read past the bytes sent: the parser waits for bytes it does not need")
	}
	if len(p) == 0 {
		return 0, nil
	}
	p[0] = s.b[0]
	s.b = s.b[1:]
	return 1, nil
}

// TestParseRefusesEarly checks that a prefix that cannot start a v2 header
// is refused as soon as its first wrong byte arrives: a v1 line or a
// request shorter than 16 bytes must not wait for the front timeout.
func TestParseRefusesEarly(t *testing.T) {
	tests := []struct {
		name string
		in   []byte
		err  error
	}{
		{"v1 line", []byte("P"), ErrSignature},
		{"HTTP request", []byte("G"), ErrSignature},
		{"wrong 12th byte", unhex(t, "0d0a0d0a000d0a515549540b"), ErrSignature},
		{"version 1", unhex(t, sig+"11"), ErrVersion},
		{"unknown command", unhex(t, sig+"2f"), ErrCommand},
		{"invalid family", unhex(t, sig+"21 44"), ErrFamily},
		{"too large", unhex(t, sig+"21 11 ffff"), ErrTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse(&stingy{t: t, b: tt.in}, 0)
			if !errors.Is(err, tt.err) {
				t.Fatalf("err = %v, want %v", err, tt.err)
			}
		})
	}
}

// TestParseByteByByte feeds headers one byte per read, as a header split
// across many TCP segments arrives.
func TestParseByteByByte(t *testing.T) {
	for _, in := range []string{
		sig + "21 11 000c c0000201 c6336407 c738 01bb",
		sig + "21 21 0024 20010db8000000000000000000000001 20010db8000000000000000000000002 04d2 0050",
		sig + "21 11 0014 c0000201 c6336407 c738 01bb 04 0000 05 0002 6869",
		sig + "20 00 0000",
	} {
		b := unhex(t, in)
		want, n, err := ParseBytes(b, 0)
		if err != nil || n != len(b) {
			t.Fatalf("%s: %v (%d bytes)", in, err, n)
		}
		h, err := Parse(&stingy{t: t, b: b}, 0)
		if err != nil || h != want {
			t.Fatalf("%s byte by byte: %+v, %v; want %+v", in, h, err, want)
		}
	}
}

func TestReadKeepsTheRawHeader(t *testing.T) {
	hdr := unhex(t, sig+"21 11 0014 c0000201 c6336407 c738 01bb 04 0000 05 0002 6869")
	r := bytes.NewReader(append(append([]byte(nil), hdr...), "payload"...))
	h, raw, err := Read(r, 0, []byte("x"))
	if err != nil || h.Command != Proxy {
		t.Fatal(h, err)
	}
	if want := append([]byte("x"), hdr...); !bytes.Equal(raw, want) {
		t.Fatalf("raw %x, want %x", raw, want)
	}
	if rest, _ := io.ReadAll(r); string(rest) != "payload" {
		t.Fatalf("rest %q", rest)
	}
	_, raw, err = Read(bytes.NewReader(hdr[:20]), 0, []byte("x"))
	if err != io.ErrUnexpectedEOF || string(raw) != "x" {
		t.Fatalf("cut header: %q, %v", raw, err)
	}
}

// encode writes h back as a header.
func encode(h Header) []byte {
	if h.Command == Local {
		return AppendLocal(nil)
	}
	return Append(nil, h.Source, h.Destination)
}

// FuzzParse checks, for any input:
//   - parsing it whole and parsing it one byte per read agree (same header,
//     same error), so early refusal never depends on how bytes arrive;
//   - a header parsed from b has every strict prefix of it reported as
//     incomplete (io.ErrUnexpectedEOF), never refused nor accepted: the
//     parser decides nothing on bytes it has not read;
//   - Parse never reads past the header it returns, Read returns exactly
//     its bytes, and parse → encode → parse gives back the same header and
//     the same bytes;
//   - PROXY carries valid addresses and LOCAL none; the size bound holds.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		sig + "21 11 000c c0000201 c6336407 c738 01bb",
		sig + "21 21 0024 20010db8000000000000000000000001 20010db8000000000000000000000002 04d2 0050",
		sig + "21 11 0014 c0000201 c6336407 c738 01bb 04 0000 05 0002 6869",
		sig + "20 00 0000",
		sig + "21 00 0002 0000",
		sig + "20 31 0003 010203",
		sig + "21 12 000c c0000201 c6336407 c738 01bb",
		sig + "21 11 0010 c0000201 c6336407 c738 01bb 05 0002 68",
		sig + "20 30 0000",
		sig + "21 11 00d9",
	} {
		f.Add(unhex(f, s), uint16(0))
	}
	f.Fuzz(func(t *testing.T, b []byte, max16 uint16) {
		max := int(max16)
		h, n, err := ParseBytes(b, max)
		h1, err1 := Parse(iotest.OneByteReader(bytes.NewReader(b)), max)
		if h1 != h || fmt.Sprint(err1) != fmt.Sprint(err) {
			t.Fatalf("byte by byte: %+v, %v; whole: %+v, %v", h1, err1, h, err)
		}
		if err != nil {
			if errors.Is(err, ErrTooLarge) && (len(b) < fixedLen || fixedLen+int(binary.BigEndian.Uint16(b[14:16])) <= effectiveMax(max)) {
				t.Fatalf("%v for a header within the bound", err)
			}
			return
		}
		if n < fixedLen || n > len(b) || n > effectiveMax(max) {
			t.Fatalf("consumed %d of %d bytes, bound %d", n, len(b), effectiveMax(max))
		}
		switch h.Command {
		case Proxy:
			if !h.Source.IsValid() || !h.Destination.IsValid() {
				t.Fatalf("PROXY header without addresses: %+v", h)
			}
		case Local:
			if h.Source.IsValid() || h.Destination.IsValid() {
				t.Fatalf("LOCAL header with addresses: %+v", h)
			}
		default:
			t.Fatalf("command %v", h.Command)
		}
		for k := range n {
			if _, _, err := ParseBytes(b[:k], max); err != io.ErrUnexpectedEOF {
				t.Fatalf("prefix of %d of the %d header bytes: %v, want io.ErrUnexpectedEOF", k, n, err)
			}
		}
		h2, raw, err := Read(bytes.NewReader(b), max, nil)
		if err != nil || h2 != h || !bytes.Equal(raw, b[:n]) {
			t.Fatalf("Read: %+v, %x, %v; want %+v, %x", h2, raw, err, h, b[:n])
		}
		enc := encode(h)
		h3, n3, err := ParseBytes(enc, 0)
		if err != nil {
			t.Fatalf("re-parsing %x: %v", enc, err)
		}
		if h3 != h || n3 != len(enc) {
			t.Fatalf("round trip: %+v (%d bytes) → %x → %+v (%d bytes)", h, n, enc, h3, n3)
		}
		if enc2 := encode(h3); !bytes.Equal(enc, enc2) {
			t.Fatalf("encoding unstable: %x then %x", enc, enc2)
		}
	})
}

func effectiveMax(max int) int {
	if max <= 0 {
		return DefaultMaxSize
	}
	return max
}

func TestCommandString(t *testing.T) {
	if Local.String() != "LOCAL" || Proxy.String() != "PROXY" || Command(7).String() != "Command(0x7)" {
		t.Fatal(Local, Proxy, Command(7))
	}
}

// TestAppendDgram: the header of a UDP datagram declares the DGRAM
// transport (0x12 over IPv4, 0x22 over IPv6), parses back to its
// addresses, and IsDgram tells it from a STREAM one.
func TestAppendDgram(t *testing.T) {
	for _, tc := range []struct {
		src, dst string
		fam      byte
	}{
		{"192.0.2.1:5353", "198.51.100.2:53", 0x12},
		{"[2001:db8::1]:5353", "[2001:db8::2]:53", 0x22},
		{"192.0.2.1:5353", "[2001:db8::2]:53", 0x22},
	} {
		src, dst := netip.MustParseAddrPort(tc.src), netip.MustParseAddrPort(tc.dst)
		b := AppendDgram(nil, src, dst)
		if b[13] != tc.fam || !IsDgram(b) {
			t.Errorf("%s -> %s: family %#02x, IsDgram %v; want %#02x", tc.src, tc.dst, b[13], IsDgram(b), tc.fam)
		}
		h, n, err := ParseBytes(b, 0)
		if err != nil || n != len(b) || h.Command != Proxy || h.Source.Port() != src.Port() || h.Destination.Port() != dst.Port() {
			t.Errorf("%s -> %s: parsed %+v, %d of %d bytes, %v", tc.src, tc.dst, h, n, len(b), err)
		}
		if IsDgram(Append(nil, src, dst)) {
			t.Errorf("%s -> %s: a STREAM header reads as DGRAM", tc.src, tc.dst)
		}
	}
}

// TestMalformed: the errors of bytes that are not a header are malformed
// (proxy_protocol.errors counts them), the end of the connection before a
// whole header is not.
func TestMalformed(t *testing.T) {
	_, err := Parse(strings.NewReader("GET / HTTP/1.1\r\n\r\n"), 0)
	if !Malformed(err) {
		t.Errorf("HTTP request: %v, want malformed", err)
	}
	for _, in := range []string{"", "\r\n\r\n\x00"} {
		if _, err := Parse(strings.NewReader(in), 0); err == nil || Malformed(err) {
			t.Errorf("%q: %v, want a read error, not malformed", in, err)
		}
	}
}
