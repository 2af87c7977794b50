package h2

import (
	"bytes"

	"github.com/sozu-go/sozu/worker/http1"
)

// HeaderField is one header field as raw bytes. In a request the slices
// point into the stream's buffers and are valid until ServeStream returns;
// callers must not modify them. Fields passed to WriteHeader and
// WriteTrailers are copied before the call returns.
type HeaderField struct {
	Name, Value []byte
}

// request is a validated request head.
type request struct {
	method, scheme, authority, path []byte
	fields                          []HeaderField // regular fields, in order
	contentLength                   int64         // -1 if absent
	endStream                       bool          // HEADERS carried END_STREAM: no body
}

const (
	pMethod = 1 << iota
	pScheme
	pAuthority
	pPath
)

// validateRequest checks a decoded request header list against RFC 9113
// §8.2 and §8.3 and fills r. It returns "" for a well-formed request, else a
// short reason; a malformed request is a stream error PROTOCOL_ERROR.
func validateRequest(all []HeaderField, r *request) string {
	var have int
	var host []byte
	haveHost := false
	r.contentLength = -1
	regular := len(all)
	for i, f := range all {
		if len(f.Name) > 0 && f.Name[0] == ':' {
			if regular != len(all) {
				return "pseudo-header field after regular field"
			}
			var bit int
			var dst *[]byte
			switch string(f.Name) {
			case ":method":
				bit, dst = pMethod, &r.method
			case ":scheme":
				bit, dst = pScheme, &r.scheme
			case ":authority":
				bit, dst = pAuthority, &r.authority
			case ":path":
				bit, dst = pPath, &r.path
			default:
				return "invalid pseudo-header field"
			}
			if have&bit != 0 {
				return "duplicate pseudo-header field"
			}
			if !validValue(f.Value) {
				return "invalid pseudo-header value"
			}
			have |= bit
			*dst = f.Value
			continue
		}
		if regular == len(all) {
			regular = i
		}
		if reason := checkRegular(f); reason != "" {
			return reason
		}
		switch string(f.Name) {
		case "content-length":
			n, ok := http1.ParseContentLength(f.Value) // as HTTP/1.1 reads it
			if !ok {
				return "invalid content-length"
			}
			if r.contentLength >= 0 && r.contentLength != n {
				return "conflicting content-length"
			}
			r.contentLength = n
		case "host":
			if haveHost {
				return "duplicate host"
			}
			host, haveHost = f.Value, true
		}
	}
	r.fields = all[regular:]
	if have&pMethod == 0 {
		return "missing :method"
	}
	// Each pseudo-header field present must have a valid value (RFC
	// 9113 §8.3.1): a method is a token (RFC 9110 §9.1), a scheme is
	// RFC 3986's (§3.1); an authority and a path hold no space nor
	// control (RFC 3986 §3.2, §3.3, §3.4).
	if !isToken(r.method) {
		return "invalid :method"
	}
	if have&pScheme != 0 && len(r.scheme) > 0 && !isScheme(r.scheme) {
		return "invalid :scheme"
	}
	if have&pPath != 0 && !visibleBytes(r.path) {
		return "invalid :path"
	}
	if string(r.method) == "CONNECT" {
		// RFC 9113 §8.5 (no extended CONNECT: SETTINGS_ENABLE_CONNECT_PROTOCOL is not advertised).
		if have&pAuthority == 0 || len(r.authority) == 0 {
			return "CONNECT without :authority"
		}
		if have&(pScheme|pPath) != 0 {
			return "CONNECT with :scheme or :path"
		}
	} else {
		if have&pScheme == 0 || len(r.scheme) == 0 {
			return "missing :scheme"
		}
		if have&pPath == 0 || len(r.path) == 0 {
			return "missing or empty :path"
		}
		if isHTTPScheme(r.scheme) && r.path[0] != '/' &&
			(string(r.path) != "*" || string(r.method) != "OPTIONS") {
			return "invalid :path"
		}
	}
	if have&pAuthority == 0 {
		if haveHost {
			r.authority = host
		}
	} else if haveHost && !sameAuthority(host, r.authority, r.scheme) {
		return "host differs from :authority"
	}
	if reason := checkAuthority(r, have&pAuthority != 0); reason != "" {
		return reason
	}
	return ""
}

// checkAuthority checks the request's authority (:authority, or Host in
// its absence): no space nor control (RFC 3986 §3.2), no userinfo for
// "http" and "https" nor for CONNECT (RFC 9113 §8.3.1, §8.5; RFC 9110
// §4.2.4: a recipient treats it as an error), and for those schemes a
// :authority present is not empty (RFC 9110 §4.2.1: an "http" URI with
// an empty host is invalid).
func checkAuthority(r *request, pseudo bool) string {
	a := r.authority
	httpLike := isHTTPScheme(r.scheme) || string(r.method) == "CONNECT"
	switch {
	case !visibleBytes(a):
		return "invalid :authority"
	case httpLike && bytes.IndexByte(a, '@') >= 0:
		return "userinfo in :authority"
	case httpLike && pseudo && len(a) == 0:
		return "empty :authority"
	case string(r.method) == "CONNECT" && !validPort(a):
		// The host and port to connect to (RFC 9113 §8.5): a target
		// with an empty or invalid port is rejected (RFC 9110 §9.3.6).
		return "CONNECT :authority without a valid port"
	}
	return ""
}

// validPort reports whether authority a ends with a port 1 to 65535.
func validPort(a []byte) bool {
	i := bytes.LastIndexByte(a, ':')
	if i < 0 || bytes.IndexByte(a[i:], ']') >= 0 {
		return false // no port; the colon is an IPv6 literal's
	}
	port := a[i+1:]
	if len(port) == 0 || len(port) > 5 {
		return false
	}
	n := 0
	for _, c := range port {
		if c < '0' || c > '9' {
			return false
		}
		n = n*10 + int(c-'0')
	}
	return n >= 1 && n <= 65535
}

// isToken reports whether b is an RFC 9110 token (§5.6.2), as a method is.
func isToken(b []byte) bool {
	if len(b) == 0 {
		return false
	}
	for _, c := range b {
		if !tokenLower[c] && (c < 'A' || c > 'Z') {
			return false
		}
	}
	return true
}

// isScheme reports whether b is an RFC 3986 scheme (§3.1): a letter, then
// letters, digits, "+", "-" or ".".
func isScheme(b []byte) bool {
	for i, c := range b {
		letter := 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z'
		if !letter && (i == 0 || !('0' <= c && c <= '9' || c == '+' || c == '-' || c == '.')) {
			return false
		}
	}
	return len(b) > 0
}

// visibleBytes reports whether b holds no space, control or DEL (bytes
// above 0x7f pass, as an HTTP/1.1 request target's obs-text would).
func visibleBytes(b []byte) bool {
	for _, c := range b {
		if c <= ' ' || c == 0x7f {
			return false
		}
	}
	return true
}

// sameAuthority reports whether two authorities name the same entity
// after the scheme-based normalization RFC 9113 §8.3.1 asks of a proxy
// comparing Host with :authority (RFC 3986 §6.2.2.1, §6.2.3): case
// ignored, and an empty port or the scheme's default one dropped.
func sameAuthority(a, b, scheme []byte) bool {
	return bytes.EqualFold(trimDefaultPort(a, scheme), trimDefaultPort(b, scheme))
}

// trimDefaultPort returns a without its port when the port is empty or the
// default of scheme (80 for http, 443 for https).
func trimDefaultPort(a, scheme []byte) []byte {
	i := bytes.LastIndexByte(a, ':')
	if i < 0 || bytes.IndexByte(a[i:], ']') >= 0 {
		return a // no port; the colon is an IPv6 literal's
	}
	switch port := string(a[i+1:]); {
	case port == "",
		port == "443" && string(scheme) == "https",
		port == "80" && string(scheme) == "http":
		return a[:i]
	}
	return a
}

// validateTrailers checks a trailer section: no pseudo-headers, same field
// rules as the head.
func validateTrailers(all []HeaderField) string {
	for _, f := range all {
		if len(f.Name) > 0 && f.Name[0] == ':' {
			return "pseudo-header field in trailers"
		}
		if reason := checkRegular(f); reason != "" {
			return reason
		}
	}
	return ""
}

func checkRegular(f HeaderField) string {
	if !validName(f.Name) {
		return "invalid field name"
	}
	if !validValue(f.Value) {
		return "invalid field value"
	}
	if isConnectionSpecific(f.Name) {
		return "connection-specific field"
	}
	// "trailers" is a literal of RFC 9110's TE grammar, and ABNF literals
	// are case-insensitive (RFC 5234 §2.3): "Trailers" is the same value.
	if string(f.Name) == "te" && !bytes.EqualFold(f.Value, []byte("trailers")) {
		return "te other than trailers"
	}
	return ""
}

func isHTTPScheme(s []byte) bool {
	return bytes.EqualFold(s, []byte("https")) || bytes.EqualFold(s, []byte("http"))
}

// isConnectionSpecific reports the fields RFC 9113 §8.2.2 forbids.
func isConnectionSpecific(name []byte) bool {
	switch string(name) {
	case "connection", "proxy-connection", "keep-alive", "transfer-encoding", "upgrade":
		return true
	}
	return false
}

// tokenLower marks the characters allowed in an HTTP/2 field name: RFC 9110
// tchar without upper-case letters.
var tokenLower = func() (t [256]bool) {
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for c := 'a'; c <= 'z'; c++ {
		t[c] = true
	}
	for _, c := range "!#$%&'*+-.^_`|~" {
		t[c] = true
	}
	return t
}()

func validName(b []byte) bool {
	if len(b) == 0 {
		return false
	}
	for _, c := range b {
		if !tokenLower[c] {
			return false
		}
	}
	return true
}

// validValue applies RFC 9113 §8.2.1: no NUL, CR or LF, and no leading or
// trailing space or tab.
func validValue(b []byte) bool {
	for _, c := range b {
		if c == 0 || c == '\r' || c == '\n' {
			return false
		}
	}
	if n := len(b); n > 0 {
		if b[0] == ' ' || b[0] == '\t' || b[n-1] == ' ' || b[n-1] == '\t' {
			return false
		}
	}
	return true
}

// appendResponseField appends f to arena/fields in HTTP/2 form: the name
// lower-cased, connection-specific fields and invalid fields dropped. It
// reports whether the field was kept.
func appendResponseField(arena []byte, refs []fieldRef, name, value []byte) ([]byte, []fieldRef, bool) {
	if len(name) == 0 || name[0] == ':' || len(name) > 1<<14 {
		return arena, refs, false
	}
	off := len(arena)
	for _, c := range name {
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if !tokenLower[c] {
			return arena[:off], refs, false
		}
		arena = append(arena, c)
	}
	if isConnectionSpecific(arena[off:]) || !validValue(value) {
		return arena[:off], refs, false
	}
	arena = append(arena, value...)
	refs = append(refs, fieldRef{off: uint32(off), nlen: uint32(len(name)), vlen: uint32(len(value))})
	return arena, refs, true
}

// fieldRef locates a field inside an arena: name at off, value right after.
type fieldRef struct {
	off, nlen, vlen uint32
}

// materialize rebuilds dst as slices of arena described by refs. The arena
// must not be appended to while dst is in use.
func materialize(dst []HeaderField, arena []byte, refs []fieldRef) []HeaderField {
	dst = dst[:0]
	for _, r := range refs {
		n := arena[r.off : r.off+r.nlen : r.off+r.nlen]
		v := arena[r.off+r.nlen : r.off+r.nlen+r.vlen : r.off+r.nlen+r.vlen]
		dst = append(dst, HeaderField{Name: n, Value: v})
	}
	return dst
}
