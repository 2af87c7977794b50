package h2c

import (
	"bytes"
	"errors"
	"net/http"
	"strconv"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/sozu-go/sozu/worker/http1"
)

// headerField is one field of a HEADERS frame we send; the name is
// lowercase.
type headerField struct {
	name, value string
}

func (f headerField) hpack() hpack.HeaderField {
	return hpack.HeaderField{Name: f.name, Value: f.value}
}

// requestFields converts an HTTP/1.1 request head, as the proxy serialises
// it, to HTTP/2 fields (RFC 9113 §8.3.1): :method, :scheme "http" (the
// connection is cleartext), :authority from Host, :path from the target;
// then every field but Host and the connection-specific ones (RFC 9113
// §8.2.2: Connection and what it names, Keep-Alive, Proxy-Connection,
// Transfer-Encoding, Upgrade, TE other than "trailers"), names lowercased.
// CONNECT is refused: it would open a tunnel, which this client does not
// carry.
func requestFields(r *http1.Request) ([]headerField, error) {
	if string(r.Method) == "CONNECT" {
		return nil, errors.New("h2c: CONNECT is not forwarded to HTTP/2 backends")
	}
	path := r.Path
	if r.Form == http1.FormAbsolute && (len(path) == 0 || path[0] == '?') {
		path = append([]byte("/"), path...)
	}
	if len(path) == 0 {
		return nil, errors.New("h2c: request without a path")
	}
	fs := make([]headerField, 0, len(r.Fields)+4)
	fs = append(fs, headerField{":method", string(r.Method)}, headerField{":scheme", "http"})
	if len(r.Authority) > 0 {
		fs = append(fs, headerField{":authority", string(r.Authority)})
	}
	fs = append(fs, headerField{":path", string(path)})
	if r.TETrailers {
		fs = append(fs, headerField{"te", "trailers"}) // gRPC servers want it
	}
	conn := r.ConnectionTokens()
	for _, f := range r.Fields {
		if equalFold(f.Name, "host") || namedBy(conn, f.Name) || http1.IsHopByHop(f.Name) {
			continue
		}
		fs = append(fs, headerField{lowerString(f.Name), string(f.Value)})
	}
	return fs, nil
}

// trailerFields converts request trailers (already filtered by the
// proxy's chunked decoder) to HTTP/2 fields, dropping the ones that may
// not be trailers (http1.AllowedTrailer).
func trailerFields(tr []http1.Field) []headerField {
	var fs []headerField
	for _, f := range tr {
		if http1.AllowedTrailer(f.Name) {
			fs = append(fs, headerField{lowerString(f.Name), string(f.Value)})
		}
	}
	return fs
}

func namedBy(tokens [][]byte, name []byte) bool {
	for _, t := range tokens {
		if equalFold(name, string(t)) {
			return true
		}
	}
	return false
}

func equalFold(b []byte, s string) bool { return len(b) == len(s) && bytes.EqualFold(b, []byte(s)) }

func lowerString(b []byte) string {
	for _, c := range b {
		if 'A' <= c && c <= 'Z' {
			return string(bytes.ToLower(b))
		}
	}
	return string(b)
}

// respState is how the response of a stream is being converted.
type respState struct {
	any     bool  // some response (interim or final) was received
	interim int   // interim (1xx) heads received
	final   bool  // the final head was received
	noBody  bool  // HEAD, 204 or 304: no DATA may follow
	chunked bool  // the body is re-framed as chunked (no content-length)
	cl      int64 // content-length, or -1
	got     int64 // DATA bytes received
}

// maxInterim bounds the interim (1xx) heads of one response: each is
// buffered until the session forwards it.
const maxInterim = 8

// reasonFlow is the reason of a stream's flow-control error.
const reasonFlow = "DATA beyond the stream window"

// onHeadersLocked converts a response HEADERS block to HTTP/1.1 bytes in
// rbuf: interim (1xx) heads, the final head, or trailers (kept when the
// body is chunked, as a last chunk; else dropped). It returns a reason when
// the block is malformed (RFC 9113 §8.1.1): the stream is then reset.
func (s *stream) onHeadersLocked(f *http2.MetaHeadersFrame) string {
	r := &s.resp
	if s.remoteDone || s.err != nil {
		return "HEADERS after the end of the response"
	}
	if f.Truncated { // a head or trailers: never forwarded cut to the limit
		return "response head too large"
	}
	if r.final {
		if !f.StreamEnded() {
			return "trailers without END_STREAM"
		}
		if len(f.PseudoFields()) > 0 {
			return "pseudo-header in trailers"
		}
		if r.chunked {
			var tr []http1.Field
			for _, hf := range f.RegularFields() {
				tr = append(tr, http1.Field{Name: []byte(hf.Name), Value: []byte(hf.Value)})
			}
			s.frameChunkLocked()
			s.rbuf = http1.AppendLastChunk(s.rbuf, tr)
			r.chunked = false // terminated
		}
		return s.endRemoteLocked()
	}
	ps := f.PseudoFields()
	if len(ps) != 1 || ps[0].Name != ":status" {
		return "response pseudo-headers other than :status"
	}
	status, err := strconv.Atoi(ps[0].Value)
	if err != nil || len(ps[0].Value) != 3 || status < 100 || status == 101 {
		return "invalid :status"
	}
	r.any = true
	if status < 200 {
		if f.StreamEnded() {
			return "interim response with END_STREAM"
		}
		if r.interim++; r.interim > maxInterim {
			return "too many interim responses"
		}
		s.rbuf = appendStatusLine(s.rbuf, status)
		for _, hf := range f.RegularFields() {
			if http1.IsHopByHop([]byte(hf.Name)) {
				return "connection-specific field " + hf.Name
			}
			s.rbuf = appendField(s.rbuf, hf.Name, hf.Value)
		}
		s.rbuf = append(s.rbuf, '\r', '\n')
		return ""
	}
	r.final = true
	r.noBody = s.method == "HEAD" || status == 204 || status == 304
	// A body followed by the trailers a trailer field announces goes
	// chunked, content-length or not: HTTP/1.1 carries trailers only
	// after a chunked body (RFC 9112 §7.1.2), and the DATA are still
	// checked against the content-length (r.cl).
	withTrailers := !r.noBody && !f.StreamEnded() && announcesTrailers(f.RegularFields())
	s.rbuf = appendStatusLine(s.rbuf, status)
	for _, hf := range f.RegularFields() {
		if http1.IsHopByHop([]byte(hf.Name)) {
			return "connection-specific field " + hf.Name
		}
		if hf.Name == "content-length" {
			n, ok := http1.ParseContentLength([]byte(hf.Value))
			if !ok || (r.cl >= 0 && n != r.cl) {
				return "invalid content-length"
			}
			if r.cl >= 0 {
				continue // duplicate of the same value
			}
			if r.cl = n; withTrailers {
				continue // chunked: the length is only checked
			}
		}
		s.rbuf = appendField(s.rbuf, hf.Name, hf.Value)
	}
	switch {
	case r.noBody:
		if s.method != "HEAD" {
			r.cl = -1
		}
	case withTrailers:
		s.rbuf = append(s.rbuf, "transfer-encoding: chunked\r\n"...)
		r.chunked = true
	case r.cl >= 0:
	case f.StreamEnded():
		s.rbuf = append(s.rbuf, "content-length: 0\r\n"...)
		r.cl = 0
	default:
		s.rbuf = append(s.rbuf, "transfer-encoding: chunked\r\n"...)
		r.chunked = true
	}
	s.rbuf = append(s.rbuf, '\r', '\n')
	if r.noBody {
		r.cl = 0 // DATA after a bodiless head is malformed
	}
	if f.StreamEnded() {
		return s.endRemoteLocked()
	}
	return ""
}

// announcesTrailers reports whether fields hold a trailer field naming
// the trailers to come (RFC 9110 §6.6.2).
func announcesTrailers(fields []hpack.HeaderField) bool {
	for _, hf := range fields {
		if hf.Name == "trailer" && hf.Value != "" {
			return true
		}
	}
	return false
}

// onDataLocked appends a DATA frame's payload (n bytes of window, padding
// included) to rbuf. It returns a reason for a stream error.
func (s *stream) onDataLocked(data []byte, n int64, end bool) string {
	r := &s.resp
	s.recvWin -= n
	if s.recvWin < 0 {
		return reasonFlow
	}
	if s.remoteDone || s.err != nil || s.userClosed {
		s.recvWin += n // nobody reads it: nothing to hold
		return ""
	}
	if !r.final {
		return "DATA before the response head"
	}
	s.credit += n - int64(len(data)) // padding is given back with the rest
	r.got += int64(len(data))
	if r.cl >= 0 && r.got > r.cl {
		return "DATA beyond content-length"
	}
	if r.chunked {
		s.chunk = append(s.chunk, data...) // framed by frameChunkLocked
	} else {
		s.rbuf = append(s.rbuf, data...)
		s.bufData += int64(len(data))
	}
	if end {
		return s.endRemoteLocked()
	}
	return ""
}

// frameChunkLocked appends the DATA held in chunk to rbuf as one chunk.
func (s *stream) frameChunkLocked() {
	s.rbuf = http1.AppendChunk(s.rbuf, s.chunk)
	s.bufData += int64(len(s.chunk))
	s.chunk = s.chunk[:0]
}

// endRemoteLocked ends the response (END_STREAM received).
func (s *stream) endRemoteLocked() string {
	r := &s.resp
	if r.cl >= 0 && r.got != r.cl {
		return "content-length does not match the DATA"
	}
	if r.chunked {
		s.frameChunkLocked()
		s.rbuf = http1.AppendLastChunk(s.rbuf, nil)
		r.chunked = false
	}
	s.remoteDone = true
	return ""
}

func appendStatusLine(dst []byte, status int) []byte {
	dst = append(dst, "HTTP/1.1 "...)
	dst = strconv.AppendInt(dst, int64(status), 10)
	dst = append(dst, ' ')
	dst = append(dst, http.StatusText(status)...)
	return append(dst, '\r', '\n')
}

func appendField(dst []byte, name, value string) []byte {
	dst = append(dst, name...)
	dst = append(dst, ':', ' ')
	dst = append(dst, value...)
	return append(dst, '\r', '\n')
}
