package proxy

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/sozu-go/sozu/worker/answers"
	"github.com/sozu-go/sozu/worker/http1"
)

// TestClusterAnsweredCovers ties answers.ClusterAnswered, which the
// configuration reads to report a cluster's answers that are never sent,
// to this package's calls of answer, answerTo and answerWith: the codes
// they pass with a cluster (not nil, nor a stand-in &Cluster{} without
// answers) must be exactly that table. A code passed as a variable is
// expanded by the list below; a new one fails here until it is listed.
func TestClusterAnsweredCovers(t *testing.T) {
	named := map[string]int{
		"http1.StatusBadRequest": http1.StatusBadRequest, "http1.StatusRequestURITooLong": http1.StatusRequestURITooLong,
		"http1.StatusExpectationFailed": http1.StatusExpectationFailed, "http1.StatusNotImplemented": http1.StatusNotImplemented,
		"http1.StatusRequestHeaderFieldsTooLarge": http1.StatusRequestHeaderFieldsTooLarge,
		"http1.StatusBadGateway":                  http1.StatusBadGateway, "http1.StatusHTTPVersionNotSupported": http1.StatusHTTPVersionNotSupported,
	}
	// Codes passed as variables, by the function holding the call and the
	// expression.
	dynamic := map[string][]int{
		"serveFrontend status":     {400, 414}, // rewrite's failures
		"redirectTo fe.Redirect":   {301, 302, 308},
		"forward x.copyRes.status": {400, 408, 413}, // bodyResult.status
		"headError status":         {400, 414, 417, 431, 501, 505},
		"serve status":             {400, 501}, // refuse
		"ServeStream status":       {400, 414, 431, 501, 505},
	}
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	got := map[int]bool{}
	calls := 0
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		src, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		f, err := parser.ParseFile(fset, name, src, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range f.Decls {
			fn, ok := d.(*ast.FuncDecl)
			if !ok || fn.Body == nil || fn.Name.Name == "answer" || fn.Name.Name == "answerTo" {
				continue
			}
			ast.Inspect(fn.Body, func(n ast.Node) bool {
				call, ok := n.(*ast.CallExpr)
				if !ok {
					return true
				}
				sel, ok := call.Fun.(*ast.SelectorExpr)
				if !ok || (sel.Sel.Name != "answer" && sel.Sel.Name != "answerTo" && sel.Sel.Name != "answerWith") || len(call.Args) < 3 {
					return true
				}
				calls++
				cl := string(src[fset.Position(call.Args[1].Pos()).Offset:fset.Position(call.Args[1].End()).Offset])
				code := string(src[fset.Position(call.Args[2].Pos()).Offset:fset.Position(call.Args[2].End()).Offset])
				var codes []int
				if n, err := strconv.Atoi(code); err == nil {
					codes = []int{n}
				} else if n, ok := named[code]; ok {
					codes = []int{n}
				} else if c, ok := dynamic[fn.Name.Name+" "+code]; ok {
					codes = c
				} else {
					t.Errorf("%s: %s passes code %q: list what it may be in this test", fset.Position(call.Pos()), fn.Name.Name, code)
					return true
				}
				if cl == "nil" || strings.HasPrefix(cl, "&Cluster{") {
					return true // no cluster's answers
				}
				for _, c := range codes {
					got[c] = true
				}
				return true
			})
		}
	}
	if calls < 20 {
		t.Fatalf("found %d answer calls: the scan no longer sees them", calls)
	}
	var codes []int
	for c := range got {
		codes = append(codes, c)
	}
	sort.Ints(codes)
	if want := answers.ClusterAnsweredCodes(); !slices.Equal(codes, want) {
		t.Errorf("codes answered with a cluster: %v; answers.ClusterAnswered says %v", codes, want)
	}
	for _, c := range answers.ClusterAnsweredCodes() {
		if !answers.Answered(c) {
			t.Errorf("%d is answered per cluster but not Answered", c)
		}
	}
}
