package http1

// TargetForm is the form of a request-target (RFC 9112 §3.2).
type TargetForm uint8

// The four request-target forms.
const (
	FormOrigin    TargetForm = iota // "/path?query"
	FormAbsolute                    // "http://authority/path?query"
	FormAuthority                   // "host:port", CONNECT only
	FormAsterisk                    // "*", OPTIONS only
)

// maxHostLen bounds a host name (DNS allows 253 bytes).
const maxHostLen = 255

// parseTarget checks the request-target t of a request whose method is set
// in r, and fills r.Form, r.Scheme, r.Path and (for the absolute and
// authority forms) r.Authority. off is t's offset in the head.
func parseTarget(r *Request, t []byte, off int) *Error {
	connect := string(r.Method) == "CONNECT"
	switch {
	case t[0] == '/':
		if connect {
			return errAt(StatusBadRequest, "CONNECT needs an authority-form target", off, false)
		}
		if i, why := checkPathQuery(t); why != "" {
			return errAt(StatusBadRequest, why, off+i, false)
		}
		r.Form, r.Path = FormOrigin, t
		return nil
	case len(t) == 1 && t[0] == '*':
		if string(r.Method) != "OPTIONS" {
			return errAt(StatusBadRequest, "asterisk-form target outside OPTIONS", off, false)
		}
		r.Form, r.Path = FormAsterisk, t
		return nil
	case connect:
		if why := checkAuthority(t, true); why != "" {
			return errAt(StatusBadRequest, why, off, false)
		}
		r.Form, r.Authority = FormAuthority, t
		return nil
	}
	// absolute-form: scheme "://" authority path-abempty [ "?" query ].
	i := 0
	for i < len(t) && t[i] != ':' {
		i++
	}
	scheme := t[:i:i]
	if !equalFold(scheme, "http") && !equalFold(scheme, "https") {
		return errAt(StatusBadRequest, "request-target is not origin-form or an http(s) absolute-form", off, false)
	}
	if len(t) < i+3 || t[i+1] != '/' || t[i+2] != '/' {
		return errAt(StatusBadRequest, "absolute-form target without \"//\" authority", off+i, false)
	}
	a := i + 3
	e := a
	for e < len(t) && t[e] != '/' && t[e] != '?' {
		e++
	}
	if why := checkAuthority(t[a:e], false); why != "" {
		return errAt(StatusBadRequest, why, off+a, false)
	}
	if j, why := checkPathQuery(t[e:]); why != "" {
		return errAt(StatusBadRequest, why, off+e+j, false)
	}
	r.Form, r.Scheme, r.Authority, r.Path = FormAbsolute, scheme, t[a:e:e], t[e:]
	return nil
}

// checkPathQuery checks an absolute-path or path-abempty with an optional
// query. It accepts what WHATWG-conformant browsers send raw, refuses every
// byte they percent-encode, and refuses '\\' in the path (which some servers
// read as '/'), '#' (a fragment is never part of a request-target) and '%'
// not followed by two HEXDIG. It returns the offending index and a reason.
func checkPathQuery(p []byte) (int, string) {
	bit := uint8(cPath)
	for i := 0; i < len(p); i++ {
		c := p[i]
		if class[c]&bit != 0 {
			continue
		}
		switch {
		case c == '?' && bit == cPath:
			bit = cQuery
		case c == '%':
			if i+2 >= len(p) || !isHex(p[i+1]) || !isHex(p[i+2]) {
				return i, "bad percent-encoding in request-target"
			}
			i += 2
		case c == '#':
			return i, "fragment in request-target"
		case c <= ' ' || c >= 0x7f:
			return i, "whitespace, control or non-ASCII byte in request-target"
		default:
			return i, "byte not allowed raw in request-target"
		}
	}
	return 0, ""
}

// checkAuthority checks uri-host [ ":" port ] (RFC 9110 §4.2.3 as used by
// Host and the request-target), stricter than RFC 3986: a reg-name holds only
// unreserved bytes (no percent-encoding, no sub-delims), a name made of digits
// and dots must be a dotted-quad IPv4 address, an IP-literal must be an IPv6
// address without zone, userinfo is refused (RFC 9110 §4.2.4), and a port,
// when present (required if needPort), is 1 to 65535 without leading zeros.
// It returns "" when a is valid, else the reason.
func checkAuthority(a []byte, needPort bool) string {
	if len(a) == 0 {
		return "empty host"
	}
	var host, rest []byte
	if a[0] == '[' {
		e := 1
		for e < len(a) && a[e] != ']' {
			e++
		}
		if e == len(a) {
			return "unterminated IP-literal in host"
		}
		if !validIPv6(a[1:e]) {
			return "invalid IPv6 address in host"
		}
		host, rest = a[:e+1], a[e+1:]
	} else {
		e := 0
		numeric := true
		for e < len(a) && a[e] != ':' {
			c := a[e]
			if c == '@' {
				return "userinfo in authority"
			}
			if class[c]&cRegName == 0 {
				return "invalid byte in host"
			}
			if c != '.' && (c < '0' || c > '9') {
				numeric = false
			}
			e++
		}
		host, rest = a[:e], a[e:]
		if len(host) == 0 {
			return "empty host"
		}
		if numeric && !validIPv4(host) {
			return "invalid IPv4 address in host"
		}
	}
	if len(host) > maxHostLen {
		return "host too long"
	}
	if len(rest) == 0 {
		if needPort {
			return "authority-form target without port"
		}
		return ""
	}
	if rest[0] != ':' {
		return "invalid byte after host"
	}
	if _, ok := parsePort(rest[1:]); !ok {
		return "invalid port"
	}
	return ""
}

// parsePort parses a port in 1..65535 written without leading zeros.
func parsePort(p []byte) (int, bool) {
	if len(p) == 0 || len(p) > 5 || p[0] == '0' {
		return 0, false
	}
	n := 0
	for _, c := range p {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, n <= 65535
}

// validIPv4 reports whether s is dotted-quad IPv4 with decimal octets 0-255
// and no leading zeros.
func validIPv4(s []byte) bool {
	parts := 0
	for i := 0; i <= len(s); {
		j := i
		n := 0
		for j < len(s) && s[j] >= '0' && s[j] <= '9' {
			n = n*10 + int(s[j]-'0')
			j++
			if j-i > 3 {
				return false
			}
		}
		if j == i || n > 255 || (s[i] == '0' && j-i > 1) {
			return false
		}
		parts++
		if j == len(s) {
			break
		}
		if s[j] != '.' || parts == 4 {
			return false
		}
		i = j + 1
	}
	return parts == 4
}

// validIPv6 reports whether s is an IPv6address of RFC 3986 §3.2.2: eight
// groups of 1-4 HEXDIG, at most one "::", an optional dotted-quad tail.
func validIPv6(s []byte) bool {
	if len(s) < 2 {
		return false
	}
	groups, elided, i := 0, false, 0
	if s[0] == ':' {
		if s[1] != ':' {
			return false
		}
		elided, i = true, 2
		if i == len(s) {
			return true
		}
	}
	for i < len(s) {
		j := i
		for j < len(s) && j-i < 5 && isHex(s[j]) {
			j++
		}
		if j < len(s) && s[j] == '.' {
			if !validIPv4(s[i:]) {
				return false
			}
			groups += 2
			break
		}
		if j == i || j-i > 4 {
			return false
		}
		groups++
		if j == len(s) {
			break
		}
		if s[j] != ':' {
			return false
		}
		i = j + 1
		if i == len(s) {
			return false
		}
		if s[i] == ':' {
			if elided {
				return false
			}
			elided = true
			i++
		}
	}
	if elided {
		return groups <= 7
	}
	return groups == 8
}
