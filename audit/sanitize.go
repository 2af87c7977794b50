package audit

import (
	"strings"
	"unicode/utf8"
)

// Replacement is what the sanitiser puts in place of anything that could
// forge a line, move the cursor or reorder text on an operator's terminal.
// U+FFFD rather than '?' so that a reader can tell "something was removed
// here" from a question mark the client really sent.
const Replacement = '\uFFFD'

// Sanitize returns s with every character that could forge or disguise a
// record replaced by U+FFFD:
//
//   - C0 controls 0x00–0x1F (TAB, CR and LF included) and DEL 0x7F;
//   - ANSI escape sequences, each replaced as a whole by one U+FFFD: CSI
//     (ESC [ parameters intermediates final) and every other escape (ESC
//     intermediates final: ESC ] OSC, ESC P DCS, ESC ( B, …). The payload
//     of a string sequence (OSC, DCS) is kept as visible text, bounded by
//     nothing an attacker controls; its BEL or ESC \ terminator is replaced;
//   - C1 controls U+0080–U+009F (8-bit CSI, NEL, …);
//   - Unicode bidirectional controls U+202A–U+202E, U+2066–U+2069, U+200E,
//     U+200F, U+061C, and the line and paragraph separators U+2028, U+2029;
//   - invalid UTF-8, one U+FFFD per undecodable byte.
//
// Everything else, including non-ASCII letters, passes unchanged. The result
// is valid UTF-8 with no byte below 0x20. Sanitize is idempotent.
func Sanitize(s string) string {
	if plainASCII(s) {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + 8)
	for i := 0; i < len(s); {
		c := s[i]
		if c == 0x1B {
			i = skipEscape(s, i)
			b.WriteRune(Replacement)
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		i += size
		if r == utf8.RuneError && size <= 1 || unsafeRune(r) {
			b.WriteRune(Replacement)
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

// plainASCII reports whether s is printable ASCII only (the common case).
func plainASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] >= 0x7F {
			return false
		}
	}
	return true
}

// unsafeRune reports whether r is a control, bidi control or line separator.
func unsafeRune(r rune) bool {
	switch {
	case r < 0x20, r == 0x7F, r >= 0x80 && r <= 0x9F:
		return true
	case r >= 0x202A && r <= 0x202E, r >= 0x2066 && r <= 0x2069:
		return true
	case r == 0x200E, r == 0x200F, r == 0x061C, r == 0x2028, r == 0x2029:
		return true
	}
	return false
}

// skipEscape returns the index just past the escape sequence starting with
// the ESC at s[i]. A byte that cannot continue the sequence ends it
// without being consumed.
func skipEscape(s string, i int) int {
	i++ // ESC
	if i >= len(s) {
		return i
	}
	if s[i] == '[' { // CSI: parameters 0x30–0x3F, intermediates 0x20–0x2F, final 0x40–0x7E
		i++
		for i < len(s) && s[i] >= 0x30 && s[i] <= 0x3F {
			i++
		}
		for i < len(s) && s[i] >= 0x20 && s[i] <= 0x2F {
			i++
		}
		if i < len(s) && s[i] >= 0x40 && s[i] <= 0x7E {
			i++
		}
		return i
	}
	// nF / Fp / Fe / Fs: intermediates 0x20–0x2F then one final 0x30–0x7E.
	for i < len(s) && s[i] >= 0x20 && s[i] <= 0x2F {
		i++
	}
	if i < len(s) && s[i] >= 0x30 && s[i] <= 0x7E {
		i++
	}
	return i
}

// clamp returns s cut to at most max runes, on a rune boundary. A cut
// string ends with '…' (counted in max) so that readers see it was cut.
func clamp(s string, max int) string {
	if len(s) <= max { // bytes ≥ runes
		return s
	}
	n := 0
	for i := range s {
		if n == max-1 {
			if utf8.RuneCountInString(s[i:]) <= 1 {
				return s
			}
			return s[:i] + "…"
		}
		n++
	}
	return s
}

// clean sanitises s and clamps it to max runes.
func clean(s string, max int) string { return clamp(Sanitize(s), max) }
