package supervisor_test

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sozu-go/sozu/cmd/sozu/sozutest"
)

// groupDir makes dir/run, mode 0770, owned by root and gid: the layout of
// the socket-hijack report (any member of gid may replace the socket).
func groupDir(t *testing.T, dir string, gid uint32) string {
	t.Helper()
	run := filepath.Join(dir, "run")
	if err := os.Mkdir(run, 0o770); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(run, 0o770); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(run, 0, int(gid)); err != nil {
		t.Fatal(err)
	}
	return run
}

// configWithSocket writes a configuration in dir whose command socket is sock.
func configWithSocket(t *testing.T, dir, sock, extra string) string {
	t.Helper()
	cfg, old, _ := writeConfig(t, dir, 1, extra)
	data, err := os.ReadFile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	data = bytes.Replace(data, []byte(fmt.Sprintf("%q", old)), []byte(fmt.Sprintf("%q", sock)), 1)
	if err := os.WriteFile(cfg, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return cfg
}

// TestSocketDirGroupWritableRefused: a socket directory its group may write
// in is refused at start, with the directory, its mode and its owner named.
func TestSocketDirGroupWritableRefused(t *testing.T) {
	cred := nobody(t)
	dir := sharedDir(t)
	run := groupDir(t, dir, cred.Gid)
	cfg := configWithSocket(t, dir, filepath.Join(run, "sozu.sock"), `command_socket_group = "nogroup"`)
	out, code := runStartExpectExit(t, dir, cfg)
	for _, want := range []string{run, "mode 0770", "owner uid 0", "writable by its group"} {
		if code == 0 || !strings.Contains(out, want) {
			t.Errorf("exit %d, output lacks %q:\n%s", code, want, out)
		}
	}
}

// TestCLIRefusesForeignSocketServer: uid 65534, a member of the socket
// directory's group, binds its own socket at the CLI's socket path. The
// CLI (root) must refuse it, naming the path and the uid, and send nothing.
func TestCLIRefusesForeignSocketServer(t *testing.T) {
	cred := nobody(t)
	dir := sharedDir(t)
	sock := filepath.Join(groupDir(t, dir, cred.Gid), "sozu.sock")
	h := startHelper(t, cred, "fake-server", sock, 0)
	h.wait(t, "ready")
	cfg := configWithSocket(t, dir, sock, "")

	cmd := exec.Command(sozutest.Bin, "-c", cfg, "-t", "3000", "cluster", "add", "--id", "stolen")
	cmd.Env = append(os.Environ(), "GORACE=atexit_sleep_ms=0")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err := runWithTimeout(cmd, 20*time.Second)
	code := -1
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	}
	if code != 69 || !strings.Contains(stderr.String(), sock) || !strings.Contains(stderr.String(), "uid 65534") {
		t.Errorf("exit %d (%v), stderr %q; want 69 naming %s and uid 65534", code, err, stderr.String(), sock)
	}
	waitFor(t, 30*time.Second, "the fake server to see the connection end", func() bool {
		return strings.Contains(h.out.String(), "conn bytes=")
	})
	if !containsLine(h.out.String(), "conn bytes=0") {
		t.Errorf("the fake server received bytes from the CLI:\n%s", h.out)
	}
}

// stickyLink makes dir/tmp (mode 1777, as /tmp) holding link -> target,
// the link owned by uid 65534: its owner may point it elsewhere at any
// time, sticky directory or not.
func stickyLink(t *testing.T, dir, target string) string {
	t.Helper()
	tmp := filepath.Join(dir, "tmp")
	if err := os.Mkdir(tmp, 0o777); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(tmp, 0o777|os.ModeSticky); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(tmp, "sozu-run")
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
	if err := os.Lchown(link, 65534, 65534); err != nil {
		t.Fatal(err)
	}
	return link
}

// TestSocketPathForeignSymlinkRefused: a command socket reached through a
// symbolic link another user owns (in a sticky directory such as /tmp,
// whose other entries are safe) is refused at start, even when the link
// points at a safe directory: the link's owner could point it at a
// directory of its own later, where its own socket would wait for the CLI.
func TestSocketPathForeignSymlinkRefused(t *testing.T) {
	nobody(t)
	dir := sharedDir(t)
	safe := filepath.Join(dir, "safe")
	if err := os.Mkdir(safe, 0o755); err != nil {
		t.Fatal(err)
	}
	link := stickyLink(t, dir, safe)
	cfg := configWithSocket(t, dir, filepath.Join(link, "sozu.sock"), "")
	out, code := runStartExpectExit(t, dir, cfg)
	for _, want := range []string{link, "symbolic link", "uid 65534"} {
		if code == 0 || !strings.Contains(out, want) {
			t.Errorf("exit %d, output lacks %q:\n%s", code, want, out)
		}
	}
}

// TestCLIRefusesSocketBehindForeignSymlink: the CLI's socket path goes
// through a link uid 65534 owns and has pointed at its own directory
// (mode 0755, only its owner may write), where its own server listens. The
// owner of that directory is not trusted for it: the CLI (root) refuses,
// naming the uid, and sends nothing.
func TestCLIRefusesSocketBehindForeignSymlink(t *testing.T) {
	cred := nobody(t)
	dir := sharedDir(t)
	evil := filepath.Join(dir, "evil")
	if err := os.Mkdir(evil, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(evil, int(cred.Uid), int(cred.Gid)); err != nil {
		t.Fatal(err)
	}
	h := startHelper(t, cred, "fake-server", filepath.Join(evil, "sozu.sock"), 0)
	h.wait(t, "ready")
	sock := filepath.Join(stickyLink(t, dir, evil), "sozu.sock")
	cfg := configWithSocket(t, dir, sock, "")

	cmd := exec.Command(sozutest.Bin, "-c", cfg, "-t", "3000", "cluster", "add", "--id", "stolen")
	cmd.Env = append(os.Environ(), "GORACE=atexit_sleep_ms=0")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err := runWithTimeout(cmd, 20*time.Second)
	code := -1
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	}
	if code != 69 || !strings.Contains(stderr.String(), "uid 65534") {
		t.Errorf("exit %d (%v), stderr %q; want 69 naming uid 65534", code, err, stderr.String())
	}
	waitFor(t, 30*time.Second, "the fake server to see the connection end", func() bool {
		return strings.Contains(h.out.String(), "conn bytes=")
	})
	if !containsLine(h.out.String(), "conn bytes=0") {
		t.Errorf("the fake server received bytes from the CLI:\n%s", h.out)
	}
}
