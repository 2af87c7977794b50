package main

import (
	"encoding/json"
	"io/fs"
	"strings"
	"testing"
	"time"

	"github.com/sozu-go/sozu/compliance"
)

// complianceSnapshot has a check of every status.
func complianceSnapshot() *compliance.Snapshot {
	return &compliance.Snapshot{
		Now:        time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
		ConfigPath: "/etc/sozu/config.toml",
		Settings: compliance.Settings{
			CommandSocket: "/run/sozu/sozu.sock", AuditJSONTarget: "/var/log/sozu/audit.jsonl",
			AuditHMACKeyFile: "/var/log/sozu/audit.jsonl.key", AuditFailOpen: true, AuditFsync: true, AuditQueries: true,
			SandboxMode: "errno", WorkerUser: "nobody",
		},
		Socket: compliance.File{Path: "/run/sozu/sozu.sock", Mode: fs.ModeSocket | 0o600},
		HTTPS:  []compliance.HTTPSListener{{Address: "127.0.0.1:8443", Active: true}},
		Workers: []compliance.Worker{{ID: 0, PID: 42, RunState: "RUNNING", Threads: 5, UID: 65534, GID: 65534,
			NoNewPrivs: true, Seccomp: 2}},
		CertificatesErr: "query_certificates_from_the_state: \x1b[31mno\x1b[0m",
		Audit: compliance.Audit{
			JSONFile: compliance.File{Path: "/var/log/sozu/audit.jsonl", Mode: 0o640},
			JSONDir:  compliance.File{Path: "/var/log/sozu", Mode: fs.ModeDir | 0o750},
			KeyFile:  compliance.File{Path: "/var/log/sozu/audit.jsonl.key", Err: "permission denied"},
			Chain:    compliance.Chain{Skipped: "open /var/log/sozu/audit.jsonl.key: permission denied"},
		},
	}
}

func TestRenderComplianceGolden(t *testing.T) {
	r := compliance.Evaluate(complianceSnapshot())
	golden(t, "compliance/report.txt.golden", []byte(renderCompliance(&r, false)))
	doc, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "compliance/report.json.golden", append(doc, '\n'))
}

func TestRenderComplianceColor(t *testing.T) {
	r := compliance.Evaluate(complianceSnapshot())
	plain := renderCompliance(&r, false)
	if strings.Contains(plain, "\x1b") {
		t.Errorf("escape sequence without colour (supervisor text must be cleaned):\n%q", plain)
	}
	colored := renderCompliance(&r, true)
	for _, want := range []string{"\x1b[31mfail\x1b[0m", "\x1b[33mwarn\x1b[0m", "\x1b[32mpass\x1b[0m"} {
		if !strings.Contains(colored, want) {
			t.Errorf("coloured report lacks %q", want)
		}
	}
}
