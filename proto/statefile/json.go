package statefile

import (
	"fmt"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// maxNesting bounds the nesting of arrays and objects in a record, as
// serde_json's default recursion limit does.
const maxNesting = 128

// SyntaxError reports a record that is not one well-formed JSON value.
type SyntaxError struct {
	Offset int64  // byte offset within the record
	Msg    string // what is wrong
}

func (e *SyntaxError) Error() string {
	return fmt.Sprintf("invalid JSON at byte %d of the record: %s", e.Offset, e.Msg)
}

// jsonKind is the type of a parsed JSON value.
type jsonKind uint8

const (
	jNull jsonKind = iota
	jBool
	jNumber
	jString
	jArray
	jObject
)

// value is a parsed JSON value. Numbers keep their literal text so that
// 64-bit integers are decoded exactly, never through float64.
type value struct {
	kind    jsonKind
	b       bool     // jBool
	s       string   // jString: decoded text; jNumber: literal
	isInt   bool     // jNumber: an integer literal (no fraction, exponent or "-0")
	elems   []value  // jArray
	members []member // jObject, in document order, duplicates kept
}

type member struct {
	key string
	val value
}

// describe names the value's type (and a number's text) for error messages.
func (v *value) describe() string {
	switch v.kind {
	case jNull:
		return "null"
	case jBool:
		return "boolean"
	case jNumber:
		if len(v.s) > 32 {
			return "number " + v.s[:32] + "..."
		}
		return "number " + v.s
	case jString:
		return "string"
	case jArray:
		return "array"
	default:
		return "object"
	}
}

// parser parses one JSON document strictly (RFC 8259, as serde_json does):
// no comments, no trailing commas, UTF-8 only, no raw control characters or
// lone surrogates in strings.
type parser struct {
	data  []byte
	pos   int
	depth int
}

// parseJSON parses data as exactly one JSON value, with optional whitespace
// around it.
func parseJSON(data []byte) (value, error) {
	p := &parser{data: data}
	p.skipSpace()
	v, err := p.value()
	if err != nil {
		return value{}, err
	}
	p.skipSpace()
	if p.pos < len(p.data) {
		return value{}, p.errorf("unexpected %s after the JSON value", p.quoteNext())
	}
	return v, nil
}

func (p *parser) errorf(format string, args ...any) error {
	return &SyntaxError{Offset: int64(p.pos), Msg: fmt.Sprintf(format, args...)}
}

// quoteNext describes the byte at the current position.
func (p *parser) quoteNext() string {
	if p.pos >= len(p.data) {
		return "end of record"
	}
	r, _ := utf8.DecodeRune(p.data[p.pos:])
	return fmt.Sprintf("character %q", r)
}

func (p *parser) skipSpace() {
	for p.pos < len(p.data) {
		switch p.data[p.pos] {
		case ' ', '\t', '\n', '\r':
			p.pos++
		default:
			return
		}
	}
}

func (p *parser) value() (value, error) {
	if p.pos >= len(p.data) {
		return value{}, p.errorf("unexpected end of record, expected a value")
	}
	switch c := p.data[p.pos]; {
	case c == '{':
		return p.object()
	case c == '[':
		return p.array()
	case c == '"':
		s, err := p.str()
		return value{kind: jString, s: s}, err
	case c == '-' || (c >= '0' && c <= '9'):
		return p.number()
	case c == 't':
		return value{kind: jBool, b: true}, p.literal("true")
	case c == 'f':
		return value{kind: jBool}, p.literal("false")
	case c == 'n':
		return value{kind: jNull}, p.literal("null")
	default:
		return value{}, p.errorf("unexpected %s, expected a value", p.quoteNext())
	}
}

func (p *parser) literal(word string) error {
	if !strings.HasPrefix(string(p.data[p.pos:min(p.pos+len(word), len(p.data))]), word) {
		return p.errorf("invalid literal, expected %q", word)
	}
	p.pos += len(word)
	return nil
}

func (p *parser) enter() error {
	p.depth++
	if p.depth > maxNesting {
		return p.errorf("nesting deeper than %d levels", maxNesting)
	}
	return nil
}

func (p *parser) object() (value, error) {
	if err := p.enter(); err != nil {
		return value{}, err
	}
	p.pos++ // '{'
	v := value{kind: jObject}
	p.skipSpace()
	if p.pos < len(p.data) && p.data[p.pos] == '}' {
		p.pos++
		p.depth--
		return v, nil
	}
	for {
		p.skipSpace()
		if p.pos >= len(p.data) || p.data[p.pos] != '"' {
			return value{}, p.errorf("unexpected %s, expected an object key", p.quoteNext())
		}
		key, err := p.str()
		if err != nil {
			return value{}, err
		}
		p.skipSpace()
		if p.pos >= len(p.data) || p.data[p.pos] != ':' {
			return value{}, p.errorf("unexpected %s, expected ':'", p.quoteNext())
		}
		p.pos++
		p.skipSpace()
		val, err := p.value()
		if err != nil {
			return value{}, err
		}
		v.members = append(v.members, member{key: key, val: val})
		p.skipSpace()
		if p.pos < len(p.data) {
			switch p.data[p.pos] {
			case ',':
				p.pos++
				continue
			case '}':
				p.pos++
				p.depth--
				return v, nil
			}
		}
		return value{}, p.errorf("unexpected %s, expected ',' or '}'", p.quoteNext())
	}
}

func (p *parser) array() (value, error) {
	if err := p.enter(); err != nil {
		return value{}, err
	}
	p.pos++ // '['
	v := value{kind: jArray}
	p.skipSpace()
	if p.pos < len(p.data) && p.data[p.pos] == ']' {
		p.pos++
		p.depth--
		return v, nil
	}
	for {
		p.skipSpace()
		el, err := p.value()
		if err != nil {
			return value{}, err
		}
		v.elems = append(v.elems, el)
		p.skipSpace()
		if p.pos < len(p.data) {
			switch p.data[p.pos] {
			case ',':
				p.pos++
				continue
			case ']':
				p.pos++
				p.depth--
				return v, nil
			}
		}
		return value{}, p.errorf("unexpected %s, expected ',' or ']'", p.quoteNext())
	}
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// number scans a JSON number and keeps its literal text.
func (p *parser) number() (value, error) {
	start := p.pos
	if p.data[p.pos] == '-' {
		p.pos++
	}
	switch {
	case p.pos < len(p.data) && p.data[p.pos] == '0':
		p.pos++
	case p.pos < len(p.data) && isDigit(p.data[p.pos]):
		for p.pos < len(p.data) && isDigit(p.data[p.pos]) {
			p.pos++
		}
	default:
		return value{}, p.errorf("invalid number: expected a digit")
	}
	isInt := true
	if p.pos < len(p.data) && p.data[p.pos] == '.' {
		isInt = false
		p.pos++
		if p.pos >= len(p.data) || !isDigit(p.data[p.pos]) {
			return value{}, p.errorf("invalid number: expected a digit after '.'")
		}
		for p.pos < len(p.data) && isDigit(p.data[p.pos]) {
			p.pos++
		}
	}
	if p.pos < len(p.data) && (p.data[p.pos] == 'e' || p.data[p.pos] == 'E') {
		isInt = false
		p.pos++
		if p.pos < len(p.data) && (p.data[p.pos] == '+' || p.data[p.pos] == '-') {
			p.pos++
		}
		if p.pos >= len(p.data) || !isDigit(p.data[p.pos]) {
			return value{}, p.errorf("invalid number: expected a digit in the exponent")
		}
		for p.pos < len(p.data) && isDigit(p.data[p.pos]) {
			p.pos++
		}
	}
	lit := string(p.data[start:p.pos])
	if lit == "-0" {
		isInt = false // serde_json reads "-0" as a float, to keep the sign
	}
	return value{kind: jNumber, s: lit, isInt: isInt}, nil
}

// str scans a JSON string starting at its opening quote and returns its
// decoded text.
func (p *parser) str() (string, error) {
	p.pos++ // opening quote
	start := p.pos
	// Fast path: no escapes.
	for p.pos < len(p.data) {
		c := p.data[p.pos]
		if c == '"' {
			s := p.data[start:p.pos]
			if !utf8.Valid(s) {
				return "", p.invalidUTF8(start)
			}
			p.pos++
			return string(s), nil
		}
		if c == '\\' || c < 0x20 {
			break
		}
		p.pos++
	}
	var b strings.Builder
	b.Write(p.data[start:p.pos])
	for {
		if p.pos >= len(p.data) {
			return "", p.errorf("unterminated string")
		}
		c := p.data[p.pos]
		switch {
		case c == '"':
			p.pos++
			if !utf8.ValidString(b.String()) {
				return "", p.invalidUTF8(start)
			}
			return b.String(), nil
		case c < 0x20:
			return "", p.errorf("control character %#02x in string (must be escaped)", c)
		case c != '\\':
			b.WriteByte(c)
			p.pos++
			continue
		}
		// Escape sequence.
		if p.pos+1 >= len(p.data) {
			return "", p.errorf("unterminated string")
		}
		esc := p.data[p.pos+1]
		p.pos += 2
		switch esc {
		case '"', '\\', '/':
			b.WriteByte(esc)
		case 'b':
			b.WriteByte('\b')
		case 'f':
			b.WriteByte('\f')
		case 'n':
			b.WriteByte('\n')
		case 'r':
			b.WriteByte('\r')
		case 't':
			b.WriteByte('\t')
		case 'u':
			r, err := p.hex4()
			if err != nil {
				return "", err
			}
			switch {
			case utf16.IsSurrogate(r) && r < 0xDC00:
				if p.pos+1 >= len(p.data) || p.data[p.pos] != '\\' || p.data[p.pos+1] != 'u' {
					return "", p.errorf("lone leading surrogate in \\u escape")
				}
				p.pos += 2
				r2, err := p.hex4()
				if err != nil {
					return "", err
				}
				if r2 < 0xDC00 || r2 > 0xDFFF {
					return "", p.errorf("lone leading surrogate in \\u escape")
				}
				r = utf16.DecodeRune(r, r2)
			case utf16.IsSurrogate(r):
				return "", p.errorf("lone trailing surrogate in \\u escape")
			}
			b.WriteRune(r)
		default:
			p.pos -= 2
			return "", p.errorf("invalid escape %q", "\\"+string(rune(esc)))
		}
	}
}

func (p *parser) hex4() (rune, error) {
	if p.pos+4 > len(p.data) {
		return 0, p.errorf("truncated \\u escape")
	}
	var r rune
	for _, c := range p.data[p.pos : p.pos+4] {
		r <<= 4
		switch {
		case c >= '0' && c <= '9':
			r |= rune(c - '0')
		case c >= 'a' && c <= 'f':
			r |= rune(c - 'a' + 10)
		case c >= 'A' && c <= 'F':
			r |= rune(c - 'A' + 10)
		default:
			return 0, p.errorf("invalid hex digit in \\u escape")
		}
	}
	p.pos += 4
	return r, nil
}

// invalidUTF8 reports the first invalid UTF-8 byte of the string that
// started at start.
func (p *parser) invalidUTF8(start int) error {
	for i := start; i < len(p.data); {
		r, n := utf8.DecodeRune(p.data[i:])
		if r == utf8.RuneError && n <= 1 {
			p.pos = i
			break
		}
		i += n
	}
	return p.errorf("invalid UTF-8 in string")
}

// appendString appends s as a JSON string the way serde_json writes it:
// '"' and '\\' escaped, \b \f \n \r \t as short escapes, other bytes below
// 0x20 as \u00xx (lowercase hex), everything else (DEL, non-ASCII) raw.
func appendString(dst []byte, s string) []byte {
	const hexDigits = "0123456789abcdef"
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' {
			continue
		}
		dst = append(dst, s[start:i]...)
		switch c {
		case '"', '\\':
			dst = append(dst, '\\', c)
		case '\b':
			dst = append(dst, '\\', 'b')
		case '\f':
			dst = append(dst, '\\', 'f')
		case '\n':
			dst = append(dst, '\\', 'n')
		case '\r':
			dst = append(dst, '\\', 'r')
		case '\t':
			dst = append(dst, '\\', 't')
		default:
			dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
		}
		start = i + 1
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}
