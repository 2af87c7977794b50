// Package proxyproto reads and writes PROXY protocol version 2 headers
// (haproxy.org proxy-protocol.txt §2.2) for TCP and UDP proxies: addresses
// over IPv4 and IPv6, STREAM or DGRAM, TLVs checked for framing and skipped. Version 1 (text) is not
// accepted, as upstream Sōzu does not accept it either.
package proxyproto

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/netip"
)

// Signature is the 12-byte preamble of every version 2 header.
var Signature = [12]byte{0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A}

// Sizes of the parts of a version 2 header.
const (
	fixedLen = 16 // signature, version and command, family, length
	inet4Len = 12 // source and destination addresses and ports over IPv4
	inet6Len = 36 // same over IPv6
	unixLen  = 216

	// DefaultMaxSize bounds a whole header (fixed part, addresses and TLVs)
	// when Parse is given a bound <= 0: 16 + 216 bytes, the specification's
	// largest address block (AF_UNIX), which is also upstream Sōzu's bound.
	// It leaves 180 bytes of TLVs after IPv6 addresses.
	DefaultMaxSize = fixedLen + unixLen
)

// Command is the command of a header.
type Command uint8

const (
	// Local: the connection was opened by the proxy itself (health
	// checks); the receiver uses the real connection endpoints.
	Local Command = 0x0
	// Proxy: the connection is relayed on behalf of Source.
	Proxy Command = 0x1
)

func (c Command) String() string {
	switch c {
	case Local:
		return "LOCAL"
	case Proxy:
		return "PROXY"
	}
	return fmt.Sprintf("Command(%#x)", uint8(c))
}

// Address families and transports (§2.2, 14th byte). Every other value is
// invalid and refused, whatever the command.
const (
	famUnspec = 0x00
	famInet   = 0x11 // AF_INET, STREAM
	famInetDg = 0x12 // AF_INET, DGRAM
	famInet6  = 0x21 // AF_INET6, STREAM
	famInet6D = 0x22 // AF_INET6, DGRAM
	famUnix   = 0x31 // AF_UNIX, STREAM
	famUnixDg = 0x32 // AF_UNIX, DGRAM
)

func validFamily(f byte) bool {
	switch f {
	case famUnspec, famInet, famInetDg, famInet6, famInet6D, famUnix, famUnixDg:
		return true
	}
	return false
}

// Header is a parsed version 2 header. Source and Destination are valid
// exactly when Command is Proxy.
//
// Command is Local for a LOCAL header, whose address block is discarded as
// §2.2 requires, and also for a PROXY header of family UNSPEC, which the
// specification lets the receiver accept "using the real connection
// endpoints" — what Local tells the caller to do (upstream Sōzu does the
// same on TCP). TLVs are checked for framing and then dropped.
type Header struct {
	Command     Command
	Source      netip.AddrPort
	Destination netip.AddrPort
}

// Errors of Parse, in the specification's words. Parse wraps them with
// details; test with errors.Is.
var (
	ErrSignature = errors.New("proxyproto: not a PROXY protocol v2 signature")
	ErrVersion   = errors.New("proxyproto: unsupported version")
	ErrCommand   = errors.New("proxyproto: unknown command")
	ErrFamily    = errors.New("proxyproto: unsupported address family or transport protocol")
	ErrTooLarge  = errors.New("proxyproto: header larger than the size bound")
	ErrShort     = errors.New("proxyproto: address block shorter than its family requires")
	ErrTLV       = errors.New("proxyproto: truncated TLV")
)

// Malformed reports whether err is one of the errors above: the peer sent
// bytes that are not a valid header (not a read error, a timeout or a
// header cut short by the end of the connection).
func Malformed(err error) bool {
	for _, e := range []error{ErrSignature, ErrVersion, ErrCommand, ErrFamily, ErrTooLarge, ErrShort, ErrTLV} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// Parse reads exactly one version 2 header from r and nothing more, so the
// payload that follows stays in r. max bounds the whole header in bytes
// (DefaultMaxSize when <= 0); a longer one is refused with ErrTooLarge
// before its body is read. A read error (io.ErrUnexpectedEOF for a header
// cut short) is returned as it is.
//
// The fixed part is checked as it arrives: a byte that cannot start a
// version 2 header (a version 1 "PROXY ..." line, an HTTP request) is
// refused at once, without waiting for the rest of the 16 bytes.
func Parse(r io.Reader, max int) (Header, error) {
	h, _, err := Read(r, max, nil)
	return h, err
}

// Read is Parse that also appends the header's bytes, as received, to raw
// and returns the extended slice (to relay the header verbatim, TLVs
// included). On error the returned slice is raw unchanged.
func Read(r io.Reader, max int, raw []byte) (Header, []byte, error) {
	if max <= 0 {
		max = DefaultMaxSize
	}
	var fixed [fixedLen]byte
	for got := 0; got < fixedLen; {
		n, err := r.Read(fixed[got:])
		if err := checkFixed(fixed[:got+n], got); err != nil {
			return Header{}, raw, err
		}
		got += n
		if err != nil && got < fixedLen {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return Header{}, raw, err
		}
	}
	n := int(binary.BigEndian.Uint16(fixed[14:16]))
	if fixedLen+n > max {
		return Header{}, raw, fmt.Errorf("%w: %d bytes, bound %d", ErrTooLarge, fixedLen+n, max)
	}
	start := len(raw)
	out := append(raw, fixed[:]...)
	out = append(out, make([]byte, n)...)
	body := out[start+fixedLen:]
	if _, err := io.ReadFull(r, body); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return Header{}, raw, err
	}
	h, err := parseBody(fixed[12], fixed[13], body)
	if err != nil {
		return Header{}, raw, err
	}
	return h, out, nil
}

// ParseBytes parses a header at the start of b and returns it with its
// length in bytes. A b too short for the header it starts is
// io.ErrUnexpectedEOF.
func ParseBytes(b []byte, max int) (Header, int, error) {
	r := bytes.NewReader(b)
	h, err := Parse(r, max)
	if err != nil {
		return Header{}, 0, err
	}
	return h, len(b) - r.Len(), nil
}

// checkFixed checks the bytes f[from:] of the fixed part, f being its first
// len(f) bytes.
func checkFixed(f []byte, from int) error {
	for i := from; i < len(f); i++ {
		switch {
		case i < len(Signature):
			if f[i] != Signature[i] {
				return ErrSignature
			}
		case i == 12:
			if v := f[i] >> 4; v != 2 {
				return fmt.Errorf("%w %d", ErrVersion, v)
			}
			if c := Command(f[i] & 0x0f); c != Local && c != Proxy {
				return fmt.Errorf("%w %#x", ErrCommand, uint8(c))
			}
		case i == 13:
			if !validFamily(f[i]) {
				return fmt.Errorf("%w: %#02x", ErrFamily, f[i])
			}
		}
	}
	return nil
}

func parseBody(verCmd, fam byte, body []byte) (Header, error) {
	cmd := Command(verCmd & 0x0f)
	var addrLen int
	switch fam {
	case famInet, famInetDg:
		addrLen = inet4Len
	case famInet6, famInet6D:
		addrLen = inet6Len
	case famUnix, famUnixDg:
		if cmd == Proxy {
			return Header{}, fmt.Errorf("%w: AF_UNIX addresses (%#02x) with a PROXY command", ErrFamily, fam)
		}
		return Header{Command: Local}, nil // LOCAL: the block is discarded
	default: // UNSPEC: no address, whatever the command; the block is discarded
		return Header{Command: Local}, nil
	}
	if cmd == Local {
		// The spec (§2.2): a LOCAL connection is accepted whatever its
		// protocol block, which is discarded with its family.
		return Header{Command: Local}, nil
	}
	if len(body) < addrLen {
		return Header{}, fmt.Errorf("%w: %d bytes, want %d", ErrShort, len(body), addrLen)
	}
	if err := checkTLVs(body[addrLen:]); err != nil {
		return Header{}, err
	}
	h := Header{Command: Proxy}
	if addrLen == inet4Len {
		h.Source = netip.AddrPortFrom(netip.AddrFrom4([4]byte(body[0:4])), binary.BigEndian.Uint16(body[8:10]))
		h.Destination = netip.AddrPortFrom(netip.AddrFrom4([4]byte(body[4:8])), binary.BigEndian.Uint16(body[10:12]))
	} else {
		h.Source = netip.AddrPortFrom(netip.AddrFrom16([16]byte(body[0:16])), binary.BigEndian.Uint16(body[32:34]))
		h.Destination = netip.AddrPortFrom(netip.AddrFrom16([16]byte(body[16:32])), binary.BigEndian.Uint16(body[34:36]))
	}
	return h, nil
}

// checkTLVs checks that b is a sequence of whole type-length-value records.
func checkTLVs(b []byte) error {
	for len(b) > 0 {
		if len(b) < 3 {
			return fmt.Errorf("%w: %d bytes left, a TLV needs 3", ErrTLV, len(b))
		}
		n := int(binary.BigEndian.Uint16(b[1:3]))
		if len(b) < 3+n {
			return fmt.Errorf("%w: type %#02x declares %d bytes, %d left", ErrTLV, b[0], n, len(b)-3)
		}
		b = b[3+n:]
	}
	return nil
}

// Append appends a PROXY v2 header (command PROXY, no TLV) for a TCP
// connection from src to dst and returns the extended slice. The header is
// INET when both addresses are IPv4, else INET6 (an IPv4 one is then sent
// IPv4-mapped); callers holding IPv4-mapped addresses should Unmap them
// first. Invalid addresses give a LOCAL header.
func Append(b []byte, src, dst netip.AddrPort) []byte {
	return appendProxy(b, src, dst, famInet, famInet6)
}

// AppendDgram is Append for a UDP datagram: the header's transport is DGRAM
// (families 0x12 and 0x22), as a PROXY v2 receiver of UDP expects it.
func AppendDgram(b []byte, src, dst netip.AddrPort) []byte {
	return appendProxy(b, src, dst, famInetDg, famInet6D)
}

// IsDgram reports whether the header at the start of b, if any, declares a
// DGRAM transport (its 14th byte is 0x12 or 0x22).
func IsDgram(b []byte) bool {
	return len(b) >= fixedLen && bytes.Equal(b[:len(Signature)], Signature[:]) && (b[13] == famInetDg || b[13] == famInet6D)
}

func appendProxy(b []byte, src, dst netip.AddrPort, fam4, fam6 byte) []byte {
	if !src.IsValid() || !dst.IsValid() {
		return AppendLocal(b)
	}
	s, d := src.Addr(), dst.Addr()
	b = append(b, Signature[:]...)
	if s.Is4() && d.Is4() {
		b = append(b, 0x20|byte(Proxy), fam4, 0, inet4Len)
		s4, d4 := s.As4(), d.As4()
		b = append(b, s4[:]...)
		b = append(b, d4[:]...)
	} else {
		b = append(b, 0x20|byte(Proxy), fam6, 0, inet6Len)
		s16, d16 := s.As16(), d.As16()
		b = append(b, s16[:]...)
		b = append(b, d16[:]...)
	}
	b = binary.BigEndian.AppendUint16(b, src.Port())
	return binary.BigEndian.AppendUint16(b, dst.Port())
}

// AppendLocal appends a LOCAL header without addresses.
func AppendLocal(b []byte) []byte {
	b = append(b, Signature[:]...)
	return append(b, 0x20|byte(Local), famUnspec, 0, 0)
}
