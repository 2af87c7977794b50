package supervisor

import (
	"sync"

	"github.com/sozu-go/sozu/proto/command"
)

// eventDedup merges the backend and cluster events of the workers, which
// each count failures and run health checks on their own, into one event
// per change as the proxy as a whole sees it: a backend is reported down
// (BACKEND_DOWN, HEALTH_CHECK_UNHEALTHY) when the first worker takes it
// out, and up again (BACKEND_UP, HEALTH_CHECK_HEALTHY) when the last
// worker that had it out puts it back; NO_AVAILABLE_BACKENDS and
// CLUSTER_RECOVERED likewise per cluster. Other events pass. The zero
// value is ready; safe for concurrent use.
type eventDedup struct {
	mu   sync.Mutex
	down map[dedupKey]map[uint32]bool // workers that report the key down
}

// dedupKey names what an event pair is about: the pair's down kind, the
// cluster, and the backend (id and address; empty for cluster events).
type dedupKey struct {
	kind             command.EventKind
	cluster, backend string
	addr             string
}

// pairs maps each deduplicated kind to its pair's down kind, and tells
// whether the kind is the down one.
var pairs = map[command.EventKind]struct {
	down   command.EventKind
	isDown bool
}{
	command.EventKind_BACKEND_DOWN:           {command.EventKind_BACKEND_DOWN, true},
	command.EventKind_BACKEND_UP:             {command.EventKind_BACKEND_DOWN, false},
	command.EventKind_HEALTH_CHECK_UNHEALTHY: {command.EventKind_HEALTH_CHECK_UNHEALTHY, true},
	command.EventKind_HEALTH_CHECK_HEALTHY:   {command.EventKind_HEALTH_CHECK_UNHEALTHY, false},
	command.EventKind_NO_AVAILABLE_BACKENDS:  {command.EventKind_NO_AVAILABLE_BACKENDS, true},
	command.EventKind_CLUSTER_RECOVERED:      {command.EventKind_NO_AVAILABLE_BACKENDS, false},
}

// pass records ev from worker and reports whether subscribers get it. A
// down report of a worker that already reported that key down (with no up
// in between) starts the key over: see below.
func (d *eventDedup) pass(worker uint32, ev *command.Event) bool {
	p, ok := pairs[ev.GetKind()]
	if !ok {
		return true
	}
	k := dedupKey{kind: p.down, cluster: ev.GetClusterId(), backend: ev.GetBackendId()}
	if a := ev.GetAddress(); a != nil {
		k.addr = a.Display()
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.down == nil {
		d.down = map[dedupKey]map[uint32]bool{}
	}
	ws := d.down[k]
	if p.isDown {
		if ws[worker] {
			// A worker reports each change once, so a second down without
			// an up means the entry is stale: the backend was removed while
			// down and has been added again (the workers' new copies of it
			// start up, silently). Start over from this report.
			ws = nil
		}
		if ws == nil {
			ws = map[uint32]bool{}
			d.down[k] = ws
		}
		ws[worker] = true
		return len(ws) == 1
	}
	if !ws[worker] {
		return false
	}
	delete(ws, worker)
	if len(ws) > 0 {
		return false
	}
	delete(d.down, k)
	return true
}

// forget drops what worker reported: it exited, and its replacement
// starts with every backend up.
func (d *eventDedup) forget(worker uint32) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for k, ws := range d.down {
		delete(ws, worker)
		if len(ws) == 0 {
			delete(d.down, k)
		}
	}
}
