package http1

import "bytes"

// BodyKind is how a message body is delimited (RFC 9112 §6.3).
type BodyKind uint8

// Body delimitations.
const (
	BodyNone    BodyKind = iota // no body
	BodyLength                  // exactly ContentLength bytes
	BodyChunked                 // chunked transfer coding: read it with a ChunkedDecoder
	BodyClose                   // responses only: until the backend closes the connection
	BodyTunnel                  // responses only: the connection becomes a tunnel (CONNECT 2xx, 101)
)

// String names the body kind.
func (k BodyKind) String() string {
	switch k {
	case BodyNone:
		return "none"
	case BodyLength:
		return "content-length"
	case BodyChunked:
		return "chunked"
	case BodyClose:
		return "close-delimited"
	case BodyTunnel:
		return "tunnel"
	}
	return "invalid"
}

// connTokens holds the options of the Connection fields of a head, aliasing
// the input.
type connTokens struct {
	tok [maxConnTokens][]byte
	n   int
}

// Request is a parsed request head. Every []byte field aliases the buffer
// given to ParseRequest: the Request is valid only while that buffer is
// unchanged. A Request is reused across ParseRequest calls (Fields keeps its
// backing array) and is not safe for concurrent use.
type Request struct {
	Method    []byte     // a token, case-sensitive
	Target    []byte     // the request-target as received
	Form      TargetForm // form of Target
	Scheme    []byte     // absolute-form only: "http" or "https", any case
	Path      []byte     // origin-form: Target; absolute-form: what follows the authority (maybe empty or starting with '?'); asterisk-form: "*"; authority-form: nil
	Authority []byte     // the effective authority: from Target in absolute- and authority-form (RFC 9112 §3.2.2: Host is then ignored), else the Host value; nil for HTTP/1.0 without Host
	Host      []byte     // the Host field value as received; nil if absent
	Minor     int        // HTTP minor version: 0 or 1

	// Fields holds every field line, in order, Host and framing fields
	// included. ParseRequest appends into Fields[:0]; when its capacity is
	// zero it first allocates room for Limits.MaxFields entries, at most
	// DefaultMaxFields, once.
	Fields []Field

	Body          BodyKind // BodyNone, BodyLength or BodyChunked
	ContentLength int64    // with BodyLength: the body length; else -1
	KeepAlive     bool     // the client lets the connection persist after this exchange
	Expect100     bool     // HTTP/1.1 request with "Expect: 100-continue"
	TETrailers    bool     // the client accepts trailers: a TE field lists "trailers"
	Upgrade       bool     // HTTP/1.1 request with an Upgrade field and the "upgrade" connection option
	UpgradeProto  []byte   // with Upgrade: the Upgrade field value (a list of protocols)
	HeadLen       int      // bytes of input the head took, leading empty lines and final CRLF included

	conn connTokens
}

// ConnectionTokens returns the connection options (RFC 9110 §7.6.1) of the
// request, in order, aliasing the input; the slice is owned by r.
func (r *Request) ConnectionTokens() [][]byte { return r.conn.tok[:r.conn.n] }

// Get returns the value of the first field named name (ASCII
// case-insensitive) and whether there is one.
func (r *Request) Get(name string) ([]byte, bool) { return Lookup(r.Fields, name) }

// ParseRequest parses the request head at the start of buf into r. buf must
// hold the complete head (see HeadScanner); bytes after it are ignored and
// r.HeadLen tells where the body starts. On error r is left partly filled and
// must not be forwarded; the error is an *Error whose Status is the answer to
// send before closing the connection. What an access record may still show
// of a refused head: Method, Target, Form, Scheme and Path are those of a
// valid request line, or all nil when the request line was refused;
// Authority is the one the request line carried (absolute- and
// authority-form) or, once every field parsed, the validated Host; Fields
// holds the field lines accepted before the refusal. ParseRequest does not allocate, except for
// the Fields backing array when r has none and for the returned error.
func ParseRequest(r *Request, buf []byte, lim *Limits) error {
	if e := parseRequest(r, buf, lim); e != nil {
		return e
	}
	return nil
}

func parseRequest(r *Request, buf []byte, lim *Limits) *Error {
	fields := r.Fields[:0]
	if cap(fields) == 0 {
		fields = make([]Field, 0, lim.fieldsCap())
	}
	*r = Request{Fields: fields, ContentLength: -1}

	// RFC 9112 §2.2: a server SHOULD ignore empty lines before the request-line.
	pos := 0
	for pos+1 < len(buf) && buf[pos] == '\r' && buf[pos+1] == '\n' {
		pos += 2
	}
	if pos > lim.headBytes() {
		return errAt(StatusRequestHeaderFieldsTooLarge, "head too large", lim.headBytes(), false)
	}
	maxLine := lim.startLine()
	nl := bytes.IndexByte(buf[pos:], '\n')
	if nl < 0 {
		if len(buf)-pos > maxLine {
			return errAt(StatusRequestURITooLong, "request-line too long", pos, false)
		}
		return errAt(StatusBadRequest, "incomplete head", len(buf), false)
	}
	e := pos + nl
	if nl+1 > maxLine {
		return errAt(StatusRequestURITooLong, "request-line too long", pos, false)
	}
	if nl == 0 || buf[e-1] != '\r' {
		return errAt(StatusBadRequest, "bare LF", e, false)
	}
	if err := parseRequestLine(r, buf[pos:e-1], pos); err != nil {
		// Nothing of a refused request line is reported (ParseRequest).
		r.Method, r.Target, r.Form, r.Scheme, r.Path, r.Authority = nil, nil, FormOrigin, nil, nil, nil
		return err
	}

	var fi fieldInfo
	n, err := parseFields(buf, e+1, lim, false, &r.Fields, &fi, &r.conn)
	if err != nil {
		return err
	}
	r.HeadLen = n
	return r.decide(&fi)
}

// parseRequestLine parses method SP request-target SP HTTP-version.
func parseRequestLine(r *Request, line []byte, off int) *Error {
	m := 0
	for m < len(line) && isTchar(line[m]) {
		m++
	}
	switch {
	case m == len(line):
		return errAt(StatusBadRequest, "request-line without request-target", off+m, false)
	case line[m] != ' ':
		return errAt(StatusBadRequest, "invalid byte in method", off+m, false)
	case m == 0:
		return errAt(StatusBadRequest, "empty method", off, false)
	case m > maxMethod:
		return errAt(StatusNotImplemented, "method too long", off, false)
	}
	r.Method = line[:m:m]
	ts := m + 1
	sp := bytes.IndexByte(line[ts:], ' ')
	if sp < 0 {
		return errAt(StatusBadRequest, "request-line without HTTP-version (HTTP/0.9?)", off+len(line), false)
	}
	if sp == 0 {
		return errAt(StatusBadRequest, "empty request-target", off+ts, false)
	}
	r.Target = line[ts : ts+sp : ts+sp]
	vs := ts + sp + 1
	minor, status := parseVersion(line[vs:])
	if status != 0 {
		reason := "malformed HTTP-version"
		if status == StatusHTTPVersionNotSupported {
			reason = "unsupported HTTP version"
		}
		return errAt(status, reason, off+vs, false)
	}
	r.Minor = minor
	return parseTarget(r, r.Target, off+ts)
}

// parseVersion parses HTTP-version = "HTTP/" DIGIT "." DIGIT. It returns the
// minor version, or a status: 400 when malformed, 505 for a version other than
// 1.0 and 1.1.
func parseVersion(v []byte) (int, int) {
	if len(v) != 8 || string(v[:5]) != "HTTP/" || v[6] != '.' ||
		v[5] < '0' || v[5] > '9' || v[7] < '0' || v[7] > '9' {
		return 0, StatusBadRequest
	}
	if v[5] != '1' || v[7] > '1' {
		return 0, StatusHTTPVersionNotSupported
	}
	return int(v[7] - '0'), 0
}

// decide derives framing, authority and connection handling from the field
// section (RFC 9112 §3.2, §6, §9.3; RFC 9110 §7.2, §7.6, §7.8, §10.1.1).
func (r *Request) decide(fi *fieldInfo) *Error {
	switch {
	case fi.hosts > 1:
		return errAt(StatusBadRequest, "more than one Host field", fi.hostOff, false)
	case fi.hosts == 0 && r.Minor == 1:
		return errAt(StatusBadRequest, "HTTP/1.1 request without Host", r.HeadLen, false)
	case fi.hosts == 1:
		if why := checkAuthority(fi.host, false); why != "" {
			return errAt(StatusBadRequest, why+" (Host field)", fi.hostOff, false)
		}
		r.Host = fi.host
		if r.Form == FormOrigin || r.Form == FormAsterisk {
			r.Authority = fi.host
		}
	}

	if fi.cls > 1 {
		return errAt(StatusBadRequest, "more than one Content-Length field", fi.clOff, false)
	}
	if fi.clBad {
		return errAt(StatusBadRequest, "invalid Content-Length", fi.clOff, false)
	}
	if fi.te.lines > 0 {
		t := &fi.te
		switch {
		case r.Minor == 0:
			return errAt(StatusBadRequest, "Transfer-Encoding in an HTTP/1.0 request", t.off, false)
		case fi.cls > 0:
			return errAt(StatusBadRequest, "both Transfer-Encoding and Content-Length", t.off, false)
		case t.lines > 1:
			// RFC 9110 §5.3 lets a recipient combine the lines into one
			// list; no client splits its transfer codings, smuggling probes
			// do, and another hop might read only one line: refused.
			return errAt(StatusBadRequest, "more than one Transfer-Encoding field", t.off, false)
		case t.bad:
			return errAt(StatusBadRequest, "malformed Transfer-Encoding", t.off, false)
		case t.codings == 0:
			return errAt(StatusBadRequest, "empty Transfer-Encoding", t.off, false)
		case !t.lastChunked:
			return errAt(StatusBadRequest, "final transfer coding is not chunked", t.off, false)
		case t.chunked > 1:
			return errAt(StatusBadRequest, "chunked applied more than once", t.off, false)
		case t.other:
			return errAt(StatusNotImplemented, "unsupported transfer coding", t.off, false)
		}
		r.Body = BodyChunked
	} else if fi.cls == 1 {
		r.Body, r.ContentLength = BodyLength, fi.cl
	}
	if r.Body != BodyNone && string(r.Method) == "CONNECT" {
		return errAt(StatusBadRequest, "CONNECT request with content", r.HeadLen, false)
	}

	if fi.expectOther && r.Minor == 1 {
		return errAt(StatusExpectationFailed, "unsupported expectation", fi.expectOff, false)
	}
	r.Expect100 = fi.expect100 && r.Minor == 1
	r.TETrailers = fi.teTrailers && r.Minor == 1 // an HTTP/1.0 client gets no trailers

	if fi.upgrades > 1 {
		return errAt(StatusBadRequest, "more than one Upgrade field", fi.upgradeOff, false)
	}
	if fi.upgrades == 1 && fi.upgradeOpt && r.Minor == 1 {
		if !validUpgrade(fi.upgrade) {
			return errAt(StatusBadRequest, "malformed Upgrade", fi.upgradeOff, false)
		}
		r.Upgrade, r.UpgradeProto = true, fi.upgrade
	}
	r.KeepAlive = !fi.close && (r.Minor == 1 || fi.keepAlive)
	return nil
}
