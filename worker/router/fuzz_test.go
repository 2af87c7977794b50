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
