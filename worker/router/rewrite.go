package router

import (
	"bytes"
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// TemplateKind is what a rewrite template produces; it bounds the literal
// text the template may contain.
type TemplateKind uint8

// Template kinds.
const (
	// HostTemplate builds a host (rewrite_host): literals are letters,
	// digits, '-', '.', '_', '~', and ':', '[' and ']' for a port or an
	// IPv6 literal.
	HostTemplate TemplateKind = iota
	// PathTemplate builds a path (rewrite_path): literals are RFC 3986
	// path characters (unreserved, sub-delims other than '$', ':', '@',
	// '/' and %XX escapes); no '?', '#', space or control byte.
	PathTemplate
)

func (k TemplateKind) String() string {
	if k == HostTemplate {
		return "host"
	}
	return "path"
}

// maxCaptureIndex bounds the index of a $HOST[n] or $PATH[n] reference.
const maxCaptureIndex = 999

type partKind uint8

const (
	partLiteral partKind = iota
	partHost
	partPath
)

type part struct {
	kind partKind
	lit  string // partLiteral
	idx  int    // partHost, partPath
}

// Template is a compiled rewrite template (upstream's rewrite_host and
// rewrite_path): literal text and references to the captures of the
// request a frontend matched. "$HOST[n]" is the n-th host capture ($HOST[0]
// the request's host, lower case, without port; $HOST[1] the label a "*."
// wildcard matched; for a regex hostname, $HOST[1..] its groups, see
// hostMatch.hostCaptures) and "$PATH[n]" the n-th path capture ($PATH[0] the
// path without its query; $PATH[1] what follows the prefix of a PREFIX
// rule, or $PATH[1..] the groups of a REGEX rule). Any other '$' is an
// error. A Template is immutable and safe for concurrent use.
type Template struct {
	parts   []part
	maxHost int // highest $HOST index referenced, -1 for none
	maxPath int // highest $PATH index referenced, -1 for none
}

// ParseTemplate compiles src, whose literal text must suit kind. Errors
// give the byte offset of the fault.
func ParseTemplate(src string, kind TemplateKind) (*Template, error) {
	t := &Template{maxHost: -1, maxPath: -1}
	for i := 0; i < len(src); {
		if src[i] != '$' {
			j := i
			for j < len(src) && src[j] != '$' {
				if err := literalByte(src, j, kind); err != nil {
					return nil, err
				}
				j++
			}
			t.parts = append(t.parts, part{kind: partLiteral, lit: src[i:j]})
			i = j
			continue
		}
		var k partKind
		switch {
		case strings.HasPrefix(src[i:], "$HOST["):
			k = partHost
		case strings.HasPrefix(src[i:], "$PATH["):
			k = partPath
		default:
			return nil, fmt.Errorf("at %d: '$' starts neither $HOST[n] nor $PATH[n]", i)
		}
		start := i
		i += len("$HOST[")
		d := i
		for i < len(src) && '0' <= src[i] && src[i] <= '9' {
			i++
		}
		if i == d || i == len(src) || src[i] != ']' {
			return nil, fmt.Errorf("at %d: %s is not followed by digits and ']'", start, src[start:d])
		}
		n, err := strconv.Atoi(src[d:i])
		if err != nil || n > maxCaptureIndex {
			return nil, fmt.Errorf("at %d: capture index %s is over %d", start, src[d:i], maxCaptureIndex)
		}
		i++ // ']'
		t.parts = append(t.parts, part{kind: k, idx: n})
		if k == partHost {
			t.maxHost = max(t.maxHost, n)
		} else {
			t.maxPath = max(t.maxPath, n)
		}
	}
	return t, nil
}

// literalByte checks the literal byte src[i] of a template of kind k.
func literalByte(src string, i int, k TemplateKind) error {
	c := src[i]
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9',
		c == '-', c == '.', c == '_', c == '~', c == ':':
		return nil
	case k == HostTemplate && (c == '[' || c == ']'):
		return nil
	case k == PathTemplate && strings.IndexByte("!&'()*+,;=@/", c) >= 0:
		return nil
	case k == PathTemplate && c == '%':
		if i+2 < len(src) && isHex(src[i+1]) && isHex(src[i+2]) {
			return nil
		}
		return fmt.Errorf("at %d: '%%' is not followed by two hexadecimal digits", i)
	}
	return fmt.Errorf("at %d: byte %q is not allowed in a %s", i, src[i:i+1], k)
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

// String returns the template in canonical form (indices without leading
// zeros); parsing it gives the same template.
func (t *Template) String() string {
	var b strings.Builder
	for _, p := range t.parts {
		switch p.kind {
		case partLiteral:
			b.WriteString(p.lit)
		case partHost:
			fmt.Fprintf(&b, "$HOST[%d]", p.idx)
		case partPath:
			fmt.Fprintf(&b, "$PATH[%d]", p.idx)
		}
	}
	return b.String()
}

// UsesGroups reports whether the template refers to a capture past
// $HOST[0] or $PATH[0], which for a regex hostname or a REGEX rule costs a
// submatch search (Route.Capture).
func (t *Template) UsesGroups() bool { return t.maxPath >= 1 || t.maxHost >= 1 }

// CaptureCounts returns how many host and path captures a request routed
// by r has: $HOST[0] and, for a "*." hostname, $HOST[1], or for a regex
// hostname one per group and "*" label; $PATH[0] and, for a PREFIX rule,
// $PATH[1], or for a REGEX rule one per group.
func CaptureCounts(r *Rule) (host, path int, err error) {
	hm, err := parseHost(r.Hostname)
	if err != nil {
		return 0, 0, err
	}
	host = 1
	switch hm.kind {
	case hostWild:
		host = 2
	case hostRegex:
		host = 1 + hm.groups
	}
	switch r.Kind {
	case Equals:
		path = 1
	case Prefix:
		path = 2
	case Regex:
		re, err := regexp.Compile(r.Path)
		if err != nil {
			return 0, 0, fmt.Errorf("path regex: %w", err)
		}
		path = re.NumSubexp() + 1
	default:
		return 0, 0, fmt.Errorf("unknown path rule kind %d", r.Kind)
	}
	return host, path, nil
}

// Check reports a reference to a capture that a request routed by r
// cannot have.
func (t *Template) Check(r *Rule) error {
	host, path, err := CaptureCounts(r)
	if err != nil {
		return err
	}
	if t.maxHost >= host {
		return fmt.Errorf("$HOST[%d]: hostname %q has captures $HOST[0] to $HOST[%d]", t.maxHost, r.Hostname, host-1)
	}
	if t.maxPath >= path {
		return fmt.Errorf("$PATH[%d]: path rule %q has captures $PATH[0] to $PATH[%d]", t.maxPath, r.Path, path-1)
	}
	return nil
}

// captureSpec is what Route.Capture needs to know of the rule that
// produced a route.
type captureSpec struct {
	wild   bool       // "*." hostname
	host   *hostMatch // regex hostname, else nil
	tree   bool       // the rule's position is TREE
	kind   PathKind
	prefix int // length of a PREFIX rule's path
	re     *regexp.Regexp
}

// Captures are the parts of one request that templates may refer to,
// filled by Route.Capture. They alias the request's bytes (the host is
// copied, lower case): valid while those are. Captures is large (it holds
// a host name): keep one and reuse it.
type Captures struct {
	buf        [maxHost]byte
	host       []byte   // $HOST[0]
	label      []byte   // $HOST[1] of a "*." hostname
	hostRe     bool     // a regex hostname: $HOST[1..] are groupsHost
	groupsHost [][]byte // $HOST[1..] of a regex hostname, when searched
	path       []byte   // $PATH[0]
	tail       []byte   // $PATH[1] of a PREFIX rule
	regex      bool
	groups     []int // submatch offsets into path of a REGEX rule, nil when not searched or not matching
}

// Capture fills c for a request to authority and path (as given to
// Lookup) that Lookup routed to r. groups asks for the submatches of a
// REGEX rule, which allocates; without it, $PATH[n >= 1] of a REGEX rule
// expands to nothing.
func (r *Route) Capture(c *Captures, authority, path []byte, groups bool) {
	h, ok := NormalizeHost(&c.buf, authority)
	if !ok {
		h = nil
	}
	if q := bytes.IndexByte(path, '?'); q >= 0 {
		path = path[:q]
	}
	c.host, c.label, c.path, c.tail, c.groups = h, nil, path, nil, nil
	c.hostRe, c.groupsHost = r.capture.host != nil, c.groupsHost[:0]
	if c.hostRe && groups && len(h) > 0 {
		c.groupsHost = r.capture.host.hostCaptures(c.groupsHost, h, r.capture.tree)
	}
	if r.capture.wild {
		if dot := bytes.IndexByte(h, '.'); dot > 0 {
			c.label = h[:dot]
		}
	}
	c.regex = r.capture.kind == Regex
	switch {
	case r.capture.kind == Prefix:
		c.tail = path[min(r.capture.prefix, len(path)):]
	case c.regex && groups && r.capture.re != nil:
		c.groups = r.capture.re.FindSubmatchIndex(path)
	}
}

// Append appends the expansion of t with c to dst. It stops and reports
// false when the expansion would make dst longer than limit.
func (t *Template) Append(dst []byte, c *Captures, limit int) ([]byte, bool) {
	for _, p := range t.parts {
		var v []byte
		switch p.kind {
		case partLiteral:
			if len(dst)+len(p.lit) > limit {
				return dst, false
			}
			dst = append(dst, p.lit...)
			continue
		case partHost:
			switch {
			case p.idx == 0:
				v = c.host
			case c.hostRe:
				if p.idx-1 < len(c.groupsHost) {
					v = c.groupsHost[p.idx-1]
				}
			case p.idx == 1:
				v = c.label
			}
		case partPath:
			switch {
			case p.idx == 0:
				v = c.path
			case !c.regex:
				if p.idx == 1 {
					v = c.tail
				}
			case 2*p.idx+1 < len(c.groups) && c.groups[2*p.idx] >= 0:
				v = c.path[c.groups[2*p.idx]:c.groups[2*p.idx+1]]
			}
		}
		if len(dst)+len(v) > limit {
			return dst, false
		}
		dst = append(dst, v...)
	}
	return dst, true
}
