package router

import (
	"bytes"
	"fmt"
	"regexp"
	"regexp/syntax"
	"strings"
	"unicode/utf8"

	"github.com/sozu-go/sozu/worker/idna"
)

// A rule's hostname is one of, in upstream Sōzu's syntax:
//
//   - "*": any host, including none;
//   - "*.example.com": exactly one more label than example.com;
//   - "/cdn[0-9]+/.example.com": a name with regex segments. Labels are
//     separated by '.'; a label written between slashes is a regular
//     expression (RE2 syntax) that must match the whole label, any other
//     label is literal, and a leftmost "*" label matches any one label.
//     The whole name must match: "/cdn[0-9]+/.example.com" matches
//     cdn1.example.com, never cdn1x.example.com nor
//     cdn1.example.com.evil.org. Matching ignores case;
//   - anything else: that exact name.
//
// Literal labels are compared in ASCII lower case and as A-labels: a rule
// for "bücher.example" is the rule for "xn--bcher-kva.example", the form in
// which clients send an internationalized name (see idna.ToASCII).

// labelMatch is one label of a regex hostname.
type labelMatch struct {
	lit  string         // a literal label, lower case A-label (re == nil, !star)
	re   *regexp.Regexp // a regex segment, anchored to the whole label, case-insensitive
	src  string         // the regex segment as written, its identity for ordering
	star bool           // a leftmost "*"
}

func (l *labelMatch) rank() int {
	switch {
	case l.re != nil:
		return 1
	case l.star:
		return 2
	}
	return 0
}

// parseHost classifies and normalizes a rule's hostname.
func parseHost(h string) (hostMatch, error) {
	if h == "" {
		return hostMatch{}, fmt.Errorf("empty hostname")
	}
	if !utf8.ValidString(h) {
		return hostMatch{}, fmt.Errorf("internationalized name %q: not valid UTF-8", h)
	}
	if strings.IndexByte(h, '/') >= 0 {
		return parseRegexHost(h)
	}
	h = strings.ToLower(h)
	if h != "*." {
		h = strings.TrimSuffix(h, ".")
	}
	a, err := toASCII(h)
	if err != nil {
		return hostMatch{}, err
	}
	h = a
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

// toASCII lower-cases name's non-ASCII letters and converts its
// internationalized labels to A-labels.
func toASCII(name string) (string, error) {
	if idna.IsASCII(name) {
		return name, nil
	}
	a, err := idna.ToASCII(strings.ToLower(name))
	if err != nil {
		return "", fmt.Errorf("internationalized name %q: %v", name, err)
	}
	return a, nil
}

// labelInWhole returns a label's regex src (which compiles) as written in
// the whole-name regex: its text anchors (^, $, \A, \z) made empty. In the
// label's own regex they stand at the label's edges, which the whole
// label matches anyway; left in the whole name, where the label is
// followed or preceded by others, "$" would match nowhere, and a name the
// labels match would not route through the whole-name regex (nor give its
// captures).
func labelInWhole(src string) string {
	re, err := syntax.Parse(src, syntax.Perl)
	if err != nil {
		return src
	}
	var walk func(*syntax.Regexp) bool
	walk = func(r *syntax.Regexp) bool {
		changed := false
		switch r.Op {
		case syntax.OpBeginLine, syntax.OpEndLine, syntax.OpBeginText, syntax.OpEndText:
			r.Op, r.Flags = syntax.OpEmptyMatch, 0
			return true
		}
		for _, sub := range r.Sub {
			if walk(sub) {
				changed = true
			}
		}
		return changed
	}
	if !walk(re) {
		return src
	}
	return re.String()
}

// parseRegexHost parses a hostname holding at least one '/': labels
// separated by '.', each either a literal or a "/regex/" segment.
func parseRegexHost(h string) (hostMatch, error) {
	hm := hostMatch{kind: hostRegex}
	whole := strings.Builder{}
	whole.WriteString(`(?i)\A`)
	for i := 0; ; {
		var l labelMatch
		if h[i] == '/' {
			end := strings.IndexByte(h[i+1:], '/')
			if end < 0 {
				return hostMatch{}, fmt.Errorf("the regex segment at byte %d has no closing '/'", i)
			}
			src := h[i+1 : i+1+end]
			if src == "" {
				return hostMatch{}, fmt.Errorf("empty regex segment at byte %d", i)
			}
			if _, err := regexp.Compile(src); err != nil {
				return hostMatch{}, fmt.Errorf("regex segment %q: %v", src, err)
			}
			re, err := regexp.Compile(`(?i)\A(?:` + src + `)\z`)
			if err != nil {
				return hostMatch{}, fmt.Errorf("regex segment %q: %v", src, err)
			}
			l = labelMatch{re: re, src: src}
			whole.WriteString(`(?:` + labelInWhole(src) + `)`)
			i += end + 2
		} else {
			end := strings.IndexByte(h[i:], '.')
			if end < 0 {
				end = len(h) - i
			}
			lit := h[i : i+end]
			switch {
			case lit == "":
				return hostMatch{}, fmt.Errorf("empty label at byte %d", i)
			case lit == "*" && i == 0:
				l = labelMatch{star: true}
				whole.WriteString(`([^.]+)`)
			case strings.ContainsAny(lit, "*/"):
				return hostMatch{}, fmt.Errorf("label %q: '*' is allowed only as the whole first label, and a regex segment is a whole label between '/'", lit)
			default:
				a, err := toASCII(strings.ToLower(lit))
				if err != nil {
					return hostMatch{}, err
				}
				l = labelMatch{lit: a}
				whole.WriteString(regexp.QuoteMeta(a))
			}
			i += end
		}
		hm.labels = append(hm.labels, l)
		if l.re != nil {
			hm.groups += l.re.NumSubexp()
		} else if l.star {
			hm.groups++
		}
		if i == len(h) {
			break
		}
		if h[i] != '.' {
			return hostMatch{}, fmt.Errorf("byte %d: a regex segment is a whole label, followed by '.' or the end of the name", i)
		}
		whole.WriteString(`\.`)
		i++
		if i == len(h) {
			return hostMatch{}, fmt.Errorf("the name ends with '.'")
		}
	}
	whole.WriteString(`\z`)
	re, err := regexp.Compile(whole.String())
	if err != nil {
		return hostMatch{}, fmt.Errorf("hostname regex: %v", err)
	}
	hm.whole = re
	hm.leftOnly = true
	for _, l := range hm.labels[1:] {
		if l.re != nil {
			hm.leftOnly = false
		}
	}
	if hm.labels[0].re == nil {
		hm.leftOnly = false // "*." then a regex deeper: tried after the wildcard
	}
	return hm, nil
}

// matchLabels reports whether host (normalized, see NormalizeHost) has
// exactly the labels of hm, each matching. It does not allocate.
func (hm *hostMatch) matchLabels(host []byte) bool {
	end := len(host)
	for k := len(hm.labels) - 1; k >= 0; k-- {
		if end < 0 {
			return false
		}
		start := bytes.LastIndexByte(host[:end], '.') + 1
		if k == 0 && start != 0 {
			return false // more labels than the pattern
		}
		label := host[start:end]
		l := &hm.labels[k]
		switch {
		case l.re != nil:
			if !l.re.Match(label) {
				return false
			}
		case l.star:
			if len(label) == 0 {
				return false
			}
		default:
			if string(label) != l.lit {
				return false
			}
		}
		end = start - 1
	}
	return true
}

// hostCaptures appends to dst the host captures $HOST[1..] of host, which
// hm matched: for a TREE rule, walking the labels right to left as
// upstream's trie does, a "*" label then each regex segment's groups; for
// a PRE or POST rule, the groups of the whole-name regex, left to right.
// A group that did not take part is empty.
func (hm *hostMatch) hostCaptures(dst [][]byte, host []byte, tree bool) [][]byte {
	if !tree {
		loc := hm.whole.FindSubmatchIndex(host)
		for g := 1; 2*g+1 < len(loc); g++ {
			if loc[2*g] < 0 {
				dst = append(dst, nil)
				continue
			}
			dst = append(dst, host[loc[2*g]:loc[2*g+1]])
		}
		return dst
	}
	end := len(host)
	for k := len(hm.labels) - 1; k >= 0 && end >= 0; k-- {
		start := bytes.LastIndexByte(host[:end], '.') + 1
		label := host[start:end]
		l := &hm.labels[k]
		switch {
		case l.star:
			dst = append(dst, label)
		case l.re != nil:
			loc := l.re.FindSubmatchIndex(label)
			for g := 1; g <= l.re.NumSubexp(); g++ {
				if 2*g+1 >= len(loc) || loc[2*g] < 0 {
					dst = append(dst, nil)
					continue
				}
				dst = append(dst, label[loc[2*g]:loc[2*g+1]])
			}
		}
		end = start - 1
	}
	return dst
}

// compareDeep orders two regex hostnames whose non-literal labels are not
// only the leftmost, as upstream's trie tries them for a host both match:
// label by label from the right, a literal before a regex segment (those
// in order of first appearance, order) before a "*".
func compareDeep(a, b *hostMatch, order map[string]int) int {
	i, j := len(a.labels)-1, len(b.labels)-1
	for ; i >= 0 && j >= 0; i, j = i-1, j-1 {
		x, y := &a.labels[i], &b.labels[j]
		if d := x.rank() - y.rank(); d != 0 {
			return d
		}
		switch x.rank() {
		case 0:
			if c := strings.Compare(x.lit, y.lit); c != 0 {
				return c
			}
		case 1:
			if d := order[x.src] - order[y.src]; d != 0 {
				return d
			}
		}
	}
	return len(a.labels) - len(b.labels)
}
