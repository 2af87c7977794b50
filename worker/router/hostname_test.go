package router

import (
	"strings"
	"testing"
)

// TestRegexHostnames routes by hostnames in upstream's regex syntax
// ("/re/" labels), anchored to the whole name and label, without case.
func TestRegexHostnames(t *testing.T) {
	pre := rule("/(foo|bar)/.pre.test", Prefix, "/", "", "pre")
	pre.Position = Pre
	post := rule("/.+/.post.test", Prefix, "/", "", "post") // PRE and POST: the whole name
	post.Position = Post
	tab, err := Build([]Rule{
		rule("/cdn[0-9]+/.example.com", Prefix, "/", "", "cdn"),
		rule("*.example.com", Prefix, "/", "", "wild"),
		rule("www.example.com", Prefix, "/", "", "www"),
		rule("css./cdn[a-z0-9]+/.example.com", Prefix, "/", "", "css"),
		rule("/API[0-9]/.Example.ORG", Prefix, "/", "", "api"),
		rule("/a|b/.alt.test", Prefix, "/", "", "alt"),
		rule(`/\D+/.digits.test`, Prefix, "/", "", "nondigit"),
		rule("/w+/.order.test", Prefix, "/", "", "order-re"),
		rule("*.order.test", Prefix, "/", "", "order-wild"),
		rule("*.x.deep.test", Prefix, "/", "", "deep-wild"),
		rule("a./x/.deep.test", Prefix, "/", "", "deep-re"),
		rule("/v[0-9]+/.only.test", Prefix, "/only", "", "only-re"),
		rule("*.only.test", Prefix, "/", "", "only-wild"),
		rule("*./r[0-9]/.star.test", Prefix, "/", "", "star-re"),
		pre, post,
		rule("*", Prefix, "/fallback", "", "any"),
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct{ host, path, want string }{
		{"cdn1.example.com", "/", "cdn"},
		{"CDN42.Example.Com:8443", "/", "cdn"},
		{"cdn1x.example.com", "/", "wild"}, // the segment is the whole label
		{"xcdn1.example.com", "/", "wild"}, // from its start
		{"cdn.example.com", "/", "wild"},   // not matching the segment
		{"www.example.com", "/", "www"},    // exact first
		{"a.cdn1.example.com", "/", ""},    // the whole name
		{"cdn1.example.com.evil.org", "/", ""},
		{"cdn1.exampleXcom", "/", ""}, // '.' is literal
		{"css.cdn9.example.com", "/", "css"},
		{"api7.example.org", "/", "api"}, // case-insensitive segment and literal
		{"a.alt.test", "/", "alt"},
		{"axx.alt.test", "/", ""}, // an alternation stays anchored
		{"xxb.alt.test", "/", ""},
		{"ab.digits.test", "/", "nondigit"}, // \D keeps its meaning
		{"77.digits.test", "/", ""},
		{"www.order.test", "/", "order-re"}, // a leftmost regex before the wildcard
		{"abc.order.test", "/", "order-wild"},
		{"a.x.deep.test", "/", "deep-wild"}, // a literal label before a deeper regex (upstream's trie)
		{"b.x.deep.test", "/", "deep-wild"},
		{"v1.only.test", "/only/x", "only-re"},
		{"v1.only.test", "/other", "only-wild"}, // falls through when the path does not match
		{"q.r5.star.test", "/", "star-re"},
		{"r5.star.test", "/", ""},
		{"foo.pre.test", "/", "pre"},
		{"foo.pre.test.evil", "/", ""},
		{"foox.pre.test", "/", ""},
		{"a.b.post.test", "/", "post"}, // a PRE/POST segment may span labels, as upstream's
		{"post.test", "/", ""},
		{"", "/fallback", "any"},
		{"", "/", ""},
	} {
		got := ""
		if r := tab.Lookup([]byte(tt.host), []byte(tt.path), []byte("GET")); r != nil {
			got = r.ClusterID
		}
		if got != tt.want {
			t.Errorf("Lookup(%q, %q) = %q, want %q", tt.host, tt.path, got, tt.want)
		}
	}
}

// TestInternationalizedHostnames: a hostname written with U-labels routes
// the A-labels clients send.
func TestInternationalizedHostnames(t *testing.T) {
	tab, err := Build([]Rule{
		rule("bücher.example", Prefix, "/", "", "idn"),
		rule("*.MÜNCHEN.de", Prefix, "/", "", "idn-wild"),
		rule("/shop[0-9]*/.bücher.example", Prefix, "/", "", "idn-re"),
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct{ host, want string }{
		{"xn--bcher-kva.example", "idn"},
		{"XN--BCHER-KVA.EXAMPLE:80", "idn"},
		{"a.xn--mnchen-3ya.de", "idn-wild"},
		{"shop1.xn--bcher-kva.example", "idn-re"},
		{"bcher.example", ""},
	} {
		got := ""
		if r := tab.Lookup([]byte(tt.host), []byte("/"), []byte("GET")); r != nil {
			got = r.ClusterID
		}
		if got != tt.want {
			t.Errorf("Lookup(%q) = %q, want %q", tt.host, got, tt.want)
		}
	}
}

func TestHostnameErrors(t *testing.T) {
	for _, tt := range []struct{ host, want string }{
		{"/cdn[0-9]+.example.com", "no closing '/'"},
		{"/a/b.example.com", "followed by '.' or the end"},
		{"//.example.com", "empty regex segment"},
		{"/(/.example.com", "regex segment \"(\""},
		{"/a)(b/.example.com", "regex segment \"a)(b\""}, // balanced only by a wrapper
		{"/a/.", "ends with '.'"},
		{"/a/..example.com", "empty label"},
		{"a*./b/.example.com", "'*' is allowed only"},
		{"a./b/.*.com", "'*' is allowed only"},
		{"a.x/y.com", "label \"x/y\""},
		{"\xff.example", "internationalized name"},
	} {
		field, err := CheckRule(&Rule{Hostname: tt.host, Kind: Prefix, Path: "/"})
		if err == nil || field != "hostname" || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("CheckRule(%q) = %q, %v; want a hostname error with %q", tt.host, field, err, tt.want)
		}
	}
}

func TestRegexHostCaptures(t *testing.T) {
	pre := Rule{Hostname: "/(a+)/./(b+)/.cap.test", Kind: Prefix, Path: "/", Position: Pre, Route: Route{ClusterID: "pre"}}
	tab, err := Build([]Rule{
		{Hostname: "/(cdn)([0-9]+)/.example.com", Kind: Prefix, Path: "/", Route: Route{ClusterID: "cdn"}},
		{Hostname: "/(a+)/./(b+)/.tree.test", Kind: Prefix, Path: "/", Route: Route{ClusterID: "tree"}},
		{Hostname: "*./(x)?y/.star.test", Kind: Prefix, Path: "/", Route: Route{ClusterID: "star"}},
		pre,
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct{ host, tmpl, want string }{
		{"CDN7.example.com", "$HOST[1]-$HOST[2]-$HOST[3]", "cdn-7-"},
		{"aa.bbb.tree.test", "$HOST[1]-$HOST[2]", "bbb-aa"}, // TREE: labels right to left, as upstream's trie
		{"aa.bbb.cap.test", "$HOST[1]-$HOST[2]", "aa-bbb"},  // PRE: the whole name's groups
		{"q.y.star.test", "$HOST[1]-$HOST[2]", "-q"},        // an unmatched group is empty
	} {
		r := tab.Lookup([]byte(tt.host), []byte("/"), nil)
		if r == nil {
			t.Fatalf("%s: no route", tt.host)
		}
		tm, err := ParseTemplate(tt.tmpl, HostTemplate)
		if err != nil {
			t.Fatal(err)
		}
		if !tm.UsesGroups() {
			t.Errorf("%q: UsesGroups false", tt.tmpl)
		}
		var c Captures
		r.Capture(&c, []byte(tt.host), []byte("/"), true)
		if got, _ := tm.Append(nil, &c, 100); string(got) != tt.want {
			t.Errorf("%s %q = %q, want %q", tt.host, tt.tmpl, got, tt.want)
		}
	}
	for _, tt := range []struct {
		host string
		n    int
	}{{"/(cdn)([0-9]+)/.example.com", 3}, {"*./(x)?y/.star.test", 3}, {"/a/.b", 1}} {
		if n, _, err := CaptureCounts(&Rule{Hostname: tt.host, Kind: Equals, Path: "/"}); err != nil || n != tt.n {
			t.Errorf("CaptureCounts(%q) = %d, %v; want %d", tt.host, n, err, tt.n)
		}
	}
}

// FuzzParseHost checks that parseHost never panics and that a regex
// hostname's label matcher (TREE) accepts only names its whole-name
// regex (PRE, POST) accepts.
func FuzzParseHost(f *testing.F) {
	for _, s := range [][2]string{
		{"/cdn[0-9]+/.example.com", "cdn1.example.com"}, {"*./a|b/.x", "q.a.x"}, {"/(a)/./b/", "a.b"},
		{"bücher.example", "xn--bcher-kva.example"}, {"/a/..", "a.."}, {"//", ""}, {"*.x", "a.x"},
	} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, pattern, host string) {
		hm, err := parseHost(pattern)
		if err != nil || hm.kind != hostRegex {
			return
		}
		h := []byte(strings.ToLower(host))
		if hm.matchLabels(h) && !hm.whole.Match(h) {
			t.Fatalf("%q: labels match %q, the whole name does not (%s)", pattern, host, hm.whole)
		}
		caps := hm.hostCaptures(nil, h, true)
		if hm.matchLabels(h) && len(caps) != hm.groups {
			t.Fatalf("%q on %q: %d captures, want %d", pattern, host, len(caps), hm.groups)
		}
	})
}

// TestRegexLabelAnchors: anchors in a regex label ("/^cdn[0-9]+$/", an
// operator's habit) stand at the label's edges. The whole-name regex, by
// which a name is routed off the label tree and its captures taken, must
// match the names the labels match: "$" copied into it matched nowhere,
// since a label is followed by others (found by FuzzParseHost).
func TestRegexLabelAnchors(t *testing.T) {
	for _, tt := range []struct{ pattern, host string }{
		{"/^cdn([0-9]+)$/.example.com", "cdn1.example.com"},
		{`/\Aa\z/./(b)$/.x`, "a.b.x"},
		{"/($)/./B/", ".b"},
		{"/(?i)^A|^b$/.x", "a.x"},
	} {
		hm, err := parseHost(tt.pattern)
		if err != nil {
			t.Fatalf("%q: %v", tt.pattern, err)
		}
		h := []byte(tt.host)
		if !hm.matchLabels(h) || !hm.whole.Match(h) {
			t.Errorf("%q on %q: labels match %v, whole name (%s) %v", tt.pattern, tt.host, hm.matchLabels(h), hm.whole, hm.whole.Match(h))
		}
		if got, want := len(hm.hostCaptures(nil, h, false)), hm.groups; got != want {
			t.Errorf("%q on %q: %d captures by the whole name, want %d", tt.pattern, tt.host, got, want)
		}
	}
}
