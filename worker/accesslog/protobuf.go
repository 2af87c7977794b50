package accesslog

import (
	"encoding/binary"
	"net/netip"
	"unicode/utf8"

	"github.com/oklog/ulid/v2"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/sozu-go/sozu/worker/logmask"
)

// Field numbers of ProtobufAccessLog and the messages it holds
// (proto/command.proto).
const (
	fieldRequestID      = 2
	fieldClusterID      = 3
	fieldBackendID      = 4
	fieldSessionAddress = 5
	fieldBackendAddress = 6
	fieldProtocol       = 7
	fieldEndpoint       = 8
	fieldServiceTime    = 13
	fieldBytesIn        = 14
	fieldBytesOut       = 15
	fieldUserAgent      = 16
	fieldTags           = 17
	fieldTag            = 18
	fieldTime           = 19
	fieldRequestTime    = 20
	fieldResponseTime   = 21
	fieldSessionID      = 23
	fieldTLSVersion     = 25
	fieldTLSCipher      = 26
	fieldTLSSNI         = 27
	fieldTLSALPN        = 28
	fieldStartTime      = 30

	endpointHTTP = 1
	endpointTCP  = 2
	httpMethod   = 1
	httpAuth     = 2
	httpPath     = 3
	httpStatus   = 4
)

// appendProtobuf appends r as upstream writes a protobuf access log: a
// ProtobufAccessLog, preceded by its length as a varint and followed by
// two zero bytes. Times are in microseconds, as upstream's.
func (e *Encoder) appendProtobuf(dst []byte, r *Record) []byte {
	start := len(dst)
	dst = appendULIDField(dst, fieldRequestID, r.requestID())
	if r.ClusterID != "" {
		dst = protowire.AppendTag(dst, fieldClusterID, protowire.BytesType)
		dst = protowire.AppendString(dst, r.ClusterID)
	}
	if r.BackendID != "" {
		dst = protowire.AppendTag(dst, fieldBackendID, protowire.BytesType)
		dst = protowire.AppendString(dst, r.BackendID)
	}
	if r.Client.IsValid() {
		dst = appendSocketAddress(dst, fieldSessionAddress, r.Client)
	}
	if r.Backend.IsValid() {
		dst = appendSocketAddress(dst, fieldBackendAddress, r.Backend)
	}
	dst = protowire.AppendTag(dst, fieldProtocol, protowire.BytesType)
	dst = protowire.AppendString(dst, r.Protocol.String())
	dst = protowire.AppendTag(dst, fieldEndpoint, protowire.BytesType)
	dst = appendNested(dst, func(dst []byte) []byte {
		if r.Protocol.stream() { // UDP too: the endpoint has no UDP case, the protocol field tells
			dst = protowire.AppendTag(dst, endpointTCP, protowire.BytesType)
			return protowire.AppendVarint(dst, 0)
		}
		dst = protowire.AppendTag(dst, endpointHTTP, protowire.BytesType)
		return appendNested(dst, func(dst []byte) []byte {
			if len(r.Method) > 0 {
				dst = protowire.AppendTag(dst, httpMethod, protowire.BytesType)
				dst = appendNested(dst, func(dst []byte) []byte { return validUTF8(logmask.AppendPANMasked(dst, r.Method), len(dst)) })
			}
			if len(r.Host) > 0 {
				dst = protowire.AppendTag(dst, httpAuth, protowire.BytesType)
				dst = appendNested(dst, func(dst []byte) []byte { return validUTF8(logmask.AppendHostMasked(dst, r.Host), len(dst)) })
			}
			if len(r.Target) > 0 {
				dst = protowire.AppendTag(dst, httpPath, protowire.BytesType)
				dst = appendNested(dst, func(dst []byte) []byte { return validUTF8(logmask.AppendTarget(dst, r.Target, e.Query), len(dst)) })
			}
			if r.Status > 0 {
				dst = protowire.AppendTag(dst, httpStatus, protowire.VarintType)
				dst = protowire.AppendVarint(dst, uint64(r.Status))
			}
			return dst
		})
	})
	dst = appendVarintField(dst, fieldServiceTime, uint64(r.ServiceTime().Microseconds()))
	dst = appendVarintField(dst, fieldBytesIn, uint64(r.BytesIn))
	dst = appendVarintField(dst, fieldBytesOut, uint64(r.BytesOut))
	if len(r.UserAgent) > 0 {
		dst = protowire.AppendTag(dst, fieldUserAgent, protowire.BytesType)
		dst = appendNested(dst, func(dst []byte) []byte { return validUTF8(logmask.AppendPANMasked(dst, r.UserAgent), len(dst)) })
	}
	if r.Tags != nil {
		dst = append(dst, r.Tags.proto...)
	}
	dst = protowire.AppendTag(dst, fieldTag, protowire.BytesType)
	dst = protowire.AppendString(dst, e.Tag)
	dst = appendUint128Field(dst, fieldTime, 0, uint64(r.end().UnixNano()))
	dst = appendVarintField(dst, fieldRequestTime, uint64(r.RequestTime().Microseconds()))
	if r.BackendTime > 0 {
		dst = appendVarintField(dst, fieldResponseTime, uint64(r.BackendTime.Microseconds()))
	}
	dst = appendULIDField(dst, fieldSessionID, r.SessionID)
	if r.TLS != nil {
		dst = append(dst, r.TLS.proto...)
	}
	dst = appendUint128Field(dst, fieldStartTime, 0, uint64(r.Start.UnixNano()))
	dst = prefixLength(dst, start)
	return append(dst, 0, 0)
}

// validUTF8 makes dst[start:], a string field's value as the client sent
// it, valid UTF-8: every byte that is not replaced by U+FFFD, as Rust's
// String::from_utf8_lossy does. Every string of a ProtobufAccessLog is a
// Rust String for upstream's decoder (prost), which refuses a record
// holding anything else: a client sending obs-text (a User-Agent, an
// HTTP/2 :path, a TLS server name) must not make its record unreadable.
// The common case costs one scan.
func validUTF8(dst []byte, start int) []byte {
	if utf8.Valid(dst[start:]) {
		return dst
	}
	end := len(dst)
	for i := start; i < end; {
		r, n := utf8.DecodeRune(dst[i:end])
		if r == utf8.RuneError && n == 1 {
			dst = utf8.AppendRune(dst, utf8.RuneError)
		} else {
			dst = append(dst, dst[i:i+n]...)
		}
		i += n
	}
	k := copy(dst[start:], dst[end:])
	return dst[:start+k]
}

// appendNested appends what write appends, preceded by its length.
func appendNested(dst []byte, write func([]byte) []byte) []byte {
	start := len(dst)
	return prefixLength(write(dst), start)
}

// prefixLength inserts the varint length of dst[start:] before it.
func prefixLength(dst []byte, start int) []byte {
	n := len(dst) - start
	k := protowire.SizeVarint(uint64(n))
	var pad [binary.MaxVarintLen64]byte
	dst = append(dst, pad[:k]...)
	copy(dst[start+k:], dst[start:start+n])
	protowire.AppendVarint(dst[start:start], uint64(n))
	return dst
}

func appendVarintField(dst []byte, num protowire.Number, v uint64) []byte {
	dst = protowire.AppendTag(dst, num, protowire.VarintType)
	return protowire.AppendVarint(dst, v)
}

// appendUint128Field appends a Uint128 message (low = 1, high = 2) holding
// a 128-bit integer as upstream's From<u128> does: low is its least
// significant half (times, IPv6 addresses).
func appendUint128Field(dst []byte, num protowire.Number, high, low uint64) []byte {
	dst = protowire.AppendTag(dst, num, protowire.BytesType)
	return appendNested(dst, func(dst []byte) []byte {
		dst = appendVarintField(dst, 1, low)
		return appendVarintField(dst, 2, high)
	})
}

// appendSocketAddress appends a SocketAddress: an IpAddress (v4 as a
// fixed32 of the big-endian address, v6 as a Uint128) and the port.
func appendSocketAddress(dst []byte, num protowire.Number, a netip.AddrPort) []byte {
	dst = protowire.AppendTag(dst, num, protowire.BytesType)
	return appendNested(dst, func(dst []byte) []byte {
		dst = protowire.AppendTag(dst, 1, protowire.BytesType)
		ip := a.Addr().Unmap()
		dst = appendNested(dst, func(dst []byte) []byte {
			if ip.Is4() {
				b := ip.As4()
				dst = protowire.AppendTag(dst, 1, protowire.Fixed32Type)
				return protowire.AppendFixed32(dst, binary.BigEndian.Uint32(b[:]))
			}
			b := ip.As16()
			return appendUint128Field(dst, 2, binary.BigEndian.Uint64(b[:8]), binary.BigEndian.Uint64(b[8:]))
		})
		return appendVarintField(dst, 2, uint64(a.Port()))
	})
}

// appendULIDField appends a ULID as a Uint128 message the way upstream
// converts one (From<Ulid> for Uint128): rusty_ulid splits a ULID into
// (most significant, least significant) halves and upstream stores them
// as (low, high), so low (field 1) holds the ULID's first eight bytes and
// high (field 2) its last eight, the reverse of an integer's Uint128.
func appendULIDField(dst []byte, num protowire.Number, id ulid.ULID) []byte {
	return appendUint128Field(dst, num, binary.BigEndian.Uint64(id[8:]), binary.BigEndian.Uint64(id[:8]))
}
