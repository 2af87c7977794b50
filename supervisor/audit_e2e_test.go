package supervisor_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sozu-go/sozu/audit"
	"github.com/sozu-go/sozu/cmd/sozu/sozutest"
	"github.com/sozu-go/sozu/proto/command"
)

// auditLines returns the JSON audit records written so far, each validated
// against docs/audit-record.schema.json.
func auditLines(t *testing.T, path string) []map[string]any {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []map[string]any
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := sc.Bytes()
		if err := audit.ValidateJSON(line); err != nil {
			t.Errorf("audit record does not validate: %v\n%s", err, line)
		}
		var m map[string]any
		if err := json.Unmarshal(line, &m); err != nil {
			t.Fatalf("audit record is not JSON: %v", err)
		}
		out = append(out, m)
	}
	return out
}

func afield(m map[string]any, path ...string) any {
	var v any = m
	for _, p := range path {
		mm, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = mm[p]
	}
	return v
}

func TestAuditTrail(t *testing.T) {
	cred := nobody(t)
	dir := sharedDir(t)
	jsonPath := filepath.Join(dir, "audit", "audit.jsonl")
	textPath := filepath.Join(dir, "audit", "audit.log")
	old := syscall.Umask(0)
	defer syscall.Umask(old)
	cfg, sock, port := writeConfig(t, dir, 2, fmt.Sprintf(`audit_logs_target = %q
audit_logs_json_target = %q
command_socket_group = "nogroup"
command_allowed_uids = [0]
`, textPath, jsonPath))
	os.Chmod(cfg, 0o644)
	p := startProxy(t, dir, cfg, sock)
	syscall.Umask(old)

	for path, want := range map[string]os.FileMode{jsonPath: 0o640, textPath: 0o640, filepath.Dir(jsonPath): 0o750} {
		fi, err := os.Stat(path)
		if err != nil || fi.Mode().Perm() != want {
			t.Errorf("%s: mode %v (%v), want %04o under umask 000", path, fi.Mode().Perm(), err, want)
		}
	}

	c := dial(t, sock)
	c.MustOK(t, addCluster("audited"))                                                       // mutation, fanned out
	c.MustOK(t, addFrontend("audited", fmt.Sprintf("127.0.0.1:%d", port), "a.example", "/")) // mutation
	c.MustOK(t, statusReq)                                                                   // query
	c.MustOK(t, req(func(r *command.Request, s string) { r.RequestType = &command.Request_SaveState{SaveState: s} }, filepath.Join(dir, "s.state")))
	_, errOut, code := p.CLIAs(cred, "cluster", "add", "--id", "intruder") // refused
	if code != 77 {
		t.Fatalf("refused client: exit %d %s", code, errOut)
	}

	recs := auditLines(t, jsonPath)
	byVerb := map[string][]map[string]any{}
	for _, r := range recs {
		v, _ := r["verb"].(string)
		byVerb[v] = append(byVerb[v], r)
		// PCI DSS 10.2.2: user, event type, time, outcome, origin, target.
		for _, k := range []string{"ts", "verb", "code", "result"} {
			if s, _ := r[k].(string); s == "" {
				t.Errorf("record %v lacks %s", r["seq"], k)
			}
		}
		if afield(r, "actor", "uid") == nil || afield(r, "actor", "comm") == nil {
			t.Errorf("record %v lacks the actor: %v", r["seq"], r["actor"])
		}
	}
	if len(byVerb["supervisor.start"]) != 1 {
		t.Errorf("supervisor.start records: %d", len(byVerb["supervisor.start"]))
	}
	var addCluster []map[string]any
	for _, r := range byVerb["cluster.add"] {
		if r["cluster_id"] == "audited" {
			addCluster = append(addCluster, r)
		}
	}
	if len(addCluster) != 2 {
		t.Fatalf("cluster.add audited: %d records, want attempt and completion: %v", len(addCluster), addCluster)
	}
	att, done := addCluster[0], addCluster[1]
	if att["request_ulid"] == nil || att["request_ulid"] != done["request_ulid"] {
		t.Errorf("attempt and completion do not share the request ULID: %v %v", att["request_ulid"], done["request_ulid"])
	}
	if att["code"] == done["code"] || done["result"] != "ok" || afield(done, "extras", "workers", "expected") != float64(2) || afield(done, "extras", "workers", "ok") != float64(2) {
		t.Errorf("completion record: %v", done)
	}
	if afield(done, "actor", "user") != "root" || done["session_ulid"] == nil || done["target"] == nil {
		t.Errorf("completion record lacks user, origin or target: %v", done)
	}
	if len(byVerb["status.get"]) != 1 {
		var verbs []string
		for v := range byVerb {
			verbs = append(verbs, v)
		}
		t.Errorf("no record of the status query; verbs seen: %v", verbs)
	}
	var refused []map[string]any
	for _, r := range recs {
		if f, ok := afield(r, "actor", "uid").(float64); ok && uint32(f) == cred.Uid {
			refused = append(refused, r)
		}
	}
	if len(refused) != 1 || refused[0]["result"] != "err" || afield(refused[0], "actor", "user") != "nobody" {
		t.Errorf("refused uid %d: %d records, want exactly one: %v", cred.Uid, len(refused), refused)
	}

	// The text sink: one line per record, the same number of records.
	text, _ := os.ReadFile(textPath)
	if n := bytes.Count(text, []byte("\tAUDIT\t")); n != len(recs) {
		t.Errorf("text sink has %d records, JSON sink %d", n, len(recs))
	}

	// The chain verifies, with the key created beside the JSON sink.
	out, err := exec.Command(sozuBinForTest(), "audit", "verify", jsonPath, "--key", jsonPath+".key").CombinedOutput()
	if err != nil {
		t.Errorf("sozu audit verify: %v\n%s", err, out)
	}
	if _, err := audit.VerifyFile(jsonPath, jsonPath+".key", audit.VerifyOptions{}); err != nil {
		t.Errorf("VerifyFile: %v", err)
	}
}

func TestAuditFailClosed(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("needs root to mount a tmpfs")
	}
	dir := t.TempDir()
	fs := filepath.Join(dir, "fs")
	os.Mkdir(fs, 0o750)
	// mode=0750: a sink's directory may not be writable by others (a
	// tmpfs root is 1777 by default).
	if err := syscall.Mount("tmpfs", fs, "tmpfs", 0, "size=256k,mode=0750"); err != nil {
		t.Skipf("cannot mount a tmpfs: %v", err)
	}
	defer syscall.Unmount(fs, syscall.MNT_DETACH)
	jsonPath := filepath.Join(fs, "audit.jsonl")
	cfg, sock, _ := writeConfig(t, dir, 1, fmt.Sprintf("audit_logs_json_target = %q\naudit_hmac_key_file = %q\naudit_queries = false\n", jsonPath, filepath.Join(dir, "audit.key")))
	p := startProxy(t, dir, cfg, sock)
	c := dial(t, sock)
	c.MustOK(t, addCluster("before"))

	// Fill the filesystem.
	filler := filepath.Join(fs, "filler")
	f, _ := os.Create(filler)
	f.Write(make([]byte, 512<<10))
	f.Close()

	// The audit file's last page may still hold a few records: the first
	// verb that finds no room must be refused, and leave no trace in the
	// state.
	refused := ""
	for i := 0; i < 50 && refused == ""; i++ {
		id := fmt.Sprintf("during-%d", i)
		_, r := c.Do(t, addCluster(id))
		switch {
		case r.GetStatus() == command.ResponseStatus_FAILURE && strings.Contains(r.GetMessage(), "audit trail unavailable"):
			refused = id
		case r.GetStatus() != command.ResponseStatus_OK:
			t.Fatalf("cluster add %s: %v %q", id, r.GetStatus(), r.GetMessage())
		}
	}
	if refused == "" {
		t.Fatal("no verb was refused with the audit sink's filesystem full")
	}
	if _, ok := hashes(t, c)["main"][refused]; ok {
		t.Fatal("the refused cluster is in the state")
	}
	// A Logging request refused so changes no level either: the
	// supervisor (log_level "debug") goes on writing its debug lines.
	if _, r := c.Do(t, &command.Request{RequestType: &command.Request_Logging{Logging: "error"}}); r.GetStatus() != command.ResponseStatus_FAILURE ||
		!strings.Contains(r.GetMessage(), "audit trail unavailable") {
		t.Fatalf("Logging with the audit trail full: %v %q", r.GetStatus(), r.GetMessage())
	}

	os.Remove(filler)
	dial(t, sock).MustOK(t, &command.Request{RequestType: &command.Request_Status{Status: &command.Status{}}})
	sozutest.WaitFor(t, 10*time.Second, "a debug line after the refused Logging", func() bool {
		out := p.Out.String()
		i := strings.Index(out, "refusing logging.set")
		return i >= 0 && strings.Contains(out[i:], "command session opened")
	})
	c.MustOK(t, addCluster("after"))
	h := hashes(t, c)["main"]
	if _, ok := h["after"]; !ok {
		t.Fatalf("cluster added after recovery missing: %v", h)
	}
	recs := auditLines(t, jsonPath)
	found := false
	for _, rec := range recs {
		if rec["verb"] == "audit.recovered" && afield(rec, "extras", "elapsed_ms") != nil {
			found = true
		}
	}
	if !found {
		t.Errorf("no audit.recovered record with the outage duration")
	}
}

func sozuBinForTest() string { return sozutest.Bin }

func TestAuditReopen(t *testing.T) {
	dir := t.TempDir()
	jsonPath := filepath.Join(dir, "audit.jsonl")
	textPath := filepath.Join(dir, "audit.log")
	cfg, sock, _ := writeConfig(t, dir, 1, fmt.Sprintf("audit_logs_target = %q\naudit_logs_json_target = %q\n", textPath, jsonPath))
	p := startProxy(t, dir, cfg, sock)

	// logrotate moves the files, then asks for a reopen: by verb...
	os.Rename(jsonPath, jsonPath+".1")
	os.Rename(textPath, textPath+".1")
	p.MustCLI("audit", "reopen")
	recs := auditLines(t, jsonPath)
	if len(recs) == 0 || recs[0]["verb"] != "audit.reopen" {
		t.Fatalf("first record of the new file: %v", recs)
	}
	// ... or by SIGHUP.
	os.Rename(jsonPath, jsonPath+".2")
	p.Cmd.Process.Signal(syscall.SIGHUP)
	waitFor(t, 5e9, "the audit file recreated after SIGHUP", func() bool {
		_, err := os.Stat(jsonPath)
		return err == nil
	})
	dial(t, sock).MustOK(t, addCluster("after-rotation"))
	for _, f := range []string{jsonPath + ".1", jsonPath + ".2", jsonPath} {
		rotated := audit.VerifyOptions{Rotated: f != jsonPath+".1"} // the files after the first rotation start at its anchor
		if _, err := audit.VerifyFile(f, jsonPath+".key", rotated); err != nil {
			t.Errorf("%s: %v", f, err)
		}
	}
}

func TestAuditSinkSymlinkRefused(t *testing.T) {
	dir := t.TempDir()
	target := filepath.Join(dir, "elsewhere.jsonl")
	link := filepath.Join(dir, "audit.jsonl")
	os.WriteFile(target, nil, 0o640)
	os.Symlink(target, link)
	cfg, _, _ := writeConfig(t, dir, 1, fmt.Sprintf("audit_logs_json_target = %q\n", link))
	var out sozutest.SyncBuffer
	cmd := exec.Command(sozutest.Bin, "start", "-c", cfg)
	cmd.Stdout, cmd.Stderr = &out, &out
	err := runWithTimeout(cmd, 20e9)
	if err == nil || !strings.Contains(out.String(), "symlink") && !strings.Contains(out.String(), "symbolic link") {
		t.Fatalf("start with a symlinked audit sink: %v\n%s", err, out.String())
	}
}
