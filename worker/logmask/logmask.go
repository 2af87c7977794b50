// Package logmask keeps cardholder data and credentials out of logs (PCI DSS
// 3.3, 3.4): it masks primary account numbers in request targets and user
// agents, masks or drops query values, and names the header fields whose
// values are never logged.
package logmask

import (
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
// query, if any) as an access log may show it: the query per mode, and any
// PAN in path or query masked (AppendPANMasked), a PAN split between a
// parameter's name and its value ("?411111111111=1111") included
// (appendQueryMasked): under QueryMask the name then shows no more of it
// than a masked PAN would. It does not allocate when dst has room (for
// the masked query twice under QueryMask: it is built at the end of dst,
// then moved back).
func AppendTarget(dst, target []byte, mode QueryMode) []byte {
	path, query, hasQuery := cut(target, '?')
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
