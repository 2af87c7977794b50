package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/BurntSushi/toml"
)

// TestScanPositions checks the scanner on the constructs that could make it
// lose track: strings holding brackets, equals signs and quotes, multi-line
// strings, comments, dotted and quoted keys, nested arrays of tables, inline
// tables in arrays, and a date-time with a space.
func TestScanPositions(t *testing.T) {
	src := `a = "x = [ { \" # not a comment"   # a = 2
b = """
c = 1
[not.a.table]
"""
'q.k'.r = 1979-05-27 07:32:00Z
[[l]]
m = [ [1, 2], { n = '''{ o = 1 }''', p.q = { r = 1 } } ]
[[l]]
[l.s]
t = 1
[[l.u]]
v = 2
[[l]]
  w = { x = [ { y = 1 }, { y = 2 } ] }
"z z".zz = 3
`
	pos, limit := scanPositions(src)
	if limit != nil {
		t.Fatalf("stopped at %v: %s", limit.at, limit.msg)
	}
	keys := map[string]position{
		"a":               {1, 1},
		"b":               {2, 1},
		`"q.k".r`:         {6, 7},
		"l[0]":            {7, 1},
		"l[0].m":          {8, 1},
		"l[0].m[1].n":     {8, 17},
		"l[0].m[1].p.q.r": {8, 46},
		"l[1].s":          {10, 1},
		"l[1].s.t":        {11, 1},
		"l[1].u[0]":       {12, 1},
		"l[1].u[0].v":     {13, 1},
		"l[2].w.x[1].y":   {15, 28},
		`l[2]."z z".zz`:   {16, 7},
		`l[2]."z z"`:      {16, 1},
		"l":               {7, 1},
		"l[2].w":          {15, 3},
		"l[2].w.x[0].y":   {15, 17},
		"l[0].m[1].p":     {8, 38},
		"l[0].m[1].p.q":   {8, 40},
		`"q.k"`:           {6, 1},
		"l[1].u":          {12, 1},
		"l[1]":            {9, 1},
	}
	for k, want := range keys {
		if got, _ := pos.keyAt(k); got != want {
			t.Errorf("key %s at %v, want %v", k, got, want)
		}
	}
	values := map[string]position{
		"a":            {1, 5},
		"b":            {2, 5},
		`"q.k".r`:      {6, 11},
		"l[0].m":       {8, 5},
		"l[0].m[0]":    {8, 7},
		"l[0].m[0][1]": {8, 11},
		"l[0].m[1]":    {8, 15},
		"l[0].m[1].n":  {8, 21},
		"l[2].w.x[1]":  {15, 26},
	}
	for k, want := range values {
		if got, _ := pos.valueAt(k); got != want {
			t.Errorf("value %s at %v, want %v", k, got, want)
		}
	}
	for _, k := range []string{"c", "not", "o", "not.a.table"} {
		if _, ok := pos.keyAt(k); ok {
			t.Errorf("text inside a string was taken for key %s", k)
		}
	}
}

// FuzzScanPositions checks the position scanner on any input: it ends,
// every position lies in the document, every indexed path is found again
// by its name (joinKey/joinIndex form), no path is deeper than maxDepth,
// and on a document BurntSushi/toml accepts, every key the parser saw was
// indexed (up to array indices, which the parser's keys lack).
func FuzzScanPositions(f *testing.F) {
	files, _ := filepath.Glob("testdata/*.toml")
	examples, _ := filepath.Glob("../../docs/examples/*.toml")
	for _, file := range append(files, examples...) {
		data, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte("a = \"x = [ { \\\" # not a comment\"\n[[l]]\nm = [ [1, 2], { n = '''{ o = 1 }''', p.q = { r = 1 } } ]\n[l.s]\nt = 1\n"))
	f.Add([]byte("'q.k'.r = 1979-05-27 07:32:00Z\n\"z z\".zz = 3\n[[x.y]]\n[x.y.z]\nw = { v = [ { u = 1 } ] }\n"))
	f.Add([]byte("a = " + strings.Repeat("[", 70) + strings.Repeat("]", 70) + "\n"))
	f.Add([]byte(strings.Repeat("a.", 70) + "a = 1\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		src := string(data)
		pos, limit := scanPositions(src)
		lines := strings.Count(src, "\n") + 1
		inDoc := func(at position) bool {
			return at.line >= 1 && at.line <= lines && at.col >= 1 && at.col <= len(src)+1
		}
		if limit != nil && !inDoc(limit.at) {
			t.Fatalf("limit error at %v, outside the document", limit.at)
		}
		seen := map[string]bool{} // paths without indices
		var walk func(n *node, path, bare string)
		walk = func(n *node, path, bare string) {
			if n.depth > maxDepth {
				t.Fatalf("%s is %d deep", path, n.depth)
			}
			if n != pos.root {
				if pos.find(path) != n {
					t.Fatalf("path %q is not found again", path)
				}
				for _, at := range []position{n.key, n.value} {
					if at != (position{}) && !inDoc(at) {
						t.Fatalf("%s at %v, outside the document", path, at)
					}
				}
				seen[bare] = true
			}
			for part, c := range n.children {
				if strings.HasPrefix(part, "[") {
					walk(c, path+part, bare)
				} else if path == "" {
					walk(c, part, part)
				} else {
					walk(c, path+"."+part, bare+"."+part)
				}
			}
		}
		walk(pos.root, "", "")
		if limit != nil {
			return
		}
		var doc map[string]any
		md, err := toml.Decode(src, &doc)
		if err != nil {
			return
		}
		for _, k := range md.Keys() {
			bare := ""
			for _, part := range k {
				bare = joinKey(bare, part)
			}
			if !seen[bare] {
				t.Fatalf("the parser saw key %s, the scanner did not", bare)
			}
		}
	})
}
