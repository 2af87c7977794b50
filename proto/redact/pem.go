package redact

import "strings"

// PEM private key blocks (RFC 7468) inside free text.

const (
	beginMarker = "-----BEGIN "
	endMarker   = "-----END "
	dashes      = "-----"
	keyLabel    = "PRIVATE KEY"
)

// ScrubPEM returns s with each of its PEM private key blocks replaced by
// Masked (so a reader sees that something was removed): every block whose
// BEGIN label contains "PRIVATE KEY" ("PRIVATE KEY", "ENCRYPTED PRIVATE
// KEY", "RSA PRIVATE KEY", "EC PRIVATE KEY", "OPENSSH PRIVATE KEY"...),
// markers compared without regard to ASCII case, is cut from its BEGIN
// line to the end of the next END line whose label contains "PRIVATE KEY",
// or to the end of s when there is none (a block cut short). Other text,
// certificates included, is kept byte for byte. The result contains no
// private key BEGIN marker (HasPrivateKey reports false), also when a cut
// would join two halves into a new one. s is returned as is when it holds
// no such block.
func ScrubPEM(s string) string {
	for {
		i, j := findKeyBlock(s)
		if i < 0 {
			return s
		}
		s = s[:i] + Masked + s[j:]
	}
}

// HasPrivateKey reports whether s holds a PEM private key BEGIN marker, as
// ScrubPEM recognises them.
func HasPrivateKey(s string) bool {
	i, _ := findKeyBlock(s)
	return i >= 0
}

// findKeyBlock returns the bounds [i, j) of the first private key block of
// s, or -1, -1. Markers are compared without regard to ASCII case, in place:
// every string of every answer and audited request passes here, and a copy
// of each (upper-cased) would cost as much memory as the message.
func findKeyBlock(s string) (int, int) {
	for pos := 0; ; {
		b := indexUpper(s[pos:], beginMarker)
		if b < 0 {
			return -1, -1
		}
		b += pos
		labelStart := b + len(beginMarker)
		e := strings.Index(s[labelStart:], dashes)
		if e < 0 {
			return -1, -1 // no complete marker from here on
		}
		label := s[labelStart : labelStart+e]
		if strings.ContainsAny(label, "\r\n") || indexUpper(label, keyLabel) < 0 {
			pos = labelStart
			continue
		}
		return b, keyBlockEnd(s, labelStart+e+len(dashes))
	}
}

// keyBlockEnd returns the offset just after the first END marker at or
// after from whose label contains "PRIVATE KEY", or len(s).
func keyBlockEnd(s string, from int) int {
	for pos := from; ; {
		e := indexUpper(s[pos:], endMarker)
		if e < 0 {
			return len(s)
		}
		e += pos
		labelStart := e + len(endMarker)
		d := strings.Index(s[labelStart:], dashes)
		if d < 0 {
			return len(s)
		}
		label := s[labelStart : labelStart+d]
		if !strings.ContainsAny(label, "\r\n") && indexUpper(label, keyLabel) >= 0 {
			return labelStart + d + len(dashes)
		}
		pos = labelStart
	}
}

// indexUpper is strings.Index of sub (upper-case ASCII) in s with the
// ASCII letters of s upper-cased, without a copy: only ASCII letters are folded,
// so offsets are s's own. Linear in len(s) × len(sub); a marker (sub
// starting with '-') is looked for with IndexByte.
func indexUpper(s, sub string) int {
	for i := 0; i+len(sub) <= len(s); i++ {
		if sub[0] == '-' {
			j := strings.IndexByte(s[i:len(s)-len(sub)+1], '-')
			if j < 0 {
				return -1
			}
			i += j
		}
		if hasUpperPrefix(s[i:], sub) {
			return i
		}
	}
	return -1
}

// hasUpperPrefix reports whether s starts with sub (upper-case ASCII),
// ASCII letters of s compared upper-cased.
func hasUpperPrefix(s, sub string) bool {
	if len(s) < len(sub) {
		return false
	}
	for k := 0; k < len(sub); k++ {
		c := s[k]
		if 'a' <= c && c <= 'z' {
			c -= 'a' - 'A'
		}
		if c != sub[k] {
			return false
		}
	}
	return true
}
