// Package router maps a request's host, path and method to a route: an
// immutable table per listener, built once per configuration change and read without locks.
package router

import (
	"bytes"
	"fmt"
	"regexp"
	"sort"
	"strings"
)

// PathKind is how a rule's path is compared with the request path.
type PathKind uint8

// Path rule kinds, in the order a lookup tries them: an EQUALS match wins
// over a REGEX match, which wins over the longest PREFIX match.
const (
	Prefix PathKind = iota // the request path starts with Rule.Path
	Regex                  // Rule.Path (RE2 syntax, unanchored) matches the request path
	Equals                 // the request path is Rule.Path
)

// Position is where a rule is evaluated (upstream's RulePosition).
type Position uint8

// Rule positions: PRE rules are tried in order before the hostname table,
// POST rules in order after it.
const (
	Tree Position = iota
	Pre
	Post
)

// Rule is one frontend as the router sees it.
type Rule struct {
	// Hostname is "example.com" (exact), "*.example.com" (exactly one more
	// label) or "*" (any host, including none). Compared without case.
	Hostname string
	Kind     PathKind
	Path     string
	Method   string // "" matches every method; else compared exactly
	Position Position
	Route    Route
}

// Route is what a lookup returns. A deny route (upstream: a frontend
// without cluster_id) carries no cluster: the proxy answers it like a
// missing route (404), so a scan cannot tell a denied path from an absent one.
type Route struct {
	ClusterID string
	Deny      bool
	Key       string // an identifier of the frontend, for logs
	// Policy is the caller's own per-frontend data (the proxy's
	// *proxy.Frontend), nil for a frontend that only forwards. The router
	// stores it and never looks inside.
	Policy any

	capture captureSpec // set by Build, for Capture
}

// Table is an immutable routing table. Lookup is safe for concurrent use and
// does not allocate.
type Table struct {
	pre, post []hostRule
	exact     map[string]*pathSet // lower-case hostname
	wild      map[string]*pathSet // "*.example.com" stored as "example.com"
	any       *pathSet            // "*"
}

type hostRule struct {
	host hostMatch
	path pathRule
}

type hostMatch struct {
	kind   uint8 // 0 exact, 1 wildcard, 2 any
	name   string
	suffix string
}

const (
	hostExact uint8 = iota
	hostWild
	hostAny
)

type pathRule struct {
	kind   PathKind
	path   string
	re     *regexp.Regexp
	method string
	route  *Route
}

// pathSet holds the rules of one hostname, ready for lookup.
type pathSet struct {
	equals map[string][]pathRule // method-specific rules first
	regex  []pathRule            // in build order, method-specific first
	prefix []pathRule            // longest first; for equal paths method-specific first
}

// Build compiles rules into a table. It fails on the first invalid rule
// (empty hostname, a misplaced '*', a regex that does not compile, a path
// that does not start with '/' for PREFIX and EQUALS, except the empty
// prefix), naming it by index and hostname.
func Build(rules []Rule) (*Table, error) {
	t := &Table{exact: map[string]*pathSet{}, wild: map[string]*pathSet{}}
	for i := range rules {
		r := &rules[i]
		hm, err := parseHost(r.Hostname)
		if err != nil {
			return nil, fmt.Errorf("router: rule %d (%q %q): %w", i, r.Hostname, r.Path, err)
		}
		pr, err := compilePath(r)
		if err != nil {
			return nil, fmt.Errorf("router: rule %d (%q %q): %w", i, r.Hostname, r.Path, err)
		}
		pr.route.capture = captureSpec{wild: hm.kind == hostWild, kind: r.Kind, prefix: len(r.Path), re: pr.re}
		switch r.Position {
		case Pre:
			t.pre = append(t.pre, hostRule{hm, pr})
			continue
		case Post:
			t.post = append(t.post, hostRule{hm, pr})
			continue
		}
		var ps *pathSet
		switch hm.kind {
		case hostExact:
			ps = t.exact[hm.name]
			if ps == nil {
				ps = &pathSet{}
				t.exact[hm.name] = ps
			}
		case hostWild:
			ps = t.wild[hm.suffix]
			if ps == nil {
				ps = &pathSet{}
				t.wild[hm.suffix] = ps
			}
		default:
			if t.any == nil {
				t.any = &pathSet{}
			}
			ps = t.any
		}
		ps.add(pr)
	}
	for _, ps := range t.exact {
		ps.sort()
	}
	for _, ps := range t.wild {
		ps.sort()
	}
	if t.any != nil {
		t.any.sort()
	}
	return t, nil
}

// CheckRule reports why Build would refuse r: field names the part at
// fault as the configuration does ("hostname" or "path"), err says why.
// It returns "", nil for a rule Build takes.
func CheckRule(r *Rule) (field string, err error) {
	if _, err := parseHost(r.Hostname); err != nil {
		return "hostname", err
	}
	if _, err := compilePath(r); err != nil {
		return "path", err
	}
	return "", nil
}

func parseHost(h string) (hostMatch, error) {
	h = strings.ToLower(h)
	if h != "*." {
		h = strings.TrimSuffix(h, ".")
	}
	switch {
	case h == "":
		return hostMatch{}, fmt.Errorf("empty hostname")
	case h == "*":
		return hostMatch{kind: hostAny}, nil
	case strings.HasPrefix(h, "*."):
		s := h[2:]
		if s == "" || strings.Contains(s, "*") {
			return hostMatch{}, fmt.Errorf("a wildcard hostname is \"*.\" followed by a name without '*'")
		}
		return hostMatch{kind: hostWild, suffix: s}, nil
	case strings.Contains(h, "*"):
		return hostMatch{}, fmt.Errorf("'*' is allowed only as \"*\" or as the whole first label")
	}
	return hostMatch{kind: hostExact, name: h}, nil
}

func compilePath(r *Rule) (pathRule, error) {
	pr := pathRule{kind: r.Kind, path: r.Path, method: r.Method, route: &Route{}}
	*pr.route = r.Route
	switch r.Kind {
	case Regex:
		re, err := regexp.Compile(r.Path)
		if err != nil {
			return pr, fmt.Errorf("path regex: %w", err)
		}
		pr.re = re
	case Equals:
		if !strings.HasPrefix(r.Path, "/") {
			return pr, fmt.Errorf("an EQUALS path starts with '/'")
		}
	case Prefix:
		if r.Path != "" && !strings.HasPrefix(r.Path, "/") {
			return pr, fmt.Errorf("a PREFIX path is empty or starts with '/'")
		}
	default:
		return pr, fmt.Errorf("unknown path rule kind %d", r.Kind)
	}
	return pr, nil
}

func (ps *pathSet) add(pr pathRule) {
	switch pr.kind {
	case Equals:
		if ps.equals == nil {
			ps.equals = map[string][]pathRule{}
		}
		ps.equals[pr.path] = append(ps.equals[pr.path], pr)
	case Regex:
		ps.regex = append(ps.regex, pr)
	default:
		ps.prefix = append(ps.prefix, pr)
	}
}

func (ps *pathSet) sort() {
	methodFirst := func(l []pathRule) {
		sort.SliceStable(l, func(i, j int) bool { return l[i].method != "" && l[j].method == "" })
	}
	for _, l := range ps.equals {
		methodFirst(l)
	}
	methodFirst(ps.regex)
	sort.SliceStable(ps.prefix, func(i, j int) bool {
		a, b := ps.prefix[i], ps.prefix[j]
		if len(a.path) != len(b.path) {
			return len(a.path) > len(b.path)
		}
		return a.method != "" && b.method == ""
	})
}

// maxHost bounds the hostname a lookup considers; a longer one matches only
// "*" rules.
const maxHost = 255

// Lookup returns the route for a request, or nil when no rule matches.
// host is the request's authority (Host field or absolute-form target):
// its port is ignored, as are ASCII case and one trailing dot; it may be
// empty (HTTP/1.0 without Host), which only "*" rules match. path is the
// request-target's path (a query, from '?', is ignored). method is compared
// exactly. Order: PRE rules, then the exact hostname, then its one-label
// wildcard, then "*", then POST rules; within a hostname EQUALS, then
// REGEX, then the longest PREFIX, a rule naming the method before one
// without. A hostname whose rules do not match the path falls through to
// the less specific hostnames. The returned Route belongs to the table.
func (t *Table) Lookup(host, path, method []byte) *Route {
	var buf [maxHost]byte
	h, ok := normalizeHost(&buf, host)
	if q := bytes.IndexByte(path, '?'); q >= 0 {
		path = path[:q]
	}
	for i := range t.pre {
		if r := t.pre[i].match(h, ok, path, method); r != nil {
			return r
		}
	}
	if ok && len(h) > 0 {
		if ps := t.exact[string(h)]; ps != nil {
			if r := ps.lookup(path, method); r != nil {
				return r
			}
		}
		if dot := bytes.IndexByte(h, '.'); dot > 0 && dot < len(h)-1 {
			if ps := t.wild[string(h[dot+1:])]; ps != nil {
				if r := ps.lookup(path, method); r != nil {
					return r
				}
			}
		}
	}
	if t.any != nil {
		if r := t.any.lookup(path, method); r != nil {
			return r
		}
	}
	for i := range t.post {
		if r := t.post[i].match(h, ok, path, method); r != nil {
			return r
		}
	}
	return nil
}

func (hr *hostRule) match(h []byte, ok bool, path, method []byte) *Route {
	switch hr.host.kind {
	case hostExact:
		if !ok || string(h) != hr.host.name {
			return nil
		}
	case hostWild:
		dot := bytes.IndexByte(h, '.')
		if !ok || dot <= 0 || string(h[dot+1:]) != hr.host.suffix {
			return nil
		}
	}
	if hr.path.matches(path, method) {
		return hr.path.route
	}
	return nil
}

func (ps *pathSet) lookup(path, method []byte) *Route {
	if ps.equals != nil {
		for i, l := 0, ps.equals[string(path)]; i < len(l); i++ {
			if l[i].methodOK(method) {
				return l[i].route
			}
		}
	}
	for i := range ps.regex {
		if ps.regex[i].matches(path, method) {
			return ps.regex[i].route
		}
	}
	for i := range ps.prefix {
		if ps.prefix[i].matches(path, method) {
			return ps.prefix[i].route
		}
	}
	return nil
}

func (pr *pathRule) methodOK(method []byte) bool {
	return pr.method == "" || pr.method == string(method)
}

func (pr *pathRule) matches(path, method []byte) bool {
	if !pr.methodOK(method) {
		return false
	}
	switch pr.kind {
	case Equals:
		return string(path) == pr.path
	case Regex:
		return pr.re.Match(path)
	}
	return len(path) >= len(pr.path) && string(path[:len(pr.path)]) == pr.path
}

// normalizeHost writes host into buf without its port and trailing dot,
// in lower case. ok is false when the name does not fit.
func normalizeHost(buf *[maxHost]byte, host []byte) ([]byte, bool) {
	if len(host) > 0 && host[0] == '[' {
		if e := bytes.IndexByte(host, ']'); e > 0 {
			host = host[:e+1]
		}
	} else if c := bytes.LastIndexByte(host, ':'); c >= 0 {
		host = host[:c]
	}
	if n := len(host); n > 0 && host[n-1] == '.' {
		host = host[:n-1]
	}
	if len(host) > maxHost {
		return nil, false
	}
	for i, c := range host {
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		buf[i] = c
	}
	return buf[:len(host)], true
}
