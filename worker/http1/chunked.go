package http1

import "bytes"

// ReencodeSlack bounds how many bytes one Reencode call may append beyond
// the bytes it consumes (a chunk-size line or final CRLFs begun in an
// earlier call), trailers aside.
const ReencodeSlack = 32

// maxChunkSizeDigits bounds the HEXDIG of one chunk-size, leading zeros
// included; maxChunkSize bounds its value (2^62 - 1), far from any overflow.
const (
	maxChunkSizeDigits = 16
	maxChunkSize       = 1<<62 - 1
)

type chunkState uint8

const (
	csSize        chunkState = iota // first HEXDIG of a chunk-size
	csSizeDigits                    // more HEXDIG, ';', BWS or CR
	csSizeBWS                       // BWS after the size: more BWS or ';'
	csExtPreName                    // after ';': BWS or the extension name
	csExtName                       // in chunk-ext-name
	csExtNameBWS                    // BWS after the name: '=' or ';'
	csExtPreVal                     // after '=': BWS or the value
	csExtTokVal                     // in a token value
	csExtQVal                       // in a quoted-string value
	csExtQPair                      // after '\\' in a quoted-string
	csExtAfterQ                     // after a quoted-string: ';', BWS or CR
	csExtValBWS                     // BWS after a value: more BWS or ';'
	csSizeLF                        // CR seen, LF expected
	csData                          // chunk-data
	csDataCR                        // CR after chunk-data expected
	csDataLF                        // LF after chunk-data expected
	csTrLineStart                   // trailer field line or the final CRLF
	csTrName                        // in a trailer field name
	csTrValue                       // in a trailer field value
	csTrLF                          // LF ending a trailer field line expected
	csEndLF                         // LF ending the chunked body expected
	csDone                          // the chunked body is complete
)

// ChunkedDecoder decodes the chunked transfer coding (RFC 9112 §7.1) from
// input fed in pieces of any size, strictly: chunk-size is 1*HEXDIG (at most
// 16 digits, value below 2^62) directly followed by CRLF or by chunk
// extensions (BWS ";" BWS token [BWS "=" BWS (token / quoted-string)]),
// whose bytes are bounded by Limits.MaxChunkExtBytes and then ignored;
// chunk-data is followed by CRLF; the trailer section holds field lines
// checked like head fields and bounded by Limits.MaxTrailerBytes and
// MaxTrailerFields. Errors are *Error with Status 400, or 502 when Response
// is set; after one, every call returns it again.
//
// Set Limits and Response before the first call; the zero value decodes a
// request body under default limits. A ChunkedDecoder is not safe for
// concurrent use. It allocates only when a body has trailers (once: its
// buffer is kept across Reset).
type ChunkedDecoder struct {
	Limits   *Limits
	Response bool
	// Hop names the fields the message's Connection options make
	// hop-by-hop (RFC 9110 §7.6.1: a proxy removes the header and trailer
	// fields so named), and those a proxy writes itself in the head (its
	// request id field): Reencode drops the trailers of these names (ASCII
	// case-insensitive, '_' matching '-' as in AllowedTrailer), besides
	// those AppendLastChunk drops. Set it after Reset, before the body;
	// the names must stay valid until the body is done. Reset clears it.
	Hop [][]byte
	// Drop names more trailers Reencode drops, as Hop does: the fields a
	// proxy deletes from the message's head (a frontend's header edits),
	// which a recipient merging trailers into the head would otherwise
	// get back from them. Set it after Reset, before the body; the names
	// must stay valid until the body is done. Reset clears it.
	Drop [][]byte

	state   chunkState
	size    uint64 // chunk-size being read, then chunk-data left
	digits  int    // HEXDIG read in this chunk-size
	ext     int    // extension bytes on this chunk-size line
	off     int    // stream offset of the next byte
	trBytes int    // trailer section bytes so far
	err     *Error

	tbuf      []byte  // trailer names and values, capacity MaxTrailerBytes
	trailers  []Field // aliasing tbuf
	nameStart int
	nameEnd   int

	// Events for Reencode, set only when asked for.
	chunkStart bool
	chunkLen   uint64
	chunkEnd   bool
}

// Reset prepares d for a new chunked body. Limits, Response and buffers are
// kept; slices returned by Trailers before are invalid afterwards.
func (d *ChunkedDecoder) Reset() {
	*d = ChunkedDecoder{
		Limits: d.Limits, Response: d.Response,
		tbuf: d.tbuf[:0], trailers: d.trailers[:0],
	}
}

// Done reports whether the whole chunked body, trailer section and final
// CRLF included, has been consumed. Bytes after it belong to the next
// message and are never consumed.
func (d *ChunkedDecoder) Done() bool { return d.state == csDone }

// Trailers returns the trailer fields received so far (all of them once Done
// is true). They alias d's buffer: valid until Reset.
func (d *ChunkedDecoder) Trailers() []Field { return d.trailers }

// Feed consumes bytes from src and returns the next run of body data, which
// aliases src, and n, the bytes of src consumed (data included). It returns
// at the end of each data run, when src is exhausted (n == len(src), data
// nil) or when the body is done (Done() true: src[n:] is not part of the
// body). Call it again with src[n:] while n < len(src).
func (d *ChunkedDecoder) Feed(src []byte) (data []byte, n int, err error) {
	data, n, e := d.next(src, int(^uint(0)>>1), false)
	if e != nil {
		return nil, n, e
	}
	return data, n, nil
}

// Decode copies the body data found in src into dst, consuming framing
// bytes as it goes. It returns the bytes written to dst and consumed from
// src; it stops when src is exhausted, when dst is full and the next byte of
// src is body data, or when the body is done.
func (d *ChunkedDecoder) Decode(dst, src []byte) (nDst, nSrc int, err error) {
	for nSrc < len(src) {
		data, n, e := d.next(src[nSrc:], len(dst)-nDst, false)
		nSrc += n
		nDst += copy(dst[nDst:], data)
		if e != nil {
			return nDst, nSrc, e
		}
		if n == 0 {
			break
		}
	}
	return nDst, nSrc, nil
}

// Reencode consumes chunked bytes from src and appends to dst the same body
// in canonical chunked form: each chunk keeps its size, written in lowercase
// hex without leading zeros, and loses its extensions; the last chunk is
// "0", followed by the trailers AppendLastChunk keeps, then CRLF. It returns
// the extended dst and the bytes of src consumed; it stops early only when
// the body is done. Nothing is buffered across calls but the trailer
// section, written once the body is done: a call appends at most
// ReencodeSlack bytes more than it consumes, plus the trailer section (at
// most MaxTrailerBytes) on the call that ends the body, and does not
// allocate when dst has that much room. This is how the proxy forwards a
// chunked body: decode, re-encode, write.
func (d *ChunkedDecoder) Reencode(dst, src []byte) ([]byte, int, error) {
	nSrc := 0
	for nSrc < len(src) && d.state != csDone {
		data, n, e := d.next(src[nSrc:], int(^uint(0)>>1), true)
		nSrc += n
		if d.chunkStart {
			dst = AppendChunkHeader(dst, d.chunkLen)
			d.chunkStart = false
		}
		dst = append(dst, data...)
		if d.chunkEnd {
			dst = append(dst, '\r', '\n')
			d.chunkEnd = false
		}
		if e != nil {
			return dst, nSrc, e
		}
		if d.state == csDone {
			dst = appendLastChunk(dst, d.trailers, d.Hop, d.Drop)
		}
	}
	return dst, nSrc, nil
}

// fail records and returns the decoder's error for the byte at offset off.
func (d *ChunkedDecoder) fail(reason string, off int) *Error {
	d.err = errAt(StatusBadRequest, reason, off, d.Response)
	return d.err
}

// next consumes src until it finds a run of at most max data bytes, src is
// exhausted, the body is done, or (with events) a chunk starts or ends.
func (d *ChunkedDecoder) next(src []byte, max int, events bool) ([]byte, int, *Error) {
	if d.err != nil {
		return nil, 0, d.err
	}
	i := 0
	for i < len(src) {
		switch d.state {
		case csData:
			k := len(src) - i
			if uint64(k) > d.size {
				k = int(d.size)
			}
			k = min(k, max)
			if k == 0 {
				return nil, i, nil
			}
			d.size -= uint64(k)
			if d.size == 0 {
				d.state = csDataCR
			}
			d.off += k
			return src[i : i+k], i + k, nil
		case csDone:
			return nil, i, nil
		}
		c := src[i]
		at := d.off
		i++
		d.off++
		if d.state >= csSizeBWS && d.state <= csExtValBWS {
			if d.ext++; d.ext > d.Limits.chunkExt() {
				return nil, i, d.fail("chunk extensions too long", at)
			}
		} else if d.state >= csTrLineStart {
			if d.trBytes++; d.trBytes > d.Limits.trailerBytes() {
				return nil, i, d.fail("trailer section too large", at)
			}
		}
		if e := d.step(c, at, events); e != nil {
			return nil, i, e
		}
		if events && (d.chunkStart || d.chunkEnd) {
			return nil, i, nil
		}
	}
	return nil, i, nil
}

// step advances the state machine over one framing byte c at offset at.
func (d *ChunkedDecoder) step(c byte, at int, events bool) *Error {
	switch d.state {
	case csSize:
		if !isHex(c) {
			return d.fail("chunk-size is not HEXDIG", at)
		}
		d.size, d.digits, d.ext = uint64(unhex(c)), 1, 0
		d.state = csSizeDigits
	case csSizeDigits:
		switch {
		case isHex(c):
			if d.digits++; d.digits > maxChunkSizeDigits {
				return d.fail("chunk-size has too many digits", at)
			}
			if d.size > maxChunkSize>>4 {
				return d.fail("chunk-size too large", at)
			}
			d.size = d.size<<4 | uint64(unhex(c))
		case c == ';':
			d.ext = 1
			d.state = csExtPreName
		case c == ' ' || c == '\t':
			d.ext = 1
			d.state = csSizeBWS
		case c == '\r':
			d.state = csSizeLF
		default:
			return d.fail("invalid byte after chunk-size", at)
		}
	case csSizeBWS, csExtNameBWS, csExtValBWS:
		switch {
		case c == ' ' || c == '\t':
		case c == ';':
			d.state = csExtPreName
		case c == '=' && d.state == csExtNameBWS:
			d.state = csExtPreVal
		default:
			return d.fail("invalid byte in chunk extension", at)
		}
	case csExtPreName:
		switch {
		case c == ' ' || c == '\t':
		case isTchar(c):
			d.state = csExtName
		default:
			return d.fail("invalid chunk-ext-name", at)
		}
	case csExtName, csExtTokVal, csExtAfterQ:
		switch {
		case isTchar(c) && d.state != csExtAfterQ:
		case c == '=' && d.state == csExtName:
			d.state = csExtPreVal
		case c == ';':
			d.state = csExtPreName
		case c == ' ' || c == '\t':
			if d.state == csExtName {
				d.state = csExtNameBWS
			} else {
				d.state = csExtValBWS
			}
		case c == '\r':
			d.state = csSizeLF
		default:
			return d.fail("invalid byte in chunk extension", at)
		}
	case csExtPreVal:
		switch {
		case c == ' ' || c == '\t':
		case isTchar(c):
			d.state = csExtTokVal
		case c == '"':
			d.state = csExtQVal
		default:
			return d.fail("invalid chunk-ext-val", at)
		}
	case csExtQVal:
		switch {
		case c == '"':
			d.state = csExtAfterQ
		case c == '\\':
			d.state = csExtQPair
		case class[c]&cQdtext != 0:
		default:
			return d.fail("invalid byte in quoted chunk-ext-val", at)
		}
	case csExtQPair:
		if c != '\t' && (c < 0x20 || c == 0x7f) {
			return d.fail("invalid quoted-pair in chunk-ext-val", at)
		}
		d.state = csExtQVal
	case csSizeLF:
		if c != '\n' {
			return d.fail("bare CR in chunk-size line", at)
		}
		if d.size == 0 {
			d.state = csTrLineStart
			return nil
		}
		d.state = csData
		if events {
			d.chunkStart, d.chunkLen = true, d.size
		}
	case csDataCR:
		if c != '\r' {
			return d.fail("chunk-data not followed by CRLF", at)
		}
		d.state = csDataLF
	case csDataLF:
		if c != '\n' {
			return d.fail("chunk-data not followed by CRLF", at)
		}
		d.state = csSize
		d.chunkEnd = events
	case csTrLineStart:
		switch {
		case c == '\r':
			d.state = csEndLF
		case isTchar(c):
			if d.tbuf == nil {
				d.tbuf = make([]byte, 0, d.Limits.trailerBytes())
			}
			if len(d.trailers) >= d.Limits.trailerFields() {
				return d.fail("too many trailer fields", at)
			}
			d.nameStart = len(d.tbuf)
			d.tbuf = append(d.tbuf, c)
			d.state = csTrName
		case c == ' ' || c == '\t':
			return d.fail("obs-fold in trailer section", at)
		case c == '\n':
			return d.fail("bare LF in trailer section", at)
		default:
			return d.fail("invalid byte in trailer field name", at)
		}
	case csTrName:
		switch {
		case isTchar(c):
			d.tbuf = append(d.tbuf, c)
		case c == ':':
			d.nameEnd = len(d.tbuf)
			d.state = csTrValue
		case c == ' ' || c == '\t':
			return d.fail("whitespace before colon in trailer field", at)
		default:
			return d.fail("invalid byte in trailer field name", at)
		}
	case csTrValue:
		switch {
		case c == '\r':
			d.state = csTrLF
		case c == '\n':
			return d.fail("bare LF in trailer section", at)
		case valueByteOK(c):
			d.tbuf = append(d.tbuf, c)
		default:
			return d.fail(valueFault(c), at)
		}
	case csTrLF:
		if c != '\n' {
			return d.fail("bare CR in trailer section", at)
		}
		d.trailers = append(d.trailers, Field{
			Name:  d.tbuf[d.nameStart:d.nameEnd:d.nameEnd],
			Value: trimOWS(d.tbuf[d.nameEnd:len(d.tbuf):len(d.tbuf)]),
		})
		d.state = csTrLineStart
	case csEndLF:
		if c != '\n' {
			return d.fail("bare CR in trailer section", at)
		}
		d.state = csDone
	}
	return nil
}

func unhex(c byte) byte {
	switch {
	case c <= '9':
		return c - '0'
	case c >= 'a':
		return c - 'a' + 10
	}
	return c - 'A' + 10
}

// AppendChunkHeader appends the chunk-size line for a chunk of n bytes (n > 0:
// a zero size is the last chunk, see AppendLastChunk) in lowercase hex.
func AppendChunkHeader(dst []byte, n uint64) []byte {
	var b [16]byte
	i := len(b)
	for {
		i--
		b[i] = "0123456789abcdef"[n&15]
		n >>= 4
		if n == 0 {
			break
		}
	}
	dst = append(dst, b[i:]...)
	return append(dst, '\r', '\n')
}

// AppendChunk appends data as one chunk: size line, data, CRLF. Empty data
// appends nothing (a zero-size chunk would end the body).
func AppendChunk(dst, data []byte) []byte {
	if len(data) == 0 {
		return dst
	}
	dst = AppendChunkHeader(dst, uint64(len(data)))
	dst = append(dst, data...)
	return append(dst, '\r', '\n')
}

// AppendLastChunk appends the end of a chunked body: "0" CRLF, the trailer
// fields that may be forwarded (AllowedTrailer), then CRLF.
func AppendLastChunk(dst []byte, trailers []Field) []byte {
	return appendLastChunk(dst, trailers, nil, nil)
}

// appendLastChunk is AppendLastChunk that also drops the trailers named in
// hop and drop (ChunkedDecoder.Hop and Drop).
func appendLastChunk(dst []byte, trailers []Field, hop, drop [][]byte) []byte {
	dst = append(dst, '0', '\r', '\n')
	for i := range trailers {
		if name := trailers[i].Name; AllowedTrailer(name) && !NamedIn(hop, name) && !NamedIn(drop, name) {
			dst = appendField(dst, trailers[i].Name, trailers[i].Value)
		}
	}
	return append(dst, '\r', '\n')
}

// NamedIn reports whether name is one of names, ASCII case-insensitively
// and with '_' matching '-': CGI, WSGI and the frameworks on them read
// X_Foo as X-Foo (AllowedTrailer).
func NamedIn(names [][]byte, name []byte) bool {
	for _, n := range names {
		if equalFoldDash(name, n) {
			return true
		}
	}
	return false
}

// equalFoldDash reports whether a and b are equal ASCII case-insensitively,
// '_' matching '-' on either side.
func equalFoldDash(a, b []byte) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		x, y := a[i], b[i]
		if x == '_' {
			x = '-'
		}
		if y == '_' {
			y = '-'
		}
		if lower(x) != lower(y) {
			return false
		}
	}
	return true
}

// AllowedTrailer reports whether a trailer field named name is forwarded.
// Refused: hop-by-hop fields (IsHopByHop) and those RFC 9110 §6.5.1 says a
// sender must not put in trailers and a recipient must not merge into the
// head: framing (Content-Length, Trailer), routing (Host), authentication
// (Authorization, Proxy-Authorization, Cookie, Set-Cookie) and content
// handling (Content-Encoding, Content-Type, Content-Range); and the
// forwarding fields the proxy is the authority for (Forwarded,
// X-Forwarded-*, X-Real-IP and the like), which a backend merging trailers
// into the head would otherwise take from the client.
//
// A name is compared with each '_' read as '-': CGI, WSGI and the
// frameworks on them read X_Real_IP as X-Real-IP.
func AllowedTrailer(name []byte) bool {
	if IsHopByHop(name) {
		return false
	}
	if bytes.IndexByte(name, '_') >= 0 {
		name = bytes.ReplaceAll(name, []byte("_"), []byte("-"))
		if IsHopByHop(name) {
			return false
		}
	}
	if len(name) > 12 && equalFold(name[:12], "x-forwarded-") {
		return false
	}
	for _, n := range [...]string{
		"content-length", "trailer", "host", "authorization", "proxy-authorization",
		"cookie", "set-cookie", "content-encoding", "content-type", "content-range",
		"forwarded", "x-real-ip", "front-end-https", "x-url-scheme", "x-client-ip", "true-client-ip", "x-cluster-client-ip",
	} {
		if equalFold(name, n) {
			return false
		}
	}
	return true
}
