package supervisor

import (
	"net/netip"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/sozu-go/sozu/proto/command"
)

// TestEventDedup: two workers that each see a backend go down and come
// back make one event per change, not one per worker; a worker that exits
// is forgotten; other events pass.
func TestEventDedup(t *testing.T) {
	ev := func(k command.EventKind, backend string) *command.Event {
		e := &command.Event{Kind: k.Enum(), ClusterId: proto.String("c")}
		if backend != "" {
			e.BackendId = proto.String(backend)
			e.Address = command.NewSocketAddress(netip.MustParseAddrPort("127.0.0.1:80"))
		}
		return e
	}
	var d eventDedup
	for i, s := range []struct {
		worker uint32
		kind   command.EventKind
		b      string
		pass   bool
	}{
		{0, command.EventKind_HEALTH_CHECK_UNHEALTHY, "a", true},
		{1, command.EventKind_HEALTH_CHECK_UNHEALTHY, "a", false}, // the same change, seen by worker 1
		{0, command.EventKind_BACKEND_DOWN, "a", true},
		{1, command.EventKind_BACKEND_DOWN, "a", false},
		{0, command.EventKind_BACKEND_DOWN, "b", true}, // another backend
		{0, command.EventKind_NO_AVAILABLE_BACKENDS, "", true},
		{1, command.EventKind_NO_AVAILABLE_BACKENDS, "", false},
		{0, command.EventKind_HEALTH_CHECK_HEALTHY, "a", false}, // worker 1 still has it out
		{1, command.EventKind_HEALTH_CHECK_HEALTHY, "a", true},  // the last one puts it back
		{1, command.EventKind_HEALTH_CHECK_HEALTHY, "a", false}, // not down: nothing to report
		{0, command.EventKind_CLUSTER_ADDED, "", true},
		{0, command.EventKind_CLUSTER_ADDED, "", true},
	} {
		if got := d.pass(s.worker, ev(s.kind, s.b)); got != s.pass {
			t.Fatalf("step %d: worker %d %v %s passes %v, want %v", i, s.worker, s.kind, s.b, got, s.pass)
		}
	}
	d.forget(0) // worker 0 exits: worker 1 alone holds "a" down
	if !d.pass(1, ev(command.EventKind_BACKEND_UP, "a")) {
		t.Fatal("BACKEND_UP from the last worker holding the backend down was dropped")
	}
	if d.pass(1, ev(command.EventKind_CLUSTER_RECOVERED, "")) != true {
		t.Fatal("CLUSTER_RECOVERED from the last worker holding the cluster down was dropped")
	}

	// A backend removed while down leaves a stale entry (no up ever
	// comes); added again, its next down is still reported, once.
	d.pass(0, ev(command.EventKind_BACKEND_DOWN, "c"))
	d.pass(1, ev(command.EventKind_BACKEND_DOWN, "c"))
	// … removed and added again: both workers start it up, silently.
	if !d.pass(0, ev(command.EventKind_BACKEND_DOWN, "c")) {
		t.Fatal("BACKEND_DOWN of a re-added backend was dropped")
	}
	if d.pass(1, ev(command.EventKind_BACKEND_DOWN, "c")) {
		t.Fatal("BACKEND_DOWN of a re-added backend reported twice")
	}
	if d.pass(0, ev(command.EventKind_BACKEND_UP, "c")) || !d.pass(1, ev(command.EventKind_BACKEND_UP, "c")) {
		t.Fatal("BACKEND_UP of a re-added backend not reported once, by the last worker")
	}
}
