package audit

import (
	"regexp"
	"sort"

	"github.com/sozu-go/sozu/proto/command"
	"github.com/sozu-go/sozu/proto/verbs"
)

// Class says what a verb does, so that callers can pick the right codes
// (query.completed for queries) and honour audit_queries = false.
type Class int

const (
	ClassUnknown  Class = iota // not in the table
	ClassMutation              // changes the configuration state or a worker setting
	ClassQuery                 // reads only
	ClassControl               // process lifecycle: stop, upgrade, launch, state files
	ClassInternal              // an event the supervisor records on its own
)

func (c Class) String() string {
	switch c {
	case ClassMutation:
		return "mutation"
	case ClassQuery:
		return "query"
	case ClassControl:
		return "control"
	case ClassInternal:
		return "internal"
	}
	return "unknown"
}

type verbInfo struct {
	verb  string
	class Class
}

// requestVerbs maps every field of command.Request's request_type oneof
// (command.VerbKey) to its stable dotted verb and class, as the verb
// catalogue (proto/verbs) gives them.
var requestVerbs = func() map[string]verbInfo {
	m := map[string]verbInfo{}
	for _, v := range verbs.All() {
		c := ClassMutation
		switch v.Class {
		case verbs.Query, verbs.Stream:
			c = ClassQuery
		case verbs.Lifecycle:
			c = ClassControl
		}
		m[v.Field] = verbInfo{v.Name, c}
	}
	return m
}()

// Verbs of events that are not requests. Records of these use the event
// code of the same name (VerbWorkerExit with CodeWorkerExit, …), except
// VerbSessionConnect, VerbRequestEmpty and VerbFrameInvalid, which go with
// the command.* refusal codes, and VerbAuditReopen, which is also the verb
// of the `sozu audit reopen` command.
const (
	VerbSupervisorStart    = "supervisor.start"
	VerbSupervisorStop     = "supervisor.stop"
	VerbSupervisorUpgrade  = "supervisor.upgrade"
	VerbWorkerLaunch       = "worker.launch"
	VerbWorkerExit         = "worker.exit"
	VerbWorkerRelaunch     = "worker.relaunch"
	VerbStateAutosave      = "state.autosave"
	VerbStateAutoload      = "state.autoload"
	VerbSessionConnect     = "session.connect" // a client connected (admission refusals before any request)
	VerbRequestEmpty       = "request.empty"   // a decoded request with no verb set
	VerbFrameInvalid       = "frame.invalid"   // a frame that could not be read or decoded
	VerbAuditOpen          = "audit.open"
	VerbAuditReopen        = "audit.reopen"
	VerbAuditSinkFailed    = "audit.sink_failed"
	VerbAuditSinkRecovered = "audit.sink_recovered"
	VerbAuditRecovered     = "audit.recovered"
	VerbAuditFailOpen      = "audit.fail_open"
	VerbAuditVerify        = "audit.verify"
)

var internalVerbs = map[string]Class{
	VerbSupervisorStart:    ClassInternal,
	VerbSupervisorStop:     ClassInternal,
	VerbWorkerExit:         ClassInternal,
	VerbWorkerRelaunch:     ClassInternal,
	VerbStateAutosave:      ClassInternal,
	VerbStateAutoload:      ClassInternal,
	VerbSessionConnect:     ClassInternal,
	VerbRequestEmpty:       ClassInternal,
	VerbFrameInvalid:       ClassInternal,
	VerbAuditOpen:          ClassInternal,
	VerbAuditReopen:        ClassControl,
	VerbAuditSinkFailed:    ClassInternal,
	VerbAuditSinkRecovered: ClassInternal,
	VerbAuditRecovered:     ClassInternal,
	VerbAuditFailOpen:      ClassInternal,
	VerbAuditVerify:        ClassQuery,
	// VerbSupervisorUpgrade and VerbWorkerLaunch are also request verbs.
}

var verbClasses = func() map[string]Class {
	m := map[string]Class{}
	for _, v := range requestVerbs {
		m[v.verb] = v.class
	}
	for v, c := range internalVerbs {
		if _, dup := m[v]; !dup {
			m[v] = c
		}
	}
	return m
}()

// verbPattern is what every verb looks like (and what the schema says).
var verbPattern = regexp.MustCompile(`^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*$`)

// VerbOf returns the dotted verb of req ("cluster.add"), or VerbRequestEmpty
// when no verb is set. A nil req reads as empty.
func VerbOf(req *command.Request) string {
	v, ok := requestVerbs[command.VerbKey(req)]
	if !ok {
		return VerbRequestEmpty
	}
	return v.verb
}

// ClassOf returns the class of a dotted verb; ClassUnknown for none.
func ClassOf(verb string) Class { return verbClasses[verb] }

// Verbs returns every known verb (request and internal), sorted.
func Verbs() []string {
	out := make([]string, 0, len(verbClasses))
	for v := range verbClasses {
		out = append(out, v)
	}
	sort.Strings(out)
	return out
}
