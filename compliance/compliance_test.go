package compliance

import (
	"bytes"
	"encoding/json"
	"flag"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sozu-go/sozu/proto/command"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the golden file:\n--- got ---\n%s\n--- want ---\n%s", path, got, want)
	}
}

func pemFile(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name+".pem"))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// The test certificates are valid from 2025-01-01 to 2027-01-01.
var (
	midLife  = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	expiring = time.Date(2026, 12, 15, 0, 0, 0, 0, time.UTC)
	expired  = time.Date(2027, 2, 1, 0, 0, 0, 0, time.UTC)
)

// good is a snapshot every check passes.
func good(t *testing.T) *Snapshot {
	return &Snapshot{
		Now:        midLife,
		ConfigPath: "/etc/sozu/config.toml",
		Settings: Settings{
			CommandSocket:   "/run/sozu/sozu.sock",
			AllowedUIDs:     []uint32{1001},
			ReadonlyGIDs:    []uint32{2001},
			AuditTextTarget: "/var/log/sozu/audit.log", AuditJSONTarget: "/var/log/sozu/audit.jsonl",
			AuditHMACKeyFile: "/var/log/sozu/audit.jsonl.key",
			AuditQueries:     true, AuditFsync: true,
			AccessLogsTarget: "file:///var/log/sozu/access.log", LogLevel: "info", LogLevelInfo: true,
			SandboxMode: "kill", WorkerUser: "nobody",
		},
		Socket: File{Path: "/run/sozu/sozu.sock", Mode: fs.ModeSocket | 0o600},
		HTTPS: []HTTPSListener{{
			Address: "0.0.0.0:443", Active: true,
			HSTS: &HSTS{Enabled: true, MaxAge: 31536000, IncludeSubdomains: true},
		}},
		HTTP: []HTTPListener{{Address: "0.0.0.0:80", Active: true, Routes: []Route{
			{Hostname: "shop.example.com", Path: "/", ClusterID: "shop", HTTPSRedirect: true},
			{Hostname: "deny.example.com"},
		}}},
		Certificates: []Certificate{
			{Source: "list_listeners (listener 0.0.0.0:443 default)", PEM: pemFile(t, "ecdsa-p256")},
			{Source: "query_certificates_from_the_state", Fingerprint: "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
				Names: []string{"rsa-2048.example.com"}, PEM: pemFile(t, "rsa-2048")},
		},
		Workers: []Worker{
			{ID: 0, PID: 101, RunState: "RUNNING", Threads: 7, UID: 65534, GID: 65534, NoNewPrivs: true, Seccomp: 2},
			{ID: 1, PID: 102, RunState: "RUNNING", Threads: 7, UID: 65534, GID: 65534, NoNewPrivs: true, Seccomp: 2},
		},
		Audit: Audit{
			TextFile: File{Path: "/var/log/sozu/audit.log", Mode: 0o640},
			TextDir:  File{Path: "/var/log/sozu", Mode: fs.ModeDir | 0o750},
			JSONFile: File{Path: "/var/log/sozu/audit.jsonl", Mode: 0o600},
			JSONDir:  File{Path: "/var/log/sozu", Mode: fs.ModeDir | 0o700},
			KeyFile:  File{Path: "/var/log/sozu/audit.jsonl.key", Mode: 0o400},
			Chain:    Chain{Verified: true, Records: 42, FirstSeq: 1, LastSeq: 42, HeadSeq: 42},
		},
	}
}

func TestEvaluate(t *testing.T) {
	tests := []struct {
		name   string
		change func(t *testing.T, s *Snapshot)
		status Status
		// want is the worst status per check id, for the ids the case is
		// about; the golden file holds the whole report.
		want map[string]Status
	}{
		{name: "good", change: func(*testing.T, *Snapshot) {}, status: Pass, want: map[string]Status{
			"tls.versions": Pass, "tls.cipher_suites": Pass, "tls.session_tickets": Pass, "tls.strict_sni": Pass,
			"tls.hsts": Pass, "cert.expiry": Pass, "cert.key": Pass, "access.socket_mode": Pass,
			"access.admission": Pass, "access.readonly_role": Pass, "audit.targets": Pass, "audit.fail_open": Pass,
			"audit.chain": Pass, "audit.file_mode": Pass, "audit.dir_mode": Pass, "audit.key_mode": Pass,
			"audit.fsync": Pass, "audit.queries": Pass, "sandbox.mode": Pass, "sandbox.confinement": Pass,
			"sandbox.worker_user": Pass, "net.plain_http": Pass, "config.in_force": Pass, "logs.access": Pass,
		}},
		{name: "access_log_on_main_target", change: func(_ *testing.T, s *Snapshot) {
			s.Settings.AccessLogsTarget = ""
		}, status: Warn, want: map[string]Status{"logs.access": Warn}},
		{name: "access_log_filtered_out", change: func(_ *testing.T, s *Snapshot) {
			s.Settings.AccessLogsTarget, s.Settings.LogLevel, s.Settings.LogLevelInfo = "", "error", false
		}, status: Fail, want: map[string]Status{"logs.access": Fail}},
		{name: "not_in_force", change: func(_ *testing.T, s *Snapshot) {
			s.Settings.NotInForce = []NotInForce{
				{Key: "/etc/sozu/config.toml:7:1: max_connections_per_ip", Why: "per-IP connection caps are not built yet", Protection: "per-IP connection caps"},
				{Key: "/etc/sozu/config.toml:9:1: min_buffers", Why: "meaningless here"},
				{Key: "/etc/sozu/config.toml:22:1: listeners[0].h2_max_ping_per_window", Why: "HTTP/2 is not served yet", Protection: "HTTP/2 flood limits"},
				{Key: "/etc/sozu/config.toml:23:1: listeners[0].h2_max_concurrent_streams", Why: "HTTP/2 is not served yet", Protection: "HTTP/2 flood limits"},
			}
		}, status: Fail, want: map[string]Status{"config.in_force": Fail}},
		{name: "errno_expiring_fail_open", change: func(_ *testing.T, s *Snapshot) {
			s.Now = expiring
			s.Settings.SandboxMode = "errno"
			s.Settings.AuditFailOpen = true
		}, status: Fail, want: map[string]Status{"sandbox.mode": Warn, "cert.expiry": Warn, "audit.fail_open": Fail, "tls.versions": Pass}},
		{name: "expired", change: func(_ *testing.T, s *Snapshot) { s.Now = expired }, status: Fail,
			want: map[string]Status{"cert.expiry": Fail}},
		{name: "weak_tls", change: func(t *testing.T, s *Snapshot) {
			off := false
			s.Settings.TLSSessionTickets = true
			s.HTTPS[0].Versions = []command.TlsVersion{command.TlsVersion_TLS_V1_1, command.TlsVersion_TLS_V1_2}
			s.HTTPS[0].CipherList = []string{"ECDHE-RSA-AES128-GCM-SHA256", "AES128-SHA"}
			s.HTTPS[0].SendTLS13Tickets = 4
			s.HTTPS[0].StrictSNIBinding = &off
			s.HTTPS[0].HSTS = nil
			s.HTTPS = append(s.HTTPS, HTTPSListener{Address: "0.0.0.0:8443", HSTS: &HSTS{Enabled: true}})
			s.Certificates = []Certificate{
				{Source: "query_certificates_from_the_state", Fingerprint: "aa", PEM: pemFile(t, "rsa-1024")},
				{Source: "query_certificates_from_the_state", Fingerprint: "bb", PEM: pemFile(t, "ecdsa-p521")},
				{Source: "query_certificates_from_the_state", Fingerprint: "cc", PEM: "not a certificate"},
			}
		}, status: Fail, want: map[string]Status{
			"tls.versions": Warn, "tls.cipher_suites": Warn, "tls.session_tickets": Warn, "tls.strict_sni": Fail,
			"tls.hsts": Warn, "cert.key": Fail, "cert.expiry": Fail,
		}},
		{name: "tls13_only", change: func(_ *testing.T, s *Snapshot) {
			s.HTTPS[0].Versions = []command.TlsVersion{command.TlsVersion_TLS_V1_3}
		}, status: Pass, want: map[string]Status{"tls.versions": Pass, "tls.cipher_suites": Pass}},
		{name: "access_open", change: func(_ *testing.T, s *Snapshot) {
			s.Settings.AllowedUIDs, s.Settings.ReadonlyGIDs = nil, nil
			s.Socket.Mode = fs.ModeSocket | 0o666
		}, status: Fail, want: map[string]Status{"access.socket_mode": Fail, "access.admission": Warn, "access.readonly_role": Warn}},
		{name: "socket_group", change: func(_ *testing.T, s *Snapshot) {
			s.Settings.SocketGroup = "sozu-ops"
			s.Socket.Mode = fs.ModeSocket | 0o660
		}, status: Pass, want: map[string]Status{"access.socket_mode": Pass}},
		{name: "socket_group_unconfigured", change: func(_ *testing.T, s *Snapshot) {
			s.Socket.Mode = fs.ModeSocket | 0o660
		}, status: Fail, want: map[string]Status{"access.socket_mode": Fail}},
		{name: "audit_none", change: func(_ *testing.T, s *Snapshot) {
			s.Settings.AuditTextTarget, s.Settings.AuditJSONTarget = "", ""
			s.Settings.AuditFsync, s.Settings.AuditQueries = false, false
			s.Audit = Audit{}
		}, status: Fail, want: map[string]Status{"audit.targets": Fail, "audit.chain": NA, "audit.fsync": Warn, "audit.queries": Warn}},
		{name: "audit_text_only", change: func(_ *testing.T, s *Snapshot) {
			s.Settings.AuditJSONTarget = ""
		}, status: Warn, want: map[string]Status{"audit.targets": Warn, "audit.chain": NA}},
		{name: "audit_wide_modes_broken_chain", change: func(_ *testing.T, s *Snapshot) {
			s.Audit.TextFile.Mode = 0o644
			s.Audit.TextDir.Mode = fs.ModeDir | 0o755 // one directory for both targets
			s.Audit.JSONDir.Mode = fs.ModeDir | 0o755
			s.Audit.KeyFile.Mode = 0o640
			s.Audit.JSONFile.Mode = fs.ModeSymlink | 0o777
			s.Audit.Chain = Chain{Broken: "record 7 (seq 7): HMAC mismatch"}
		}, status: Fail, want: map[string]Status{"audit.file_mode": Fail, "audit.dir_mode": Fail, "audit.key_mode": Fail, "audit.chain": Fail}},
		// Security review item 9: records cut off the end while the proxy
		// was down; the supervisor wrote an audit.tamper record at start.
		{name: "audit_tamper", change: func(_ *testing.T, s *Snapshot) {
			s.Audit.Chain = Chain{
				Broken:  "audit verify: line 5 (seq 10): seq 5 to 9 missing: found cut off or replaced by the supervisor at a start (audit.tamper record: …)",
				Tampers: []Tamper{{Line: 5, Seq: 10, Missing: "seq 5 to 9", Reason: "the JSON file ends at seq 4 but its sealed head is seq 9: seq 5 to 9 missing (cut off the end, or the file replaced)"}},
			}
		}, status: Fail, want: map[string]Status{"audit.chain": Fail, "audit.tamper": Fail}},
		{name: "audit_head_missing", change: func(_ *testing.T, s *Snapshot) {
			s.Audit.Chain.HeadSeq, s.Audit.Chain.HeadNote = 0, "audit head file /var/log/sozu/audit.jsonl.key.head: no such file or directory"
		}, status: Warn, want: map[string]Status{"audit.chain": Pass, "audit.tamper": Warn}},
		{name: "unreadable", change: func(_ *testing.T, s *Snapshot) {
			s.Socket = File{Path: s.Socket.Path, Err: "permission denied"}
			s.ListenersErr = "unauthorized: uid 1000 is not admitted"
			s.HTTPS, s.HTTP = nil, nil
			s.Certificates, s.CertificatesErr = nil, "unauthorized: uid 1000 is not admitted"
			s.Workers, s.WorkersErr = nil, "unauthorized: uid 1000 is not admitted"
			for _, f := range []*File{&s.Audit.TextFile, &s.Audit.TextDir, &s.Audit.JSONFile, &s.Audit.JSONDir, &s.Audit.KeyFile} {
				*f = File{Path: f.Path, Err: "permission denied"}
			}
			s.Audit.Chain = Chain{Skipped: "open /var/log/sozu/audit.jsonl.key: permission denied"}
		}, status: Pass, want: map[string]Status{
			"access.socket_mode": NA, "tls.versions": NA, "net.plain_http": NA, "cert.expiry": NA,
			"sandbox.confinement": NA, "sandbox.worker_user": NA, "audit.file_mode": NA, "audit.chain": NA,
		}},
		{name: "workers_unconfined", change: func(_ *testing.T, s *Snapshot) {
			s.Settings.SandboxMode = "off"
			s.Settings.WorkerAllowRoot = true
			s.Workers[0].UID, s.Workers[0].Seccomp, s.Workers[0].NoNewPrivs = 0, 0, false
			s.Workers[1].GID, s.Workers[1].NoNewPrivs = 0, false
			s.Workers = append(s.Workers, Worker{ID: 2, PID: 103, RunState: "NOT_ANSWERING", Err: "open /proc/103/task: no such file or directory"})
		}, status: Fail, want: map[string]Status{"sandbox.mode": Fail, "sandbox.confinement": Fail, "sandbox.worker_user": Fail}},
		{name: "plain_http", change: func(_ *testing.T, s *Snapshot) {
			s.HTTP = append(s.HTTP,
				HTTPListener{Address: "0.0.0.0:8080", Routes: []Route{
					{Hostname: "a.example.com", ClusterID: "api", HTTPSRedirect: false},
					{Hostname: "b.example.com", ClusterID: "shop", HTTPSRedirect: true},
				}},
				HTTPListener{Address: "0.0.0.0:8081"},
				HTTPListener{Address: "0.0.0.0:8082", RoutesErr: "query_cluster_by_id api: timed out"})
		}, status: Warn, want: map[string]Status{"net.plain_http": Warn}},
		{name: "no_listeners", change: func(_ *testing.T, s *Snapshot) {
			s.HTTPS, s.HTTP, s.Certificates, s.Workers = nil, nil, nil, nil
		}, status: Pass, want: map[string]Status{"tls.versions": NA, "net.plain_http": Pass, "cert.expiry": NA, "sandbox.confinement": NA}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := good(t)
			tc.change(t, s)
			r := Evaluate(s)
			if r.Status != tc.status {
				t.Errorf("status %s, want %s", r.Status, tc.status)
			}
			if r.Failed() != (tc.status == Fail) {
				t.Errorf("Failed() = %t with status %s", r.Failed(), r.Status)
			}
			worst := map[string]Status{}
			for _, g := range r.Requirements {
				for _, c := range g.Checks {
					if c.Requirement != g.ID {
						t.Errorf("check %s (%s) listed under %s", c.ID, c.Requirement, g.ID)
					}
					if w, ok := worst[c.ID]; !ok || c.Status.rank() > w.rank() || (w == NA && c.Status != NA) {
						worst[c.ID] = c.Status
					}
				}
			}
			for id, want := range tc.want {
				if got, ok := worst[id]; !ok {
					t.Errorf("no %s check", id)
				} else if got != want {
					t.Errorf("%s: %s, want %s", id, got, want)
				}
			}
			doc, err := json.MarshalIndent(r, "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			golden(t, tc.name+".json.golden", append(doc, '\n'))
		})
	}
}

// TestEvaluateDoesNotChangeSnapshot: Evaluate only reads.
func TestEvaluateDoesNotChangeSnapshot(t *testing.T) {
	s := good(t)
	before, _ := json.Marshal(s)
	Evaluate(s)
	after, _ := json.Marshal(s)
	if !bytes.Equal(before, after) {
		t.Error("Evaluate changed its snapshot")
	}
}

// TestCatalogue: ids are unique and dotted, every check maps to a listed
// requirement, and requirements are listed in report order.
func TestCatalogue(t *testing.T) {
	seen := map[string]bool{}
	idRE := regexp.MustCompile(`^[a-z]+\.[a-z_]+$`)
	last := -1
	for _, d := range Catalogue() {
		if seen[d.ID] {
			t.Errorf("duplicate check %s", d.ID)
		}
		seen[d.ID] = true
		if !idRE.MatchString(d.ID) {
			t.Errorf("check id %q is not a dotted lowercase name", d.ID)
		}
		i := slices.IndexFunc(Requirements(), func(r RequirementTitle) bool { return r.ID == d.Requirement })
		if i < 0 {
			t.Errorf("check %s maps to %s, not in the requirement list", d.ID, d.Requirement)
		}
		if i < last {
			t.Errorf("check %s (%s) is out of requirement order", d.ID, d.Requirement)
		}
		last = i
	}
	for _, r := range Requirements() {
		if !slices.ContainsFunc(Catalogue(), func(d Definition) bool { return d.Requirement == r.ID }) {
			t.Errorf("requirement %s has no check", r.ID)
		}
	}
}

// TestCatalogueDocumented: docs/compliance.md justifies every check and
// names no check that does not exist.
func TestCatalogueDocumented(t *testing.T) {
	doc, err := os.ReadFile("../docs/compliance.md")
	if err != nil {
		t.Fatal(err)
	}
	text := string(doc)
	for _, d := range Catalogue() {
		if !strings.Contains(text, "`"+d.ID+"`") {
			t.Errorf("docs/compliance.md does not document check %s", d.ID)
		}
	}
	for _, r := range Requirements() {
		if !strings.Contains(text, "### "+r.ID+" ") {
			t.Errorf("docs/compliance.md has no section \"### %s …\"", r.ID)
		}
	}
	for _, m := range regexp.MustCompile("`((?:tls|cert|net|access|audit|sandbox)\\.[a-z_]+)`").FindAllStringSubmatch(text, -1) {
		if !slices.ContainsFunc(Catalogue(), func(d Definition) bool { return d.ID == m[1] }) {
			t.Errorf("docs/compliance.md names check %s, which does not exist", m[1])
		}
	}
}
