package e2e

import (
	"crypto/x509"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/sozu-go/sozu/cmd/sozu/sozutest"
)

// complianceReport is the part of `sozu compliance --json` these tests read.
type complianceReport struct {
	Schema string `json:"schema"`
	Status string `json:"status"`
	Counts struct {
		Pass, Warn, Fail int
		NA               int `json:"n/a"`
	} `json:"counts"`
	Requirements []struct {
		ID     string `json:"id"`
		Checks []struct {
			ID, Requirement, Subject, Status, Summary string
			Evidence                                  []struct{ Observed, Source string }
		} `json:"checks"`
	} `json:"requirements"`
}

// statuses is every check's status by id (worst over its subjects, n/a
// lowest).
func (r *complianceReport) statuses() map[string]string {
	rank := map[string]int{"n/a": 0, "pass": 1, "warn": 2, "fail": 3}
	out := map[string]string{}
	for _, g := range r.Requirements {
		for _, c := range g.Checks {
			if prev, ok := out[c.ID]; !ok || rank[c.Status] > rank[prev] {
				out[c.ID] = c.Status
			}
		}
	}
	return out
}

// startComplianceProxy runs sozu with one HTTPS listener (a default
// certificate valid for validity, HSTS on), admission lists, and both
// audit targets in the test's directory; extra is more global TOML.
func startComplianceProxy(t *testing.T, validity time.Duration, extra string) *sozutest.Proxy {
	t.Helper()
	dir := t.TempDir()
	ca := newTestCA(t)
	c, k := ca.issuePEM(t, func(x *x509.Certificate) { x.NotAfter = time.Now().Add(validity) }, nil, "shop.test")
	certPath, keyPath := filepath.Join(dir, "shop.pem"), filepath.Join(dir, "shop.key")
	if err := os.WriteFile(certPath, c, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyPath, k, 0o600); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(dir, "sozu.sock")
	cfg := fmt.Sprintf(`command_socket = %q
worker_count = 2
worker_timeout = 10
activate_listeners = true
command_allowed_uids = [0]
command_readonly_uids = [65534]
audit_logs_target = %q
audit_logs_json_target = %q
access_logs_target = "file://%s"
%s

[[listeners]]
protocol = "https"
address = "127.0.0.1:%d"
certificate = %q
key = %q
hsts = { enabled = true, max_age = 31536000 }
`, sock, filepath.Join(dir, "audit", "audit.log"), filepath.Join(dir, "audit", "audit.jsonl"), filepath.Join(dir, "access.log"), extra,
		sozutest.FreePort(t), certPath, keyPath)
	cfgPath := filepath.Join(dir, "config.toml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return sozutest.Start(t, dir, cfgPath, sock)
}

func runCompliance(t *testing.T, p *sozutest.Proxy) (text string, textCode int, report complianceReport, jsonCode int) {
	t.Helper()
	text, errOut, textCode := p.CLI("compliance")
	if errOut != "" {
		t.Errorf("stderr of sozu compliance: %s", errOut)
	}
	doc, errOut, jsonCode := p.CLI("compliance", "--json")
	if errOut != "" {
		t.Errorf("stderr of sozu compliance --json: %s", errOut)
	}
	if err := json.Unmarshal([]byte(doc), &report); err != nil {
		t.Fatalf("sozu compliance --json: %v\n%s", err, doc)
	}
	return text, textCode, report, jsonCode
}

// TestComplianceGood: a proxy configured as docs/compliance.md advises
// passes every check, and the report shows what it read.
func TestComplianceGood(t *testing.T) {
	t.Parallel()
	p := startComplianceProxy(t, 90*24*time.Hour, "")
	text, code, r, jcode := runCompliance(t, p)
	if code != 0 || jcode != 0 {
		t.Errorf("exit %d (text) and %d (json), want 0\n%s", code, jcode, text)
	}
	if r.Schema != "sozu-compliance/1" || r.Status != "pass" || r.Counts.Fail != 0 || r.Counts.Warn != 0 || r.Counts.NA != 0 {
		t.Errorf("report: schema %q status %q counts %+v\n%s", r.Schema, r.Status, r.Counts, text)
	}
	got := r.statuses()
	for _, id := range []string{
		"tls.versions", "tls.cipher_suites", "tls.session_tickets", "tls.strict_sni", "tls.hsts",
		"cert.expiry", "cert.key", "access.socket_mode", "access.readonly_role", "access.admission",
		"audit.targets", "audit.fail_open", "audit.fsync", "audit.queries", "audit.file_mode", "audit.dir_mode",
		"audit.key_mode", "audit.chain", "sandbox.mode", "sandbox.confinement", "sandbox.worker_user",
		"net.plain_http",
	} {
		if got[id] != "pass" {
			t.Errorf("%s: %q, want pass", id, got[id])
		}
	}
	// The chain verified includes the records of the report's own queries.
	if !regexp.MustCompile(`(?m)^ +[1-9][0-9]* records, seq \d+ to \d+  \[audit verify\]$`).MatchString(text) {
		t.Errorf("no chain evidence in the text report:\n%s", text)
	}
	for _, want := range []string{
		"PCI DSS v4.0 compliance report for " + p.CfgPath,
		"  pass  sandbox.confinement",
		"effective uid 65534",
		"result: pass (",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("text report lacks %q:\n%s", want, text)
		}
	}
}

// TestComplianceWeak: sandbox_mode errno, a certificate expiring within
// 30 days and audit_fail_open give warn, warn and fail, and exit 1.
func TestComplianceWeak(t *testing.T) {
	t.Parallel()
	p := startComplianceProxy(t, 10*24*time.Hour, `sandbox_mode = "errno"
audit_fail_open = true`)
	text, code, r, jcode := runCompliance(t, p)
	if code != 1 || jcode != 1 {
		t.Errorf("exit %d (text) and %d (json), want 1\n%s", code, jcode, text)
	}
	if r.Status != "fail" || r.Counts.Fail != 1 || r.Counts.Warn != 2 {
		t.Errorf("status %q counts %+v, want fail with 1 fail and 2 warn\n%s", r.Status, r.Counts, text)
	}
	got := r.statuses()
	for id, want := range map[string]string{
		"sandbox.mode": "warn", "cert.expiry": "warn", "audit.fail_open": "fail",
		"sandbox.confinement": "pass", "tls.versions": "pass", "audit.chain": "pass",
	} {
		if got[id] != want {
			t.Errorf("%s: %q, want %q", id, got[id], want)
		}
	}
	for _, re := range []string{
		`(?m)^  warn  sandbox\.mode +workers: .*\n +sandbox_mode = "errno"  \[config\]$`,
		`(?m)^  warn  cert\.expiry +certificate \(shop\.test\): expires in (9|10) days \(under 30 days\)$`,
		`(?m)^  fail  audit\.fail_open +audit trail: .*\n +audit_fail_open = true  \[config\]$`,
		`(?m)^result: fail \(\d+ pass, 2 warn, 1 fail, 0 n/a\)$`,
	} {
		if !regexp.MustCompile(re).MatchString(text) {
			t.Errorf("text report does not match %s:\n%s", re, text)
		}
	}
}
