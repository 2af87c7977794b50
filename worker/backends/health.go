package backends

import (
	"sync"
	"sync/atomic"

	"github.com/sozu-go/sozu/proto/command"
)

// A backend is in rotation when neither verdict holds it down: passive
// failure counting (Backend.down, set after Options.MaxFailures failed
// connects, cleared by one successful connect) and the active health
// check (Backend.hcDown, set and cleared by SetHealth). The two are
// independent: a health check that succeeds does not clear a passive
// down, and a backend down by health check is not given the passive
// retry connection (see eligible). When no backend of a cluster is in
// rotation, pick falls back to all of them (fail open).

// transitions serialises the verdict changes of all backends, so that
// BACKEND_DOWN / BACKEND_UP / NO_AVAILABLE_BACKENDS / CLUSTER_RECOVERED are
// emitted once per change of rotation, whichever verdict moved. Changes
// are rare (thresholds), so one lock is enough.
var transitions sync.Mutex

// inRotation reports whether b may be picked in the normal rounds.
func (b *Backend) inRotation() bool { return !b.down.Load() && !b.hcDown.Load() }

// HealthDown reports whether the active health check holds b down.
func (b *Backend) HealthDown() bool { return b.hcDown.Load() }

// SetHealth records the active health check's verdict on b, a backend of
// s: healthy false takes b out of rotation, true puts it back (unless
// passive failure counting holds it down). A change emits
// HEALTH_CHECK_UNHEALTHY or HEALTH_CHECK_HEALTHY, then BACKEND_DOWN or
// BACKEND_UP when b's rotation changed, then NO_AVAILABLE_BACKENDS when
// no backend of s is left in rotation or CLUSTER_RECOVERED when b is the
// first one back. It reports whether the verdict changed. Safe for
// concurrent use.
func (s *Set) SetHealth(b *Backend, healthy bool) bool {
	return s.mark(b, &b.hcDown, !healthy, true)
}

// mark sets one verdict (flag: &b.down or &b.hcDown) of b to down and
// emits the events of the change, led by HEALTH_CHECK_* when health is
// true. It reports whether the verdict changed.
func (s *Set) mark(b *Backend, flag *atomic.Bool, down bool, health bool) bool {
	transitions.Lock()
	defer transitions.Unlock()
	if flag.Load() == down {
		return false
	}
	wasIn, othersUp := b.inRotation(), false
	if !down {
		othersUp = s.anyUp()
	}
	flag.Store(down)
	switch {
	case health && down:
		s.reg.emit(command.EventKind_HEALTH_CHECK_UNHEALTHY, b, s.ClusterID)
	case health:
		s.reg.emit(command.EventKind_HEALTH_CHECK_HEALTHY, b, s.ClusterID)
	}
	switch isIn := b.inRotation(); {
	case wasIn && !isIn:
		s.reg.emit(command.EventKind_BACKEND_DOWN, b, s.ClusterID)
		if !s.anyUp() {
			s.reg.emit(command.EventKind_NO_AVAILABLE_BACKENDS, nil, s.ClusterID)
		}
	case !wasIn && isIn:
		s.reg.emit(command.EventKind_BACKEND_UP, b, s.ClusterID)
		if !othersUp {
			s.reg.emit(command.EventKind_CLUSTER_RECOVERED, nil, s.ClusterID)
		}
	}
	return true
}
