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

// TestH2FloodKindsNamed: every upstream violation kind of worker/h2 has
// its counter in the metrics catalogue, in the same order, and none
// shares a class counter's name.
func TestH2FloodKindsNamed(t *testing.T) {
	if len(pm.H2FloodKinds) != int(h2.NumViolationKinds)-1 {
		t.Fatalf("catalogue has %d flood kinds, worker/h2 %d", len(pm.H2FloodKinds), h2.NumViolationKinds-1)
	}
	for k := h2.KindNone + 1; k < h2.NumViolationKinds; k++ {
		got, want := pm.H2FloodKinds[k-1], k.String()
		if got != want {
			t.Errorf("flood kind %d: catalogue %q, worker/h2 %q", k, got, want)
		}
		for c := range h2.NumFloodClasses {
			if c.String() == want {
				t.Errorf("flood kind %q is also a class", want)
			}
		}
	}
}
