package backends

import (
	"testing"
)

// TestRemovedBackendReportsDrained: a removed backend reports
// REMOVED_BACKEND_HAS_NO_CONNECTIONS exactly once, when it has no
// connection in use any more: at once from Update when idle, else when its
// last connection is released. A registry closed for shutdown reports
// nothing.
func TestRemovedBackendReportsDrained(t *testing.T) {
	a, b := listen(t), listen(t)
	specs := []Spec{{ClusterID: "c", ID: "a", Addr: a.addr, Weight: 1}, {ClusterID: "c", ID: "b", Addr: b.addr, Weight: 1}}
	const drained = "REMOVED_BACKEND_HAS_NO_CONNECTIONS c/"
	for _, tc := range []struct {
		name     string
		inUse    bool   // a connection to "b" is checked out when it is removed
		reusable bool   // how it is released
		close    bool   // the registry is closed instead of "b" removed
		want     string // events after the removal, then after the release
		after    string
	}{
		{name: "idle", want: "[" + drained + "b]", after: "[" + drained + "b]"},
		{name: "in use, released reusable", inUse: true, reusable: true, want: "[]", after: "[" + drained + "b]"},
		{name: "in use, released closed", inUse: true, want: "[]", after: "[" + drained + "b]"},
		{name: "closed registry", inUse: true, close: true, want: "[]", after: "[]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var ev events
			r := NewRegistry(Options{OnEvent: ev.add})
			set := r.Update(specs, map[string]Policy{"c": {Algorithm: RoundRobin}})["c"]
			var held *Conn
			if tc.inUse {
				for held == nil || held.Backend.ID != "b" {
					if held != nil {
						held.Release(true)
					}
					held = connect(t, set, true)
				}
			}
			if tc.close {
				r.Close()
			} else {
				r.Update(specs[:1], nil)
			}
			if got := sprint(ev.list()); got != tc.want {
				t.Fatalf("after the removal: events %s, want %s", got, tc.want)
			}
			if held != nil {
				held.Release(tc.reusable)
			}
			// Later traffic to what remains changes nothing.
			connect(t, set, false).Release(true)
			if got := sprint(ev.list()); got != tc.after {
				t.Fatalf("after the release: events %s, want %s", got, tc.after)
			}
		})
	}
}
