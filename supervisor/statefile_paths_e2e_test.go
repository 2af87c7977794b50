package supervisor_test

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sozu-go/sozu/cmd/sozu/sozutest"
	"github.com/sozu-go/sozu/proto/command"
)

// supervisorFiles is the configuration of a supervisor that owns audit
// sinks, an HMAC key and an automatically saved state file in dir.
func supervisorFiles(dir string) (extra string, files map[string]string) {
	files = map[string]string{
		"audit_logs_target":      filepath.Join(dir, "audit", "audit.log"),
		"audit_logs_json_target": filepath.Join(dir, "audit", "audit.json"),
		"audit_hmac_key_file":    filepath.Join(dir, "audit", "audit.json.key"),
		"saved_state":            filepath.Join(dir, "saved.state"),
	}
	extra = fmt.Sprintf("audit_logs_target = %q\naudit_logs_json_target = %q\nsaved_state = %q\nautomatic_state_save = true\n",
		files["audit_logs_target"], files["audit_logs_json_target"], files["saved_state"])
	return extra, files
}

// snapshot is a file's identity and content, to tell that a save did not
// replace or rewrite it (an audit log may only grow).
type snapshot struct {
	id      [2]uint64
	content []byte
}

func snap(t *testing.T, path string) snapshot {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return snapshot{fileID(t, path), b}
}

func (s snapshot) intact(t *testing.T, what, path string) {
	t.Helper()
	now := snap(t, path)
	if now.id != s.id {
		t.Errorf("%s %s was replaced (device/inode %v, then %v)", what, path, s.id, now.id)
	}
	if !bytes.HasPrefix(now.content, s.content) {
		t.Errorf("%s %s was rewritten:\nbefore: %.200q\nafter:  %.200q", what, path, s.content, now.content)
	}
}

// TestSaveStateNeverOverwritesSupervisorFiles: save_state refuses to write
// over the files the supervisor itself uses (audit sinks, HMAC key,
// configuration, saved_state), however the client names them: the same
// path, an uncleaned one, a relative one, or another name of the same
// inode. A root client would otherwise replace the audit trail (the
// supervisor goes on appending to the deleted inode).
func TestSaveStateNeverOverwritesSupervisorFiles(t *testing.T) {
	dir := t.TempDir()
	extra, files := supervisorFiles(dir)
	cfg, sock, _ := writeConfig(t, dir, 1, extra)
	files["configuration"] = cfg
	startProxy(t, dir, cfg, sock)
	c := dial(t, sock)
	c.MustOK(t, addCluster("kept")) // writes saved_state and audit records

	other := t.TempDir()
	link := filepath.Join(other, "hard-link-to-audit.log")
	if err := os.Link(files["audit_logs_target"], link); err != nil {
		t.Fatal(err)
	}
	tests := []struct{ name, path, protected string }{
		{"audit text sink", files["audit_logs_target"], "audit_logs_target"},
		{"audit JSON sink", files["audit_logs_json_target"], "audit_logs_json_target"},
		{"audit HMAC key", files["audit_hmac_key_file"], "audit_hmac_key_file"},
		// The sealed head is rewritten by the supervisor (not snapshotted
		// here); replacing it would make a clean restart report tampering,
		// or a forged head hide a truncation.
		{"audit sealed head", files["audit_hmac_key_file"] + ".head", "sealed head"},
		{"configuration", cfg, "configuration"},
		{"saved state", files["saved_state"], "saved_state"},
		{"uncleaned path", filepath.Join(dir, "audit", ".", "..", "audit", "audit.log"), "audit_logs_target"},
		{"relative to the supervisor's directory", "audit/audit.log", "audit_logs_target"},
		{"another name of the same inode", link, "audit_logs_target"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := map[string]snapshot{}
			for k, f := range files {
				before[k] = snap(t, f)
			}
			_, resp := c.Do(t, saveStateReq(tt.path))
			if resp.GetStatus() != command.ResponseStatus_FAILURE || !strings.Contains(resp.GetMessage(), "refusing to write the state") ||
				!strings.Contains(resp.GetMessage(), tt.protected) {
				t.Errorf("save_state to %s: %v %q; want a FAILURE naming %s", tt.path, resp.GetStatus(), resp.GetMessage(), tt.protected)
			}
			for k, f := range files {
				before[k].intact(t, k, f)
			}
		})
	}
	// Elsewhere, saving works.
	c.MustOK(t, saveStateReq(filepath.Join(other, "copy.state")))
	// The audit trail still verifies: nothing replaced it under the
	// supervisor's feet.
	out, err := exec.Command(sozutest.Bin, "audit", "verify", files["audit_logs_json_target"], "--key", files["audit_hmac_key_file"]).CombinedOutput()
	if err != nil {
		t.Errorf("sozu audit verify: %v\n%s", err, out)
	}
}

// createUser adds a system account (with its own group, and nogroup as a
// supplementary group) for the test, removed when the test ends.
func createUser(t *testing.T) (name string, cred *syscall.Credential) {
	t.Helper()
	if os.Getuid() != 0 {
		t.Skip("needs root to create a user")
	}
	b := make([]byte, 4)
	rand.Read(b)
	name = "sozut" + hex.EncodeToString(b)
	if out, err := exec.Command("useradd", "--system", "--no-create-home", "--user-group", "--groups", "nogroup",
		"--shell", "/usr/sbin/nologin", name).CombinedOutput(); err != nil {
		t.Fatalf("useradd %s: %v\n%s", name, err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("userdel", name).CombinedOutput(); err != nil {
			t.Errorf("userdel %s: %v\n%s", name, err, out)
		}
	})
	u, err := user.Lookup(name)
	if err != nil {
		t.Fatal(err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	return name, &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
}

// TestSaveStateNonRootSupervisor: a supervisor that is not root cannot
// take a client's filesystem identity, so it lets only its own uid (and
// root) name paths; another admin would otherwise write with the
// supervisor's rights, over the audit trail the supervisor owns.
func TestSaveStateNonRootSupervisor(t *testing.T) {
	nob := nobody(t)
	name, self := createUser(t)
	dir := sharedDir(t)
	if err := os.Chown(dir, int(self.Uid), int(self.Gid)); err != nil {
		t.Fatal(err)
	}
	extra, files := supervisorFiles(dir)
	extra += fmt.Sprintf("worker_user = %q\nworker_group = %q\ncommand_socket_group = \"nogroup\"\ncommand_allowed_uids = [0, %d, %d]\n",
		name, name, self.Uid, nob.Uid)
	cfg, sock, _ := writeConfig(t, dir, 1, extra)
	os.Chmod(cfg, 0o644) // the CLI of every client reads it
	p := sozutest.StartAs(t, dir, cfg, sock, self)
	p.MustCLI("cluster", "add", "--id", "kept") // root: writes saved_state and audit records

	// The supervisor runs as the test user.
	if st, err := os.Stat(files["audit_logs_target"]); err != nil || st.Sys().(*syscall.Stat_t).Uid != self.Uid {
		t.Fatalf("audit log %s: %v (owner %v), want it owned by uid %d", files["audit_logs_target"], err, st, self.Uid)
	}

	nobodysDir := filepath.Join(sharedDir(t), "nobody")
	if err := os.Mkdir(nobodysDir, 0o700); err != nil {
		t.Fatal(err)
	}
	os.Chown(nobodysDir, int(nob.Uid), int(nob.Gid))

	before := snap(t, files["audit_logs_target"])
	refusal := fmt.Sprintf("uid %d may not name files", nob.Uid)
	tests := []struct {
		name string
		cred *syscall.Credential
		args []string
		want string // in stderr; "" for success
	}{
		{"another admin saves over the audit log", nob, []string{"state", "save", "--file", files["audit_logs_target"]}, refusal},
		{"another admin saves into its own directory", nob, []string{"state", "save", "--file", filepath.Join(nobodysDir, "s.state")}, refusal},
		{"another admin loads", nob, []string{"state", "load", "--file", files["saved_state"]}, refusal},
		{"the supervisor's uid saves over the audit log", self, []string{"state", "save", "--file", files["audit_logs_target"]}, "audit_logs_target"},
		{"the supervisor's uid saves elsewhere", self, []string{"state", "save", "--file", filepath.Join(dir, "copy.state")}, ""},
		{"root saves over the audit log", nil, []string{"state", "save", "--file", files["audit_logs_target"]}, "audit_logs_target"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, errOut, code := p.CLIAs(tt.cred, tt.args...)
			if tt.want == "" {
				if code != 0 {
					t.Errorf("exit %d\n%s%s", code, out, errOut)
				}
				return
			}
			if code != 1 || !strings.Contains(errOut, tt.want) {
				t.Errorf("exit %d, stderr %q; want 1 and %q", code, errOut, tt.want)
			}
		})
	}
	if _, err := os.Stat(filepath.Join(nobodysDir, "s.state")); err == nil {
		t.Error("a state file was written for another admin")
	}
	before.intact(t, "audit log", files["audit_logs_target"])
	// The supervisor still appends to the file at that path.
	p.MustCLI("cluster", "add", "--id", "after")
	waitFor(t, 5*time.Second, "the audit log to record the last verb", func() bool {
		b, _ := os.ReadFile(files["audit_logs_target"])
		return bytes.Contains(b, []byte("after"))
	})
}
