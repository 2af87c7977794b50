package proxy

import (
	"bytes"

	"github.com/sozu-go/sozu/worker/http1"
)

// Names of the fields the proxy writes itself.
var (
	nameXFF     = []byte("X-Forwarded-For")
	nameXFProto = []byte("X-Forwarded-Proto")
	nameXFPort  = []byte("X-Forwarded-Port")
	nameFwd     = []byte("Forwarded")
	nameXRealIP = []byte("X-Real-IP")
	nameXReqID  = []byte("X-Request-Id")
	nameHost    = []byte("Host")
	nameConn    = []byte("Connection")
	valueHTTP   = []byte("http")
	valueHTTPS  = []byte("https")
	valueKA     = []byte("keep-alive")
)

// equalFold compares b with the lower-case ASCII s, ignoring ASCII case.
func equalFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := 0; i < len(b); i++ {
		c := b[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != s[i] {
			return false
		}
	}
	return true
}

// equalFoldBytes compares a and b ignoring ASCII case.
func equalFoldBytes(a, b []byte) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		c, d := a[i], b[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if 'A' <= d && d <= 'Z' {
			d += 'a' - 'A'
		}
		if c != d {
			return false
		}
	}
	return true
}

// Field kinds the proxy treats specially in requests.
const (
	fieldOther = iota
	fieldXFF
	fieldXFProto
	fieldXFPort
	fieldFwd
	fieldXRealIP
	fieldXReqID
	fieldID
	fieldStrip // a forwarding field the proxy is the authority for; never forwarded from the client
)

// strippedFields are the request fields, besides X-Real-IP, that claim what
// only the proxy knows (the client's address, the scheme, the host it
// reached) and that the proxy does not write itself: a client's are
// dropped, so that no backend can be told a spoofed value. X-Forwarded-For
// and Forwarded are extended instead (their last element is this hop's),
// X-Forwarded-Proto and X-Forwarded-Port replaced, X-Forwarded-Host
// written on a host rewrite.
var strippedFields = [...]string{
	"x-forwarded-host", "x-forwarded-server", "x-forwarded-scheme", "x-forwarded-protocol",
	"x-forwarded-ssl", "front-end-https", "x-url-scheme",
	"x-client-ip", "true-client-ip", "x-cluster-client-ip",
}

func classify(name []byte, cfg *Listener) int {
	switch len(name) {
	case 9:
		if equalFold(name, "forwarded") {
			return fieldFwd
		}
		if equalFold(name, "x-real-ip") {
			return fieldXRealIP
		}
	case 12:
		if equalFold(name, "x-request-id") {
			return fieldXReqID
		}
	case 15:
		if equalFold(name, "x-forwarded-for") {
			return fieldXFF
		}
	case 16:
		if equalFold(name, "x-forwarded-port") {
			return fieldXFPort
		}
	case 17:
		if equalFold(name, "x-forwarded-proto") {
			return fieldXFProto
		}
	}
	if equalFoldBytes(name, cfg.idHeader) {
		return fieldID
	}
	if len(name) >= 11 && len(name) <= 20 && (name[0]|0x20 == 'x' || name[0]|0x20 == 'f' || name[0]|0x20 == 't') {
		for _, n := range strippedFields {
			if equalFold(name, n) {
				return fieldStrip
			}
		}
	}
	if underscoreSpelling(name, cfg) {
		return fieldStrip
	}
	return fieldOther
}

// underscoreSpelling reports whether name, which classify found no field
// of, is one of the forwarding fields (or the request id field) spelt with
// '_' for '-' (X_Real_IP, X_Forwarded_Host): CGI, WSGI and the frameworks
// on them read both spellings as the same HTTP_X_REAL_IP variable, so a
// client's X_Real_IP would reach such a backend as the X-Real-IP the
// proxy dropped. Such a field is dropped like the one it stands for.
func underscoreSpelling(name []byte, cfg *Listener) bool {
	if len(name) > 64 || !bytes.ContainsRune(name, '_') {
		return false
	}
	var buf [64]byte
	n := buf[:len(name)]
	for i, c := range name {
		if c == '_' {
			c = '-'
		}
		n[i] = c
	}
	return classify(n, cfg) != fieldOther
}

// protected reports whether a Connection option naming this field must be
// refused: dropping it as hop-by-hop would strip framing, routing,
// credentials or the forwarding fields the backend relies on.
func protected(name []byte, cfg *Listener) bool {
	switch {
	case equalFold(name, "host"), equalFold(name, "authorization"), equalFold(name, "proxy-authorization"),
		equalFold(name, "content-length"), equalFold(name, "transfer-encoding"), equalFold(name, "x-forwarded-host"):
		return true
	}
	// The fields the proxy drops anyway are not protected, but for
	// X-Forwarded-Host (named above).
	c := classify(name, cfg)
	return c != fieldOther && c != fieldStrip
}

// refuse returns the status answering a request the proxy does not
// forward, or 0: CONNECT (501: a reverse proxy opens no tunnels to
// arbitrary hosts), and a Connection option naming a protected field (400).
func refuse(req *http1.Request, cfg *Listener) int {
	if string(req.Method) == "CONNECT" {
		return http1.StatusNotImplemented
	}
	for _, tok := range req.ConnectionTokens() {
		if protected(tok, cfg) {
			return http1.StatusBadRequest
		}
	}
	return 0
}

// ambiguousPath reports whether the path of a request-target (up to '?')
// could be read differently by the router and by a backend: it has a
// dot-segment ("." or ".." as a whole segment), or a percent-encoded
// unreserved character (RFC 3986 §2.3: ALPHA, DIGIT, "-", ".", "_", "~",
// equivalent to the raw character), with which "/%61dmin" or "/x/../admin"
// would slip past a rule on "/admin". Browsers and curl never send either.
func ambiguousPath(p []byte) bool {
	for i := 0; i < len(p) && p[i] != '?'; i++ {
		switch p[i] {
		case '%':
			if i+2 < len(p) && unreserved(unhex(p[i+1])<<4|unhex(p[i+2])) {
				return true
			}
		case '.':
			if i == 0 || p[i-1] != '/' {
				continue
			}
			j := i + 1
			if j < len(p) && p[j] == '.' {
				j++
			}
			if j == len(p) || p[j] == '/' || p[j] == '?' {
				return true
			}
		}
	}
	return false
}

func unhex(c byte) byte {
	switch {
	case '0' <= c && c <= '9':
		return c - '0'
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10
	}
	return 0
}

func unreserved(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
		c == '-' || c == '.' || c == '_' || c == '~'
}

// hasToken reports whether the comma-separated list v names tok (lower
// case), ignoring ASCII case, optional whitespace and a "/version".
func hasToken(v []byte, tok string) bool {
	for len(v) > 0 {
		i := 0
		for i < len(v) && v[i] != ',' {
			i++
		}
		el := v[:i]
		for len(el) > 0 && (el[0] == ' ' || el[0] == '\t') {
			el = el[1:]
		}
		for j := range el {
			if el[j] == '/' || el[j] == ' ' || el[j] == '\t' {
				el = el[:j]
				break
			}
		}
		if equalFold(el, tok) {
			return true
		}
		if i == len(v) {
			break
		}
		v = v[i+1:]
	}
	return false
}

// upgradeAsked reports whether every protocol of switched, the Upgrade
// list of a 101, is one the request's Upgrade list, asked, names (RFC 9110
// §7.8: a server MUST NOT switch to a protocol the client did not
// indicate): names compared without case, and versions when both give
// one. Both lists were checked by the parser (tokens, at least one).
func upgradeAsked(switched, asked []byte) bool {
	for i := 0; i < len(switched); {
		var p []byte
		p, i, _ = http1.NextElem(switched, i)
		if len(p) == 0 {
			continue
		}
		name, ver, _ := bytes.Cut(p, []byte("/"))
		found := false
		for j := 0; j < len(asked) && !found; {
			var q []byte
			q, j, _ = http1.NextElem(asked, j)
			qname, qver, _ := bytes.Cut(q, []byte("/"))
			found = equalFoldBytes(name, qname) && (len(ver) == 0 || len(qver) == 0 || equalFoldBytes(ver, qver))
		}
		if !found {
			return false
		}
	}
	return true
}

// appendRequestHead appends the head forwarded to the backend: the
// canonical head of req (http1.AppendRequest), without the client's
// X-Forwarded-Proto, X-Forwarded-Port, request id field, X-Real-IP and
// strippedFields, with X-Forwarded-For and Forwarded extended by this hop,
// X-Forwarded-Proto and X-Forwarded-Port set, X-Real-IP set when the
// listener sends it, X-Request-Id added when absent, and the request id.
// req.Fields is filtered in place.
func (s *session) appendRequestHead(dst []byte, cfg *Listener, req *http1.Request) []byte {
	sc := s.scratch[:0]
	xffStart, fwdStart := -1, -1
	hasReqID, hasFwd := false, false
	fs := req.Fields
	k := 0
	// Pass 1: drop what we rewrite and gather X-Forwarded-For values.
	for i := range fs {
		switch classify(fs[i].Name, cfg) {
		case fieldXFF:
			if xffStart < 0 {
				xffStart = len(sc)
			} else {
				sc = append(sc, ", "...)
			}
			sc = append(sc, fs[i].Value...)
			continue
		case fieldFwd:
			hasFwd = true // gathered in pass 2, after X-Forwarded-For

		case fieldXFProto, fieldXFPort, fieldID, fieldXRealIP, fieldStrip:
			continue
		case fieldXReqID:
			hasReqID = true
		}
		fs[k] = fs[i]
		k++
	}
	if xffStart < 0 {
		xffStart = len(sc)
	} else {
		sc = append(sc, ", "...)
	}
	sc = append(sc, s.peerIP...)
	xffEnd := len(sc)
	// Pass 2: gather and drop Forwarded values.
	if hasFwd {
		j := 0
		for i := 0; i < k; i++ {
			if classify(fs[i].Name, cfg) == fieldFwd {
				if fwdStart < 0 {
					fwdStart = len(sc)
				} else {
					sc = append(sc, ", "...)
				}
				sc = append(sc, fs[i].Value...)
				continue
			}
			fs[j] = fs[i]
			j++
		}
		k = j
	}
	if fwdStart < 0 {
		fwdStart = len(sc)
	} else {
		sc = append(sc, ", "...)
	}
	if cfg.TLS != nil {
		sc = append(sc, "proto=https;for="...)
	} else {
		sc = append(sc, "proto=http;for="...)
	}
	sc = append(sc, s.peerNode...)
	sc = append(sc, ";by="...)
	sc = append(sc, cfg.byNode...)
	fwdEnd := len(sc)
	req.Fields = fs[:k]
	s.scratch = sc

	proto := valueHTTP
	if cfg.TLS != nil {
		proto = valueHTTPS
	}
	ex := s.st.extra[:0]
	ex = append(ex,
		http1.Field{Name: nameXFProto, Value: proto},
		http1.Field{Name: nameXFF, Value: sc[xffStart:xffEnd]},
		http1.Field{Name: nameXFPort, Value: cfg.xfPort},
		http1.Field{Name: nameFwd, Value: sc[fwdStart:fwdEnd]})
	if cfg.SendXRealIP {
		ex = append(ex, http1.Field{Name: nameXRealIP, Value: s.peerIP})
	}
	if !hasReqID {
		ex = append(ex, http1.Field{Name: nameXReqID, Value: s.id[:]})
	}
	ex = append(ex, http1.Field{Name: cfg.idHeader, Value: s.id[:]})
	if len(req.Authority) == 0 {
		// HTTP/1.0 without Host: name the authority the client reached.
		ex = append(ex, http1.Field{Name: nameHost, Value: cfg.hostValue})
	}
	return http1.AppendRequest(dst, req, ex...)
}

// What maxForwards found.
const (
	mfForward = iota // forward the request (its Max-Forwards, if any, decremented)
	mfFinal          // Max-Forwards is 0: the proxy is the final recipient
	mfBad            // a malformed or repeated Max-Forwards field
)

// optionsAnswer answers an OPTIONS request whose Max-Forwards is 0.
var optionsAnswer = mustCompile(200, "HTTP/1.1 200 OK\r\nCache-Control: no-cache\r\n\r\n")

// maxForwards applies Max-Forwards = 1*DIGIT (RFC 9110 §7.6.2), which an
// intermediary must check and update on TRACE and OPTIONS requests: 0
// means the request must not be forwarded, any other value is forwarded
// decremented by one, written in place (leading zeros dropped) over the
// value, which aliases the request's buffer. On other methods the field
// is forwarded as it is, as the RFC allows. It does not allocate.
func maxForwards(req *http1.Request) int {
	if m := req.Method; string(m) != "OPTIONS" && string(m) != "TRACE" {
		return mfForward
	}
	at := -1
	for i := range req.Fields {
		if len(req.Fields[i].Name) == len("max-forwards") && equalFold(req.Fields[i].Name, "max-forwards") {
			if at >= 0 {
				return mfBad // another hop might read the other one
			}
			at = i
		}
	}
	if at < 0 {
		return mfForward
	}
	v := req.Fields[at].Value
	if len(v) == 0 {
		return mfBad
	}
	zero := true
	for _, c := range v {
		if c < '0' || c > '9' {
			return mfBad
		}
		zero = zero && c == '0'
	}
	if zero {
		return mfFinal
	}
	for i := len(v) - 1; ; i-- { // v > 0: the borrow stops at a non-zero digit
		if v[i] != '0' {
			v[i]--
			break
		}
		v[i] = '9'
	}
	for len(v) > 1 && v[0] == '0' {
		v = v[1:]
	}
	req.Fields[at].Value = v
	return mfForward
}

// dropIDField removes the backend's own request id fields from a response.
func dropIDField(resp *http1.Response, cfg *Listener) {
	fs := resp.Fields
	k := 0
	for i := range fs {
		if equalFoldBytes(fs[i].Name, cfg.idHeader) {
			continue
		}
		fs[k] = fs[i]
		k++
	}
	resp.Fields = fs[:k]
}
