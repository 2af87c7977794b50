package top

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/x/ansi"
)

var update = flag.Bool("update", false, "rewrite the golden frames")

// TestFramesGolden: each pane of a filled model at 80×24 and 120×40, as
// text (colours stripped), against testdata/<pane>_<w>x<h>.golden. Run
// with -update to rewrite them; docs/top.md shows some.
func TestFramesGolden(t *testing.T) {
	time.Local = time.UTC // the view shows local times
	m := filled(t)
	for _, size := range [][2]int{{80, 24}, {120, 40}} {
		m.Update(tea.WindowSizeMsg{Width: size[0], Height: size[1]})
		for p := range paneCount {
			m.pane = p
			name := fmt.Sprintf("%s_%dx%d.golden", strings.ToLower(strings.ReplaceAll(p.String(), "/", "")), size[0], size[1])
			path := filepath.Join("testdata", name)
			got := stripTrailing(ansi.Strip(m.Frame()))
			if *update {
				if err := os.MkdirAll("testdata", 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				continue
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run with -update)", err)
			}
			if got != string(want) {
				t.Errorf("%s differs:\n--- got ---\n%s\n--- want ---\n%s", path, got, want)
			}
		}
	}
}

// stripTrailing drops the padding at the end of each line, so that the
// golden files carry no trailing spaces.
func stripTrailing(s string) string {
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		lines[i] = strings.TrimRight(l, " ")
	}
	return strings.Join(lines, "\n") + "\n"
}
