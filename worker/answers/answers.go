// Package answers renders the HTTP responses the proxy writes itself (400, 404,
// 502, 503, 504…): short built-in defaults, or operator templates (upstream's answers / answer_NNN).
//
// A template is either a whole response, like upstream's answer files:
//
//	HTTP/1.1 503 Service Unavailable
//	Cache-Control: no-cache
//
//	<h1>Down for maintenance</h1> request %REQUEST_ID
//
// or, when it does not start with "HTTP/", a body that gets the default
// status line and "Content-Type: text/html; charset=utf-8". Its status is
// that of a final response with a body: not 1xx, 204 or 304. Lines may end
// in LF or CRLF. The variables %REQUEST_ID, %CLUSTER_ID, %BACKEND_ID, in
// redirections %REDIRECT_LOCATION, in 401 answers %WWW_AUTHENTICATE and in
// 429 answers %RETRY_AFTER are replaced, in the head and the body. The redirect location is the
// only value that derives from what the client sent (its Host and path):
// it is stripped of control bytes in the head and HTML-escaped in the body
// (as is the challenge), so that it cannot add a field nor inject markup;
// nothing else the client sent is ever substituted.
// The proxy always sets Content-Length, "Connection: close" and the request
// id field itself: a template's own framing, Connection and id fields are
// dropped. A redirection whose template has no Location field gets one; a
// 401 answer with a challenge whose template has no WWW-Authenticate field
// gets one. A "WWW-Authenticate: %WWW_AUTHENTICATE" line is left out when
// there is no challenge (upstream's elided header); likewise a 429 answer
// with a delay gets a Retry-After field, and "Retry-After: %RETRY_AFTER"
// is left out without one.
package answers

import (
	"fmt"
	"maps"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/sozu-go/sozu/worker/http1"
)

// Vars are the values substituted into an answer.
type Vars struct {
	RequestID []byte // the request ULID; may be empty
	IDHeader  string // name of the request id field ("Sozu-Id"); "" for none
	ClusterID string
	BackendID string
	Head      bool // answering a HEAD request: the body is left out (Content-Length kept)
	// Location is the target of a redirection (%REDIRECT_LOCATION), nil
	// for other answers.
	Location []byte
	// WWWAuthenticate is the challenge of a 401 answer
	// (%WWW_AUTHENTICATE), e.g. `Basic realm="shop"`; nil for none.
	WWWAuthenticate []byte
	// RetryAfter is the Retry-After of a 429 answer in seconds, as text
	// (%RETRY_AFTER); nil or empty for none.
	RetryAfter []byte
	// Fields are extra field lines ("Name: value\r\n" each, already
	// clean), such as Strict-Transport-Security, added to the head.
	Fields []byte
	// Date is the Date field value (an IMF-fixdate) the answer carries,
	// as the origin server of it (RFC 9110 §6.6.1); nil for none. A
	// template's own Date line is dropped when compiled.
	Date []byte
}

type varKind uint8

const (
	literal varKind = iota
	varRequestID
	varClusterID
	varBackendID
	varLocation
	varWWWAuthenticate
	varRetryAfter
)

var varNames = [...]struct {
	name string
	kind varKind
}{
	{"%REQUEST_ID", varRequestID},
	{"%CLUSTER_ID", varClusterID},
	{"%BACKEND_ID", varBackendID},
	{"%REDIRECT_LOCATION", varLocation},
	{"%WWW_AUTHENTICATE", varWWWAuthenticate},
	{"%RETRY_AFTER", varRetryAfter},
}

type piece struct {
	lit  string
	kind varKind
}

// Template is a compiled answer, immutable and safe for concurrent use.
type Template struct {
	status   int
	head     []piece // status line and field lines, each ending in CRLF
	body     []piece
	location bool // the head has a Location field
	wwwAuth  bool // the head has a WWW-Authenticate field
	retry    bool // the head has a Retry-After field
}

// Status returns the status code the template answers with.
func (t *Template) Status() int { return t.status }

// Append renders the answer onto dst and returns the extended slice.
func (t *Template) Append(dst []byte, v *Vars) []byte {
	dst = appendPieces(dst, t.head, v, true)
	if v.Location != nil && !t.location {
		dst = append(dst, "Location: "...)
		dst = appendClean(dst, v.Location)
		dst = append(dst, "\r\n"...)
	}
	if len(v.WWWAuthenticate) > 0 && !t.wwwAuth {
		dst = append(dst, "WWW-Authenticate: "...)
		dst = appendClean(dst, v.WWWAuthenticate)
		dst = append(dst, "\r\n"...)
	}
	if len(v.RetryAfter) > 0 && !t.retry {
		dst = append(dst, "Retry-After: "...)
		dst = appendClean(dst, v.RetryAfter)
		dst = append(dst, "\r\n"...)
	}
	if len(v.Date) > 0 {
		dst = append(dst, "Date: "...)
		dst = appendClean(dst, v.Date)
		dst = append(dst, "\r\n"...)
	}
	dst = append(dst, v.Fields...)
	if v.IDHeader != "" && len(v.RequestID) > 0 {
		dst = append(dst, v.IDHeader...)
		dst = append(dst, ": "...)
		dst = appendClean(dst, v.RequestID)
		dst = append(dst, "\r\n"...)
	}
	n := 0
	for _, p := range t.body {
		if b := escaped(p, v); b != nil {
			n += escapedLen(b)
		} else {
			n += len(value(p, v))
		}
	}
	dst = append(dst, "Content-Length: "...)
	dst = strconv.AppendInt(dst, int64(n), 10)
	dst = append(dst, "\r\nConnection: close\r\n\r\n"...)
	if !v.Head {
		dst = appendPieces(dst, t.body, v, false)
	}
	return dst
}

func value(p piece, v *Vars) string {
	switch p.kind {
	case varRequestID:
		return string(v.RequestID)
	case varClusterID:
		return v.ClusterID
	case varBackendID:
		return v.BackendID
	case varLocation:
		return string(v.Location)
	case varWWWAuthenticate:
		return string(v.WWWAuthenticate)
	case varRetryAfter:
		return string(v.RetryAfter)
	}
	return p.lit
}

// escaped returns the value of p when it is HTML-escaped in a body, else nil.
func escaped(p piece, v *Vars) []byte {
	switch p.kind {
	case varLocation:
		return v.Location
	case varWWWAuthenticate:
		return v.WWWAuthenticate
	}
	return nil
}

func appendPieces(dst []byte, ps []piece, v *Vars, head bool) []byte {
	for _, p := range ps {
		switch {
		case p.kind == literal:
			dst = append(dst, p.lit...)
		case head:
			dst = appendClean(dst, value(p, v))
		case p.kind == varLocation || p.kind == varWWWAuthenticate:
			dst = appendEscaped(dst, escaped(p, v))
		default:
			dst = append(dst, value(p, v)...)
		}
	}
	return dst
}

// appendClean appends s without control bytes, so that no value can end a
// field line.
func appendClean[S ~string | ~[]byte](dst []byte, s S) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c >= 0x20 && c != 0x7f {
			dst = append(dst, c)
		}
	}
	return dst
}

// htmlEscapes are the bytes escaped in a body, and their replacements.
var htmlEscapes = [256]string{'&': "&amp;", '<': "&lt;", '>': "&gt;", '"': "&#34;", '\'': "&#39;"}

// appendEscaped appends b HTML-escaped, without control bytes.
func appendEscaped(dst, b []byte) []byte {
	for _, c := range b {
		switch {
		case htmlEscapes[c] != "":
			dst = append(dst, htmlEscapes[c]...)
		case c >= 0x20 && c != 0x7f:
			dst = append(dst, c)
		}
	}
	return dst
}

// escapedLen is len(appendEscaped(nil, b)).
func escapedLen(b []byte) int {
	n := 0
	for _, c := range b {
		switch {
		case htmlEscapes[c] != "":
			n += len(htmlEscapes[c])
		case c >= 0x20 && c != 0x7f:
			n++
		}
	}
	return n
}

// Reason returns the reason phrase of the statuses the proxy answers.
func Reason(code int) string {
	switch code {
	case 301:
		return "Moved Permanently"
	case 302:
		return "Found"
	case 308:
		return "Permanent Redirect"
	case 400:
		return "Bad Request"
	case 401:
		return "Unauthorized"
	case 404:
		return "Not Found"
	case 408:
		return "Request Timeout"
	case 413:
		return "Payload Too Large"
	case 414:
		return "URI Too Long"
	case 417:
		return "Expectation Failed"
	case 421:
		return "Misdirected Request"
	case 429:
		return "Too Many Requests"
	case 431:
		return "Request Header Fields Too Large"
	case 501:
		return "Not Implemented"
	case 502:
		return "Bad Gateway"
	case 503:
		return "Service Unavailable"
	case 504:
		return "Gateway Timeout"
	case 505:
		return "HTTP Version Not Supported"
	}
	return "Error"
}

// defaults holds the built-in answers, built once.
var defaults = map[int]*Template{}

func init() {
	for _, c := range []int{301, 302, 308, 400, 401, 404, 408, 413, 414, 417, 421, 429, 431, 501, 502, 503, 504, 505} {
		defaults[c] = builtin(c)
	}
}

func builtin(code int) *Template {
	line := strconv.Itoa(code) + " " + Reason(code)
	if code/100 == 3 { // a redirection: Append adds the Location
		return &Template{status: code, head: []piece{{lit: "HTTP/1.1 " + line + "\r\nCache-Control: no-cache\r\n"}}}
	}
	return &Template{
		status: code,
		head: []piece{{lit: "HTTP/1.1 " + line + "\r\nCache-Control: no-cache\r\n" +
			"Content-Type: text/plain; charset=utf-8\r\n"}},
		body: []piece{{lit: line + "\n"}},
	}
}

// Answered reports whether the proxy ever answers code itself (a status
// it has a built-in answer for): a custom answer for another code is
// never sent.
func Answered(code int) bool { return defaults[code] != nil }

// AnsweredCodes lists, in order, the codes Answered reports.
func AnsweredCodes() []int { return slices.Sorted(maps.Keys(defaults)) }

// perCluster holds the statuses a cluster's answers serve: those the
// proxy answers once a request was routed to a cluster (worker/proxy
// passes the cluster to its answer: https redirects and frontend
// redirections, 401, a rewrite it cannot build (400, 414), a body the
// client botches (400, 408, 413), the per-IP cap (429), the backends
// (502, 503, 504)). The others are answered before any cluster is known
// (404 no route, 421 misdirected, 417, 431, 501, 505 and most 400s, from
// the request head): a listener's answers serve them, a cluster's never.
// TestClusterAnsweredCovers ties this table to worker/proxy's calls.
var perCluster = map[int]bool{301: true, 302: true, 308: true, 400: true, 401: true, 408: true,
	413: true, 414: true, 429: true, 502: true, 503: true, 504: true}

// ClusterAnswered reports whether a cluster's answer for code is ever
// sent: code is answered, at least sometimes, with the cluster known.
func ClusterAnswered(code int) bool { return perCluster[code] }

// ClusterAnsweredCodes lists, in order, the codes ClusterAnswered reports.
func ClusterAnsweredCodes() []int { return slices.Sorted(maps.Keys(perCluster)) }

// Unsent says why a custom answer for code is never sent, or "" when it
// may be: the proxy never answers code itself (Answered), or, for a
// cluster's answers (cluster), answers it only before a request reaches a
// cluster (ClusterAnswered). The configuration check and the workers'
// settings check both report with it.
func Unsent(code int, cluster bool) string {
	switch {
	case !Answered(code):
		return fmt.Sprintf("this proxy never answers %d itself (its answers: %s)", code, codeList(AnsweredCodes()))
	case cluster && !ClusterAnswered(code):
		return fmt.Sprintf("a cluster's answer for %d is never sent: the proxy answers %d before a request reaches a cluster; "+
			"set it in the listener's answers (a cluster's answers serve %s)", code, code, codeList(ClusterAnsweredCodes()))
	}
	return ""
}

func codeList(cs []int) string {
	codes := make([]string, len(cs))
	for i, c := range cs {
		codes[i] = strconv.Itoa(c)
	}
	return strings.Join(codes, ", ")
}

// Default returns the built-in answer for code (any code: an unusual one
// gets a generic reason phrase).
func Default(code int) *Template {
	if t := defaults[code]; t != nil {
		return t
	}
	return builtin(code)
}

// Compile compiles the template src for status code. Errors name the
// offending line.
func Compile(code int, src string) (*Template, error) {
	if code < 100 || code > 599 {
		return nil, fmt.Errorf("answer %d: status code outside 100-599", code)
	}
	src = strings.ReplaceAll(src, "\r\n", "\n")
	if !strings.HasPrefix(src, "HTTP/") {
		if err := bodiless(code); err != nil {
			return nil, fmt.Errorf("answer %d: %w", code, err)
		}
		t := builtin(code)
		t.head = []piece{{lit: "HTTP/1.1 " + strconv.Itoa(code) + " " + Reason(code) +
			"\r\nCache-Control: no-cache\r\nContent-Type: text/html; charset=utf-8\r\n"}}
		t.body = split(src)
		return t, nil
	}
	headText, body, _ := strings.Cut(src, "\n\n")
	lines := strings.Split(strings.TrimSuffix(headText, "\n"), "\n")
	status, err := statusLine(lines[0])
	if err != nil {
		return nil, fmt.Errorf("answer %d: line 1: %w", code, err)
	}
	t := &Template{status: status}
	t.head = append(t.head, piece{lit: "HTTP/1.1 " + strings.TrimSpace(lines[0][len("HTTP/1.1 "):]) + "\r\n"})
	for i, l := range lines[1:] {
		name, val, ok := strings.Cut(l, ":")
		if !ok || !http1.IsToken(name) {
			return nil, fmt.Errorf("answer %d: line %d: not a field line %q", code, i+2, l)
		}
		val = strings.Trim(val, " \t")
		if strings.ContainsFunc(val, func(r rune) bool { return r != '\t' && (r < 0x20 || r == 0x7f) }) {
			return nil, fmt.Errorf("answer %d: line %d: control character in the value of %s", code, i+2, name)
		}
		switch strings.ToLower(name) {
		case "content-length", "transfer-encoding", "connection", "keep-alive", "sozu-id", "date":
			continue // the proxy writes these
		case "location":
			t.location = true
		case "www-authenticate":
			if val == "%WWW_AUTHENTICATE" {
				continue // Append adds it when there is a challenge
			}
			t.wwwAuth = true
		case "retry-after":
			if val == "%RETRY_AFTER" {
				continue // Append adds it when there is a delay
			}
			t.retry = true
		}
		t.head = append(t.head, piece{lit: name + ": "})
		t.head = append(t.head, split(val)...)
		t.head = append(t.head, piece{lit: "\r\n"})
	}
	t.body = split(body)
	return t, nil
}

func statusLine(l string) (int, error) {
	if len(l) < 12 || (l[:9] != "HTTP/1.1 " && l[:9] != "HTTP/1.0 ") {
		return 0, fmt.Errorf("status line %q is not \"HTTP/1.1 NNN reason\"", l)
	}
	code, err := strconv.Atoi(l[9:12])
	if err != nil || code < 100 || code > 599 || (len(l) > 12 && l[12] != ' ') {
		return 0, fmt.Errorf("status line %q has no status code in 100-599", l)
	}
	if err := bodiless(code); err != nil {
		return 0, err
	}
	if strings.ContainsFunc(l, func(r rune) bool { return r != '\t' && (r < 0x20 || r == 0x7f) }) {
		return 0, fmt.Errorf("control character in the status line")
	}
	return code, nil
}

// bodiless refuses the statuses an answer cannot have: every answer is a
// final response framed by its Content-Length, followed by its body, and
// the connection closed. A 1xx is an interim response, never the final
// one (RFC 9110 §15.2; a 101 without Upgrade is invalid, §15.2.2); a 204
// or a 304 ends at its head (RFC 9112 §6.3), a 204 with no Content-Length
// at all (RFC 9110 §8.6): the client would read the answer's body as the
// start of another response.
func bodiless(code int) error {
	if code < 200 || code == 204 || code == 304 {
		return fmt.Errorf("status %d: an answer is a final response with a body (not 1xx, 204 or 304)", code)
	}
	return nil
}

// split cuts s into literals and variables.
func split(s string) []piece {
	var out []piece
	for s != "" {
		i := strings.IndexByte(s, '%')
		if i < 0 {
			out = append(out, piece{lit: s})
			break
		}
		matched := false
		for _, vn := range varNames {
			if strings.HasPrefix(s[i:], vn.name) {
				if i > 0 {
					out = append(out, piece{lit: s[:i]})
				}
				out = append(out, piece{kind: vn.kind})
				s = s[i+len(vn.name):]
				matched = true
				break
			}
		}
		if !matched {
			out = append(out, piece{lit: s[:i+1]})
			s = s[i+1:]
		}
	}
	return out
}

// Set is the custom answers of a listener or a cluster, by status code.
// Immutable; a nil *Set has no answers.
type Set struct {
	byCode map[int]*Template
}

// KeyError is an entry of an answers map that NewSet left out.
type KeyError struct {
	Key string // the entry's key, as in the map
	Err error
}

func (e *KeyError) Error() string { return e.Err.Error() }

// Unwrap returns the cause.
func (e *KeyError) Unwrap() error { return e.Err }

// NewSet compiles the templates of m (keys are status codes, as in the
// configuration; empty values are skipped). Bad entries are left out and
// reported as *KeyError, sorted by key; the others are kept.
func NewSet(m map[string]string) (*Set, []error) {
	s := &Set{byCode: map[int]*Template{}}
	var errs []error
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if m[k] == "" {
			continue
		}
		code, err := strconv.Atoi(k)
		if err != nil {
			errs = append(errs, &KeyError{Key: k, Err: fmt.Errorf("answer %q: the key is not a status code", k)})
			continue
		}
		t, err := Compile(code, m[k])
		if err != nil {
			errs = append(errs, &KeyError{Key: k, Err: err})
			continue
		}
		s.byCode[code] = t
	}
	return s, errs
}

// Lookup returns the template for code, or nil.
func (s *Set) Lookup(code int) *Template {
	if s == nil {
		return nil
	}
	return s.byCode[code]
}

// Len returns the number of templates.
func (s *Set) Len() int {
	if s == nil {
		return 0
	}
	return len(s.byCode)
}
