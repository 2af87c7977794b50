package config

import (
	"fmt"
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

// maxDepth bounds how deeply a document may nest: the number of parts of
// the longest key path (table header parts, dotted key parts, array
// indices, inline tables). Upstream's deepest key path has 5.
const maxDepth = 64

// maxKeyLength bounds one key (one part of a key path), in bytes as
// written. With maxDepth it bounds the length of every key path, which
// the decoder and the checks build for each value: without it, a 4 MiB
// cluster id with a million backends makes terabytes of key paths.
const maxKeyLength = 256

// limitError is where and why a scan stopped at a limit.
type limitError struct {
	at  position
	msg string
}

// positions maps key paths to where their key and their value start.
//
// BurntSushi/toml reports positions for syntax errors only: its MetaData keeps
// one position per key *without* array indices (the last element's), so the
// position of clusters.x.backends[0].address would point at backends[1]. A
// small scanner that tracks tables, arrays of tables, inline tables and
// arrays is enough to name every key and value exactly.
//
// The paths form a tree with one node per part, so indexing costs time and
// memory linear in the document, whatever the length of its keys; a path
// is split into its parts only when it is looked up.
type positions struct{ root *node }

// node is one key path: the positions of its key and its value, and its
// children by part (a key as joinKey writes it, or "[i]").
type node struct {
	key, value position
	children   map[string]*node
	elements   int // [[array]] headers seen for this path
	depth      int // number of parts
}

func (p positions) find(path string) *node {
	n := p.root
	for i := 0; n != nil && i < len(path); {
		var part string
		switch c := path[i]; {
		case c == '[':
			j := strings.IndexByte(path[i:], ']')
			if j < 0 {
				return nil
			}
			part = path[i : i+j+1]
		case c == '"':
			q, err := strconv.QuotedPrefix(path[i:])
			if err != nil {
				return nil
			}
			part = q
		default:
			j := i
			for j < len(path) && isBareKeyByte(path[j]) {
				j++
			}
			part = path[i:j]
		}
		if part == "" {
			return nil
		}
		i += len(part)
		if i < len(path) && path[i] == '.' && i+1 < len(path) {
			i++
		} else if i < len(path) && path[i] != '[' {
			return nil
		}
		n = n.children[part]
	}
	if n == p.root {
		return nil
	}
	return n
}

// keyAt and valueAt return where the key or value at path starts, and
// whether the document has it.
func (p positions) keyAt(path string) (position, bool) {
	if n := p.find(path); n != nil && n.key.line > 0 {
		return n.key, true
	}
	return position{}, false
}

func (p positions) valueAt(path string) (position, bool) {
	if n := p.find(path); n != nil && n.value.line > 0 {
		return n.value, true
	}
	return position{}, false
}

// key returns where the key at path starts, else where its value does.
func (p positions) key(path string) position {
	if at, ok := p.keyAt(path); ok {
		return at
	}
	at, _ := p.valueAt(path)
	return at
}

// value returns where the value at path starts, else where its key does.
func (p positions) value(path string) position {
	if at, ok := p.valueAt(path); ok {
		return at
	}
	at, _ := p.keyAt(path)
	return at
}

// scanPositions indexes a document. On input BurntSushi/toml would refuse,
// the result is incomplete but the scan still ends, in linear time. It
// stops at the first key path deeper than maxDepth or key longer than
// maxKeyLength and returns where and why (nil when within the limits).
func scanPositions(src string) (pos positions, limit *limitError) {
	s := &scanner{src: src, pos: positions{root: &node{}}}
	for i := 0; i < len(src); i++ {
		if src[i] == '\n' {
			s.lines = append(s.lines, i+1)
		}
	}
	s.table = s.pos.root
	s.document()
	return s.pos, s.limit
}

type scanner struct {
	src   string
	i     int
	lines []int // byte offsets of the starts of lines 2, 3, …
	pos   positions
	table *node       // the current [table]
	limit *limitError // why the scan stopped early; nil if it did not
}

// child returns the node of part below n, creating it; nil (and the scan
// stops) when that is deeper than maxDepth. off is where the part starts.
func (s *scanner) child(n *node, part string, off int) *node {
	if c, ok := n.children[part]; ok {
		return c
	}
	if n.depth >= maxDepth {
		s.stop(off, fmt.Sprintf("nesting deeper than %d levels (tables, arrays and dotted keys count)", maxDepth))
		return nil
	}
	if n.children == nil {
		n.children = map[string]*node{}
	}
	c := &node{depth: n.depth + 1}
	n.children[part] = c
	return c
}

// stop ends the scan at a limit, at offset off.
func (s *scanner) stop(off int, msg string) {
	s.limit = &limitError{at: s.at(off), msg: msg}
	s.i = len(s.src)
}

func indexPart(i int) string { return "[" + strconv.Itoa(i) + "]" }

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
	parts, offs := s.keyParts()
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
	n := s.pos.root
	for i, part := range parts {
		if n = s.child(n, keyPart(part), offs[i]); n == nil {
			return
		}
		if i == len(parts)-1 && array {
			setPos(&n.key, at)
			k := n.elements
			n.elements++
			if n = s.child(n, indexPart(k), offs[i]); n == nil {
				return
			}
		} else if n.elements > 0 {
			if n = s.child(n, indexPart(n.elements-1), offs[i]); n == nil {
				return
			}
		}
		setPos(&n.key, at)
	}
	s.table = n
}

// keyValue reads `key = value` (dotted keys allowed) below base.
func (s *scanner) keyValue(base *node) {
	parts, offs := s.keyParts()
	if len(parts) == 0 {
		return
	}
	n := base
	for i, part := range parts {
		if n = s.child(n, keyPart(part), offs[i]); n == nil {
			return
		}
		setPos(&n.key, s.at(offs[i]))
	}
	s.skip(false)
	if s.peek(0) != '=' {
		return
	}
	s.i++
	s.skip(false)
	s.value(n)
}

// keyPart is the part of a key path that names key k.
func keyPart(k string) string { return joinKey("", k) }

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
		if s.i-off > maxKeyLength {
			s.stop(off, fmt.Sprintf("key is %d bytes long: keys may be at most %d bytes", s.i-off, maxKeyLength))
			return nil, nil
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

// value reads the value of n.
func (s *scanner) value(n *node) {
	if s.eof() {
		return
	}
	setPos(&n.value, s.at(s.i))
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
		for k := 0; ; {
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
			e := s.child(n, indexPart(k), s.i)
			if e == nil {
				return
			}
			s.value(e)
			k++
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
			s.keyValue(n)
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

// setPos keeps the first position recorded at p.
func setPos(p *position, at position) {
	if p.line == 0 {
		*p = at
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
