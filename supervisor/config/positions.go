package config

import (
	"sort"
	"strconv"
	"strings"
)

// Key paths name a value in the document: dotted keys, quoted when they are
// not bare TOML keys, with [i] for array elements, e.g.
// clusters."my.app".frontends[0].address. The decoder, the validator and the
// position scanner below all build them with joinKey and joinIndex, so the
// same value has the same name everywhere.

func joinKey(base, key string) string {
	if !isBareKey(key) {
		key = strconv.Quote(key)
	}
	if base == "" {
		return key
	}
	return base + "." + key
}

func joinIndex(base string, i int) string {
	return base + "[" + strconv.Itoa(i) + "]"
}

func isBareKey(k string) bool {
	if k == "" {
		return false
	}
	for i := 0; i < len(k); i++ {
		if !isBareKeyByte(k[i]) {
			return false
		}
	}
	return true
}

func isBareKeyByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-'
}

// position is a 1-based line and byte column; the zero value means unknown.
type position struct{ line, col int }

// positions maps key paths to where their key and their value start.
//
// BurntSushi/toml reports positions for syntax errors only: its MetaData keeps
// one position per key *without* array indices (the last element's), so the
// position of clusters.x.backends[0].address would point at backends[1]. The
// document has already been parsed successfully when we scan it, so a small
// scanner that tracks tables, arrays of tables, inline tables and arrays is
// enough to name every key and value exactly.
type positions struct {
	keys, values map[string]position
}

func (p positions) key(path string) position {
	if at, ok := p.keys[path]; ok {
		return at
	}
	return p.values[path]
}

func (p positions) value(path string) position {
	if at, ok := p.values[path]; ok {
		return at
	}
	return p.keys[path]
}

// scanPositions indexes a document that BurntSushi/toml accepted. On input
// it did not accept, the result is incomplete but the scan still ends.
func scanPositions(src string) positions {
	s := &scanner{
		src:    src,
		pos:    positions{keys: map[string]position{}, values: map[string]position{}},
		arrays: map[string]int{},
	}
	for i := 0; i < len(src); i++ {
		if src[i] == '\n' {
			s.lines = append(s.lines, i+1)
		}
	}
	s.document()
	return s.pos
}

type scanner struct {
	src    string
	i      int
	lines  []int // byte offsets of the starts of lines 2, 3, …
	pos    positions
	arrays map[string]int // array-of-tables path -> elements seen
	table  string         // path of the current [table]
}

func (s *scanner) at(off int) position {
	n := sort.SearchInts(s.lines, off+1) // lines starting at or before off
	start := 0
	if n > 0 {
		start = s.lines[n-1]
	}
	return position{line: n + 1, col: off - start + 1}
}

func (s *scanner) eof() bool { return s.i >= len(s.src) }

func (s *scanner) peek(k int) byte {
	if s.i+k < len(s.src) {
		return s.src[s.i+k]
	}
	return 0
}

// skip skips blanks, and newlines and comments when nl is set.
func (s *scanner) skip(nl bool) {
	for !s.eof() {
		switch c := s.src[s.i]; {
		case c == ' ' || c == '\t':
			s.i++
		case c == '#':
			for !s.eof() && s.src[s.i] != '\n' {
				s.i++
			}
		case (c == '\n' || c == '\r') && nl:
			s.i++
		default:
			return
		}
	}
}

func (s *scanner) document() {
	for {
		s.skip(true)
		if s.eof() {
			return
		}
		start := s.i
		if s.src[s.i] == '[' {
			s.header()
		} else {
			s.keyValue(s.table)
		}
		if s.i == start {
			s.i++ // never stall on input the parser would have refused
		}
	}
}

// header reads [a.b] or [[a.b]] and makes it the current table.
func (s *scanner) header() {
	start := s.i
	array := s.peek(1) == '['
	if array {
		s.i += 2
	} else {
		s.i++
	}
	parts, _ := s.keyParts()
	for !s.eof() && s.src[s.i] != '\n' && s.src[s.i] != ']' {
		s.i++
	}
	for !s.eof() && s.src[s.i] == ']' {
		s.i++
	}
	if len(parts) == 0 {
		return
	}
	at := s.at(start)
	path := ""
	for i, part := range parts {
		path = joinKey(path, part)
		if i == len(parts)-1 && array {
			n := s.arrays[path]
			s.arrays[path] = n + 1
			s.setKey(path, at)
			path = joinIndex(path, n)
		} else if n, ok := s.arrays[path]; ok {
			path = joinIndex(path, n-1)
		}
		s.setKey(path, at)
	}
	s.table = path
}

// keyValue reads `key = value` (dotted keys allowed) below base.
func (s *scanner) keyValue(base string) {
	parts, offs := s.keyParts()
	if len(parts) == 0 {
		return
	}
	path := base
	for i, part := range parts {
		path = joinKey(path, part)
		s.setKey(path, s.at(offs[i]))
	}
	s.skip(false)
	if s.peek(0) != '=' {
		return
	}
	s.i++
	s.skip(false)
	s.value(path)
}

// keyParts reads a possibly dotted key and returns its parts and offsets.
func (s *scanner) keyParts() (parts []string, offs []int) {
	for {
		s.skip(false)
		if s.eof() {
			return
		}
		off := s.i
		var part string
		switch c := s.src[s.i]; {
		case c == '"':
			part = unquoteBasic(s.basicString())
		case c == '\'':
			raw := s.literalString()
			part = strings.TrimSuffix(strings.TrimPrefix(raw, "'"), "'")
		case isBareKeyByte(c):
			for !s.eof() && isBareKeyByte(s.src[s.i]) {
				s.i++
			}
			part = s.src[off:s.i]
		default:
			return
		}
		parts = append(parts, part)
		offs = append(offs, off)
		s.skip(false)
		if s.peek(0) != '.' {
			return
		}
		s.i++
	}
}

func (s *scanner) value(path string) {
	if s.eof() {
		return
	}
	s.setValue(path, s.at(s.i))
	switch c := s.src[s.i]; c {
	case '"':
		if strings.HasPrefix(s.src[s.i:], `"""`) {
			s.multiline('"')
		} else {
			s.basicString()
		}
	case '\'':
		if strings.HasPrefix(s.src[s.i:], `'''`) {
			s.multiline('\'')
		} else {
			s.literalString()
		}
	case '[':
		s.i++
		for n := 0; ; {
			s.skip(true)
			if s.eof() {
				return
			}
			switch s.src[s.i] {
			case ']':
				s.i++
				return
			case ',':
				s.i++
				continue
			}
			start := s.i
			s.value(joinIndex(path, n))
			n++
			if s.i == start {
				s.i++
			}
		}
	case '{':
		s.i++
		for {
			s.skip(true)
			if s.eof() {
				return
			}
			switch s.src[s.i] {
			case '}':
				s.i++
				return
			case ',':
				s.i++
				continue
			}
			start := s.i
			s.keyValue(path)
			if s.i == start {
				s.i++
			}
		}
	default:
		s.scalar()
	}
}

// scalar skips a number, boolean or date-time.
func (s *scanner) scalar() {
	start := s.i
	for !s.eof() && !strings.ContainsRune(" \t\r\n,]}#", rune(s.src[s.i])) {
		s.i++
	}
	// A date and a time may be separated by one space: 1979-05-27 07:32:00.
	if s.i-start == 10 && s.peek(0) == ' ' && s.peek(1) >= '0' && s.peek(1) <= '9' &&
		s.src[start+4] == '-' && s.src[start+7] == '-' {
		s.i++
		s.scalar()
	}
}

// basicString skips "…" and returns it, quotes included.
func (s *scanner) basicString() string {
	start := s.i
	s.i++
	for !s.eof() {
		switch s.src[s.i] {
		case '\\':
			s.i += 2
			continue
		case '"':
			s.i++
			return s.src[start:s.i]
		case '\n':
			return s.src[start:s.i]
		}
		s.i++
	}
	s.i = len(s.src)
	return s.src[start:]
}

// literalString skips '…' and returns it, quotes included.
func (s *scanner) literalString() string {
	start := s.i
	s.i++
	for !s.eof() {
		switch s.src[s.i] {
		case '\'':
			s.i++
			return s.src[start:s.i]
		case '\n':
			return s.src[start:s.i]
		}
		s.i++
	}
	return s.src[start:]
}

// multiline skips a multi-line string; q is its quote character.
func (s *scanner) multiline(q byte) {
	delim := strings.Repeat(string(q), 3)
	s.i += 3
	for !s.eof() {
		if q == '"' && s.src[s.i] == '\\' {
			s.i += 2
			continue
		}
		if strings.HasPrefix(s.src[s.i:], delim) {
			s.i += 3
			// Up to two more quotes belong to the content: """a""""".
			for k := 0; k < 2 && s.peek(0) == q; k++ {
				s.i++
			}
			return
		}
		s.i++
	}
	s.i = len(s.src)
}

func (s *scanner) setKey(path string, at position) {
	if _, ok := s.pos.keys[path]; !ok {
		s.pos.keys[path] = at
	}
}

func (s *scanner) setValue(path string, at position) {
	if _, ok := s.pos.values[path]; !ok {
		s.pos.values[path] = at
	}
}

// unquoteBasic decodes a basic-string key; the escapes TOML and Go share
// cover every key worth writing, and anything else keeps its raw text.
func unquoteBasic(q string) string {
	if u, err := strconv.Unquote(q); err == nil {
		return u
	}
	return strings.Trim(q, `"`)
}
