package supervisor_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/sozu-go/sozu/cmd/sozu/sozutest"
)

// TestInheritedDescriptorsStayHome (security review item 11): the process
// that starts the supervisor leaves a root-only file open, without
// close-on-exec, on descriptor 7. The supervisor must mark it close-on-exec
// at start, and no worker may hold it: every descriptor of a worker is one
// it was given (stdio, its sockets) or its runtime's own.
func TestInheritedDescriptorsStayHome(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("needs root: the secret is root-only and workers drop to nobody")
	}
	dir := t.TempDir()
	secret := filepath.Join(dir, "root-only.key")
	if err := os.WriteFile(secret, []byte("not for workers\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(secret, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	const leaked = 7
	cfg, sock, _ := writeConfig(t, dir, 2, "")
	p := sozutest.StartWith(t, dir, cfg, sock, func(cmd *exec.Cmd) {
		cmd.ExtraFiles = make([]*os.File, leaked-2) // 3…6 closed in the child
		cmd.ExtraFiles[leaked-3] = f
	})
	c := dial(t, sock)
	pids := runningPIDs(t, c)
	if len(pids) != 2 {
		t.Fatalf("workers: %v", pids)
	}

	// The supervisor still holds it (it may be someone's), close-on-exec.
	sup := p.Cmd.Process.Pid
	if target, _ := os.Readlink(procFD(sup, leaked)); target != secret {
		t.Fatalf("supervisor fd %d is %q, want %s (the test did not leak it)", leaked, target, secret)
	}
	if flags := fdFlags(t, sup, leaked); flags&unix.O_CLOEXEC == 0 {
		t.Errorf("supervisor fd %d (%s): flags %#o without O_CLOEXEC: the next exec passes it on", leaked, secret, flags)
	}

	for id, pid := range pids {
		fds := workerFDs(t, int(pid))
		for fd, target := range fds {
			if target == secret {
				t.Errorf("worker %d (pid %d) holds %s on fd %d", id, pid, secret, fd)
			}
			if fd > 2 && !runtimeOrGiven(target) {
				t.Errorf("worker %d (pid %d): fd %d is %q: not one the supervisor gives nor the runtime's", id, pid, fd, target)
			}
		}
		t.Logf("worker %d (pid %d) descriptors: %v", id, pid, fds)
	}
}

// runtimeOrGiven reports whether a worker descriptor's target is a kind a
// worker holds: its channel, SCM socket, listeners and connections
// (sockets), the netpoll epoll and eventfd, a splice pipe, the cgroup
// files the runtime keeps for GOMAXPROCS.
func runtimeOrGiven(target string) bool {
	for _, prefix := range []string{"socket:[", "anon_inode:", "pipe:[", "/sys/fs/cgroup/"} {
		if strings.HasPrefix(target, prefix) {
			return true
		}
	}
	return false
}

func procFD(pid, fd int) string {
	return "/proc/" + strconv.Itoa(pid) + "/fd/" + strconv.Itoa(fd)
}

// workerFDs lists a process's descriptors and their targets.
func workerFDs(t *testing.T, pid int) map[int]string {
	t.Helper()
	dir := "/proc/" + strconv.Itoa(pid) + "/fd"
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	out := map[int]string{}
	for _, e := range ents {
		fd, err := strconv.Atoi(e.Name())
		if err != nil {
			t.Fatalf("%s: entry %q", dir, e.Name())
		}
		target, err := os.Readlink(filepath.Join(dir, e.Name()))
		if err != nil {
			continue // closed meanwhile
		}
		out[fd] = target
	}
	return out
}

// fdFlags reads the open flags of a process's descriptor from fdinfo
// (octal, O_CLOEXEC included).
func fdFlags(t *testing.T, pid, fd int) int {
	t.Helper()
	path := "/proc/" + strconv.Itoa(pid) + "/fdinfo/" + strconv.Itoa(fd)
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "flags:"); ok {
			flags, err := strconv.ParseInt(strings.TrimSpace(v), 8, 64)
			if err != nil {
				t.Fatalf("%s: flags %q: %v", path, v, err)
			}
			return int(flags)
		}
	}
	t.Fatalf("%s: no flags line", path)
	return 0
}
