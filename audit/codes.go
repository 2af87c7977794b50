package audit

import (
	"fmt"
	"sort"
)

// Code is a stable event code ("SZ1001"). A code, once published, never
// changes meaning and is never reused: SIEM rules and assessors key on it.
// Each code has exactly one dotted event name (Name) and back (CodeFor).
type Code string

// Command plane: what clients ask of the command socket.
const (
	// CodeCommandAttempt: a mutating or control verb was admitted and is
	// about to be applied (result ok). Shares its request ULID with the
	// completion record.
	CodeCommandAttempt Code = "SZ1000"
	// CodeCommandCompleted: the terminal outcome of a mutating or control
	// verb (result ok or err).
	CodeCommandCompleted Code = "SZ1001"
	// CodeCommandRefused: admission refused the client or the verb (uid,
	// gid or role); nothing was executed (result err).
	CodeCommandRefused Code = "SZ1002"
	// CodeCommandInvalidFrame: a frame could not be read or decoded; the
	// connection was closed (result err).
	CodeCommandInvalidFrame Code = "SZ1003"
	// CodeCommandUnknownVerb: a request named no verb, or one this build
	// does not implement (result err).
	CodeCommandUnknownVerb Code = "SZ1004"
	// CodeQueryCompleted: a read-only verb was answered (recorded unless
	// audit_queries = false).
	CodeQueryCompleted Code = "SZ1005"
)

// Process lifecycle: the supervisor, its workers and its state file.
const (
	CodeSupervisorStart   Code = "SZ2000" // the supervisor started serving
	CodeSupervisorStop    Code = "SZ2001" // the supervisor is stopping (verb or signal)
	CodeSupervisorUpgrade Code = "SZ2002" // a new supervisor binary took over
	CodeWorkerLaunch      Code = "SZ2010" // a worker was started
	CodeWorkerExit        Code = "SZ2011" // a worker exited (status or signal in reason)
	CodeWorkerRelaunch    Code = "SZ2012" // an exited worker was replaced
	CodeStateAutosave     Code = "SZ2020" // automatic_state_save wrote the state file
	CodeStateAutoload     Code = "SZ2021" // the saved state was loaded at start
)

// The audit trail itself. The broker writes these on its own.
const (
	CodeAuditOpen          Code = "SZ3000" // sinks opened; first record of a boot
	CodeAuditReopen        Code = "SZ3001" // sinks reopened (logrotate: SIGHUP or verb)
	CodeAuditSinkFailed    Code = "SZ3002" // one sink failed while another took records
	CodeAuditSinkRecovered Code = "SZ3003" // that sink takes records again
	CodeAuditRecovered     Code = "SZ3004" // end of an outage during which no sink took records
	CodeAuditFailOpen      Code = "SZ3005" // audit_fail_open is set: mutations proceed without a record
	// CodeAuditTamper: at start, the end of a sink file did not match the
	// sealed head (records cut off, file replaced), the head was missing or
	// its seal broken, or the text and JSON files disagree (result err).
	// First record of that boot; the chain continues from the sealed head,
	// so the gap shows in `sozu audit verify`.
	CodeAuditTamper Code = "SZ3006"
)

// codeNames is the one table of codes and their dotted event names.
var codeNames = map[Code]string{
	CodeCommandAttempt:      "command.attempt",
	CodeCommandCompleted:    "command.completed",
	CodeCommandRefused:      "command.refused",
	CodeCommandInvalidFrame: "command.invalid_frame",
	CodeCommandUnknownVerb:  "command.unknown_verb",
	CodeQueryCompleted:      "query.completed",

	CodeSupervisorStart:   "supervisor.start",
	CodeSupervisorStop:    "supervisor.stop",
	CodeSupervisorUpgrade: "supervisor.upgrade",
	CodeWorkerLaunch:      "worker.launch",
	CodeWorkerExit:        "worker.exit",
	CodeWorkerRelaunch:    "worker.relaunch",
	CodeStateAutosave:     "state.autosave",
	CodeStateAutoload:     "state.autoload",

	CodeAuditOpen:          "audit.open",
	CodeAuditReopen:        "audit.reopen",
	CodeAuditSinkFailed:    "audit.sink_failed",
	CodeAuditSinkRecovered: "audit.sink_recovered",
	CodeAuditRecovered:     "audit.recovered",
	CodeAuditFailOpen:      "audit.fail_open",
	CodeAuditTamper:        "audit.tamper",
}

var codesByName = func() map[string]Code {
	m := make(map[string]Code, len(codeNames))
	for c, n := range codeNames {
		if prev, dup := m[n]; dup {
			panic(fmt.Sprintf("audit: event name %q has two codes, %s and %s", n, prev, c))
		}
		m[n] = c
	}
	return m
}()

// Name returns the dotted event name of c ("command.completed"), or "" for
// an unknown code.
func (c Code) Name() string { return codeNames[c] }

// Known reports whether c is in the code table.
func (c Code) Known() bool { _, ok := codeNames[c]; return ok }

// CodeFor returns the code of a dotted event name; false when none has it.
func CodeFor(name string) (Code, bool) {
	c, ok := codesByName[name]
	return c, ok
}

// Codes returns every code, in ascending order.
func Codes() []Code {
	out := make([]Code, 0, len(codeNames))
	for c := range codeNames {
		out = append(out, c)
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}
