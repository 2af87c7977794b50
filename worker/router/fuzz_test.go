package router

import (
	"bytes"
	"testing"
)

// FuzzLookup checks that Lookup never panics, ignores ASCII case and the
// port of the host, and ignores the query of the path.
func FuzzLookup(f *testing.F) {
	tab, err := Build([]Rule{
		rule("example.com", Prefix, "/", "", "root"),
		rule("example.com", Equals, "/x", "GET", "x"),
		rule("example.com", Regex, "^/r/[a-z]+$", "", "re"),
		rule("*.example.com", Prefix, "/w", "", "wild"),
		rule("/r[0-9]+/.example.com", Prefix, "/w", "", "regex-host"),
		rule("*", Prefix, "/any", "", "any"),
		rule("[::1]", Prefix, "/", "", "v6"),
	})
	if err != nil {
		f.Fatal(err)
	}
	for _, s := range [][3]string{
		{"example.com", "/", "GET"}, {"EXAMPLE.COM:80", "/x?y", "GET"}, {"a.example.com", "/w", "POST"},
		{"", "/any", "GET"}, {"[::1]:1", "/", "GET"}, {"[::1", "/r/ab", "GET"}, {"a..b", "?", ""},
	} {
		f.Add(s[0], s[1], s[2])
	}
	f.Fuzz(func(t *testing.T, host, path, method string) {
		r := tab.Lookup([]byte(host), []byte(path), []byte(method))
		if r2 := tab.Lookup(bytes.ToUpper([]byte(host)), []byte(path), []byte(method)); r2 != r && asciiOnly(host) {
			t.Fatalf("case changes the route of %q: %v vs %v", host, r, r2)
		}
		if bytes.IndexByte([]byte(host), ':') < 0 && bytes.IndexByte([]byte(host), '[') < 0 {
			if r2 := tab.Lookup([]byte(host+":8080"), []byte(path), []byte(method)); r2 != r {
				t.Fatalf("a port changes the route of %q: %v vs %v", host, r, r2)
			}
		}
		if bytes.IndexByte([]byte(path), '?') < 0 {
			if r2 := tab.Lookup([]byte(host), []byte(path+"?q=1"), []byte(method)); r2 != r {
				t.Fatalf("a query changes the route of %q: %v vs %v", path, r, r2)
			}
		}
	})
}

func asciiOnly(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

// FuzzParseTemplate checks that ParseTemplate never panics, that a parsed
// template prints back to a source that parses to the same template, and
// that its expansion without captures is its literal text, which holds
// only bytes allowed for its kind.
func FuzzParseTemplate(f *testing.F) {
	for _, s := range []string{"/api/$PATH[1]", "$HOST[1].internal:8080", "/$PATH[007]?", "$", "$HOST[", "/%41%zz", "[::1]"} {
		f.Add(s, false)
		f.Add(s, true)
	}
	f.Fuzz(func(t *testing.T, src string, host bool) {
		kind := PathTemplate
		if host {
			kind = HostTemplate
		}
		tm, err := ParseTemplate(src, kind)
		if err != nil {
			return
		}
		again, err := ParseTemplate(tm.String(), kind)
		if err != nil || again.String() != tm.String() || again.maxHost != tm.maxHost || again.maxPath != tm.maxPath {
			t.Fatalf("%q prints as %q, which parses to %v (%v)", src, tm.String(), again, err)
		}
		var lits []byte
		for _, p := range tm.parts {
			lits = append(lits, p.lit...)
		}
		got, ok := tm.Append(nil, &Captures{}, len(src))
		if !ok || !bytes.Equal(got, lits) {
			t.Fatalf("%q expands without captures to %q (%v), want %q", src, got, ok, lits)
		}
		for i := range got {
			if got[i] != '%' && literalByte(string(got), i, kind) != nil {
				t.Fatalf("%q expands to a forbidden byte %q", src, got[i])
			}
		}
	})
}
