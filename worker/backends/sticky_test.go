package backends

import (
	"context"
	"testing"
	"time"
)

func connectSticky(t *testing.T, s *Set, id string) *Conn {
	t.Helper()
	c, err := s.ConnectSticky(context.Background(), time.Second, false, 0, []byte(id))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestStickyPicks: a known sticky id always reaches its backend (whatever
// the rotation says); an unknown, empty, hostile or stale id, or one of a
// backend held down, is balanced as without stickiness.
func TestStickyPicks(t *testing.T) {
	a, b, c := listen(t), listen(t), listen(t)
	r := NewRegistry(Options{})
	set := r.Update([]Spec{
		{ClusterID: "c", ID: "a", Addr: a.addr, Weight: 100, StickyID: "sa"},
		{ClusterID: "c", ID: "b", Addr: b.addr, Weight: 100, StickyID: "sb"},
		{ClusterID: "c", ID: "c", Addr: c.addr, Weight: 100, Backup: true, StickyID: "sc"},
	}, nil)["c"]
	for i := 0; i < 50; i++ {
		conn := connectSticky(t, set, "sb")
		if conn.Backend.ID != "b" || conn.Backend.StickyID() != "sb" {
			t.Fatalf("request %d with sticky id sb went to %s", i, conn.Backend.ID)
		}
		conn.Release(true)
	}
	// A backup in rotation keeps its sticky clients.
	if conn := connectSticky(t, set, "sc"); conn.Backend.ID != "c" {
		t.Fatalf("sticky id sc went to %s", conn.Backend.ID)
	} else {
		conn.Release(false)
	}
	for _, tc := range []struct{ name, id string }{
		{"unknown", "nope"}, {"empty", ""}, {"backend id, not sticky id", "a"},
		{"hostile", "sa; Path=/\r\nX-Evil: 1"}, {"prefix", "s"}, {"longer", "sab"},
	} {
		seen := map[string]int{}
		for i := 0; i < 20; i++ {
			conn := connectSticky(t, set, tc.id)
			seen[conn.Backend.ID]++
			conn.Release(false)
		}
		if seen["a"] == 0 || seen["b"] == 0 || seen["c"] != 0 {
			t.Errorf("%s id %q: picks %v, want round robin over the primaries", tc.name, tc.id, seen)
		}
	}

	bb := set.Backends()[1]
	set.SetHealth(bb, false)
	if got := set.Sticky([]byte("sb")); got != nil {
		t.Errorf("Sticky(sb) = %s while b is down by health check", got.ID)
	}
	if conn := connectSticky(t, set, "sb"); conn.Backend.ID != "a" {
		t.Errorf("sticky id sb of a backend down went to %s, want a", conn.Backend.ID)
	} else {
		conn.Release(false)
	}
	set.SetHealth(bb, true)

	// b removed: its id misses, also in the replaced snapshot a request
	// begun before the change still holds; a changed sticky id is followed.
	oldSet := set
	set = r.Update([]Spec{
		{ClusterID: "c", ID: "a", Addr: a.addr, Weight: 100, StickyID: "sa"},
	}, nil)["c"]
	if got := set.Sticky([]byte("sb")); got != nil {
		t.Errorf("Sticky(sb) = %s after b was removed", got.ID)
	}
	if got := oldSet.Sticky([]byte("sb")); got != nil {
		t.Errorf("the replaced snapshot's Sticky(sb) = %s after b was removed", got.ID)
	}
	set = r.Update([]Spec{
		{ClusterID: "c", ID: "a", Addr: a.addr, Weight: 100, StickyID: "sa2"},
	}, nil)["c"]
	if set.Sticky([]byte("sa")) != nil || set.Sticky([]byte("sa2")) == nil {
		t.Error("a changed sticky id is not followed by Update")
	}
}

// TestStickyWeightZero: a backend drained with weight 0 gets no new
// clients but keeps its sticky ones (as HAProxy's drain does).
func TestStickyWeightZero(t *testing.T) {
	a, b := listen(t), listen(t)
	r := NewRegistry(Options{})
	set := r.Update([]Spec{
		{ClusterID: "c", ID: "a", Addr: a.addr, Weight: 100, StickyID: "sa"},
		{ClusterID: "c", ID: "b", Addr: b.addr, Weight: 0, StickyID: "sb"},
	}, nil)["c"]
	for i := 0; i < 10; i++ {
		if conn := connectSticky(t, set, ""); conn.Backend.ID != "a" {
			t.Fatalf("a new client went to the drained backend %s", conn.Backend.ID)
		} else {
			conn.Release(false)
		}
		if conn := connectSticky(t, set, "sb"); conn.Backend.ID != "b" {
			t.Fatalf("a sticky client of the drained backend went to %s", conn.Backend.ID)
		} else {
			conn.Release(false)
		}
	}
}

// TestStickyDownFailsOver: the first connect to a sticky backend that
// refuses it counts against it and the policy picks another backend,
// within the same call.
func TestStickyDownFailsOver(t *testing.T) {
	a := listen(t)
	r := NewRegistry(Options{MaxFailures: 1})
	set := r.Update([]Spec{
		{ClusterID: "c", ID: "a", Addr: a.addr, Weight: 100, StickyID: "sa"},
		{ClusterID: "c", ID: "dead", Addr: deadAddr(t), Weight: 100, StickyID: "sd"},
	}, nil)["c"]
	conn := connectSticky(t, set, "sd")
	if conn.Backend.ID != "a" {
		t.Fatalf("went to %s, want a", conn.Backend.ID)
	}
	conn.Release(false)
	if !set.Backends()[1].Down() {
		t.Fatal("the failed sticky backend is not marked down")
	}
	if set.Sticky([]byte("sd")) != nil {
		t.Fatal("a backend down is still sticky")
	}
}

// TestStickyNoAlloc: looking a client's sticky id up allocates nothing.
func TestStickyNoAlloc(t *testing.T) {
	r := NewRegistry(Options{})
	set := r.Update([]Spec{{ClusterID: "c", ID: "a", Addr: deadAddr(t), Weight: 1, StickyID: "sa"}}, nil)["c"]
	id, miss := []byte("sa"), []byte("zz")
	if n := testing.AllocsPerRun(100, func() {
		if set.Sticky(id) == nil || set.Sticky(miss) != nil {
			t.Fatal("lookup")
		}
	}); n != 0 {
		t.Fatalf("%v allocations per lookup", n)
	}
}
