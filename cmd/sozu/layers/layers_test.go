package layers

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the package table of docs/architecture.md")

// pkg is what go list says of one package.
type pkg struct {
	ImportPath   string
	Imports      []string
	TestImports  []string
	XTestImports []string
	Deps         []string
}

// ours returns the packages of the module that paths name, relative to
// Module ("" for the module's root), deduplicated, in order.
func ours(paths []string) []string {
	var out []string
	seen := map[string]bool{}
	for _, p := range paths {
		if p != Module && !strings.HasPrefix(p, Module+"/") {
			continue
		}
		rel := strings.TrimPrefix(strings.TrimPrefix(p, Module), "/")
		if !seen[rel] {
			seen[rel] = true
			out = append(out, rel)
		}
	}
	return out
}

// listModule runs go list -deps-less -json over the whole module.
func listModule(t *testing.T) []pkg {
	t.Helper()
	cmd := exec.Command("go", "list", "-json=ImportPath,Imports,TestImports,XTestImports,Deps", Module+"/...")
	cmd.Dir = "../../.."
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, stderr.String())
	}
	var pkgs []pkg
	dec := json.NewDecoder(bytes.NewReader(out))
	for dec.More() {
		var p pkg
		if err := dec.Decode(&p); err != nil {
			t.Fatalf("go list output: %v", err)
		}
		pkgs = append(pkgs, p)
	}
	if len(pkgs) < 10 {
		t.Fatalf("go list found %d packages", len(pkgs))
	}
	return pkgs
}

func allowed(patterns []string, rel string) bool {
	for _, p := range patterns {
		if Match(p, rel) {
			return true
		}
	}
	return false
}

// check returns the violations of the table by pkgs, one line each.
func check(pkgs []pkg) []string {
	var bad []string
	for _, p := range pkgs {
		self := ours([]string{p.ImportPath})[0]
		row := Row(self)
		if row == nil {
			bad = append(bad, fmt.Sprintf("%s: no row in layers.Table", self))
			continue
		}
		for _, imp := range ours(p.Imports) {
			if imp != self && !allowed(row.Imports, imp) {
				bad = append(bad, fmt.Sprintf("%s imports %s (row %q allows %v)", self, imp, row.Pkg, row.Imports))
			}
		}
		for _, imp := range ours(append(p.TestImports, p.XTestImports...)) {
			if imp != self && !allowed(row.Imports, imp) && !allowed(row.Tests, imp) {
				bad = append(bad, fmt.Sprintf("%s's tests import %s (row %q allows %v, in tests also %v)", self, imp, row.Pkg, row.Imports, row.Tests))
			}
		}
		if row.Deps != nil {
			for _, dep := range ours(p.Deps) {
				if dep != self && !allowed(row.Deps, dep) {
					bad = append(bad, fmt.Sprintf("%s depends on %s (row %q allows only %v in its dependencies)", self, dep, row.Pkg, row.Deps))
				}
			}
		}
	}
	return bad
}

// TestImportDirection checks every import of every package of the module
// against Table, and the dependencies of the rows that set Deps.
func TestImportDirection(t *testing.T) {
	for _, line := range check(listModule(t)) {
		t.Error(line)
	}
}

// TestControlPlaneLinksNoServer is the direction's point, checked on the
// dependency sets themselves: the supervisor, its configuration loader and
// the compliance evaluation link neither a server of the data plane, nor
// the worker, nor the sandbox.
func TestControlPlaneLinksNoServer(t *testing.T) {
	cmd := exec.Command("go", "list", "-deps", "./supervisor/config", "./supervisor", "./compliance")
	cmd.Dir = "../../.."
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list -deps: %v", err)
	}
	deps := ours(strings.Fields(string(out)))
	for _, never := range []string{"sandbox", "", "worker", "worker/proxy", "worker/tcp", "worker/udp", "worker/h2", "worker/backends", "cmd/sozu"} {
		for _, d := range deps {
			if d == never {
				t.Errorf("the control plane links %s/%s", Module, d)
			}
		}
	}
}

// TestTableRows: each row is reachable (no earlier row shadows it) and its
// patterns are well formed.
func TestTableRows(t *testing.T) {
	for i, r := range Table {
		if r.Job == "" {
			t.Errorf("row %q has no job", r.Pkg)
		}
		for _, prev := range Table[:i] {
			base, wild := strings.CutSuffix(r.Pkg, "/...")
			if Match(prev.Pkg, base) && (!wild || strings.HasSuffix(prev.Pkg, "...")) {
				t.Errorf("row %q is shadowed by the earlier row %q", r.Pkg, prev.Pkg)
			}
		}
		for _, p := range append(append(append([]string{r.Pkg}, r.Imports...), r.Tests...), r.Deps...) {
			if p == "" || strings.HasPrefix(p, "/") || strings.Contains(p, "...") && p != "..." && !strings.HasSuffix(p, "/...") {
				t.Errorf("row %q: malformed pattern %q", r.Pkg, p)
			}
		}
	}
}

// TestCheckCatches: the checker reports a worker importing the supervisor,
// the supervisor linking a server through another package, and an unknown
// package.
func TestCheckCatches(t *testing.T) {
	m := func(rel string) string { return Module + "/" + rel }
	bad := check([]pkg{
		{ImportPath: m("worker/router"), Imports: []string{m("supervisor/config")}},
		{ImportPath: m("supervisor/config"), Imports: []string{m("worker/settings")}, Deps: []string{m("worker/settings"), m("worker/proxy")}},
		{ImportPath: m("proto/frame"), TestImports: []string{m("supervisor")}},
		{ImportPath: m("nowhere"), Imports: []string{"fmt"}},
		{ImportPath: m("worker/logfilter"), Imports: []string{"github.com/sozu-go/sozuother/x"}},
	})
	want := []string{
		"worker/router imports supervisor/config",
		"supervisor/config depends on worker/proxy",
		"proto/frame's tests import supervisor",
		"nowhere: no row in layers.Table",
	}
	if len(bad) != len(want) {
		t.Fatalf("got %d violations, want %d:\n%s", len(bad), len(want), strings.Join(bad, "\n"))
	}
	for i, w := range want {
		if !strings.HasPrefix(bad[i], w) {
			t.Errorf("violation %d: %q, want %q…", i, bad[i], w)
		}
	}
}

const (
	beginMark = "<!-- BEGIN package table: generated from layers.Table by `go test ./cmd/sozu/layers -update` -->\n"
	endMark   = "<!-- END package table -->\n"
)

// renderTable is the Markdown table of Table.
func renderTable() string {
	code := func(ps []string) string {
		if len(ps) == 0 {
			return "—"
		}
		q := make([]string, len(ps))
		for i, p := range ps {
			q[i] = "`" + p + "`"
			if p == "..." {
				q[i] = "any"
			}
		}
		return strings.Join(q, ", ")
	}
	var b strings.Builder
	b.WriteString("| package | job | may import, of ours | its tests also |\n|---|---|---|---|\n")
	for _, r := range Table {
		fmt.Fprintf(&b, "| `%s` | %s | %s | %s |\n", r.Pkg, r.Job, code(r.Imports), code(r.Tests))
	}
	return b.String()
}

// TestArchitectureDoc: the package table of docs/architecture.md is
// renderTable's; -update rewrites it.
func TestArchitectureDoc(t *testing.T) {
	const path = "../../../docs/architecture.md"
	doc, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	s := string(doc)
	i, j := strings.Index(s, beginMark), strings.Index(s, endMark)
	if i < 0 || j < i {
		t.Fatalf("%s: no %q … %q markers", path, strings.TrimSpace(beginMark), strings.TrimSpace(endMark))
	}
	got, want := s[i+len(beginMark):j], renderTable()
	if got == want {
		return
	}
	if *update {
		if err := os.WriteFile(path, []byte(s[:i+len(beginMark)]+want+s[j:]), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	t.Errorf("%s: the package table is stale; run go test ./cmd/sozu/layers -update\nwant:\n%s", path, want)
}
