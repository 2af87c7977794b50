package proxy

import (
	"bytes"

	"github.com/sozu-go/sozu/worker/backends"
	"github.com/sozu-go/sozu/worker/http1"
)

// Sticky sessions (a cluster's sticky_session): the client's sticky cookie
// (Listener.StickyName) names the backend that served it, by sticky id;
// the request goes to that backend while it is in rotation (see
// backends.Set.ConnectSticky). The cookie is removed from the request the
// backend sees, as upstream does: it is the proxy's, not the
// application's. A response from another backend than the cookie named
// (no cookie, an unknown or hostile value, a backend down or removed)
// sets a new cookie:
//
//	Set-Cookie: <name>=<StickyCookieValue(sticky id)>; Path=/; HttpOnly; SameSite=Lax[; Secure]
//
// Secure on HTTPS listeners only; SameSite=Lax keeps the cookie on
// top-level navigations from other sites (the session stays on its
// backend) and off cross-site subrequests. The value is never trusted: it
// only selects among the configured sticky ids.

// DefaultStickyName is the sticky cookie's name when a listener sets none
// (upstream's default).
const DefaultStickyName = "SOZUBALANCEID"

var nameSetCookie = []byte("Set-Cookie")

// StickyCookieValue returns the sticky cookie's value for the sticky id
// id: id itself when it is made of cookie-octets (RFC 6265 §4.1.1:
// visible ASCII but for DQUOTE, comma, semicolon and backslash) other
// than '%', else id with each other byte written %XX (upper-case hex).
// The encoding is injective, so distinct ids keep distinct values, and
// is never decoded: the proxy compares cookie values, not ids.
func StickyCookieValue(id string) string {
	n := 0
	for i := 0; i < len(id); i++ {
		if !cookieOctet(id[i]) || id[i] == '%' {
			n++
		}
	}
	if n == 0 {
		return id
	}
	const hex = "0123456789ABCDEF"
	out := make([]byte, 0, len(id)+2*n)
	for i := 0; i < len(id); i++ {
		if c := id[i]; cookieOctet(c) && c != '%' {
			out = append(out, c)
		} else {
			out = append(out, '%', hex[c>>4], hex[c&15])
		}
	}
	return string(out)
}

func cookieOctet(c byte) bool {
	return c == 0x21 || 0x23 <= c && c <= 0x2b || 0x2d <= c && c <= 0x3a || 0x3c <= c && c <= 0x5b || 0x5d <= c && c <= 0x7e
}

// stripCookie scans the Cookie field value v for cookies named name. When
// it finds none it returns dst unchanged and hit false. Otherwise it
// appends to dst the other cookie-pairs of v, in order, joined by "; ",
// and returns it with the value of the first cookie named name (aliasing
// v, optional whitespace trimmed) and hit true. Segments without '=' are
// kept as they are; empty ones are dropped. Names compare case-sensitively
// (RFC 6265 §5.4). It does not allocate when dst has room.
func stripCookie(dst, v, name []byte) (out, value []byte, hit bool) {
	if len(name) == 0 || !bytes.Contains(v, name) {
		return dst, nil, false
	}
	start := len(dst)
	for rest := v; ; {
		seg := rest
		i := bytes.IndexByte(rest, ';')
		if i >= 0 {
			seg, rest = rest[:i], rest[i+1:]
		}
		seg = trimOWS(seg)
		if eq := bytes.IndexByte(seg, '='); eq >= 0 && bytes.Equal(trimOWS(seg[:eq]), name) {
			if !hit {
				value, hit = trimOWS(seg[eq+1:]), true
			}
		} else if len(seg) > 0 {
			if len(dst) > start {
				dst = append(dst, "; "...)
			}
			dst = append(dst, seg...)
		}
		if i < 0 {
			break
		}
	}
	if !hit {
		return dst[:start], nil, false
	}
	return dst, value, true
}

func trimOWS(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t') {
		b = b[1:]
	}
	for len(b) > 0 && (b[len(b)-1] == ' ' || b[len(b)-1] == '\t') {
		b = b[:len(b)-1]
	}
	return b
}

// takeStickyCookie removes the sticky cookie from every Cookie field of
// req (a field left without cookies is dropped) and keeps the value of the
// first one in s.stickyIn (empty when there is none). req.Fields is
// filtered in place; rewritten values live in s.cookieBuf until the head
// is forwarded.
func (s *session) takeStickyCookie(cfg *Listener, req *http1.Request) {
	s.stickyIn = s.stickyIn[:0]
	found := false
	buf := s.cookieBuf[:0]
	fs := req.Fields
	k := 0
	for i := range fs {
		if equalFold(fs[i].Name, "cookie") {
			start := len(buf)
			var val []byte
			var hit bool
			buf, val, hit = stripCookie(buf, fs[i].Value, cfg.stickyName)
			if hit {
				if !found {
					s.stickyIn, found = append(s.stickyIn, val...), true
				}
				if len(buf) == start {
					continue // only the sticky cookie: the field goes
				}
				fs[i].Value = buf[start:len(buf):len(buf)]
			}
		}
		fs[k] = fs[i]
		k++
	}
	req.Fields = fs[:k]
	s.cookieBuf = buf
}

// appendSetCookie adds to ex the Set-Cookie field that sticks the client
// to bc's backend, unless its cookie already names it or the backend has
// no sticky id. The value is built in s.cookieBuf.
func (s *session) appendSetCookie(cfg *Listener, bc *backends.Conn, ex []http1.Field) []http1.Field {
	id := bc.Backend.StickyID()
	if id == "" || string(s.stickyIn) == id {
		return ex
	}
	v := append(s.cookieBuf[:0], cfg.stickyName...)
	v = append(v, '=')
	v = append(v, id...)
	v = append(v, "; Path=/; HttpOnly; SameSite=Lax"...)
	if cfg.TLS != nil {
		v = append(v, "; Secure"...)
	}
	s.cookieBuf = v
	return append(ex, http1.Field{Name: nameSetCookie, Value: v})
}
