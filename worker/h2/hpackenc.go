package h2

// Response header blocks are HPACK-encoded here, without state (RFC 7541):
//
//   - a :status of the static table is its index, one byte; another is a
//     literal with the static name :status;
//   - every other field is a literal without indexing, or never indexed for
//     credentials and session cookies (sensitiveField), its name the index
//     of the static table's entry when there is one, else spelled out;
//   - strings go as they are, not Huffman-coded.
//
// No dynamic table, as HAProxy's and nginx's encoders: a response head
// costs a few dozen bytes more on the wire than with indexing, but no
// table search (x/net's encoder hashed every field into four maps, about
// 1 µs a response), no table state per connection and no way for one
// response's fields to linger in the peer's memory. When the peer changes
// SETTINGS_HEADER_TABLE_SIZE, the next block starts with a dynamic table
// size update to 0 (RFC 7541 §4.2, §6.3): ours is empty whatever the
// peer's limit.

// HPACK representations (RFC 7541 §6): the pattern of the first byte and
// the bits of the integer prefix that follows it.
const (
	hpIndexed         = 0x80 // §6.1, 7-bit index
	hpLiteral         = 0x00 // §6.2.2 without indexing, 4-bit name index
	hpNeverIndexed    = 0x10 // §6.2.3 never indexed, 4-bit name index
	hpTableSizeUpdate = 0x20 // §6.3, 5-bit size
)

// appendHpackInt appends v as an HPACK integer (RFC 7541 §5.1) whose
// first byte is first | the low prefix bits of v.
func appendHpackInt(dst []byte, first byte, prefix uint8, v uint64) []byte {
	max := uint64(1)<<prefix - 1
	if v < max {
		return append(dst, first|byte(v))
	}
	dst = append(dst, first|byte(max))
	v -= max
	for v >= 0x80 {
		dst = append(dst, byte(v)|0x80)
		v >>= 7
	}
	return append(dst, byte(v))
}

// appendHpackString appends s as an HPACK string literal, not Huffman-coded
// (RFC 7541 §5.2).
func appendHpackString(dst, s []byte) []byte {
	dst = appendHpackInt(dst, 0, 7, uint64(len(s)))
	return append(dst, s...)
}

// appendStatus appends the :status pseudo-header field of code.
func appendStatus(dst []byte, code int) []byte {
	switch code {
	case 200:
		return append(dst, hpIndexed|8)
	case 204:
		return append(dst, hpIndexed|9)
	case 206:
		return append(dst, hpIndexed|10)
	case 304:
		return append(dst, hpIndexed|11)
	case 400:
		return append(dst, hpIndexed|12)
	case 404:
		return append(dst, hpIndexed|13)
	case 500:
		return append(dst, hpIndexed|14)
	}
	if code < 100 || code > 999 {
		code = 500 // unreachable: streams check their status
	}
	return append(dst, hpLiteral|8, 3, byte('0'+code/100), byte('0'+code/10%10), byte('0'+code%10))
}

// appendHpackField appends a lower-case regular field as a literal without
// indexing, or never indexed when it is sensitive.
func appendHpackField(dst, name, value []byte) []byte {
	first := byte(hpLiteral)
	if sensitiveField(name) {
		first = hpNeverIndexed
	}
	if i := staticNameIndex(name); i > 0 {
		dst = appendHpackInt(dst, first, 4, uint64(i))
	} else {
		dst = append(dst, first)
		dst = appendHpackString(dst, name)
	}
	return appendHpackString(dst, value)
}

// sensitiveField names fields that HPACK must never index, anywhere on the
// path (never-indexed literals): credentials and session cookies should
// not linger in tables (PCI DSS).
func sensitiveField(name []byte) bool {
	switch string(name) {
	case "authorization", "proxy-authorization", "cookie", "set-cookie":
		return true
	}
	return false
}

// staticNameIndex returns the index of the first entry of the HPACK static
// table (RFC 7541 Appendix A) with this name, 0 for none. Only regular
// names are looked up: pseudo-headers are written by appendStatus.
func staticNameIndex(name []byte) int {
	switch string(name) {
	case "accept-charset":
		return 15
	case "accept-encoding":
		return 16
	case "accept-language":
		return 17
	case "accept-ranges":
		return 18
	case "accept":
		return 19
	case "access-control-allow-origin":
		return 20
	case "age":
		return 21
	case "allow":
		return 22
	case "authorization":
		return 23
	case "cache-control":
		return 24
	case "content-disposition":
		return 25
	case "content-encoding":
		return 26
	case "content-language":
		return 27
	case "content-length":
		return 28
	case "content-location":
		return 29
	case "content-range":
		return 30
	case "content-type":
		return 31
	case "cookie":
		return 32
	case "date":
		return 33
	case "etag":
		return 34
	case "expect":
		return 35
	case "expires":
		return 36
	case "from":
		return 37
	case "host":
		return 38
	case "if-match":
		return 39
	case "if-modified-since":
		return 40
	case "if-none-match":
		return 41
	case "if-range":
		return 42
	case "if-unmodified-since":
		return 43
	case "last-modified":
		return 44
	case "link":
		return 45
	case "location":
		return 46
	case "max-forwards":
		return 47
	case "proxy-authenticate":
		return 48
	case "proxy-authorization":
		return 49
	case "range":
		return 50
	case "referer":
		return 51
	case "refresh":
		return 52
	case "retry-after":
		return 53
	case "server":
		return 54
	case "set-cookie":
		return 55
	case "strict-transport-security":
		return 56
	case "transfer-encoding":
		return 57
	case "user-agent":
		return 58
	case "vary":
		return 59
	case "via":
		return 60
	case "www-authenticate":
		return 61
	}
	return 0
}
