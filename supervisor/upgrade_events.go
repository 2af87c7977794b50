package supervisor

import (
	"fmt"
	"sync"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/sozu-go/sozu/proto/command"
)

// Upgrade phases, as events and `sozu status` report them.
const (
	phaseStarted  = "started"
	phaseFinished = "finished"
	phaseFailed   = "failed"
)

// upgradeLog remembers the last upgrade of the main process and of a
// worker, for `sozu status`, and emits each phase as an event. Safe for
// concurrent use.
//
// Events: upstream's MAIN_UPGRADED and WORKER_UPGRADED kinds, sent by
// "main", once per phase; the Event's cluster_id carries the phase
// ("upgrade started", "upgrade finished", "upgrade failed") since the
// upstream Event message has no field for it (docs/protocol.md).
type upgradeLog struct {
	mu   sync.Mutex
	last map[command.EventKind]string
}

// note records phase of an upgrade of kind (MAIN_UPGRADED or
// WORKER_UPGRADED) with what happened, and emits its event.
func (u *upgradeLog) note(s *Supervisor, kind command.EventKind, phase, what string) {
	u.mu.Lock()
	if u.last == nil {
		u.last = map[command.EventKind]string{}
	}
	u.last[kind] = fmt.Sprintf("%s %s at %s: %s", upgradeName(kind), phase, time.Now().UTC().Format(time.RFC3339), what)
	u.mu.Unlock()
	s.emitEvent("main", &command.Event{Kind: kind.Enum(), ClusterId: proto.String("upgrade " + phase)})
}

// summary is what `sozu status` adds to its message: the last upgrade of
// each kind, or "" when there was none.
func (u *upgradeLog) summary() string {
	u.mu.Lock()
	defer u.mu.Unlock()
	out := ""
	for _, k := range []command.EventKind{command.EventKind_MAIN_UPGRADED, command.EventKind_WORKER_UPGRADED} {
		if l, ok := u.last[k]; ok {
			out += "\nlast " + l
		}
	}
	return out
}

// restore sets the last main upgrade after a hand-over (the successor
// reports the upgrade that started it).
func (u *upgradeLog) restore(kind command.EventKind, line string) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.last == nil {
		u.last = map[command.EventKind]string{}
	}
	u.last[kind] = line
}

func upgradeName(kind command.EventKind) string {
	if kind == command.EventKind_MAIN_UPGRADED {
		return "main process upgrade"
	}
	return "worker upgrade"
}

// flushEvents ends every subscription and waits, at most d, until the
// events queued for the subscribers are written: the supervisor that hands
// over is about to exit, and its subscribers should see the upgrade's
// events before their connection closes.
func (s *Supervisor) flushEvents(d time.Duration) {
	s.subMu.Lock()
	for c, q := range s.subscribers {
		close(q)
		delete(s.subscribers, c)
	}
	s.subMu.Unlock()
	done := make(chan struct{})
	go func() { s.subWriters.Wait(); close(done) }()
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
	}
}
