package http1

import "strconv"

// IsHopByHop reports whether a field named name (ASCII case-insensitive)
// belongs to one connection only and is never forwarded as received:
// Connection, Keep-Alive, Proxy-Connection, TE, Transfer-Encoding, Upgrade
// (RFC 9110 §7.6.1), and Close, a name RFC 9110 §18.4 reserves because it
// would clash with the "close" option. Fields named by a Connection option
// are hop-by-hop too; the serializers drop both.
func IsHopByHop(name []byte) bool {
	switch len(name) {
	case 2:
		return equalFold(name, "te")
	case 5:
		return equalFold(name, "close")
	case 7:
		return equalFold(name, "upgrade")
	case 10:
		return equalFold(name, "connection") || equalFold(name, "keep-alive")
	case 16:
		return equalFold(name, "proxy-connection")
	case 17:
		return equalFold(name, "transfer-encoding")
	}
	return false
}

// rewritten reports fields the serializers write themselves from the parsed
// values: Content-Length always, Host and Expect in requests.
func rewritten(name []byte, request bool) bool {
	switch len(name) {
	case 4:
		return request && equalFold(name, "host")
	case 6:
		return request && equalFold(name, "expect")
	case 14:
		return equalFold(name, "content-length")
	}
	return false
}

// named reports whether name is one of the connection options in ct.
func (ct *connTokens) named(name []byte) bool {
	for i := 0; i < ct.n; i++ {
		if len(ct.tok[i]) == len(name) && equalFold(name, ct.tok[i]) {
			return true
		}
	}
	return false
}

// AppendRequest appends to dst the head of r in canonical form, as the proxy
// forwards it, and returns the extended slice; it does not allocate when dst
// has room. It writes, in order:
//   - the request-line with the proxy's own version, HTTP/1.1 (RFC 9110 §6.2),
//     and origin-form instead of absolute-form ("/" for an empty path, "*" for
//     OPTIONS with neither path nor query: RFC 9112 §3.2.4);
//   - "Host: " r.Authority, when not empty (the client's Host is dropped: with
//     an absolute-form target the target's authority wins, RFC 9112 §3.2.2);
//   - r.Fields minus hop-by-hop fields (IsHopByHop), fields named by a
//     Connection option, Host, Expect and Content-Length;
//   - the framing of r.Body: "Content-Length: N" or "Transfer-Encoding:
//     chunked" (nothing for BodyNone);
//   - "Expect: 100-continue" when r.Expect100;
//   - "TE: trailers" when r.TETrailers (the proxy forwards trailers, and
//     the client takes them), with the "te" connection option (RFC 9110
//     §10.1.4);
//   - "Connection: upgrade" and "Upgrade: " r.UpgradeProto when r.Upgrade,
//     and the "close" option when !r.KeepAlive;
//   - extra, verbatim (the caller vouches for their syntax), then CRLF.
//
// The caller may change r.Body, r.ContentLength, r.KeepAlive, r.Expect100,
// r.Upgrade or r.Authority before calling to rewrite the head. Without Host
// (HTTP/1.0 without one) the caller must supply it in extra.
func AppendRequest(dst []byte, r *Request, extra ...Field) []byte {
	dst = append(dst, r.Method...)
	dst = append(dst, ' ')
	dst = appendOriginTarget(dst, r)
	dst = append(dst, " HTTP/1.1\r\n"...)
	if len(r.Authority) > 0 {
		dst = appendField(dst, "Host", r.Authority)
	}
	dst = appendEndToEnd(dst, r.Fields, &r.conn, true)
	switch r.Body {
	case BodyLength:
		dst = appendContentLength(dst, r.ContentLength)
	case BodyChunked:
		dst = append(dst, "Transfer-Encoding: chunked\r\n"...)
	}
	if r.Expect100 {
		dst = append(dst, "Expect: 100-continue\r\n"...)
	}
	if r.TETrailers {
		dst = append(dst, "TE: trailers\r\n"...)
	}
	dst = appendConnection(dst, r.Upgrade, r.KeepAlive, r.TETrailers, r.UpgradeProto)
	for _, f := range extra {
		dst = appendField(dst, f.Name, f.Value)
	}
	return append(dst, '\r', '\n')
}

// appendOriginTarget writes the request-target the proxy sends upstream.
func appendOriginTarget(dst []byte, r *Request) []byte {
	if r.Form != FormAbsolute {
		return append(dst, r.Target...)
	}
	switch {
	case len(r.Path) == 0 && string(r.Method) == "OPTIONS":
		return append(dst, '*')
	case len(r.Path) == 0 || r.Path[0] == '?':
		dst = append(dst, '/')
	}
	return append(dst, r.Path...)
}

// AppendResponse appends to dst the head of r in canonical form, as the proxy
// forwards it to the client, and returns the extended slice; it does not
// allocate when dst has room. It writes "HTTP/1.1 " status SP reason CRLF,
// r.Fields minus hop-by-hop fields, fields named by a Connection option and
// Content-Length, then the framing of r.Body ("Content-Length: N" for
// BodyLength, and for BodyNone when r.ContentLength >= 0 and the status is
// neither 1xx nor 204; "Transfer-Encoding: chunked" for BodyChunked; nothing
// for BodyClose and BodyTunnel), "Connection: upgrade" and "Upgrade: " for
// r.Upgrade, "Connection: close" when !r.KeepAlive (except for a tunnel), the
// extra fields verbatim and CRLF. The caller may change r.Body (say, from
// BodyClose to BodyChunked to re-chunk a close-delimited body),
// r.ContentLength or r.KeepAlive first.
func AppendResponse(dst []byte, r *Response, extra ...Field) []byte {
	dst = append(dst, "HTTP/1.1 "...)
	dst = append(dst, byte('0'+r.Status/100%10), byte('0'+r.Status/10%10), byte('0'+r.Status%10), ' ')
	dst = append(dst, r.Reason...)
	dst = append(dst, '\r', '\n')
	dst = appendEndToEnd(dst, r.Fields, &r.conn, false)
	dst = appendResponseFraming(dst, r)
	for _, f := range extra {
		dst = appendField(dst, f.Name, f.Value)
	}
	return append(dst, '\r', '\n')
}

// ResponseLen is len(AppendResponse(nil, r, extra...)) without writing
// the fields out: what a head counts as sent where it goes out in another
// form (an HTTP/2 stream's, counted in its HTTP/1.1 form).
func ResponseLen(r *Response, extra ...Field) int {
	const fieldSep = len(": \r\n")
	n := len("HTTP/1.1 200 \r\n") + len(r.Reason)
	for i := range r.Fields {
		if f := &r.Fields[i]; sentAsIs(f, &r.conn, false) {
			n += len(f.Name) + fieldSep + len(f.Value)
		}
	}
	for _, f := range extra {
		n += len(f.Name) + fieldSep + len(f.Value)
	}
	var framing [128]byte // Content-Length or Transfer-Encoding, Connection, Upgrade
	return n + len(appendResponseFraming(framing[:0], r)) + len("\r\n")
}

// appendResponseFraming appends the fields AppendResponse writes for r's
// framing: its body's length or coding, and its connection options.
func appendResponseFraming(dst []byte, r *Response) []byte {
	switch r.Body {
	case BodyLength:
		dst = appendContentLength(dst, r.ContentLength)
	case BodyChunked:
		dst = append(dst, "Transfer-Encoding: chunked\r\n"...)
	case BodyNone:
		if r.ContentLength >= 0 && r.Status >= 200 && r.Status != 204 {
			dst = appendContentLength(dst, r.ContentLength)
		}
	}
	if r.Upgrade || r.Body != BodyTunnel {
		dst = appendConnection(dst, r.Upgrade, r.KeepAlive || r.Upgrade, false, r.UpgradeProto)
	}
	return dst
}

// sentAsIs reports whether field f of a message goes out as it came: not
// hop-by-hop, not one the proxy rewrites, not named by its Connection.
func sentAsIs(f *Field, ct *connTokens, request bool) bool {
	return !IsHopByHop(f.Name) && !rewritten(f.Name, request) && !ct.named(f.Name)
}

func appendEndToEnd(dst []byte, fields []Field, ct *connTokens, request bool) []byte {
	for i := range fields {
		f := &fields[i]
		if !sentAsIs(f, ct, request) {
			continue
		}
		dst = append(dst, f.Name...)
		dst = append(dst, ':', ' ')
		dst = append(dst, f.Value...)
		dst = append(dst, '\r', '\n')
	}
	return dst
}

// appendConnection appends the Connection field of the options te (the
// TE field is sent), upgrade and close (!keepAlive), in that order, and
// the Upgrade field with upgrade; nothing when there is no option.
func appendConnection(dst []byte, upgrade, keepAlive, te bool, proto []byte) []byte {
	if !te && !upgrade && keepAlive {
		return dst
	}
	dst = append(dst, "Connection: "...)
	sep := ""
	for _, o := range [...]struct {
		on   bool
		name string
	}{{te, "te"}, {upgrade, "upgrade"}, {!keepAlive, "close"}} {
		if o.on {
			dst = append(dst, sep...)
			dst = append(dst, o.name...)
			sep = ", "
		}
	}
	dst = append(dst, '\r', '\n')
	if upgrade {
		dst = appendField(dst, "Upgrade", proto)
	}
	return dst
}

func appendContentLength(dst []byte, n int64) []byte {
	dst = append(dst, "Content-Length: "...)
	dst = strconv.AppendInt(dst, n, 10)
	return append(dst, '\r', '\n')
}

func appendField[S ~string | ~[]byte](dst []byte, name S, value []byte) []byte {
	dst = append(dst, name...)
	dst = append(dst, ':', ' ')
	dst = append(dst, value...)
	return append(dst, '\r', '\n')
}
