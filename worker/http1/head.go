package http1

import "bytes"

// Default limits, used for every zero (or negative) field of Limits.
const (
	DefaultMaxHeadBytes     = 16 << 10 // whole head, start-line to final CRLF included
	DefaultMaxStartLine     = 8 << 10  // request-line or status-line, CRLF included
	DefaultMaxFields        = 128      // field lines in a head (the HTTP/2 limit too)
	DefaultMaxChunkExtBytes = 4 << 10  // chunk extensions on one chunk-size line
	DefaultMaxTrailerBytes  = 8 << 10  // trailer section, final CRLF included
	DefaultMaxTrailerFields = 32       // field lines in a trailer section
)

// maxMethod is the longest method accepted; a longer one is answered 501
// (RFC 9112 §3: longer than any method the server implements).
const maxMethod = 32

// maxConnTokens bounds the options of the Connection fields of one head.
const maxConnTokens = 16

// Limits bounds what a parser accepts. A nil *Limits, or a zero field, means
// the default. Limits is read-only to the parsers and may be shared.
type Limits struct {
	MaxHeadBytes     int // head longer than this: 431 (502 for a response)
	MaxStartLine     int // request-line longer than this: 414 (502 for a status-line)
	MaxFields        int // more field lines than this: 431 (502)
	MaxChunkExtBytes int // chunk extensions longer than this on one chunk: 400 (502)
	MaxTrailerBytes  int // trailer section longer than this: 400 (502)
	MaxTrailerFields int // more trailer fields than this: 400 (502)
}

func pick(v, def int) int {
	if v > 0 {
		return v
	}
	return def
}

func (l *Limits) headBytes() int {
	if l == nil {
		return DefaultMaxHeadBytes
	}
	return pick(l.MaxHeadBytes, DefaultMaxHeadBytes)
}

func (l *Limits) startLine() int {
	if l == nil {
		return DefaultMaxStartLine
	}
	return pick(l.MaxStartLine, DefaultMaxStartLine)
}

func (l *Limits) fields() int {
	if l == nil {
		return DefaultMaxFields
	}
	return pick(l.MaxFields, DefaultMaxFields)
}

// fieldsCap is the capacity ParseRequest and ParseResponse give a Fields
// slice that has none: the field limit, at most DefaultMaxFields (a head
// with more fields grows the slice, up to the limit), so that a large or
// unbounded limit does not allocate its size up front.
func (l *Limits) fieldsCap() int { return min(l.fields(), DefaultMaxFields) }

func (l *Limits) chunkExt() int {
	if l == nil {
		return DefaultMaxChunkExtBytes
	}
	return pick(l.MaxChunkExtBytes, DefaultMaxChunkExtBytes)
}

func (l *Limits) trailerBytes() int {
	if l == nil {
		return DefaultMaxTrailerBytes
	}
	return pick(l.MaxTrailerBytes, DefaultMaxTrailerBytes)
}

func (l *Limits) trailerFields() int {
	if l == nil {
		return DefaultMaxTrailerFields
	}
	return pick(l.MaxTrailerFields, DefaultMaxTrailerFields)
}

// HeadScanner finds the end of a head in a buffer that grows by appending,
// without rescanning what it has already seen. Set Limits and Response (false:
// a request head, whose leading empty lines are skipped as RFC 9112 §2.2
// advises; true: a response head, where they are refused) before the first
// Scan; the zero value scans a request head under default limits.
type HeadScanner struct {
	Limits   *Limits
	Response bool

	pos       int  // next byte to look at
	lineStart int  // start of the current line
	inFields  bool // the start-line is complete
}

// Reset prepares s for the next head, which must start at offset 0 of the
// buffer given to Scan. Limits and Response are kept.
func (s *HeadScanner) Reset() {
	s.pos, s.lineStart, s.inFields = 0, 0, false
}

// Scan looks for the end of the head at the start of buf. buf must extend the
// buffer of the previous call (same bytes, maybe more). It returns:
// (n, nil) when the head is buf[:n] (n counts leading empty lines and the
// final empty line); (0, nil) when more bytes are needed; (0, *Error) when the
// head cannot be valid: a bare LF (400), a start-line over the limit (414),
// a head over the limit (431), all 502 for a response. Scan only frames the
// head: ParseRequest or ParseResponse checks everything else. Once it has
// found a head, s is Reset: the next head starts at offset 0 of the next
// buffer given to Scan.
func (s *HeadScanner) Scan(buf []byte) (int, error) {
	maxHead, maxLine := s.Limits.headBytes(), s.Limits.startLine()
	for {
		nl := bytes.IndexByte(buf[s.pos:], '\n')
		if nl < 0 {
			s.pos = len(buf)
			if !s.inFields && len(buf)-s.lineStart > maxLine {
				return 0, errAt(StatusRequestURITooLong, "start-line too long", s.lineStart, s.Response)
			}
			if len(buf) > maxHead {
				return 0, errAt(StatusRequestHeaderFieldsTooLarge, "head too large", maxHead, s.Response)
			}
			return 0, nil
		}
		e := s.pos + nl
		if e == s.lineStart || buf[e-1] != '\r' {
			return 0, errAt(StatusBadRequest, "bare LF", e, s.Response)
		}
		// A start-line over its limit is that (414), however long the
		// head it begins: the check that a line without its end yet
		// makes above, made here too for a line that came whole.
		if !s.inFields && e+1-s.lineStart > maxLine {
			return 0, errAt(StatusRequestURITooLong, "start-line too long", s.lineStart, s.Response)
		}
		if e+1 > maxHead {
			return 0, errAt(StatusRequestHeaderFieldsTooLarge, "head too large", maxHead, s.Response)
		}
		empty := e-1 == s.lineStart
		switch {
		case !s.inFields && empty:
			if s.Response {
				return 0, errAt(StatusBadGateway, "empty line before status-line", s.lineStart, true)
			}
		case !s.inFields:
			s.inFields = true
		case empty:
			n := e + 1
			s.Reset()
			return n, nil
		}
		s.lineStart = e + 1
		s.pos = e + 1
	}
}

// FindRequestHead is HeadScanner.Scan over buf from scratch, for a request.
func FindRequestHead(buf []byte, lim *Limits) (int, error) {
	s := HeadScanner{Limits: lim}
	return s.Scan(buf)
}

// FindResponseHead is HeadScanner.Scan over buf from scratch, for a response.
func FindResponseHead(buf []byte, lim *Limits) (int, error) {
	s := HeadScanner{Limits: lim, Response: true}
	return s.Scan(buf)
}
