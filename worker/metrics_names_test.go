package worker

import (
	"testing"

	pm "github.com/sozu-go/sozu/proto/metrics"
	"github.com/sozu-go/sozu/worker/h2"
)

// TestH2FloodClassesNamed: every flood class of worker/h2 has its counter
// in the metrics catalogue, in the same order.
func TestH2FloodClassesNamed(t *testing.T) {
	if len(pm.H2FloodClasses) != int(h2.NumFloodClasses) {
		t.Fatalf("catalogue has %d flood classes, worker/h2 %d", len(pm.H2FloodClasses), h2.NumFloodClasses)
	}
	for c := range h2.NumFloodClasses {
		if got, want := pm.H2FloodClasses[c], c.String(); got != want {
			t.Errorf("flood class %d: catalogue %q, worker/h2 %q", c, got, want)
		}
	}
}
