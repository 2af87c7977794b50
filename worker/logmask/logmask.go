// Package logmask keeps cardholder data and credentials out of logs (PCI DSS
// 3.3, 3.4): it masks primary account numbers in request targets and user
// agents, masks or drops query values, and names the header fields whose
// values are never logged.
package logmask

import (
	"bytes"
	"fmt"
	"strings"
)

// QueryMode is what an access log record keeps of a query string
// (access_logs_query).
type QueryMode uint8

const (
	// QueryMask keeps the parameter names and replaces every value with
	// Masked: the default.
	QueryMask QueryMode = iota
	// QueryKeep keeps the query as sent, PANs still masked.
	QueryKeep
	// QueryDrop leaves the query out, "?" included.
	QueryDrop
)

// Masked replaces a query parameter value under QueryMask.
const Masked = "***"

var queryModes = []string{"mask", "keep", "drop"}

// ParseQueryMode reads an access_logs_query value: mask, keep or drop.
func ParseQueryMode(s string) (QueryMode, error) {
	for i, m := range queryModes {
		if s == m {
			return QueryMode(i), nil
		}
	}
	return 0, fmt.Errorf("invalid access log query mode %q: want %s", s, strings.Join(queryModes, ", "))
}

func (m QueryMode) String() string {
	if int(m) < len(queryModes) {
		return queryModes[m]
	}
	return fmt.Sprintf("QueryMode(%d)", m)
}

// AppendTarget appends to dst the request target (path, then "?" and the
// query, if any) as an access log may show it: the userinfo of an
// absolute-form target's authority ("http://user:password@host/",
// credentials a request refused as malformed may show) as Masked, the
// query per mode, and any
// PAN in path or query masked (AppendPANMasked), a PAN split between a
// parameter's name and its value ("?411111111111=1111") included
// (appendQueryMasked): under QueryMask the name then shows no more of it
// than a masked PAN would. It does not allocate when dst has room (for
// the masked query twice under QueryMask: it is built at the end of dst,
// then moved back).
func AppendTarget(dst, target []byte, mode QueryMode) []byte {
	path, query, hasQuery := cut(target, '?')
	if a, at := userinfo(path); at > a {
		// An absolute-form target with credentials: scheme://***@host/…
		dst = AppendPANMasked(dst, path[:a])
		dst = append(dst, Masked...)
		path = path[at:]
	}
	dst = AppendPANMasked(dst, path)
	if !hasQuery || mode == QueryDrop {
		return dst
	}
	dst = append(dst, '?')
	if mode == QueryKeep {
		return appendQueryMasked(dst, query)
	}
	// The masked query is scratch at the end of dst; its names are copied
	// after it, each value replaced by Masked, and the result moved back.
	start := len(dst)
	dst = appendQueryMasked(dst, query)
	end := len(dst)
	for p := start; p < end; {
		q := p
		for q < end && dst[q] != '&' {
			q++
		}
		e := p
		for e < q && dst[e] != '=' {
			e++
		}
		dst = append(dst, dst[p:e]...)
		if e < q {
			dst = append(dst, '=')
			dst = append(dst, Masked...)
		}
		if q < end {
			dst = append(dst, '&')
		}
		p = q + 1
	}
	n := copy(dst[start:], dst[end:])
	return dst[:start+n]
}

// AppendHostMasked appends to dst an authority (a Host or :authority
// value) as an access log may show it: its userinfo, when it has one
// ("user:password@host", which a request refused as malformed may show),
// as Masked, and any PAN masked (AppendPANMasked). It does not allocate
// when dst has room.
func AppendHostMasked(dst, host []byte) []byte {
	if at := bytes.LastIndexByte(host, '@'); at >= 0 {
		dst = append(dst, Masked...)
		host = host[at:]
	}
	return AppendPANMasked(dst, host)
}

// userinfo returns where the userinfo of the authority of path, an
// absolute-form target ("scheme://authority/…") or a network-path one
// ("//authority/…"), starts, and where its last '@' is; at <= a when it
// has none.
func userinfo(path []byte) (a, at int) {
	i := bytes.Index(path, []byte("//"))
	if i < 0 || (i > 0 && (i < 2 || path[i-1] != ':' || !isScheme(path[:i-1]))) {
		return 0, 0
	}
	a = i + 2
	end := a
	for end < len(path) && path[end] != '/' {
		end++
	}
	at = bytes.LastIndexByte(path[a:end], '@')
	if at < 0 {
		return 0, 0
	}
	return a, a + at
}

// isScheme reports whether b is an RFC 3986 scheme: a letter, then
// letters, digits, '+', '-' or '.'.
func isScheme(b []byte) bool {
	for i, c := range b {
		letter := 'a' <= c|0x20 && c|0x20 <= 'z'
		if !letter && (i == 0 || !('0' <= c && c <= '9' || c == '+' || c == '-' || c == '.')) {
			return false
		}
	}
	return len(b) > 0
}

// SplitTarget returns the path and the query (without "?") of an
// AppendTarget result.
func SplitTarget(t []byte) (path, query []byte) {
	path, query, _ = cut(t, '?')
	return path, query
}

func cut(b []byte, sep byte) (before, after []byte, found bool) {
	for i, c := range b {
		if c == sep {
			return b[:i], b[i+1:], true
		}
	}
	return b, nil, false
}

// Sensitive reports whether the values of the header field name (any case)
// must never be logged: Authorization, Proxy-Authorization, Cookie,
// Set-Cookie.
func Sensitive(name []byte) bool {
	for _, s := range sensitive {
		if len(name) == len(s) && equalFold(name, s) {
			return true
		}
	}
	return false
}

var sensitive = []string{"authorization", "proxy-authorization", "cookie", "set-cookie"}

func equalFold(b []byte, lower string) bool {
	for i := range b {
		c := b[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != lower[i] {
			return false
		}
	}
	return true
}
