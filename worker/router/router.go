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
	// label), "*" (any host, including none) or a name with regex segments
	// ("/cdn[0-9]+/.example.com"); see hostname.go. Compared without case,
	// internationalized labels as A-labels.
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
// does not allocate, but for one copy of the host when the table has regex
// hostnames.
type Table struct {
	pre, post []hostRule
	exact     map[string]*pathSet // lower-case hostname
	wild      map[string]*pathSet // "*.example.com" stored as "example.com"
	left      []hostSet           // regex hostnames whose only non-literal label is the leftmost, in rule order
	deep      []hostSet           // other regex hostnames, in trie order (compareDeep)
	any       *pathSet            // "*"
	regexHost bool                // some rule has a regex hostname
	shadowed  [][2]int            // Shadowed
}

// Shadowed returns the rules of the table that an earlier rule makes
// unreachable: the same hostname once compared as Lookup compares it
// (lower-cased, without a trailing dot, internationalized names in their
// ASCII form; a regex hostname by its text), path rule, method and
// position. Lookup serves the earlier one, always. Each pair is
// (earlier, shadowed), indexes into the rules given to Build. The
// configuration state keys frontends by their hostname as written, so
// "shop.test" and "SHOP.test", or "bücher.test" and "xn--bcher-kva.test",
// may both be in it, for different clusters: the caller reports the one
// not in force.
func (t *Table) Shadowed() [][2]int { return t.shadowed }

// matchKey is what makes two rules match the same requests (Shadowed).
func matchKey(r *Rule, hm *hostMatch) string {
	host := r.Hostname // a regex hostname: by its text
	switch hm.kind {
	case hostExact:
		host = hm.name
	case hostWild:
		host = "*." + hm.suffix
	case hostAny:
		host = "*"
	}
	return fmt.Sprintf("%d\x00%s\x00%d\x00%s\x00%s\x00%d", hm.kind, host, r.Kind, r.Path, r.Method, r.Position)
}

// hostSet is a regex hostname of the TREE position and its rules.
type hostSet struct {
	host *hostMatch
	ps   *pathSet
}

type hostRule struct {
	host hostMatch
	path pathRule
}

type hostMatch struct {
	kind   uint8
	name   string // hostExact
	suffix string // hostWild
	// hostRegex:
	labels   []labelMatch   // left to right
	whole    *regexp.Regexp // the whole name, anchored, case-insensitive (PRE and POST rules)
	groups   int            // host captures past $HOST[0]
	leftOnly bool           // only the leftmost label is non-literal, and it is a regex segment
}

const (
	hostExact uint8 = iota
	hostWild
	hostAny
	hostRegex
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
	first := map[string]int{} // matchKey → the first rule with it
	for i := range rules {
		r := &rules[i]
		hm, err := parseHost(r.Hostname)
		if err != nil {
			return nil, fmt.Errorf("router: rule %d (%q %q): %w", i, r.Hostname, r.Path, err)
		}
		k := matchKey(r, &hm)
		if j, seen := first[k]; seen {
			t.shadowed = append(t.shadowed, [2]int{j, i})
		} else {
			first[k] = i
		}
		pr, err := compilePath(r)
		if err != nil {
			return nil, fmt.Errorf("router: rule %d (%q %q): %w", i, r.Hostname, r.Path, err)
		}
		pr.route.capture = captureSpec{wild: hm.kind == hostWild, kind: r.Kind, prefix: len(r.Path), re: pr.re}
		if hm.kind == hostRegex {
			pr.route.capture.host, pr.route.capture.tree = &hm, r.Position == Tree
			t.regexHost = true
		}
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
		case hostRegex:
			ps = t.regexSet(&hm, i, rules)
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
	for _, hs := range t.left {
		hs.ps.sort()
	}
	for _, hs := range t.deep {
		hs.ps.sort()
	}
	if t.any != nil {
		t.any.sort()
	}
	if len(t.deep) > 1 {
		order := map[string]int{} // regex segment -> first rule using it
		for i := len(rules) - 1; i >= 0; i-- {
			if strings.IndexByte(rules[i].Hostname, '/') >= 0 {
				if hm, err := parseHost(rules[i].Hostname); err == nil {
					for _, l := range hm.labels {
						if l.re != nil {
							order[l.src] = i
						}
					}
				}
			}
		}
		sort.SliceStable(t.deep, func(i, j int) bool { return compareDeep(t.deep[i].host, t.deep[j].host, order) < 0 })
	}
	return t, nil
}

// regexSet returns the rule set of the TREE regex hostname hm (rule i):
// the one of an earlier rule with the same hostname, else a new one.
func (t *Table) regexSet(hm *hostMatch, i int, rules []Rule) *pathSet {
	list := &t.deep
	if hm.leftOnly {
		list = &t.left
	}
	for _, hs := range *list {
		if hs.host.whole.String() == hm.whole.String() {
			return hs.ps
		}
	}
	hs := hostSet{host: hm, ps: &pathSet{}}
	*list = append(*list, hs)
	return hs.ps
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
// exactly. Order: PRE rules, then the exact hostname, then the regex
// hostnames whose only pattern is their first label (in rule order), then
// the one-label wildcard, then the other regex hostnames (as upstream's
// trie tries them: label by label from the right, a literal before a regex
// segment before "*"), then "*", then POST rules; within a hostname EQUALS,
// then REGEX, then the longest PREFIX, a rule naming the method before one
// without. A hostname whose rules do not match the path falls through to
// the less specific hostnames. The returned Route belongs to the table.
func (t *Table) Lookup(host, path, method []byte) *Route {
	var buf [maxHost]byte
	h, ok := NormalizeHost(&buf, host)
	if q := bytes.IndexByte(path, '?'); q >= 0 {
		path = path[:q]
	}
	// The regexp package keeps what it matches: regex hostnames see a
	// copy of h, so that buf stays on the stack of a table without them.
	var hh []byte
	if t.regexHost && ok {
		hh = bytes.Clone(h)
	}
	for i := range t.pre {
		if r := t.pre[i].match(h, hh, ok, path, method); r != nil {
			return r
		}
	}
	if ok && len(h) > 0 {
		if ps := t.exact[string(h)]; ps != nil {
			if r := ps.lookup(path, method); r != nil {
				return r
			}
		}
		for i := range t.left {
			if t.left[i].host.matchLabels(hh) {
				if r := t.left[i].ps.lookup(path, method); r != nil {
					return r
				}
			}
		}
		if dot := bytes.IndexByte(h, '.'); dot > 0 && dot < len(h)-1 {
			if ps := t.wild[string(h[dot+1:])]; ps != nil {
				if r := ps.lookup(path, method); r != nil {
					return r
				}
			}
		}
		for i := range t.deep {
			if t.deep[i].host.matchLabels(hh) {
				if r := t.deep[i].ps.lookup(path, method); r != nil {
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
		if r := t.post[i].match(h, hh, ok, path, method); r != nil {
			return r
		}
	}
	return nil
}

// match reports hr's route when it matches; hh is a copy of h, set when
// the table has regex hostnames.
func (hr *hostRule) match(h, hh []byte, ok bool, path, method []byte) *Route {
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
	case hostRegex:
		if !ok || len(hh) == 0 || !hr.host.whole.Match(hh) {
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

// MaxHost is the longest host name NormalizeHost takes.
const MaxHost = maxHost

// NormalizeHost writes host into buf without its port and trailing dot,
// in lower case: the name the routes match. ok is false when the name does
// not fit.
func NormalizeHost(buf *[maxHost]byte, host []byte) ([]byte, bool) {
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
