package backends

import (
	"context"
	"testing"
	"time"
)

// TestHealthVerdict: a backend the health check marks down leaves
// rotation (and gets no passive retry connection, however long it has
// been down), comes back when marked healthy, and every change emits its
// events once; when every backend is down the cluster fails open, and
// the decision is counted (backends.fail_open).
func TestHealthVerdict(t *testing.T) {
	var ev events
	now := time.Unix(1000, 0)
	a, b := listen(t), listen(t)
	r := NewRegistry(Options{OnEvent: ev.add, Now: func() time.Time { return now }})
	set := r.Update([]Spec{{ClusterID: "c", ID: "a", Addr: a.addr, Weight: 1}, {ClusterID: "c", ID: "b", Addr: b.addr, Weight: 1}}, nil)["c"]
	ba, bb := set.Backends()[0], set.Backends()[1]

	if !set.SetHealth(ba, false) || set.SetHealth(ba, false) {
		t.Fatal("SetHealth(false) twice: want changed, then unchanged")
	}
	now = now.Add(time.Hour) // a passive retry would be long due
	for i := 0; i < 10; i++ {
		c := connect(t, set, false)
		if c.Backend != bb {
			t.Fatalf("connect %d went to %s, marked down by health check", i, c.Backend.ID)
		}
		c.Release(false)
	}
	if n := r.FailOpen(); n != 0 {
		t.Fatalf("FailOpen = %d while a backend is in rotation", n)
	}
	set.SetHealth(bb, false) // every backend down: fail open
	c := connect(t, set, false)
	c.Release(false)
	if n := r.FailOpen(); n != 1 {
		t.Fatalf("FailOpen = %d after one connect with every backend down, want 1 (upstream's backends.fail_open)", n)
	}
	set.SetHealth(ba, true)
	if ba.HealthDown() || !bb.HealthDown() {
		t.Fatal("HealthDown does not follow SetHealth")
	}
	want := "[HEALTH_CHECK_UNHEALTHY c/a BACKEND_DOWN c/a HEALTH_CHECK_UNHEALTHY c/b BACKEND_DOWN c/b NO_AVAILABLE_BACKENDS c " +
		"HEALTH_CHECK_HEALTHY c/a BACKEND_UP c/a CLUSTER_RECOVERED c]"
	if got := sprint(ev.list()); got != want {
		t.Fatalf("events\n%s\nwant\n%s", got, want)
	}
}

// TestHealthyDoesNotClearPassiveDown: a backend whose connects fail stays
// down passively even when the health check calls it healthy, and a
// health verdict on a backend already out of rotation emits no second
// BACKEND_DOWN.
func TestHealthyDoesNotClearPassiveDown(t *testing.T) {
	var ev events
	dead := deadAddr(t)
	r := NewRegistry(Options{OnEvent: ev.add, MaxFailures: 1, Attempts: 1})
	set := r.Update([]Spec{{ClusterID: "c", ID: "x", Addr: dead, Weight: 1}}, nil)["c"]
	x := set.Backends()[0]
	if _, err := set.Connect(context.Background(), time.Second, false, 0); err == nil {
		t.Fatal("connect to a dead address succeeded")
	}
	if n := r.ConnectErrors(); n != 1 {
		t.Errorf("ConnectErrors = %d after one failed connect, want 1 (upstream's backend.connections.error)", n)
	}
	set.SetHealth(x, false)
	set.SetHealth(x, true)
	if !x.Down() {
		t.Fatal("a healthy verdict cleared the passive down")
	}
	want := "[BACKEND_DOWN c/x NO_AVAILABLE_BACKENDS c HEALTH_CHECK_UNHEALTHY c/x HEALTH_CHECK_HEALTHY c/x]"
	if got := sprint(ev.list()); got != want {
		t.Fatalf("events %s, want %s", got, want)
	}
}
