package http1

import "bytes"

// Response is a parsed response head. Every []byte field aliases the buffer
// given to ParseResponse: the Response is valid only while that buffer is
// unchanged. A Response is reused across ParseResponse calls (Fields keeps
// its backing array) and is not safe for concurrent use.
type Response struct {
	Minor  int    // HTTP minor version: 0 or 1
	Status int    // 100 to 599
	Reason []byte // reason-phrase, possibly empty

	// Fields holds every field line, in order. ParseResponse appends into
	// Fields[:0]; when its capacity is zero it first allocates room for
	// Limits.MaxFields entries, at most DefaultMaxFields, once.
	Fields []Field

	Body BodyKind // how the body is delimited, given the request method

	// ContentLength is the Content-Length value when one is present and
	// meaningful: the body length with BodyLength, the representation length
	// in a response to HEAD or a 304; else -1.
	ContentLength int64

	KeepAlive    bool   // the backend lets the connection persist (never with BodyClose or BodyTunnel)
	Upgrade      bool   // 101 Switching Protocols: the connection now speaks UpgradeProto
	UpgradeProto []byte // with Upgrade: the Upgrade field value
	HeadLen      int    // bytes of input the head took, final CRLF included

	conn connTokens
}

// Detach forgets what of r aliases its input (the reason phrase, the
// fields, the upgrade protocol and the connection tokens), keeping the
// status and the body's framing, so that the input buffer may be reused or
// freed while r is still consulted. The field array is kept, emptied.
func (r *Response) Detach() {
	clear(r.Fields[:cap(r.Fields)])
	r.Fields = r.Fields[:0]
	r.Reason, r.UpgradeProto = nil, nil
	clear(r.conn.tok[:])
	r.conn.n = 0
}

// ConnectionTokens returns the connection options of the response, in order,
// aliasing the input; the slice is owned by r.
func (r *Response) ConnectionTokens() [][]byte { return r.conn.tok[:r.conn.n] }

// Get returns the value of the first field named name (ASCII
// case-insensitive) and whether there is one.
func (r *Response) Get(name string) ([]byte, bool) { return Lookup(r.Fields, name) }

// ParseResponse parses the response head at the start of buf into r, for a
// request whose method was method (framing depends on HEAD and CONNECT).
// buf must hold the complete head (see HeadScanner); bytes after it are
// ignored and r.HeadLen tells where the body starts. Every error is an
// *Error with Status 502; r must not be used then. Allocation as for
// ParseRequest.
func ParseResponse(r *Response, buf []byte, method []byte, lim *Limits) error {
	if e := parseResponse(r, buf, method, lim); e != nil {
		return e
	}
	return nil
}

func parseResponse(r *Response, buf []byte, method []byte, lim *Limits) *Error {
	fields := r.Fields[:0]
	if cap(fields) == 0 {
		fields = make([]Field, 0, lim.fieldsCap())
	}
	*r = Response{Fields: fields, ContentLength: -1}

	nl := bytes.IndexByte(buf, '\n')
	if nl < 0 {
		if len(buf) > lim.startLine() {
			return errAt(StatusBadGateway, "status-line too long", 0, true)
		}
		return errAt(StatusBadGateway, "incomplete head", len(buf), true)
	}
	if nl+1 > lim.startLine() {
		return errAt(StatusBadGateway, "status-line too long", 0, true)
	}
	if nl == 0 || buf[nl-1] != '\r' {
		return errAt(StatusBadGateway, "bare LF", nl, true)
	}
	if err := r.parseStatusLine(buf[:nl-1]); err != nil {
		return err
	}
	var fi fieldInfo
	n, err := parseFields(buf, nl+1, lim, true, &r.Fields, &fi, &r.conn)
	if err != nil {
		return err
	}
	r.HeadLen = n
	return r.decide(&fi, method)
}

// parseStatusLine parses HTTP-version SP status-code SP [ reason-phrase ].
// The only leniency, which RFC 9112 §4 allows (recipients MAY parse on
// whitespace boundaries), is a status-line that ends right after the code,
// without the SP that should precede an empty reason.
func (r *Response) parseStatusLine(line []byte) *Error {
	if len(line) < 12 || line[8] != ' ' {
		return errAt(StatusBadGateway, "malformed status-line", 0, true)
	}
	minor, status := parseVersion(line[:8])
	if status != 0 {
		return errAt(StatusBadGateway, "malformed or unsupported HTTP-version", 0, true)
	}
	code := 0
	for _, c := range line[9:12] {
		if c < '0' || c > '9' {
			return errAt(StatusBadGateway, "malformed status-code", 9, true)
		}
		code = code*10 + int(c-'0')
	}
	if code < 100 || code > 599 {
		return errAt(StatusBadGateway, "status-code outside 100-599", 9, true)
	}
	r.Minor, r.Status = minor, code
	if len(line) == 12 {
		return nil
	}
	if line[12] != ' ' {
		return errAt(StatusBadGateway, "malformed status-line", 12, true)
	}
	reason := line[13:len(line):len(line)]
	if i := badValueByte(reason); i >= 0 {
		return errAt(StatusBadGateway, "invalid byte in reason-phrase", 13+i, true)
	}
	r.Reason = reason
	return nil
}

// decide derives framing and connection handling (RFC 9112 §6.3, §9.3).
// Framing fields are checked in every response, even where §6.3 then ignores
// them: a backend that sends contradictory framing is not trusted.
func (r *Response) decide(fi *fieldInfo, method []byte) *Error {
	if fi.clBad {
		return errAt(StatusBadGateway, "invalid Content-Length", fi.clOff, true)
	}
	if fi.clDiff {
		return errAt(StatusBadGateway, "differing Content-Length values", fi.clOff, true)
	}
	if t := &fi.te; t.lines > 0 {
		switch {
		case r.Minor == 0:
			// RFC 9112 §6.1: the framing of such a message is faulty.
			return errAt(StatusBadGateway, "Transfer-Encoding in an HTTP/1.0 response", t.off, true)
		case fi.cls > 0:
			return errAt(StatusBadGateway, "both Transfer-Encoding and Content-Length", t.off, true)
		case t.lines > 1:
			return errAt(StatusBadGateway, "more than one Transfer-Encoding field", t.off, true)
		case t.bad || t.codings == 0:
			return errAt(StatusBadGateway, "malformed Transfer-Encoding", t.off, true)
		case !t.lastChunked || t.chunked > 1 || t.other:
			// RFC 9112 §6.3 would read such a body until close; we forward
			// only chunked framing.
			return errAt(StatusBadGateway, "transfer coding other than a single chunked", t.off, true)
		}
	}
	if fi.upgrades > 1 {
		return errAt(StatusBadGateway, "more than one Upgrade field", fi.upgradeOff, true)
	}

	connect := string(method) == "CONNECT"
	switch {
	case r.Status == 101:
		if fi.upgrades == 0 || !validUpgrade(fi.upgrade) {
			return errAt(StatusBadGateway, "101 response without a valid Upgrade", r.HeadLen, true)
		}
		r.Body, r.Upgrade, r.UpgradeProto = BodyTunnel, true, fi.upgrade
	case r.Status < 200 || r.Status == 204:
		r.Body = BodyNone
	case string(method) == "HEAD" || r.Status == 304:
		r.Body = BodyNone
		if fi.cls > 0 {
			r.ContentLength = fi.cl
		}
	case connect && r.Status < 300:
		r.Body = BodyTunnel
	case fi.te.lines > 0:
		r.Body = BodyChunked
	case fi.cls > 0:
		r.Body, r.ContentLength = BodyLength, fi.cl
	default:
		r.Body = BodyClose
	}
	r.KeepAlive = !fi.close && (r.Minor == 1 || fi.keepAlive) &&
		r.Body != BodyClose && r.Body != BodyTunnel
	return nil
}
