package compliance

import (
	"fmt"
	"io/fs"
	"strings"
)

// auditChecks: 10.2.1, 10.2.1.2, 10.3.2, 10.3.4.
func auditChecks(s *Snapshot) []Check {
	st := s.Settings
	a := s.Audit
	var out []Check
	targets := []Evidence{
		ev("config", "audit_logs_target = %q", st.AuditTextTarget),
		ev("config", "audit_logs_json_target = %q", st.AuditJSONTarget),
	}
	switch {
	case st.AuditTextTarget == "" && st.AuditJSONTarget == "":
		out = append(out, check("audit.targets", "audit trail", Fail, "no audit target: operator actions are not recorded", targets...))
	case st.AuditJSONTarget == "":
		out = append(out, check("audit.targets", "audit trail", Warn, "text trail only: no JSON trail, so no HMAC chain to verify", targets...))
	default:
		out = append(out, check("audit.targets", "audit trail", Pass, "audit trail enabled", targets...))
	}

	fo := ev("config", "audit_fail_open = %t", st.AuditFailOpen)
	if st.AuditFailOpen {
		out = append(out, check("audit.fail_open", "audit trail", Fail, "a verb proceeds even when no sink took its record", fo))
	} else {
		out = append(out, check("audit.fail_open", "audit trail", Pass, "fail closed: no record, no action", fo))
	}

	sy := ev("config", "audit_fsync = %t", st.AuditFsync)
	if st.AuditFsync {
		out = append(out, check("audit.fsync", "audit trail", Pass, "each record is synced before the verb is answered", sy))
	} else {
		out = append(out, check("audit.fsync", "audit trail", Warn, "records acknowledged before they reach the disk can be lost in a crash", sy))
	}

	out = append(out, accessLogCheck(st))

	q := ev("config", "audit_queries = %t", st.AuditQueries)
	if st.AuditQueries {
		out = append(out, check("audit.queries", "audit trail", Pass, "read-only verbs are audited", q))
	} else {
		out = append(out, check("audit.queries", "audit trail", Warn, "read-only verbs (listing certificates, state) are not audited", q))
	}

	type target struct {
		key, path string
		file, dir File
	}
	dirs := map[string]bool{}
	for _, t := range []target{
		{"audit_logs_target", st.AuditTextTarget, a.TextFile, a.TextDir},
		{"audit_logs_json_target", st.AuditJSONTarget, a.JSONFile, a.JSONDir},
	} {
		if t.path == "" {
			continue
		}
		out = append(out, modeCheck("audit.file_mode", t.file, 0o640, false))
		if !dirs[t.dir.Path] { // both targets in one directory: one check
			dirs[t.dir.Path] = true
			out = append(out, modeCheck("audit.dir_mode", t.dir, 0o750, true))
		}
	}
	if st.AuditJSONTarget != "" {
		out = append(out, modeCheck("audit.key_mode", a.KeyFile, 0o600, false))
	}

	// 10.3.4: the chain makes any edit, insertion or removal visible.
	subject := "JSON audit file"
	if a.JSONFile.Path != "" {
		subject += " " + a.JSONFile.Path
	}
	c := a.Chain
	switch {
	case st.AuditJSONTarget == "":
		out = append(out, check("audit.chain", "JSON audit file", NA, "no JSON audit target"))
	case c.Skipped != "":
		out = append(out, check("audit.chain", subject, NA, "not verified: "+c.Skipped))
	case c.Broken != "":
		out = append(out, check("audit.chain", subject, Fail, "the HMAC chain is broken", ev("audit verify", "%s", c.Broken)))
	case c.Verified:
		out = append(out, check("audit.chain", subject, Pass, "HMAC chain intact",
			ev("audit verify", "%d records, seq %d to %d", c.Records, c.FirstSeq, c.LastSeq),
			ev("config", "audit_hmac_key_file = %s", st.AuditHMACKeyFile)))
	default:
		out = append(out, check("audit.chain", subject, NA, "not verified"))
	}
	return append(out, tamperCheck(st, subject, c))
}

// tamperCheck: 10.3.4 for the end of the trail. The supervisor compares
// each file's end with its sealed head at start and writes an audit.tamper
// record when they differ; the check fails while such a record is in the
// current JSON file (acknowledge it by rotating the file away once
// investigated).
func tamperCheck(st Settings, subject string, c Chain) Check {
	const id = "audit.tamper"
	switch {
	case st.AuditJSONTarget == "":
		return check(id, "JSON audit file", NA, "no JSON audit target")
	case c.Skipped != "":
		return check(id, subject, NA, "not verified: "+c.Skipped)
	case len(c.Tampers) > 0:
		var evs []Evidence
		for _, t := range c.Tampers {
			what := t.Reason
			if t.Missing != "" && !strings.Contains(what, t.Missing+" missing") { // the reason may be cut short
				what = t.Missing + " missing; " + what
			}
			evs = append(evs, ev("audit verify", "line %d (seq %d): %s", t.Line, t.Seq, what))
		}
		return check(id, subject, Fail, fmt.Sprintf(
			"%d audit.tamper record(s): at a start the trail did not end where its sealed head said; the finding stays until the file is rotated away", len(c.Tampers)), evs...)
	case c.Broken != "":
		return check(id, subject, NA, "not all records were read: the chain is broken")
	case c.HeadNote != "":
		return check(id, subject, Warn, "the end of the file could not be checked against its sealed head", ev("audit verify", "%s", c.HeadNote))
	case c.HeadSeq != 0:
		return check(id, subject, Pass, "no audit.tamper record, and the file reaches its sealed head",
			ev("audit verify", "sealed head seq %d, found in the file", c.HeadSeq))
	case c.Verified:
		return check(id, subject, Pass, "no audit.tamper record in the file")
	}
	return check(id, subject, NA, "not verified")
}

// modeCheck passes a file (dir: a directory) whose permission bits are
// within max; it never follows a symlink (the sinks refuse them).
func modeCheck(id string, f File, max fs.FileMode, dir bool) Check {
	subject := f.Path
	if f.Err != "" {
		return check(id, subject, NA, "cannot examine: "+f.Err)
	}
	perm := f.Mode.Perm()
	e := ev("lstat", "mode %04o, type %s", perm, fileType(f.Mode))
	want := fs.FileMode(0)
	kind := "a regular file"
	if dir {
		want, kind = fs.ModeDir, "a directory"
	}
	switch {
	case f.Mode.Type() != want:
		return check(id, subject, Fail, "not "+kind, e)
	case perm&^max != 0:
		return check(id, subject, Fail, fmt.Sprintf("mode %04o grants more than %04o", perm, max), e)
	}
	return check(id, subject, Pass, fmt.Sprintf("mode %04o, within %04o", perm, max), e)
}

// accessLogCheck: 10.2.1.1. Without access_logs_target, access records
// share the main target and follow log_level as upstream's do, so a level
// above info leaves successful requests unrecorded.
func accessLogCheck(st Settings) Check {
	e := []Evidence{
		ev("config", "access_logs_target = %q", st.AccessLogsTarget),
		ev("config", "log_level = %q", st.LogLevel),
	}
	switch {
	case st.AccessLogsTarget != "":
		return check("logs.access", "access log", Pass, "every record goes to access_logs_target, whatever log_level says", e...)
	case st.LogLevelInfo:
		return check("logs.access", "access log", Warn,
			"records share the main target and follow log_level: `sozu logging warn` would stop those of successes", e...)
	default:
		return check("logs.access", "access log", Fail,
			"no access_logs_target and log_level above info: successful requests leave no access record", e...)
	}
}
