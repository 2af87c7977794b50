package http1

import (
	"bytes"
	"encoding/binary"
)

// Field is one field line of a head or trailer section. Name and Value alias
// the parser's input (or, for trailers, the ChunkedDecoder's buffer); Value has
// its surrounding optional whitespace removed. Name keeps the case it was
// received with.
type Field struct {
	Name  []byte
	Value []byte
}

// Lookup returns the value of the first field named name (ASCII
// case-insensitive) and whether one was found. It does not allocate.
func Lookup(fields []Field, name string) ([]byte, bool) {
	for i := range fields {
		if equalFold(fields[i].Name, name) {
			return fields[i].Value, true
		}
	}
	return nil, false
}

// Count returns how many fields are named name (ASCII case-insensitive).
func Count(fields []Field, name string) int {
	n := 0
	for i := range fields {
		if equalFold(fields[i].Name, name) {
			n++
		}
	}
	return n
}

// HasToken reports whether the comma-separated list v holds token tok (ASCII
// case-insensitive, elements OWS-trimmed). It does not allocate.
func HasToken(v []byte, tok string) bool {
	for i := 0; i < len(v); {
		var el []byte
		var ok bool
		el, i, ok = NextElem(v, i)
		if !ok {
			return false
		}
		if equalFold(el, tok) {
			return true
		}
	}
	return false
}

// equalFold compares b with s, folding ASCII letters only.
func equalFold[S ~string | ~[]byte](b []byte, s S) bool {
	if len(b) != len(s) {
		return false
	}
	for i := 0; i < len(b); i++ {
		if c, d := b[i], s[i]; c != d && lower(c) != lower(d) {
			return false
		}
	}
	return true
}

// lower maps ASCII upper-case letters to lower case.
func lower(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

// Byte classes, one bit each in the class table.
const (
	cTchar   = 1 << iota // tchar (RFC 9110 §5.6.2)
	cPath                // raw byte allowed in an origin-form path ('%' and '?' are handled apart)
	cQuery               // raw byte allowed in a query ('%' handled apart)
	cHex                 // HEXDIG
	cRegName             // unreserved: the only bytes we accept in a reg-name
	cQdtext              // qdtext (RFC 9110 §5.6.4)
)

var class = buildClass()

func buildClass() (t [256]uint8) {
	set := func(bit uint8, chars string) {
		for i := 0; i < len(chars); i++ {
			t[chars[i]] |= bit
		}
	}
	const alnum = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
	set(cTchar, alnum+"!#$%&'*+-.^_`|~")
	set(cHex, "0123456789abcdefABCDEF")
	set(cRegName, alnum+"-._~")
	for c := 0x21; c < 0x7f; c++ {
		switch c {
		case '"', '#', '<', '>', '%':
			// Never sent raw by browsers (WHATWG query percent-encode set), or
			// handled apart ('%').
		case '\\', '`', '{', '}', '?':
			// Also in the WHATWG path percent-encode set ('\\' is never sent
			// raw either: browsers turn it into '/'); '?' starts the query.
			t[c] |= cQuery
		default:
			t[c] |= cPath | cQuery
		}
	}
	t['\t'] |= cQdtext
	t[' '] |= cQdtext
	t['!'] |= cQdtext
	for c := 0x23; c <= 0x5b; c++ {
		t[c] |= cQdtext
	}
	for c := 0x5d; c <= 0x7e; c++ {
		t[c] |= cQdtext
	}
	for c := 0x80; c <= 0xff; c++ {
		t[c] |= cQdtext
	}
	return t
}

func isTchar(c byte) bool { return class[c]&cTchar != 0 }
func isHex(c byte) bool   { return class[c]&cHex != 0 }

// IsToken reports whether b is a non-empty token (RFC 9110 §5.6.2): what
// a field name, a method or a transfer coding is made of.
func IsToken[S ~string | ~[]byte](b S) bool {
	if len(b) == 0 {
		return false
	}
	for i := 0; i < len(b); i++ {
		if class[b[i]]&cTchar == 0 {
			return false
		}
	}
	return true
}

// valueByteOK reports whether c may appear in a field value: field-vchar
// (VCHAR / obs-text), SP or HTAB.
func valueByteOK(c byte) bool { return c == '\t' || (c >= 0x20 && c != 0x7f) }

const (
	lsb = 0x0101010101010101
	msb = 0x8080808080808080
)

// badValueByte returns the index of the first byte of v that may not appear
// in a field value, or -1. Eight bytes at a time while no byte is below 0x20
// or equal to DEL (the only bytes, besides HTAB, that need a closer look).
func badValueByte(v []byte) int {
	i := 0
	for ; i+8 <= len(v); i += 8 {
		w := binary.LittleEndian.Uint64(v[i:])
		d := w ^ (lsb * 0x7f)
		if ((w-lsb*0x20)&^w|(d-lsb)&^d)&msb != 0 {
			break
		}
	}
	for ; i < len(v); i++ {
		if !valueByteOK(v[i]) {
			return i
		}
	}
	return -1
}

// valueFault names the fault of a byte refused by badValueByte.
func valueFault(c byte) string {
	switch c {
	case '\r':
		return "bare CR in field value"
	case 0:
		return "NUL in field value"
	}
	return "control byte in field value"
}

// trimOWS removes leading and trailing SP and HTAB.
func trimOWS(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t') {
		b = b[1:]
	}
	for len(b) > 0 && (b[len(b)-1] == ' ' || b[len(b)-1] == '\t') {
		b = b[:len(b)-1]
	}
	return b
}

// NextElem returns the list element (RFC 9110 §5.6.1) of v starting at i,
// OWS-trimmed and possibly empty, and the index after its comma. Commas
// inside quoted strings do not split; ok is false for an unterminated quoted
// string.
func NextElem(v []byte, i int) (el []byte, next int, ok bool) {
	start := i
	for i < len(v) {
		switch v[i] {
		case ',':
			return trimOWS(v[start:i]), i + 1, true
		case '"':
			i++
			for i < len(v) && v[i] != '"' {
				if v[i] == '\\' {
					i++
				}
				i++
			}
			if i >= len(v) {
				return nil, len(v), false
			}
		}
		i++
	}
	return trimOWS(v[start:]), len(v), true
}

// ParseContentLength parses Content-Length = 1*DIGIT (RFC 9110 §8.6) into
// a non-negative int64, refusing signs, spaces, lists and overflow.
func ParseContentLength(v []byte) (int64, bool) {
	if len(v) == 0 {
		return 0, false
	}
	const max = 1<<63 - 1
	var n int64
	for _, c := range v {
		if c < '0' || c > '9' {
			return 0, false
		}
		d := int64(c - '0')
		if n > (max-d)/10 {
			return 0, false
		}
		n = n*10 + d
	}
	return n, true
}

// teInfo summarises the Transfer-Encoding field lines of a head, read as one
// list in order (RFC 9110 §5.3).
type teInfo struct {
	lines       int  // Transfer-Encoding field lines
	codings     int  // non-empty list elements
	chunked     int  // elements naming chunked
	lastChunked bool // the final coding is chunked, without parameters
	other       bool // some coding other than chunked, or chunked with parameters
	bad         bool // an element is not token *( OWS ";" ... )
	off         int  // offset of the first Transfer-Encoding line
}

// fieldInfo gathers, while the field lines are parsed, what the framing,
// routing and connection decisions need.
type fieldInfo struct {
	host    []byte
	hosts   int
	hostOff int

	cl     int64
	cls    int  // Content-Length field lines
	clBad  bool // a value is not 1*DIGIT (or, in a response, a list of equal ones)
	clDiff bool // response only: two Content-Length values differ
	clOff  int

	te teInfo

	close, keepAlive, upgradeOpt bool // connection options seen

	upgrade    []byte
	upgrades   int
	upgradeOff int

	expect100, expectOther bool
	expectOff              int

	teTrailers bool // a TE field lists "trailers"
}

// parseFields parses the field lines of a head from buf[pos:] up to and
// including the empty line, appending them to *fields, and returns the head
// length. resp selects response rules (status 502, equal duplicate
// Content-Length values allowed).
func parseFields(buf []byte, pos int, lim *Limits, resp bool, fields *[]Field, fi *fieldInfo, ct *connTokens) (int, *Error) {
	maxHead, maxFields := lim.headBytes(), lim.fields()
	fs := *fields
	first := true
	for {
		if pos >= len(buf) {
			return 0, errAt(StatusBadRequest, "incomplete head", pos, resp)
		}
		switch buf[pos] {
		case '\r':
			if pos+1 >= len(buf) {
				return 0, errAt(StatusBadRequest, "incomplete head", pos+1, resp)
			}
			if buf[pos+1] != '\n' {
				return 0, errAt(StatusBadRequest, "bare CR", pos, resp)
			}
			if pos+2 > maxHead {
				return 0, errAt(StatusRequestHeaderFieldsTooLarge, "head too large", maxHead, resp)
			}
			*fields = fs
			return pos + 2, nil
		case ' ', '\t':
			if first {
				return 0, errAt(StatusBadRequest, "whitespace before the first field line", pos, resp)
			}
			return 0, errAt(StatusBadRequest, "obs-fold (field line starting with whitespace)", pos, resp)
		}
		nl := bytes.IndexByte(buf[pos:], '\n')
		if nl < 0 {
			if len(buf) > maxHead {
				return 0, errAt(StatusRequestHeaderFieldsTooLarge, "head too large", maxHead, resp)
			}
			return 0, errAt(StatusBadRequest, "incomplete head", len(buf), resp)
		}
		e := pos + nl
		if e+1 > maxHead {
			return 0, errAt(StatusRequestHeaderFieldsTooLarge, "head too large", maxHead, resp)
		}
		if nl == 0 || buf[e-1] != '\r' {
			return 0, errAt(StatusBadRequest, "bare LF", e, resp)
		}
		line := buf[pos : e-1]
		n := 0
		for n < len(line) && class[line[n]]&cTchar != 0 {
			n++
		}
		if n == len(line) {
			return 0, errAt(StatusBadRequest, "field line without colon", pos, resp)
		}
		if c := line[n]; c != ':' {
			why := "invalid byte in field name"
			switch c {
			case ' ', '\t':
				why = "whitespace before colon"
			case '\r':
				why = "bare CR in field name"
			}
			return 0, errAt(StatusBadRequest, why, pos+n, resp)
		}
		if n == 0 {
			return 0, errAt(StatusBadRequest, "empty field name", pos, resp)
		}
		vs, ve := n+1, len(line)
		for vs < ve && (line[vs] == ' ' || line[vs] == '\t') {
			vs++
		}
		for ve > vs && (line[ve-1] == ' ' || line[ve-1] == '\t') {
			ve--
		}
		v := line[vs:ve:ve]
		if i := badValueByte(v); i >= 0 {
			return 0, errAt(StatusBadRequest, valueFault(v[i]), pos+vs+i, resp)
		}
		if len(fs) >= maxFields {
			return 0, errAt(StatusRequestHeaderFieldsTooLarge, "too many field lines", pos, resp)
		}
		name := line[:n:n]
		fs = append(fs, Field{Name: name, Value: v})
		if why := fi.note(name, v, pos, resp, ct); why != "" {
			return 0, errAt(StatusBadRequest, why, pos, resp)
		}
		pos = e + 1
		first = false
	}
}

// note records what a field line means for framing, routing and the
// connection. It returns the reason when the line alone makes the head
// invalid, else "".
func (fi *fieldInfo) note(name, v []byte, off int, resp bool, ct *connTokens) string {
	switch len(name) {
	case 2:
		if equalFold(name, "te") && HasToken(v, "trailers") {
			fi.teTrailers = true
		}
	case 4:
		if equalFold(name, "host") {
			fi.hosts++
			if fi.hosts == 1 {
				fi.host, fi.hostOff = v, off
			} else if fi.hosts == 2 {
				fi.hostOff = off
			}
		}
	case 6:
		if equalFold(name, "expect") {
			fi.noteExpect(v, off)
		}
	case 7:
		if equalFold(name, "upgrade") {
			fi.upgrades++
			fi.upgrade = v
			if fi.upgrades <= 2 {
				fi.upgradeOff = off
			}
		}
	case 10:
		if equalFold(name, "connection") {
			return fi.noteConnection(v, ct)
		}
	case 14:
		if equalFold(name, "content-length") {
			fi.noteContentLength(v, off, resp)
		} else if equalFoldUnderscore(name, "content-length") {
			return "field name mimicking Content-Length"
		}
	case 17:
		if equalFold(name, "transfer-encoding") {
			fi.te.note(v, off)
		} else if equalFoldUnderscore(name, "transfer-encoding") {
			return "field name mimicking Transfer-Encoding"
		}
	}
	return ""
}

// equalFoldUnderscore is equalFold with '_' matching '-': some servers (CGI
// gateways among them) map '_' to '-', so "Transfer_Encoding" would frame
// the body for them while we see no framing field at all.
func equalFoldUnderscore(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := 0; i < len(b); i++ {
		c := b[i]
		if c == '_' {
			c = '-'
		}
		if lower(c) != lower(s[i]) {
			return false
		}
	}
	return true
}

func (fi *fieldInfo) noteContentLength(v []byte, off int, resp bool) {
	fi.cls++
	if fi.cls == 1 || (!fi.clBad && !fi.clDiff) {
		fi.clOff = off
	}
	if !resp {
		n, ok := ParseContentLength(v)
		if !ok {
			fi.clBad = true
		}
		fi.cl = n
		return
	}
	// RFC 9110 §8.6: a recipient MAY accept a list, or repeated lines, of one
	// and the same value; we do so for responses only.
	nonEmpty := 0
	for i := 0; i < len(v); {
		var el []byte
		el, i, _ = NextElem(v, i)
		n, ok := ParseContentLength(el)
		if !ok {
			fi.clBad = true
			return
		}
		if (fi.cls > 1 || nonEmpty > 0) && n != fi.cl {
			fi.clDiff = true
		}
		fi.cl = n
		nonEmpty++
	}
	if nonEmpty == 0 {
		fi.clBad = true
	}
}

func (fi *fieldInfo) noteConnection(v []byte, ct *connTokens) string {
	for i := 0; i < len(v); {
		var el []byte
		el, i, _ = NextElem(v, i)
		if len(el) == 0 {
			continue
		}
		if !IsToken(el) {
			return "malformed Connection"
		}
		if ct.n == maxConnTokens {
			return "too many Connection options"
		}
		ct.tok[ct.n] = el
		ct.n++
		switch {
		case equalFold(el, "close"):
			fi.close = true
		case equalFold(el, "keep-alive"):
			fi.keepAlive = true
		case equalFold(el, "upgrade"):
			fi.upgradeOpt = true
		}
	}
	return ""
}

func (fi *fieldInfo) noteExpect(v []byte, off int) {
	for i := 0; i < len(v); {
		var el []byte
		el, i, _ = NextElem(v, i)
		switch {
		case len(el) == 0:
		case equalFold(el, "100-continue"):
			fi.expect100 = true
		default:
			if !fi.expectOther {
				fi.expectOther, fi.expectOff = true, off
			}
		}
	}
}

func (t *teInfo) note(v []byte, off int) {
	t.lines++
	if t.lines == 1 {
		t.off = off
	}
	for i := 0; i < len(v); {
		var el []byte
		var ok bool
		el, i, ok = NextElem(v, i)
		if !ok {
			t.bad = true
			return
		}
		if len(el) == 0 {
			continue // RFC 9110 §5.6.1: empty list elements are ignored
		}
		n := 0
		for n < len(el) && isTchar(el[n]) {
			n++
		}
		params := false
		if rest := trimOWS(el[n:]); len(rest) > 0 {
			if rest[0] != ';' {
				t.bad = true
				return
			}
			params = true
		}
		if n == 0 {
			t.bad = true
			return
		}
		t.codings++
		if equalFold(el[:n], "chunked") {
			t.chunked++
			t.lastChunked = !params
			if params {
				t.other = true
			}
		} else {
			t.lastChunked = false
			t.other = true
		}
	}
}

// validUpgrade checks Upgrade = #protocol, protocol = protocol-name
// ["/" protocol-version], both tokens (RFC 9110 §7.8), with at least one.
func validUpgrade(v []byte) bool {
	protos := 0
	for i := 0; i < len(v); {
		var el []byte
		el, i, _ = NextElem(v, i)
		if len(el) == 0 {
			continue
		}
		name, ver := el, []byte(nil)
		if s := bytes.IndexByte(el, '/'); s >= 0 {
			name, ver = el[:s], el[s+1:]
			if !IsToken(ver) {
				return false
			}
		}
		if !IsToken(name) {
			return false
		}
		protos++
	}
	return protos > 0
}
