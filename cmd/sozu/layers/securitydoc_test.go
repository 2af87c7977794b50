package layers

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestSecurityDocTestsExist: every test, fuzz target or benchmark that
// docs/security.md names as the proof of a line exists in the tree, so
// the threat model never cites a test that was renamed or removed.
func TestSecurityDocTestsExist(t *testing.T) {
	root := filepath.Join("..", "..", "..")
	doc, err := os.ReadFile(filepath.Join(root, "docs", "security.md"))
	if err != nil {
		t.Fatal(err)
	}
	defined := map[string]bool{}
	funcRE := regexp.MustCompile(`(?m)^func ((?:Test|Fuzz|Benchmark)\w+)\(`)
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == ".git" || d.Name() == "testdata") {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, "_test.go") {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, m := range funcRE.FindAllSubmatch(b, -1) {
			defined[string(m[1])] = true
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	cited := regexp.MustCompile("`((?:Test|Fuzz|Benchmark)[A-Za-z0-9_]+)(?:/[^`]*)?`")
	n := 0
	for _, m := range cited.FindAllStringSubmatch(string(doc), -1) {
		n++
		if !defined[m[1]] {
			t.Errorf("docs/security.md cites %s, which no _test.go defines", m[1])
		}
	}
	if n < 50 {
		t.Fatalf("docs/security.md cites only %d tests: the pattern no longer matches the page", n)
	}
}
