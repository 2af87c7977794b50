package router

import (
	"slices"
	"strings"
	"testing"
)

func rule(host string, kind PathKind, path, method, cluster string) Rule {
	return Rule{Hostname: host, Kind: kind, Path: path, Method: method, Route: Route{ClusterID: cluster, Deny: cluster == ""}}
}

func TestLookup(t *testing.T) {
	rules := []Rule{
		rule("example.com", Prefix, "/", "", "root"),
		rule("example.com", Prefix, "/api", "", "api"),
		rule("example.com", Prefix, "/api/v2", "", "api2"),
		rule("example.com", Prefix, "/api", "POST", "api-post"),
		rule("example.com", Equals, "/api/exact", "", "exact"),
		rule("example.com", Equals, "/api/exact", "DELETE", "exact-delete"),
		rule("example.com", Regex, "^/img/[0-9]+\\.png$", "", "images"),
		rule("example.com", Prefix, "/admin", "", ""), // deny
		rule("Shop.Example.COM", Prefix, "", "", "shop"),
		rule("*.example.com", Prefix, "/", "", "wild"),
		rule("*.example.com", Prefix, "/only", "", "wild-only"),
		rule("static.example.com", Prefix, "/assets", "", "static"),
		rule("*", Prefix, "/fallback", "", "any"),
		rule("[::1]", Prefix, "/", "", "v6"),
		rule("10.0.0.1", Prefix, "/", "", "v4"),
		rule("trailing.example.org.", Prefix, "/", "", "trailing"),
	}
	tab, err := Build(rules)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		host, path, method string
		want               string // cluster id, "DENY", or "" for no route
	}{
		{"example.com", "/", "GET", "root"},
		{"example.com", "/x?y=1", "GET", "root"},
		{"EXAMPLE.com", "/", "GET", "root"},
		{"example.com:8080", "/", "GET", "root"},
		{"example.com.", "/", "GET", "root"},
		{"example.com.:80", "/", "GET", "root"},
		{"example.com", "/api", "GET", "api"},
		{"example.com", "/apix", "GET", "api"},
		{"example.com", "/api/v2/users", "GET", "api2"},
		{"example.com", "/api/v1", "POST", "api-post"},
		{"example.com", "/api/v2/x", "POST", "api2"}, // longer prefix beats method
		{"example.com", "/api/exact", "GET", "exact"},
		{"example.com", "/api/exact", "DELETE", "exact-delete"},
		{"example.com", "/api/exact?q", "GET", "exact"},
		{"example.com", "/api/exact/", "GET", "api"},
		{"example.com", "/img/12.png", "GET", "images"},
		{"example.com", "/img/12.png?x", "GET", "images"},
		{"example.com", "/img/x.png", "GET", "root"},
		{"example.com", "/admin/users", "GET", "DENY"},
		{"shop.example.com", "/anything", "GET", "shop"},
		{"a.example.com", "/", "GET", "wild"},
		{"A.EXAMPLE.COM:443", "/only/x", "GET", "wild-only"},
		{"a.b.example.com", "/", "GET", ""},            // one label only
		{"a.b.example.com", "/fallback", "GET", "any"}, // then "*"
		{"example.com", "/fallback", "GET", "root"},
		{"static.example.com", "/assets/a.css", "GET", "static"},
		{"static.example.com", "/other", "GET", "wild"}, // falls through to the wildcard
		{"unknown.org", "/", "GET", ""},
		{"unknown.org", "/fallback/x", "GET", "any"},
		{"", "/fallback", "GET", "any"},
		{"", "/", "GET", ""},
		{"[::1]:8080", "/", "GET", "v6"},
		{"[::1]", "/", "GET", "v6"},
		{"10.0.0.1:80", "/", "GET", "v4"},
		{"trailing.example.org", "/", "GET", "trailing"},
		{".example.com", "/", "GET", ""},
		{strings.Repeat("a", 300) + ".example.com", "/fallback", "GET", "any"},
	}
	for _, tt := range tests {
		r := tab.Lookup([]byte(tt.host), []byte(tt.path), []byte(tt.method))
		got := ""
		switch {
		case r == nil:
		case r.Deny:
			got = "DENY"
		default:
			got = r.ClusterID
		}
		if got != tt.want {
			t.Errorf("Lookup(%q, %q, %q) = %q, want %q", tt.host, tt.path, tt.method, got, tt.want)
		}
	}
}

func TestPrePost(t *testing.T) {
	pre := rule("example.com", Prefix, "/", "", "pre")
	pre.Position = Pre
	post := rule("*.example.org", Prefix, "/", "", "post")
	post.Position = Post
	tab, err := Build([]Rule{
		rule("example.com", Equals, "/x", "", "tree"),
		pre, post,
		rule("*", Prefix, "/any", "", "any"),
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct{ host, path, want string }{
		{"example.com", "/x", "pre"},
		{"a.example.org", "/any", "any"},
		{"a.example.org", "/other", "post"},
		{"example.org", "/other", ""},
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

func TestBuildErrors(t *testing.T) {
	for _, tt := range []struct {
		r    Rule
		want string
	}{
		{rule("", Prefix, "/", "", "c"), "empty hostname"},
		{rule("a.*.com", Prefix, "/", "", "c"), "'*' is allowed only"},
		{rule("*.", Prefix, "/", "", "c"), "wildcard hostname"},
		{rule("*.*.com", Prefix, "/", "", "c"), "wildcard hostname"},
		{rule("a.com", Regex, "(", "", "c"), "path regex"},
		{rule("a.com", Equals, "x", "", "c"), "EQUALS path starts with '/'"},
		{rule("a.com", Prefix, "x", "", "c"), "PREFIX path is empty or starts"},
		{rule("a.com", 7, "/", "", "c"), "unknown path rule kind"},
	} {
		_, err := Build([]Rule{rule("ok.com", Prefix, "/", "", "c"), tt.r})
		if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), "rule 1") {
			t.Errorf("Build(%+v) = %v, want an error naming rule 1 and %q", tt.r, err, tt.want)
		}
	}
}

func TestEmptyTable(t *testing.T) {
	tab, err := Build(nil)
	if err != nil {
		t.Fatal(err)
	}
	if r := tab.Lookup([]byte("a.com"), []byte("/"), []byte("GET")); r != nil {
		t.Fatalf("empty table routed to %+v", r)
	}
}

func TestLookupDoesNotAllocate(t *testing.T) {
	tab, _ := Build([]Rule{
		rule("example.com", Prefix, "/api", "", "api"),
		rule("example.com", Regex, "^/img/", "", "img"),
		rule("*.example.com", Prefix, "/", "", "wild"),
	})
	host, path, method := []byte("WWW.Example.com:8080"), []byte("/img/a.png?x=1"), []byte("GET")
	host2, path2 := []byte("example.com"), []byte("/img/a")
	n := testing.AllocsPerRun(100, func() {
		if tab.Lookup(host, path, method) == nil {
			t.Fatal("no route")
		}
		if r := tab.Lookup(host2, path2, method); r == nil || r.ClusterID != "img" {
			t.Fatalf("routed to %+v", r)
		}
	})
	if n != 0 {
		t.Fatalf("Lookup allocates %v times", n)
	}
}

func BenchmarkLookup(b *testing.B) {
	var rules []Rule
	for _, h := range []string{"a", "b", "c", "d", "e", "f", "g", "h"} {
		rules = append(rules,
			rule(h+".example.com", Prefix, "/", "", h),
			rule(h+".example.com", Prefix, "/api/", "", h+"-api"),
			rule(h+".example.com", Equals, "/health", "", h+"-health"))
	}
	rules = append(rules, rule("*.example.net", Prefix, "/", "", "wild"))
	tab, err := Build(rules)
	if err != nil {
		b.Fatal(err)
	}
	host, path, method := []byte("G.example.com:8080"), []byte("/api/users/42?full=1"), []byte("GET")
	b.ReportAllocs()
	for b.Loop() {
		if r := tab.Lookup(host, path, method); r == nil || r.ClusterID != "g-api" {
			b.Fatal(r)
		}
	}
}

// Two rules whose hostnames Lookup compares as one (case, trailing dot,
// U-label and A-label) and whose path rule, method and position agree:
// Lookup serves the first, and Shadowed names the second.
func TestShadowed(t *testing.T) {
	rules := []Rule{
		{Hostname: "shop.test", Kind: Prefix, Path: "/", Route: Route{ClusterID: "a"}},
		{Hostname: "SHOP.test.", Kind: Prefix, Path: "/", Route: Route{ClusterID: "b"}},
		{Hostname: "bücher.test", Kind: Equals, Path: "/x", Route: Route{ClusterID: "c"}},
		{Hostname: "xn--bcher-kva.test", Kind: Equals, Path: "/x", Route: Route{ClusterID: "d"}},
		{Hostname: "shop.test", Kind: Prefix, Path: "/", Method: "GET", Route: Route{ClusterID: "e"}}, // another method
		{Hostname: "*.Shop.test", Kind: Prefix, Path: "/api", Route: Route{ClusterID: "f"}},
		{Hostname: "*.shop.test", Kind: Prefix, Path: "/api", Route: Route{ClusterID: "g"}},
		{Hostname: "shop.test", Kind: Prefix, Path: "/pre", Position: Pre, Route: Route{ClusterID: "h"}},
		{Hostname: "shop.test", Kind: Prefix, Path: "/pre", Route: Route{ClusterID: "i"}}, // another position
	}
	tab, err := Build(rules)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := tab.Shadowed(), [][2]int{{0, 1}, {2, 3}, {5, 6}}; !slices.Equal(got, want) {
		t.Fatalf("Shadowed = %v, want %v", got, want)
	}
	for _, tt := range []struct{ host, path, method, cluster string }{
		{"shop.test", "/", "POST", "a"},
		{"xn--bcher-kva.test", "/x", "GET", "c"},
		{"a.shop.test", "/api", "GET", "f"},
	} {
		if r := tab.Lookup([]byte(tt.host), []byte(tt.path), []byte(tt.method)); r == nil || r.ClusterID != tt.cluster {
			t.Errorf("Lookup(%s %s %s) = %v, want cluster %s", tt.method, tt.host, tt.path, r, tt.cluster)
		}
	}
}
