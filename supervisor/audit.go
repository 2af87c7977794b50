package supervisor

import (
	"fmt"
	"time"

	"github.com/sozu-go/sozu/audit"
	"github.com/sozu-go/sozu/proto/command"
	"github.com/sozu-go/sozu/supervisor/admission"
)

// Version and GitSHA are stamped on audit records; cmd/sozu sets them.
var (
	Version = "dev"
	GitSHA  = ""
)

// trace follows one request through handle, for its audit records: the
// request ULID shared by the attempt and completion records, and what the
// workers answered. The terminal response is held here (not sent) until
// the completion record is written, so that a query whose record no sink
// took can still be refused.
type trace struct {
	id       string
	start    time.Time
	class    audit.Class
	fanout   int
	workers  *audit.Workers
	terminal *command.Response
	finish   bool   // stop the supervisor once the answer is out
	note     string // reason of a successful completion record, if any
	// handedOver: the trail belongs to a successor supervisor (upgrade.go),
	// which wrote the completion record; only the answer is sent.
	handedOver bool
}

// noteOutcomes records the workers' answers of a fanned-out verb.
func (t *trace) noteOutcomes(outs []outcome) {
	if t == nil {
		return
	}
	w := &audit.Workers{Expected: len(outs)}
	for _, o := range outs {
		if o.ok() {
			w.OK++
		} else {
			w.Err++
		}
	}
	t.fanout, t.workers = len(outs), w
}

// openAudit opens the audit sinks the configuration names, if any.
func (s *Supervisor) openAudit() error {
	if s.cfg.AuditLogsTarget == "" && s.cfg.AuditLogsJSONTarget == "" {
		s.log.Warn("no audit_logs_target nor audit_logs_json_target: privileged actions are not audited")
		return nil
	}
	b, err := audit.Open(audit.Options{
		TextTarget:  s.cfg.AuditLogsTarget,
		JSONTarget:  s.cfg.AuditLogsJSONTarget,
		HMACKeyFile: s.cfg.Audit.HMACKeyFile,
		Fsync:       s.cfg.Audit.Fsync,
		FailOpen:    s.cfg.Audit.FailOpen,
		Version:     Version,
		GitSHA:      GitSHA,
		Infof:       s.log.Infof,
		Warnf:       s.log.Warnf,
	})
	if err != nil {
		return fmt.Errorf("audit: %w", err)
	}
	if s.cfg.Audit.FailOpen {
		s.log.Warn("AUDIT FAIL-OPEN: audit_fail_open = true, so verbs proceed even when no audit sink takes their record (upstream's behaviour, not PCI DSS 10.2-compliant)")
	}
	s.audit = b
	return nil
}

// record writes rec; nil without sinks. The error means no sink took it
// (and the broker is fail-closed).
func (s *Supervisor) record(rec *audit.Record) error {
	if s.audit == nil {
		return nil
	}
	return s.audit.Log(rec)
}

// recordSystem writes an internal event; a failure is logged, not returned:
// the event happened whether or not it could be recorded.
func (s *Supervisor) recordSystem(verb string, code audit.Code, result audit.Result, reason string) {
	rec := &audit.Record{Actor: audit.SystemActor(), Verb: verb, Code: code, Result: result, Reason: reason}
	if result == audit.ResultErr && rec.ErrorCode == "" {
		rec.ErrorCode = verb
	}
	if err := s.record(rec); err != nil {
		s.log.Errorf("audit record %s lost: %v", verb, err)
	}
}

// sessionRecord starts a record about a request (or frame) from c.
func (s *Supervisor) sessionRecord(c *session, code audit.Code) *audit.Record {
	id := c.ident
	rec := &audit.Record{
		SessionULID: id.Session.String(),
		ClientID:    fmt.Sprint(id.Client),
		ConnectTime: id.Connected,
		Socket:      id.Socket,
		Code:        code,
	}
	if id.Known {
		rec.Actor = audit.PeerActor(id.UID, id.GID, id.PID, id.User, id.Comm, id.Role.String())
	} else {
		rec.Actor = audit.Actor{User: id.User, Comm: id.Comm, Role: id.Role.String()}
	}
	return rec
}

// stepRecord starts the record of one request a verb made of several
// applies for c (a reload's step, a state file's record): under the
// request ULID of its own that its attempt and completion share, with
// reason saying which step it is, result ok until the caller says
// otherwise.
func (s *Supervisor) stepRecord(c *session, code audit.Code, req *command.Request, ulid, reason string) *audit.Record {
	rec := s.sessionRecord(c, code)
	rec.SetRequest(req)
	rec.RequestULID, rec.Result, rec.Reason = ulid, audit.ResultOK, reason
	return rec
}

// recordRefusal writes the record of a refused request, frame or
// connection from c, unless the refusal limiter counts it for a summary
// instead (see refusals.go); it reports whether the refusal was recorded in
// full, so that the caller logs only those. The request fields the record
// repeats are cut to refusalEchoMax bytes.
func (s *Supervisor) recordRefusal(c *session, code audit.Code, req *command.Request, verb, errorCode, reason string) bool {
	rec := s.sessionRecord(c, code)
	if req != nil {
		rec.SetRequest(req)
		rec.Target, rec.ClusterID, rec.BackendID = clampEcho(rec.Target), clampEcho(rec.ClusterID), clampEcho(rec.BackendID)
	}
	if verb != "" {
		rec.Verb = verb
	}
	rec.Result, rec.ErrorCode, rec.Reason = audit.ResultErr, errorCode, reason
	if !s.refusals.allow(keyOf(c.ident.Cred), rec) {
		return false
	}
	if err := s.record(rec); err != nil {
		s.log.WithFields(c.ident.Fields()).Errorf("audit record of a refusal lost: %v", err)
	}
	return true
}

// writeSummary writes a refusal limiter's summary record.
func (s *Supervisor) writeSummary(rec *audit.Record) {
	if err := s.record(rec); err != nil {
		s.log.Errorf("audit record lost: %s: %v", rec.Reason, err)
		return
	}
	s.log.Warn(rec.Reason)
}

// audited runs handle for req with its audit records: for mutations and
// control verbs an attempt record first (fail closed: when no sink takes
// it, the request is refused and nothing changes), then a completion
// record; for queries one record, unless audit_queries is off.
func (s *Supervisor) audited(c *session, req *command.Request) bool {
	verb := audit.VerbOf(req)
	class := audit.ClassOf(verb)
	if s.audit == nil || (class == audit.ClassQuery && !s.cfg.Audit.Queries) {
		return s.handle(c, req)
	}
	if class == audit.ClassUnknown { // no verb, or one this build does not know
		s.recordRefusal(c, audit.CodeCommandUnknownVerb, req, "", "unknown_verb", "request with no verb set, or an unknown one")
		return s.handle(c, req)
	}
	t := &trace{id: s.ids.New(), start: time.Now(), class: class}
	var attempt *audit.Record
	if class != audit.ClassQuery {
		rec := s.sessionRecord(c, audit.CodeCommandAttempt)
		rec.SetRequest(req)
		attempt = rec
		rec.RequestULID, rec.Result = t.id, audit.ResultOK
		if err := s.record(rec); err != nil {
			s.log.WithFields(c.ident.Fields()).Errorf("refusing %s: %v", verb, err)
			return c.fail("audit trail unavailable, request not applied: " + auditReason(err))
		}
	}
	c.trace = t
	keep := s.handle(c, req)
	c.trace = nil
	if t.handedOver {
		if t.terminal != nil {
			c.write(t.terminal)
		}
		s.finish()
		return false
	}

	code := audit.CodeCommandCompleted
	if class == audit.ClassQuery {
		code = audit.CodeQueryCompleted
	}
	rec := s.sessionRecord(c, code)
	if attempt != nil {
		rec.SetRequestAs(attempt) // the request is hashed once
	} else {
		rec.SetRequest(req)
	}
	rec.RequestULID = t.id
	elapsed := time.Since(t.start)
	rec.Extras.Elapsed = &elapsed
	if t.workers != nil {
		rec.Extras.Fanout, rec.Extras.Workers = &t.fanout, t.workers
	}
	rec.Result = audit.ResultOK
	if t.terminal == nil {
		// subscribe_events has no terminal answer; nothing is held.
	} else if t.terminal.GetStatus() != command.ResponseStatus_OK {
		rec.Result, rec.ErrorCode, rec.Reason = audit.ResultErr, "verb_failed", t.terminal.GetMessage()
	} else {
		rec.Reason = t.note
	}
	var err error
	if class != audit.ClassQuery || c.ident.Role == admission.Admin || s.queries.allow(keyOf(c.ident.Cred), rec) {
		err = s.record(rec)
	}
	if t.terminal != nil {
		resp := t.terminal
		if err != nil {
			s.log.WithFields(c.ident.Fields()).Errorf("completion record of %s lost: %v", verb, err)
			if class == audit.ClassQuery {
				resp = failure("audit trail unavailable, query not answered: " + auditReason(err))
			}
		}
		if !c.write(resp) {
			keep = false
		}
	}
	if t.finish {
		s.finish()
		return false
	}
	return keep
}

func auditReason(err error) string { return err.Error() }
