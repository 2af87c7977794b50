package router

import (
	"strings"
	"testing"
)

func TestParseTemplate(t *testing.T) {
	tests := []struct {
		src  string
		kind TemplateKind
		err  string // "" for success
	}{
		{"new.example.com", HostTemplate, ""},
		{"$HOST[1].internal:8080", HostTemplate, ""},
		{"[::1]", HostTemplate, ""},
		{"", HostTemplate, ""},
		{"/api/$PATH[1]", PathTemplate, ""},
		{"/a%2Fb/$HOST[0]$PATH[0]", PathTemplate, ""},
		{"/x;y=1,z@a:b!&'()*+=~", PathTemplate, ""},
		{"$PATH[007]", PathTemplate, ""},
		{"new/x", HostTemplate, `at 3: byte "/" is not allowed in a host`},
		{"a b", HostTemplate, `at 1: byte " " is not allowed in a host`},
		{"/a?b", PathTemplate, `at 2: byte "?" is not allowed in a path`},
		{"/a#b", PathTemplate, `at 2: byte "#" is not allowed in a path`},
		{"/a\r\nX: y", PathTemplate, `at 2: byte "\r" is not allowed in a path`},
		{"/a\x00", PathTemplate, `at 2: byte "\x00" is not allowed in a path`},
		{"/é", PathTemplate, `at 1: byte "\xc3" is not allowed in a path`},
		{"/%zz", PathTemplate, `at 1: '%' is not followed by two hexadecimal digits`},
		{"/%4", PathTemplate, `at 1: '%' is not followed by two hexadecimal digits`},
		{"/$", PathTemplate, `at 1: '$' starts neither $HOST[n] nor $PATH[n]`},
		{"/$path[1]", PathTemplate, `at 1: '$' starts neither $HOST[n] nor $PATH[n]`},
		{"/$PATH[]", PathTemplate, `at 1: $PATH[ is not followed by digits and ']'`},
		{"/$PATH[1", PathTemplate, `at 1: $PATH[ is not followed by digits and ']'`},
		{"/$PATH[x]", PathTemplate, `at 1: $PATH[ is not followed by digits and ']'`},
		{"$HOST[-1]", HostTemplate, `at 0: $HOST[ is not followed by digits and ']'`},
		{"$HOST[1000]", HostTemplate, `at 0: capture index 1000 is over 999`},
		{"$HOST[99999999999999999999999]", HostTemplate, `at 0: capture index 99999999999999999999999 is over 999`},
	}
	for _, tt := range tests {
		tm, err := ParseTemplate(tt.src, tt.kind)
		switch {
		case tt.err == "" && err != nil:
			t.Errorf("%q: %v", tt.src, err)
		case tt.err != "" && (err == nil || err.Error() != tt.err):
			t.Errorf("%q: error %v, want %q", tt.src, err, tt.err)
		case err == nil && strings.ReplaceAll(tt.src, "[007]", "[7]") != tm.String():
			t.Errorf("%q: String() = %q", tt.src, tm.String())
		}
	}
}

func TestTemplateCheck(t *testing.T) {
	tests := []struct {
		rule Rule
		tmpl string
		err  string
	}{
		{Rule{Hostname: "a.test", Kind: Prefix, Path: "/p"}, "$HOST[0]$PATH[1]", ""},
		{Rule{Hostname: "a.test", Kind: Prefix, Path: "/p"}, "$HOST[1]", `$HOST[1]: hostname "a.test" has captures $HOST[0] to $HOST[0]`},
		{Rule{Hostname: "*.a.test", Kind: Equals, Path: "/p"}, "$HOST[1]$PATH[0]", ""},
		{Rule{Hostname: "*.a.test", Kind: Equals, Path: "/p"}, "$PATH[1]", `$PATH[1]: path rule "/p" has captures $PATH[0] to $PATH[0]`},
		{Rule{Hostname: "*", Kind: Regex, Path: "^/(a)/(b)"}, "$PATH[2]", ""},
		{Rule{Hostname: "*", Kind: Regex, Path: "^/(a)/(b)"}, "$PATH[3]", `$PATH[3]: path rule "^/(a)/(b)" has captures $PATH[0] to $PATH[2]`},
		{Rule{Hostname: "*", Kind: Regex, Path: "("}, "$PATH[0]", "path regex: error parsing regexp: missing closing ): `(`"},
		{Rule{Hostname: "a*b", Kind: Prefix}, "x", `'*' is allowed only as "*" or as the whole first label`},
	}
	for _, tt := range tests {
		tm, err := ParseTemplate(tt.tmpl, PathTemplate)
		if err != nil {
			t.Fatal(err)
		}
		err = tm.Check(&tt.rule)
		if (err == nil) != (tt.err == "") || err != nil && err.Error() != tt.err {
			t.Errorf("%q on %+v: %v, want %q", tt.tmpl, tt.rule, err, tt.err)
		}
	}
}

func TestCaptureExpand(t *testing.T) {
	tab, err := Build([]Rule{
		{Hostname: "*.example.com", Kind: Prefix, Path: "/api/", Route: Route{ClusterID: "wild"}},
		{Hostname: "re.test", Kind: Regex, Path: `^/u/([a-z]+)(/([0-9]+))?`, Route: Route{ClusterID: "re"}},
		{Hostname: "eq.test", Kind: Equals, Path: "/x", Route: Route{ClusterID: "eq"}},
		{Hostname: "*.pre.test", Kind: Prefix, Path: "/p", Position: Pre, Route: Route{ClusterID: "pre"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		host, path string
		groups     bool
		tmpl       string
		want       string
	}{
		{"Shop.Example.COM:8080", "/api/v1/users?q=1", false, "$HOST[1].internal/$PATH[1]=$HOST[0]=$PATH[0]", "shop.internal/v1/users=shop.example.com=/api/v1/users"},
		{"re.test", "/u/bob/42?x", true, "/users/$PATH[1]/$PATH[3]=$PATH[2]=$HOST[1]", "/users/bob/42=/42="},
		{"re.test", "/u/bob", true, "/users/$PATH[1]/$PATH[3]", "/users/bob/"}, // an unmatched group is empty
		{"re.test", "/u/bob/42", false, "/users/$PATH[1]", "/users/"},          // groups not searched
		{"eq.test", "/x", false, "$PATH[0]$PATH[1]$HOST[5]", "/x"},
		{"a.pre.test", "/pq", false, "$HOST[1]-$PATH[1]", "a-q"},
	}
	var c Captures
	for _, tt := range tests {
		r := tab.Lookup([]byte(tt.host), []byte(tt.path), []byte("GET"))
		if r == nil {
			t.Fatalf("%s%s: no route", tt.host, tt.path)
		}
		tm, err := ParseTemplate(tt.tmpl, PathTemplate)
		if err != nil {
			t.Fatal(err)
		}
		r.Capture(&c, []byte(tt.host), []byte(tt.path), tt.groups)
		got, ok := tm.Append([]byte("<"), &c, 1000)
		if !ok || string(got) != "<"+tt.want {
			t.Errorf("%s%s %q: %q %v, want %q", tt.host, tt.path, tt.tmpl, got, ok, tt.want)
		}
		if _, ok := tm.Append(nil, &c, len(tt.want)-1); ok && tt.want != "" {
			t.Errorf("%q: the limit is not enforced", tt.tmpl)
		}
	}
}

func TestCaptureDoesNotAllocate(t *testing.T) {
	tab, err := Build([]Rule{{Hostname: "*.example.com", Kind: Prefix, Path: "/api/", Route: Route{ClusterID: "c"}}})
	if err != nil {
		t.Fatal(err)
	}
	tm, err := ParseTemplate("/$HOST[1]/$PATH[1]", PathTemplate)
	if err != nil {
		t.Fatal(err)
	}
	host, path := []byte("a.example.com"), []byte("/api/x")
	var c Captures
	buf := make([]byte, 0, 64)
	if n := testing.AllocsPerRun(100, func() {
		r := tab.Lookup(host, path, nil)
		r.Capture(&c, host, path, true)
		buf, _ = tm.Append(buf[:0], &c, 64)
	}); n != 0 {
		t.Errorf("%v allocations", n)
	}
}
