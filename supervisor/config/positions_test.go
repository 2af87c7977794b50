package config

import "testing"

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
	pos := scanPositions(src)
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
		if got := pos.keys[k]; got != want {
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
		if got := pos.values[k]; got != want {
			t.Errorf("value %s at %v, want %v", k, got, want)
		}
	}
	for _, k := range []string{"c", "not", "o", "not.a.table"} {
		if _, ok := pos.keys[k]; ok {
			t.Errorf("text inside a string was taken for key %s", k)
		}
	}
}
