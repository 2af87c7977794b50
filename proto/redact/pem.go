package redact

import "strings"

// PEM private key blocks (RFC 7468) inside free text.

const (
	beginMarker = "-----BEGIN "
	endMarker   = "-----END "
	dashes      = "-----"
	keyLabel    = "PRIVATE KEY"
)

// ScrubPEM returns s without its PEM private key blocks: every block whose
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
		s = s[:i] + s[j:]
	}
}

// HasPrivateKey reports whether s holds a PEM private key BEGIN marker, as
// ScrubPEM recognises them.
func HasPrivateKey(s string) bool {
	i, _ := findKeyBlock(s)
	return i >= 0
}

// findKeyBlock returns the bounds [i, j) of the first private key block of
// s, or -1, -1.
func findKeyBlock(s string) (int, int) {
	up := asciiUpper(s) // same length and offsets as s
	for pos := 0; ; {
		b := strings.Index(up[pos:], beginMarker)
		if b < 0 {
			return -1, -1
		}
		b += pos
		labelStart := b + len(beginMarker)
		e := strings.Index(up[labelStart:], dashes)
		if e < 0 {
			return -1, -1 // no complete marker from here on
		}
		label := up[labelStart : labelStart+e]
		if strings.ContainsAny(label, "\r\n") || !strings.Contains(label, keyLabel) {
			pos = labelStart
			continue
		}
		return b, keyBlockEnd(up, labelStart+e+len(dashes))
	}
}

// keyBlockEnd returns the offset just after the first END marker at or
// after from whose label contains "PRIVATE KEY", or len(up).
func keyBlockEnd(up string, from int) int {
	for pos := from; ; {
		e := strings.Index(up[pos:], endMarker)
		if e < 0 {
			return len(up)
		}
		e += pos
		labelStart := e + len(endMarker)
		d := strings.Index(up[labelStart:], dashes)
		if d < 0 {
			return len(up)
		}
		label := up[labelStart : labelStart+d]
		if !strings.ContainsAny(label, "\r\n") && strings.Contains(label, keyLabel) {
			return labelStart + d + len(dashes)
		}
		pos = labelStart
	}
}

// asciiUpper upper-cases ASCII letters only, so that offsets into the
// result are offsets into s.
func asciiUpper(s string) string {
	hasLower := false
	for i := 0; i < len(s); i++ {
		if 'a' <= s[i] && s[i] <= 'z' {
			hasLower = true
			break
		}
	}
	if !hasLower {
		return s
	}
	b := []byte(s)
	for i, c := range b {
		if 'a' <= c && c <= 'z' {
			b[i] = c - 'a' + 'A'
		}
	}
	return string(b)
}
