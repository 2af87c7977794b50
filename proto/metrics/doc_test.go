package metrics

import (
	"os"
	"strings"
	"testing"
)

// docs/metrics.md names every metric of the catalogue with its type, and
// no other name in its tables.
func TestMetricsDocComplete(t *testing.T) {
	b, err := os.ReadFile("../../docs/metrics.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	known := map[string]bool{}
	for _, l := range [][]Info{ProxyMetrics, MainMetrics, ClusterMetrics} {
		for _, i := range l {
			known[i.Name] = true
			if !strings.Contains(doc, "| `"+i.Name+"` | "+i.Kind.String()+" | ") {
				t.Errorf("docs/metrics.md: no table row for %s (%v)", i.Name, i.Kind)
			}
		}
	}
	for _, line := range strings.Split(doc, "\n") {
		if name, ok := strings.CutPrefix(line, "| `"); ok {
			name, _, _ = strings.Cut(name, "`")
			if !known[name] {
				t.Errorf("docs/metrics.md names %q, which no worker or supervisor reports", name)
			}
		}
	}
}
