package asuser

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

const nobody = 65534

func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatal("this test needs root: it checks permissions as another uid (make test runs as root)")
	}
}

func owner(t *testing.T, path string) (uid, gid uint32) {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	st := fi.Sys().(*syscall.Stat_t)
	return st.Uid, st.Gid
}

func TestDo(t *testing.T) {
	needRoot(t)
	base := t.TempDir()
	// The client must be able to reach the directories under test.
	for _, d := range []string{filepath.Dir(base), base} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	rootOnly := filepath.Join(base, "root-only")
	nobodys := filepath.Join(base, "nobody")
	group := filepath.Join(base, "group")
	for _, d := range []struct {
		path     string
		uid, gid int
		mode     os.FileMode
	}{{rootOnly, 0, 0, 0o700}, {nobodys, nobody, nobody, 0o700}, {group, 0, 12345, 0o770}} {
		if err := os.Mkdir(d.path, d.mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(d.path, d.uid, d.gid); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(d.path, d.mode); err != nil {
			t.Fatal(err)
		}
	}
	create := func(path string) func() error {
		return func() error {
			f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_EXCL, 0o600)
			if err != nil {
				return err
			}
			return f.Close()
		}
	}
	tests := []struct {
		name   string
		id     Identity
		path   string
		denied bool
	}{
		{"nobody in a root-only directory", Identity{UID: nobody, GID: nobody}, filepath.Join(rootOnly, "a"), true},
		{"nobody in its own directory", Identity{UID: nobody, GID: nobody}, filepath.Join(nobodys, "a"), false},
		{"nobody without the group", Identity{UID: nobody, GID: nobody}, filepath.Join(group, "a"), true},
		{"nobody with a supplementary group", Identity{UID: nobody, GID: nobody, Groups: []uint32{12345}}, filepath.Join(group, "b"), false},
		{"nobody with the primary group", Identity{UID: nobody, GID: 12345}, filepath.Join(group, "c"), false},
		{"root", Identity{}, filepath.Join(rootOnly, "b"), false},
	}
	for _, tt := range tests {
		err := Do(tt.id, create(tt.path))
		if tt.denied {
			if !errors.Is(err, os.ErrPermission) {
				t.Errorf("%s: %v, want permission denied", tt.name, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", tt.name, err)
			continue
		}
		if uid, _ := owner(t, tt.path); uid != tt.id.UID {
			t.Errorf("%s: file owned by %d, want %d", tt.name, uid, tt.id.UID)
		}
	}
	// The caller's own rights are untouched, on every thread left.
	if err := create(filepath.Join(rootOnly, "after"))(); err != nil {
		t.Fatalf("root after Do: %v", err)
	}
	tasks, _ := filepath.Glob("/proc/self/task/*/status")
	for _, task := range tasks {
		b, err := os.ReadFile(task)
		if err != nil {
			continue // the thread is gone
		}
		for _, line := range strings.Split(string(b), "\n") {
			if f := strings.Fields(line); len(f) == 5 && (f[0] == "Uid:" || f[0] == "Gid:") && f[4] != "0" {
				t.Errorf("%s: %s (a thread kept another filesystem identity)", task, line)
			}
		}
	}
}

// TestDoWithoutRoot: a process that is not root cannot take a client's
// identity, so Do refuses every uid but its own and root's, without
// running fn. The test binary runs itself as nobody to check it.
func TestDoWithoutRoot(t *testing.T) {
	if os.Getenv("ASUSER_TEST_AS_NOBODY") == "1" {
		ran := false
		fn := func() error { ran = true; return nil }
		var ns *NotSelfError
		if err := Do(Identity{UID: 12345, GID: 12345}, fn); !errors.As(err, &ns) || ran ||
			!strings.Contains(err.Error(), "uid 12345 may not name files for this supervisor: it runs as uid 65534") {
			t.Errorf("another uid: %v (fn ran: %v), want a NotSelfError and fn not run", err, ran)
		}
		for _, id := range []Identity{{UID: nobody, GID: nobody}, {}} {
			ran = false
			if err := Do(id, fn); err != nil || !ran {
				t.Errorf("uid %d: %v (fn ran: %v), want fn run", id.UID, err, ran)
			}
		}
		return
	}
	needRoot(t)
	// The test binary, where nobody may run it.
	dir := t.TempDir()
	for _, d := range []string{filepath.Dir(dir), dir} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	self, err := os.ReadFile(os.Args[0])
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "asuser.test")
	if err := os.WriteFile(bin, self, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--", bin, "-test.run=^TestDoWithoutRoot$", "-test.v")
	cmd.Env = append(os.Environ(), "ASUSER_TEST_AS_NOBODY=1")
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "--- PASS: TestDoWithoutRoot") {
		t.Errorf("as nobody: %v\n%s", err, out)
	}
}
