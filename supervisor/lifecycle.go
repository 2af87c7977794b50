package supervisor

import (
	"fmt"

	"github.com/sozu-go/sozu/proto/command"
)

// Lifecycle: the verbs that stop the proxy (verbs.Lifecycle in the verb
// catalogue; state files are in statefiles.go, audit reopen in audit.go).

// stopVerb stops every worker, answers, then stops the supervisor.
func (s *Supervisor) stopVerb(c *session, soft bool) bool {
	if soft {
		c.processing("Performing soft stop...")
	} else {
		c.processing("Performing hard stop...")
	}
	s.emitEvent("main", &command.Event{Kind: command.EventKind_SOZU_STOP_REQUESTED.Enum()})
	ok, failed := s.stopAll(soft, func(msg string) { c.processing(msg) })
	c.ok(fmt.Sprintf("Successfully closed %d workers, %d errors, stopping the main process...", ok, failed), nil)
	if c.trace != nil {
		c.trace.finish = true // once the answer and its record are out
		return true
	}
	s.finish()
	return false
}
