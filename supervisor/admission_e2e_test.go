package supervisor_test

import (
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// nobody returns the credentials of the "nobody" account, or skips when the
// test cannot act as another user.
func nobody(t *testing.T) *syscall.Credential {
	t.Helper()
	if os.Getuid() != 0 {
		t.Skip("needs root to run a client under another uid")
	}
	u, err := user.Lookup("nobody")
	if err != nil {
		t.Skipf("no nobody account: %v", err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
}

// sharedDir is a test directory other users may traverse (not writable).
func sharedDir(t *testing.T) string {
	dir := t.TempDir()
	for _, d := range []string{filepath.Dir(dir), dir} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func startWith(t *testing.T, extra string) (*proxy, string) {
	dir := sharedDir(t)
	cfg, sock, _ := writeConfig(t, dir, 1, extra)
	os.Chmod(cfg, 0o644)
	return startProxy(t, dir, cfg, sock), sock
}

func TestAdmissionAsAnotherUser(t *testing.T) {
	cred := nobody(t)

	t.Run("socket 0600 without command_socket_group", func(t *testing.T) {
		p, _ := startWith(t, "")
		_, errOut, code := p.CLIAs(cred, "status")
		if code != 77 || !strings.Contains(errOut, "permission denied") || strings.Contains(errOut, "configuration") {
			t.Errorf("exit %d, want 77 (permission denied on the socket)\n%s", code, errOut)
		}
	})

	t.Run("not listed", func(t *testing.T) {
		p, sock := startWith(t, "command_socket_group = \"nogroup\"\ncommand_allowed_uids = [0]")
		fi, _ := os.Stat(sock)
		if fi.Mode().Perm() != 0o660 {
			t.Errorf("socket mode %04o, want 0660", fi.Mode().Perm())
		}
		_, errOut, code := p.CLIAs(cred, "status")
		want := fmt.Sprintf("unauthorized: actor UID %d not in command_allowed_uids", cred.Uid)
		if code != 77 || !strings.Contains(errOut, want) {
			t.Errorf("exit %d, stderr %q; want 77 and %q", code, errOut, want)
		}
		// The refusal is logged with who asked.
		waitFor(t, 5e9, "the refusal in the supervisor log", func() bool {
			out := p.Out.String()
			return strings.Contains(out, want) && strings.Contains(out, fmt.Sprintf("uid=%d", cred.Uid)) &&
				strings.Contains(out, "user=nobody") && strings.Contains(out, "comm=sozu")
		})
		// Root, listed, is served on the same supervisor.
		p.MustCLI("status")
	})

	t.Run("nothing configured: only root and self", func(t *testing.T) {
		p, _ := startWith(t, "command_socket_group = \"nogroup\"")
		_, errOut, code := p.CLIAs(cred, "status")
		if code != 77 || !strings.Contains(errOut, "unauthorized:") {
			t.Errorf("exit %d, stderr %q; want 77 unauthorized", code, errOut)
		}
		p.MustCLI("status")
	})

	t.Run("read-only", func(t *testing.T) {
		p, _ := startWith(t, fmt.Sprintf("command_socket_group = \"nogroup\"\ncommand_allowed_uids = [0]\ncommand_readonly_uids = [%d]", cred.Uid))
		if out, errOut, code := p.CLIAs(cred, "status"); code != 0 {
			t.Errorf("read-only status: exit %d\n%s%s", code, out, errOut)
		}
		_, errOut, code := p.CLIAs(cred, "cluster", "add", "--id", "nope")
		if code != 77 || !strings.Contains(errOut, "needs the admin role") {
			t.Errorf("read-only cluster add: exit %d, %q", code, errOut)
		}
	})

	t.Run("listed admin", func(t *testing.T) {
		p, _ := startWith(t, fmt.Sprintf("command_socket_group = \"nogroup\"\ncommand_allowed_uids = [0, %d]", cred.Uid))
		if out, errOut, code := p.CLIAs(cred, "cluster", "add", "--id", "yes"); code != 0 {
			t.Errorf("admin cluster add: exit %d\n%s%s", code, out, errOut)
		}
	})
}

// TestStateFilesWithClientRights: save_state and load_state open the path
// with the client's filesystem rights, not the supervisor's (root's).
func TestStateFilesWithClientRights(t *testing.T) {
	cred := nobody(t)
	p, _ := startWith(t, fmt.Sprintf("command_socket_group = \"nogroup\"\ncommand_allowed_uids = [0, %d]", cred.Uid))
	p.MustCLI("cluster", "add", "--id", "kept")

	base := sharedDir(t)
	rootOnly := filepath.Join(base, "root-only")
	mine := filepath.Join(base, "nobody")
	for _, d := range []struct {
		path string
		uid  int
		mode os.FileMode
	}{{rootOnly, 0, 0o700}, {mine, int(cred.Uid), 0o700}} {
		if err := os.Mkdir(d.path, d.mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(d.path, d.uid, int(cred.Gid)); err != nil {
			t.Fatal(err)
		}
	}

	// Saving where the client may not write is refused; the supervisor
	// (root) could have.
	target := filepath.Join(rootOnly, "state.json")
	_, errOut, code := p.CLIAs(cred, "state", "save", "--file", target)
	if code != 1 || !strings.Contains(errOut, "permission denied") {
		t.Errorf("save into a root-only directory: exit %d, %q; want 1 and permission denied", code, errOut)
	}
	if _, err := os.Stat(target); err == nil {
		t.Error("the state file was written into the root-only directory")
	}

	// Where the client may write, the file is the client's.
	own := filepath.Join(mine, "state.json")
	if out, errOut, code := p.CLIAs(cred, "state", "save", "--file", own); code != 0 {
		t.Fatalf("save into the client's directory: exit %d\n%s%s", code, out, errOut)
	}
	fi, err := os.Stat(own)
	if err != nil {
		t.Fatal(err)
	}
	if st := fi.Sys().(*syscall.Stat_t); st.Uid != cred.Uid || fi.Mode().Perm() != 0o600 {
		t.Errorf("state file owner %d mode %04o, want %d and 0600", st.Uid, fi.Mode().Perm(), cred.Uid)
	}

	// Loading a file the client may not read is refused; root's copy of
	// the same state loads.
	secret := filepath.Join(rootOnly, "secret.json")
	p.MustCLI("state", "save", "--file", secret)
	_, errOut, code = p.CLIAs(cred, "state", "load", "--file", secret)
	if code != 1 || !strings.Contains(errOut, "permission denied") {
		t.Errorf("load of a root-only file: exit %d, %q; want 1 and permission denied", code, errOut)
	}
	if out, errOut, code := p.CLIAs(cred, "state", "load", "--file", own); code != 0 {
		t.Errorf("load of the client's own file: exit %d\n%s%s", code, out, errOut)
	}
}

// TestStateFilesNoMagicLinks: /proc/self is the supervisor, so the magic
// links below it (/proc/self/cwd, /proc/self/root, /proc/self/fd/N) would
// let a client's load_state or save_state skip the permission checks of
// every directory above the supervisor's working directory or open
// descriptors. Here the supervisor runs in a root-only directory holding a
// state file that only that directory protects: an admin uid (65534) that
// cannot reach it by its path cannot reach it through /proc/self either
// (the kernel checks the magic links against the client's filesystem
// identity, which the open runs with); root still can. This held when the
// review tried it; the test keeps it so.
func TestStateFilesNoMagicLinks(t *testing.T) {
	cred := nobody(t)
	base := sharedDir(t)
	private := filepath.Join(base, "private") // the supervisor's working directory
	if err := os.Mkdir(private, 0o700); err != nil {
		t.Fatal(err)
	}
	cfg, sock, _ := writeConfig(t, base, 1, fmt.Sprintf("command_socket_group = \"nogroup\"\ncommand_allowed_uids = [0, %d]", cred.Uid))
	os.Chmod(cfg, 0o644)
	p := startProxy(t, private, cfg, sock)
	p.MustCLI("cluster", "add", "--id", "hidden")
	hidden := filepath.Join(private, "hidden.json")
	p.MustCLI("state", "save", "--file", hidden)
	if err := os.Chmod(hidden, 0o644); err != nil { // only the directory protects it
		t.Fatal(err)
	}
	p.MustCLI("cluster", "remove", "--id", "hidden")

	if _, errOut, code := p.CLIAs(cred, "state", "load", "--file", hidden); code != 1 || !strings.Contains(errOut, "permission denied") {
		t.Fatalf("load of %s by its path: exit %d %q; want 1 and permission denied", hidden, code, errOut)
	}
	for _, path := range []string{"/proc/self/cwd/hidden.json", "/proc/self/root" + hidden} {
		out, errOut, code := p.CLIAs(cred, "state", "load", "--file", path)
		if code != 1 || !strings.Contains(errOut, "permission denied") {
			t.Errorf("load of %s: exit %d\n%s%s\nwant 1 and permission denied", path, code, out, errOut)
		}
		if _, errOut, code := p.CLIAs(cred, "state", "save", "--file", path+".copy"); code != 1 {
			t.Errorf("save to %s.copy: exit %d %q; want 1", path, code, errOut)
		}
	}
	if out := p.MustCLI("cluster", "list"); strings.Contains(out, "hidden") {
		t.Errorf("the hidden state was loaded:\n%s", out)
	}
	// Root (whose paths reach the file anyway) is not refused a plain path.
	p.MustCLI("state", "load", "--file", hidden)
}
