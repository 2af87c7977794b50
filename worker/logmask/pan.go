package logmask

import (
	"bytes"
	"unicode"
	"unicode/utf8"
)

// PAN lengths (ISO/IEC 7812): a primary account number has 13 to 19 digits.
const (
	minPAN   = 13
	maxPAN   = 19
	keepHead = 6 // PCI DSS 3.4: at most the first six …
	keepTail = 4 // … and the last four digits may be shown
)

// MaskDigit replaces a masked digit of a PAN.
const MaskDigit = '*'

// maxGap is the most separators between two digits of one run: "4111 -
// 1111" is one number.
const maxGap = 3

// AppendPANMasked appends src to dst with every possible PAN masked: a run
// of digits (ASCII, or other Unicode decimal digits: digitLen; each byte
// of a masked one becomes MaskDigit), possibly with gaps of one to maxGap separators between them
// (space, tab, no-break space, '-', '+' (a space in a form-encoded query),
// '.', '/', '_', or one of those percent-encoded: "%20", "%09", "%C2%A0",
// "%2D", "%2B", "%2E", "%2F", "%5F", either case), of 13 to 19 digits
// that passes the Luhn check keeps
// its first six and last four digits, the others become MaskDigit; so does
// such a run holding a Luhn-valid number of whole groups (a PAN followed
// by its month). A longer run that holds a Luhn-valid window of 13 to 19
// digits anywhere is masked the same way, whole. Runs are looked for in
// src as it is and in src decoded, where an escaped digit ("%34") is a
// digit (maskPANs); only digit bytes change. It does not allocate when dst
// has room.
func AppendPANMasked(dst, src []byte) []byte {
	start := len(dst)
	dst = append(dst, src...)
	if !MayHoldPAN(src) {
		return dst // the common case: no run of digits long enough
	}
	maskPANs(src, dst[start:], false)
	return dst
}

// appendQueryMasked appends query (a target's, without "?") with its PANs
// masked as AppendPANMasked masks them, and also a number split between a
// parameter's name and its value: "411111111111=1111" is a PAN to the
// backend reading the name and the value together, so a run of digits
// across an '=' (one gap of up to maxGap separators, the '=' among them)
// that holds a PAN none of its pieces holds alone is masked whole. A PAN
// within a name or a value is masked as AppendPANMasked masks it, its
// neighbour across the '=' left as it is.
func appendQueryMasked(dst, query []byte) []byte {
	start := len(dst)
	dst = AppendPANMasked(dst, query)
	if mayHoldPAN(query, &mayJoinQuery) {
		maskPANs(query, dst[start:], true)
	}
	return dst
}

// maskPANs masks in out, a copy of src, the PANs of src:
// AppendPANMasked's scan.
//
// Text with percent-escapes is two texts at once: the raw one a log reader
// (or a PAN discovery tool) sees, where "0%20000000002010" shows a run of
// fourteen digits, and the decoded one a server sees, where
// "%224111111111111111" is a quote and a PAN, "%34111111111111111" a PAN
// whose first digit is escaped, and "4111%201111%201111%201111" one PAN.
// Runs are found in each, on src, and a run that holds a PAN in either is
// masked in out. With split, '=' is a separator too and only the runs
// across one that hold a PAN none of their '='-separated pieces holds are
// masked (appendQueryMasked).
func maskPANs(src, out []byte, split bool) {
	// The decoded text: an escaped digit ("%34") is a digit, separator
	// escapes join groups, other escapes break runs, and an escape's hex
	// digits start none.
	for i := 0; i < len(src); {
		switch c := src[i]; {
		case digitLen(src[i:]) > 0 || digitEscape(src[i:]):
			i = maskRunAt(src, out, i, true, split)
		case c == '%':
			i += escapeLen(src[i:])
		default:
			i++
		}
	}
	// The raw text: '%' breaks runs; only unescaped separators join groups.
	for i := 0; i < len(src); {
		if digitLen(src[i:]) > 0 {
			i = maskRunAt(src, out, i, false, split)
		} else {
			i++
		}
	}
}

// maskRunAt finds the run of digits starting at src[i], digits with gaps
// of at most maxGap separators between them, masks it in out when it holds a PAN, and
// returns where it ends. In the decoded text an escaped digit is a digit
// and an escaped separator a separator (sepLen); in the raw one neither
// (rawSepLen). With split, '=' is a separator as well, and a run is
// masked only when it crosses an '=' and none of its pieces holds a PAN
// (maskPANs).
func maskRunAt(src, out []byte, i int, decoded, split bool) int {
	sep := rawSepLen
	switch {
	case decoded && split:
		sep = func(b []byte) int { return eqOr(b, sepLen) }
	case decoded:
		sep = sepLen
	case split:
		sep = func(b []byte) int { return eqOr(b, rawSepLen) }
	}
	end, digits := i, 0
	for j := i; j < len(src); {
		if n := digitLen(src[j:]); n > 0 {
			digits++
			j += n
			end = j
			continue
		}
		if decoded && digitEscape(src[j:]) {
			digits++
			j += 3
			end = j
			continue
		}
		if k := gapLen(src[j:], sep, decoded); k > 0 {
			j += k
			continue
		}
		break
	}
	if digits >= minPAN && holdsPAN(src[i:end], digits) && (!split || splitOnly(src[i:end], decoded)) {
		maskRun(src[i:end], out[i:end], digits)
	}
	return end
}

// eqOr is sep, with '=' a separator too: the run of a split PAN.
func eqOr(b []byte, sep func([]byte) int) int {
	if len(b) > 0 && b[0] == '=' {
		return 1
	}
	return sep(b)
}

// splitOnly reports whether run, a run of maskRunAt's with '=' a
// separator, crosses an '=' and no piece of it between two '=' holds a
// PAN by itself: such a piece was masked on its own, as AppendPANMasked
// masks it, and the run is not masked again.
func splitOnly(run []byte, decoded bool) bool {
	crosses := false
	for len(run) > 0 {
		piece, rest, found := cut(run, '=')
		crosses = crosses || found
		if n := countDigits(piece, decoded); n >= minPAN && holdsPAN(piece, n) {
			return false
		}
		run = rest
	}
	return crosses
}

// countDigits counts the digits of b, escaped digits ("%34") too when
// decoded.
func countDigits(b []byte, decoded bool) int {
	n := 0
	for i := 0; i < len(b); i++ {
		if w := digitLen(b[i:]); w > 0 {
			n++
			i += w - 1
		} else if decoded && digitEscape(b[i:]) {
			n++
			i += 2
		}
	}
	return n
}

// gapLen returns the length of the gap of one to maxGap separators (sep
// telling each one's length) b starts with, when a digit follows it; else
// 0.
func gapLen(b []byte, sep func([]byte) int, decoded bool) int {
	k := 0
	for range maxGap {
		n := sep(b[k:])
		if n == 0 {
			break
		}
		k += n
	}
	if k == 0 || k >= len(b) || !(digitLen(b[k:]) > 0 || decoded && digitEscape(b[k:])) {
		return 0
	}
	return k
}

// digitEscape reports whether b starts with an escaped digit, "%30" to
// "%39".
func digitEscape(b []byte) bool { return len(b) >= 3 && b[0] == '%' && b[1] == '3' && isDigit(b[2]) }

// rawSepLen is sepLen in the raw text: escapes are not separators.
func rawSepLen(b []byte) int {
	if len(b) == 0 {
		return 0
	}
	switch b[0] {
	case ' ', '\t', '-', '+', '.', '/', '_':
		return 1
	}
	if b[0] >= 0x80 {
		for _, w := range wideSeps {
			if bytes.HasPrefix(b, []byte(w)) {
				return len(w)
			}
		}
	}
	return 0
}

// wideSeps are the separators of more than one byte (UTF-8), what a card
// number copied from a document may hold: no-break space, figure space,
// narrow no-break space, hyphen, non-breaking hyphen, figure dash, en dash.
var wideSeps = []string{"\u00a0", "\u2007", "\u202f", "\u2010", "\u2011", "\u2012", "\u2013"}

// wideSepsEscaped are wideSeps percent-encoded ("%C2%A0"), upper case.
var wideSepsEscaped = func() []string {
	var out []string
	for _, w := range wideSeps {
		var e []byte
		for i := 0; i < len(w); i++ {
			e = append(e, '%', "0123456789ABCDEF"[w[i]>>4], "0123456789ABCDEF"[w[i]&15])
		}
		out = append(out, string(e))
	}
	return out
}()

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

// digitLen returns the length of the decimal digit b starts with: 1 for
// an ASCII digit, 2 to 4 for another Unicode decimal digit (category Nd,
// UTF-8: fullwidth "４", Arabic-Indic "٤", Devanagari "४"…), which a
// backend normalizing its input (NFKC, or a language's digit parsing)
// reads as the ASCII one; 0 when b does not start with a digit.
func digitLen(b []byte) int {
	if len(b) == 0 {
		return 0
	}
	if isDigit(b[0]) {
		return 1
	}
	if b[0] < utf8.RuneSelf {
		return 0
	}
	r, n := utf8.DecodeRune(b)
	if r == utf8.RuneError || !unicode.Is(unicode.Nd, r) {
		return 0
	}
	return n
}

// digitValue returns the value of the digit b starts with (digitLen(b) >
// 0): Unicode lays each script's decimal digits out as runs of ten from
// its zero, so a digit's value is its distance from the start of its run
// of Nd code points, modulo ten.
func digitValue(b []byte) byte {
	if isDigit(b[0]) {
		return b[0] - '0'
	}
	r, _ := utf8.DecodeRune(b)
	z := r
	for z > 0 && unicode.Is(unicode.Nd, z-1) {
		z--
	}
	return byte((r - z) % 10)
}

// MayHoldPAN reports whether b may hold a run AppendPANMasked masks: 13
// digits or more with nothing but separators between them. When it does
// not, b is written as it is, and an encoder may skip the masking pass.
//
// It over-approximates the runs, so a false answer is sure: a run here
// goes on over digits and over every byte a separator may be made of
// (mayJoin: the separators, and '%' and the hex letters of their
// escapes; the escapes' digits are digits), so each of AppendPANMasked's
// runs lies within one of these, with no more digits. A user agent such as
// Firefox's ("rv:128.0) Gecko/20100101"), with 13 digits in all but no
// such run, is not scanned again.
func MayHoldPAN(b []byte) bool { return mayHoldPAN(b, &mayJoin) }

// mayHoldPAN is MayHoldPAN with join telling the bytes a run goes on
// over (mayJoin, or mayJoinQuery for appendQueryMasked's runs).
func mayHoldPAN(b []byte, join *[256]bool) bool {
	n := 0
	for i := 0; i < len(b); i++ {
		switch c := b[i]; {
		case isDigit(c):
			if n++; n == minPAN {
				return true
			}
		case c >= utf8.RuneSelf && digitLen(b[i:]) > 0:
			if n++; n == minPAN {
				return true
			}
			i += digitLen(b[i:]) - 1
		case join[c]:
		default:
			n = 0
		}
	}
	return false
}

// mayJoin holds the bytes a separator, raw or escaped, may be made of,
// digits aside.
var mayJoin = func() (t [256]bool) {
	for _, c := range []byte(" \t-+./_%ABCDEFabcdef") {
		t[c] = true
	}
	for _, w := range wideSeps {
		for i := 0; i < len(w); i++ {
			t[w[i]] = true
		}
	}
	return t
}()

// mayJoinQuery is mayJoin with '=': appendQueryMasked's runs cross it.
var mayJoinQuery = func() [256]bool {
	t := mayJoin
	t['='] = true
	return t
}()

// sepLen returns the length of the separator b starts with in the decoded
// text: rawSepLen's, 3 for the percent-encoded forms of the one-byte
// separators ("%20"), 6 for "%C2%A0", 0 for none. The digits of an escape
// ("%20") are never a PAN's.
func sepLen(b []byte) int {
	if n := rawSepLen(b); n > 0 {
		return n
	}
	if len(b) < 3 || b[0] != '%' || !isHex(b[1]) || !isHex(b[2]) {
		return 0
	}
	switch hi, lo := b[1], b[2]|0x20; {
	case hi == '2' && (lo == '0' || lo == 'd' || lo == 'b' || lo == 'e' || lo == 'f'),
		hi == '0' && lo == '9',
		hi == '5' && lo == 'f':
		return 3
	}
	for _, w := range wideSepsEscaped {
		if len(b) >= len(w) && bytes.EqualFold(b[:len(w)], []byte(w)) {
			return len(w)
		}
	}
	return 0
}

// escapeLen returns the length of the percent-escape b starts with: 3 for
// '%' and two hex digits, else 1 (a lone '%').
func escapeLen(b []byte) int {
	if len(b) >= 3 && isHex(b[1]) && isHex(b[2]) {
		return 3
	}
	return 1
}

func isHex(c byte) bool { return isDigit(c) || 'a' <= c|0x20 && c|0x20 <= 'f' }

// holdsPAN reports whether the run (n digits, with separators) is a PAN:
// Luhn-valid as a whole when it has 13 to 19 digits, or holding a
// Luhn-valid number of 13 to 19 digits made of whole groups between
// separators ("4111 1111 1111 1111 12": a PAN and its month), or, when
// longer than 19 digits, holding a Luhn-valid window of 13 to 19 digits
// anywhere.
func holdsPAN(run []byte, n int) bool {
	var d [64]byte
	var groups [64]uint8 // the index in d of each group's first digit, then n
	// wide: the last digit was a Unicode one. Where ASCII and Unicode
	// digits meet, a group starts, as at a separator: a reader who does
	// not take "߆" for a digit sees "߆4111111111111111" hold a PAN.
	k, g, sep, wide := 0, 0, true, false
	for i := 0; i < len(run); i++ {
		switch c := run[i]; {
		case c == '%' && run[i+1] == '3':
			i += 2 // an escaped digit ("%34"): the digit is the PAN's
			c = run[i]
			fallthrough
		case isDigit(c):
			if k == len(d) {
				return true // too long to check: masked anyway
			}
			if sep || wide {
				groups[g] = uint8(k)
				g++
			}
			d[k] = c - '0'
			k++
			sep, wide = false, false
		case c == '%':
			i += 2 // an escaped separator: its digits are not the PAN's
			sep = true
		case c >= utf8.RuneSelf && digitLen(run[i:]) > 0: // a Unicode digit ("４")
			if k == len(d) {
				return true
			}
			if sep || !wide {
				groups[g] = uint8(k)
				g++
			}
			d[k] = digitValue(run[i:])
			k++
			sep, wide = false, true
			i += digitLen(run[i:]) - 1
		default:
			sep = true
		}
	}
	if n <= maxPAN {
		if luhn(d[:n]) {
			return true
		}
		groups[g] = uint8(n)
		for a := 0; a < g; a++ {
			for b := a + 1; b <= g; b++ {
				if l := int(groups[b] - groups[a]); l >= minPAN && l <= maxPAN && l < n && luhn(d[groups[a]:groups[b]]) {
					return true
				}
			}
		}
		return false
	}
	for l := minPAN; l <= maxPAN; l++ {
		for s := 0; s+l <= n; s++ {
			if luhn(d[s : s+l]) {
				return true
			}
		}
	}
	return false
}

// luhn reports whether the digits d pass the Luhn check.
func luhn(d []byte) bool {
	sum := 0
	double := false
	for i := len(d) - 1; i >= 0; i-- {
		v := int(d[i])
		if double {
			v *= 2
			if v > 9 {
				v -= 9
			}
		}
		sum += v
		double = !double
	}
	return sum%10 == 0
}

// maskRun masks in out, a copy of run (n digits, with separators), the
// digits but the first keepHead and the last keepTail. It reads run, which
// an earlier pass's masking of out does not change.
func maskRun(run, out []byte, n int) {
	k := 0
	for i := 0; i < len(run); i++ {
		if c := run[i]; c == '%' {
			i += 2 // an escaped separator, or digit ("%34": its last byte)
			if run[i-1] != '3' {
				continue
			}
		} else if w := digitLen(run[i:]); w > 1 {
			// A Unicode digit: every byte of it masked, so that the text
			// stays UTF-8.
			if k >= keepHead && k < n-keepTail {
				for j := i; j < i+w; j++ {
					out[j] = MaskDigit
				}
			}
			k++
			i += w - 1
			continue
		} else if !isDigit(c) {
			continue
		}
		if k >= keepHead && k < n-keepTail {
			out[i] = MaskDigit
		}
		k++
	}
}
