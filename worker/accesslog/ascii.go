package accesslog

import (
	"net/netip"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/oklog/ulid/v2"

	"github.com/sozu-go/sozu/worker/logmask"
)

// appendASCII appends r in upstream's ascii layout:
//
//	<time> <unix ns> <pid> <LEVEL-ACCESS> <tag>\t[<session> <request> <cluster> <backend>]
//	<client> <backend address> <request>/<service>/<response>/<client rtt>/<server rtt>
//	<bytes in> <bytes out> [<tags>, user-agent=<ua>] <otel> <protocol> <endpoint>
//
// on one line, where <endpoint> is "<host> <method> <target> <status>" for
// HTTP and "-" for TCP and UDP (a UDP flow's datagram counts and end
// reason are in the JSON format only), and every missing value is "-".
func (e *Encoder) appendASCII(dst []byte, r *Record) []byte {
	colored := e.Colored
	level := "INFO-ACCESS "
	if r.Failure() {
		level = "ERROR-ACCESS"
	}
	// The prompt, as upstream's: time, precise time, pid, level, tag, tab.
	end := r.end()
	dst = appendMicros(dst, end)
	if colored {
		dst = append(dst, " \x1b[2m"...)
	} else {
		dst = append(dst, ' ')
	}
	dst = strconv.AppendInt(dst, end.UnixNano(), 10)
	if colored {
		dst = append(dst, " \x1b[;2;1m"...)
	} else {
		dst = append(dst, ' ')
	}
	dst = strconv.AppendInt(dst, int64(e.PID), 10)
	dst = append(dst, ' ')
	if colored {
		dst = append(dst, "\x1b[;35;1m"...)
	}
	dst = append(dst, level...)
	if colored {
		dst = append(dst, " \x1b[0;1m"...)
	} else {
		dst = append(dst, ' ')
	}
	dst = append(dst, e.Tag...)
	if colored {
		dst = append(dst, "\x1b[m\t\x1b[;1m"...)
	} else {
		dst = append(dst, '\t')
	}
	dst = append(dst, '[')
	dst = appendULID(dst, r.SessionID)
	dst = append(dst, ' ')
	// The request's id; a TCP session's (and a UDP flow's) is its own
	// id, as upstream files a TCP session under one id in both slots.
	if r.RequestID == (ulid.ULID{}) && !r.Protocol.stream() {
		dst = append(dst, '-')
	} else {
		dst = appendULID(dst, r.requestID())
	}
	dst = append(dst, ' ')
	dst = appendID(dst, r.ClusterID)
	dst = append(dst, ' ')
	dst = appendID(dst, r.BackendID)
	if colored {
		dst = append(dst, "]\x1b[m "...)
	} else {
		dst = append(dst, "] "...)
	}
	dst = appendAddr(dst, r.Client)
	dst = append(dst, ' ')
	dst = appendAddr(dst, r.Backend)
	dst = append(dst, ' ')
	dst = appendDuration(dst, r.RequestTime(), true)
	dst = append(dst, '/')
	dst = appendDuration(dst, r.ServiceTime(), true)
	dst = append(dst, '/')
	dst = appendDuration(dst, r.BackendTime, r.BackendTime > 0)
	dst = append(dst, "/-/- "...) // client and server RTT: not measured
	dst = strconv.AppendInt(dst, r.BytesIn, 10)
	dst = append(dst, ' ')
	dst = strconv.AppendInt(dst, r.BytesOut, 10)
	if colored {
		dst = append(dst, " \x1b[2m["...)
	} else {
		dst = append(dst, " ["...)
	}
	if r.Tags != nil {
		dst = append(dst, r.Tags.ascii...)
	}
	if len(r.UserAgent) > 0 {
		if r.Tags != nil {
			dst = append(dst, ", "...)
		}
		dst = append(dst, "user-agent="...)
		dst = appendUserAgent(dst, r.UserAgent)
	}
	dst = append(dst, "] None "...) // no OpenTelemetry context
	if colored {
		dst = append(dst, "\x1b[;1m"...)
	}
	dst = append(dst, r.Protocol.String()...)
	dst = append(dst, ' ')
	if r.Protocol.stream() {
		dst = append(dst, '-')
	} else {
		// The client chose all three; a request reset as malformed shows
		// them as decoded (an HTTP/2 :path or :method may hold a space).
		dst = appendEndpointField(dst, r.Host, logmask.AppendHostMasked)
		dst = append(dst, ' ')
		dst = appendEndpointField(dst, r.Method, logmask.AppendPANMasked)
		dst = append(dst, ' ')
		if len(r.Target) == 0 {
			dst = append(dst, '-')
		} else {
			start := len(dst)
			dst = logmask.AppendTarget(dst, r.Target, e.Query)
			dst = fieldInPlace(dst, start)
		}
		dst = append(dst, ' ')
		if colored {
			dst = append(dst, statusColor(r.Status)...)
		}
		if r.Status == 0 {
			dst = append(dst, '-')
		} else {
			dst = strconv.AppendInt(dst, int64(r.Status), 10)
		}
	}
	if colored {
		dst = append(dst, "\x1b[m"...)
	}
	return append(dst, '\n')
}

// statusColor is the colour upstream's display_status gives a status:
// 2xx to 5xx only, none for 1xx or a status past 599.
func statusColor(s int) string {
	switch {
	case s >= 600:
		return ""
	case s >= 500:
		return "\x1b[31m"
	case s >= 400:
		return "\x1b[33m"
	case s >= 300:
		return "\x1b[34m"
	case s >= 200:
		return "\x1b[32m"
	}
	return ""
}

// appendID appends a cluster or backend id, "-" when there is none. An id
// may hold any printable character (upstream allows them): those that
// delimit the fields of the context ("[<session> <request> <cluster>
// <backend>]") are percent-encoded (idDelims), and so is an id that is
// "-", so that no id shifts the fields or reads as a missing one.
func appendID(dst []byte, s string) []byte {
	switch s {
	case "":
		return append(dst, '-')
	case "-":
		return append(dst, "%2D"...)
	}
	return appendEscaped(dst, s, idDelims)
}

// idDelims and tagDelims are the characters appendEscaped percent-encodes
// in ids and in tag keys and values: the ascii line's delimiters there
// (the tags are "[k=v, k2=v2, user-agent=<ua>]"), and '%' itself, so that
// the encoding reads back unambiguously.
const (
	idDelims  = " []%"
	tagDelims = " []%,="
)

// appendEscaped appends s with the bytes of delims and of wide spaces
// (wideSpaceLen) as %XX (upper-case hex) and control bytes replaced
// (sanitize).
func appendEscaped(dst []byte, s string, delims string) []byte {
	const hex = "0123456789ABCDEF"
	start := len(dst)
	for i := 0; i < len(s); i++ {
		c := s[i]
		if strings.IndexByte(delims, c) >= 0 {
			dst = append(dst, '%', hex[c>>4], hex[c&0xf])
			continue
		}
		if n := wideSpaceAt(s[i:]); n > 0 {
			for _, c := range []byte(s[i : i+n]) {
				dst = append(dst, '%', hex[c>>4], hex[c&0xf])
			}
			i += n - 1
			continue
		}
		dst = append(dst, c)
	}
	sanitize(dst[start:])
	return dst
}

// wideSpaceAt is wideSpaceLen for a loop over every byte: inlined, it
// looks further only at a byte that can start a wide space (none below
// 0xc2).
func wideSpaceAt[T string | []byte](b T) int {
	if len(b) == 0 || b[0] < 0xc2 {
		return 0
	}
	return wideSpaceLen(b)
}

// wideSpaceLen returns the length of the space character other than
// ASCII's that b starts with, 0 when it starts with none: no-break
// spaces (U+00A0, U+202F), the Ogham space mark, U+2000–U+200A, the
// medium mathematical space and the ideographic space. Go's
// strings.Fields and Python's str.split() split a line at each, as at a
// space, so in the ascii format they are delimiters too. (The other
// Unicode spaces, U+0085 and U+2028–U+2029, are controls there,
// replaced by sanitize.)
func wideSpaceLen[T string | []byte](b T) int {
	if len(b) < 2 || b[0] < 0xc2 {
		return 0
	}
	r, n := decodeRune(b)
	if r == 0xa0 || r == 0x1680 || (r >= 0x2000 && r <= 0x200a) || r == 0x202f || r == 0x205f || r == 0x3000 {
		return n
	}
	return 0
}

func appendAddr(dst []byte, a netip.AddrPort) []byte {
	if !a.IsValid() {
		return append(dst, '-')
	}
	return a.AppendTo(dst)
}

// appendDuration writes d as upstream does: seconds from 10 s, else
// milliseconds from 10 ms, else microseconds from 10 µs, else nanoseconds;
// "-" when !ok.
func appendDuration(dst []byte, d time.Duration, ok bool) []byte {
	if !ok {
		return append(dst, '-')
	}
	switch {
	case d >= 10*time.Second:
		return append(strconv.AppendInt(dst, int64(d/time.Second), 10), 's')
	case d >= 10*time.Millisecond:
		return append(strconv.AppendInt(dst, int64(d/time.Millisecond), 10), "ms"...)
	case d >= 10*time.Microsecond:
		return append(strconv.AppendInt(dst, int64(d/time.Microsecond), 10), "μs"...)
	}
	return append(strconv.AppendInt(dst, int64(d), 10), "ns"...)
}

// appendUserAgent writes ua as upstream does (a space becomes '_', '['
// '{' and ']' '}'), with any PAN masked and control bytes replaced.
func appendUserAgent(dst, ua []byte) []byte {
	start := len(dst)
	dst = logmask.AppendPANMasked(dst, ua)
	w := start // a wide space becomes one '_': the text shrinks in place
	for i := start; i < len(dst); i++ {
		c := dst[i]
		switch c {
		case ' ':
			c = '_'
		case '[':
			c = '{'
		case ']':
			c = '}'
		default:
			if n := wideSpaceAt(dst[i:]); n > 0 {
				c, i = '_', i+n-1
			}
		}
		dst[w] = c
		w++
	}
	dst = dst[:w]
	sanitize(dst[start:])
	return dst
}

// appendEndpointField appends a host or method of the endpoint, "-"
// when there is none: masked by mask, then placed as fieldInPlace says.
func appendEndpointField(dst, b []byte, mask func(dst, b []byte) []byte) []byte {
	if len(b) == 0 {
		return append(dst, '-')
	}
	start := len(dst)
	dst = mask(dst, b)
	return fieldInPlace(dst, start)
}

// fieldInPlace makes dst[start:], a value of one of the endpoint's
// space-separated fields (host, method, target), one field that cannot
// read as a missing one: control bytes replaced (sanitize), a space
// percent-encoded (%20, as a URL writes it; a wide one, wideSpaceLen,
// byte by byte: %C2%A0), a value that is "-" written %2D and an empty one
// "-". Such values
// come only from requests refused as malformed (an HTTP/2 :path
// "/a 200 x"); the common case costs one scan.
func fieldInPlace(dst []byte, start int) []byte {
	v := dst[start:]
	sanitize(v)
	if len(v) == 0 {
		// Nothing left once masked (a path-less target whose query is
		// dropped, "?a=1"): "-", or the fields after it would shift.
		return append(dst, '-')
	}
	if len(v) == 1 && v[0] == '-' {
		return append(dst[:start], "%2D"...)
	}
	if !hasSpace(v) {
		return dst
	}
	const hex = "0123456789ABCDEF"
	end := len(dst)
	for i := start; i < end; i++ {
		if c := dst[i]; c == ' ' {
			dst = append(dst, "%20"...)
		} else if n := wideSpaceLen(dst[i:end]); n > 0 {
			for k := i; k < i+n; k++ {
				dst = append(dst, '%', hex[dst[k]>>4], hex[dst[k]&0xf])
			}
			i += n - 1
		} else {
			dst = append(dst, c)
		}
	}
	n := copy(dst[start:], dst[end:])
	return dst[:start+n]
}

// hasSpace reports whether b holds a space or a wide one (wideSpaceLen).
func hasSpace(b []byte) bool {
	for i, c := range b {
		if c == ' ' || wideSpaceAt(b[i:]) > 0 {
			return true
		}
	}
	return false
}

// sanitize replaces in b, byte for byte, by '?': C0 controls and DEL, C1
// controls (U+0080–U+009F: U+009B is CSI), bytes that are not UTF-8 (a lone
// 0x9b is CSI on a latin-1 console), bidirectional embeddings, overrides
// and isolates, and line separators. A line of the ascii log then stays
// one line whatever the client sent, and a terminal showing it meets no
// control sequence and no reordering.
func sanitize(b []byte) {
	for i := 0; i < len(b); {
		c := b[i]
		if c < utf8.RuneSelf {
			if c < 0x20 || c == 0x7f {
				b[i] = '?'
			}
			i++
			continue
		}
		r, n := utf8.DecodeRune(b[i:])
		if (r == utf8.RuneError && n == 1) || r <= 0x9f || (r >= 0x202a && r <= 0x202e) ||
			(r >= 0x2066 && r <= 0x2069) || r == 0x2028 || r == 0x2029 ||
			r == 0x200e || r == 0x200f || r == 0x061c {
			for k := i; k < i+n; k++ {
				b[k] = '?'
			}
		}
		i += n
	}
}
