// Package compliance maps the security posture of a running proxy to
// PCI DSS v4.0 requirements for `sozu compliance`: a catalogue of checks
// and their pure evaluation over a Snapshot the caller gathered.
//
// Evaluate never reads a file, a socket or the clock: everything comes
// from the Snapshot, so a Report is a function of its input. The JSON form
// of Report is a stable schema (docs/compliance.md).
package compliance

import (
	"slices"
	"time"
)

// Status is the verdict of one check.
type Status string

const (
	Pass Status = "pass" // the requirement is met as far as the proxy goes
	Warn Status = "warn" // met, with a weakness an assessor should look at
	Fail Status = "fail" // not met
	NA   Status = "n/a"  // not applicable, or the data could not be read (reason in the summary)
)

// rank orders statuses from best to worst: n/a, pass, warn, fail.
func (s Status) rank() int {
	switch s {
	case Fail:
		return 2
	case Warn:
		return 1
	case Pass:
		return 0
	}
	return -1
}

// Schema names the JSON layout of Report; it changes only when a field is
// removed or changes meaning.
const Schema = "sozu-compliance/1"

// Report is the result of Evaluate. Its JSON form is documented in
// docs/compliance.md.
type Report struct {
	Schema       string        `json:"schema"`
	Standard     string        `json:"standard"`
	GeneratedAt  time.Time     `json:"generated_at"`
	Config       string        `json:"config"`
	Status       Status        `json:"status"` // worst check status; n/a only when every check is
	Counts       Counts        `json:"counts"`
	Requirements []Requirement `json:"requirements"` // catalogue order; only those with checks
}

// Counts is how many checks ended with each status.
type Counts struct {
	Pass int `json:"pass"`
	Warn int `json:"warn"`
	Fail int `json:"fail"`
	NA   int `json:"n/a"`
}

// Requirement is one PCI DSS requirement and the checks mapped to it.
type Requirement struct {
	ID     string  `json:"id"`     // "4.2.1"
	Title  string  `json:"title"`  // paraphrased, not PCI's text
	Status Status  `json:"status"` // worst of its checks; n/a when all are
	Checks []Check `json:"checks"`
}

// Check is one verdict on one subject.
type Check struct {
	ID          string     `json:"id"`          // stable dotted name: "tls.versions"
	Requirement string     `json:"requirement"` // "4.2.1"
	Subject     string     `json:"subject"`     // "listener 127.0.0.1:443", "proxy", "worker 0"
	Status      Status     `json:"status"`
	Summary     string     `json:"summary"` // one line: why this status
	Evidence    []Evidence `json:"evidence"`
}

// Evidence is one value observed and where it came from.
type Evidence struct {
	Observed string `json:"observed"`
	Source   string `json:"source"` // "config", "list_listeners", "stat", "/proc", "audit verify", …
}

// Definition is one entry of the check catalogue.
type Definition struct {
	ID          string
	Requirement string
	Title       string
}

// RequirementTitle is one requirement of the catalogue, paraphrased.
type RequirementTitle struct {
	ID, Title string
}

// requirements are the PCI DSS v4.0 requirements the checks map to, in
// report order, with paraphrased titles.
var requirements = []RequirementTitle{
	{"1.2.6", "Insecure services and protocols in use have security features that mitigate their risk"},
	{"2.2.6", "System security parameters are set to prevent misuse"},
	{"4.2.1", "Strong cryptography with trusted, valid certificates protects cardholder data sent over open networks"},
	{"7.2.1", "Access to system components is restricted by an access control model"},
	{"7.2.2", "Access is granted on job function with the least privileges needed"},
	{"7.2.5", "System and application accounts run with the least privileges needed"},
	{"8.2.2", "Shared or generic accounts are not used for administration unless exceptional, and actions stay attributable"},
	{"10.2.1", "Audit logs are enabled and active for all system components"},
	{"10.2.1.1", "Audit logs capture all individual user access to cardholder data"},
	{"10.2.1.2", "Audit logs record every action taken by an individual with administrative access"},
	{"10.3.2", "Audit log files are protected against modification"},
	{"10.3.4", "Change detection on audit logs makes existing log data tamper-evident"},
}

// catalogue lists every check Evaluate can emit, in report order within
// a requirement.
var catalogue = []Definition{
	{"net.plain_http", "1.2.6", "plain HTTP listeners redirect to HTTPS"},
	{"config.in_force", "2.2.6", "every protection the configuration sets is in force"},
	{"sandbox.mode", "2.2.6", "system call filter kills a worker on a forbidden call"},
	{"sandbox.confinement", "2.2.6", "every worker thread has seccomp filter and no_new_privs"},
	{"tls.versions", "4.2.1", "HTTPS listeners offer TLS 1.2 and 1.3 only"},
	{"tls.cipher_suites", "4.2.1", "TLS 1.2 suites are ECDHE with an AEAD cipher"},
	{"tls.session_tickets", "4.2.1", "no session tickets (forward secrecy)"},
	{"tls.strict_sni", "4.2.1", "a request's Host must match its connection's SNI, or without SNI the default certificate's names"},
	{"tls.hsts", "4.2.1", "HSTS keeps browsers on HTTPS"},
	{"cert.expiry", "4.2.1", "certificates are valid and not about to expire"},
	{"cert.key", "4.2.1", "certificate keys are RSA >= 2048 bits or ECDSA P-256/P-384"},
	{"access.socket_mode", "7.2.1", "command socket is 0600, or 0660 with a group"},
	{"access.readonly_role", "7.2.2", "a read-only role exists for those who only look"},
	{"sandbox.worker_user", "7.2.5", "workers do not run as root"},
	{"access.admission", "8.2.2", "command socket admission names the operators"},
	{"audit.targets", "10.2.1", "audit trail written to a text and a JSON file"},
	{"audit.fail_open", "10.2.1", "a verb is refused when no audit sink took its record"},
	{"audit.fsync", "10.2.1", "every audit record is on disk before the verb is answered"},
	{"logs.access", "10.2.1.1", "every request, TCP session and UDP flow leaves an access record"},
	{"audit.queries", "10.2.1.2", "read-only verbs of operators are audited too"},
	{"audit.file_mode", "10.3.2", "audit files are 0640 or stricter"},
	{"audit.dir_mode", "10.3.2", "audit directories are 0750 or stricter"},
	{"audit.key_mode", "10.3.2", "the HMAC key file is 0600 or stricter"},
	{"audit.chain", "10.3.4", "the JSON audit file's HMAC chain verifies"},
	{"audit.tamper", "10.3.4", "no records were cut off the JSON audit file's end (sealed head, audit.tamper)"},
}

// Catalogue returns the checks Evaluate can emit, in report order.
func Catalogue() []Definition { return slices.Clone(catalogue) }

// Requirements returns the requirements the checks map to, in report
// order.
func Requirements() []RequirementTitle { return slices.Clone(requirements) }

func definition(id string) Definition {
	for _, d := range catalogue {
		if d.ID == id {
			return d
		}
	}
	panic("compliance: check " + id + " is not in the catalogue")
}

// Evaluate runs every check over s. It reads nothing but s.
func Evaluate(s *Snapshot) Report {
	var checks []Check
	for _, f := range []func(*Snapshot) []Check{
		networkChecks, configChecks, sandboxChecks, tlsChecks, certificateChecks, accessChecks, auditChecks,
	} {
		checks = append(checks, f(s)...)
	}
	r := Report{
		Schema:      Schema,
		Standard:    "PCI DSS v4.0",
		GeneratedAt: s.Now.UTC(),
		Config:      s.ConfigPath,
		Status:      NA,
	}
	order := func(id string) int {
		return slices.IndexFunc(catalogue, func(d Definition) bool { return d.ID == id })
	}
	// Stable: checks of one id keep the order their function gave them.
	slices.SortStableFunc(checks, func(a, b Check) int { return order(a.ID) - order(b.ID) })
	for _, req := range requirements {
		g := Requirement{ID: req.ID, Title: req.Title, Status: NA}
		for _, c := range checks {
			if c.Requirement != req.ID {
				continue
			}
			if c.Evidence == nil {
				c.Evidence = []Evidence{}
			}
			g.Checks = append(g.Checks, c)
			if c.Status.rank() > g.Status.rank() {
				g.Status = c.Status
			}
			switch c.Status {
			case Pass:
				r.Counts.Pass++
			case Warn:
				r.Counts.Warn++
			case Fail:
				r.Counts.Fail++
			case NA:
				r.Counts.NA++
			}
		}
		if len(g.Checks) == 0 {
			continue
		}
		if g.Status.rank() > r.Status.rank() {
			r.Status = g.Status
		}
		r.Requirements = append(r.Requirements, g)
	}
	return r
}

// Failed reports whether a check of r failed (the CLI then exits 1).
func (r *Report) Failed() bool { return r.Counts.Fail > 0 }

// check starts a check of the catalogue entry id on subject.
func check(id, subject string, st Status, summary string, ev ...Evidence) Check {
	d := definition(id)
	return Check{ID: id, Requirement: d.Requirement, Subject: subject, Status: st, Summary: summary, Evidence: ev}
}

func ev(source, format string, args ...any) Evidence {
	return Evidence{Observed: sprintf(format, args...), Source: source}
}
