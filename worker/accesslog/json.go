package accesslog

import (
	"bytes"
	"net/netip"
	"unicode/utf8"

	"github.com/sozu-go/sozu/worker/logmask"
)

// appendJSON appends r as one JSON object and a newline, with Elastic
// Common Schema field names (docs/observability.md lists them).
func (e *Encoder) appendJSON(dst []byte, r *Record) []byte {
	dst = append(dst, `{"@timestamp":"`...)
	dst = appendRFC3339Nano(dst, r.end())
	if r.Protocol.stream() {
		// A TCP session or UDP flow: not web traffic.
		dst = append(dst, `","event":{"kind":"event","category":["network"],"dataset":"sozu.access","start":"`...)
	} else {
		dst = append(dst, `","event":{"kind":"event","category":["web"],"dataset":"sozu.access","start":"`...)
	}
	dst = appendRFC3339Nano(dst, r.Start)
	dst = append(dst, `","duration":`...)
	dst = appendInt(dst, int64(r.RequestTime()))
	if r.EndReason != "" {
		dst = append(dst, `,"reason":`...)
		dst = appendJSONString(dst, r.EndReason)
	}
	// The outcome Elastic's own HTTP pipelines give (failure from 400 on),
	// which is also what Failure says for the log level: one rule.
	if r.Failure() {
		dst = append(dst, `,"outcome":"failure"},"trace":{"id":"`...)
	} else {
		dst = append(dst, `,"outcome":"success"},"trace":{"id":"`...)
	}
	dst = appendULID(dst, r.requestID())
	dst = append(dst, `"},"source":`...)
	dst = appendEndpoint(dst, r.Client)
	if r.Backend.IsValid() {
		dst = append(dst, `,"destination":`...)
		dst = appendEndpoint(dst, r.Backend)
	}
	switch r.Protocol {
	case TCP:
		dst = append(dst, `,"network":{"transport":"tcp"}`...)
	case UDP:
		dst = append(dst, `,"network":{"transport":"udp","packets":`...)
		dst = appendInt(dst, r.DatagramsIn+r.DatagramsOut)
		dst = append(dst, `,"bytes":`...)
		dst = appendInt(dst, r.BytesIn+r.BytesOut)
		dst = append(dst, '}')
	default:
		switch {
		case r.Protocol == H2:
			dst = append(dst, `,"network":{"transport":"tcp","protocol":"http"},"http":{"version":"2","request":{"method":`...)
		case r.HTTP10:
			dst = append(dst, `,"network":{"transport":"tcp","protocol":"http"},"http":{"version":"1.0","request":{"method":`...)
		default:
			dst = append(dst, `,"network":{"transport":"tcp","protocol":"http"},"http":{"version":"1.1","request":{"method":`...)
		}
		dst = appendJSONMasked(dst, r.Method) // any token is a method: the client chose it
		dst = append(dst, `,"bytes":`...)
		dst = appendInt(dst, r.BytesIn)
		dst = append(dst, `},"response":{`...)
		if r.Status > 0 {
			dst = append(dst, `"status_code":`...)
			dst = appendInt(dst, int64(r.Status))
			dst = append(dst, ',')
		}
		dst = append(dst, `"bytes":`...)
		dst = appendInt(dst, r.BytesOut)
		// url: the fields the request showed (a refused head may show none;
		// path is always written, "" when unknown).
		host, port := splitAuthority(r.Host)
		dst = append(dst, `}},"url":{`...)
		if len(host) > 0 {
			dst = append(dst, `"domain":`...)
			dst = appendJSONHost(dst, host) // the client chose it
			dst = append(dst, ',')
		}
		if port >= 0 {
			dst = append(dst, `"port":`...)
			dst = appendInt(dst, int64(port))
			dst = append(dst, ',')
		}
		dst = e.appendURL(dst, r.Target)
		dst = append(dst, '}')
	}
	if len(r.UserAgent) > 0 {
		dst = append(dst, `,"user_agent":{"original":`...)
		dst = appendJSONMasked(dst, r.UserAgent)
		dst = append(dst, '}')
	}
	if r.TLS != nil {
		dst = append(dst, r.TLS.json...)
	}
	if r.Tags != nil {
		dst = append(dst, `,"labels":`...)
		dst = append(dst, r.Tags.json...)
	}
	dst = append(dst, `,"sozu":{"session_id":"`...)
	dst = appendULID(dst, r.SessionID)
	dst = append(dst, jsonProtocol[min(int(r.Protocol), len(protocolNames))]...)
	dst = appendJSONString(dst, r.Listener)
	if r.ClusterID != "" {
		dst = append(dst, `,"cluster_id":`...)
		dst = appendJSONString(dst, r.ClusterID)
	}
	if r.BackendID != "" {
		dst = append(dst, `,"backend_id":`...)
		dst = appendJSONString(dst, r.BackendID)
	}
	dst = append(dst, `,"service_time":`...)
	dst = appendInt(dst, int64(r.ServiceTime()))
	if r.BackendTime > 0 {
		dst = append(dst, `,"response_time":`...)
		dst = appendInt(dst, int64(r.BackendTime))
	}
	if r.Protocol.stream() {
		dst = append(dst, `,"bytes_in":`...)
		dst = appendInt(dst, r.BytesIn)
		dst = append(dst, `,"bytes_out":`...)
		dst = appendInt(dst, r.BytesOut)
	}
	if r.Protocol == UDP {
		dst = append(dst, `,"datagrams_in":`...)
		dst = appendInt(dst, r.DatagramsIn)
		dst = append(dst, `,"datagrams_out":`...)
		dst = appendInt(dst, r.DatagramsOut)
	}
	return append(dst, "}}\n"...)
}

// splitAuthority splits an authority into its host (an IPv6 literal with
// its brackets, as ECS's url.domain keeps them) and its port, -1 when it
// has none or one that is not a port number (the whole authority is then
// the host).
func splitAuthority(a []byte) ([]byte, int) {
	i := len(a) - 1
	for i >= 0 && isDigitByte(a[i]) {
		i--
	}
	if i < 0 || a[i] != ':' || i == len(a)-1 || len(a)-1-i > 5 {
		return a, -1
	}
	port := 0
	for _, c := range a[i+1:] {
		port = port*10 + int(c-'0')
	}
	if port > 65535 || i == 0 || (a[0] == '[' && a[i-1] != ']') {
		return a, -1
	}
	return a[:i], port
}

func isDigitByte(c byte) bool { return '0' <= c && c <= '9' }

// appendURL appends the url.path and url.query fields of the masked target.
func (e *Encoder) appendURL(dst, target []byte) []byte {
	start := len(dst)
	dst = logmask.AppendTarget(dst, target, e.Query)
	return moveJSON(dst, start, func(dst, masked []byte) []byte {
		path, query := logmask.SplitTarget(masked)
		dst = append(dst, `"path":`...)
		dst = appendJSONBytes(dst, path)
		if len(path) < len(masked) {
			dst = append(dst, `,"query":`...)
			dst = appendJSONBytes(dst, query)
		}
		return dst
	})
}

// appendJSONMasked appends v, PANs masked, as a JSON string: straight from
// v when it has too few digits to hold one (the common case), else
// masked at the end of dst first, then moved back escaped.
func appendJSONMasked(dst, v []byte) []byte {
	if !logmask.MayHoldPAN(v) {
		return appendJSONBytes(dst, v)
	}
	start := len(dst)
	dst = logmask.AppendPANMasked(dst, v)
	return moveJSON(dst, start, func(dst, masked []byte) []byte { return appendJSONBytes(dst, masked) })
}

// appendJSONHost is appendJSONMasked for a host, its userinfo masked
// too (logmask.AppendHostMasked).
func appendJSONHost(dst, host []byte) []byte {
	if bytes.IndexByte(host, '@') < 0 {
		return appendJSONMasked(dst, host)
	}
	start := len(dst)
	dst = logmask.AppendHostMasked(dst, host)
	return moveJSON(dst, start, func(dst, masked []byte) []byte { return appendJSONBytes(dst, masked) })
}

// moveJSON calls write with dst and the bytes dst[start:] (scratch built
// at the end of dst), then moves what write appended back to start: a
// masked value is encoded without a scratch buffer of its own.
func moveJSON(dst []byte, start int, write func(dst, scratch []byte) []byte) []byte {
	end := len(dst)
	dst = write(dst, dst[start:end])
	n := copy(dst[start:], dst[end:])
	return dst[:start+n]
}

func appendEndpoint(dst []byte, a netip.AddrPort) []byte {
	if !a.IsValid() {
		return append(dst, `{}`...)
	}
	dst = append(dst, `{"ip":"`...)
	dst = a.Addr().Unmap().AppendTo(dst)
	dst = append(dst, `","port":`...)
	dst = appendUint(dst, uint64(a.Port()))
	return append(dst, '}')
}

// jsonProtocol holds, per Protocol (the last for any unknown one), the
// text between the session id and the listener: the protocol's name and
// the keys around it.
var jsonProtocol = func() (t [len(protocolNames) + 1]string) {
	for p := range t {
		t[p] = `","protocol":"` + Protocol(p).String() + `","listener":`
	}
	return t
}()

const hexDigits = "0123456789abcdef"

// jsonPlain holds the bytes a JSON string takes as they are: printable
// ASCII but '"' and '\\'.
var jsonPlain = func() (t [256]bool) {
	for c := 0x20; c < 0x7f; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// appendJSONBytes appends b as a JSON string: quotes, backslashes,
// controls and what jsonEscaped names escaped, invalid UTF-8 replaced by
// U+FFFD.
func appendJSONBytes(dst, b []byte) []byte { return appendJSON(dst, b) }

// appendJSONString is appendJSONBytes for a string.
func appendJSONString(dst []byte, s string) []byte { return appendJSON(dst, s) }

// appendJSON is appendJSONBytes for either kind of text, without a copy.
func appendJSON[T string | []byte](dst []byte, b T) []byte {
	dst = append(dst, '"')
	for i := 0; i < len(b); {
		// A run of bytes written as they are, appended at once.
		j := i
		for j < len(b) && jsonPlain[b[j]] {
			j++
		}
		if j > i {
			dst = append(dst, b[i:j]...)
			if i = j; i == len(b) {
				break
			}
		}
		c := b[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				dst = append(dst, '\\', c)
			case c < 0x20 || c == 0x7f:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			default:
				dst = append(dst, c)
			}
			i++
			continue
		}
		r, size := decodeRune(b[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			dst = append(dst, `\ufffd`...)
		case jsonEscaped(r):
			dst = append(dst, '\\', 'u', hexDigits[r>>12], hexDigits[r>>8&0xf], hexDigits[r>>4&0xf], hexDigits[r&0xf])
		default:
			dst = append(dst, b[i:i+size]...)
		}
		i += size
	}
	return append(dst, '"')
}

// jsonEscaped reports whether r, valid in a JSON string as it is, is
// written \uXXXX all the same (the same text to a JSON reader): C1
// controls (U+009B is CSI to a terminal showing the log), bidirectional
// marks, embeddings, overrides and isolates (which reorder the text
// around them on screen), and the line and paragraph separators U+2028
// and U+2029 (line ends to JavaScript and to some log viewers;
// encoding/json escapes them too). So a record tailed on a terminal or
// opened in a viewer shows what the client sent, escaped, rather than
// obeying it, as the ascii format's '?' do.
func jsonEscaped(r rune) bool {
	switch {
	case r >= 0x80 && r <= 0x9f, r == 0x061c, r == 0x200e, r == 0x200f,
		r >= 0x2028 && r <= 0x202e, r >= 0x2066 && r <= 0x2069:
		return true
	}
	return false
}

// decodeRune is utf8.DecodeRune for either kind of text.
func decodeRune[T string | []byte](b T) (rune, int) {
	switch v := any(b).(type) {
	case string:
		return utf8.DecodeRuneInString(v)
	case []byte:
		return utf8.DecodeRune(v)
	}
	return utf8.RuneError, 1
}
